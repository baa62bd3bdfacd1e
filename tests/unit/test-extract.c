/* SPDX-License-Identifier: MIT */
/*
 * test-extract.c — hostile archives against the extraction module, with
 * both policies (files only, as for a bundle; root file system). Each
 * archive is built here with libarchive's writer, which writes whatever it
 * is told: "../" and absolute paths, links out, device nodes, duplicates,
 * bombs. Every case checks the refusal AND that a canary directory beside
 * the target is unchanged and that nothing else appeared beside it.
 */
#define _GNU_SOURCE 1
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <cmocka.h>

#include "bundle/extract.h"
#include "util.h"

struct member {
	char type; /* f file, z zeros, d dir, l symlink, h hardlink, c chr, b blk, p fifo */
	const char *path;
	const char *arg; /* file data, or link target */
	uint64_t size;   /* for 'z' */
};

struct fixture {
	char base[64];
	char target[96];
	int basefd;
};

/* Build a (zstd-compressed) pax tar of the members, in memory. */
static char *build(const struct member *m, size_t n, size_t *ret_size)
{
	struct archive *a = archive_write_new();
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	static char zeros[1 << 16];

	assert_non_null(a);
	assert_non_null(f);
	assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	/* No zero padding after the zstd frame (libarchive pads the last block). */
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
	assert_int_equal(archive_write_open_FILE(a, f), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		uint64_t left;

		archive_entry_set_pathname(e, m[i].path);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		switch (m[i].type) {
		case 'f':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, m[i].arg ? (la_int64_t)strlen(m[i].arg) : 0);
			break;
		case 'z':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)m[i].size);
			break;
		case 'd':
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
			break;
		case 'l':
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, m[i].arg);
			break;
		case 'h':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, m[i].arg);
			archive_entry_set_size(e, 0);
			break;
		case 'c':
		case 'b':
			archive_entry_set_filetype(e, m[i].type == 'c' ? AE_IFCHR : AE_IFBLK);
			archive_entry_set_rdev(e, makedev(1, 3));
			break;
		case 'p':
			archive_entry_set_filetype(e, AE_IFIFO);
			break;
		default:
			fail();
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (m[i].type == 'f' && m[i].arg)
			assert_int_equal(archive_write_data(a, m[i].arg, strlen(m[i].arg)), (la_ssize_t)strlen(m[i].arg));
		for (left = m[i].type == 'z' ? m[i].size : 0; left > 0;) {
			size_t k = left < sizeof(zeros) ? (size_t)left : sizeof(zeros);

			assert_int_equal(archive_write_data(a, zeros, k), (la_ssize_t)k);
			left -= k;
		}
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	fclose(f);
	*ret_size = size;
	return buf;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int fd;

	assert_non_null(fx);
	strcpy(fx->base, "/tmp/test-extract.XXXXXX");
	assert_non_null(mkdtemp(fx->base));
	snprintf(fx->target, sizeof(fx->target), "%s/target", fx->base);
	assert_int_equal(mkdir(fx->target, 0755), 0);
	fx->basefd = open(fx->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->basefd >= 0);
	assert_int_equal(mkdirat(fx->basefd, "canary", 0755), 0);
	fd = openat(fx->basefd, "canary/file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "canary\n", 7), 7);
	close(fd);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(extract_rm_rf_at(AT_FDCWD, fx->base), 0);
	close(fx->basefd);
	free(fx);
	return 0;
}

/* Count the entries of a directory, failing on any name not in `allowed`. */
static size_t count_entries(const char *dir, const char *const *allowed, size_t n_allowed)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		bool ok = false;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		for (size_t i = 0; i < n_allowed; i++)
			ok = ok || streq(de->d_name, allowed[i]);
		if (!ok)
			fail_msg("'%s' appeared in '%s', outside the target", de->d_name, dir);
		n++;
	}
	closedir(d);
	return n;
}

/* Nothing outside the target: the canary is exactly as it was, and the
 * base directory holds only "canary" and "target". */
