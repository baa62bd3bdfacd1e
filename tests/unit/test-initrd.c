/* SPDX-License-Identifier: MIT */
/*
 * test-initrd.c — the node's files in front of a generic initramfs
 * (initrd.c): the archive is newc that GNU cpio lists and extracts byte for
 * byte, made the same for the same files, found again (and only ours: not
 * another leading archive, not a damaged one); on a file, check and apply
 * put it in front, replace an older one, take it away, and keep the
 * initramfs behind it byte for byte.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "install/initrd.h"
#include "bundle/extract.h"
#include "exec.h"

#define LINK1 "[Match]\nMACAddress=52:54:00:0a:00:01\nType=ether\n\n[Link]\nName=nic0\n"
#define LINK2 "[Match]\nMACAddress=52:54:00:0a:00:02\n\n[Link]\nName=nic1\n"

static const struct initrd_file two[] = {
	{ "10-devopslab-nic0.link", LINK1, sizeof(LINK1) - 1 },
	{ "20-other.link", LINK2, sizeof(LINK2) - 1 },
};

static void make(const struct initrd_file *f, size_t n, char **buf, size_t *len)
{
	assert_int_equal(initrd_overlay(f, n, buf, len), 0);
	assert_non_null(*buf);
}

/* GNU cpio reads it as newc: the names in order, and the files' bytes. */
static void test_cpio_reads_it(void **state)
{
	char *buf = NULL, dir[] = "/tmp/test-initrd.XXXXXX", path[256];
	const char *list[] = { "cpio", "-i", "-t", "--quiet", NULL };
	const char *extract[] = { "cpio", "-i", "-d", "--quiet", "-D", dir, NULL };
	struct exec_result res = { 0 };
	struct exec_opts o = { 0 };
	size_t len = 0;
	FILE *fp;
	char got[256];
	size_t k;

	(void)state;
	make(two, 2, &buf, &len);
	assert_int_equal(len % 512, 0);
	o.stdin_data = buf;
	o.stdin_len = len;
	assert_int_equal(exec_run((char *const *)list, &o, &res), 0);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.out, INITRD_MARKER "\nusr\nusr/lib\nusr/lib/systemd\nusr/lib/systemd/network\n"
						   "usr/lib/systemd/network/10-devopslab-nic0.link\n"
						   "usr/lib/systemd/network/20-other.link\n");
	exec_result_done(&res);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(exec_run((char *const *)extract, &o, &res), 0);
	assert_int_equal(res.status, 0);
	exec_result_done(&res);
	snprintf(path, sizeof(path), "%s/usr/lib/systemd/network/10-devopslab-nic0.link", dir);
	fp = fopen(path, "re");
	assert_non_null(fp);
	k = fread(got, 1, sizeof(got) - 1, fp);
	got[k] = '\0';
	fclose(fp);
	assert_string_equal(got, LINK1);
	assert_int_equal(extract_rm_rf_at(AT_FDCWD, dir), 0);
	free(buf);
}

static void test_deterministic_and_found(void **state)
{
	char *a = NULL, *b = NULL, *c = NULL, *big;
	size_t alen = 0, blen = 0, clen = 0, olen = 99;

	(void)state;
	make(two, 2, &a, &alen);
	make(two, 2, &b, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	make(two, 1, &c, &clen);
	assert_true(clen != alen || memcmp(a, c, alen) != 0);
	/* found at the start of an initramfs, the rest not taken */
	big = malloc(alen + 4096);
	assert_non_null(big);
	memcpy(big, a, alen);
	memset(big + alen, 0x28, 4096); /* zstd's magic begins 28 b5 2f fd */
	assert_int_equal(initrd_overlay_len(big, alen + 4096, &olen), 0);
	assert_int_equal(olen, alen);
	/* cut short: damaged */
	assert_int_equal(initrd_overlay_len(big, alen - 600, &olen), -EBADMSG);
	/* not zeros up to the block: damaged */
	big[alen - 1] = 'x';
	assert_int_equal(initrd_overlay_len(big, alen + 4096, &olen), -EBADMSG);
	/* another leading archive (early microcode), or none: not ours */
	memcpy(big, "070701", 6);
	memcpy(big + 110, "kernel", 7);
	assert_int_equal(initrd_overlay_len(big, alen + 4096, &olen), 0);
	assert_int_equal(olen, 0);
	assert_int_equal(initrd_overlay_len("\x28\xb5\x2f\xfd", 4, &olen), 0);
	assert_int_equal(olen, 0);
	free(a);
	free(b);
	free(c);
	free(big);
}

static void test_refused(void **state)
{
	struct initrd_file f[INITRD_FILES_MAX + 1];
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < INITRD_FILES_MAX + 1; i++)
		f[i] = (struct initrd_file){ "a.link", "x", 1 };
	assert_int_equal(initrd_overlay(f, 0, &buf, &len), -EINVAL);
	assert_int_equal(initrd_overlay(f, INITRD_FILES_MAX + 1, &buf, &len), -E2BIG);
	f[0].name = "../x.link";
	assert_int_equal(initrd_overlay(f, 1, &buf, &len), -EINVAL);
	f[0].name = "";
	assert_int_equal(initrd_overlay(f, 1, &buf, &len), -EINVAL);
	f[0].name = "..";
	assert_int_equal(initrd_overlay(f, 1, &buf, &len), -EINVAL);
	assert_null(buf);
}

