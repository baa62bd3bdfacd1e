/* SPDX-License-Identifier: MIT */
/*
 * k3s.c — the K3s steps; see k3s.h and docs/k3s.md.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include <json-c/json.h>

#include "k3s-ca.h"
#include "k3s-config.h"
#include "k3s.h"
#include "k3s-internal.h"
#include "kube.h"
#include "log.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/pve-guest.h"
#include "fileio.h"
#include "util.h"





/* The first server: VM 0 of the first server group. */
static int first_server(const struct manifest *m, struct mf_vm *ret)
{
	const struct mf_vm_group *g = m->k3s.n_servers ? manifest_find_vm_group(m, m->k3s.servers[0]) : NULL;

	return g ? manifest_vm_expand(g, 0, ret) : -EINVAL;
}

int k3s_ctx_new(const struct k3s_cfg *cfg, const struct manifest *m, struct k3s_ctx **ret)
{
	_cleanup_(k3s_ctx_freep) struct k3s_ctx *k = NULL;
	struct kube_cfg kc = {};
	struct mf_vm first;
	char ip[16];
	int r;

	if (!cfg->pve || isempty(cfg->token_secret) || !cfg->ca_key_pem || !m->k3s.present)
		return -EINVAL;
	r = first_server(m, &first);
	if (r < 0)
		return r;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->cfg = *cfg;
	k->cfg.token_secret = NULL; /* not kept: only the full token is */
	k->gx = (struct guest_exec){ .pve = cfg->pve, .progress = cfg->progress, .userdata = cfg->userdata };
	k->etcd = m->k3s.ha;
	if (!k->cfg.poll_ms)
		k->cfg.poll_ms = 2000;
	if (!k->cfg.exec_timeout_ms)
		k->cfg.exec_timeout_ms = 10 * 60 * 1000;
	if (!k->cfg.ready_timeout_ms)
		k->cfg.ready_timeout_ms = 10 * 60 * 1000;
	k->gx.poll_ms = k->cfg.poll_ms;
	k->gx.timeout_ms = k->cfg.exec_timeout_ms;
	r = k3s_trust_derive(cfg->ca_key_pem, cfg->ca_key_len, &k->trust);
	if (r < 0)
		return r;
	r = k3s_token(k->trust.ca_hash, cfg->token_secret, &k->token);
	if (r < 0)
		return r;
	/* the VIP once kube-vip serves it (the first server's step waits for
	 * that), otherwise the first server */
	k3s_fmt_ip(m->k3s.api_vip ? m->k3s.api_vip : first.ip, ip);
	snprintf(k->api_url, sizeof(k->api_url), "https://%s:" K3S_API_PORT_STR, ip);
	kc.url = cfg->api_url ? cfg->api_url : k->api_url;
	kc.ca_pem = k->trust.server_ca;
	kc.cert_pem = k->trust.admin_cert;
	kc.key_pem = k->trust.admin_key;
	kc.http = cfg->http;
	r = kube_client_new(&kc, &k->kube);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(k);
	return 0;
}

struct k3s_ctx *k3s_ctx_free(struct k3s_ctx *k)
{
	if (k) {
		kube_client_free(k->kube);
		k3s_trust_done(&k->trust);
		free_wiped(k->token);
		free(k);
	}
	return NULL;
}

const char *k3s_api_url(const struct k3s_ctx *k)
{
	return k->api_url;
}

int k3s_write_kubeconfig(struct k3s_ctx *k, const char *path)
{
	char *text = NULL;
	size_t n = 0;
	int r = k3s_kubeconfig("devopslab", k->api_url, &k->trust, &text, &n);

	if (r < 0)
		return r;
	r = write_file_atomic(path, text, n, 0600);
	free_wiped(text);
	return r;
}

int k3s_nodes_ready(struct k3s_ctx *k, const char *const *names, size_t n, bool *ready, char *why, size_t why_size)
{
	_cleanup_free_ struct kube_node *nodes = NULL;
	size_t nn = 0;
	int r = kube_nodes(k->kube, &nodes, &nn);

	if (r < 0) {
		if (why)
			snprintf(why, why_size, "%s", kube_error(k->kube));
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		const struct kube_node *kn = kube_node_find(nodes, nn, names[i]);

		ready[i] = kn && kn->ready;
	}
	return 0;
}

