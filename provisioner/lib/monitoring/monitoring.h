/* SPDX-License-Identifier: MIT */
/*
 * monitoring.h — the first-boot step that finishes the lab's metrics
 * (docs/monitoring.md is the long form). The stack itself (Prometheus,
 * Grafana, kube-state-metrics, node-exporter on the guests) is a system
 * chart of the k3s-charts step, with the scrape jobs the plan wrote into
 * its values; this step gives it what must not be in a plan, and checks
 * that it works, through the Kubernetes API (server-side apply, field
 * manager "devopslab", each object compared first):
 *
 *   monitoring  Secret NS/devopslab-grafana-admin (Grafana's admin user
 *               and password, the password from the bundle's sealed
 *               secrets) and one ConfigMap per dashboard (hosts, K3s,
 *               Traefik; label grafana_dashboard "1", which Grafana's
 *               sidecar loads). Done when both are ours, Prometheus (asked
 *               through the API server's service proxy, /api/v1/targets)
 *               reports every target of the plan's static jobs up, and
 *               Grafana answers its health check; after the timeout it
 *               fails naming the targets that are down and why.
 *               With monitoring.logs (params "logs"): also the log store's
 *               data source (ConfigMap devopslab-datasource-loki, label
 *               grafana_datasource "1"), and done only once Loki is ready
 *               and has a stream for every source of the plan (each
 *               node's syslog, each K3s VM's journal, Traefik's access
 *               log: /loki/api/v1/series).
 *
 * The engine's run_ctx->monitoring slot holds a struct monitoring_cfg *
 * (owned by the verb); run_ctx->secrets the bundle's secrets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/step.h"

struct k3s_ctx;
struct json_object;

#define MONITORING_MANAGER "devopslab"

struct monitoring_cfg {
	struct k3s_ctx *k3s;          /* borrowed: its Kubernetes API client */
	const char *grafana_password; /* a draft manifest's run: the value of monitoring.grafana_password (borrowed) */
	uint64_t poll_ms;             /* default 2000 */
	uint64_t timeout_ms;          /* the targets up; default 10 min */
	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

/* The dashboards this build provisions, by name ("hosts", "k3s",
 * "traefik"): Grafana's dashboard JSON (a static string), or NULL. */
const char *monitoring_dashboard(const char *name);

/* From a Prometheus /api/v1/targets answer, for the static jobs of the
 * step's parameters (params "jobs" [{name, targets}]): how many targets
 * they have and how many of them are up; the first that is not, with
 * Prometheus's lastError, into why. A target of a job that Prometheus
 * does not list counts as not up. Exposed for tests. */
void monitoring_targets(struct json_object *params, struct json_object *answer, size_t *ret_n, size_t *ret_up,
			char *why, size_t why_size);

/* How many streams Loki has for a LogQL stream selector
 * (/loki/api/v1/series, through the API server's service proxy to the
 * Service the parameters' "logs" {service, port} name in ns). Errors: the
 * API's (kube_error()), -EPROTO for an answer that is not Loki's. */
struct kube_client;
int monitoring_log_streams(struct kube_client *k, const char *ns, struct json_object *logs, const char *selector,
			   size_t *ret_n);

extern const struct step_ops monitoring_ops;
