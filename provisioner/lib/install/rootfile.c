/* SPDX-License-Identifier: MIT */
/*
 * rootfile.c — files inside a target root. See rootfile.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rootfile.h"
#include "util.h"

#define COPY_BUF (64u << 10)

static __thread char rootfile_errbuf[512];

const char *rootfile_error(void)
{
	return rootfile_errbuf[0] ? rootfile_errbuf : "unknown error";
}

static int __attribute__((format(printf, 2, 3))) failf(int r, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	errno = saved; /* for %m */
	vsnprintf(rootfile_errbuf, sizeof(rootfile_errbuf), fmt, ap);
	va_end(ap);
	return r;
}


/* Resolve `path` as the target system would, never leaving rootfd. */
static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));

	return fd < 0 ? negative_errno() : (int)fd;
}

int rootfile_open_root(const char *root, int *ret_fd)
{
	int fd;

	if (isempty(root))
		return failf(-EINVAL, "no target root directory");
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return failf(negative_errno(), "cannot open target root '%s': %m", root);
	*ret_fd = fd;
	return 0;
}

static int check_path(const char *path)
{
	if (!path || path[0] != '/' || strlen(path) >= ROOTFILE_PATH_MAX || strstr(path, "/../") ||
	    path[strlen(path) - 1] == '/')
		return failf(-EINVAL, "bad target path '%s'", path ? path : "(null)");
	return 0;
}

/* Open the directory holding `path`; create missing ones (0:0, dir_mode)
 * when dir_mode is not 0. *ret_base points into path. */
static int open_parent(int rootfd, const char *path, mode_t dir_mode, int *ret_dfd, const char **ret_base)
{
	char prefix[ROOTFILE_PATH_MAX];
	const char *last = strrchr(path, '/');
	_cleanup_close_ int fd = -1;
	int r;

	r = check_path(path);
	if (r < 0)
		return r;
	fd = open_in_root(rootfd, "/", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return failf(fd, "cannot open the target root: %m");
	for (const char *p = path + 1; p <= last;) {
		const char *end = strchr(p, '/');
		size_t clen = (size_t)(end - p);
		int nfd;

		memcpy(prefix, path, (size_t)(end - path));
		prefix[end - path] = '\0';
		if (clen == 0) {
			p = end + 1;
			continue;
		}
		nfd = open_in_root(rootfd, prefix, O_RDONLY | O_DIRECTORY);
		if (nfd == -ENOENT && dir_mode) {
			char comp[ROOTFILE_PATH_MAX];

			memcpy(comp, p, clen);
			comp[clen] = '\0';
			if (mkdirat(fd, comp, 0700) < 0 && errno != EEXIST)
				return failf(negative_errno(), "cannot create '%s' in the target: %m", prefix);
			nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd < 0)
				return failf(negative_errno(), "cannot open '%s' in the target: %m", prefix);
			if (fchown(nfd, 0, 0) < 0 || fchmod(nfd, dir_mode) < 0) {
				r = failf(negative_errno(), "cannot set owner/mode of '%s' in the target: %m", prefix);
				close(nfd);
				return r;
			}
		}
		if (nfd < 0)
			return failf(nfd, "cannot open '%s' in the target: %s", prefix, strerror(-nfd));
		close(fd);
		fd = nfd;
		p = end + 1;
	}
	*ret_dfd = TAKE_FD(fd);
	*ret_base = last + 1;
	return 0;
}

