/* SPDX-License-Identifier: MIT */
/*
 * plan.h — the ordered list of steps `install` and `firstboot` execute,
 * built from a manifest. `devopslab plan` prints it; step_run() runs it.
 * There is no other list: a step that is not in the plan does not happen.
 *
 * Ownership: a plan owns its steps (ids, titles, params); it borrows the
 * manifest, which must outlive it (steps point into it).
 *
 * Node filter: plan_build(m, NAME) keeps exactly the steps the machine NAME
 * executes: its own install and first-boot steps, plus the cluster-wide
 * steps when NAME is the `first` node. plan_build(m, NULL) keeps every step
 * of every node, in the order of a whole-cluster bring-up.
 */
#pragma once

#include "util.h"

#include <stdio.h>

#include "manifest/manifest.h"
#include "step.h"

struct json_object;

#define PLAN_MAX_STEPS 65536

struct plan {
	const struct manifest *manifest; /* borrowed */
	char *node;                      /* the filter, or NULL */
	bool recover;                    /* a recovery plan: node, rebuilt, runs the cluster-wide steps */
	struct step *steps;
	size_t n_steps, allocated;
};

/* Build the plan. -ENOENT when `node` is not in the manifest; -E2BIG past
 * PLAN_MAX_STEPS; plan_error() has the detail. */
int plan_build(const struct manifest *m, const char *node, struct plan **ret);

/* The plan of rebuilding `node` (docs/operations.md, "Recovering a node"):
 * its install, then its first boot, in which it runs the cluster-wide steps
 * itself, to bring back what lived on it. */
int plan_build_recover(const struct manifest *m, const char *node, struct plan **ret);

/* What recovering p->node does at step s, for the plan's reader; NULL
 * when s only checks that things are as they were (not a recovery plan,
 * or a step about something that did not live on the node). */
const char *plan_recovery_note(const struct plan *p, const struct step *s, char *buf, size_t size);

/* What the machine adds to its plan: the NIC of new hardware (install
 * --node/--nic, docs/operations.md), a name or MAC, as the `nic` of
 * `node`'s config-network step. -ENOENT when the plan has no such step. */
int plan_set_node_nic(struct plan *p, const char *node, const char *nic);

/* For builders and tests: an empty plan, and appending one step. `params`
 * is taken (even on failure; NULL = empty object). The id is printf-formatted.
 * Returns the new step's index or -errno (-EEXIST for a duplicate id). */
struct plan *plan_new(const struct manifest *m, const char *node);
int plan_add(struct plan *p, enum step_phase phase, enum step_kind kind, const char *node,
	     struct json_object *params, const char *title, const char *id_fmt, ...)
	__attribute__((format(printf, 7, 8)));
struct plan *plan_free(struct plan *p);

/* A new plan holding the steps of p for which keep() is true, in order
 * (ids, titles, parameters and typed references as in p). 0 or -errno. */
int plan_filter(const struct plan *p, bool (*keep)(const struct step *s, void *userdata), void *userdata,
		struct plan **ret);

const struct step *plan_find_step(const struct plan *p, const char *id);
/* Whether the plan has a step of that kind. */
bool plan_has_kind(const struct plan *p, enum step_kind kind);

/* True when the step runs on `node` (see the node filter above). */
bool plan_step_runs_on(const struct plan *p, const struct step *s, const char *node);

/* Output: text for people, JSON (one document) for programs. Both list
 * every step with its id, phase, node, kind, title and parameters. */
int plan_print_text(FILE *f, const struct plan *p);
int plan_to_json(const struct plan *p, struct json_object **ret);

const char *plan_error(void);

DEFINE_FREE_FUNC(struct plan, plan_free)