static void put(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *fp = fopen(path, "re");
	char *buf = malloc(1 << 20);
	size_t len;

	assert_non_null(fp);
	assert_non_null(buf);
	len = fread(buf, 1, 1 << 20, fp);
	fclose(fp);
	*ret_len = len;
	return buf;
}

static bool same(int dfd, const char *o, size_t len)
{
	bool s = false;

	assert_int_equal(initrd_check(dfd, "initrd.img-6.12", o, len, &s), 0);
	return s;
}

/* The file: in front, replaced, taken away; the initramfs kept. */
static void test_file(void **state)
{
	char dir[] = "/tmp/test-initrd.XXXXXX", path[256], base[3000], *a = NULL, *b = NULL, *got;
	size_t alen = 0, blen = 0, glen = 0;
	struct stat st;
	int dfd;

	(void)state;
	for (size_t i = 0; i < sizeof(base); i++)
		base[i] = (char)(i * 7 + 1);
	base[0] = 0x28; /* not a cpio */
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	snprintf(path, sizeof(path), "%s/initrd.img-6.12", dir);
	put(path, base, sizeof(base));
	make(two, 2, &a, &alen);
	make(two + 1, 1, &b, &blen);

	assert_true(same(dfd, NULL, 0));
	assert_false(same(dfd, a, alen));
	assert_int_equal(initrd_apply(dfd, "initrd.img-6.12", a, alen), 0);
	assert_true(same(dfd, a, alen));
	assert_false(same(dfd, NULL, 0));
	assert_false(same(dfd, b, blen));
	got = slurp(path, &glen);
	assert_int_equal(glen, alen + sizeof(base));
	assert_memory_equal(got, a, alen);
	assert_memory_equal(got + alen, base, sizeof(base));
	free(got);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* another set of files: the old overlay replaced, not stacked */
	assert_int_equal(initrd_apply(dfd, "initrd.img-6.12", b, blen), 0);
	assert_true(same(dfd, b, blen));
	got = slurp(path, &glen);
	assert_int_equal(glen, blen + sizeof(base));
	assert_memory_equal(got + blen, base, sizeof(base));
	free(got);
	/* none wanted: the initramfs as it was */
	assert_int_equal(initrd_apply(dfd, "initrd.img-6.12", NULL, 0), 0);
	assert_true(same(dfd, NULL, 0));
	got = slurp(path, &glen);
	assert_int_equal(glen, sizeof(base));
	assert_memory_equal(got, base, sizeof(base));
	free(got);
	/* no temporary file left; a file that is all overlay is refused */
	snprintf(path, sizeof(path), "%s/.initrd.img-6.12.devopslab-new", dir);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/initrd.img-6.12", dir);
	put(path, a, alen);
	assert_false(same(dfd, a, alen));
	assert_int_equal(initrd_apply(dfd, "initrd.img-6.12", a, alen), -EBADMSG);
	assert_int_equal(initrd_apply(dfd, "missing", a, alen), -ENOENT);
	close(dfd);
	assert_int_equal(extract_rm_rf_at(AT_FDCWD, dir), 0);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpio_reads_it),
		cmocka_unit_test(test_deterministic_and_found),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
