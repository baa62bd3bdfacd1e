/* SPDX-License-Identifier: MIT */
/*
 * edge.c — the steps edge-traefik, edge-certs and edge-routes (edge.h,
 * docs/edge.md): each builds the objects it wants, compares them with the
 * cluster's (kube_has: every field of ours as we want it) and applies only
 * those that differ, server-side, as field manager "devopslab".
 */
#define _GNU_SOURCE 1
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme.h"
#include "base64.h"
#include "dns/dns.h"
#include "edge.h"
#include "fileio.h"
#include "k3s/k3s.h"
#include "k3s/kube.h"
#include "log.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/cert.h"
#include "pve/http.h"

#define CA_PEM_MAX (64u << 10)
#define OBJ_TEXT_MAX 8192
#define HELM_LOG_TAIL 1024
#define HELM_RESTARTS_MAX 3 /* helm failing that often on the same values is failing */
#define TRAEFIK_SVC "/api/v1/namespaces/kube-system/services/traefik"
#define TRAEFIK_CHART "/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/traefik"
#define TRAEFIK_JOB "/apis/batch/v1/namespaces/kube-system/jobs/helm-install-traefik"
#define TRAEFIK_PODS "/api/v1/namespaces/kube-system/pods?labelSelector=job-name%3Dhelm-install-traefik"
#define KUBE_VIP_LB_IPS "kube-vip.io/loadbalancerIPs"
#define LABELS "\"labels\":{\"app.kubernetes.io/managed-by\":\"" EDGE_MANAGER "\"}"
#define TRAEFIK_API "/apis/traefik.io/v1alpha1/namespaces/"
#define APP_ALLOW "devopslab-allow"         /* an in-cluster UI's namespace: the allow-list */
#define APP_RATELIMIT "devopslab-ratelimit" /* and the rate limit */

struct edge_ctx {
	struct edge_cfg cfg;
	char *ca_pem;
	char *password; /* secret */
};

int edge_ctx_new(const struct edge_cfg *cfg, struct edge_ctx **ret)
{
	_cleanup_(edge_ctx_freep) struct edge_ctx *e = NULL;
	_cleanup_close_ int fd = -1;
	size_t n = 0;
	int r;

	if (!cfg->k3s || !cfg->ca_file || !cfg->ca_key_file)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->cfg.dashboard_password = NULL;
	if (!e->cfg.poll_ms)
		e->cfg.poll_ms = 2000;
	if (!e->cfg.timeout_ms)
		e->cfg.timeout_ms = 10 * 60 * 1000;
	if (!e->cfg.acme_ca_file)
		e->cfg.acme_ca_file = EDGE_SYSTEM_CAS;
	fd = open(cfg->ca_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	r = fd < 0 ? negative_errno() : read_fd_capped(fd, CA_PEM_MAX, &e->ca_pem, &n);
	if (r < 0)
		return r;
	if (n > CA_PEM_MAX || !strstr(e->ca_pem, "-----BEGIN CERTIFICATE-----"))
		return -EBADMSG;
	if (cfg->dashboard_password && !(e->password = strdup(cfg->dashboard_password)))
		return -ENOMEM;
	*ret = TAKE_PTR(e);
	return 0;
}

const char *edge_acme_trust(const struct edge_ctx *e)
{
	return e->cfg.acme_ca_file;
}

struct edge_ctx *edge_ctx_free(struct edge_ctx *e)
{
	if (!e)
		return NULL;
	free(e->ca_pem);
	if (e->password)
		explicit_wipe(e->password, strlen(e->password));
	free(e->password);
	free(e);
	return NULL;
}

static void progress(struct edge_ctx *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct edge_ctx *e, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e->cfg.progress)
		e->cfg.progress(e->cfg.userdata, msg);
	else
		log_info("%s", msg);
}

/* ---- values and objects (no network) --------------------------------------- */

int edge_chart_major(const char *chart)
{
	const char *p = chart ? strrchr(chart, '/') : NULL;
	const char *up;
	long v;

	p = p ? p + 1 : chart;
	if (!p || strncmp(p, "traefik-", 8) != 0 || p[8] < '0' || p[8] > '9') /* not traefik-crd-... */
		return -EINVAL;
	up = strstr(p, "+up"); /* K3s's builds: the upstream version after it */
	p = up ? up + 3 : p + 8;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	v = strtol(p, NULL, 10);
	return v > 0 && v < 1000 ? (int)v : -EINVAL;
}

/* An object from JSON text (printf-style); values that are not names or
 * numbers of ours are added with json-c afterwards, never formatted in. */
