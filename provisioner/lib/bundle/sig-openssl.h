/* SPDX-License-Identifier: MIT */
/*
 * sig-openssl.h — the backend that makes bundles (OpenSSL libcrypto): private
 * and public keys, signing and verification, SHA-256, random bytes,
 * AES-256-GCM encryption. Used by `bundle create` and the cross-tests.
 * Errors as sig.h says: 0 or -errno, the detail in sig_error().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sig.h"

struct sig_openssl_key; /* a private key (sign + verify) or a public key (verify) */

int sig_openssl_privkey_load(const char *path, struct sig_openssl_key **ret);
int sig_openssl_pubkey_load(const char *path, struct sig_openssl_key **ret);
struct sig_openssl_key *sig_openssl_key_free(struct sig_openssl_key *k);
/* DER signature into out (SIG_MAX_LEN bytes); *ret_len its length. */
int sig_openssl_sign(const struct sig_openssl_key *k, const uint8_t digest[SIG_SHA256_LEN],
		     uint8_t out[SIG_MAX_LEN], size_t *ret_len);
int sig_openssl_verify(const struct sig_openssl_key *k, const uint8_t digest[SIG_SHA256_LEN],
		       const uint8_t *sig, size_t sig_len);

struct sig_openssl_sha256;

struct sig_openssl_sha256 *sig_openssl_sha256_new(void); /* NULL on OOM */
void sig_openssl_sha256_update(struct sig_openssl_sha256 *h, const void *data, size_t n);
void sig_openssl_sha256_final(struct sig_openssl_sha256 *h, uint8_t out[SIG_SHA256_LEN]);
struct sig_openssl_sha256 *sig_openssl_sha256_free(struct sig_openssl_sha256 *h);

/* Cryptographically secure random bytes (the AEAD nonce). */
int sig_openssl_random(void *buf, size_t n);

/* AES-256-GCM encrypt with the given nonce; ct has room for pt_len bytes. */
int sig_openssl_aead_seal(const uint8_t key[SIG_AEAD_KEY_LEN], const uint8_t nonce[SIG_AEAD_NONCE_LEN],
			  const void *aad, size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct,
			  uint8_t ret_tag[SIG_AEAD_TAG_LEN]);

static inline void sig_openssl_key_freep(struct sig_openssl_key **k) { if (*k) sig_openssl_key_free(*k); }
static inline void sig_openssl_sha256_freep(struct sig_openssl_sha256 **h)
{
	if (*h)
		sig_openssl_sha256_free(*h);
}
