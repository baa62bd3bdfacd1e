/* SPDX-License-Identifier: MIT */
/*
 * loop.h — attach a byte range of a file or block device to a loop device.
 *
 * Used to give LVM and mkfs a block device for one partition or one linear
 * LV of the target, whether the target is a disk image file or a real disk,
 * without partition scanning, device-mapper activation or udev. The loop is
 * configured with LO_FLAGS_AUTOCLEAR: the kernel detaches it when the last
 * opener closes it, so even a kill -9 leaves no loop device behind.
 *
 * Ownership: struct loop_dev holds an open fd on the loop device (that is
 * what keeps it attached); loop_dev_done() closes it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct loop_dev {
	int fd;
	char path[32]; /* "/dev/loop7" */
};

#define LOOP_DEV_INIT { .fd = -1 }

/* backing_fd: the target, opened by the caller (its only open). */
int loop_attach(int backing_fd, uint64_t offset, uint64_t size, uint32_t sector_size, bool readonly,
		struct loop_dev *ret);
void loop_dev_done(struct loop_dev *l);
