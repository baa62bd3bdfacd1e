/* SPDX-License-Identifier: MIT */
/*
 * progress.h — how the verbs that run plan steps (install, firstboot,
 * disk apply) log the step engine's progress (one line per step event
 * worth a line) and its multi-line failure messages.
 */
#pragma once

#include <stdint.h>

#include "live/live.h"
#include "plan/engine.h"
#include "plan/step.h"

/* Log p ("[11/16] Writing /etc/hosts: done (0.0 s)"); silent for BEGIN
 * and FAILED (the verb reports a failure itself) unless the step ran
 * beside others (p->concurrent: each failure is logged). */
void verbs_log_step(const struct step_progress *p);

/* Log msg as errors, one per line, each after indent. */
void verbs_log_lines(const char *indent, const char *msg);

/* While a run goes on, the console tells what it is doing from the live
 * model (live.h): on a terminal, a status line with a progress bar below
 * the log lines, redrawn every second; otherwise, while a step has run for
 * every_ms or longer, one summary line every every_ms ("[12/45] Creating
 * VM x: running for 42 s; 11 of 45 steps done"). ticker_stop() ends it and
 * removes the status line. */
#define TICKER_EVERY_MS 10000
struct ticker;
int ticker_start(struct live *l, uint64_t every_ms, struct ticker **ret);
void ticker_stop(struct ticker *t);
