/* SPDX-License-Identifier: MIT */
/*
 * efi.c — files on the ESP and efibootmgr's listing. See efi.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "efi.h"
#include "util.h"

#define PATH_MAX_ESP 128u
#define TMP_SUFFIX ".devopslab-new"

/* openat2 beneath dirfd: no symlink, no other file system, no "..". */
static int open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
	};
	long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));

	return fd < 0 ? negative_errno() : (int)fd;
}

static bool path_ok(const char *path)
{
	size_t n = path ? strlen(path) : 0;

	return n > 0 && n < PATH_MAX_ESP && path[0] != '/' && path[n - 1] != '/' && !strstr(path, "..");
}

int efi_esp_open(int rootfd, bool need_mount, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	struct stat root, esp;

	fd = openat(rootfd, EFI_ESP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (need_mount) {
		if (fstat(rootfd, &root) < 0 || fstat(fd, &esp) < 0)
			return negative_errno();
		if (root.st_dev == esp.st_dev)
			return -EXDEV;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int efi_file_same(int espfd, const char *path, const char *data, size_t len, bool *ret_same)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t off = 0;

	if (!path_ok(path))
		return -EINVAL;
	fd = open_beneath(espfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
	if (fd == -ENOENT || fd == -ELOOP || fd == -ENOTDIR) {
		*ret_same = false;
		return 0;
	}
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len) {
		*ret_same = false;
		return 0;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	while (off < len) {
		ssize_t k = read(fd, buf + off, len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		off += (size_t)k;
	}
	*ret_same = off == len && memcmp(buf, data, len) == 0;
	return 0;
}

/* The directory holding path, made when missing; *ret_base points into path. */
static int open_parent(int espfd, const char *path, int *ret_dfd, const char **ret_base)
{
	char dir[PATH_MAX_ESP];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash) {
		fd = fcntl(espfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return negative_errno();
		*ret_dfd = fd;
		*ret_base = path;
		return 0;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	/* each level, so that "EFI" and "EFI/proxmox" are both made */
	for (char *p = dir;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdirat(espfd, dir, 0755) < 0 && errno != EEXIST)
				return negative_errno();
			*p = c;
			if (c == '\0')
				break;
		}
	}
	fd = open_beneath(espfd, dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	*ret_dfd = fd;
	*ret_base = slash + 1;
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, data, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		data += k;
		len -= (size_t)k;
	}
	return 0;
}

int efi_file_write(int espfd, const char *path, const char *data, size_t len)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	const char *base;
	char tmp[PATH_MAX_ESP + sizeof(TMP_SUFFIX)];
	int r;

	if (!path_ok(path))
		return -EINVAL;
	r = open_parent(espfd, path, &dfd, &base);
	if (r < 0)
		return r;
	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, base);
	fd = open_beneath(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0644);
	if (fd < 0)
		return fd;
	r = write_all(fd, data, len);
	if (r >= 0 && fsync(fd) < 0)
		r = negative_errno();
	if (r >= 0 && renameat(dfd, tmp, dfd, base) < 0)
		r = negative_errno();
	if (r < 0) {
		(void)unlinkat(dfd, tmp, 0);
		return r;
	}
	return fsync(dfd) < 0 ? negative_errno() : 0;
}

int efi_boot_entries(const char *listing, const char *label, unsigned *ret_nums, size_t max, size_t *ret_n)
{
	size_t n = 0, llen = strlen(label);

	for (const char *p = listing ? listing : ""; *p;) {
		size_t k = strcspn(p, "\n");
		const char *name = p + 8, *end = p + k;
		char hex[5];

		/* "BootXXXX" (four hex digits), '*' when active, spaces, the
		 * label, then a tab and the device path or the end of the line */
		if (k > 9 && strncmp(p, "Boot", 4) == 0 && strspn(p + 4, "0123456789ABCDEFabcdef") >= 4) {
			if (*name == '*')
				name++;
			if (*name != ' ')
				name = end; /* "BootOrder:" and the like */
			while (name < end && *name == ' ')
				name++;
			if ((size_t)(end - name) >= llen && strncmp(name, label, llen) == 0 &&
			    (name + llen == end || name[llen] == '\t')) {
				if (n >= max)
					return -E2BIG;
				memcpy(hex, p + 4, 4);
				hex[4] = '\0';
				ret_nums[n++] = (unsigned)strtoul(hex, NULL, 16);
			}
		}
		p += k;
		if (*p == '\n')
			p++;
	}
	*ret_n = n;
	return 0;
}
