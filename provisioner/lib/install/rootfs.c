/* SPDX-License-Identifier: MIT */
/*
 * rootfs.c — the rootfs-extract step. See rootfs.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/extract.h"
#include "rootfile.h"
#include "rootfs.h"
#include "plan/run.h"
#include "sysconf.h"
#include "util.h"

#define WIPE_DEPTH_MAX 256u

/* A root file system: more entries than a bundle, no bomb ratio worth
 * checking below what the bundle verification already bounds. */
static const struct extract_limits rootfs_limits = {
	.max_entries = 4000000,
	.max_entry_bytes = 64ull << 30,
	.max_total_bytes = 1024ull << 30,
	.max_ratio = 1000,
};


/* The asset's file and signed digest, from the step's parameters. */
static int asset_of(struct run_ctx *ctx, const struct step *s, char *path, size_t size, char hex[65])
{
	const struct bundle *b = ctx->bundle;
	const char *file = step_param_string(s, "file"), *target = step_param_string(s, "target");
	const struct bundle_member *m;
	char member[BUNDLE_PATH_MAX];

	if (!b || !b->dir)
		return run_ctx_error(ctx, -EINVAL, "step '%s': no verified bundle to take the rootfs from", s->id);
	if (isempty(file) || strstr(file, "..") || file[0] == '/')
		return run_ctx_error(ctx, -EINVAL, "step '%s': bad asset file name", s->id);
	if (target && !streq(target, "/"))
		return run_ctx_error(ctx, -EOPNOTSUPP, "step '%s': only target '/' is supported", s->id);
	snprintf(member, sizeof(member), "%s/%s", BUNDLE_ASSETS_DIR, file);
	m = bundle_find(b, member);
	if (!m)
		return run_ctx_error(ctx, -ENOENT, "step '%s': the bundle has no '%s'", s->id, member);
	if (snprintf(path, size, "%s/%s", b->dir, member) >= (int)size)
		return run_ctx_error(ctx, -ENAMETOOLONG, "step '%s': asset path too long", s->id);
	for (size_t i = 0; i < SIG_SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", m->sha256[i]);
	return 0;
}

static int rootfs_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	char path[4096], hex[65], want[80];
	_cleanup_close_ int rootfd = -1;
	_cleanup_free_ char *have = NULL;
	size_t len;
	int r;

	r = asset_of(ctx, s, path, sizeof(path), hex);
	if (r < 0)
		return r;
	r = rootfile_open_root(ctx->root, &rootfd);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", rootfile_error());
	r = rootfile_read(rootfd, ROOTFS_MARKER, 1024, &have, &len);
	if (r == -ENOENT) {
		*ret_done = false;
		return 0;
	}
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", rootfile_error());
	snprintf(want, sizeof(want), "%s\n", hex);
	*ret_done = streq(have, want);
	return 0;
}

/* Empty directory dfd (whose st_dev is dev); *ret_kept: something stayed
 * (a mount point below), so the directory itself cannot go. */
static int wipe_dir(int dfd, dev_t dev, unsigned depth, bool top, const char *keep, bool *ret_kept)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd = dup(dfd);

	*ret_kept = false;
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return negative_errno();
	}
	if (depth > WIPE_DEPTH_MAX)
		return -ELOOP;
	while ((de = readdir(d))) {
		_cleanup_close_ int sub = -1;
		const char *keep_below = NULL;
		struct stat st;
		bool kept = false;
		int r;

		if (streq(de->d_name, ".") || streq(de->d_name, "..") || (top && streq(de->d_name, "lost+found")))
			continue;
		if (keep) {
			size_t n = strcspn(keep, "/");

			if (strlen(de->d_name) == n && strncmp(de->d_name, keep, n) == 0) {
				if (!keep[n]) { /* the kept file itself */
					*ret_kept = true;
					continue;
				}
				keep_below = keep + n + 1;
			}
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return negative_errno();
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(dfd, de->d_name, 0) < 0)
				return negative_errno();
			continue;
		}
		sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return negative_errno();
		r = wipe_dir(sub, st.st_dev, depth + 1, false, keep_below, &kept);
		if (r < 0)
			return r;
		/* another file system mounted here: emptied, kept */
		if (st.st_dev != dev || kept) {
			*ret_kept = true;
			continue;
		}
		if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0)
			return negative_errno();
	}
	return 0;
}

int rootfs_wipe(int rootfd, const char *keep)
{
	struct stat st, sys;
	bool kept;

	if (fstat(rootfd, &st) < 0)
		return negative_errno();
	/* Never the running system's own root, whatever path led here. */
	if (stat("/", &sys) < 0)
		return negative_errno();
	if (st.st_dev == sys.st_dev && st.st_ino == sys.st_ino)
		return -EPERM;
	if (keep && (keep[0] == '/' || strstr(keep, "..") || !keep[0]))
		return -EINVAL;
	return wipe_dir(rootfd, st.st_dev, 0, true, keep, &kept);
}

struct progress {
	const struct install_paths *ip;
	uint64_t total;
};

static void on_progress(uint64_t done, void *userdata)
{
	struct progress *p = userdata;

	p->ip->extract_progress(done, p->total, p->ip->userdata);
}

static int rootfs_apply(struct run_ctx *ctx, const struct step *s)
{
	const struct install_paths *ip = ctx->install;
	_cleanup_(extract_freep) struct extract *x = NULL;
	_cleanup_close_ int rootfd = -1, fd = -1;
	_cleanup_(rootfile_set_donep) struct rootfile_set marker = { .n = 0 };
	char path[4096], hex[65], line[80];
	struct progress pr = { .ip = ip };
	struct stat st;
	int r;

	r = asset_of(ctx, s, path, sizeof(path), hex);
	if (r < 0)
		return r;
	r = rootfile_open_root(ctx->root, &rootfd);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", rootfile_error());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot open the rootfs asset '%s': %m", path);
	r = rootfs_wipe(rootfd, &ROOTFS_INSTALL_JOURNAL[1]); /* relative to the root */
	if (r == -EPERM)
		return run_ctx_error(ctx, r, "refusing to empty '%s': it is this system's root", ctx->root);
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot empty the target root '%s': %s", ctx->root, strerror(-r));
	r = extract_new(ctx->root, EXTRACT_POLICY_ROOTFS, &rootfs_limits, &x);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", extract_error());
	if (ip && ip->extract_progress) {
		pr.total = (uint64_t)st.st_size;
		extract_set_progress(x, on_progress, &pr);
	}
	r = extract_archive_fd(x, fd);
	if (r < 0)
		return run_ctx_error(ctx, r, "extracting the rootfs: %s", extract_error());
	/* everything on disk before the marker says "done" */
	if (syncfs(rootfd) < 0)
		return run_ctx_error(ctx, negative_errno(), "syncing the target: %m");
	snprintf(line, sizeof(line), "%s\n", hex);
	r = rootfile_set_file(&marker, ROOTFS_MARKER, line, strlen(line), 0644, 0755);
	if (r >= 0)
		r = rootfile_apply(rootfd, &marker.items[0]);
	return r < 0 ? run_ctx_error(ctx, r, "%s", rootfile_error()) : 0;
}

const struct step_ops rootfs_extract_ops = { .check = rootfs_check, .apply = rootfs_apply };
