/* SPDX-License-Identifier: MIT */
/*
 * kube.c — see kube.h. Answers are Kubernetes objects (a NodeList) or, on
 * failure, a Status object whose `message` goes into the error text.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base64.h"
#include "kube.h"
#include "plan/json-util.h"
#include "util.h"

struct kube_client {
	struct http_transport *t;
	char err[512];
};

static void seterr(struct kube_client *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct kube_client *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->err, sizeof(k->err), fmt, ap);
	va_end(ap);
}

int kube_client_new(const struct kube_cfg *cfg, struct kube_client **ret)
{
	_cleanup_(kube_client_freep) struct kube_client *k = NULL;
	int r;

	if (isempty(cfg->url) || isempty(cfg->ca_pem) || isempty(cfg->cert_pem) || isempty(cfg->key_pem))
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->t = http_transport_new(cfg->url, &cfg->http);
	if (!k->t)
		return -EINVAL; /* cppcheck-suppress memleak ; _cleanup_ frees k */
	r = http_transport_ca_pem(k->t, cfg->ca_pem);
	if (r >= 0)
		r = http_transport_client_cert(k->t, cfg->cert_pem, cfg->key_pem);
	if (r < 0)
		return r; /* cppcheck-suppress memleak ; _cleanup_ frees k */
	*ret = TAKE_PTR(k);
	return 0;
}