static void assert_canary_intact(const struct fixture *fx)
{
	static const char *const base_names[] = { "canary", "target" }, *const canary_names[] = { "file" };
	char buf[64] = "", dir[128];
	int fd = openat(fx->basefd, "canary/file", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t k;

	assert_true(fd >= 0);
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_int_equal(k, 7);
	assert_string_equal(buf, "canary\n");
	assert_int_equal(count_entries(fx->base, base_names, 2), 2);
	snprintf(dir, sizeof(dir), "%s/canary", fx->base);
	assert_int_equal(count_entries(dir, canary_names, 1), 1);
}

static int run(const struct fixture *fx, unsigned flags, const struct extract_limits *lim, const struct member *m,
	       size_t n)
{
	_cleanup_(extract_freep) struct extract *x = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t size;
	int r;

	buf = build(m, n, &size);
	extract_error_clear();
	assert_int_equal(extract_new(fx->target, flags, lim, &x), 0);
	r = extract_archive_memory(x, buf, size);
	assert_canary_intact(fx);
	return r;
}

#define REFUSED(flags, needle, ...)                                                            \
	do {                                                                                   \
		const struct member m_[] = { __VA_ARGS__ };                                     \
		int r_ = run(fx, (flags), NULL, m_, ELEMENTSOF(m_));                             \
		if (r_ >= 0)                                                                   \
			fail_msg("line %d: accepted, expected refusal with '%s'", __LINE__, needle); \
		if (!strstr(extract_error(), needle))                                          \
			fail_msg("line %d: error '%s' lacks '%s'", __LINE__, extract_error(), needle); \
	} while (0)

static bool exists_in_target(const struct fixture *fx, const char *p)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", fx->target, p);
	return lstat(path, &st) == 0;
}

static void test_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "a", "a" }, { "./a", "a" }, { "a//b/", "a/b" }, { "./a/./b", "a/b" }, { "./", "" }, { "a..b", "a..b" },
		{ "...", "..." },
	};
	static const char *const bad[] = { "", "/etc/passwd", "../x", "a/../../x", "a/..", "..", "a/\n" };
	char out[EXTRACT_PATH_MAX + 1];
	_cleanup_free_ char *longname = malloc(300);

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
		assert_int_equal(extract_normalize_path(ok[i].in, out), 0);
		assert_string_equal(out, ok[i].out);
	}
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		if (extract_normalize_path(bad[i], out) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	}
	memset(longname, 'x', 299);
	longname[299] = 0;
	assert_int_equal(extract_normalize_path(longname, out), -EINVAL);
}

static void test_good_rootfs(void **state)
{
	const struct fixture *fx = *state;
	const struct member m[] = {
		{ 'd', "./", NULL, 0 },
		{ 'd', "./etc", NULL, 0 },
		{ 'f', "./etc/hostname", "pve1\n", 0 },
		{ 'l', "./etc/localtime", "/usr/share/zoneinfo/UTC", 0 }, /* absolute: inside once chrooted */
		{ 'l', "./etc/alias", "hostname", 0 },
		{ 'l', "./usr/bin/sh", "../../bin/busybox", 0 },
		{ 'f', "./bin/busybox", "ELF", 0 },
		{ 'h', "./bin/ls", "./bin/busybox", 0 },
		{ 'z', "./var/zero", NULL, 100000 },
		{ 'p', "./run/initctl", NULL, 0 },
	};
	char p[256];
	struct stat st, st2;

	assert_int_equal(run(fx, EXTRACT_POLICY_ROOTFS, NULL, m, ELEMENTSOF(m)), 0);
	snprintf(p, sizeof(p), "%s/bin/busybox", fx->target);
	assert_int_equal(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/bin/ls", fx->target);
	assert_int_equal(stat(p, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	snprintf(p, sizeof(p), "%s/var/zero", fx->target);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 100000);
	snprintf(p, sizeof(p), "%s/run/initctl", fx->target);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	snprintf(p, sizeof(p), "%s/etc/localtime", fx->target);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
}

static void test_dotdot_and_absolute(void **state)
{
	const struct fixture *fx = *state;
	char abs_path[160];

	REFUSED(EXTRACT_POLICY_ROOTFS, "'..' component", { 'f', "../canary/file", "pwned", 0 });
	REFUSED(EXTRACT_POLICY_ROOTFS, "'..' component", { 'f', "a/../../canary/x", "pwned", 0 });
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "'..' component", { 'f', "..", "x", 0 });
	snprintf(abs_path, sizeof(abs_path), "%s/canary/file", fx->base);
	REFUSED(EXTRACT_POLICY_ROOTFS, "absolute path", { 'f', abs_path, "pwned", 0 });
	REFUSED(EXTRACT_POLICY_ROOTFS, "absolute path", { 'd', "/", NULL, 0 });
}

static void test_symlinks(void **state)
{
	const struct fixture *fx = *state;
	char canary[160];

	snprintf(canary, sizeof(canary), "%s/canary", fx->base);
	/* not allowed at all in a bundle */
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "is a symlink", { 'l', "a", "b", 0 });
	/* relative targets that climb out */
	REFUSED(EXTRACT_POLICY_ROOTFS, "leads out", { 'l', "up", "../canary", 0 });
	REFUSED(EXTRACT_POLICY_ROOTFS, "leads out", { 'l', "a/b/up", "../../../canary/file", 0 });
	REFUSED(EXTRACT_POLICY_ROOTFS, "leads out", { 'l', "a/up", "x/../../..", 0 });
	/* absolute targets: only with the rootfs flag */
	REFUSED(EXTRACT_ALLOW_SYMLINKS, "absolute path", { 'l', "abs", canary, 0 });
}

