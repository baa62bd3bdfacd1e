/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "disk-apply.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "lvm.h"
#include "mkfs.h"
#include "manifest/seed-id.h"
#include "util.h"
#include "wipe.h"

static int tfail(struct disk_target *t, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tfail(struct disk_target *t, int r, const char *fmt, ...)
{
	va_list ap;

	if (!t->err[0]) {
		va_start(ap, fmt);
		vsnprintf(t->err, sizeof(t->err), fmt, ap);
		va_end(ap);
	}
	return r;
}

static void note(struct disk_target *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct disk_target *t, const char *fmt, ...)
{
	size_t len = strlen(t->done);
	va_list ap;

	if (len + 3 >= sizeof(t->done))
		return;
	if (len)
		t->done[len++] = ';', t->done[len++] = ' ', t->done[len] = '\0';
	va_start(ap, fmt);
	vsnprintf(t->done + len, sizeof(t->done) - len, fmt, ap);
	va_end(ap);
}

const char *disk_wipe_name(enum mf_wipe w)
{
	return w == MF_WIPE_ALWAYS ? "always" : w == MF_WIPE_DEVOPSLAB ? "devopslab" : "never";
}

int disk_target_share(struct disk_target *t)
{
	struct stat a, b;
	int fd;

	if (t->fd < 0 || !t->path)
		return -EBADF;
	fd = open(t->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return tfail(t, negative_errno(), "cannot open '%s' again: %m", t->path);
	/* the same device, not whatever the path leads to now */
	if (fstat(fd, &a) < 0 || fstat(t->fd, &b) < 0 || a.st_rdev != b.st_rdev || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev) {
		close(fd);
		return tfail(t, -ESTALE, "'%s' is no longer the disk that was selected", t->path);
	}
	close(t->fd); /* drops O_EXCL and the flock */
	t->fd = fd;
	if (flock(t->fd, LOCK_EX | LOCK_NB) < 0)
		return tfail(t, negative_errno(), "'%s' was locked by another process (flock): %m", t->path);
	return 0;
}

void disk_target_done(struct disk_target *t)
{
	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd); /* also drops the flock */
	t->fd = -1;
	t->disk = disk_free(t->disk);
	free(t->path);
	free(t->backup_dir);
	t->path = t->backup_dir = NULL;
}

/* Refuse, before the disk is ever opened for writing, anything in use. */
static int refuse_in_use(struct disk_target *t)
{
	const struct disk *d = t->disk;

	if (d->boot || d->mounted || d->swap || d->held)
		return tfail(t, -EPERM, "refusing '%s': %s", t->path, d->in_use ? d->in_use : "in use");
	if (d->readonly)
		return tfail(t, -EPERM, "refusing '%s': the device is read-only", t->path);
	return 0;
}

int disk_target_open(struct disk_target *t, const char *path, const struct layout_input *in, const char *seed,
		     const char *node, const char *backup_dir)
{
	struct layout_input li = *in;
	struct stat st;
	int r, flags;

	t->err[0] = t->done[0] = '\0';
	if (!(t->path = strdup(path)) || (backup_dir && !(t->backup_dir = strdup(backup_dir))))
		return -ENOMEM;
	snprintf(t->seed, sizeof(t->seed), "%s", seed);
	snprintf(t->node, sizeof(t->node), "%s", node);
	r = disk_probe_path(NULL, path, &t->disk);
	if (r < 0)
		return tfail(t, r, "%s", disk_errbuf());
	r = refuse_in_use(t);
	if (r < 0)
		return r;
	if (stat(path, &st) < 0)
		return tfail(t, negative_errno(), "'%s': %m", path);
	/* O_EXCL on a block device: the kernel refuses if anything (a mount,
	 * a device-mapper table, md) claims it, whatever our probe saw. */
	flags = O_RDWR | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0);
	t->fd = open(path, flags);
	if (t->fd < 0)
		return tfail(t, negative_errno(), "cannot open '%s' for writing: %m", path);
	if (flock(t->fd, LOCK_EX | LOCK_NB) < 0)
		return tfail(t, negative_errno(), "'%s' is locked by another process (flock): %m", path);
	li.disk_bytes = t->disk->size;
	li.sector_size = t->disk->logical_sector;
	r = layout_compute(&li, &t->layout, t->err, sizeof(t->err));
	if (r < 0)
		return r;
	r = part_spec_init(&t->spec, &t->layout, seed, node);
	if (r < 0)
		return tfail(t, r, "deriving identifiers from the seed: %s", strerror(-r));
	r = part_check(t->fd, path, &t->spec, &t->part_state, t->part_why, sizeof(t->part_why));
	if (r < 0)
		return tfail(t, r, "%s", part_errbuf());
	return 0;
}

