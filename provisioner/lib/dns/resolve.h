/* SPDX-License-Identifier: MIT */
/*
 * resolve.h — one DNS question to one server, answered by glibc's
 * resolver library (libresolv: res_nquery, ns_parserr), not by a parser
 * of ours: what the verification step asks each DNS server.
 */
#pragma once

#include <stddef.h>

#define DNS_ANSWER_MAX 8
#define DNS_ANSWER_LEN 256

struct dns_answer {
	char v[DNS_ANSWER_MAX][DNS_ANSWER_LEN]; /* A/AAAA: the address; CNAME: the name (no final dot); TXT: the text */
	size_t n;
	int rcode; /* the reply's RCODE (0 NOERROR, 3 NXDOMAIN, ...), -1 when none came */
};

/* Ask server (IPv4 dotted quad) at port for name's records of type (A,
 * AAAA, CNAME, TXT) over UDP (TCP when truncated), recursion desired.
 * 0 with *ret filled (possibly no answers), -ETIMEDOUT when no reply came,
 * -EINVAL for a type or server we cannot ask. */
int dns_resolve(const char *server, unsigned port, const char *name, const char *type, unsigned timeout_s,
		struct dns_answer *ret);
