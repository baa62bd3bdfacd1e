/* SPDX-License-Identifier: MIT */
/*
 * report.h — the final report of a first-boot run (docs/operations.md,
 * "The report"): what the lab is and how to get in, built from the
 * manifest, the plan and the journal. Never a secret value: credentials are
 * named by where they live.
 *
 *   report_build()   one JSON document (docs/report.schema.json):
 *                    outcome, web consoles, credentials (locations),
 *                    kubeconfig, the DNS servers to hand out by DHCP, the
 *                    bundle's SHA256SUMS digest, the verification table,
 *                    every step of the plan with its journal state and
 *                    timing, and the Ansible inventory of nodes and VMs
 *   report_write()   into a directory: report.json, report.txt (the text
 *                    below, steps included) and inventory.yml (Ansible's
 *                    YAML inventory format), each replaced atomically
 *   report_print()   the text for people, from the JSON (so `devopslab
 *                    report` prints what firstboot printed)
 *
 * Ownership: report_build() returns a new json_object the caller puts.
 * Errors: 0 or -errno; report_write() names the file in its log line.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "manifest/manifest.h"

struct json_object;
struct journal;
struct plan;

#define REPORT_FORMAT_VERSION 1
#define REPORT_DIR_DEFAULT "/var/lib/devopslab/report"
#define REPORT_JSON "report.json"
#define REPORT_TEXT "report.txt"
#define REPORT_INVENTORY "inventory.yml"
#define REPORT_KUBECONFIG "kubeconfig"

enum report_outcome {
	REPORT_COMPLETE,   /* every step of the plan done */
	REPORT_INCOMPLETE, /* stopped at a step this build does not implement */
	REPORT_FAILED,     /* a step failed */
};

/* What this run did with one step of the plan (the verb fills it from the
 * engine's progress events). */
enum report_run {
	REPORT_RUN_NONE,    /* not reached (or another phase): the journal says */
	REPORT_RUN_APPLIED, /* apply() made it so */
	REPORT_RUN_FOUND,   /* check() found it done */
	REPORT_RUN_EARLIER, /* the journal had it done with these parameters */
	REPORT_RUN_FAILED,
};

struct report_step {
	enum report_run run;
	uint64_t elapsed_ms;
};

struct report_input {
	const struct manifest *m;      /* borrowed, as everything here */
	const struct plan *plan;       /* the node's plan, as run */
	const struct journal *journal; /* the run's; NULL: no journal kept */
	const struct journal *install_journal; /* the install phase's (its own file); NULL: none */
	const struct report_step *run; /* plan->n_steps entries, this run's; NULL: none */
	const char *node;              /* the node that ran */
	const char *dir;               /* where report_write() puts it (named in the report) */
	enum report_outcome outcome;
	const char *failed_step;       /* step id: incomplete or failed */
	const char *error;             /* why (already log-safe) */
	const uint8_t *bundle_digest;  /* SHA-256 of the signed SHA256SUMS; NULL for a draft manifest */
	bool kubeconfig;               /* dir/kubeconfig was written */
	const char *k3s_api;           /* the URL the kubeconfig names; NULL without K3s */
	struct json_object *verification; /* the verify step's rows (array); NULL when it did not run */
	uint64_t started_ms, finished_ms; /* the run's wall clock (CLOCK_REALTIME, ms) */
};

int report_build(const struct report_input *in, struct json_object **ret);
int report_write(const char *dir, struct json_object *report);
/* steps: also the table of every step with its state and timing */
void report_print(FILE *f, struct json_object *report, bool steps);
/* The Ansible inventory (the report's "inventory" object) as YAML. */
int report_inventory_yaml(struct json_object *report, FILE *f);
