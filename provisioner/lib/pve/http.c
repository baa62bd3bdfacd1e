/* SPDX-License-Identifier: MIT */
/*
 * http.c — libcurl (OpenSSL flavour) behind http.h. See the header for the
 * trust and retry rules.
 *
 * Why our own verify callback: Proxmox shows and pins the SHA-256 of the
 * whole leaf certificate (DER), while CURLOPT_PINNEDPUBLICKEY pins the public
 * key. We install an OpenSSL verify callback through CURLOPT_SSL_CTX_FUNCTION
 * that hashes the depth-0 certificate; in pin mode it accepts exactly that
 * certificate (the chain is irrelevant), in CA mode it passes OpenSSL's
 * verdict through and only records the fingerprint.
 */
#define _GNU_SOURCE 1
#include "http.h"
#include "parse.h"

#include <assert.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"

const char *const http_method_names[_HTTP_METHOD_MAX] = {
	[HTTP_GET] = "GET", [HTTP_POST] = "POST", [HTTP_PUT] = "PUT", [HTTP_DELETE] = "DELETE",
	[HTTP_PATCH] = "PATCH",
};

struct http_transport {
	char *base_url;
	struct http_opts o;
	CURL *curl;
	bool has_pin;
	uint8_t pin[HTTP_FP_LEN];
	char *ca_file;
	char *ca_pem;                 /* instead of ca_file: the CA certificate itself */
	char *cert_pem, *key_pem;     /* our client certificate (key: secret) */
	uint8_t peer_fp[HTTP_FP_LEN];
	bool peer_fp_valid;
	bool verify_failed; /* our callback refused the certificate */
	int verify_error;   /* OpenSSL's reason (X509_V_ERR_*), 0 = none known */
	uint64_t deadline_ms;
	uint64_t rng;
	unsigned attempts;
	struct curl_slist *connect_to;
	char err[512];
};

/* A growable body buffer with a cap (curl's dynbuf idea). */
struct body {
	char *data;
	size_t len, cap, max;
	bool overflow;
};

struct head {
	long status;
	char reason[256];
};

static void seterr(struct http_transport *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct http_transport *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

uint64_t http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

uint64_t http_backoff_ms(uint64_t *state, unsigned attempt, uint64_t base_ms, uint64_t max_ms)
{
	uint64_t cap = base_ms;

	for (unsigned i = 0; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	return cap ? splitmix64(state) % (cap + 1) : 0;
}

/* ---- fingerprints ------------------------------------------------------ */


int http_fp_parse(const char *s, uint8_t ret[HTTP_FP_LEN])
{
	uint8_t fp[HTTP_FP_LEN];
	size_t n = 0;

	if (!s)
		return -EINVAL;
	while (*s) {
		int hi, lo;

		if (n == HTTP_FP_LEN)
			return -EINVAL;
		hi = unhexchar(s[0]);
		lo = hi < 0 ? -1 : unhexchar(s[1]);
		if (lo < 0)
			return -EINVAL;
		fp[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (*s == ':') {
			s++;
			if (!*s)
				return -EINVAL;
		}
	}
	if (n != HTTP_FP_LEN)
		return -EINVAL;
	memcpy(ret, fp, sizeof(fp));
	return 0;
}

void http_fp_format(const uint8_t fp[HTTP_FP_LEN], char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	assert(size >= HTTP_FP_TEXT_MAX);
	for (size_t i = 0; i < HTTP_FP_LEN; i++) {
		if (i)
			buf[o++] = ':';
		buf[o++] = hex[fp[i] >> 4];
		buf[o++] = hex[fp[i] & 15];
	}
	buf[o] = 0;
}

int http_fp_from_pem_file(const char *path, uint8_t ret[HTTP_FP_LEN])
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	unsigned n = 0;
	X509 *x;
	int r;

	if (!f)
		return negative_errno();
	x = PEM_read_X509(f, NULL, NULL, NULL);
	if (!x)
		return -EBADMSG;
	r = X509_digest(x, EVP_sha256(), ret, &n) == 1 && n == HTTP_FP_LEN ? 0 : -EBADMSG;
	X509_free(x);
	return r;
}

/* ---- TLS verification ---------------------------------------------------- */

static int verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct http_transport *t = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	int depth = X509_STORE_CTX_get_error_depth(xs);
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);
	unsigned n = 0;

	if (!t)
		return 0;
	if (depth == 0 && cert) {
		if (X509_digest(cert, EVP_sha256(), t->peer_fp, &n) != 1 || n != HTTP_FP_LEN) {
			t->verify_failed = true;
			return 0;
		}
		t->peer_fp_valid = true;
	}
	if (t->has_pin) {
		/* Only the leaf matters; errors about its chain are expected. */
		if (depth != 0)
			return 1;
		if (!t->peer_fp_valid || memcmp(t->peer_fp, t->pin, HTTP_FP_LEN) != 0) {
			t->verify_failed = true;
			return 0;
		}
		X509_STORE_CTX_set_error(xs, X509_V_OK);
		return 1;
	}
	if (!preverify_ok) {
		t->verify_failed = true;
		if (!t->verify_error)
			t->verify_error = X509_STORE_CTX_get_error(xs);
	}
	return preverify_ok;
}

