/* SPDX-License-Identifier: MIT */
/*
 * gate.c — check()/apply() of the install gate steps (gate.h).
 */
#include "gate.h"

#include <errno.h>

#include "plan/run.h"
#include "util.h"

static const struct install_gate *gate_of(const struct run_ctx *ctx, const struct step *s)
{
	const struct install_gate *g = ctx->gate;

	return g && g->node && s->node && streq(g->node, s->node) ? g : NULL;
}

static int bundle_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	const struct install_gate *g = gate_of(ctx, s);
	const char *cluster = step_param_string(s, "cluster");
	uint64_t version = 0;

	*ret_done = g && g->bundle_verified && ctx->manifest && cluster &&
		    streq_ptr(ctx->manifest->cluster.name, cluster) &&
		    step_param_u64(s, "manifest_version", &version) == 0 && version == ctx->manifest->version;
	return 0;
}

static int bundle_apply(struct run_ctx *ctx, const struct step *s)
{
	return run_ctx_error(ctx, -EPERM, "step '%s': this run did not verify the bundle it was built from", s->id);
}

static int identify_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	*ret_done = gate_of(ctx, s) != NULL;
	return 0;
}

static int identify_apply(struct run_ctx *ctx, const struct step *s)
{
	return run_ctx_error(ctx, -EPERM, "step '%s': this machine was not identified as node '%s'", s->id,
			     s->node ? s->node : "?");
}

static int preflight_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	const struct install_gate *g = gate_of(ctx, s);

	*ret_done = g && g->preflight_passed;
	return 0;
}

static int preflight_apply(struct run_ctx *ctx, const struct step *s)
{
	return run_ctx_error(ctx, -EPERM, "step '%s': the pre-flight checks did not pass in this run", s->id);
}

const struct step_ops gate_bundle_ops = { .check = bundle_check, .apply = bundle_apply };
const struct step_ops gate_identify_ops = { .check = identify_check, .apply = identify_apply };
const struct step_ops gate_preflight_ops = { .check = preflight_check, .apply = preflight_apply };
