/* SPDX-License-Identifier: MIT */
/*
 * lvm.c — lvm2 through its command line, parsed from --noheadings
 * --separator '|' --units b --nosuffix reports.
 */
#define _GNU_SOURCE
#include "lvm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "util.h"

#define MAX_ARGS 24

static void lvm_fail(struct lvm *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lvm_fail(struct lvm *l, const char *fmt, ...)
{
	va_list ap;

	if (l->errbuf[0])
		return;
	va_start(ap, fmt);
	vsnprintf(l->errbuf, sizeof(l->errbuf), fmt, ap);
	va_end(ap);
}

static bool dm_available(void)
{
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int lvm_init(struct lvm *l, const char *pvdev)
{
	int n;

	*l = (struct lvm){ 0 };
	if (strlen(pvdev) >= sizeof(l->dev) || strpbrk(pvdev, "|\"'\\ "))
		return -EINVAL;
	snprintf(l->dev, sizeof(l->dev), "%s", pvdev);
	l->dm = dm_available();
	n = snprintf(l->config, sizeof(l->config),
		     "devices { filter=[\"a|^%s$|\",\"r|.*|\"] global_filter=[\"a|^%s$|\",\"r|.*|\"] "
		     "use_devicesfile=0 obtain_device_list_from_udev=0 } "
		     "activation { udev_sync=0 udev_rules=0 } "
		     "global { activation=%d } backup { backup=0 archive=0 }",
		     pvdev, pvdev, l->dm ? 1 : 0);
	return n > 0 && (size_t)n < sizeof(l->config) ? 0 : -ENAMETOOLONG;
}

/* Run "lvm SUBCMD --config ... ARGS..."; 0 when it exited 0, else -EIO
 * with the command and its last stderr line in l->errbuf. ARGS end with
 * (char *)NULL, as execl(3)'s do: a bare NULL may be an int 0 in a
 * variadic call. */
static int run(struct lvm *l, struct exec_result *res, bool quiet_fail, const char *sub, ...)
{
	const char *argv[MAX_ARGS] = { "lvm", sub, "--config", l->config };
	size_t n = 4;
	va_list ap;
	int r;

	va_start(ap, sub);
	for (const char *a; (a = va_arg(ap, const char *)) && n + 1 < MAX_ARGS;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	r = exec_run((char *const *)argv, NULL, res);
	if (r < 0) {
		lvm_fail(l, "cannot run lvm %s: %s", sub, strerror(-r));
		return r;
	}
	if (res->status != 0) {
		if (!quiet_fail) {
			char brief[512];
			lvm_fail(l, "lvm %s failed (exit %d): %s", sub, res->status,
				 exec_result_brief(res, brief, sizeof(brief)));
		}
		return -EIO;
	}
	return 0;
}

/* Next report line split on '|' into at most nf fields (trimmed). */
static size_t split_line(char **cursor, char **f, size_t nf)
{
	char *line = *cursor, *nl;
	size_t n = 0;

	if (!line || !*line)
		return 0;
	nl = strchr(line, '\n');
	if (nl)
		*nl = '\0', *cursor = nl + 1;
	else
		*cursor = line + strlen(line);
	while (*line == ' ')
		line++;
	for (char *p = line; n < nf;) {
		char *bar = strchr(p, '|');
		f[n++] = p;
		if (!bar)
			break;
		*bar = '\0';
		p = bar + 1;
	}
	return n;
}

static uint64_t u64(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

static int read_pv(struct lvm *l, struct lvm_state *s)
{
	struct exec_result res = { 0 };
	char *cur, *f[4];
	int r;

	r = run(l, &res, true, "pvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", "|", "-o",
		"pv_name,vg_name,pv_uuid,pe_start", l->dev, (char *)NULL);
	cur = res.out;
	if (r == 0 && split_line(&cur, f, 4) == 4) {
		s->pv = true;
		snprintf(s->pv_vg, sizeof(s->pv_vg), "%s", f[1]);
		snprintf(s->pv_uuid, sizeof(s->pv_uuid), "%s", f[2]);
		s->pe_start = u64(f[3]);
	}
	exec_result_done(&res);
	return r == -EIO ? 0 : r; /* not a PV is an answer */
}

static int read_lvs(struct lvm *l, struct lvm_state *s)
{
	struct exec_result res = { 0 };
	char *cur, *f[4];
	size_t nf;
	int r;

	r = run(l, &res, false, "vgs", "--noheadings", "--units", "b", "--nosuffix", "--separator", "|", "-o",
		"vg_name,vg_extent_size", LVM_VG, (char *)NULL);
	if (r < 0)
		goto out;
	cur = res.out;
	if (split_line(&cur, f, 2) == 2 && streq(f[0], LVM_VG)) {
		s->vg = true;
		s->extent_size = u64(f[1]);
	}
	exec_result_done(&res);
	r = run(l, &res, false, "lvs", "-a", "--noheadings", "--units", "b", "--nosuffix", "--separator", "|", "-o",
		"lv_name,lv_size,segtype,seg_pe_ranges", LVM_VG, (char *)NULL);
	if (r < 0)
		goto out;
	cur = res.out;
	while ((nf = split_line(&cur, f, 4)) > 0) {
		char name[64];
		if (nf < 3)
			continue;
		snprintf(name, sizeof(name), "%s", f[0][0] == '[' ? f[0] + 1 : f[0]);
		name[strcspn(name, "]")] = '\0';
		struct lvm_lv *lv = (struct lvm_lv *)lvm_state_find(s, name);
		if (!lv) {
			if (s->n_lvs >= LVM_MAX_LVS)
				continue;
			lv = &s->lvs[s->n_lvs++];
			*lv = (struct lvm_lv){ 0 };
			snprintf(lv->name, sizeof(lv->name), "%s", name);
			lv->size = u64(f[1]);
			snprintf(lv->segtype, sizeof(lv->segtype), "%s", f[2]);
			/* "/dev/loop3:256-511" */
			const char *colon = nf == 4 ? strrchr(f[3], ':') : NULL;
			lv->first_pe = colon ? u64(colon + 1) : 0;
		}
		lv->n_segs++;
	}
out:
	exec_result_done(&res);
	return r;
}

int lvm_read_state(struct lvm *l, struct lvm_state *ret)
{
	struct lvm_state s = { 0 };
	int r;

	r = read_pv(l, &s);
	if (r >= 0 && s.pv && streq(s.pv_vg, LVM_VG))
		r = read_lvs(l, &s);
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

const struct lvm_lv *lvm_state_find(const struct lvm_state *s, const char *name)
{
	for (size_t i = 0; i < s->n_lvs; i++)
		if (streq(s->lvs[i].name, name))
			return &s->lvs[i];
	return NULL;
}

int lvm_pvcreate(struct lvm *l, const char *uuid)
{
	struct exec_result res = { 0 };
	/* --metadatasize 250k gives pe_start = 1 MiB (Install.pm's comment) */
	int r = run(l, &res, false, "pvcreate", "--metadatasize", "250k", "-y", "-ff", "--uuid", uuid,
		    "--norestorefile", l->dev, (char *)NULL);
	exec_result_done(&res);
	return r;
}

int lvm_vgcreate(struct lvm *l)
{
	struct exec_result res = { 0 };
	int r = run(l, &res, false, "vgcreate", LVM_VG, l->dev, (char *)NULL);
	exec_result_done(&res);
	return r;
}

int lvm_lvcreate(struct lvm *l, const char *name, uint64_t kib)
{
	struct exec_result res = { 0 };
	char size[32];
	int r;

	snprintf(size, sizeof(size), "%" PRIu64 "K", kib);
	/* Not activated (-an) and so not zeroed (-Zn): every LV is formatted
	 * next through a loop device at its extents, and the region was wiped. */
	r = run(l, &res, false, "lvcreate", "--yes", "-an", "-Zn", "-Wn", "-L", size, "-n", name, LVM_VG,
		(char *)NULL);
	exec_result_done(&res);
	return r;
}

int lvm_activate_lv(struct lvm *l, const char *name)
{
	struct exec_result res = { 0 };
	char lv[128];
	int r;

	if (!l->dm)
		return -EOPNOTSUPP;
	if (snprintf(lv, sizeof(lv), "%s/%s", LVM_VG, name) >= (int)sizeof(lv))
		return -ENAMETOOLONG;
	r = run(l, &res, false, "lvchange", "-ay", "-K", lv, (char *)NULL);
	exec_result_done(&res);
	return r;
}

int lvm_deactivate(struct lvm *l)
{
	struct exec_result res = { 0 };
	int r;

	if (!l->dm)
		return 0;
	r = run(l, &res, false, "vgchange", "-an", LVM_VG, (char *)NULL);
	exec_result_done(&res);
	return r;
}

/* ---- the thin pool ------------------------------------------------------------ */

static int replace_once(char **s, const char *old, const char *new)
{
	char *p = strstr(*s, old), *n;

	if (!p)
		return -ENOENT;
	if (asprintf(&n, "%.*s%s%s", (int)(p - *s), *s, new, p + strlen(old)) < 0)
		return -ENOMEM;
	free(*s);
	*s = n;
	return 0;
}

/* Rename the LV block "\t\tOLD {" and drop VISIBLE from its status: it
 * becomes a hidden sub-LV of the pool, as lvconvert makes them. */
static int hide_lv(char **text, const char *old, const char *new)
{
	char from[96], to[96];
	char *blk, *end, *st;
	int r;

	snprintf(from, sizeof(from), "\n\t\t%s {\n", old);
	snprintf(to, sizeof(to), "\n\t\t%s {\n", new);
	r = replace_once(text, from, to);
	if (r < 0)
		return r;
	blk = strstr(*text, to);
	end = blk ? strstr(blk, "\n\t\t}\n") : NULL;
	st = blk ? strstr(blk, "status = [\"READ\", \"WRITE\", \"VISIBLE\"]") : NULL;
	if (!st || st > end)
		return -EBADMSG;
	/* st + 25 is ', "VISIBLE"' (11 bytes), st + 36 the closing ']' */
	memmove(st + 25, st + 36, strlen(st + 36) + 1);
	return 0;
}

static void random_lvm_id(char ret[39])
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char b[32] = { 0 };
	int o = 0, k = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		(void)!read(fd, b, sizeof(b));
		close(fd);
	}
	for (int g = 0; g < 7; g++) {
		if (g)
			ret[o++] = '-';
		for (int i = 0; i < (g == 0 || g == 6 ? 6 : 4); i++)
			ret[o++] = alphabet[b[k++] % 62];
	}
	ret[o] = '\0';
}

static int zero_4k(int fd, uint64_t off)
{
	static const char zeros[4096];
	return pwrite(fd, zeros, sizeof(zeros), (off_t)off) == (ssize_t)sizeof(zeros) ? 0 : -EIO;
}

/* Without device-mapper, lvconvert refuses ("thin-pool: required target not
 * detected"). The same metadata is then written the way LVM's own text
 * format describes a pool (what `vgcfgbackup` of an lvconvert'ed VG shows):
 * the linear 'data' becomes the hidden 'data_tdata', two more linear LVs of
 * meta_kib become 'data_tmeta' and 'lvol0_pmspare', and a visible
 * 'data' of type thin-pool ties them; vgcfgrestore --force commits it. */
static int thin_pool_metadata(struct lvm *l, uint64_t meta_kib, int disk_fd, uint64_t pv_offset)
{
	struct lvm_state s;
	const struct lvm_lv *data, *tm;
	struct exec_result res = { 0 };
	char tmp[] = "/tmp/devopslab-vg.XXXXXX", id[39], *blk = NULL;
	_cleanup_free_ char *text = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	size_t len = 0;
	int r, fd;

	r = lvm_read_state(l, &s);
	if (r >= 0 && !lvm_state_find(&s, "datatmeta"))
		r = lvm_lvcreate(l, "datatmeta", meta_kib);
	if (r >= 0 && !lvm_state_find(&s, "datapmspare"))
		r = lvm_lvcreate(l, "datapmspare", meta_kib);
	if (r >= 0)
		r = lvm_read_state(l, &s);
	if (r < 0)
		return r;
	data = lvm_state_find(&s, "data");
	tm = lvm_state_find(&s, "datatmeta");
	if (!data || !tm || !s.extent_size) {
		lvm_fail(l, "thin pool: the data or metadata LV is missing");
		return -EIO;
	}
	/* a zeroed superblock makes dm-thin format fresh metadata on first use */
	r = zero_4k(disk_fd, pv_offset + s.pe_start + tm->first_pe * s.extent_size);
	if (r < 0)
		return r;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	close(fd);
	r = run(l, &res, false, "vgcfgbackup", "-f", tmp, LVM_VG, (char *)NULL);
	exec_result_done(&res);
	if (r < 0)
		goto out;
	f = fopen(tmp, "re");
	if (!f || getdelim(&text, &len, '\0', f) < 0) {
		r = -EIO;
		goto out;
	}
	random_lvm_id(id);
	r = hide_lv(&text, "data", "data_tdata");
	if (r >= 0)
		r = hide_lv(&text, "datatmeta", "data_tmeta");
	if (r >= 0)
		r = hide_lv(&text, "datapmspare", "lvol0_pmspare");
	if (r >= 0 && asprintf(&blk,
			       "\tlogical_volumes {\n\n\t\tdata {\n\t\t\tid = \"%s\"\n"
			       "\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []\n"
			       "\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n"
			       "\t\t\t\textent_count = %" PRIu64 "\n\n\t\t\t\ttype = \"thin-pool\"\n"
			       "\t\t\t\tmetadata = \"data_tmeta\"\n\t\t\t\tpool = \"data_tdata\"\n"
			       "\t\t\t\ttransaction_id = 0\n\t\t\t\tchunk_size = 128\n"
			       "\t\t\t\tdiscards = \"passdown\"\n\t\t\t\tzero_new_blocks = 1\n\t\t\t}\n\t\t}\n",
			       id, data->size / s.extent_size) < 0)
		r = -ENOMEM;
	if (r >= 0)
		r = replace_once(&text, "\tlogical_volumes {\n", blk);
	if (r < 0) {
		lvm_fail(l, "thin pool: unexpected vgcfgbackup text (%s)", strerror(-r));
		goto out;
	}
	fclose(f);
	f = fopen(tmp, "we");
	if (!f || fputs(text, f) < 0 || fflush(f) != 0) {
		r = -EIO;
		goto out;
	}
	r = run(l, &res, false, "vgcfgrestore", "--force", "-f", tmp, LVM_VG, (char *)NULL);
	exec_result_done(&res);
out:
	free(blk);
	unlink(tmp);
	return r;
}

int lvm_thin_pool(struct lvm *l, uint64_t meta_kib, int disk_fd, uint64_t pv_offset)
{
	struct exec_result res = { 0 };
	char meta[32];
	int r;

	if (!l->dm)
		return thin_pool_metadata(l, meta_kib, disk_fd, pv_offset);
	snprintf(meta, sizeof(meta), "%" PRIu64 "K", meta_kib);
	r = run(l, &res, false, "lvconvert", "--yes", "--type", "thin-pool", "--poolmetadatasize", meta,
		LVM_VG "/data", (char *)NULL);
	exec_result_done(&res);
	return r;
}
