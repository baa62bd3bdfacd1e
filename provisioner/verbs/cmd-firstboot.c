/* SPDX-License-Identifier: MIT */
/*
 * cmd-firstboot.c — `devopslab firstboot`: the first-boot phase on one node.
 * Today it forms the Proxmox cluster (cluster.h); later issues add storage,
 * templates and VMs as further steps of the same plan.
 *
 *   devopslab firstboot (--bundle B --pubkey P | --manifest M) --node NAME
 *       [--journal FILE] [--api NODE=URL]... [--fingerprint NODE=SHA256]...
 *       [--ca FILE] [--password-file FILE] [timing options]
 *
 * Trust: a node is trusted by its pinned certificate fingerprint
 * (--fingerprint) or by the cluster CA (--ca); never on first use. The root
 * password comes from the bundle's sealed secrets (or --password-file).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "base64.h"
#include "pve/cluster.h"
#include "plan/journal.h"
#include "log.h"
#include "parse.h"
#include "manifest/manifest.h"
#include "plan/plan.h"
#include "progress.h"
#include "plan/run.h"
#include "plan/engine.h"
#include "plan/step.h"
#include "util.h"
#include "input.h"
#include "bundle/secret.h"
#include "bundle/extract.h"
#include "guests/guests.h"
#include "k3s/k3s.h"
#include "dns/dns.h"
#include "verify/verify.h"
#include "fileio.h"
#include <limits.h>
#include "verbs.h"
#include "step-ops.h"
#include "edge/edge.h"
#include "gitops/gitops.h"
#include "monitoring/monitoring.h"
#include "registry/registry.h"
#include "report/report.h"
#include "live/live.h"
#include "install/rootfs.h"
#include "plan/json-util.h"
#include "bundle/bundle.h"
#include <time.h>

#define PASSWORD_MAX 128 /* POST /cluster/config/join: maxLength 128 */
#define CREDENTIAL_MAX (64u << 10) /* a Git password or private key */

struct fb_opts {
	const char *manifest, *bundle, *pubkey, *secret_key, *node, *journal, *ca, *ca_key, *password_file, *local_cert;
	const char *assets;   /* --manifest runs: the assets directory (a bundle brings its own) */
	const char *k3s_api;  /* --k3s-api URL: the Kubernetes API (default: the VIP or first server) */
	const char *k3s_token_file; /* --manifest runs: the value of k3s.token */
	const char *report_dir;     /* the kubeconfig goes here */
	uint64_t k3s_timeout_ms;
	const char *dns_password_file; /* --manifest runs: the value of dns.admin_password */
	const char *dns_connect[DNS_CONNECT_MAX]; /* "VM=HOST:PORT" (tests) */
	size_t n_dns_connect;
	const char *dns_query[DNS_CONNECT_MAX];   /* "VM=HOST:PORT" (tests) */
	size_t n_dns_query;
	uint64_t verify_timeout_ms;
	const char *edge_password_file; /* --manifest runs: the value of edge.dashboard_password */
	const char *gitops_credential_file; /* --manifest runs: gitops.credentials' password or SSH key */
	const char *grafana_password_file;  /* --manifest runs: the value of monitoring.grafana_password */
	const char *edge_connect;       /* "HOST:PORT" for edge.ip:443 (tests) */
	uint64_t edge_timeout_ms;
	const char *acme_ca_file;       /* certificate: acme-dns01: trusts the ACME server and its chains */
	const char *status_listen;      /* "IP:PORT" or "off"; default: the node's address, status.port */
	uint64_t status_linger_ms;      /* keep serving the final status this long after the run */
	uint64_t progress_every_ms;     /* not a terminal: a summary line this often during a long step */
	const char *status_peer[CLUSTER_MAX_NODES]; /* "NODE=URL" of another node's status.json (tests) */
	size_t n_status_peer;
	uint64_t dns_timeout_ms;
	uint64_t boot_timeout_ms;
	const char *api[CLUSTER_MAX_NODES];   /* "NODE=URL" */
	size_t n_api;
	const char *fps[CLUSTER_MAX_NODES];   /* "NODE=FP" */
	size_t n_fps;
	uint64_t wait_first_ms, wait_quorum_ms, wait_turn_ms, poll_ms, task_poll_ms, timeout_ms, retry_base_ms;
	uint64_t seed;
	unsigned attempts;
	unsigned jobs;        /* guest steps at once (--jobs) */
	bool dry_run;         /* --dry-run: check every step, change nothing */
	bool recover;         /* --recover: this node was rebuilt; run its recovery plan */
};

#define JOBS_DEFAULT 8
#define JOBS_MAX 32

