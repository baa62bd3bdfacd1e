/* SPDX-License-Identifier: MIT */
/*
 * initrd.h — a node's own files in front of a generic initramfs.
 *
 * The initramfs is built once with the root file system
 * (image/rootfs-boot.sh). One thing in an initramfs that initramfs-tools
 * makes on the node comes from the node: Debian's udev hook copies
 * the .link files of /etc/systemd/network into it, so that a NIC has its final
 * name (nic0, config-network) when ifupdown2's networking.service, which
 * does not wait for udev, brings up vmbr0. Instead of rebuilding the
 * initramfs (minutes in an emulated CPU), the install puts those files in
 * an uncompressed newc cpio archive in front of it: the kernel unpacks
 * every archive of the initramfs in turn (Documentation/driver-api/
 * early-userspace/buffer-format.rst), as it does with the early microcode
 * archive initramfs-tools itself puts first, and Debian's lsinitramfs and
 * unmkinitramfs list it as such.
 *
 * The archive is ours when its first entry is INITRD_MARKER (a short text
 * file at the initramfs root saying so); it is made deterministically (no
 * times, owner 0), so the same files give the same bytes and a re-run can
 * compare instead of rewriting. Errors: 0 or -errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define INITRD_MARKER "devopslab-node-files"
#define INITRD_LINK_DIR "usr/lib/systemd/network" /* where Debian's udev hook puts .link files */
#define INITRD_FILES_MAX 16u
#define INITRD_OVERLAY_MAX (256u << 10) /* an archive of ours is never larger */

struct initrd_file {
	const char *name; /* a file name in INITRD_LINK_DIR: no '/' */
	const char *data;
	size_t len;
};

/* The archive for files (n >= 1), padded to 512 bytes; *ret malloc'd.
 * -EINVAL for a bad name, -E2BIG beyond INITRD_FILES_MAX or
 * INITRD_OVERLAY_MAX, -ENOMEM. */
int initrd_overlay(const struct initrd_file *files, size_t n, char **ret, size_t *ret_len);

/* The length of an archive of ours at the start of buf (with its padding),
 * 0 when buf does not start with one. -EBADMSG when it starts as ours but
 * does not end within len (or INITRD_OVERLAY_MAX). */
int initrd_overlay_len(const char *buf, size_t len, size_t *ret);

/*
 * The initramfs file `name` in dirfd (the target's /boot) against an
 * overlay (NULL/0: none wanted): same iff it starts with exactly that
 * overlay (or none of ours) and the generic initramfs follows.
 */
int initrd_check(int dirfd, const char *name, const char *overlay, size_t len, bool *ret_same);

/*
 * Make it so: a new file of the overlay and the initramfs without any
 * previous overlay of ours, written to a temporary name in dirfd, fsync'd,
 * 0644 root:root, renamed over `name`, dirfd fsync'd (the old file or the
 * new one after a power cut).
 */
int initrd_apply(int dirfd, const char *name, const char *overlay, size_t len);
