/* SPDX-License-Identifier: MIT */
/*
 * progress.h — how the verbs that run plan steps (install, firstboot,
 * disk apply) log the step engine's progress (one line per step event
 * worth a line) and its multi-line failure messages.
 */
#pragma once

#include "plan/engine.h"
#include "plan/step.h"

/* Log p ("[11/16] Writing /etc/hosts: done (0.0 s)"); silent for BEGIN
 * and FAILED (the verb reports a failure itself) unless the step ran
 * beside others (p->concurrent: each failure is logged). */
void verbs_log_step(const struct step_progress *p);

/* Log msg as errors, one per line, each after indent. */
void verbs_log_lines(const char *indent, const char *msg);
