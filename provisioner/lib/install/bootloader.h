/* SPDX-License-Identifier: MIT */
/*
 * bootloader.h — the bootloader step: GRUB onto the target disk for both
 * firmwares, as the Proxmox VE installer does, but only the part that
 * depends on the node (docs/install.md, "Boot loader"). The rest — a generic
 * initramfs, GRUB's modules, the BIOS core image, debconf's fallback-path
 * setting — is made once when the root file system is built
 * (image/rootfs-boot.sh), not in the installer's (possibly emulated) CPU.
 *
 * Step parameters (the plan's): loader "grub", targets ["x86_64-efi",
 * "i386-pc"], esp_partition (2), root_uuid (the root file system's seeded
 * UUID, as in /etc/fstab).
 *
 * apply(), with the target root at ctx->root (the ESP mounted at
 * ROOT/boot/efi) and the disk in ctx->disk (struct disk_step_state):
 *   1. removes the marker (a failed re-run is never "done");
 *   2. writes BOOTLOADER_CFG: GRUB_DISTRIBUTOR and the installer kernel's
 *      console= arguments (grubcfg.h), for update-grub on the node later;
 *   3. refuses, before anything else is touched, a root file system
 *      without the prepared files (core.img, boot.img; the signed shim and
 *      GRUB) and an ESP that is not mounted;
 *   4. bind-mounts /dev, /proc, /sys (with efivars when booted UEFI) and
 *      /run into the root (recursive, then slave, so nothing propagates
 *      back), and unmounts them again at one exit, success or failure;
 *   5. update-initramfs -c only for a kernel without an initramfs (none,
 *      with a root file system from image/rootfs.sh); then the node's
 *      .link files (config-network) in an archive in front of every
 *      initramfs (initrd.h), as Debian's udev hook would have put them in;
 *   6. BIOS: grub-bios-setup writes boot.img into the disk's first sector
 *      and the prepared core.img into the BIOS boot partition;
 *   7. /boot/grub/grub.cfg (grubcfg_menu(): root UUID, kernels, consoles);
 *   8. UEFI: shim (signed by Microsoft's CA), Debian's signed GRUB,
 *      MokManager, fallback, BOOTX64.CSV and the grub.cfg stub into
 *      ESP/EFI/proxmox/, and the fallback path ESP/EFI/BOOT/ (shim as
 *      BOOTX64.EFI), as Debian's grub-install lays them out; a firmware
 *      boot entry "proxmox" via efibootmgr (an older one of that label
 *      removed first) when booted UEFI with efivars and not no_nvram;
 *   9. syncfs(2) of root and ESP, then the marker BOOTLOADER_MARKER
 *      (targets, disk, kernels found in /boot).
 *
 * check() (read-only): done iff the marker says exactly what apply() would
 * record now, BOOTLOADER_CFG and grub.cfg are exactly what it would write,
 * every ESP file has exactly the bytes of its source in the root, GRUB's
 * boot code is in the disk's first sector and /boot/grub/i386-pc/core.img
 * is there, and every /boot/vmlinuz-KVER has its /boot/initrd.img-KVER,
 * starting with exactly the archive of the current .link files (or none).
 *
 * Errors: 0 or -errno, why in ctx->error (a failing command is named with
 * the last line of its stderr).
 */
#pragma once

#include <stdbool.h>

#include "plan/step.h"

#define BOOTLOADER_MARKER "/var/lib/devopslab/bootloader.done"
#define BOOTLOADER_CFG "/etc/default/grub.d/devopslab.cfg"
#define BOOTLOADER_GRUB_CFG "/boot/grub/grub.cfg"
#define BOOTLOADER_EFI_ID "proxmox" /* GRUB_DISTRIBUTOR's first word, lower case: Debian's bootloader id */

#define BOOTLOADER_CMDLINE_MAX 4096u /* bytes of /proc/cmdline we read (x86: 2048) */
#define BOOTLOADER_KERNELS_MAX 16u   /* /boot/vmlinuz-* considered */

/* run_ctx's `boot` slot (optional, owned by the verb or test). */
struct bootloader_opts {
	const char *proc; /* where the installer's cmdline is: PROC/cmdline; NULL = "/proc" */
	bool no_nvram;    /* never write firmware boot entries, even when booted UEFI */
};

extern const struct step_ops bootloader_ops;
