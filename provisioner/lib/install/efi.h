/* SPDX-License-Identifier: MIT */
/*
 * efi.h — the UEFI side of the boot loader: files on the EFI system
 * partition, and the firmware's boot entries as efibootmgr lists them.
 *
 * The ESP is mounted at ROOT/boot/efi. FAT has no owners, modes or
 * symbolic links (vfat silently keeps its own mode on chmod), so a file
 * there is what its bytes are, and it is compared by them alone. Paths are
 * relative to the ESP ("EFI/proxmox/grub.cfg") and resolved beneath it,
 * never through a symlink or into another file system. A write goes to a
 * temporary name in the same directory, is fsync'd, renamed over the old
 * name, and the directory fsync'd (after a power cut: the old file or the
 * new one); missing directories are made.
 *
 * Errors: 0 or -errno; the caller names the path.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define EFI_ESP_DIR "boot/efi"      /* the ESP's mount point, relative to the target root */
#define EFI_FILE_MAX (16u << 20)    /* largest file we put on the ESP (GRUB: 2.7 MB) */
#define EFI_ENTRIES_MAX 32u         /* boot entries of one label we remove */

/*
 * Open the ESP below rootfd. With need_mount, it must be a file system of
 * its own (a mount point), so that nothing meant for the ESP lands in the
 * root file system's /boot/efi directory: -EXDEV when it is not. -ENOENT
 * when there is no such directory.
 */
int efi_esp_open(int rootfd, bool need_mount, int *ret_fd);

/* Does the file exist as a regular file with exactly these bytes? A
 * missing file (or directory) is "not the same", not an error. */
int efi_file_same(int espfd, const char *path, const char *data, size_t len, bool *ret_same);

/* Write the file (crash-safe, see above). */
int efi_file_write(int espfd, const char *path, const char *data, size_t len);

/*
 * The boot entry numbers whose label is exactly `label` in efibootmgr's
 * listing ("Boot0003* proxmox\tHD(2,GPT,...)/\EFI\proxmox\shimx64.efi"),
 * in the listing's order, up to max (-E2BIG beyond). What grub-install
 * removes before it adds its own entry, so that a re-run leaves one.
 */
int efi_boot_entries(const char *listing, const char *label, unsigned *ret_nums, size_t max, size_t *ret_n);