/* ---- context and helpers ------------------------------------------------- */

struct k3s_ctx *k3s_kctx(struct run_ctx *ctx)
{
	return ctx->k3s;
}

struct kube_client *k3s_kube(struct k3s_ctx *k)
{
	return k->kube;
}

const struct guest_exec *k3s_guest(struct k3s_ctx *k)
{
	return &k->gx;
}

void k3s_progress(struct k3s_ctx *k, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (k->cfg.progress)
		k->cfg.progress(k->cfg.userdata, msg);
	else
		log_info("%s", msg);
}

static enum k3s_role role_of(const struct step *s)
{
	return s->kind == STEP_K3S_SERVER_INIT ? K3S_ROLE_INIT
	       : s->kind == STEP_K3S_AGENT     ? K3S_ROLE_AGENT
					       : K3S_ROLE_SERVER;
}

static const char *unit_of(enum k3s_role role)
{
	return role == K3S_ROLE_AGENT ? "k3s-agent" : "k3s";
}

/* A string array parameter into v (borrowed strings). */
static int str_array(struct run_ctx *ctx, const struct step *s, const char *key, const char **v, size_t max,
		     size_t *ret_n)
{
	struct json_object *a = json_get_array(s->params, key);
	size_t n = a ? json_object_array_length(a) : 0;

	if (n > max)
		return run_ctx_error(ctx, -EINVAL, "parameter '%s' has more than %zu entries", key, max);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);

		if (!json_object_is_type(e, json_type_string))
			return run_ctx_error(ctx, -EINVAL, "parameter '%s' holds a non-string", key);
		v[i] = json_object_get_string(e);
	}
	*ret_n = n;
	return 0;
}

/* ---- the cluster as the API sees it --------------------------------------- */

struct node_view {
	bool api_ready;
	bool present, ready, roles_ok;
	unsigned ready_nodes, etcd_members;
	char why[256];
};

static bool roles_ok(const struct kube_node *n, enum k3s_role role, bool etcd)
{
	return role == K3S_ROLE_AGENT ? !n->control_plane : n->control_plane && (n->etcd || !etcd);
}

static int view(struct k3s_ctx *k, const char *name, enum k3s_role role, struct node_view *v)
{
	_cleanup_free_ struct kube_node *nodes = NULL;
	const struct kube_node *n;
	size_t nn = 0;
	int r;

	*v = (struct node_view){};
	r = kube_readyz(k->kube);
	if (r < 0) {
		snprintf(v->why, sizeof(v->why), "%s", kube_error(k->kube));
		return r == -EAGAIN || r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET ? 0 : r;
	}
	v->api_ready = true;
	r = kube_nodes(k->kube, &nodes, &nn);
	if (r < 0) {
		snprintf(v->why, sizeof(v->why), "%s", kube_error(k->kube));
		return r == -EAGAIN ? 0 : r;
	}
	for (size_t i = 0; i < nn; i++) {
		v->ready_nodes += nodes[i].ready;
		v->etcd_members += nodes[i].ready && nodes[i].etcd;
	}
	n = kube_node_find(nodes, nn, name);
	v->present = n;
	v->ready = n && n->ready;
	v->roles_ok = n && roles_ok(n, role, k->etcd);
	if (!n)
		snprintf(v->why, sizeof(v->why), "node %s is not registered", name);
	else if (!n->ready)
		snprintf(v->why, sizeof(v->why), "node %s is not Ready", name);
	else if (!v->roles_ok)
		snprintf(v->why, sizeof(v->why), "node %s is Ready but %s", name,
			 role == K3S_ROLE_AGENT ? "is a control-plane node"
			 : !n->control_plane    ? "not a control-plane node"
						: "not yet a voting etcd member");
	return 0;
}

static bool view_done(const struct node_view *v)
{
	return v->api_ready && v->ready && v->roles_ok;
}

