#!/bin/bash
# bundle: `bundle verify` of a bundle holding a 2 GB asset — throughput as a
# ratio to `sha256sum` of the same bundle file (both read every byte once;
# verify also decompresses zstd and parses tar), and peak RSS (target
# <= 32 MB: verification streams). The asset is random (incompressible), so
# the bundle is ~2 GB too. Needs ~4 GB free in $BENCHTMP.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
cd "$BENCHTMP"
"$TOP/scripts/example-inputs.sh" "$TOP/tests/data/bundle/manifest.yaml" in >/dev/null
rm -f in/assets/images/disk.img
mkdir -p in/assets/images
openssl enc -aes-128-ctr -pass pass:bench -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 2000000000 >in/assets/images/disk.img
"$DEVOPSLAB" bundle create --manifest "$TOP/tests/data/bundle/manifest.yaml" --assets in/assets \
	--key in/signing.key --secrets in/secrets.env --secret-key in/secret.key -o big.bundle >/dev/null
rm -f in/assets/images/disk.img
size=$(stat -c %s big.bundle)
cat big.bundle >/dev/null # warm the page cache for both
t0=$(date +%s%N); sha256sum big.bundle >/dev/null; t1=$(date +%s%N)
/usr/bin/time -f '%M' -o rss.txt "$DEVOPSLAB" bundle verify --pubkey in/signing.pub big.bundle >/dev/null
t2=$(date +%s%N)
sha_ms=$(((t1 - t0) / 1000000)) ver_ms=$(((t2 - t1) / 1000000))
echo "bundle: $size bytes; sha256sum ${sha_ms} ms ($((size / 1000 / (sha_ms > 0 ? sha_ms : 1))) MB/s), bundle verify ${ver_ms} ms ($((size / 1000 / (ver_ms > 0 ? ver_ms : 1))) MB/s)"
$PY -c 'import sys; print("bundle: verify time / sha256sum time = %.2f (1.0 = as fast as sha256sum)" % (int(sys.argv[2]) / max(1, int(sys.argv[1]))))' "$sha_ms" "$ver_ms"
echo "bundle: peak RSS of bundle verify = $(($(cat rss.txt) / 1024)) MiB (target <= 32 MB)"
