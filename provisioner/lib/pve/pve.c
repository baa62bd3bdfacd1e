/* SPDX-License-Identifier: MIT */
/*
 * pve.c — the Proxmox VE API client; see pve.h. Behaviour follows
 * pve-http-server (ticket cookie, CSRF header on non-GET requests,
 * PVEAPIToken authorization) and PVE::JSONSchema (booleans "1"/"0",
 * format "urlencoded" = [-%a-zA-Z0-9_.!~*'()]*).
 */
#define _GNU_SOURCE 1
#include "pve.h"

#include <inttypes.h>
#include <stdarg.h>

#include "plan/json-util.h"
#include "log.h"

#define API_PREFIX "/api2/json"
#define MAX_PATH 2048
#define LOG_TAIL_LINES 10

struct pve_client {
	char *node;
	struct pve_client_opts o;
	struct http_transport *http;
	char *userid;
	char *password;   /* secret */
	char *ticket;     /* secret */
	char *csrf;
	uint64_t ticket_renew_at; /* CLOCK_MONOTONIC ms */
	char *token;      /* secret: "USER@REALM!ID=SECRET" */
	bool relogin_done;
	char err[1024];
};

static void seterr(struct pve_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct pve_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

void pve_client_set_error(struct pve_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static void free_secret(char **s)
{
	if (*s) {
		explicit_wipe(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* ---- form encoding --------------------------------------------------------- */

static bool unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
	       ch == '_' || ch == '.' || ch == '~';
}

int pve_escape(const char *s, char **ret)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), k = 0;
	char *o;

	if (n > (SIZE_MAX - 1) / 3)
		return -E2BIG;
	o = malloc(n * 3 + 1);
	if (!o)
		return -ENOMEM;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (unreserved(ch)) {
			o[k++] = (char)ch;
		} else {
			o[k++] = '%';
			o[k++] = hex[ch >> 4];
			o[k++] = hex[ch & 15];
		}
	}
	o[k] = '\0';
	*ret = o;
	return 0;
}

void pve_params_done(struct pve_params *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->items[i].key);
		if (p->items[i].secret)
			free_secret(&p->items[i].value);
		else
			free(p->items[i].value);
	}
	p->n = 0;
}

static int params_add_owned(struct pve_params *p, const char *key, char *value, bool secret)
{
	char *k;

	if (!value)
		return -ENOMEM;
	if (p->n >= PVE_MAX_PARAMS) {
		free(value);
		return -E2BIG;
	}
	k = strdup(key);
	if (!k) {
		free(value);
		return -ENOMEM;
	}
	p->items[p->n++] = (struct pve_param){ .key = k, .value = value, .secret = secret };
	return 0;
}

int pve_params_add(struct pve_params *p, const char *key, const char *value)
{
	return params_add_owned(p, key, strdup(value), false);
}

int pve_params_add_secret(struct pve_params *p, const char *key, const char *value)
{
	return params_add_owned(p, key, strdup(value), true);
}

int pve_params_add_bool(struct pve_params *p, const char *key, bool value)
{
	return pve_params_add(p, key, value ? "1" : "0");
}

int pve_params_add_int(struct pve_params *p, const char *key, int64_t value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, value);
	return pve_params_add(p, key, buf);
}

int pve_params_add_urlencoded(struct pve_params *p, const char *key, const char *value)
{
	char *e;
	int r = pve_escape(value, &e);

	if (r < 0)
		return r;
	return params_add_owned(p, key, e, false);
}

int pve_form_encode(const struct pve_params *p, char **ret)
{
	size_t size = 1, len = 0;
	char *out;

	for (size_t i = 0; i < p->n; i++)
		size += 3 * (strlen(p->items[i].key) + strlen(p->items[i].value)) + 2;
	out = malloc(size);
	if (!out)
		return -ENOMEM;
	out[0] = 0;
	for (size_t i = 0; i < p->n; i++) {
		_cleanup_free_ char *k = NULL;
		char *v = NULL;
		int r;

		r = pve_escape(p->items[i].key, &k);
		if (r >= 0)
			r = pve_escape(p->items[i].value, &v);
		if (r < 0) {
			explicit_wipe(out, len);
			free(out);
			return r;
		}
		len += (size_t)snprintf(out + len, size - len, "%s%s=%s", i ? "&" : "", k, v);
		explicit_wipe(v, strlen(v));
		free(v);
	}
	*ret = out;
	return 0;
}

