/* SPDX-License-Identifier: MIT */
/*
 * bundle.c — reading a bundle: verify-and-extract in one streaming pass.
 * The layout and the guarantees are in bundle.h; bundle-create.c writes.
 */
#define _GNU_SOURCE 1 /* renameat2 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bundle.h"
#include "bundle-internal.h"
#include "extract.h"
#include "util.h"

#define READ_BLOCK (64u << 10)

static __thread char bundle_errbuf[768];

const char *bundle_error(void)
{
	return bundle_errbuf[0] ? bundle_errbuf : "unknown error";
}

void bundle_error_clear(void)
{
	bundle_errbuf[0] = 0;
}

int bundle_failf(int r, const char *fmt, ...)
{
	va_list ap;

	if (!bundle_errbuf[0]) {
		va_start(ap, fmt);
		vsnprintf(bundle_errbuf, sizeof(bundle_errbuf), fmt, ap);
		va_end(ap);
	}
	return r;
}

struct reader {
	struct archive *a;
	const struct sig_pubkey *key;
	struct bundle *b;
	struct extract *x; /* NULL when only verifying */
	struct sig_sha256 *h;
	uint8_t *buf;
};

static const struct extract_limits bundle_limits = {
	.max_entries = BUNDLE_MAX_MEMBERS,
	.max_entry_bytes = BUNDLE_MEMBER_MAX_BYTES,
	.max_total_bytes = BUNDLE_TOTAL_MAX_BYTES,
	.max_ratio = BUNDLE_MAX_RATIO,
};

struct bundle *bundle_free(struct bundle *b)
{
	if (!b)
		return NULL;
	for (size_t i = 0; i < b->n_members; i++)
		free(b->members[i].path);
	free(b->members);
	free(b->dir);
	free(b);
	return NULL;
}

static int member_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct bundle_member *)elem)->path);
}

const struct bundle_member *bundle_find(const struct bundle *b, const char *path)
{
	return bsearch(path, b->members, b->n_members, sizeof(*b->members), member_cmp);
}

/* ---- SHA256SUMS ------------------------------------------------------------ */

/* A path a bundle may list: manifest.yaml, secrets.enc, or assets/<path>
 * whose components are [A-Za-z0-9._+@-], not "." or "..". */
bool bundle_path_valid(const char *p)
{
	size_t len = strlen(p), depth = 0;
	const char *c;

	if (streq(p, BUNDLE_MANIFEST) || streq(p, BUNDLE_SECRETS))
		return true;
	if (len > BUNDLE_PATH_MAX || strncmp(p, BUNDLE_ASSETS_DIR "/", strlen(BUNDLE_ASSETS_DIR) + 1) != 0)
		return false;
	c = p + strlen(BUNDLE_ASSETS_DIR) + 1;
	for (;;) {
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);

		if (n == 0 || n > 255 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (++depth > BUNDLE_ASSET_DEPTH_MAX)
			return false;
		for (size_t i = 0; i < n; i++)
			if (!bundle_name_char(c[i]))
				return false;
		if (!*end)
			return true;
		c = end + 1;
	}
}

static int parse_sums(struct bundle *b, const char *text, size_t size)
{
	size_t line = 0, cap = 0;
	const char *p = text, *end = text + size;

	if (size == 0 || text[size - 1] != '\n')
		return bundle_failf(-EBADMSG, BUNDLE_SUMS ": empty, or its last line is not terminated");
	if (memchr(text, 0, size))
		return bundle_failf(-EBADMSG, BUNDLE_SUMS ": contains a NUL byte");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)(nl - p);
		struct bundle_member *m;

		line++;
		/* "<64 hex>  <path>": the text mode of sha256sum(1). */
		if (len < 2 * SIG_SHA256_LEN + 3 || p[64] != ' ' || p[65] != ' ')
			return bundle_failf(-EBADMSG, BUNDLE_SUMS ":%zu: not a '<sha256>  <path>' line", line);
		if (b->n_members >= BUNDLE_MAX_MEMBERS)
			return bundle_failf(-EBADMSG, BUNDLE_SUMS ": more than %u members", BUNDLE_MAX_MEMBERS);
		if (b->n_members == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct bundle_member *n = reallocarray(b->members, ncap, sizeof(*n));

			if (!n)
				return -ENOMEM;
			b->members = n;
			cap = ncap;
		}
		m = &b->members[b->n_members];
		*m = (struct bundle_member){};
		m->path = strndup(p + 66, len - 66);
		if (!m->path)
			return -ENOMEM;
		b->n_members++;
		if (sig_unhex(p, m->sha256) < 0)
			return bundle_failf(-EBADMSG, BUNDLE_SUMS ":%zu: not a SHA-256 digest", line);
		if (!bundle_path_valid(m->path))
			return bundle_failf(-EBADMSG, BUNDLE_SUMS ":%zu: '%.200s' is not a valid member path", line,
					    m->path);
		/* Strictly sorted: no duplicates, and bsearch works. */
		if (b->n_members > 1 && strcmp(b->members[b->n_members - 2].path, m->path) >= 0)
			return bundle_failf(-EBADMSG, BUNDLE_SUMS ":%zu: '%s' is %s", line, m->path,
					    streq(b->members[b->n_members - 2].path, m->path) ? "listed twice"
											      : "out of order");
		p = nl + 1;
	}
	if (!bundle_find(b, BUNDLE_MANIFEST))
		return bundle_failf(-EBADMSG, BUNDLE_SUMS ": does not list " BUNDLE_MANIFEST);
	return 0;
}