/* Why a certificate was refused: the pin, OpenSSL's reason when it is
 * more than "another CA" (expired, not yet valid, ...), or, when the chain
 * passed and libcurl still refused it, the name. */
static const char *untrusted_reason(const struct http_transport *t, CURLcode cc)
{
	if (t->has_pin)
		return "fingerprint does not match the pinned one";
	if (!t->verify_failed && cc == CURLE_PEER_FAILED_VERIFICATION)
		return "it does not name the host";
	switch (t->verify_error) {
	case 0:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return "not signed by the trusted CA";
	default:
		return X509_verify_cert_error_string(t->verify_error);
	}
}

static CURLcode ssl_ctx_cb(CURL *curl, void *sslctx, void *userdata)
{
	(void)curl;
	SSL_CTX_set_app_data((SSL_CTX *)sslctx, userdata);
	SSL_CTX_set_verify((SSL_CTX *)sslctx, SSL_VERIFY_PEER, verify_cb);
	return CURLE_OK;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void opts_defaults(struct http_opts *o)
{
	if (!o->connect_timeout_ms)
		o->connect_timeout_ms = 5000;
	if (!o->request_timeout_ms)
		o->request_timeout_ms = 30000;
	if (!o->max_attempts)
		o->max_attempts = 5;
	if (o->max_attempts > 50)
		o->max_attempts = 50;
	if (!o->backoff_base_ms)
		o->backoff_base_ms = 200;
	if (!o->backoff_max_ms)
		o->backoff_max_ms = 5000;
	if (!o->max_body)
		o->max_body = 8u << 20;
}

/* libcurl's global set-up, once per process, whichever thread asks first. */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ok;

static void global_init(void)
{
	global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

struct http_transport *http_transport_new(const char *base_url, const struct http_opts *opts)
{
	_cleanup_(http_transport_freep) struct http_transport *t = NULL;

	if (!base_url || strncmp(base_url, "https://", 8) != 0 || strlen(base_url) > 1024)
		return NULL;
	pthread_once(&global_once, global_init);
	if (!global_ok)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->base_url = strdup(base_url);
	if (!t->base_url)
		return NULL; /* cppcheck-suppress memleak ; _cleanup_ frees t (cppcheck 2.10 misses it) */
	if (opts)
		t->o = *opts;
	opts_defaults(&t->o);
	t->rng = t->o.seed;
	if (!t->rng && getrandom(&t->rng, sizeof(t->rng), 0) != (ssize_t)sizeof(t->rng))
		t->rng = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	return TAKE_PTR(t);
}


struct http_transport *http_transport_clone(const struct http_transport *t, uint64_t salt)
{
	_cleanup_(http_transport_freep) struct http_transport *c = http_transport_new(t->base_url, &t->o);

	if (!c)
		return NULL;
	if (t->ca_file && !(c->ca_file = strdup(t->ca_file)))
		return NULL;
	if (t->ca_pem && !(c->ca_pem = strdup(t->ca_pem)))
		return NULL;
	if (t->cert_pem && http_transport_client_cert(c, t->cert_pem, t->key_pem) < 0)
		return NULL;
	c->has_pin = t->has_pin;
	memcpy(c->pin, t->pin, HTTP_FP_LEN);
	/* its own jitter sequence, reproducible from a fixed seed */
	c->rng = t->rng ^ (salt + 1) * UINT64_C(0x9E3779B97F4A7C15);
	return TAKE_PTR(c);
}

struct http_transport *http_transport_free(struct http_transport *t)
{
	if (!t)
		return NULL;
	if (t->curl)
		curl_easy_cleanup(t->curl);
	curl_slist_free_all(t->connect_to);
	free(t->base_url);
	free(t->ca_file);
	free(t->ca_pem);
	free(t->cert_pem);
	free_wiped(t->key_pem);
	free(t);
	return NULL;
}

const char *http_transport_base_url(const struct http_transport *t)
{
	return t->base_url;
}

static void drop_connections(struct http_transport *t)
{
	if (t->curl) {
		curl_easy_cleanup(t->curl);
		t->curl = NULL;
	}
	t->peer_fp_valid = false;
}

int http_transport_pin(struct http_transport *t, const uint8_t fp[HTTP_FP_LEN])
{
	drop_connections(t);
	free(t->ca_file);
	t->ca_file = NULL;
	free(t->ca_pem);
	t->ca_pem = NULL;
	memcpy(t->pin, fp, HTTP_FP_LEN);
	t->has_pin = true;
	return 0;
}

int http_transport_ca(struct http_transport *t, const char *ca_file)
{
	char *c;

	if (access(ca_file, R_OK) < 0)
		return negative_errno();
	c = strdup(ca_file);
	if (!c)
		return -ENOMEM;
	drop_connections(t);
	free(t->ca_file);
	t->ca_file = c;
	free(t->ca_pem);
	t->ca_pem = NULL;
	t->has_pin = false;
	return 0;
}

int http_transport_ca_pem(struct http_transport *t, const char *pem)
{
	char *c = strdup(pem);

	if (!c)
		return -ENOMEM;
	drop_connections(t);
	free(t->ca_pem);
	t->ca_pem = c;
	free(t->ca_file);
	t->ca_file = NULL;
	t->has_pin = false;
	return 0;
}

int http_transport_client_cert(struct http_transport *t, const char *cert_pem, const char *key_pem)
{
	char *c = strdup(cert_pem), *k = strdup(key_pem);

	if (!c || !k) {
		free(c);
		free_wiped(k);
		return -ENOMEM;
	}
	drop_connections(t);
	free(t->cert_pem);
	free_wiped(t->key_pem);
	t->cert_pem = c;
	t->key_pem = k;
	return 0;
}

bool http_transport_has_trust(const struct http_transport *t)
{
	return t->has_pin || t->ca_file || t->ca_pem;
}

void http_transport_set_deadline(struct http_transport *t, uint64_t deadline_ms)
{
	t->deadline_ms = deadline_ms;
}

int http_transport_peer_fp(const struct http_transport *t, uint8_t ret[HTTP_FP_LEN])
{
	if (!t->peer_fp_valid)
		return -ENODATA;
	memcpy(ret, t->peer_fp, HTTP_FP_LEN);
	return 0;
}

const char *http_transport_error(const struct http_transport *t)
{
	return t->err[0] ? t->err : "no error";
}

unsigned http_transport_attempts(const struct http_transport *t)
{
	return t->attempts;
}

void http_response_done(struct http_response *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->reason);
	for (size_t i = 0; i < HTTP_MAX_HEADERS; i++)
		free(r->header[i]);
	*r = (struct http_response){};
}

/* ---- one attempt --------------------------------------------------------- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;

	if (n > b->max - b->len) {
		b->overflow = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return 0;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = 0;
	return n;
}

/* Keep the reason phrase of the last status line ("HTTP/1.1 400 Reason"). */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct head *h = userdata;
	size_t n = size * nitems, i = 0, len;
	char *sp;

	if (n < 12 || strncmp(buf, "HTTP/", 5) != 0)
		return n;
	sp = memchr(buf, ' ', n);
	if (!sp)
		return n;
	i = (size_t)(sp - buf) + 1;
	while (i < n && buf[i] >= '0' && buf[i] <= '9')
		i++;
	while (i < n && buf[i] == ' ')
		i++;
	len = n - i;
	while (len && (buf[i + len - 1] == '\r' || buf[i + len - 1] == '\n'))
		len--;
	if (len >= sizeof(h->reason))
		len = sizeof(h->reason) - 1;
	memcpy(h->reason, buf + i, len);
	h->reason[len] = 0;
	return n;
}

