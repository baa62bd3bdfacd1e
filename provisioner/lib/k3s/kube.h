/* SPDX-License-Identifier: MIT */
/*
 * kube.h — the few Kubernetes API calls the K3s steps make, over http.h:
 * the server is trusted by the K3s server CA (never on first use), and we
 * authenticate with the administrator's client certificate (k3s-ca.h).
 * Errors: 0 or a negative errno; the text in kube_error() (never a body
 * we sent, never a header).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "pve/http.h"

#define KUBE_NAME_MAX 254

struct kube_cfg {
	const char *url;               /* "https://HOST:6443" */
	const char *ca_pem;            /* the K3s server CA */
	const char *cert_pem, *key_pem; /* our client certificate */
	struct http_opts http;
};

struct kube_client;

int kube_client_new(const struct kube_cfg *cfg, struct kube_client **ret);
/* Another client to the same API for another thread. */
int kube_client_clone(const struct kube_client *k, uint64_t salt, struct kube_client **ret);
struct kube_client *kube_client_free(struct kube_client *k);
DEFINE_FREE_FUNC(struct kube_client, kube_client_free);
const char *kube_error(const struct kube_client *k);
const char *kube_url(const struct kube_client *k);

/* GET /readyz: 0 when the API server says "ok"; -EAGAIN when it answers
 * but is not ready (503 while etcd elects, say); transport errors as
 * http_request(). */
int kube_readyz(struct kube_client *k);

struct kube_node {
	char name[KUBE_NAME_MAX];
	bool ready;                     /* condition Ready is "True" */
	bool control_plane, etcd;       /* node-role.kubernetes.io/... = "true" */
	char internal_ip[48];           /* "" when none */
	char kubelet_version[64];
};
/* GET /api/v1/nodes. *ret is malloc'd (free()). */
int kube_nodes(struct kube_client *k, struct kube_node **ret, size_t *ret_n);
const struct kube_node *kube_node_find(const struct kube_node *v, size_t n, const char *name);
/* DELETE /api/v1/nodes/{name}: 0, or -ENOENT when there is none. */
int kube_node_delete(struct kube_client *k, const char *name);
/* DELETE /api/v1/namespaces/{ns}/secrets/{name}: 0, or -ENOENT. */
int kube_secret_delete(struct kube_client *k, const char *ns, const char *name);

/* Decoder of a NodeList, exposed for tests and fuzzing (-EBADMSG). */
struct json_object;
int kube_decode_nodes(struct json_object *list, struct kube_node **ret, size_t *ret_n);

/* GET path (with its query string, if any): *ret the answer's JSON
 * object (json_object_put() it). -ENOENT for 404. */
int kube_get(struct kube_client *k, const char *path, struct json_object **ret);
/* GET path as text (a pod's log): *ret malloc'd and NUL-terminated, its
 * last max bytes at most. */
int kube_get_text(struct kube_client *k, const char *path, size_t max, char **ret);

/* A HelmChart (helm.cattle.io/v1) as the K3s steps compare it. */
struct kube_helm_chart {
	char name[KUBE_NAME_MAX];
	char chart[512];            /* spec.chart */
	char target_namespace[KUBE_NAME_MAX];
	char *values;               /* spec.valuesContent, malloc'd; NULL when none */
	char job_name[KUBE_NAME_MAX]; /* status.jobName: the helm controller's Job; "" until it made one */
};
/* A HelmChartList's items. *ret is freed with kube_helm_charts_free(). */
int kube_decode_helm_charts(struct json_object *list, struct kube_helm_chart **ret, size_t *ret_n);
void kube_helm_charts_free(struct kube_helm_chart *v, size_t n);

/* A Job (batch/v1) as far as its outcome goes. */
struct kube_job {
	bool complete, failed;   /* condition Complete / Failed is "True" */
	unsigned active;
	char reason[64], message[256]; /* the Failed condition's */
};
int kube_decode_job(struct json_object *o, struct kube_job *ret);

/* From an EventList, the message of the newest event with this reason
 * (by lastTimestamp, then list order) into buf; "" when none. */
int kube_decode_event_message(struct json_object *list, const char *reason, char *buf, size_t size);

/* DELETE path: 0 (accepted; the object may go later, with finalizers), or
 * -ENOENT when there is none. */
int kube_delete(struct kube_client *k, const char *path);

/* A Pod, as far as a job's crash loop goes. */
struct kube_pod {
	char name[KUBE_NAME_MAX];
	unsigned restarts; /* the most of its containers' restartCount */
};
/* A PodList's items. *ret is malloc'd (free()). */
int kube_decode_pods(struct json_object *list, struct kube_pod **ret, size_t *ret_n);

/* Server-side apply (PATCH application/apply-patch+yaml, force): obj is
 * the whole intent of `manager` for the object at path (.../NAME). *ret
 * (optional) the object as stored. -EINVAL when the API refuses it (422:
 * the schema; the text in kube_error()), -EBUSY on a conflict. */
int kube_apply(struct kube_client *k, const char *path, const char *manager, struct json_object *obj,
	       struct json_object **ret);
/* The object at path against want: *differs whether kube_has(want, the
 * cluster's) fails (absent included); with apply, then applied as
 * `manager`. *ret_have (optional) the cluster's object before, NULL when
 * absent. Errors as kube_get() and kube_apply(). */
int kube_ensure(struct kube_client *k, const char *path, const char *manager, struct json_object *want, bool apply,
		bool *differs, struct json_object **ret_have);
/* Whether every field of want is in have with the same value (arrays
 * element by element, same length): what an apply of want would leave
 * unchanged. Fields only have holds (defaults, status) do not count. */
bool kube_has(const struct json_object *want, const struct json_object *have);
/* An object a step wants at an API path (kube_ensure()'s want), for the
 * steps that keep a list of them. */
#define KUBE_PATH_MAX 320
struct kube_want {
	char path[KUBE_PATH_MAX];
	struct json_object *obj; /* owned */
};
/* Each w[i].obj put. */
void kube_wants_done(struct kube_want *w, size_t n);
/* data[key] = base64(value), as a Secret's data holds it; the encoded
 * copy is wiped after (value may be a secret). 0 or -ENOMEM. */
int kube_put_b64(struct json_object *data, const char *key, const char *value);
