/* SPDX-License-Identifier: MIT */
/*
 * bundle-create.c — writing a bundle (layout in bundle.h). Two passes over
 * the assets: the first hashes them for SHA256SUMS, which must come first
 * in the archive so that readers can verify in one streaming pass; the
 * second copies them and hashes again, refusing an asset that changed in
 * between. Hashing and signing use the OpenSSL backend.
 */
#define _GNU_SOURCE 1
#include <archive.h>
#include <archive_entry.h>
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bundle.h"
#include "bundle-internal.h"
#include "sig-openssl.h"
#include "util.h"

#define COPY_BLOCK (1u << 20)

struct sum {
	char *path;
	uint8_t sha256[SIG_SHA256_LEN];
};

/* ---- scanning the assets directory -------------------------------------------- */

struct scan {
	struct bundle_asset *v;
	size_t n, cap;
};

void bundle_assets_free(struct bundle_asset *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i].path);
	free(a);
}

static bool name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255 || streq(name, ".") || streq(name, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!bundle_name_char(name[i]))
			return false;
	return true;
}

static int scan_push(struct scan *s, char *path, uint64_t size)
{
	if (s->n >= BUNDLE_MAX_MEMBERS - 2) {
		free(path);
		return bundle_failf(-E2BIG, "more than %u assets", BUNDLE_MAX_MEMBERS - 2);
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 16;
		struct bundle_asset *v = reallocarray(s->v, ncap, sizeof(*v));

		if (!v) {
			free(path);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = ncap;
	}
	s->v[s->n++] = (struct bundle_asset){ .path = path, .size = size };
	return 0;
}


static int scan_dir(int dfd, const char *prefix, unsigned depth, struct scan *s)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd, r;

	if (depth >= BUNDLE_ASSET_DEPTH_MAX)
		return bundle_failf(-ELOOP, "assets: '%s' is nested deeper than %u", prefix, BUNDLE_ASSET_DEPTH_MAX);
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	while ((errno = 0, de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		struct stat st;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (asprintf(&path, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name) < 0) {
			path = NULL;
			return -ENOMEM;
		}
		if (!name_valid(de->d_name))
			return bundle_failf(-EINVAL, "assets: '%s': names may only use A-Z a-z 0-9 . _ - + @", path);
		if (strlen(path) + strlen(BUNDLE_ASSETS_DIR "/") > BUNDLE_PATH_MAX)
			return bundle_failf(-EINVAL, "assets: '%s': path too long", path);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return bundle_failf(negative_errno(), "assets: '%s': %m", path);
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = openat(dirfd(d), de->d_name,
							 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0)
				return bundle_failf(negative_errno(), "assets: '%s': %m", path);
			r = scan_dir(sub, path, depth + 1, s);
			if (r < 0)
				return r;
		} else if (S_ISREG(st.st_mode)) {
			r = scan_push(s, TAKE_PTR(path), (uint64_t)st.st_size);
			if (r < 0)
				return r;
		} else {
			return bundle_failf(-EINVAL, "assets: '%s' is %s; only regular files go into a bundle", path,
					    S_ISLNK(st.st_mode) ? "a symlink" : "a special file");
		}
	}
	if (errno != 0)
		return bundle_failf(negative_errno(), "assets: cannot read directory '%s': %m", prefix);
	return 0;
}

static int asset_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bundle_asset *)a)->path, ((const struct bundle_asset *)b)->path);
}

int bundle_assets_scan(const char *dir, struct bundle_asset **ret, size_t *ret_n)
{
	_cleanup_close_ int fd = -1;
	struct scan s = {};
	int r;

	bundle_error_clear();
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bundle_failf(negative_errno(), "assets directory '%s': %m", dir);
	r = scan_dir(fd, "", 0, &s);
	if (r < 0) {
		bundle_assets_free(s.v, s.n);
		return r;
	}
	if (s.n > 1) /* qsort(NULL, 0, …) is undefined behaviour */
		qsort(s.v, s.n, sizeof(*s.v), asset_cmp);
	*ret = s.v;
	*ret_n = s.n;
	return 0;
}

/* ---- hashing and signing -------------------------------------------------------- */

static int open_asset(int dirfd, const struct bundle_asset *as, int *ret_fd)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, as->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return bundle_failf(negative_errno(), "asset '%s': %m", as->path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != as->size) {
		close(fd);
		return bundle_failf(-EAGAIN, "asset '%s' changed while the bundle was being made", as->path);
	}
	*ret_fd = fd;
	return 0;
}

/* Hash fd to its end; when a is not NULL, also copy it there as data of
 * the current entry. Refuses a file that is not exactly `size` bytes. */
static int hash_copy(int fd, const char *name, uint64_t size, struct archive *a, uint8_t *buf,
		     uint8_t out[SIG_SHA256_LEN])
{
	_cleanup_(sig_openssl_sha256_freep) struct sig_openssl_sha256 *h = sig_openssl_sha256_new();
	uint64_t total = 0;

	if (!h)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf, COPY_BLOCK);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bundle_failf(negative_errno(), "asset '%s': read failed: %m", name);
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > size)
			break;
		sig_openssl_sha256_update(h, buf, (size_t)n);
		if (a && archive_write_data(a, buf, (size_t)n) != n)
			return bundle_failf(-EIO, "writing '%s' into the bundle: %s", name, archive_error_string(a));
	}
	if (total != size)
		return bundle_failf(-EAGAIN, "asset '%s' changed while the bundle was being made", name);
	sig_openssl_sha256_final(h, out);
	return 0;
}

