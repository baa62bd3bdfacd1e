/* SPDX-License-Identifier: MIT */
/*
 * layout.h — the Proxmox VE installer's default disk layout (ext4 on LVM),
 * computed from the disk size, logical sector size, RAM and the manifest's
 * overrides. Pure computation: no I/O. docs/disk.md cites, rule by rule,
 * where in pve-installer each number comes from.
 *
 * Units follow the installer: LVM sizes are KiB, aligned down to 4 MiB;
 * partition bounds are LBAs in logical sectors (inclusive end).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/manifest.h"

#define LAYOUT_MAX_PARTS 3
#define LAYOUT_HARD_MIN_GIB 2 /* partition_bootable_disk(): die below */
#define LAYOUT_SOFT_MIN_GIB 8 /* ... prompts below; unattended we refuse */

/* GPT partition type GUIDs (UEFI spec; Discoverable Partitions Spec). */
#define GPT_TYPE_BIOS_BOOT "21686148-6449-6E6F-744E-656564454649"
#define GPT_TYPE_ESP "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define GPT_TYPE_LINUX_LVM "E6D6D379-F507-44C2-A23C-238F2A3DF928"

/* Our marker: every partition we create carries one of these names. */
#define LAYOUT_NAME_PREFIX "devopslab-"
#define LAYOUT_NAME_BIOS "devopslab-bios"
#define LAYOUT_NAME_ESP "devopslab-esp"
#define LAYOUT_NAME_LVM "devopslab-lvm"

struct layout_input {
	uint64_t disk_bytes;
	uint32_t sector_size; /* logical: 512 or 4096 */
	uint64_t ram_bytes;   /* MemTotal */
	struct mf_storage storage; /* overrides; 'set' false = installer default */
};

struct layout_part {
	unsigned number;        /* GPT partition number (1-based) */
	uint64_t start, end;    /* LBAs, inclusive */
	const char *type_guid;  /* GPT_TYPE_* */
	const char *name;       /* LAYOUT_NAME_* */
	const char *fs;         /* "vfat", "lvm2pv" or NULL */
};

struct layout {
	uint32_t sector_size;
	uint64_t disk_bytes;
	uint64_t hdsize_kib;      /* disk size considered (hdsize override) */
	uint64_t esp_mib;         /* 512 or 1024 */
	uint64_t os_kib;          /* installer's $os_size: hdsize - ESP end */
	uint64_t swap_kib;        /* 0: no swap LV */
	uint64_t root_kib;
	uint64_t minfree_kib;     /* the $space/$minfree the installer keeps */
	uint64_t data_kib;        /* the data LV (thin pool data), 0: none */
	uint64_t meta_kib;        /* --poolmetadatasize */
	bool thin;                /* a thin pool 'data' is created */
	struct layout_part parts[LAYOUT_MAX_PARTS];
	size_t n_parts;
};

/* Compute the layout. -EINVAL for inputs that make no sense (sector size,
 * overrides larger than the disk), -ENOSPC for a disk below the minimum;
 * err (may be NULL) says which. */
int layout_compute(const struct layout_input *in, struct layout *ret, char *err, size_t errsz);

/* The installer's compute_swapsize() and create_lvm_volumes() sizing on
 * their own (KiB in, KiB out), exposed for the table test. */
uint64_t layout_swap_kib(uint64_t os_kib, uint64_t ram_mib, const struct mf_size_opt *swapsize);

/* The partition that holds the LVM PV (always present). */
const struct layout_part *layout_lvm_part(const struct layout *l);