int rootfile_read(int rootfd, const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int r;

	r = check_path(path);
	if (r < 0)
		return r;
	fd = open_in_root(rootfd, path, O_RDONLY | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return fd == -ENOENT ? -ENOENT : failf(fd, "cannot open '%s' in the target: %s", path, strerror(-fd));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return failf(-EINVAL, "'%s' in the target is not a regular file", path);
	if ((uint64_t)st.st_size > max)
		return failf(-EFBIG, "'%s' in the target is larger than %zu bytes", path, max);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + len, (size_t)st.st_size - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return failf(negative_errno(), "cannot read '%s' in the target: %m", path);
		if (k == 0)
			break;
		len += (size_t)k;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

int rootfile_stat(int rootfd, const char *path, struct stat *ret)
{
	_cleanup_close_ int dfd = -1;
	const char *base;
	int r;

	r = open_parent(rootfd, path, 0, &dfd, &base);
	if (r < 0)
		return r;
	if (fstatat(dfd, base, ret, AT_SYMLINK_NOFOLLOW) < 0)
		return failf(negative_errno(), "cannot stat '%s' in the target: %m", path);
	return 0;
}

/* ---- the set ----------------------------------------------------------- */

static int set_add(struct rootfile_set *s, enum rootfile_type type, const char *path, const char *content,
		   size_t len, mode_t mode, mode_t dir_mode, struct rootfile **ret)
{
	struct rootfile *f;

	if (s->n >= ROOTFILE_SET_MAX)
		return failf(-E2BIG, "too many files in one step");
	if (check_path(path) < 0)
		return -EINVAL;
	f = &s->items[s->n];
	*f = (struct rootfile){ .type = type, .mode = mode, .dir_mode = dir_mode, .len = len };
	snprintf(f->path, sizeof(f->path), "%s", path);
	if (content) {
		f->content = malloc(len + 1);
		if (!f->content)
			return -ENOMEM;
		memcpy(f->content, content, len);
		f->content[len] = '\0';
	}
	s->n++;
	if (ret)
		*ret = f;
	return 0;
}

int rootfile_set_file(struct rootfile_set *s, const char *path, const char *content, size_t len, mode_t mode,
		      mode_t dir_mode)
{
	return set_add(s, ROOTFILE_FILE, path, content, len, mode, dir_mode, NULL);
}

int rootfile_set_symlink(struct rootfile_set *s, const char *path, const char *target)
{
	return set_add(s, ROOTFILE_SYMLINK, path, target, strlen(target), 0777, 0755, NULL);
}

int rootfile_set_absent(struct rootfile_set *s, const char *path)
{
	return set_add(s, ROOTFILE_ABSENT, path, NULL, 0, 0, 0, NULL);
}

int rootfile_set_absent_prefix(struct rootfile_set *s, const char *dir, const char *prefix)
{
	return set_add(s, ROOTFILE_ABSENT_PREFIX, dir, prefix, strlen(prefix), 0, 0, NULL);
}

int rootfile_set_copy(struct rootfile_set *s, const char *path, const char *source, mode_t mode, mode_t dir_mode)
{
	struct rootfile *f = NULL;
	int r = set_add(s, ROOTFILE_COPY, path, NULL, 0, mode, dir_mode, &f);

	if (r >= 0)
		f->source = source;
	return r;
}

void rootfile_set_done(struct rootfile_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		/* Some contents are password hashes: wipe before freeing. */
		explicit_wipe(s->items[i].content, s->items[i].len);
		free(s->items[i].content);
	}
	s->n = 0;
}

/* ---- comparing --------------------------------------------------------- */

static int fd_equals(int fd, const char *want, size_t len, bool *ret_same)
{
	char buf[COPY_BUF];
	size_t off = 0;

	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		if (off + (size_t)k > len || memcmp(buf, want + off, (size_t)k) != 0) {
			*ret_same = false;
			return 0;
		}
		off += (size_t)k;
	}
	*ret_same = off == len;
	return 0;
}

static int fds_equal(int a, int b, bool *ret_same)
{
	char ba[COPY_BUF], bb[COPY_BUF];

	for (;;) {
		ssize_t ka = read(a, ba, sizeof(ba)), kb, got = 0;

		if (ka < 0)
			return negative_errno();
		if (ka == 0) { /* a ended: the same when b ends here too */
			char c;

			*ret_same = read(b, &c, 1) == 0;
			return 0;
		}
		while (got < ka) { /* b may return shorter reads */
			kb = read(b, bb + got, (size_t)(ka - got));
			if (kb < 0)
				return negative_errno();
			if (kb == 0)
				break;
			got += kb;
		}
		if (got != ka || memcmp(ba, bb, (size_t)ka) != 0) {
			*ret_same = false;
			return 0;
		}
	}
}

