#!/bin/bash
# End to end under QEMU (TCG): build the boot image (Debian's signed kernel,
# our initramfs, the hybrid ISO, the netboot tree) with a test key and a
# bundle made from examples/homelab.yaml, then boot it the ways a mini PC
# does, each with a blank NVMe (serial set) and a NIC whose MAC is a node's:
#   uefi-sb-cd  ISO as CD, UEFI with Secure Boot on (OVMF secboot + MS keys):
#               shim → signed GRUB → signed kernel; the kernel says so
#   bios-cd     ISO as CD, SeaBIOS
#   bios-usb    the ISO as a USB stick (xHCI, usb-storage), SeaBIOS
#   pxe-bios    SeaBIOS + iPXE + QEMU's TFTP; the bundle fetched by URL; new
#               hardware: a MAC in no manifest entry, the box's own boot script
#               (as a PXE server gives per MAC) says devopslab.node=
# and each must show on the serial console: the provisioner started, the
# bundle verified, the node identified by its MAC (or taken as the node the
# command line names, its NIC chosen by its link), the NVMe with its serial,
# then, as the example manifest is not unattended, the refusal to write
# without confirmation (the NVMe checked blank) and a rescue shell (no
# reboot loop). The whole install: t-e2e-install.sh.
# Refusals (wrong key, corrupt bundle, unknown MAC): t-e2e-refusals.sh.
# sanitizer: skip
# alone: boots QEMU guests (TCG: one busy host thread each)
# timeout: 1800
. "$TOP/tests/lib.sh"
. "$TOP/tests/e2e/lib.sh"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"

e2e_setup
e2e_httpd
url=http://10.0.2.2:$E2E_HTTP_PORT/good.tar.zst
e2e_build --bundle "$E2E/www/good.tar.zst" --bundle-url "$url" --timeout 1 \
	--cmdline "devopslab.secret_key=$(cat "$E2E/secret.key") --- no_timer_check"
for f in devopslab.iso initrd.img pxe/vmlinuz pxe/initrd.img pxe/boot.ipxe pxe/bootx64.efi pxe/grubx64.efi \
	pxe/grub/grub.cfg pxe/dnsmasq.conf.example; do
	[ -s "$OUT/$f" ] || fail "build: $OUT/$f missing"
done

# The signed digest the console must show: this test's bundle, no other.
sums=$(tar --zstd -xOf "$E2E/www/good.tar.zst" SHA256SUMS | sha256sum | cut -d' ' -f1)
[ ${#sums} = 64 ] || fail "cannot read SHA256SUMS of the test bundle"

# The example manifest does not set cluster.unattended: the install stops
# before its first write, and the NVMe stays blank (checked from here).
check_install() { # NAME NODE MAC SERIAL [new]
	e2e_wait "$1" 'devopslab: provisioner started'
	e2e_wait "$1" 'devopslab: ERROR' 600
	e2e_assert "$1" "devopslab: bundle verified: 10 members"
	e2e_assert "$1" "SHA256SUMS sha256 $sums"
	if [ "${5:-}" = new ]; then
		e2e_assert "$1" "devopslab: warning: new hardware: this machine matches no manifest node (MACs $3 (eth0);"
		e2e_assert "$1" "it is node $2, as the command line says"
		e2e_assert "$1" "devopslab: management NIC: eth0 (MAC $3), the only one with a link"
		e2e_assert "$1" "devopslab:   link           pass        eth0     link up"
	else
		e2e_assert "$1" "devopslab: identified node $2 by MAC $3 (eth0)"
	fi
	e2e_assert "$1" "devopslab: pre-flight: passed"
	e2e_assert "$1" "devopslab: disk nvme0n1: nvme, 20480 MiB, model 'QEMU NVMe Ctrl', serial '$4'"
	e2e_assert "$1" "devopslab: secrets: 6 opened"
	e2e_assert "$1" "Selecting the target disk: already done"
	e2e_assert "$1" "refusing to write to '/dev/nvme0n1' without confirmation (--yes)"
	e2e_assert "$1" "nothing was written: run with --yes, or set cluster.unattended: true"
	e2e_assert "$1" "devopslab: ERROR: refused by a safety policy (exit 3)"
	e2e_assert_rescue "$1"
	# the first and the last MiB (both GPT headers' places) are still zero
	cmp -s -n 1048576 "$E2E/vm-$1/nvme.img" /dev/zero || fail "$1: the NVMe was written to"
	tail -c 1048576 "$E2E/vm-$1/nvme.img" | cmp -s -n 1048576 - /dev/zero || fail "$1: the NVMe's end was written to"
}

# One guest at a time: each is a busy host thread under TCG, and a machine
# whose other core is taken must still give every guest a whole core.
e2e_boot uefi-sb uefi-sb-cd --mac 52:54:00:0a:00:01 --nvme-serial E2E-SB-0001
check_install uefi-sb devops-node-01 52:54:00:0a:00:01 E2E-SB-0001
e2e_assert uefi-sb "devopslab: kernel: secureboot: Secure boot enabled"
e2e_assert uefi-sb "devopslab: kernel lockdown: none [integrity] confidentiality"
e2e_assert uefi-sb "devopslab: bundle: /run/devopslab/medium/devopslab/bundle.tar.zst (on /dev/sr0)"
e2e_stop uefi-sb
e2e_boot bios-cd bios-cd --mac 52:54:00:0a:00:02 --nvme-serial E2E-CD-0002
check_install bios-cd devops-node-02 52:54:00:0a:00:02 E2E-CD-0002
e2e_stop bios-cd

e2e_boot usb bios-usb --mac 52:54:00:0a:00:03 --nvme-serial E2E-USB-0003
check_install usb devops-node-03 52:54:00:0a:00:03 E2E-USB-0003
e2e_console usb | grep -aE 'devopslab: bundle: /run/devopslab/medium/devopslab/bundle.tar.zst \(on /dev/sd[a-z]1?\)' >/dev/null ||
	fail "usb: the bundle was not found on the USB stick"
e2e_stop usb
# New hardware for node 1 over PXE: its own iPXE script adds devopslab.node=.
sed 's|^kernel .*|& devopslab.node=devops-node-01|' "$OUT/pxe/boot.ipxe" >"$OUT/pxe/new-node-01.ipxe"
grep -q 'devopslab.node=devops-node-01$' "$OUT/pxe/new-node-01.ipxe" || fail "new-node-01.ipxe not derived"
e2e_boot pxe pxe-bios --pxe "$OUT/pxe" --bootfile new-node-01.ipxe --mac 52:54:00:0b:00:01 --nvme-serial E2E-PXE-0001
check_install pxe devops-node-01 52:54:00:0b:00:01 E2E-PXE-0001 new
e2e_assert pxe "devopslab: fetching the bundle from $url"
e2e_assert pxe "devopslab: fetched $(stat -c %s "$E2E/www/good.tar.zst") bytes in 1 attempt"
assert_contains "$E2E/httpd.log" '"GET /good.tar.zst HTTP/1.1" 200'
e2e_stop pxe
echo "e2e boot: all checks passed"
