/* SPDX-License-Identifier: MIT */
/*
 * manifest-fields.c — the manifest decoder's table machinery: one table of
 * struct field per mapping (manifest-internal.h), decoded by mf_decode_map(),
 * and the parsers of the common kinds of value. Every rule about a single
 * value is written once, in its parser; each problem becomes a diagnostic
 * with line:column and field path, and decoding goes on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest-internal.h"
#include "manifest.h"
#include "parse.h"
#include "util.h"
#include "yaml-util.h"

#define MF_MAX_STRING 4096


/* A problem with the map itself (unknown or missing key): its values are
 * not marked as failed. */
__attribute__((format(printf, 3, 4))) static void dnote(struct mf_ctx *c, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mf_vreport(c, DIAG_ERROR, n->line, n->column, c->path, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4))) int mf_derr(struct mf_ctx *c, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mf_vreport(c, DIAG_ERROR, n ? n->line : 0, n ? n->column : 0, c->path, fmt, ap);
	va_end(ap);
	mf_mark_failed(c, c->path);
	return -EINVAL;
}


const char *mf_scalar(struct mf_ctx *c, const struct ynode *n, const char *what)
{
	if (n->kind != YNODE_SCALAR || ynode_is_null(n)) {
		mf_derr(c, n, "must be %s, not %s", what, ynode_kind_name(n));
		return NULL;
	}
	return n->value;
}

/* A string value: any scalar YAML reads as a string. */
const char *mf_string_value(struct mf_ctx *c, const struct ynode *n)
{
	const char *s = mf_scalar(c, n, "a string");

	if (!s)
		return NULL;
	if (ynode_plain_is_typed(n)) {
		mf_derr(c, n, "must be a string; quote it (\"%s\") if it is meant as one", s);
		return NULL;
	}
	if (n->len == 0) {
		mf_derr(c, n, "must not be empty");
		return NULL;
	}
	if (n->len > MF_MAX_STRING) {
		mf_derr(c, n, "is longer than %d bytes", MF_MAX_STRING);
		return NULL;
	}
	return s;
}

int mf_set_string(struct mf_ctx *c, void *base, const struct field *f, const char *s)
{
	char **dst = AT(base, f->offset, char *);
	char *d = strdup(s);

	if (!d)
		return c->oom = -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

int mf_p_str(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	return s ? mf_set_string(c, base, f, s) : -EINVAL;
}

/* A string that valid() accepts, or an error saying it is not `what`. */
static int checked_string(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f,
			  bool (*valid)(const char *), const char *what)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	if (!valid(s))
		return mf_derr(c, n, "'%s' is not %s", s, what);
	return mf_set_string(c, base, f, s);
}

int mf_p_label(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	return checked_string(c, n, base, f, hostname_label_valid,
			      "a valid host name (1-63 letters, digits and '-', not at either end)");
}

int mf_p_dnsname(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	return checked_string(c, n, base, f, dns_name_valid, "a valid DNS name");
}

static bool ident_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-' || *p == '.'))
			return false;
	return true;
}

/* Names of assets, VM groups, secrets. */
int mf_p_ident(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	return checked_string(c, n, base, f, ident_valid, "a valid name (1-64 of letters, digits, '_', '-', '.')");
}

/* Which of the names in f->arg (NULL-terminated) n is: its index, or an
 * error listing them (-EINVAL). */
static int name_index(struct mf_ctx *c, const struct ynode *n, const struct field *f, const char **ret)
{
	const char *const *names = f->arg;
	const char *s = mf_string_value(c, n);
	char list[256] = "";

	if (!s)
		return -EINVAL;
	for (size_t i = 0; names[i]; i++)
		if (streq(s, names[i])) {
			*ret = s;
			return (int)i;
		}
	for (size_t i = 0; names[i]; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", names[i]);
	}
	return mf_derr(c, n, "'%s' is not one of: %s", s, list);
}

/* One of the names in f->arg, kept as a string. */
int mf_p_str_enum(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s;
	int i = name_index(c, n, f, &s);

	return i < 0 ? i : mf_set_string(c, base, f, s);
}