int disk_policy_check(struct disk_target *t, enum mf_wipe wipe, bool recovery, enum disk_verdict_code *ret)
{
	char what[768];
	int r = refuse_in_use(t);

	if (r < 0)
		return r;
	if (t->part_state == PART_STATE_MATCHES) {
		*ret = DISK_OK_CONVERGE;
		return 0;
	}
	if (!disk_has_content(t->disk) && t->part_state == PART_STATE_EMPTY) {
		*ret = DISK_OK_EMPTY;
		return 0;
	}
	if (wipe == MF_WIPE_ALWAYS || recovery ||
	    (wipe == MF_WIPE_DEVOPSLAB && t->part_state == PART_STATE_OURS)) {
		*ret = DISK_OK_WIPE;
		return 0;
	}
	disk_describe_content(t->disk, what, sizeof(what));
	return tfail(t, -EPERM,
		     "refusing to wipe '%s' (wipe: %s%s): it holds %s",
		     t->path, disk_wipe_name(wipe),
		     wipe == MF_WIPE_DEVOPSLAB ? ", and it does not carry the devopslab marker" : "", what);
}

/* ---- partition ------------------------------------------------------------- */

int disk_partition_check(struct disk_target *t, bool *ret_done)
{
	int r = part_check(t->fd, t->path, &t->spec, &t->part_state, t->part_why, sizeof(t->part_why));

	if (r < 0)
		return tfail(t, r, "%s", part_errbuf());
	*ret_done = t->part_state == PART_STATE_MATCHES;
	return 0;
}

static int save_backup(struct disk_target *t)
{
	_cleanup_free_ char *p = NULL;
	int r;

	if (t->backup_dir)
		r = asprintf(&p, "%s/%s.%lld.devopslab-backup", t->backup_dir, t->disk->name, (long long)time(NULL));
	else if (t->disk->transport == DISK_TRANSPORT_FILE)
		r = asprintf(&p, "%s.%lld.devopslab-backup", t->path, (long long)time(NULL));
	else
		r = asprintf(&p, "/run/devopslab-%s.%lld.backup", t->disk->name, (long long)time(NULL));
	if (r < 0)
		return -ENOMEM;
	r = wipe_save_backup(t->fd, t->disk->size, p);
	if (r < 0)
		return tfail(t, r, "%s (not wiping without a backup)", wipe_errbuf());
	note(t, "saved the first and last MiB to %s", p);
	return 0;
}

int disk_partition_apply(struct disk_target *t, bool wipe_first)
{
	char report[512];
	int r;

	if (wipe_first) {
		r = save_backup(t);
		if (r < 0)
			return r;
		r = wipe_all(t->fd, t->disk, report, sizeof(report));
		if (r < 0)
			return tfail(t, r, "wiping '%s': %s", t->path, wipe_errbuf());
		note(t, "wiped %s", report[0] ? report : "nothing");
	}
	r = part_write(t->fd, t->path, &t->spec);
	if (r < 0)
		return tfail(t, r, "%s", part_errbuf());
	note(t, "wrote the GPT (disk GUID %s)", t->spec.disk_uuid);
	return 0;
}

/* ---- LVM --------------------------------------------------------------------- */

static uint64_t pv_offset(const struct disk_target *t)
{
	return layout_lvm_part(&t->layout)->start * t->layout.sector_size;
}

static uint64_t pv_size(const struct disk_target *t)
{
	const struct layout_part *p = layout_lvm_part(&t->layout);
	return (p->end - p->start + 1) * t->layout.sector_size;
}

static int pv_open(struct disk_target *t, struct loop_dev *loop, struct lvm *l)
{
	int r = loop_attach(t->fd, pv_offset(t), pv_size(t), t->layout.sector_size, false, loop);

	if (r < 0)
		return tfail(t, r, "attaching a loop device for the LVM partition: %s", strerror(-r));
	r = lvm_init(l, loop->path);
	return r < 0 ? tfail(t, r, "lvm: bad device name %s", loop->path) : 0;
}

/* Compare what is there with the layout. *ret_bad says when an existing
 * volume contradicts it (we never resize or remove). */