/* ---- UPID ------------------------------------------------------------------ */

static int upid_field(const char **s, char *buf, size_t size, bool allow_empty)
{
	const char *e = strchr(*s, ':');
	size_t n;

	if (!e)
		return -EINVAL;
	n = (size_t)(e - *s);
	if ((!n && !allow_empty) || n >= size)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((*s)[i] == '/' || (*s)[i] == ' ' || (*s)[i] == '\t' || (*s)[i] == '\n')
			return -EINVAL;
	memcpy(buf, *s, n);
	buf[n] = 0;
	*s = e + 1;
	return 0;
}

static int upid_hex(const char **s, size_t min, size_t max, uint64_t *ret)
{
	char buf[16], *end;
	int r = upid_field(s, buf, sizeof(buf), false);

	if (r < 0 || strlen(buf) < min || strlen(buf) > max)
		return -EINVAL;
	for (const char *q = buf; *q; q++)
		if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F')))
			return -EINVAL;
	*ret = strtoull(buf, &end, 16);
	return 0;
}

int pve_upid_parse(const char *s, struct pve_upid *ret)
{
	struct pve_upid u = {};
	uint64_t v;

	if (!s || strlen(s) >= PVE_UPID_MAX || strncmp(s, "UPID:", 5) != 0)
		return -EINVAL;
	s += 5;
	if (upid_field(&s, u.node, sizeof(u.node), false) < 0)
		return -EINVAL;
	for (const char *q = u.node; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
		      (*q == '-' && q != u.node && q[1])))
			return -EINVAL;
	if (upid_hex(&s, 8, 8, &v) < 0)
		return -EINVAL;
	u.pid = (uint32_t)v;
	if (upid_hex(&s, 8, 9, &u.pstart) < 0)
		return -EINVAL;
	if (upid_hex(&s, 8, 8, &v) < 0)
		return -EINVAL;
	u.starttime = (uint32_t)v;
	if (upid_field(&s, u.type, sizeof(u.type), false) < 0 || upid_field(&s, u.id, sizeof(u.id), true) < 0 ||
	    upid_field(&s, u.user, sizeof(u.user), false) < 0 || *s)
		return -EINVAL;
	*ret = u;
	return 0;
}

/* ---- client lifecycle ------------------------------------------------------ */

struct pve_client *pve_client_new(const char *node, const char *base_url, const struct pve_client_opts *opts)
{
	_cleanup_(pve_client_freep) struct pve_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (opts)
		c->o = *opts;
	if (!c->o.ticket_renew_ms)
		c->o.ticket_renew_ms = 3600 * 1000;
	if (!c->o.task_poll_ms)
		c->o.task_poll_ms = 1000;
	if (!c->o.task_timeout_ms)
		c->o.task_timeout_ms = 600 * 1000;
	c->node = strdup(node);
	c->http = http_transport_new(base_url, &c->o.http);
	if (!c->node || !c->http)
		return NULL;
	return TAKE_PTR(c);
}

static int dup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (s && !(*ret = strdup(s)))
		return -ENOMEM;
	return 0;
}

