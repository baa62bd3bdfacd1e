/* SPDX-License-Identifier: MIT */
/*
 * test-yaml-util.c — the YAML writer of yaml-util.c (struct yaml_out):
 * the exact text of a small document with every kind of call; strings
 * always quoted; the first error kept and returned by yaml_out_finish()
 * (unbalanced ends, an unclosed collection, invalid UTF-8, the size cap,
 * a header over the cap). The reader is tested through the manifest
 * (test-manifest.c); the documents of lib/guests through test-cloudinit.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest/yaml-util.h"

static void test_document(void **state)
{
	struct yaml_out *y = NULL;
	char *t = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(yaml_out_new("#header\n", 4096, &y), 0);
	yaml_out_map_start(y);
	yaml_out_key(y, "s");
	yaml_out_str(y, "a: b # c");
	yaml_out_key(y, "n");
	yaml_out_uint(y, 18446744073709551615ULL);
	yaml_out_key(y, "b");
	yaml_out_bool(y, false);
	yaml_out_key(y, "list");
	yaml_out_seq_start(y, false);
	yaml_out_str(y, "yes");
	yaml_out_seq_start(y, true);
	yaml_out_str(y, "x");
	yaml_out_str(y, "");
	yaml_out_seq_end(y);
	yaml_out_seq_end(y);
	yaml_out_key(y, "text");
	yaml_out_text(y, "line 1\n  line 2\n");
	yaml_out_key(y, "tab");
	yaml_out_text(y, "a\tb\n"); /* no literal block can hold a tab */
	yaml_out_key(y, "nl");
	yaml_out_str(y, "a\nb\x7f");
	yaml_out_map_end(y);
	assert_int_equal(yaml_out_finish(y, &t, &n), 0);
	assert_string_equal(t, "#header\n"
			       "s: \"a: b # c\"\n"
			       "n: 18446744073709551615\n"
			       "b: false\n"
			       "list:\n"
			       "- \"yes\"\n"
			       "- [\"x\", \"\"]\n"
			       "text: |\n"
			       "  line 1\n"
			       "    line 2\n"
			       "tab: \"a\\tb\\n\"\n"
			       "nl: \"a\\nb\\x7F\"\n");
	assert_int_equal(n, strlen(t));
	free(t);
	yaml_out_free(y);
}

/* finish() returns the first error and hands nothing out. */
static void finish_fails(struct yaml_out *y, int want)
{
	char *t = NULL;
	size_t n = 3;

	assert_int_equal(yaml_out_finish(y, &t, &n), want);
	assert_null(t);
	assert_int_equal(n, 3);
	yaml_out_free(y);
}

static void test_errors(void **state)
{
	struct yaml_out *y = NULL;

	(void)state;
	/* an end without a start; later calls do nothing */
	assert_int_equal(yaml_out_new(NULL, 4096, &y), 0);
	yaml_out_map_end(y);
	yaml_out_map_start(y);
	finish_fails(y, -EINVAL);
	/* a mapping left open */
	assert_int_equal(yaml_out_new(NULL, 4096, &y), 0);
	yaml_out_map_start(y);
	yaml_out_key(y, "k");
	yaml_out_str(y, "v");
	finish_fails(y, -EINVAL);
	/* invalid UTF-8 */
	assert_int_equal(yaml_out_new(NULL, 4096, &y), 0);
	yaml_out_seq_start(y, false);
	yaml_out_str(y, "\xff");
	yaml_out_seq_end(y);
	finish_fails(y, -EINVAL);
	/* past the cap */
	assert_int_equal(yaml_out_new(NULL, 64, &y), 0);
	yaml_out_seq_start(y, false);
	for (int i = 0; i < 20; i++)
		yaml_out_str(y, "0123456789");
	yaml_out_seq_end(y);
	finish_fails(y, -EFBIG);
	/* the header alone is over it */
	y = NULL;
	assert_int_equal(yaml_out_new("0123456789", 9, &y), -EFBIG);
	assert_null(y);
	assert_null(yaml_out_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_document),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
