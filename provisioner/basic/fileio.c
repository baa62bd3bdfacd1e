/* SPDX-License-Identifier: MIT */
#include "fileio.h"

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