static int k3s_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct k3s_ctx *k = k3s_kctx(ctx);
	struct node_view v;
	int r;

	if (!k || !s->has_vm)
		return run_ctx_error(ctx, -EINVAL, "no K3s context for %s", s->id);
	r = view(k, s->vm.name, role_of(s), &v);
	if (r < 0)
		return run_ctx_error(ctx, r, "the Kubernetes API at %s: %s", kube_url(k->kube), kube_error(k->kube));
	*ret_done = view_done(&v);
	if (!*ret_done && v.api_ready && v.present)
		k3s_progress(k, "%s: %s", s->vm.name, v.why);
	return 0;
}

/* ---- apply ------------------------------------------------------------------ */

/* rejoin: the first server, rebuilt, joins the running cluster through the
 * step's "rejoin" URL instead of initialising it (docs/k3s.md). */
static int node_config(struct run_ctx *ctx, const struct step *s, bool rejoin, char **ret, size_t *ret_len)
{
	struct k3s_ctx *k = k3s_kctx(ctx);
	const char *disable[16], *san[8];
	struct k3s_node_cfg c = {
		.role = role_of(s),
		.node_name = s->vm.name,
		.node_ip = s->vm.ip,
		.server = step_param_string(s, "server"),
		.cluster_init = s->kind == STEP_K3S_SERVER_INIT && json_object_get_boolean(
									 json_object_object_get(s->params, "cluster_init")),
		.token = k->token,
		.cluster_cidr = step_param_string(s, "cluster_cidr"),
		.service_cidr = step_param_string(s, "service_cidr"),
		.disable = disable,
		.tls_san = san,
	};
	int r;

	if (c.role == K3S_ROLE_INIT && rejoin) {
		c.role = K3S_ROLE_SERVER;
		c.server = step_param_string(s, "rejoin");
		c.cluster_init = false;
	} else if (c.role == K3S_ROLE_INIT)
		c.server = NULL;
	r = str_array(ctx, s, "disable", disable, ELEMENTSOF(disable), &c.n_disable);
	if (r >= 0)
		r = str_array(ctx, s, "tls_san", san, ELEMENTSOF(san), &c.n_tls_san);
	if (r < 0)
		return r;
	r = k3s_config_yaml(&c, ret, ret_len);
	return r < 0 ? run_ctx_error(ctx, r, "%s: cannot write its K3s configuration: %s", s->vm.name, strerror(-r))
		     : 0;
}

/* A node of that name in the API while this VM's K3s does not run: left by
 * an earlier VM of the same name. K3s would refuse the new one ("Node
 * password rejected"): remove the node and its password secret. */
static int clear_stale(struct run_ctx *ctx, const struct mf_vm *vm)
{
	struct k3s_ctx *k = k3s_kctx(ctx);
	_cleanup_free_ struct kube_node *nodes = NULL;
	char secret[KUBE_NAME_MAX + 32];
	size_t nn = 0;
	int r;

	if (kube_readyz(k->kube) < 0 || kube_nodes(k->kube, &nodes, &nn) < 0 || !kube_node_find(nodes, nn, vm->name))
		return 0; /* nothing to clear, or the join itself will say what is wrong */
	k3s_progress(k, "%s: the cluster still has a node of this name from an earlier VM; removing the stale node and "
		    "its node password so that K3s accepts the new one",
		 vm->name);
	r = kube_node_delete(k->kube, vm->name);
	if (r < 0 && r != -ENOENT)
		return run_ctx_error(ctx, r, "%s: cannot remove the stale node: %s", vm->name, kube_error(k->kube));
	snprintf(secret, sizeof(secret), "%s.node-password.k3s", vm->name);
	r = kube_secret_delete(k->kube, "kube-system", secret);
	if (r < 0 && r != -ENOENT)
		return run_ctx_error(ctx, r, "%s: cannot remove secret kube-system/%s: %s", vm->name, secret,
				     kube_error(k->kube));
	return 0;
}

/* kube-vip's manifest for K3s to deploy (the init step's `kube_vip`
 * param: ref, interface, address); nothing when the param is null. */
