/* SPDX-License-Identifier: MIT */
/*
 * engine.c — the step engine (step_run()) and its progress events.
 */
#include "engine.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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
	/* Concurrent steps (run_block()): held around what the workers share,
	 * the journal and the progress callback. NULL when one at a time. */
	pthread_mutex_t *lock;
};

static void lock(struct engine *e)
{
	if (e->lock)
		pthread_mutex_lock(e->lock);
}

static void unlock(struct engine *e)
{
	if (e->lock)
		pthread_mutex_unlock(e->lock);
}

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
		.concurrent = e->lock != NULL,
	};

	if (e->ctx->progress) {
		lock(e);
		e->ctx->progress(&p, e->ctx->userdata);
		unlock(e);
	}
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
	lock(e);
	r = journal_append(ctx->journal, &rec);
	unlock(e);
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
	const struct journal_record *rec;
	bool journaled, done = false;
	int r;

	lock(e);
	rec = ctx->journal ? journal_find(ctx->journal, s->id) : NULL;
	journaled = rec && streq(rec->hash, s->params_hash);
	unlock(e);

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

/* ---- concurrent steps ------------------------------------------------------- */

/* A run of consecutive steps of one `concurrent` kind, shared by its workers
 * under `lock`. Workers take the steps in plan order; after a failure no
 * step starts, the ones under way finish, and the block fails with the
 * failure first in plan order (as one-at-a-time would have). */
struct block {
	struct engine *parent;
	const struct step *const *steps;
	size_t n, next;
	pthread_mutex_t lock;
	bool stop;
	size_t failed; /* index into steps; n = none */
	int failed_r;
	char error[RUN_ERROR_MAX];
};

struct worker {
	struct block *b;
	unsigned index;
	int init_r;
	pthread_t thread;
	bool started;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct block *b = w->b;
	struct run_ctx *parent = b->parent->ctx;
	struct run_ctx ctx = *parent;
	struct engine e = { .ctx = &ctx, .total = b->parent->total, .lock = &b->lock };

	ctx.result = NULL;
	ctx.error[0] = '\0';
	ctx.failed_step = NULL;
	pthread_mutex_lock(&b->lock);
	w->init_r = parent->worker_init ? parent->worker_init(&ctx, w->index, parent->userdata) : 0;
	if (w->init_r < 0) {
		b->stop = true;
		if (b->failed == b->n) { /* charged to the first step not started */
			b->failed = b->next < b->n ? b->next : b->n - 1;
			b->failed_r = w->init_r;
			snprintf(b->error, sizeof(b->error), "cannot set up worker %u: %s", w->index, strerror(-w->init_r));
		}
	}
	pthread_mutex_unlock(&b->lock);
	if (w->init_r < 0)
		return NULL;

	for (;;) {
		const struct step *s;
		size_t i;
		int r;

		pthread_mutex_lock(&b->lock);
		if (b->stop || b->next == b->n) {
			pthread_mutex_unlock(&b->lock);
			break;
		}
		i = b->next++;
		pthread_mutex_unlock(&b->lock);

		s = b->steps[i];
		e.index = b->parent->index + i + 1;
		ctx.error[0] = '\0';
		run_ctx_set_result(&ctx, NULL);
		clock_gettime(CLOCK_MONOTONIC, &e.begin);
		r = run_one(&e, s);
		run_ctx_set_result(&ctx, NULL);
		if (r < 0) {
			report(&e, s, STEP_EVENT_FAILED, r);
			pthread_mutex_lock(&b->lock);
			b->stop = true;
			if (b->failed == b->n || i < b->failed) {
				b->failed = i;
				b->failed_r = r;
				snprintf(b->error, sizeof(b->error), "%s", ctx.error);
			}
			pthread_mutex_unlock(&b->lock);
		}
	}
	pthread_mutex_lock(&b->lock);
	if (parent->worker_done)
		parent->worker_done(&ctx, parent->userdata);
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static int run_block(struct engine *e, const struct step *const *steps, size_t n)
{
	struct run_ctx *ctx = e->ctx;
	struct block b = { .parent = e, .steps = steps, .n = n, .failed = n };
	size_t nw = ctx->jobs < n ? ctx->jobs : n;
	struct worker *w = calloc(nw, sizeof(*w));
	int r = 0;

	if (!w)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	pthread_mutex_init(&b.lock, NULL);
	for (size_t i = 0; i < nw; i++) {
		w[i] = (struct worker){ .b = &b, .index = (unsigned)i };
		r = -pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
		if (r < 0) {
			if (i == 0) /* no worker: nothing ran */
				break;
			r = 0;      /* fewer workers than asked for */
			nw = i;
			break;
		}
		w[i].started = true;
	}
	for (size_t i = 0; i < nw; i++)
		if (w[i].started)
			pthread_join(w[i].thread, NULL);
	pthread_mutex_destroy(&b.lock);
	free(w);
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot start a worker thread: %s", strerror(-r));
	e->index += b.next;
	if (b.failed < n) {
		ctx->failed_step = steps[b.failed];
		snprintf(ctx->error, sizeof(ctx->error), "%s", b.error);
		return b.failed_r;
	}
	return 0;
}

/* The run of steps from plan->steps[i] on that may run at once: the
 * following in-phase steps of the same concurrent kind. Returns how many
 * (1: run it alone). */
static size_t block_at(const struct run_ctx *ctx, const struct plan *plan, size_t i, enum step_phase phase,
		       const struct step **out, size_t max)
{
	const struct step_ops *ops = ops_for(ctx, plan->steps[i].kind);
	size_t n = 0;

	if (ctx->jobs < 2 || !ops || !ops->concurrent || !ops->check || !ops->apply)
		return 1;
	for (size_t j = i; j < plan->n_steps && n < max; j++) {
		if (!in_phase(&plan->steps[j], phase))
			continue;
		if (plan->steps[j].kind != plan->steps[i].kind)
			break;
		out[n++] = &plan->steps[j];
	}
	return n;
}

int step_run(struct run_ctx *ctx, const struct plan *plan, enum step_phase phase)
{
	struct engine e = { .ctx = ctx, .index = ctx->progress_offset };
	_cleanup_free_ const struct step **blk = NULL;

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
	if (ctx->jobs > 1 && plan->n_steps > 0) {
		blk = calloc(plan->n_steps, sizeof(*blk));
		if (!blk)
			return run_ctx_error(ctx, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < plan->n_steps; i++) {
		const struct step *s = &plan->steps[i];
		size_t n;
		int r;

		if (!in_phase(s, phase))
			continue;
		n = blk ? block_at(ctx, plan, i, phase, blk, plan->n_steps) : 1;
		if (n > 1) {
			ctx->error[0] = '\0';
			r = run_block(&e, blk, n);
			if (r < 0)
				return r;
			/* past the block: its last step and anything skipped in it */
			while (i + 1 < plan->n_steps && (!in_phase(&plan->steps[i + 1], phase) ||
							  &plan->steps[i + 1] <= blk[n - 1]))
				i++;
			continue;
		}
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
