/* SPDX-License-Identifier: MIT */
/*
 * verify.c — the verification step; see verify.h.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "dns/dns.h"
#include "dns/resolve.h"
#include "gitops/gitops.h"
#include "monitoring/monitoring.h"
#include "registry/registry.h"
#include "k3s/k3s.h"
#include "k3s/kube.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/http.h"
#include "pve/pve-guest.h"
#include "pve/pve.h"
#include "util.h"
#include "verify.h"

#define ROWS_MAX 1024
#define NAMES_MAX 512

struct row {
	char check[24];
	char target[160];
	char answer[160];
	bool ok;
};

struct table {
	struct row *rows;
	size_t n;
	size_t failed;
};

static struct row *row_add(struct table *t, const char *check, bool ok)
{
	struct row *r;

	if (t->n >= ROWS_MAX)
		return NULL;
	r = &t->rows[t->n++];
	*r = (struct row){ .ok = ok };
	snprintf(r->check, sizeof(r->check), "%s", check);
	if (!ok)
		t->failed++;
	return r;
}

static void row(struct table *t, const char *check, bool ok, const char *target, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void row(struct table *t, const char *check, bool ok, const char *target, const char *fmt, ...)
{
	struct row *r = row_add(t, check, ok);
	va_list ap;

	if (!r)
		return;
	snprintf(r->target, sizeof(r->target), "%s", target);
	va_start(ap, fmt);
	vsnprintf(r->answer, sizeof(r->answer), fmt, ap);
	va_end(ap);
}

/* The string array key of the step's parameters into v (borrowed). */
static size_t strings(const struct step *s, const char *key, const char **v, size_t max)
{
	struct json_object *a = json_get_array(s->params, key);
	size_t n = 0;

	for (size_t i = 0; a && i < json_object_array_length(a) && n < max; i++) {
		const char *x = json_object_get_string(json_object_array_get_idx(a, i));

		if (x)
			v[n++] = x;
	}
	return n;
}

static bool has_check(const struct step *s, const char *name)
{
	const char *v[8];
	size_t n = strings(s, "checks", v, ELEMENTSOF(v));

	for (size_t i = 0; i < n; i++)
		if (streq(v[i], name))
			return true;
	return false;
}

static void check_quorum(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	struct pve_cluster_status st;
	uint64_t want = 0;
	size_t online = 0;
	int r = pve_cluster_status(c->pve, &st);

	(void)step_param_u64(s, "nodes", &want);
	if (r < 0) {
		row(t, "quorum", false, "the Proxmox cluster", "%s", pve_client_error(c->pve));
		return;
	}
	for (size_t i = 0; i < st.n_members; i++)
		online += st.members[i].online;
	row(t, "quorum", st.in_cluster && st.quorate && online == want, st.in_cluster ? st.name : "the Proxmox cluster",
	    "%s, %zu of %" PRIu64 " nodes online", st.quorate ? "quorate" : "NOT quorate", online, want);
}

static void check_vms(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	_cleanup_free_ struct pve_guest *g = NULL;
	const char *names[NAMES_MAX];
	size_t n = strings(s, "vm_names", names, NAMES_MAX), ng = 0;
	int r = pve_cluster_guests(c->pve, &g, &ng);

	for (size_t i = 0; i < n; i++) {
		const struct pve_guest *found = NULL;

		for (size_t k = 0; r >= 0 && k < ng && !found; k++)
			if (!g[k].template && streq(g[k].name, names[i]))
				found = &g[k];
		if (r < 0)
			row(t, "vm", false, names[i], "%s", pve_client_error(c->pve));
		else if (!found)
			row(t, "vm", false, names[i], "no such VM");
		else
			row(t, "vm", streq(found->status, "running"), names[i], "%s on %s (VMID %u)", found->status,
			    found->node, found->vmid);
	}
}

static void check_k3s(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	const char *names[NAMES_MAX];
	bool ready[NAMES_MAX];
	char why[256] = "";
	size_t n = strings(s, "k3s_nodes", names, NAMES_MAX);
	int r = c->k3s ? k3s_nodes_ready(c->k3s, names, n, ready, why, sizeof(why)) : -ENOTCONN;

	for (size_t i = 0; i < n; i++)
		if (r < 0)
			row(t, "k3s node", false, names[i], "%s", why[0] ? why : "no K3s context");
		else
			row(t, "k3s node", ready[i], names[i], "%s", ready[i] ? "Ready" : "not Ready (or not a node)");
}

