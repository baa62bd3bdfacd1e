/* SPDX-License-Identifier: MIT */
/*
 * fuzz-acme.c — libFuzzer target for what the ACME client reads from a
 * server: any bytes as an answer body into acme_decode_problem(), and, when
 * they are JSON, into acme_decode_authz(); the invariants the client relies
 * on checked: a problem's message is NUL-terminated within its buffer, an
 * authorization read without error has a status and a name, and a dns-01
 * challenge read has both its URL and its token.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "edge/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok;
	struct json_object *o;
	struct acme_authz a;
	char msg[64];
	int r;

	memset(msg, 'x', sizeof(msg));
	r = acme_decode_problem((const char *)data, size, msg, sizeof(msg));
	if (r != 0 && r != -EPROTO && r != -EAGAIN && r != -ENOMEM)
		abort();
	if ((r == -EPROTO || r == -EAGAIN) && !memchr(msg, '\0', sizeof(msg)))
		abort();
	tok = json_tokener_new();
	if (!tok)
		return 0;
	o = json_tokener_parse_ex(tok, (const char *)data, (int)(size > INT32_MAX ? INT32_MAX : size));
	json_tokener_free(tok);
	r = acme_decode_authz(o, &a);
	if (r != 0 && r != -EBADMSG)
		abort();
	if (r == 0 && (!a.status || !a.name || (!a.chall_url != !a.chall_token)))
		abort();
	json_object_put(o);
	return 0;
}
