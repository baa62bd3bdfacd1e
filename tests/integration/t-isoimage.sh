#!/bin/bash
# ISO images of lib/guests/isoimage.c, as build/tests/harness/guest-seed
# writes them, read by tools that share no code with our writer's use of
# libisofs' options: blkid (util-linux: type and label, what udev's
# /dev/disk/by-label and cloud-init's NoCloud look for) and xorriso (the
# volume descriptor, the Rock Ridge tree and the Joliet tree, extraction).
# - a seed (volume id "cidata": user-data, meta-data, network-config) with
#   a 6 MiB mostly sparse asset: names kept in both trees, owner 0:0, modes
#   0444 and 0555, every timestamp the given one, each file extracted equal
#   to its source, byte for byte;
# - the same input written again later, from sources with other times and
#   modes: the same bytes (and SHA-256); another mtime: other bytes;
# - the assets ISO's label "DEVOPSLAB";
# - refusals: a bad name, a missing file, a bad volume id; no image and no
#   temporary file is left behind.
# Not checked here: files of 4 GiB and more (several extents at ISO level
# 3; writing one would cost this machine gigabytes), the kernel's isofs
# reading the image (t-guest-payload.sh mounts one where the kernel can).
. "$TOP/tests/lib.sh"
cd "$TESTTMP"
export TZ=UTC # xorriso lists times in local time

command -v xorriso >/dev/null || skip "no xorriso (scripts/install-deps.sh)"
case $DEVOPSLAB in
"$TOP"/provisioner/*) build=$TOP/build ;;
*) build=$(dirname "$DEVOPSLAB") ;;
esac
SEED=$build/tests/harness/guest-seed
[ -x "$SEED" ] || fail "no $SEED (make tests)"
MTIME=1700000000 # 2023-11-14 22:13:20 UTC

mkdir src
"$SEED" docs src --user ops --key "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBsYWNlaG9sZGVy ops@lab"
# 6 MiB: holes, random blocks in between, a marked end
truncate -s 6M src/images.tar.zst
for off in 0 1000 3000 6000; do
	head -c 65536 /dev/urandom | dd of=src/images.tar.zst bs=1024 seek=$off conv=notrunc status=none
done
printf 'END' >>src/images.tar.zst
files="user-data meta-data network-config images.tar.zst"
args() { for f in $files; do printf '%s=src/%s\n' "$f" "$f"; done; }
mapfile -t ARGS < <(args)

"$SEED" iso seed.iso cidata $MTIME "${ARGS[@]}"
[ -s seed.iso ] || fail "no seed.iso"
ls -A | grep -q tmp && fail "a temporary file was left: $(ls -A)"

# ---- blkid: what udev and cloud-init's NoCloud see ---------------------------
assert_eq iso9660 "$(blkid -p -o value -s TYPE seed.iso)" "blkid TYPE"
assert_eq cidata "$(blkid -p -o value -s LABEL seed.iso)" "blkid LABEL"

# ---- xorriso: the primary volume descriptor ----------------------------------
xorriso -indev seed.iso -pvd_info >pvd.txt 2>&1
assert_contains pvd.txt "Volume Id    : cidata"
assert_contains pvd.txt "Creation Time: 2023111422132000"
assert_contains pvd.txt "Modif. Time  : 2023111422132000"

# ---- the Rock Ridge tree and the Joliet tree: names, owners, modes, times ------
list() { # -read_fs MODE -> "mode uid gid size date name" lines
	xorriso -read_fs "$1" -indev seed.iso -find / -exec lsdl 2>/dev/null |
		awk '{ print $1, $3, $4, $5, $6, $7, $8, $9 }' | sort
}
size() { stat -c %s "src/$1"; }
{
	echo "-r--r--r-- 0 0 $(size images.tar.zst) Nov 14 2023 '/images.tar.zst'"
	echo "-r--r--r-- 0 0 $(size meta-data) Nov 14 2023 '/meta-data'"
	echo "-r--r--r-- 0 0 $(size network-config) Nov 14 2023 '/network-config'"
	echo "-r--r--r-- 0 0 $(size user-data) Nov 14 2023 '/user-data'"
	echo "dr-xr-xr-x 0 0 0 Nov 14 2023 '/'"
} | sort >want-rr.txt
list any >got-rr.txt
diff -u want-rr.txt got-rr.txt || fail "Rock Ridge tree"
# Joliet has no POSIX modes (xorriso shows r-x for all), but the same names
list norock | awk '{ print $NF }' >got-joliet.txt
awk '{ print $NF }' want-rr.txt >want-joliet.txt
diff -u want-joliet.txt got-joliet.txt || fail "Joliet tree"

# ---- extraction: every file equal to its source ------------------------------
xorriso -osirrox on -indev seed.iso -extract / out >extract.log 2>&1 || { cat extract.log; fail "xorriso -extract"; }
for f in $files; do cmp "src/$f" "out/$f" || fail "$f differs after extraction"; done

# ---- determinism ------------------------------------------------------------
sleep 1
touch -d '2001-02-03 04:05:06' src/*
chmod 600 src/images.tar.zst
"$SEED" iso again.iso cidata $MTIME "${ARGS[@]}"
cmp seed.iso again.iso || fail "the same input gave other bytes"
assert_eq "$(sha256sum <seed.iso)" "$(sha256sum <again.iso)" "SHA-256"
"$SEED" iso later.iso cidata $((MTIME + 60)) "${ARGS[@]}"
! cmp -s seed.iso later.iso || fail "another mtime gave the same bytes"

# ---- the assets ISO's label ------------------------------------------------------
"$SEED" iso assets.iso DEVOPSLAB $MTIME images.tar.zst=src/images.tar.zst
assert_eq DEVOPSLAB "$(blkid -p -o value -s LABEL assets.iso)" "assets LABEL"

# ---- refusals, and nothing left behind --------------------------------------------
mkdir refused && cd refused
expect_exit 1 "$SEED" iso x.iso cidata $MTIME ../user-data=../src/user-data
assert_contains "$OUT" "not a file name"
expect_exit 1 "$SEED" iso x.iso cidata $MTIME user-data=../src/nonexistent
assert_contains "$OUT" "No such file"
expect_exit 1 "$SEED" iso x.iso ci-data $MTIME
[ -z "$(ls -A)" ] || fail "left behind: $(ls -A)"
echo "ok: blkid and xorriso read the images as meant; the same input, the same bytes"