static void usage(FILE *f)
{
	fprintf(f, "Usage: devopslab firstboot (--bundle B --pubkey P [--secret-key FILE] | --manifest M) --node NAME\n"
		   "         [--journal FILE] [--api NODE=URL]... [--fingerprint NODE=SHA256]... [--ca FILE [--ca-key FILE]]\n"
		   "         [--local-cert FILE] [--password-file FILE] [--wait-first SEC] [--wait-quorum SEC]\n"
		   "         [--wait-turn SEC]"
		   " [--poll-ms MS] [--task-poll-ms MS] [--timeout-ms MS] [--retry-base-ms MS]\n"
		   "         [--attempts N] [--seed N] [--assets DIR] [--boot-timeout SEC] [--jobs N] [--dry-run]\n"
		   "         [--k3s-api URL] [--k3s-token-file FILE] [--k3s-timeout SEC] [--report-dir DIR]\n"
		   "         [--dns-password-file FILE] [--dns-connect VM=HOST:PORT]... [--dns-query VM=HOST:PORT]...\n"
		   "         [--dns-timeout SEC] [--verify-timeout SEC] [--edge-password-file FILE]\n"
		   "         [--edge-connect HOST:PORT] [--edge-timeout SEC] [--acme-ca-file FILE]\n"
		   "         [--gitops-credential-file FILE] [--grafana-password-file FILE]\n"
		   "         [--status-listen IP:PORT|off] [--status-linger SEC] [--progress-every SEC]\n"
		   "         [--status-peer NODE=URL]... [--recover]\n");
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT64_MAX / 1000)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_args(int argc, char *argv[], struct fb_opts *o)
{
	enum { O_MANIFEST = 256, O_BUNDLE, O_PUBKEY, O_NODE, O_JOURNAL, O_API, O_FP, O_CA, O_PW, O_WFIRST,
	       O_WQUORUM, O_WTURN, O_POLL, O_TPOLL, O_TIMEOUT, O_RETRY, O_ATTEMPTS, O_SEED, O_CAKEY, O_LOCALCERT, O_SECRETKEY,
	       O_ASSETS, O_BOOT, O_JOBS, O_DRYRUN, O_K3SAPI, O_K3STOKEN, O_K3STIMEOUT, O_REPORT, O_DNSPW, O_DNSCONNECT, O_DNSTIMEOUT, O_DNSQUERY, O_VERIFYTIMEOUT, O_EDGEPW, O_EDGECONNECT, O_EDGETIMEOUT, O_ACMECA, O_GITOPSCRED, O_GRAFANAPW,
	       O_STATUSLISTEN, O_STATUSLINGER, O_PROGRESSEVERY, O_STATUSPEER, O_RECOVER };
	static const struct option options[] = {
		{ "manifest", required_argument, NULL, O_MANIFEST },
		{ "bundle", required_argument, NULL, O_BUNDLE },
		{ "pubkey", required_argument, NULL, O_PUBKEY },
		{ "secret-key", required_argument, NULL, O_SECRETKEY },
		{ "node", required_argument, NULL, O_NODE },
		{ "journal", required_argument, NULL, O_JOURNAL },
		{ "api", required_argument, NULL, O_API },
		{ "fingerprint", required_argument, NULL, O_FP },
		{ "ca", required_argument, NULL, O_CA },
		{ "ca-key", required_argument, NULL, O_CAKEY },
		{ "local-cert", required_argument, NULL, O_LOCALCERT },
		{ "password-file", required_argument, NULL, O_PW },
		{ "wait-first", required_argument, NULL, O_WFIRST },
		{ "recover", no_argument, NULL, O_RECOVER },
		{ "wait-quorum", required_argument, NULL, O_WQUORUM },
		{ "wait-turn", required_argument, NULL, O_WTURN },
		{ "poll-ms", required_argument, NULL, O_POLL },
		{ "task-poll-ms", required_argument, NULL, O_TPOLL },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "retry-base-ms", required_argument, NULL, O_RETRY },
		{ "attempts", required_argument, NULL, O_ATTEMPTS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "assets", required_argument, NULL, O_ASSETS },
		{ "boot-timeout", required_argument, NULL, O_BOOT },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "dry-run", no_argument, NULL, O_DRYRUN },
		{ "k3s-api", required_argument, NULL, O_K3SAPI },
		{ "k3s-token-file", required_argument, NULL, O_K3STOKEN },
		{ "k3s-timeout", required_argument, NULL, O_K3STIMEOUT },
		{ "report-dir", required_argument, NULL, O_REPORT },
		{ "dns-password-file", required_argument, NULL, O_DNSPW },
		{ "dns-connect", required_argument, NULL, O_DNSCONNECT },
		{ "dns-timeout", required_argument, NULL, O_DNSTIMEOUT },
		{ "dns-query", required_argument, NULL, O_DNSQUERY },
		{ "verify-timeout", required_argument, NULL, O_VERIFYTIMEOUT },
		{ "edge-password-file", required_argument, NULL, O_EDGEPW },
		{ "gitops-credential-file", required_argument, NULL, O_GITOPSCRED },
		{ "grafana-password-file", required_argument, NULL, O_GRAFANAPW },
		{ "edge-connect", required_argument, NULL, O_EDGECONNECT },
		{ "edge-timeout", required_argument, NULL, O_EDGETIMEOUT },
		{ "acme-ca-file", required_argument, NULL, O_ACMECA },
		{ "status-listen", required_argument, NULL, O_STATUSLISTEN },
		{ "status-linger", required_argument, NULL, O_STATUSLINGER },
		{ "progress-every", required_argument, NULL, O_PROGRESSEVERY },
		{ "status-peer", required_argument, NULL, O_STATUSPEER },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		int r = 0;

		switch (c) {
		case O_MANIFEST: o->manifest = optarg; break;
		case O_BUNDLE: o->bundle = optarg; break;
		case O_PUBKEY: o->pubkey = optarg; break;
		case O_SECRETKEY: o->secret_key = optarg; break;
		case O_NODE: o->node = optarg; break;
		case O_JOURNAL: o->journal = optarg; break;
		case O_CA: o->ca = optarg; break;
		case O_CAKEY: o->ca_key = optarg; break;
		case O_LOCALCERT: o->local_cert = optarg; break;
		case O_PW: o->password_file = optarg; break;
		case O_API:
		case O_FP:
			if (!strchr(optarg, '=') || (c == O_API ? o->n_api : o->n_fps) >= CLUSTER_MAX_NODES) {
				log_error("--%s takes NODE=VALUE", c == O_API ? "api" : "fingerprint");
				return -EINVAL;
			}
			if (c == O_API)
				o->api[o->n_api++] = optarg;
			else
				o->fps[o->n_fps++] = optarg;
			break;
		case O_WFIRST: r = parse_u64(optarg, &v); o->wait_first_ms = v * 1000; break;
		case O_WQUORUM: r = parse_u64(optarg, &v); o->wait_quorum_ms = v * 1000; break;
		case O_WTURN: r = parse_u64(optarg, &v); o->wait_turn_ms = v * 1000; break;
		case O_POLL: r = parse_u64(optarg, &o->poll_ms); break;
		case O_TPOLL: r = parse_u64(optarg, &o->task_poll_ms); break;
		case O_TIMEOUT: r = parse_u64(optarg, &o->timeout_ms); break;
		case O_RETRY: r = parse_u64(optarg, &o->retry_base_ms); break;
		case O_ATTEMPTS: r = parse_u64(optarg, &v); o->attempts = v > 50 ? 50 : (unsigned)v; break;
		case O_SEED: r = parse_u64(optarg, &o->seed); break;
		case O_ASSETS: o->assets = optarg; break;
		case O_BOOT: r = parse_u64(optarg, &v); o->boot_timeout_ms = v * 1000; break;
		case O_DRYRUN: o->dry_run = true; break;
		case O_RECOVER: o->recover = true; break;
		case O_K3SAPI:
			if (strncmp(optarg, "https://", 8) != 0) {
				log_error("--k3s-api takes an https:// URL");
				return -EINVAL;
			}
			o->k3s_api = optarg;
			break;
		case O_K3STOKEN: o->k3s_token_file = optarg; break;
		case O_K3STIMEOUT: r = parse_u64(optarg, &v); o->k3s_timeout_ms = v * 1000; break;
		case O_REPORT: o->report_dir = optarg; break;
		case O_DNSPW: o->dns_password_file = optarg; break;
		case O_EDGEPW: o->edge_password_file = optarg; break;
		case O_GITOPSCRED: o->gitops_credential_file = optarg; break;
		case O_GRAFANAPW: o->grafana_password_file = optarg; break;
		case O_EDGECONNECT: o->edge_connect = optarg; break;
		case O_EDGETIMEOUT: r = parse_u64(optarg, &v); o->edge_timeout_ms = v * 1000; break;
		case O_ACMECA: o->acme_ca_file = optarg; break;
		case O_STATUSLISTEN: o->status_listen = optarg; break;
		case O_STATUSLINGER: r = parse_u64(optarg, &v); o->status_linger_ms = v * 1000; break;
		case O_PROGRESSEVERY: r = parse_u64(optarg, &v); o->progress_every_ms = v * 1000; break;
		case O_STATUSPEER:
			if (!strchr(optarg, '=') || strncmp(strchr(optarg, '=') + 1, "http://", 7) != 0 ||
			    o->n_status_peer >= CLUSTER_MAX_NODES) {
				log_error("--status-peer takes NODE=http://HOST:PORT/status.json");
				return -EINVAL;
			}
			o->status_peer[o->n_status_peer++] = optarg;
			break;
		case O_DNSCONNECT:
		case O_DNSQUERY:
			if (!strchr(optarg, '=') || !strchr(strchr(optarg, '='), ':') ||
			    (c == O_DNSCONNECT ? o->n_dns_connect : o->n_dns_query) >= DNS_CONNECT_MAX) {
				log_error("--dns-%s takes VM=HOST:PORT (at most %d)", c == O_DNSCONNECT ? "connect" : "query",
					  DNS_CONNECT_MAX);
				return -EINVAL;
			}
			if (c == O_DNSCONNECT)
				o->dns_connect[o->n_dns_connect++] = optarg;
			else
				o->dns_query[o->n_dns_query++] = optarg;
			break;
		case O_VERIFYTIMEOUT: r = parse_u64(optarg, &v); o->verify_timeout_ms = v * 1000; break;
		case O_DNSTIMEOUT: r = parse_u64(optarg, &v); o->dns_timeout_ms = v * 1000; break;
		case O_JOBS:
			r = parse_u64(optarg, &v);
			if (r >= 0 && (v < 1 || v > JOBS_MAX)) {
				log_error("--jobs takes 1 to %d", JOBS_MAX);
				return -EINVAL;
			}
			o->jobs = (unsigned)v;
			break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -EINVAL;
		}
		if (r < 0) {
			log_error("invalid number '%s'", optarg);
			return r;
		}
	}
	if (o->ca_key && !o->ca) {
		log_error("--ca-key needs --ca (the CA certificate)");
		return -EINVAL;
	}
	if (optind < argc || !o->node || (!o->manifest && !(o->bundle && o->pubkey))) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* "NODE=VALUE" entries: the value for `node` (the last one given wins), or NULL. */
