#!/bin/bash
# The payload script that lib/guests/cloudinit.c puts in a VM's user data,
# taken out of the user data build/tests/harness/guest-seed writes (PyYAML
# reads it as cloud-init does) and run with Debian's /bin/sh (dash) as
# cloud-init's runcmd runs it, against an assets ISO written by
# lib/guests/isoimage.c, inside a private mount namespace (its own /dev
# with only /dev/null and /dev/disk/by-label/DEVOPSLAB, its own /run), with
# guest paths under $TESTTMP:
# - every file right: each installed at its path (directories made) with
#   its mode and bytes, exit 0, nothing left at a temporary name; a second
#   run converges to the same;
# - one file with another SHA-256 than the list says, one missing from the
#   ISO, one right: exit 1, each problem named, the right one installed,
#   the wrong one nowhere (neither at its path nor at a temporary name),
#   an older file at the wrong one's path left as it was;
# - in both, the ISO mounted read-only by label, then unmounted and its
#   mount point removed.
# Where the kernel reads ISO 9660 (/proc/filesystems, or modprobe isofs),
# the image is mounted for real from a read-only loop device; elsewhere
# mount(8) and umount(8) are stand-ins that extract the image with xorriso
# (and the test prints a NOTE). Not checked: the 30 s wait for a device
# that never appears.
. "$TOP/tests/lib.sh"
cd "$TESTTMP"

