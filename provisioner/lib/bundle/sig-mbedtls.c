/* SPDX-License-Identifier: MIT */
/*
 * sig-mbedtls.c — the verifying backend (mbedtls 2.28): SHA-256, ECDSA
 * P-256 verification, AES-256-GCM decryption. See sig.h.
 */
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/gcm.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "sig-mbedtls.h"
#include "util.h"

struct sig_sha256 {
	mbedtls_sha256_context ctx;
};

struct sig_pubkey {
	mbedtls_pk_context pk;
};

static void failf_mbedtls(const char *what, int rc)
{
	char buf[160];

	mbedtls_strerror(rc, buf, sizeof(buf));
	sig_failf("%s: %s (mbedtls -0x%04x)", what, buf, (unsigned)-rc);
}

struct sig_sha256 *sig_sha256_new(void)
{
	struct sig_sha256 *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	mbedtls_sha256_init(&h->ctx);
	/* Cannot fail for SHA-256 without an alternative implementation. */
	(void)mbedtls_sha256_starts_ret(&h->ctx, 0);
	return h;
}

void sig_sha256_update(struct sig_sha256 *h, const void *data, size_t n)
{
	(void)mbedtls_sha256_update_ret(&h->ctx, data, n);
}

void sig_sha256_final(struct sig_sha256 *h, uint8_t out[SIG_SHA256_LEN])
{
	(void)mbedtls_sha256_finish_ret(&h->ctx, out);
	(void)mbedtls_sha256_starts_ret(&h->ctx, 0);
}

struct sig_sha256 *sig_sha256_free(struct sig_sha256 *h)
{
	if (h) {
		mbedtls_sha256_free(&h->ctx);
		free(h);
	}
	return NULL;
}

void sig_sha256(const void *data, size_t n, uint8_t out[SIG_SHA256_LEN])
{
	(void)mbedtls_sha256_ret(data, n, out, 0);
}

struct sig_pubkey *sig_pubkey_free(struct sig_pubkey *k)
{
	if (k) {
		mbedtls_pk_free(&k->pk);
		free(k);
	}
	return NULL;
}

/* mbedtls wants PEM input NUL-terminated, with the NUL counted. */
int sig_pubkey_load_mem(const void *pem, size_t size, struct sig_pubkey **ret)
{
	_cleanup_(sig_pubkey_freep) struct sig_pubkey *k = NULL;
	_cleanup_free_ unsigned char *buf = NULL;
	const mbedtls_ecp_keypair *ec;
	int rc;

	if (size == 0 || size > SIG_KEY_MAX_BYTES) {
		sig_failf("public key: %s", size ? "too large" : "empty");
		return -EINVAL;
	}
	buf = malloc(size + 1);
	k = calloc(1, sizeof(*k));
	if (!buf || !k)
		return -ENOMEM;
	memcpy(buf, pem, size);
	buf[size] = 0;
	mbedtls_pk_init(&k->pk);
	rc = mbedtls_pk_parse_public_key(&k->pk, buf, size + 1);
	if (rc != 0) {
		failf_mbedtls("public key: not a PEM or DER SubjectPublicKeyInfo", rc);
		return -EINVAL;
	}
	if (mbedtls_pk_get_type(&k->pk) != MBEDTLS_PK_ECKEY) {
		sig_failf("public key: a %s key; only ECDSA P-256 keys are accepted", mbedtls_pk_get_name(&k->pk));
		return -EINVAL;
	}
	ec = mbedtls_pk_ec(k->pk);
	if (ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
		const mbedtls_ecp_curve_info *ci = mbedtls_ecp_curve_info_from_grp_id(ec->grp.id);

		sig_failf("public key: curve %s; only P-256 (prime256v1) is accepted", ci ? ci->name : "unknown");
		return -EINVAL;
	}
	*ret = TAKE_PTR(k);
	return 0;
}

int sig_pubkey_load(const char *path, struct sig_pubkey **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t size;
	int r;

	r = sig_read_small_file(path, SIG_KEY_MAX_BYTES, &buf, &size);
	if (r < 0) {
		sig_failf("public key '%s': %s", path, r == -EFBIG ? "file too large" : strerror(-r));
		return r == -EFBIG ? -EINVAL : r;
	}
	r = sig_pubkey_load_mem(buf, size, ret);
	return r;
}

int sig_verify(const struct sig_pubkey *k, const uint8_t digest[SIG_SHA256_LEN], const uint8_t *sig,
	       size_t sig_len)
{
	int rc;

	if (sig_len == 0 || sig_len > SIG_MAX_LEN) {
		sig_failf("signature has an impossible length (%zu bytes)", sig_len);
		return -EBADMSG;
	}
	/* mbedtls_pk_verify() takes a non-const context; it does not modify it. */
	rc = mbedtls_pk_verify((mbedtls_pk_context *)&k->pk, MBEDTLS_MD_SHA256, digest, SIG_SHA256_LEN, sig,
			       sig_len);
	if (rc == 0)
		return 0;
	if (rc == MBEDTLS_ERR_PK_SIG_LEN_MISMATCH)
		sig_failf("signature has trailing bytes after its DER encoding");
	else if (rc == MBEDTLS_ERR_ECP_VERIFY_FAILED)
		sig_failf("signature does not match: wrong key, or the signed data was changed");
	else
		failf_mbedtls("signature is malformed", rc);
	return -EBADMSG;
}

int sig_aead_open(const uint8_t key[SIG_AEAD_KEY_LEN], const uint8_t nonce[SIG_AEAD_NONCE_LEN],
		  const void *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
		  const uint8_t tag[SIG_AEAD_TAG_LEN], uint8_t *out)
{
	mbedtls_gcm_context gcm;
	int rc;

	mbedtls_gcm_init(&gcm);
	rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 8 * SIG_AEAD_KEY_LEN);
	if (rc == 0)
		rc = mbedtls_gcm_auth_decrypt(&gcm, ct_len, nonce, SIG_AEAD_NONCE_LEN, aad, aad_len, tag,
					      SIG_AEAD_TAG_LEN, ct, out);
	mbedtls_gcm_free(&gcm);
	if (rc == 0)
		return 0;
	explicit_wipe(out, ct_len);
	if (rc == MBEDTLS_ERR_GCM_AUTH_FAILED) {
		sig_failf("authentication failed: wrong key, or the data or its context was changed");
		return -EBADMSG;
	}
	failf_mbedtls("AES-256-GCM", rc);
	return -EIO;
}