static const char *lookup(const char *const *list, size_t n, const char *node)
{
	size_t len = strlen(node);

	for (size_t i = n; i-- > 0;)
		if (strncmp(list[i], node, len) == 0 && list[i][len] == '=')
			return list[i] + len + 1;
	return NULL;
}

/* The root password: one line, at most PASSWORD_MAX bytes. */
static int read_password(const char *path, char buf[PASSWORD_MAX + 2])
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, PASSWORD_MAX + 1);
	if (n < 0)
		return negative_errno();
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0 || n > PASSWORD_MAX || memchr(buf, '\n', (size_t)n) || memchr(buf, 0, (size_t)n))
		return -EINVAL;
	buf[n] = 0;
	return 0;
}

/* Our own node's certificate, read from the local file system (root's, as
 * trusted as this program): what its API serves, custom certificate first
 * (as Proxmox's get_node_fingerprint). 1 = found, 0 = none, -errno. */
static int local_trust(const struct fb_opts *o, uint8_t fp[HTTP_FP_LEN])
{
	static const char *const defaults[] = { "/etc/pve/local/pveproxy-ssl.pem", "/etc/pve/local/pve-ssl.pem" };
	int r;

	if (o->local_cert) {
		r = http_fp_from_pem_file(o->local_cert, fp);
		if (r < 0)
			log_error("--local-cert '%s': no certificate: %s", o->local_cert, strerror(-r));
		return r < 0 ? r : 1;
	}
	for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
		if (http_fp_from_pem_file(defaults[i], fp) >= 0)
			return 1;
	return 0;
}

struct names {
	char ip[CLUSTER_MAX_NODES][16];
	char url[CLUSTER_MAX_NODES][64];
};

static int build_cfg(const struct fb_opts *o, const struct manifest *m, struct names *nm, struct cluster_cfg *cfg)
{
	if (m->n_nodes > CLUSTER_MAX_NODES) {
		log_error("%zu nodes: at most %d are supported", m->n_nodes, CLUSTER_MAX_NODES);
		return -E2BIG;
	}
	cfg->cluster_name = m->cluster.name;
	cfg->n_nodes = m->n_nodes;
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mf_node *n = &m->nodes[i];
		struct cluster_node_cfg *c = &cfg->nodes[i];
		const char *fp;

		ipv4_format(n->ip, nm->ip[i], sizeof(nm->ip[i]));
		snprintf(nm->url[i], sizeof(nm->url[i]), "https://%s:8006", nm->ip[i]);
		c->name = n->name;
		c->ip = nm->ip[i];
		c->api_url = lookup(o->api, o->n_api, n->name);
		if (!c->api_url)
			c->api_url = nm->url[i];
		c->first = n->role == MF_ROLE_FIRST;
		fp = lookup(o->fps, o->n_fps, n->name);
		if (fp) {
			if (http_fp_parse(fp, c->fp) < 0) {
				log_error("--fingerprint %s: not a SHA-256 fingerprint (AA:BB:... 32 bytes)", n->name);
				return -EINVAL;
			}
			c->has_fp = true;
		}
	}
	for (size_t i = 0; i < m->n_nodes; i++) {
		struct cluster_node_cfg *c = &cfg->nodes[i];
		int r;

		if (c->has_fp || !streq(c->name, o->node))
			continue;
		r = local_trust(o, c->fp);
		if (r < 0)
			return r;
		c->has_fp = r > 0;
	}
	for (size_t i = 0; i < o->n_api + o->n_fps; i++) {
		const char *e = i < o->n_api ? o->api[i] : o->fps[i - o->n_api];
		char name[256];

		snprintf(name, sizeof(name), "%.*s", (int)(strchr(e, '=') - e), e);
		if (!manifest_find_node(m, name)) {
			log_error("--%s %s: no node '%s' in the manifest", i < o->n_api ? "api" : "fingerprint", e, name);
			return -EINVAL;
		}
	}
	return 0;
}

static void on_progress(void *userdata, const char *msg)
{
	(void)userdata;
	log_info("%s", msg);
}

/* What the run did, step by step: the dry run's count, the report's states. */
struct fb_tally {
	size_t would_apply;
	const struct plan *plan;
	struct report_step *run; /* plan->n_steps */
	struct live *live;       /* NULL: no status page */
};

static void on_step(const struct step_progress *p, void *userdata)
{
	struct fb_tally *t = userdata;
	size_t i = t->run ? (size_t)(p->step - t->plan->steps) : 0;
	enum report_run run = REPORT_RUN_NONE;

	if (p->event == STEP_EVENT_WOULD_APPLY)
		t->would_apply++;
	switch (p->event) {
	case STEP_EVENT_APPLIED: run = REPORT_RUN_APPLIED; break;
	case STEP_EVENT_FOUND_DONE: run = REPORT_RUN_FOUND; break;
	case STEP_EVENT_SKIP_JOURNAL: run = REPORT_RUN_EARLIER; break;
	case STEP_EVENT_FAILED: run = REPORT_RUN_FAILED; break;
	default: break;
	}
	if (run != REPORT_RUN_NONE && t->run && i < t->plan->n_steps)
		t->run[i] = (struct report_step){ .run = run, .elapsed_ms = p->elapsed_usec / 1000 };
	live_step(t->live, p);
	verbs_log_step(p);
}

/* The manifest and the root password: from the verified bundle and its
 * sealed secrets, or (drafts, tests) from --manifest and --password-file;
 * --password-file also overrides the bundle's value. */
static int load_inputs(const struct fb_opts *o, struct manifest **ret, struct secrets **ret_secrets,
		       struct input_bundle **ret_kept, char password[PASSWORD_MAX + 2])
{
	struct input_opts in = { .bundle = o->bundle, .pubkey = o->pubkey, .manifest = o->manifest,
				 .secret_key = o->secret_key };
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	_cleanup_(secrets_freep) struct secrets *s = NULL;
	const char *value;
	int r;

	r = input_check(&in, "firstboot");
	if (r != EXIT_OK)
		return r;
	if (o->bundle)
		r = input_load_kept(&in, &m, &s, ret_kept);
	else
		r = input_load_manifest(&in, &m);
	if (r != EXIT_OK)
		return r;
	if (!manifest_find_node(m, o->node)) {
		log_error("node '%s' is not in the manifest", o->node);
		return EXIT_BADINPUT;
	}
	if (o->password_file) {
		r = read_password(o->password_file, password);
		if (r < 0) {
			log_error("cannot read the root password from '%s': %s", o->password_file,
				  r == -EINVAL ? "must be one line of 1 to 128 bytes" : strerror(-r));
			return EXIT_BADINPUT;
		}
	} else if (!s) {
		log_error("the root password is needed: --bundle with its secrets, or --password-file FILE");
		return EXIT_BADINPUT;
	} else {
		value = secrets_get(s, m->proxmox.root_password.name);
		if (!value || !*value || strlen(value) > PASSWORD_MAX) {
			log_error("secret '%s' (proxmox.root_password) is %s", m->proxmox.root_password.name,
				  !value ? "missing from the bundle" : "not 1 to 128 bytes long");
			return EXIT_BADINPUT;
		}
		memcpy(password, value, strlen(value) + 1);
	}
	*ret = TAKE_PTR(m);
	*ret_secrets = TAKE_PTR(s);
	return EXIT_OK;
}

