/* SPDX-License-Identifier: MIT */
/*
 * pve.h — the Proxmox VE REST API client (https://NODE:8006/api2/json).
 * docs/pve.md describes it; the simulator in tests/sim/ holds every request
 * it sends to the official API schema.
 *
 * Authentication is either a ticket (POST /access/ticket; the PVEAuthCookie
 * cookie on every request, the CSRFPreventionToken header on writes; renewed
 * before its 2-hour lifetime ends; on 401 the client logs in again once with
 * the password it keeps for that) or an API token
 * (Authorization: PVEAPIToken=USER@REALM!ID=SECRET). Cluster create and join
 * need a root@pam ticket: Proxmox answers 403 to tokens there.
 *
 * Parameters are form-encoded as Proxmox expects: booleans are 1/0, values of
 * format "urlencoded" (sshkeys) are percent-encoded once more before form
 * encoding. Answers are {"data": ...}; a non-2xx answer becomes a -errno and
 * an error text with Proxmox's reason phrase and its per-parameter "errors":
 * 400 -EINVAL, 401 -EACCES, 403 -EPERM, 404/501 -ENOENT, 424 -ENODATA,
 * 500 -EREMOTEIO (a handler died: a real error), other 5xx -EIO (an outage);
 * transport failures as in http.h.
 *
 * Ownership: pve_client_new() returns a client freed with pve_client_free(),
 * which wipes the password, ticket and token it holds. Secrets are never
 * passed to the logger, not even at debug level.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "http.h"

#define PVE_MAX_PARAMS 128
#define PVE_MAX_MEMBERS 64
#define PVE_NAME_MAX 64
#define PVE_UPID_MAX 512

/* ---- form parameters ----------------------------------------------------- */

struct pve_param {
	char *key;
	char *value; /* already in the form Proxmox decodes it to */
	bool secret; /* wiped on done */
};

struct pve_params {
	struct pve_param items[PVE_MAX_PARAMS];
	size_t n;
};

void pve_params_done(struct pve_params *p);
int pve_params_add(struct pve_params *p, const char *key, const char *value);
int pve_params_add_secret(struct pve_params *p, const char *key, const char *value);
int pve_params_add_bool(struct pve_params *p, const char *key, bool value);   /* 1 / 0 */
int pve_params_add_int(struct pve_params *p, const char *key, int64_t value);
/* For parameters of format "urlencoded" (sshkeys): the value is
 * percent-encoded here, and again by the form encoding. */
int pve_params_add_urlencoded(struct pve_params *p, const char *key, const char *value);

/* "k=v&k2=v2" with RFC 3986 unreserved characters kept, everything else %XX. */
int pve_form_encode(const struct pve_params *p, char **ret);
/* Percent-encode one string (unreserved characters kept). */
int pve_escape(const char *s, char **ret);

/* ---- UPIDs ----------------------------------------------------------------- */

/* "UPID:$node:$pid:$pstart:$starttime:$type:$id:$user:" (PVE::UPID) */
struct pve_upid {
	char node[PVE_NAME_MAX];
	uint32_t pid;
	uint64_t pstart;
	uint32_t starttime;
	char type[PVE_NAME_MAX];
	char id[128];
	char user[128];
};
int pve_upid_parse(const char *s, struct pve_upid *ret);

/* ---- the client ---------------------------------------------------------- */

struct pve_client_opts {
	struct http_opts http;
	uint64_t ticket_renew_ms;  /* renew a ticket older than this; default 1 h (lifetime 2 h) */
	uint64_t task_poll_ms;     /* default 1000 */
	uint64_t task_timeout_ms;  /* default 10 min */
};

struct pve_client;

/* node: the Proxmox node name this endpoint is; base_url "https://HOST:8006". */
struct pve_client *pve_client_new(const char *node, const char *base_url, const struct pve_client_opts *opts);
/* Another client for the same node, as far as it has got: the same trust,
 * login (password, ticket, CSRF token) or API token, and options; its own
 * connection and error text. For another thread (one client per thread);
 * salt: transport jitter (http_transport_clone()). */
int pve_client_clone(const struct pve_client *c, uint64_t salt, struct pve_client **ret);
struct pve_client *pve_client_free(struct pve_client *c);
DEFINE_FREE_FUNC(struct pve_client, pve_client_free);

