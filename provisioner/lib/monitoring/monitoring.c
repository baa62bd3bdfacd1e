/* SPDX-License-Identifier: MIT */
/*
 * monitoring.c — the step monitoring (monitoring.h): Grafana's admin
 * Secret and the dashboards' ConfigMaps applied when they differ from
 * ours; done when Prometheus reports the plan's targets up and Grafana
 * answers.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "base64.h"
#include "bundle/secret.h"
#include "k3s/k3s.h"
#include "k3s/kube.h"
#include "log.h"
#include "monitoring.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/http.h"
#include "util.h"

#define POLL_MS_DEFAULT 2000
#define TIMEOUT_MS_DEFAULT (10 * 60 * 1000)
#define DASHBOARDS_MAX 8
#define MANAGED_BY "app.kubernetes.io/managed-by"
#define DASHBOARD_LABEL "grafana_dashboard" /* the chart's sidecar: label and value */
#define DATASOURCE_LABEL "grafana_datasource"
#define LOKI_DATASOURCE "devopslab-datasource-loki"

/* ---- the dashboards (Grafana's JSON model; our own) ------------------------- */

#define PANEL(id, title, x, y, unit, expr, legend)                                                                 \
	"{\"id\":" #id ",\"type\":\"timeseries\",\"title\":\"" title "\",\"gridPos\":{\"x\":" #x ",\"y\":" #y        \
	",\"w\":12,\"h\":8},\"datasource\":{\"type\":\"prometheus\",\"uid\":\"${datasource}\"},\"fieldConfig\":{"     \
	"\"defaults\":{\"unit\":\"" unit "\"},\"overrides\":[]},\"targets\":[{\"refId\":\"A\",\"expr\":\"" expr          \
	"\",\"legendFormat\":\"" legend "\"}]}"
#define DASHBOARD(uid, title, panels)                                                                              \
	"{\"uid\":\"" uid "\",\"title\":\"" title "\",\"tags\":[\"devopslab\"],\"schemaVersion\":39,\"editable\":true,"  \
	"\"time\":{\"from\":\"now-6h\",\"to\":\"now\"},\"refresh\":\"1m\",\"templating\":{\"list\":[{\"name\":"           \
	"\"datasource\",\"type\":\"datasource\",\"query\":\"prometheus\"}]},\"panels\":[" panels "]}"

static const struct {
	const char *name, *json;
} dashboards[] = {
	{ "hosts",
	  DASHBOARD("devopslab-hosts", "DevOpsLab: Proxmox VE hosts",
		    PANEL(1, "CPU busy", 0, 0, "percentunit",
			  "1 - avg by (instance) (rate(node_cpu_seconds_total{job=\\\"proxmox-hosts\\\",mode=\\\"idle\\\"}[5m]))",
			  "{{instance}}") ","
		    PANEL(2, "Memory available", 12, 0, "bytes",
			  "node_memory_MemAvailable_bytes{job=\\\"proxmox-hosts\\\"}", "{{instance}}") ","
		    PANEL(3, "Root file system free", 0, 8, "bytes",
			  "node_filesystem_avail_bytes{job=\\\"proxmox-hosts\\\",mountpoint=\\\"/\\\"}", "{{instance}}") ","
		    PANEL(4, "Network received", 12, 8, "Bps",
			  "sum by (instance) (rate(node_network_receive_bytes_total{job=\\\"proxmox-hosts\\\","
			  "device!=\\\"lo\\\"}[5m]))",
			  "{{instance}}")) },
	{ "k3s",
	  DASHBOARD("devopslab-k3s", "DevOpsLab: K3s",
		    PANEL(1, "Nodes Ready", 0, 0, "short",
			  "sum(kube_node_status_condition{condition=\\\"Ready\\\",status=\\\"true\\\"})", "ready") ","
		    PANEL(2, "Pods by phase", 12, 0, "short", "sum by (phase) (kube_pod_status_phase)", "{{phase}}") ","
		    PANEL(3, "Container restarts (1h)", 0, 8, "short",
			  "sum by (namespace) (increase(kube_pod_container_status_restarts_total[1h]))", "{{namespace}}") ","
		    PANEL(4, "Node CPU busy", 12, 8, "percentunit",
			  "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\\\"idle\\\",job!=\\\"proxmox-hosts\\\"}[5m]))",
			  "{{instance}}")) },
	{ "traefik",
	  DASHBOARD("devopslab-traefik", "DevOpsLab: Traefik (the edge)",
		    PANEL(1, "Requests by router", 0, 0, "reqps",
			  "sum by (router) (rate(traefik_router_requests_total[5m]))", "{{router}}") ","
		    PANEL(2, "5xx answers by service", 12, 0, "reqps",
			  "sum by (service) (rate(traefik_service_requests_total{code=~\\\"5..\\\"}[5m]))", "{{service}}") ","
		    PANEL(3, "Request duration p95", 0, 8, "s",
			  "histogram_quantile(0.95, sum by (le) (rate(traefik_service_request_duration_seconds_bucket[5m])))",
			  "p95") ","
		    PANEL(4, "Open connections", 12, 8, "short", "sum by (entrypoint) (traefik_open_connections)",
			  "{{entrypoint}}")) },
};

