/* SPDX-License-Identifier: MIT */
/*
 * diag.c — the list of diagnostics a manifest load collects: every error
 * and warning with its position and field path, sorted for printing.
 */
#define _GNU_SOURCE 1 /* vasprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "diag.h"
#include "util.h"

int diags_add(struct diags *d, enum diag_severity severity, unsigned line, unsigned column, const char *path,
	      const char *fmt, ...)
{
	struct diag *items, *x;
	va_list ap;
	int r;

	if (severity == DIAG_ERROR)
		d->n_errors++;
	if (d->n > DIAGS_MAX)
		return 0;
	if (d->n == DIAGS_MAX) {
		/* One last item says that the rest were dropped. */
		severity = DIAG_ERROR;
		line = column = 0;
		path = NULL;
		fmt = "too many problems; the rest are not shown";
	}
	items = reallocarray(d->items, d->n + 1, sizeof(*items));
	if (!items)
		return -ENOMEM;
	d->items = items;
	x = &d->items[d->n];
	*x = (struct diag){ .severity = severity, .line = line, .column = column };
	x->path = strdup(path ? path : "");
	if (!x->path)
		return -ENOMEM;
	va_start(ap, fmt);
	r = vasprintf(&x->message, fmt, ap);
	va_end(ap);
	if (r < 0) {
		free(x->path);
		return -ENOMEM;
	}
	d->n++; /* only now: a failed item is not half there */
	return 0;
}

static bool diag_before(const struct diag *a, const struct diag *b)
{
	/* Position-less items go last. */
	if ((a->line == 0) != (b->line == 0))
		return a->line != 0;
	if (a->line != b->line)
		return a->line < b->line;
	return a->column < b->column;
}

void diags_sort(struct diags *d)
{
	/* Insertion sort: stable, and n is capped at DIAGS_MAX + 1. The
	 * overflow item stays last. */
	size_t n = d->n > DIAGS_MAX ? DIAGS_MAX : d->n;

	for (size_t i = 1; i < n; i++) {
		struct diag x = d->items[i];
		size_t j = i;

		while (j > 0 && diag_before(&x, &d->items[j - 1])) {
			d->items[j] = d->items[j - 1];
			j--;
		}
		d->items[j] = x;
	}
}

int diags_format(const struct diags *d, size_t i, char *buf, size_t size)
{
	const struct diag *x;
	const char *sev;
	char pos[32] = "";
	int r;

	if (i >= d->n)
		return -EINVAL;
	x = &d->items[i];
	sev = x->severity == DIAG_ERROR ? "error" : "warning";
	if (x->line > 0)
		snprintf(pos, sizeof(pos), ":%u:%u", x->line, x->column);
	if (isempty(x->path))
		r = snprintf(buf, size, "%s%s: %s: %s", d->file ? d->file : "-", pos, sev, x->message);
	else
		r = snprintf(buf, size, "%s%s: %s: %s: %s", d->file ? d->file : "-", pos, sev, x->path, x->message);
	return r < 0 ? -EINVAL : r;
}

void diags_done(struct diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].path);
		free(d->items[i].message);
	}
	free(d->items);
	free(d->file);
	*d = (struct diags){};
}
