/* SPDX-License-Identifier: MIT */
/*
 * acme.c — the ACME client of acme.h: RFC 8555's flow (directory, nonce,
 * account, order, authorizations, dns-01 challenges, finalize,
 * certificate) with JWS ES256 (RFC 7515, 7518 §3.4: the signature is r
 * and s, 32 bytes each, not DER).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "base64.h"
#include "plan/json-util.h"

#define NONCE_TRIES 8
#define URL_MAX 1024
#define ACME_ERR "urn:ietf:params:acme:error:"

struct acme_client {
	struct acme_cfg cfg;
	char *key_pem; /* secret */
	EVP_PKEY *key;
	char *jwk;     /* {"crv":"P-256","kty":"EC","x":...,"y":...} */
	char thumb[ACME_B64_SHA256];
	struct http_transport *http;
	char base[URL_MAX]; /* "https://host:port" of the directory */
	char new_nonce[URL_MAX], new_account[URL_MAX], new_order[URL_MAX];
	char *nonce;
	char *email;
	char *kid; /* the account's URL, once known */
	char err[1024];
};

static void pkey_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static void bio_freep(BIO **p) { BIO_free(*p); }
static void md_ctx_freep(EVP_MD_CTX **p) { EVP_MD_CTX_free(*p); }
static void ecdsa_sig_freep(ECDSA_SIG **p) { ECDSA_SIG_free(*p); }
static void req_freep(X509_REQ **p) { X509_REQ_free(*p); }

static int fail(struct acme_client *a, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct acme_client *a, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
	return r;
}

const char *acme_error(const struct acme_client *a)
{
	return a->err;
}

/* ---- encodings and keys (no network) ------------------------------------------ */

int acme_b64url(const void *in, size_t n, char **ret)
{
	char *s, *w;
	int r = base64_encode(in, n, &s);

	if (r < 0)
		return r;
	w = s;
	for (char *p = s; *p; p++)
		if (*p != '=')
			*w++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	*w = '\0';
	*ret = s;
	return 0;
}

static int b64url_sha256(const void *in, size_t n, char ret[static ACME_B64_SHA256])
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	char *s;
	int r;

	SHA256(in, n, d);
	r = acme_b64url(d, sizeof(d), &s);
	if (r < 0)
		return r;
	snprintf(ret, ACME_B64_SHA256, "%s", s);
	free(s);
	return 0;
}

static bool is_p256(EVP_PKEY *k)
{
	char group[32];

	return k && EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) == 1 &&
	       streq(group, "prime256v1");
}

static int new_p256(EVP_PKEY **ret)
{
	*ret = EVP_EC_gen("P-256");
	return *ret ? 0 : -ENOMEM;
}

static int key_pem(EVP_PKEY *k, char **ret)
{
	_cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (!b || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1)
		return -ENOMEM;
	n = BIO_get_mem_data(b, &p); /* not NUL-terminated */
	*ret = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (*ret) {
		memcpy(*ret, p, (size_t)n);
		(*ret)[n] = '\0';
	}
	OPENSSL_cleanse(p, n > 0 ? (size_t)n : 0);
	return *ret ? 0 : -ENOMEM;
}

int acme_key_new(char **ret)
{
	_cleanup_(pkey_freep) EVP_PKEY *k = NULL;
	int r = new_p256(&k);

	return r < 0 ? r : key_pem(k, ret);
}

static int read_key(const char *pem, EVP_PKEY **ret)
{
	_cleanup_(bio_freep) BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	if (!is_p256(k)) {
		EVP_PKEY_free(k);
		return -EINVAL;
	}
	*ret = k;
	return 0;
}

/* The JWK of k's public key, members in RFC 7638's order (so it is also
 * the thumbprint's input). */
static int jwk_of(EVP_PKEY *k, char **ret)
{
	unsigned char pub[65];
	size_t n = 0;
	_cleanup_free_ char *x = NULL, *y = NULL;

	if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &n) != 1 || n != 65 ||
	    pub[0] != 4)
		return -EINVAL;
	if (acme_b64url(pub + 1, 32, &x) < 0 || acme_b64url(pub + 33, 32, &y) < 0)
		return -ENOMEM;
	return asprintf(ret, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y) < 0 ? -ENOMEM : 0;
}

