/* SPDX-License-Identifier: MIT */
/*
 * technitium.h — the Technitium DNS Server HTTP API client (over http.h;
 * ../shared/reference/technitium-apidocs.md).
 *
 * Every call is a POST of form data with the session token in an
 * "Authorization: Bearer" header (15.0 and later). The server answers
 * HTTP 200 even when a call fails: the reply's "status" decides. "ok" is
 * success; "error" is -EPROTO with the reply's errorMessage in
 * tn_error(); "invalid-token" (the session expired: 30 minutes from the
 * last call) logs in again once and repeats the call. The server is
 * trusted by the cluster CA (its web certificate is ours: docs/dns.md).
 *
 * Ownership: tn_client_new() returns a client freed with
 * tn_client_free(), which wipes the password it keeps for re-logins.
 * Replies are the caller's (json_object_put()). Nothing here logs; no
 * parameter value reaches an error text (some are secrets).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "pve/http.h"

struct json_object;

#define TN_HTTPS_PORT 53443
#define TN_ADMIN_USER "admin"

struct tn_cfg {
	const char *url;     /* "https://10.0.10.41:53443" */
	const char *ca_file; /* PEM: the cluster CA */
	struct http_opts http;
};

struct tn_client;

int tn_client_new(const struct tn_cfg *cfg, struct tn_client **ret);
struct tn_client *tn_client_free(struct tn_client *t);
DEFINE_FREE_FUNC(struct tn_client, tn_client_free);
const char *tn_error(const struct tn_client *t);
const char *tn_url(const struct tn_client *t);

/* /api/user/login. -EACCES when the server refuses the credentials (its
 * message in tn_error()); transport errors as http_request(). The
 * password is kept (wiped on free) to log in again when the session
 * expires. */
int tn_login(struct tn_client *t, const char *user, const char *password);

/* A form parameter; a NULL value leaves it out. */
struct tn_param {
	const char *name, *value;
};

/* POST path with params and the session; *ret (optional) the reply's
 * "response" object (an empty object when it has none). */
int tn_call(struct tn_client *t, const char *path, const struct tn_param *params, size_t n,
	    struct json_object **ret);

/* The form encoding of params ("a=b&c=d", application/x-www-form-urlencoded):
 * malloc'd into *ret. Exposed for tests. */
int tn_form_encode(const struct tn_param *params, size_t n, char **ret);

/* Decoder of a reply body, exposed for tests and fuzzing: 0 and *ret
 * (optional) the whole reply for "ok"; -EPROTO for "error" (msg gets errorMessage);
 * -EKEYEXPIRED for "invalid-token"; -EBADMSG for anything else. */
int tn_decode_reply(const char *body, size_t len, struct json_object **ret, char *msg, size_t msg_size);
