/* SPDX-License-Identifier: MIT */
/*
 * bootloader.h — the bootloader step: GRUB onto the target disk for both
 * firmwares, the way the Proxmox VE installer does it (docs/install.md,
 * "Boot loader").
 *
 * apply(), with the target root at ctx->root (ESP mounted at
 * ROOT/boot/efi) and the disk in ctx->disk (struct disk_step_state):
 *   1. removes the marker (a failed re-run is never "done");
 *   2. writes BOOTLOADER_CFG: GRUB_DISTRIBUTOR and the installer kernel's
 *      console= arguments carried into the installed system (serial
 *      terminal for GRUB too when one is ttyS*), as debian-installer does;
 *   3. bind-mounts /dev, /proc, /sys (with efivars when booted UEFI) and
 *      /run into the root (recursive, then slave, so nothing propagates
 *      back), and unmounts them again at one exit, success or failure;
 *   4. in the root: update-initramfs (-u, or -c when there is no initrd
 *      yet), grub-install --target=i386-pc DISK, update-grub (grub.cfg
 *      does not depend on the EFI part), debconf's
 *      grub2/force_efi_extra_removable, grub-install --target=x86_64-efi
 *      --bootloader-id=proxmox (--no-nvram unless booted UEFI with
 *      efivars), again with --removable (EFI/BOOT/BOOTX64.EFI: firmware
 *      without our boot entry, OVMF);
 *   5. syncfs(2) of root and ESP, then the marker BOOTLOADER_MARKER
 *      (targets, disk, kernels found in /boot).
 * With shim-signed in the root, Debian's grub-install puts shim first
 * (shimx64.efi + the signed grubx64.efi): Secure Boot works.
 *
 * check() (read-only): done iff the marker says exactly what apply() would
 * record now, the config file is as apply() would write it, and the
 * artefacts are there: EFI/proxmox/{shimx64,grubx64}.efi and
 * EFI/BOOT/BOOTX64.EFI on the ESP, /boot/grub/grub.cfg,
 * /boot/grub/i386-pc/core.img, GRUB's boot code in the disk's first sector,
 * /boot/initrd.img-KVER for every /boot/vmlinuz-KVER.
 *
 * Errors: 0 or -errno, why in ctx->error (a failing command is named with
 * the last line of its stderr).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "plan/step.h"

#define BOOTLOADER_MARKER "/var/lib/devopslab/bootloader.done"
#define BOOTLOADER_CFG "/etc/default/grub.d/devopslab.cfg"
#define BOOTLOADER_EFI_ID "proxmox"

#define BOOTLOADER_CMDLINE_MAX 4096u /* bytes of /proc/cmdline we read (x86: 2048) */
#define BOOTLOADER_CONSOLES_MAX 8u   /* console= arguments carried over */
#define BOOTLOADER_CONSOLE_LEN 64u   /* longest console= value carried over */
#define BOOTLOADER_KERNELS_MAX 16u   /* /boot/vmlinuz-* considered */

/* run_ctx's `boot` slot (optional, owned by the verb or test). */
struct bootloader_opts {
	const char *proc; /* where the installer's cmdline is: PROC/cmdline; NULL = "/proc" */
	bool no_nvram;    /* never write firmware boot entries, even when booted UEFI */
};

/*
 * The text of BOOTLOADER_CFG for an installer kernel command line. Every
 * console=VALUE (before a "--") whose VALUE is at most
 * BOOTLOADER_CONSOLE_LEN of [A-Za-z0-9,._:/-] goes into GRUB_CMDLINE_LINUX,
 * in order, up to BOOTLOADER_CONSOLES_MAX; others are ignored. When one of
 * them is ttyS<unit>[,<speed>...] the last such sets GRUB_TERMINAL and
 * GRUB_SERIAL_COMMAND. *ret is malloc'd, NUL-terminated. 0 or -ENOMEM.
 */
int bootloader_grub_cfg(const char *cmdline, char **ret, size_t *ret_len);

extern const struct step_ops bootloader_ops;
