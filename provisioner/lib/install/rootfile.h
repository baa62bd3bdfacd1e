/* SPDX-License-Identifier: MIT */
/*
 * rootfile.h — files inside a target root (the installed system at
 * /mnt/target), compared and written the crash-safe way.
 *
 * Paths are absolute as seen from inside the target ("/etc/hostname").
 * They are resolved with openat2(RESOLVE_IN_ROOT): a symlink in the target
 * (Debian's /lib -> usr/lib, or an absolute one) is followed as the booted
 * system would follow it, and can never lead outside the root directory.
 * The last component is never followed: a symlink at /etc/resolv.conf is
 * replaced, not written through.
 *
 * Every write goes to a temporary name in the same directory, is fsync'd,
 * gets owner 0:0 and its mode, then is renamed over the old name and the
 * directory fsync'd (rename(2) is atomic: after a power cut the old or the
 * new file is there, never half of one).
 *
 * A desired state is a list of artifacts (struct rootfile_set): "this file
 * with these bytes and mode", "this symlink", "nothing here". check() is
 * rootfile_set_check(), apply() rootfile_set_apply(), which writes only
 * what differs: a second run writes nothing. Errors: 0 or -errno, detail
 * in rootfile_error() (paths only, never content: some files hold hashes).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define ROOTFILE_PATH_MAX 256u
#define ROOTFILE_READ_MAX (1u << 20) /* files we read to edit (/etc/shadow, /etc/hosts) */
#define ROOTFILE_SET_MAX 12u

enum rootfile_type {
	ROOTFILE_FILE,          /* content, mode; owner 0:0 */
	ROOTFILE_SYMLINK,       /* content is the link target */
	ROOTFILE_ABSENT,        /* path must not exist (a file or symlink) */
	ROOTFILE_ABSENT_PREFIX, /* no entry of directory `path` starts with `content` */
	ROOTFILE_COPY,          /* a copy of the host file `source`, with mode */
};

struct rootfile {
	enum rootfile_type type;
	char path[ROOTFILE_PATH_MAX];
	char *content; /* owned */
	size_t len;
	mode_t mode;
	mode_t dir_mode; /* for missing parent directories */
	gid_t gid;       /* group of a FILE/COPY (owner is always 0): /etc/shadow is root:shadow */
	const char *source; /* ROOTFILE_COPY: borrowed host path */
};

struct rootfile_set {
	struct rootfile items[ROOTFILE_SET_MAX];
	size_t n;
};

const char *rootfile_error(void);

/* Open the target root directory (O_PATH would do, but fsync needs a real fd). */
int rootfile_open_root(const char *root, int *ret_fd);

/* Read a file of the target: -ENOENT when it is absent, -EFBIG above max. */
int rootfile_read(int rootfd, const char *path, size_t max, char **ret, size_t *ret_len);

/* lstat(2) of a file of the target (resolved as rootfile_read() does). */
int rootfile_stat(int rootfd, const char *path, struct stat *ret);

/* Adding artifacts (content is copied). -E2BIG when the set is full.
 * The last one added is s->items[s->n - 1] (to set its gid). */
int rootfile_set_file(struct rootfile_set *s, const char *path, const char *content, size_t len, mode_t mode,
		      mode_t dir_mode);
int rootfile_set_symlink(struct rootfile_set *s, const char *path, const char *target);
int rootfile_set_absent(struct rootfile_set *s, const char *path);
int rootfile_set_absent_prefix(struct rootfile_set *s, const char *dir, const char *prefix);
int rootfile_set_copy(struct rootfile_set *s, const char *path, const char *source, mode_t mode, mode_t dir_mode);
void rootfile_set_done(struct rootfile_set *s);

/* Is the target exactly as the set says? Read-only. */
int rootfile_set_check(int rootfd, const struct rootfile_set *s, bool *ret_done);
/* Make it so, touching only what differs; *ret_writes (may be NULL) counts them. */
int rootfile_set_apply(int rootfd, const struct rootfile_set *s, unsigned *ret_writes);

/* One artifact, for callers that need it alone. */
int rootfile_check(int rootfd, const struct rootfile *f, bool *ret_same);
int rootfile_apply(int rootfd, const struct rootfile *f);

static inline void rootfile_set_donep(struct rootfile_set *s)
{
	rootfile_set_done(s);
}
