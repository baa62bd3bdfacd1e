/* SPDX-License-Identifier: MIT */
/*
 * http.h — the one HTTPS transport (libcurl). Only http.c includes
 * <curl/curl.h>; every remote API client (pve.c, ...) goes through this.
 *
 * Trust: a transport talks to one base URL and trusts its server by exactly
 * one of
 *   - a pinned SHA-256 fingerprint of the leaf certificate (DER), checked by
 *     us in the TLS handshake (what Proxmox shows as "fingerprint"), or
 *   - a CA file (chain and host name verified by OpenSSL/libcurl).
 * There is no insecure mode: a transport without trust refuses to connect,
 * and a certificate that does not match is -EKEYREJECTED, never retried.
 *
 * Retries: connection failures are retried always (nothing was sent);
 * timeouts and 5xx answers only for requests marked idempotent. Delays grow
 * exponentially with "full jitter" from a seedable generator, and every
 * attempt is bounded by the transport's overall deadline.
 *
 * Ownership: http_transport_new() returns a transport freed with
 * http_transport_free(); responses are owned by the caller
 * (http_response_done()). Nothing here logs request bodies or headers, which
 * may hold secrets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define HTTP_FP_LEN 32            /* SHA-256 */
#define HTTP_FP_TEXT_MAX 96       /* "AA:BB:...": 32*3 */
#define HTTP_MAX_HEADERS 8

enum http_method { HTTP_GET, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH, _HTTP_METHOD_MAX };
extern const char *const http_method_names[_HTTP_METHOD_MAX];

struct http_opts {
	uint64_t connect_timeout_ms;  /* per attempt; default 5000 */
	uint64_t request_timeout_ms;  /* per attempt, whole exchange; default 30000 */
	unsigned max_attempts;        /* including the first; default 5, max 50 */
	uint64_t backoff_base_ms;     /* first retry waits up to this; default 200 */
	uint64_t backoff_max_ms;      /* cap of one delay; default 5000 */
	size_t max_body;              /* response body cap; default 8 MiB */
	uint64_t seed;                /* jitter source; 0 = random */
	/* "HOST:PORT:CHOST:CPORT" (libcurl's CURLOPT_CONNECT_TO): connect
	 * to CHOST:CPORT for the URL's HOST:PORT, the certificate still
	 * checked against HOST (tests: a simulator on loopback for a guest's
	 * address). "" = none. */
	char connect_to[160];
};

/* One part of a multipart/form-data body: a field (value), or a file
 * streamed from disk (file, sent under filename). */
struct http_part {
	const char *name;
	const char *value;
	const char *file;
	const char *filename;
};

struct http_request {
	enum http_method method;
	const char *path;             /* appended to the base URL, already escaped */
	const char *headers[HTTP_MAX_HEADERS]; /* "Name: value", NULL-terminated */
	const char *content_type;     /* for body; NULL = none */
	const char *body;
	size_t body_len;
	bool idempotent;              /* allow retries after timeouts and 5xx */
	const char *cookie;           /* "NAME=value" or NULL (secret: never logged) */
	/* multipart/form-data instead of body (uploads). Such a request has
	 * no overall time limit: it fails when fewer than 1 KiB/s pass for
	 * HTTP_STALL_S seconds (a large file on a slow link is not an error). */
	const struct http_part *parts;
	size_t n_parts;
	/* Names of response headers to keep ("Location", "Replay-Nonce"),
	 * NULL-terminated: their values land in http_response.header[i].
	 * No other header is kept. */
	const char *response_headers[HTTP_MAX_HEADERS];
};

#define HTTP_STALL_S 60

struct http_response {
	long status;
	char *reason;                 /* HTTP reason phrase, "" when none */
	char *body;                   /* NUL-terminated */
	size_t body_len;
	/* The last value of request.response_headers[i], NULL when absent. */
	char *header[HTTP_MAX_HEADERS];
};

struct http_transport;

