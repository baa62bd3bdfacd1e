/* SPDX-License-Identifier: MIT */
/*
 * test-sig.c — the two crypto backends against each other: OpenSSL signs,
 * mbedtls verifies (and OpenSSL too); any changed digest or signature
 * byte, a wrong key, a wrong curve or key type is refused; SHA-256 and
 * AES-256-GCM agree across backends. Keys: tests/data/keys/ (test-only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bundle/sig-mbedtls.h"
#include "bundle/sig-openssl.h"
#include "util.h"

#define KEYS "tests/data/keys/"

static void digest_of(const char *s, uint8_t out[SIG_SHA256_LEN])
{
	sig_sha256(s, strlen(s), out);
}

static void test_sha256_known_answer(void **state)
{
	/* FIPS 180-2 appendix B.1: SHA-256("abc") */
	static const char want[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	uint8_t d[SIG_SHA256_LEN];
	char hex[2 * SIG_SHA256_LEN + 1];

	(void)state;
	digest_of("abc", d);
	sig_hex(d, hex);
	assert_string_equal(hex, want);
}

static void test_sha256_backends_agree(void **state)
{
	static const size_t sizes[] = { 0, 1, 55, 56, 63, 64, 65, 1000, 1 << 20 };
	_cleanup_free_ uint8_t *data = malloc(1 << 20);

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < (1 << 20); i++)
		data[i] = (uint8_t)(i * 131 + (i >> 8));
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
		_cleanup_(sig_openssl_sha256_freep) struct sig_openssl_sha256 *o = sig_openssl_sha256_new();
		_cleanup_(sig_sha256_freep) struct sig_sha256 *m = sig_sha256_new();
		uint8_t a[SIG_SHA256_LEN], b[SIG_SHA256_LEN], c[SIG_SHA256_LEN];
		size_t half = sizes[i] / 2;

		assert_non_null(o);
		assert_non_null(m);
		sig_openssl_sha256_update(o, data, sizes[i]);
		sig_openssl_sha256_final(o, a);
		/* streaming in two pieces gives the same digest */
		sig_sha256_update(m, data, half);
		sig_sha256_update(m, data + half, sizes[i] - half);
		sig_sha256_final(m, b);
		sig_sha256(data, sizes[i], c);
		assert_memory_equal(a, b, SIG_SHA256_LEN);
		assert_memory_equal(a, c, SIG_SHA256_LEN);
	}
}

static void test_hex_roundtrip(void **state)
{
	uint8_t d[SIG_SHA256_LEN], e[SIG_SHA256_LEN];
	char hex[2 * SIG_SHA256_LEN + 1];

	(void)state;
	digest_of("x", d);
	sig_hex(d, hex);
	assert_int_equal(sig_unhex(hex, e), 0);
	assert_memory_equal(d, e, sizeof(d));
	hex[10] = 'g';
	assert_int_equal(sig_unhex(hex, e), -EINVAL);
	hex[10] = 0;
	assert_int_equal(sig_unhex(hex, e), -EINVAL);
}

static void sign_with(const char *keyfile, const uint8_t digest[SIG_SHA256_LEN], uint8_t sig[SIG_MAX_LEN],
		      size_t *len)
{
	_cleanup_(sig_openssl_key_freep) struct sig_openssl_key *k = NULL;

	assert_int_equal(sig_openssl_privkey_load(keyfile, &k), 0);
	assert_int_equal(sig_openssl_sign(k, digest, sig, len), 0);
	assert_in_range(*len, 8, 72);
}

static void test_openssl_signs_mbedtls_verifies(void **state)
{
	_cleanup_(sig_pubkey_freep) struct sig_pubkey *pub = NULL;
	_cleanup_(sig_openssl_key_freep) struct sig_openssl_key *opub = NULL;
	uint8_t d[SIG_SHA256_LEN], sig[SIG_MAX_LEN];
	size_t len;

	(void)state;
	digest_of("SHA256SUMS contents", d);
	sign_with(KEYS "test-only-p256.key", d, sig, &len);
	assert_int_equal(sig_pubkey_load(KEYS "test-only-p256.pub", &pub), 0);
	assert_int_equal(sig_verify(pub, d, sig, len), 0);
	assert_int_equal(sig_openssl_pubkey_load(KEYS "test-only-p256.pub", &opub), 0);
	assert_int_equal(sig_openssl_verify(opub, d, sig, len), 0);

	/* the same key in SEC 1 form signs as well */
	sign_with(KEYS "test-only-p256-sec1.key", d, sig, &len);
	assert_int_equal(sig_verify(pub, d, sig, len), 0);
}

