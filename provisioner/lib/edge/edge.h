/* SPDX-License-Identifier: MIT */
/*
 * edge.h — the first-boot steps that make K3s's packaged Traefik the lab's
 * edge (docs/edge.md is the long form). Everything goes through the
 * Kubernetes API by server-side apply (field manager "devopslab"), each
 * object compared first: a converged run writes nothing, and a field of
 * ours changed by hand is set back.
 *
 *   edge-traefik  HelmChartConfig kube-system/traefik with the values of
 *                 the chart K3s packages (its version read from HelmChart
 *                 kube-system/traefik): the Service's address edge.ip,
 *                 announced by kube-vip (its annotation; ServiceLB is
 *                 disabled), Traefik on every node with the Local traffic
 *                 policy, HTTP redirected to HTTPS. Done when the Service has the
 *                 address and helm's job has completed.
 *   edge-certs    the wildcard certificate of the zone from the cluster CA
 *                 (or ordered from an ACME CA, the DNS-01 challenges
 *                 answered through the lab's Technitium: acme.h) as Secret
 *                 kube-system/devopslab-edge-tls and TLSStore
 *                 kube-system/default; issued again only when it is not
 *                 the CA's, lacks a name or has under 30 days left.
 *   edge-routes   namespace devopslab-edge: the web consoles (Proxmox on
 *                 every node, Technitium's primary) as selector-less
 *                 Services with Endpoints, a ServersTransport trusting the
 *                 cluster CA, IngressRoutes; the dashboard behind basic
 *                 auth (bcrypt, libcrypt); allow-list and rate-limit
 *                 middlewares on every route.
 *
 * The engine's run_ctx->edge slot holds a struct edge_ctx * (owned by the
 * verb, freed with edge_ctx_free()).
 */
#pragma once

#include <stdint.h>

#include "plan/step.h"
#include "pve/http.h"
#include "util.h"

struct k3s_ctx;
struct dns_ctx;

#define EDGE_MANAGER "devopslab"
#define EDGE_NAMESPACE "devopslab-edge"
#define EDGE_TLS_SECRET "devopslab-edge-tls"
#define EDGE_ACME_SECRET "devopslab-acme-account" /* kube-system: the ACME account key */
#define EDGE_SYSTEM_CAS "/etc/ssl/certs/ca-certificates.crt"
#define EDGE_CERT_MIN_DAYS 30 /* a certificate with fewer days left is issued again */

struct edge_cfg {
	struct k3s_ctx *k3s;            /* borrowed: its Kubernetes API client */
	const char *ca_file;            /* the cluster CA's certificate */
	const char *ca_key_file;        /* and key: the wildcard certificate */
	const char *dashboard_password; /* secret; NULL without a dashboard */
	/* certificate: acme-dns01 */
	struct dns_ctx *dns;            /* borrowed: the challenges' TXT records */
	const char *acme_ca_file;       /* trusts the ACME server and the chains it issues */
	struct http_opts acme_http;
	uint64_t poll_ms;               /* default 2000 */
	uint64_t timeout_ms;            /* Traefik's address and helm job; default 10 min */
	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

struct edge_ctx;

int edge_ctx_new(const struct edge_cfg *cfg, struct edge_ctx **ret);
struct edge_ctx *edge_ctx_free(struct edge_ctx *e);
DEFINE_FREE_FUNC(struct edge_ctx, edge_ctx_free);

/* What trusts the ACME CA's chains: cfg.acme_ca_file, or the system's
 * store (EDGE_SYSTEM_CAS). */
const char *edge_acme_trust(const struct edge_ctx *e);

/* The major version of a Traefik chart from HelmChart spec.chart (".../
 * traefik-39.0.701+up39.0.7.tgz": 39; "traefik-34.2.1+up34.2.0.tgz": 34);
 * -EINVAL when there is none. The values' form depends on it. */
int edge_chart_major(const char *chart);

/* The HelmChartConfig's valuesContent for that chart major and address,
 * as JSON text (YAML reads it). *ret is malloc'd. */
int edge_traefik_values(int major, const char *ip, char **ret);

extern const struct step_ops edge_traefik_ops;
extern const struct step_ops edge_certs_ops;
extern const struct step_ops edge_routes_ops;