/* base_url: "https://host:port", no trailing slash. NULL on OOM or bad URL. */
struct http_transport *http_transport_new(const char *base_url, const struct http_opts *opts);
/* A new transport to the same URL with the same options and trust (pin or
 * CA), no connection and no peer seen yet: for another thread. salt makes
 * its retry jitter differ from t's. */
struct http_transport *http_transport_clone(const struct http_transport *t, uint64_t salt);
struct http_transport *http_transport_free(struct http_transport *t);
DEFINE_FREE_FUNC(struct http_transport, http_transport_free);

const char *http_transport_base_url(const struct http_transport *t);

/* Set the trust; replaces the previous one and drops open connections. */
int http_transport_pin(struct http_transport *t, const uint8_t fp[HTTP_FP_LEN]);
int http_transport_ca(struct http_transport *t, const char *ca_file);
/* The same with the CA certificate(s) themselves (PEM text, copied). */
int http_transport_ca_pem(struct http_transport *t, const char *pem);
/* Authenticate with a client certificate (PEM texts, copied; the key is
 * wiped when replaced or freed). Independent of the trust above. */
int http_transport_client_cert(struct http_transport *t, const char *cert_pem, const char *key_pem);
bool http_transport_has_trust(const struct http_transport *t);

/* Absolute CLOCK_MONOTONIC deadline in ms for all later requests (0 = none). */
void http_transport_set_deadline(struct http_transport *t, uint64_t deadline_ms);

/* The leaf certificate fingerprint seen in the last handshake; -ENODATA if none. */
int http_transport_peer_fp(const struct http_transport *t, uint8_t ret[HTTP_FP_LEN]);

/* GET a plain http:// URL, without TLS and without trust: only for what
 * is public and trusted by no one (another node's read-only status
 * document, docs/operations.md, "Live status"). One attempt, timeout_ms in
 * all, the body capped at max bytes (-EFBIG past it), no redirect, no
 * proxy. Returns 0 with *ret_body (NUL-terminated, the caller frees it),
 * *ret_len and the HTTP status; -ETIMEDOUT, -ECONNREFUSED (any other
 * failure to get an answer), -EINVAL for a URL that is not http://. Safe to
 * call from any thread. */
int http_get_public(const char *url, uint64_t timeout_ms, size_t max, char **ret_body, size_t *ret_len,
		    long *ret_status);

/* Perform a request. Returns 0 with *ret filled for any HTTP status (5xx after
 * retries are exhausted too); -ECONNREFUSED (cannot connect), -ETIMEDOUT
 * (timeout or deadline), -ECONNRESET, -EKEYREJECTED (certificate not
 * trusted), -EFBIG (body over the cap), -ENOMEM, -EIO. Detail in
 * http_transport_error(). */
int http_request(struct http_transport *t, const struct http_request *req, struct http_response *ret);
void http_response_done(struct http_response *r);

/* Last error's detail (URL and reason, never headers or bodies). */
const char *http_transport_error(const struct http_transport *t);
/* Attempts made by the last http_request() (for tests and progress). */
unsigned http_transport_attempts(const struct http_transport *t);

/* ---- helpers (no network) ---------------------------------------------- */

/* Parse "AA:BB:..." (or without colons), case-insensitive. -EINVAL if malformed. */
int http_fp_parse(const char *s, uint8_t ret[HTTP_FP_LEN]);
/* Format as upper-case colon-separated hex into buf (>= HTTP_FP_TEXT_MAX). */
void http_fp_format(const uint8_t fp[HTTP_FP_LEN], char *buf, size_t size);
/* SHA-256 fingerprint of the first certificate in a PEM file. */
int http_fp_from_pem_file(const char *path, uint8_t ret[HTTP_FP_LEN]);

/* Milliseconds since an arbitrary point (CLOCK_MONOTONIC). */
uint64_t http_now_ms(void);

/* Exponential backoff with full jitter: uniform in [0, min(max, base*2^attempt)].
 * *state is a splitmix64 state, advanced. Exposed for tests. */
uint64_t http_backoff_ms(uint64_t *state, unsigned attempt, uint64_t base_ms, uint64_t max_ms);
