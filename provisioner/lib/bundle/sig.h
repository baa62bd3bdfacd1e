/* SPDX-License-Identifier: MIT */
/*
 * sig.h — what the two cryptography backends share, and the interface they
 * build on; it depends on neither of them (dependencies point one way:
 * sig.c <- sig-mbedtls.c, sig.c <- sig-openssl.c, and the callers include
 * the backend they use):
 *
 *   sig-mbedtls.h  (mbedtls)    verify, SHA-256, AES-256-GCM open. Used by
 *                               everything that reads a bundle.
 *   sig-openssl.h  (libcrypto)  sign, verify, SHA-256, AES-256-GCM seal,
 *                               random bytes. Used by `bundle create` only.
 *
 * Both are built and cross-tested (tests/unit/test-sig.c); only the two
 * backend .c files include OpenSSL or mbedtls headers.
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
