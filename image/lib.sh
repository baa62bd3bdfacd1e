# image/lib.sh — sourced by the image/*.sh build steps.
# Everything is built as an unprivileged-style file operation: no loop
# devices, no mounts (the build host's kernel has neither vfat nor iso9660).
# Reproducibility: every timestamp is SOURCE_DATE_EPOCH, every listing is
# sorted with LC_ALL=C, every owner is 0:0.
set -euo pipefail
export LC_ALL=C TZ=UTC
: "${TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${OUT:=$TOP/out}"
: "${CACHE:=$OUT/cache}"
# Default epoch: the last commit's date, so a plain `make image` is
# reproducible too; 2024-01-01 outside a git checkout.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$TOP" log -1 --format=%ct 2>/dev/null || echo 1704067200)
fi
export SOURCE_DATE_EPOCH TOP OUT CACHE

msg() { echo "image: $*" >&2; }
die() { echo "image: error: $*" >&2; exit 1; }

# Fix every mtime under DIR (symlinks themselves included).
fix_mtimes() {
	find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# The kernel version unpacked by image/kernel.sh.
kernel_version() {
	cat "$CACHE/kernel/version" 2>/dev/null || die "no kernel in $CACHE/kernel (run image/kernel.sh)"
}