int kube_client_clone(const struct kube_client *k, uint64_t salt, struct kube_client **ret)
{
	struct kube_client *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->t = http_transport_clone(k->t, salt);
	if (!c->t) {
		free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

struct kube_client *kube_client_free(struct kube_client *k)
{
	if (k) {
		http_transport_free(k->t);
		free(k);
	}
	return NULL;
}

const char *kube_error(const struct kube_client *k)
{
	return k->err;
}

const char *kube_url(const struct kube_client *k)
{
	return http_transport_base_url(k->t);
}

/* One request with a body of content type ctype (NULL: none); *ret gets
 * the parsed body of a 2xx answer (may be NULL). */
static int call_body(struct kube_client *k, enum http_method m, const char *path, const char *ctype,
		     const char *body, long *ret_status, struct json_object **ret)
{
	struct http_request req = { .method = m, .path = path, .idempotent = true,
				    .headers = { "Accept: application/json" }, .content_type = ctype, .body = body,
				    .body_len = body ? strlen(body) : 0 };
	struct http_response rsp = {};
	_cleanup_json_ struct json_object *o = NULL;
	const char *msg;
	long status;
	int r = http_request(k->t, &req, &rsp);

	if (r < 0) {
		seterr(k, "%s", http_transport_error(k->t));
		return r;
	}
	*ret_status = rsp.status;
	o = rsp.body_len ? json_tokener_parse(rsp.body) : NULL;
	if (rsp.status >= 200 && rsp.status < 300) {
		http_response_done(&rsp);
		if (ret)
			*ret = TAKE_PTR(o);
		return 0;
	}
	status = rsp.status; /* http_response_done() clears it */
	msg = json_get_string(o, "message");
	seterr(k, "%s %s%s: HTTP %ld%s%s", http_method_names[m], kube_url(k), path, status, msg ? ": " : "",
	       msg ? msg : "");
	http_response_done(&rsp);
	switch (status) {
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EBUSY;
	case 422:
		return -EINVAL;
	case 429:
	case 500:
	case 503:
	case 504:
		return -EAGAIN;
	default:
		return -EPROTO;
	}
}

static int call(struct kube_client *k, enum http_method m, const char *path, long *ret_status,
		struct json_object **ret)
{
	return call_body(k, m, path, NULL, NULL, ret_status, ret);
}

int kube_readyz(struct kube_client *k)
{
	struct http_request req = { .method = HTTP_GET, .path = "/readyz", .idempotent = true };
	struct http_response rsp = {};
	int r = http_request(k->t, &req, &rsp);

	if (r < 0) {
		seterr(k, "%s", http_transport_error(k->t));
		return r;
	}
	if (rsp.status == 200 && rsp.body && strncmp(rsp.body, "ok", 2) == 0)
		r = 0;
	else {
		seterr(k, "%s/readyz: HTTP %ld", kube_url(k), rsp.status);
		r = rsp.status == 401 || rsp.status == 403 ? -EACCES : -EAGAIN;
	}
	http_response_done(&rsp);
	return r;
}

static int copy_str(char *dst, size_t size, const char *s)
{
	if (!s)
		s = "";
	if (strlen(s) >= size)
		return -EBADMSG;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static bool label_true(const struct json_object *labels, const char *key)
{
	const char *v = json_get_string(labels, key);

	return v && (streq(v, "true") || streq(v, ""));
}

static int decode_node(struct json_object *o, struct kube_node *n)
{
	struct json_object *meta = json_get_object(o, "metadata"), *status = json_get_object(o, "status");
	struct json_object *labels = json_get_object(meta, "labels");
	struct json_object *conds = json_get_array(status, "conditions");
	struct json_object *addrs = json_get_array(status, "addresses");
	int r;

	*n = (struct kube_node){};
	r = copy_str(n->name, sizeof(n->name), json_get_string(meta, "name"));
	if (r < 0 || !n->name[0])
		return -EBADMSG;
	n->control_plane = label_true(labels, "node-role.kubernetes.io/control-plane");
	n->etcd = label_true(labels, "node-role.kubernetes.io/etcd");
	for (size_t i = 0; conds && i < json_object_array_length(conds); i++) {
		struct json_object *c = json_object_array_get_idx(conds, i);

		if (streq_ptr(json_get_string(c, "type"), "Ready"))
			n->ready = streq_ptr(json_get_string(c, "status"), "True");
	}
	for (size_t i = 0; addrs && i < json_object_array_length(addrs); i++) {
		struct json_object *a = json_object_array_get_idx(addrs, i);

		if (streq_ptr(json_get_string(a, "type"), "InternalIP") && !n->internal_ip[0] &&
		    copy_str(n->internal_ip, sizeof(n->internal_ip), json_get_string(a, "address")) < 0)
			return -EBADMSG;
	}
	return copy_str(n->kubelet_version, sizeof(n->kubelet_version),
			json_get_string(json_get_object(status, "nodeInfo"), "kubeletVersion"));
}

/* A list object's items: kind must be the list kind we asked for, and
 * its length sane. */
static int list_items(struct json_object *list, const char *kind, struct json_object **ret, size_t *ret_n)
{
	struct json_object *items = json_get_array(list, "items");

	if (!items || !streq_ptr(json_get_string(list, "kind"), kind))
		return -EBADMSG;
	*ret_n = json_object_array_length(items);
	if (*ret_n > 10000)
		return -EBADMSG;
	*ret = items;
	return 0;
}

int kube_decode_nodes(struct json_object *list, struct kube_node **ret, size_t *ret_n)
{
	_cleanup_free_ struct kube_node *v = NULL;
	struct json_object *items;
	size_t n;

	if (list_items(list, "NodeList", &items, &n) < 0)
		return -EBADMSG;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (decode_node(json_object_array_get_idx(items, i), &v[i]) < 0)
			return -EBADMSG;
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

int kube_nodes(struct kube_client *k, struct kube_node **ret, size_t *ret_n)
{
	_cleanup_json_ struct json_object *o = NULL;
	long status;
	int r = call(k, HTTP_GET, "/api/v1/nodes", &status, &o);

	if (r < 0)
		return r;
	r = kube_decode_nodes(o, ret, ret_n);
	if (r == -EBADMSG)
		seterr(k, "%s/api/v1/nodes: not a NodeList we understand", kube_url(k));
	return r;
}

const struct kube_node *kube_node_find(const struct kube_node *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].name, name))
			return &v[i];
	return NULL;
}

static bool name_ok(const char *s)
{
	if (isempty(s) || strlen(s) >= KUBE_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
			return false;
	return true;
}

int kube_node_delete(struct kube_client *k, const char *name)
{
	char path[KUBE_NAME_MAX + 32];
	long status;

	if (!name_ok(name))
		return -EINVAL;
	snprintf(path, sizeof(path), "/api/v1/nodes/%s", name);
	return call(k, HTTP_DELETE, path, &status, NULL);
}

int kube_secret_delete(struct kube_client *k, const char *ns, const char *name)
{
	char path[2 * KUBE_NAME_MAX + 48];
	long status;

	if (!name_ok(ns) || !name_ok(name))
		return -EINVAL;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
	return call(k, HTTP_DELETE, path, &status, NULL);
}

int kube_get(struct kube_client *k, const char *path, struct json_object **ret)
{
	long status;
	int r = call(k, HTTP_GET, path, &status, ret);

	if (r >= 0 && !*ret) {
		seterr(k, "GET %s%s: an empty answer", kube_url(k), path);
		return -EBADMSG;
	}
	return r;
}

int kube_get_text(struct kube_client *k, const char *path, size_t max, char **ret)
{
	struct http_request req = { .method = HTTP_GET, .path = path, .idempotent = true };
	struct http_response rsp = {};
	const char *body;
	size_t n;
	int r = http_request(k->t, &req, &rsp);

	if (r < 0) {
		seterr(k, "%s", http_transport_error(k->t));
		return r;
	}
	if (rsp.status != 200) {
		seterr(k, "GET %s%s: HTTP %ld", kube_url(k), path, rsp.status);
		r = rsp.status == 404 ? -ENOENT : -EPROTO;
		http_response_done(&rsp);
		return r;
	}
	body = rsp.body ? rsp.body : "";
	n = rsp.body ? rsp.body_len : 0;
	if (n > max) {
		body += n - max;
		n = max;
	}
	*ret = strndup(body, n);
	http_response_done(&rsp);
	return *ret ? 0 : -ENOMEM;
}

static int decode_helm_chart(struct json_object *o, struct kube_helm_chart *c)
{
	struct json_object *meta = json_get_object(o, "metadata"), *spec = json_get_object(o, "spec");
	const char *values = json_get_string(spec, "valuesContent");

	if (!spec || copy_str(c->name, sizeof(c->name), json_get_string(meta, "name")) < 0 || !c->name[0] ||
	    copy_str(c->chart, sizeof(c->chart), json_get_string(spec, "chart")) < 0 ||
	    copy_str(c->target_namespace, sizeof(c->target_namespace), json_get_string(spec, "targetNamespace")) < 0 ||
	    copy_str(c->job_name, sizeof(c->job_name), json_get_string(json_get_object(o, "status"), "jobName")) < 0)
		return -EBADMSG;
	if (values) {
		c->values = strdup(values);
		if (!c->values)
			return -ENOMEM;
	}
	return 0;
}

void kube_helm_charts_free(struct kube_helm_chart *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].values);
	free(v);
}

