/* SPDX-License-Identifier: MIT */
#include "mkfs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "exec.h"
#include "util.h"

static int run(char *const argv[], char *errbuf, size_t errsz)
{
	struct exec_result res = { 0 };
	char cmd[256], brief[512];
	int r = exec_run(argv, NULL, &res);

	if (r < 0) {
		snprintf(errbuf, errsz, "cannot run %s: %s", argv[0], strerror(-r));
		return r;
	}
	if (res.status != 0) {
		exec_format_argv(argv, cmd, sizeof(cmd));
		snprintf(errbuf, errsz, "'%s' failed (exit %d): %s", cmd, res.status,
			 exec_result_brief(&res, brief, sizeof(brief)));
		r = -EIO;
	}
	exec_result_done(&res);
	return r;
}

int mkfs_vfat(const char *dev, const char *volume_id, uint32_t sector_size, char *errbuf, size_t errsz)
{
	/* Install.pm: "mkfs.vfat -s1 -F32" on 4Kn (dosfstools issue 111) */
	const char *argv[] = { "mkfs.vfat", "-F", "32", "-i", volume_id, sector_size == 4096 ? "-s1" : dev,
			       sector_size == 4096 ? dev : NULL, NULL };
	return run((char *const *)argv, errbuf, errsz);
}

int mkfs_ext4(const char *dev, const char *uuid, char *errbuf, size_t errsz)
{
	const char *argv[] = { "mkfs.ext4", "-F", "-q", "-U", uuid, dev, NULL };
	return run((char *const *)argv, errbuf, errsz);
}

int mkfs_swap(const char *dev, const char *uuid, char *errbuf, size_t errsz)
{
	const char *argv[] = { "mkswap", "-f", "-U", uuid, dev, NULL };
	return run((char *const *)argv, errbuf, errsz);
}

int mkfs_fsck(const char *fstype, const char *dev, char *errbuf, size_t errsz)
{
	const char *vfat[] = { "fsck.vfat", "-n", dev, NULL };
	const char *ext4[] = { "e2fsck", "-n", "-f", dev, NULL };

	if (streq(fstype, "vfat"))
		return run((char *const *)vfat, errbuf, errsz);
	if (streq(fstype, "ext4"))
		return run((char *const *)ext4, errbuf, errsz);
	return 0; /* swap: nothing to check beyond its signature */
}
