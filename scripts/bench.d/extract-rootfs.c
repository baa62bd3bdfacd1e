/* SPDX-License-Identifier: MIT */
/*
 * extract-rootfs.c — bench driver for scripts/bench.d/install.sh: extract a
 * root file system archive with the install's policy (what rootfs-extract
 * does, minus the marker), so its time and peak RSS can be compared with
 * zstd | tar. Not part of the product: compiled by the bench script.
 *   extract-rootfs ARCHIVE DIR
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "bundle/extract.h"

int main(int argc, char **argv)
{
	struct extract *x = NULL;
	int fd, r;

	if (argc != 3) {
		fprintf(stderr, "usage: extract-rootfs ARCHIVE DIR\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	r = extract_new(argv[2], EXTRACT_POLICY_ROOTFS, &extract_limits_default, &x);
	if (r >= 0)
		r = extract_archive_fd(x, fd);
	if (r < 0)
		fprintf(stderr, "extract-rootfs: %s\n", extract_error());
	extract_free(x);
	close(fd);
	return r < 0;
}
