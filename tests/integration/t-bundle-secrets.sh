#!/bin/bash
# Secrets and manifest checks of `bundle create`: the manifest is validated
# before it is signed, every asset it names must be bundled, every secret it
# declares must have a value; the values travel only inside secrets.enc
# (AES-256-GCM), never in clear text in the bundle or in any output, even
# with --verbose; extract opens them only with the right key.
. "$TOP/tests/lib.sh"
cd "$TESTTMP"

manifest=$TOP/tests/data/bundle/manifest.yaml
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
openssl pkey -in key.pem -pubout -out pub.pem
mkdir -p assets/images
echo hello >assets/hello.txt
head -c 4096 /dev/urandom >assets/images/disk.img
pw="pw-$(openssl rand -hex 16)" tok="tok-$(openssl rand -hex 16)"
printf '# values\nroot_password=%s\nk3s_token=%s\n' "$pw" "$tok" >secrets.env
openssl rand -hex 32 >secret.key
openssl rand -hex 32 >wrong.key

create() { "$DEVOPSLAB" --verbose bundle create --manifest "$1" --assets assets --key key.pem "${@:2}"; }

# --- a good bundle: the values are nowhere in clear text -------------------------
expect_exit 0 create "$manifest" --secrets secrets.env --secret-key secret.key -o b.bundle
log=$OUT
zstd -dc b.bundle >b.tar
for v in "$pw" "$tok"; do
	! grep -qF -- "$v" b.bundle || fail "a secret value is in the bundle bytes"
	! grep -qF -- "$v" b.tar || fail "a secret value is in the decompressed bundle"
	! grep -qF -- "$v" <<<"$log" || fail "a secret value is in create's output"
done
tar -tf b.tar >members
grep -qx secrets.enc members || fail "no secrets.enc in the bundle"

expect_exit 0 "$DEVOPSLAB" --verbose bundle verify --pubkey pub.pem b.bundle
! grep -qF -- "$pw" <<<"$OUT" || fail "a secret value is in verify's output"
expect_exit 0 "$DEVOPSLAB" --verbose bundle extract --pubkey pub.pem --secret-key secret.key b.bundle out
! grep -qF -- "$pw" <<<"$OUT" || fail "a secret value is in extract's output"
! grep -rqF -- "$pw" out || fail "a secret value was written in clear text by extract"
expect_exit 4 "$DEVOPSLAB" bundle extract --pubkey pub.pem --secret-key wrong.key b.bundle out2
assert_contains "$OUT" "secrets.enc"
[ ! -e out2 ] || fail "extract with a wrong secret key left out2"

# --- refusals, all exit 2, all before anything is written -------------------------
expect_exit 2 create "$manifest" -o x.bundle
assert_contains "$OUT" "the manifest declares 2 secrets"
printf 'root_password=only-this\n' >partial.env
expect_exit 2 create "$manifest" --secrets partial.env --secret-key secret.key -o x.bundle
assert_contains "$OUT" "has no value for 'k3s_token'"
printf 'root_password=a\nk3s_token=b\nstray=c\n' >extra.env
expect_exit 0 create "$manifest" --secrets extra.env --secret-key secret.key -o extra.bundle
assert_contains "$OUT" "'stray' is not declared"
rm assets/hello.txt
expect_exit 2 create "$manifest" --secrets secrets.env --secret-key secret.key -o x.bundle
assert_contains "$OUT" "assets[1].file: 'hello.txt' (asset 'readme') is not in 'assets'"
echo hello >assets/hello.txt
sed 's/^  name: testlab$/  name: testlab\n  colour: blue/' "$manifest" >bad.yaml
expect_exit 2 create bad.yaml --secrets secrets.env --secret-key secret.key -o x.bundle
assert_contains "$OUT" "bad.yaml:"
assert_contains "$OUT" "cluster: unknown key 'colour'"
sed 's/root_password: {secret: root_password}/root_password: hunter2/' "$manifest" >clear.yaml
expect_exit 2 create clear.yaml --secrets secrets.env --secret-key secret.key -o x.bundle
assert_contains "$OUT" "clear text"
[ ! -e x.bundle ] || fail "a refused create left x.bundle"
echo "t-bundle-secrets: all checks passed"