/* One of the names in f->arg, stored as its index (an enum). */
int mf_p_enum(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s;
	int i = name_index(c, n, f, &s);

	if (i >= 0)
		*AT(base, f->offset, int) = i;
	return i < 0 ? i : 0;
}

static int uint_value(struct mf_ctx *c, const struct ynode *n, const struct range *rg, uint64_t *ret)
{
	const char *s = mf_scalar(c, n, "an integer");
	uint64_t v;

	if (!s)
		return -EINVAL;
	if (!n->plain || parse_uint64(s, &v) < 0)
		return mf_derr(c, n, "must be an integer, not '%s'", s);
	if (rg && (v < rg->min || v > rg->max))
		return mf_derr(c, n, "%" PRIu64 " is out of range %" PRIu64 "..%" PRIu64, v, rg->min, rg->max);
	*ret = v;
	return 0;
}

int mf_p_uint(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	uint64_t v = 0;
	int r = uint_value(c, n, f->arg, &v);

	if (r < 0)
		return r;
	*AT(base, f->offset, unsigned) = (unsigned)v;
	return 0;
}

int mf_p_bool(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_scalar(c, n, "true or false");

	if (!s)
		return -EINVAL;
	if (n->plain && (streq(s, "true") || streq(s, "True") || streq(s, "TRUE")))
		*AT(base, f->offset, bool) = true;
	else if (n->plain && (streq(s, "false") || streq(s, "False") || streq(s, "FALSE")))
		*AT(base, f->offset, bool) = false;
	else
		return mf_derr(c, n, "must be true or false, not '%s'", s);
	return 0;
}

static int size_value(struct mf_ctx *c, const struct ynode *n, uint64_t *ret)
{
	const char *s = mf_scalar(c, n, "a size");
	int r;

	if (!s)
		return -EINVAL;
	r = parse_size(s, ret);
	if (r == -ERANGE)
		return mf_derr(c, n, "size '%s' is too large", s);
	if (r < 0)
		return mf_derr(c, n, "'%s' is not a size (like 20G, 512M, 1T, 20GiB, 20GB or bytes)", s);
	return 0;
}

int mf_p_size(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	return size_value(c, n, AT(base, f->offset, uint64_t));
}

int mf_p_size_opt(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_size_opt *o = AT(base, f->offset, struct mf_size_opt);
	int r = size_value(c, n, &o->bytes);

	if (r >= 0)
		o->set = true;
	return r;
}

int mf_ipv4_value(struct mf_ctx *c, const struct ynode *n, uint32_t *ret)
{
	const char *s = mf_scalar(c, n, "an IPv4 address");

	if (!s)
		return -EINVAL;
	if (parse_ipv4(s, ret) < 0)
		return mf_derr(c, n, "'%s' is not an IPv4 address", s);
	return 0;
}

int mf_p_ipv4(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	return mf_ipv4_value(c, n, AT(base, f->offset, uint32_t));
}

/* A network: ADDRESS/PREFIX with the host bits clear. */
int mf_cidr_value(struct mf_ctx *c, const struct ynode *n, struct mf_cidr *ret)
{
	const char *s = mf_scalar(c, n, "an IPv4 prefix (CIDR)");
	uint32_t a;
	unsigned p;

	if (!s)
		return -EINVAL;
	if (parse_cidr(s, false, &a, &p) < 0)
		return mf_derr(c, n, "'%s' is not an IPv4 prefix like 10.0.10.0/24", s);
	if (parse_cidr(s, true, &a, &p) < 0)
		return mf_derr(c, n, "'%s' has host bits set; the network address is needed", s);
	*ret = (struct mf_cidr){ .addr = a, .prefix = p };
	return 0;
}

