/* SPDX-License-Identifier: MIT */
/*
 * gate.h — the install phase's gate steps: bundle-verify, node-identify
 * and preflight. The install verb passes that gate before a plan can even
 * exist (the plan is built from the verified bundle's manifest, for the
 * node this machine was identified as), so these steps' check() confirms
 * what the verb established, from run_ctx's `gate` slot, and apply() only
 * refuses: a gate that was not passed is never "applied" afterwards.
 * Recording them makes the journal the whole story of the install.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/step.h"

/* run_ctx's `gate` slot, owned by the install verb. */
struct install_gate {
	bool bundle_verified;    /* signature and every member checked (bundle_open_verified) */
	const char *node;        /* the node this machine was identified as; NULL: not identified */
	bool preflight_passed;   /* every check passed or was waived by the manifest */
};

extern const struct step_ops gate_bundle_ops;
extern const struct step_ops gate_identify_ops;
extern const struct step_ops gate_preflight_ops;