static int kube_vip(struct run_ctx *ctx, const struct step *s)
{
	struct json_object *p = json_get_object(s->params, "kube_vip");
	const char *ref = json_get_string(p, "ref"), *iface = json_get_string(p, "interface");
	const char *addr = json_get_string(p, "address");
	struct in_addr a;
	char *text = NULL;
	size_t n = 0;
	int r;

	if (!p)
		return 0;
	if (!addr || inet_pton(AF_INET, addr, &a) != 1)
		return run_ctx_error(ctx, -EINVAL, "the step's kube_vip has no address");
	r = k3s_kube_vip_manifest(ref, iface, ntohl(a.s_addr), &text, &n);
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot write the kube-vip manifest: %s", strerror(-r));
	r = guest_write(ctx, &k3s_kctx(ctx)->gx, &s->vm, K3S_KUBE_VIP_MANIFEST, 0600, text);
	free(text);
	return r;
}

/* The configuration the guest's K3s started with differs from ours (a
 * changed manifest or secret, or a run that wrote it and died): *ret. */
static int config_differs(struct run_ctx *ctx, const struct step *s, const char *want, bool *ret)
{
	const char *argv[] = { "cat", K3S_CONFIG_PATH, NULL };
	struct pve_exec_status st = {};
	int r = guest_run(ctx, &k3s_kctx(ctx)->gx, &s->vm, argv, NULL, k3s_kctx(ctx)->cfg.exec_timeout_ms, &st);

	if (r < 0)
		return r;
	*ret = st.exitcode != 0 || !streq(st.out, want);
	explicit_wipe(st.out, strlen(st.out)); /* it holds the token */
	pve_exec_status_done(&st);
	return 0;
}

/* K3s into the guest. Its first start (fresh: K3s does not run there):
 * the first server's CA files and kube-vip before anything else, a stale
 * node of a joiner's name removed. Then config.yaml and K3s's install
 * script, which (re)starts the service. With K3s running already, only a
 * configuration that differs is written, and K3s restarted with it. */
static int install(struct run_ctx *ctx, const struct step *s, bool fresh, bool rejoin)
{
	struct k3s_ctx *k = k3s_kctx(ctx);
	enum k3s_role role = role_of(s);
	char *config = NULL;
	size_t n = 0;
	char exec_role[32];
	const char *argv[] = { "/usr/bin/env", "INSTALL_K3S_SKIP_DOWNLOAD=true", "INSTALL_K3S_SKIP_SELINUX_RPM=true",
			       exec_role, "/bin/sh", K3S_INSTALL_SCRIPT, NULL };
	bool differs = true;
	int r;

	r = node_config(ctx, s, rejoin, &config, &n);
	if (r < 0)
		return r;
	if (!fresh) {
		r = config_differs(ctx, s, config, &differs);
		if (r >= 0 && differs && role == K3S_ROLE_INIT && step_param_string(s, "rejoin")) {
			/* a first server that once rejoined keeps that configuration */
			char *other = NULL;
			size_t on = 0;

			r = node_config(ctx, s, true, &other, &on);
			if (r >= 0)
				r = config_differs(ctx, s, other, &differs);
			free_wiped(other);
		}
		if (r < 0 || !differs) {
			if (r >= 0)
				k3s_progress(k, "%s: K3s already runs (an earlier run started it); waiting for it",
					 s->vm.name);
			free_wiped(config);
			return r;
		}
		k3s_progress(k, "%s: K3s runs with another configuration than the manifest's; writing it and "
			    "restarting K3s",
			 s->vm.name);
	} else if (role == K3S_ROLE_INIT && !rejoin) {
		/* before K3s first starts: it then uses these CAs, never its own */
		for (size_t i = 0; i < K3S_TLS_FILES && r >= 0; i++)
			r = guest_write(ctx, &k3s_kctx(ctx)->gx, &s->vm, k->trust.files[i].path, k->trust.files[i].mode,
					k->trust.files[i].pem);
		if (r >= 0)
			r = kube_vip(ctx, s);
	} else
		r = clear_stale(ctx, &s->vm);
	if (r >= 0)
		r = guest_write(ctx, &k3s_kctx(ctx)->gx, &s->vm, K3S_CONFIG_PATH, 0600, config);
	free_wiped(config);
	if (r < 0)
		return r;
	snprintf(exec_role, sizeof(exec_role), "INSTALL_K3S_EXEC=%s", role == K3S_ROLE_AGENT ? "agent" : "server");
	k3s_progress(k, "%s: installing K3s (%s) from the bundle", s->vm.name, role == K3S_ROLE_AGENT ? "agent" : "server");
	return guest_run(ctx, &k3s_kctx(ctx)->gx, &s->vm, argv, NULL, k->cfg.exec_timeout_ms, NULL);
}