const char *monitoring_dashboard(const char *name)
{
	for (size_t i = 0; name && i < ELEMENTSOF(dashboards); i++)
		if (streq(dashboards[i].name, name))
			return dashboards[i].json;
	return NULL;
}

/* ---- Prometheus's targets ---------------------------------------------------- */

static struct json_object *find_target(struct json_object *active, const char *job, const char *instance)
{
	for (size_t i = 0; active && i < json_object_array_length(active); i++) {
		struct json_object *t = json_object_array_get_idx(active, i);
		struct json_object *labels = json_get_object(t, "labels");

		if (streq_ptr(json_get_string(labels, "job"), job) && streq_ptr(json_get_string(labels, "instance"), instance))
			return t;
	}
	return NULL;
}

void monitoring_targets(struct json_object *params, struct json_object *answer, size_t *ret_n, size_t *ret_up,
			char *why, size_t why_size)
{
	struct json_object *jobs = json_get_array(params, "jobs");
	struct json_object *active = json_get_array(json_get_object(answer, "data"), "activeTargets");
	size_t n = 0, up = 0;

	why[0] = '\0';
	for (size_t i = 0; jobs && i < json_object_array_length(jobs); i++) {
		struct json_object *job = json_object_array_get_idx(jobs, i);
		struct json_object *targets = json_get_array(job, "targets");
		const char *name = json_get_string(job, "name");

		for (size_t j = 0; targets && j < json_object_array_length(targets); j++) {
			const char *inst = json_object_get_string(json_object_array_get_idx(targets, j));
			struct json_object *t = find_target(active, name, inst);
			const char *health = json_get_string(t, "health"), *err = json_get_string(t, "lastError");

			n++;
			if (streq_ptr(health, "up")) {
				up++;
				continue;
			}
			if (!why[0])
				snprintf(why, why_size, "%s %s: %s%s%s", name ? name : "?", inst ? inst : "?",
					 t ? (health ? health : "?") : "not a target of Prometheus", !isempty(err) ? ", " : "",
					 !isempty(err) ? err : "");
		}
	}
	*ret_n = n;
	*ret_up = up;
}

/* ---- the log store ------------------------------------------------------------- */

static void loki_path(const char *ns, struct json_object *logs, const char *rest, char *buf, size_t size)
{
	uint64_t port = 0;

	(void)json_get_u64(logs, "port", &port);
	snprintf(buf, size, "/api/v1/namespaces/%s/services/http:%s:%" PRIu64 "/proxy%s", ns ?: "?",
		 json_get_string(logs, "service") ?: "?", port, rest);
}

int monitoring_log_streams(struct kube_client *k, const char *ns, struct json_object *logs, const char *selector,
			   size_t *ret_n)
{
	_cleanup_json_ struct json_object *answer = NULL;
	char *enc = curl_easy_escape(NULL, selector ? selector : "", 0);
	char rest[640], path[800];
	struct json_object *data;
	int r;

	*ret_n = 0;
	if (!enc)
		return -ENOMEM;
	snprintf(rest, sizeof(rest), "/loki/api/v1/series?match%%5B%%5D=%s", enc);
	curl_free(enc);
	loki_path(ns, logs, rest, path, sizeof(path));
	r = kube_get(k, path, &answer);
	if (r < 0)
		return r;
	data = json_get_array(answer, "data");
	if (!streq_ptr(json_get_string(answer, "status"), "success") || !data)
		return -EPROTO;
	*ret_n = json_object_array_length(data);
	return 0;
}

/* Loki ready, and every source of the parameters' "logs" with a stream:
 * *ret_n sources, *ret_have with logs; the first without into why. */
