/* SPDX-License-Identifier: MIT */
/*
 * engine.h — the step engine: the one runner for `install` and `firstboot`.
 *
 * step_run() walks the plan in order:
 *   journal has the id with the same params hash -> check(); done: skip,
 *                                                   not done any more: apply
 *   otherwise                                    -> check(); done: record, skip
 *   apply -> check() again (must now say done, or the step failed: an apply
 *   that does not converge is an error) -> append to the journal.
 * It stops at the first failure (ctx->failed_step, ctx->error say which and
 * why); a re-run resumes, because done steps are skipped.
 *
 * Concurrency: with ctx->jobs > 1, a run of consecutive steps whose kind's
 * ops say `concurrent` (step.h) runs on up to ctx->jobs worker threads, each
 * with its own copy of ctx (run.h: worker_init). They take the steps in plan
 * order; once one fails no other starts, the ones under way finish, and
 * step_run() returns the failure first in plan order. The journal and the
 * progress callback are called one worker at a time.
 *
 *
 * What a kind does comes from ctx->ops (the verbs pass lib/step-ops.h's
 * table; tests pass fakes).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "step.h"

struct plan;
struct run_ctx;

/* Progress, reported through ctx->progress; the verb prints it. */
enum step_event {
	STEP_EVENT_BEGIN,           /* about to look at the step */
	STEP_EVENT_SKIP_JOURNAL,    /* journal says done, check() confirms */
	STEP_EVENT_FOUND_DONE,      /* not in the journal, check() says already done: recorded */
	STEP_EVENT_REAPPLY,         /* journal says done but check() says no longer done */
	STEP_EVENT_PARAMS_CHANGED,  /* journal has the id with another params hash */
	STEP_EVENT_APPLY,           /* apply() starts */
	STEP_EVENT_APPLIED,         /* applied, converged, recorded */
	STEP_EVENT_WOULD_APPLY,     /* dry run: check() says not done */
	STEP_EVENT_FAILED,          /* stopped here; ctx->error says why */
	_STEP_EVENT_MAX,
};

const char *step_event_to_string(enum step_event e);


struct step_progress {
	const struct step *step;
	size_t index, total;  /* 1-based position in the phase: this run's steps, after
			       * ctx->progress_offset, of ctx->progress_total (run.h) */
	enum step_event event;
	uint64_t elapsed_usec; /* for APPLIED, FOUND_DONE, SKIP_JOURNAL, FAILED: since BEGIN */
	int error;             /* for FAILED: the -errno */
	const char *message;   /* for FAILED: ctx->error */
	bool concurrent;       /* the step runs beside others (ctx->jobs): the events of
				* different steps interleave, and each failed one reports
				* FAILED, not only the one step_run() returns */
};

/*
 * The progress line, piece by piece, for verbs to print as events arrive:
 *   BEGIN        "[3/17] Creating VM devops-k3s-worker-01 ... "
 *   PARAMS_CHANGED "(parameters changed) ", REAPPLY "(no longer done) ", APPLY ""
 *   APPLIED      "done (2.1s)\n"        FOUND_DONE "already done\n"
 *   SKIP_JOURNAL "done earlier\n"      WOULD_APPLY "would apply\n"
 *   FAILED       "FAILED (0.3s)\n"  (the verb then prints ctx->error)
 * Returns the length written (truncated to size), or -EINVAL.
 */
int step_progress_format(const struct step_progress *p, char *buf, size_t size);

/*
 * Run the steps of `phase` (or STEP_PHASE_ANY) of plan, in order. Returns 0
 * when every step is done, or the first failure's -errno with
 * ctx->failed_step and ctx->error set:
 *   -EOPNOTSUPP  the kind has no ops in this build
 *   -EPROTO      apply() returned 0 but check() still says not done
 *   anything a check()/apply()/journal append returned.
 * The plan must have been built for ctx->node (plan_build(m, node, ...)) so
 * that it holds exactly the steps this machine runs.
 */
int step_run(struct run_ctx *ctx, const struct plan *plan, enum step_phase phase);
