/* SPDX-License-Identifier: MIT */
/*
 * dns.c — the DNS steps; see dns.h and docs/dns.md.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <json-c/json.h>

#include "dns-config.h"
#include "dns.h"
#include "fileio.h"
#include "log.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/guest-exec.h"
#include "resolve.h"
#include "pve/pve.h"
#include "technitium.h"
#include "util.h"

#define CA_KEY_MAX (64u << 10)
#define SERVERS_MAX 4
#define LIST_MAX 16 /* ACL entries, forwarders, TSIG keys we compare */
#define COMMENT "managed by devopslab"

struct server {
	char vm[64];
	struct tn_client *api; /* logged in */
};

struct dns_ctx {
	struct dns_cfg cfg;
	const struct manifest *m;
	char *admin_password; /* secret */
	char tsig[DNS_TSIG_B64_MAX]; /* secret */
	struct guest_exec gx;
	struct server servers[SERVERS_MAX];
	/* cfg's test mappings, copied */
	char connect_vm[DNS_CONNECT_MAX][96], connect_to[DNS_CONNECT_MAX][96];
	char query_vm[DNS_CONNECT_MAX][96], query_to[DNS_CONNECT_MAX][96];
};

/* dst[i] = a copy of src[i] in buf[i]; -EINVAL when one does not fit. */
static int copy_map(const char *const *src, size_t n, char (*buf)[96], const char **dst)
{
	for (size_t i = 0; i < n; i++) {
		if (!src[i] || snprintf(buf[i], 96, "%s", src[i]) >= 96)
			return -EINVAL;
		dst[i] = buf[i];
	}
	return 0;
}

