/* SPDX-License-Identifier: MIT */
/*
 * diag.h — diagnostics: every problem found in an input, with its file,
 * line, column and field path, collected (not printed) so that a verb can
 * show them all at once (diag.c). The manifest and the YAML reader fill
 * them; the verbs print them.
 */
#pragma once

#include <stddef.h>

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag {
	enum diag_severity severity;
	unsigned line, column; /* 1-based; 0 when not tied to a position */
	char *path;            /* field path: "nodes[1].disk.min_size" */
	char *message;         /* what is wrong, e.g. "must be a size like 20G" */
};

struct diags {
	char *file; /* as given by the user */
	struct diag *items;
	size_t n, n_errors;
};

/* Format: "FILE:LINE:COL: error: PATH: MESSAGE" (warning likewise).
 * Without a position: "FILE: error: ..."; without a path: "...: error: MESSAGE".
 * Returns the length snprintf would have written, or -EINVAL. */
int diags_format(const struct diags *d, size_t i, char *buf, size_t size);
void diags_done(struct diags *d);

/* At most this many diagnostics are stored (n_errors still counts all);
 * one more item says that the rest were dropped. */
#define DIAGS_MAX 1000

/* Append a diagnostic; path may be NULL or "". Returns 0 or -ENOMEM. */
int diags_add(struct diags *d, enum diag_severity severity, unsigned line, unsigned column, const char *path,
	      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Sort by position (line, column), keeping insertion order for ties;
 * diagnostics without a position go last. */
void diags_sort(struct diags *d);
