/* SPDX-License-Identifier: MIT */
/*
 * k3s-config.c — see k3s-config.h. Key names are K3s's own (`k3s server
 * --help`: a config file key is the flag without its dashes).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "k3s-config.h"
#include "manifest/yaml-util.h"
#include "parse.h"
#include "util.h"

static bool label_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

void k3s_fmt_ip(uint32_t ip, char buf[16])
{
	ipv4_format(ip, buf, 16);
}

static void str_list(struct yaml_out *y, const char *key, const char *const *v, size_t n)
{
	if (!n)
		return;
	yaml_out_key(y, key);
	yaml_out_seq_start(y, false);
	for (size_t i = 0; i < n; i++)
		yaml_out_str(y, v[i]);
	yaml_out_seq_end(y);
}

int k3s_config_yaml(const struct k3s_node_cfg *c, char **ret, size_t *ret_len)
{
	_cleanup_(yaml_out_freep) struct yaml_out *y = NULL;
	bool server = c->role != K3S_ROLE_AGENT;
	char ip[16];
	int r;

	if (!label_ok(c->node_name) || !c->node_ip || isempty(c->token) ||
	    (c->role == K3S_ROLE_INIT) != !c->server || (c->cluster_init && c->role != K3S_ROLE_INIT) ||
	    (server && (isempty(c->cluster_cidr) || isempty(c->service_cidr))))
		return -EINVAL;
	r = yaml_out_new("# devopslab: K3s configuration (docs/k3s.md)\n", K3S_CONFIG_MAX, &y);
	if (r < 0)
		return r;
	k3s_fmt_ip(c->node_ip, ip);
	yaml_out_map_start(y);
	if (c->role == K3S_ROLE_INIT) {
		/* embedded etcd, this server its first member (else SQLite) */
		if (c->cluster_init) {
			yaml_out_key(y, "cluster-init");
			yaml_out_bool(y, true);
		}
	} else {
		yaml_out_key(y, "server");
		yaml_out_str(y, c->server);
	}
	yaml_out_key(y, "token");
	yaml_out_str(y, c->token);
	yaml_out_key(y, "node-name");
	yaml_out_str(y, c->node_name);
	yaml_out_key(y, "node-ip");
	yaml_out_str(y, ip);
	if (server) {
		yaml_out_key(y, "cluster-cidr");
		yaml_out_str(y, c->cluster_cidr);
		yaml_out_key(y, "service-cidr");
		yaml_out_str(y, c->service_cidr);
		str_list(y, "disable", c->disable, c->n_disable);
		str_list(y, "tls-san", c->tls_san, c->n_tls_san);
		yaml_out_key(y, "write-kubeconfig-mode");
		yaml_out_str(y, "0600");
	}
	yaml_out_map_end(y);
	return yaml_out_finish(y, ret, ret_len);
}

int k3s_token(const char *ca_hash, const char *secret, char **ret)
{
	if (!ca_hash || strlen(ca_hash) != K3S_CA_HASH_LEN || isempty(secret) || strchr(secret, ':') ||
	    strpbrk(secret, "\n\r"))
		return -EINVAL;
	return asprintf(ret, "K10%s::server:%s", ca_hash, secret) < 0 ? -ENOMEM : 0;
}

static void b64_value(struct yaml_out *y, const char *key, const char *pem, int *r)
{
	_cleanup_free_ char *b = NULL;

	if (*r >= 0)
		*r = base64_encode(pem, strlen(pem), &b);
	yaml_out_key(y, key);
	yaml_out_str(y, b ? b : "");
	if (b)
		explicit_wipe(b, strlen(b));
}