/* Argo CD's root Application: Synced to a commit and Healthy, by its own
 * word (its status). */
static void check_gitops(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	struct json_object *g = json_get_object(s->params, "gitops");
	const char *ns = json_get_string(g, "namespace"), *app = json_get_string(g, "application");
	_cleanup_json_ struct json_object *have = NULL;
	struct gitops_app_state st;
	char path[256], target[128];
	int r;

	snprintf(target, sizeof(target), "Application %s/%s", ns ? ns : "?", app ? app : "?");
	if (!ns || !app || !c->k3s) {
		row(t, "gitops", false, target, "%s", c->k3s ? "no Application in the step's parameters" : "no K3s context");
		return;
	}
	snprintf(path, sizeof(path), "/apis/argoproj.io/v1alpha1/namespaces/%s/applications/%s", ns, app);
	r = kube_get(k3s_kube(c->k3s), path, &have);
	if (r < 0) {
		row(t, "gitops", false, target, "%s", r == -ENOENT ? "no such Application" : kube_error(k3s_kube(c->k3s)));
		return;
	}
	gitops_app_state(NULL, have, &st);
	if (streq(st.sync, "Synced") && st.revision[0] && streq(st.health, "Healthy"))
		row(t, "gitops", true, target, "Synced to %.12s, Healthy", st.revision);
	else
		row(t, "gitops", false, target, "sync %s, health %s%s%s", st.sync[0] ? st.sync : "-",
		    st.health[0] ? st.health : "-", st.problem[0] ? ": " : "", st.problem);
}

/* The lab's registry: every image the seeding recorded is listed by the
 * registry (through the API server's service proxy). */
static void check_registry(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	struct json_object *rg = json_get_object(s->params, "registry");
	char target[128], why[384] = "";
	size_t n = 0, have = 0;
	int r = -ENOTCONN;

	snprintf(target, sizeof(target), "registry %s/%s", json_get_string(rg, "namespace") ?: "?",
		 json_get_string(rg, "name") ?: "?");
	if (c->k3s)
		r = registry_seeded(k3s_kube(c->k3s), rg, &n, &have, why, sizeof(why));
	if (r < 0)
		row(t, "registry", false, target, "%s", c->k3s ? kube_error(k3s_kube(c->k3s)) : "no K3s context");
	else
		row(t, "registry", have == n, target, "%zu of %zu seeded images listed%s%s", have, n, why[0] ? "; " : "",
		    why);
}

/* Prometheus's targets (through the API server's service proxy): one row
 * per static job of the plan, all its targets up. */
static void check_metrics(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	struct json_object *mon = json_get_object(s->params, "monitoring"), *jobs = json_get_array(mon, "jobs");
	struct json_object *svc = json_get_object(mon, "prometheus");
	_cleanup_json_ struct json_object *answer = NULL;
	char path[384];
	uint64_t port = 0;
	int r = -ENOTCONN;

	(void)json_get_u64(svc, "port", &port);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/http:%s:%" PRIu64 "/proxy/api/v1/targets",
		 json_get_string(mon, "namespace") ?: "?", json_get_string(svc, "service") ?: "?", port);
	if (c->k3s)
		r = kube_get(k3s_kube(c->k3s), path, &answer);
	for (size_t i = 0; jobs && i < json_object_array_length(jobs); i++) {
		struct json_object *job = json_object_array_get_idx(jobs, i), *one = json_object_new_object();
		struct json_object *list = json_object_new_array();
		char target[96], why[384];
		size_t n = 0, up = 0;

		snprintf(target, sizeof(target), "Prometheus job %s", json_get_string(job, "name") ?: "?");
		if (r < 0) {
			row(t, "metrics", false, target, "%s", c->k3s ? kube_error(k3s_kube(c->k3s)) : "no K3s context");
		} else if (!one || !list || json_array_add(list, json_object_get(job)) < 0 ||
			   json_add(one, "jobs", TAKE_PTR(list)) < 0) {
			row(t, "metrics", false, target, "out of memory");
		} else {
			monitoring_targets(one, answer, &n, &up, why, sizeof(why));
			row(t, "metrics", n > 0 && up == n, target, "%zu of %zu targets up%s%s", up, n, why[0] ? "; " : "",
			    why);
		}
		json_object_put(list);
		json_object_put(one);
	}
}

