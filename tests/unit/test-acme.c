/* SPDX-License-Identifier: MIT */
/*
 * test-acme.c — the ACME client's parts that need no server: base64url,
 * the RFC 7638 thumbprint of a P-256 key and the dns-01 TXT value (the
 * expected values computed outside, by Python's hashlib from the key's
 * public point as `openssl pkey -pubout` prints it), the reading of
 * problem documents and authorizations. t-edge.sh runs the whole
 * exchange against Let's Encrypt's test server (pebble), which checks the
 * JWS signatures and the key authorizations for real.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "edge/acme.h"
#include "util.h"

static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\n"
			      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeub7ZyAy4qYBWkif\n"
			      "VtY6tdwd4xCnkkGgQzZCpU4ePnGhRANCAARhtgoIuEUtueQxvG8TUigA51zKDCcH\n"
			      "tpenkwnvE6AOUB33eakapKW5aljs9AS4LfBGUESHTRI3Mn4MgpgzvvYL\n"
			      "-----END PRIVATE KEY-----\n";

static void test_b64url(void **state)
{
	char *s = NULL;

	(void)state;
	assert_int_equal(acme_b64url("\xfb\xff\xfe", 3, &s), 0);
	assert_string_equal(s, "-__-"); /* '+' and '/' replaced */
	free(s);
	assert_int_equal(acme_b64url("a", 1, &s), 0);
	assert_string_equal(s, "YQ"); /* no padding */
	free(s);
}

static void test_thumbprint(void **state)
{
	char t[ACME_B64_SHA256], v[ACME_B64_SHA256];
	char *k = NULL;

	(void)state;
	assert_int_equal(acme_thumbprint(key_pem, t), 0);
	assert_string_equal(t, "ufZzG3B-PR85DGsFboBBiCB4yqWEoJbCBPgQ4bi69mI");
	assert_int_equal(acme_dns01_value("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
					  "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", v),
			 0);
	assert_string_equal(v, "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8");
	assert_int_equal(acme_dns01_value("a.b", t, v), -EINVAL); /* not base64url */
	assert_int_equal(acme_dns01_value("", t, v), -EINVAL);
	/* a new key is a P-256 key with a thumbprint of 43 characters */
	assert_int_equal(acme_key_new(&k), 0);
	assert_int_equal(acme_thumbprint(k, t), 0);
	assert_int_equal(strlen(t), 43);
	explicit_wipe(k, strlen(k));
	free(k);
	assert_int_equal(acme_thumbprint("not a key", t), -EINVAL);
}

static void test_problem(void **state)
{
	static const char bad_nonce[] = "{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"JWS has an "
					"invalid anti-replay nonce\",\"status\":400}";
	static const char rejected[] = "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"no "
				       "such TLD\"}";
	char msg[256];

	(void)state;
	assert_int_equal(acme_decode_problem(bad_nonce, strlen(bad_nonce), msg, sizeof(msg)), -EAGAIN);
	assert_int_equal(acme_decode_problem(rejected, strlen(rejected), msg, sizeof(msg)), -EPROTO);
	assert_string_equal(msg, "rejectedIdentifier: no such TLD");
	assert_int_equal(acme_decode_problem("{\"status\":\"valid\"}", 18, msg, sizeof(msg)), 0);
	assert_int_equal(acme_decode_problem("<html>", 6, msg, sizeof(msg)), 0);
	assert_int_equal(acme_decode_problem(NULL, 0, msg, sizeof(msg)), 0);
}

static void test_authz(void **state)
{
	struct json_object *o = json_tokener_parse(
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"home.arpa\"},\"wildcard\":true,"
		"\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://a/1\",\"token\":\"t1\"},"
		"{\"type\":\"dns-01\",\"url\":\"https://a/2\",\"token\":\"t2\",\"status\":\"invalid\","
		"\"error\":{\"detail\":\"no TXT record\"}}]}");
	struct json_object *bad = json_tokener_parse("{\"status\":\"valid\",\"identifier\":{\"type\":\"ip\",\"value\":"
						     "\"10.0.0.1\"},\"challenges\":[]}");
	struct acme_authz a;

	(void)state;
	assert_int_equal(acme_decode_authz(o, &a), 0);
	assert_string_equal(a.status, "pending");
	assert_string_equal(a.name, "home.arpa");
	assert_true(a.wildcard);
	assert_string_equal(a.chall_url, "https://a/2");
	assert_string_equal(a.chall_token, "t2");
	assert_string_equal(a.chall_error, "no TXT record");
	assert_int_equal(acme_decode_authz(bad, &a), -EBADMSG);
	json_object_put(o);
	json_object_put(bad);
}

static void test_client_new(void **state)
{
	struct acme_client *a = NULL;
	struct acme_cfg cfg = { .directory = "http://acme.example/dir", .ca_file = "/dev/null", .account_key = key_pem };

	(void)state;
	assert_int_equal(acme_client_new(&cfg, &a), -EINVAL); /* not https */
	cfg.directory = "https://acme.example";
	assert_int_equal(acme_client_new(&cfg, &a), -EINVAL); /* no path */
	cfg.directory = "https://acme.example/dir";
	cfg.account_key = "no key";
	assert_int_equal(acme_client_new(&cfg, &a), -EINVAL);
	cfg.account_key = key_pem;
	assert_int_equal(acme_client_new(&cfg, &a), 0);
	acme_client_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),	     cmocka_unit_test(test_thumbprint), cmocka_unit_test(test_problem),
		cmocka_unit_test(test_authz),	     cmocka_unit_test(test_client_new),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