/* ---- members ------------------------------------------------------------------ */

static int next_header(struct reader *r, struct archive_entry **ret_e)
{
	int k = archive_read_next_header(r->a, ret_e);

	if (k == ARCHIVE_EOF)
		return 0;
	if (k < ARCHIVE_WARN)
		return bundle_failf(-EBADMSG, "not a valid bundle archive: %s", archive_error_string(r->a));
	return 1;
}

/* Refuse anything but a plain regular file member. */
static int check_entry(struct archive_entry *e, const char *path)
{
	mode_t type = archive_entry_filetype(e);

	if (archive_entry_hardlink(e))
		return bundle_failf(-EBADMSG, "member '%s' is a hardlink; a bundle holds regular files only", path);
	if (type == AE_IFLNK)
		return bundle_failf(-EBADMSG, "member '%s' is a symlink; a bundle holds regular files only", path);
	if (type != AE_IFREG)
		return bundle_failf(-EBADMSG, "member '%s' is not a regular file (type 0%o)", path, (unsigned)type);
	if (archive_entry_sparse_count(e) > 0)
		return bundle_failf(-EBADMSG, "member '%s' is a sparse file", path);
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
		return bundle_failf(-EBADMSG, "member '%s' has no size", path);
	if ((uint64_t)archive_entry_size(e) > BUNDLE_MEMBER_MAX_BYTES)
		return bundle_failf(-EBADMSG, "member '%s' is larger than %llu bytes", path,
				    (unsigned long long)BUNDLE_MEMBER_MAX_BYTES);
	return 0;
}

/* Read one of the two leading members whole, into a NUL-terminated buffer. */
static int read_small(struct reader *r, const char *want, size_t max, char **ret, size_t *ret_size)
{
	struct archive_entry *e;
	_cleanup_free_ char *buf = NULL;
	const char *path;
	int64_t size;
	ssize_t n;
	int k;

	k = next_header(r, &e);
	if (k <= 0)
		return k < 0 ? k : bundle_failf(-EBADMSG, "bundle ends before its '%s' member", want);
	path = archive_entry_pathname(e);
	if (!path || !streq(path, want))
		return bundle_failf(-EBADMSG, "member '%.200s' where '%s' must come (is this a bundle?)",
				    path ? path : "(unnamed)", want);
	k = check_entry(e, want);
	if (k < 0)
		return k;
	size = archive_entry_size(e);
	if ((uint64_t)size > max)
		return bundle_failf(-EBADMSG, "member '%s' is larger than %zu bytes", want, max);
	buf = malloc((size_t)size + 1);
	if (!buf)
		return -ENOMEM;
	n = archive_read_data(r->a, buf, (size_t)size + 1);
	if (n < 0)
		return bundle_failf(-EBADMSG, "member '%s': %s", want, archive_error_string(r->a));
	if (n != size)
		return bundle_failf(-EBADMSG, "member '%s' is truncated", want);
	buf[size] = 0;
	*ret_size = (size_t)size;
	*ret = TAKE_PTR(buf);
	return 0;
}

