/* SPDX-License-Identifier: MIT */
/*
 * cluster.c — cluster formation through the Proxmox API; see cluster.h.
 *
 * Proxmox's own rules this follows (pve-cluster, PVE/API2/ClusterConfig.pm
 * and PVE/Cluster/Setup.pm): POST /cluster/config refuses when a corosync.conf
 * exists; POST /cluster/config/join runs on the joining node as a task that
 * logs in to `hostname` as root@pam with `password`, trusting exactly
 * `fingerprint` (the peer's pve-ssl.pem, or pveproxy-ssl.pem when a custom
 * certificate is installed), asks it to add us, replaces our /etc/pve (auth
 * key: our tickets die; node certificate: our fingerprint changes) and
 * restarts our API. It refuses a node with guests or an existing config, and
 * the cluster side refuses a name it already has ("can't add existing
 * node"), which is why a reinstalled node must first be deleted by a member
 * (DELETE /cluster/config/nodes/{node}).
 */
#define _GNU_SOURCE 1
#include "cluster.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <time.h>

#include "cert.h"
#include "log.h"
#include "plan/run.h"

struct cluster_ctx {
	struct cluster_cfg cfg;
	char *password;
	struct pve_client *clients[CLUSTER_MAX_NODES];
	size_t self, first;
	char err[1024];
};

struct waiter {
	const char *what;
	uint64_t start, deadline, next_progress;
};

static void seterr(struct cluster_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The arguments may include c->err itself (a message that wraps the last
 * one): formatted aside, then copied. */
static void seterr(struct cluster_ctx *c, const char *fmt, ...)
{
	char buf[sizeof(c->err)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	memcpy(c->err, buf, sizeof(buf));
}

static void progress(struct cluster_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct cluster_ctx *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!c->cfg.progress)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c->cfg.progress(c->cfg.userdata, buf);
}


static bool transient(int r)
{
	return r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT || r == -EIO || r == -EHOSTUNREACH;
}

static void waiter_init(struct cluster_ctx *c, struct waiter *w, const char *what, uint64_t timeout_ms)
{
	w->what = what;
	w->start = http_now_ms();
	w->deadline = w->start + timeout_ms;
	w->next_progress = w->start + c->cfg.progress_ms;
}

/* Sleep one poll interval; false when the deadline has passed. `why` is
 * the current reason for waiting, reported now and then. */
static bool waiter_next(struct cluster_ctx *c, struct waiter *w, const char *why)
{
	uint64_t now = http_now_ms();

	if (now >= w->deadline)
		return false;
	if (now >= w->next_progress) {
		progress(c, "still waiting for %s (%" PRIu64 " s of %" PRIu64 " s): %s", w->what, (now - w->start) / 1000,
			 (w->deadline - w->start) / 1000, why);
		w->next_progress = now + c->cfg.progress_ms;
	}
	sleep_ms(now + c->cfg.poll_ms > w->deadline ? w->deadline - now : c->cfg.poll_ms);
	return true;
}

/* ---- setup ------------------------------------------------------------------ */

int cluster_ctx_new(const struct cluster_cfg *cfg, struct cluster_ctx **ret)
{
	_cleanup_(cluster_ctx_freep) struct cluster_ctx *c = NULL;
	bool have_self = false, have_first = false;

	if (cfg->n_nodes == 0 || cfg->n_nodes > CLUSTER_MAX_NODES || !cfg->self || !cfg->password ||
	    !cfg->cluster_name)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->password = strdup(cfg->password);
	if (!c->password)
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees c (cppcheck 2.10 misses it) */
	c->cfg.password = NULL;
	if (!c->cfg.wait_first_ms)
		c->cfg.wait_first_ms = 30 * 60 * 1000;
	if (!c->cfg.wait_quorum_ms)
		c->cfg.wait_quorum_ms = 10 * 60 * 1000;
	if (!c->cfg.wait_turn_ms)
		c->cfg.wait_turn_ms = 10 * 60 * 1000;
	if (!c->cfg.poll_ms)
		c->cfg.poll_ms = 2000;
	if (!c->cfg.progress_ms)
		c->cfg.progress_ms = 10000;
	if (!c->cfg.max_time_skew_s)
		c->cfg.max_time_skew_s = 10;
	for (size_t i = 0; i < cfg->n_nodes; i++) {
		for (size_t j = 0; j < i; j++)
			if (streq(cfg->nodes[i].name, cfg->nodes[j].name)) {
				seterr(c, "node name '%s' appears twice: Proxmox node names must be unique",
				       cfg->nodes[i].name);
				*ret = TAKE_PTR(c);
				return -EINVAL;
			}
		if (streq(cfg->nodes[i].name, cfg->self)) {
			c->self = i;
			have_self = true;
		}
		if (cfg->nodes[i].first) {
			if (have_first)
				return -EINVAL;
			c->first = i;
			have_first = true;
		}
	}
	if (!have_self || !have_first) {
		seterr(c, "%s", !have_self ? "this node is not in the node list" : "no node has the role 'first'");
		*ret = TAKE_PTR(c);
		return -EINVAL;
	}
	*ret = TAKE_PTR(c);
	return 0;
}

struct cluster_ctx *cluster_ctx_free(struct cluster_ctx *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < CLUSTER_MAX_NODES; i++)
		pve_client_free(c->clients[i]);
	if (c->password) {
		explicit_wipe(c->password, strlen(c->password));
		free(c->password);
	}
	free(c);
	return NULL;
}

