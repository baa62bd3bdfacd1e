/* SPDX-License-Identifier: MIT */
/*
 * run.h — the context every step's check()/apply() receives.
 *
 * The verb (install, firstboot) sets it up: run_ctx_init(), then fills in
 * the manifest, node, journal and the subsystem slots it needs; it owns
 * everything it puts in and frees it after run_ctx_done(). The engine
 * (engine.c) only uses manifest, journal, dry_run, ops, progress,
 * progress_offset/progress_total, jobs and the worker hooks, result, error
 * and failed_step.
 *
 * Subsystem slots: each module that implements step kinds owns one slot's
 * type and lifetime (documented next to it). A module that needs a new slot
 * adds a field here — add, never repurpose.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "manifest/manifest.h"
#include "step.h"

struct journal;
struct json_object;
struct step_progress;

#define RUN_ERROR_MAX 512

struct run_ctx {
	const struct manifest *manifest; /* borrowed */
	const char *node;                /* the node this run executes on; NULL in tests/plan */
	const char *root;                /* where the target system is: "/mnt/target" in install, "/" in firstboot */
	struct journal *journal;         /* borrowed; NULL = nothing recorded or remembered */
	bool dry_run;                    /* check() only: never apply(), never append */

	/* Ops per kind: the verbs set the build's step_ops_table (step-ops.h);
	 * tests point it at fakes. step_run() requires it. */
	const struct step_ops *const *ops;

	/* Progress callback (may be NULL) and its data. */
	void (*progress)(const struct step_progress *p, void *userdata);
	void *userdata;
	/* One count across the step_run() calls of one phase (install runs
	 * its steps in two): this run's first step is number
	 * progress_offset + 1 of progress_total. Both 0 (run_ctx_init): the
	 * run counts its own steps, 1..n of n. */
	size_t progress_offset, progress_total;

	/* Concurrency (engine.h): how many steps of a `concurrent` kind may
	 * run at once (0 or 1: one at a time). Each worker gets a copy of this
	 * context with its own error and result; worker_init (the verb's, may
	 * be NULL) then replaces the slots the worker must not share (an API
	 * client, a scratch directory) and worker_done frees them. Both are
	 * called one worker at a time. */
	unsigned jobs;
	int (*worker_init)(struct run_ctx *worker, unsigned index, void *userdata);
	void (*worker_done)(struct run_ctx *worker, void *userdata);

	/* Subsystem slots, owned by the verb; the module defines the type. */
	void *bundle;  /* bundle: the verified, extracted bundle */
	void *disk;    /* disk: the selected, locked target disk */
	void *pve;     /* pve: the Proxmox API client */
	void *k3s;     /* k3s: client / SSH session to the K3s VMs */
	void *dns;     /* technitium: the DNS API client */
	void *edge;    /* edge: Traefik / certificates */
	void *secrets; /* bundle: the decrypted secrets (never logged) */
	void *install; /* install: struct install_paths (sysconf.h): what firstboot-install lays down */
	void *gate;    /* install: struct install_gate (gate.h): what the verb established before the plan */
	void *boot;    /* bootloader: struct bootloader_opts (bootloader.h); NULL = the defaults */
	void *guests;  /* guests: struct guests_ctx (guests.h): templates and VMs on the cluster */
	void *registry; /* registry: struct registry_cfg (registry.h): the lab's container registry */
	void *gitops;  /* gitops: struct gitops_cfg (gitops.h): Argo CD's root Application */
	void *monitoring; /* monitoring: struct monitoring_cfg (monitoring.h): Grafana's admin, the targets */
	void *verify;  /* verify: struct verify_cfg (verify.h): what the last step asks */

	/* Engine-managed, per step. */
	struct json_object *result;  /* set by apply() via run_ctx_set_result(); recorded in the journal */
	char error[RUN_ERROR_MAX];   /* why the current step failed; first error wins */
	const struct step *failed_step; /* set when step_run() fails */
};

void run_ctx_init(struct run_ctx *ctx);
/* Drops a pending result; does not touch the borrowed pointers or slots. */
void run_ctx_done(struct run_ctx *ctx);

/* Record why a step failed (first call wins until the engine clears it).
 * Returns -err... convenience: `return run_ctx_error(ctx, -EIO, "...")`. */
int run_ctx_error(struct run_ctx *ctx, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Hand a result object to the engine for the journal record (takes the
 * reference; replaces a previous one). NULL clears it. */
void run_ctx_set_result(struct run_ctx *ctx, struct json_object *result);
