#!/bin/bash
# End to end under QEMU (TCG): the boot image refuses, shows the documented
# error on the console and stops in a rescue shell without rebooting, when
#   - the bundle is signed with another key than the image's ("wrong key")
#   - the bundle is corrupt (4 bytes changed)
#   - no manifest node has this machine's MAC ("unknown MAC")
# and, booted netboot on UEFI (OVMF's own PXE client: shim → signed network
# GRUB over TFTP), it fetches and verifies a good bundle.
# Each guest netboots; the bundle URL is the only difference (iPXE scripts
# written next to boot.ipxe).
# sanitizer: skip
# alone: boots QEMU guests (TCG: one busy host thread each)
# timeout: 1800
. "$TOP/tests/lib.sh"
. "$TOP/tests/e2e/lib.sh"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"

e2e_setup
e2e_httpd
base=http://10.0.2.2:$E2E_HTTP_PORT
e2e_build --bundle-url "$base/good.tar.zst" --timeout 1 --cmdline "--- no_timer_check"
for b in wrongkey corrupt; do
	sed "s|$base/good.tar.zst|$base/$b.tar.zst|" "$OUT/pxe/boot.ipxe" >"$OUT/pxe/$b.ipxe"
	grep -q "$b.tar.zst" "$OUT/pxe/$b.ipxe" || fail "$b.ipxe: URL not replaced"
done

# One guest at a time (t-e2e-boot.sh says why).
for vm in wrongkey corrupt; do
	e2e_boot $vm pxe-bios --pxe "$OUT/pxe" --bootfile $vm.ipxe --mac 52:54:00:0a:00:0$([ $vm = wrongkey ] && echo 2 || echo 3)
	e2e_wait $vm 'devopslab: ERROR: '
	e2e_assert $vm "devopslab: error: bundle verification failed: "
	e2e_assert $vm "devopslab: ERROR: bundle verification failed (exit 4): the bundle is not trusted and was not used"
	e2e_console $vm | grep -a 'identified node' >/dev/null && fail "$vm: an unverified bundle was used"
	e2e_assert_rescue $vm
	e2e_stop $vm
done

e2e_boot unknown pxe-bios --pxe "$OUT/pxe" --mac 52:54:00:0a:00:99
e2e_wait unknown 'devopslab: ERROR: '
e2e_assert unknown "devopslab: bundle verified: 10 members"
e2e_assert unknown "devopslab: error: unknown machine: no manifest node matches this machine (MACs 52:54:00:0a:00:99 (eth0); "
e2e_assert unknown "devopslab: ERROR: refused by a safety policy (exit 3)"
e2e_assert_rescue unknown
e2e_stop unknown

e2e_boot uefi-pxe pxe-uefi --pxe "$OUT/pxe" --mac 52:54:00:0a:00:02 --nvme-serial E2E-UEFIPXE-02
e2e_wait uefi-pxe 'devopslab: ERROR: '
e2e_assert uefi-pxe "devopslab: bundle verified: 10 members"
e2e_assert uefi-pxe "devopslab: identified node devops-node-02 by MAC 52:54:00:0a:00:02 (eth0)"
e2e_assert uefi-pxe "serial 'E2E-UEFIPXE-02'"
e2e_assert_rescue uefi-pxe
e2e_stop uefi-pxe
echo "e2e refusals: all checks passed"