int acme_thumbprint(const char *pem, char ret[static ACME_B64_SHA256])
{
	_cleanup_(pkey_freep) EVP_PKEY *k = NULL;
	_cleanup_free_ char *jwk = NULL;
	int r = read_key(pem, &k);

	if (r >= 0)
		r = jwk_of(k, &jwk);
	return r < 0 ? r : b64url_sha256(jwk, strlen(jwk), ret);
}

int acme_dns01_value(const char *token, const char *thumbprint, char ret[static ACME_B64_SHA256])
{
	_cleanup_free_ char *ka = NULL;

	if (isempty(token) || strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
				      strlen(token))
		return -EINVAL;
	if (asprintf(&ka, "%s.%s", token, thumbprint) < 0)
		return -ENOMEM;
	return b64url_sha256(ka, strlen(ka), ret);
}

/* ES256 over "protected.payload": r and s, 32 bytes each, base64url. */
static int sign(EVP_PKEY *k, const char *input, char **ret)
{
	_cleanup_(md_ctx_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	_cleanup_(ecdsa_sig_freep) ECDSA_SIG *sig = NULL;
	unsigned char der[80], raw[64];
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	size_t n = sizeof(der);

	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(md, der, &n, (const unsigned char *)input, strlen(input)) != 1)
		return -EIO;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)n);
	if (!sig)
		return -EIO;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32)
		return -EIO;
	return acme_b64url(raw, sizeof(raw), ret);
}

/* ---- decoding answers ---------------------------------------------------------- */

int acme_decode_problem(const char *body, size_t len, char *msg, size_t size)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct json_tokener *tok;
	const char *type, *detail;

	if (!body || !len)
		return 0;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, body, (int)(len > INT32_MAX ? INT32_MAX : len));
	json_tokener_free(tok);
	type = json_get_string(o, "type");
	if (!json_object_is_type(o, json_type_object) || !type)
		return 0;
	detail = json_get_string(o, "detail");
	if (!strncmp(type, ACME_ERR, strlen(ACME_ERR)))
		type += strlen(ACME_ERR);
	snprintf(msg, size, "%s: %s", type, detail ? detail : "(no detail)");
	return streq(type, "badNonce") ? -EAGAIN : -EPROTO;
}

int acme_decode_authz(struct json_object *authz, struct acme_authz *ret)
{
	struct json_object *id = json_get_object(authz, "identifier");
	struct json_object *ch = json_get_array(authz, "challenges");
	struct json_object *w;

	*ret = (struct acme_authz){};
	ret->status = json_get_string(authz, "status");
	ret->name = json_get_string(id, "value");
	if (!ret->status || !ret->name || !streq_ptr(json_get_string(id, "type"), "dns") || !ch)
		return -EBADMSG;
	ret->wildcard = json_object_object_get_ex(authz, "wildcard", &w) && json_object_get_boolean(w);
	for (size_t i = 0; i < json_object_array_length(ch); i++) {
		struct json_object *c = json_object_array_get_idx(ch, i);

		if (!streq_ptr(json_get_string(c, "type"), "dns-01"))
			continue;
		ret->chall_url = json_get_string(c, "url");
		ret->chall_token = json_get_string(c, "token");
		ret->chall_status = json_get_string(c, "status");
		ret->chall_error = json_get_string(json_get_object(c, "error"), "detail");
		if (!ret->chall_url || !ret->chall_token)
			return -EBADMSG;
		break;
	}
	return 0;
}

/* ---- the client ------------------------------------------------------------------ */