static bool lvm_complete(const struct disk_target *t, const struct lvm_state *s, char *bad, size_t badsz)
{
	const struct layout *l = &t->layout;
	struct {
		const char *name, *segtype;
		uint64_t kib;
	} want[] = { { "swap", "linear", l->swap_kib }, { "root", "linear", l->root_kib },
		     { "data", l->thin ? "thin-pool" : NULL, l->data_kib } };
	bool complete = s->pv && streq(s->pv_vg, LVM_VG) && s->vg;

	bad[0] = '\0';
	if (s->pv && s->pv_vg[0] && !streq(s->pv_vg, LVM_VG))
		snprintf(bad, badsz, "the LVM partition belongs to VG '%s'", s->pv_vg);
	for (size_t i = 0; i < ELEMENTSOF(want); i++) {
		const struct lvm_lv *lv = lvm_state_find(s, want[i].name);
		if (!want[i].kib || (i == 2 && !l->thin))
			continue;
		if (!lv) {
			complete = false;
			continue;
		}
		if (lv->size != want[i].kib * 1024 && !bad[0])
			snprintf(bad, badsz, "LV %s is %" PRIu64 " bytes, the layout wants %" PRIu64, want[i].name,
				 lv->size, want[i].kib * 1024);
		if (!streq(lv->segtype, want[i].segtype))
			complete = false; /* data still linear: the pool conversion is missing */
	}
	return complete && !bad[0];
}

int disk_lvm_check(struct disk_target *t, bool *ret_done)
{
	struct loop_dev loop = LOOP_DEV_INIT;
	struct lvm l;
	struct lvm_state s;
	char bad[256];
	int r = pv_open(t, &loop, &l);

	if (r >= 0) {
		r = lvm_read_state(&l, &s);
		if (r < 0)
			tfail(t, r, "%s", l.errbuf);
	}
	loop_dev_done(&loop);
	if (r < 0)
		return r;
	*ret_done = lvm_complete(t, &s, bad, sizeof(bad));
	if (bad[0])
		return tfail(t, -EEXIST, "'%s': %s (refusing to change existing volumes)", t->path, bad);
	return 0;
}

static int lvm_steps(struct disk_target *t, struct lvm *l)
{
	const struct layout *lay = &t->layout;
	struct lvm_state s;
	char uuid[39];
	int r;

	r = lvm_read_state(l, &s);
	if (r >= 0 && !s.pv) {
		r = seed_id_lvm(t->seed, t->node, "lvm:pv", uuid);
		if (r >= 0)
			r = lvm_pvcreate(l, uuid);
		if (r >= 0)
			note(t, "pvcreate (PV UUID %s)", uuid);
	}
	if (r >= 0 && !s.vg) {
		r = lvm_vgcreate(l);
		if (r >= 0)
			note(t, "vgcreate " LVM_VG);
	}
	if (r >= 0)
		r = lvm_read_state(l, &s);
	if (r >= 0 && lay->swap_kib && !lvm_state_find(&s, "swap") && (r = lvm_lvcreate(l, "swap", lay->swap_kib)) >= 0)
		note(t, "lvcreate swap %" PRIu64 "K", lay->swap_kib);
	if (r >= 0 && !lvm_state_find(&s, "root") && (r = lvm_lvcreate(l, "root", lay->root_kib)) >= 0)
		note(t, "lvcreate root %" PRIu64 "K", lay->root_kib);
	if (r >= 0 && lay->thin && !lvm_state_find(&s, "data") && (r = lvm_lvcreate(l, "data", lay->data_kib)) >= 0)
		note(t, "lvcreate data %" PRIu64 "K", lay->data_kib);
	if (r >= 0 && lay->thin) {
		const struct lvm_lv *d;
		r = lvm_read_state(l, &s);
		d = r >= 0 ? lvm_state_find(&s, "data") : NULL;
		if (d && !streq(d->segtype, "thin-pool") &&
		    (r = lvm_thin_pool(l, lay->meta_kib, t->fd, pv_offset(t))) >= 0)
			note(t, "thin pool data (metadata %" PRIu64 "K)", lay->meta_kib);
	}
	if (r >= 0)
		r = lvm_deactivate(l);
	return r < 0 ? tfail(t, r, "%s", l->errbuf[0] ? l->errbuf : strerror(-r)) : 0;
}

int disk_lvm_apply(struct disk_target *t)
{
	struct loop_dev loop = LOOP_DEV_INIT;
	struct lvm l;
	int r = pv_open(t, &loop, &l);

	if (r >= 0)
		r = lvm_steps(t, &l);
	loop_dev_done(&loop);
	return r;
}

/* ---- filesystems --------------------------------------------------------------- */

struct fs_want {
	const char *what;    /* "ESP", "root", "swap" */
	const char *type;    /* blkid TYPE */
	char id[SEED_UUID_STR]; /* as mkfs takes it */
	char blkid_uuid[SEED_UUID_STR]; /* as blkid shows it */
	uint64_t off, size;
};

