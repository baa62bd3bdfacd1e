/* SPDX-License-Identifier: MIT */
/*
 * technitium.c — see technitium.h.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "plan/json-util.h"
#include "technitium.h"
#include "util.h"

#define TN_TOKEN_MAX 256

struct tn_client {
	struct http_transport *t;
	char *user, *password; /* for a new session (password: secret) */
	char token[TN_TOKEN_MAX]; /* the session: secret */
	char err[512];
};

static void seterr(struct tn_client *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct tn_client *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

int tn_client_new(const struct tn_cfg *cfg, struct tn_client **ret)
{
	_cleanup_(tn_client_freep) struct tn_client *t = NULL;
	int r;

	if (isempty(cfg->url) || isempty(cfg->ca_file))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->t = http_transport_new(cfg->url, &cfg->http);
	if (!t->t)
		return -EINVAL; /* cppcheck-suppress memleak ; _cleanup_ frees t */
	r = http_transport_ca(t->t, cfg->ca_file);
	if (r < 0)
		return r; /* cppcheck-suppress memleak ; _cleanup_ frees t */
	*ret = TAKE_PTR(t);
	return 0;
}

struct tn_client *tn_client_free(struct tn_client *t)
{
	if (t) {
		http_transport_free(t->t);
		free(t->user);
		free_wiped(t->password);
		explicit_wipe(t->token, sizeof(t->token));
		free(t);
	}
	return NULL;
}

const char *tn_error(const struct tn_client *t)
{
	return t->err;
}

const char *tn_url(const struct tn_client *t)
{
	return http_transport_base_url(t->t);
}

/* ---- form encoding ------------------------------------------------------- */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == '~';
}

static size_t encoded_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += unreserved((unsigned char)*s) || *s == ' ' ? 1 : 3;
	return n;
}

static char *encode_into(char *p, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (unreserved(c))
			*p++ = (char)c;
		else if (c == ' ')
			*p++ = '+';
		else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	return p;
}

int tn_form_encode(const struct tn_param *params, size_t n, char **ret)
{
	size_t len = 1;
	char *buf, *p;

	for (size_t i = 0; i < n; i++)
		if (params[i].value)
			len += encoded_len(params[i].name) + 1 + encoded_len(params[i].value) + 1;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	p = buf;
	for (size_t i = 0; i < n; i++) {
		if (!params[i].value)
			continue;
		if (p != buf)
			*p++ = '&';
		p = encode_into(p, params[i].name);
		*p++ = '=';
		p = encode_into(p, params[i].value);
	}
	*p = 0;
	*ret = buf;
	return 0;
}

/* ---- replies ------------------------------------------------------------- */

int tn_decode_reply(const char *body, size_t len, struct json_object **ret, char *msg, size_t msg_size)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct json_tokener *tok;
	const char *status, *m;

	if (msg_size)
		msg[0] = 0;
	if (!body || len == 0 || len > INT32_MAX)
		return -EBADMSG;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (o && json_tokener_get_error(tok) != json_tokener_success)
		json_object_put(TAKE_PTR(o));
	/* one JSON value and nothing after it but white space */
	for (size_t i = o ? json_tokener_get_parse_end(tok) : len; i < len; i++)
		if (!strchr(" \t\r\n", body[i])) {
			json_object_put(TAKE_PTR(o));
			break;
		}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object))
		return -EBADMSG;
	status = json_get_string(o, "status");
	if (!status)
		return -EBADMSG;
	if (streq(status, "invalid-token")) {
		snprintf(msg, msg_size, "the session is not valid (invalid-token)");
		return -EKEYEXPIRED;
	}
	if (streq(status, "error")) {
		m = json_get_string(o, "errorMessage");
		snprintf(msg, msg_size, "%s", m ? m : "status error without errorMessage");
		return -EPROTO;
	}
	if (!streq(status, "ok"))
		return -EBADMSG;
	if (ret)
		*ret = TAKE_PTR(o);
	return 0;
}

