/* SPDX-License-Identifier: MIT */
/*
 * test-pve-form.c — the Proxmox client's offline parts: form encoding and
 * its quirks (booleans 1/0, sshkeys percent-encoded twice), UPID parsing,
 * certificate fingerprints, the jittered backoff, and the refusals that
 * need no server (no trust configured, nothing listening).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pve/http.h"
#include "pve/pve.h"

static char *encode(struct pve_params *p)
{
	char *s = NULL;

	assert_int_equal(pve_form_encode(p, &s), 0);
	return s;
}

static void test_form_basic(void **state)
{
	(void)state;
	struct pve_params p = {};
	char *s;

	assert_int_equal(pve_params_add(&p, "clustername", "lab"), 0);
	assert_int_equal(pve_params_add(&p, "link0", "address=10.0.0.11,priority=5"), 0);
	assert_int_equal(pve_params_add(&p, "comment", "a b&c=d+e/f~g_h.i-j"), 0);
	s = encode(&p);
	assert_string_equal(s, "clustername=lab&link0=address%3D10.0.0.11%2Cpriority%3D5"
			       "&comment=a%20b%26c%3Dd%2Be%2Ff~g_h.i-j");
	free(s);
	pve_params_done(&p);
	assert_int_equal(p.n, 0);

	s = encode(&p);
	assert_string_equal(s, "");
	free(s);
}

static void test_form_booleans_ints(void **state)
{
	(void)state;
	struct pve_params p = {};
	char *s;

	assert_int_equal(pve_params_add_bool(&p, "force", true), 0);
	assert_int_equal(pve_params_add_bool(&p, "restart", false), 0);
	assert_int_equal(pve_params_add_int(&p, "vmid", 9000), 0);
	assert_int_equal(pve_params_add_int(&p, "delta", -5), 0);
	s = encode(&p);
	/* Proxmox's schema accepts exactly "1" and "0", never true/false. */
	assert_string_equal(s, "force=1&restart=0&vmid=9000&delta=-5");
	free(s);
	pve_params_done(&p);
}

static void test_form_sshkeys_twice(void **state)
{
	(void)state;
	struct pve_params p = {};
	char *s;

	assert_int_equal(pve_params_add_urlencoded(&p, "sshkeys", "ssh-ed25519 AAAA+/= me@host\n"), 0);
	/* After form decoding the value is "ssh-ed25519%20AAAA%2B%2F%3D%20me%40host%0A",
	 * which matches format "urlencoded" ([-%a-zA-Z0-9_.!~*'()]*). */
	assert_string_equal(p.items[0].value, "ssh-ed25519%20AAAA%2B%2F%3D%20me%40host%0A");
	s = encode(&p);
	assert_string_equal(s, "sshkeys=ssh-ed25519%2520AAAA%252B%252F%253D%2520me%2540host%250A");
	free(s);
	pve_params_done(&p);
}

static void test_form_limits(void **state)
{
	(void)state;
	struct pve_params p = {};

	for (int i = 0; i < PVE_MAX_PARAMS; i++)
		assert_int_equal(pve_params_add_int(&p, "k", i), 0);
	assert_int_equal(pve_params_add(&p, "one-too-many", "x"), -E2BIG);
	pve_params_done(&p);
}

static void test_escape_utf8(void **state)
{
	(void)state;
	char *s = NULL;

	assert_int_equal(pve_escape("\xc3\xa4\x01%", &s), 0);
	assert_string_equal(s, "%C3%A4%01%25");
	free(s);
}

static void test_upid(void **state)
{
	(void)state;
	struct pve_upid u;

	assert_int_equal(pve_upid_parse("UPID:pve1:0000ABCD:00F00F00:6B066AAA:clusterjoin::root@pam:", &u), 0);
	assert_string_equal(u.node, "pve1");
	assert_int_equal(u.pid, 0xABCD);
	assert_int_equal(u.pstart, 0xF00F00);
	assert_int_equal(u.starttime, 0x6B066AAA);
	assert_string_equal(u.type, "clusterjoin");
	assert_string_equal(u.id, "");
	assert_string_equal(u.user, "root@pam");

	/* pstart may have 9 digits (uptime over 497 days) */
	assert_int_equal(pve_upid_parse("UPID:n-1:00000001:123456789:00000002:qmcreate:100:root@pam!tok:", &u), 0);
	assert_int_equal(u.pstart, 0x123456789ULL);
	assert_string_equal(u.id, "100");
	assert_string_equal(u.user, "root@pam!tok");

	assert_int_equal(pve_upid_parse("UPID:pve1:0000ABCD:00F00F00:6B066AAA:clusterjoin::root@pam", &u), -EINVAL);
	assert_int_equal(pve_upid_parse("UPID:pve1:ABCD:00F00F00:6B066AAA:x::root@pam:", &u), -EINVAL);
	assert_int_equal(pve_upid_parse("UPID:-pve:0000ABCD:00F00F00:6B066AAA:x::root@pam:", &u), -EINVAL);
	assert_int_equal(pve_upid_parse("UPID:pve1:0000ABCG:00F00F00:6B066AAA:x::root@pam:", &u), -EINVAL);
	assert_int_equal(pve_upid_parse("UPID:pve1:0000ABCD:00F00F00:6B066AAA:x/y::root@pam:", &u), -EINVAL);
	assert_int_equal(pve_upid_parse("UPID:pve1:0000ABCD:00F00F00:6B066AAA:x::root@pam:extra", &u), -EINVAL);
	assert_int_equal(pve_upid_parse("", &u), -EINVAL);
	assert_int_equal(pve_upid_parse(NULL, &u), -EINVAL);
}