static int log_sources(struct kube_client *k, const char *ns, struct json_object *logs, size_t *ret_n,
		       size_t *ret_have, char *why, size_t why_size)
{
	struct json_object *src = json_get_array(logs, "sources");
	_cleanup_free_ char *ready = NULL;
	char path[384];
	int r;

	*ret_n = src ? json_object_array_length(src) : 0;
	*ret_have = 0;
	loki_path(ns, logs, "/ready", path, sizeof(path));
	r = kube_get_text(k, path, 256, &ready);
	if (r < 0 || !ready || strncmp(ready, "ready", 5) != 0) {
		snprintf(why, why_size, "Loki is not ready yet (%s)", r < 0 ? kube_error(k) : ready ?: "");
		return 0;
	}
	for (size_t i = 0; i < *ret_n; i++) {
		struct json_object *e = json_object_array_get_idx(src, i);
		size_t n = 0;

		r = monitoring_log_streams(k, ns, logs, json_get_string(e, "selector"), &n);
		if (r < 0 && r != -EPROTO)
			return r;
		if (n > 0)
			(*ret_have)++;
		else if (!why[0])
			snprintf(why, why_size, "no logs of %s in Loki yet (%s)", json_get_string(e, "name") ?: "?",
				 json_get_string(e, "selector") ?: "?");
	}
	return 0;
}

/* ---- the step ---------------------------------------------------------------- */

static struct monitoring_cfg *mcfg(struct run_ctx *ctx)
{
	return ctx->monitoring;
}

#define progress(g, ...) log_progress((g)->progress, (g)->userdata, __VA_ARGS__)

/* {apiVersion: v1, kind, metadata: {name, namespace, labels: ours}, KEY: {}} */
static struct json_object *object(const char *kind, const char *ns, const char *name, const char *key)
{
	struct json_object *o = json_object_new_object(), *md = json_object_new_object(),
			   *labels = json_object_new_object();

