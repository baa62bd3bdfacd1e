/* SPDX-License-Identifier: MIT */
/*
 * extract.c — safe extraction beneath a directory. See extract.h for the
 * guarantees; the comments here say how each one is kept.
 */
#define _GNU_SOURCE 1 /* strchrnul */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "extract.h"
#include "util.h"

const struct extract_limits extract_limits_default = {
	.max_entries = 500000,
	.max_entry_bytes = 64ull << 30,
	.max_total_bytes = 256ull << 30,
	.max_ratio = 1000,
};

#define COMPONENT_MAX 255u
#define BUF_SIZE (64u << 10)

struct pathset {
	char **slots;
	size_t cap, n;
};

struct extract {
	int rootfd;
	unsigned flags;
	struct extract_limits limits;
	uint64_t entries, total_bytes;
	struct pathset seen;
	void (*progress)(uint64_t done, void *userdata);
	void *userdata;
	uint64_t progress_at;
};

static __thread char extract_errbuf[768];

const char *extract_error(void)
{
	return extract_errbuf[0] ? extract_errbuf : "unknown error";
}

void extract_error_clear(void)
{
	extract_errbuf[0] = 0;
}

static int __attribute__((format(printf, 2, 3))) failf(int r, const char *fmt, ...)
{
	va_list ap;

	if (!extract_errbuf[0]) {
		va_start(ap, fmt);
		vsnprintf(extract_errbuf, sizeof(extract_errbuf), fmt, ap);
		va_end(ap);
	}
	return r;
}

/* ---- the set of paths extracted so far (duplicates, hardlink targets) -- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static char **pathset_slot(const struct pathset *s, const char *p)
{
	size_t i = (size_t)fnv1a(p) & (s->cap - 1);

	while (s->slots[i] && !streq(s->slots[i], p))
		i = (i + 1) & (s->cap - 1);
	return &s->slots[i];
}

static bool pathset_contains(const struct pathset *s, const char *p)
{
	return s->cap && *pathset_slot(s, p);
}

static int pathset_grow(struct pathset *s)
{
	struct pathset bigger = { .cap = s->cap ? 2 * s->cap : 256 };

	bigger.slots = calloc(bigger.cap, sizeof(char *));
	if (!bigger.slots)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i])
			*pathset_slot(&bigger, s->slots[i]) = s->slots[i];
	bigger.n = s->n;
	free(s->slots);
	*s = bigger;
	return 0;
}

/* 0 when added, -EEXIST when already there. */
static int pathset_add(struct pathset *s, const char *p)
{
	char **slot;

	if (2 * (s->n + 1) > s->cap && pathset_grow(s) < 0)
		return -ENOMEM;
	slot = pathset_slot(s, p);
	if (*slot)
		return -EEXIST;
	*slot = strdup(p);
	if (!*slot)
		return -ENOMEM;
	s->n++;
	return 0;
}

static void pathset_done(struct pathset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
	*s = (struct pathset){};
}

/* ---- lifecycle ------------------------------------------------------------ */

int extract_new(const char *dir, unsigned flags, const struct extract_limits *limits, struct extract **ret)
{
	struct extract *x;
	int fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return failf(negative_errno(), "cannot open target directory '%s': %m", dir);
	x = calloc(1, sizeof(*x));
	if (!x) {
		close(fd);
		return -ENOMEM;
	}
	x->rootfd = fd;
	x->flags = flags;
	x->limits = limits ? *limits : extract_limits_default;
	*ret = x;
	return 0;
}

struct extract *extract_free(struct extract *x)
{
	if (x) {
		if (x->rootfd >= 0)
			close(x->rootfd);
		pathset_done(&x->seen);
		free(x);
	}
	return NULL;
}

/* ---- paths -------------------------------------------------------------- */

int extract_normalize_path(const char *path, char *out)
{
	size_t n = 0, depth = 0;
	const char *p = path;

	if (!path || !*path)
		return failf(-EINVAL, "member with an empty path");
	if (*path == '/')
		return failf(-EINVAL, "member '%.200s': absolute path", path);
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);

		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* empty or "." component: skip */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			return failf(-EINVAL, "member '%.200s': '..' component", path);
		} else {
			if (len > COMPONENT_MAX)
				return failf(-EINVAL, "member '%.200s...': a name longer than %u bytes", path,
					     COMPONENT_MAX);
			for (size_t i = 0; i < len; i++)
				if ((uint8_t)p[i] < 0x20 || p[i] == 0x7f)
					return failf(-EINVAL, "member path has a control character");
			if (++depth > EXTRACT_DEPTH_MAX)
				return failf(-EINVAL, "member '%.200s...': deeper than %u", path, EXTRACT_DEPTH_MAX);
			if (n + (n > 0) + len > EXTRACT_PATH_MAX)
				return failf(-EINVAL, "member '%.200s...': path longer than %u bytes", path,
					     EXTRACT_PATH_MAX);
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p = *end ? end + 1 : end;
	}
	out[n] = 0;
	return 0; /* may be "" for "./": the root itself */
}