static void test_write_through_symlink(void **state)
{
	const struct fixture *fx = *state;
	char canary[160], link[160];

	snprintf(canary, sizeof(canary), "%s/canary", fx->base);
	/* an absolute symlink is allowed in a rootfs (it points into the new
	 * root once it is /) but is never followed while extracting */
	REFUSED(EXTRACT_POLICY_ROOTFS, "passes through a symlink", { 'l', "evil", canary, 0 },
		{ 'f', "evil/pwned", "pwned", 0 });
	assert_int_equal(extract_rm_rf_at(fx->basefd, "target"), 0);
	assert_int_equal(mkdirat(fx->basefd, "target", 0755), 0);
	/* ... nor by a later member of the same name */
	REFUSED(EXTRACT_POLICY_ROOTFS, "appears twice", { 'l', "evil", "canary/file", 0 },
		{ 'f', "evil", "pwned", 0 });
	assert_int_equal(extract_rm_rf_at(fx->basefd, "target"), 0);
	assert_int_equal(mkdirat(fx->basefd, "target", 0755), 0);
	/* a symlink planted in the target beforehand is not followed either */
	snprintf(link, sizeof(link), "%s/planted", fx->target);
	assert_int_equal(symlink(canary, link), 0);
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "passes through a symlink", { 'f', "planted/pwned", "pwned", 0 });
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "cannot create", { 'f', "planted", "pwned", 0 });
	snprintf(link, sizeof(link), "%s/planted2", fx->target);
	assert_int_equal(symlink("../canary/file", link), 0);
	REFUSED(EXTRACT_POLICY_ROOTFS, "cannot create", { 'f', "planted2", "pwned", 0 });
}

static void test_hardlinks(void **state)
{
	const struct fixture *fx = *state;
	char abs_path[160];

	snprintf(abs_path, sizeof(abs_path), "%s/canary/file", fx->base);
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "is a hardlink", { 'f', "a", "x", 0 }, { 'h', "b", "a", 0 });
	REFUSED(EXTRACT_POLICY_ROOTFS, "'..' component", { 'h', "h", "../canary/file", 0 });
	REFUSED(EXTRACT_POLICY_ROOTFS, "absolute path", { 'h', "h", abs_path, 0 });
	/* only to a member of this archive, not to what is already there */
	REFUSED(EXTRACT_POLICY_ROOTFS, "not an earlier member", { 'h', "h", "later", 0 }, { 'f', "later", "x", 0 });
	/* a hardlink to an earlier symlink that points out is the symlink
	 * itself, and writing through it is refused */
	REFUSED(EXTRACT_POLICY_ROOTFS, "passes through a symlink", { 'l', "s", abs_path, 0 }, { 'h', "h", "s", 0 },
		{ 'f', "h/x", "pwned", 0 });
}

static void test_special_files(void **state)
{
	const struct fixture *fx = *state;

	REFUSED(EXTRACT_POLICY_FILES_ONLY, "device node", { 'c', "null", NULL, 0 });
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "device node", { 'b', "sda", NULL, 0 });
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "FIFO", { 'p', "fifo", NULL, 0 });
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "is a directory", { 'd', "dir", NULL, 0 });
	REFUSED(EXTRACT_POLICY_ROOTFS & ~EXTRACT_ALLOW_DEVICES, "device node", { 'c', "null", NULL, 0 });
	assert_false(exists_in_target(fx, "null"));
	assert_false(exists_in_target(fx, "sda"));
	assert_false(exists_in_target(fx, "fifo"));
}