int pve_client_clone(const struct pve_client *c, uint64_t salt, struct pve_client **ret)
{
	_cleanup_(pve_client_freep) struct pve_client *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->o = c->o;
	n->ticket_renew_at = c->ticket_renew_at;
	n->node = strdup(c->node);
	n->http = http_transport_clone(c->http, salt);
	if (!n->node || !n->http || dup_opt(c->userid, &n->userid) < 0 || dup_opt(c->password, &n->password) < 0 ||
	    dup_opt(c->ticket, &n->ticket) < 0 || dup_opt(c->csrf, &n->csrf) < 0 || dup_opt(c->token, &n->token) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(n);
	return 0;
}

struct pve_client *pve_client_free(struct pve_client *c)
{
	if (!c)
		return NULL;
	http_transport_free(c->http);
	free(c->node);
	free(c->userid);
	free(c->csrf);
	free_secret(&c->password);
	free_secret(&c->ticket);
	free_secret(&c->token);
	free(c);
	return NULL;
}

const char *pve_client_node(const struct pve_client *c) { return c->node; }
const char *pve_client_url(const struct pve_client *c) { return http_transport_base_url(c->http); }
const char *pve_client_error(const struct pve_client *c) { return c->err[0] ? c->err : "no error"; }
struct http_transport *pve_client_transport(struct pve_client *c) { return c->http; }

int pve_client_pin(struct pve_client *c, const uint8_t fp[HTTP_FP_LEN])
{
	return http_transport_pin(c->http, fp);
}

int pve_client_ca(struct pve_client *c, const char *ca_file)
{
	return http_transport_ca(c->http, ca_file);
}

void pve_logout(struct pve_client *c)
{
	free_secret(&c->ticket);
	free(c->csrf);
	c->csrf = NULL;
}

void pve_client_age_ticket(struct pve_client *c, uint64_t age_ms)
{
	uint64_t now = http_now_ms();

	c->ticket_renew_at = now + c->o.ticket_renew_ms > age_ms ? now + c->o.ticket_renew_ms - age_ms : 0;
}

int pve_use_token(struct pve_client *c, const char *full_tokenid, const char *secret)
{
	char *t;

	if (!strchr(full_tokenid, '@') || !strchr(full_tokenid, '!'))
		return -EINVAL;
	if (asprintf(&t, "PVEAPIToken=%s=%s", full_tokenid, secret) < 0)
		return -ENOMEM;
	free_secret(&c->token);
	c->token = t;
	pve_logout(c);
	return 0;
}

/* ---- one request --------------------------------------------------------- */

static int errno_for_status(long status)
{
	switch (status) {
	case 400: return -EINVAL;
	case 401: return -EACCES;
	case 403: return -EPERM;
	case 404: case 501: return -ENOENT;
	case 424: return -ENODATA;
	/* Proxmox answers 500 when a handler dies: a real error, not an outage. */
	case 500: return -EREMOTEIO;
	default: return status >= 500 ? -EIO : -EPROTO;
	}
}

/* "METHOD PATH: HTTP 400 Parameter verification failed. (link0: invalid format ...)" */
static void set_http_error(struct pve_client *c, enum http_method m, const char *path, const struct http_response *resp,
			   struct json_object *doc)
{
	struct json_object *errors = json_get_object(doc, "errors");
	char detail[768] = "";
	size_t o = 0;

	if (errors) {
		json_object_object_foreach(errors, k, v) {
			const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "?";
			int n = snprintf(detail + o, sizeof(detail) - o, "%s%s: %s", o ? "; " : " (", k, s);

			if (n < 0 || (size_t)n >= sizeof(detail) - o)
				break;
			o += (size_t)n;
		}
		if (o && o + 2 < sizeof(detail)) {
			detail[o++] = ')';
			detail[o] = 0;
		}
		/* Proxmox's messages end in "\n". */
		for (char *q = detail; *q; q++)
			if (*q == '\n')
				*q = ' ';
	}
	seterr(c, "%s %s on '%s': HTTP %ld %s%s", http_method_names[m], path, c->node, resp->status,
	       resp->reason && *resp->reason ? resp->reason : "(no reason)", detail);
}

static int do_request(struct pve_client *c, enum http_method m, const char *path, const struct pve_params *p,
		      const struct http_part *parts, size_t n_parts, bool idempotent, struct json_object **ret_data,
		      long *ret_status)
{
	_cleanup_free_ char *form = NULL, *full = NULL, *cookie = NULL, *csrf = NULL;
	_cleanup_json_ struct json_object *doc = NULL;
	struct http_response resp = {};
	struct http_request req = { .method = m, .idempotent = idempotent };
	size_t nh = 0;
	int r;

	*ret_status = 0;
	if (p && p->n) {
		r = pve_form_encode(p, &form);
		if (r < 0)
			return r;
	}
	if (asprintf(&full, API_PREFIX "%s%s%s", path, form && (m == HTTP_GET || m == HTTP_DELETE) ? "?" : "",
		     form && (m == HTTP_GET || m == HTTP_DELETE) ? form : "") < 0)
		return -ENOMEM;
	req.path = full;
	req.parts = parts;
	req.n_parts = n_parts;
	if (form && (m == HTTP_POST || m == HTTP_PUT)) {
		req.body = form;
		req.body_len = strlen(form);
	}
	if (c->ticket) {
		if (asprintf(&cookie, "PVEAuthCookie=%s", c->ticket) < 0)
			return -ENOMEM;
		req.cookie = cookie;
		if (m != HTTP_GET && c->csrf) {
			if (asprintf(&csrf, "CSRFPreventionToken: %s", c->csrf) < 0)
				return -ENOMEM;
			req.headers[nh++] = csrf;
		}
	} else if (c->token) {
		if (asprintf(&csrf, "Authorization: %s", c->token) < 0)
			return -ENOMEM;
		req.headers[nh++] = csrf;
	}
	req.headers[nh++] = "Accept: application/json";

	r = http_request(c->http, &req, &resp);
	if (form)
		explicit_wipe(form, strlen(form));
	if (cookie)
		explicit_wipe(cookie, strlen(cookie));
	if (csrf && c->token)
		explicit_wipe(csrf, strlen(csrf));
	if (r < 0) {
		seterr(c, "%s", http_transport_error(c->http));
		return r;
	}
	*ret_status = resp.status;
	doc = json_tokener_parse(resp.body);
	if (resp.status < 200 || resp.status > 299) {
		set_http_error(c, m, path, &resp, doc);
		r = errno_for_status(resp.status);
		http_response_done(&resp);
		return r;
	}
	http_response_done(&resp);
	if (!doc || !json_object_is_type(doc, json_type_object)) {
		seterr(c, "%s %s on '%s': answer is not a JSON object", http_method_names[m], path, c->node);
		return -EBADMSG;
	}
	if (ret_data) {
		struct json_object *d = NULL;

		json_object_object_get_ex(doc, "data", &d);
		*ret_data = d ? json_object_get(d) : NULL;
	}
	return 0;
}

static int ticket_request(struct pve_client *c, const char *userid, const char *password)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_json_ struct json_object *d = NULL;
	const char *ticket, *csrf;
	char *saved_token = TAKE_PTR(c->token);
	long status;
	int r;

	pve_logout(c);
	r = pve_params_add(&p, "username", userid);
	if (r >= 0)
		r = pve_params_add_secret(&p, "password", password);
	if (r >= 0)
		r = do_request(c, HTTP_POST, "/access/ticket", &p, NULL, 0, true, &d, &status);
	c->token = saved_token;
	if (r < 0)
		return r;
	ticket = json_get_string(d, "ticket");
	csrf = json_get_string(d, "CSRFPreventionToken");
	if (!ticket || !csrf) {
		seterr(c, "POST /access/ticket on '%s': no ticket in the answer", c->node);
		return -EBADMSG;
	}
	c->ticket = strdup(ticket);
	c->csrf = strdup(csrf);
	if (!c->ticket || !c->csrf)
		return -ENOMEM;
	c->ticket_renew_at = http_now_ms() + c->o.ticket_renew_ms;
	return 0;
}