/* Open relative path `rel` below dirfd as a directory without following any
 * symlink and without leaving dirfd. Returns an fd or -errno. */
static int open_beneath(int dirfd, const char *rel)
{
#ifdef SYS_openat2
	static bool no_openat2;
	struct open_how how = {
		/* No O_NOFOLLOW: RESOLVE_NO_SYMLINKS refuses a trailing
		 * symlink too, with ELOOP rather than ENOTDIR. */
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};

	if (!no_openat2) {
		long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));

		if (fd >= 0)
			return (int)fd;
		if (errno != ENOSYS && errno != EPERM)
			return negative_errno();
		no_openat2 = true; /* old kernel, or a seccomp filter: walk instead */
	}
#endif
	{
		_cleanup_close_ int cur = -1;
		char comp[COMPONENT_MAX + 1];
		const char *p = rel;

		cur = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cur < 0)
			return negative_errno();
		while (*p) {
			const char *end = strchrnul(p, '/');
			size_t len = (size_t)(end - p);
			int next;

			if (len == 0 || len > COMPONENT_MAX)
				return -EINVAL;
			memcpy(comp, p, len);
			comp[len] = 0;
			if (streq(comp, "..") || streq(comp, "."))
				return -EINVAL;
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (next < 0) {
				struct stat st;
				int r = negative_errno();

				/* O_DIRECTORY|O_NOFOLLOW on a symlink gives ENOTDIR;
				 * report it as openat2(RESOLVE_NO_SYMLINKS) would. */
				if (r == -ENOTDIR && fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISLNK(st.st_mode))
					r = -ELOOP;
				return r;
			}
			close(cur);
			cur = next;
			p = *end ? end + 1 : end;
		}
		return TAKE_FD(cur);
	}
}

static int why_parent(int r, const char *path)
{
	if (r == -ELOOP || r == -EXDEV)
		return failf(-EINVAL, "member '%s': its path passes through a symlink", path);
	if (r == -ENOTDIR)
		return failf(-EINVAL, "member '%s': its path passes through a non-directory", path);
	return failf(r, "member '%s': cannot open its directory: %s", path, strerror(-r));
}

/* Open the directory that will hold normalised `path`, creating missing
 * directories (0755) one component at a time, never through a symlink.
 * *ret_base points into path. */
