/* SPDX-License-Identifier: MIT */
/*
 * test-isoimage.c — ISO images (lib/guests/isoimage.c):
 *   - names and volume ids: what is accepted and refused;
 *   - an image of files from memory and from disk: its primary volume
 *     descriptor (ECMA-119 8.4: "CD001", the volume id, the fixed dates),
 *     the Joliet and Rock Ridge markers, each file's bytes in the image;
 *   - the same input gives the same bytes whatever the wall clock and the
 *     source files' own times, another mtime other bytes;
 *   - refusals: bad and duplicate names, too many files, a missing path, a
 *     directory, a second write, a file that vanished or shrank before the
 *     write (an error, never an image with zeros or a short file in it), a
 *     descriptor that cannot be written; the temporary file of
 *     isoimage_write_path() is gone after a failure.
 * xorriso, blkid and cloud-init's own reading of such an image are
 * tests/integration/t-isoimage.sh's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "guests/isoimage.h"
#include "util.h"

#define MTIME 1700000000 /* 2023-11-14 22:13:20 UTC */
#define SECTOR 2048
#define PVD (16 * SECTOR)

struct fixture {
	char dir[64];
	char big[128];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int fd;

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test-isoimage.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->big, sizeof(fx->big), "%s/big", fx->dir);
	/* 3 MiB + 5: a hole, then a marked tail */
	fd = open(fx->big, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 3 << 20), 0);
	assert_int_equal(pwrite(fd, "TAIL!", 5, 3 << 20), 5);
	assert_int_equal(pwrite(fd, "HEAD", 4, 0), 4);
	close(fd);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

