/* SPDX-License-Identifier: MIT */
#include "errbuf.h"

#include <stdio.h>

void errbuf_vsetf(struct errbuf *e, const char *fmt, va_list ap)
{
	if (e->msg[0])
		return;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

void errbuf_setf(struct errbuf *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errbuf_vsetf(e, fmt, ap);
	va_end(ap);
}
