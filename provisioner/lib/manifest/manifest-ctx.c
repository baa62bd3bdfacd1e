/* SPDX-License-Identifier: MIT */
/*
 * manifest-ctx.c — the decoding context of a manifest load: the field path
 * being decoded ("nodes[1].disk.min_size"), where every value was found (so
 * checks across fields can point at line:column by path), which paths
 * failed to decode (so later checks stay quiet about them), and adding
 * diagnostics.
 */
#define _GNU_SOURCE 1 /* vasprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest-internal.h"
#include "util.h"
#include "yaml-util.h"

size_t mf_path_push_key(struct mf_ctx *c, const char *key)
{
	size_t old = c->plen;
	int r = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s", c->plen ? "." : "", key);

	if (r > 0)
		c->plen = strnlen(c->path, sizeof(c->path) - 1);
	return old;
}

size_t mf_path_push_index(struct mf_ctx *c, size_t i)
{
	size_t old = c->plen;
	int r = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", i);

	if (r > 0)
		c->plen = strnlen(c->path, sizeof(c->path) - 1);
	return old;
}

void mf_path_pop(struct mf_ctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

void mf_record_pos(struct mf_ctx *c, const struct ynode *n)
{
	char *p;

	if (c->oom)
		return;
	if (c->n_pos == c->cap_pos) {
		size_t ncap = c->cap_pos ? c->cap_pos * 2 : 64;
		struct mf_posent *a = reallocarray(c->pos, ncap, sizeof(*a));

		if (!a) {
			c->oom = -ENOMEM;
			return;
		}
		c->pos = a;
		c->cap_pos = ncap;
	}
	p = strdup(c->path);
	if (!p) {
		c->oom = -ENOMEM;
		return;
	}
	c->pos[c->n_pos++] = (struct mf_posent){ .path = p, .line = n->line, .column = n->column };
}

void mf_mark_failed(struct mf_ctx *c, const char *path)
{
	char **a;

	if (c->oom)
		return;
	a = reallocarray(c->failed, c->n_failed + 1, sizeof(*a));
	if (!a) {
		c->oom = -ENOMEM;
		return;
	}
	c->failed = a;
	c->failed[c->n_failed] = strdup(path);
	if (!c->failed[c->n_failed])
		c->oom = -ENOMEM;
	else
		c->n_failed++;
}

/* a is b, or a is below b ("nodes[1].ip" below "nodes[1]"). */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '.' || a[n] == '[' || n == 0);
}

bool mf_failed(const struct mf_ctx *c, const char *path)
{
	for (size_t i = 0; i < c->n_failed; i++)
		if (path_within(path, c->failed[i]) || path_within(c->failed[i], path))
			return true;
	return false;
}

void mf_vreport(struct mf_ctx *c, enum diag_severity sev, unsigned line, unsigned column, const char *path,
		    const char *fmt, va_list ap)
{
	_cleanup_free_ char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0) {
		msg = NULL;
		c->oom = -ENOMEM;
		return;
	}
	if (diags_add(c->diags, sev, line, column, path, "%s", msg) < 0)
		c->oom = -ENOMEM;
}

static const struct mf_posent *find_pos(const struct mf_ctx *c, const char *path)
{
	char buf[MF_PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		char *cut;

		for (size_t i = 0; i < c->n_pos; i++)
			if (streq(c->pos[i].path, buf))
				return &c->pos[i];
		cut = strrchr(buf, '.');
		if (!cut || (strrchr(buf, '[') && strrchr(buf, '[') > cut))
			cut = strrchr(buf, '[');
		if (!cut)
			return NULL;
		*cut = '\0';
	}
}

/* A diagnostic at the position of path. */
static void report_at_pos(struct mf_ctx *c, enum diag_severity sev, const char *path, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static void report_at_pos(struct mf_ctx *c, enum diag_severity sev, const char *path, const char *fmt, va_list ap)
{
	const struct mf_posent *p = NULL;

	/* Past the cap nothing is stored: skip the position search. */
	if (c->diags->n <= DIAGS_MAX)
		p = find_pos(c, path);
	mf_vreport(c, sev, p ? p->line : 0, p ? p->column : 0, path, fmt, ap);
}

void mf_report_at(struct mf_ctx *c, enum diag_severity sev, const char *path, const char *fmt, ...)
{
	va_list ap;

	if (mf_failed(c, path))
		return;
	va_start(ap, fmt);
	report_at_pos(c, sev, path, fmt, ap);
	va_end(ap);
}

void mf_report_whole(struct mf_ctx *c, enum diag_severity sev, const char *path, const char *fmt, ...)
{
	va_list ap;

	for (size_t i = 0; i < c->n_failed; i++)
		if (path_within(path, c->failed[i]))
			return;
	va_start(ap, fmt);
	report_at_pos(c, sev, path, fmt, ap);
	va_end(ap);
}

bool mf_given(const struct mf_ctx *c, const char *path)
{
	for (size_t i = 0; i < c->n_pos; i++)
		if (streq(c->pos[i].path, path))
			return true;
	return false;
}

void mf_ctx_done(struct mf_ctx *c)
{
	for (size_t i = 0; i < c->n_pos; i++)
		free(c->pos[i].path);
	free(c->pos);
	for (size_t i = 0; i < c->n_failed; i++)
		free(c->failed[i]);
	free(c->failed);
}