int acme_client_new(const struct acme_cfg *cfg, struct acme_client **ret)
{
	_cleanup_(acme_client_freep) struct acme_client *a = NULL;
	const char *host, *slash;
	int r;

	if (!cfg->directory || strncmp(cfg->directory, "https://", 8) != 0 || !cfg->account_key || !cfg->ca_file)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->cfg = *cfg;
	a->cfg.account_key = NULL;
	a->cfg.email = NULL;
	if (!a->cfg.poll_ms)
		a->cfg.poll_ms = 2000;
	if (!a->cfg.timeout_ms)
		a->cfg.timeout_ms = 10 * 60 * 1000;
	host = cfg->directory + 8;
	slash = strchr(host, '/');
	if (!slash || slash == host || (size_t)(slash - cfg->directory) >= sizeof(a->base))
		return -EINVAL; /* cppcheck-suppress memleak ; _cleanup_ frees a */
	memcpy(a->base, cfg->directory, (size_t)(slash - cfg->directory));
	if (!(a->key_pem = strdup(cfg->account_key)))
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees a */
	r = read_key(a->key_pem, &a->key);
	if (r < 0)
		return r;
	r = jwk_of(a->key, &a->jwk);
	if (r >= 0)
		r = b64url_sha256(a->jwk, strlen(a->jwk), a->thumb);
	if (r < 0)
		return r;
	if (cfg->email && !(a->email = strdup(cfg->email)))
		return -ENOMEM;
	a->http = http_transport_new(a->base, &cfg->http);
	if (!a->http)
		return -ENOMEM;
	r = http_transport_ca(a->http, cfg->ca_file);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(a);
	return 0;
}

struct acme_client *acme_client_free(struct acme_client *a)
{
	if (!a)
		return NULL;
	if (a->key_pem)
		explicit_wipe(a->key_pem, strlen(a->key_pem));
	free(a->key_pem);
	EVP_PKEY_free(a->key);
	free(a->jwk);
	http_transport_free(a->http);
	free(a->nonce);
	free(a->email);
	free(a->kid);
	free(a);
	return NULL;
}

/* url's path on the directory's server; -EPROTO for another server. */
static int path_of(struct acme_client *a, const char *url, const char **ret)
{
	size_t n = strlen(a->base);

	if (!url || strncmp(url, a->base, n) != 0 || url[n] != '/')
		return fail(a, -EPROTO, "the ACME server sent a URL on another server (%s): not followed",
			    url ? url : "none");
	*ret = url + n;
	return 0;
}

enum { H_NONCE, H_LOCATION };

/* One request; the nonce it brings is kept. */
static int request(struct acme_client *a, enum http_method m, const char *url, const char *body, const char *accept,
		struct http_response *ret)
{
	char acc[128];
	struct http_request req = {
		.method = m,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.content_type = body ? "application/jose+json" : NULL,
		.idempotent = m == HTTP_GET,
		.response_headers = { "Replay-Nonce", "Location" },
	};
	int r = path_of(a, url, &req.path);

	if (r < 0)
		return r;
	if (accept) {
		snprintf(acc, sizeof(acc), "Accept: %s", accept);
		req.headers[0] = acc;
	}
	r = http_request(a->http, &req, ret);
	if (r < 0)
		return fail(a, r, "%s", http_transport_error(a->http));
	if (ret->header[H_NONCE]) {
		free(a->nonce);
		a->nonce = strdup(ret->header[H_NONCE]);
	}
	return 0;
}

static int directory(struct acme_client *a)
{
	_cleanup_json_ struct json_object *d = NULL;
	struct http_response resp = {};
	const char *v[3];
	char *dst[3] = { a->new_nonce, a->new_account, a->new_order };
	static const char *const keys[3] = { "newNonce", "newAccount", "newOrder" };
	int r;

	if (a->new_order[0])
		return 0;
	r = request(a, HTTP_GET, a->cfg.directory, NULL, NULL, &resp);
	if (r < 0)
		return r;
	d = resp.status == 200 ? json_tokener_parse(resp.body) : NULL;
	http_response_done(&resp);
	for (size_t i = 0; i < 3; i++) {
		v[i] = json_get_string(d, keys[i]);
		if (!v[i] || strlen(v[i]) >= URL_MAX)
			return fail(a, -EPROTO, "%s is not an ACME directory (no %s)", a->cfg.directory, keys[i]);
		strcpy(dst[i], v[i]);
	}
	return 0;
}

