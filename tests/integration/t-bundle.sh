#!/bin/bash
# bundle create / verify / extract: round trip, reproducibility,
# interoperability with the openssl command line in both directions, and
# refusal (exit 4, naming the member) of every kind of tampering: a changed
# byte in each member, a missing, extra or duplicated member, a wrong key,
# a truncated bundle. Bundles are taken apart and rebuilt with
# tests/integration/bundletool.py (Python's tarfile), not with our code.
. "$TOP/tests/lib.sh"

BT="$PY $TOP/tests/integration/bundletool.py"
cd "$TESTTMP"

# Keys: a fresh signing key and a second "wrong" one, made for this run.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
openssl pkey -in key.pem -pubout -out pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.pem 2>/dev/null
openssl pkey -in other.pem -pubout -out other.pub
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem 2>/dev/null
openssl pkey -in p384.pem -pubout -out p384.pub

manifest=$TOP/tests/data/bundle/manifest.yaml
mkdir -p assets/images
printf 'hello\n' >assets/hello.txt
head -c 300000 /dev/urandom >assets/images/disk.img
: >assets/empty
# The manifest declares two secrets; bundle create refuses without values.
printf 'root_password=%s\nk3s_token=%s\n' "$(openssl rand -hex 12)" "$(openssl rand -hex 12)" >secrets.env
openssl rand -hex 32 >secret.key
SEC=(--secrets secrets.env --secret-key secret.key)

# --- create and verify ---------------------------------------------------------
expect_exit 0 "$DEVOPSLAB" bundle create --manifest "$manifest" --assets assets --key key.pem "${SEC[@]}" -o b.bundle
assert_contains "$OUT" "b.bundle: 5 members (manifest, secrets, 3 assets)"
expect_exit 0 "$DEVOPSLAB" bundle verify --pubkey pub.pem b.bundle
assert_contains "$OUT" "b.bundle: OK: signature valid, 5 members"

# The layout: SHA256SUMS, its signature, the manifest, then sorted assets.
mkdir u && $BT unpack b.bundle u
assert_eq "SHA256SUMS SHA256SUMS.sig manifest.yaml secrets.enc assets/empty assets/hello.txt assets/images/disk.img" \
	"$(tr '\n' ' ' <u/.order | sed 's/ $//')" "member order"
cmp u/manifest.yaml "$manifest" || fail "manifest changed in the bundle"
cmp u/assets/images/disk.img assets/images/disk.img || fail "asset changed in the bundle"
# SHA256SUMS is sha256sum(1)'s own format ...
(cd u && sha256sum --strict --quiet -c SHA256SUMS) || fail "sha256sum -c SHA256SUMS failed"
# ... and our signature is what `openssl dgst -sha256 -sign` makes.
openssl dgst -sha256 -verify pub.pem -signature u/SHA256SUMS.sig u/SHA256SUMS >/dev/null ||
	fail "openssl dgst -verify rejects our signature"

# Reproducible: a second create gives the same members and metadata; with
# OpenSSL >= 3.2 (RFC 6979 nonces) even the same bytes.
SOURCE_DATE_EPOCH=0 "$DEVOPSLAB" bundle create --manifest "$manifest" --assets assets --key key.pem "${SEC[@]}" -o b2.bundle >/dev/null
mkdir u2 && $BT unpack b2.bundle u2
# (secrets.enc has a random nonce, so its line in SHA256SUMS differs.)
assert_eq "$(grep -v ' secrets.enc$' u/SHA256SUMS)" "$(grep -v ' secrets.enc$' u2/SHA256SUMS)" "SHA256SUMS of two creates"
for f in manifest.yaml assets/empty assets/hello.txt assets/images/disk.img; do
	cmp "u/$f" "u2/$f" || fail "member $f differs between two creates"
done
list() { tar --zstd -tvf "$1" | grep -v 'SHA256SUMS.sig$'; }
assert_eq "$(list b.bundle)" "$(list b2.bundle)" "tar metadata of two creates"
assert_contains "$(list b.bundle)" "-rw-r--r-- 0/0"

# --- interoperability: a bundle signed by the openssl command line --------------
mkdir cli && cp -r assets cli/ && cp "$manifest" cli/manifest.yaml
(cd cli && find assets -type f | LC_ALL=C sort | xargs sha256sum manifest.yaml | LC_ALL=C sort -k2 >SHA256SUMS)
openssl dgst -sha256 -sign key.pem -out cli/SHA256SUMS.sig cli/SHA256SUMS
specs=(file:SHA256SUMS=cli/SHA256SUMS file:SHA256SUMS.sig=cli/SHA256SUMS.sig file:manifest.yaml=cli/manifest.yaml)
for f in assets/empty assets/hello.txt assets/images/disk.img; do specs+=("file:$f=cli/$f"); done
$BT pack cli.bundle "${specs[@]}"
expect_exit 0 "$DEVOPSLAB" bundle verify --pubkey pub.pem cli.bundle
assert_contains "$OUT" "OK: signature valid, 4 members"
# The same, uncompressed, is accepted too (the signature covers contents, not encoding).
$BT pack --raw-tar cli.tar "${specs[@]}"
expect_exit 0 "$DEVOPSLAB" bundle verify --pubkey pub.pem cli.tar

# --- tampering: rebuild the bundle with one change, expect exit 4 ---------------
# repack OUT [EXTRA SPEC...]: the members of u/ in order (minus $SKIP), then extras
repack() {
	local out=$1; shift
	local s=() m
	while read -r m; do
		[ "$m" = "${SKIP:-}" ] && continue
		s+=("file:$m=t/$m")
	done <u/.order
	$BT pack "$out" "${s[@]}" "$@"
}
refused() { # what bundle needle
	expect_exit 4 "$DEVOPSLAB" bundle verify --pubkey pub.pem "$2"
	assert_contains "$OUT" "failed verification"
	assert_contains "$OUT" "$3"
	echo "ok: $1 refused: $(echo "$OUT" | tail -n1)"
}
fresh() { rm -rf t && cp -r u t; }

