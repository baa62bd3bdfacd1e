/* SPDX-License-Identifier: MIT */
/*
 * sig.h — all of the project's cryptography, behind one header with two
 * backends that are both built and cross-tested (tests/unit/test-sig.c):
 *
 *   sig-openssl.c  (libcrypto)  sign, verify, SHA-256, AES-256-GCM seal,
 *                               random bytes. Used by `bundle create` only.
 *   sig-mbedtls.c  (mbedtls)    verify, SHA-256, AES-256-GCM open. Used by
 *                               everything that reads a bundle.
 *
 * Only those two files include OpenSSL or mbedtls headers.
 *
 * The signature scheme is that of `openssl dgst -sha256 -sign key.pem FILE`:
 * ECDSA over NIST P-256 (prime256v1/secp256r1) of the SHA-256 digest of the
 * file, encoded as a DER SEQUENCE { r INTEGER, s INTEGER } (SEC 1 v2
 * §C.5, RFC 5480 §2.2). Keys are PEM: private keys PKCS#8 or SEC 1
 * ("EC PRIVATE KEY"), public keys SubjectPublicKeyInfo ("PUBLIC KEY").
 * Keys on any other curve or of any other type are refused (-EINVAL).
 * Encrypted (passphrase-protected) private keys are refused: no prompting.
 *
 * Errors: functions return 0 or -errno; the detail (in words) is in
 * sig_error(), which holds the first error since sig_error_clear().
 * A signature that does not verify is -EBADMSG.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SIG_SHA256_LEN 32
#define SIG_MAX_LEN 80             /* DER ECDSA P-256 is at most 72 bytes */
#define SIG_KEY_MAX_BYTES 65536u   /* a PEM key file larger than this is refused */
#define SIG_AEAD_KEY_LEN 32        /* AES-256-GCM (NIST SP 800-38D) */
#define SIG_AEAD_NONCE_LEN 12      /* 96-bit IV, the recommended size */
#define SIG_AEAD_TAG_LEN 16        /* full 128-bit tag */

/* ---- error buffer (sig.c) ---------------------------------------------- */

const char *sig_error(void);
void sig_error_clear(void);
void sig_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Lower-case hex of a digest into out (2 * SIG_SHA256_LEN + 1 bytes). */
void sig_hex(const uint8_t digest[SIG_SHA256_LEN], char out[2 * SIG_SHA256_LEN + 1]);
/* Parse exactly 64 hex digits (either case). 0 or -EINVAL. */
int sig_unhex(const char *hex, uint8_t ret_digest[SIG_SHA256_LEN]);

/* Read a whole small file (a key) into a NUL-terminated buffer of at most
 * `max` bytes. Returns 0, -EFBIG when larger, -errno when unreadable. */
int sig_read_small_file(const char *path, size_t max, char **ret, size_t *ret_size);

/* ---- mbedtls: what reads bundles ---------------------------------------- */

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

/* ---- OpenSSL: what makes bundles ---------------------------------------- */

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

static inline void sig_pubkey_freep(struct sig_pubkey **k) { if (*k) sig_pubkey_free(*k); }
static inline void sig_sha256_freep(struct sig_sha256 **h) { if (*h) sig_sha256_free(*h); }
static inline void sig_openssl_key_freep(struct sig_openssl_key **k) { if (*k) sig_openssl_key_free(*k); }
static inline void sig_openssl_sha256_freep(struct sig_openssl_sha256 **h)
{
	if (*h)
		sig_openssl_sha256_free(*h);
}
