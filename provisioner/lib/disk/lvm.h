/* SPDX-License-Identifier: MIT */
/*
 * lvm.h — the VG "pve" and its LVs, made with lvm2's command line tools
 * (run through exec.h, errors captured), restricted to one device.
 *
 * Every command gets --config with a device filter that accepts only the PV
 * device (so the host's other disks are never scanned or touched), udev
 * sync off (the install environment may have no udev), the devices file,
 * metadata backups and archives off (nothing written to the host's /etc).
 * Where the kernel has no device-mapper (containers, this test machine),
 * activation is disabled too; see lvm_thin_pool() for what that changes.
 *
 * Ownership: struct lvm lives on the caller's stack; nothing to free.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LVM_VG "pve"
#define LVM_MAX_LVS 16

struct lvm {
	char dev[64];      /* the PV: a loop device over the LVM partition */
	char config[1024]; /* --config argument */
	bool dm;           /* /dev/mapper/control is usable */
	char errbuf[1024]; /* first error: the command and its stderr */
};

struct lvm_lv {
	char name[64];        /* internal LVs without brackets: data_tmeta */
	uint64_t size;        /* bytes */
	char segtype[32];     /* linear, thin-pool, striped */
	uint64_t first_pe;    /* first physical extent of its first segment */
	unsigned n_segs;
};

struct lvm_state {
	bool pv;              /* dev carries a PV label */
	char pv_vg[64];       /* its VG, "" when none */
	char pv_uuid[64];
	uint64_t pe_start;    /* bytes from the PV start to extent 0 */
	bool vg;              /* VG pve is there (on dev) */
	uint64_t extent_size; /* bytes */
	struct lvm_lv lvs[LVM_MAX_LVS];
	size_t n_lvs;
};

int lvm_init(struct lvm *l, const char *pvdev);
int lvm_read_state(struct lvm *l, struct lvm_state *ret);
const struct lvm_lv *lvm_state_find(const struct lvm_state *s, const char *name);

/* pvcreate --metadatasize 250k (pe_start 1 MiB, as the installer) with a
 * seeded PV UUID; vgcreate pve; lvcreate -L KiB -n NAME. */
int lvm_pvcreate(struct lvm *l, const char *uuid);
int lvm_vgcreate(struct lvm *l);
int lvm_lvcreate(struct lvm *l, const char *name, uint64_t kib);
/* Turn the linear LV 'data' into a thin pool with meta_kib of metadata
 * (lvconvert --type thin-pool --poolmetadatasize, as the installer). The
 * metadata LV's first 4 KiB are zeroed through disk_fd at
 * pv_offset + its extents (what lvconvert itself does). */
int lvm_thin_pool(struct lvm *l, uint64_t meta_kib, int disk_fd, uint64_t pv_offset);
/* Activate one LV of the VG (/dev/mapper/pve-NAME; LVM makes the node
 * itself: udev_rules=0). -EOPNOTSUPP without device-mapper. */
int lvm_activate_lv(struct lvm *l, const char *name);
/* Deactivate the VG (nothing to do without device-mapper). */
int lvm_deactivate(struct lvm *l);
