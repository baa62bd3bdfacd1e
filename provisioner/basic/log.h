/* SPDX-License-Identifier: MIT */
/*
 * log.h — the program's one logger. Verbs log; library modules do not
 * (they fill an error buffer and return -errno), except log_debug().
 *
 * The log level is the single piece of process-wide state outside a run's
 * context; it is set once by main() from --verbose/--quiet.
 *
 * Never pass a secret to any of these: there is no redaction after the fact.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* A sink gets every line the logger prints (without the "devopslab: " and
 * level prefixes), after it is printed; NULL removes it. Default: none. The
 * sink must not log itself (such lines are not passed on to it again). */
typedef void (*log_sink_fn)(enum log_level level, const char *line, void *userdata);
void log_set_sink(log_sink_fn fn, void *userdata);

/* A status line at the bottom of the terminal (a progress bar): log lines
 * scroll above it. Only when stderr is a terminal (log_status_possible());
 * NULL or "" removes it. The line is cut at 255 bytes. */
bool log_status_possible(void);
void log_set_status(const char *line);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A progress line for the operator: through fn (a step's configured
 * callback) when set, else log_info(); at most 1023 bytes. */
void log_progress(void (*fn)(void *userdata, const char *msg), void *userdata, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
