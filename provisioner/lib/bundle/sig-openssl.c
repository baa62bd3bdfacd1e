/* SPDX-License-Identifier: MIT */
/*
 * sig-openssl.c — the signing backend (OpenSSL 3 libcrypto): ECDSA P-256
 * sign and verify, SHA-256, AES-256-GCM encryption, random bytes.
 * See sig.h.
 */
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "sig-openssl.h"
#include "util.h"

struct sig_openssl_key {
	EVP_PKEY *pkey;
};

struct sig_openssl_sha256 {
	EVP_MD_CTX *ctx;
};

static void failf_openssl(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e == 0) {
		sig_failf("%s", what);
	} else {
		ERR_error_string_n(e, buf, sizeof(buf));
		sig_failf("%s: %s", what, buf);
	}
	ERR_clear_error();
}

/* Refuse passphrase-protected keys instead of prompting on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static void bio_freep(BIO **b)
{
	if (*b)
		BIO_free(*b);
}

static void evp_pkey_ctx_freep(EVP_PKEY_CTX **c)
{
	if (*c)
		EVP_PKEY_CTX_free(*c);
}

static void evp_cipher_ctx_freep(EVP_CIPHER_CTX **c)
{
	if (*c)
		EVP_CIPHER_CTX_free(*c);
}

struct sig_openssl_key *sig_openssl_key_free(struct sig_openssl_key *k)
{
	if (k) {
		EVP_PKEY_free(k->pkey);
		free(k);
	}
	return NULL;
}

static int check_p256(EVP_PKEY *pkey, const char *what)
{
	char group[64] = "";
	size_t len = 0;

	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
		sig_failf("%s: a %s key; only ECDSA P-256 keys are accepted", what,
			  OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
		return -EINVAL;
	}
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) ||
	    !streq(group, "prime256v1")) {
		sig_failf("%s: curve %s; only P-256 (prime256v1) is accepted", what, group[0] ? group : "unknown");
		return -EINVAL;
	}
	return 0;
}

static int key_load(const char *path, bool private, struct sig_openssl_key **ret)
{
	const char *what = private ? "private key" : "public key";
	_cleanup_(sig_openssl_key_freep) struct sig_openssl_key *k = NULL;
	_cleanup_(bio_freep) BIO *bio = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t size;
	int r;

	r = sig_read_small_file(path, SIG_KEY_MAX_BYTES, &buf, &size);
	if (r < 0) {
		sig_failf("%s '%s': %s", what, path, r == -EFBIG ? "file too large" : strerror(-r));
		return r == -EFBIG ? -EINVAL : r;
	}
	k = calloc(1, sizeof(*k));
	bio = BIO_new_mem_buf(buf, (int)size);
	if (!k || !bio) {
		explicit_wipe(buf, size);
		return -ENOMEM;
	}
	k->pkey = private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
			  : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	explicit_wipe(buf, size);
	if (!k->pkey) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s '%s': not a PEM %s (or protected by a passphrase)", what, path,
			 private ? "PKCS#8 or SEC 1 EC private key" : "SubjectPublicKeyInfo");
		failf_openssl(msg);
		return -EINVAL; /* cppcheck-suppress memleak ; _cleanup_ frees k (cppcheck 2.10 misses it) */
	}
	r = check_p256(k->pkey, what);
	if (r < 0)
		return r; /* cppcheck-suppress memleak ; _cleanup_ frees k (cppcheck 2.10 misses it) */
	*ret = TAKE_PTR(k);
	return 0;
}

int sig_openssl_privkey_load(const char *path, struct sig_openssl_key **ret)
{
	return key_load(path, true, ret);
}

int sig_openssl_pubkey_load(const char *path, struct sig_openssl_key **ret)
{
	return key_load(path, false, ret);
}

