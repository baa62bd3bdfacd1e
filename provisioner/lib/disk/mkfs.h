/* SPDX-License-Identifier: MIT */
/*
 * mkfs.h — filesystems with the standard Debian tools (dosfstools,
 * e2fsprogs, util-linux), run through exec.h with their errors captured:
 * the same commands as the installer's extract_data(), plus our seeded
 * identifiers (mkfs.vfat -i, mkfs.ext4 -U, mkswap -U).
 *
 * dev is a block device (a loop over the partition or LV). Errors: -EIO
 * with the command's own message in errbuf.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

int mkfs_vfat(const char *dev, const char *volume_id, uint32_t sector_size, char *errbuf, size_t errsz);
int mkfs_ext4(const char *dev, const char *uuid, char *errbuf, size_t errsz);
int mkfs_swap(const char *dev, const char *uuid, char *errbuf, size_t errsz);
/* Read-only consistency check (fsck.vfat -n / e2fsck -n); 0 = clean. */
int mkfs_fsck(const char *fstype, const char *dev, char *errbuf, size_t errsz);