static struct json_object *jfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct json_object *jfmt(const char *fmt, ...)
{
	char buf[OBJ_TEXT_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;
	return json_tokener_parse(buf);
}

int edge_traefik_values(int major, const char *ip, char **ret)
{
	/* chart 39 moved the entry point's HTTP options under ports.*.http
	 * and refuses the old keys; up to 38 only the old ones exist */
	static const char redirect[] = "{\"entryPoint\":{\"to\":\"websecure\",\"scheme\":\"https\",\"permanent\":true}}";
	_cleanup_json_ struct json_object *v = NULL;
	const char *s;

	/* kube-vip announces ip from one node: a Traefik on every node and
	 * the Local traffic policy keep the client's address (no SNAT by
	 * kube-proxy), which the allow-list and the rate limit need */
	/* metrics: Prometheus's format on the chart's "metrics" entry point
	 * (:9100 in the pod, not exposed), with a Service of its own for the
	 * lab's Prometheus (docs/monitoring.md); access logs as JSON on
	 * stdout, for the log store */
#define SERVICE                                                                                        \
	"\"deployment\":{\"kind\":\"DaemonSet\"},\"service\":{\"annotations\":{\"" KUBE_VIP_LB_IPS "\":\"%s\"}," \
	"\"spec\":{\"externalTrafficPolicy\":\"Local\"}},"                                                   \
	"\"metrics\":{\"prometheus\":{\"entryPoint\":\"metrics\",\"addRoutersLabels\":true,"                  \
	"\"service\":{\"enabled\":true}}},\"logs\":{\"access\":{\"enabled\":true,\"format\":\"json\"}}"
	if (major >= 39)
		v = jfmt("{" SERVICE ",\"ports\":{\"web\":{\"http\":{\"redirections\":%s}}}}", ip, redirect);
	else
		v = jfmt("{" SERVICE ",\"ports\":{\"web\":{\"redirections\":%s}}}", ip, redirect);
#undef SERVICE
	s = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : NULL;
	if (!s)
		return -ENOMEM;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int b64(const char *s, char **ret)
{
	return base64_encode(s, strlen(s), ret);
}

/* data[key] of a Secret, decoded (NUL-terminated); NULL when absent. */
static char *secret_value(struct json_object *secret, const char *key)
{
	const char *v = json_get_string(json_get_object(secret, "data"), key);
	uint8_t *d = NULL;
	size_t n = 0;
	char *s;

	if (!v || base64_decode(v, strlen(v), &d, &n) < 0)
		return NULL;
	s = malloc(n + 1);
	if (s) {
		memcpy(s, d, n);
		s[n] = '\0';
	}
	explicit_wipe(d, n);
	free(d);
	return s;
}

/* ---- compare, then apply ----------------------------------------------------- */

/* Each object that differs from ours: counted, and applied when apply. */
static int converge(struct run_ctx *ctx, struct edge_ctx *e, struct kube_want *w, size_t n, bool apply, size_t *ret_diff)
{
	struct kube_client *k = k3s_kube(e->cfg.k3s);
	size_t diff = 0;

	for (size_t i = 0; i < n; i++) {
		_cleanup_json_ struct json_object *have = NULL;
		int r;

		if (!w[i].obj)
			return run_ctx_error(ctx, -ENOMEM, "out of memory");
		r = kube_get(k, w[i].path, &have);
		if (r < 0 && r != -ENOENT)
			return run_ctx_error(ctx, r, "%s", kube_error(k));
		if (r >= 0 && kube_has(w[i].obj, have))
			continue;
		diff++;
		if (!apply)
			continue;
		if (r >= 0)
			progress(e, "%s differs from ours: setting it back", w[i].path);
		r = kube_apply(k, w[i].path, EDGE_MANAGER, w[i].obj, NULL);
		if (r < 0)
			return run_ctx_error(ctx, r, "%s", kube_error(k));
	}
	*ret_diff = diff;
	return 0;
}

/* ---- edge-traefik ------------------------------------------------------------ */

static struct edge_ctx *ectx(struct run_ctx *ctx)
{
	return ctx->edge;
}

/* Service kube-system/traefik answers on ip through kube-vip. */
static bool service_ready(struct json_object *svc, const char *ip)
{
	struct json_object *ingress =
		json_get_array(json_get_object(json_get_object(svc, "status"), "loadBalancer"), "ingress");
	struct json_object *spec = json_get_object(svc, "spec");

	return streq_ptr(json_get_string(json_get_object(json_get_object(svc, "metadata"), "annotations"),
					 KUBE_VIP_LB_IPS),
			 ip) &&
	       streq_ptr(json_get_string(spec, "externalTrafficPolicy"), "Local") && ingress &&
	       json_object_array_length(ingress) > 0 &&
	       streq_ptr(json_get_string(json_object_array_get_idx(ingress, 0), "ip"), ip);
}

/* helm's install job for Traefik: 0 complete, -EAGAIN running, else the
 * failure in ctx->error (helm's own words, from its pod's log). */
static int helm_state(struct run_ctx *ctx, struct kube_client *k)
{
	_cleanup_json_ struct json_object *job = NULL, *pods = NULL;
	_cleanup_free_ char *log = NULL;
	struct kube_pod *v = NULL;
	struct kube_job j;
	size_t n = 0;
	unsigned worst = 0;
	const char *name = NULL;
	char path[512];
	int r = kube_get(k, TRAEFIK_JOB, &job);

	if (r == -ENOENT)
		return -EAGAIN;
	if (r >= 0)
		r = kube_decode_job(job, &j);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", kube_error(k));
	if (j.complete)
		return 0;
	if (kube_get(k, TRAEFIK_PODS, &pods) >= 0 && kube_decode_pods(pods, &v, &n) >= 0)
		for (size_t i = 0; i < n; i++)
			if (v[i].restarts >= worst) {
				worst = v[i].restarts;
				name = v[i].name;
			}
	if (!j.failed && worst < HELM_RESTARTS_MAX) {
		free(v);
		return -EAGAIN;
	}
	if (name && snprintf(path, sizeof(path), "/api/v1/namespaces/kube-system/pods/%s/log?previous=true", name) <
			    (int)sizeof(path))
		(void)kube_get_text(k, path, HELM_LOG_TAIL, &log);
	free(v);
	return run_ctx_error(ctx, -EPROTO, "helm cannot install Traefik with our values%s%s%s%s",
			     j.failed ? ": " : "", j.failed ? j.message : "", log ? "; helm said: " : "",
			     log ? log : "");
}

static int traefik_run(struct run_ctx *ctx, const struct step *s, bool apply, bool *ret_done)
{
	struct edge_ctx *e = ectx(ctx);
	struct kube_client *k;
	const char *ip = step_param_string(s, "ip");
	_cleanup_json_ struct json_object *chart = NULL;
	_cleanup_free_ char *values = NULL;
	struct kube_want w = { .path = "/apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs/traefik" };
	uint64_t deadline;
	size_t diff = 0;
	int major, r;

	if (!e || !ip)
		return run_ctx_error(ctx, -EINVAL, "%s: no edge context or no ip", s->id);
	k = k3s_kube(e->cfg.k3s);
	r = kube_get(k, TRAEFIK_CHART, &chart);
	if (r == -ENOENT)
		return run_ctx_error(ctx, r, "K3s's packaged Traefik is not there (no HelmChart kube-system/traefik): "
					     "the edge needs it (k3s.disable must not name traefik)");
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", kube_error(k));
	major = edge_chart_major(json_get_string(json_get_object(chart, "spec"), "chart"));
	if (major < 0)
		return run_ctx_error(ctx, -EPROTO, "HelmChart kube-system/traefik names no Traefik chart version");
	r = edge_traefik_values(major, ip, &values);
	if (r < 0)
		return run_ctx_error(ctx, r, "out of memory");
	w.obj = jfmt("{\"apiVersion\":\"helm.cattle.io/v1\",\"kind\":\"HelmChartConfig\",\"metadata\":{\"name\":"
		     "\"traefik\",\"namespace\":\"kube-system\"," LABELS "},\"spec\":{}}");
	if (w.obj && json_add_string(json_get_object(w.obj, "spec"), "valuesContent", values) < 0)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	r = converge(ctx, e, &w, 1, apply, &diff);
	kube_wants_done(&w, 1);
	if (r < 0)
		return r;
	if (!apply) {
		_cleanup_json_ struct json_object *svc = NULL;

		*ret_done = diff == 0 && kube_get(k, TRAEFIK_SVC, &svc) >= 0 && service_ready(svc, ip) &&
			    helm_state(ctx, k) == 0;
		return 0;
	}
	progress(e, "Traefik (chart %d): waiting for helm and for kube-vip to announce %s", major, ip);
	deadline = http_now_ms() + e->cfg.timeout_ms;
	for (;;) {
		_cleanup_json_ struct json_object *svc = NULL;

		r = helm_state(ctx, k);
		if (r < 0 && r != -EAGAIN)
			return r;
		if (r == 0 && kube_get(k, TRAEFIK_SVC, &svc) >= 0 && service_ready(svc, ip))
			return 0;
		if (http_now_ms() >= deadline)
			return run_ctx_error(ctx, -ETIMEDOUT,
					     "Service kube-system/traefik has no address %s after %" PRIu64
					     " s (helm's job %s; kube-vip announces it only with svc_enable)",
					     ip, e->cfg.timeout_ms / 1000, r == 0 ? "completed" : "has not completed");
		sleep_ms(e->cfg.poll_ms);
	}
}

STEP_OPS_OF_RUN(edge_traefik_ops, traefik_run);

/* ---- edge-certs -------------------------------------------------------------- */

#define TLS_SECRET_PATH "/api/v1/namespaces/kube-system/secrets/" EDGE_TLS_SECRET

#define ACME_SECRET_PATH "/api/v1/namespaces/kube-system/secrets/" EDGE_ACME_SECRET

/* The ACME account's key (a secret): from Secret EDGE_ACME_SECRET, made
 * and stored there when there is none, so every renewal orders under the
 * same account. */
static int acme_account_key(struct run_ctx *ctx, struct edge_ctx *e, char **ret)
{
	struct kube_client *k = k3s_kube(e->cfg.k3s);
	_cleanup_json_ struct json_object *have = NULL, *obj = NULL;
	_cleanup_free_ char *key = NULL, *b = NULL;
	int r = kube_get(k, ACME_SECRET_PATH, &have);

	if (r < 0 && r != -ENOENT)
		return run_ctx_error(ctx, r, "%s", kube_error(k));
	if (r >= 0 && (key = secret_value(have, "key.pem"))) {
		*ret = TAKE_PTR(key);
		return 0;
	}
	r = acme_key_new(&key);
	if (r >= 0)
		r = b64(key, &b);
	if (r >= 0 && !(obj = jfmt("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"Opaque\",\"metadata\":"
				   "{\"name\":\"" EDGE_ACME_SECRET "\",\"namespace\":\"kube-system\"," LABELS "},"
				   "\"data\":{}}")))
		r = -ENOMEM;
	if (r >= 0)
		r = json_add_string(json_get_object(obj, "data"), "key.pem", b) < 0 ? -ENOMEM : 0;
	if (b)
		explicit_wipe(b, strlen(b));
	if (r < 0)
		r = run_ctx_error(ctx, r, "cannot make an ACME account key");
	else if ((r = kube_apply(k, ACME_SECRET_PATH, EDGE_MANAGER, obj, NULL)) < 0)
		r = run_ctx_error(ctx, r, "%s", kube_error(k));
	if (r < 0) {
		if (key)
			explicit_wipe(key, strlen(key));
		return r;
	}
	progress(e, "made a new ACME account key (Secret kube-system/" EDGE_ACME_SECRET ")");
	*ret = TAKE_PTR(key);
	return 0;
}

struct solver {
	struct run_ctx *ctx;
	struct edge_ctx *e;
};

static int solver_txt(void *userdata, const char *name, const char *const *values, size_t n)
{
	struct solver *sv = userdata;

	if (!sv->e->cfg.dns)
		return run_ctx_error(sv->ctx, -EINVAL, "ACME DNS-01 needs the lab's DNS (a dns section)");
	return dns_txt_publish(sv->ctx, sv->e->cfg.dns, name, values, n);
}

static void solver_progress(void *userdata, const char *msg)
{
	struct solver *sv = userdata;

	progress(sv->e, "%s", msg);
}

/* A certificate for names from the ACME CA of the step's acme.server. */
static int acme_issue(struct run_ctx *ctx, struct edge_ctx *e, const struct step *s, const char *const *names,
		      size_t n, char **ret_chain, char **ret_key)
{
	struct json_object *p = json_get_object(s->params, "acme");
	_cleanup_(acme_client_freep) struct acme_client *a = NULL;
	_cleanup_free_ char *key = NULL;
	struct solver sv = { .ctx = ctx, .e = e };
	const struct acme_solver solver = { .txt = solver_txt, .progress = solver_progress, .userdata = &sv };
	struct acme_cfg cfg = {
		.directory = json_get_string(p, "server"),
		.ca_file = e->cfg.acme_ca_file,
		.email = json_get_string(p, "email"),
		.http = e->cfg.acme_http,
		.poll_ms = e->cfg.poll_ms,
		.timeout_ms = e->cfg.timeout_ms,
	};
	int r;

	if (!cfg.directory)
		return run_ctx_error(ctx, -EINVAL, "%s: no acme.server", s->id);
	r = acme_account_key(ctx, e, &key);
	if (r < 0)
		return r;
	cfg.account_key = key;
	r = acme_client_new(&cfg, &a);
	explicit_wipe(key, strlen(key));
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot make the ACME client for %s: %s", cfg.directory,
				     r == -EINVAL ? "not an https:// URL, or the account key is not P-256" : strerror(-r));
	r = acme_order(a, names, n, &solver, ret_chain, ret_key);
	if (r < 0)
		return run_ctx_error(ctx, r, "ACME: %s", acme_error(a));
	return 0;
}

/* The Secret we want: the one there when it is still good, else (apply)
 * a new certificate, from the cluster CA or the ACME CA. *ret NULL when
 * none is good and !apply. */
static int tls_secret(struct run_ctx *ctx, struct edge_ctx *e, const struct step *s, bool apply,
		      struct json_object **ret)
{
	struct kube_client *k = k3s_kube(e->cfg.k3s);
	struct json_object *domains = json_get_array(s->params, "domains");
	const char *names[CERT_MAX_NAMES];
	struct cert_request req = { .days = 825 };
	_cleanup_json_ struct json_object *have = NULL, *obj = NULL;
	_cleanup_free_ char *chain = NULL, *key = NULL, *b_chain = NULL, *b_key = NULL;
	size_t n = domains ? json_object_array_length(domains) : 0;
	bool acme = streq_ptr(step_param_string(s, "mode"), "acme-dns01");
	const char *trust = acme ? e->cfg.acme_ca_file : e->cfg.ca_file;
	int r;

