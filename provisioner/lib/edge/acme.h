/* SPDX-License-Identifier: MIT */
/*
 * acme.h — an ACME client (RFC 8555) for one thing: a certificate for a
 * set of DNS names, the challenges answered by DNS-01 (docs/edge.md,
 * "ACME DNS-01"). Requests go through http.h (libcurl); the JWS
 * signatures (ES256) and the keys are OpenSSL's.
 *
 * The account is the account key's: the same key finds the same account
 * (newAccount answers 200 for a key it knows), so the caller keeps the key
 * (acme_key_new()) and renewals order under one account. Every request
 * carries a fresh nonce; a badNonce answer is retried with the nonce it
 * brought (servers reject some on purpose). An ACME server's problem
 * document ends a call with -EPROTO and its type and detail in
 * acme_error(). Every URL the server hands out must be on the server of
 * the directory (one transport, one trust).
 *
 * Ownership: acme_client_new() copies the configuration (the key is
 * wiped on acme_client_free()). PEM strings returned are the caller's;
 * a private key is a secret (explicit_wipe() before free()). Nothing here
 * logs; no key, nonce or signature reaches acme_error().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "pve/http.h"
#include "util.h"

struct json_object;

#define ACME_MAX_NAMES 8
#define ACME_B64_SHA256 44 /* base64url of 32 bytes, no padding, and a NUL */
#define ACME_LETSENCRYPT "https://acme-v02.api.letsencrypt.org/directory"

struct acme_cfg {
	const char *directory;   /* "https://host[:port]/path" */
	const char *ca_file;     /* trust for the server's HTTPS */
	const char *account_key; /* PEM, P-256 (secret) */
	const char *email;       /* the account's contact; NULL = none */
	struct http_opts http;
	uint64_t poll_ms;    /* between looks at a pending authorization or order; default 2000 */
	uint64_t timeout_ms; /* one order, challenges to certificate; default 10 min */
};

/* Publishes the DNS-01 answers: n TXT values at name (a full name,
 * "_acme-challenge.zone"), or n == 0 to remove them again. Returns 0 once
 * the authoritative servers answer them, or a negative errno. */
struct acme_solver {
	int (*txt)(void *userdata, const char *name, const char *const *values, size_t n);
	void *userdata;
	void (*progress)(void *userdata, const char *msg); /* optional */
};

struct acme_client;

/* -EINVAL: a directory that is not https://, a key that is not P-256. */
int acme_client_new(const struct acme_cfg *cfg, struct acme_client **ret);
struct acme_client *acme_client_free(struct acme_client *a);
DEFINE_FREE_FUNC(struct acme_client, acme_client_free);
const char *acme_error(const struct acme_client *a);

/* A certificate for names (names[0] its subject; "*.zone" wildcards) with
 * a new P-256 key: the account found or made (terms of service agreed),
 * an order, each authorization's dns-01 challenge answered through
 * solver (its TXT records removed again whatever happens), the order
 * finalized with a CSR and the certificate fetched. *ret_chain is the
 * leaf then the intermediates (PEM), *ret_key the PKCS#8 key (PEM).
 * -EPROTO (the server refused: acme_error() says why, a failed challenge
 * with the server's words), -ETIMEDOUT, transport errors as
 * http_request(). */
int acme_order(struct acme_client *a, const char *const *names, size_t n, const struct acme_solver *solver,
	       char **ret_chain, char **ret_key);

/* ---- no network (tests, fuzzing) ---------------------------------------- */

/* A new P-256 account key, PKCS#8 PEM (*ret, a secret). */
int acme_key_new(char **ret);
/* The RFC 7638 thumbprint of key_pem's public key (base64url SHA-256 of
 * its JWK {"crv","kty","x","y"}); -EINVAL when it is not a P-256 key. */
int acme_thumbprint(const char *key_pem, char ret[static ACME_B64_SHA256]);
/* The TXT value answering a dns-01 challenge: base64url(SHA-256(token
 * "." thumbprint)) (RFC 8555 §8.1, §8.4). -EINVAL for a token with
 * characters outside base64url. */
int acme_dns01_value(const char *token, const char *thumbprint, char ret[static ACME_B64_SHA256]);
/* base64url without padding (RFC 7515 §2) of n bytes into *ret. */
int acme_b64url(const void *in, size_t n, char **ret);

/* One authorization object: its status, the identifier (wildcard
 * authorizations name the zone: *ret_name "zone", *ret_wildcard) and its
 * dns-01 challenge (url, token, status; NULL when it has none). Strings
 * borrowed from authz. -EBADMSG when it is not one. */
struct acme_authz {
	const char *status, *name, *chall_url, *chall_token, *chall_status, *chall_error;
	int wildcard;
};
int acme_decode_authz(struct json_object *authz, struct acme_authz *ret);
/* An answer body: 0 unless it is a problem document (RFC 7807:
 * "type", "detail"), then -EPROTO with "TYPE: DETAIL" in msg (the
 * "urn:ietf:params:acme:error:" prefix dropped); -EAGAIN for badNonce. */
int acme_decode_problem(const char *body, size_t len, char *msg, size_t size);
