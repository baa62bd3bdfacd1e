/* SPDX-License-Identifier: MIT */
/*
 * resolve.c — see resolve.h.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include "resolve.h"
#include "util.h"

static int type_of(const char *type)
{
	return streq(type, "A") ? ns_t_a : streq(type, "AAAA") ? ns_t_aaaa : streq(type, "CNAME") ? ns_t_cname
	       : streq(type, "TXT")				      ? ns_t_txt
									      : -1;
}

/* One record's data as text into buf; 0, or -1 for one we skip. */
static int rdata_text(const ns_msg *msg, const ns_rr *rr, char *buf, size_t size)
{
	const unsigned char *d = ns_rr_rdata(*rr);
	size_t len = ns_rr_rdlen(*rr), o = 0;

	switch (ns_rr_type(*rr)) {
	case ns_t_a:
		return len == 4 && inet_ntop(AF_INET, d, buf, (socklen_t)size) ? 0 : -1;
	case ns_t_aaaa:
		return len == 16 && inet_ntop(AF_INET6, d, buf, (socklen_t)size) ? 0 : -1;
	case ns_t_cname:
		return ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), d, buf, size) < 0 ? -1 : 0;
	case ns_t_txt:
		/* character-strings, joined */
		for (size_t i = 0; i < len;) {
			size_t n = d[i++];

			if (i + n > len || o + n >= size)
				return -1;
			memcpy(buf + o, d + i, n);
			o += n;
			i += n;
		}
		buf[o] = 0;
		return 0;
	default:
		return -1;
	}
}

int dns_resolve(const char *server, unsigned port, const char *name, const char *type, unsigned timeout_s,
		struct dns_answer *ret)
{
	struct __res_state st;
	struct in_addr addr;
	unsigned char reply[4096];
	int t = type_of(type), len;
	ns_msg msg;

	*ret = (struct dns_answer){ .rcode = -1 };
	if (t < 0 || !port || port > 65535 || inet_pton(AF_INET, server, &addr) != 1)
		return -EINVAL;
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) < 0)
		return -EIO;
	/* this one server only, no search list, no fallback to resolv.conf's */
	st.nscount = 1;
	st.nsaddr_list[0] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
						  .sin_addr = addr };
	st.retrans = (int)(timeout_s ? timeout_s : 2);
	st.retry = 2;
	st.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	st.options |= RES_RECURSE;
	len = res_nquery(&st, name, ns_c_in, t, reply, sizeof(reply));
	if (len < 0) {
		/* an answer with an error RCODE is in reply all the same */
		HEADER *h = (HEADER *)reply;

		res_nclose(&st);
		if (st.res_h_errno == HOST_NOT_FOUND || st.res_h_errno == NO_DATA) {
			ret->rcode = st.res_h_errno == HOST_NOT_FOUND ? ns_r_nxdomain : ns_r_noerror;
			return 0;
		}
		if (st.res_h_errno == NO_RECOVERY) {
			ret->rcode = h->rcode ? h->rcode : ns_r_servfail;
			return 0;
		}
		return -ETIMEDOUT; /* TRY_AGAIN: no reply, or SERVFAIL */
	}
	res_nclose(&st);
	if (ns_initparse(reply, len, &msg) < 0)
		return -EBADMSG;
	ret->rcode = ns_msg_getflag(msg, ns_f_rcode);
	for (int i = 0; i < ns_msg_count(msg, ns_s_an) && ret->n < DNS_ANSWER_MAX; i++) {
		ns_rr rr;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return -EBADMSG;
		if ((int)ns_rr_type(rr) == t && rdata_text(&msg, &rr, ret->v[ret->n], DNS_ANSWER_LEN) == 0)
			ret->n++;
	}
	return 0;
}