	if (n == 0 || n > CERT_MAX_NAMES)
		return run_ctx_error(ctx, -EINVAL, "%s: no domains", s->id);
	for (size_t i = 0; i < n; i++) {
		names[i] = json_object_get_string(json_object_array_get_idx(domains, i));
		req.dns[i] = names[i];
	}
	req.n_dns = n;
	req.common_name = names[0];
	r = kube_get(k, TLS_SECRET_PATH, &have);
	if (r < 0 && r != -ENOENT)
		return run_ctx_error(ctx, r, "%s", kube_error(k));
	if (r >= 0) {
		chain = secret_value(have, "tls.crt");
		key = secret_value(have, "tls.key");
		r = chain && key ? cert_check(trust, chain, key, names, n, EDGE_CERT_MIN_DAYS) : -EBADMSG;
		if (r >= 0) {
			b_chain = strdup(json_get_string(json_get_object(have, "data"), "tls.crt"));
			b_key = strdup(json_get_string(json_get_object(have, "data"), "tls.key"));
		} else if (apply)
			progress(e, "the edge certificate is issued again: %s", cert_error());
		if (key)
			explicit_wipe(key, strlen(key));
		free(TAKE_PTR(chain));
		free(TAKE_PTR(key));
	}
	if (!b_chain && !apply) {
		*ret = NULL;
		return 0;
	}
	if (!b_chain) {
		if (acme)
			r = acme_issue(ctx, e, s, names, n, &chain, &key);
		else if ((r = cert_issue(e->cfg.ca_file, e->cfg.ca_key_file, &req, &chain, &key)) < 0)
			r = run_ctx_error(ctx, r, "cannot issue the edge certificate: %s", cert_error());
		if (r < 0)
			return r;
		r = b64(chain, &b_chain);
		if (r >= 0)
			r = b64(key, &b_key);
		explicit_wipe(key, strlen(key));
		if (r < 0)
			return run_ctx_error(ctx, r, "out of memory");
		progress(e, "issued the edge certificate for %s %s", names[0],
			 acme ? "by the ACME CA" : "from the cluster CA");
	}
	if (!b_chain || !b_key)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	obj = jfmt("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"kubernetes.io/tls\",\"metadata\":{\"name\":"
		   "\"" EDGE_TLS_SECRET "\",\"namespace\":\"kube-system\"," LABELS "},\"data\":{}}");
	if (!obj || json_add_string(json_get_object(obj, "data"), "tls.crt", b_chain) < 0 ||
	    json_add_string(json_get_object(obj, "data"), "tls.key", b_key) < 0)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	explicit_wipe(b_key, strlen(b_key));
	*ret = TAKE_PTR(obj);
	return 0;
}

static int certs_run(struct run_ctx *ctx, const struct step *s, bool apply, bool *ret_done)
{
	struct edge_ctx *e = ectx(ctx);
	struct kube_want w[2] = { { .path = TLS_SECRET_PATH }, { .path = TRAEFIK_API "kube-system/tlsstores/default" } };
	size_t diff = 0;
	int r;

	if (!e)
		return run_ctx_error(ctx, -EINVAL, "%s: no edge context", s->id);
	r = tls_secret(ctx, e, s, apply, &w[0].obj);
	if (r < 0)
		return r;
	if (!w[0].obj) { /* no good certificate, and a check only */
		*ret_done = false;
		return 0;
	}
	w[1].obj = jfmt("{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"TLSStore\",\"metadata\":{\"name\":"
			"\"default\",\"namespace\":\"kube-system\"," LABELS "},\"spec\":{\"defaultCertificate\":{"
			"\"secretName\":\"" EDGE_TLS_SECRET "\"}}}");
	r = converge(ctx, e, w, 2, apply, &diff);
	kube_wants_done(w, 2);
	*ret_done = r >= 0 && diff == 0;
	return r;
}

STEP_OPS_OF_RUN(edge_certs_ops, certs_run);

/* ---- edge-routes ------------------------------------------------------------- */

#define ROUTES_MAX 8
#define APPS_MAX 8
#define WANTS_MAX (8 + 3 * ROUTES_MAX + 4 * APPS_MAX)
#define NS_PATH(kind) "/api/v1/namespaces/" EDGE_NAMESPACE "/" kind "/"
#define TR_PATH(kind) TRAEFIK_API EDGE_NAMESPACE "/" kind "/"
#define META(name) "\"metadata\":{\"name\":\"" name "\",\"namespace\":\"" EDGE_NAMESPACE "\"," LABELS "}"

/* The dashboard's htpasswd line: the one there when its hash is still our
 * password's (a bcrypt hash differs at each making), else a new one. */
static int dashboard_users(struct run_ctx *ctx, struct edge_ctx *e, const char *user, char **ret)
{
	struct kube_client *k = k3s_kube(e->cfg.k3s);
	_cleanup_json_ struct json_object *have = NULL;
	_cleanup_free_ char *old = NULL;
	struct crypt_data cd = {};
	char salt[CRYPT_GENSALT_OUTPUT_SIZE], *hash, *line;
	size_t u = strlen(user);
	int r;

	if (!e->password)
		return run_ctx_error(ctx, -EINVAL, "the dashboard's password (its secret) was not given");
	r = kube_get(k, NS_PATH("secrets") "dashboard-auth", &have);
	if (r < 0 && r != -ENOENT)
		return run_ctx_error(ctx, r, "%s", kube_error(k));
	old = r >= 0 ? secret_value(have, "users") : NULL;
	if (old && strncmp(old, user, u) == 0 && old[u] == ':') {
		old[strcspn(old, "\n")] = '\0';
		hash = crypt_rn(e->password, old + u + 1, &cd, sizeof(cd));
		if (hash && hash[0] != '*' && streq(hash, old + u + 1)) {
			*ret = TAKE_PTR(old);
			explicit_wipe(&cd, sizeof(cd));
			return 0;
		}
	}
	if (!crypt_gensalt_rn("$2y$", 10, NULL, 0, salt, sizeof(salt)))
		return run_ctx_error(ctx, -errno, "libcrypt cannot make a bcrypt salt");
	hash = crypt_rn(e->password, salt, &cd, sizeof(cd));
	if (!hash || hash[0] == '*')
		return run_ctx_error(ctx, -EIO, "libcrypt cannot hash the dashboard's password");
	r = asprintf(&line, "%s:%s", user, hash);
	explicit_wipe(&cd, sizeof(cd));
	if (r < 0)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	*ret = line;
	return 0;
}

/* A Secret of ours in the edge namespace with one key. */
static struct json_object *edge_secret(const char *name, const char *key, const char *value)
{
	_cleanup_free_ char *v = NULL;
	struct json_object *o;