static int open_parent(struct extract *x, const char *path, bool create, int *ret_fd, const char **ret_base)
{
	char dir[EXTRACT_PATH_MAX + 1];
	const char *slash = strrchr(path, '/');
	_cleanup_close_ int cur = -1;
	char *p;
	int r;

	if (!slash) {
		r = fcntl(x->rootfd, F_DUPFD_CLOEXEC, 3);
		if (r < 0)
			return negative_errno();
		*ret_fd = r;
		*ret_base = path;
		return 0;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	r = open_beneath(x->rootfd, dir);
	if (r >= 0 || r != -ENOENT || !create) {
		if (r < 0)
			return why_parent(r, path);
		*ret_fd = r;
		*ret_base = slash + 1;
		return 0;
	}
	/* Some directory is missing: create the chain component by component. */
	cur = fcntl(x->rootfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return negative_errno();
	for (p = dir; *p;) {
		char *end = strchrnul(p, '/');
		bool last = !*end;
		int next;

		*end = 0;
		if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST)
			return failf(negative_errno(), "member '%s': cannot create directory '%s': %m", path, p);
		next = open_beneath(cur, p);
		if (next < 0)
			return why_parent(next, path);
		close(cur);
		cur = next;
		p = last ? end : end + 1;
	}
	*ret_fd = TAKE_FD(cur);
	*ret_base = slash + 1;
	return 0;
}

/* Count an entry and remember its path; refuse duplicates. */
static int register_entry(struct extract *x, const char *path)
{
	int r;

	if (++x->entries > x->limits.max_entries)
		return failf(-EFBIG, "more than %" PRIu64 " members", x->limits.max_entries);
	r = pathset_add(&x->seen, path);
	if (r == -EEXIST)
		return failf(-EINVAL, "member '%s' appears twice", path);
	return r;
}

int extract_file_open(struct extract *x, const char *path, uint64_t size, int *ret_fd)
{
	_cleanup_close_ int dfd = -1;
	const char *base;
	int r, fd;

	if (!*path)
		return failf(-EINVAL, "a file member with an empty path");
	if (size > x->limits.max_entry_bytes)
		return failf(-EFBIG, "member '%s': %" PRIu64 " bytes, more than the limit of %" PRIu64, path, size,
			     x->limits.max_entry_bytes);
	r = register_entry(x, path);
	if (r < 0)
		return r;
	r = open_parent(x, path, true, &dfd, &base);
	if (r < 0)
		return r;
	/* O_EXCL: never reuse or write through anything already there. */
	fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return failf(negative_errno(), "member '%s': cannot create: %m", path);
	*ret_fd = fd;
	return 0;
}

int extract_account(struct extract *x, uint64_t n, uint64_t compressed_in)
{
	x->total_bytes += n;
	if (x->total_bytes > x->limits.max_total_bytes)
		return failf(-EFBIG, "archive expands to more than the limit of %" PRIu64 " bytes",
			     x->limits.max_total_bytes);
	if (x->limits.max_ratio && x->total_bytes > EXTRACT_RATIO_GRACE_BYTES &&
	    x->total_bytes / (compressed_in ? compressed_in : 1) > x->limits.max_ratio)
		return failf(-EFBIG, "archive expands more than %" PRIu64 " times (a compression bomb?)",
			     x->limits.max_ratio);
	return 0;
}

/* ---- whole archives -------------------------------------------------------- */

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static mode_t entry_perm(const struct extract *x, struct archive_entry *e)
{
	return archive_entry_perm(e) & (x->flags & EXTRACT_KEEP_SPECIAL_MODES ? 07777 : 0777);
}

/* Owner first: chown(2) clears setuid/setgid, so chmod comes after. */
static int set_owner_mode(struct extract *x, int fd, struct archive_entry *e, const char *path)
{
	if (x->flags & EXTRACT_KEEP_OWNER &&
	    fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
		return failf(negative_errno(), "member '%s': cannot set owner: %m", path);
	if (fchmod(fd, entry_perm(x, e)) < 0)
		return failf(negative_errno(), "member '%s': cannot set mode: %m", path);
	return 0;
}

#define XATTR_VALUE_MAX 65536u /* the kernel's XATTR_SIZE_MAX */

/* The archive's extended attributes (pax SCHILY.xattr / LIBARCHIVE.xattr;
 * GNU tar and mmdebstrap carry POSIX ACLs as system.posix_acl_* ones),
 * after owner and mode: chown(2) drops security.capability, so a file
 * capability (ping, newuidmap) survives only when it is set last. */
static int set_xattrs(struct extract *x, int fd, struct archive_entry *e, const char *path)
{
	const char *name;
	const void *value;
	size_t size;

	if (!(x->flags & EXTRACT_KEEP_XATTRS) || archive_entry_xattr_reset(e) == 0)
		return 0;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (isempty(name) || size > XATTR_VALUE_MAX ||
		    !(strncmp(name, "security.", 9) == 0 || strncmp(name, "user.", 5) == 0 ||
		      strncmp(name, "trusted.", 8) == 0 || streq(name, "system.posix_acl_access") ||
		      streq(name, "system.posix_acl_default")))
			return failf(-EINVAL, "member '%s': extended attribute '%s' not allowed", path,
				     name ? name : "");
		if (fsetxattr(fd, name, value, size, 0) < 0)
			return failf(negative_errno(), "member '%s': cannot set '%s': %m", path, name);
	}
	return 0;
}

void extract_set_progress(struct extract *x, void (*progress)(uint64_t done, void *userdata), void *userdata)
{
	x->progress = progress;
	x->userdata = userdata;
}

static void report(struct extract *x, struct archive *a, bool final)
{
	uint64_t done = (uint64_t)archive_filter_bytes(a, -1);

	if (x->progress && (final || done >= x->progress_at + (1u << 20))) {
		x->progress_at = done;
		x->progress(done, x->userdata);
	}
}

static int write_file(struct extract *x, struct archive *a, struct archive_entry *e, const char *path)
{
	_cleanup_close_ int fd = -1;
	uint64_t size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;

	r = extract_file_open(x, path, size, &fd);
	if (r < 0)
		return r;
	for (;;) {
		r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return failf(-EBADMSG, "member '%s': %s", path, archive_error_string(a));
		if (off < 0 || (uint64_t)off + len > size)
			return failf(-EBADMSG, "member '%s': data beyond its declared size", path);
		r = extract_account(x, len, (uint64_t)archive_filter_bytes(a, -1));
		if (r < 0)
			return r;
		for (size_t done = 0; done < len;) {
			ssize_t k = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);

			if (k < 0)
				return failf(negative_errno(), "member '%s': write failed: %m", path);
			done += (size_t)k;
		}
	}
	if (ftruncate(fd, (off_t)size) < 0) /* a sparse file's trailing hole */
		return failf(negative_errno(), "member '%s': %m", path);
	r = set_owner_mode(x, fd, e, path);
	return r < 0 ? r : set_xattrs(x, fd, e, path);
}

