/* SPDX-License-Identifier: MIT */
/*
 * layout.c — the installer's sizing rules, in integer KiB.
 *
 * The Perl code mixes integers and floats ("$hdgb / 8", "$rest_mb / 4");
 * each float there is a multiple of 1/8 MiB, so the same numbers come out
 * exactly in integer KiB (docs/disk.md, "Layout").
 */
#include "layout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#define KIB_PER_MIB 1024ULL
#define KIB_PER_GIB (1024ULL * 1024ULL)
#define ALIGN_4M(kib) ((kib) & ~0xFFFULL) /* "& ~0xFFF" on KiB: 4 MiB */
#define GPT_ENTRIES_BYTES (128u * 128u)  /* 128 entries of 128 bytes */

static int fail(char *err, size_t errsz, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errsz, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errsz) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* Proxmox/Install.pm compute_swapsize($os_size); RAM in MiB as
 * RunEnv::query_total_memory() reports it (MemTotal / 1024). */
uint64_t layout_swap_kib(uint64_t os_kib, uint64_t ram_mib, const struct mf_size_opt *swapsize)
{
	uint64_t hdgb = os_kib / KIB_PER_GIB, ss = ram_mib;

	if (swapsize && swapsize->set)
		return ALIGN_4M(swapsize->bytes / 1024);
	if (ss < 4096 && hdgb >= 64)
		ss = 4096;
	if (ss < 2048 && hdgb >= 32)
		ss = 2048;
	if (ss >= 2048 && hdgb <= 16)
		ss = 1024;
	if (ss < 512)
		ss = 512;
	if (ss > hdgb * 128)
		ss = hdgb * 128;
	if (ss > 8192)
		ss = 8192;
	return ALIGN_4M(ss * 1024);
}

/* Proxmox/Sys/Block.pm partition_bootable_disk(): GPT, p1 BIOS boot at
 * 34..2047 (not on 4Kn), p2 ESP from 1 MiB, p3 LVM from the ESP's end to
 * the disk's end or to hdsize. */
static int compute_partitions(struct layout *l, bool restricted, char *err, size_t errsz)
{
	uint64_t ss = l->sector_size, mib = (1024 * 1024) / ss;
	uint64_t total = l->disk_bytes / ss;
	uint64_t last_usable = total - 2 - GPT_ENTRIES_BYTES / ss; /* backup entries + header */
	struct layout_part *p = l->parts;

	l->n_parts = 0;
	if (ss == 512)
		p[l->n_parts++] = (struct layout_part){ 1, 34, 2047, GPT_TYPE_BIOS_BOOT, LAYOUT_NAME_BIOS, NULL };
	p[l->n_parts++] = (struct layout_part){ 2, mib, (1 + l->esp_mib) * mib - 1, GPT_TYPE_ESP, LAYOUT_NAME_ESP,
						"vfat" };
	struct layout_part *lvm = &p[l->n_parts++];
	/* To the end of the disk, rounded down to the 1 MiB grain, as libfdisk
	 * (and sgdisk) align a partition's end when it fills the free space. */
	*lvm = (struct layout_part){ 3, (1 + l->esp_mib) * mib, (last_usable + 1) / mib * mib - 1, GPT_TYPE_LINUX_LVM,
				     LAYOUT_NAME_LVM, "LVM2_member" };
	if (restricted)
		lvm->end = (l->hdsize_kib / KIB_PER_MIB) * mib - 1;
	if (lvm->end > last_usable || lvm->end <= lvm->start)
		return fail(err, errsz, -ENOSPC, "the LVM partition does not fit (end %" PRIu64 ", last usable %" PRIu64 ")",
			    lvm->end, last_usable);
	return 0;
}

