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
