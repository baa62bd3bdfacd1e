/* SPDX-License-Identifier: MIT */
/*
 * k3s-charts.c — the step k3s-charts (docs/k3s.md, "Workloads"): the
 * manifest's charts handed to K3s as HelmCharts in the first server's
 * auto-deploying manifests, so that the cluster itself holds and keeps
 * them; done when each one's helm job has completed with the spec we
 * wrote, and no HelmChart of ours is left that the manifest dropped.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "k3s-config.h"
#include "k3s-internal.h"
#include "log.h"
#include "plan/json-util.h"
#include "util.h"

#define CHARTS_MAX 64 /* the manifest allows fewer */
#define LOG_TAIL 1024 /* bytes of a helm job's log in an error */
/* A helm job's pod restarted this often is failing, not unlucky: helm
 * failed that many times in a row on the same chart and values. */
#define CHART_RESTARTS_MAX 3

#define OURS_PATH                                                                                                      \
	"/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts?labelSelector=" K3S_MANAGED_BY_LABEL_Q "%3D"       \
	K3S_MANAGED_BY
#define K3S_MANAGED_BY_LABEL_Q "app.kubernetes.io%2Fmanaged-by"

enum chart_state {
	CHART_MISSING, /* no HelmChart of that name yet */
	CHART_DIFFERS, /* one with another spec than ours */
	CHART_RUNNING, /* ours; its helm job has not finished */
	CHART_FAILED,  /* ours; its helm job failed for good */
	CHART_DONE,    /* ours; its helm job completed */
};

struct survey {
	struct kube_helm_chart *have; /* ours in the cluster (labelled) */
	size_t n_have;
	enum chart_state state[CHARTS_MAX];
	struct kube_job job[CHARTS_MAX];
	size_t n_extra; /* of have[], the ones the manifest no longer names */
};

static void survey_done(struct survey *v)
{
	kube_helm_charts_free(v->have, v->n_have);
	*v = (struct survey){};
}

/* The step's charts (borrowed strings from its params). */
static int wanted(struct run_ctx *ctx, const struct step *s, struct k3s_chart *v, size_t *ret_n)
{
	struct json_object *a = json_get_array(s->params, "charts");
	size_t n = a ? json_object_array_length(a) : 0;

	if (!a || n > CHARTS_MAX)
		return run_ctx_error(ctx, -EINVAL, "%s: no list of at most %d charts in its parameters", s->id,
				     CHARTS_MAX);
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(a, i);

		v[i] = (struct k3s_chart){ .name = json_get_string(o, "name"),
					   .namespace = json_get_string(o, "namespace"),
					   .archive = json_get_string(o, "archive"),
					   .values = json_get_string(o, "values") };
		if (!v[i].name || !v[i].namespace || !v[i].archive)
			return run_ctx_error(ctx, -EINVAL, "%s: chart %zu lacks its name, namespace or archive", s->id,
					     i);
	}
	*ret_n = n;
	return 0;
}

static const struct kube_helm_chart *find_have(const struct survey *v, const char *name)
{
	for (size_t i = 0; i < v->n_have; i++)
		if (streq(v->have[i].name, name))
			return &v->have[i];
	return NULL;
}

static bool is_wanted(const struct k3s_chart *want, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(want[i].name, name))
			return true;
	return false;
}

/* The HelmChart is the one we write: the same archive, namespace and
 * values (K3s reads the file's literal block back byte for byte). */
static bool same_spec(const struct kube_helm_chart *h, const struct k3s_chart *c)
{
	char url[sizeof(h->chart)];

	snprintf(url, sizeof(url), "%s%s", K3S_CHART_URL_PREFIX, c->archive);
	return streq(h->chart, url) && streq(h->target_namespace, c->namespace) &&
	       (c->values ? streq_ptr(h->values, c->values) : isempty(h->values));
}

static int chart_state(struct k3s_ctx *k, const struct kube_helm_chart *h, const struct k3s_chart *c,
		       enum chart_state *st, struct kube_job *job)
{
	_cleanup_json_ struct json_object *o = NULL;
	char path[2 * KUBE_NAME_MAX + 64];
	int r;