int k3s_kubeconfig(const char *name, const char *server, const struct k3s_trust *t, char **ret, size_t *ret_len)
{
	_cleanup_(yaml_out_freep) struct yaml_out *y = NULL;
	int r;

	if (!label_ok(name) || isempty(server) || !t->server_ca || !t->admin_cert || !t->admin_key)
		return -EINVAL;
	r = yaml_out_new(NULL, 1u << 20, &y);
	if (r < 0)
		return r;
	yaml_out_map_start(y);
	yaml_out_key(y, "apiVersion");
	yaml_out_str(y, "v1");
	yaml_out_key(y, "kind");
	yaml_out_str(y, "Config");
	yaml_out_key(y, "clusters");
	yaml_out_seq_start(y, false);
	yaml_out_map_start(y);
	yaml_out_key(y, "name");
	yaml_out_str(y, name);
	yaml_out_key(y, "cluster");
	yaml_out_map_start(y);
	yaml_out_key(y, "server");
	yaml_out_str(y, server);
	b64_value(y, "certificate-authority-data", t->server_ca, &r);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_seq_end(y);
	yaml_out_key(y, "users");
	yaml_out_seq_start(y, false);
	yaml_out_map_start(y);
	yaml_out_key(y, "name");
	yaml_out_str(y, "devopslab-admin");
	yaml_out_key(y, "user");
	yaml_out_map_start(y);
	b64_value(y, "client-certificate-data", t->admin_cert, &r);
	b64_value(y, "client-key-data", t->admin_key, &r);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_seq_end(y);
	yaml_out_key(y, "contexts");
	yaml_out_seq_start(y, false);
	yaml_out_map_start(y);
	yaml_out_key(y, "name");
	yaml_out_str(y, name);
	yaml_out_key(y, "context");
	yaml_out_map_start(y);
	yaml_out_key(y, "cluster");
	yaml_out_str(y, name);
	yaml_out_key(y, "user");
	yaml_out_str(y, "devopslab-admin");
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_seq_end(y);
	yaml_out_key(y, "current-context");
	yaml_out_str(y, name);
	yaml_out_map_end(y);
	if (r < 0)
		return r;
	return yaml_out_finish(y, ret, ret_len);
}

/* ---- kube-vip ---------------------------------------------------------------- */

static void kv(struct yaml_out *y, const char *k, const char *v)
{
	yaml_out_key(y, k);
	yaml_out_str(y, v);
}

static void meta(struct yaml_out *y, const char *api, const char *kind, const char *name, bool ns)
{
	kv(y, "apiVersion", api);
	kv(y, "kind", kind);
	yaml_out_key(y, "metadata");
	yaml_out_map_start(y);
	kv(y, "name", name);
	if (ns)
		kv(y, "namespace", "kube-system");
	yaml_out_map_end(y);
}

static void strs(struct yaml_out *y, const char *key, const char *const *v)
{
	yaml_out_key(y, key);
	yaml_out_seq_start(y, true);
	for (; *v; v++)
		yaml_out_str(y, *v);
	yaml_out_seq_end(y);
}

static void rule(struct yaml_out *y, const char *group, const char *const *resources, const char *const *verbs)
{
	const char *const groups[] = { group, NULL };

	yaml_out_map_start(y);
	strs(y, "apiGroups", groups);
	strs(y, "resources", resources);
	strs(y, "verbs", verbs);
	yaml_out_map_end(y);
}

static void kv_account(struct yaml_out *y)
{
	yaml_out_map_start(y);
	meta(y, "v1", "ServiceAccount", "kube-vip", true);
	yaml_out_map_end(y);
}

static void kv_role(struct yaml_out *y)
{
	static const char *const core[] = { "services", "services/status", "nodes", "endpoints", NULL };
	static const char *const core_verbs[] = { "list", "get", "watch", "update", NULL };
	static const char *const leases[] = { "leases", NULL };
	static const char *const lease_verbs[] = { "list", "get", "watch", "update", "create", NULL };
	/* services (svc_enable): the endpoints of a Local-policy Service, the
	 * node it is announced from, the pods behind it */
	static const char *const nodes[] = { "nodes", NULL }, *const patch[] = { "patch", NULL };
	static const char *const slices[] = { "endpointslices", NULL };
	static const char *const pods[] = { "pods", NULL }, *const list[] = { "list", NULL };

	yaml_out_map_start(y);
	meta(y, "rbac.authorization.k8s.io/v1", "ClusterRole", "system:kube-vip-role", false);
	yaml_out_key(y, "rules");
	yaml_out_seq_start(y, false);
	rule(y, "", core, core_verbs);
	rule(y, "", nodes, patch);
	rule(y, "", pods, list);
	rule(y, "coordination.k8s.io", leases, lease_verbs);
	rule(y, "discovery.k8s.io", slices, core_verbs);
	yaml_out_seq_end(y);
	yaml_out_map_end(y);
}