/* The log store: one row per source of the plan, Loki with a stream of
 * it (through the API server's service proxy). */
static void check_logs(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	struct json_object *mon = json_get_object(s->params, "monitoring"), *logs = json_get_object(mon, "logs");
	struct json_object *src = json_get_array(logs, "sources");

	for (size_t i = 0; src && i < json_object_array_length(src); i++) {
		struct json_object *e = json_object_array_get_idx(src, i);
		size_t n = 0;
		int r = -ENOTCONN;

		if (c->k3s)
			r = monitoring_log_streams(k3s_kube(c->k3s), json_get_string(mon, "namespace"), logs,
						   json_get_string(e, "selector"), &n);
		if (r < 0)
			row(t, "logs", false, json_get_string(e, "name") ?: "?", "%s",
			    !c->k3s ? "no K3s context" : r == -EPROTO ? "not Loki's answer" : kube_error(k3s_kube(c->k3s)));
		else
			row(t, "logs", n > 0, json_get_string(e, "name") ?: "?", "%zu stream%s %s", n, n == 1 ? "" : "s",
			    json_get_string(e, "selector") ?: "");
	}
}

/* Whether the answer holds the planned value (names without case or the
 * final dot). */
static bool answered(const struct dns_answer *a, const char *type, const char *value)
{
	size_t n = strlen(value);

	if (n && value[n - 1] == '.' && !streq(type, "TXT"))
		n--;
	for (size_t i = 0; i < a->n; i++)
		if (streq(type, "TXT") ? streq(a->v[i], value)
				       : strlen(a->v[i]) == n && strncasecmp(a->v[i], value, n) == 0)
			return true;
	return false;
}

static void check_dns(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	struct json_object *servers = json_get_array(s->params, "dns_servers");
	struct json_object *names = json_get_array(s->params, "dns_names");

	for (size_t i = 0; servers && i < json_object_array_length(servers); i++) {
		struct json_object *sv = json_object_array_get_idx(servers, i);
		const char *vm = json_get_string(sv, "vm"), *ip = json_get_string(sv, "ip");
		char host[64], target[160];
		unsigned port = 53;

		if (!vm || !ip || !c->dns || dns_query_endpoint(c->dns, vm, ip, host, &port) < 0) {
			row(t, "dns", false, vm ? vm : "?", "no DNS context for it");
			continue;
		}
		for (size_t k = 0; names && k < json_object_array_length(names); k++) {
			struct json_object *q = json_object_array_get_idx(names, k);
			const char *name = json_get_string(q, "name"), *type = json_get_string(q, "type"),
				   *value = json_get_string(q, "value");
			struct dns_answer a;
			char got[160] = "";
			size_t o = 0;
			int r;

			if (!name || !type || !value)
				continue;
			snprintf(target, sizeof(target), "%s %s @%s", name, type, vm);
			r = dns_resolve(host, port, name, type, 2, &a);
			for (size_t j = 0; r >= 0 && j < a.n && o < sizeof(got); j++) {
				int w = snprintf(got + o, sizeof(got) - o, "%s%s", j ? ", " : "", a.v[j]);

				o += w > 0 ? (size_t)w : 0;
			}
			if (r < 0)
				row(t, "dns", false, target, "no answer (%s)", strerror(-r));
			else if (a.n == 0)
				row(t, "dns", false, target, "%s, no %s record (want %s)",
				    a.rcode == 3 ? "NXDOMAIN" : a.rcode == 0 ? "NOERROR" : "an error", type, value);
			else
				row(t, "dns", answered(&a, type, value), target, "%s%s%s", got,
				    answered(&a, type, value) ? "" : ", want ", answered(&a, type, value) ? "" : value);
		}
	}
}

/* Where the first DNS server answers (the edge's names are asked of it). */
static int first_dns(const struct verify_cfg *c, const struct step *s, char host[static 64], unsigned *port)
{
	struct json_object *sv = json_object_array_get_idx(json_get_array(s->params, "dns_servers"), 0);
	const char *vm = json_get_string(sv, "vm"), *ip = json_get_string(sv, "ip");

	if (!c->dns || !vm || !ip)
		return -ENOENT;
	return dns_query_endpoint(c->dns, vm, ip, host, port);
}