static void openssl_sha256(const void *data, size_t size, uint8_t out[SIG_SHA256_LEN])
{
	_cleanup_(sig_openssl_sha256_freep) struct sig_openssl_sha256 *h = sig_openssl_sha256_new();

	if (!h)
		abort(); /* OOM for a few hundred bytes: nothing sensible to do */
	sig_openssl_sha256_update(h, data, size);
	sig_openssl_sha256_final(h, out);
}

static int sum_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sum *)a)->path, ((const struct sum *)b)->path);
}

static void sums_free(struct sum *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].path);
	free(s);
}

/* Digest every member; return the SHA256SUMS text. */
static int make_sums(const struct bundle_create_args *args, int assets_fd, uint8_t *buf, struct sum **ret_sums,
		     char **ret_text, size_t *ret_size)
{
	size_t n = 0, cap = args->n_assets + 2;
	struct sum *s = calloc(cap, sizeof(*s));
	_cleanup_fclose_ FILE *f = NULL;
	char *text = NULL;
	size_t size = 0;
	int r = -ENOMEM;

	if (!s)
		return -ENOMEM;
	s[n].path = strdup(BUNDLE_MANIFEST);
	if (!s[n].path)
		goto fail;
	openssl_sha256(args->manifest, args->manifest_size, s[n++].sha256);
	if (args->secrets_enc) {
		s[n].path = strdup(BUNDLE_SECRETS);
		if (!s[n].path)
			goto fail;
		openssl_sha256(args->secrets_enc, args->secrets_enc_size, s[n++].sha256);
	}
	for (size_t i = 0; i < args->n_assets; i++) {
		_cleanup_close_ int fd = -1;

		if (asprintf(&s[n].path, BUNDLE_ASSETS_DIR "/%s", args->assets[i].path) < 0) {
			s[n].path = NULL;
			goto fail;
		}
		n++;
		r = open_asset(assets_fd, &args->assets[i], &fd);
		if (r < 0)
			goto fail;
		r = hash_copy(fd, args->assets[i].path, args->assets[i].size, NULL, buf, s[n - 1].sha256);
		if (r < 0)
			goto fail;
	}
	qsort(s, n, sizeof(*s), sum_cmp);
	r = -ENOMEM;
	f = open_memstream(&text, &size);
	if (!f)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		char hex[2 * SIG_SHA256_LEN + 1];

		sig_hex(s[i].sha256, hex);
		fprintf(f, "%s  %s\n", hex, s[i].path);
	}
	if (fclose(TAKE_PTR(f)) != 0)
		goto fail;
	*ret_sums = s;
	*ret_text = text;
	*ret_size = size;
	return 0;
fail:
	sums_free(s, n);
	free(text);
	return r;
}

/* ---- writing the archive ------------------------------------------------------------- */

static int write_header(struct archive *a, const char *path, uint64_t size, int64_t mtime)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, mtime, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	r = archive_write_header(a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return bundle_failf(-EIO, "writing '%s' into the bundle: %s", path, archive_error_string(a));
	return 0;
}

static int write_buffer(struct archive *a, const char *path, const void *data, size_t size, int64_t mtime)
{
	int r = write_header(a, path, size, mtime);

	if (r < 0)
		return r;
	if (size && archive_write_data(a, data, size) != (la_ssize_t)size)
		return bundle_failf(-EIO, "writing '%s' into the bundle: %s", path, archive_error_string(a));
	return 0;
}

static int write_asset(struct archive *a, const struct bundle_create_args *args, int assets_fd, size_t i,
		       const struct sum *sums, size_t n_sums, uint8_t *buf)
{
	const struct bundle_asset *as = &args->assets[i];
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t digest[SIG_SHA256_LEN];
	const struct sum *s;
	struct sum key;
	int r;

	if (asprintf(&path, BUNDLE_ASSETS_DIR "/%s", as->path) < 0) {
		path = NULL;
		return -ENOMEM;
	}
	key.path = path;
	s = bsearch(&key, sums, n_sums, sizeof(*sums), sum_cmp);
	assert(s);
	r = open_asset(assets_fd, as, &fd);
	if (r < 0)
		return r;
	r = write_header(a, path, as->size, args->mtime);
	if (r < 0)
		return r;
	r = hash_copy(fd, as->path, as->size, a, buf, digest);
	if (r < 0)
		return r;
	if (memcmp(digest, s->sha256, SIG_SHA256_LEN) != 0)
		return bundle_failf(-EAGAIN, "asset '%s' changed while the bundle was being made", as->path);
	return 0;
}

