/* SPDX-License-Identifier: MIT */
/*
 * disk.h — discovery of whole disks: sysfs for the hardware facts, the udev
 * database and /dev/disk/by-id for stable names, libblkid for what is on
 * them, /proc for what is mounted or in use. Nothing here writes anything.
 *
 * Test seam: every root (sysfs, /dev, /proc, /run/udev) is a field of
 * struct disk_probe_opts, so unit tests fabricate a machine in a temporary
 * directory (tests/unit/test-disk-select.c).
 *
 * Ownership: disk_probe_all() returns a struct disk_list freed with
 * disk_list_free(); every string belongs to it. Errors: -errno, with the
 * detail in disk_errbuf() (first error wins).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DISK_MAX_DISKS 256
#define DISK_MAX_PARTS 128
#define DISK_MAX_BY_ID 16

enum disk_transport {
	DISK_TRANSPORT_UNKNOWN,
	DISK_TRANSPORT_NVME,
	DISK_TRANSPORT_SATA,
	DISK_TRANSPORT_USB,
	DISK_TRANSPORT_VIRTIO,
	DISK_TRANSPORT_MMC,
	DISK_TRANSPORT_SCSI,
	DISK_TRANSPORT_LOOP,
	DISK_TRANSPORT_FILE, /* a disk image file given with --device */
	_DISK_TRANSPORT_MAX,
};
const char *disk_transport_name(enum disk_transport t);

/* A filesystem/LVM/RAID/LUKS signature or partition table found by libblkid. */
struct disk_sig {
	char *type;  /* "ext4", "LVM2_member", "linux_raid_member", "crypto_LUKS", "gpt", "dos" */
	char *label; /* may be NULL */
	char *uuid;  /* may be NULL */
};

struct disk_part {
	unsigned number;
	char *devname;       /* "nvme0n1p1"; NULL for a partition of an image file */
	uint64_t start, size; /* bytes */
	char *type;          /* GPT type GUID or MBR type "0x83" */
	char *name;          /* GPT partition name, may be NULL */
	char *uuid;          /* GPT partition UUID, may be NULL */
	struct disk_sig sig; /* what is inside; type NULL = nothing found */
	dev_t devnum;
};

struct disk {
	char *name;       /* "nvme0n1"; the file name for an image */
	char *path;       /* "/dev/nvme0n1" or the image path */
	dev_t devnum;     /* 0 for an image file */
	char **by_id;     /* "nvme-Samsung_SSD_980_1TB_S64A..." (names only) */
	size_t n_by_id;
	enum disk_transport transport;
	char *model, *serial, *wwn; /* may be NULL */
	uint64_t size;              /* bytes */
	uint32_t logical_sector, physical_sector;
	bool removable, rotational, readonly;
	char *backing_file;         /* loop devices */

	bool probed;                /* libblkid could read it */
	char *pttype, *ptuuid;      /* partition table: "gpt", "dos"; NULL = none */
	struct disk_sig *sigs;      /* whole-disk signatures other than the table */
	size_t n_sigs;
	struct disk_part *parts;
	size_t n_parts;

	/* In use: each set flag has a human reason in in_use (first one). */
	bool boot;        /* holds the running system's root or boot medium */
	bool mounted;     /* it or a partition is mounted */
	bool swap;        /* it or a partition is active swap */
	bool held;        /* device-mapper/md holders (active LVM, LUKS, RAID) */
	char *in_use;     /* "partition nvme0n1p2 is mounted on /boot/efi" */
};

struct disk_list {
	struct disk *disks;
	size_t n;
};

struct disk_probe_opts {
	const char *sysfs;    /* default "/sys" */
	const char *dev;      /* default "/dev" */
	const char *proc;     /* default "/proc" */
	const char *udev_db;  /* default "/run/udev/data" */
	bool no_signatures;   /* skip libblkid (fabricated trees have no device nodes) */
};

int disk_probe_all(const struct disk_probe_opts *o, struct disk_list **ret);
/* Probe one disk given as /dev/NAME (or a symlink to it, e.g. by-id) or as
 * a regular file (a disk image; sector size 512 unless it is attached). */
int disk_probe_path(const struct disk_probe_opts *o, const char *path, struct disk **ret);

struct disk_list *disk_list_free(struct disk_list *l);
struct disk *disk_free(struct disk *d);
void disk_done(struct disk *d);

/* True when anything at all is on the disk: a table or any signature. */
bool disk_has_content(const struct disk *d);
/* One line describing what is on the disk ("gpt table with 3 partitions:
 * p1 ext4 \"data\", ..."), for refusals. */
int disk_describe_content(const struct disk *d, char *buf, size_t size);

const char *disk_errbuf(void);

static inline void disk_list_freep(struct disk_list **l) { disk_list_free(*l); }
static inline void disk_freep(struct disk **d) { disk_free(*d); }

/* What libblkid finds in [off, off+size) of an open disk: ret->type NULL
 * when nothing. The caller frees with disk_sig_done(). */
int disk_probe_region(int fd, uint64_t off, uint64_t size, struct disk_sig *ret);
void disk_sig_done(struct disk_sig *s);