const char *cluster_error(const struct cluster_ctx *c)
{
	return c->err[0] ? c->err : "no error";
}

bool cluster_self_is_first(const struct cluster_ctx *c)
{
	return c->self == c->first;
}

static const char *name_of(const struct cluster_ctx *c, size_t i)
{
	return c->cfg.nodes[i].name;
}

/* The API client of node i, created on first use with that node's trust. */
static int client(struct cluster_ctx *c, size_t i, struct pve_client **ret)
{
	const struct cluster_node_cfg *n = &c->cfg.nodes[i];
	struct pve_client *pc = c->clients[i];
	int r;

	if (!pc) {
		pc = pve_client_new(n->name, n->api_url, &c->cfg.client);
		if (!pc)
			return -ENOMEM;
		if (n->has_fp)
			r = pve_client_pin(pc, n->fp);
		else if (c->cfg.ca_file)
			r = pve_client_ca(pc, c->cfg.ca_file);
		else
			r = -ENOKEY; /* never trust on first use */
		if (r < 0) {
			seterr(c, "no trust for node '%s': give its certificate fingerprint or the cluster CA", n->name);
			pve_client_free(pc);
			return r;
		}
		c->clients[i] = pc;
		r = pve_login(pc, "root@pam", c->password);
		if (r < 0) {
			seterr(c, "%s", pve_client_error(pc));
			return r;
		}
	}
	*ret = pc;
	return 0;
}

int cluster_self_client(struct cluster_ctx *c, struct pve_client **ret)
{
	return client(c, c->self, ret);
}

/* Status of node i; errors carry the client's text. */
static int status_of(struct cluster_ctx *c, size_t i, struct pve_cluster_status *ret)
{
	struct pve_client *pc;
	int r = client(c, i, &pc);

	if (r < 0)
		return r;
	r = pve_cluster_status(pc, ret);
	if (r < 0)
		seterr(c, "%s", pve_client_error(pc));
	return r;
}

static int check_in_our_cluster(struct cluster_ctx *c, const struct pve_cluster_status *s, bool *ret)
{
	if (s->in_cluster && !streq(s->name, c->cfg.cluster_name)) {
		seterr(c, "node '%s' is in cluster '%s', not in '%s': refusing to touch it", name_of(c, c->self),
		       s->name, c->cfg.cluster_name);
		return -EEXIST;
	}
	*ret = s->in_cluster;
	return 0;
}

/* ---- trust after a join ---------------------------------------------------- */

/* A join gives the joining member a new certificate. Learn node who's
 * fingerprint from node via, which we trust: its join info lists every
 * member's pve_fp. With seen (the certificate who served us), who is
 * trusted only if via lists exactly that one. Pins it for who's client
 * (which logs in again) and for clients made later. */