static int fresh_nonce(struct acme_client *a)
{
	struct http_response resp = {};
	int r;

	if (a->nonce)
		return 0;
	r = request(a, HTTP_GET, a->new_nonce, NULL, NULL, &resp);
	http_response_done(&resp);
	if (r >= 0 && !a->nonce)
		r = fail(a, -EPROTO, "the ACME server's newNonce gave no Replay-Nonce");
	return r;
}

/* The flattened JWS of payload (NULL: POST-as-GET's empty payload) for
 * url, signed with the account key, naming it by kid once known. */
static int jws(struct acme_client *a, const char *url, const char *payload, bool use_jwk, char **ret)
{
	_cleanup_json_ struct json_object *prot = json_object_new_object();
	_cleanup_free_ char *p64 = NULL, *b64 = NULL, *input = NULL, *sig = NULL;
	const char *ptext;
	int r;

	if (!prot || json_add_string(prot, "alg", "ES256") < 0 || json_add_string(prot, "nonce", a->nonce) < 0 ||
	    json_add_string(prot, "url", url) < 0)
		return -ENOMEM;
	if (use_jwk)
		r = json_object_object_add(prot, "jwk", json_tokener_parse(a->jwk));
	else
		r = json_add_string(prot, "kid", a->kid);
	ptext = r < 0 ? NULL : json_object_to_json_string_ext(prot, JSON_C_TO_STRING_PLAIN);
	if (!ptext || acme_b64url(ptext, strlen(ptext), &p64) < 0 ||
	    acme_b64url(payload ? payload : "", payload ? strlen(payload) : 0, &b64) < 0 || /* POST-as-GET: "" */
	    asprintf(&input, "%s.%s", p64, b64) < 0)
		return -ENOMEM;
	r = sign(a->key, input, &sig);
	if (r < 0)
		return fail(a, r, "cannot sign the ACME request");
	return asprintf(ret, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", p64, b64, sig) < 0
		       ? -ENOMEM
		       : 0;
}

/* A signed POST (payload NULL: POST-as-GET). *ret the answer, 2xx; a
 * problem is -EPROTO (badNonce retried with the nonce it brought). */
static int post(struct acme_client *a, const char *url, const char *payload, bool use_jwk, const char *accept,
		struct http_response *ret)
{
	for (unsigned i = 0;; i++) {
		_cleanup_free_ char *body = NULL;
		struct http_response resp = {};
		char msg[768];
		int r = fresh_nonce(a);

		if (r >= 0) {
			r = jws(a, url, payload, use_jwk, &body);
			free(a->nonce); /* used: the answer brings the next */
			a->nonce = NULL;
		}
		if (r >= 0)
			r = request(a, HTTP_POST, url, body, accept, &resp);
		if (r < 0)
			return r;
		if (resp.status >= 200 && resp.status < 300) {
			*ret = resp;
			return 0;
		}
		r = acme_decode_problem(resp.body, resp.body_len, msg, sizeof(msg));
		if (r == -EAGAIN && i + 1 < NONCE_TRIES) {
			http_response_done(&resp);
			continue;
		}
		r = fail(a, -EPROTO, "the ACME server refused %s: HTTP %ld %s", url, resp.status,
			 r < 0 ? msg : resp.reason);
		http_response_done(&resp);
		return r;
	}
}

/* POST-as-GET of url, the answer as JSON. */
static int fetch(struct acme_client *a, const char *url, struct json_object **ret)
{
	struct http_response resp = {};
	int r = post(a, url, NULL, false, NULL, &resp);

	if (r < 0)
		return r;
	*ret = json_tokener_parse(resp.body);
	http_response_done(&resp);
	return *ret ? 0 : fail(a, -EPROTO, "the ACME server's answer for %s is not JSON", url);
}

static void say(const struct acme_solver *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct acme_solver *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!s->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->progress(s->userdata, msg);
}

static int account(struct acme_client *a)
{
	_cleanup_json_ struct json_object *p = json_object_new_object(), *contact = json_object_new_array();
	_cleanup_free_ char *mailto = NULL;
	struct http_response resp = {};
	int r;

	if (a->kid)
		return 0;
	if (!p || !contact || json_object_object_add(p, "termsOfServiceAgreed", json_object_new_boolean(1)) < 0)
		return -ENOMEM;
	if (a->email) {
		if (asprintf(&mailto, "mailto:%s", a->email) < 0 ||
		    json_object_array_add(contact, json_object_new_string(mailto)) < 0 ||
		    json_object_object_add(p, "contact", json_object_get(contact)) < 0)
			return -ENOMEM;
	}
	r = post(a, a->new_account, json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN), true, NULL, &resp);
	if (r < 0)
		return r;
	a->kid = resp.header[H_LOCATION] ? strdup(resp.header[H_LOCATION]) : NULL;
	http_response_done(&resp);
	return a->kid ? 0 : fail(a, -EPROTO, "the ACME server's newAccount answer has no Location");
}