const char *pve_client_node(const struct pve_client *c);
const char *pve_client_url(const struct pve_client *c);
const char *pve_client_error(const struct pve_client *c);
struct http_transport *pve_client_transport(struct pve_client *c);
/* Replace the error text (for callers that decode an answer themselves). */
void pve_client_set_error(struct pve_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int pve_client_pin(struct pve_client *c, const uint8_t fp[HTTP_FP_LEN]);
int pve_client_ca(struct pve_client *c, const char *ca_file);

/* Ticket login; keeps a copy of the password for re-login after a 401. */
int pve_login(struct pve_client *c, const char *userid, const char *password);
/* Forget the ticket (e.g. after a join voided it); the next call logs in again. */
void pve_logout(struct pve_client *c);
/* "USER@REALM!TOKENID", secret UUID. Replaces ticket auth. */
int pve_use_token(struct pve_client *c, const char *full_tokenid, const char *secret);
/* Test seam: pretend the ticket was issued `age_ms` ago. */
void pve_client_age_ticket(struct pve_client *c, uint64_t age_ms);

/* Generic call. path: below /api2/json, escaped ("/nodes/pve1/status").
 * ret_data (optional) receives a new reference to "data" (json-c object,
 * NULL for JSON null); the caller puts it (see json-util.h). */
struct json_object;
int pve_call(struct pve_client *c, enum http_method m, const char *path, const struct pve_params *p,
	     struct json_object **ret_data);

/* A call that starts a task (the answer's data is its UPID), then
 * pve_task_wait() for it. */
int pve_call_task(struct pve_client *c, enum http_method m, const char *path, const struct pve_params *p);

/* POST /nodes/{node}/storage/{storage}/upload: the file at `file` as
 * `filename` with content type `content` (iso, import, vztmpl), streamed;
 * with sha256 (64 hex digits) Proxmox checks the file it received against
 * it and fails the task on a mismatch. Waits for the task. */
int pve_upload(struct pve_client *c, const char *node, const char *storage, const char *content, const char *file,
	       const char *filename, const char *sha256);

/* ---- typed calls --------------------------------------------------------- */

struct pve_version {
	char release[32]; /* "9.1" */
	char version[64]; /* "9.1.2" */
	unsigned major;
};
int pve_get_version(struct pve_client *c, struct pve_version *ret);

/* A node's resolver (/etc/resolv.conf as Proxmox manages it):
 * GET/PUT /nodes/{node}/dns. An unset server is "". */
struct pve_node_dns {
	char search[256];
	char dns[3][64];
};
int pve_node_dns_get(struct pve_client *c, const char *node, struct pve_node_dns *ret);
int pve_node_dns_set(struct pve_client *c, const char *node, const struct pve_node_dns *d);

struct pve_member {
	char name[PVE_NAME_MAX];
	char ip[64];
	unsigned nodeid;
	bool online, local;
};

struct pve_cluster_status {
	bool in_cluster; /* a "cluster" entry exists */
	char name[PVE_NAME_MAX];
	bool quorate;
	unsigned expected_nodes;
	struct pve_member members[PVE_MAX_MEMBERS];
	size_t n_members;
};
int pve_cluster_status(struct pve_client *c, struct pve_cluster_status *ret);
const struct pve_member *pve_cluster_find(const struct pve_cluster_status *s, const char *name);

struct pve_join_node {
	char name[PVE_NAME_MAX];
	char fp[HTTP_FP_TEXT_MAX]; /* pve_fp, as Proxmox prints it */
	char addr[64];
};

struct pve_join_info {
	char preferred_node[PVE_NAME_MAX];
	struct pve_join_node nodes[PVE_MAX_MEMBERS];
	size_t n_nodes;
};
/* -ENODATA when the node is not in a cluster (Proxmox answers 424). */
int pve_cluster_join_info(struct pve_client *c, struct pve_join_info *ret);
const struct pve_join_node *pve_join_info_find(const struct pve_join_info *j, const char *name);

/* Each starts a task and waits for it (pve_task_wait). */
int pve_cluster_create(struct pve_client *c, const char *clustername, const char *link0);
int pve_cluster_join(struct pve_client *c, const char *hostname, const char *fingerprint, const char *password,
		     const char *link0, char ret_upid[PVE_UPID_MAX]);
int pve_cluster_delnode(struct pve_client *c, const char *node);

int pve_node_time(struct pve_client *c, const char *node, int64_t *ret);
int pve_node_guests(struct pve_client *c, const char *node, unsigned *ret);
int pve_node_set_certificate(struct pve_client *c, const char *node, const char *chain_pem, const char *key_pem);

/* Create an API token; *ret_secret (caller frees, wipes) holds its secret. */
int pve_token_create(struct pve_client *c, const char *userid, const char *tokenid, char **ret_secret);

/* Decoders of an answer's "data" (what the calls above use), exposed for
 * tests and fuzzing: -EBADMSG for a shape or a string length we refuse. */
int pve_decode_cluster_status(struct json_object *data, struct pve_cluster_status *ret);
int pve_decode_join_info(struct json_object *data, struct pve_join_info *ret);

/* Poll /nodes/{node}/tasks/{upid}/status until stopped. 0 if exitstatus is
 * "OK" (or "WARNINGS: n"); -EREMOTEIO with the exit status and the log's
 * last lines in the error text otherwise; -ETIMEDOUT after task_timeout_ms.
 * Transient failures (the API restarting) are polled through;
 * -EKEYREJECTED (the node's certificate changed) is returned to the caller. */
int pve_task_wait(struct pve_client *c, const char *upid);