static void kv_binding(struct yaml_out *y)
{
	yaml_out_map_start(y);
	meta(y, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "system:kube-vip-binding", false);
	yaml_out_key(y, "roleRef");
	yaml_out_map_start(y);
	kv(y, "apiGroup", "rbac.authorization.k8s.io");
	kv(y, "kind", "ClusterRole");
	kv(y, "name", "system:kube-vip-role");
	yaml_out_map_end(y);
	yaml_out_key(y, "subjects");
	yaml_out_seq_start(y, false);
	yaml_out_map_start(y);
	kv(y, "kind", "ServiceAccount");
	kv(y, "name", "kube-vip");
	kv(y, "namespace", "kube-system");
	yaml_out_map_end(y);
	yaml_out_seq_end(y);
	yaml_out_map_end(y);
}

static void toleration(struct yaml_out *y, const char *effect)
{
	yaml_out_map_start(y);
	kv(y, "effect", effect);
	kv(y, "operator", "Exists");
	yaml_out_map_end(y);
}

static void kv_daemonset(struct yaml_out *y, const char *ref, const char *iface, const char *vip)
{
	/* kube-vip's settings are its environment (kube-vip "manifest daemonset") */
	const char *const env[][2] = {
		{ "vip_arp", "true" },	       { "port", K3S_API_PORT_STR },  { "vip_interface", iface },
		{ "vip_cidr", "32" },	       { "cp_enable", "true" },	      { "cp_namespace", "kube-system" },
		{ "svc_enable", "true" },      { "vip_leaderelection", "true" }, { "vip_leasename", "plndr-cp-lock" },
		{ "vip_leaseduration", "5" }, { "vip_renewdeadline", "3" },   { "vip_retryperiod", "1" },
		{ "address", vip },
	};
	static const char *const caps[] = { "NET_ADMIN", "NET_RAW", NULL };
	static const char *const args[] = { "manager", NULL };

	yaml_out_map_start(y);
	meta(y, "apps/v1", "DaemonSet", K3S_KUBE_VIP_DS, true);
	yaml_out_key(y, "spec");
	yaml_out_map_start(y);
	yaml_out_key(y, "selector");
	yaml_out_map_start(y);
	yaml_out_key(y, "matchLabels");
	yaml_out_map_start(y);
	kv(y, "name", K3S_KUBE_VIP_DS);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_key(y, "template");
	yaml_out_map_start(y);
	yaml_out_key(y, "metadata");
	yaml_out_map_start(y);
	yaml_out_key(y, "labels");
	yaml_out_map_start(y);
	kv(y, "name", K3S_KUBE_VIP_DS);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_key(y, "spec");
	yaml_out_map_start(y);
	yaml_out_key(y, "nodeSelector");
	yaml_out_map_start(y);
	kv(y, "node-role.kubernetes.io/control-plane", "true");
	yaml_out_map_end(y);
	yaml_out_key(y, "tolerations");
	yaml_out_seq_start(y, false);
	toleration(y, "NoSchedule");
	toleration(y, "NoExecute");
	yaml_out_seq_end(y);
	kv(y, "serviceAccountName", "kube-vip");
	yaml_out_key(y, "hostNetwork");
	yaml_out_bool(y, true);
	yaml_out_key(y, "containers");
	yaml_out_seq_start(y, false);
	yaml_out_map_start(y);
	kv(y, "name", "kube-vip");
	kv(y, "image", ref);
	/* from the bundle's image tarball: there is no registry to pull from */
	kv(y, "imagePullPolicy", "Never");
	strs(y, "args", args);
	yaml_out_key(y, "env");
	yaml_out_seq_start(y, false);
	for (size_t i = 0; i < ELEMENTSOF(env); i++) {
		yaml_out_map_start(y);
		kv(y, "name", env[i][0]);
		kv(y, "value", env[i][1]);
		yaml_out_map_end(y);
	}
	yaml_out_seq_end(y);
	yaml_out_key(y, "securityContext");
	yaml_out_map_start(y);
	yaml_out_key(y, "capabilities");
	yaml_out_map_start(y);
	strs(y, "add", caps);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_seq_end(y);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
}

