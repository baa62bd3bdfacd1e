/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"

static void test_take_ptr(void **state)
{
	(void)state;
	_cleanup_free_ char *p = strdup("x");
	char *q = TAKE_PTR(p);

	assert_null(p);
	assert_string_equal(q, "x");
	free(q);
}

static void test_streq_ptr(void **state)
{
	(void)state;
	assert_true(streq_ptr(NULL, NULL));
	assert_false(streq_ptr("a", NULL));
	assert_true(streq_ptr("a", "a"));
	assert_false(streq_ptr("a", "b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_ptr),
		cmocka_unit_test(test_streq_ptr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
