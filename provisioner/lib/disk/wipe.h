/* SPDX-License-Identifier: MIT */
/*
 * wipe.h — erase every signature on the target, and save what is there
 * before doing so.
 *
 * wipe_all() erases, with libblkid's blkid_do_wipe() as wipefs -a does,
 * every filesystem/LVM/RAID/LUKS signature inside each partition found by
 * the probe (struct disk), then every signature and partition table of the
 * whole disk — PMBR, primary and backup GPT headers, MBR — and zeroes the
 * first MiB of each old partition (LVM text metadata, md 1.2 and LUKS
 * headers). Afterwards the disk is probed again: anything left is an error.
 *
 * The fd is the caller's single locked O_RDWR open of the target.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "disk.h"

/* Save the first and the last MiB of the disk (all partition tables live
 * there) to `path`: written to a temporary name, fsync'd, renamed. */
int wipe_save_backup(int fd, uint64_t size, const char *path);

/* report: what was erased, "ext4 at 0x100438, gpt at 0x200, ..." */
int wipe_all(int fd, const struct disk *d, char *report, size_t reportsz);

const char *wipe_errbuf(void);
