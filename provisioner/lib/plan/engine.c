/* SPDX-License-Identifier: MIT */
/*
 * engine.c — the step engine (step_run()) and its progress events.
 */
#include "engine.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "journal.h"
#include "plan.h"
#include "run.h"

static const char *const event_names[_STEP_EVENT_MAX] = {
	[STEP_EVENT_BEGIN] = "begin",
	[STEP_EVENT_SKIP_JOURNAL] = "done (journal)",
	[STEP_EVENT_FOUND_DONE] = "already done",
	[STEP_EVENT_REAPPLY] = "no longer done",
	[STEP_EVENT_PARAMS_CHANGED] = "parameters changed",
	[STEP_EVENT_APPLY] = "applying",
	[STEP_EVENT_APPLIED] = "done",
	[STEP_EVENT_WOULD_APPLY] = "would apply",
	[STEP_EVENT_FAILED] = "failed",
};

const char *step_event_to_string(enum step_event e)
{
	return (unsigned)e < _STEP_EVENT_MAX ? event_names[e] : NULL;
}

int step_progress_format(const struct step_progress *p, char *buf, size_t size)
{
	double secs = (double)p->elapsed_usec / 1e6;
	int n;

	switch (p->event) {
	case STEP_EVENT_BEGIN:
		n = snprintf(buf, size, "[%zu/%zu] %s ... ", p->index, p->total, p->step->title);
		break;
	case STEP_EVENT_PARAMS_CHANGED:
		n = snprintf(buf, size, "(parameters changed) ");
		break;
	case STEP_EVENT_REAPPLY:
		n = snprintf(buf, size, "(no longer done) ");
		break;
	case STEP_EVENT_APPLY:
		n = snprintf(buf, size, "%s", "");
		break;
	case STEP_EVENT_APPLIED:
		n = snprintf(buf, size, "done (%.1fs)\n", secs);
		break;
	case STEP_EVENT_FOUND_DONE:
		n = snprintf(buf, size, "already done\n");
		break;
	case STEP_EVENT_SKIP_JOURNAL:
		n = snprintf(buf, size, "done earlier\n");
		break;
	case STEP_EVENT_WOULD_APPLY:
		n = snprintf(buf, size, "would apply\n");
		break;
	case STEP_EVENT_FAILED:
		n = snprintf(buf, size, "FAILED (%.1fs)\n", secs);
		break;
	default:
		return -EINVAL;
	}
	return n < 0 ? -EINVAL : n;
}

/* ---- the engine --------------------------------------------------------- */

struct engine {
	struct run_ctx *ctx;
	size_t index, total;
	struct timespec begin;
};

static uint64_t usec_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - t0->tv_sec) * 1000000u + (uint64_t)((t.tv_nsec - t0->tv_nsec) / 1000);
}

static void report(struct engine *e, const struct step *s, enum step_event ev, int error)
{
	struct step_progress p = {
		.step = s,
		.index = e->index,
		.total = e->total,
		.event = ev,
		.elapsed_usec = usec_since(&e->begin),
		.error = error,
		.message = ev == STEP_EVENT_FAILED ? e->ctx->error : NULL,
	};

	if (e->ctx->progress)
		e->ctx->progress(&p, e->ctx->userdata);
}

static const struct step_ops *ops_for(const struct run_ctx *ctx, enum step_kind k)
{
	return (unsigned)k < _STEP_KIND_MAX ? ctx->ops[k] : NULL;
}

static int do_check(struct run_ctx *ctx, const struct step_ops *ops, const struct step *s, bool *ret_done)
{
	bool done = false;
	int r = ops->check(ctx, s, &done);

	if (r < 0)
		return run_ctx_error(ctx, r, "checking failed: %s", strerror(-r));
	*ret_done = done;
	return 0;
}

