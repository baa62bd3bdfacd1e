/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE 1 /* PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP */
#include "log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum log_level max_level = LOG_LEVEL_INFO;
static log_sink_fn sink;
static void *sink_userdata;
static bool in_sink;
/* One line at a time: the step engine's workers log from several threads
 * (and a line is three writes to stderr, then the sink). Recursive: a sink
 * that logs gets its line printed (not passed to it again). */
static pthread_mutex_t log_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
/* The status line at the bottom of a terminal (log_set_status()): erased
 * before each log line is printed, drawn again after it. */
static char status_line[256];

void log_set_sink(log_sink_fn fn, void *userdata)
{
	sink = fn;
	sink_userdata = userdata;
}

void log_set_level(enum log_level level)
{
	max_level = level;
}

enum log_level log_get_level(void)
{
	return max_level;
}

static const char *const level_prefix[] = {
	[LOG_LEVEL_ERROR] = "error: ",
	[LOG_LEVEL_WARNING] = "warning: ",
	[LOG_LEVEL_INFO] = "",
	[LOG_LEVEL_DEBUG] = "debug: ",
};

void log_progress(void (*fn)(void *userdata, const char *msg), void *userdata, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fn)
		fn(userdata, msg);
	else
		log_info("%s", msg);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > max_level)
		return;
	pthread_mutex_lock(&log_lock);
	if (status_line[0])
		fputs("\r\033[K", stderr);
	fprintf(stderr, "devopslab: %s", level_prefix[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (sink && !in_sink) {
		char line[1024]; /* a longer line is cut for the sink */

		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		in_sink = true;
		sink(level, line, sink_userdata);
		in_sink = false;
	}
	if (status_line[0])
		fputs(status_line, stderr);
	pthread_mutex_unlock(&log_lock);
}

bool log_status_possible(void)
{
	return isatty(STDERR_FILENO) == 1;
}

void log_set_status(const char *line)
{
	pthread_mutex_lock(&log_lock);
	if (status_line[0])
		fputs("\r\033[K", stderr);
	if (line && *line && log_status_possible()) {
		/* one terminal line: no control characters, cut to fit */
		size_t n = 0;

		for (const char *p = line; *p && n < sizeof(status_line) - 1; p++)
			status_line[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
		status_line[n] = '\0';
		fputs(status_line, stderr);
	} else
		status_line[0] = '\0';
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}