int dns_ctx_new(const struct dns_cfg *cfg, const struct manifest *m, struct dns_ctx **ret)
{
	_cleanup_(dns_ctx_freep) struct dns_ctx *d = NULL;
	_cleanup_free_ char *key = NULL;
	_cleanup_close_ int fd = -1;
	size_t n = 0;
	int r;

	if (!cfg->pve || isempty(cfg->admin_password) || isempty(cfg->ca_file) || isempty(cfg->ca_key_file) ||
	    cfg->n_connect > DNS_CONNECT_MAX)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	d->cfg.admin_password = NULL;
	d->m = m;
	if (!d->cfg.poll_ms)
		d->cfg.poll_ms = 2000;
	if (!d->cfg.exec_timeout_ms)
		d->cfg.exec_timeout_ms = 10 * 60 * 1000;
	if (!d->cfg.ready_timeout_ms)
		d->cfg.ready_timeout_ms = 5 * 60 * 1000;
	d->gx = (struct guest_exec){ .pve = cfg->pve, .poll_ms = d->cfg.poll_ms, .timeout_ms = d->cfg.exec_timeout_ms,
				     .progress = cfg->progress, .userdata = cfg->userdata };
	if (cfg->n_query > DNS_CONNECT_MAX || copy_map(cfg->vm, cfg->n_connect, d->connect_vm, d->cfg.vm) < 0 ||
	    copy_map(cfg->connect_to, cfg->n_connect, d->connect_to, d->cfg.connect_to) < 0 ||
	    copy_map(cfg->query_vm, cfg->n_query, d->query_vm, d->cfg.query_vm) < 0 ||
	    copy_map(cfg->query_to, cfg->n_query, d->query_to, d->cfg.query_to) < 0)
		return -EINVAL; /* cppcheck-suppress memleak ; _cleanup_ frees d */
	d->admin_password = strdup(cfg->admin_password);
	if (!d->admin_password)
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees d */
	fd = open(cfg->ca_key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	r = fd < 0 ? negative_errno() : read_fd_capped(fd, CA_KEY_MAX, &key, &n);
	if (r < 0)
		return r; /* cppcheck-suppress memleak ; _cleanup_ frees d */
	r = dns_tsig_secret(key, n, d->tsig);
	explicit_wipe(key, n);
	if (r < 0)
		return r; /* cppcheck-suppress memleak ; _cleanup_ frees d */
	*ret = TAKE_PTR(d);
	return 0;
}

struct dns_ctx *dns_ctx_free(struct dns_ctx *d)
{
	if (d) {
		for (size_t i = 0; i < SERVERS_MAX; i++)
			tn_client_free(d->servers[i].api);
		free_wiped(d->admin_password);
		explicit_wipe(d->tsig, sizeof(d->tsig));
		free(d);
	}
	return NULL;
}

int dns_query_endpoint(const struct dns_ctx *d, const char *vm, const char *ip, char host[static 64],
		       unsigned *ret_port)
{
	for (size_t i = 0; i < d->cfg.n_query; i++) {
		const char *colon = strrchr(d->cfg.query_to[i], ':');

		if (!streq_ptr(d->cfg.query_vm[i], vm) || !colon)
			continue;
		snprintf(host, 64, "%.*s", (int)(colon - d->cfg.query_to[i]), d->cfg.query_to[i]);
		*ret_port = (unsigned)strtoul(colon + 1, NULL, 10);
		return *ret_port ? 0 : -EINVAL;
	}
	snprintf(host, 64, "%s", ip);
	*ret_port = 53;
	return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static struct dns_ctx *dctx(struct run_ctx *ctx)
{
	return ctx->dns;
}

static void progress(struct dns_ctx *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct dns_ctx *d, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->cfg.progress)
		d->cfg.progress(d->cfg.userdata, msg);
	else
		log_info("%s", msg);
}

static int begin(struct run_ctx *ctx, const struct step *s, struct dns_ctx **ret)
{
	if (!dctx(ctx))
		return run_ctx_error(ctx, -EINVAL, "no DNS context for %s", s->id);
	*ret = dctx(ctx);
	return 0;
}

static int param(struct run_ctx *ctx, const struct step *s, const char *key, const char **ret)
{
	*ret = step_param_string(s, key);
	return *ret ? 0 : run_ctx_error(ctx, -EINVAL, "%s: parameter '%s' is missing", s->id, key);
}

/* Each string parameter keys[i] into *vals[i]; the first missing is the error. */
static int params(struct run_ctx *ctx, const struct step *s, const char *const *keys, const char **const *vals,
		  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = param(ctx, s, keys[i], vals[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

static int find_vm(struct run_ctx *ctx, struct dns_ctx *d, const char *name, struct mf_vm *ret)
{
	return manifest_find_vm(d->m, name, ret) < 0 ? run_ctx_error(ctx, -EINVAL, "no VM named %s", name) : 0;
}

static void fmt_ip(uint32_t ip, char buf[static 16])
{
	struct in_addr a = { .s_addr = htonl(ip) };

	inet_ntop(AF_INET, &a, buf, 16);
}

static struct server *slot(struct dns_ctx *d, const char *vm)
{
	for (size_t i = 0; i < SERVERS_MAX; i++)
		if (streq(d->servers[i].vm, vm))
			return &d->servers[i];
	for (size_t i = 0; i < SERVERS_MAX; i++)
		if (!d->servers[i].vm[0]) {
			snprintf(d->servers[i].vm, sizeof(d->servers[i].vm), "%s", vm);
			return &d->servers[i];
		}
	return NULL;
}

/* A logged-in client for the server in VM vm; errors said in ctx. */
static int server(struct run_ctx *ctx, struct dns_ctx *d, const struct mf_vm *vm, struct tn_client **ret)
{
	struct server *sv = slot(d, vm->name);
	struct tn_cfg tc = { .ca_file = d->cfg.ca_file, .http = d->cfg.http };
	char ip[16], url[64];
	int r;

	if (!sv)
		return run_ctx_error(ctx, -E2BIG, "more than %d DNS servers", SERVERS_MAX);
	if (sv->api) {
		*ret = sv->api;
		return 0;
	}
	fmt_ip(vm->ip, ip);
	snprintf(url, sizeof(url), "https://%s:%d", ip, TN_HTTPS_PORT);
	tc.url = url;
	for (size_t i = 0; i < d->cfg.n_connect; i++)
		if (streq_ptr(d->cfg.vm[i], vm->name))
			snprintf(tc.http.connect_to, sizeof(tc.http.connect_to), "%s:%d:%s", ip, TN_HTTPS_PORT,
				 d->cfg.connect_to[i]);
	r = tn_client_new(&tc, &sv->api);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s: cannot make an API client for %s: %s", vm->name, url, strerror(-r));
	r = tn_login(sv->api, TN_ADMIN_USER, d->admin_password);
	if (r < 0) {
		r = run_ctx_error(ctx, r, "%s: %s%s", vm->name, tn_error(sv->api),
				  r == -EACCES ? " (the admin password of dns.admin_password is refused)" : "");
		sv->api = tn_client_free(sv->api);
		return r;
	}
	*ret = sv->api;
	return 0;
}

/* One API call, its error said in ctx. */
static int call(struct run_ctx *ctx, const struct mf_vm *vm, struct tn_client *api, const char *path,
		const struct tn_param *p, size_t n, struct json_object **ret)
{
	int r = tn_call(api, path, p, n, ret);

	return r < 0 ? run_ctx_error(ctx, r, "%s: %s", vm->name, tn_error(api)) : 0;
}

/* Whether the string array a holds exactly the n strings of want, in any
 * order (ACLs, name server lists), compared without case. */
static bool same_set(struct json_object *a, const char *const *want, size_t n)
{
	size_t have = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;

	if (have != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (size_t k = 0; k < have && !found; k++)
			found = strcasecmp(json_object_get_string(json_object_array_get_idx(a, k)), want[i]) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* s's string array parameter key into v (borrowed). */
static int str_array(struct run_ctx *ctx, const struct step *s, const char *key, const char **v, size_t max,
		     size_t *ret_n)
{
	struct json_object *a = json_get_array(s->params, key);
	size_t n = a ? json_object_array_length(a) : 0;

	if (n > max)
		return run_ctx_error(ctx, -EINVAL, "%s: parameter '%s' has more than %zu entries", s->id, key, max);
	for (size_t i = 0; i < n; i++) {
		v[i] = json_object_get_string(json_object_array_get_idx(a, i));
		if (!v[i])
			return run_ctx_error(ctx, -EINVAL, "%s: parameter '%s' holds a non-string", s->id, key);
	}
	*ret_n = n;
	return 0;
}

/* "a,b,c" of v into buf. */
static int join(const char *const *v, size_t n, char sep, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(buf + o, size - o, "%s%s", i ? (char[]){ sep, 0 } : "", v[i]);

		if (k < 0 || (size_t)k >= size - o)
			return -ENOSPC;
		o += (size_t)k;
	}
	return 0;
}

/* The zone named zone in the server's zone list, or NULL (a new reference). */
static int find_zone(struct run_ctx *ctx, const struct mf_vm *vm, struct tn_client *api, const char *zone,
		     struct json_object **ret)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct json_object *zones;
	int r = call(ctx, vm, api, "/api/zones/list", NULL, 0, &o);

	*ret = NULL;
	if (r < 0)
		return r;
	zones = json_get_array(o, "zones");
	for (size_t i = 0; zones && i < json_object_array_length(zones); i++) {
		struct json_object *z = json_object_array_get_idx(zones, i);

		if (strcasecmp(json_get_string(z, "name") ?: "", zone) == 0) {
			*ret = json_object_get(z);
			break;
		}
	}
	return 0;
}

static bool json_true(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* ---- dns-server ------------------------------------------------------------ */

struct server_want {
	const char *fqdn, *install, *tsig_key;
	const char *acl[LIST_MAX];
	size_t n_acl;
};

static int server_want(struct run_ctx *ctx, const struct step *s, struct server_want *w)
{
	int r;

	*w = (struct server_want){ .tsig_key = step_param_string(s, "tsig_key") };
	if (!s->has_vm)
		return run_ctx_error(ctx, -EINVAL, "%s: no VM", s->id);
	r = params(ctx, s, (const char *const[]){ "fqdn", "install" }, (const char **const[]){ &w->fqdn, &w->install },
		   2);
	if (r >= 0)
		r = str_array(ctx, s, "recursion_acl", w->acl, LIST_MAX, &w->n_acl);
	return r;
}

/* Whether the server's settings are ours; *ret_why (static) says what differs. */
static int settings_match(struct run_ctx *ctx, struct dns_ctx *d, const struct mf_vm *vm, struct tn_client *api,
			  const struct server_want *w, bool *ret, const char **ret_why)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct json_object *keys;
	bool key_ok = !w->tsig_key;
	int r = call(ctx, vm, api, "/api/settings/get", NULL, 0, &o);

	if (r < 0)
		return r;
	keys = json_get_array(o, "tsigKeys");
	for (size_t i = 0; keys && i < json_object_array_length(keys) && !key_ok; i++) {
		struct json_object *k = json_object_array_get_idx(keys, i);

		key_ok = strcasecmp(json_get_string(k, "keyName") ?: "", w->tsig_key) == 0 &&
			 streq_ptr(json_get_string(k, "sharedSecret"), d->tsig) &&
			 streq_ptr(json_get_string(k, "algorithmName"), DNS_TSIG_ALGORITHM);
	}
	*ret_why = strcasecmp(json_get_string(o, "dnsServerDomain") ?: "", w->fqdn) != 0 ? "its name"
		   : !streq_ptr(json_get_string(o, "recursion"), "UseSpecifiedNetworkACL") ||
				   !same_set(json_get_array(o, "recursionNetworkACL"), w->acl, w->n_acl)
			   ? "its recursion"
		   : !key_ok ? "the zone transfer key"
			     : NULL;
	*ret = !*ret_why;
	return 0;
}

/* The API first: a server that answers with our settings is done without
 * a command in the guest (a converged run sends Proxmox nothing). */
static int server_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct dns_ctx *d = NULL;
	struct server_want w;
	struct tn_client *api;
	const char *why = NULL;
	bool active = false;
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = server_want(ctx, s, &w);
	if (r < 0)
		return r;
	*ret_done = false;
	r = server(ctx, d, &s->vm, &api);
	if (r == -EACCES || r == -EKEYREJECTED)
		return r; /* another password, a certificate not ours: apply cannot help */
	if (r >= 0) {
		r = settings_match(ctx, d, &s->vm, api, &w, ret_done, &why);
		if (r >= 0 && why)
			progress(d, "%s: Technitium runs; %s differs", s->vm.name, why);
		return r;
	}
	ctx->error[0] = 0;
	r = guest_active(ctx, &d->gx, &s->vm, DNS_UNIT, &active);
	if (r >= 0)
		progress(d, "%s: Technitium %s", s->vm.name,
			 active ? "runs but its API does not answer yet" : "is not running");
	return r;
}

/* The files of the first start, then the install script. */
static int install(struct run_ctx *ctx, struct dns_ctx *d, const struct step *s, const struct server_want *w)
{
	const char *argv[] = { "/bin/sh", DNS_INSTALL_PATH, NULL };
	_cleanup_free_ char *pfx = NULL;
	char pw[DNS_PFX_PASSWORD_LEN + 1], ip[16];
	const char *err = NULL;
	char *env = NULL;
	int r;

	progress(d, "%s: installing Technitium DNS Server from the bundle", s->vm.name);
	r = guest_settled(ctx, &d->gx, &s->vm);
	if (r < 0)
		return r;
	fmt_ip(s->vm.ip, ip);
	r = dns_random_password(pw);
	if (r < 0)
		return run_ctx_error(ctx, r, "no random bytes for the certificate's password");
	r = dns_web_pfx(d->cfg.ca_file, d->cfg.ca_key_file, s->vm.name, ip, w->fqdn, pw, &pfx, &err);
	if (r < 0) {
		explicit_wipe(pw, sizeof(pw));
		return run_ctx_error(ctx, r, "%s: cannot issue the web console's certificate: %s", s->vm.name,
				     err ? err : strerror(-r));
	}
	r = dns_env_text(w->fqdn, pw, &env);
	explicit_wipe(pw, sizeof(pw));
	if (r < 0)
		return run_ctx_error(ctx, r, "out of memory");
	r = guest_write(ctx, &d->gx, &s->vm, DNS_ADMIN_PW_PATH, 0600, d->admin_password);
	if (r >= 0)
		r = guest_write(ctx, &d->gx, &s->vm, DNS_PFX_B64_PATH, 0600, pfx);
	if (r >= 0)
		r = guest_write(ctx, &d->gx, &s->vm, DNS_ENV_PATH, 0600, env);
	free_wiped(env);
	if (r >= 0)
		r = guest_write(ctx, &d->gx, &s->vm, DNS_UNIT_PATH, 0644, dns_unit_text());
	if (r >= 0)
		r = guest_write(ctx, &d->gx, &s->vm, DNS_INSTALL_PATH, 0755, dns_install_script());
	if (r >= 0)
		r = guest_run(ctx, &d->gx, &s->vm, argv, NULL, d->cfg.exec_timeout_ms, NULL);
	return r;
}

/* Log in, waiting for the web console to come up. */
static int wait_api(struct run_ctx *ctx, struct dns_ctx *d, const struct mf_vm *vm, struct tn_client **ret)
{
	uint64_t deadline = http_now_ms() + d->cfg.ready_timeout_ms;
	char log[1024];
	int r;

	for (;;) {
		r = server(ctx, d, vm, ret);
		if (r >= 0 || r == -EACCES || r == -EKEYREJECTED || http_now_ms() >= deadline)
			break;
		ctx->error[0] = 0;
		sleep_ms(d->cfg.poll_ms);
	}
	if (r >= 0 || r == -EACCES || r == -EKEYREJECTED)
		return r;
	guest_journal(ctx, &d->gx, vm, DNS_UNIT, log, sizeof(log));
	return run_ctx_error(ctx, -ETIMEDOUT, "%s: the Technitium API did not answer within %" PRIu64 " s%s%s",
			     vm->name, d->cfg.ready_timeout_ms / 1000, log[0] ? "; its log: " : "", log);
}

static int server_apply(struct run_ctx *ctx, const struct step *s)
{
	struct dns_ctx *d = NULL;
	struct server_want w;
	struct tn_client *api;
	_cleanup_json_ struct json_object *o = NULL;
	struct json_object *keys;
	char acl[LIST_MAX * 48], tsig[1024], *p = tsig;
	const char *why = NULL;
	bool active = false, done = false, installed = false;
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = server_want(ctx, s, &w);
	if (r >= 0)
		r = guest_active(ctx, &d->gx, &s->vm, DNS_UNIT, &active);
	if (r < 0)
		return r;
	if (!active && !streq(w.install, "bundle"))
		return run_ctx_error(ctx, -ENOENT,
				     "%s: Technitium (unit %s) is not running, and without dns.airgap it is not ours to "
				     "install: the DNS VMs' image must have it",
				     s->vm.name, DNS_UNIT);
	if (!active) {
		r = install(ctx, d, s, &w);
		if (r < 0)
			return r;
		installed = true;
	}
	r = wait_api(ctx, d, &s->vm, &api);
	if (r >= 0)
		r = settings_match(ctx, d, &s->vm, api, &w, &done, &why);
	if (r < 0 || done)
		goto out;
	/* tsigKeys replaces every key: the others are sent back as they are */
	r = call(ctx, &s->vm, api, "/api/settings/get", NULL, 0, &o);
	if (r < 0)
		return r;
	tsig[0] = 0;
	keys = json_get_array(o, "tsigKeys");
	for (size_t i = 0; keys && i < json_object_array_length(keys); i++) {
		struct json_object *k = json_object_array_get_idx(keys, i);
		const char *name = json_get_string(k, "keyName");

		if (!name || (w.tsig_key && strcasecmp(name, w.tsig_key) == 0))
			continue;
		p += snprintf(p, (size_t)(tsig + sizeof(tsig) - p), "%s%s|%s|%s", p == tsig ? "" : "|", name,
			      json_get_string(k, "sharedSecret") ?: "", json_get_string(k, "algorithmName") ?: "");
		if (p >= tsig + sizeof(tsig))
			return run_ctx_error(ctx, -ENOSPC, "%s: too many TSIG keys", s->vm.name);
	}
	if (w.tsig_key)
		p += snprintf(p, (size_t)(tsig + sizeof(tsig) - p), "%s%s|%s|%s", p == tsig ? "" : "|", w.tsig_key,
			      d->tsig, DNS_TSIG_ALGORITHM);
	if (p >= tsig + sizeof(tsig) || join(w.acl, w.n_acl, ',', acl, sizeof(acl)) < 0)
		return run_ctx_error(ctx, -ENOSPC, "%s: settings too long", s->vm.name);
	{
		const struct tn_param set[] = {
			{ "dnsServerDomain", w.fqdn },
			{ "recursion", "UseSpecifiedNetworkACL" },
			{ "recursionNetworkACL", acl },
			{ "tsigKeys", tsig[0] ? tsig : "false" },
		};

		progress(d, "%s: setting %s", s->vm.name, why);
		r = call(ctx, &s->vm, api, "/api/settings/set", set, ELEMENTSOF(set), NULL);
	}
	explicit_wipe(tsig, sizeof(tsig));
	if (r >= 0)
		r = settings_match(ctx, d, &s->vm, api, &w, &done, &why);
	if (r >= 0 && !done)
		r = run_ctx_error(ctx, -EPROTO, "%s: the server took the settings but reports another %s", s->vm.name,
				  why);
out:
	if (r >= 0) {
		struct json_object *res = json_object_new_object();

		if (res) {
			json_add_bool(res, "installed", installed);
			run_ctx_set_result(ctx, res);
		}
	}
	return r;
}

const struct step_ops dns_server_ops = { .check = server_check, .apply = server_apply };

/* ---- dns-zone -------------------------------------------------------------- */

struct zone_want {
	const char *zone, *primary, *secondary_ip, *tsig_key;
	struct mf_vm vm;
};

static int zone_want(struct run_ctx *ctx, struct dns_ctx *d, const struct step *s, struct zone_want *w)
{
	int r;

	*w = (struct zone_want){ .secondary_ip = step_param_string(s, "secondary_ip"),
				 .tsig_key = step_param_string(s, "tsig_key") };
	r = params(ctx, s, (const char *const[]){ "zone", "primary" }, (const char **const[]){ &w->zone, &w->primary },
		   2);
	if (r >= 0)
		r = find_vm(ctx, d, w->primary, &w->vm);
	return r;
}

/* The zone's transfer and notify options as we want them. */
static bool zone_options_match(struct json_object *o, const struct zone_want *w)
{
	const char *ip = w->secondary_ip;

	if (!ip)
		return streq_ptr(json_get_string(o, "zoneTransfer"), "Deny") &&
		       streq_ptr(json_get_string(o, "notify"), "None");
	return streq_ptr(json_get_string(o, "zoneTransfer"), "UseSpecifiedNetworkACL") &&
	       same_set(json_get_array(o, "zoneTransferNetworkACL"), &ip, 1) &&
	       same_set(json_get_array(o, "zoneTransferTsigKeyNames"), &w->tsig_key, w->tsig_key ? 1 : 0) &&
	       streq_ptr(json_get_string(o, "notify"), "SpecifiedNameServers") &&
	       same_set(json_get_array(o, "notifyNameServers"), &ip, 1);
}

/* *ret: 1 ours and right, 0 absent or options differ; -EEXIST a zone of
 * another type (never replaced: it may hold someone's data). */
static int zone_state(struct run_ctx *ctx, struct dns_ctx *d, const struct zone_want *w, struct tn_client *api,
		      bool *ret_exists, bool *ret_ok)
{
	_cleanup_json_ struct json_object *z = NULL, *o = NULL;
	const struct tn_param p[] = { { "zone", w->zone } };
	int r = find_zone(ctx, &w->vm, api, w->zone, &z);

	(void)d;
	*ret_exists = *ret_ok = false;
	if (r < 0 || !z)
		return r;
	if (!streq_ptr(json_get_string(z, "type"), "Primary"))
		return run_ctx_error(ctx, -EEXIST, "%s: zone %s exists as a %s zone, not Primary: not replacing it",
				     w->vm.name, w->zone, json_get_string(z, "type") ?: "?");
	*ret_exists = true;
	if (json_true(z, "disabled"))
		return 0;
	r = call(ctx, &w->vm, api, "/api/zones/options/get", p, ELEMENTSOF(p), &o);
	if (r >= 0)
		*ret_ok = zone_options_match(o, w);
	return r;
}

/* rData's member (and the add/delete parameter) of a record type we write. */
static const char *value_field(const char *type)
{
	return streq_ptr(type, "A") || streq_ptr(type, "AAAA") ? "ipAddress"
	       : streq_ptr(type, "CNAME")		      ? "cname"
	       : streq_ptr(type, "TXT")			      ? "text"
							      : NULL;
}

/* Records of ours (comment COMMENT) that the plan no longer has: into
 * *ret (a new array of {name, type, value}), or deleted when del. */
static int zone_stale(struct run_ctx *ctx, struct dns_ctx *d, const struct step *s, const struct zone_want *w,
		      struct tn_client *api, bool del, size_t *ret_n)
{
	_cleanup_json_ struct json_object *o = NULL;
	const struct tn_param p[] = { { "domain", w->zone }, { "zone", w->zone }, { "listZone", "true" } };
	struct json_object *recs, *planned = json_get_array(s->params, "records");
	int r = call(ctx, &w->vm, api, "/api/zones/records/get", p, ELEMENTSOF(p), &o);

	*ret_n = 0;
	if (r < 0)
		return r;
	recs = json_get_array(o, "records");
	for (size_t i = 0; recs && i < json_object_array_length(recs); i++) {
		struct json_object *rec = json_object_array_get_idx(recs, i);
		const char *name = json_get_string(rec, "name"), *type = json_get_string(rec, "type");
		const char *field = value_field(type), *value;
		bool keep = false;

		if (!name || !field || !streq_ptr(json_get_string(rec, "comments"), COMMENT))
			continue;
		for (size_t k = 0; planned && k < json_object_array_length(planned) && !keep; k++) {
			struct json_object *q = json_object_array_get_idx(planned, k);

			keep = strcasecmp(json_get_string(q, "name") ?: "", name) == 0 &&
			       streq_ptr(json_get_string(q, "type"), type);
		}
		value = json_get_string(json_get_object(rec, "rData"), field);
		if (keep || !value)
			continue;
		(*ret_n)++;
		if (!del) {
			progress(d, "%s %s %s is ours and no longer in the manifest", name, type, value);
			continue;
		}
		{
			const struct tn_param q[] = { { "domain", name }, { "zone", w->zone }, { "type", type },
						      { field, value } };

			progress(d, "%s: removing %s %s %s (no longer in the manifest)", w->vm.name, name, type, value);
			r = call(ctx, &w->vm, api, "/api/zones/records/delete", q, ELEMENTSOF(q), NULL);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int zone_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct dns_ctx *d = NULL;
	struct zone_want w;
	struct tn_client *api;
	bool exists;
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = zone_want(ctx, d, s, &w);
	if (r >= 0)
		r = server(ctx, d, &w.vm, &api);
	if (r >= 0)
		r = zone_state(ctx, d, &w, api, &exists, ret_done);
	if (r >= 0 && *ret_done) {
		size_t stale;

		r = zone_stale(ctx, d, s, &w, api, false, &stale);
		*ret_done = r >= 0 && stale == 0;
	}
	return r;
}

static int zone_apply(struct run_ctx *ctx, const struct step *s)
{
	struct dns_ctx *d = NULL;
	struct zone_want w;
	struct tn_client *api;
	bool exists = false, ok = false;
	size_t stale;
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = zone_want(ctx, d, s, &w);
	if (r >= 0)
		r = server(ctx, d, &w.vm, &api);
	if (r >= 0)
		r = zone_state(ctx, d, &w, api, &exists, &ok);
	if (r >= 0 && ok)
		return zone_stale(ctx, d, s, &w, api, true, &stale);
	if (r < 0)
		return r;
	if (!exists) {
		const struct tn_param p[] = { { "zone", w.zone }, { "type", "Primary" } };

		progress(d, "%s: creating the primary zone %s", w.vm.name, w.zone);
		r = call(ctx, &w.vm, api, "/api/zones/create", p, ELEMENTSOF(p), NULL);
		if (r < 0)
			return r;
	}
	{
		const struct tn_param p[] = {
			{ "zone", w.zone },
			{ "disabled", "false" },
			{ "zoneTransfer", w.secondary_ip ? "UseSpecifiedNetworkACL" : "Deny" },
			{ "zoneTransferNetworkACL", w.secondary_ip ? w.secondary_ip : "false" },
			{ "zoneTransferTsigKeyNames", w.tsig_key ? w.tsig_key : "false" },
			{ "notify", w.secondary_ip ? "SpecifiedNameServers" : "None" },
			{ "notifyNameServers", w.secondary_ip ? w.secondary_ip : NULL },
		};

		r = call(ctx, &w.vm, api, "/api/zones/options/set", p, ELEMENTSOF(p), NULL);
	}
	if (r >= 0)
		r = zone_state(ctx, d, &w, api, &exists, &ok);
	if (r >= 0 && !ok)
		r = run_ctx_error(ctx, -EPROTO, "%s: zone %s took the options but reports others", w.vm.name, w.zone);
	if (r >= 0)
		r = zone_stale(ctx, d, s, &w, api, true, &stale);
	return r;
}

const struct step_ops dns_zone_ops = { .check = zone_check, .apply = zone_apply };

/* ---- dns-record ------------------------------------------------------------ */

struct record_want {
	const char *zone, *server, *name, *type, *value;
	const char *field; /* rData's member and add's parameter: ipAddress, cname, text */
	struct mf_vm vm;
};

static int record_want(struct run_ctx *ctx, struct dns_ctx *d, const struct step *s, struct record_want *w)
{
	int r;

	*w = (struct record_want){};
	r = params(ctx, s, (const char *const[]){ "zone", "server", "name", "type", "value" },
		   (const char **const[]){ &w->zone, &w->server, &w->name, &w->type, &w->value }, 5);
	if (r < 0)
		return r;
	w->field = value_field(w->type);
	if (!w->field)
		return run_ctx_error(ctx, -EINVAL, "%s: record type %s is not one DevOpsLab writes", s->id, w->type);
	return find_vm(ctx, d, w->server, &w->vm);
}

/* Names compare without case and without a final dot. */
static bool same_value(const struct record_want *w, const char *have)
{
	size_t n = strlen(w->value), h = strlen(have);

	if (streq(w->field, "text"))
		return streq(have, w->value);
	if (h && have[h - 1] == '.')
		h--;
	if (n && w->value[n - 1] == '.')
		n--;
	return n == h && strncasecmp(have, w->value, n) == 0;
}

/* The record set of w's name and type: *ret_ok when it is exactly our
 * value and enabled; have (the values there, for the operator). */
static int record_state(struct run_ctx *ctx, const struct record_want *w, struct tn_client *api, bool *ret_ok,
			char *have, size_t size)
{
	_cleanup_json_ struct json_object *o = NULL;
	const struct tn_param p[] = { { "domain", w->name }, { "zone", w->zone } };
	struct json_object *recs;
	size_t n = 0, o_len = 0;
	bool mine = false;
	int r = call(ctx, &w->vm, api, "/api/zones/records/get", p, ELEMENTSOF(p), &o);

	*ret_ok = false;
	have[0] = 0;
	if (r < 0)
		return r;
	recs = json_get_array(o, "records");
	for (size_t i = 0; recs && i < json_object_array_length(recs); i++) {
		struct json_object *rec = json_object_array_get_idx(recs, i);
		const char *v = json_get_string(json_get_object(rec, "rData"), w->field);

		if (!streq_ptr(json_get_string(rec, "type"), w->type) ||
		    strcasecmp(json_get_string(rec, "name") ?: "", w->name) != 0)
			continue;
		n++;
		mine = mine || (v && same_value(w, v) && !json_true(rec, "disabled"));
		if (o_len < size) {
			int k = snprintf(have + o_len, size - o_len, "%s%s%s", o_len ? ", " : "", v ? v : "?",
					 json_true(rec, "disabled") ? " (disabled)" : "");
			o_len += k > 0 ? (size_t)k : 0;
		}
	}
	*ret_ok = n == 1 && mine;
	return 0;
}

static int record_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct dns_ctx *d = NULL;
	struct record_want w;
	struct tn_client *api;
	char have[256];
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = record_want(ctx, d, s, &w);
	if (r >= 0)
		r = server(ctx, d, &w.vm, &api);
	if (r >= 0)
		r = record_state(ctx, &w, api, ret_done, have, sizeof(have));
	if (r >= 0 && !*ret_done && have[0])
		progress(d, "%s %s is %s, not %s", w.name, w.type, have, w.value);
	return r;
}

static int record_apply(struct run_ctx *ctx, const struct step *s)
{
	struct dns_ctx *d = NULL;
	struct record_want w;
	struct tn_client *api;
	char have[256];
	bool ok = false;
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = record_want(ctx, d, s, &w);
	if (r >= 0)
		r = server(ctx, d, &w.vm, &api);
	if (r >= 0)
		r = record_state(ctx, &w, api, &ok, have, sizeof(have));
	if (r < 0 || ok)
		return r;
	if (have[0])
		/* the manifest changed, or someone edited the zone by hand */
		progress(d, "%s %s was %s: setting it back to %s (the manifest's)", w.name, w.type, have, w.value);
	{
		const struct tn_param p[] = {
			{ "domain", w.name }, { "zone", w.zone },	 { "type", w.type },
			{ "overwrite", "true" }, { "comments", COMMENT }, { w.field, w.value },
		};

		r = call(ctx, &w.vm, api, "/api/zones/records/add", p, ELEMENTSOF(p), NULL);
	}
	if (r >= 0)
		r = record_state(ctx, &w, api, &ok, have, sizeof(have));
	if (r >= 0 && !ok)
		r = run_ctx_error(ctx, -EPROTO, "%s: %s %s is %s after writing %s", w.vm.name, w.name, w.type,
				  have[0] ? have : "absent", w.value);
	if (r >= 0) {
		struct json_object *res = json_object_new_object();

		if (res) {
			json_add_string(res, "previous", have[0] ? have : NULL);
			run_ctx_set_result(ctx, res);
		}
	}
	return r;
}

const struct step_ops dns_record_ops = { .check = record_check, .apply = record_apply };

/* ---- dns-forwarders -------------------------------------------------------- */

struct fwd_want {
	const char *servers[SERVERS_MAX];
	size_t n_servers;
	char list[LIST_MAX][320];
	const char *v[LIST_MAX];
	size_t n;
	const char *protocol; /* Technitium's */
};

static int fwd_want(struct run_ctx *ctx, const struct step *s, struct fwd_want *w)
{
	struct json_object *a = json_get_array(s->params, "forwarders");
	size_t n = a ? json_object_array_length(a) : 0;
	int r = str_array(ctx, s, "servers", w->servers, SERVERS_MAX, &w->n_servers);

	if (r < 0)
		return r;
	if (n == 0 || n > LIST_MAX)
		return run_ctx_error(ctx, -EINVAL, "%s: 1 to %d forwarders", s->id, LIST_MAX);
	w->n = n;
	w->protocol = NULL;
	for (size_t i = 0; i < n; i++) {
		struct json_object *f = json_object_array_get_idx(a, i);
		const char *proto = json_get_string(f, "protocol");

		r = dns_forwarder_address(proto, json_get_string(f, "address"), json_get_string(f, "name"),
					  w->list[i], sizeof(w->list[i]));
		if (r < 0)
			return run_ctx_error(ctx, r, "%s: forwarder %zu cannot be written for Technitium", s->id, i);
		if (w->protocol && !streq(w->protocol, dns_forwarder_protocol(proto)))
			return run_ctx_error(ctx, -EINVAL, "%s: the forwarders must share one protocol", s->id);
		w->protocol = dns_forwarder_protocol(proto);
		w->v[i] = w->list[i];
	}
	return 0;
}

/* Whether the server forwards as we want (the list in order: the first
 * is asked first). */
static int fwd_match(struct run_ctx *ctx, const struct mf_vm *vm, struct tn_client *api, const struct fwd_want *w,
		     bool *ret)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct json_object *a;
	int r = call(ctx, vm, api, "/api/settings/get", NULL, 0, &o);

	*ret = false;
	if (r < 0)
		return r;
	a = json_get_array(o, "forwarders");
	if (!streq_ptr(json_get_string(o, "forwarderProtocol"), w->protocol) || !a ||
	    json_object_array_length(a) != w->n)
		return 0;
	for (size_t i = 0; i < w->n; i++)
		if (!streq_ptr(json_object_get_string(json_object_array_get_idx(a, i)), w->v[i]))
			return 0;
	*ret = true;
	return 0;
}

static int fwd_run(struct run_ctx *ctx, const struct step *s, bool apply, bool *ret_done)
{
	struct dns_ctx *d = NULL;
	struct fwd_want w;
	char list[LIST_MAX * 330];
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = fwd_want(ctx, s, &w);
	if (r >= 0 && join(w.v, w.n, ',', list, sizeof(list)) < 0)
		r = run_ctx_error(ctx, -ENOSPC, "%s: forwarders too long", s->id);
	if (r < 0)
		return r;
	*ret_done = true;
	for (size_t i = 0; i < w.n_servers; i++) {
		const struct tn_param p[] = { { "forwarders", list }, { "forwarderProtocol", w.protocol } };
		struct tn_client *api;
		struct mf_vm vm;
		bool ok;

		r = find_vm(ctx, d, w.servers[i], &vm);
		if (r >= 0)
			r = server(ctx, d, &vm, &api);
		if (r >= 0)
			r = fwd_match(ctx, &vm, api, &w, &ok);
		if (r < 0)
			return r;
		if (ok)
			continue;
		*ret_done = false;
		if (!apply)
			continue;
		progress(d, "%s: forwarding to %s over %s", vm.name, list, w.protocol);
		r = call(ctx, &vm, api, "/api/settings/set", p, ELEMENTSOF(p), NULL);
		if (r >= 0)
			r = fwd_match(ctx, &vm, api, &w, &ok);
		if (r >= 0 && !ok)
			r = run_ctx_error(ctx, -EPROTO, "%s: the server took the forwarders but reports others", vm.name);
		if (r < 0)
			return r;
	}
	return 0;
}

STEP_OPS_OF_RUN(dns_forwarders_ops, fwd_run);

/* ---- dns-secondary --------------------------------------------------------- */

struct sec_want {
	const char *zone, *primary_ip, *tsig_key;
	struct mf_vm vm, primary;
};

static int sec_want(struct run_ctx *ctx, struct dns_ctx *d, const struct step *s, struct sec_want *w)
{
	const char *sec, *pri;
	int r;

	*w = (struct sec_want){};
	r = params(ctx, s, (const char *const[]){ "zone", "primary_ip", "tsig_key", "secondary", "primary" },
		   (const char **const[]){ &w->zone, &w->primary_ip, &w->tsig_key, &sec, &pri }, 5);
	if (r >= 0)
		r = find_vm(ctx, d, sec, &w->vm);
	if (r >= 0)
		r = find_vm(ctx, d, pri, &w->primary);
	return r;
}

struct sec_state {
	bool exists, options_ok, in_sync, sync_failed;
	uint64_t serial, primary_serial;
};

static int sec_state(struct run_ctx *ctx, struct dns_ctx *d, const struct sec_want *w, struct sec_state *st)
{
	_cleanup_json_ struct json_object *z = NULL, *pz = NULL, *o = NULL;
	const struct tn_param p[] = { { "zone", w->zone } };
	struct tn_client *api, *papi;
	int r;

	*st = (struct sec_state){};
	r = server(ctx, d, &w->vm, &api);
	if (r >= 0)
		r = server(ctx, d, &w->primary, &papi);
	if (r >= 0)
		r = find_zone(ctx, &w->primary, papi, w->zone, &pz);
	if (r >= 0)
		r = find_zone(ctx, &w->vm, api, w->zone, &z);
	if (r < 0)
		return r;
	if (!pz)
		return run_ctx_error(ctx, -ENOENT, "%s: the primary has no zone %s", w->primary.name, w->zone);
	(void)json_get_u64(pz, "soaSerial", &st->primary_serial);
	if (!z)
		return 0;
	if (!streq_ptr(json_get_string(z, "type"), "Secondary"))
		return run_ctx_error(ctx, -EEXIST, "%s: zone %s exists as a %s zone, not Secondary: not replacing it",
				     w->vm.name, w->zone, json_get_string(z, "type") ?: "?");
	st->exists = true;
	st->sync_failed = json_true(z, "syncFailed") || json_true(z, "isExpired");
	(void)json_get_u64(z, "soaSerial", &st->serial);
	r = call(ctx, &w->vm, api, "/api/zones/options/get", p, ELEMENTSOF(p), &o);
	if (r < 0)
		return r;
	st->options_ok = !json_true(z, "disabled") &&
			 same_set(json_get_array(o, "primaryNameServerAddresses"), &w->primary_ip, 1) &&
			 streq_ptr(json_get_string(o, "primaryZoneTransferProtocol"), "Tcp") &&
			 strcasecmp(json_get_string(o, "primaryZoneTransferTsigKeyName") ?: "", w->tsig_key) == 0;
	st->in_sync = st->serial == st->primary_serial && st->serial != 0;
	return 0;
}

static int sec_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct dns_ctx *d = NULL;
	struct sec_want w;
	struct sec_state st;
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = sec_want(ctx, d, s, &w);
	if (r >= 0)
		r = sec_state(ctx, d, &w, &st);
	if (r < 0)
		return r;
	*ret_done = st.exists && st.options_ok && st.in_sync;
	if (st.exists && !st.in_sync)
		progress(d, "%s: zone %s serial %" PRIu64 ", the primary's %" PRIu64, w.vm.name, w.zone, st.serial,
			 st.primary_serial);
	return 0;
}

static int sec_apply(struct run_ctx *ctx, const struct step *s)
{
	struct dns_ctx *d = NULL;
	struct sec_want w;
	struct sec_state st;
	struct tn_client *api;
	uint64_t deadline, resync_at;
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = sec_want(ctx, d, s, &w);
	if (r >= 0)
		r = sec_state(ctx, d, &w, &st);
	if (r >= 0)
		r = server(ctx, d, &w.vm, &api);
	if (r < 0)
		return r;
	if (!st.exists) {
		const struct tn_param p[] = {
			{ "zone", w.zone },
			{ "type", "Secondary" },
			{ "primaryNameServerAddresses", w.primary_ip },
			{ "zoneTransferProtocol", "Tcp" },
			{ "tsigKeyName", w.tsig_key },
		};

		progress(d, "%s: creating the secondary zone %s (from %s)", w.vm.name, w.zone, w.primary_ip);
		r = call(ctx, &w.vm, api, "/api/zones/create", p, ELEMENTSOF(p), NULL);
	} else if (!st.options_ok) {
		const struct tn_param p[] = {
			{ "zone", w.zone },
			{ "disabled", "false" },
			{ "primaryNameServerAddresses", w.primary_ip },
			{ "primaryZoneTransferProtocol", "Tcp" },
			{ "primaryZoneTransferTsigKeyName", w.tsig_key },
		};

		r = call(ctx, &w.vm, api, "/api/zones/options/set", p, ELEMENTSOF(p), NULL);
	}
	if (r < 0)
		return r;
	/* the transfer: NOTIFY from the primary, or the refresh; a resync
	 * asks for it now when it is slow */
	deadline = http_now_ms() + d->cfg.ready_timeout_ms;
	resync_at = http_now_ms() + 5 * d->cfg.poll_ms;
	for (;;) {
		r = sec_state(ctx, d, &w, &st);
		if (r < 0)
			return r;
		if (st.exists && st.options_ok && st.in_sync)
			break;
		if (http_now_ms() >= deadline)
			return run_ctx_error(ctx, -ETIMEDOUT,
					     "%s: zone %s not transferred within %" PRIu64 " s (serial %" PRIu64
					     ", the primary's %" PRIu64 "%s)",
					     w.vm.name, w.zone, d->cfg.ready_timeout_ms / 1000, st.serial,
					     st.primary_serial, st.sync_failed ? "; Technitium reports the sync failed" : "");
		if (http_now_ms() >= resync_at) {
			const struct tn_param p[] = { { "zone", w.zone } };

			/* a primary made anew starts at a lower serial, which a
			 * refresh never transfers: a full transfer does */
			progress(d, "%s: re-synchronising zone %s from the primary (a full zone transfer)", w.vm.name,
				 w.zone);
			r = call(ctx, &w.vm, api, "/api/zones/resync", p, ELEMENTSOF(p), NULL);
			if (r < 0)
				return r;
			resync_at = http_now_ms() + 5 * d->cfg.poll_ms;
		}
		sleep_ms(d->cfg.poll_ms);
	}
	progress(d, "%s: zone %s at serial %" PRIu64 ", as the primary", w.vm.name, w.zone, st.serial);
	return 0;
}

const struct step_ops dns_secondary_ops = { .check = sec_check, .apply = sec_apply };

/* ---- TXT records of the ACME DNS-01 challenges ------------------------------- */

#define TXT_TTL "60"

/* Whether server (vm) answers exactly values at name, TXT. */
static int txt_served(struct dns_ctx *d, const struct mf_vm *vm, const char *name, const char *const *values, size_t n,
		      bool *ret)
{
	struct dns_answer ans;
	char ip[16], host[64];
	unsigned port = 53;
	int r;

	fmt_ip(vm->ip, ip);
	r = dns_query_endpoint(d, vm->name, ip, host, &port);
	if (r >= 0)
		r = dns_resolve(host, port, name, "TXT", 2, &ans);
	if (r == -ETIMEDOUT) {
		*ret = false;
		return 0;
	}
	if (r < 0)
		return r;
	*ret = ans.n == n;
	for (size_t i = 0; i < n && *ret; i++) {
		bool found = false;

		for (size_t k = 0; k < ans.n && !found; k++)
			found = streq(ans.v[k], values[i]);
		*ret = found;
	}
	return 0;
}

int dns_txt_publish(struct run_ctx *ctx, struct dns_ctx *d, const char *name, const char *const *values, size_t n)
{
	const char *zone = d->m->dns.zone;
	size_t zl = strlen(zone), nl = strlen(name);
	_cleanup_json_ struct json_object *o = NULL;
	struct mf_vm vms[2];
	struct tn_client *api;
	struct json_object *recs;
	size_t n_vms = 1;
	uint64_t deadline;
	int r;

	if (nl <= zl + 1 || strcasecmp(name + nl - zl, zone) != 0 || name[nl - zl - 1] != '.')
		return run_ctx_error(ctx, -EINVAL, "%s is not a name in the zone %s", name, zone);
	r = find_vm(ctx, d, d->m->dns.primary, &vms[0]);
	if (r >= 0 && d->m->dns.secondary)
		r = find_vm(ctx, d, d->m->dns.secondary, &vms[n_vms++]);
	if (r >= 0)
		r = server(ctx, d, &vms[0], &api);
	if (r < 0)
		return r;
	/* what is there: values of ours stay, others go */
	{
		const struct tn_param p[] = { { "domain", name }, { "zone", zone } };

		r = call(ctx, &vms[0], api, "/api/zones/records/get", p, ELEMENTSOF(p), &o);
	}
	recs = r >= 0 ? json_get_array(o, "records") : NULL;
	for (size_t i = 0; recs && i < json_object_array_length(recs) && r >= 0; i++) {
		struct json_object *rec = json_object_array_get_idx(recs, i);
		const char *v = json_get_string(json_get_object(rec, "rData"), "text");
		bool keep = false;

		if (!streq_ptr(json_get_string(rec, "type"), "TXT") || !v)
			continue;
		for (size_t k = 0; k < n && !keep; k++)
			keep = streq(v, values[k]);
		if (!keep) {
			const struct tn_param p[] = {
				{ "domain", name }, { "zone", zone }, { "type", "TXT" }, { "text", v } };

			r = call(ctx, &vms[0], api, "/api/zones/records/delete", p, ELEMENTSOF(p), NULL);
		}
	}
	for (size_t k = 0; k < n && r >= 0; k++) {
		bool there = false;

		for (size_t i = 0; recs && i < json_object_array_length(recs) && !there; i++) {
			struct json_object *rec = json_object_array_get_idx(recs, i);

			there = streq_ptr(json_get_string(rec, "type"), "TXT") &&
				streq_ptr(json_get_string(json_get_object(rec, "rData"), "text"), values[k]);
		}
		if (!there) {
			const struct tn_param p[] = { { "domain", name }, { "zone", zone },	    { "type", "TXT" },
						      { "ttl", TXT_TTL }, { "comments", COMMENT }, { "text", values[k] } };

			r = call(ctx, &vms[0], api, "/api/zones/records/add", p, ELEMENTSOF(p), NULL);
		}
	}
	if (r < 0 || n == 0)
		return r;
	/* the ACME server may ask any of them: wait until each answers */
	deadline = http_now_ms() + d->cfg.ready_timeout_ms;
	for (size_t i = 0; i < n_vms; i++) {
		bool ok = false;

		for (;;) {
			r = txt_served(d, &vms[i], name, values, n, &ok);
			if (r < 0)
				return run_ctx_error(ctx, r, "%s: cannot ask for %s TXT: %s", vms[i].name, name,
						     strerror(-r));
			if (ok)
				break;
			if (http_now_ms() >= deadline)
				return run_ctx_error(ctx, -ETIMEDOUT, "%s does not serve the %zu TXT record(s) at %s after %" PRIu64 " s",
						     vms[i].name, n, name, d->cfg.ready_timeout_ms / 1000);
			sleep_ms(d->cfg.poll_ms);
		}
	}
	return 0;
}

/* ---- dns-handover ---------------------------------------------------------- */

/* The nodes resolve through the lab's DNS servers: each node's resolver
 * (PUT /nodes/{node}/dns, what Proxmox writes to /etc/resolv.conf) set to
 * the servers in order, the zone as its search domain. Runs after the
 * verification, so the LAN's names are never handed to servers that do
 * not answer them. */
static int handover_run(struct run_ctx *ctx, const struct step *s, bool apply, bool *ret_done)
{
	struct dns_ctx *d = NULL;
	const char *nodes[64], *servers[3], *search = NULL;
	size_t n_nodes = 0, n_servers = 0;
	struct pve_node_dns want = {};
	int r = begin(ctx, s, &d);

	if (r >= 0)
		r = str_array(ctx, s, "nodes", nodes, ELEMENTSOF(nodes), &n_nodes);
	if (r >= 0)
		r = str_array(ctx, s, "servers", servers, ELEMENTSOF(servers), &n_servers);
	if (r >= 0)
		r = param(ctx, s, "search", &search);
	if (r < 0)
		return r;
	snprintf(want.search, sizeof(want.search), "%s", search);
	for (size_t i = 0; i < n_servers; i++)
		snprintf(want.dns[i], sizeof(want.dns[i]), "%s", servers[i]);
	*ret_done = true;
	for (size_t i = 0; i < n_nodes; i++) {
		struct pve_node_dns have;

		r = pve_node_dns_get(d->cfg.pve, nodes[i], &have);
		if (r < 0)
			return run_ctx_error(ctx, r, "%s: %s", nodes[i], pve_client_error(d->cfg.pve));
		if (streq(have.search, want.search) && streq(have.dns[0], want.dns[0]) && streq(have.dns[1], want.dns[1]) &&
		    streq(have.dns[2], want.dns[2]))
			continue;
		*ret_done = false;
		if (!apply)
			continue;
		progress(d, "%s: resolving through %s%s%s%s%s (was %s)", nodes[i], want.dns[0], want.dns[1][0] ? ", " : "",
			 want.dns[1], want.dns[2][0] ? ", " : "", want.dns[2], have.dns[0][0] ? have.dns[0] : "none");
		r = pve_node_dns_set(d->cfg.pve, nodes[i], &want);
		if (r < 0)
			return run_ctx_error(ctx, r, "%s: %s", nodes[i], pve_client_error(d->cfg.pve));
	}
	return 0;
}

STEP_OPS_OF_RUN(dns_handover_ops, handover_run);
