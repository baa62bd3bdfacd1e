/* SPDX-License-Identifier: MIT */
/*
 * k3s.h — the first-boot steps that make one K3s cluster of the K3s VMs
 * (docs/k3s.md is the long form):
 *
 *   k3s-server-init  the first server: the custom CA files and its
 *                    config (cluster-init: embedded etcd) written into
 *                    the guest, K3s installed from the bundle's files and
 *                    started; done when the API answers /readyz over TLS
 *                    with the bundle's CA and the node is Ready as a
 *                    control-plane and etcd member.
 *   k3s-server-join  each further server, one at a time: done when its
 *                    node is Ready and a voting etcd member (K3s refuses a
 *                    second learner: "too many learner members").
 *   k3s-agent        each agent: done when its node is Ready.
 *   k3s-charts       the manifest's charts as HelmCharts in the first
 *                    server's auto-deploying manifests (k3s-charts.c): done
 *                    when each one's helm job has completed with our spec
 *                    and no chart of ours is left that the manifest dropped.
 *
 * Everything reaches the guest through the Proxmox API's guest agent
 * (agent/exec), which the guest layer has seen answer; the bundle's K3s
 * binary, install script and images are already in the guest from its
 * payload ISO, SHA-256 checked (docs/guests.md). A node whose K3s runs is
 * never reinstalled: a killed run waits for it. A node name the API
 * already holds while the VM's K3s does not run (a VM re-created with an
 * old name) has its stale Node and node-password secret removed first,
 * and the run says so: K3s would reject the new node's password.
 *
 * The engine's run_ctx->k3s slot holds a struct k3s_ctx * (owned by the
 * verb, freed with k3s_ctx_free()).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "manifest/manifest.h"
#include "plan/step.h"
#include "pve/http.h"

struct pve_client;

struct k3s_cfg {
	struct pve_client *pve;    /* borrowed: a cluster member's API */
	const char *api_url;       /* NULL: k3s_api_url() */
	const char *ca_key_pem;    /* the cluster CA's key (the K3s trust derives from it) */
	size_t ca_key_len;
	const char *token_secret;  /* the value of k3s.token */
	uint64_t poll_ms;          /* default 2000 */
	uint64_t exec_timeout_ms;  /* one command in a guest; default 10 min */
	uint64_t ready_timeout_ms; /* a node Ready (and voting); default 10 min */
	struct http_opts http;     /* the Kubernetes API client's */
	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

struct k3s_ctx;

/* Derives the trust (k3s-ca.h) and makes the API client. -EINVAL: no
 * token, no CA key, a key mbedtls cannot read, or no K3s server in m. */
int k3s_ctx_new(const struct k3s_cfg *cfg, const struct manifest *m, struct k3s_ctx **ret);
struct k3s_ctx *k3s_ctx_free(struct k3s_ctx *k);
DEFINE_FREE_FUNC(struct k3s_ctx, k3s_ctx_free);

/* The kubeconfig (k3s-config.h) written to path with mode 0600, replacing
 * what is there atomically. Returns 0 or -errno. */
int k3s_write_kubeconfig(struct k3s_ctx *k, const char *path);
/* The URL the kubeconfig names: https://<k3s.api_vip, else the first
 * server>:6443. */
const char *k3s_api_url(const struct k3s_ctx *k);

/* The cluster's nodes as the Kubernetes API lists them: for each of the
 * n names, ready[i] whether it is Ready (false when absent). Errors as
 * kube_nodes(); why (optional) gets the API's words. */
int k3s_nodes_ready(struct k3s_ctx *k, const char *const *names, size_t n, bool *ready, char *why, size_t why_size);

/* The Kubernetes API client (kube.h) the steps use; borrowed. */
struct kube_client *k3s_kube(struct k3s_ctx *k);
/* Commands in the K3s VMs through the guest agent (pve/guest-exec.h); borrowed. */
struct guest_exec;
const struct guest_exec *k3s_guest(struct k3s_ctx *k);

extern const struct step_ops k3s_server_init_ops;
extern const struct step_ops k3s_server_join_ops;
extern const struct step_ops k3s_agent_ops;
extern const struct step_ops k3s_charts_ops; /* k3s-charts.c */