/* One route: its name resolves to the edge's address (when the lab has DNS),
 * and an HTTPS request through the edge, the chain checked against the
 * cluster CA (or the ACME CA's roots) and the name, answers as planned:
 * "ok" 2xx/3xx, else that status. */
static void check_route(const struct verify_cfg *c, const struct step *s, struct json_object *route,
			const char *edge_ip, struct table *t)
{
	const char *host = json_get_string(route, "host"), *path = json_get_string(route, "path"),
		   *expect = json_get_string(route, "expect");
	struct http_opts o = { .connect_timeout_ms = 5000, .request_timeout_ms = 10000, .max_attempts = 1,
			       .max_body = 1 << 20 };
	_cleanup_(http_transport_freep) struct http_transport *tr = NULL;
	struct http_request req = { .method = HTTP_GET, .path = path, .idempotent = true };
	struct http_response rsp = {};
	const char *trust = c->edge_ca_file ? c->edge_ca_file : c->ca_file;
	char url[300], target[300], dns_host[64];
	unsigned port = 53;
	bool ok;
	int r;

	if (!host || !path || !expect)
		return;
	snprintf(target, sizeof(target), "https://%s%s", host, path);
	if (first_dns(c, s, dns_host, &port) >= 0) {
		struct dns_answer a;

		r = dns_resolve(dns_host, port, host, "A", 2, &a);
		if (r < 0 || a.n == 0) {
			row(t, "edge", false, target, "%s does not resolve (%s)", host,
			    r < 0 ? strerror(-r) : a.rcode == 3 ? "NXDOMAIN" : "no A record");
			return;
		}
		if (!answered(&a, "A", edge_ip)) {
			row(t, "edge", false, target, "%s resolves to %s, not the edge's %s", host, a.v[0], edge_ip);
			return;
		}
	}
	snprintf(o.connect_to, sizeof(o.connect_to), "%s:443:%s", host, c->edge_connect ? c->edge_connect : edge_ip);
	if (!c->edge_connect)
		strncat(o.connect_to, ":443", sizeof(o.connect_to) - strlen(o.connect_to) - 1);
	snprintf(url, sizeof(url), "https://%s", host);
	tr = http_transport_new(url, &o);
	if (!tr || !trust || http_transport_ca(tr, trust) < 0) {
		row(t, "edge", false, target, "no HTTPS client (trusting %s)", trust ? trust : "nothing");
		return;
	}
	r = http_request(tr, &req, &rsp);
	if (r < 0) {
		row(t, "edge", false, target, "%s", http_transport_error(tr));
		return;
	}
	ok = streq(expect, "ok") ? rsp.status >= 200 && rsp.status < 400 : rsp.status == strtol(expect, NULL, 10);
	row(t, "edge", ok, target, "HTTP %ld, certificate by the %s CA%s%s", rsp.status, c->edge_ca_file ? "ACME" : "cluster", ok ? "" : "; want ",
	    ok ? "" : streq(expect, "ok") ? "2xx or 3xx" : expect);
	http_response_done(&rsp);
}

static void check_edge(const struct verify_cfg *c, const struct step *s, struct table *t)
{
	struct json_object *e = json_get_object(s->params, "edge"), *routes = json_get_array(e, "routes");
	const char *ip = json_get_string(e, "ip");

	if (!ip || !routes) {
		row(t, "edge", false, "the edge", "no routes in the step's parameters");
		return;
	}
	for (size_t i = 0; i < json_object_array_length(routes); i++)
		check_route(c, s, json_object_array_get_idx(routes, i), ip, t);
}

/* Every check once into t. */
static int survey(struct run_ctx *ctx, const struct step *s, struct table *t)
{
	const struct verify_cfg *c = ctx->verify;

	if (!c || !c->pve)
		return run_ctx_error(ctx, -EINVAL, "no verification context for %s", s->id);
	t->n = t->failed = 0;
	if (has_check(s, "quorum"))
		check_quorum(c, s, t);
	if (has_check(s, "vms-running"))
		check_vms(c, s, t);
	if (has_check(s, "k3s-nodes-ready"))
		check_k3s(c, s, t);
	if (has_check(s, "dns-resolves"))
		check_dns(c, s, t);
	if (has_check(s, "edge-https"))
		check_edge(c, s, t);
	if (has_check(s, "gitops-synced"))
		check_gitops(c, s, t);
	if (has_check(s, "registry-images"))
		check_registry(c, s, t);
	if (has_check(s, "metrics-targets"))
		check_metrics(c, s, t);
	if (has_check(s, "logs-sources"))
		check_logs(c, s, t);
	return 0;
}