static int record(struct engine *e, const struct step *s, enum journal_status status)
{
	struct run_ctx *ctx = e->ctx;
	struct journal_record rec = {
		.id = s->id,
		.phase = (char *)step_phase_to_string(s->phase),
		.node = s->node,
		.status = status,
		.elapsed_ms = usec_since(&e->begin) / 1000,
		.result = ctx->result,
	};
	int r;

	if (!ctx->journal)
		return 0;
	memcpy(rec.hash, s->params_hash, sizeof(rec.hash));
	r = journal_append(ctx->journal, &rec);
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot record the step in the journal: %s", journal_error());
	return 0;
}

/* Apply, then insist that check() now agrees: a step that "succeeds" but
 * leaves the system unchanged would otherwise be skipped forever after. */
static int apply_and_confirm(struct engine *e, const struct step_ops *ops, const struct step *s)
{
	struct run_ctx *ctx = e->ctx;
	bool done = false;
	int r;

	report(e, s, STEP_EVENT_APPLY, 0);
	r = ops->apply(ctx, s);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", strerror(-r));
	r = do_check(ctx, ops, s, &done);
	if (r < 0)
		return r;
	if (!done)
		return run_ctx_error(ctx, -EPROTO, "applied, but the check still finds it not done (did not converge)");
	r = record(e, s, JOURNAL_STATUS_APPLIED);
	if (r < 0)
		return r;
	report(e, s, STEP_EVENT_APPLIED, 0);
	return 0;
}

static int run_one(struct engine *e, const struct step *s)
{
	struct run_ctx *ctx = e->ctx;
	const struct step_ops *ops = ops_for(ctx, s->kind);
	const struct journal_record *rec = ctx->journal ? journal_find(ctx->journal, s->id) : NULL;
	bool journaled = rec && streq(rec->hash, s->params_hash);
	bool done = false;
	int r;

	report(e, s, STEP_EVENT_BEGIN, 0);
	if (!ops || !ops->check || !ops->apply)
		return run_ctx_error(ctx, -EOPNOTSUPP, "step %s is not implemented in this build",
				     step_kind_to_string(s->kind));
	if (rec && !journaled)
		report(e, s, STEP_EVENT_PARAMS_CHANGED, 0);
	r = do_check(ctx, ops, s, &done);
	if (r < 0)
		return r;
	if (done && journaled) {
		report(e, s, STEP_EVENT_SKIP_JOURNAL, 0);
		return 0;
	}
	if (done) {
		if (!ctx->dry_run && (r = record(e, s, JOURNAL_STATUS_FOUND)) < 0)
			return r;
		report(e, s, STEP_EVENT_FOUND_DONE, 0);
		return 0;
	}
	if (journaled)
		report(e, s, STEP_EVENT_REAPPLY, 0);
	if (ctx->dry_run) {
		report(e, s, STEP_EVENT_WOULD_APPLY, 0);
		return 0;
	}
	return apply_and_confirm(e, ops, s);
}

static bool in_phase(const struct step *s, enum step_phase phase)
{
	return phase == STEP_PHASE_ANY || s->phase == phase;
}

int step_run(struct run_ctx *ctx, const struct plan *plan, enum step_phase phase)
{
	struct engine e = { .ctx = ctx, .index = ctx->progress_offset };

	assert(ctx->ops); /* the verb binds the kinds (step-ops.h) */
	ctx->failed_step = NULL;
	for (size_t i = 0; i < plan->n_steps; i++)
		if (in_phase(&plan->steps[i], phase))
			e.total++;
	/* Numbered within the whole phase when the verb says how many steps it
	 * has, never past the end when it says too few. */
	e.total += ctx->progress_offset;
	if (ctx->progress_total > e.total)
		e.total = ctx->progress_total;
	for (size_t i = 0; i < plan->n_steps; i++) {
		const struct step *s = &plan->steps[i];
		int r;

		if (!in_phase(s, phase))
			continue;
		e.index++;
		ctx->error[0] = '\0';
		run_ctx_set_result(ctx, NULL);
		clock_gettime(CLOCK_MONOTONIC, &e.begin);
		r = run_one(&e, s);
		run_ctx_set_result(ctx, NULL);
		if (r < 0) {
			ctx->failed_step = s;
			report(&e, s, STEP_EVENT_FAILED, r);
			return r;
		}
	}
	return 0;
}