/* Proxmox/Install.pm create_lvm_volumes(), product 'pve'. */
static int compute_lvm(struct layout *l, const struct mf_storage *st, char *err, size_t errsz)
{
	uint64_t hdgb = l->os_kib / KIB_PER_GIB;
	uint64_t space = hdgb <= 32 ? 4 * 1024 : hdgb > 128 ? 16 * KIB_PER_GIB : hdgb * (KIB_PER_GIB / 8);
	uint64_t maxroot = st->maxroot.set && st->maxroot.bytes ? st->maxroot.bytes / 1024 : 96 * KIB_PER_GIB;
	uint64_t rest, rest_mb, root;

	if (l->swap_kib >= l->os_kib)
		return fail(err, errsz, -EINVAL, "swapsize (%" PRIu64 " KiB) does not fit the disk (%" PRIu64 " KiB)",
			    l->swap_kib, l->os_kib);
	rest = l->os_kib - l->swap_kib;
	rest_mb = rest / 1024;
	if (rest_mb < 12 * 1024)
		root = rest_mb > 4 ? ((rest_mb - 4) & ~3ULL) * 1024 : 0;
	else if (rest_mb < 48 * 1024)
		root = ((rest_mb / 2) & ~3ULL) * 1024;
	else
		root = rest_mb * 256 + 12 * KIB_PER_GIB; /* ($rest_mb / 4 + 12 GiB) * 1024 */
	if (root > maxroot)
		root = maxroot;
	root = ALIGN_4M(root);
	if (!root || root >= rest)
		return fail(err, errsz, -ENOSPC, "no room for the root volume (%" PRIu64 " KiB left after swap)",
			    rest);
	l->root_kib = root;
	rest -= root;

	l->minfree_kib = space;
	if (st->minfree.set)
		l->minfree_kib = st->minfree.bytes / 1024 >= rest ? space : st->minfree.bytes / 1024;
	if (l->minfree_kib > rest)
		return fail(err, errsz, -ENOSPC, "minfree (%" PRIu64 " KiB) exceeds the free space (%" PRIu64 " KiB)",
			    l->minfree_kib, rest);
	rest = ALIGN_4M(rest - l->minfree_kib);
	if (st->maxvz.set && ALIGN_4M(st->maxvz.bytes / 1024) <= rest)
		rest = ALIGN_4M(st->maxvz.bytes / 1024);

	l->thin = rest > 4 * KIB_PER_GIB;
	if (!l->thin) {
		l->data_kib = l->meta_kib = 0;
		return 0;
	}
	l->meta_kib = rest / 100;
	if (l->meta_kib < KIB_PER_GIB)
		l->meta_kib = KIB_PER_GIB;
	if (l->meta_kib > 16 * KIB_PER_GIB)
		l->meta_kib = 16 * KIB_PER_GIB;
	l->meta_kib = ALIGN_4M(l->meta_kib);
	/* metadata and its spare come out of minfree; one PE for rounding */
	l->data_kib = rest - 2 * l->meta_kib - 4 * 1024;
	return 0;
}

int layout_compute(const struct layout_input *in, struct layout *ret, char *err, size_t errsz)
{
	struct layout l = { 0 };
	uint64_t disk_kib, hdgb;
	bool restricted = false;
	int r;

	if (!in || !ret)
		return -EINVAL;
	if (in->sector_size != 512 && in->sector_size != 4096)
		return fail(err, errsz, -EINVAL, "unsupported logical sector size %u", in->sector_size);
	if (in->disk_bytes % in->sector_size)
		return fail(err, errsz, -EINVAL, "disk size %" PRIu64 " is not a multiple of the sector size %" PRIu64 "",
			    in->disk_bytes, (uint64_t)in->sector_size);
	l.sector_size = in->sector_size;
	l.disk_bytes = in->disk_bytes;
	disk_kib = in->disk_bytes / 1024; /* hd_size(): 512-byte sectors / 2 */
	l.hdsize_kib = disk_kib;
	/* The ESP size is decided on the whole disk, before hdsize applies. */
	l.esp_mib = disk_kib > 100 * KIB_PER_GIB ? 1024 : 512;
	if (in->storage.hdsize.set) {
		uint64_t max = in->storage.hdsize.bytes / 1024;
		if (max > disk_kib)
			return fail(err, errsz, -EINVAL, "hdsize (%" PRIu64 " KiB) is larger than the disk (%" PRIu64 " KiB)", max,
				    disk_kib);
		if (max < disk_kib) {
			l.hdsize_kib = max;
			restricted = true;
		}
	}
	hdgb = l.hdsize_kib / KIB_PER_GIB;
	if (hdgb < LAYOUT_SOFT_MIN_GIB)
		return fail(err, errsz, -ENOSPC, "disk too small: %" PRIu64 " GiB < %" PRIu64 " GiB", hdgb, (uint64_t)LAYOUT_SOFT_MIN_GIB);
	l.os_kib = l.hdsize_kib - (l.esp_mib + 1) * KIB_PER_MIB;
	r = compute_partitions(&l, restricted, err, errsz);
	if (r < 0)
		return r;
	l.swap_kib = layout_swap_kib(l.os_kib, in->ram_bytes / (1024 * 1024), &in->storage.swapsize);
	r = compute_lvm(&l, &in->storage, err, errsz);
	if (r < 0)
		return r;

	/* Our own check: what we allocate fits the PV (pe_start 1 MiB, 4 MiB
	 * extents), so lvcreate cannot fail half-way for lack of space. */
	const struct layout_part *p3 = layout_lvm_part(&l);
	uint64_t pv_kib = ((p3->end - p3->start + 1) * l.sector_size / 1024 - 1024) & ~0xFFFULL;
	uint64_t used = l.swap_kib + l.root_kib + (l.thin ? l.data_kib + 2 * l.meta_kib : 0);
	if (used > pv_kib)
		return fail(err, errsz, -ENOSPC, "volumes (%" PRIu64 " KiB) exceed the physical volume (%" PRIu64 " KiB)", used,
			    pv_kib);
	*ret = l;
	return 0;
}

const struct layout_part *layout_lvm_part(const struct layout *l)
{
	return &l->parts[l->n_parts - 1];
}
