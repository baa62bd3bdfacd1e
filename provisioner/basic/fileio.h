/* SPDX-License-Identifier: MIT */
/*
 * fileio.h — small, bounded reads of whole files; whole files written
 * atomically; making directories.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Read fd to its end, but never more than max + 1 bytes, into a new
 * NUL-terminated buffer (*ret, freed by the caller). *ret_size is what was
 * read: max + 1 means "more than max", recognised without reading it all,
 * even from a pipe. Returns 0 or -errno. */
int read_fd_capped(int fd, size_t max, char **ret, size_t *ret_size);

/* mkdir -p: every missing directory of path, with mode (existing ones are
 * kept as they are). Returns 0 or -errno (-ENAMETOOLONG past PATH_MAX). */
int mkdir_p(const char *path, mode_t mode);

/* Replace path with data as one step: a new file beside it (a name of its
 * own, path.tmp-XXXXXX, then mode), written, fsync()ed, renamed over path.
 * A crash leaves the old file or the new one, never half of one; a failure
 * removes the temporary file. Returns 0 or -errno. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