/* A network of the lab's own (the subnet, K3s's pod and service ranges). */
int mf_p_cidr(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_cidr v;
	int r = mf_cidr_value(c, n, &v);

	if (r < 0)
		return r;
	if (v.prefix < 8 || v.prefix > 30)
		return mf_derr(c, n, "prefix length /%u is out of range 8..30", v.prefix);
	*AT(base, f->offset, struct mf_cidr) = v;
	return 0;
}

int mf_p_mac(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	if (parse_mac(s, AT(base, f->offset, uint8_t)) < 0)
		return mf_derr(c, n, "'%s' is not a MAC address like 52:54:00:0a:00:01", s);
	*AT(base, f->offset2, bool) = true;
	return 0;
}

int mf_p_uuid(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);
	char u[37];

	if (!s)
		return -EINVAL;
	if (parse_uuid(s, u) < 0)
		return mf_derr(c, n, "'%s' is not a UUID like 4c4c4544-0042-3610-8052-b4c04f4e4d32", s);
	return mf_set_string(c, base, f, u);
}

/* Any list: elements decoded by the element table or parser. */
int mf_p_seq(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const struct seq_spec *spec = f->arg;
	void **arr = AT(base, f->offset, void *);
	size_t *count = AT(base, f->offset2, size_t);
	char *a;

	if (n->kind != YNODE_SEQUENCE)
		return mf_derr(c, n, "must be a list, not %s", ynode_kind_name(n));
	if (n->n > spec->max)
		return mf_derr(c, n, "has %zu entries; at most %zu are allowed", n->n, spec->max);
	if (n->n == 0)
		return 0;
	a = calloc(n->n, spec->elem_size);
	if (!a)
		return c->oom = -ENOMEM;
	*arr = a;
	*count = n->n;
	for (size_t i = 0; i < n->n && !c->oom; i++) {
		size_t old = mf_path_push_index(c, i);
		void *elem = a + i * spec->elem_size;
		const struct ynode *item = n->items[i];

		mf_record_pos(c, item);
		if (spec->init)
			spec->init(elem);
		if (spec->pos_offset != SIZE_MAX)
			*AT(elem, spec->pos_offset, struct mf_pos) = (struct mf_pos){ item->line, item->column };
		if (spec->fields)
			(void)mf_decode_map(c, item, spec->fields, elem);
		else {
			struct field ef = { .offset = 0, .arg = NULL };
			(void)spec->elem(c, item, elem, &ef);
		}
		mf_path_pop(c, old);
	}
	return 0;
}

/* A nested mapping, decoded by the table in f->arg. */
int mf_p_map(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	return mf_decode_map(c, n, f->arg, AT(base, f->offset, void));
}

int mf_p_ipv4_elem(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	(void)f;
	return mf_ipv4_value(c, n, base);
}

int mf_decode_map(struct mf_ctx *c, const struct ynode *n, const struct field *fields, void *base)
{
	bool seen[32] = {};
	size_t nf = 0;

	while (fields[nf].key)
		nf++;
	if (nf > ELEMENTSOF(seen))
		abort(); /* a table bigger than `seen`: programmer error */
	if (n->kind != YNODE_MAPPING)
		return mf_derr(c, n, "must be a mapping, not %s", ynode_kind_name(n));
	for (size_t i = 0; i < n->n && !c->oom; i++) {
		const struct ynode *k = n->keys[i], *v = n->items[i];
		size_t j, old;

		for (j = 0; j < nf; j++)
			if (streq(fields[j].key, k->value))
				break;
		if (j == nf) {
			dnote(c, k, "unknown key '%s'", k->value);
			continue;
		}
		seen[j] = true;
		old = mf_path_push_key(c, k->value);
		mf_record_pos(c, v);
		(void)fields[j].parse(c, v, base, &fields[j]);
		mf_path_pop(c, old);
	}
	for (size_t j = 0; j < nf; j++)
		if (fields[j].required && !seen[j]) {
			size_t old;

			dnote(c, n, "missing required key '%s'", fields[j].key);
			old = mf_path_push_key(c, fields[j].key);
			mf_mark_failed(c, c->path);
			mf_path_pop(c, old);
		}
	return 0;
}