int pve_login(struct pve_client *c, const char *userid, const char *password)
{
	char *u = strdup(userid), *pw = strdup(password);
	int r;

	if (!u || !pw) {
		free(u);
		free(pw);
		return -ENOMEM;
	}
	free(c->userid);
	free_secret(&c->password);
	c->userid = u;
	c->password = pw;
	free_secret(&c->token);
	r = ticket_request(c, userid, password);
	if (r == -EACCES)
		seterr(c, "login as '%s' on '%s' failed: authentication failure", userid, c->node);
	return r;
}

/* Proxmox renews a ticket when it is posted as the password. */
static int ensure_ticket(struct pve_client *c)
{
	_cleanup_free_ char *old = NULL;
	int r;

	if (c->token || !c->password)
		return 0;
	if (!c->ticket)
		return ticket_request(c, c->userid, c->password);
	if (http_now_ms() < c->ticket_renew_at)
		return 0;
	old = strdup(c->ticket);
	if (!old)
		return -ENOMEM;
	log_debug("renewing the API ticket for '%s' on '%s'", c->userid, c->node);
	r = ticket_request(c, c->userid, old);
	explicit_wipe(old, strlen(old));
	if (r == -EACCES)
		r = ticket_request(c, c->userid, c->password);
	return r;
}

static int call(struct pve_client *c, enum http_method m, const char *path, const struct pve_params *p,
		const struct http_part *parts, size_t n_parts, struct json_object **ret_data)
{
	long status;
	int r;

	if (strlen(path) > MAX_PATH || path[0] != '/')
		return -EINVAL;
	c->err[0] = 0;
	r = ensure_ticket(c);
	if (r < 0)
		return r;
	/* POST is not idempotent in Proxmox; callers re-check state instead. */
	r = do_request(c, m, path, p, parts, n_parts, m != HTTP_POST, ret_data, &status);
	if (r == -EACCES && status == 401 && c->password && !c->token) {
		/* The ticket was voided (a join replaces the auth key): log in again once. */
		log_debug("ticket refused by '%s'; logging in again", c->node);
		r = ticket_request(c, c->userid, c->password);
		if (r < 0)
			return r;
		r = do_request(c, m, path, p, parts, n_parts, m != HTTP_POST, ret_data, &status);
	}
	return r;
}