static void print_table(const struct verify_cfg *c, const struct table *t)
{
	FILE *f = c->out ? c->out : stdout;
	int wc = 5, wt = 6;

	for (size_t i = 0; i < t->n; i++) {
		wc = (int)strlen(t->rows[i].check) > wc ? (int)strlen(t->rows[i].check) : wc;
		wt = (int)strlen(t->rows[i].target) > wt ? (int)strlen(t->rows[i].target) : wt;
	}
	fprintf(f, "%-*s  %-*s  %-4s  %s\n", wc, "check", wt, "target", "ok", "answer");
	for (size_t i = 0; i < t->n; i++)
		fprintf(f, "%-*s  %-*s  %-4s  %s\n", wc, t->rows[i].check, wt, t->rows[i].target,
			t->rows[i].ok ? "yes" : "NO", t->rows[i].answer);
	fprintf(f, "%zu of %zu answered as planned\n", t->n - t->failed, t->n);
	fflush(f);
}

/* The table into c->rows for the report (best effort: a report without
 * it says so). */
static void keep_rows(struct verify_cfg *c, const struct table *t)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < t->n; i++) {
		struct json_object *o = json_object_new_object();

		if (!o || json_add_string(o, "check", t->rows[i].check) < 0 ||
		    json_add_string(o, "target", t->rows[i].target) < 0 || json_add_bool(o, "ok", t->rows[i].ok) < 0 ||
		    json_add_string(o, "answer", t->rows[i].answer) < 0) {
			json_object_put(o);
			o = NULL;
		}
		if (json_array_add(a, o) < 0) { /* puts o */
			json_object_put(a);
			a = NULL;
		}
	}
	json_object_put(c->rows);
	c->rows = a;
}

static int verify_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct table t = { .rows = calloc(ROWS_MAX, sizeof(struct row)) };
	int r;

	if (!t.rows)
		return -ENOMEM;
	r = survey(ctx, s, &t);
	*ret_done = r >= 0 && t.n > 0 && t.failed == 0;
	if (*ret_done) {
		print_table(ctx->verify, &t);
		keep_rows(ctx->verify, &t);
	}
	free(t.rows);
	return r;
}

static int verify_apply(struct run_ctx *ctx, const struct step *s)
{
	const struct verify_cfg *c = ctx->verify;
	struct table t = { .rows = calloc(ROWS_MAX, sizeof(struct row)) };
	uint64_t poll = c && c->poll_ms ? c->poll_ms : 2000;
	uint64_t deadline = http_now_ms() + (c && c->timeout_ms ? c->timeout_ms : 3 * 60 * 1000);
	char first[400] = "";
	int r;

	if (!t.rows)
		return -ENOMEM;
	for (;;) {
		r = survey(ctx, s, &t);
		if (r < 0 || t.failed == 0 || http_now_ms() >= deadline)
			break;
		sleep_ms(poll);
	}
	if (r >= 0) {
		print_table(c, &t);
		keep_rows(ctx->verify, &t);
	}
	for (size_t i = 0; r >= 0 && i < t.n; i++)
		if (!t.rows[i].ok) {
			snprintf(first, sizeof(first), "%s %s: %s", t.rows[i].check, t.rows[i].target, t.rows[i].answer);
			break;
		}
	if (r >= 0 && t.failed)
		r = run_ctx_error(ctx, -EIO, "%zu of %zu checks did not answer as planned; the first: %s", t.failed, t.n,
				  first);
	if (r >= 0) {
		struct json_object *res = json_object_new_object();

		if (res) {
			json_add_u64(res, "checks", t.n);
			run_ctx_set_result(ctx, res);
		}
	}
	free(t.rows);
	return r;
}

const struct step_ops verify_ops = { .check = verify_check, .apply = verify_apply };