static void test_duplicates(void **state)
{
	const struct fixture *fx = *state;

	REFUSED(EXTRACT_POLICY_FILES_ONLY, "appears twice", { 'f', "a", "1", 0 }, { 'f', "a", "2", 0 });
	assert_int_equal(extract_rm_rf_at(fx->basefd, "target"), 0);
	assert_int_equal(mkdirat(fx->basefd, "target", 0755), 0);
	REFUSED(EXTRACT_POLICY_FILES_ONLY, "appears twice", { 'f', "d/a", "1", 0 }, { 'f', "./d//a", "2", 0 });
	assert_int_equal(extract_rm_rf_at(fx->basefd, "target"), 0);
	assert_int_equal(mkdirat(fx->basefd, "target", 0755), 0);
	REFUSED(EXTRACT_POLICY_ROOTFS, "appears twice", { 'd', "d", NULL, 0 }, { 'd', "d/", NULL, 0 });
}

static void test_limits(void **state)
{
	const struct fixture *fx = *state;
	const struct extract_limits small = {
		.max_entries = 10, .max_entry_bytes = 1 << 20, .max_total_bytes = 3 << 20, .max_ratio = 1000,
	};
	struct member many[11], three[4];
	char names[11][8];
	int r;

	/* declared size over the per-entry limit: refused before a byte is written */
	{
		const struct member m[] = { { 'z', "big", NULL, (1 << 20) + 1 } };

		r = run(fx, EXTRACT_POLICY_FILES_ONLY, &small, m, 1);
		assert_int_equal(r, -EFBIG);
		assert_non_null(strstr(extract_error(), "more than the limit"));
		assert_false(exists_in_target(fx, "big"));
	}
	/* too many bytes in total */
	for (int i = 0; i < 4; i++)
		three[i] = (struct member){ 'z', i == 0 ? "t0" : i == 1 ? "t1" : i == 2 ? "t2" : "t3", NULL, 1 << 20 };
	r = run(fx, EXTRACT_POLICY_FILES_ONLY, &small, three, 4);
	assert_int_equal(r, -EFBIG);
	assert_non_null(strstr(extract_error(), "expands to more than"));
	assert_int_equal(extract_rm_rf_at(fx->basefd, "target"), 0);
	assert_int_equal(mkdirat(fx->basefd, "target", 0755), 0);
	/* too many entries */
	for (unsigned i = 0; i < 11; i++) {
		snprintf(names[i], sizeof(names[i]), "f%u", i);
		many[i] = (struct member){ 'f', names[i], "", 0 };
	}
	r = run(fx, EXTRACT_POLICY_FILES_ONLY, &small, many, 11);
	assert_int_equal(r, -EFBIG);
	assert_non_null(strstr(extract_error(), "more than 10 members"));
	assert_false(exists_in_target(fx, "f10"));
}

static void test_compression_bomb(void **state)
{
	const struct fixture *fx = *state;
	/* 256 MiB of zeros: a few KiB of zstd. Refused once the ratio check
	 * starts (64 MiB written), long before the declared size. */
	const struct member m[] = { { 'z', "bomb", NULL, 256ull << 20 } };
	char p[256];
	struct stat st;
	int r;

	r = run(fx, EXTRACT_POLICY_ROOTFS, NULL, m, 1);
	assert_int_equal(r, -EFBIG);
	assert_non_null(strstr(extract_error(), "compression bomb"));
	snprintf(p, sizeof(p), "%s/bomb", fx->target);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size <= (off_t)(EXTRACT_RATIO_GRACE_BYTES + (1 << 20)));
}

static void test_rm_rf_does_not_follow_symlinks(void **state)
{
	const struct fixture *fx = *state;
	char link[160], canary[160];

	snprintf(canary, sizeof(canary), "%s/canary", fx->base);
	snprintf(link, sizeof(link), "%s/link", fx->target);
	assert_int_equal(symlink(canary, link), 0);
	assert_int_equal(extract_rm_rf_at(fx->basefd, "target"), 0);
	assert_int_equal(mkdirat(fx->basefd, "target", 0755), 0);
	assert_canary_intact(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test_setup_teardown(test_good_rootfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotdot_and_absolute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_through_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hardlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_special_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compression_bomb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rm_rf_does_not_follow_symlinks, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
