/* SPDX-License-Identifier: MIT */
/*
 * test-secret.c — secrets.enc: the clear-text file parser, keys, and the
 * AES-256-GCM round trip (sealed with OpenSSL, opened with mbedtls); any
 * changed byte, a wrong key or a different manifest is refused; error
 * messages never contain a value.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bundle/secret.h"
#include "bundle/sig-mbedtls.h"
#include "bundle/sig-openssl.h"
#include "util.h"

static const char good[] = "# comment\n"
			   "\n"
			   "root_password=s3cret = with spaces \n"
			   "k3s_token = tok-123\r\n"
			   "dns.admin-password=\n"
			   "last=no newline";

static void test_parse(void **state)
{
	_cleanup_(secrets_freep) struct secrets *s = NULL;

	(void)state;
	assert_int_equal(secrets_parse(good, strlen(good), &s), 0);
	assert_int_equal(secrets_count(s), 4);
	/* sorted by name */
	assert_string_equal(secrets_name(s, 0), "dns.admin-password");
	assert_string_equal(secrets_name(s, 3), "root_password");
	/* the value is the rest of the line, verbatim (but for CR LF) */
	assert_string_equal(secrets_get(s, "root_password"), "s3cret = with spaces ");
	assert_string_equal(secrets_get(s, "k3s_token"), " tok-123");
	assert_string_equal(secrets_get(s, "dns.admin-password"), "");
	assert_string_equal(secrets_get(s, "last"), "no newline");
	assert_null(secrets_get(s, "missing"));
	assert_null(secrets_name(s, 4));
}

static void test_parse_refusals(void **state)
{
	static const struct {
		const char *text, *needle;
	} bad[] = {
		{ "novalue\n", "line 1: not NAME=VALUE" },
		{ "ok=1\n9bad=hunter2\n", "line 2: not a valid secret name" },
		{ "=hunter2\n", "line 1: not a valid secret name" },
		{ "a b=hunter2\n", "line 1: not a valid secret name" },
		{ "x=hunter2\nx=hunter2\n", "'x' is given twice" },
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct secrets *s = NULL;
		int r = secrets_parse(bad[i].text, strlen(bad[i].text), &s);

		assert_int_equal(r, -EINVAL);
		assert_null(s);
		if (!strstr(secret_error(), bad[i].needle))
			fail_msg("case %zu: '%s' lacks '%s'", i, secret_error(), bad[i].needle);
		/* never the value in a message */
		assert_null(strstr(secret_error(), "hunter2"));
	}
}

static void test_keys(void **state)
{
	static const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
	uint8_t key[SECRET_KEY_LEN], raw[SECRET_KEY_LEN];
	char line[200];

	(void)state;
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)i;
	assert_int_equal(secret_key_parse(hex, 64, key), 0);
	assert_memory_equal(key, raw, sizeof(raw));
	snprintf(line, sizeof(line), "%s\n", hex);
	assert_int_equal(secret_key_parse(line, 65, key), 0);
	assert_memory_equal(key, raw, sizeof(raw));
	assert_int_equal(secret_key_parse(raw, sizeof(raw), key), 0); /* 32 raw bytes */
	assert_int_equal(secret_key_parse(hex, 63, key), -EINVAL);
	assert_int_equal(secret_key_parse("zz", 2, key), -EINVAL);
	snprintf(line, sizeof(line), "ro quiet devopslab.secret_key=%s console=ttyS0", hex);
	memset(key, 0, sizeof(key));
	assert_int_equal(secret_key_from_cmdline(line, key), 0);
	assert_memory_equal(key, raw, sizeof(raw));
	assert_int_equal(secret_key_from_cmdline("ro quiet devopslab.secret_keyx=1", key), -ENOENT);
	assert_int_equal(secret_key_from_cmdline("devopslab.secret_key=abc", key), -EINVAL);
}

struct sealed {
	uint8_t key[SECRET_KEY_LEN], manifest[32];
	uint8_t *blob;
	size_t size;
};

static void seal(struct sealed *x)
{
	_cleanup_(secrets_freep) struct secrets *s = NULL;

	assert_int_equal(sig_openssl_random(x->key, sizeof(x->key)), 0);
	sig_sha256("manifest", 8, x->manifest);
	assert_int_equal(secrets_parse(good, strlen(good), &s), 0);
	assert_int_equal(secret_seal(s, x->key, x->manifest, &x->blob, &x->size), 0);
}

static void test_round_trip(void **state)
{
	_cleanup_(secrets_freep) struct secrets *s = NULL;
	struct sealed x;

	(void)state;
	seal(&x);
	assert_memory_equal(x.blob, SECRET_MAGIC, SECRET_MAGIC_LEN);
	/* no value in clear text */
	assert_null(memmem(x.blob, x.size, "s3cret", 6));
	assert_null(memmem(x.blob, x.size, "tok-123", 7));
	assert_int_equal(secret_open(x.blob, x.size, x.key, x.manifest, &s), 0);
	assert_int_equal(secrets_count(s), 4);
	assert_string_equal(secrets_get(s, "root_password"), "s3cret = with spaces ");
	assert_string_equal(secrets_get(s, "last"), "no newline");
	free(x.blob);
}

static void test_two_seals_differ(void **state)
{
	struct sealed a, b;

	(void)state;
	seal(&a);
	seal(&b); /* a fresh random nonce every time */
	assert_int_equal(a.size, b.size);
	assert_memory_not_equal(a.blob + SECRET_MAGIC_LEN, b.blob + SECRET_MAGIC_LEN, 12);
	free(a.blob);
	free(b.blob);
}

static void test_tampering_is_refused(void **state)
{
	struct secrets *s = NULL;
	uint8_t other[32];
	struct sealed x;

	(void)state;
	seal(&x);
	/* every byte: magic, nonce, ciphertext, tag */
	for (size_t i = 0; i < x.size; i++) {
		x.blob[i] ^= 0x20;
		assert_int_equal(secret_open(x.blob, x.size, x.key, x.manifest, &s), -EBADMSG);
		assert_null(s);
		x.blob[i] ^= 0x20;
	}
	/* truncated */
	assert_int_equal(secret_open(x.blob, x.size - 1, x.key, x.manifest, &s), -EBADMSG);
	assert_int_equal(secret_open(x.blob, 10, x.key, x.manifest, &s), -EBADMSG);
	/* wrong key */
	x.key[31] ^= 1;
	assert_int_equal(secret_open(x.blob, x.size, x.key, x.manifest, &s), -EBADMSG);
	assert_non_null(strstr(secret_error(), "authentication failed"));
	x.key[31] ^= 1;
	/* bound to its manifest: another manifest's digest does not open it */
	sig_sha256("another manifest", 16, other);
	assert_int_equal(secret_open(x.blob, x.size, x.key, other, &s), -EBADMSG);
	assert_null(s);
	assert_int_equal(secret_open(x.blob, x.size, x.key, x.manifest, &s), 0);
	secrets_free(s);
	free(x.blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_two_seals_differ),
		cmocka_unit_test(test_tampering_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
