/* SPDX-License-Identifier: MIT */
/*
 * test-journal.c — append and read back, a torn last line after a "power
 * cut", a changed params hash, locking, limits, malformed records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "plan/journal.h"
#include "plan/json-util.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static char tmpdir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-journal.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/journal", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	(void)unlink(path);
	assert_int_equal(rmdir(tmpdir), 0);
	return 0;
}

static struct journal_record rec(const char *id, const char *hash)
{
	struct journal_record r = {
		.id = (char *)id,
		.phase = (char *)"install",
		.node = (char *)"devops-node-01",
		.time = (char *)"2026-11-25T05:00:00Z",
		.status = JOURNAL_STATUS_APPLIED,
		.elapsed_ms = 42,
	};

	memcpy(r.hash, hash, sizeof(r.hash));
	return r;
}

static void set_hash(struct journal_record *r, const char *hash)
{
	memcpy(r->hash, hash, sizeof(r->hash));
}

static void assert_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("expected prefix\n%s\ngot\n%s", prefix, s);
}

static char *slurp(size_t *ret_size)
{
	FILE *f = fopen(path, "re");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	*ret_size = n;
	return buf;
}

static void append_raw(const char *data)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void test_append_and_read(void **state)
{
	struct journal *j = NULL;
	struct journal_record r = rec("node/devops-node-01/disk/partition", H1);
	struct json_object *result = json_object_new_object();
	const struct journal_record *got;
	size_t size;
	char *text;
	struct stat st;

	(void)state;
	assert_int_equal(journal_open(path, 0, &j), -ENOENT); /* no JOURNAL_CREATE */
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &j), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	set_hash(&r, H1);
	assert_int_equal(json_add_string(result, "part_uuid", "6c0a0b1e-0000-4000-8000-000000000001"), 0);
	r.result = result;
	assert_int_equal(journal_append(j, &r), 0);
	r.result = NULL;
	r.id = (char *)"cluster/vm/devops-k3s-worker-01";
	r.node = NULL;
	r.time = NULL; /* the journal stamps it */
	r.status = JOURNAL_STATUS_FOUND;
	assert_int_equal(journal_append(j, &r), 0);
	journal_free(j);
	json_object_put(result);

	text = slurp(&size);
	assert_prefix(text,
		      "{\"v\":1,\"id\":\"node/devops-node-01/disk/partition\",\"phase\":\"install\","
			    "\"node\":\"devops-node-01\",\"time\":\"2026-11-25T05:00:00Z\",\"status\":\"applied\","
			    "\"hash\":\"" H1 "\",\"elapsed_ms\":42,"
			    "\"result\":{\"part_uuid\":\"6c0a0b1e-0000-4000-8000-000000000001\"}}\n"
			    "{\"v\":1,\"id\":\"cluster/vm/devops-k3s-worker-01\",\"phase\":\"install\",\"node\":null,"
			    "\"time\":\"" /* prefix only, the time is now */);
	free(text);
	assert_int_equal(size > 300, true);

	assert_int_equal(journal_open(path, JOURNAL_READ_ONLY, &j), 0);
	assert_int_equal(journal_n_records(j), 2);
	assert_false(journal_was_torn(j));
	got = journal_find(j, "node/devops-node-01/disk/partition");
	assert_non_null(got);
	assert_string_equal(got->hash, H1);
	assert_string_equal(got->time, "2026-11-25T05:00:00Z");
	assert_int_equal(got->elapsed_ms, 42);
	assert_string_equal(json_get_string(got->result, "part_uuid"), "6c0a0b1e-0000-4000-8000-000000000001");
	got = journal_find(j, "cluster/vm/devops-k3s-worker-01");
	assert_non_null(got);
	assert_null(got->node);
	assert_null(got->result);
	assert_int_equal(got->status, JOURNAL_STATUS_FOUND);
	assert_int_equal(strlen(got->time), 20);
	assert_null(journal_find(j, "cluster/vm/nope"));
	assert_int_equal(journal_append(j, &r), -EROFS);
	journal_free(j);
}

static void test_torn_last_line(void **state)
{
	struct journal *j = NULL;
	struct journal_record r = rec("a/1", H1);
	size_t size, before;

	(void)state;
	set_hash(&r, H1);
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &j), 0);
	assert_int_equal(journal_append(j, &r), 0);
	journal_free(j);
	free(slurp(&before));
	/* Power cut in the middle of the second record's write(). */
	append_raw("{\"v\":1,\"id\":\"a/2\",\"phase\":\"inst");

	/* A reader ignores the tail and leaves the file alone. */
	assert_int_equal(journal_open(path, JOURNAL_READ_ONLY, &j), 0);
	assert_true(journal_was_torn(j));
	assert_int_equal(journal_n_records(j), 1);
	journal_free(j);
	free(slurp(&size));
	assert_true(size > before);

	/* A writer cuts it away, and the next record starts on its own line. */
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &j), 0);
	assert_true(journal_was_torn(j));
	free(slurp(&size));
	assert_int_equal(size, before);
	r.id = (char *)"a/2";
	assert_int_equal(journal_append(j, &r), 0);
	journal_free(j);
	assert_int_equal(journal_open(path, JOURNAL_READ_ONLY, &j), 0);
	assert_false(journal_was_torn(j));
	assert_int_equal(journal_n_records(j), 2);
	assert_string_equal(journal_get(j, 1)->id, "a/2");
	journal_free(j);

	/* A torn line that happens to be valid JSON is still torn: no newline. */
	append_raw("{}");
	assert_int_equal(journal_open(path, JOURNAL_READ_ONLY, &j), 0);
	assert_true(journal_was_torn(j));
	assert_int_equal(journal_n_records(j), 2);
	journal_free(j);
}