int kube_decode_helm_charts(struct json_object *list, struct kube_helm_chart **ret, size_t *ret_n)
{
	struct kube_helm_chart *v;
	struct json_object *items;
	size_t n;
	int r = 0;

	if (list_items(list, "HelmChartList", &items, &n) < 0)
		return -EBADMSG;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n && r >= 0; i++)
		r = decode_helm_chart(json_object_array_get_idx(items, i), &v[i]);
	if (r < 0) {
		kube_helm_charts_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static const char *json_str_or(const struct json_object *o, const char *key)
{
	const char *s = json_get_string(o, key);

	return s ? s : "";
}

int kube_decode_job(struct json_object *o, struct kube_job *ret)
{
	struct json_object *status = json_get_object(o, "status");
	struct json_object *conds = json_get_array(status, "conditions");
	uint64_t active = 0;

	*ret = (struct kube_job){};
	if (!streq_ptr(json_get_string(o, "kind"), "Job"))
		return -EBADMSG;
	if (json_get_u64(status, "active", &active) == -EINVAL || active > 1000000)
		return -EBADMSG;
	ret->active = (unsigned)active;
	for (size_t i = 0; conds && i < json_object_array_length(conds); i++) {
		struct json_object *c = json_object_array_get_idx(conds, i);
		const char *type = json_get_string(c, "type");

		if (!streq_ptr(json_get_string(c, "status"), "True"))
			continue;
		if (streq_ptr(type, "Complete"))
			ret->complete = true;
		else if (streq_ptr(type, "Failed")) {
			ret->failed = true;
			snprintf(ret->reason, sizeof(ret->reason), "%s", json_str_or(c, "reason"));
			snprintf(ret->message, sizeof(ret->message), "%s", json_str_or(c, "message"));
		}
	}
	return 0;
}

int kube_decode_event_message(struct json_object *list, const char *reason, char *buf, size_t size)
{
	struct json_object *items = json_get_array(list, "items");
	const char *best = NULL, *best_at = "";

	if (size)
		buf[0] = 0;
	if (!items)
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *e = json_object_array_get_idx(items, i);
		const char *at = json_str_or(e, "lastTimestamp");
		const char *msg = json_get_string(e, "message");

		/* RFC 3339 times in UTC compare as strings */
		if (msg && streq_ptr(json_get_string(e, "reason"), reason) && strcmp(at, best_at) >= 0) {
			best = msg;
			best_at = at;
		}
	}
	if (best && size)
		snprintf(buf, size, "%s", best);
	return 0;
}