static bool meta_ok(const struct stat *st, const struct rootfile *f)
{
	return S_ISREG(st->st_mode) && (st->st_mode & 07777) == f->mode && st->st_uid == 0 && st->st_gid == f->gid;
}

static int check_file(int dfd, const char *base, const struct rootfile *f, bool *ret_same)
{
	_cleanup_close_ int fd = -1, src = -1;
	struct stat st, sst;

	*ret_same = false;
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : failf(negative_errno(), "cannot open '%s': %m", f->path);
	if (fstat(fd, &st) < 0)
		return failf(negative_errno(), "cannot stat '%s': %m", f->path);
	if (!meta_ok(&st, f))
		return 0;
	if (f->type == ROOTFILE_FILE)
		return (uint64_t)st.st_size == f->len ? fd_equals(fd, f->content, f->len, ret_same) : 0;
	src = open(f->source, O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &sst) < 0)
		return failf(negative_errno(), "cannot read '%s': %m", f->source);
	if (sst.st_size != st.st_size)
		return 0;
	return fds_equal(src, fd, ret_same);
}

/* The directory of a "no file named PREFIX*" entry; *ret NULL when the
 * directory does not exist (nothing can be there). */
static int open_prefix_dir(int rootfd, const struct rootfile *f, DIR **ret)
{
	int fd = open_in_root(rootfd, f->path, O_RDONLY | O_DIRECTORY);

	*ret = NULL;
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return failf(fd, "cannot open '%s': %s", f->path, strerror(-fd));
	*ret = fdopendir(fd);
	if (!*ret) {
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

static int check_prefix(int rootfd, const struct rootfile *f, bool *ret_same)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r;

	*ret_same = true;
	r = open_prefix_dir(rootfd, f, &d);
	if (r < 0 || !d)
		return r;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, f->content, f->len) == 0)
			*ret_same = false;
	return 0;
}

int rootfile_check(int rootfd, const struct rootfile *f, bool *ret_same)
{
	_cleanup_close_ int dfd = -1;
	const char *base;
	char link[ROOTFILE_PATH_MAX];
	struct stat st;
	ssize_t k;
	int r;

	if (f->type == ROOTFILE_ABSENT_PREFIX)
		return check_prefix(rootfd, f, ret_same);
	r = open_parent(rootfd, f->path, 0, &dfd, &base);
	if (r == -ENOENT || r == -ENOTDIR) {
		*ret_same = f->type == ROOTFILE_ABSENT;
		return 0;
	}
	if (r < 0)
		return r;
	switch (f->type) {
	case ROOTFILE_FILE:
	case ROOTFILE_COPY:
		return check_file(dfd, base, f, ret_same);
	case ROOTFILE_SYMLINK:
		k = readlinkat(dfd, base, link, sizeof(link));
		*ret_same = k >= 0 && (size_t)k == f->len && memcmp(link, f->content, f->len) == 0 &&
			    fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid == 0 && st.st_gid == 0;
		return 0;
	case ROOTFILE_ABSENT:
		*ret_same = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
		return 0;
	default:
		return -EINVAL;
	}
}

int rootfile_set_check(int rootfd, const struct rootfile_set *s, bool *ret_done)
{
	for (size_t i = 0; i < s->n; i++) {
		bool same;
		int r = rootfile_check(rootfd, &s->items[i], &same);

		if (r < 0)
			return r;
		if (!same) {
			*ret_done = false;
			return 0;
		}
	}
	*ret_done = true;
	return 0;
}

/* ---- writing ----------------------------------------------------------- */

