/* SPDX-License-Identifier: MIT */
/*
 * errbuf.h — a library module's error detail: the first error of a call
 * wins (as curl's failf), the verb that understands it logs it.
 */
#pragma once

#include <stdarg.h>

struct errbuf {
	char msg[512];
};

static inline void errbuf_clear(struct errbuf *e)
{
	e->msg[0] = '\0';
}

/* Record a message unless one is already there. */
void errbuf_vsetf(struct errbuf *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void errbuf_setf(struct errbuf *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