	*job = (struct kube_job){};
	if (!h) {
		*st = CHART_MISSING;
		return 0;
	}
	if (!same_spec(h, c)) {
		*st = CHART_DIFFERS;
		return 0;
	}
	*st = CHART_RUNNING;
	if (!h->job_name[0])
		return 0; /* the helm controller has not seen it yet */
	snprintf(path, sizeof(path), "/apis/batch/v1/namespaces/kube-system/jobs/%s", h->job_name);
	r = kube_get(k->kube, path, &o);
	if (r == -ENOENT)
		return 0;
	if (r >= 0)
		r = kube_decode_job(o, job);
	if (r < 0)
		return r;
	*st = job->complete ? CHART_DONE : job->failed ? CHART_FAILED : CHART_RUNNING;
	return 0;
}

/* Ours in the cluster against the plan's. */
static int survey(struct run_ctx *ctx, const struct k3s_chart *want, size_t n, struct survey *v)
{
	struct k3s_ctx *k = k3s_kctx(ctx);
	_cleanup_json_ struct json_object *list = NULL;
	int r;

	*v = (struct survey){};
	r = kube_get(k->kube, OURS_PATH, &list);
	if (r >= 0)
		r = kube_decode_helm_charts(list, &v->have, &v->n_have);
	if (r == -EBADMSG)
		return run_ctx_error(ctx, r, "the Kubernetes API at %s: not a HelmChartList we understand",
				     kube_url(k->kube));
	for (size_t i = 0; i < n && r >= 0; i++)
		r = chart_state(k, find_have(v, want[i].name), &want[i], &v->state[i], &v->job[i]);
	if (r < 0) {
		survey_done(v);
		return run_ctx_error(ctx, r, "the Kubernetes API at %s: %s", kube_url(k->kube), kube_error(k->kube));
	}
	for (size_t i = 0; i < v->n_have; i++)
		v->n_extra += !is_wanted(want, n, v->have[i].name);
	return 0;
}

static bool survey_complete(const struct survey *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v->state[i] != CHART_DONE)
			return false;
	return v->n_extra == 0;
}

static const char *state_name(enum chart_state st)
{
	switch (st) {
	case CHART_MISSING:
		return "not in the cluster";
	case CHART_DIFFERS:
		return "in the cluster with another spec";
	case CHART_RUNNING:
		return "its helm job is running";
	case CHART_FAILED:
		return "its helm job failed";
	case CHART_DONE:
		return "installed";
	}
	return "?";
}

/* The step's charts, and the cluster's against them. */
static int begin(struct run_ctx *ctx, const struct step *s, struct k3s_chart *want, size_t *ret_n, struct survey *v)
{
	int r;

	if (!k3s_kctx(ctx) || !s->has_vm)
		return run_ctx_error(ctx, -EINVAL, "no K3s context for %s", s->id);
	r = wanted(ctx, s, want, ret_n);
	return r < 0 ? r : survey(ctx, want, *ret_n, v);
}

static int charts_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct k3s_chart want[CHARTS_MAX];
	struct survey v;
	size_t n = 0;
	int r = begin(ctx, s, want, &n, &v);

	if (r < 0)
		return r;
	*ret_done = survey_complete(&v, n);
	for (size_t i = 0; i < n && !*ret_done; i++)
		if (v.state[i] != CHART_DONE)
			k3s_progress(k3s_kctx(ctx), "chart %s: %s", want[i].name, state_name(v.state[i]));
	survey_done(&v);
	return 0;
}

/* The pods of a chart's helm job: the one restarted most (helm-controller
 * runs them with restartPolicy OnFailure and a large backoffLimit, so a
 * failing install crash-loops rather than failing the job), into *ret. */