static int setup_handle(struct http_transport *t)
{
	if (t->curl) {
		curl_easy_reset(t->curl);
	} else {
		t->curl = curl_easy_init();
		if (!t->curl)
			return -ENOMEM;
	}
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	if (t->o.connect_to[0]) {
		if (!t->connect_to && !(t->connect_to = curl_slist_append(NULL, t->o.connect_to)))
			return -ENOMEM;
		curl_easy_setopt(t->curl, CURLOPT_CONNECT_TO, t->connect_to);
	}
	curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(t->curl, CURLOPT_FOLLOWLOCATION, 0L);
	/* A resumed session would skip our verify callback. */
	curl_easy_setopt(t->curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(t->curl, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	curl_easy_setopt(t->curl, CURLOPT_SSL_CTX_DATA, t);
	if (t->has_pin) {
		/* The certificate itself is pinned: chain and name do not add trust. */
		curl_easy_setopt(t->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(t->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(t->curl, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(t->curl, CURLOPT_SSL_VERIFYHOST, 2L);
		if (t->ca_pem) {
			struct curl_blob b = { .data = t->ca_pem, .len = strlen(t->ca_pem), .flags = CURL_BLOB_COPY };

			curl_easy_setopt(t->curl, CURLOPT_CAINFO, NULL);
			curl_easy_setopt(t->curl, CURLOPT_CAINFO_BLOB, &b);
		} else
			curl_easy_setopt(t->curl, CURLOPT_CAINFO, t->ca_file);
		curl_easy_setopt(t->curl, CURLOPT_CAPATH, NULL);
	}
	if (t->cert_pem) {
		struct curl_blob c = { .data = t->cert_pem, .len = strlen(t->cert_pem), .flags = CURL_BLOB_COPY };
		struct curl_blob k = { .data = t->key_pem, .len = strlen(t->key_pem), .flags = CURL_BLOB_COPY };

		curl_easy_setopt(t->curl, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(t->curl, CURLOPT_SSLCERT_BLOB, &c);
		curl_easy_setopt(t->curl, CURLOPT_SSLKEYTYPE, "PEM");
		curl_easy_setopt(t->curl, CURLOPT_SSLKEY_BLOB, &k);
	}
	return 0;
}

enum outcome { OUT_DONE, OUT_RETRY_ALWAYS, OUT_RETRY_IDEMPOTENT, OUT_FAIL };

static enum outcome classify(struct http_transport *t, CURLcode cc, const char *url, int *ret_errno)
{
	double connect_time = 0;

	curl_easy_getinfo(t->curl, CURLINFO_CONNECT_TIME, &connect_time);
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		seterr(t, "%s: cannot connect: %s", url, curl_easy_strerror(cc));
		*ret_errno = -ECONNREFUSED;
		return OUT_RETRY_ALWAYS;
	case CURLE_OPERATION_TIMEDOUT:
		seterr(t, "%s: timed out", url);
		*ret_errno = -ETIMEDOUT;
		/* Before the connection stood, nothing was sent. */
		return connect_time <= 0 ? OUT_RETRY_ALWAYS : OUT_RETRY_IDEMPOTENT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
		if (t->verify_failed || cc != CURLE_SSL_CONNECT_ERROR) {
			char have[HTTP_FP_TEXT_MAX] = "unknown";

			if (t->peer_fp_valid)
				http_fp_format(t->peer_fp, have, sizeof(have));
			seterr(t, "%s: server certificate not trusted (%s; its SHA-256 fingerprint is %s)", url,
			       untrusted_reason(t, cc), have);
			*ret_errno = -EKEYREJECTED;
			return OUT_FAIL;
		}
		/* A handshake cut short (reset, restart): nothing was sent. */
		seterr(t, "%s: TLS handshake failed: %s", url, curl_easy_strerror(cc));
		*ret_errno = -ECONNRESET;
		return OUT_RETRY_ALWAYS;
	case CURLE_WRITE_ERROR:
		seterr(t, "%s: response body too large (limit %zu bytes)", url, t->o.max_body);
		*ret_errno = -EFBIG;
		return OUT_FAIL;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		seterr(t, "%s: connection lost: %s", url, curl_easy_strerror(cc));
		*ret_errno = -ECONNRESET;
		return OUT_RETRY_IDEMPOTENT;
	default:
		seterr(t, "%s: %s", url, curl_easy_strerror(cc));
		*ret_errno = -EIO;
		return OUT_FAIL;
	}
}

/* The parts in order; a file is read from disk while it is sent. */
static int build_mime(struct http_transport *t, const struct http_request *req, curl_mime **ret)
{
	curl_mime *m = curl_mime_init(t->curl);

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < req->n_parts; i++) {
		const struct http_part *p = &req->parts[i];
		curl_mimepart *part = curl_mime_addpart(m);
		CURLcode cc;

		if (!part) {
			curl_mime_free(m);
			return -ENOMEM;
		}
		cc = curl_mime_name(part, p->name);
		if (cc == CURLE_OK && p->file) {
			cc = curl_mime_filedata(part, p->file);
			if (cc == CURLE_OK)
				cc = curl_mime_filename(part, p->filename);
			if (cc == CURLE_OK)
				cc = curl_mime_type(part, "application/octet-stream");
		} else if (cc == CURLE_OK) {
			cc = curl_mime_data(part, p->value ? p->value : "", CURL_ZERO_TERMINATED);
		}
		if (cc != CURLE_OK) {
			seterr(t, "%s: multipart part '%s': %s", t->base_url, p->name, curl_easy_strerror(cc));
			curl_mime_free(m);
			return cc == CURLE_READ_ERROR ? -ENOENT : -ENOMEM;
		}
	}
	*ret = m;
	return 0;
}

static int attempt(struct http_transport *t, const struct http_request *req, const char *url,
		   uint64_t timeout_ms, struct http_response *ret, enum outcome *ret_outcome)
{
	struct curl_slist *hl = NULL;
	curl_mime *mime = NULL;
	struct body b = { .max = t->o.max_body };
	struct head h = {};
	CURLcode cc;
	int r = 0;

	r = setup_handle(t);
	if (r < 0)
		return r;
	t->verify_failed = false;
	t->verify_error = 0;
	curl_easy_setopt(t->curl, CURLOPT_URL, url);
	/* libcurl silently re-sends a request whose reused connection died
	 * before any answer; for a non-idempotent request that could be a
	 * second POST. A fresh connection is never re-sent. */
	if (!req->idempotent)
		curl_easy_setopt(t->curl, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(timeout_ms < t->o.connect_timeout_ms ? timeout_ms : t->o.connect_timeout_ms));
	if (req->n_parts) {
		/* An upload: bounded by its progress, not by the clock. */
		curl_easy_setopt(t->curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(t->curl, CURLOPT_LOW_SPEED_TIME, (long)HTTP_STALL_S);
	} else {
		curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	}
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(t->curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, &h);
	if (req->cookie)
		curl_easy_setopt(t->curl, CURLOPT_COOKIE, req->cookie);
	for (size_t i = 0; i < HTTP_MAX_HEADERS && req->headers[i]; i++) {
		struct curl_slist *n = curl_slist_append(hl, req->headers[i]);

		if (!n) {
			r = -ENOMEM;
			goto out;
		}
		hl = n;
	}
	if (req->body) {
		char ct[128];
		struct curl_slist *n;

		snprintf(ct, sizeof(ct), "Content-Type: %s",
			 req->content_type ? req->content_type : "application/x-www-form-urlencoded");
		n = curl_slist_append(hl, ct);
		if (!n) {
			r = -ENOMEM;
			goto out;
		}
		hl = n;
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	if (req->n_parts) {
		r = build_mime(t, req, &mime);
		if (r < 0)
			goto out;
		curl_easy_setopt(t->curl, CURLOPT_MIMEPOST, mime);
	}
	/* No "Expect: 100-continue" round trip. */
	hl = curl_slist_append(hl, "Expect:");
	if (!hl) {
		r = -ENOMEM;
		goto out;
	}
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, hl);
	if (req->method == HTTP_POST && !req->body && !req->n_parts) {
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	} else if (req->method == HTTP_PUT || req->method == HTTP_DELETE || req->method == HTTP_PATCH) {
		curl_easy_setopt(t->curl, CURLOPT_CUSTOMREQUEST, http_method_names[req->method]);
		if (!req->body && req->method != HTTP_DELETE)
			curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, "");
	}

	cc = curl_easy_perform(t->curl);
	if (cc != CURLE_OK) {
		*ret_outcome = b.overflow ? OUT_FAIL : classify(t, cc, url, &r);
		if (b.overflow) {
			seterr(t, "%s: response body too large (limit %zu bytes)", url, t->o.max_body);
			r = -EFBIG;
		}
		goto out;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &ret->status);
	ret->reason = strdup(h.reason);
	ret->body = b.data ? TAKE_PTR(b.data) : strdup("");
	ret->body_len = b.len;
	for (size_t i = 0; i < HTTP_MAX_HEADERS && req->response_headers[i] && ret->body; i++) {
		struct curl_header *hv = NULL;

		if (curl_easy_header(t->curl, req->response_headers[i], 0, CURLH_HEADER, -1, &hv) == CURLHE_OK &&
		    !(ret->header[i] = strdup(hv->value))) {
			free(ret->body);
			ret->body = NULL;
		}
	}
	if (!ret->reason || !ret->body) {
		http_response_done(ret);
		r = -ENOMEM;
		goto out;
	}
	/* 501 (no such method) and 505 will not change on retry. */
	if (ret->status >= 500 && ret->status != 501 && ret->status != 505) {
		seterr(t, "%s: HTTP %ld %s", url, ret->status, ret->reason);
		*ret_outcome = OUT_RETRY_IDEMPOTENT;
	} else {
		*ret_outcome = OUT_DONE;
	}
out:
	free(b.data);
	curl_slist_free_all(hl);
	curl_mime_free(mime);
	return r;
}

int http_get_public(const char *url, uint64_t timeout_ms, size_t max, char **ret_body, size_t *ret_len,
		    long *ret_status)
{
	struct body b = { .max = max };
	CURL *c;
	CURLcode cc;
	int r = 0;

	if (!url || strncmp(url, "http://", 7) != 0 || strlen(url) > 1024)
		return -EINVAL;
	pthread_once(&global_once, global_init);
	if (!global_ok || !(c = curl_easy_init()))
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
		*ret_len = b.len;
		*ret_body = b.data ? b.data : strdup("");
		b.data = NULL;
		if (!*ret_body)
			r = -ENOMEM;
	} else
		r = b.overflow ? -EFBIG : cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
	free(b.data);
	curl_easy_cleanup(c);
	return r;
}

int http_request(struct http_transport *t, const struct http_request *req, struct http_response *ret)
{
	_cleanup_free_ char *url = NULL;
	struct http_response resp = {};
	int r = -EIO;

	t->err[0] = 0;
	t->attempts = 0;
	if (!http_transport_has_trust(t)) {
		seterr(t, "%s: no trust configured (a fingerprint or a CA file is required)", t->base_url);
		return -EKEYREJECTED;
	}
	if (asprintf(&url, "%s%s", t->base_url, req->path) < 0)
		return -ENOMEM;

	for (unsigned i = 0; i < t->o.max_attempts; i++) {
		uint64_t now = http_now_ms(), timeout = t->o.request_timeout_ms;
		enum outcome out = OUT_FAIL;
		bool retry;

		if (t->deadline_ms) {
			if (now >= t->deadline_ms) {
				if (!t->err[0] || r >= 0)
					seterr(t, "%s: deadline passed", url);
				http_response_done(&resp);
				return -ETIMEDOUT;
			}
			if (t->deadline_ms - now < timeout)
				timeout = t->deadline_ms - now;
		}
		http_response_done(&resp);
		t->attempts++;
		r = attempt(t, req, url, timeout, &resp, &out);
		log_debug("%s %s%s -> %s (attempt %u)", http_method_names[req->method], t->base_url, req->path,
			  r < 0 ? t->err : "answered", t->attempts);
		retry = out == OUT_RETRY_ALWAYS || (out == OUT_RETRY_IDEMPOTENT && req->idempotent);
		if (!retry || i + 1 == t->o.max_attempts)
			break;
		/* Any open connection may be the broken one. */
		drop_connections(t);
		uint64_t d = http_backoff_ms(&t->rng, i, t->o.backoff_base_ms, t->o.backoff_max_ms);
		if (t->deadline_ms && http_now_ms() + d > t->deadline_ms)
			d = t->deadline_ms > http_now_ms() ? t->deadline_ms - http_now_ms() : 0;
		sleep_ms(d);
	}
	if (r < 0) {
		http_response_done(&resp);
		return r;
	}
	*ret = resp;
	return 0;
}