static void archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static int write_archive(int fd, const struct bundle_create_args *args, int assets_fd, const char *sums,
			 size_t sums_size, const uint8_t *sig, size_t sig_len, const struct sum *s, size_t n_sums,
			 uint8_t *buf)
{
	_cleanup_(archive_write_freep) struct archive *a = archive_write_new();
	int r;

	if (!a)
		return -ENOMEM;
	/* bytes_in_last_block 1: no zero padding after the zstd frame */
	if (archive_write_add_filter_zstd(a) != ARCHIVE_OK || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK || archive_write_open_fd(a, fd) != ARCHIVE_OK)
		return bundle_failf(-EIO, "cannot start the bundle archive: %s", archive_error_string(a));
	r = write_buffer(a, BUNDLE_SUMS, sums, sums_size, args->mtime);
	if (r >= 0)
		r = write_buffer(a, BUNDLE_SUMS_SIG, sig, sig_len, args->mtime);
	if (r >= 0)
		r = write_buffer(a, BUNDLE_MANIFEST, args->manifest, args->manifest_size, args->mtime);
	if (r >= 0 && args->secrets_enc)
		r = write_buffer(a, BUNDLE_SECRETS, args->secrets_enc, args->secrets_enc_size, args->mtime);
	for (size_t i = 0; r >= 0 && i < args->n_assets; i++)
		r = write_asset(a, args, assets_fd, i, s, n_sums, buf);
	if (r < 0)
		return r;
	if (archive_write_close(a) != ARCHIVE_OK)
		return bundle_failf(-EIO, "finishing the bundle archive: %s", archive_error_string(a));
	return 0;
}

/* Write to "<dir>/.<name>.XXXXXX", fsync, rename over the output, fsync the
 * directory: a crash leaves the old bundle or the new one, never half. */
static int write_output(const struct bundle_create_args *args, int assets_fd, const char *sums,
			size_t sums_size, const uint8_t *sig, size_t sig_len, const struct sum *s, size_t n_sums,
			uint8_t *buf)
{
	_cleanup_free_ char *d1 = strdup(args->output), *d2 = strdup(args->output), *tmp = NULL;
	_cleanup_close_ int fd = -1, dfd = -1;
	const char *dir, *base;
	int r;

	if (!d1 || !d2)
		return -ENOMEM;
	dir = dirname(d1);
	base = basename(d2);
	if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return bundle_failf(negative_errno(), "output directory '%s': %m", dir);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return bundle_failf(negative_errno(), "cannot create a file in '%s': %m", dir);
	r = write_archive(fd, args, assets_fd, sums, sums_size, sig, sig_len, s, n_sums, buf);
	if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
		r = bundle_failf(negative_errno(), "writing '%s': %m", tmp);
	if (r >= 0 && rename(tmp, args->output) < 0)
		r = bundle_failf(negative_errno(), "cannot rename '%s' to '%s': %m", tmp, args->output);
	if (r < 0) {
		(void)unlink(tmp);
		return r;
	}
	if (fsync(dfd) < 0)
		return bundle_failf(negative_errno(), "fsync '%s': %m", dir);
	return 0;
}

int bundle_create(const struct bundle_create_args *args)
{
	_cleanup_(sig_openssl_key_freep) struct sig_openssl_key *key = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *sums = NULL;
	_cleanup_close_ int assets_fd = -1;
	uint8_t digest[SIG_SHA256_LEN], sig[SIG_MAX_LEN];
	struct sum *s = NULL;
	size_t sums_size = 0, sig_len = 0, n_sums;
	int r;

	bundle_error_clear();
	if (args->manifest_size > BUNDLE_MANIFEST_MAX_BYTES)
		return bundle_failf(-EFBIG, "manifest larger than %u bytes", BUNDLE_MANIFEST_MAX_BYTES);
	if (args->secrets_enc && args->secrets_enc_size > BUNDLE_SECRETS_MAX_BYTES)
		return bundle_failf(-EFBIG, "secrets larger than %u bytes", BUNDLE_SECRETS_MAX_BYTES);
	sig_error_clear();
	r = sig_openssl_privkey_load(args->key_path, &key);
	if (r < 0)
		return bundle_failf(r, "%s", sig_error());
	assets_fd = open(args->assets_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (assets_fd < 0)
		return bundle_failf(negative_errno(), "assets directory '%s': %m", args->assets_dir);
	buf = malloc(COPY_BLOCK);
	if (!buf)
		return -ENOMEM;
	r = make_sums(args, assets_fd, buf, &s, &sums, &sums_size);
	if (r < 0)
		return r;
	n_sums = args->n_assets + 1 + !!args->secrets_enc;
	if (sums_size > BUNDLE_SUMS_MAX_BYTES) {
		r = bundle_failf(-EFBIG, BUNDLE_SUMS " would be larger than %u bytes", BUNDLE_SUMS_MAX_BYTES);
		goto out;
	}
	openssl_sha256(sums, sums_size, digest);
	r = sig_openssl_sign(key, digest, sig, &sig_len);
	if (r < 0) {
		r = bundle_failf(r, "%s", sig_error());
		goto out;
	}
	r = write_output(args, assets_fd, sums, sums_size, sig, sig_len, s, n_sums, buf);
out:
	sums_free(s, n_sums);
	return r;
}