static int pin_as_listed(struct cluster_ctx *c, size_t via, size_t who, const uint8_t *seen)
{
	struct pve_join_info *ji = calloc(1, sizeof(*ji));
	const struct pve_join_node *jn;
	struct cluster_node_cfg *n = &c->cfg.nodes[who];
	struct pve_client *pc;
	uint8_t fp[HTTP_FP_LEN];
	char text[HTTP_FP_TEXT_MAX];
	int r;

	if (!ji)
		return -ENOMEM;
	r = client(c, via, &pc);
	if (r >= 0) {
		r = pve_cluster_join_info(pc, ji);
		if (r < 0)
			seterr(c, "%s", pve_client_error(pc));
	}
	if (r >= 0) {
		jn = pve_join_info_find(ji, n->name);
		if (!jn || http_fp_parse(jn->fp, fp) < 0) {
			seterr(c, "'%s' does not list '%s' with a fingerprint%s", name_of(c, via), n->name,
			       who == c->self ? " after the join" : "");
			r = -ENOENT;
		} else if (seen && memcmp(seen, fp, HTTP_FP_LEN) != 0) {
			http_fp_format(seen, text, sizeof(text));
			seterr(c, "'%s' serves a certificate (fingerprint %s) that is neither pinned nor the one "
				  "'%s' lists for it (%s)", n->name, text, name_of(c, via), jn->fp);
			r = -EKEYREJECTED;
		}
	}
	free(ji);
	if (r < 0)
		return r;
	if (n->has_fp && memcmp(n->fp, fp, HTTP_FP_LEN) == 0)
		return 0; /* already pinned */
	pc = c->clients[who];
	if (pc) {
		r = pve_client_pin(pc, fp);
		if (r < 0)
			return r;
		pve_logout(pc);
	}
	n->has_fp = true;
	memcpy(n->fp, fp, HTTP_FP_LEN);
	progress(c, "'%s' has a new certificate%s; pinned it as reported by '%s'", n->name,
		 who == c->self ? " after the join" : " (it joined the cluster)", name_of(c, via));
	return 0;
}

/* A join gave our node a new certificate: learn it from a member we trust. */
static int repin_self(struct cluster_ctx *c, size_t via)
{
	return pin_as_listed(c, via, c->self, NULL);
}

/* ---- cluster-create ---------------------------------------------------------- */

int cluster_create_check(struct cluster_ctx *c, bool *ret_done)
{
	struct pve_cluster_status *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	r = status_of(c, c->self, s);
	if (r >= 0)
		r = check_in_our_cluster(c, s, ret_done);
	free(s);
	return r;
}

static int join_via(struct cluster_ctx *c, size_t via);

/* One quick look at node i (one attempt, short deadline, a client of its
 * own, dropped afterwards): does it run our cluster, quorate (and, with
 * listing_self, still list this node)? 1 when it does, 0 when not or
 * unreachable; -EKEYREJECTED when its certificate is not the pinned one,
 * with the certificate it served in seen. */
static int probe_member(struct cluster_ctx *c, size_t i, bool listing_self, uint8_t seen[HTTP_FP_LEN])
{
	struct pve_client_opts o = c->cfg.client;
	struct pve_cluster_status *s;
	struct pve_client *pc;
	bool found;
	int r;

	o.http.max_attempts = 1;
	pc = pve_client_new(name_of(c, i), c->cfg.nodes[i].api_url, &o);
	s = calloc(1, sizeof(*s));
	if (!pc || !s) {
		pve_client_free(pc);
		free(s);
		return -ENOMEM;
	}
	r = c->cfg.nodes[i].has_fp ? pve_client_pin(pc, c->cfg.nodes[i].fp) : pve_client_ca(pc, c->cfg.ca_file);
	http_transport_set_deadline(pve_client_transport(pc), http_now_ms() + c->cfg.poll_ms + 2000);
	if (r >= 0)
		r = pve_login(pc, "root@pam", c->password);
	if (r >= 0)
		r = pve_cluster_status(pc, s);
	found = r >= 0 && s->in_cluster && streq(s->name, c->cfg.cluster_name) && s->quorate &&
		(!listing_self || pve_cluster_find(s, name_of(c, c->self)));
	if (r == -EKEYREJECTED && c->cfg.nodes[i].has_fp) {
		seterr(c, "%s", pve_client_error(pc));
		if (http_transport_peer_fp(pve_client_transport(pc), seen) < 0)
			memset(seen, 0, HTTP_FP_LEN);
	} else {
		r = found;
	}
	pve_client_free(pc);
	free(s);
	return r;
}

/* Does a reachable member run our cluster, quorate (and, with listing_self,
 * still list this node)? Unreachable members are skipped. A pinned
 * certificate that does not match is refused, except on a member the first
 * node lists with exactly that certificate: joining gave it a new one
 * (pin_as_listed). 1 and *ret_via when one does, else 0. */
