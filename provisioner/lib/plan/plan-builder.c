/* SPDX-License-Identifier: MIT */
/*
 * plan-builder.c — the plan builder's parameter helpers (plan-builder.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "json-util.h"
#include "parse.h"
#include "plan-builder.h"
#include "plan-internal.h"

/* snprintf that treats truncation as an error: a truncated name or id
 * would silently refer to something else. */
__attribute__((format(printf, 4, 5))) void pb_bfmt(struct builder *b, char *buf, size_t size, const char *fmt,
							   ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if ((n < 0 || (size_t)n >= size) && b->error >= 0)
		b->error = plan_fail(-ENAMETOOLONG, "name too long: \"%.64s...\"", buf);
}

/* ---- parameter helpers: they latch the first error in b->error ---------- */

struct json_object *pb_obj(struct builder *b)
{
	struct json_object *o = json_object_new_object();

	if (!o && b->error >= 0)
		b->error = -ENOMEM;
	return o;
}

struct json_object *pb_arr(struct builder *b)
{
	struct json_object *a = json_object_new_array();

	if (!a && b->error >= 0)
		b->error = -ENOMEM;
	return a;
}

/* Add v (consumed) under key; v NULL means JSON null. */
void pb_put(struct builder *b, struct json_object *o, const char *key, struct json_object *v)
{
	int r;

	if (!o) {
		json_object_put(v);
		return;
	}
	r = json_add(o, key, v);
	if (r < 0 && b->error >= 0)
		b->error = r;
}

struct json_object *pb_str(struct builder *b, const char *s)
{
	struct json_object *v;

	if (!s)
		return NULL;
	v = json_object_new_string(s);
	if (!v && b->error >= 0)
		b->error = -ENOMEM;
	return v;
}

void pb_put_str(struct builder *b, struct json_object *o, const char *key, const char *s)
{
	pb_put(b, o, key, pb_str(b, s));
}

void pb_put_u64(struct builder *b, struct json_object *o, const char *key, uint64_t n)
{
	struct json_object *v = json_object_new_uint64(n);

	if (!v && b->error >= 0)
		b->error = -ENOMEM;
	if (v)
		pb_put(b, o, key, v);
}

void pb_put_bool(struct builder *b, struct json_object *o, const char *key, bool val)
{
	struct json_object *v = json_object_new_boolean(val);

	if (!v && b->error >= 0)
		b->error = -ENOMEM;
	if (v)
		pb_put(b, o, key, v);
}

void pb_push(struct builder *b, struct json_object *a, struct json_object *v)
{
	int r;

	if (!a || !v) {
		json_object_put(v);
		if (b->error >= 0)
			b->error = -ENOMEM;
		return;
	}
	r = json_array_add(a, v);
	if (r < 0 && b->error >= 0)
		b->error = r;
}

void pb_fmt_ip(uint32_t ip, char buf[static 16])
{
	ipv4_format(ip, buf, 16);
}

void pb_put_ip(struct builder *b, struct json_object *o, const char *key, uint32_t ip)
{
	char buf[16];

	if (!ip) {
		pb_put(b, o, key, NULL);
		return;
	}
	pb_fmt_ip(ip, buf);
	pb_put_str(b, o, key, buf);
}

void pb_put_cidr(struct builder *b, struct json_object *o, const char *key, uint32_t ip, unsigned prefix)
{
	char ipbuf[16], buf[24];

	pb_fmt_ip(ip, ipbuf);
	snprintf(buf, sizeof(buf), "%s/%u", ipbuf, prefix);
	pb_put_str(b, o, key, buf);
}

/* Bytes, or null = "the installer decides" (printed as auto). */
void pb_put_size_opt(struct builder *b, struct json_object *o, const char *key, const struct mf_size_opt *s)
{
	if (s->set)
		pb_put_u64(b, o, key, s->bytes);
	else
		pb_put(b, o, key, NULL);
}

void pb_put_secret(struct builder *b, struct json_object *o, const char *key, const struct mf_secret *s)
{
	struct json_object *ref;

	if (!s->name) {
		pb_put(b, o, key, NULL);
		return;
	}
	ref = pb_obj(b);
	pb_put_str(b, ref, "secret", s->name);
	pb_put(b, o, key, ref);
}

void pb_put_strv(struct builder *b, struct json_object *o, const char *key, char *const *v, size_t n)
{
	struct json_object *a = pb_arr(b);

	for (size_t i = 0; i < n; i++)
		pb_push(b, a, pb_str(b, v[i]));
	pb_put(b, o, key, a);
}

/* Append a step; consumes params. The id is printf-formatted. */
__attribute__((format(printf, 7, 8))) struct step *pb_add(struct builder *b, enum step_phase phase,
								  enum step_kind kind, const char *node,
								  struct json_object *params, const char *title,
								  const char *id_fmt, ...)
{
	char id[STEP_ID_MAX + 1];
	va_list ap;
	int n, r;

	if (b->error < 0 || !params) {
		json_object_put(params);
		if (b->error >= 0)
			b->error = -ENOMEM;
		return NULL;
	}
	va_start(ap, id_fmt);
	n = vsnprintf(id, sizeof(id), id_fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(id)) {
		json_object_put(params);
		b->error = plan_fail(-ENAMETOOLONG, "step id \"%.64s...\" is longer than %d bytes", id, STEP_ID_MAX);
		return NULL;
	}
	r = plan_add(b->plan, phase, kind, node, params, title, "%s", id);
	if (r < 0) {
		b->error = r;
		return NULL;
	}
	return &b->plan->steps[r];
}

int pb_expand(struct builder *b, const struct mf_vm_group *g, unsigned i, struct mf_vm *ret)
{
	int r = manifest_vm_expand(g, i, ret);

	if (r < 0 && b->error >= 0)
		b->error = plan_fail(r, "cannot expand VM %u of group \"%s\"", i + 1, g->id);
	return r;
}

int pb_find_vm(struct builder *b, const char *name, struct mf_vm *ret)
{
	int r = name ? manifest_find_vm(b->m, name, ret) : -ENOENT;

	if (r < 0 && b->error >= 0)
		b->error = plan_fail(-EINVAL, "dns: no VM named \"%s\"", name ? name : "(none)");
	return r;
}
