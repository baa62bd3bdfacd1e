#!/bin/bash
# scripts/qemu-boot.sh — boot a DevOpsLab image under QEMU (TCG) the way a
# mini PC would: one blank NVMe with a serial number, one NIC with a given
# MAC, the serial console written to a log file. Used by tests/e2e and by
# `make demo`; prints QEMU's PID when started with --background.
#
#   scripts/qemu-boot.sh --mode MODE [options]
#   MODE: bios-cd | uefi-cd | uefi-sb-cd | bios-usb | uefi-usb | pxe-bios | pxe-uefi
#         bios-disk | uefi-disk | uefi-sb-disk   (boot the installed NVMe, --nvme)
#   --iso FILE          the hybrid ISO (cd and usb modes)        [out/devopslab.iso]
#   --pxe DIR           TFTP root (pxe modes)                     [out/pxe]
#   --bootfile NAME     TFTP boot file                            [boot.ipxe | bootx64.efi]
#   --mac MAC           the NIC's MAC                             [52:54:00:0a:00:01]
#   --nvme-serial S     the blank NVMe's serial                   [DEVOPSLAB-NVME-01]
#   --nvme-size SIZE    its size (sparse)                         [20G]
#   --nvme FILE         use this NVMe image as it is (an installed disk) [a blank one]
#   --login-socket P    a virtio console (hvc0) on a UNIX socket: systemd starts a
#                       getty there, free of kernel and service messages (tests log in)
#   --memory MIB        guest RAM                                 [1024]
#   --log FILE          serial console log (else: the terminal)
#   --workdir DIR       scratch (NVMe image, OVMF VARS copy)      [mktemp]
#   --background        start QEMU in the background, print its PID
#   --interactive       serial console on this terminal (make demo)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mode= iso=$top/out/devopslab.iso pxe=$top/out/pxe bootfile= mac=52:54:00:0a:00:01
nvme_serial=DEVOPSLAB-NVME-01 nvme_size=20G memory=1024 log= workdir= background=0 interactive=0
nvme= sock=
while [ $# -gt 0 ]; do
	case $1 in
	--mode) mode=$2; shift 2 ;;
	--iso) iso=$2; shift 2 ;;
	--pxe) pxe=$2; shift 2 ;;
	--bootfile) bootfile=$2; shift 2 ;;
	--mac) mac=$2; shift 2 ;;
	--nvme-serial) nvme_serial=$2; shift 2 ;;
	--nvme-size) nvme_size=$2; shift 2 ;;
	--nvme) nvme=$2; shift 2 ;;
	--login-socket) sock=$2; shift 2 ;;
	--memory) memory=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--workdir) workdir=$2; shift 2 ;;
	--background) background=1; shift ;;
	--interactive) interactive=1; shift ;;
	*) echo "qemu-boot: unknown option '$1'" >&2; exit 2 ;;
	esac
done
[ -n "$mode" ] || { echo "qemu-boot: --mode is required" >&2; exit 2; }
[ -n "$workdir" ] || workdir=$(mktemp -d /tmp/devopslab-qemu.XXXXXX)
mkdir -p "$workdir"

case $mode in
*-cd | *-usb) [ -f "$iso" ] || { echo "qemu-boot: no ISO '$iso' (make image)" >&2; exit 1; } ;;
pxe-*) [ -d "$pxe" ] || { echo "qemu-boot: no netboot tree '$pxe' (make image)" >&2; exit 1; } ;;
esac
ovmf=/usr/share/OVMF
args=(-machine q35,accel=tcg -cpu max -m "$memory" -smp 1 -display none -no-reboot
	-nodefaults -no-user-config)
if [ "$interactive" = 1 ]; then
	args+=(-serial mon:stdio)
elif [ -n "$log" ]; then
	args+=(-serial "file:$log")
else
	args+=(-serial stdio)
fi

if [ -n "$sock" ]; then
	args+=(-device virtio-serial-pci -chardev "socket,id=hvc0,path=$sock,server=on,wait=off"
		-device virtconsole,chardev=hvc0)