[ "$(id -u)" = 0 ] || skip "needs root (a mount namespace, device nodes)"
unshare -m true 2>/dev/null || skip "no mount namespaces here"
command -v xorriso >/dev/null || skip "no xorriso (scripts/install-deps.sh)"
case $DEVOPSLAB in
"$TOP"/provisioner/*) build=$TOP/build ;;
*) build=$(dirname "$DEVOPSLAB") ;;
esac
SEED=$build/tests/harness/guest-seed
[ -x "$SEED" ] || fail "no $SEED (make tests)"
T=$TESTTMP

# ---- the assets and their ISO -------------------------------------------------------
mkdir assets
head -c 200000 /dev/urandom >assets/k3s
printf '#!/bin/sh\necho install\n' >assets/install.sh
truncate -s 2M assets/images.tar.zst
printf 'END' >>assets/images.tar.zst
echo "not what the manifest says" >assets/evil
"$SEED" iso assets.iso DEVOPSLAB 1700000000 k3s=assets/k3s install.sh=assets/install.sh \
	images.tar.zst=assets/images.tar.zst evil=assets/evil
sha() { sha256sum "assets/$1" | cut -d' ' -f1; }

# ---- the script and its list, out of the user data ------------------------------------
# seed DIR --file ...: the user data's payload.sh and payload.list in DIR
seed() {
	local dir=$1; shift
	mkdir -p "$dir"
	"$SEED" docs "$dir" "$@"
	"$PY" - "$dir" <<'PYEOF'
import sys, yaml
d = sys.argv[1]
ud = yaml.safe_load(open(d + "/user-data"))
files = {f["path"]: f for f in ud["write_files"]}
open(d + "/payload.sh", "w").write(files["/usr/local/lib/devopslab/payload.sh"]["content"])
open(d + "/payload.list", "w").write(files["/usr/local/lib/devopslab/payload.list"]["content"])
cmd = ud["runcmd"][0]
assert cmd[:3] == ["/bin/sh", "/usr/local/lib/devopslab/payload.sh", "DEVOPSLAB"], cmd
PYEOF
}
G=$T/guest
seed good --file "k3s:$G/usr/local/bin/k3s:$(sha k3s):755" \
	--file "install.sh:$G/usr/local/lib/devopslab/k3s-install.sh:$(sha install.sh):700" \
	--file "images.tar.zst:$G/var/lib/rancher/k3s/agent/images/images.tar.zst:$(sha images.tar.zst):644"
# evil's bytes under k3s's name and digest; a file the ISO does not have
seed bad --file "evil:$G/bad/usr/local/bin/k3s:$(sha k3s):755" \
	--file "absent:$G/bad/etc/absent:$(sha k3s):644" \
	--file "install.sh:$G/bad/usr/local/lib/install.sh:$(sha install.sh):700"

# ---- how the ISO is mounted ----------------------------------------------------------
real=0
if grep -qw iso9660 /proc/filesystems || { modprobe isofs 2>/dev/null && grep -qw iso9660 /proc/filesystems; }; then
	real=1
	LOOP=$(losetup -f -r --show assets.iso)
	on_exit "losetup -d '$LOOP'"
	MAJMIN=$(printf '%d %d' "0x$(stat -c %t "$LOOP")" "0x$(stat -c %T "$LOOP")")
else
	echo "NOTE: no iso9660 in this kernel: mount and umount are stand-ins extracting the image with xorriso"
	MAJMIN="7 250"
	mkdir shims
	cat >shims/mount <<EOF
#!/bin/sh
echo "mount \$*" >>"$T/calls"
for mnt; do :; done
xorriso -osirrox on -indev "$T/assets.iso" -extract / "\$mnt" >/dev/null 2>&1 || exit 32
EOF
	cat >shims/umount <<EOF
#!/bin/sh
echo "umount \$*" >>"$T/calls"
case \$1 in /run/devopslab-payload.*) rm -rf "\$1"/* ;; *) exit 1 ;; esac
EOF
	chmod +x shims/mount shims/umount
fi

# run DIR: the script of DIR in its own namespace; DIR/rc, DIR/out, DIR/run (what /run
# holds afterwards), DIR/mounts (ISO 9660 mounts afterwards)
run() {
	local dir=$T/$1
	unshare -m --propagation private /bin/sh -c '
		set -e
		dev=$1/$2.dev
		mkdir -p "$dev/disk/by-label"
		rm -f "$dev/disk/by-label/DEVOPSLAB"
		mknod "$dev/disk/by-label/DEVOPSLAB" b $3
		touch "$dev/null"
		mount --bind /dev/null "$dev/null"
		mount --rbind "$dev" /dev
		mount -t tmpfs tmpfs /run
		set +e
		[ "$4" = 1 ] || PATH=$1/shims:$PATH
		/bin/sh "$1/$2/payload.sh" DEVOPSLAB "$1/$2/payload.list" >"$1/$2/out" 2>&1
		echo $? >"$1/$2/rc"
		ls -A /run >"$1/$2/run"
		grep iso9660 /proc/self/mounts >"$1/$2/mounts" || true
	' sh "$T" "$1" "$MAJMIN" "$real"
	cat "$dir/out"
}
mounted_and_unmounted() { # DIR
	[ ! -s "$T/$1/run" ] || fail "$1: /run keeps $(cat "$T/$1/run")"
	[ ! -s "$T/$1/mounts" ] || fail "$1: still mounted: $(cat "$T/$1/mounts")"
	if [ "$real" = 0 ]; then
		assert_contains "$T/calls" "mount -t iso9660 -o ro,nodev,nosuid,noexec /dev/disk/by-label/DEVOPSLAB /run/devopslab-payload."
		assert_contains "$T/calls" "umount /run/devopslab-payload."
		rm -f "$T/calls"
	fi
}
no_temporaries() {
	local left
	left=$(find "$G" -name '*.devopslab-new')
	[ -z "$left" ] || fail "left at a temporary name: $left"
}

# ---- every file right ------------------------------------------------------------------
run good
assert_eq 0 "$(cat good/rc)" "exit code (good)"
cmp assets/k3s "$G/usr/local/bin/k3s"
cmp assets/install.sh "$G/usr/local/lib/devopslab/k3s-install.sh"
cmp assets/images.tar.zst "$G/var/lib/rancher/k3s/agent/images/images.tar.zst"
assert_eq 755 "$(stat -c %a "$G/usr/local/bin/k3s")" "k3s mode"
assert_eq 700 "$(stat -c %a "$G/usr/local/lib/devopslab/k3s-install.sh")" "install.sh mode"
assert_eq 644 "$(stat -c %a "$G/var/lib/rancher/k3s/agent/images/images.tar.zst")" "images mode"
assert_contains good/out "devopslab-payload: k3s: installed as $G/usr/local/bin/k3s (mode 0755, SHA-256 $(sha k3s))"
no_temporaries
mounted_and_unmounted good
# again: the same result
run good
assert_eq 0 "$(cat good/rc)" "exit code (good, again)"
cmp assets/k3s "$G/usr/local/bin/k3s"
no_temporaries
mounted_and_unmounted good

# ---- a wrong file, a missing one, a right one --------------------------------------
mkdir -p "$G/bad/usr/local/bin"
echo "the old k3s" >"$G/bad/usr/local/bin/k3s"
run bad
assert_eq 1 "$(cat bad/rc)" "exit code (bad)"
assert_contains bad/out "evil: SHA-256 $(sha evil), expected $(sha k3s): $G/bad/usr/local/bin/k3s not installed"
assert_contains bad/out "absent: not on DEVOPSLAB: $G/bad/etc/absent not installed"
assert_eq "the old k3s" "$(cat "$G/bad/usr/local/bin/k3s")" "the file at the wrong one's path"
[ ! -e "$G/bad/etc/absent" ] || fail "the missing file is there"
cmp assets/install.sh "$G/bad/usr/local/lib/install.sh"
no_temporaries
mounted_and_unmounted bad
[ "$real" = 1 ] && echo "ok: the payload script, on the kernel's ISO 9660" || echo "ok: the payload script, with stand-in mounts"
