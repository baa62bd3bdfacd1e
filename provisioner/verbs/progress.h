/* SPDX-License-Identifier: MIT */
/*
 * progress.h — how the verbs that run plan steps (install, firstboot) log
 * the step engine's progress: one line per step event worth a line.
 */
#pragma once

#include "step.h"

/* Log p ("[3/9] Writing /etc/hosts: done (0.0 s)"); silent for BEGIN,
 * WOULD_APPLY and FAILED (the verb reports a failure itself). */
void verbs_log_step(const struct step_progress *p);