int pve_call(struct pve_client *c, enum http_method m, const char *path, const struct pve_params *p,
	     struct json_object **ret_data)
{
	return call(c, m, path, p, NULL, 0, ret_data);
}

/* ---- typed helpers ------------------------------------------------------- */

static int copy_str(char *dst, size_t size, const char *src)
{
	if (!src)
		return -EBADMSG;
	if (strlen(src) >= size)
		return -EBADMSG;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static bool json_truthy(const struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return false;
	if (json_object_is_type(v, json_type_string))
		return streq(json_object_get_string(v), "1");
	return json_object_get_int64(v) != 0 || json_object_get_boolean(v);
}

static int64_t json_int(const struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	return json_object_get_int64(v);
}

static int node_path(char *buf, size_t size, const char *fmt_pre, const char *node, const char *post)
{
	_cleanup_free_ char *e = NULL;
	int r = pve_escape(node, &e);

	if (r < 0)
		return r;
	r = snprintf(buf, size, "%s%s%s", fmt_pre, e, post ? post : "");
	return r < 0 || (size_t)r >= size ? -ENAMETOOLONG : 0;
}

int pve_get_version(struct pve_client *c, struct pve_version *ret)
{
	_cleanup_json_ struct json_object *d = NULL;
	struct pve_version v = {};
	int r = pve_call(c, HTTP_GET, "/version", NULL, &d);

	if (r < 0)
		return r;
	if (copy_str(v.release, sizeof(v.release), json_get_string(d, "release")) < 0 ||
	    copy_str(v.version, sizeof(v.version), json_get_string(d, "version")) < 0) {
		seterr(c, "GET /version on '%s': unexpected answer", c->node);
		return -EBADMSG;
	}
	v.major = (unsigned)strtoul(v.release, NULL, 10);
	*ret = v;
	return 0;
}

int pve_node_dns_get(struct pve_client *c, const char *node, struct pve_node_dns *ret)
{
	_cleanup_json_ struct json_object *d = NULL;
	_cleanup_free_ char *path = NULL;
	struct pve_node_dns v = {};
	int r;

	if (asprintf(&path, "/nodes/%s/dns", node) < 0)
		return -ENOMEM;
	r = pve_call(c, HTTP_GET, path, NULL, &d);
	if (r < 0)
		return r;
	if (copy_str(v.search, sizeof(v.search), json_get_string(d, "search") ?: "") < 0 ||
	    copy_str(v.dns[0], sizeof(v.dns[0]), json_get_string(d, "dns1") ?: "") < 0 ||
	    copy_str(v.dns[1], sizeof(v.dns[1]), json_get_string(d, "dns2") ?: "") < 0 ||
	    copy_str(v.dns[2], sizeof(v.dns[2]), json_get_string(d, "dns3") ?: "") < 0) {
		seterr(c, "GET %s on '%s': unexpected answer", path, c->node);
		return -EBADMSG;
	}
	*ret = v;
	return 0;
}

int pve_node_dns_set(struct pve_client *c, const char *node, const struct pve_node_dns *d)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_free_ char *path = NULL;
	static const char *const keys[] = { "dns1", "dns2", "dns3" };
	int r = pve_params_add(&p, "search", d->search);

	for (size_t i = 0; r >= 0 && i < 3; i++)
		if (d->dns[i][0])
			r = pve_params_add(&p, keys[i], d->dns[i]);
	if (r < 0)
		return r;
	if (asprintf(&path, "/nodes/%s/dns", node) < 0)
		return -ENOMEM;
	return pve_call(c, HTTP_PUT, path, &p, NULL);
}