	if (!o || !md || !labels || json_add_string(o, "apiVersion", "v1") < 0 || json_add_string(o, "kind", kind) < 0 ||
	    json_add_string(md, "name", name) < 0 || json_add_string(md, "namespace", ns) < 0 ||
	    json_add_string(labels, MANAGED_BY, MONITORING_MANAGER) < 0 || json_add(md, "labels", TAKE_PTR(labels)) < 0 ||
	    json_add(o, "metadata", TAKE_PTR(md)) < 0 || json_add(o, key, json_object_new_object()) < 0) {
		json_object_put(labels);
		json_object_put(md);
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Grafana's admin password: the bundle's sealed secret, else the one a
 * draft manifest's run was given. */
static const char *grafana_password(struct run_ctx *ctx, const struct step *s)
{
	const char *name = json_get_string(json_get_object(s->params, "grafana_password"), "secret");
	const char *v = name && ctx->secrets ? secrets_get(ctx->secrets, name) : NULL;

	return !isempty(v) ? v : mcfg(ctx)->grafana_password;
}

/* The step's objects: the admin Secret, then one ConfigMap per dashboard. */
static int wants(struct run_ctx *ctx, const struct step *s, struct kube_want *w, size_t *ret_n)
{
	const char *ns = json_get_string(s->params, "namespace"), *user = json_get_string(s->params, "grafana_user");
	const char *pw = grafana_password(ctx, s);
	struct json_object *names = json_get_array(s->params, "dashboards");
	size_t n = 0, nd = names ? json_object_array_length(names) : 0;
	int r = 0;

	*ret_n = 0;
	if (!ns || !user || nd > DASHBOARDS_MAX)
		return run_ctx_error(ctx, -EINVAL, "%s: its parameters lack namespace, grafana_user or dashboards", s->id);
	if (isempty(pw))
		return run_ctx_error(ctx, -EINVAL,
				     "%s: Grafana's admin password (secret '%s') is not among the bundle's sealed secrets: "
				     "firstboot needs --bundle with its secrets (or, with --manifest, "
				     "--grafana-password-file)",
				     s->id,
				     json_get_string(json_get_object(s->params, "grafana_password"), "secret") ?: "?");
	snprintf(w[n].path, sizeof(w[n].path), "/api/v1/namespaces/%s/secrets/" MANIFEST_MONITORING_GRAFANA_SECRET, ns);
	w[n].obj = object("Secret", ns, MANIFEST_MONITORING_GRAFANA_SECRET, "data");
	if (!w[n].obj || json_add_string(w[n].obj, "type", "Opaque") < 0 ||
	    kube_put_b64(json_get_object(w[n].obj, "data"), "admin-user", user) < 0 ||
	    kube_put_b64(json_get_object(w[n].obj, "data"), "admin-password", pw) < 0)
		r = -ENOMEM;
	n++;
	for (size_t i = 0; r >= 0 && i < nd; i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(names, i));
		const char *json = monitoring_dashboard(name);
		char cm[96], key[96];

		if (!json) {
			kube_wants_done(w, n);
			return run_ctx_error(ctx, -EINVAL, "%s: no dashboard '%s' in this build", s->id, name ?: "?");
		}
		snprintf(cm, sizeof(cm), "devopslab-dashboard-%s", name);
		snprintf(key, sizeof(key), "%s.json", name);
		snprintf(w[n].path, sizeof(w[n].path), "/api/v1/namespaces/%s/configmaps/%s", ns, cm);
		w[n].obj = object("ConfigMap", ns, cm, "data");
		if (!w[n].obj ||
		    json_add_string(json_get_object(json_get_object(w[n].obj, "metadata"), "labels"), DASHBOARD_LABEL,
				    "1") < 0 ||
		    json_add_string(json_get_object(w[n].obj, "data"), key, json) < 0)
			r = -ENOMEM;
		n++;
	}
	if (r >= 0 && json_get_object(s->params, "logs")) {
		struct json_object *logs = json_get_object(s->params, "logs");
		_cleanup_free_ char *yaml = NULL;
		uint64_t port = 0;

		(void)json_get_u64(logs, "port", &port);
		/* Grafana's provisioning format; the sidecar loads it */
		if (asprintf(&yaml,
			     "apiVersion: 1\ndatasources:\n  - name: Loki\n    type: loki\n    uid: devopslab-loki\n"
			     "    access: proxy\n    url: http://%s.%s.svc:%" PRIu64 "\n    jsonData:\n      maxLines: 1000\n",
			     json_get_string(logs, "service") ?: "?", ns, port) < 0)
			yaml = NULL;
		snprintf(w[n].path, sizeof(w[n].path), "/api/v1/namespaces/%s/configmaps/" LOKI_DATASOURCE, ns);
		w[n].obj = object("ConfigMap", ns, LOKI_DATASOURCE, "data");
		if (!yaml || !w[n].obj ||
		    json_add_string(json_get_object(json_get_object(w[n].obj, "metadata"), "labels"), DATASOURCE_LABEL,
				    "1") < 0 ||
		    json_add_string(json_get_object(w[n].obj, "data"), "loki.yaml", yaml) < 0)
			r = -ENOMEM;
		n++;
	}
	if (r < 0) {
		kube_wants_done(w, n);
		return run_ctx_error(ctx, r, "out of memory");
	}
	*ret_n = n;
	return 0;
}

/* A service of the stack through the API server's service proxy. */
static void proxy_path(const struct step *s, const char *which, const char *rest, char *buf, size_t size)
{
	struct json_object *svc = json_get_object(s->params, which);
	uint64_t port = 0;

	(void)json_get_u64(svc, "port", &port);
	snprintf(buf, size, "/api/v1/namespaces/%s/services/http:%s:%" PRIu64 "/proxy%s",
		 json_get_string(s->params, "namespace") ?: "?", json_get_string(svc, "service") ?: "?", port, rest);
}

struct state {
	size_t diff;      /* objects that differ from ours */
	size_t n, up;     /* the plan's static targets, and how many are up */
	bool grafana;     /* Grafana answered its health check */
	size_t logs_n, logs_have; /* the sources of logs, and how many Loki has */
	char why[512];    /* what is not there yet */
};

static int survey(struct run_ctx *ctx, const struct step *s, struct kube_want *w, size_t nw, bool apply,
		  struct state *st)
{
	struct monitoring_cfg *g = mcfg(ctx);
	struct kube_client *k = k3s_kube(g->k3s);
	_cleanup_json_ struct json_object *targets = NULL, *health = NULL;
	char path[512];
	int r;

