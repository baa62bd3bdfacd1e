/* SPDX-License-Identifier: MIT */
/* loop.c — LOOP_CTL_GET_FREE + LOOP_CONFIGURE (Linux 5.8), retried on the
 * race where another process takes the free device first (EBUSY). */
#define _GNU_SOURCE
#include <stdbool.h>

#include "loop.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "util.h"

int loop_attach(int backing_fd, uint64_t offset, uint64_t size, uint32_t sector_size, bool readonly,
		struct loop_dev *ret)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	struct loop_config cfg = { .fd = (uint32_t)backing_fd, .block_size = sector_size };

	if (ctl < 0)
		return negative_errno();
	cfg.info.lo_offset = offset;
	cfg.info.lo_sizelimit = size;
	cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (readonly ? LO_FLAGS_READ_ONLY : 0);
	for (int attempt = 0; attempt < 64; attempt++) {
		int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
		char path[32];
		int fd;

		if (nr < 0)
			return negative_errno();
		snprintf(path, sizeof(path), "/dev/loop%d", nr);
		fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT) {
				/* no udev/devtmpfs node yet: make it ourselves */
				if (mknod(path, S_IFBLK | 0660, makedev(7, (unsigned)nr)) < 0 && errno != EEXIST)
					return negative_errno();
				fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
			}
			if (fd < 0)
				return negative_errno();
		}
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) < 0) {
			int e = errno;
			close(fd);
			if (e == EBUSY)
				continue;
			return -e;
		}
		ret->fd = fd;
		snprintf(ret->path, sizeof(ret->path), "%s", path);
		return 0;
	}
	return -EBUSY;
}

void loop_dev_done(struct loop_dev *l)
{
	if (l && l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
}