/* The TXT values of one challenge name. */
struct txt {
	char name[300];
	char value[ACME_MAX_NAMES][ACME_B64_SHA256];
	const char *values[ACME_MAX_NAMES];
	size_t n;
	bool published;
};

static int add_txt(struct txt *t, size_t *n_txt, const char *zone, const char *value)
{
	char name[300];
	size_t i;

	if (snprintf(name, sizeof(name), "_acme-challenge.%s", zone) >= (int)sizeof(name))
		return -ENAMETOOLONG;
	for (i = 0; i < *n_txt && !streq(t[i].name, name); i++)
		;
	if (i == *n_txt) {
		if (i == ACME_MAX_NAMES)
			return -E2BIG;
		t[i] = (struct txt){};
		strcpy(t[i].name, name);
		(*n_txt)++;
	}
	for (size_t k = 0; k < t[i].n; k++)
		if (streq(t[i].value[k], value))
			return 0;
	if (t[i].n == ACME_MAX_NAMES)
		return -E2BIG;
	strcpy(t[i].value[t[i].n], value);
	t[i].values[t[i].n] = t[i].value[t[i].n];
	t[i].n++;
	return 0;
}

/* Wait until url (an authorization or an order) leaves the states in
 * busy; *ret the object then. */
static int await(struct acme_client *a, const char *url, const char *busy1, const char *busy2, uint64_t deadline,
		 struct json_object **ret)
{
	for (;;) {
		_cleanup_json_ struct json_object *o = NULL;
		const char *st;
		int r = fetch(a, url, &o);

		if (r < 0)
			return r;
		st = json_get_string(o, "status");
		if (!st)
			return fail(a, -EPROTO, "the ACME server's %s has no status", url);
		if (!streq(st, busy1) && !streq_ptr(st, busy2)) {
			*ret = TAKE_PTR(o);
			return 0;
		}
		if (http_now_ms() >= deadline)
			return fail(a, -ETIMEDOUT, "%s is still %s after %" PRIu64 " s", url, st,
				    a->cfg.timeout_ms / 1000);
		sleep_ms(a->cfg.poll_ms);
	}
}

/* Every authorization of the order valid: their dns-01 challenges
 * answered through the TXT records in txt (published here; the caller
 * removes them). */
static int authorize(struct acme_client *a, struct json_object *order, const struct acme_solver *s,
		     struct txt *txt, size_t *n_txt, uint64_t deadline)
{
	struct json_object *authzs = json_get_array(order, "authorizations");
	struct json_object *objs[ACME_MAX_NAMES] = {};
	size_t n = authzs ? json_object_array_length(authzs) : 0;
	int r = 0;

	if (n == 0 || n > ACME_MAX_NAMES)
		return fail(a, -EPROTO, "the ACME order has %zu authorizations", n);
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct acme_authz az;
		char value[ACME_B64_SHA256];