static int wait_ready(struct run_ctx *ctx, const struct step *s, struct node_view *v)
{
	struct k3s_ctx *k = k3s_kctx(ctx);
	enum k3s_role role = role_of(s);
	uint64_t start = http_now_ms(), said = start;
	char log[1024];
	int r;

	for (;;) {
		r = view(k, s->vm.name, role, v);
		if (r < 0)
			return run_ctx_error(ctx, r, "the Kubernetes API at %s: %s", kube_url(k->kube),
					     kube_error(k->kube));
		if (view_done(v))
			return 0;
		if (http_now_ms() - start >= k->cfg.ready_timeout_ms)
			break;
		if (http_now_ms() - said >= 10 * k->cfg.poll_ms) {
			k3s_progress(k, "%s: waiting: %s", s->vm.name, v->why);
			said = http_now_ms();
		}
		sleep_ms(k->cfg.poll_ms);
	}
	guest_journal(ctx, &k3s_kctx(ctx)->gx, &s->vm, unit_of(role), log, sizeof(log));
	return run_ctx_error(ctx, -ETIMEDOUT, "%s: not ready after %" PRIu64 " s: %s%s%s", s->vm.name,
			     k->cfg.ready_timeout_ms / 1000, v->why, log[0] ? "; its K3s log ends: " : "", log);
}

static int k3s_apply(struct run_ctx *ctx, const struct step *s)
{
	struct k3s_ctx *k = k3s_kctx(ctx);
	enum k3s_role role = role_of(s);
	struct node_view v;
	struct json_object *res;
	bool active = false, rejoin = false;
	int r;

	if (!k || !s->has_vm)
		return run_ctx_error(ctx, -EINVAL, "no K3s context for %s", s->id);
	r = guest_settled(ctx, &k3s_kctx(ctx)->gx, &s->vm);
	if (r >= 0)
		r = guest_active(ctx, &k3s_kctx(ctx)->gx, &s->vm, unit_of(role), &active);
	if (r < 0)
		return r;
	if (!active && role == K3S_ROLE_INIT && view(k, s->vm.name, role, &v) >= 0 && v.api_ready) {
		/* someone else answers for the cluster: a second cluster-init
		 * would split it; the rebuilt first server joins instead */
		if (!step_param_string(s, "rejoin"))
			return run_ctx_error(ctx, -EEXIST,
					     "%s: K3s does not run here, yet the cluster's API answers at %s: a rebuilt "
					     "first server must join the running cluster, not initialise a new one, and "
					     "without embedded etcd it cannot",
					     s->vm.name, kube_url(k->kube));
		k3s_progress(k, "%s: K3s does not run here, yet the cluster's API answers: this first server was "
			    "rebuilt; it joins the running cluster through %s",
			 s->vm.name, step_param_string(s, "rejoin"));
		rejoin = true;
	}
	r = install(ctx, s, !active, rejoin);
	if (r < 0)
		return r;
	r = wait_ready(ctx, s, &v);
	if (r < 0)
		return r;
	if (role != K3S_ROLE_AGENT)
		k3s_progress(k, "%s: Ready; %u etcd member%s", s->vm.name, v.etcd_members, v.etcd_members == 1 ? "" : "s");
	res = json_object_new_object();
	if (res) {
		json_object_object_add(res, "node", json_object_new_string(s->vm.name));
		json_object_object_add(res, "ready_nodes", json_object_new_int64(v.ready_nodes));
		json_object_object_add(res, "etcd_members", json_object_new_int64(v.etcd_members));
		run_ctx_set_result(ctx, res);
	}
	return 0;
}

const struct step_ops k3s_server_init_ops = { .check = k3s_check, .apply = k3s_apply };
const struct step_ops k3s_server_join_ops = { .check = k3s_check, .apply = k3s_apply };
const struct step_ops k3s_agent_ops = { .check = k3s_check, .apply = k3s_apply };