static int make_dir(struct extract *x, struct archive_entry *e, const char *path)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	const char *base;
	int r;

	if (!*path)
		return 0; /* "./": the target itself */
	r = register_entry(x, path);
	if (r < 0)
		return r;
	r = open_parent(x, path, true, &dfd, &base);
	if (r < 0)
		return r;
	if (mkdirat(dfd, base, 0700) < 0 && errno != EEXIST)
		return failf(negative_errno(), "member '%s': cannot create directory: %m", path);
	fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return why_parent(negative_errno(), path);
	r = set_owner_mode(x, fd, e, path);
	return r < 0 ? r : set_xattrs(x, fd, e, path);
}

/* Does a relative symlink target, seen from the link's directory, climb
 * above the root? Purely lexical: nothing is resolved on disk. */
static bool symlink_leads_out(const char *link_path, const char *target)
{
	long depth = 0;

	for (const char *s = link_path; *s; s++)
		depth += *s == '/';
	for (const char *p = target; *p;) {
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);

		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return true;
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			depth++;
		}
		p = *end ? end + 1 : end;
	}
	return false;
}

static int make_symlink(struct extract *x, struct archive_entry *e, const char *path)
{
	const char *target = archive_entry_symlink(e), *base;
	_cleanup_close_ int dfd = -1;
	int r;

	if (!(x->flags & EXTRACT_ALLOW_SYMLINKS))
		return failf(-EINVAL, "member '%s' is a symlink; not allowed here", path);
	if (isempty(target) || strlen(target) > EXTRACT_PATH_MAX)
		return failf(-EINVAL, "member '%s': symlink with an empty or over-long target", path);
	if (target[0] == '/' && !(x->flags & EXTRACT_ALLOW_ABSOLUTE_SYMLINKS))
		return failf(-EINVAL, "member '%s': symlink to absolute path '%s' leads out of the target", path,
			     target);
	if (target[0] != '/' && symlink_leads_out(path, target))
		return failf(-EINVAL, "member '%s': symlink to '%s' leads out of the target", path, target);
	r = register_entry(x, path);
	if (r < 0)
		return r;
	r = open_parent(x, path, true, &dfd, &base);
	if (r < 0)
		return r;
	if (symlinkat(target, dfd, base) < 0)
		return failf(negative_errno(), "member '%s': cannot create symlink: %m", path);
	if (x->flags & EXTRACT_KEEP_OWNER &&
	    fchownat(dfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
		return failf(negative_errno(), "member '%s': cannot set owner: %m", path);
	return 0;
}

static int make_hardlink(struct extract *x, const char *path, const char *raw_target)
{
	char target[EXTRACT_PATH_MAX + 1];
	_cleanup_close_ int dfd = -1, tfd = -1;
	const char *base, *tbase;
	int r;

	if (!(x->flags & EXTRACT_ALLOW_HARDLINKS))
		return failf(-EINVAL, "member '%s' is a hardlink; not allowed here", path);
	r = extract_normalize_path(raw_target, target);
	if (r < 0)
		return failf(r, "member '%s': hardlink target leads out of the target", path);
	/* Only to something this archive created: never to a file that was
	 * already there, let alone outside. */
	if (!pathset_contains(&x->seen, target))
		return failf(-EINVAL, "member '%s': hardlink to '%s', which is not an earlier member", path,
			     target);
	r = register_entry(x, path);
	if (r < 0)
		return r;
	r = open_parent(x, target, false, &tfd, &tbase);
	if (r < 0)
		return r;
	r = open_parent(x, path, true, &dfd, &base);
	if (r < 0)
		return r;
	/* flags 0: a symlink target is linked itself, never followed. */
	if (linkat(tfd, tbase, dfd, base, 0) < 0)
		return failf(negative_errno(), "member '%s': cannot create hardlink: %m", path);
	return 0;
}

static int make_node(struct extract *x, struct archive_entry *e, const char *path, mode_t type)
{
	_cleanup_close_ int dfd = -1;
	const char *base;
	int r;

	if (type == S_IFIFO ? !(x->flags & EXTRACT_ALLOW_FIFOS) : !(x->flags & EXTRACT_ALLOW_DEVICES))
		return failf(-EINVAL, "member '%s' is a %s; not allowed here", path,
			     type == S_IFIFO ? "FIFO" : "device node");
	r = register_entry(x, path);
	if (r < 0)
		return r;
	r = open_parent(x, path, true, &dfd, &base);
	if (r < 0)
		return r;
	if (mknodat(dfd, base, type | 0600, type == S_IFIFO ? 0 : archive_entry_rdev(e)) < 0)
		return failf(negative_errno(), "member '%s': cannot create node: %m", path);
	if (x->flags & EXTRACT_KEEP_OWNER &&
	    fchownat(dfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
		return failf(negative_errno(), "member '%s': cannot set owner: %m", path);
	if (fchmodat(dfd, base, entry_perm(x, e), AT_SYMLINK_NOFOLLOW) < 0)
		return failf(negative_errno(), "member '%s': cannot set mode: %m", path);
	return 0;
}

static int extract_entry(struct extract *x, struct archive *a, struct archive_entry *e)
{
	char path[EXTRACT_PATH_MAX + 1];
	const char *raw = archive_entry_pathname(e);
	mode_t type = archive_entry_filetype(e);
	int r;

	r = extract_normalize_path(raw, path);
	if (r < 0)
		return r;
	if (!*path && type != AE_IFDIR)
		return failf(-EINVAL, "member '%s': not a valid name for a %s", raw, "non-directory");
	if (archive_entry_hardlink(e))
		return make_hardlink(x, path, archive_entry_hardlink(e));
	switch (type) {
	case AE_IFREG:
		return write_file(x, a, e, path);
	case AE_IFDIR:
		if (!(x->flags & EXTRACT_ALLOW_DIRS))
			return failf(-EINVAL, "member '%s' is a directory; not allowed here", path);
		return make_dir(x, e, path);
	case AE_IFLNK:
		return make_symlink(x, e, path);
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		return make_node(x, e, path, type);
	default:
		return failf(-EINVAL, "member '%s' has an unsupported type (0%o)", path, (unsigned)type);
	}
}

static int extract_archive(struct extract *x, struct archive *a)
{
	struct archive_entry *e;
	int r;

	for (;;) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF) {
			report(x, a, true);
			return 0;
		}
		if (r < ARCHIVE_WARN)
			return failf(-EBADMSG, "not a valid archive: %s", archive_error_string(a));
		r = extract_entry(x, a, e);
		if (r < 0)
			return r;
		report(x, a, false);
	}
}

static struct archive *reader_new(void)
{
	struct archive *a = archive_read_new();

	if (!a)
		return NULL;
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	return a;
}

int extract_archive_fd(struct extract *x, int fd)
{
	_cleanup_(archive_freep) struct archive *a = reader_new();

	if (!a)
		return -ENOMEM;
	if (archive_read_open_fd(a, fd, BUF_SIZE) != ARCHIVE_OK)
		return failf(-EBADMSG, "not a valid archive: %s", archive_error_string(a));
	return extract_archive(x, a);
}

int extract_archive_memory(struct extract *x, const void *data, size_t size)
{
	_cleanup_(archive_freep) struct archive *a = reader_new();

	if (!a)
		return -ENOMEM;
	if (archive_read_open_memory(a, data, size) != ARCHIVE_OK)
		return failf(-EBADMSG, "not a valid archive: %s", archive_error_string(a));
	return extract_archive(x, a);
}

/* ---- removal ------------------------------------------------------------------ */

static int rm_rf_at(int parentfd, const char *name, unsigned depth)
{
	struct stat st;
	int r = 0;

	if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (S_ISDIR(st.st_mode)) {
		DIR *d;
		struct dirent *de;
		int fd;

		if (depth > EXTRACT_DEPTH_MAX + 8)
			return -ELOOP;
		fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return negative_errno();
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return -ENOMEM;
		}
		while ((de = readdir(d))) {
			int k;

			if (streq(de->d_name, ".") || streq(de->d_name, ".."))
				continue;
			k = rm_rf_at(dirfd(d), de->d_name, depth + 1);
			if (k < 0 && r == 0)
				r = k;
		}
		closedir(d);
		if (unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && r == 0)
			r = negative_errno();
		return r;
	}
	if (unlinkat(parentfd, name, 0) < 0)
		return negative_errno();
	return 0;
}

int extract_rm_rf_at(int dirfd, const char *name)
{
	return rm_rf_at(dirfd, name, 0);
}
