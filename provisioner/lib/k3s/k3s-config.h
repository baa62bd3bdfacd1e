/* SPDX-License-Identifier: MIT */
/*
 * k3s-config.h — what one K3s VM receives (docs/k3s.md): the text of
 * /etc/rancher/k3s/config.yaml, the secure join token, and the kubeconfig
 * the provisioner exports. Pure functions: no I/O; every text is written
 * with libyaml's emitter (yaml-util.h), the same input giving the same
 * bytes. Returns 0, -EINVAL for input out of shape, -ENOMEM; *ret is a
 * malloc'd NUL-terminated text (the caller wipes and frees it: it holds
 * the token or a key).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k3s-ca.h"

#define K3S_CONFIG_PATH "/etc/rancher/k3s/config.yaml"
#define K3S_INSTALL_SCRIPT "/usr/local/lib/devopslab/k3s-install.sh"
#define K3S_API_PORT_STR "6443"
#define K3S_CONFIG_MAX (64u << 10) /* the guest agent's input-data limit */

enum k3s_role { K3S_ROLE_INIT, K3S_ROLE_SERVER, K3S_ROLE_AGENT };

struct k3s_node_cfg {
	enum k3s_role role;
	const char *node_name;   /* the VM's name: a DNS label */
	uint32_t node_ip;        /* host byte order */
	const char *server;      /* joins: "https://IP:6443"; NULL for the init server */
	bool cluster_init;       /* the init server: embedded etcd (k3s.ha); else SQLite */
	const char *token;       /* the secure token (k3s_token()) */
	const char *cluster_cidr, *service_cidr; /* servers */
	const char *const *disable;  /* servers: packaged components left out */
	size_t n_disable;
	const char *const *tls_san;  /* servers: extra names in the serving certificate */
	size_t n_tls_san;
};

/* An IPv4 address (host byte order) as dotted quad text. */
void k3s_fmt_ip(uint32_t ip, char buf[16]);

/* config.yaml: the flags K3s reads at every start (servers: identical
 * critical flags on all of them, K3s refuses a join otherwise). */
int k3s_config_yaml(const struct k3s_node_cfg *c, char **ret, size_t *ret_len);

/* "K10<ca_hash>::server:<secret>": the full token form, with which a
 * joining node checks the cluster's CA before it sends the secret. */
int k3s_token(const char *ca_hash, const char *secret, char **ret);

/* A kubeconfig for the administrator: server (the API URL), the K3s
 * server CA, the admin client certificate and key, inline. */
int k3s_kubeconfig(const char *name, const char *server, const struct k3s_trust *t, char **ret, size_t *ret_len);

/* kube-vip (docs/k3s.md, "The API address"): its service account, role,
 * binding and DaemonSet on the control-plane nodes, announcing vip by ARP
 * on iface and balancing the API port among the servers, leader elected;
 * image `ref` from the bundle (never pulled). One YAML stream for K3s's
 * auto-deploying manifests directory. */
#define K3S_MANIFESTS_DIR "/var/lib/rancher/k3s/server/manifests"
#define K3S_KUBE_VIP_MANIFEST K3S_MANIFESTS_DIR "/devopslab-kube-vip.yaml"
#define K3S_KUBE_VIP_DS "kube-vip-ds"
int k3s_kube_vip_manifest(const char *ref, const char *iface, uint32_t vip, char **ret, size_t *ret_len);

/* A chart from the bundle for K3s's helm controller (docs/k3s.md,
 * "Workloads"): a HelmChart kube-system/NAME, labelled as ours, whose
 * chart is the archive the servers hold in MANIFEST_K3S_CHARTS_DIR (their
 * API servers serve it under /static/), released into namespace (made if
 * missing) with values (YAML, or NULL) as its valuesContent. One YAML
 * document for the first server's auto-deploying manifests, at
 * K3S_CHART_MANIFEST_FMT; -EINVAL for a name or namespace that is not a
 * DNS label, or an archive name with a '/'. */
struct k3s_chart {
	const char *name, *namespace, *archive, *values;
};
#define K3S_CHART_URL_PREFIX "https://%{KUBERNETES_API}%/static/charts/"
#define K3S_CHART_MANIFEST_FMT K3S_MANIFESTS_DIR "/devopslab-chart-%s.yaml"
#define K3S_CHART_ADDON_FMT "devopslab-chart-%s" /* K3s's Addon for that file: its base name */
#define K3S_MANAGED_BY_LABEL "app.kubernetes.io/managed-by"
#define K3S_MANAGED_BY "devopslab"
int k3s_helm_chart_manifest(const struct k3s_chart *c, char **ret, size_t *ret_len);