static int find_existing_cluster(struct cluster_ctx *c, bool listing_self, size_t *ret_via)
{
	for (size_t i = 0; i < c->cfg.n_nodes; i++) {
		uint8_t seen[HTTP_FP_LEN];
		char mismatch[sizeof(c->err)];
		int r;

		if (i == c->self || (!c->cfg.nodes[i].has_fp && !c->cfg.ca_file))
			continue;
		r = probe_member(c, i, listing_self, seen);
		if (r == -EKEYREJECTED && i != c->first) {
			memcpy(mismatch, c->err, sizeof(mismatch));
			if (pin_as_listed(c, c->first, i, seen) >= 0)
				r = probe_member(c, i, listing_self, seen);
			else
				seterr(c, "%s; not taken for a join's new certificate: %s", mismatch, c->err);
		}
		if (r < 0)
			return r;
		if (r > 0) {
			*ret_via = i;
			return 1;
		}
	}
	return 0;
}

int cluster_find_stale_self(struct cluster_ctx *c, bool *ret)
{
	struct pve_cluster_status *s;
	size_t via;
	int r;

	*ret = false;
	r = find_existing_cluster(c, true, &via);
	if (r <= 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = status_of(c, c->self, s);
	if (r >= 0 && !s->in_cluster) {
		progress(c, "'%s' runs cluster '%s', which still lists '%s': this node was rebuilt", name_of(c, via),
			 c->cfg.cluster_name, name_of(c, c->self));
		*ret = true;
	}
	free(s);
	return r < 0 ? r : 0;
}

int cluster_create_apply(struct cluster_ctx *c)
{
	const struct cluster_node_cfg *me = &c->cfg.nodes[c->self];
	struct pve_client *pc;
	size_t via;
	int r;

	r = find_existing_cluster(c, false, &via);
	if (r < 0)
		return r;
	if (r > 0) {
		progress(c, "'%s' already runs cluster '%s': this first node was reinstalled, joining it again",
			 name_of(c, via), c->cfg.cluster_name);
		r = join_via(c, via);
		/* A join replaces the node's certificates: the one signed by the
		 * cluster CA, which the certs step installed before this one (the
		 * first node's order), is gone; install it again. */
		if (r >= 0 && c->cfg.ca_file && c->cfg.ca_key_file)
			r = cluster_certs_apply(c);
		return r;
	}
	for (int attempt = 0; attempt < 10; attempt++) {
		bool done = false;

		r = client(c, c->self, &pc);
		if (r < 0)
			return r;
		progress(c, "creating cluster '%s' on '%s' (link0 %s)", c->cfg.cluster_name, me->name, me->ip);
		r = pve_cluster_create(pc, c->cfg.cluster_name, me->ip);
		if (r >= 0)
			return 0;
		seterr(c, "%s", pve_client_error(pc));
		if (!transient(r) && !strstr(c->err, "already exists"))
			return r;
		/* The answer may be lost while the cluster is being made: look
		 * (a running create also answers "already exists"). */
		progress(c, "cluster create request failed (%s); checking the node's state", c->err);
		sleep_ms(c->cfg.poll_ms);
		r = cluster_create_check(c, &done);
		if (r >= 0 && done)
			return 0;
		if (r < 0 && !transient(r))
			return r;
	}
	seterr(c, "could not create cluster '%s' after 10 attempts; last: %s", c->cfg.cluster_name, c->err);
	return -EIO;
}

/* ---- cluster-join --------------------------------------------------------------- */

int cluster_join_check(struct cluster_ctx *c, bool *ret_done)
{
	return cluster_create_check(c, ret_done);
}

/* Wait until node `via` answers, is in our cluster and quorate. */
static int wait_member_ready(struct cluster_ctx *c, size_t via, struct pve_cluster_status *s)
{
	struct waiter w;
	char what[256];
	int r;

	snprintf(what, sizeof(what), "'%s' (%s) to run cluster '%s'", name_of(c, via), c->cfg.nodes[via].api_url,
		 c->cfg.cluster_name);
	waiter_init(c, &w, what, c->cfg.wait_first_ms);
	for (;;) {
		r = status_of(c, via, s);
		if (r >= 0) {
			if (s->in_cluster && !streq(s->name, c->cfg.cluster_name)) {
				seterr(c, "'%s' runs cluster '%s', expected '%s'", name_of(c, via), s->name,
				       c->cfg.cluster_name);
				return -EEXIST;
			}
			if (s->in_cluster && s->quorate)
				return 0;
			seterr(c, "%s", s->in_cluster ? "its cluster is not quorate" : "it has no cluster yet");
		} else if (r == -EKEYREJECTED && c->cfg.nodes[via].has_fp) {
			return r; /* a pinned fingerprint that does not match: refuse at once */
		} else if (r == -EACCES) {
			return r;
		} else if (!transient(r) && r != -EKEYREJECTED) {
			return r;
		}
		if (!waiter_next(c, &w, c->err)) {
			char last[sizeof(c->err)];

			memcpy(last, c->err, sizeof(last));
			seterr(c, "timed out after %" PRIu64 " s waiting for %s; last: %s",
			       (http_now_ms() - w.start) / 1000, what, last);
			return -ETIMEDOUT;
		}
	}
}

/* Proxmox's requirements for joining, checked before we try. */
static int prechecks(struct cluster_ctx *c, size_t via, const struct pve_cluster_status *cs)
{
	struct pve_client *self, *peer;
	struct pve_version vs, vp;
	const struct pve_member *m;
	int64_t ts, tp;
	unsigned guests;
	int r;

	r = client(c, c->self, &self);
	if (r >= 0)
		r = client(c, via, &peer);
	if (r < 0)
		return r;
	m = pve_cluster_find(cs, name_of(c, c->self));
	if (m && m->online) {
		seterr(c, "cluster '%s' already has an online member named '%s', and it is not this node: "
			  "node names must be unique", c->cfg.cluster_name, m->name);
		return -EEXIST;
	}
	r = pve_get_version(self, &vs);
	if (r >= 0)
		r = pve_get_version(peer, &vp);
	if (r < 0)
		goto api_fail;
	if (vs.major != vp.major) {
		seterr(c, "'%s' runs Proxmox VE %s but '%s' runs %s: a node joins only a cluster of the same major version",
		       name_of(c, c->self), vs.release, name_of(c, via), vp.release);
		return -EPROTO;
	}
	r = pve_node_time(self, name_of(c, c->self), &ts);
	if (r >= 0)
		r = pve_node_time(peer, name_of(c, via), &tp);
	if (r < 0)
		goto api_fail;
	if (ts - tp > c->cfg.max_time_skew_s || tp - ts > c->cfg.max_time_skew_s) {
		seterr(c, "clocks differ by %" PRId64 " s between '%s' and '%s' (limit %" PRId64
			  " s): synchronise time (NTP) before joining", ts > tp ? ts - tp : tp - ts,
		       name_of(c, c->self), name_of(c, via), c->cfg.max_time_skew_s);
		return -ERANGE;
	}
	r = pve_node_guests(self, name_of(c, c->self), &guests);
	if (r < 0)
		goto api_fail;
	if (guests) {
		seterr(c, "'%s' has %u guest(s): Proxmox refuses to join a node with virtual guests",
		       name_of(c, c->self), guests);
		return -ENOTEMPTY;
	}
	return 0;
api_fail:
	seterr(c, "%s", pve_client_error(r == -EKEYREJECTED ? self : peer));
	if (!strstr(c->err, "'"))
		seterr(c, "%s", pve_client_error(self));
	return r;
}

/* Nodes join one at a time: members listed before us go first. */
static int wait_turn(struct cluster_ctx *c, size_t via)
{
	struct pve_cluster_status *s = calloc(1, sizeof(*s));
	struct waiter w;
	int r;

	if (!s)
		return -ENOMEM;
	waiter_init(c, &w, "the nodes listed before this one to join", c->cfg.wait_turn_ms);
	for (;;) {
		const char *missing = NULL;

		r = status_of(c, via, s);
		if (r < 0 && !transient(r))
			break;
		if (r >= 0) {
			for (size_t i = 0; i < c->self && !missing; i++) {
				const struct pve_member *m = pve_cluster_find(s, name_of(c, i));

				if (!m || !m->online)
					missing = name_of(c, i);
			}
			if (!missing)
				break;
			seterr(c, "'%s' is not an online member yet", missing);
		}
		if (!waiter_next(c, &w, c->err)) {
			progress(c, "'%s' has not joined; going ahead (Proxmox serialises joins itself)",
				 missing ? missing : "an earlier node");
			r = 0;
			break;
		}
	}
	free(s);
	return r < 0 ? r : 0;
}

/* The first node's fingerprint, from its join info, must be what we see. */
static int peer_fingerprint(struct cluster_ctx *c, size_t via, char ret[HTTP_FP_TEXT_MAX])
{
	struct pve_join_info *ji = calloc(1, sizeof(*ji));
	const struct pve_join_node *jn;
	uint8_t said[HTTP_FP_LEN], seen[HTTP_FP_LEN];
	struct pve_client *pc;
	int r;

	if (!ji)
		return -ENOMEM;
	r = client(c, via, &pc);
	if (r >= 0 && (r = pve_cluster_join_info(pc, ji)) < 0)
		seterr(c, "%s", pve_client_error(pc));
	if (r >= 0) {
		jn = pve_join_info_find(ji, name_of(c, via));
		if (!jn || http_fp_parse(jn->fp, said) < 0) {
			seterr(c, "join info of '%s' lacks its own fingerprint", name_of(c, via));
			r = -EBADMSG;
		} else if (http_transport_peer_fp(pve_client_transport(pc), seen) < 0 ||
			   memcmp(said, seen, HTTP_FP_LEN) != 0) {
			seterr(c, "'%s' reports fingerprint %s, which is not the certificate it serves", name_of(c, via),
			       jn->fp);
			r = -EKEYREJECTED;
		} else {
			http_fp_format(said, ret, HTTP_FP_TEXT_MAX);
		}
	}
	free(ji);
	return r;
}

/* Follow our join task; the node's API restarts with a new certificate. */
static int wait_join_task(struct cluster_ctx *c, size_t via, const char *upid)
{
	for (int round = 0; round < 5; round++) {
		struct pve_client *self = c->clients[c->self];
		int r = pve_task_wait(self, upid);

		if (r >= 0)
			return 0;
		if (r != -EKEYREJECTED) {
			seterr(c, "%s", pve_client_error(self));
			return r;
		}
		r = repin_self(c, via);
		if (r < 0)
			return r;
	}
	seterr(c, "the certificate of '%s' kept changing while joining", name_of(c, c->self));
	return -EKEYREJECTED;
}

static bool lock_busy(const char *err)
{
	return strstr(err, "can't lock file") || strstr(err, "got lock") || strstr(err, "got timeout");
}

/* A join request whose answer was lost may have gone through: a second
 * request then fails Proxmox's "Check if node may join a cluster" (the
 * corosync authkey and config exist). Wait for that earlier join to show
 * (bounded), rather than failing on our own retry. 1 = joined, 0 = no. */
static int earlier_join_finished(struct cluster_ctx *c, size_t via)
{
	struct waiter w;
	bool done = false;
	int r;

	if (!strstr(c->err, "may join a cluster failed"))
		return 0;
	progress(c, "'%s' cannot join again: an earlier request whose answer was lost went through; waiting for it",
		 name_of(c, c->self));
	waiter_init(c, &w, "the earlier join to complete", c->cfg.wait_turn_ms);
	do {
		r = cluster_join_check(c, &done);
		if (r == -EKEYREJECTED) {
			r = repin_self(c, via);
			if (r >= 0)
				r = cluster_join_check(c, &done);
		}
		if (r < 0 && !transient(r))
			return r;
		if (r >= 0 && done)
			return repin_self(c, via) < 0 ? -EKEYREJECTED : 1;
	} while (waiter_next(c, &w, "this node is not a member yet"));
	return 0;
}

static int join_via(struct cluster_ctx *c, size_t via)
{
	struct pve_cluster_status *cs = calloc(1, sizeof(*cs));
	const struct pve_member *stale;
	char fp[HTTP_FP_TEXT_MAX], upid[PVE_UPID_MAX];
	struct pve_client *self, *peer;
	int r;

	if (!cs)
		return -ENOMEM;
	r = wait_member_ready(c, via, cs);
	if (r >= 0)
		r = prechecks(c, via, cs);
	if (r < 0)
		goto out;
	stale = pve_cluster_find(cs, name_of(c, c->self));
	if (stale) {
		progress(c, "'%s' is still listed in cluster '%s' (offline): this node was reinstalled; "
			    "removing the old entry through '%s'", stale->name, cs->name, name_of(c, via));
		r = client(c, via, &peer);
		if (r >= 0 && (r = pve_cluster_delnode(peer, name_of(c, c->self))) < 0)
			seterr(c, "%s", pve_client_error(peer));
		if (r < 0)
			goto out;
	}
	r = wait_turn(c, via);
	if (r < 0)
		goto out;

	for (int attempt = 0; attempt < 10; attempt++) {
		bool done = false;

		r = peer_fingerprint(c, via, fp);
		if (r < 0)
			goto out;
		r = client(c, c->self, &self);
		if (r < 0)
			goto out;
		progress(c, "joining '%s' to cluster '%s' through '%s' (%s)", name_of(c, c->self), c->cfg.cluster_name,
			 name_of(c, via), c->cfg.nodes[via].ip);
		r = pve_cluster_join(self, c->cfg.nodes[via].ip, fp, c->password, c->cfg.nodes[c->self].ip, upid);
		if (r >= 0) {
			r = wait_join_task(c, via, upid);
			if (r >= 0)
				r = repin_self(c, via);
			else if (attempt > 0) {
				int k = earlier_join_finished(c, via);

				if (k != 0)
					r = k < 0 ? k : 0;
			}
			goto out;
		}
		seterr(c, "%s", pve_client_error(self));
		if (r == -EKEYREJECTED) {
			/* An earlier join whose answer we lost has finished: our
			 * node has its new certificate. Only a trusted member's
			 * join info can vouch for it (repin_self). */
			r = repin_self(c, via);
			if (r < 0)
				goto out;
		} else if (!transient(r) && !lock_busy(c->err)) {
			goto out;
		}
		/* The answer may be lost while the join runs: look before asking again. */
		progress(c, "join request failed (%s); checking the node's state", c->err);
		sleep_ms(c->cfg.poll_ms);
		r = cluster_join_check(c, &done);
		if (r == -EKEYREJECTED) {
			r = repin_self(c, via);
			if (r >= 0)
				r = cluster_join_check(c, &done);
		}
		if (r >= 0 && done) {
			r = repin_self(c, via);
			goto out;
		}
		if (r < 0 && !transient(r))
			goto out;
	}
	seterr(c, "could not join '%s' after 10 attempts; last: %s", name_of(c, c->self), c->err);
	r = -EIO;
out:
	free(cs);
	return r;
}

int cluster_join_apply(struct cluster_ctx *c)
{
	return join_via(c, c->first);
}

/* ---- cluster-quorum ------------------------------------------------------------- */

static int quorum_state(struct cluster_ctx *c, bool *ret_done)
{
	struct pve_cluster_status *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	*ret_done = false;
	r = status_of(c, c->self, s);
	if (r < 0)
		goto out;
	if (!s->in_cluster || !s->quorate) {
		seterr(c, "%s", s->in_cluster ? "cluster not quorate" : "this node is not in a cluster");
		goto out;
	}
	for (size_t i = 0; i < c->cfg.n_nodes; i++) {
		const struct pve_member *m = pve_cluster_find(s, name_of(c, i));

		if (!m || !m->online) {
			seterr(c, "'%s' is not %s", name_of(c, i), m ? "online" : "a member yet");
			goto out;
		}
	}
	*ret_done = true;
out:
	free(s);
	return r;
}

int cluster_quorum_check(struct cluster_ctx *c, bool *ret_done)
{
	int r = quorum_state(c, ret_done);

	/* Read-only and "not yet" is an answer, not an error. */
	if (r < 0 && transient(r)) {
		*ret_done = false;
		return 0;
	}
	return r;
}

int cluster_quorum_apply(struct cluster_ctx *c)
{
	struct waiter w;
	bool done;
	int r;

	waiter_init(c, &w, "quorum with every node of the manifest", c->cfg.wait_quorum_ms);
	for (;;) {
		r = quorum_state(c, &done);
		if (r < 0 && !transient(r))
			return r;
		if (r >= 0 && done)
			return 0;
		if (!waiter_next(c, &w, c->err)) {
			char last[sizeof(c->err)];

			memcpy(last, c->err, sizeof(last));
			seterr(c, "no quorum with all %zu nodes after %" PRIu64 " s: %s", c->cfg.n_nodes,
			       (http_now_ms() - w.start) / 1000, last);
			return -ETIMEDOUT;
		}
	}
}

/* ---- cluster-certs -------------------------------------------------------------- */

/* Does the node's API serve a certificate the cluster CA vouches for? Any
 * HTTP answer (even 401) means the TLS handshake verified. */
int cluster_certs_check(struct cluster_ctx *c, bool *ret_done)
{
	const struct cluster_node_cfg *me = &c->cfg.nodes[c->self];
	struct http_opts o = c->cfg.client.http;
	struct http_request req = { .method = HTTP_GET, .path = "/api2/json/version", .idempotent = true };
	struct http_response resp = {};
	struct http_transport *t;
	int r;

	if (!c->cfg.ca_file || !c->cfg.ca_key_file) {
		seterr(c, "node certificates need the cluster CA certificate and its key");
		return -EINVAL;
	}
	t = http_transport_new(me->api_url, &o);
	if (!t)
		return -ENOMEM;
	r = http_transport_ca(t, c->cfg.ca_file);
	if (r >= 0)
		r = http_request(t, &req, &resp);
	if (r == -EKEYREJECTED) {
		seterr(c, "%s", http_transport_error(t));
		*ret_done = false;
		r = 0;
	} else if (r >= 0) {
		*ret_done = true;
	} else {
		seterr(c, "%s", http_transport_error(t));
	}
	http_response_done(&resp);
	http_transport_free(t);
	return r;
}

/* "https://HOST:PORT" -> HOST, when it is not already one of the names. */
static void api_host(const char *url, char *buf, size_t size)
{
	const char *h = url + strlen("https://"), *e;

	buf[0] = 0;
	if (*h == '[')
		return; /* IPv6 literal: the manifest IP covers it */
	e = strpbrk(h, ":/");
	snprintf(buf, size, "%.*s", e ? (int)(e - h) : (int)strlen(h), h);
}

static int upload_certificate(struct cluster_ctx *c)
{
	const struct cluster_node_cfg *me = &c->cfg.nodes[c->self];
	struct cert_request req = { .common_name = me->name, .dns = { me->name }, .n_dns = 1,
				    .ips = { me->ip }, .n_ips = 1 };
	_cleanup_free_ char *chain = NULL;
	char host[256], *key = NULL;
	struct pve_client *pc;
	unsigned char a[16];
	int r;

	api_host(me->api_url, host, sizeof(host));
	if (*host && !streq(host, me->name) && !streq(host, me->ip)) {
		if (inet_pton(strchr(host, ':') ? AF_INET6 : AF_INET, host, a) == 1)
			req.ips[req.n_ips++] = host;
		else
			req.dns[req.n_dns++] = host;
	}
	r = cert_issue(c->cfg.ca_file, c->cfg.ca_key_file, &req, &chain, &key);
	if (r < 0) {
		seterr(c, "cannot issue a certificate for '%s': %s", me->name, cert_error());
		return r;
	}
	r = client(c, c->self, &pc);
	if (r >= 0) {
		progress(c, "installing a certificate signed by the cluster CA on '%s'", me->name);
		r = pve_node_set_certificate(pc, me->name, chain, key);
		if (r < 0)
			seterr(c, "%s", pve_client_error(pc));
	}
	explicit_wipe(key, strlen(key));
	free(key);
	return r;
}

int cluster_certs_apply(struct cluster_ctx *c)
{
	struct waiter w;
	bool done = false;
	int r;

	r = upload_certificate(c);
	if (r < 0 && !transient(r))
		return r;
	/* pveproxy restarts with the new certificate: from now on the CA
	 * vouches for this node, not a pinned fingerprint. */
	waiter_init(c, &w, "the API to serve the new certificate", c->cfg.wait_quorum_ms);
	do {
		r = cluster_certs_check(c, &done);
		if (r < 0 && !transient(r))
			return r;
		if (r >= 0 && done) {
			c->cfg.nodes[c->self].has_fp = false;
			if (c->clients[c->self]) {
				r = pve_client_ca(c->clients[c->self], c->cfg.ca_file);
				pve_logout(c->clients[c->self]);
			}
			return r;
		}
	} while (waiter_next(c, &w, c->err));
	seterr(c, "'%s' does not serve the certificate signed by the cluster CA: %s", name_of(c, c->self), c->err);
	return -ETIMEDOUT;
}

/* ---- step engine bindings --------------------------------------------------- */

static int step_result(struct run_ctx *ctx, struct cluster_ctx *c, int r)
{
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", cluster_error(c));
	return r;
}

#define BIND(kind)                                                                            \
	static int kind##_step_check(struct run_ctx *ctx, const struct step *s, bool *ret_done) \
	{                                                                                     \
		(void)s;                                                                      \
		return step_result(ctx, ctx->pve, cluster_##kind##_check(ctx->pve, ret_done)); \
	}                                                                                     \
	static int kind##_step_apply(struct run_ctx *ctx, const struct step *s)              \
	{                                                                                     \
		(void)s;                                                                      \
		return step_result(ctx, ctx->pve, cluster_##kind##_apply(ctx->pve));          \
	}                                                                                     \
	const struct step_ops cluster_##kind##_ops = { .check = kind##_step_check, .apply = kind##_step_apply };

BIND(create)
BIND(join)
BIND(quorum)
BIND(certs)
