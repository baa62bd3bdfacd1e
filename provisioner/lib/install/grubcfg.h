/* SPDX-License-Identifier: MIT */
/*
 * grubcfg.h — the text of the GRUB configuration the bootloader step
 * writes (docs/install.md, "Boot loader"). Pure functions: no I/O.
 *
 *   grubcfg_consoles()  the installer kernel's console= arguments;
 *   grubcfg_defaults()  /etc/default/grub.d/devopslab.cfg, what update-grub
 *                       reads on the node later;
 *   grubcfg_menu()      /boot/grub/grub.cfg, written at install instead of
 *                       running update-grub there (its ~20 grub-probe runs
 *                       and shell scripts cost half a minute in an emulated
 *                       CPU): the same entries update-grub makes from
 *                       Debian's defaults and devopslab.cfg, replaced by
 *                       update-grub's own output at the node's first kernel
 *                       or GRUB update;
 *   grubcfg_stub()      ESP/EFI/<id>/grub.cfg, the stub the signed GRUB
 *                       reads next to itself, as grub-install writes it.
 *
 * Every text is malloc'd and NUL-terminated (*ret, *ret_len); the functions
 * return 0, -EINVAL for a bad argument (a root UUID that is not one, a
 * kernel version with characters a config file must not carry), or -ENOMEM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define GRUBCFG_DISTRIBUTOR "Proxmox VE"
#define GRUBCFG_ROOT_DEVICE "/dev/mapper/pve-root" /* the kernel's root=, as update-grub names an LV */
#define GRUBCFG_LINUX_DEFAULT "quiet"                /* Debian's GRUB_CMDLINE_LINUX_DEFAULT */
#define GRUBCFG_TIMEOUT 5                            /* Debian's GRUB_TIMEOUT */

#define GRUBCFG_CONSOLES_MAX 8u  /* console= arguments carried over */
#define GRUBCFG_CONSOLE_LEN 64u  /* longest console= value carried over */
#define GRUBCFG_KVER_MAX 64u     /* longest kernel version */
#define GRUBCFG_CARRY_MAX 8u     /* arguments after "---" carried over */
#define GRUBCFG_CARRY_LEN 64u    /* longest such argument */

/* What the installer's kernel command line says about consoles. */
struct grubcfg_consoles {
	/* "console=tty0 console=ttyS0,115200n8 no_timer_check": the consoles,
	 * then what followed "---"; "" when none */
	char args[GRUBCFG_CONSOLES_MAX * (GRUBCFG_CONSOLE_LEN + 9) + GRUBCFG_CARRY_MAX * (GRUBCFG_CARRY_LEN + 1) + 1];
	unsigned n;          /* consoles */
	unsigned n_carried;  /* arguments from after "---" */
	bool serial;         /* one was ttyS<unit>[,<speed>...]: the last such */
	unsigned unit, speed; /* speed 0: none given */
};

/*
 * Every console=VALUE (before a "--") whose VALUE is at most
 * GRUBCFG_CONSOLE_LEN of [A-Za-z0-9,._:/-], in order, up to
 * GRUBCFG_CONSOLES_MAX; others are ignored, never quoted. Then, as
 * debian-installer does, the arguments after a "---" (and before a "--"),
 * each at most GRUBCFG_CARRY_LEN of [A-Za-z0-9,._:/=-], up to
 * GRUBCFG_CARRY_MAX: what the machine needs on every boot (no_timer_check
 * on a slow emulator, a driver option) is given once, to the installer, and
 * the installed system keeps it. cmdline may be NULL (nothing).
 */
void grubcfg_consoles(const char *cmdline, struct grubcfg_consoles *ret);

/* GRUB_DISTRIBUTOR, and with consoles GRUB_CMDLINE_LINUX; with a serial
 * one GRUB_TERMINAL and GRUB_SERIAL_COMMAND. */
int grubcfg_defaults(const struct grubcfg_consoles *c, char **ret, size_t *ret_len);

/* kernels: the versions in /boot, each with its initrd, in any order; the
 * newest (strverscmp) is the default entry. root_uuid: the root file
 * system's UUID (entries find it with `search --fs-uuid`). */
int grubcfg_menu(const struct grubcfg_consoles *c, const char *root_uuid, const char *const *kernels,
		 size_t n_kernels, char **ret, size_t *ret_len);

/* "search.fs_uuid UUID root", the prefix /boot/grub on it, then its
 * grub.cfg. */
int grubcfg_stub(const char *root_uuid, char **ret, size_t *ret_len);

/* A file system UUID as blkid prints one: 8-4-4-4-12 lower-case hex. */
bool grubcfg_uuid_ok(const char *uuid);
/* A kernel version update-grub would take: [A-Za-z0-9._+~-], 1..GRUBCFG_KVER_MAX. */
bool grubcfg_kver_ok(const char *kver);
