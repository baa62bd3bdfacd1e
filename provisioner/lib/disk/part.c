/* SPDX-License-Identifier: MIT */
/*
 * part.c — libfdisk, as systemd-repart and sfdisk use it.
 *
 * Our marker (docs/disk.md): every partition we create is named
 * "devopslab-*" (LAYOUT_NAME_*). A GPT whose partitions all carry such a
 * name was made by us (PART_STATE_OURS), which is what `wipe: devopslab`
 * allows to be wiped. An exact match — same disk GUID derived from the
 * seed and node, same partitions, types, names and UUIDs — is
 * PART_STATE_MATCHES, and needs no write.
 *
 * Write order: libfdisk's GPT writer follows UEFI 2.10 §5.3.2 ("the
 * backup GPT ... is updated first"): backup entries and header, then the
 * primary entries and header, then the protective MBR, then fsync.
 */
#define _GNU_SOURCE
#include "part.h"

#include <errno.h>
#include <inttypes.h>
#include <libfdisk.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "errbuf.h"
#include "util.h"

static struct errbuf err;
#define failf(...) errbuf_setf(&err, __VA_ARGS__)

const char *part_errbuf(void)
{
	return err.msg;
}

static void fdisk_unref_contextp(struct fdisk_context **c)
{
	if (*c) {
		fdisk_deassign_device(*c, 1);
		fdisk_unref_context(*c);
	}
}
static void fdisk_unref_tablep(struct fdisk_table **t)
{
	fdisk_unref_table(*t);
}
static void fdisk_unref_partitionp(struct fdisk_partition **p)
{
	fdisk_unref_partition(*p);
}
#define _cleanup_fdisk_ __attribute__((cleanup(fdisk_unref_contextp)))

const char *part_state_name(enum part_state s)
{
	static const char *const names[] = { "empty", "matches", "ours", "foreign" };
	return (size_t)s < ELEMENTSOF(names) ? names[s] : "?";
}

int part_spec_init(struct part_spec *spec, const struct layout *l, const char *seed, const char *node)
{
	char purpose[32];
	int r;

	*spec = (struct part_spec){ .layout = l };
	r = seed_id_uuid(seed, node, "disk", spec->disk_uuid);
	for (size_t i = 0; r >= 0 && i < l->n_parts; i++) {
		snprintf(purpose, sizeof(purpose), "part:%u", l->parts[i].number);
		r = seed_id_uuid(seed, node, purpose, spec->part_uuid[i]);
	}
	return r;
}

static int open_ctx(int fd, const char *name, bool readonly, struct fdisk_context **ret)
{
	struct fdisk_context *c = fdisk_new_context();
	int r;

	if (!c)
		return -ENOMEM;
	r = fdisk_assign_device_by_fd(c, fd, name, readonly);
	if (r < 0) {
		fdisk_unref_context(c);
		failf("libfdisk cannot use '%s': %s", name, strerror(-r));
		return r;
	}
	*ret = c;
	return 0;
}

/* Compare one partition of the disk with the wanted one. */
static bool part_equal(struct fdisk_partition *pa, const struct layout_part *want, const char *uuid, uint32_t ss,
		       char *why, size_t whysz)
{
	struct fdisk_parttype *t = fdisk_partition_get_type(pa);
	const char *type = t ? fdisk_parttype_get_string(t) : NULL;
	const char *pname = fdisk_partition_get_name(pa), *puuid = fdisk_partition_get_uuid(pa);
	uint64_t start = fdisk_partition_get_start(pa), size = fdisk_partition_get_size(pa);

	(void)ss;
	if (start != want->start || size != want->end - want->start + 1)
		return snprintf(why, whysz, "partition %u spans %" PRIu64 "+%" PRIu64 ", wanted %" PRIu64 "+%" PRIu64,
				want->number, start, size, want->start, want->end - want->start + 1),
		       false;
	if (!type || strcasecmp(type, want->type_guid) != 0)
		return snprintf(why, whysz, "partition %u has type %s, wanted %s", want->number, type ? type : "?",
				want->type_guid),
		       false;
	if (!streq_ptr(pname, want->name))
		return snprintf(why, whysz, "partition %u is named '%s', wanted '%s'", want->number,
				pname ? pname : "", want->name),
		       false;
	if (!puuid || strcasecmp(puuid, uuid) != 0)
		return snprintf(why, whysz, "partition %u has UUID %s, wanted %s", want->number, puuid ? puuid : "?",
				uuid),
		       false;
	return true;
}

