/* SPDX-License-Identifier: MIT */
/*
 * initrd.c — a node's own files in front of a generic initramfs. See
 * initrd.h. The format is cpio "newc" (the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte
 * ASCII header ("070701", then 13 fields of 8 hex digits), the name with
 * its NUL, padded to 4 bytes, the data, padded to 4 bytes; "TRAILER!!!"
 * ends the archive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "initrd.h"
#include "util.h"

#define HDR_LEN 110u
#define MAGIC "070701"
#define TRAILER "TRAILER!!!"
#define BLOCK 512u
#define NAME_MAX_LEN 128u

static const char marker_text[] = "Node files added by devopslab install in front of the generic initramfs\n"
				  "(docs/install.md, \"Boot loader\").\n";

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* One entry: header, name, data; ino counts up from 1. */
static void entry(FILE *f, unsigned ino, const char *name, mode_t mode, const char *data, size_t len)
{
	size_t nlen = strlen(name) + 1;
	static const char zeros[4];

	fprintf(f, MAGIC "%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino, (unsigned)mode, 0u, 0u,
		S_ISDIR(mode) ? 2u : 1u, 0u, len, 0u, 0u, 0u, 0u, nlen, 0u);
	fwrite(name, 1, nlen, f);
	fwrite(zeros, 1, pad4(HDR_LEN + nlen) - (HDR_LEN + nlen), f);
	if (len) {
		fwrite(data, 1, len, f);
		fwrite(zeros, 1, pad4(len) - len, f);
	}
}

static bool name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n > 0 && n < NAME_MAX_LEN && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int initrd_overlay(const struct initrd_file *files, size_t n, char **ret, size_t *ret_len)
{
	static const char *const dirs[] = { "usr", "usr/lib", "usr/lib/systemd", INITRD_LINK_DIR };
	char *buf = NULL, path[sizeof(INITRD_LINK_DIR) + NAME_MAX_LEN + 1];
	size_t len = 0, total = 0;
	unsigned ino = 1;
	FILE *f;
	int err;

	if (n == 0)
		return -EINVAL;
	if (n > INITRD_FILES_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		if (!name_ok(files[i].name))
			return -EINVAL;
		total += files[i].len;
		if (total > INITRD_OVERLAY_MAX / 2)
			return -E2BIG;
	}
	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	entry(f, ino++, INITRD_MARKER, S_IFREG | 0644, marker_text, sizeof(marker_text) - 1);
	/* the directories first: the kernel makes no missing parents */
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
		entry(f, ino++, dirs[i], S_IFDIR | 0755, NULL, 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), INITRD_LINK_DIR "/%s", files[i].name);
		entry(f, ino++, path, S_IFREG | 0644, files[i].data, files[i].len);
	}
	entry(f, 0, TRAILER, 0, NULL, 0);
	/* zeros to a block boundary, as cpio writes them; the kernel skips
	 * zeros between archives */
	fflush(f);
	for (size_t k = len % BLOCK ? BLOCK - len % BLOCK : 0; k > 0; k--)
		fputc(0, f);
	err = ferror(f);
	if (fclose(f) != 0 || err) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* The 8 hex digits of header field i (0: ino ... 12: check). */
static int field(const char *hdr, unsigned i, size_t *ret)
{
	size_t v = 0;

	for (unsigned k = 0; k < 8; k++) {
		char c = hdr[6 + 8 * i + k];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			return -EBADMSG;
		v = v * 16 + (size_t)d;
	}
	*ret = v;
	return 0;
}