		r = fetch(a, json_object_get_string(json_object_array_get_idx(authzs, i)), &objs[i]);
		if (r < 0)
			break;
		if (acme_decode_authz(objs[i], &az) < 0) {
			r = fail(a, -EPROTO, "the ACME server's authorization is not one we read");
			break;
		}
		if (streq(az.status, "valid"))
			continue;
		if (!streq(az.status, "pending") || !az.chall_url) {
			r = fail(a, -EPROTO, "the authorization for %s%s is %s%s", az.wildcard ? "*." : "", az.name,
				 az.status, az.chall_url ? "" : " and offers no dns-01 challenge");
			break;
		}
		r = acme_dns01_value(az.chall_token, a->thumb, value);
		if (r >= 0)
			r = add_txt(txt, n_txt, az.name, value);
		if (r < 0)
			r = fail(a, r, "the dns-01 challenge for %s cannot be answered", az.name);
	}
	for (size_t i = 0; i < *n_txt && r >= 0; i++) {
		say(s, "ACME: publishing %zu TXT record(s) at %s", txt[i].n, txt[i].name);
		txt[i].published = true;
		r = s->txt(s->userdata, txt[i].name, txt[i].values, txt[i].n);
		if (r < 0)
			r = fail(a, r, "cannot publish the TXT records at %s", txt[i].name);
	}
	/* the records are there: tell the server to look, then wait */
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct acme_authz az;
		struct http_response resp = {};

		if (acme_decode_authz(objs[i], &az) < 0 || streq(az.status, "valid"))
			continue;
		r = post(a, az.chall_url, "{}", false, NULL, &resp);
		http_response_done(&resp);
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		_cleanup_json_ struct json_object *o = NULL;
		struct acme_authz az;
		const char *url = json_object_get_string(json_object_array_get_idx(authzs, i));

		r = await(a, url, "pending", NULL, deadline, &o);
		if (r < 0)
			break;
		if (acme_decode_authz(o, &az) < 0 || !streq(az.status, "valid"))
			r = fail(a, -EPROTO, "the ACME server did not validate %s%s: %s", az.wildcard ? "*." : "",
				 az.name ? az.name : "?", az.chall_error ? az.chall_error : az.status ? az.status : "?");
		else
			say(s, "ACME: %s%s validated", az.wildcard ? "*." : "", az.name);
	}
	for (size_t i = 0; i < n; i++)
		json_object_put(objs[i]);
	return r;
}

/* A CSR for names with key k, DER base64url. */
static int csr(EVP_PKEY *k, const char *const *names, size_t n, char **ret)
{
	_cleanup_(req_freep) X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_NAME *subj = req ? X509_REQ_get_subject_name(req) : NULL;
	X509_EXTENSION *ext;
	_cleanup_free_ char *san = NULL;
	unsigned char *der = NULL;
	size_t len = 0;
	int dlen, r = -ENOMEM;

	for (size_t i = 0; i < n; i++)
		len += strlen(names[i]) + 5;
	san = calloc(1, len + 1);
	if (!san || !exts || !subj)
		goto out;
	for (size_t i = 0; i < n; i++) {
		strcat(san, i ? ",DNS:" : "DNS:");
		strcat(san, names[i]);
	}
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	if (!ext || !sk_X509_EXTENSION_push(exts, ext)) {
		X509_EXTENSION_free(ext);
		goto out;
	}
	if (X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)names[0], -1, -1, 0) != 1 ||
	    X509_REQ_set_version(req, 0) != 1 || X509_REQ_set_pubkey(req, k) != 1 ||
	    X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, k, EVP_sha256()) <= 0)
		goto out;
	dlen = i2d_X509_REQ(req, &der);
	if (dlen <= 0)
		goto out;
	r = acme_b64url(der, (size_t)dlen, ret);
	OPENSSL_free(der);
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return r;
}

