/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base64.h"
#include "util.h"

static void check(const char *in, const char *want)
{
	_cleanup_free_ uint8_t *out = NULL;
	size_t n = 0;

	assert_int_equal(base64_decode(in, strlen(in), &out, &n), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
}

static void test_rfc4648_vectors(void **state)
{
	(void)state;
	/* RFC 4648 §10 */
	check("", "");
	check("Zg==", "f");
	check("Zm8=", "fo");
	check("Zm9v", "foo");
	check("Zm9vYg==", "foob");
	check("Zm9vYmE=", "fooba");
	check("Zm9vYmFy", "foobar");
	check("+/+/", "\xfb\xff\xbf");
}

static void test_refusals(void **state)
{
	static const char *const bad[] = { "Zg=", "Zg", "Z===", "=Zg=", "Zg=a", "Zm9v\n", "Zm9-", "Zg==Zg==", "Z" };
	uint8_t *out = NULL;
	size_t n;

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		if (base64_decode(bad[i], strlen(bad[i]), &out, &n) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
