/* SPDX-License-Identifier: MIT */
/*
 * sig-mbedtls.h — the backend that reads bundles (mbedtls): streaming SHA-256,
 * public keys, ECDSA P-256 verification, AES-256-GCM decryption.
 * Errors as sig.h says: 0 or -errno, the detail in sig_error().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sig.h"

struct sig_sha256; /* streaming SHA-256 */

struct sig_sha256 *sig_sha256_new(void); /* NULL on OOM */
void sig_sha256_update(struct sig_sha256 *h, const void *data, size_t n);
/* Write the digest and reset h for reuse. */
void sig_sha256_final(struct sig_sha256 *h, uint8_t out[SIG_SHA256_LEN]);
struct sig_sha256 *sig_sha256_free(struct sig_sha256 *h);
void sig_sha256(const void *data, size_t n, uint8_t out[SIG_SHA256_LEN]);

struct sig_pubkey;

int sig_pubkey_load(const char *path, struct sig_pubkey **ret);
int sig_pubkey_load_mem(const void *pem, size_t size, struct sig_pubkey **ret);
struct sig_pubkey *sig_pubkey_free(struct sig_pubkey *k);
/* 0 when sig is a valid signature of digest by k; -EBADMSG when not. */
int sig_verify(const struct sig_pubkey *k, const uint8_t digest[SIG_SHA256_LEN], const uint8_t *sig,
	       size_t sig_len);

/* AES-256-GCM decrypt and authenticate; out has room for ct_len bytes.
 * -EBADMSG when the tag does not match (out is then wiped). */
int sig_aead_open(const uint8_t key[SIG_AEAD_KEY_LEN], const uint8_t nonce[SIG_AEAD_NONCE_LEN],
		  const void *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
		  const uint8_t tag[SIG_AEAD_TAG_LEN], uint8_t *out);

static inline void sig_pubkey_freep(struct sig_pubkey **k) { if (*k) sig_pubkey_free(*k); }
static inline void sig_sha256_freep(struct sig_sha256 **h) { if (*h) sig_sha256_free(*h); }