int pve_decode_cluster_status(struct json_object *d, struct pve_cluster_status *ret)
{
	struct pve_cluster_status *s;
	size_t n;
	int r = 0;

	if (!d || !json_object_is_type(d, json_type_array))
		return -EBADMSG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	n = json_object_array_length(d);
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct json_object *e = json_object_array_get_idx(d, i);
		const char *type = json_get_string(e, "type");

		if (type && streq(type, "cluster")) {
			s->in_cluster = true;
			s->quorate = json_truthy(e, "quorate");
			s->expected_nodes = (unsigned)json_int(e, "nodes");
			r = copy_str(s->name, sizeof(s->name), json_get_string(e, "name"));
		} else if (type && streq(type, "node")) {
			struct pve_member *m;

			if (s->n_members >= PVE_MAX_MEMBERS) {
				r = -E2BIG;
				break;
			}
			m = &s->members[s->n_members++];
			r = copy_str(m->name, sizeof(m->name), json_get_string(e, "name"));
			if (json_get_string(e, "ip"))
				(void)copy_str(m->ip, sizeof(m->ip), json_get_string(e, "ip"));
			m->nodeid = (unsigned)json_int(e, "nodeid");
			m->online = json_truthy(e, "online");
			m->local = json_truthy(e, "local");
		}
	}
	if (r >= 0)
		*ret = *s;
	free(s);
	return r;
}

int pve_cluster_status(struct pve_client *c, struct pve_cluster_status *ret)
{
	_cleanup_json_ struct json_object *d = NULL;
	int r = pve_call(c, HTTP_GET, "/cluster/status", NULL, &d);

	if (r < 0)
		return r;
	r = pve_decode_cluster_status(d, ret);
	if (r < 0)
		seterr(c, "GET /cluster/status on '%s': unexpected answer", c->node);
	return r;
}

const struct pve_member *pve_cluster_find(const struct pve_cluster_status *s, const char *name)
{
	for (size_t i = 0; i < s->n_members; i++)
		if (streq(s->members[i].name, name))
			return &s->members[i];
	return NULL;
}

int pve_decode_join_info(struct json_object *d, struct pve_join_info *ret)
{
	struct json_object *list = json_get_array(d, "nodelist");
	struct pve_join_info *j;
	int r;

	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	r = list ? copy_str(j->preferred_node, sizeof(j->preferred_node), json_get_string(d, "preferred_node"))
		 : -EBADMSG;
	for (size_t i = 0; r >= 0 && i < json_object_array_length(list); i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		struct pve_join_node *n;

		if (j->n_nodes >= PVE_MAX_MEMBERS) {
			r = -E2BIG;
			break;
		}
		n = &j->nodes[j->n_nodes++];
		r = copy_str(n->name, sizeof(n->name), json_get_string(e, "name"));
		if (r >= 0)
			r = copy_str(n->fp, sizeof(n->fp), json_get_string(e, "pve_fp"));
		if (r >= 0)
			r = copy_str(n->addr, sizeof(n->addr), json_get_string(e, "pve_addr"));
	}
	if (r >= 0)
		*ret = *j;
	free(j);
	return r;
}

int pve_cluster_join_info(struct pve_client *c, struct pve_join_info *ret)
{
	_cleanup_json_ struct json_object *d = NULL;
	int r = pve_call(c, HTTP_GET, "/cluster/config/join", NULL, &d);

	if (r < 0)
		return r;
	r = pve_decode_join_info(d, ret);
	if (r < 0)
		seterr(c, "GET /cluster/config/join on '%s': unexpected answer", c->node);
	return r;
}

const struct pve_join_node *pve_join_info_find(const struct pve_join_info *j, const char *name)
{
	for (size_t i = 0; i < j->n_nodes; i++)
		if (streq(j->nodes[i].name, name))
			return &j->nodes[i];
	return NULL;
}

static int task_id(struct pve_client *c, enum http_method m, const char *path, struct json_object *d,
		   char ret_upid[PVE_UPID_MAX])
{
	struct pve_upid u;
	const char *s;

	s = d && json_object_is_type(d, json_type_string) ? json_object_get_string(d) : NULL;
	if (!s || pve_upid_parse(s, &u) < 0) {
		seterr(c, "%s %s on '%s': the answer is not a task id", http_method_names[m], path, c->node);
		return -EBADMSG;
	}
	memcpy(ret_upid, s, strlen(s) + 1);
	return 0;
}

static int start_task(struct pve_client *c, enum http_method m, const char *path, const struct pve_params *p,
		      char ret_upid[PVE_UPID_MAX])
{
	_cleanup_json_ struct json_object *d = NULL;
	int r = pve_call(c, m, path, p, &d);

	return r < 0 ? r : task_id(c, m, path, d, ret_upid);
}

int pve_call_task(struct pve_client *c, enum http_method m, const char *path, const struct pve_params *p)
{
	char upid[PVE_UPID_MAX];
	int r = start_task(c, m, path, p, upid);

	return r < 0 ? r : pve_task_wait(c, upid);
}

