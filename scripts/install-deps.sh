#!/bin/sh
# Install every Debian package needed to build, test, benchmark and demo
# DevOpsLab.  Idempotent: quiet and fast when everything is present.
# Usage: scripts/install-deps.sh            (as root, on Debian 12 or 13)
set -eu

PKGS="
build-essential pkg-config clang libclang-rt-14-dev llvm
libyaml-dev libjson-c-dev libarchive-dev libcurl4-openssl-dev libssl-dev
libmbedtls-dev libblkid-dev libfdisk-dev libcmocka-dev libisofs-dev libmicrohttpd-dev
openssl zstd xz-utils jq python3 python3-yaml python3-jsonschema python3-cryptography curl
util-linux fdisk lvm2 thin-provisioning-tools dosfstools e2fsprogs
mtools xorriso cpio kmod busybox-static
grub-pc-bin grub-efi-amd64-bin grub-efi-amd64-signed shim-signed grub-common
qemu-system-x86 qemu-utils ovmf ipxe-qemu ipxe
mmdebstrap debian-archive-keyring
iproute2 procps psmisc valgrind time hyperfine
cloud-init netplan.io
knot knot-dnsutils
libcrypt-dev apache2-utils
pebble
ansible-core
chromium tesseract-ocr tesseract-ocr-eng python3-pil fonts-dejavu-core
"

missing=""
for p in $PKGS; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$s" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run as root (or install them) and try again" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
# cloud-init and netplan.io are here for tests/integration/t-cloudinit-schema.sh
# only: `cloud-init schema`, cloud-init's network renderers and netplan's
# generator check the guests' seed documents (docs/guests.md). Installed on
# a build or CI machine, cloud-init would run at that machine's next boot
# and reconfigure it (network, users, SSH host keys) from whatever data
# source it finds; /etc/cloud/cloud-init.disabled, written before the
# package arrives, keeps its systemd generator from ever enabling it. Only
# when cloud-init is about to be installed: a machine that has it already (a
# cloud VM that depends on it) is left as it is. netplan.io's generator
# configures nothing while /etc/netplan holds no file.
case " $missing " in
*" cloud-init "*) mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled ;;
esac
# ansible-core judges the report's Ansible inventory (ansible-inventory --list,
# tests/integration/t-report.sh). chromium renders the live status page in
# tests/integration/t-live.sh; tesseract (OCR) and python3-pil read the
# screenshot back (fonts-dejavu-core: the page's fonts, the same everywhere).
# pebble is Let's Encrypt's ACME test server (bookworm/main; binaries only, no
# service): tests/integration/t-edge.sh orders the edge certificate from it
# with DNS-01 (tests/sim/acme-lib.sh; t-sim-acme.sh checks that harness).
# knot and knot-dnsutils are for the Technitium simulator (tests/sim/
# technitium_sim.py), which runs its own knotd on a loopback port. Debian's
# knot package would start a system knot.service on port 53 of every
# interface: a policy-rc.d that refuses every start is in place while apt
# runs (removed afterwards, unless one was there already), and the service
# is disabled and stopped where systemd runs.
own_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	own_policy=1
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
if [ -d /run/systemd/system ]; then systemctl disable --now knot 2>/dev/null || true; fi
echo "install-deps: done"
