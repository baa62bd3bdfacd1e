/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remotelog.h"
#include "util.h"

static const struct timespec ts = { .tv_sec = 1795588200, .tv_nsec = 123456789 }; /* 2026-11-25T06:30:00Z */

static void test_format(void **state)
{
	char buf[REMOTELOG_MSG_MAX + 1];
	size_t n;

	(void)state;
	n = remotelog_format(buf, sizeof(buf), REMOTELOG_FACILITY_LOCAL0, LOG_LEVEL_INFO, &ts, "devopslab-node-02", 42,
			     "install", "identified node node-02 by MAC 52:54:00:0a:00:02 (eth0)");
	assert_string_equal(buf, "<134>1 2026-11-25T06:30:00.123456Z devopslab-node-02 devopslab 42 install - "
				 "identified node node-02 by MAC 52:54:00:0a:00:02 (eth0)");
	assert_int_equal(n, strlen(buf));
	/* severities: error 3, warning 4, debug 7; facility user (1) */
	remotelog_format(buf, sizeof(buf), 1, LOG_LEVEL_ERROR, &ts, NULL, 1, NULL, "x");
	assert_string_equal(buf, "<11>1 2026-11-25T06:30:00.123456Z - devopslab 1 - - x");
	remotelog_format(buf, sizeof(buf), REMOTELOG_FACILITY_LOCAL0, LOG_LEVEL_WARNING, &ts, "", 1, "", "");
	assert_string_equal(buf, "<132>1 2026-11-25T06:30:00.123456Z - devopslab 1 - - ");
	remotelog_format(buf, sizeof(buf), REMOTELOG_FACILITY_LOCAL0, LOG_LEVEL_DEBUG, &ts, "h", 1, "m", "y");
	assert_string_equal(buf, "<135>1 2026-11-25T06:30:00.123456Z h devopslab 1 m - y");
}

static void test_format_sanitized_and_bounded(void **state)
{
	char buf[4096], big[3000];
	size_t n;

	(void)state;
	/* control characters in MSG, spaces in a header field */
	remotelog_format(buf, sizeof(buf), REMOTELOG_FACILITY_LOCAL0, LOG_LEVEL_INFO, &ts, "a b", 7, "boot",
			 "tab\there\r\nnext\x1b[0m");
	assert_string_equal(buf, "<134>1 2026-11-25T06:30:00.123456Z a?b devopslab 7 boot - tab?here??next?[0m");
	/* never more than REMOTELOG_MSG_MAX bytes, even with a bigger buffer */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	n = remotelog_format(buf, sizeof(buf), REMOTELOG_FACILITY_LOCAL0, LOG_LEVEL_INFO, &ts, "h", 1, "m", big);
	assert_int_equal(n, REMOTELOG_MSG_MAX);
	assert_int_equal(strlen(buf), REMOTELOG_MSG_MAX);
	/* a small buffer: truncated, terminated */
	n = remotelog_format(buf, 10, REMOTELOG_FACILITY_LOCAL0, LOG_LEVEL_INFO, &ts, "h", 1, "m", "msg");
	assert_int_equal(n, 9);
	assert_string_equal(buf, "<134>1 20");
}

/* A receiver on 127.0.0.1: the order of the datagrams, queued lines, replay. */
static void test_send_order(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct remotelog *rl = NULL;
	char path[] = "/tmp/test-remotelog-XXXXXX", buf[2048];
	const char *want[] = { "boot - devopslab: network: eth0", "boot - second", "install - queued one",
			       "install - live two" };
	struct timeval tv = { .tv_sec = 2 };
	int s, fd;
	ssize_t n;

	(void)state;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "devopslab: network: eth0\nsecond\nnot yet\n", 40), 40);
	close(fd);

	assert_int_equal(remotelog_new(&rl), 0);
	remotelog_line(rl, LOG_LEVEL_INFO, "queued one");
	assert_int_equal(remotelog_replay_file(rl, path, 32), -ENOTCONN); /* not open yet */
	assert_int_equal(remotelog_open(rl, "127.0.0.1", ntohs(sa.sin_port), "node-02"), 0);
	assert_int_equal(remotelog_replay_file(rl, path, 32), 2); /* the first 32 bytes: two lines */
	remotelog_flush(rl);
	remotelog_sink(LOG_LEVEL_WARNING, "live two", rl);
	for (size_t i = 0; i < ELEMENTSOF(want); i++) {
		n = recv(s, buf, sizeof(buf) - 1, 0);
		assert_true(n > 0);
		buf[n] = '\0';
		assert_non_null(strstr(buf, " devopslab-node-02 devopslab "));
		assert_non_null(strstr(buf, want[i]));
		assert_int_equal(buf[0], '<');
	}
	assert_int_equal(strncmp(buf, "<132>1 ", 7), 0); /* the warning */
	assert_int_equal(remotelog_dropped(rl), 0);
	unlink(path);
	remotelog_free(rl);
	close(s);
}

static void test_bad_receiver(void **state)
{
	struct remotelog *rl = NULL;

	(void)state;
	assert_int_equal(remotelog_new(&rl), 0);
	assert_true(remotelog_open(rl, "", 514, "n") < 0);
	assert_true(remotelog_open(rl, "127.0.0.1", 0, "n") < 0);
	/* queue bounded: the excess is counted */
	for (int i = 0; i < REMOTELOG_PENDING_MAX + 5; i++)
		remotelog_line(rl, LOG_LEVEL_INFO, "l");
	assert_int_equal(remotelog_dropped(rl), 5);
	remotelog_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_sanitized_and_bounded),
		cmocka_unit_test(test_send_order),
		cmocka_unit_test(test_bad_receiver),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
