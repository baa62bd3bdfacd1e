/* SPDX-License-Identifier: MIT */
/*
 * gitops.c — the step gitops (gitops.h): the repository Secret and the
 * root Application, applied when they differ from ours; done when Argo CD
 * reports the Application Synced and Healthy against our source.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base64.h"
#include "bundle/secret.h"
#include "gitops.h"
#include "k3s/k3s.h"
#include "k3s/kube.h"
#include "log.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/http.h"
#include "util.h"

#define POLL_MS_DEFAULT 2000
#define TIMEOUT_MS_DEFAULT (10 * 60 * 1000)
#define PATH_MAX_ 384
#define MANAGED_BY "app.kubernetes.io/managed-by"
#define SECRET_TYPE "argocd.argoproj.io/secret-type"
#define APPS_PATH "/apis/argoproj.io/v1alpha1/namespaces/"

static struct gitops_cfg *gcfg(struct run_ctx *ctx)
{
	return ctx->gitops;
}

#define progress(g, ...) log_progress((g)->progress, (g)->userdata, __VA_ARGS__)

/* data[key] = base64(value): the form the API returns a Secret in, so
 * that kube_has() compares it as it is stored. */
static struct json_object *labelled(const char *kind_json, const char *name, const char *ns)
{
	struct json_object *o = json_tokener_parse(kind_json), *md = json_object_new_object(),
			   *labels = json_object_new_object();