fi

# The blank NVMe the provisioner must find by its serial (or a given one).
if [ -z "$nvme" ]; then
	nvme=$workdir/nvme.img
	truncate -s "$nvme_size" "$nvme"
fi
[ -f "$nvme" ] || { echo "qemu-boot: no NVMe image '$nvme'" >&2; exit 1; }
# cache=unsafe: the guest's NVMe FLUSH does not wait for the host's disk
# (an fdatasync of the image file, measured up to 0.94 s on a loaded machine
# here and unbounded on a slow one, against the guest's 30 s NVMe I/O
# timeout). These images are scratch; a QEMU killed with SIGKILL (the
# tests' power cut) loses nothing it wrote either way: its writes are in
# the host's page cache.
args+=(-drive "if=none,id=nvme0,file=$nvme,format=raw,cache=unsafe"
	-device "nvme,drive=nvme0,serial=$nvme_serial")

uefi() { # CODE VARS [smm]
	cp "$ovmf/$2" "$workdir/vars.fd"
	args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$ovmf/$1"
		-drive "if=pflash,format=raw,unit=1,file=$workdir/vars.fd")
}
nic=(-netdev "user,id=net0" -device "virtio-net-pci,netdev=net0,mac=$mac,romfile=")
case $mode in
bios-cd) args+=(-cdrom "$iso" -boot d) ;;
uefi-cd) uefi OVMF_CODE_4M.fd OVMF_VARS_4M.fd; args+=(-cdrom "$iso") ;;
uefi-sb-cd)
	# Secure Boot on, Microsoft keys enrolled: only the signed chain boots.
	args[1]=q35,accel=tcg,smm=on
	args+=(-global driver=cfi.pflash01,property=secure,value=on)
	uefi OVMF_CODE_4M.secboot.fd OVMF_VARS_4M.ms.fd
	args+=(-cdrom "$iso")
	;;
bios-usb | uefi-usb)
	# The ISO as written with dd to a USB stick, on an xHCI controller.
	cp --reflink=auto "$iso" "$workdir/usb.img"
	[ "$mode" = uefi-usb ] && uefi OVMF_CODE_4M.fd OVMF_VARS_4M.fd
	args+=(-device qemu-xhci,id=xhci -drive "if=none,id=usb0,file=$workdir/usb.img,format=raw"
		-device "usb-storage,bus=xhci.0,drive=usb0,bootindex=1")
	;;
bios-disk) ;;
uefi-disk) uefi OVMF_CODE_4M.fd OVMF_VARS_4M.fd ;;
uefi-sb-disk)
	args[1]=q35,accel=tcg,smm=on
	args+=(-global driver=cfi.pflash01,property=secure,value=on)
	uefi OVMF_CODE_4M.secboot.fd OVMF_VARS_4M.ms.fd
	;;
pxe-bios)
	# SeaBIOS + iPXE (the NIC's default option ROM, ipxe-qemu's
	# efi-virtio.rom) + QEMU's built-in TFTP serving an iPXE script as the
	# boot file.
	nic=(-netdev "user,id=net0,tftp=$pxe,bootfile=${bootfile:-boot.ipxe}"
		-device "virtio-net-pci,netdev=net0,mac=$mac,bootindex=1")
	;;
pxe-uefi)
	# OVMF's own PXE client (no option ROM) fetching shim over TFTP.
	uefi OVMF_CODE_4M.fd OVMF_VARS_4M.fd
	nic=(-netdev "user,id=net0,tftp=$pxe,bootfile=${bootfile:-bootx64.efi}"
		-device "virtio-net-pci,netdev=net0,mac=$mac,romfile=,bootindex=1")
	;;
*) echo "qemu-boot: unknown mode '$mode'" >&2; exit 2 ;;
esac
args+=("${nic[@]}")

if [ "$background" = 1 ]; then
	qemu-system-x86_64 "${args[@]}" </dev/null >"$workdir/qemu.out" 2>&1 &
	echo $!
else
	exec qemu-system-x86_64 "${args[@]}"
fi