static int job_pod(struct k3s_ctx *k, const char *job, struct kube_pod *ret)
{
	_cleanup_json_ struct json_object *o = NULL;
	_cleanup_free_ struct kube_pod *pods = NULL;
	char path[KUBE_NAME_MAX + 96];
	size_t n = 0;
	int r;

	*ret = (struct kube_pod){};
	if (!job[0])
		return -ENOENT;
	snprintf(path, sizeof(path), "/api/v1/namespaces/kube-system/pods?labelSelector=job-name%%3D%s", job);
	r = kube_get(k->kube, path, &o);
	if (r >= 0)
		r = kube_decode_pods(o, &pods, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (!ret->name[0] || pods[i].restarts >= ret->restarts)
			*ret = pods[i];
	return ret->name[0] ? 0 : -ENOENT;
}

/* What went wrong with a chart, for its error: the last lines of its helm
 * job's pod (of its previous run when it has restarted: the failed one),
 * or the K3s deploy controller's complaint about its manifest file (best
 * effort: "" when the API has nothing to say). */
static void chart_why(struct k3s_ctx *k, const struct k3s_chart *c, const char *job, enum chart_state st, char *buf,
		      size_t size)
{
	static const char *const reasons[] = { "ApplyManifestFailed", "ParseManifestFailed" };
	char path[3 * KUBE_NAME_MAX + 160], addon[KUBE_NAME_MAX];
	_cleanup_free_ char *log = NULL;
	struct kube_pod pod;

	buf[0] = 0;
	if (st == CHART_MISSING || st == CHART_DIFFERS) {
		snprintf(addon, sizeof(addon), K3S_CHART_ADDON_FMT, c->name);
		snprintf(path, sizeof(path),
			 "/api/v1/namespaces/kube-system/events?fieldSelector=involvedObject.kind%%3DAddon%%2C"
			 "involvedObject.name%%3D%s",
			 addon);
		for (size_t i = 0; i < ELEMENTSOF(reasons) && !buf[0]; i++) {
			_cleanup_json_ struct json_object *o = NULL;

			if (kube_get(k->kube, path, &o) >= 0)
				(void)kube_decode_event_message(o, reasons[i], buf, size);
		}
		return;
	}
	if (job_pod(k, job, &pod) < 0)
		return;
	snprintf(path, sizeof(path), "/api/v1/namespaces/kube-system/pods/%s/log?tailLines=20%s", pod.name,
		 pod.restarts ? "&previous=true" : "");
	if (kube_get_text(k->kube, path, LOG_TAIL, &log) >= 0)
		snprintf(buf, size, "%s", log);
}

static int write_chart(struct run_ctx *ctx, const struct step *s, const struct k3s_chart *c)
{
	char path[sizeof(K3S_CHART_MANIFEST_FMT) + KUBE_NAME_MAX];
	_cleanup_free_ char *text = NULL;
	size_t n = 0;
	int r = k3s_helm_chart_manifest(c, &text, &n);

	if (r < 0)
		return run_ctx_error(ctx, r, "chart %s: cannot write its HelmChart: %s", c->name, strerror(-r));
	snprintf(path, sizeof(path), K3S_CHART_MANIFEST_FMT, c->name);
	return guest_write(ctx, &k3s_kctx(ctx)->gx, &s->vm, path, 0600, text);
}

/* A chart of ours the manifest dropped: its file goes, then its
 * HelmChart, whose release the helm controller uninstalls. */
static int remove_chart(struct run_ctx *ctx, const struct step *s, const char *name)
{
	char path[sizeof(K3S_CHART_MANIFEST_FMT) + KUBE_NAME_MAX];
	const char *argv[] = { "rm", "-f", path, NULL };

	struct k3s_ctx *k = k3s_kctx(ctx);
	char obj[KUBE_NAME_MAX + 64];
	int r;

	snprintf(path, sizeof(path), K3S_CHART_MANIFEST_FMT, name);
	k3s_progress(k, "chart %s is no longer in the manifest: removing it (K3s uninstalls its release)", name);
	r = guest_run(ctx, &k3s_kctx(ctx)->gx, &s->vm, argv, NULL, k->cfg.exec_timeout_ms, NULL);
	if (r < 0)
		return r;
	/* K3s never deletes what a removed manifest file made: the
	 * HelmChart goes through the API, and the helm controller's
	 * finalizer uninstalls the release before it is gone */
	snprintf(obj, sizeof(obj), "/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/%s", name);
	r = kube_delete(k->kube, obj);
	if (r < 0 && r != -ENOENT)
		return run_ctx_error(ctx, r, "chart %s: %s", name, kube_error(k->kube));
	return 0;
}

static int charts_apply(struct run_ctx *ctx, const struct step *s)
{
	struct k3s_ctx *k = k3s_kctx(ctx);
	struct k3s_chart want[CHARTS_MAX];
	struct json_object *res;
	struct survey v;
	uint64_t start;
	size_t n = 0;
	char why[LOG_TAIL + 1];
	int r = begin(ctx, s, want, &n, &v);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++)
		if (v.state[i] == CHART_MISSING || v.state[i] == CHART_DIFFERS) {
			k3s_progress(k, "chart %s: %s the HelmChart into namespace %s", want[i].name,
				     v.state[i] == CHART_MISSING ? "handing K3s" : "updating", want[i].namespace);
			r = write_chart(ctx, s, &want[i]);
		}
	for (size_t i = 0; i < v.n_have && r >= 0; i++)
		if (!is_wanted(want, n, v.have[i].name))
			r = remove_chart(ctx, s, v.have[i].name);
	survey_done(&v);
	if (r < 0)
		return r;

	start = http_now_ms();
	for (;;) {
		r = survey(ctx, want, n, &v);
		if (r < 0)
			return r;
		if (survey_complete(&v, n))
			break;
		for (size_t i = 0; i < n; i++) {
			const struct kube_helm_chart *h = find_have(&v, want[i].name);
			struct kube_pod pod = {};

			if (v.state[i] == CHART_RUNNING && h)
				(void)job_pod(k, h->job_name, &pod);
			if (v.state[i] != CHART_FAILED && pod.restarts < CHART_RESTARTS_MAX)
				continue;
			chart_why(k, &want[i], h ? h->job_name : "", v.state[i], why, sizeof(why));
			if (v.state[i] == CHART_FAILED)
				r = run_ctx_error(ctx, -EIO, "chart %s: its helm job failed (%s: %s)%s%s", want[i].name,
						  v.job[i].reason, v.job[i].message, why[0] ? "; its log ends: " : "", why);
			else
				r = run_ctx_error(ctx, -EIO, "chart %s: its helm job keeps failing (%u restarts)%s%s",
						  want[i].name, pod.restarts, why[0] ? "; its log ends: " : "", why);
			survey_done(&v);
			return r;
		}
		if (http_now_ms() - start >= k->cfg.ready_timeout_ms)
			break;
		survey_done(&v);
		sleep_ms(k->cfg.poll_ms);
	}
	for (size_t i = 0; i < n; i++)
		if (v.state[i] != CHART_DONE) {
			enum chart_state st = v.state[i];
			const struct kube_helm_chart *h = find_have(&v, want[i].name);

			chart_why(k, &want[i], h ? h->job_name : "", st, why, sizeof(why));
			survey_done(&v);
			return run_ctx_error(ctx, -ETIMEDOUT, "chart %s: not installed after %" PRIu64 " s: %s%s%s",
					     want[i].name, k->cfg.ready_timeout_ms / 1000, state_name(st),
					     why[0] ? ": " : "", why);
		}
	if (v.n_extra) {
		survey_done(&v);
		return run_ctx_error(ctx, -ETIMEDOUT, "charts the manifest dropped are still in the cluster after %" PRIu64
						      " s",
				     k->cfg.ready_timeout_ms / 1000);
	}
	survey_done(&v);
	k3s_progress(k, "%zu chart%s installed by K3s", n, n == 1 ? "" : "s");
	res = json_object_new_object();
	if (res) {
		json_object_object_add(res, "charts", json_object_new_int64((int64_t)n));
		run_ctx_set_result(ctx, res);
	}
	return 0;
}

const struct step_ops k3s_charts_ops = { .check = charts_check, .apply = charts_apply };
