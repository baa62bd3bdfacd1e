/* SPDX-License-Identifier: MIT */
/*
 * exec.h — run a child process from an argument vector (never a shell),
 * capture its stdout and stderr up to a cap, and return its exit status.
 *
 * Ownership: exec_run() fills a caller-provided struct exec_result whose
 * buffers the caller releases with exec_result_done() (also after failure).
 * The child gets stdin from /dev/null (or opts->stdin_data), and every file
 * descriptor above 2 closed, so nothing of ours leaks into it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define EXEC_DEFAULT_MAX_OUTPUT (256u * 1024u) /* per stream */

struct exec_opts {
	char *const *env;        /* NULL: inherit our environment */
	size_t max_output;       /* cap per stream; 0 = EXEC_DEFAULT_MAX_OUTPUT */
	const char *stdin_data;  /* NULL: /dev/null */
	size_t stdin_len;
	/* Non-NULL: the child does chroot(root) + chdir("/") before execve, so
	 * argv[0] (and a PATH search) is resolved inside that root. The caller
	 * must be root; a failed chroot is reported like a failed exec. */
	const char *root;
};

struct exec_result {
	int status;      /* exit code, or 128 + signal number when killed */
	char *out, *err; /* NUL-terminated, possibly truncated to max_output */
	size_t out_len, err_len;
	bool truncated;  /* some output was dropped */
};

/* Run argv[0] (searched in PATH when it has no '/') with argv. Returns 0
 * when the child ran (whatever its exit status: see ret->status), -errno
 * when it could not be started (ENOENT: no such program). */
int exec_run(char *const argv[], const struct exec_opts *opts, struct exec_result *ret);
void exec_result_done(struct exec_result *r);

/* Write argv as a shell-like quoted line into buf, for messages only. */
void exec_format_argv(char *const argv[], char *buf, size_t size);

/* The last non-empty line of the child's stderr (or stdout), for one-line
 * error messages; never NULL. */
const char *exec_result_brief(const struct exec_result *r, char *buf, size_t size);