static int check_format(struct reader *r)
{
	if ((archive_format(r->a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_TAR)
		return bundle_failf(-EBADMSG, "not a bundle: not a tar archive");
	for (int i = 0; i < archive_filter_count(r->a); i++) {
		int code = archive_filter_code(r->a, i);

		if (code != ARCHIVE_FILTER_NONE && code != ARCHIVE_FILTER_ZSTD)
			return bundle_failf(-EBADMSG, "not a bundle: compressed with %s, not zstd",
					    archive_filter_name(r->a, i));
	}
	return 0;
}

/* SHA256SUMS and its signature, checked before anything else is looked at. */
static int verify_signature(struct reader *r)
{
	_cleanup_free_ char *sums = NULL, *sig = NULL;
	size_t sums_size, sig_size;
	int k;

	k = read_small(r, BUNDLE_SUMS, BUNDLE_SUMS_MAX_BYTES, &sums, &sums_size);
	if (k < 0)
		return k;
	k = check_format(r);
	if (k < 0)
		return k;
	k = read_small(r, BUNDLE_SUMS_SIG, SIG_MAX_LEN, &sig, &sig_size);
	if (k < 0)
		return k;
	sig_sha256(sums, sums_size, r->b->sums_sha256);
	sig_error_clear();
	k = sig_verify(r->key, r->b->sums_sha256, (const uint8_t *)sig, sig_size);
	if (k < 0)
		return bundle_failf(-EBADMSG, BUNDLE_SUMS_SIG ": %s", sig_error());
	return parse_sums(r->b, sums, sums_size);
}

static int stream_member(struct reader *r, struct archive_entry *e, struct bundle_member *m)
{
	_cleanup_close_ int fd = -1;
	uint64_t want = (uint64_t)archive_entry_size(e), got = 0;
	uint8_t digest[SIG_SHA256_LEN];
	int k;

	if (r->x) {
		k = extract_file_open(r->x, m->path, want, &fd);
		if (k < 0)
			return bundle_failf(k, "%s", extract_error());
	}
	for (;;) {
		ssize_t n = archive_read_data(r->a, r->buf, READ_BLOCK);

		if (n < 0)
			return bundle_failf(-EBADMSG, "member '%s': %s", m->path, archive_error_string(r->a));
		if (n == 0)
			break;
		got += (uint64_t)n;
		r->b->total_bytes += (uint64_t)n;
		if (r->b->total_bytes > BUNDLE_TOTAL_MAX_BYTES)
			return bundle_failf(-EBADMSG, "bundle expands to more than %llu bytes",
					    (unsigned long long)BUNDLE_TOTAL_MAX_BYTES);
		sig_sha256_update(r->h, r->buf, (size_t)n);
		if (fd >= 0) {
			k = extract_account(r->x, (uint64_t)n, (uint64_t)archive_filter_bytes(r->a, -1));
			if (k < 0)
				return bundle_failf(-EBADMSG, "member '%s': %s", m->path, extract_error());
			for (ssize_t done = 0; done < n;) {
				ssize_t w = write(fd, r->buf + done, (size_t)(n - done));

				if (w < 0)
					return bundle_failf(negative_errno(), "member '%s': write failed: %m", m->path);
				done += w;
			}
		}
	}
	if (got != want)
		return bundle_failf(-EBADMSG, "member '%s' is truncated", m->path);
	sig_sha256_final(r->h, digest);
	if (memcmp(digest, m->sha256, SIG_SHA256_LEN) != 0)
		return bundle_failf(-EBADMSG, "member '%s': SHA-256 does not match " BUNDLE_SUMS
					      " (changed or corrupted)", m->path);
	m->size = got;
	if (fd >= 0 && fchmod(fd, 0644) < 0)
		return bundle_failf(negative_errno(), "member '%s': %m", m->path);
	return 0;
}

static int read_members(struct reader *r)
{
	struct archive_entry *e;
	int k;

	while ((k = next_header(r, &e)) > 0) {
		const char *path = archive_entry_pathname(e);
		struct bundle_member *m;

		if (!path)
			return bundle_failf(-EBADMSG, "a member without a readable name");
		m = (struct bundle_member *)bundle_find(r->b, path);
		if (!m)
			return bundle_failf(-EBADMSG, "member '%.200s' is not listed in " BUNDLE_SUMS " (extra member)",
					    path);
		if (m->seen)
			return bundle_failf(-EBADMSG, "member '%s' appears twice", path);
		m->seen = true;
		k = check_entry(e, path);
		if (k < 0)
			return k;
		k = stream_member(r, e, m);
		if (k < 0)
			return k;
	}
	if (k < 0)
		return k;
	for (size_t i = 0; i < r->b->n_members; i++)
		if (!r->b->members[i].seen)
			return bundle_failf(-EBADMSG, "member '%s' is listed in " BUNDLE_SUMS " but missing",
					    r->b->members[i].path);
	return 0;
}

/* ---- staging ------------------------------------------------------------------ */

struct staging {
	int parentfd;
	char *name;   /* "<dest>.staging-XXXXXX" below parentfd */
	char *path;
	char *dest_base;
};

static void staging_done(struct staging *s, bool remove)
{
	if (remove && s->parentfd >= 0 && s->name)
		(void)extract_rm_rf_at(s->parentfd, s->name);
	if (s->parentfd >= 0)
		close(s->parentfd);
	free(s->name);
	free(s->path);
	free(s->dest_base);
	*s = (struct staging){ .parentfd = -1 };
}

static int staging_init(struct staging *s, const char *dest)
{
	_cleanup_free_ char *d1 = strdup(dest), *d2 = strdup(dest);
	const char *parent, *base;
	char *tmpl;

	if (!d1 || !d2)
		return -ENOMEM;
	parent = dirname(d1);
	base = basename(d2);
	if (streq(base, "/") || streq(base, ".") || streq(base, ".."))
		return bundle_failf(-EINVAL, "'%s' cannot be a destination directory", dest);
	if (faccessat(AT_FDCWD, dest, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return bundle_failf(-EEXIST, "destination '%s' already exists", dest);
	s->parentfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->parentfd < 0)
		return bundle_failf(negative_errno(), "cannot open directory '%s': %m", parent);
	s->dest_base = strdup(base);
	if (asprintf(&s->path, "%s/%s.staging-XXXXXX", parent, base) < 0) {
		s->path = NULL;
		return -ENOMEM;
	}
	if (!s->dest_base)
		return -ENOMEM;
	if (!mkdtemp(s->path))
		return bundle_failf(negative_errno(), "cannot create staging directory next to '%s': %m", dest);
	tmpl = strrchr(s->path, '/');
	s->name = strdup(tmpl + 1);
	return s->name ? 0 : -ENOMEM;
}

static int staging_commit(struct staging *s, const char *dest)
{
	if (renameat2(s->parentfd, s->name, s->parentfd, s->dest_base, RENAME_NOREPLACE) < 0)
		return bundle_failf(negative_errno(), "cannot move the verified bundle to '%s': %m", dest);
	free(s->name);
	s->name = NULL;
	if (fsync(s->parentfd) < 0)
		return bundle_failf(negative_errno(), "fsync '%s': %m", dest);
	return 0;
}

/* ---- the one pass ------------------------------------------------------------ */

static void archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static int open_verified(struct archive *a, const struct sig_pubkey *key, const char *dest_dir,
			 struct bundle **ret)
{
	_cleanup_(bundle_freep) struct bundle *b = calloc(1, sizeof(*b));
	_cleanup_(sig_sha256_freep) struct sig_sha256 *h = sig_sha256_new();
	_cleanup_(extract_freep) struct extract *x = NULL;
	_cleanup_free_ uint8_t *buf = malloc(READ_BLOCK);
	struct staging st = { .parentfd = -1 };
	struct reader r;
	int k;

	if (!b || !h || !buf)
		return -ENOMEM;
	r = (struct reader){ .a = a, .key = key, .b = b, .h = h, .buf = buf };
	/* The signature first: nothing is parsed or written before it held. */
	k = verify_signature(&r);
	if (k < 0)
		return k;
	if (dest_dir) {
		k = staging_init(&st, dest_dir);
		if (k < 0)
			goto out;
		extract_error_clear();
		k = extract_new(st.path, EXTRACT_POLICY_FILES_ONLY, &bundle_limits, &x);
		if (k < 0) {
			k = bundle_failf(k, "%s", extract_error());
			goto out;
		}
		r.x = x;
	}
	k = read_members(&r);
	if (k < 0)
		goto out;
	if (dest_dir) {
		k = staging_commit(&st, dest_dir);
		if (k < 0)
			goto out;
		b->dir = strdup(dest_dir);
		if (!b->dir) {
			k = -ENOMEM;
			goto out;
		}
	}
	*ret = TAKE_PTR(b);
out:
	staging_done(&st, k < 0);
	return k;
}

static struct archive *bundle_reader_new(void)
{
	struct archive *a = archive_read_new();

	if (!a)
		return NULL;
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	return a;
}

int bundle_open_verified(const char *path, const struct sig_pubkey *key, const char *dest_dir,
			 struct bundle **ret)
{
	_cleanup_(archive_read_freep) struct archive *a = NULL;
	_cleanup_close_ int fd = -1;

	bundle_error_clear();
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return bundle_failf(negative_errno(), "cannot open bundle '%s': %m", path);
	a = bundle_reader_new();
	if (!a)
		return -ENOMEM;
	if (archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK)
		return bundle_failf(-EBADMSG, "not a bundle: %s", archive_error_string(a));
	return open_verified(a, key, dest_dir, ret);
}

int bundle_open_verified_memory(const void *data, size_t size, const struct sig_pubkey *key,
				const char *dest_dir, struct bundle **ret)
{
	_cleanup_(archive_read_freep) struct archive *a = NULL;

	bundle_error_clear();
	a = bundle_reader_new();
	if (!a)
		return -ENOMEM;
	if (archive_read_open_memory(a, data, size) != ARCHIVE_OK)
		return bundle_failf(-EBADMSG, "not a bundle: %s", archive_error_string(a));
	return open_verified(a, key, dest_dir, ret);
}