int initrd_overlay_len(const char *buf, size_t len, size_t *ret)
{
	size_t off = 0, limit = len < INITRD_OVERLAY_MAX ? len : INITRD_OVERLAY_MAX;
	bool first = true;

	if (len < HDR_LEN + sizeof(INITRD_MARKER) || memcmp(buf, MAGIC, 6) != 0 ||
	    memcmp(buf + HDR_LEN, INITRD_MARKER, sizeof(INITRD_MARKER)) != 0) {
		*ret = 0;
		return 0;
	}
	for (;;) {
		size_t nlen, flen, name_end;
		bool trailer;

		if (off + HDR_LEN > limit || memcmp(buf + off, MAGIC, 6) != 0)
			return -EBADMSG;
		if (field(buf + off, 11, &nlen) < 0 || field(buf + off, 6, &flen) < 0 || nlen == 0 ||
		    nlen > NAME_MAX_LEN + sizeof(INITRD_LINK_DIR) || flen > INITRD_OVERLAY_MAX)
			return -EBADMSG;
		name_end = off + HDR_LEN + nlen;
		if (name_end > limit || buf[name_end - 1] != '\0')
			return -EBADMSG;
		if (first && strcmp(buf + off + HDR_LEN, INITRD_MARKER) != 0)
			return -EBADMSG;
		first = false;
		trailer = strcmp(buf + off + HDR_LEN, TRAILER) == 0;
		off = pad4(name_end) + pad4(flen);
		if (off > limit)
			return -EBADMSG;
		if (trailer)
			break;
	}
	for (; off % BLOCK; off++)
		if (off >= limit || buf[off] != '\0')
			return -EBADMSG;
	*ret = off;
	return 0;
}

/* ---- the file ------------------------------------------------------------ */

static int read_head(int fd, char *buf, size_t size, size_t *ret_len)
{
	size_t len = 0;

	while (len < size) {
		ssize_t k = pread(fd, buf + len, size - len, (off_t)len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		len += (size_t)k;
	}
	*ret_len = len;
	return 0;
}

/* The initramfs `name` in dirfd: its fd, size and the length of an overlay
 * of ours at its start. */
static int open_initrd(int dirfd, const char *name, int *ret_fd, off_t *ret_size, size_t *ret_olen)
{
	_cleanup_free_ char *head = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len = 0;
	int r;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	head = malloc(INITRD_OVERLAY_MAX);
	if (!head)
		return -ENOMEM;
	r = read_head(fd, head, INITRD_OVERLAY_MAX, &len);
	if (r >= 0)
		r = initrd_overlay_len(head, len, ret_olen);
	if (r < 0)
		return r;
	*ret_size = st.st_size;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int initrd_check(int dirfd, const char *name, const char *overlay, size_t len, bool *ret_same)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *have = NULL;
	size_t olen = 0, got = 0;
	off_t size = 0;
	int r = open_initrd(dirfd, name, &fd, &size, &olen);

	if (r < 0)
		return r;
	/* the generic initramfs must follow */
	if (olen != len || (off_t)olen >= size) {
		*ret_same = false;
		return 0;
	}
	if (len == 0) {
		*ret_same = true;
		return 0;
	}
	have = malloc(len);
	if (!have)
		return -ENOMEM;
	r = read_head(fd, have, len, &got);
	if (r < 0)
		return r;
	*ret_same = got == len && memcmp(have, overlay, len) == 0;
	return 0;
}

static int copy_from(int in, off_t off, int out)
{
	char buf[64 << 10];

	for (;;) {
		ssize_t k = pread(in, buf, sizeof(buf), off), w;

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			return 0;
		for (ssize_t done = 0; done < k; done += w) {
			w = write(out, buf + done, (size_t)(k - done));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0)
				return negative_errno();
		}
		off += k;
	}
}

int initrd_apply(int dirfd, const char *name, const char *overlay, size_t len)
{
	_cleanup_close_ int in = -1, out = -1;
	char tmp[NAME_MAX_LEN + 32];
	size_t olen = 0;
	off_t size = 0;
	int r;

	if (strlen(name) >= NAME_MAX_LEN || strchr(name, '/'))
		return -EINVAL;
	r = open_initrd(dirfd, name, &in, &size, &olen);
	if (r < 0)
		return r;
	if ((off_t)olen >= size)
		return -EBADMSG; /* nothing but an overlay: no initramfs to put it in front of */
	snprintf(tmp, sizeof(tmp), ".%s.devopslab-new", name);
	out = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (out < 0)
		return negative_errno();
	r = 0;
	for (size_t done = 0; r >= 0 && done < len;) {
		ssize_t w = write(out, overlay + done, len - done);

		if (w < 0 && errno != EINTR)
			r = negative_errno();
		else if (w > 0)
			done += (size_t)w;
	}
	if (r >= 0)
		r = copy_from(in, (off_t)olen, out);
	if (r >= 0 && (fchown(out, 0, 0) < 0 || fchmod(out, 0644) < 0 || fsync(out) < 0))
		r = negative_errno();
	if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = negative_errno();
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return r;
	}
	return fsync(dirfd) < 0 ? negative_errno() : 0;
}
