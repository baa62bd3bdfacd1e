/* SPDX-License-Identifier: MIT */
/*
 * extract.h — write archive members beneath a directory, and nowhere else.
 *
 * Used by the bundle reader (regular files only) and by the root file
 * system install (which needs directories, symlinks, hardlinks and device
 * nodes inside the new root): the policy is the `flags` argument.
 *
 * Whatever the flags, these always hold:
 *   - member paths are relative, have no ".." component, and are
 *     normalised ("./a//b" is "a/b"); anything else is refused;
 *   - no path is ever resolved through a symlink: parents are opened with
 *     openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or, where openat2 is
 *     missing, one component at a time with O_NOFOLLOW; files are created
 *     with O_CREAT | O_EXCL | O_NOFOLLOW, so a symlink planted by an earlier
 *     member (or already in the directory) is never written through;
 *   - a path may appear once: a duplicate member is refused;
 *   - the limits (entries, bytes per entry, bytes in total, expansion
 *     ratio of the compressed input) are enforced while data streams, so a
 *     bomb is stopped after at most one buffer past the limit.
 * libarchive's ARCHIVE_EXTRACT_SECURE_* flags are not used: the checks
 * here do not depend on them.
 *
 * On failure the caller removes the target directory (extract_rm_rf_at());
 * nothing is ever written outside it. Error detail is in extract_error().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	EXTRACT_ALLOW_DIRS = 1u << 0,
	EXTRACT_ALLOW_SYMLINKS = 1u << 1,          /* relative targets that stay inside */
	EXTRACT_ALLOW_ABSOLUTE_SYMLINKS = 1u << 2, /* "/usr/bin/x": inside once the root is / */
	EXTRACT_ALLOW_HARDLINKS = 1u << 3,         /* to a member extracted earlier */
	EXTRACT_ALLOW_DEVICES = 1u << 4,
	EXTRACT_ALLOW_FIFOS = 1u << 5,
	EXTRACT_KEEP_OWNER = 1u << 6,              /* numeric uid/gid from the archive */
	EXTRACT_KEEP_SPECIAL_MODES = 1u << 7,      /* setuid, setgid, sticky */
	EXTRACT_KEEP_XATTRS = 1u << 8,             /* pax xattrs of files and dirs: security.*, user.*, trusted.*, POSIX ACLs */
};

/* A bundle holds regular files only; a root file system holds everything. */
#define EXTRACT_POLICY_FILES_ONLY 0u
#define EXTRACT_POLICY_ROOTFS                                                                        \
	(EXTRACT_ALLOW_DIRS | EXTRACT_ALLOW_SYMLINKS | EXTRACT_ALLOW_ABSOLUTE_SYMLINKS |             \
	 EXTRACT_ALLOW_HARDLINKS | EXTRACT_ALLOW_DEVICES | EXTRACT_ALLOW_FIFOS | EXTRACT_KEEP_OWNER | \
	 EXTRACT_KEEP_SPECIAL_MODES | EXTRACT_KEEP_XATTRS)

#define EXTRACT_PATH_MAX 4095u
#define EXTRACT_DEPTH_MAX 64u
/* The ratio is only checked once this much has been written: small,
 * very compressible files (zero-filled config) are normal. */
#define EXTRACT_RATIO_GRACE_BYTES (64ull << 20)

struct extract_limits {
	uint64_t max_entries;
	uint64_t max_entry_bytes;
	uint64_t max_total_bytes;
	uint64_t max_ratio; /* uncompressed / compressed; 0 = unchecked */
};

extern const struct extract_limits extract_limits_default;

struct extract;

/* Extract into the existing directory `dir`. */
int extract_new(const char *dir, unsigned flags, const struct extract_limits *limits, struct extract **ret);
struct extract *extract_free(struct extract *x);
const char *extract_error(void);
void extract_error_clear(void);

/* Normalise a member path into out (EXTRACT_PATH_MAX + 1 bytes): strips
 * "./" and empty components. -EINVAL (with extract_error()) for absolute
 * paths, "..", empty paths, over-long paths or components, control chars. */
int extract_normalize_path(const char *path, char *out);

/* Create regular file `path` (normalised) for writing; `size` is what the
 * archive declares. Registers the path (duplicates refused), counts the
 * entry, creates missing parent directories (0755). *ret_fd is O_WRONLY. */
int extract_file_open(struct extract *x, const char *path, uint64_t size, int *ret_fd);
/* Count `n` more bytes written; `compressed_in` is how many bytes of the
 * archive have been read so far (for the ratio). -EFBIG past a limit. */
int extract_account(struct extract *x, uint64_t n, uint64_t compressed_in);

/* Call progress(compressed bytes read so far, userdata) every megabyte
 * or so of input, and once at the end. */
void extract_set_progress(struct extract *x, void (*progress)(uint64_t done, void *userdata), void *userdata);

/* Extract a whole archive (tar: ustar, pax, gnu; compressed with zstd, xz,
 * gzip or not at all) with the policy of x. */
int extract_archive_fd(struct extract *x, int fd);
int extract_archive_memory(struct extract *x, const void *data, size_t size);

/* Remove `name` below dirfd recursively, never following a symlink. */
int extract_rm_rf_at(int dirfd, const char *name);

static inline void extract_freep(struct extract **x)
{
	if (*x)
		extract_free(*x);
}
