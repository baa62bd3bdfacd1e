/* SPDX-License-Identifier: MIT */
/*
 * json-util.h — the one place that includes <json-c/json.h>: cleanup
 * helpers and small typed accessors over json-c objects.
 *
 * Ownership: json-c objects are reference counted; a local declared
 * _cleanup_json_ holds one reference and drops it at scope exit. TAKE_PTR()
 * hands that reference on. The json_add*() helpers always consume the value
 * they are given: on failure they drop it (json-c's own
 * json_object_object_add() leaves it with the caller on failure).
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "util.h"

static inline void json_object_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* Typed lookups: return NULL / false when the key is absent or has another type. */
static inline const char *json_get_string(const struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static inline struct json_object *json_get_object(const struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

static inline struct json_object *json_get_array(const struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/* Integers: 0 on success, -ENOENT absent, -EINVAL wrong type or negative. */
static inline int json_get_u64(const struct json_object *o, const char *key, uint64_t *ret)
{
	struct json_object *v;
	int64_t i;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	i = json_object_get_int64(v);
	if (i < 0)
		return -EINVAL;
	*ret = (uint64_t)i;
	return 0;
}

/* Add helpers: return 0 or -ENOMEM. A NULL string adds JSON null. */
static inline int json_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static inline int json_add_string(struct json_object *o, const char *key, const char *s)
{
	struct json_object *v = NULL;

	if (s) {
		v = json_object_new_string(s);
		if (!v)
			return -ENOMEM;
	}
	return json_add(o, key, v);
}

static inline int json_add_u64(struct json_object *o, const char *key, uint64_t n)
{
	struct json_object *v = json_object_new_uint64(n);

	if (!v)
		return -ENOMEM;
	return json_add(o, key, v);
}

static inline int json_add_bool(struct json_object *o, const char *key, bool b)
{
	struct json_object *v = json_object_new_boolean(b);

	if (!v)
		return -ENOMEM;
	return json_add(o, key, v);
}

static inline int json_array_add(struct json_object *a, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_array_add(a, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}