fresh && repack same.bundle
expect_exit 0 "$DEVOPSLAB" bundle verify --pubkey pub.pem same.bundle # the rebuild itself is faithful

fresh && $BT flip t/manifest.yaml 3 && repack t1.bundle
refused "manifest byte" t1.bundle "member 'manifest.yaml': SHA-256 does not match"
fresh && $BT flip t/assets/images/disk.img -1 && repack t2.bundle
refused "asset byte" t2.bundle "member 'assets/images/disk.img': SHA-256 does not match"
fresh && $BT flip t/SHA256SUMS 70 && repack t3.bundle
refused "SHA256SUMS byte" t3.bundle "SHA256SUMS.sig: signature does not match"
fresh && $BT flip t/SHA256SUMS.sig -2 && repack t4.bundle
refused "signature byte" t4.bundle "SHA256SUMS.sig:"
fresh && SKIP=assets/hello.txt repack t5.bundle
refused "missing member" t5.bundle "member 'assets/hello.txt' is listed in SHA256SUMS but missing"
fresh && echo extra >t/extra && repack t6.bundle file:assets/extra=t/extra
refused "extra member" t6.bundle "member 'assets/extra' is not listed in SHA256SUMS (extra member)"
fresh && repack t7.bundle file:assets/hello.txt=t/assets/hello.txt
refused "duplicate member" t7.bundle "member 'assets/hello.txt' appears twice"
fresh && SKIP=SHA256SUMS.sig repack t8.bundle
refused "missing signature" t8.bundle "'SHA256SUMS.sig' must come"
fresh && $BT pack t9.bundle file:SHA256SUMS.sig=t/SHA256SUMS.sig file:SHA256SUMS=t/SHA256SUMS
refused "members out of order" t9.bundle "'SHA256SUMS' must come"
fresh && repack t10.bundle symlink:assets/link=hello.txt
refused "extra symlink" t10.bundle "member 'assets/link' is not listed"
# an empty signature, and one that is too long
fresh && : >t/SHA256SUMS.sig && repack t11.bundle
refused "empty signature" t11.bundle "SHA256SUMS.sig"

expect_exit 4 "$DEVOPSLAB" bundle verify --pubkey other.pub b.bundle
assert_contains "$OUT" "SHA256SUMS.sig: signature does not match"

size=$(stat -c %s b.bundle)
head -c $((size / 2)) b.bundle >trunc.bundle
expect_exit 4 "$DEVOPSLAB" bundle verify --pubkey pub.pem trunc.bundle
assert_contains "$OUT" "failed verification"
head -c 100 /dev/urandom >junk.bundle
expect_exit 4 "$DEVOPSLAB" bundle verify --pubkey pub.pem junk.bundle
: >empty.bundle
expect_exit 4 "$DEVOPSLAB" bundle verify --pubkey pub.pem empty.bundle
gzip -c u/SHA256SUMS >gz.bundle
expect_exit 4 "$DEVOPSLAB" bundle verify --pubkey pub.pem gz.bundle

# --- bad input: exit 2 -----------------------------------------------------------
expect_exit 2 "$DEVOPSLAB" bundle verify --pubkey p384.pub b.bundle
assert_contains "$OUT" "only P-256"
expect_exit 2 "$DEVOPSLAB" bundle verify --pubkey pub.pem no-such.bundle
expect_exit 2 "$DEVOPSLAB" bundle verify b.bundle
expect_exit 2 "$DEVOPSLAB" bundle create --manifest "$manifest" --assets assets --key p384.pem "${SEC[@]}" -o x.bundle
assert_contains "$OUT" "only P-256"
expect_exit 2 "$DEVOPSLAB" bundle create --manifest "$manifest" --assets assets --key pub.pem "${SEC[@]}" -o x.bundle
expect_exit 2 "$DEVOPSLAB" bundle create --manifest "$manifest" --assets assets "${SEC[@]}" -o x.bundle
ln -s hello.txt assets/link
expect_exit 2 "$DEVOPSLAB" bundle create --manifest "$manifest" --assets assets --key key.pem "${SEC[@]}" -o x.bundle
assert_contains "$OUT" "'link' is a symlink"
rm assets/link
[ ! -e x.bundle ] || fail "a refused create left x.bundle behind"
[ -z "$(find . -maxdepth 1 -name '.x.bundle.*')" ] || fail "a refused create left a temporary file"

# --- extract: verified members land in a new directory, or nothing does ---------------
expect_exit 0 "$DEVOPSLAB" bundle extract --pubkey pub.pem b.bundle out
cmp out/assets/images/disk.img assets/images/disk.img || fail "extracted asset differs"
cmp out/manifest.yaml "$manifest" || fail "extracted manifest differs"
assert_eq "644" "$(stat -c %a out/assets/hello.txt)" "mode of an extracted file"
expect_exit 2 "$DEVOPSLAB" bundle extract --pubkey pub.pem b.bundle out
assert_contains "$OUT" "already exists"
expect_exit 4 "$DEVOPSLAB" bundle extract --pubkey pub.pem t2.bundle out2
[ ! -e out2 ] || fail "a refused extract left out2 behind"
[ -z "$(ls -A | grep staging || true)" ] || fail "a refused extract left its staging directory"
echo "t-bundle: all checks passed"
