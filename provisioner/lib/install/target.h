/* SPDX-License-Identifier: MIT */
/*
 * target.h — the installed system's file systems, mounted for the install
 * steps: the root LV (pve/root, ext4) at DIR and the EFI system partition
 * (partition 2, vfat) at DIR/boot/efi, as the installed system's fstab
 * mounts them. The disk steps have made both (disk-step.h); this module
 * only activates, mounts and, at the end, unmounts and deactivates.
 *
 * Through the kernel's own devices, as the installed system will see them:
 * /dev/mapper/pve-root (LVM activates that one LV; the thin pool stays
 * inactive) and the partition's node (/dev/nvme0n1p2), because the boot
 * loader's tools (grub-probe) resolve the root and ESP through them.
 * Needs device-mapper and partition nodes: the boot image has both.
 *
 * Ownership: a struct target is filled by target_mount() and released by
 * target_umount() (also after a failed mount: it undoes what was done).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define TARGET_DIR "/mnt/target"
#define TARGET_ESP_PARTITION 2
#define TARGET_PV_PARTITION 3

struct target {
	char dir[256];      /* where the root is mounted */
	char esp_dev[96];   /* /dev/nvme0n1p2 */
	char pv_dev[96];    /* /dev/nvme0n1p3 */
	char root_dev[96];  /* /dev/mapper/pve-root */
	bool lv_active, root_mounted, esp_mounted;
	char err[1024];     /* why the last call failed */
};

#define TARGET_INIT { .dir = "" }

/* The node of partition `number` of the whole disk `disk` (a /dev path),
 * found through sysfs (DIR/class/block; NULL = /sys), waiting up to
 * wait_ms for it to appear. 0, -ENOENT, -ENAMETOOLONG. */
int target_partition_node(const char *sysfs, const char *disk, unsigned number, unsigned wait_ms, char *ret,
			  size_t size);

/* Activate pve/root on disk's PV partition and mount it at dir (made if
 * missing), then the ESP at dir/boot/efi. 0 or -errno with t->err; on
 * failure nothing stays mounted or active. */
int target_mount(struct target *t, const char *disk, const char *dir);

/* Sync, unmount the ESP and the root, deactivate the LV. Idempotent. 0, or
 * the first -errno (with t->err), after trying every part. */
int target_umount(struct target *t);