int pve_upload(struct pve_client *c, const char *node, const char *storage, const char *content, const char *file,
	       const char *filename, const char *sha256)
{
	_cleanup_json_ struct json_object *d = NULL;
	_cleanup_free_ char *en = NULL, *es = NULL, *path = NULL;
	/* Proxmox's multipart reader takes the fields before the file. */
	const struct http_part parts[] = {
		{ .name = "content", .value = content },
		{ .name = "checksum-algorithm", .value = "sha256" },
		{ .name = "checksum", .value = sha256 },
		{ .name = "filename", .file = file, .filename = filename },
	};
	const size_t skip = sha256 ? 0 : 2;
	char upid[PVE_UPID_MAX];
	int r;

	if (pve_escape(node, &en) < 0 || pve_escape(storage, &es) < 0 ||
	    asprintf(&path, "/nodes/%s/storage/%s/upload", en, es) < 0)
		return -ENOMEM;
	if (skip) {
		const struct http_part nosum[] = { parts[0], parts[3] };

		r = call(c, HTTP_POST, path, NULL, nosum, ELEMENTSOF(nosum), &d);
	} else {
		r = call(c, HTTP_POST, path, NULL, parts, ELEMENTSOF(parts), &d);
	}
	if (r >= 0)
		r = task_id(c, HTTP_POST, path, d, upid);
	return r < 0 ? r : pve_task_wait(c, upid);
}

int pve_cluster_create(struct pve_client *c, const char *clustername, const char *link0)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	char upid[PVE_UPID_MAX];
	int r;

	r = pve_params_add(&p, "clustername", clustername);
	if (r >= 0)
		r = pve_params_add(&p, "link0", link0);
	if (r >= 0)
		r = start_task(c, HTTP_POST, "/cluster/config", &p, upid);
	if (r < 0)
		return r;
	return pve_task_wait(c, upid);
}

int pve_cluster_join(struct pve_client *c, const char *hostname, const char *fingerprint, const char *password,
		     const char *link0, char ret_upid[PVE_UPID_MAX])
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	int r;

	r = pve_params_add(&p, "hostname", hostname);
	if (r >= 0)
		r = pve_params_add(&p, "fingerprint", fingerprint);
	if (r >= 0)
		r = pve_params_add_secret(&p, "password", password);
	if (r >= 0)
		r = pve_params_add(&p, "link0", link0);
	if (r >= 0)
		r = start_task(c, HTTP_POST, "/cluster/config/join", &p, ret_upid);
	return r;
}

int pve_cluster_delnode(struct pve_client *c, const char *node)
{
	char path[256];
	int r = node_path(path, sizeof(path), "/cluster/config/nodes/", node, NULL);

	return r < 0 ? r : pve_call(c, HTTP_DELETE, path, NULL, NULL);
}

int pve_node_time(struct pve_client *c, const char *node, int64_t *ret)
{
	_cleanup_json_ struct json_object *d = NULL;
	char path[256];
	int r = node_path(path, sizeof(path), "/nodes/", node, "/time");

	if (r >= 0)
		r = pve_call(c, HTTP_GET, path, NULL, &d);
	if (r < 0)
		return r;
	if (!json_get_object(d, "") && !d) {
		seterr(c, "GET %s: no data", path);
		return -EBADMSG;
	}
	*ret = json_int(d, "time");
	return 0;
}

int pve_node_guests(struct pve_client *c, const char *node, unsigned *ret)
{
	static const char *const kinds[] = { "/qemu", "/lxc" };
	unsigned n = 0;

	for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
		_cleanup_json_ struct json_object *d = NULL;
		char path[256];
		int r = node_path(path, sizeof(path), "/nodes/", node, kinds[i]);

		if (r >= 0)
			r = pve_call(c, HTTP_GET, path, NULL, &d);
		if (r < 0)
			return r;
		if (d && json_object_is_type(d, json_type_array))
			n += (unsigned)json_object_array_length(d);
	}
	*ret = n;
	return 0;
}

int pve_node_set_certificate(struct pve_client *c, const char *node, const char *chain_pem, const char *key_pem)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	char path[256];
	int r = node_path(path, sizeof(path), "/nodes/", node, "/certificates/custom");

	if (r >= 0)
		r = pve_params_add(&p, "certificates", chain_pem);
	if (r >= 0)
		r = pve_params_add_secret(&p, "key", key_pem);
	if (r >= 0)
		r = pve_params_add_bool(&p, "force", true);
	if (r >= 0)
		r = pve_params_add_bool(&p, "restart", true);
	if (r >= 0)
		r = pve_call(c, HTTP_POST, path, &p, NULL);
	return r;
}