static void test_tampering_is_refused(void **state)
{
	_cleanup_(sig_pubkey_freep) struct sig_pubkey *pub = NULL;
	_cleanup_(sig_openssl_key_freep) struct sig_openssl_key *opub = NULL;
	uint8_t d[SIG_SHA256_LEN], sig[SIG_MAX_LEN + 1];
	size_t len;

	(void)state;
	digest_of("data", d);
	sign_with(KEYS "test-only-p256.key", d, sig, &len);
	assert_int_equal(sig_pubkey_load(KEYS "test-only-p256.pub", &pub), 0);
	assert_int_equal(sig_openssl_pubkey_load(KEYS "test-only-p256.pub", &opub), 0);

	/* every bit of the digest matters */
	for (size_t i = 0; i < SIG_SHA256_LEN; i++) {
		d[i] ^= 0x01;
		sig_error_clear();
		assert_int_equal(sig_verify(pub, d, sig, len), -EBADMSG);
		assert_non_null(strstr(sig_error(), "does not match"));
		assert_int_equal(sig_openssl_verify(opub, d, sig, len), -EBADMSG);
		d[i] ^= 0x01;
	}
	/* every byte of the signature matters */
	for (size_t i = 0; i < len; i++) {
		sig[i] ^= 0x80;
		assert_int_equal(sig_verify(pub, d, sig, len), -EBADMSG);
		sig[i] ^= 0x80;
	}
	assert_int_equal(sig_verify(pub, d, sig, len), 0);
	/* truncated, empty, or with a trailing byte */
	assert_int_equal(sig_verify(pub, d, sig, len - 1), -EBADMSG);
	assert_int_equal(sig_verify(pub, d, sig, 0), -EBADMSG);
	sig[len] = 0;
	assert_int_equal(sig_verify(pub, d, sig, len + 1), -EBADMSG);
}

static void test_wrong_key_is_refused(void **state)
{
	_cleanup_(sig_pubkey_freep) struct sig_pubkey *other = NULL;
	uint8_t d[SIG_SHA256_LEN], sig[SIG_MAX_LEN];
	size_t len;

	(void)state;
	digest_of("data", d);
	sign_with(KEYS "test-only-p256.key", d, sig, &len);
	assert_int_equal(sig_pubkey_load(KEYS "test-only-other-p256.pub", &other), 0);
	assert_int_equal(sig_verify(other, d, sig, len), -EBADMSG);
}

static void test_other_curves_and_types_are_refused(void **state)
{
	static const struct {
		const char *file, *needle;
	} cases[] = {
		{ KEYS "test-only-p384.pub", "P-256" },
		{ KEYS "test-only-rsa.pub", "only ECDSA P-256" },
		{ KEYS "test-only-ed25519.pub", "SubjectPublicKeyInfo" }, /* mbedtls 2.28 cannot even parse it */
		{ KEYS "README.md", "SubjectPublicKeyInfo" },
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct sig_pubkey *k = NULL;
		struct sig_openssl_key *o = NULL;

		sig_error_clear();
		assert_int_equal(sig_pubkey_load(cases[i].file, &k), -EINVAL);
		assert_null(k);
		if (!strstr(sig_error(), cases[i].needle))
			fail_msg("%s: error '%s' lacks '%s'", cases[i].file, sig_error(), cases[i].needle);
		sig_error_clear();
		assert_int_equal(sig_openssl_pubkey_load(cases[i].file, &o), -EINVAL);
		assert_null(o);
	}
	/* a public key is not a private key */
	{
		struct sig_openssl_key *o = NULL;

		assert_int_equal(sig_openssl_privkey_load(KEYS "test-only-p256.pub", &o), -EINVAL);
		assert_int_equal(sig_pubkey_load(KEYS "no-such-file.pub", (struct sig_pubkey **)&o), -ENOENT);
	}
}

static void test_aead_cross_backend(void **state)
{
	static const char msg[] = "root_password\0hunter2\0";
	uint8_t key[SIG_AEAD_KEY_LEN], nonce[SIG_AEAD_NONCE_LEN], tag[SIG_AEAD_TAG_LEN];
	uint8_t ct[sizeof(msg)], pt[sizeof(msg)];
	static const char aad[] = "context";

	(void)state;
	assert_int_equal(sig_openssl_random(key, sizeof(key)), 0);
	assert_int_equal(sig_openssl_random(nonce, sizeof(nonce)), 0);
	assert_int_equal(sig_openssl_aead_seal(key, nonce, aad, sizeof(aad), (const uint8_t *)msg, sizeof(msg), ct, tag),
			 0);
	assert_memory_not_equal(ct, msg, sizeof(msg));
	assert_int_equal(sig_aead_open(key, nonce, aad, sizeof(aad), ct, sizeof(ct), tag, pt), 0);
	assert_memory_equal(pt, msg, sizeof(msg));

	ct[3] ^= 1;
	assert_int_equal(sig_aead_open(key, nonce, aad, sizeof(aad), ct, sizeof(ct), tag, pt), -EBADMSG);
	ct[3] ^= 1;
	tag[15] ^= 1;
	assert_int_equal(sig_aead_open(key, nonce, aad, sizeof(aad), ct, sizeof(ct), tag, pt), -EBADMSG);
	tag[15] ^= 1;
	assert_int_equal(sig_aead_open(key, nonce, aad, sizeof(aad) - 1, ct, sizeof(ct), tag, pt), -EBADMSG);
	key[0] ^= 1;
	assert_int_equal(sig_aead_open(key, nonce, aad, sizeof(aad), ct, sizeof(ct), tag, pt), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_known_answer),
		cmocka_unit_test(test_sha256_backends_agree),
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_openssl_signs_mbedtls_verifies),
		cmocka_unit_test(test_tampering_is_refused),
		cmocka_unit_test(test_wrong_key_is_refused),
		cmocka_unit_test(test_other_curves_and_types_are_refused),
		cmocka_unit_test(test_aead_cross_backend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