/* The image as bytes (an anonymous file, read back). */
static unsigned char *image_bytes(struct isoimage *img, size_t *ret_size)
{
	int fd = memfd_create("iso", MFD_CLOEXEC);
	unsigned char *buf;
	off_t size;
	int r;

	assert_true(fd >= 0);
	r = isoimage_write(img, fd);
	if (r < 0)
		fail_msg("isoimage_write: %d: %s", r, isoimage_error(img));
	size = lseek(fd, 0, SEEK_END);
	assert_true(size > 0);
	assert_int_equal(size % SECTOR, 0);
	buf = malloc((size_t)size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
	close(fd);
	*ret_size = (size_t)size;
	return buf;
}

/* The seed of the tests: three small documents and the big file. */
static struct isoimage *seed(const struct fixture *fx, time_t mtime)
{
	static const char ud[] = "#cloud-config\nhostname: \"vm1\"\n";
	static const char md[] = "instance-id: \"devopslab-101\"\n";
	struct isoimage *img = NULL;

	assert_int_equal(isoimage_new("cidata", mtime, &img), 0);
	assert_int_equal(isoimage_add_data(img, "user-data", ud, strlen(ud)), 0);
	assert_int_equal(isoimage_add_data(img, "meta-data", md, strlen(md)), 0);
	assert_int_equal(isoimage_add_data(img, "network-config", "", 0), 0);
	assert_int_equal(isoimage_add_file(img, "k3s-airgap-images-amd64.tar.zst", fx->big), 0);
	assert_string_equal(isoimage_error(img), "");
	return img;
}

static bool contains(const unsigned char *hay, size_t n, const void *needle, size_t k)
{
	return memmem(hay, n, needle, k) != NULL;
}

static void test_names(void **state)
{
	static const char *const good[] = { "user-data", "meta-data", "network-config", "k3s", "a",
					     "k3s-v1.30.2+k3s1", "A_b.c-d+e", "x1234567890123456789012345678901234567890123456789012345678901" };
	static const char *const bad[] = { "", ".hidden", "-opt", "a/b", "..", "a b", "a\nb", "ä", "a:b", "a*",
					   "x12345678901234567890123456789012345678901234567890123456789012345" };
	static const char *const vgood[] = { "cidata", "CIDATA", "DEVOPSLAB", "a", "ABCDEFGHIJKLMNOP", "x_1" };
	static const char *const vbad[] = { "", "ci-data", "ci data", "ABCDEFGHIJKLMNOPQ", "cidätä", "a.b" };

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(good); i++)
		if (!isoimage_name_ok(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		if (isoimage_name_ok(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	assert_false(isoimage_name_ok(NULL));
	for (size_t i = 0; i < ELEMENTSOF(vgood); i++)
		if (!isoimage_volid_ok(vgood[i]))
			fail_msg("volume id '%s' refused", vgood[i]);
	for (size_t i = 0; i < ELEMENTSOF(vbad); i++)
		if (isoimage_volid_ok(vbad[i]))
			fail_msg("volume id '%s' accepted", vbad[i]);
	assert_false(isoimage_volid_ok(NULL));
}

static void test_image(void **state)
{
	struct fixture *fx = *state;
	struct isoimage *img = seed(fx, MTIME);
	unsigned char *b, *tail;
	size_t n;

	b = image_bytes(img, &n);
	/* ECMA-119 8.4: the primary volume descriptor at sector 16 */
	assert_int_equal(b[PVD], 1);
	assert_memory_equal(b + PVD + 1, "CD001", 5);
	assert_memory_equal(b + PVD + 40, "cidata                          ", 32);
	/* creation and modification dates (8.4.26, 8.4.27): mtime in UTC, zone 0 */
	assert_memory_equal(b + PVD + 813, "2023111422132000\0", 17);
	assert_memory_equal(b + PVD + 830, "2023111422132000\0", 17);
	/* a Joliet supplementary descriptor next (type 2, escape "%/E": UCS-2 level 3) */
	assert_int_equal(b[PVD + SECTOR], 2);
	assert_memory_equal(b + PVD + SECTOR + 1, "CD001", 5);
	assert_memory_equal(b + PVD + SECTOR + 88, "%/E", 3);
	/* Rock Ridge: its extension reference and a file's own name in an NM entry */
	assert_true(contains(b, n, "IEEE_1282", 9));
	assert_true(contains(b, n, "NM\x0e\x01\x00user-data", 14));
	/* the contents */
	assert_true(contains(b, n, "#cloud-config\nhostname: \"vm1\"\n", 30));
	assert_true(contains(b, n, "instance-id: \"devopslab-101\"\n", 29));
	tail = memmem(b, n, "TAIL!", 5);
	assert_non_null(tail);
	assert_true(tail - b >= 3 << 20);
	assert_memory_equal(tail - (3 << 20), "HEAD", 4);
	assert_true(n >= (3u << 20) + 5 + 20 * SECTOR);
	free(b);
	isoimage_free(img);
}

/* The same names, contents and mtime: the same bytes, whatever the clock
 * says and whatever the source file's own times are; another mtime: not. */
static void test_deterministic(void **state)
{
	struct fixture *fx = *state;
	struct isoimage *img;
	unsigned char *a, *b, *c;
	struct timespec ts[2] = { { .tv_sec = 86400 }, { .tv_sec = 86400 } };
	size_t na, nb, nc;

	img = seed(fx, MTIME);
	a = image_bytes(img, &na);
	isoimage_free(img);
	sleep(1); /* the clock moves on */
	assert_int_equal(utimensat(AT_FDCWD, fx->big, ts, 0), 0);
	assert_int_equal(chmod(fx->big, 0600), 0);
	img = seed(fx, MTIME);
	b = image_bytes(img, &nb);
	isoimage_free(img);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	img = seed(fx, MTIME + 1);
	c = image_bytes(img, &nc);
	isoimage_free(img);
	assert_int_equal(na, nc);
	assert_true(memcmp(a, c, na) != 0);
	free(a);
	free(b);
	free(c);
}

static void test_refused(void **state)
{
	struct fixture *fx = *state;
	struct isoimage *img = NULL;
	char name[16];

	(void)fx;
	assert_int_equal(isoimage_new("ci-data", MTIME, &img), -EINVAL);
	assert_int_equal(isoimage_new("cidata", -1, &img), -EINVAL);
	assert_null(img);
	assert_int_equal(isoimage_new("cidata", MTIME, &img), 0);
	assert_int_equal(isoimage_add_data(img, "../x", "x", 1), -EINVAL);
	assert_non_null(strstr(isoimage_error(img), "'../x'"));
	assert_int_equal(isoimage_add_data(img, "a", "x", 1), 0);
	assert_int_equal(isoimage_add_data(img, "a", "y", 1), -EINVAL);
	assert_int_equal(isoimage_add_file(img, "a", fx->big), -EINVAL);
	assert_int_equal(isoimage_add_file(img, "missing", "/nonexistent/file"), -ENOENT);
	assert_int_equal(isoimage_add_file(img, "dir", fx->dir), -EINVAL);
	for (unsigned i = 1; i < ISOIMAGE_FILES_MAX; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		assert_int_equal(isoimage_add_data(img, name, "", 0), 0);
	}
	assert_int_equal(isoimage_add_data(img, "one-more", "", 0), -E2BIG);
	isoimage_free(img);
	assert_null(isoimage_free(NULL));
}

static void test_write_once(void **state)
{
	struct fixture *fx = *state;
	struct isoimage *img = seed(fx, MTIME);
	unsigned char *b;
	size_t n;
	int fd;

	b = image_bytes(img, &n);
	free(b);
	fd = memfd_create("iso", MFD_CLOEXEC);
	assert_int_equal(isoimage_write(img, fd), -EINVAL);
	close(fd);
	isoimage_free(img);
}

/* A file that changed between add and write fails the image. */
static void changed(struct fixture *fx, bool remove)
{
	struct isoimage *img = NULL;
	char path[160];
	int fd, r;

	snprintf(path, sizeof(path), "%s/shrinks", fx->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 100000), 0);
	close(fd);
	assert_int_equal(isoimage_new("DEVOPSLAB", MTIME, &img), 0);
	assert_int_equal(isoimage_add_file(img, "asset", path), 0);
	if (remove)
		assert_int_equal(unlink(path), 0);
	else
		assert_int_equal(truncate(path, 10), 0);
	fd = memfd_create("iso", MFD_CLOEXEC);
	r = isoimage_write(img, fd);
	if (r != -EIO)
		fail_msg("%s: isoimage_write gave %d, not -EIO", remove ? "removed" : "shrunk", r);
	/* libisofs's message, naming the file */
	if (!strstr(isoimage_error(img), path) ||
	    !strstr(isoimage_error(img), remove ? "can't be opened" : "has changed"))
		fail_msg("error: %s", isoimage_error(img));
	close(fd);
	isoimage_free(img);
	(void)unlink(path);
}

static void test_changed(void **state)
{
	changed(*state, true);
	changed(*state, false);
}

static void test_write_errors(void **state)
{
	struct fixture *fx = *state;
	struct isoimage *img = seed(fx, MTIME);
	char path[160];
	int fd;
	DIR *d;
	struct dirent *e;
	unsigned n = 0;

	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(isoimage_write(img, fd), -EBADF);
	assert_non_null(strstr(isoimage_error(img), "writing the image"));
	close(fd);
	isoimage_free(img);

	/* isoimage_write_path(): the image at its name, or nothing at all */
	img = seed(fx, MTIME);
	snprintf(path, sizeof(path), "%s/no-such-dir/seed.iso", fx->dir);
	assert_int_equal(isoimage_write_path(img, path), -ENOENT);
	isoimage_free(img);
	img = NULL;
	snprintf(path, sizeof(path), "%s/changed", fx->dir);
	assert_int_equal(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)), 0);
	assert_int_equal(isoimage_new("cidata", MTIME, &img), 0);
	assert_int_equal(isoimage_add_file(img, "x", path), 0);
	assert_int_equal(truncate(path, 4096), 0); /* grew: libisofs would cut it */
	snprintf(path, sizeof(path), "%s/seed.iso", fx->dir);
	assert_true(isoimage_write_path(img, path) < 0);
	isoimage_free(img);
	d = opendir(fx->dir);
	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			n++;
			if (!streq(e->d_name, "big") && !streq(e->d_name, "changed"))
				fail_msg("left behind: %s", e->d_name);
		}
	closedir(d);
	assert_int_equal(n, 2);

	img = seed(fx, MTIME);
	assert_int_equal(isoimage_write_path(img, path), 0);
	isoimage_free(img);
	assert_int_equal(access(path, R_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