static void test_fingerprint(void **state)
{
	(void)state;
	static const char fp_text[] =
		"E7:54:6D:62:44:DA:C3:6A:E3:F1:17:31:D6:F6:79:AE:2F:7C:2E:76:26:D8:17:F9:71:90:F1:97:12:63:1B:E2";
	uint8_t fp[HTTP_FP_LEN], fp2[HTTP_FP_LEN];
	char buf[HTTP_FP_TEXT_MAX];

	assert_int_equal(http_fp_parse(fp_text, fp), 0);
	assert_int_equal(fp[0], 0xE7);
	assert_int_equal(fp[31], 0xE2);
	http_fp_format(fp, buf, sizeof(buf));
	assert_string_equal(buf, fp_text);
	/* lower case and without colons parse the same */
	assert_int_equal(http_fp_parse("e7546d6244dac36ae3f11731d6f679ae2f7c2e7626d817f97190f19712631be2", fp2), 0);
	assert_memory_equal(fp, fp2, HTTP_FP_LEN);
	assert_int_equal(http_fp_parse("E7:54", fp2), -EINVAL);
	assert_int_equal(http_fp_parse("E7:54:6D:62:44:DA:C3:6A:E3:F1:17:31:D6:F6:79:AE:2F:7C:2E:76:26:D8:17:F9:71:90:F1:97:12:63:1B:E2:00",
				       fp2), -EINVAL);
	assert_int_equal(http_fp_parse("E7:54:6D:62:44:DA:C3:6A:E3:F1:17:31:D6:F6:79:AE:2F:7C:2E:76:26:D8:17:F9:71:90:F1:97:12:63:1B:EX",
				       fp2), -EINVAL);
	assert_int_equal(http_fp_parse("E7:54:6D:62:44:DA:C3:6A:E3:F1:17:31:D6:F6:79:AE:2F:7C:2E:76:26:D8:17:F9:71:90:F1:97:12:63:1B:E2:",
				       fp2), -EINVAL);
}

static void test_backoff(void **state)
{
	(void)state;
	uint64_t a = 42, b = 42, c = 43;
	bool differs = false;

	for (unsigned i = 0; i < 12; i++) {
		uint64_t da = http_backoff_ms(&a, i, 100, 2000);
		uint64_t db = http_backoff_ms(&b, i, 100, 2000);
		uint64_t dc = http_backoff_ms(&c, i, 100, 2000);
		uint64_t cap = 100u << (i < 5 ? i : 5);

		if (cap > 2000)
			cap = 2000;
		/* same seed, same delays: tests are deterministic */
		assert_int_equal(da, db);
		/* full jitter: within [0, min(max, base * 2^attempt)] */
		assert_true(da <= cap);
		differs |= da != dc;
	}
	assert_true(differs);
	assert_int_equal(http_backoff_ms(&a, 3, 0, 0), 0);
}

/* With no trust configured a transport refuses before connecting. */
static void test_no_trust(void **state)
{
	(void)state;
	struct http_transport *t = http_transport_new("https://127.0.0.1:1", NULL);
	struct http_request req = { .method = HTTP_GET, .path = "/" };
	struct http_response resp = {};

	assert_non_null(t);
	assert_false(http_transport_has_trust(t));
	assert_int_equal(http_request(t, &req, &resp), -EKEYREJECTED);
	assert_non_null(strstr(http_transport_error(t), "no trust configured"));
	assert_int_equal(http_transport_attempts(t), 0);
	http_transport_free(t);

	assert_null(http_transport_new("http://127.0.0.1:1", NULL));
}

/* Nothing listens: connection errors are retried, bounded by max_attempts. */
static void test_connect_retries(void **state)
{
	(void)state;
	struct http_opts o = { .max_attempts = 3, .backoff_base_ms = 1, .backoff_max_ms = 2, .seed = 1,
			       .connect_timeout_ms = 500 };
	struct http_transport *t = http_transport_new("https://127.0.0.1:1", &o);
	struct http_request req = { .method = HTTP_POST, .path = "/x", .body = "a=b", .body_len = 3 };
	struct http_response resp = {};
	uint8_t fp[HTTP_FP_LEN] = { 1 };

	assert_non_null(t);
	assert_int_equal(http_transport_pin(t, fp), 0);
	assert_int_equal(http_request(t, &req, &resp), -ECONNREFUSED);
	assert_int_equal(http_transport_attempts(t), 3);
	assert_non_null(strstr(http_transport_error(t), "cannot connect"));

	/* a deadline in the past stops before the first attempt */
	http_transport_set_deadline(t, http_now_ms() - 1);
	assert_int_equal(http_request(t, &req, &resp), -ETIMEDOUT);
	assert_int_equal(http_transport_attempts(t), 0);
	http_transport_free(t);
}

static void test_client_token_format(void **state)
{
	(void)state;
	struct pve_client *c = pve_client_new("pve1", "https://127.0.0.1:1", NULL);

	assert_non_null(c);
	assert_int_equal(pve_use_token(c, "root@pam!devopslab", "0000-1111"), 0);
	assert_int_equal(pve_use_token(c, "rootpam-no-realm", "x"), -EINVAL);
	assert_string_equal(pve_client_node(c), "pve1");
	pve_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_basic),
		cmocka_unit_test(test_form_booleans_ints),
		cmocka_unit_test(test_form_sshkeys_twice),
		cmocka_unit_test(test_form_limits),
		cmocka_unit_test(test_escape_utf8),
		cmocka_unit_test(test_upid),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_no_trust),
		cmocka_unit_test(test_connect_retries),
		cmocka_unit_test(test_client_token_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
