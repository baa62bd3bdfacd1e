/* SPDX-License-Identifier: MIT */
/*
 * isoimage.h — a flat ISO 9660 image with Rock Ridge and Joliet, made
 * with libisofs (the one module that includes <libisofs.h>): a VM's
 * NoCloud seed (volume id "cidata") and a node's assets ISO (docs/guests.md).
 *
 * Files sit in the root directory under their own names (Rock Ridge and
 * Joliet keep "user-data" as it is; the ISO 9660 names beneath are
 * libisofs's mangled 8.3-ish ones). Their content comes from memory
 * (copied) or from a file on disk, read only while the image is written.
 *
 * Deterministic: every timestamp in the image (the volume descriptors, the
 * directory records, Rock Ridge's) is the mtime given, owners are 0:0,
 * modes 0444 and 0555 for the root, so the same names, contents and mtime
 * give the same bytes (and the same SHA-256, which is what lets an upload
 * be skipped when the storage has it already).
 *
 * Errors: 0 or -errno; the detail of the first one (libisofs's message
 * where it has one) is in isoimage_error(). Nothing is logged.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

#define ISOIMAGE_VOLID_MAX 16u  /* Joliet's volume id: 16 UCS-2 characters */
#define ISOIMAGE_NAME_MAX 64u   /* Joliet's longest name */
#define ISOIMAGE_FILES_MAX 1024u

struct isoimage;

/* volume_id: isoimage_volid_ok(); mtime: every timestamp, >= 0.
 * Returns 0, -EINVAL, -ENOMEM or -EIO (libisofs would not start). */
int isoimage_new(const char *volume_id, time_t mtime, struct isoimage **ret);
struct isoimage *isoimage_free(struct isoimage *img);
DEFINE_FREE_FUNC(struct isoimage, isoimage_free)

/* A file named name (isoimage_name_ok(), not yet in the image) holding a
 * copy of size bytes at data. -EINVAL (bad or taken name), -E2BIG (more
 * than ISOIMAGE_FILES_MAX), -ENOMEM. */
int isoimage_add_data(struct isoimage *img, const char *name, const void *data, size_t size);
/* A file named name with the content of the regular file at path, read
 * when the image is written (it must not change until then). -EINVAL,
 * -E2BIG, -ENOENT and other errors of stat(2), -ENOMEM. */
int isoimage_add_file(struct isoimage *img, const char *name, const char *path);

/* Streams the whole image to fd (written from its current offset, in 2 KiB
 * blocks, never held in memory whole). Returns 0, -EIO (libisofs failed,
 * e.g. a file changed size or could not be read), or write(2)'s -errno.
 * Once per image. */
int isoimage_write(struct isoimage *img, int fd);
/* The image at path, through a temporary file in the same directory,
 * fsync'd and renamed over path (mode 0644). */
int isoimage_write_path(struct isoimage *img, const char *path);

/* The first error's detail, "" when there was none. */
const char *isoimage_error(const struct isoimage *img);

/* A file name: 1..ISOIMAGE_NAME_MAX of [A-Za-z0-9._+-], not starting
 * with '.' or '-'. */
bool isoimage_name_ok(const char *name);
/* A volume id: 1..ISOIMAGE_VOLID_MAX of [A-Za-z0-9_]. */
bool isoimage_volid_ok(const char *volid);
