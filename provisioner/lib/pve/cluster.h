/* SPDX-License-Identifier: MIT */
/*
 * cluster.h — Proxmox cluster formation in the first-boot phase, through the
 * API only (pve.h). docs/pve.md, "Cluster formation", is the long form.
 *
 * Each step is a check() (read-only: "already done?") and an apply(), bound
 * to the step engine's kinds (step.h) by the ops below:
 *   cluster-create  (the `first` node) create the cluster unless this node is
 *                   in it; a reinstalled first node whose name is still in a
 *                   healthy member's cluster rejoins instead of creating a
 *                   second cluster.
 *   cluster-join    (every other node) wait for the first node's API and its
 *                   quorate cluster, check Proxmox's requirements (unique
 *                   name, time, no guests, same major version), remove a
 *                   stale entry of our name (disaster recovery), wait for
 *                   our turn (manifest order), read the first node's
 *                   fingerprint from its join info, join, follow the task
 *                   through the API restart, re-pin and re-authenticate.
 *   cluster-certs   (every node, with the cluster CA's key) give the node's
 *                   API a certificate signed by the cluster CA
 *                   (/nodes/{node}/certificates/custom), then trust it by
 *                   the CA; the first node does it before creating the
 *                   cluster, members after joining (a join replaces
 *                   /etc/pve and with it the custom certificate).
 *   cluster-quorum  (every node) wait until the cluster is quorate and every
 *                   manifest node is an online member.
 *
 * The engine's run_ctx->pve slot holds a struct cluster_ctx * (owned by the
 * verb, freed with cluster_ctx_free()).
 *
 * Ownership: cluster_ctx_new() copies the configuration (and wipes its copy
 * of the password on free). Nothing here prints: progress goes to the
 * callback, failures into cluster_error().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "pve.h"
#include "plan/step.h"

#define CLUSTER_MAX_NODES 64

struct cluster_node_cfg {
	const char *name;
	const char *ip;       /* management IP: corosync link0 and join hostname */
	const char *api_url;  /* "https://IP:8006" unless overridden */
	bool first;
	bool has_fp;          /* pinned certificate fingerprint */
	uint8_t fp[HTTP_FP_LEN];
};

struct cluster_cfg {
	const char *cluster_name;
	struct cluster_node_cfg nodes[CLUSTER_MAX_NODES];
	size_t n_nodes;
	const char *self;         /* the node we run on */
	const char *password;     /* root@pam password (secret) */
	const char *ca_file;      /* trust for nodes without a pinned fingerprint */
	const char *ca_key_file;  /* the cluster CA's key (secret): enables cluster-certs */

	uint64_t wait_first_ms;   /* first node's API and cluster; default 30 min */
	uint64_t wait_quorum_ms;  /* default 10 min */
	uint64_t wait_turn_ms;    /* earlier members' joins; default 10 min */
	uint64_t poll_ms;         /* waits poll this often; default 2000 */
	uint64_t progress_ms;     /* progress messages at most this often; default 10000 */
	int64_t max_time_skew_s;  /* default 10 */
	struct pve_client_opts client;

	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

struct cluster_ctx;

int cluster_ctx_new(const struct cluster_cfg *cfg, struct cluster_ctx **ret);
struct cluster_ctx *cluster_ctx_free(struct cluster_ctx *c);
DEFINE_FREE_FUNC(struct cluster_ctx, cluster_ctx_free);

const char *cluster_error(const struct cluster_ctx *c);
/* This node's API client (logged in; owned by c). Later first-boot steps
 * (guests.h) go through it: a member proxies /nodes/OTHER/... */
int cluster_self_client(struct cluster_ctx *c, struct pve_client **ret);
bool cluster_self_is_first(const struct cluster_ctx *c);

/* The steps (0 or -errno; detail in cluster_error()). */
int cluster_create_check(struct cluster_ctx *c, bool *ret_done);
int cluster_create_apply(struct cluster_ctx *c);
/* Is this node one rebuilt while the cluster ran on: a reachable member
 * runs our cluster, quorate, still listing this node, which itself is in
 * no cluster? Quick (one attempt per member); *ret false when no member
 * answers. */
int cluster_find_stale_self(struct cluster_ctx *c, bool *ret);
int cluster_join_check(struct cluster_ctx *c, bool *ret_done);
int cluster_join_apply(struct cluster_ctx *c);
int cluster_quorum_check(struct cluster_ctx *c, bool *ret_done);
int cluster_quorum_apply(struct cluster_ctx *c);
int cluster_certs_check(struct cluster_ctx *c, bool *ret_done);
int cluster_certs_apply(struct cluster_ctx *c);

/* Step engine bindings (ctx->pve is the struct cluster_ctx *). */
extern const struct step_ops cluster_create_ops;
extern const struct step_ops cluster_join_ops;
extern const struct step_ops cluster_quorum_ops;
extern const struct step_ops cluster_certs_ops;
