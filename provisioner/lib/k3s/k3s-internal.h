/* SPDX-License-Identifier: MIT */
/*
 * k3s-internal.h — what the K3s steps (k3s.c, k3s-charts.c) share: the
 * context the verb makes with k3s_ctx_new(), with its guest_exec for
 * commands in the VMs (pve/guest-exec.h). Not for use outside lib/k3s.
 */
#pragma once

#include <stdint.h>

#include "k3s-ca.h"
#include "k3s.h"
#include "kube.h"
#include "plan/run.h"
#include "pve/guest-exec.h"
#include "pve/pve-guest.h"

struct k3s_ctx {
	struct k3s_cfg cfg;
	struct k3s_trust trust;
	char *token; /* the secure token: secret */
	char api_url[64];
	bool etcd; /* k3s.ha: servers are embedded etcd members */
	struct kube_client *kube;
	struct guest_exec gx; /* commands in the K3s VMs (pve/guest-exec.h) */
};

struct k3s_ctx *k3s_kctx(struct run_ctx *ctx);

/* Progress for the operator: through cfg.progress, else the log. */
void k3s_progress(struct k3s_ctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
