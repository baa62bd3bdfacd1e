/* SPDX-License-Identifier: MIT */
/*
 * step-ops.h — the build's registry: which module implements which step
 * kind (step-ops.c). The verbs hand it to the engine (ctx->ops =
 * step_ops_table) before step_run(); the engine (plan/engine.c) never names
 * it, so the stages depend on plan/ and not the other way round. One entry
 * per kind; NULL = not implemented in this build.
 */
#pragma once

#include "plan/step.h"

extern const struct step_ops *const step_ops_table[_STEP_KIND_MAX];