int pve_token_create(struct pve_client *c, const char *userid, const char *tokenid, char **ret_secret)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_json_ struct json_object *d = NULL;
	_cleanup_free_ char *u = NULL, *t = NULL, *path = NULL;
	const char *v;
	int r;

	r = pve_escape(userid, &u);
	if (r >= 0)
		r = pve_escape(tokenid, &t);
	if (r < 0)
		return r;
	if (asprintf(&path, "/access/users/%s/token/%s", u, t) < 0)
		return -ENOMEM;
	r = pve_params_add_bool(&p, "privsep", false);
	if (r >= 0)
		r = pve_call(c, HTTP_POST, path, &p, &d);
	if (r < 0)
		return r;
	v = json_get_string(d, "value");
	if (!v) {
		seterr(c, "POST %s: no token value in the answer", path);
		return -EBADMSG;
	}
	*ret_secret = strdup(v);
	return *ret_secret ? 0 : -ENOMEM;
}

/* ---- tasks ----------------------------------------------------------------- */

static void task_log_tail(struct pve_client *c, const char *base, char *buf, size_t size)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_json_ struct json_object *d = NULL;
	_cleanup_free_ char *path = NULL;
	size_t n, from, o = 0;

	buf[0] = 0;
	if (asprintf(&path, "%s/log", base) < 0 || pve_params_add_int(&p, "limit", 1000) < 0 ||
	    pve_call(c, HTTP_GET, path, &p, &d) < 0 || !d || !json_object_is_type(d, json_type_array))
		return;
	n = json_object_array_length(d);
	from = n > LOG_TAIL_LINES ? n - LOG_TAIL_LINES : 0;
	for (size_t i = from; i < n; i++) {
		const char *t = json_get_string(json_object_array_get_idx(d, i), "t");
		int k = snprintf(buf + o, size - o, "%s%s", o ? " | " : "", t ? t : "");

		if (k < 0 || (size_t)k >= size - o)
			break;
		o += (size_t)k;
	}
}

static bool transient(int r)
{
	return r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT || r == -EIO;
}

int pve_task_wait(struct pve_client *c, const char *upid)
{
	_cleanup_free_ char *e = NULL, *base = NULL;
	struct pve_upid u;
	uint64_t deadline = http_now_ms() + c->o.task_timeout_ms;
	int r;

	r = pve_upid_parse(upid, &u);
	if (r < 0) {
		seterr(c, "malformed task id");
		return r;
	}
	r = pve_escape(upid, &e);
	if (r < 0)
		return r;
	if (asprintf(&base, "/nodes/%s/tasks/%s", u.node, e) < 0)
		return -ENOMEM;

	for (;;) {
		_cleanup_json_ struct json_object *d = NULL;
		_cleanup_free_ char *path = NULL;
		const char *status, *exitstatus;

		if (asprintf(&path, "%s/status", base) < 0)
			return -ENOMEM;
		r = pve_call(c, HTTP_GET, path, NULL, &d);
		if (r >= 0) {
			status = json_get_string(d, "status");
			if (status && streq(status, "stopped")) {
				char tail[512];

				exitstatus = json_get_string(d, "exitstatus");
				if (exitstatus && (streq(exitstatus, "OK") || strncmp(exitstatus, "WARNINGS: ", 10) == 0))
					return 0;
				{
					_cleanup_free_ char *es = strdup(exitstatus ? exitstatus : "(none)");

					task_log_tail(c, base, tail, sizeof(tail));
					seterr(c, "task %s on '%s' failed: %s; log: %s", u.type, u.node,
					       es ? es : "?", tail[0] ? tail : "(empty)");
				}
				return -EREMOTEIO;
			}
		} else if (!transient(r)) {
			return r;
		}
		if (http_now_ms() + c->o.task_poll_ms > deadline) {
			seterr(c, "task %s on '%s' did not finish within %" PRIu64 " s", u.type, u.node,
			       c->o.task_timeout_ms / 1000);
			return -ETIMEDOUT;
		}
		{
			struct timespec ts = { .tv_sec = (time_t)(c->o.task_poll_ms / 1000),
					       .tv_nsec = (long)(c->o.task_poll_ms % 1000) * 1000000L };
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
	}
}