static int check_table(struct fdisk_context *c, const struct part_spec *spec, enum part_state *ret, char *why,
		       size_t whysz)
{
	const struct layout *l = spec->layout;
	__attribute__((cleanup(fdisk_unref_tablep))) struct fdisk_table *tb = NULL;
	_cleanup_free_ char *id = NULL;
	bool all_ours = true, matches = true;
	size_t n;

	if (fdisk_get_partitions(c, &tb) < 0 || !tb)
		return -EIO;
	n = fdisk_table_get_nents(tb);
	for (size_t i = 0; i < n; i++) {
		const char *nm = fdisk_partition_get_name(fdisk_table_get_partition(tb, i));
		if (!nm || strncmp(nm, LAYOUT_NAME_PREFIX, strlen(LAYOUT_NAME_PREFIX)) != 0)
			all_ours = false;
	}
	if (n == 0)
		all_ours = false;
	if (fdisk_get_disklabel_id(c, &id) < 0 || !id || strcasecmp(id, spec->disk_uuid) != 0) {
		snprintf(why, whysz, "disk GUID %s is not %s (another seed or node)", id ? id : "?", spec->disk_uuid);
		matches = false;
	} else if (fdisk_get_sector_size(c) != l->sector_size) {
		snprintf(why, whysz, "sector size %lu, layout for %u", fdisk_get_sector_size(c), l->sector_size);
		matches = false;
	} else if (n != l->n_parts) {
		snprintf(why, whysz, "%zu partitions, wanted %zu", n, l->n_parts);
		matches = false;
	}
	for (size_t i = 0; matches && i < l->n_parts; i++) {
		struct fdisk_partition *pa = NULL;
		if (fdisk_get_partition(c, l->parts[i].number - 1, &pa) < 0 || !pa) {
			snprintf(why, whysz, "partition %u is missing", l->parts[i].number);
			matches = false;
			break;
		}
		matches = part_equal(pa, &l->parts[i], spec->part_uuid[i], l->sector_size, why, whysz);
		fdisk_unref_partition(pa);
	}
	*ret = matches ? PART_STATE_MATCHES : all_ours ? PART_STATE_OURS : PART_STATE_FOREIGN;
	return 0;
}

int part_check(int fd, const char *name, const struct part_spec *spec, enum part_state *ret, char *why,
	       size_t whysz)
{
	_cleanup_fdisk_ struct fdisk_context *c = NULL;
	char dummy[8];
	int r;

	errbuf_clear(&err);
	if (!why || !whysz)
		why = dummy, whysz = sizeof(dummy);
	why[0] = '\0';
	r = open_ctx(fd, name, true, &c);
	if (r < 0)
		return r;
	if (!fdisk_has_label(c)) {
		snprintf(why, whysz, "no partition table");
		*ret = PART_STATE_EMPTY;
		return 0;
	}
	if (!fdisk_is_label(c, GPT)) {
		snprintf(why, whysz, "a %s partition table", fdisk_label_get_name(fdisk_get_label(c, NULL)));
		*ret = PART_STATE_FOREIGN;
		return 0;
	}
	return check_table(c, spec, ret, why, whysz);
}

static int add_part(struct fdisk_context *c, const struct layout_part *p, const char *uuid)
{
	__attribute__((cleanup(fdisk_unref_partitionp))) struct fdisk_partition *pa = fdisk_new_partition();
	struct fdisk_label *lb = fdisk_get_label(c, NULL);
	struct fdisk_parttype *t = fdisk_label_get_parttype_from_string(lb, p->type_guid);
	int r;

	if (!pa || !t)
		return -ENOMEM;
	fdisk_partition_set_partno(pa, p->number - 1);
	fdisk_partition_set_start(pa, p->start);
	fdisk_partition_set_size(pa, p->end - p->start + 1);
	r = fdisk_partition_set_type(pa, t);
	if (r >= 0)
		r = fdisk_partition_set_name(pa, p->name);
	if (r >= 0)
		r = fdisk_partition_set_uuid(pa, uuid);
	fdisk_unref_parttype(t);
	if (r >= 0)
		r = fdisk_add_partition(c, pa, NULL);
	if (r < 0)
		failf("libfdisk: adding partition %u (%" PRIu64 "..%" PRIu64 "): %s", p->number, p->start, p->end,
		      strerror(-r));
	return r;
}

int part_write(int fd, const char *name, const struct part_spec *spec)
{
	const struct layout *l = spec->layout;
	_cleanup_fdisk_ struct fdisk_context *c = NULL;
	struct stat st;
	int r;

	errbuf_clear(&err);
	r = open_ctx(fd, name, false, &c);
	if (r < 0)
		return r;
	if (fdisk_get_sector_size(c) != l->sector_size) {
		failf("'%s' has %lu-byte sectors, the layout was made for %u", name, fdisk_get_sector_size(c),
		      l->sector_size);
		return -EINVAL;
	}
	/* Keep libfdisk from aligning our exact bounds (BIOS boot at 34). */
	fdisk_disable_dialogs(c, 1);
	/* The BIOS boot partition starts at LBA 34, the first usable sector of
	 * a GPT with 128 entries (sgdisk -a1 -n1:34:2047); libfdisk's default
	 * first LBA is the 1 MiB grain. */
	r = l->sector_size == 512 ? (int)fdisk_set_first_lba(c, 34) : 0;
	if (r >= 0)
		r = fdisk_create_disklabel(c, "gpt");
	if (r >= 0)
		r = fdisk_set_disklabel_id_from_string(c, spec->disk_uuid);
	if (r < 0) {
		failf("libfdisk: creating the GPT: %s", strerror(-r));
		return r;
	}
	for (size_t i = 0; i < l->n_parts; i++) {
		r = add_part(c, &l->parts[i], spec->part_uuid[i]);
		if (r < 0)
			return r;
	}
	r = fdisk_write_disklabel(c);
	if (r < 0) {
		failf("libfdisk: writing the GPT to '%s': %s", name, strerror(-r));
		return r;
	}
	if (fsync(fd) < 0)
		return negative_errno();
	/* Tell the kernel (a block device only; a loop without partscan says
	 * EINVAL, which is fine: we address partitions by offset). */
	if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode))
		(void)fdisk_reread_partition_table(c);
	return 0;
}