/* The cluster CA from the bundle's secrets (base64 of the PEMs), written to
 * a private directory for the CA-trust and certificate code, which read
 * files; removed when firstboot ends. --ca/--ca-key take precedence. */
struct ca_files {
	char dir[64], cert[96], key[96];
	bool made;
};

static void ca_files_done(struct ca_files *f)
{
	if (!f->made)
		return;
	(void)unlink(f->key);
	(void)unlink(f->cert);
	(void)rmdir(f->dir);
	f->made = false;
}

static int write_secret_pem(const struct secrets *s, const char *name, const char *path)
{
	_cleanup_free_ uint8_t *pem = NULL;
	_cleanup_close_ int fd = -1;
	const char *b64 = secrets_get(s, name);
	size_t n;
	int r;

	if (!b64) {
		log_error("the bundle's secrets have '%s' but not '%s': the cluster CA needs both", MANIFEST_SECRET_CA_KEY,
			  name);
		return -ENOENT;
	}
	r = base64_decode(b64, strlen(b64), &pem, &n);
	if (r < 0) {
		log_error("secret '%s' is not base64 (of a PEM file): %s", name, strerror(-r));
		return r;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	r = fd < 0 ? negative_errno() : (write(fd, pem, n) == (ssize_t)n ? 0 : -EIO);
	explicit_wipe(pem, n);
	if (r < 0)
		log_error("cannot write the cluster CA: %s", strerror(-r));
	return r;
}

static int ca_files_from_secrets(const struct secrets *s, struct ca_files *f)
{
	const char *tmp = getenv("TMPDIR");
	int r;

	if (!s || !secrets_get(s, MANIFEST_SECRET_CA_KEY))
		return 0;
	if (isempty(tmp) || snprintf(f->dir, sizeof(f->dir), "%s/devopslab-ca.XXXXXX", tmp) >= (int)sizeof(f->dir))
		snprintf(f->dir, sizeof(f->dir), "/tmp/devopslab-ca.XXXXXX");
	if (!mkdtemp(f->dir)) {
		log_error("cannot create a private directory: %m");
		return negative_errno();
	}
	f->made = true;
	snprintf(f->cert, sizeof(f->cert), "%s/ca.pem", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/ca.key", f->dir);
	r = write_secret_pem(s, MANIFEST_SECRET_CA_CERT, f->cert);
	if (r >= 0)
		r = write_secret_pem(s, MANIFEST_SECRET_CA_KEY, f->key);
	return r;
}

/* The guest steps' scratch space: the ISOs made before their upload. */
struct work_dir {
	char path[64];
	bool made;
};

static void work_dir_done(struct work_dir *w)
{
	if (w->made)
		(void)extract_rm_rf_at(AT_FDCWD, w->path);
	w->made = false;
}

static bool plan_has_guests(const struct plan *p)
{
	for (size_t i = 0; i < p->n_steps; i++)
		if (p->steps[i].kind == STEP_STORAGE || p->steps[i].kind == STEP_TEMPLATE || p->steps[i].kind == STEP_VM)
			return true;
	return false;
}

/* The guest steps run through this node's own API (a cluster member
 * proxies to the others), read the assets of the verified bundle (or of
 * --assets with a draft manifest) and make ISOs in a private directory. */
/* Each worker of the step engine (templates and VMs at the same time) gets
 * a guest context of its own: its own API client and scratch directory. */
static int worker_init(struct run_ctx *w, unsigned index, void *userdata)
{
	struct guests_ctx *gc;
	int r;

	(void)userdata;
	if (!w->guests)
		return 0;
	r = guests_ctx_clone(w->guests, index, &gc);
	if (r < 0)
		return r;
	w->guests = gc;
	return 0;
}

static void worker_done(struct run_ctx *w, void *userdata)
{
	(void)userdata;
	w->guests = guests_ctx_free(w->guests);
}

static int guests_setup(const struct fb_opts *o, struct cluster_ctx *cc, const struct input_bundle *kept,
			struct work_dir *work, struct guests_ctx **ret)
{
	struct guests_cfg gcfg = {
		.assets_dir = kept ? kept->assets_dir : o->assets,
		.bundle = kept ? kept->bundle : NULL,
		.poll_ms = o->poll_ms,
		.boot_timeout_ms = o->boot_timeout_ms,
		.lock_timeout_ms = o->wait_turn_ms,
		.progress = on_progress,
	};
	const char *tmp = getenv("TMPDIR");
	int r;

	if (isempty(tmp) || snprintf(work->path, sizeof(work->path), "%s/devopslab-guests.XXXXXX", tmp) >=
				    (int)sizeof(work->path))
		snprintf(work->path, sizeof(work->path), "/tmp/devopslab-guests.XXXXXX");
	if (!mkdtemp(work->path)) {
		log_error("cannot create a private directory: %m");
		return negative_errno();
	}
	work->made = true;
	gcfg.work_dir = work->path;
	r = cluster_self_client(cc, &gcfg.client);
	if (r < 0) {
		log_error("%s", cluster_error(cc));
		return r;
	}
	r = guests_ctx_new(&gcfg, ret);
	if (r < 0)
		log_error("cannot set up the guest steps: %s", strerror(-r));
	return r;
}

static bool plan_has_k3s(const struct plan *p)
{
	for (size_t i = 0; i < p->n_steps; i++)
		if (p->steps[i].kind == STEP_K3S_SERVER_INIT || p->steps[i].kind == STEP_K3S_SERVER_JOIN ||
		    p->steps[i].kind == STEP_K3S_AGENT)
			return true;
	return false;
}

#define CA_KEY_MAX (64u << 10)

/* The K3s steps: their trust derives from the cluster CA's key (the
 * bundle's sealed cluster_ca_key, or --ca-key), their token is the
 * bundle's k3s.token secret (or --k3s-token-file with --manifest). */
static int k3s_setup(const struct fb_opts *o, const struct manifest *m, const struct secrets *secrets,
		     struct cluster_ctx *cc, struct k3s_ctx **ret)
{
	struct k3s_cfg kcfg = {
		.api_url = o->k3s_api,
		.poll_ms = o->poll_ms,
		.ready_timeout_ms = o->k3s_timeout_ms,
		.exec_timeout_ms = o->k3s_timeout_ms,
		.http = { .request_timeout_ms = o->timeout_ms, .connect_timeout_ms = o->timeout_ms,
			  .backoff_base_ms = o->retry_base_ms, .max_attempts = 2, .seed = o->seed },
		.progress = on_progress,
	};
	_cleanup_free_ char *key = NULL;
	_cleanup_close_ int fd = -1;
	char token[PASSWORD_MAX + 2];
	const char *value = NULL;
	size_t n = 0;
	int r;

	if (o->k3s_token_file) {
		r = read_password(o->k3s_token_file, token);
		if (r < 0) {
			log_error("cannot read the K3s token from '%s': %s", o->k3s_token_file,
				  r == -EINVAL ? "must be one line of 1 to 128 bytes" : strerror(-r));
			return -EINVAL;
		}
		value = token;
	} else if (secrets)
		value = secrets_get(secrets, m->k3s.token.name);
	if (isempty(value)) {
		log_error("the K3s token (secret '%s') is needed: --bundle with its secrets, or --k3s-token-file FILE",
			  m->k3s.token.name);
		return -EINVAL;
	}
	if (!o->ca_key) {
		log_error("the K3s CAs derive from the cluster CA's key: the bundle's secret '%s', or --ca/--ca-key",
			  MANIFEST_SECRET_CA_KEY);
		return -EINVAL;
	}
	fd = open(o->ca_key, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	r = fd < 0 ? negative_errno() : read_fd_capped(fd, CA_KEY_MAX, &key, &n);
	if (r < 0 || n > CA_KEY_MAX) {
		log_error("cannot read the cluster CA's key '%s': %s", o->ca_key, r < 0 ? strerror(-r) : "too large");
		return -EINVAL;
	}
	kcfg.ca_key_pem = key;
	kcfg.ca_key_len = n;
	kcfg.token_secret = value;
	r = cluster_self_client(cc, &kcfg.pve);
	if (r < 0) {
		log_error("%s", cluster_error(cc));
		return r;
	}
	r = k3s_ctx_new(&kcfg, m, ret);
	explicit_wipe(key, n);
	explicit_wipe(token, sizeof(token));
	if (r < 0)
		log_error("cannot set up the K3s steps: %s", r == -EINVAL ? "the cluster CA's key is not a key mbedtls reads"
										: strerror(-r));
	return r;
}

/* The DNS steps: the admin password is the bundle's dns.admin_password
 * secret (or --dns-password-file with --manifest); the cluster CA trusts
 * the servers' web consoles and issues their certificates. */
static int dns_setup(const struct fb_opts *o, const struct manifest *m, const struct secrets *secrets,
		     struct cluster_ctx *cc, struct dns_ctx **ret)
{
	struct dns_cfg dcfg = {
		.ca_file = o->ca,
		.ca_key_file = o->ca_key,
		.poll_ms = o->poll_ms,
		.ready_timeout_ms = o->dns_timeout_ms,
		.exec_timeout_ms = o->dns_timeout_ms,
		.http = { .request_timeout_ms = o->timeout_ms, .connect_timeout_ms = o->timeout_ms,
			  .backoff_base_ms = o->retry_base_ms, .max_attempts = 2, .seed = o->seed },
		.progress = on_progress,
	};
	char pw[PASSWORD_MAX + 2], vm[DNS_CONNECT_MAX][64], qvm[DNS_CONNECT_MAX][64];
	const char *value = NULL;
	int r;

	if (o->dns_password_file) {
		r = read_password(o->dns_password_file, pw);
		if (r < 0) {
			log_error("cannot read the DNS admin password from '%s': %s", o->dns_password_file,
				  r == -EINVAL ? "must be one line of 1 to 128 bytes" : strerror(-r));
			return -EINVAL;
		}
		value = pw;
	} else if (secrets)
		value = secrets_get(secrets, m->dns.admin_password.name);
	if (isempty(value)) {
		log_error("the DNS admin password (secret '%s') is needed: --bundle with its secrets, or "
			  "--dns-password-file FILE",
			  m->dns.admin_password.name);
		return -EINVAL;
	}
	if (!o->ca || !o->ca_key) {
		log_error("the DNS servers' certificates come from the cluster CA: the bundle's secrets '%s' and "
			  "'%s', or --ca and --ca-key",
			  MANIFEST_SECRET_CA_CERT, MANIFEST_SECRET_CA_KEY);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->n_dns_connect; i++) {
		const char *eq = strchr(o->dns_connect[i], '=');

		snprintf(vm[i], sizeof(vm[i]), "%.*s", (int)(eq - o->dns_connect[i]), o->dns_connect[i]);
		dcfg.vm[i] = vm[i];
		dcfg.connect_to[i] = eq + 1;
	}
	dcfg.n_connect = o->n_dns_connect;
	for (size_t i = 0; i < o->n_dns_query; i++) {
		const char *eq = strchr(o->dns_query[i], '=');

		snprintf(qvm[i], sizeof(qvm[i]), "%.*s", (int)(eq - o->dns_query[i]), o->dns_query[i]);
		dcfg.query_vm[i] = qvm[i];
		dcfg.query_to[i] = eq + 1;
	}
	dcfg.n_query = o->n_dns_query;
	dcfg.admin_password = value;
	r = cluster_self_client(cc, &dcfg.pve);
	if (r < 0) {
		explicit_wipe(pw, sizeof(pw));
		log_error("%s", cluster_error(cc));
		return r;
	}
	r = dns_ctx_new(&dcfg, m, ret);
	explicit_wipe(pw, sizeof(pw));
	if (r < 0)
		log_error("cannot set up the DNS steps: %s", r == -EINVAL ? "the cluster CA's key is not a key OpenSSL reads"
										: strerror(-r));
	return r;
}

/* The edge steps: on K3s's API, the cluster CA issues the wildcard
 * certificate and is the consoles' trust; the dashboard's password is the
 * bundle's edge.dashboard_password secret (or --edge-password-file with
 * --manifest). */
static int edge_setup(const struct fb_opts *o, const struct manifest *m, const struct secrets *secrets,
		      struct k3s_ctx *kc, struct dns_ctx *dc, struct edge_ctx **ret)
{
	struct edge_cfg ecfg = { .k3s = kc, .ca_file = o->ca, .ca_key_file = o->ca_key, .poll_ms = o->poll_ms,
				 .timeout_ms = o->edge_timeout_ms, .progress = on_progress, .dns = dc,
				 .acme_ca_file = o->acme_ca_file };
	char pw[PASSWORD_MAX + 2];
	const char *value = NULL;
	int r;

	if (!kc) {
		log_error("the edge is K3s's Traefik: the plan has no K3s steps");
		return -EINVAL;
	}
	if (!o->ca || !o->ca_key) {
		log_error("the edge's certificate comes from the cluster CA: the bundle's secrets '%s' and '%s', or "
			  "--ca and --ca-key",
			  MANIFEST_SECRET_CA_CERT, MANIFEST_SECRET_CA_KEY);
		return -EINVAL;
	}
	if (m->edge.dashboard_host) {
		if (o->edge_password_file) {
			r = read_password(o->edge_password_file, pw);
			if (r < 0) {
				log_error("cannot read the dashboard's password from '%s': %s", o->edge_password_file,
					  r == -EINVAL ? "must be one line of 1 to 128 bytes" : strerror(-r));
				return -EINVAL;
			}
			value = pw;
		} else if (secrets)
			value = secrets_get(secrets, m->edge.dashboard_password.name);
		if (isempty(value)) {
			log_error("the Traefik dashboard's password (secret '%s') is needed: --bundle with its secrets, "
				  "or --edge-password-file FILE",
				  m->edge.dashboard_password.name);
			return -EINVAL;
		}
	}
	ecfg.dashboard_password = value;
	r = edge_ctx_new(&ecfg, ret);
	explicit_wipe(pw, sizeof(pw));
	if (r < 0)
		log_error("cannot set up the edge steps: %s", r == -EBADMSG ? "the cluster CA file holds no certificate"
										: strerror(-r));
	return r;
}

/* A credential from a file (a password or token, or a private key): all
 * of it, a password's final newline dropped. -EINVAL when empty. */
static int read_credential(const char *path, char **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char *v = NULL;
	size_t n = 0;
	int r;

	r = fd < 0 ? negative_errno() : read_fd_capped(fd, CREDENTIAL_MAX, &v, &n);
	if (r < 0)
		return r;
	if (n > CREDENTIAL_MAX) {
		explicit_wipe(v, n);
		free(v);
		return -EFBIG;
	}
	/* one line: a password; a key keeps its lines as they are */
	if (n && v[n - 1] == '\n' && !memchr(v, '\n', n - 1))
		v[--n] = '\0';
	if (!n) {
		free(v);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* The administrator's kubeconfig into the report directory (mode 0600). */
static int write_kubeconfig(const struct fb_opts *o, struct k3s_ctx *k)
{
	const char *dir = o->report_dir ? o->report_dir : REPORT_DIR_DEFAULT;
	char path[PATH_MAX];
	int r = mkdir_p(dir, 0700);

	if (r >= 0 && snprintf(path, sizeof(path), "%s/kubeconfig", dir) >= (int)sizeof(path))
		r = -ENAMETOOLONG;
	if (r >= 0)
		r = k3s_write_kubeconfig(k, path);
	if (r < 0)
		log_error("cannot write the kubeconfig into '%s': %s", dir, strerror(-r));
	else
		log_info("kubeconfig for %s written to %s (mode 0600)", k3s_api_url(k), path);
	return r;
}

/* The run's live model without a page (a dry run, status off, or a page
 * that could not be served): the console's summaries still read it, and
 * the log lines still go into it. */
static struct live *status_model(const struct manifest *m, const struct fb_opts *o, const struct plan *plan)
{
	struct live *l = NULL;

	if (live_start(NULL, m->cluster.name, o->node, "firstboot", &l) < 0)
		return NULL;
	if (live_plan(l, plan, STEP_PHASE_FIRSTBOOT) < 0)
		return live_stop(l);
	log_set_sink(live_log, l);
	return l;
}

/* The orchestrating node's page shows every node: the others' status
 * documents on their addresses and status.port, or where --status-peer
 * says. A page served elsewhere (--status-listen) asks only the peers
 * --status-peer names. */
static void status_gather(const struct fb_opts *o, const struct manifest *m, struct live *l)
{
	const char *names[CLUSTER_MAX_NODES], *urls[CLUSTER_MAX_NODES];
	char buf[CLUSTER_MAX_NODES][96];
	size_t n = 0;
	int r;

	for (size_t i = 0; i < m->n_nodes && n < CLUSTER_MAX_NODES; i++) {
		const struct mf_node *p = &m->nodes[i];
		const char *url = NULL;
		size_t len = strlen(p->name);

		if (streq(p->name, o->node))
			continue;
		for (size_t k = 0; k < o->n_status_peer; k++)
			if (strncmp(o->status_peer[k], p->name, len) == 0 && o->status_peer[k][len] == '=')
				url = o->status_peer[k] + len + 1;
		if (!url && o->status_listen)
			continue;
		if (!url) {
			char ip[16];

			snprintf(buf[n], sizeof(buf[n]), "http://%s:%u/status.json", ipv4_format(p->ip, ip, sizeof(ip)),
				 m->status.port);
			url = buf[n];
		}
		names[n] = p->name;
		urls[n++] = url;
	}
	r = live_peers(l, names, urls, n, 0);
	if (r < 0)
		log_warning("the status page cannot gather the other nodes: %s", strerror(-r));
}

/* The live status page (docs/operations.md, "Live status"): on the
 * node's address and the manifest's status.port unless --status-listen says
 * otherwise. A page that cannot be served is a warning, never a failure:
 * the model is kept for the console's summaries (NULL only when memory is
 * short). */
static struct live *status_start(const struct fb_opts *o, const struct manifest *m, const struct plan *plan)
{
	const struct mf_node *n = manifest_find_node(m, o->node);
	struct live *l = NULL;
	char listen[64];
	int r;

	if (o->dry_run || (o->status_listen && streq(o->status_listen, "off")) ||
	    (!o->status_listen && !m->status.enabled) || !n)
		return status_model(m, o, plan);
	if (o->status_listen)
		snprintf(listen, sizeof(listen), "%s", o->status_listen);
	else {
		char ip[16];

		snprintf(listen, sizeof(listen), "%s:%u", ipv4_format(n->ip, ip, sizeof(ip)), m->status.port);
	}
	r = live_start(listen, m->cluster.name, o->node, "firstboot", &l);
	if (r >= 0)
		r = live_plan(l, plan, STEP_PHASE_FIRSTBOOT);
	if (r < 0) {
		l = live_stop(l);
		log_warning("the status page is not served on %s: %s", listen,
			    r == -EINVAL ? "not an IPv4 address and port" : strerror(-r));
		return status_model(m, o, plan);
	}
	log_set_sink(live_log, l);
	log_info("status page: http://%.*s:%u/ (JSON: /status.json)", (int)(strrchr(listen, ':') - listen), listen,
		 live_port(l));
	if (n->role == MF_ROLE_FIRST)
		status_gather(o, m, l);
	return l;
}

static void status_stop(const struct fb_opts *o, struct live *l)
{
	if (!l)
		return;
	log_set_sink(NULL, NULL);
	if (o->status_linger_ms && live_port(l)) {
		log_info("status page: serving the final status for %" PRIu64 " s", o->status_linger_ms / 1000);
		sleep_ms(o->status_linger_ms);
	}
	live_stop(l);
}

/* The final report into the report directory, its summary on the console
 * (docs/operations.md, "The report"). A report that cannot be written
 * fails the run: the operator would be left without the way in. */
static int write_report(const struct fb_opts *o, struct report_input *in)
{
	_cleanup_json_ struct json_object *rep = NULL;
	int r;

	in->dir = o->report_dir ? o->report_dir : REPORT_DIR_DEFAULT;
	in->finished_ms = wall_ms();
	r = report_build(in, &rep);
	if (r < 0) {
		log_error("cannot build the report: %s", strerror(-r));
		return r;
	}
	r = report_write(in->dir, rep);
	if (r < 0)
		return r;
	fputc('\n', stdout);
	report_print(stdout, rep, false);
	fflush(stdout);
	return 0;
}

/* Recovery of a rebuilt node (docs/operations.md, "Recovering a node") is
 * kept in the node's journal as a record of its own, "node/NAME/recovery"
 * ({"state": "recovering"|"recovered"}): written before any step, so that a
 * run killed after the stale member was removed (the cluster no longer
 * lists the node) still resumes as a recovery; "recovered" once the
 * recovery plan converged, after which the node is an ordinary member. */
static int recovery_record(struct journal *j, const char *node, bool done)
{
	_cleanup_json_ struct json_object *res = json_object_new_object();
	char id[STEP_ID_MAX + 1];
	struct journal_record rec = { .id = id, .phase = (char *)"firstboot", .node = (char *)node,
				      .status = JOURNAL_STATUS_APPLIED };
	int r;

	if (!j)
		return 0;
	if (!res || json_add_string(res, "state", done ? "recovered" : "recovering") < 0)
		return -ENOMEM;
	snprintf(id, sizeof(id), "node/%s/recovery", node);
	memset(rec.hash, '0', sizeof(rec.hash) - 1);
	rec.result = res;
	r = journal_append(j, &rec);
	if (r < 0)
		log_error("cannot record the recovery in the journal: %s", journal_error());
	return r;
}

/* Recover when told (--recover), when the journal says a recovery is
 * under way, or when the cluster runs on and still lists this node while
 * the node itself is in none: it was rebuilt. The first node's plan runs
 * every cluster-wide step anyway (its create step joins it again). */
static int recovery_mode(const struct fb_opts *o, const struct manifest *m, struct cluster_ctx *cc,
			 struct journal *j, bool *ret)
{
	const struct mf_node *n = manifest_find_node(m, o->node);
	const struct journal_record *rec;
	char id[STEP_ID_MAX + 1];
	bool stale = false;
	int r;

	*ret = false;
	if (!n || n->role == MF_ROLE_FIRST) {
		if (o->recover)
			log_info("the first node's own plan rebuilds what lived on it: --recover changes nothing");
		return 0;
	}
	snprintf(id, sizeof(id), "node/%s/recovery", o->node);
	rec = j ? journal_find(j, id) : NULL;
	if (rec) {
		*ret = streq_ptr(json_get_string(rec->result, "state"), "recovering");
		if (*ret)
			log_info("resuming the recovery of '%s' (the journal has it under way)", o->node);
		if (*ret || !o->recover)
			return 0;
	}
	if (!o->recover) {
		r = cluster_find_stale_self(cc, &stale);
		if (r < 0) {
			log_error("%s", cluster_error(cc));
			return r;
		}
		if (!stale)
			return 0;
	}
	log_info("recovering '%s': it rejoins cluster '%s' and brings back what lived on it "
		 "(devopslab plan --recover %s shows the steps)",
		 o->node, m->cluster.name, o->node);
	*ret = true;
	return o->dry_run ? 0 : recovery_record(j, o->node, false);
}

int verb_firstboot(int argc, char *argv[])
{
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	_cleanup_(cluster_ctx_freep) struct cluster_ctx *cc = NULL;
	_cleanup_(plan_freep) struct plan *plan = NULL;
	_cleanup_(journal_freep) struct journal *journal = NULL;
	_cleanup_(journal_freep) struct journal *install_journal = NULL;
	struct fb_opts o = {};
	struct cluster_cfg *cfg = NULL;
	struct names nm = {};
	_cleanup_(secrets_freep) struct secrets *secrets = NULL;
	_cleanup_(ca_files_done) struct ca_files ca = {};
	_cleanup_(input_bundle_freep) struct input_bundle *kept = NULL;
	_cleanup_(guests_ctx_freep) struct guests_ctx *gc = NULL;
	_cleanup_(k3s_ctx_freep) struct k3s_ctx *kc = NULL;
	_cleanup_(dns_ctx_freep) struct dns_ctx *dc = NULL;
	_cleanup_(edge_ctx_freep) struct edge_ctx *ec = NULL;
	struct verify_cfg vcfg = {};
	struct gitops_cfg gcfg = {};
	struct monitoring_cfg mcfg = {};
	struct registry_cfg rcfg = {};
	_cleanup_free_ char *registry_ca = NULL;
	char grafana_pw[PASSWORD_MAX + 2] = "";
	_cleanup_wiped_ char *gitops_credential = NULL; /* a secret */
	_cleanup_(work_dir_done) struct work_dir work = {};
	struct run_ctx ctx;
	char password[PASSWORD_MAX + 2];
	struct fb_tally tally = {};
	struct ticker *ticker = NULL;
	bool recover = false;
	struct report_input rin = { .started_ms = wall_ms() };
	bool kubeconfig = false;
	int r, ret = EXIT_FAIL;

	r = parse_args(argc, argv, &o);
	if (r != 0)
		return r > 0 ? EXIT_OK : EXIT_BADINPUT;
	log_info("provisioner started: devopslab firstboot (node %s)", o.node);
	r = load_inputs(&o, &m, &secrets, &kept, password);
	if (r != EXIT_OK)
		return r;
	if (!o.ca && !o.ca_key) {
		r = ca_files_from_secrets(secrets, &ca);
		if (r < 0) {
			explicit_wipe(password, sizeof(password));
			return EXIT_BADINPUT;
		}
		if (ca.made) {
			o.ca = ca.cert;
			o.ca_key = ca.key;
		}
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		explicit_wipe(password, sizeof(password));
		return EXIT_FAIL;
	}
	r = build_cfg(&o, m, &nm, cfg);
	if (r < 0) {
		ret = EXIT_BADINPUT;
		goto out;
	}
	cfg->self = o.node;
	cfg->password = password;
	cfg->ca_file = o.ca;
	cfg->ca_key_file = o.ca_key;
	cfg->wait_first_ms = o.wait_first_ms;
	cfg->wait_quorum_ms = o.wait_quorum_ms;
	cfg->wait_turn_ms = o.wait_turn_ms;
	cfg->poll_ms = o.poll_ms;
	cfg->progress_ms = o.poll_ms ? o.poll_ms * 5 : 0;
	cfg->client.task_poll_ms = o.task_poll_ms;
	cfg->client.http.request_timeout_ms = o.timeout_ms;
	cfg->client.http.connect_timeout_ms = o.timeout_ms;
	cfg->client.http.backoff_base_ms = o.retry_base_ms;
	cfg->client.http.backoff_max_ms = o.retry_base_ms ? o.retry_base_ms * 16 : 0;
	cfg->client.http.max_attempts = o.attempts;
	cfg->client.http.seed = o.seed;
	cfg->progress = on_progress;
	r = cluster_ctx_new(cfg, &cc);
	explicit_wipe(password, sizeof(password));
	if (r < 0) {
		log_error("%s", cc ? cluster_error(cc) : strerror(-r));
		ret = EXIT_BADINPUT;
		goto out;
	}
	/* A dry run reads the journal (if there is one) and never writes it. */
	if (o.journal && !(o.dry_run && access(o.journal, F_OK) < 0)) {
		r = journal_open(o.journal, o.dry_run ? JOURNAL_READ_ONLY : JOURNAL_CREATE, &journal);
		if (r < 0) {
			log_error("journal '%s': %s", o.journal, journal_error());
			goto out;
		}
	}
	r = recovery_mode(&o, m, cc, journal, &recover);
	if (r < 0) {
		/* a member whose certificate is not the one we trust: refused */
		ret = r == -EKEYREJECTED || r == -ENOKEY ? EXIT_REFUSED : EXIT_FAIL;
		goto out;
	}
	/* The plan `devopslab plan --node` (--recover) prints is exactly what
	 * runs here. */
	r = recover ? plan_build_recover(m, o.node, &plan) : plan_build(m, o.node, &plan);
	if (r < 0) {
		log_error("cannot build the first-boot plan: %s", strerror(-r));
		goto out;
	}

	if (plan_has_guests(plan)) {
		r = guests_setup(&o, cc, kept, &work, &gc);
		if (r < 0)
			goto out;
	}

	if (plan_has_k3s(plan)) {
		r = k3s_setup(&o, m, secrets, cc, &kc);
		if (r < 0) {
			ret = EXIT_BADINPUT;
			goto out;
		}
	}

	if (plan_has_kind(plan, STEP_DNS_SERVER)) {
		r = dns_setup(&o, m, secrets, cc, &dc);
		if (r < 0) {
			ret = EXIT_BADINPUT;
			goto out;
		}
	}

	if (plan_has_kind(plan, STEP_EDGE_TRAEFIK)) {
		r = edge_setup(&o, m, secrets, kc, dc, &ec);
		if (r < 0) {
			ret = EXIT_BADINPUT;
			goto out;
		}
	}

	/* Argo CD's root Application: on K3s's API; its credentials from the
	 * bundle's secrets (ctx.secrets), or --gitops-credential-file */
	if (plan_has_kind(plan, STEP_GITOPS)) {
		if (!kc) {
			log_error("Argo CD runs in K3s: the plan has no K3s steps");
			ret = EXIT_BADINPUT;
			goto out;
		}
		gcfg = (struct gitops_cfg){ .k3s = kc, .poll_ms = o.poll_ms, .timeout_ms = o.k3s_timeout_ms,
					    .progress = on_progress };
		if (o.gitops_credential_file) {
			r = read_credential(o.gitops_credential_file, &gitops_credential);
			if (r < 0) {
				log_error("cannot read the Git repository's credential from '%s': %s",
					  o.gitops_credential_file,
					  r == -EFBIG ? "larger than 64 KiB" : r == -EINVAL ? "empty" : strerror(-r));
				ret = EXIT_BADINPUT;
				goto out;
			}
			gcfg.credential = gitops_credential;
		}
	}

	/* The registry: the nodes trust the CA of the edge's certificate, the
	 * cluster CA (with ACME: the VMs' own roots) */
	if (plan_has_kind(plan, STEP_REGISTRY)) {
		if (!kc) {
			log_error("the registry runs in K3s: the plan has no K3s steps");
			ret = EXIT_BADINPUT;
			goto out;
		}
		rcfg = (struct registry_cfg){ .k3s = kc, .poll_ms = o.poll_ms, .timeout_ms = o.k3s_timeout_ms,
					      .progress = on_progress };
		if (m->edge.cert != MF_CERT_ACME_DNS01) {
			size_t len = 0;
			_cleanup_close_ int fd = o.ca ? open(o.ca, O_RDONLY | O_CLOEXEC) : -1;

			r = fd < 0 ? -errno : read_fd_capped(fd, 64 << 10, &registry_ca, &len);
			if (r < 0) {
				log_error("the registry's nodes trust the cluster CA: cannot read '%s': %s", o.ca ?: "(none)",
					  strerror(-r));
				ret = EXIT_BADINPUT;
				goto out;
			}
			rcfg.ca_pem = registry_ca;
		}
	}

	/* Grafana's admin: the bundle's secret (ctx.secrets), or
	 * --grafana-password-file */
	if (plan_has_kind(plan, STEP_MONITORING)) {
		if (!kc) {
			log_error("the monitoring stack runs in K3s: the plan has no K3s steps");
			ret = EXIT_BADINPUT;
			goto out;
		}
		mcfg = (struct monitoring_cfg){ .k3s = kc, .poll_ms = o.poll_ms, .timeout_ms = o.k3s_timeout_ms,
						.progress = on_progress };
		if (o.grafana_password_file) {
			r = read_password(o.grafana_password_file, grafana_pw);
			if (r < 0) {
				log_error("cannot read Grafana's admin password from '%s': %s", o.grafana_password_file,
					  r == -EINVAL ? "must be one line of 1 to 128 bytes" : strerror(-r));
				ret = EXIT_BADINPUT;
				goto out;
			}
			mcfg.grafana_password = grafana_pw;
		}
	}

	if (plan_has_kind(plan, STEP_VERIFY)) {
		r = cluster_self_client(cc, &vcfg.pve);
		if (r < 0) {
			log_error("%s", cluster_error(cc));
			goto out;
		}
		vcfg.k3s = kc;
		vcfg.dns = dc;
		vcfg.ca_file = o.ca;
		if (m->edge.cert == MF_CERT_ACME_DNS01 && ec)
			vcfg.edge_ca_file = edge_acme_trust(ec);
		vcfg.edge_connect = o.edge_connect;
		vcfg.poll_ms = o.poll_ms;
		vcfg.timeout_ms = o.verify_timeout_ms;
	}

	run_ctx_init(&ctx);

	ctx.ops = step_ops_table;
	ctx.manifest = m;
	ctx.node = o.node;
	ctx.root = "/";
	ctx.journal = journal;
	ctx.pve = cc;
	ctx.secrets = secrets; /* the backup storage's password (backup.c) */
	ctx.guests = gc;
	ctx.k3s = kc;
	ctx.dns = dc;
	ctx.edge = ec;
	ctx.registry = rcfg.k3s ? &rcfg : NULL;
	ctx.gitops = gcfg.k3s ? &gcfg : NULL;
	ctx.monitoring = mcfg.k3s ? &mcfg : NULL;
	ctx.verify = &vcfg;
	ctx.progress = on_step;
	tally.plan = plan;
	tally.run = calloc(plan->n_steps ? plan->n_steps : 1, sizeof(*tally.run));
	if (!tally.run) {
		log_error("out of memory");
		goto out;
	}
	ctx.userdata = &tally;
	tally.live = status_start(&o, m, plan);
	if (tally.live && ticker_start(tally.live, o.progress_every_ms, &ticker) < 0)
		ticker = NULL; /* the steps' own lines still say what happens */
	ctx.dry_run = o.dry_run;
	ctx.jobs = o.jobs ? o.jobs : JOBS_DEFAULT;
	ctx.worker_init = worker_init;
	ctx.worker_done = worker_done;
	r = step_run(&ctx, plan, STEP_PHASE_FIRSTBOOT);
	ticker_stop(ticker);
	ticker = NULL;
	if (r == -EOPNOTSUPP) {
		/* Honest about what this build cannot do yet: the steps so far
		 * are done and journaled; the rest of the plan is not run. */
		log_warning("%s: %s; stopping here: the remaining first-boot steps are not run by this build",
			    ctx.failed_step->id, ctx.error);
		ret = EXIT_INCOMPLETE;
	} else if (r < 0) {
		log_error("%s: %s", ctx.failed_step ? ctx.failed_step->id : "firstboot",
			  ctx.error[0] ? ctx.error : strerror(-r));
		/* Refusals: an untrusted certificate, a guest that is not ours. */
		ret = r == -EKEYREJECTED || r == -ENOKEY || r == -EEXIST ? EXIT_REFUSED : EXIT_FAIL;
	} else {
		log_info("node '%s' is a member of cluster '%s' with quorum", o.node, m->cluster.name);
		ret = EXIT_OK;
		if (recover && !o.dry_run && recovery_record(journal, o.node, true) < 0)
			ret = EXIT_FAIL;
		if (recover)
			log_info("node '%s' is recovered: what lived on it is back", o.node);
	}
	/* once the K3s steps are done (a later step stopped or failed): the
	 * administrator's way in (step kinds are in the plan's order) */
	if (kc && !o.dry_run && (r >= 0 || (ctx.failed_step && ctx.failed_step->kind > STEP_K3S_AGENT))) {
		kubeconfig = write_kubeconfig(&o, kc) >= 0;
		if (!kubeconfig && ret == EXIT_OK)
			ret = EXIT_FAIL;
	}
	if (!o.dry_run) {
		rin.m = m;
		rin.plan = plan;
		rin.journal = journal;
		/* the install phase's own journal, which the install left on this
		 * system: its steps' states and timings in the report */
		if (journal_open(ROOTFS_INSTALL_JOURNAL, JOURNAL_READ_ONLY, &install_journal) < 0)
			install_journal = NULL;
		rin.install_journal = install_journal;
		rin.run = tally.run;
		rin.node = o.node;
		rin.outcome = r >= 0 ? REPORT_COMPLETE : r == -EOPNOTSUPP ? REPORT_INCOMPLETE : REPORT_FAILED;
		rin.failed_step = r < 0 && ctx.failed_step ? ctx.failed_step->id : NULL;
		rin.error = r < 0 ? (ctx.error[0] ? ctx.error : strerror(-r)) : NULL;
		rin.bundle_digest = kept ? kept->bundle->sums_sha256 : NULL;
		rin.kubeconfig = kubeconfig;
		rin.k3s_api = kc ? k3s_api_url(kc) : NULL;
		rin.verification = vcfg.rows;
		if (write_report(&o, &rin) < 0 && ret == EXIT_OK)
			ret = EXIT_FAIL;
		live_finish(tally.live, r >= 0 ? "complete" : r == -EOPNOTSUPP ? "incomplete" : "failed", rin.failed_step,
			    rin.error);
	}
	if (o.dry_run && (r >= 0 || r == -EOPNOTSUPP))
		log_info("dry run: %zu step%s would change something; nothing was changed", tally.would_apply,
			 tally.would_apply == 1 ? "" : "s");
	run_ctx_done(&ctx);
out:
	ticker_stop(ticker);
	status_stop(&o, tally.live);
	free(tally.run);
	json_object_put(vcfg.rows);
	explicit_wipe(grafana_pw, sizeof(grafana_pw));
	free(cfg);
	return ret;
}
