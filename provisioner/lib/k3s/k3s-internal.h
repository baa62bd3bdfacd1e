/* SPDX-License-Identifier: MIT */
/*
 * k3s-internal.h — what the K3s steps (k3s.c, k3s-charts.c) share: the
 * context the verb makes with k3s_ctx_new(), and commands in a guest
 * through the Proxmox guest agent. Not for use outside lib/k3s.
 */
#pragma once

#include <stdint.h>

#include "k3s-ca.h"
#include "k3s.h"
#include "kube.h"
#include "plan/run.h"
#include "pve/pve-guest.h"

#define EXEC_MAX_OUT 2048 /* bytes of a failed command's output in an error */

struct k3s_ctx {
	struct k3s_cfg cfg;
	struct k3s_trust trust;
	char *token; /* the secure token: secret */
	char api_url[64];
	bool etcd; /* k3s.ha: servers are embedded etcd members */
	struct kube_client *kube;
};

struct k3s_ctx *k3s_kctx(struct run_ctx *ctx);

/* Progress for the operator: through cfg.progress, else the log. */
void k3s_progress(struct k3s_ctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last max bytes of s. */
const char *k3s_tail(const char *s, size_t max);

/* Run argv in the VM through the guest agent (input: its standard input,
 * or NULL) and wait for it to exit, at most timeout_ms; *ret_status
 * (optional; pve_exec_status_done() it) gets how it ended, otherwise
 * anything but exit 0 is an error naming the command with its output's
 * tail. Errors are said in ctx. */
int k3s_guest_run(struct run_ctx *ctx, const struct mf_vm *vm, const char *const *argv, const char *input,
		  uint64_t timeout_ms, struct pve_exec_status *ret_status);
/* data into path in the guest with mode (coreutils install from stdin,
 * its directories made). */
int k3s_guest_write(struct run_ctx *ctx, const struct mf_vm *vm, const char *path, unsigned mode, const char *data);
/* The last lines of a unit's journal into buf (best effort; "" when not
 * readable); ctx's error text is kept. */
void k3s_guest_journal(struct run_ctx *ctx, const struct mf_vm *vm, const char *unit, char *buf, size_t size);