static int tmp_name(const char *base, char *buf, size_t size)
{
	uint64_t rnd;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return negative_errno();
	if (snprintf(buf, size, ".#%.200s.%016llx", base, (unsigned long long)rnd) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, p, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

static int copy_from(int fd, const char *source)
{
	_cleanup_close_ int src = open(source, O_RDONLY | O_CLOEXEC);
	char buf[COPY_BUF];

	if (src < 0)
		return negative_errno();
	for (;;) {
		ssize_t k = read(src, buf, sizeof(buf));
		int r;

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			return 0;
		r = write_all(fd, buf, (size_t)k);
		if (r < 0)
			return r;
	}
}

/* Fill the temporary file, then rename it into place. */
static int write_tmp_file(int dfd, const char *tmp, const struct rootfile *f)
{
	_cleanup_close_ int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int r;

	if (fd < 0)
		return failf(negative_errno(), "cannot create a temporary file for '%s': %m", f->path);
	r = f->type == ROOTFILE_FILE ? write_all(fd, f->content, f->len) : copy_from(fd, f->source);
	if (r < 0)
		return failf(r, "cannot write '%s': %s", f->path, strerror(-r));
	if (fchown(fd, 0, f->gid) < 0 || fchmod(fd, f->mode) < 0 || fsync(fd) < 0)
		return failf(negative_errno(), "cannot finish '%s': %m", f->path);
	return 0;
}

static int replace(int dfd, const char *base, const struct rootfile *f)
{
	char tmp[ROOTFILE_PATH_MAX];
	int r;

	r = tmp_name(base, tmp, sizeof(tmp));
	if (r < 0)
		return failf(r, "cannot name a temporary file for '%s'", f->path);
	if (f->type == ROOTFILE_SYMLINK) {
		if (symlinkat(f->content, dfd, tmp) < 0)
			return failf(negative_errno(), "cannot create symlink '%s': %m", f->path);
		if (fchownat(dfd, tmp, 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
			r = failf(negative_errno(), "cannot set the owner of '%s': %m", f->path);
	} else {
		r = write_tmp_file(dfd, tmp, f);
	}
	if (r >= 0 && renameat(dfd, tmp, dfd, base) < 0)
		r = failf(negative_errno(), "cannot rename into '%s': %m", f->path);
	if (r < 0) {
		(void)unlinkat(dfd, tmp, 0);
		return r;
	}
	if (fsync(dfd) < 0)
		return failf(negative_errno(), "cannot sync the directory of '%s': %m", f->path);
	return 0;
}

static int remove_prefix(int rootfd, const struct rootfile *f)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r;

	r = open_prefix_dir(rootfd, f, &d);
	if (r < 0 || !d)
		return r;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, f->content, f->len) == 0 && unlinkat(dirfd(d), de->d_name, 0) < 0 &&
		    errno != ENOENT)
			return failf(negative_errno(), "cannot remove '%s/%s': %m", f->path, de->d_name);
	return fsync(dirfd(d)) < 0 ? failf(negative_errno(), "cannot sync '%s': %m", f->path) : 0;
}

int rootfile_apply(int rootfd, const struct rootfile *f)
{
	_cleanup_close_ int dfd = -1;
	const char *base;
	int r;

	if (f->type == ROOTFILE_ABSENT_PREFIX)
		return remove_prefix(rootfd, f);
	r = open_parent(rootfd, f->path, f->type == ROOTFILE_ABSENT ? 0 : (f->dir_mode ? f->dir_mode : 0755), &dfd,
			&base);
	if (f->type == ROOTFILE_ABSENT && (r == -ENOENT || r == -ENOTDIR))
		return 0;
	if (r < 0)
		return r;
	if (f->type == ROOTFILE_ABSENT) {
		if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT)
			return failf(negative_errno(), "cannot remove '%s': %m", f->path);
		return fsync(dfd) < 0 ? failf(negative_errno(), "cannot sync the directory of '%s': %m", f->path) : 0;
	}
	return replace(dfd, base, f);
}

int rootfile_set_apply(int rootfd, const struct rootfile_set *s, unsigned *ret_writes)
{
	unsigned writes = 0;

	for (size_t i = 0; i < s->n; i++) {
		bool same;
		int r = rootfile_check(rootfd, &s->items[i], &same);

		if (r >= 0 && !same) {
			r = rootfile_apply(rootfd, &s->items[i]);
			writes++;
		}
		if (r < 0)
			return r;
	}
	if (ret_writes)
		*ret_writes = writes;
	return 0;
}
