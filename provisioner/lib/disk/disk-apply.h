/* SPDX-License-Identifier: MIT */
/*
 * disk-apply.h — the safety policy and the stages that turn the selected
 * disk into the Proxmox layout. Each stage is a check()/apply() pair in the
 * shape of step.h's ops (check is read-only: "already done?"), so the step
 * engine binds them as STEP_DISK_PARTITION, STEP_DISK_LVM and
 * STEP_DISK_FILESYSTEMS; `devopslab disk apply` runs them in order:
 *
 *   disk_target_open()          one O_RDWR|O_CLOEXEC open, flock(LOCK_EX)
 *   disk_policy_check()         refuse boot/mounted/in-use disks, and any
 *                               content the wipe policy does not allow
 *   partition: check/apply      save the old tables, wipe, write the GPT
 *   lvm:       check/apply      PV, VG pve, swap, root, thin pool data
 *   fs:        check/apply      vfat ESP, ext4 root, swap signature
 *
 * A re-run converges: each check looks at the disk itself, so a disk left
 * half-made by a killed run is finished, and a finished one is left alone.
 *
 * Ownership: struct disk_target owns its fd, lock, probe and loop device;
 * disk_target_done() releases them (the loop device detaches itself).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "disk.h"
#include "layout.h"
#include "loop.h"
#include "manifest/manifest.h"
#include "part.h"

enum disk_verdict_code {
	DISK_OK_EMPTY,      /* nothing on it: write */
	DISK_OK_CONVERGE,   /* our exact GPT: finish what is missing, no wipe */
	DISK_OK_WIPE,       /* content, and the policy allows wiping it */
};

struct disk_target {
	char *path;
	int fd;
	struct disk *disk;       /* the probe, refreshed by disk_target_reprobe() */
	struct layout layout;
	struct part_spec spec;
	char seed[256], node[128];
	enum part_state part_state;
	char part_why[256];
	char *backup_dir;        /* where wipe saves the old tables */
	char err[1536];          /* first error of any stage */
	char done[1024];         /* what the last apply did, for the verb to print */
};

#define DISK_TARGET_INIT { .fd = -1 }

/* Open `path` (block device or image file) once and lock it; probe it;
 * compute the layout from in (disk size/sector size are filled in here). */
int disk_target_open(struct disk_target *t, const char *path, const struct layout_input *in, const char *seed,
		     const char *node, const char *backup_dir);
void disk_target_done(struct disk_target *t);
/* Keep the disk open and flock()ed, but no longer exclusively (O_EXCL):
 * once its partitions are made, the install uses them (LVM activates the
 * root LV on partition 3, the ESP is mounted), which the kernel refuses
 * while the whole disk is claimed. 0 or -errno with t->err. */
int disk_target_share(struct disk_target *t);

/* The safety policy. -EPERM with t->err saying what is on the disk or why
 * it is in use; else the verdict. `recovery` is disaster-recovery mode. */
int disk_policy_check(struct disk_target *t, enum mf_wipe wipe, bool recovery, enum disk_verdict_code *ret);
const char *disk_wipe_name(enum mf_wipe w);

int disk_partition_check(struct disk_target *t, bool *ret_done);
int disk_partition_apply(struct disk_target *t, bool wipe_first);
int disk_lvm_check(struct disk_target *t, bool *ret_done);
int disk_lvm_apply(struct disk_target *t);
int disk_fs_check(struct disk_target *t, bool *ret_done);
int disk_fs_apply(struct disk_target *t);
