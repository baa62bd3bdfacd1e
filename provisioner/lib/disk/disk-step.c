/* SPDX-License-Identifier: MIT */
/*
 * disk-step.c — the disk stages as step-engine ops. See disk-step.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk-select.h"
#include "disk-step.h"
#include "disk.h"
#include "plan/run.h"
#include "util.h"

static int sfail(struct disk_step_state *st, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sfail(struct disk_step_state *st, int r, const char *fmt, ...)
{
	va_list ap;

	if (!st->err[0]) {
		va_start(ap, fmt);
		vsnprintf(st->err, sizeof(st->err), fmt, ap);
		va_end(ap);
	}
	return r;
}

void disk_step_state_init(struct disk_step_state *st)
{
	*st = (struct disk_step_state){ .target = DISK_TARGET_INIT };
}

void disk_step_state_done(struct disk_step_state *st)
{
	if (!st)
		return;
	disk_target_done(&st->target);
	st->target = (struct disk_target)DISK_TARGET_INIT;
	st->opened = st->have_layout = false;
}

uint64_t disk_step_mem_total(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	return kb ? (uint64_t)kb * 1024 : 512ULL << 20;
}

/* Append to a bounded buffer; silently truncates. */
static void cat(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strnlen(buf, size);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* The node's rules over every disk: exactly one, or every candidate listed. */
static int select_by_rules(struct disk_step_state *st, const struct mf_node *n, char **ret_path)
{
	_cleanup_(disk_list_freep) struct disk_list *l = NULL;
	struct disk_selection s = { 0 };
	int r;

	r = disk_probe_all(st->probe, &l);
	if (r < 0)
		return sfail(st, r, "listing disks: %s", disk_errbuf());
	r = disk_select(l, &n->disk, &s);
	if (r == -EINVAL)
		return sfail(st, r, "node '%s' has no disk rule", n->name);
	st->selection[0] = '\0';
	for (size_t i = 0; i < s.n; i++)
		cat(st->selection, sizeof(st->selection), "%s  %s %s: %s", i ? "\n" : "",
		    s.verdicts[i].match ? "+" : "-", s.verdicts[i].disk->path, s.verdicts[i].reason);
	if (r < 0) {
		disk_selection_done(&s);
		return sfail(st, r, "node '%s': %s disk matches the manifest's rules; candidates:\n%s", n->name,
			     r == -ENODEV ? "no" : "more than one", st->selection[0] ? st->selection : "  (no disks at all)");
	}
	*ret_path = strdup(s.chosen->path);
	disk_selection_done(&s);
	return *ret_path ? 0 : -ENOMEM;
}

int disk_step_open(struct disk_step_state *st, const struct manifest *m, const struct mf_node *n)
{
	_cleanup_free_ char *path = NULL;
	struct layout_input in = { 0 };
	int r;

	if (st->opened)
		return 0;
	/* a target kept from a refused attempt is closed first */
	disk_target_done(&st->target);
	st->target = (struct disk_target)DISK_TARGET_INIT;
	st->have_layout = false;
	st->err[0] = '\0';
	if (st->device) {
		path = strdup(st->device);
		if (!path)
			return -ENOMEM;
		snprintf(st->selection, sizeof(st->selection), "  + %s: given with --device", st->device);
	} else if ((r = select_by_rules(st, n, &path)) < 0)
		return r;
	in.ram_bytes = st->ram_bytes ? st->ram_bytes : disk_step_mem_total();
	in.storage = m->proxmox.storage;
	r = disk_target_open(&st->target, path, &in, m->cluster.seed ? m->cluster.seed : m->cluster.name, n->name,
			     st->backup_dir);
	if (r < 0) {
		sfail(st, r, "%s", st->target.err[0] ? st->target.err : strerror(-r));
		disk_target_done(&st->target);
		st->target = (struct disk_target)DISK_TARGET_INIT;
		return r;
	}
	st->have_layout = true;
	/* refused by the policy: the target stays open (for `disk plan` to
	 * show the layout), but nothing will run on it */
	r = disk_policy_check(&st->target, n->disk.wipe, st->recovery, &st->verdict);
	if (r < 0)
		return sfail(st, r, "%s", st->target.err[0] ? st->target.err : strerror(-r));
	st->opened = true;
	return 0;
}

/* ---- the ops ------------------------------------------------------------- */

static struct disk_step_state *state(struct run_ctx *ctx, const struct step *s, int *r)
{
	struct disk_step_state *st = ctx->disk;

	*r = 0;
	if (!st)
		*r = run_ctx_error(ctx, -EINVAL, "%s: no disk state in this run (the verb did not set it up)", s->id);
	else if (!s->mf_node)
		*r = run_ctx_error(ctx, -EINVAL, "%s: the step names no node", s->id);
	else if (!st->opened) {
		*r = disk_step_open(st, ctx->manifest, s->mf_node);
		if (*r < 0)
			run_ctx_error(ctx, *r, "%s", st->err);
	}
	return *r < 0 ? NULL : st;
}

static int target_result(struct run_ctx *ctx, struct disk_target *t, int r)
{
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", t->err[0] ? t->err : strerror(-r));
	return r;
}

/* disk-select: choosing, opening and the policy are read-only, so check()
 * does them; once it succeeds the step is done for this run. */
static int select_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	int r;

	*ret_done = state(ctx, s, &r) != NULL;
	return r;
}

