/* SPDX-License-Identifier: MIT */
/*
 * secret.h — the secret values of a bundle (passwords, tokens): never in
 * clear text in the bundle. docs/security.md has the threat model.
 *
 * secrets.enc = "DLSECRT1" | nonce (12 bytes, random) | ciphertext | tag (16)
 * AES-256-GCM (NIST SP 800-38D) with
 *   AAD       = "DLSECRT1" | SHA-256(manifest.yaml bytes)
 *   plaintext = for each secret, sorted by name: name NUL value NUL
 * The AAD binds the blob to its format and to the one manifest it was made
 * for: moved into another bundle it does not decrypt. The 32-byte key is
 * never in the bundle; it reaches the machine separately (a file in the
 * image's initramfs, or devopslab.secret_key= on the kernel command line).
 *
 * Sealing uses OpenSSL (bundle create); opening uses mbedtls. Values are
 * wiped from memory by secrets_free(). Nothing here logs, and error
 * messages never contain a value (only names and line numbers).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SECRET_KEY_LEN 32
#define SECRET_MAGIC "DLSECRT1"
#define SECRET_MAGIC_LEN 8
#define SECRET_MAX_COUNT 1024u
#define SECRET_NAME_MAX 128u
#define SECRET_VALUE_MAX 65536u
#define SECRET_FILE_MAX (1u << 20)
#define SECRET_CMDLINE_KEY "devopslab.secret_key="

struct secrets;

const char *secret_error(void);

/* A key is 32 raw bytes, or 64 hex digits (a trailing newline allowed). */
int secret_key_parse(const void *data, size_t size, uint8_t ret_key[SECRET_KEY_LEN]);
int secret_key_load(const char *path, uint8_t ret_key[SECRET_KEY_LEN]);
/* From a kernel command line (the contents of /proc/cmdline):
 * devopslab.secret_key=<64 hex digits>. -ENOENT when absent. */
int secret_key_from_cmdline(const char *cmdline, uint8_t ret_key[SECRET_KEY_LEN]);

/* The clear-text secrets file given to `bundle create --secrets`: lines
 * NAME=VALUE (the value is the rest of the line, verbatim), blank lines
 * and lines starting with '#' ignored. Names: [A-Za-z_][A-Za-z0-9_.-]*. */
int secrets_parse(const char *text, size_t size, struct secrets **ret);
int secrets_load(const char *path, struct secrets **ret);

int secret_seal(const struct secrets *s, const uint8_t key[SECRET_KEY_LEN],
		const uint8_t manifest_sha256[32], uint8_t **ret_blob, size_t *ret_size);
int secret_open(const uint8_t *blob, size_t size, const uint8_t key[SECRET_KEY_LEN],
		const uint8_t manifest_sha256[32], struct secrets **ret);

size_t secrets_count(const struct secrets *s);
const char *secrets_name(const struct secrets *s, size_t i);
/* The value of `name`, or NULL. Valid until secrets_free(). */
const char *secrets_get(const struct secrets *s, const char *name);
struct secrets *secrets_free(struct secrets *s);

static inline void secrets_freep(struct secrets **s)
{
	if (*s)
		secrets_free(*s);
}
