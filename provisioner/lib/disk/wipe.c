/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "wipe.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "blkid-util.h"
#include "errbuf.h"
#include "util.h"

#define MiB (1024u * 1024u)

static struct errbuf err;
#define failf(...) errbuf_setf(&err, __VA_ARGS__)

const char *wipe_errbuf(void)
{
	return err.msg;
}

static int copy_range(int fd, int out, uint64_t off, uint64_t len)
{
	_cleanup_free_ char *buf = malloc(MiB);

	if (!buf)
		return -ENOMEM;
	while (len) {
		size_t n = len > MiB ? MiB : (size_t)len;
		ssize_t k = pread(fd, buf, n, (off_t)off);
		if (k <= 0)
			return k < 0 ? negative_errno() : -EIO;
		if (write(out, buf, (size_t)k) != k)
			return negative_errno();
		off += (uint64_t)k;
		len -= (uint64_t)k;
	}
	return 0;
}

int wipe_save_backup(int fd, uint64_t size, const char *path)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int out = -1;
	uint64_t head = size < MiB ? size : MiB;
	int r;

	errbuf_clear(&err);
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		r = negative_errno();
		failf("cannot create '%s': %s", tmp, strerror(-r));
		return r;
	}
	r = copy_range(fd, out, 0, head);
	if (r >= 0 && size > head)
		r = copy_range(fd, out, size - (size - head < MiB ? size - head : MiB),
			       size - head < MiB ? size - head : MiB);
	if (r >= 0 && fsync(out) < 0)
		r = negative_errno();
	if (r >= 0 && rename(tmp, path) < 0)
		r = negative_errno();
	if (r < 0) {
		unlink(tmp);
		failf("saving the old partition table to '%s': %s", path, strerror(-r));
	}
	return r;
}

static void report_add(char *report, size_t n, const char *type, uint64_t off)
{
	size_t len = strlen(report);

	if (len + 1 < n)
		snprintf(report + len, n - len, "%s%s at 0x%" PRIx64, len ? ", " : "", type, off);
}

/* The wipefs -a loop: probe, wipe what was found, probe again. */
static int wipe_range(int fd, uint64_t off, uint64_t size, bool with_tables, char *report, size_t n, int *ret_left)
{
	_cleanup_blkid_probe_ blkid_probe pr = blkid_new_probe();
	int r, guard = 0;

	if (!pr || blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)size) < 0)
		return -ENOMEM;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_TYPE | BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, with_tables);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC | BLKID_PARTS_FORCE_GPT);
	while ((r = blkid_do_probe(pr)) == 0 && guard++ < 64) {
		const char *type = NULL, *o = NULL;
		if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) < 0)
			blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL);
		blkid_probe_lookup_value(pr, blkid_probe_lookup_value(pr, "SBMAGIC_OFFSET", NULL, NULL) == 0 ?
						     "SBMAGIC_OFFSET" : "PTMAGIC_OFFSET",
					 &o, NULL);
		if (blkid_do_wipe(pr, 0) < 0) {
			r = negative_errno();
			failf("erasing the %s signature: %s", type ? type : "?", strerror(-r));
			return r;
		}
		report_add(report, n, type ? type : "?", off + (o ? strtoull(o, NULL, 10) : 0));
	}
	if (r < 0)
		return r == -1 ? 0 : r;
	*ret_left = 0;
	return 0;
}

static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const char zeros[64 * 1024];

	while (len) {
		size_t n = len > sizeof(zeros) ? sizeof(zeros) : (size_t)len;
		ssize_t k = pwrite(fd, zeros, n, (off_t)off);
		if (k <= 0)
			return k < 0 ? negative_errno() : -EIO;
		off += (uint64_t)k;
		len -= (uint64_t)k;
	}
	return 0;
}

static int count_left(int fd)
{
	_cleanup_blkid_probe_ blkid_probe pr = blkid_new_probe();
	int n = 0;

	if (!pr || blkid_probe_set_device(pr, fd, 0, 0) < 0)
		return -ENOMEM;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_FORCE_GPT);
	while (blkid_do_probe(pr) == 0 && n < 64)
		n++;
	return n;
}

int wipe_all(int fd, const struct disk *d, char *report, size_t reportsz)
{
	int r, left = 0;

	errbuf_clear(&err);
	if (reportsz)
		report[0] = '\0';
	/* Inside the partitions first: the table says where they are. */
	for (size_t i = 0; i < d->n_parts; i++) {
		const struct disk_part *p = &d->parts[i];
		if (!p->size || p->start + p->size > d->size)
			continue;
		r = wipe_range(fd, p->start, p->size, false, report, reportsz, &left);
		if (r >= 0)
			r = zero_range(fd, p->start, p->size < MiB ? p->size : MiB);
		if (r < 0)
			return r;
	}
	r = wipe_range(fd, 0, d->size, true, report, reportsz, &left);
	if (r < 0)
		return r;
	if (fsync(fd) < 0)
		return negative_errno();
	left = count_left(fd);
	if (left != 0) {
		failf("%d signature(s) are still found after wiping", left);
		return -EIO;
	}
	return 0;
}