static int select_apply(struct run_ctx *ctx, const struct step *s)
{
	int r;

	state(ctx, s, &r);
	return r;
}

const struct step_ops disk_select_ops = { .check = select_check, .apply = select_apply };

bool disk_step_kind(enum step_kind k)
{
	return k == STEP_DISK_SELECT || k == STEP_DISK_PARTITION || k == STEP_DISK_LVM || k == STEP_DISK_FILESYSTEMS;
}

static int partition_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct disk_step_state *st;
	int r;

	if (!(st = state(ctx, s, &r)))
		return r;
	st->target.err[0] = '\0';
	return target_result(ctx, &st->target, disk_partition_check(&st->target, ret_done));
}

static int partition_apply(struct run_ctx *ctx, const struct step *s)
{
	struct disk_step_state *st;
	int r;

	if (!(st = state(ctx, s, &r)))
		return r;
	if (!st->confirmed && st->verdict != DISK_OK_CONVERGE)
		return run_ctx_error(ctx, -EPERM, "refusing to write to '%s' without confirmation (--yes)",
				     st->target.path);
	st->target.err[0] = st->target.done[0] = '\0';
	return target_result(ctx, &st->target, disk_partition_apply(&st->target, st->verdict == DISK_OK_WIPE));
}

const struct step_ops disk_partition_ops = { .check = partition_check, .apply = partition_apply };

/* A stage cannot be done while an earlier one is not (and its own check
 * may not even be able to look: no GPT, no PV yet), so the check of lvm
 * asks partition first, and that of filesystems asks lvm; in a dry run on
 * an empty disk every stage is then simply "not done". */
static int earlier_done(struct disk_target *t, enum step_kind kind, bool *ret_done)
{
	int r;

	*ret_done = true;
	r = disk_partition_check(t, ret_done);
	if (r >= 0 && *ret_done && kind == STEP_DISK_FILESYSTEMS)
		r = disk_lvm_check(t, ret_done);
	return r;
}

#define BIND(name, stage)                                                                           \
	static int name##_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)            \
	{                                                                                             \
		struct disk_step_state *st;                                                           \
		int r;                                                                                \
		if (!(st = state(ctx, s, &r)))                                                        \
			return r;                                                                     \
		st->target.err[0] = '\0';                                                             \
		r = earlier_done(&st->target, s->kind, ret_done);                                     \
		if (r < 0 || !*ret_done)                                                              \
			return target_result(ctx, &st->target, r);                                    \
		return target_result(ctx, &st->target, disk_##stage##_check(&st->target, ret_done)); \
	}                                                                                             \
	static int name##_apply(struct run_ctx *ctx, const struct step *s)                            \
	{                                                                                             \
		struct disk_step_state *st;                                                           \
		int r;                                                                                \
		if (!(st = state(ctx, s, &r)))                                                        \
			return r;                                                                     \
		if (!st->confirmed && st->verdict != DISK_OK_CONVERGE)                                \
			return run_ctx_error(ctx, -EPERM, "refusing to write to '%s' without confirmation", \
					     st->target.path);                                        \
		st->target.err[0] = st->target.done[0] = '\0';                                        \
		return target_result(ctx, &st->target, disk_##stage##_apply(&st->target));           \
	}                                                                                             \
	const struct step_ops disk_##name##_ops = { .check = name##_check, .apply = name##_apply };

BIND(lvm, lvm)
BIND(filesystems, fs)