int sig_openssl_sign(const struct sig_openssl_key *k, const uint8_t digest[SIG_SHA256_LEN],
		     uint8_t out[SIG_MAX_LEN], size_t *ret_len)
{
	_cleanup_(evp_pkey_ctx_freep) EVP_PKEY_CTX *ctx = NULL;
	size_t len = SIG_MAX_LEN;

	ctx = EVP_PKEY_CTX_new(k->pkey, NULL);
	if (!ctx)
		return -ENOMEM;
	if (EVP_PKEY_sign_init(ctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0) {
		failf_openssl("signing failed (is this a private key?)");
		return -EINVAL;
	}
	/* RFC 6979 deterministic nonces make two signatures of the same data
	 * identical (reproducible bundles). OpenSSL >= 3.2 knows "nonce-type";
	 * older providers ignore the unknown parameter and use a random nonce,
	 * which is just as secure but not reproducible. */
	{
		unsigned int deterministic = 1;
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_uint("nonce-type", &deterministic),
			OSSL_PARAM_construct_end(),
		};

		(void)EVP_PKEY_CTX_set_params(ctx, params);
		ERR_clear_error();
	}
	if (EVP_PKEY_sign(ctx, out, &len, digest, SIG_SHA256_LEN) <= 0) {
		failf_openssl("signing failed (is this a private key?)");
		return -EINVAL;
	}
	*ret_len = len;
	return 0;
}

int sig_openssl_verify(const struct sig_openssl_key *k, const uint8_t digest[SIG_SHA256_LEN],
		       const uint8_t *sig, size_t sig_len)
{
	_cleanup_(evp_pkey_ctx_freep) EVP_PKEY_CTX *ctx = NULL;
	int rc;

	ctx = EVP_PKEY_CTX_new(k->pkey, NULL);
	if (!ctx)
		return -ENOMEM;
	if (EVP_PKEY_verify_init(ctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0) {
		failf_openssl("cannot set up verification");
		return -EINVAL;
	}
	rc = EVP_PKEY_verify(ctx, sig, sig_len, digest, SIG_SHA256_LEN);
	if (rc == 1)
		return 0;
	failf_openssl("signature does not match: wrong key, or the signed data was changed");
	return -EBADMSG;
}

struct sig_openssl_sha256 *sig_openssl_sha256_new(void)
{
	struct sig_openssl_sha256 *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	return h;
}

void sig_openssl_sha256_update(struct sig_openssl_sha256 *h, const void *data, size_t n)
{
	(void)EVP_DigestUpdate(h->ctx, data, n);
}

void sig_openssl_sha256_final(struct sig_openssl_sha256 *h, uint8_t out[SIG_SHA256_LEN])
{
	unsigned len = SIG_SHA256_LEN;

	(void)EVP_DigestFinal_ex(h->ctx, out, &len);
	(void)EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
}

struct sig_openssl_sha256 *sig_openssl_sha256_free(struct sig_openssl_sha256 *h)
{
	if (h) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
	}
	return NULL;
}

int sig_openssl_random(void *buf, size_t n)
{
	if (n > INT32_MAX || RAND_bytes(buf, (int)n) != 1) {
		failf_openssl("no random bytes");
		return -EIO;
	}
	return 0;
}

int sig_openssl_aead_seal(const uint8_t key[SIG_AEAD_KEY_LEN], const uint8_t nonce[SIG_AEAD_NONCE_LEN],
			  const void *aad, size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct,
			  uint8_t ret_tag[SIG_AEAD_TAG_LEN])
{
	_cleanup_(evp_cipher_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
	int len = 0;

	if (pt_len > INT32_MAX || aad_len > INT32_MAX)
		return -EFBIG;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SIG_AEAD_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
	    (aad_len && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aad_len) != 1) ||
	    EVP_EncryptUpdate(ctx, ct, &len, pt, (int)pt_len) != 1 || EVP_EncryptFinal_ex(ctx, ct + len, &len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SIG_AEAD_TAG_LEN, ret_tag) != 1) {
		failf_openssl("AES-256-GCM encryption failed");
		return -EIO;
	}
	return 0;
}
