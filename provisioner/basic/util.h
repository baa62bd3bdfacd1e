/* SPDX-License-Identifier: MIT */
/*
 * util.h — libc-only helpers shared by every tier: cleanup attributes,
 * ownership transfer, small string predicates.
 *
 * Ownership convention: a local declared with a _cleanup_*_ attribute owns
 * what it points to; TAKE_PTR() hands that ownership on (to a ret_* output
 * or a struct) and leaves NULL behind so the cleanup becomes a no-op.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define TAKE_PTR(p)                        \
	({                                 \
		__typeof__(p) _p_ = (p);   \
		(p) = NULL;                \
		_p_;                       \
	})

#define TAKE_FD(fd)                        \
	({                                 \
		int _fd_ = (fd);           \
		(fd) = -1;                 \
		_fd_;                      \
	})

static inline void freep(void *p) { free(*(void **)p); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void closedirp(DIR **d) { if (*d) closedir(*d); }

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Declare a pointer cleanup helper for a type with a foo_free() function. */
#define DEFINE_FREE_FUNC(type, func)                 \
	static inline void func##p(type **p)         \
	{                                            \
		if (*p)                              \
			func(*p);                    \
	}

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}
static inline bool isempty(const char *s) { return !s || !*s; }

/* Return a negative errno from the current errno, never 0. */
static inline int negative_errno(void) { return errno > 0 ? -errno : -EIO; }

/* Sleep ms milliseconds, through signals. */
static inline void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The wall clock, in milliseconds since the epoch. */
static inline uint64_t wall_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ms since the epoch as RFC 3339 UTC ("2026-12-05T10:40:00Z"); -EIO (and
 * the epoch in buf) when the time cannot be broken down. */
#define RFC3339_MAX 32
static inline int fmt_rfc3339(uint64_t ms, char buf[static RFC3339_MAX])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, RFC3339_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		snprintf(buf, RFC3339_MAX, "1970-01-01T00:00:00Z");
		return -EIO;
	}
	return 0;
}

/* Overwrite memory that held a secret; not optimised away. */
static inline void explicit_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

/* free() a NUL-terminated string that held a secret, wiped first. */
static inline void free_wiped(char *s)
{
	if (s) {
		explicit_wipe(s, strlen(s));
		free(s);
	}
}

static inline void free_wipedp(char **s)
{
	free_wiped(*s);
}
#define _cleanup_wiped_ _cleanup_(free_wipedp)