int kube_delete(struct kube_client *k, const char *path)
{
	long status;

	return call(k, HTTP_DELETE, path, &status, NULL);
}

int kube_decode_pods(struct json_object *list, struct kube_pod **ret, size_t *ret_n)
{
	_cleanup_free_ struct kube_pod *v = NULL;
	struct json_object *items;
	size_t n;

	if (list_items(list, "PodList", &items, &n) < 0)
		return -EBADMSG;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(items, i);
		struct json_object *cs = json_get_array(json_get_object(p, "status"), "containerStatuses");

		if (copy_str(v[i].name, sizeof(v[i].name), json_get_string(json_get_object(p, "metadata"), "name")) < 0 ||
		    !v[i].name[0])
			return -EBADMSG;
		for (size_t c = 0; cs && c < json_object_array_length(cs); c++) {
			uint64_t r = 0;
			int e = json_get_u64(json_object_array_get_idx(cs, c), "restartCount", &r);

			if (e == -EINVAL || r > 1000000)
				return -EBADMSG;
			if (r > v[i].restarts)
				v[i].restarts = (unsigned)r;
		}
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

int kube_apply(struct kube_client *k, const char *path, const char *manager, struct json_object *obj,
	       struct json_object **ret)
{
	const char *body = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
	char full[1024];
	long status;

	if (!body || !manager || !name_ok(manager) ||
	    snprintf(full, sizeof(full), "%s?fieldManager=%s&force=true", path, manager) >= (int)sizeof(full))
		return -EINVAL;
	/* JSON is YAML: server-side apply takes it as is */
	return call_body(k, HTTP_PATCH, full, "application/apply-patch+yaml", body, &status, ret);
}

int kube_ensure(struct kube_client *k, const char *path, const char *manager, struct json_object *want, bool apply,
		bool *differs, struct json_object **ret_have)
{
	struct json_object *have = NULL;
	int r;

	if (ret_have)
		*ret_have = NULL;
	r = kube_get(k, path, &have);
	if (r < 0 && r != -ENOENT)
		return r;
	*differs = r == -ENOENT || !kube_has(want, have);
	r = *differs && apply ? kube_apply(k, path, manager, want, NULL) : 0;
	if (ret_have)
		*ret_have = have;
	else
		json_object_put(have);
	return r;
}

bool kube_has(const struct json_object *want, const struct json_object *have)
{
	enum json_type t = json_object_get_type(want);

	if (t != json_object_get_type(have))
		return false;
	switch (t) {
	case json_type_object: {
		json_object_object_foreach((struct json_object *)want, key, v) {
			struct json_object *h;

			if (!json_object_object_get_ex(have, key, &h) || !kube_has(v, h))
				return false;
		}
		return true;
	}
	case json_type_array: {
		size_t n = json_object_array_length(want);

		if (n != json_object_array_length(have))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!kube_has(json_object_array_get_idx(want, i), json_object_array_get_idx(have, i)))
				return false;
		return true;
	}
	default:
		return json_object_equal((struct json_object *)want, (struct json_object *)have);
	}
}

int kube_put_b64(struct json_object *data, const char *key, const char *value)
{
	_cleanup_free_ char *v = NULL;
	int r = base64_encode(value, strlen(value), &v);

	if (r >= 0)
		r = json_add_string(data, key, v);
	if (v)
		explicit_wipe(v, strlen(v));
	return r;
}

void kube_wants_done(struct kube_want *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_object_put(w[i].obj);
		w[i].obj = NULL;
	}
}