	*st = (struct state){};
	for (size_t i = 0; i < nw; i++) {
		_cleanup_json_ struct json_object *have = NULL;
		bool differs = false;

		r = kube_ensure(k, w[i].path, MONITORING_MANAGER, w[i].obj, apply, &differs, &have);
		if (r < 0)
			return run_ctx_error(ctx, r, "%s: %s", w[i].path, kube_error(k));
		if (differs && apply)
			progress(g, "%s %s", w[i].path, have ? "differs from ours: setting it back" : "is new: applied");
		st->diff += differs;
	}
	proxy_path(s, "prometheus", "/api/v1/targets", path, sizeof(path));
	r = kube_get(k, path, &targets);
	if (r >= 0)
		monitoring_targets(s->params, targets, &st->n, &st->up, st->why, sizeof(st->why));
	else if (r == -EAGAIN || r == -ENOENT || r == -EIO || r == -EPROTO)
		snprintf(st->why, sizeof(st->why), "Prometheus does not answer yet (%s)", kube_error(k));
	else
		return run_ctx_error(ctx, r, "Prometheus through the API server: %s", kube_error(k));
	proxy_path(s, "grafana", "/api/health", path, sizeof(path));
	r = kube_get(k, path, &health);
	st->grafana = r >= 0 && streq_ptr(json_get_string(health, "database"), "ok");
	if (!st->grafana && !st->why[0])
		snprintf(st->why, sizeof(st->why), "Grafana does not answer yet (%s)",
			 r < 0 ? kube_error(k) : "its database is not ok");
	if (json_get_object(s->params, "logs")) {
		char why[sizeof(st->why)] = "";

		r = log_sources(k, json_get_string(s->params, "namespace"), json_get_object(s->params, "logs"),
				&st->logs_n, &st->logs_have, why, sizeof(why));
		if (r < 0)
			return run_ctx_error(ctx, r, "Loki through the API server: %s", kube_error(k));
		if (!st->why[0])
			snprintf(st->why, sizeof(st->why), "%s", why);
	}
	return 0;
}

static bool done(const struct state *st)
{
	return st->diff == 0 && st->n > 0 && st->up == st->n && st->grafana && st->logs_have == st->logs_n;
}

static int monitoring_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct kube_want w[2 + DASHBOARDS_MAX];
	struct state st;
	size_t n = 0;
	int r;

	if (!mcfg(ctx))
		return run_ctx_error(ctx, -EINVAL, "%s: no monitoring context", s->id);
	r = wants(ctx, s, w, &n);
	if (r < 0)
		return r;
	r = survey(ctx, s, w, n, false, &st);
	kube_wants_done(w, n);
	*ret_done = r >= 0 && done(&st);
	return r;
}

static int monitoring_apply(struct run_ctx *ctx, const struct step *s)
{
	struct monitoring_cfg *g = mcfg(ctx);
	uint64_t poll = g && g->poll_ms ? g->poll_ms : POLL_MS_DEFAULT;
	uint64_t timeout = g && g->timeout_ms ? g->timeout_ms : TIMEOUT_MS_DEFAULT, start;
	struct kube_want w[2 + DASHBOARDS_MAX];
	struct json_object *res;
	char said[sizeof(((struct state *)0)->why) + 64] = "", now[sizeof(said)];
	struct state st;
	size_t n = 0;
	int r;

	if (!g)
		return run_ctx_error(ctx, -EINVAL, "%s: no monitoring context", s->id);
	r = wants(ctx, s, w, &n);
	if (r < 0)
		return r;
	start = http_now_ms();
	for (r = survey(ctx, s, w, n, true, &st); r >= 0 && !done(&st); r = survey(ctx, s, w, n, true, &st)) {
		snprintf(now, sizeof(now), "%zu of %zu targets up%s%s", st.up, st.n, st.why[0] ? "; " : "", st.why);
		if (http_now_ms() - start >= timeout) {
			r = run_ctx_error(ctx, -ETIMEDOUT, "the metrics%s are not all there after %" PRIu64 " s: %s",
					  st.logs_n ? " and logs" : "",
					  timeout / 1000, now);
			break;
		}
		if (!streq(now, said)) {
			progress(g, "monitoring: %s", now);
			snprintf(said, sizeof(said), "%s", now);
		}
		sleep_ms(poll);
	}
	kube_wants_done(w, n);
	if (r < 0)
		return r;
	progress(g, "Prometheus scrapes all %zu targets of the plan; Grafana answers with %zu dashboards", st.n,
		 json_object_array_length(json_get_array(s->params, "dashboards")));
	if (st.logs_n)
		progress(g, "Loki has the logs of all %zu sources of the plan", st.logs_n);
	res = json_object_new_object();
	if (res && json_add_u64(res, "targets", st.n) >= 0)
		run_ctx_set_result(ctx, res);
	else
		json_object_put(res);
	return 0;
}

const struct step_ops monitoring_ops = { .check = monitoring_check, .apply = monitoring_apply };
