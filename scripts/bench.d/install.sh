#!/bin/bash
# install: extraction of the Debian-only rootfs (out/rootfs, `make rootfs`)
# with the install's policy (extract.c, EXTRACT_POLICY_ROOTFS: owners,
# modes, links, devices, xattrs) against `tar --zstd -x --xattrs` into
# the same file system: time ratio (target <= 1.1) and our peak RSS (target
# <= 32 MB). The whole install in QEMU is measured by the image's e2e bench.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
rootfs=${ROOTFS:-$TOP/out/rootfs/debian-13-rootfs.tar.zst}
if [ ! -f "$rootfs" ]; then
	echo "install: skipped: no $rootfs (run make rootfs first)"
	exit 0
fi
cd "$BENCHTMP"
# shellcheck disable=SC2046
cc -O2 -std=gnu11 -I"$TOP/provisioner/basic" -I"$TOP/provisioner/lib" -o extract-rootfs \
	"$TOP/scripts/bench.d/extract-rootfs.c" "$TOP/build/libdevopslab.a" \
	$(pkg-config --libs libarchive libcrypto) -lcrypt
cat "$rootfs" >/dev/null # warm the page cache for both
mkdir ours tar
t0=$(date +%s%N)
/usr/bin/time -f '%M' -o rss.txt ./extract-rootfs "$rootfs" ours
t1=$(date +%s%N)
tar --zstd -xf "$rootfs" --xattrs --xattrs-include='*' --numeric-owner -C tar
t2=$(date +%s%N)
ours_ms=$(((t1 - t0) / 1000000)) tar_ms=$(((t2 - t1) / 1000000))
echo "install: $(stat -c %s "$rootfs") bytes compressed, $(du -sb ours | cut -f1) bytes extracted"
echo "install: extract ${ours_ms} ms, zstd|tar ${tar_ms} ms"
$PY -c 'import sys; print("install: extract time / zstd|tar time = %.2f (target <= 1.1)" % (int(sys.argv[1]) / max(1, int(sys.argv[2]))))' "$ours_ms" "$tar_ms"
echo "install: peak RSS of the extraction = $(($(cat rss.txt) / 1024)) MiB (target <= 32 MB)"
# the same tree: names, types, modes, owners, sizes, link counts
(cd ours && find . -printf '%p %y %m %U %G %s %n\n' | sort) >ours.txt
(cd tar && find . -printf '%p %y %m %U %G %s %n\n' | sort) >tar.txt
if cmp -s ours.txt tar.txt; then echo "install: trees identical ($(wc -l <ours.txt) entries)"; else
	echo "install: trees DIFFER:"; diff ours.txt tar.txt | head -20; fi