/* The reply's "response" object, or a new empty one. */
static struct json_object *response_of(struct json_object *reply)
{
	struct json_object *resp;

	if (json_object_object_get_ex(reply, "response", &resp) && json_object_is_type(resp, json_type_object))
		return json_object_get(resp);
	return json_object_new_object();
}

/* One POST; the reply decoded. with_token: the session in the header. */
static int post(struct tn_client *t, const char *path, const struct tn_param *params, size_t n, bool with_token,
		struct json_object **ret)
{
	struct http_request req = { .method = HTTP_POST, .path = path, .idempotent = true,
				    .content_type = "application/x-www-form-urlencoded",
				    .headers = { "Accept: application/json" } };
	struct http_response rsp = {};
	char auth[TN_TOKEN_MAX + 32], msg[400];
	char *body = NULL;
	long status;
	int r = tn_form_encode(params, n, &body);

	if (r < 0)
		return r;
	if (with_token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
		req.headers[1] = auth;
	}
	req.body = body;
	req.body_len = strlen(body);
	r = http_request(t->t, &req, &rsp);
	free_wiped(body); /* may hold a password */
	if (with_token)
		explicit_wipe(auth, sizeof(auth));
	if (r < 0) {
		seterr(t, "%s", http_transport_error(t->t));
		return r;
	}
	status = rsp.status;
	if (status != 200) {
		seterr(t, "POST %s%s: HTTP %ld", tn_url(t), path, status);
		http_response_done(&rsp);
		return status == 401 || status == 403 ? -EACCES : status >= 500 ? -EAGAIN : -EPROTO;
	}
	r = tn_decode_reply(rsp.body, rsp.body_len, ret, msg, sizeof(msg));
	http_response_done(&rsp);
	if (r == -EBADMSG)
		seterr(t, "POST %s%s: the reply is not Technitium's JSON", tn_url(t), path);
	else if (r < 0)
		seterr(t, "%s: %s", path, msg);
	return r;
}

static int login(struct tn_client *t)
{
	const struct tn_param p[] = { { "user", t->user }, { "pass", t->password } };
	_cleanup_json_ struct json_object *o = NULL;
	const char *token;
	int r = post(t, "/api/user/login", p, ELEMENTSOF(p), false, &o);

	if (r == -EPROTO)
		return -EACCES; /* "Invalid username or password: admin" */
	if (r < 0)
		return r;
	token = json_get_string(o, "token"); /* beside "status", not in "response" */
	if (isempty(token) || strlen(token) >= sizeof(t->token)) {
		seterr(t, "/api/user/login: the reply has no session token");
		return -EBADMSG;
	}
	snprintf(t->token, sizeof(t->token), "%s", token);
	/* the reply held it too */
	explicit_wipe((char *)token, strlen(token));
	return 0;
}

int tn_login(struct tn_client *t, const char *user, const char *password)
{
	char *u = strdup(user), *pw = strdup(password);

	if (!u || !pw) {
		free(u);
		free_wiped(pw);
		return -ENOMEM;
	}
	free(t->user);
	free_wiped(t->password);
	t->user = u;
	t->password = pw;
	return login(t);
}

int tn_call(struct tn_client *t, const char *path, const struct tn_param *params, size_t n,
	    struct json_object **ret)
{
	_cleanup_json_ struct json_object *o = NULL;
	int r;

	if (!t->token[0])
		return -ENOTCONN;
	r = post(t, path, params, n, true, &o);
	if (r == -EKEYEXPIRED) {
		/* the session expired (30 minutes idle, or the server restarted) */
		r = login(t);
		if (r >= 0)
			r = post(t, path, params, n, true, &o);
	}
	if (r < 0)
		return r;
	if (ret) {
		*ret = response_of(o);
		if (!*ret)
			return -ENOMEM;
	}
	return 0;
}