int k3s_kube_vip_manifest(const char *ref, const char *iface, uint32_t vip, char **ret, size_t *ret_len)
{
	/* one object per YAML document, as K3s's deploy controller reads them */
	_cleanup_free_ char *all = NULL;
	size_t len = 0;
	char ip[16];
	int r = 0;

	if (isempty(ref) || strpbrk(ref, " \t\n") || !label_ok(iface) || !vip)
		return -EINVAL;
	k3s_fmt_ip(vip, ip);
	for (unsigned i = 0; i < 4 && r >= 0; i++) {
		_cleanup_(yaml_out_freep) struct yaml_out *y = NULL;
		_cleanup_free_ char *t = NULL;
		size_t n = 0;
		char *grown;

		r = yaml_out_new(i ? "---\n" : "# devopslab: kube-vip serves the K3s API address (docs/k3s.md)\n",
				 1u << 16, &y);
		if (r < 0)
			break;
		if (i == 0)
			kv_account(y);
		else if (i == 1)
			kv_role(y);
		else if (i == 2)
			kv_binding(y);
		else
			kv_daemonset(y, ref, iface, ip);
		r = yaml_out_finish(y, &t, &n);
		if (r < 0)
			break;
		grown = realloc(all, len + n + 1);
		if (!grown)
			return -ENOMEM;
		all = grown;
		memcpy(all + len, t, n + 1);
		len += n;
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(all);
	*ret_len = len;
	return 0;
}

int k3s_helm_chart_manifest(const struct k3s_chart *c, char **ret, size_t *ret_len)
{
	_cleanup_(yaml_out_freep) struct yaml_out *y = NULL;
	char url[sizeof(K3S_CHART_URL_PREFIX) + 256];
	int r;

	if (!label_ok(c->name) || !label_ok(c->namespace) || isempty(c->archive) || strchr(c->archive, '/') ||
	    strlen(c->archive) >= 256)
		return -EINVAL;
	snprintf(url, sizeof(url), "%s%s", K3S_CHART_URL_PREFIX, c->archive);
	r = yaml_out_new("# devopslab: a chart from the bundle, installed and kept by K3s (docs/k3s.md)\n",
			 K3S_CONFIG_MAX, &y);
	if (r < 0)
		return r;
	yaml_out_map_start(y);
	kv(y, "apiVersion", "helm.cattle.io/v1");
	kv(y, "kind", "HelmChart");
	yaml_out_key(y, "metadata");
	yaml_out_map_start(y);
	kv(y, "name", c->name);
	kv(y, "namespace", "kube-system");
	yaml_out_key(y, "labels");
	yaml_out_map_start(y);
	kv(y, K3S_MANAGED_BY_LABEL, K3S_MANAGED_BY);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_key(y, "spec");
	yaml_out_map_start(y);
	kv(y, "chart", url);
	kv(y, "targetNamespace", c->namespace);
	yaml_out_key(y, "createNamespace");
	yaml_out_bool(y, true);
	if (c->values) {
		yaml_out_key(y, "valuesContent");
		yaml_out_text(y, c->values);
	}
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	return yaml_out_finish(y, ret, ret_len);
}
