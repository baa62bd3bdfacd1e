/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE 1 /* mkostemp */
#include "fileio.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util.h"

int read_fd_capped(int fd, size_t max, char **ret, size_t *ret_size)
{
	_cleanup_free_ char *buf = NULL;
	size_t n = 0;

	buf = malloc(max + 2);
	if (!buf)
		return -ENOMEM;
	while (n <= max) {
		ssize_t k = read(fd, buf + n, max + 1 - n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	buf[n] = 0;
	*ret_size = n;
	*ret = TAKE_PTR(buf);
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return negative_errno();
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd, r = 0;

	/* a name of its own (mkostemp: O_EXCL, mode 0600 until fchmod), so
	 * that two writers of one file never take each other's */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (fchmod(fd, mode) < 0)
		r = negative_errno();
	while (len > 0 && r == 0) {
		ssize_t k = write(fd, p, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			r = k < 0 ? negative_errno() : -EIO;
		else {
			p += k;
			len -= (size_t)k;
		}
	}
	if (r == 0 && fsync(fd) < 0)
		r = negative_errno();
	if (close(fd) < 0 && r == 0)
		r = -EIO;
	if (r == 0 && rename(tmp, path) < 0)
		r = negative_errno();
	if (r < 0)
		(void)unlink(tmp);
	return r;
}