	if (b64(value, &v) < 0)
		return NULL;
	o = jfmt("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"Opaque\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"" EDGE_NAMESPACE "\"," LABELS "},\"data\":{}}",
		 name);
	if (o && json_add_string(json_get_object(o, "data"), key, v) < 0) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* What a route is guarded by: the allow-list and the rate limit. */
#define GUARDS "{\"name\":\"allow\"},{\"name\":\"ratelimit\"}"

static int route_wants(struct json_object *route, struct kube_want *w, size_t *n)
{
	const char *name = json_get_string(route, "name"), *host = json_get_string(route, "host");
	struct json_object *addrs = json_get_array(route, "addresses"), *a;
	uint64_t port = 0;

	if (!name || !host || !addrs || json_get_u64(route, "port", &port) < 0 || port == 0 || port > 65535)
		return -EINVAL;
	snprintf(w[*n].path, sizeof(w[*n].path), NS_PATH("services") "%s", name);
	w[(*n)++].obj = jfmt("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
			     "\"" EDGE_NAMESPACE "\"," LABELS "},\"spec\":{\"type\":\"ClusterIP\",\"ports\":[{\"name\":"
			     "\"https\",\"port\":%" PRIu64 ",\"targetPort\":%" PRIu64 ",\"protocol\":\"TCP\"}]}}",
			     name, port, port);
	snprintf(w[*n].path, sizeof(w[*n].path), NS_PATH("endpoints") "%s", name);
	w[*n].obj = jfmt("{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"name\":\"%s\",\"namespace\":\""
			 EDGE_NAMESPACE "\"," LABELS "},\"subsets\":[{\"addresses\":[],\"ports\":[{\"name\":\"https\","
			 "\"port\":%" PRIu64 ",\"protocol\":\"TCP\"}]}]}",
			 name, port);
	a = w[*n].obj ? json_get_array(json_object_array_get_idx(json_get_array(w[*n].obj, "subsets"), 0),
				       "addresses")
		      : NULL;
	for (size_t i = 0; a && i < json_object_array_length(addrs); i++) {
		struct json_object *x = json_object_new_object();

		if (!x || json_add_string(x, "ip", json_object_get_string(json_object_array_get_idx(addrs, i))) < 0 ||
		    json_array_add(a, x) < 0)
			return -ENOMEM;
	}
	(*n)++;
	snprintf(w[*n].path, sizeof(w[*n].path), TR_PATH("ingressroutes") "%s", name);
	w[*n].obj = jfmt(
		"{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"IngressRoute\",\"metadata\":{\"name\":\"%s\","
		"\"namespace\":\"" EDGE_NAMESPACE "\"," LABELS "},\"spec\":{\"entryPoints\":[\"websecure\"],\"routes\":[{"
		"\"kind\":\"Rule\",\"match\":\"Host(`%s`)\",\"middlewares\":[" GUARDS "],\"services\":[{\"name\":\"%s\","
		"\"port\":%" PRIu64 ",\"scheme\":\"https\",\"serversTransport\":\"cluster-ca\"}]}],\"tls\":{}}}",
		name, host, name, port);
	/* several backends (the Proxmox nodes): a session stays on one */
	if (w[*n].obj && json_object_array_length(addrs) > 1) {
		struct json_object *svc = json_object_array_get_idx(
			json_get_array(json_object_array_get_idx(json_get_array(json_get_object(w[*n].obj, "spec"), "routes"),
								 0),
				       "services"),
			0);
		char cookie[96];

		snprintf(cookie, sizeof(cookie), "{\"cookie\":{\"name\":\"devopslab_%s\",\"secure\":true,\"httpOnly\":true}}",
			 name);
		if (!svc || json_add(svc, "sticky", json_tokener_parse(cookie)) < 0)
			return -ENOMEM;
	}
	(*n)++;
	return 0;
}

/* An in-cluster web UI behind the edge (Argo CD's, say): in its own
 * namespace (made when it is not there yet: the registry's objects come
 * after the routes; a chart's namespace is left as its chart made it),
 * the allow-list and rate-limit middlewares (once per namespace: Traefik
 * takes no middleware from another namespace unless told to) and an
 * IngressRoute to its Service, plain HTTP inside the cluster. */
static int app_route_wants(struct json_object *app, struct kube_want *w, size_t *n, struct json_object *allow,
			   uint64_t average, uint64_t burst)
{
	const char *name = json_get_string(app, "name"), *host = json_get_string(app, "host"),
		   *ns = json_get_string(app, "namespace"), *svc = json_get_string(app, "service");
	struct json_object *mw;
	char mpath[256];
	uint64_t port = 0;
	bool have_mw = false;

	if (!name || !host || !ns || !svc || json_get_u64(app, "port", &port) < 0 || port == 0 || port > 65535)
		return -EINVAL;
	snprintf(mpath, sizeof(mpath), TRAEFIK_API "%s/middlewares/" APP_ALLOW, ns);
	for (size_t i = 0; i < *n && !have_mw; i++)
		have_mw = streq(w[i].path, mpath);
	if (!have_mw) {
		snprintf(w[*n].path, sizeof(w[*n].path), "/api/v1/namespaces/%s", ns);
		w[(*n)++].obj = jfmt("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
		snprintf(w[*n].path, sizeof(w[*n].path), "%s", mpath);
		w[*n].obj = jfmt("{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"Middleware\",\"metadata\":{"
				 "\"name\":\"" APP_ALLOW "\",\"namespace\":\"%s\"," LABELS "},\"spec\":{\"ipAllowList\":{}}}",
				 ns);
		mw = w[*n].obj ? json_get_object(json_get_object(w[*n].obj, "spec"), "ipAllowList") : NULL;
		if (mw && json_add(mw, "sourceRange", json_object_get(allow)) < 0)
			return -ENOMEM;
		(*n)++;
		snprintf(w[*n].path, sizeof(w[*n].path), TRAEFIK_API "%s/middlewares/" APP_RATELIMIT, ns);
		w[(*n)++].obj = jfmt("{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"Middleware\",\"metadata\":{"
				     "\"name\":\"" APP_RATELIMIT "\",\"namespace\":\"%s\"," LABELS "},\"spec\":{"
				     "\"rateLimit\":{\"average\":%" PRIu64 ",\"burst\":%" PRIu64 "}}}",
				     ns, average, burst);
	}
	snprintf(w[*n].path, sizeof(w[*n].path), TRAEFIK_API "%s/ingressroutes/devopslab-%s", ns, name);
	w[(*n)++].obj = jfmt(
		"{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"IngressRoute\",\"metadata\":{\"name\":"
		"\"devopslab-%s\",\"namespace\":\"%s\"," LABELS "},\"spec\":{\"entryPoints\":[\"websecure\"],"
		"\"routes\":[{\"kind\":\"Rule\",\"match\":\"Host(`%s`)\",\"middlewares\":[{\"name\":\"" APP_ALLOW
		"\"},{\"name\":\"" APP_RATELIMIT "\"}],\"services\":[{\"name\":\"%s\",\"port\":%" PRIu64 "}]}],"
		"\"tls\":{}}}",
		name, ns, host, svc, port);
	return 0;
}

/* Objects of ours that the plan no longer wants (a console the manifest
 * dropped): in the edge's namespace, and the routes and middlewares of
 * in-cluster UIs in any namespace; counted, and deleted when apply. */
static int prune(struct run_ctx *ctx, struct edge_ctx *e, const struct kube_want *w, size_t n, bool apply, size_t *diff)
{
	static const char *const kinds[] = { NS_PATH("services"), NS_PATH("endpoints"), NS_PATH("secrets"),
					     "/apis/traefik.io/v1alpha1/ingressroutes/",
					     "/apis/traefik.io/v1alpha1/middlewares/", TR_PATH("serverstransports") };
	struct kube_client *k = k3s_kube(e->cfg.k3s);

	for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
		_cleanup_json_ struct json_object *list = NULL;
		struct json_object *items;
		const char *plural;
		char path[300];
		int r;

		/* the kind's plural: the last segment before the final '/' */
		for (plural = kinds[i] + strlen(kinds[i]) - 1; plural > kinds[i] && plural[-1] != '/'; plural--)
			;
		snprintf(path, sizeof(path), "%.*s?labelSelector=app.kubernetes.io%%2Fmanaged-by%%3D" EDGE_MANAGER,
			 (int)strlen(kinds[i]) - 1, kinds[i]);
		r = kube_get(k, path, &list);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return run_ctx_error(ctx, r, "%s", kube_error(k));
		items = json_get_array(list, "items");
		for (size_t j = 0; items && j < json_object_array_length(items); j++) {
			struct json_object *md = json_get_object(json_object_array_get_idx(items, j), "metadata");
			const char *name = json_get_string(md, "name"), *ns = json_get_string(md, "namespace");
			bool wanted = false;

			if (!name || !ns)
				continue;
			if (strstr(kinds[i], "/namespaces/"))
				snprintf(path, sizeof(path), "%s%s", kinds[i], name);
			else /* listed across namespaces */
				snprintf(path, sizeof(path), TRAEFIK_API "%s/%.*s/%s", ns,
					 (int)(strlen(plural) - 1), plural, name);
			for (size_t x = 0; x < n && !wanted; x++)
				wanted = streq(w[x].path, path);
			if (wanted)
				continue;
			(*diff)++;
			if (!apply)
				continue;
			progress(e, "removing %s: the manifest no longer has it", path);
			r = kube_delete(k, path);
			if (r < 0 && r != -ENOENT)
				return run_ctx_error(ctx, r, "%s", kube_error(k));
		}
	}
	return 0;
}

static int routes_run(struct run_ctx *ctx, const struct step *s, bool apply, bool *ret_done)
{
	struct edge_ctx *e = ectx(ctx);
	struct json_object *routes = json_get_array(s->params, "routes"), *allow = json_get_array(s->params, "allow"),
			   *rl = json_get_object(s->params, "rate_limit"), *mw, *apps = json_get_array(s->params, "apps");
	const char *dash = step_param_string(s, "dashboard_host"), *user = step_param_string(s, "dashboard_user");
	struct kube_want w[WANTS_MAX] = {};
	size_t n = 0, nr = routes ? json_object_array_length(routes) : 0, diff = 0;
	size_t na = apps ? json_object_array_length(apps) : 0;
	uint64_t average = 0, burst = 0;
	int r = 0;

	if (!e)
		return run_ctx_error(ctx, -EINVAL, "%s: no edge context", s->id);
	if (!routes || nr > ROUTES_MAX || na > APPS_MAX || !allow || !rl || json_get_u64(rl, "average", &average) < 0 ||
	    json_get_u64(rl, "burst", &burst) < 0)
		return run_ctx_error(ctx, -EINVAL, "%s: its parameters lack routes, allow or rate_limit", s->id);

	snprintf(w[n].path, sizeof(w[n].path), "/api/v1/namespaces/" EDGE_NAMESPACE);
	w[n++].obj = jfmt("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" EDGE_NAMESPACE
			  "\"," LABELS "}}");
	snprintf(w[n].path, sizeof(w[n].path), NS_PATH("secrets") "cluster-ca");
	w[n++].obj = edge_secret("cluster-ca", "ca.crt", e->ca_pem);
	snprintf(w[n].path, sizeof(w[n].path), TR_PATH("serverstransports") "cluster-ca");
	w[n++].obj = jfmt("{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"ServersTransport\"," META("cluster-ca")
			  ",\"spec\":{\"rootCAs\":[{\"secret\":\"cluster-ca\"}]}}");
	snprintf(w[n].path, sizeof(w[n].path), TR_PATH("middlewares") "allow");
	w[n].obj = jfmt("{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"Middleware\"," META("allow")
			",\"spec\":{\"ipAllowList\":{}}}");
	mw = w[n].obj ? json_get_object(json_get_object(w[n].obj, "spec"), "ipAllowList") : NULL;
	if (mw && json_add(mw, "sourceRange", json_object_get(allow)) < 0)
		r = -ENOMEM;
	n++;
	snprintf(w[n].path, sizeof(w[n].path), TR_PATH("middlewares") "ratelimit");
	w[n++].obj = jfmt("{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"Middleware\"," META("ratelimit")
			  ",\"spec\":{\"rateLimit\":{\"average\":%" PRIu64 ",\"burst\":%" PRIu64 "}}}",
			  average, burst);
	for (size_t i = 0; r >= 0 && i < nr; i++)
		r = route_wants(json_object_array_get_idx(routes, i), w, &n);
	for (size_t i = 0; r >= 0 && i < na; i++)
		r = app_route_wants(json_object_array_get_idx(apps, i), w, &n, allow, average, burst);
	if (r >= 0 && dash) {
		_cleanup_free_ char *users = NULL;

		r = dashboard_users(ctx, e, user ? user : "admin", &users);
		if (r < 0) {
			kube_wants_done(w, n);
			return r;
		}
		snprintf(w[n].path, sizeof(w[n].path), NS_PATH("secrets") "dashboard-auth");
		w[n++].obj = edge_secret("dashboard-auth", "users", users);
		snprintf(w[n].path, sizeof(w[n].path), TR_PATH("middlewares") "dashboard-auth");
		w[n++].obj = jfmt("{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"Middleware\"," META("dashboard-auth")
				  ",\"spec\":{\"basicAuth\":{\"secret\":\"dashboard-auth\"}}}");
		snprintf(w[n].path, sizeof(w[n].path), TR_PATH("ingressroutes") "dashboard");
		w[n++].obj = jfmt(
			"{\"apiVersion\":\"traefik.io/v1alpha1\",\"kind\":\"IngressRoute\"," META("dashboard")
			",\"spec\":{\"entryPoints\":[\"websecure\"],\"routes\":[{\"kind\":\"Rule\",\"match\":\"Host(`%s`) "
			"&& (PathPrefix(`/dashboard`) || PathPrefix(`/api`))\",\"middlewares\":[" GUARDS
			",{\"name\":\"dashboard-auth\"}],\"services\":[{\"name\":\"api@internal\",\"kind\":"
			"\"TraefikService\"}]}],\"tls\":{}}}",
			dash);
		explicit_wipe(users, strlen(users));
	}
	if (r < 0) {
		kube_wants_done(w, n);
		return run_ctx_error(ctx, r, "%s: a route's parameters are incomplete", s->id);
	}
	r = converge(ctx, e, w, n, apply, &diff);
	if (r >= 0)
		r = prune(ctx, e, w, n, apply, &diff);
	kube_wants_done(w, n);
	if (r >= 0 && apply && diff)
		progress(e, "the edge routes %zu console%s", nr + na + !!dash, nr + na + !!dash == 1 ? "" : "s");
	*ret_done = r >= 0 && diff == 0;
	return r;
}

STEP_OPS_OF_RUN(edge_routes_ops, routes_run);