static void test_params_change_latest_wins(void **state)
{
	struct journal *j = NULL;
	struct journal_record r = rec("cluster/vm/x", H1);

	(void)state;
	set_hash(&r, H1);
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &j), 0);
	assert_int_equal(journal_append(j, &r), 0);
	set_hash(&r, H2);
	assert_int_equal(journal_append(j, &r), 0);
	journal_free(j);
	assert_int_equal(journal_open(path, JOURNAL_READ_ONLY, &j), 0);
	assert_int_equal(journal_n_records(j), 2);
	assert_string_equal(journal_find(j, "cluster/vm/x")->hash, H2);
	journal_free(j);
}

static void test_lock(void **state)
{
	struct journal *j = NULL, *k = NULL;

	(void)state;
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &j), 0);
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &k), -EBUSY);
	assert_null(k);
	assert_non_null(strstr(journal_error(), "locked"));
	assert_int_equal(journal_open(path, JOURNAL_READ_ONLY, &k), 0); /* status can look */
	journal_free(k);
	journal_free(j);
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &k), 0); /* released */
	journal_free(k);
}

static void test_bad_records(void **state)
{
	static const char *const bad[] = {
		"not json\n",
		"[1,2]\n",
		"{\"v\":2,\"id\":\"a\",\"phase\":\"install\",\"time\":\"t\",\"status\":\"applied\",\"hash\":\"" H1 "\"}\n",
		"{\"v\":1,\"phase\":\"install\",\"time\":\"t\",\"status\":\"applied\",\"hash\":\"" H1 "\"}\n",
		"{\"v\":1,\"id\":\"a\",\"phase\":\"install\",\"time\":\"t\",\"status\":\"maybe\",\"hash\":\"" H1 "\"}\n",
		"{\"v\":1,\"id\":\"a\",\"phase\":\"install\",\"time\":\"t\",\"status\":\"applied\",\"hash\":\"XYZ\"}\n",
		"{\"v\":1,\"id\":\"a\",\"phase\":\"install\",\"time\":\"t\",\"status\":\"applied\",\"hash\":\"" H1
		"\",\"result\":7}\n",
		"{\"v\":1,\"id\":\"a\",\"phase\":\"install\",\"time\":\"t\",\"status\":\"applied\",\"hash\":\"" H1 "\"} x\n",
		"\n",
		"{\"v\":1,\"id\":5,\"phase\":\"install\",\"time\":\"t\",\"status\":\"applied\",\"hash\":\"" H1 "\"}\n",
		"{\"v\":1,\"id\":\"a\",\"phase\":\"install\",\"time\":\"t\",\"status\":\"applied\",\"hash\":\"" H1
		"\",\"elapsed_ms\":-1}\n",
	};
	static const char good[] =
		"{\"v\":1,\"id\":\"a\",\"phase\":\"install\",\"time\":\"t\",\"status\":\"applied\",\"hash\":\"" H1
		"\",\"future\":true}\n";
	struct journal *j = NULL;
	size_t valid = 0;

	(void)state;
	assert_int_equal(journal_parse(good, strlen(good), &j, &valid), 0);
	assert_int_equal(valid, strlen(good));
	assert_int_equal(journal_n_records(j), 1);
	journal_free(j);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		char buf[1024];

		/* a bad line after a good one, so the line number is checked */
		snprintf(buf, sizeof(buf), "%s%s", good, bad[i]);
		j = NULL;
		if (journal_parse(buf, strlen(buf), &j, &valid) != -EBADMSG)
			fail_msg("bad record %zu accepted: %s", i, bad[i]);
		assert_null(j);
		assert_non_null(strstr(journal_error(), "line 2: "));
	}
	/* A bad line in the middle of a file refuses the open. */
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &j), 0);
	journal_free(j);
	append_raw("garbage\n");
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &j), -EBADMSG);
	assert_non_null(strstr(journal_error(), path));
}

static void test_limits(void **state)
{
	struct journal *j = NULL;
	struct journal_record r = rec("a", H1);
	struct json_object *big = json_object_new_object();
	char *filler = malloc(JOURNAL_MAX_RECORD);

	(void)state;
	set_hash(&r, H1);
	memset(filler, 'x', JOURNAL_MAX_RECORD - 1);
	filler[JOURNAL_MAX_RECORD - 1] = '\0';
	assert_int_equal(json_add_string(big, "blob", filler), 0);
	free(filler);
	assert_int_equal(journal_open(path, JOURNAL_CREATE, &j), 0);
	r.result = big;
	assert_int_equal(journal_append(j, &r), -E2BIG);
	r.result = NULL;
	r.id = (char *)"";
	assert_int_equal(journal_append(j, &r), -EINVAL);
	r.id = (char *)"a";
	r.hash[3] = 'Z';
	assert_int_equal(journal_append(j, &r), -EINVAL);
	assert_int_equal(journal_n_records(j), 0);
	journal_free(j);
	json_object_put(big);
	assert_int_equal(truncate(path, JOURNAL_MAX_BYTES + 1), 0);
	assert_int_equal(journal_open(path, JOURNAL_READ_ONLY, &j), -EFBIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params_change_latest_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