static int fs_wants(struct disk_target *t, struct fs_want w[3], size_t *ret_n)
{
	const struct layout *l = &t->layout;
	const struct layout_part *esp = &l->parts[l->n_parts - 2];
	struct loop_dev loop = LOOP_DEV_INIT;
	struct lvm lv;
	struct lvm_state s;
	size_t n = 0;
	int r;

	w[n] = (struct fs_want){ .what = "ESP", .type = "vfat" };
	seed_id_vfat(t->seed, t->node, "fs:esp", w[n].id);
	snprintf(w[n].blkid_uuid, sizeof(w[n].blkid_uuid), "%.4s-%.4s", w[n].id, w[n].id + 4);
	w[n].off = esp->start * l->sector_size;
	w[n++].size = (esp->end - esp->start + 1) * l->sector_size;

	r = pv_open(t, &loop, &lv);
	if (r >= 0 && (r = lvm_read_state(&lv, &s)) < 0)
		tfail(t, r, "%s", lv.errbuf);
	loop_dev_done(&loop);
	if (r < 0)
		return r;
	const char *names[] = { "root", "swap" }, *types[] = { "ext4", "swap" }, *purp[] = { "fs:root", "fs:swap" };
	for (size_t i = 0; i < 2; i++) {
		const struct lvm_lv *v = lvm_state_find(&s, names[i]);
		if (!v && i == 1 && !l->swap_kib)
			continue;
		if (!v || v->n_segs != 1 || !streq(v->segtype, "linear"))
			return tfail(t, -ENOENT, "LV %s is missing or not a single linear segment", names[i]);
		w[n] = (struct fs_want){ .what = names[i], .type = types[i] };
		seed_id_uuid(t->seed, t->node, purp[i], w[n].id);
		snprintf(w[n].blkid_uuid, sizeof(w[n].blkid_uuid), "%s", w[n].id);
		w[n].off = pv_offset(t) + s.pe_start + v->first_pe * s.extent_size;
		w[n++].size = v->size;
	}
	*ret_n = n;
	return 0;
}

/* Present (type and UUID) and, for filesystems, clean by fsck -n. */
static int fs_done(struct disk_target *t, const struct fs_want *w, bool *ret)
{
	struct disk_sig sig = { 0 };
	struct loop_dev loop = LOOP_DEV_INIT;
	char err[512];
	int r = disk_probe_region(t->fd, w->off, w->size, &sig);

	if (r < 0)
		return tfail(t, r, "probing the %s: %s", w->what, strerror(-r));
	*ret = streq_ptr(sig.type, w->type) && sig.uuid && strcasecmp(sig.uuid, w->blkid_uuid) == 0;
	disk_sig_done(&sig);
	if (!*ret || streq(w->type, "swap"))
		return 0;
	r = loop_attach(t->fd, w->off, w->size, t->layout.sector_size, true, &loop);
	if (r < 0)
		return tfail(t, r, "attaching a loop device for the %s: %s", w->what, strerror(-r));
	*ret = mkfs_fsck(w->type, loop.path, err, sizeof(err)) == 0; /* half-made: make it again */
	loop_dev_done(&loop);
	return 0;
}

int disk_fs_check(struct disk_target *t, bool *ret_done)
{
	struct fs_want w[3];
	size_t n = 0;
	bool all = true, one;
	int r = fs_wants(t, w, &n);

	for (size_t i = 0; r >= 0 && i < n && all; i++) {
		r = fs_done(t, &w[i], &one);
		all = all && one;
	}
	if (r < 0)
		return r;
	*ret_done = all;
	return 0;
}

int disk_fs_apply(struct disk_target *t)
{
	struct fs_want w[3];
	size_t n = 0;
	bool done;
	int r = fs_wants(t, w, &n);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct loop_dev loop = LOOP_DEV_INIT;
		char err[768];

		r = fs_done(t, &w[i], &done);
		if (r < 0 || done)
			continue;
		r = loop_attach(t->fd, w[i].off, w[i].size, t->layout.sector_size, false, &loop);
		if (r < 0)
			return tfail(t, r, "attaching a loop device for the %s: %s", w[i].what, strerror(-r));
		err[0] = '\0';
		r = streq(w[i].type, "vfat")   ? mkfs_vfat(loop.path, w[i].id, t->layout.sector_size, err, sizeof(err))
		    : streq(w[i].type, "ext4") ? mkfs_ext4(loop.path, w[i].id, err, sizeof(err))
					       : mkfs_swap(loop.path, w[i].id, err, sizeof(err));
		if (r >= 0 && fsync(loop.fd) < 0)
			r = negative_errno();
		loop_dev_done(&loop);
		if (r < 0)
			return tfail(t, r, "%s: %s", w[i].what, err[0] ? err : strerror(-r));
		note(t, "%s: %s %s", w[i].what, w[i].type, w[i].blkid_uuid);
	}
	return r;
}