	if (!o || !md || !labels || json_add_string(labels, MANAGED_BY, GITOPS_MANAGER) < 0 ||
	    json_add_string(md, "name", name) < 0 || json_add_string(md, "namespace", ns) < 0 ||
	    json_add(md, "labels", TAKE_PTR(labels)) < 0 || json_add(o, "metadata", TAKE_PTR(md)) < 0) {
		json_object_put(labels);
		json_object_put(md);
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* The value of a credential, by the secret reference {"secret": NAME} in
 * creds[key]; NULL (and *err) when it is referenced but not given. */
static const char *credential(struct json_object *creds, const char *key,
			      const char *(*secret)(void *userdata, const char *name), void *userdata, bool *missing,
			      char *err, size_t err_size)
{
	const char *name = json_get_string(json_get_object(creds, key), "secret");
	const char *v;

	if (!name)
		return NULL;
	v = secret ? secret(userdata, name) : NULL;
	if (isempty(v)) {
		snprintf(err, err_size,
			 "the Git repository's %s (secret '%s') is not among the bundle's sealed secrets: firstboot "
			 "needs --bundle with its secrets (or, with --manifest, --gitops-credential-file)",
			 streq(key, "ssh_key") ? "SSH key" : "password", name);
		*missing = true;
		return NULL;
	}
	return v;
}

static struct json_object *repo_secret(struct json_object *params, const char *ns,
				       const char *(*secret)(void *userdata, const char *name), void *userdata,
				       char *err, size_t err_size)
{
	struct json_object *creds = json_get_object(params, "credentials");
	const char *user = json_get_string(creds, "username");
	bool missing = false;
	const char *pw = credential(creds, "password", secret, userdata, &missing, err, err_size);
	const char *key = missing ? NULL : credential(creds, "ssh_key", secret, userdata, &missing, err, err_size);
	struct json_object *o, *data = json_object_new_object(), *labels;
	int r = data ? 0 : -ENOMEM;

	o = missing ? NULL : labelled("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"Opaque\"}", GITOPS_REPO_SECRET, ns);
	labels = json_get_object(json_get_object(o, "metadata"), "labels");
	if (!o || !labels || r < 0) {
		json_object_put(data);
		json_object_put(o);
		if (!missing)
			snprintf(err, err_size, "out of memory");
		return NULL;
	}
	r = json_add_string(labels, SECRET_TYPE, "repository");
	if (r >= 0)
		r = kube_put_b64(data, "type", "git");
	if (r >= 0)
		r = kube_put_b64(data, "url", json_get_string(params, "repo"));
	if (r >= 0 && pw && user)
		r = kube_put_b64(data, "username", user);
	if (r >= 0 && pw)
		r = kube_put_b64(data, "password", pw);
	if (r >= 0 && key)
		r = kube_put_b64(data, "sshPrivateKey", key);
	if (r >= 0)
		r = json_add(o, "data", TAKE_PTR(data));
	json_object_put(data);
	if (r < 0) {
		json_object_put(o);
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	return o;
}

static struct json_object *application(struct json_object *params, const char *ns)
{
	static const char spec[] =
		"{\"project\":\"default\",\"source\":{},\"destination\":{\"server\":\"" GITOPS_DESTINATION "\"},"
		"\"syncPolicy\":{\"automated\":{\"prune\":true,\"selfHeal\":true},"
		"\"syncOptions\":[\"CreateNamespace=true\"]}}";
	struct json_object *o = labelled("{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":\"Application\"}",
					 json_get_string(params, "application"), ns);
	struct json_object *sp = json_tokener_parse(spec);
	struct json_object *src = json_get_object(sp, "source");

	if (!o || !src || json_add_string(src, "repoURL", json_get_string(params, "repo")) < 0 ||
	    json_add_string(src, "targetRevision", json_get_string(params, "revision")) < 0 ||
	    json_add_string(src, "path", json_get_string(params, "path")) < 0 ||
	    json_add_string(json_get_object(sp, "destination"), "namespace",
			    json_get_string(params, "destination_namespace")) < 0 ||
	    json_add(o, "spec", TAKE_PTR(sp)) < 0) {
		json_object_put(sp);
		json_object_put(o);
		return NULL;
	}
	return o;
}

int gitops_objects(struct json_object *params, const char *(*secret)(void *userdata, const char *name),
		   void *userdata, struct json_object **ret_secret, struct json_object **ret_app, char *err,
		   size_t err_size)
{
	const char *ns = json_get_string(params, "namespace");
	struct json_object *s, *a;

	err[0] = '\0';
	if (!ns || !json_get_string(params, "application") || !json_get_string(params, "repo") ||
	    !json_get_string(params, "revision") || !json_get_string(params, "path") ||
	    !json_get_string(params, "destination_namespace")) {
		snprintf(err, err_size, "its parameters lack namespace, application, repo, revision, path or "
					"destination_namespace");
		return -EINVAL;
	}
	s = repo_secret(params, ns, secret, userdata, err, err_size);
	if (!s)
		return err[0] && !streq(err, "out of memory") ? -EINVAL : -ENOMEM;
	a = application(params, ns);
	if (!a) {
		json_object_put(s);
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	*ret_secret = s;
	*ret_app = a;
	return 0;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

void gitops_app_state(const struct json_object *want, const struct json_object *have, struct gitops_app_state *ret)
{
	struct json_object *status = json_get_object(have, "status"), *sync = json_get_object(status, "sync");
	struct json_object *conds = json_get_array(status, "conditions");
	struct json_object *src = json_get_object(json_get_object(sync, "comparedTo"), "source");
	size_t n = conds ? json_object_array_length(conds) : 0;

	*ret = (struct gitops_app_state){};
	copy_str(ret->sync, sizeof(ret->sync), json_get_string(sync, "status"));
	copy_str(ret->health, sizeof(ret->health), json_get_string(json_get_object(status, "health"), "status"));
	copy_str(ret->revision, sizeof(ret->revision), json_get_string(sync, "revision"));
	ret->compared = want && src && kube_has(json_get_object(json_get_object(want, "spec"), "source"), src);
	ret->refreshing = json_get_string(json_get_object(json_get_object(have, "metadata"), "annotations"),
					  GITOPS_REFRESH) != NULL;
	for (size_t i = n; i-- > 0 && !ret->problem[0];) {
		struct json_object *c = json_object_array_get_idx(conds, i);
		const char *type = json_get_string(c, "type");
		size_t len = type ? strlen(type) : 0;

		if (len >= 5 && streq(type + len - 5, "Error"))
			snprintf(ret->problem, sizeof(ret->problem), "%s: %s", type,
				 json_get_string(c, "message") ?: "(no message)");
	}
}

static bool app_done(const struct gitops_app_state *st)
{
	return st->compared && !st->refreshing && streq(st->sync, "Synced") && st->revision[0] &&
	       streq(st->health, "Healthy");
}

/* What Argo CD says, for a progress line or an error. */
static void app_words(const struct gitops_app_state *st, char *buf, size_t size)
{
	if (st->refreshing)
		snprintf(buf, size, "Argo CD has not compared it with the repository again yet");
	else if (!st->sync[0] && !st->problem[0])
		snprintf(buf, size, "Argo CD has not reported on it yet");
	else if (!st->compared && !st->problem[0])
		snprintf(buf, size, "Argo CD has not compared it with this source yet");
	else
		snprintf(buf, size, "sync %s, health %s%s%s", st->sync[0] ? st->sync : "-",
			 st->health[0] ? st->health : "-", st->problem[0] ? "; " : "", st->problem);
}

struct want {
	char path[PATH_MAX_];
	struct json_object *obj;
	const char *what;
};

/* A credential's value: the bundle's sealed secret of that name, else
 * the one a draft manifest's run was given. */
static const char *secret_of(void *userdata, const char *name)
{
	struct run_ctx *ctx = userdata;
	const char *v = ctx->secrets ? secrets_get(ctx->secrets, name) : NULL;

	return v ? v : gcfg(ctx)->credential;
}

/* The step's two objects, and their paths. */
static int wants(struct run_ctx *ctx, const struct step *s, struct want w[static 2])
{
	const char *ns = json_get_string(s->params, "namespace");
	char err[256];
	int r;

	w[0] = w[1] = (struct want){};
	r = gitops_objects(s->params, secret_of, ctx, &w[0].obj, &w[1].obj, err, sizeof(err));
	if (r < 0)
		return run_ctx_error(ctx, r, "%s: %s", s->id, err);
	snprintf(w[0].path, sizeof(w[0].path), "/api/v1/namespaces/%s/secrets/" GITOPS_REPO_SECRET, ns);
	w[0].what = "the repository Secret";
	snprintf(w[1].path, sizeof(w[1].path), APPS_PATH "%s/applications/%s", ns,
		 json_get_string(s->params, "application"));
	w[1].what = "the root Application";
	return 0;
}

static void wants_done(struct want w[static 2])
{
	for (size_t i = 0; i < 2; i++)
		json_object_put(w[i].obj);
}

/* Argo CD's refresh annotation on the Application, by a field manager of
 * its own (Argo CD removes it when done; our apply never names it). */
static int request_refresh(struct kube_client *k, const char *path, struct json_object *app)
{
	struct json_object *md = json_get_object(app, "metadata");
	_cleanup_json_ struct json_object *o = labelled(
		"{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":\"Application\"}", json_get_string(md, "name"),
		json_get_string(md, "namespace"));
	struct json_object *omd = json_get_object(o, "metadata"), *ann = json_object_new_object();

	if (!omd || !ann || json_add_string(ann, GITOPS_REFRESH, "hard") < 0) {
		json_object_put(ann);
		return -ENOMEM;
	}
	if (json_add(omd, "annotations", ann) < 0) /* it puts ann */
		return -ENOMEM;
	json_object_object_del(omd, "labels"); /* this manager sets the annotation only */
	return kube_apply(k, path, GITOPS_REFRESH_MANAGER, o, NULL);
}

/* Each object against the cluster's: *diff counts those that differ,
 * st what Argo CD says of the Application. With apply, each one that
 * differs is applied. */
static int survey(struct run_ctx *ctx, struct want w[static 2], bool apply, size_t *diff,
		  struct gitops_app_state *st)
{
	struct gitops_cfg *g = gcfg(ctx);
	struct kube_client *k = k3s_kube(g->k3s);
	int r;

	*diff = 0;
	*st = (struct gitops_app_state){};
	for (size_t i = 0; i < 2; i++) {
		_cleanup_json_ struct json_object *have = NULL;
		bool differs = false;

		r = kube_ensure(k, w[i].path, GITOPS_MANAGER, w[i].obj, apply, &differs, &have);
		if (r == -ENOENT && i == 1 && apply)
			return run_ctx_error(ctx, r,
					     "the Kubernetes API does not serve Argo CD's Applications "
					     "(argoproj.io/v1alpha1): its chart (HelmChart kube-system/%s) has not "
					     "installed its CRDs",
					     MANIFEST_GITOPS_CHART);
		if (r < 0)
			return run_ctx_error(ctx, r, "%s: %s", w[i].what, kube_error(k));
		if (i == 1 && have)
			gitops_app_state(w[i].obj, have, st);
		if (!differs)
			continue;
		(*diff)++;
		if (apply)
			progress(g, "%s %s", w[i].what, have ? "differs from ours: setting it back" : "is new: applying it");
	}
	if (apply && *diff) {
		/* Argo CD's word on the old Secret or spec is stale: a refresh */
		r = request_refresh(k, w[1].path, w[1].obj);
		if (r < 0)
			return run_ctx_error(ctx, r, "asking Argo CD to refresh the root Application: %s", kube_error(k));
		st->refreshing = true;
	}
	return 0;
}

static int gitops_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct gitops_app_state st;
	struct want w[2];
	size_t diff = 0;
	int r;

	if (!gcfg(ctx))
		return run_ctx_error(ctx, -EINVAL, "%s: no GitOps context", s->id);
	r = wants(ctx, s, w);
	if (r < 0)
		return r;
	r = survey(ctx, w, false, &diff, &st);
	wants_done(w);
	*ret_done = r >= 0 && diff == 0 && app_done(&st);
	return r;
}

static int gitops_apply(struct run_ctx *ctx, const struct step *s)
{
	struct gitops_cfg *g = gcfg(ctx);
	uint64_t poll = g && g->poll_ms ? g->poll_ms : POLL_MS_DEFAULT;
	uint64_t timeout = g && g->timeout_ms ? g->timeout_ms : TIMEOUT_MS_DEFAULT, start;
	const char *ns = json_get_string(s->params, "namespace"), *app = json_get_string(s->params, "application");
	struct gitops_app_state st;
	char said[sizeof(st.problem) + 128] = "", now[sizeof(said)];
	struct json_object *res;
	struct want w[2];
	size_t diff = 0;
	int r;

	if (!g)
		return run_ctx_error(ctx, -EINVAL, "%s: no GitOps context", s->id);
	r = wants(ctx, s, w);
	if (r < 0)
		return r;
	r = survey(ctx, w, true, &diff, &st);
	start = http_now_ms();
	while (r >= 0 && !app_done(&st)) {
		if (http_now_ms() - start >= timeout) {
			app_words(&st, now, sizeof(now));
			r = run_ctx_error(ctx, -ETIMEDOUT, "Argo CD has not synced Application %s/%s after %" PRIu64
							   " s: %s",
					  ns, app, timeout / 1000, now);
			break;
		}
		sleep_ms(poll);
		/* a field of ours changed meanwhile is set back too */
		r = survey(ctx, w, true, &diff, &st);
		app_words(&st, now, sizeof(now));
		if (r >= 0 && !streq(now, said)) {
			progress(g, "Argo CD: Application %s/%s: %s", ns, app, now);
			snprintf(said, sizeof(said), "%s", now);
		}
	}
	wants_done(w);
	if (r < 0)
		return r;
	progress(g, "Argo CD follows %s at %s (commit %s)", json_get_string(s->params, "repo"),
		 json_get_string(s->params, "revision"), st.revision);
	res = json_object_new_object();
	if (res && json_add_string(res, "revision", st.revision) >= 0)
		run_ctx_set_result(ctx, res);
	else
		json_object_put(res);
	return 0;
}

const struct step_ops gitops_ops = { .check = gitops_check, .apply = gitops_apply };