/* Finalize the ready order with a new key's CSR; the certificate. */
static int finalize(struct acme_client *a, const char *order_url, struct json_object *order, const char *const *names,
		    size_t n, uint64_t deadline, char **ret_chain, char **ret_key)
{
	_cleanup_(pkey_freep) EVP_PKEY *k = NULL;
	_cleanup_json_ struct json_object *p = json_object_new_object(), *done = NULL;
	_cleanup_free_ char *c = NULL;
	struct http_response resp = {};
	const char *fin = json_get_string(order, "finalize"), *cert_url, *st, *why;
	int r;

	if (!p || new_p256(&k) < 0 || csr(k, names, n, &c) < 0 || json_add_string(p, "csr", c) < 0)
		return fail(a, -ENOMEM, "cannot make the certificate request");
	if (!fin)
		return fail(a, -EPROTO, "the ACME order has no finalize URL");
	r = post(a, fin, json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN), false, NULL, &resp);
	http_response_done(&resp);
	if (r < 0)
		return r;
	r = await(a, order_url, "ready", "processing", deadline, &done);
	if (r < 0)
		return r;
	cert_url = json_get_string(done, "certificate");
	st = json_get_string(done, "status");
	why = json_get_string(json_get_object(done, "error"), "detail");
	if (!streq_ptr(st, "valid") || !cert_url)
		return fail(a, -EPROTO, "the ACME order is %s after finalize%s%s", st ? st : "without a status",
			    why ? ": " : "", why ? why : "");
	r = post(a, cert_url, NULL, false, "application/pem-certificate-chain", &resp);
	if (r < 0)
		return r;
	if (!strstr(resp.body, "-----BEGIN CERTIFICATE-----")) {
		http_response_done(&resp);
		return fail(a, -EPROTO, "the ACME server's certificate is not PEM");
	}
	r = key_pem(k, ret_key);
	if (r < 0) {
		http_response_done(&resp);
		return r;
	}
	*ret_chain = TAKE_PTR(resp.body);
	http_response_done(&resp);
	return 0;
}

int acme_order(struct acme_client *a, const char *const *names, size_t n, const struct acme_solver *solver,
	       char **ret_chain, char **ret_key)
{
	_cleanup_json_ struct json_object *p = json_object_new_object(), *ids = json_object_new_array();
	_cleanup_json_ struct json_object *order = NULL, *ready = NULL;
	_cleanup_free_ char *order_url = NULL;
	struct http_response resp = {};
	struct txt txt[ACME_MAX_NAMES];
	size_t n_txt = 0;
	uint64_t deadline = http_now_ms() + a->cfg.timeout_ms;
	const char *st;
	int r;

	a->err[0] = '\0';
	if (n == 0 || n > ACME_MAX_NAMES || !solver || !solver->txt)
		return fail(a, -EINVAL, "no names to order");
	if (!p || !ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *id = json_object_new_object();

		if (!id || json_add_string(id, "type", "dns") < 0 || json_add_string(id, "value", names[i]) < 0 ||
		    json_object_array_add(ids, id) < 0) {
			json_object_put(id);
			return -ENOMEM;
		}
	}
	if (json_object_object_add(p, "identifiers", json_object_get(ids)) < 0)
		return -ENOMEM;
	r = directory(a);
	if (r >= 0)
		r = account(a);
	if (r >= 0)
		r = post(a, a->new_order, json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN), false, NULL,
			 &resp);
	if (r < 0)
		return r;
	order = json_tokener_parse(resp.body);
	order_url = resp.header[H_LOCATION] ? strdup(resp.header[H_LOCATION]) : NULL;
	http_response_done(&resp);
	if (!order || !order_url)
		return fail(a, -EPROTO, "the ACME server's newOrder answer has no order or no Location");
	say(solver, "ACME: order for %s at %s", names[0], a->base);
	r = authorize(a, order, solver, txt, &n_txt, deadline);
	for (size_t i = 0; i < n_txt; i++) /* whatever happened: the records go again */
		if (txt[i].published && solver->txt(solver->userdata, txt[i].name, NULL, 0) < 0 && r >= 0)
			r = fail(a, -EIO, "cannot remove the TXT records at %s", txt[i].name);
	if (r < 0)
		return r;
	r = await(a, order_url, "pending", NULL, deadline, &ready);
	if (r < 0)
		return r;
	st = json_get_string(ready, "status");
	if (!streq_ptr(st, "ready"))
		return fail(a, -EPROTO, "the ACME order is %s, not ready, with every authorization valid",
			    st ? st : "without a status");
	return finalize(a, order_url, ready, names, n, deadline, ret_chain, ret_key);
}
