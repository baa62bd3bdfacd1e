/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"
#include "yaml-util.h"

#define YAML_DEPTH_CAP 64

struct builder {
	const struct yaml_limits *limits;
	struct diags *diags;
	struct ynode *stack[YAML_DEPTH_CAP + 1];
	size_t depth, nodes;
	struct ynode *root;
	bool bad;  /* a diagnostic was added: the tree is not decoded */
	bool stop; /* a hard limit was hit: stop reading events */
};

struct ynode *ynode_free(struct ynode *n)
{
	if (!n)
		return NULL;
	for (size_t i = 0; i < n->n_keys; i++)
		ynode_free(n->keys[i]);
	for (size_t i = 0; i < n->n; i++)
		ynode_free(n->items[i]);
	free(n->keys);
	free(n->items);
	free(n->value);
	free(n);
	return NULL;
}

DEFINE_FREE_FUNC(struct ynode, ynode_free)

bool ynode_is_null(const struct ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (!n || n->kind != YNODE_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
		if (streq(n->value, nulls[i]))
			return true;
	return false;
}

const char *ynode_kind_name(const struct ynode *n)
{
	if (!n)
		return "nothing";
	switch (n->kind) {
	case YNODE_MAPPING:
		return "a mapping";
	case YNODE_SEQUENCE:
		return "a list";
	default:
		return ynode_is_null(n) ? "null" : "a scalar";
	}
}

static void berror(struct builder *b, const yaml_mark_t *m, const char *msg)
{
	b->bad = true;
	(void)diags_add(b->diags, DIAG_ERROR, (unsigned)m->line + 1, (unsigned)m->column + 1, "", "%s", msg);
}

static int push_ptr(struct ynode ***arr, size_t n, size_t *cap, struct ynode *child)
{
	if (n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct ynode **p = reallocarray(*arr, ncap, sizeof(**arr));

		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = ncap;
	}
	(*arr)[n] = child;
	return 0;
}

static bool key_is_duplicate(const struct ynode *map, const struct ynode *key)
{
	for (size_t i = 0; i < map->n_keys; i++) {
		const struct ynode *k = map->keys[i];

		if (k->kind == YNODE_SCALAR && k->len == key->len && memcmp(k->value, key->value, k->len) == 0)
			return true;
	}
	return false;
}

/* Attach a new node to the container on top of the stack (or make it the
 * root). Takes ownership of child in every case. */
static int attach(struct builder *b, struct ynode *child, const yaml_mark_t *m)
{
	_cleanup_(ynode_freep) struct ynode *c = child;
	struct ynode *parent;
	int r;

	if (++b->nodes > b->limits->max_nodes) {
		berror(b, m, "too many YAML nodes (limit reached)");
		b->stop = true;
		return 0;
	}
	if (b->depth == 0) {
		b->root = TAKE_PTR(c);
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == YNODE_SEQUENCE) {
		r = push_ptr(&parent->items, parent->n, &parent->cap, c);
		if (r < 0)
			return r;
		parent->n++;
		TAKE_PTR(c);
		return 0;
	}
	if (parent->n_keys == parent->n) {
		/* A key: the value that follows pairs with it. */
		int k = push_ptr(&parent->keys, parent->n_keys, &parent->kcap, NULL);

		if (k < 0)
			return k;
		if (c->kind != YNODE_SCALAR)
			berror(b, m, "mapping keys must be plain scalars");
		else if (c->plain && streq(c->value, "<<"))
			berror(b, m, "merge keys (<<) are not allowed");
		else if (key_is_duplicate(parent, c)) {
			b->bad = true;
			(void)diags_add(b->diags, DIAG_ERROR, c->line, c->column, "", "duplicate key '%s'", c->value);
		}
		parent->keys[parent->n_keys++] = TAKE_PTR(c);
		return 0;
	}
	r = push_ptr(&parent->items, parent->n, &parent->cap, c);
	if (r < 0)
		return r;
	parent->n++;
	TAKE_PTR(c);
	return 0;
}

static struct ynode *node_new(enum ynode_kind kind, const yaml_mark_t *m)
{
	struct ynode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->kind = kind;
	n->line = (unsigned)m->line + 1;
	n->column = (unsigned)m->column + 1;
	return n;
}

static int on_scalar(struct builder *b, const yaml_event_t *e)
{
	struct ynode *n;

	if (e->data.scalar.anchor)
		berror(b, &e->start_mark, "anchors (&) are not allowed");
	if (e->data.scalar.tag)
		berror(b, &e->start_mark, "tags (!) are not allowed");
	if (e->data.scalar.length > b->limits->max_scalar) {
		b->bad = true;
		(void)diags_add(b->diags, DIAG_ERROR, (unsigned)e->start_mark.line + 1,
				(unsigned)e->start_mark.column + 1, "", "a value longer than %zu bytes", b->limits->max_scalar);
	}
	if (memchr(e->data.scalar.value, 0, e->data.scalar.length))
		berror(b, &e->start_mark, "a NUL character is not allowed");
	n = node_new(YNODE_SCALAR, &e->start_mark);
	if (!n)
		return -ENOMEM;
	n->value = strndup((const char *)e->data.scalar.value, e->data.scalar.length);
	if (!n->value) {
		ynode_free(n);
		return -ENOMEM;
	}
	n->len = strlen(n->value);
	n->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return attach(b, n, &e->start_mark);
}

static int on_start(struct builder *b, const yaml_event_t *e, enum ynode_kind kind)
{
	const yaml_char_t *anchor = kind == YNODE_MAPPING ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
	const yaml_char_t *tag = kind == YNODE_MAPPING ? e->data.mapping_start.tag : e->data.sequence_start.tag;
	struct ynode *n;
	int r;

	if (anchor)
		berror(b, &e->start_mark, "anchors (&) are not allowed");
	if (tag)
		berror(b, &e->start_mark, "tags (!) are not allowed");
	if (b->depth >= b->limits->max_depth || b->depth >= YAML_DEPTH_CAP) {
		berror(b, &e->start_mark, "nesting is too deep (limit reached)");
		b->stop = true;
		return 0;
	}
	n = node_new(kind, &e->start_mark);
	if (!n)
		return -ENOMEM;
	r = attach(b, n, &e->start_mark);
	if (r < 0 || b->stop)
		return r;
	b->stack[b->depth++] = n;
	return 0;
}

static int on_event(struct builder *b, const yaml_event_t *e, unsigned *docs)
{
	switch (e->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1) {
			berror(b, &e->start_mark, "only one YAML document is allowed");
			b->stop = true;
		}
		return 0;
	case YAML_ALIAS_EVENT: {
		/* Stand a null in for it, so a mapping's keys and values stay
		 * paired and later problems are still found. */
		struct ynode *n = node_new(YNODE_SCALAR, &e->start_mark);

		berror(b, &e->start_mark, "aliases (*) are not allowed");
		if (!n || !(n->value = strdup(""))) {
			ynode_free(n);
			return -ENOMEM;
		}
		n->plain = true;
		return attach(b, n, &e->start_mark);
	}
	case YAML_SCALAR_EVENT:
		return on_scalar(b, e);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, e, YNODE_MAPPING);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, e, YNODE_SEQUENCE);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	default:
		return 0;
	}
}

static void syntax_error(struct builder *b, const yaml_parser_t *p)
{
	const yaml_mark_t *m = &p->problem_mark;
	char msg[256];

	if (p->error == YAML_MEMORY_ERROR) {
		berror(b, m, "out of memory while parsing YAML");
		return;
	}
	if (p->context)
		snprintf(msg, sizeof(msg), "YAML syntax error: %s %s", p->problem ? p->problem : "error", p->context);
	else
		snprintf(msg, sizeof(msg), "YAML syntax error: %s", p->problem ? p->problem : "error");
	b->bad = true;
	(void)diags_add(b->diags, DIAG_ERROR, (unsigned)m->line + 1, (unsigned)m->column + 1, "", "%s", msg);
}

int yaml_tree_parse(const char *data, size_t size, const struct yaml_limits *limits, struct diags *diags,
		    struct ynode **ret)
{
	struct builder b = { .limits = limits, .diags = diags };
	yaml_parser_t parser;
	unsigned docs = 0;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, size);
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	for (;;) {
		yaml_event_t e;
		bool end;

		if (!yaml_parser_parse(&parser, &e)) {
			syntax_error(&b, &parser);
			break;
		}
		end = e.type == YAML_STREAM_END_EVENT;
		r = on_event(&b, &e, &docs);
		yaml_event_delete(&e);
		if (r < 0 || end || b.stop)
			break;
	}
	yaml_parser_delete(&parser);
	if (r < 0 || b.bad) {
		ynode_free(b.root);
		return r < 0 ? r : -EINVAL;
	}
	*ret = b.root;
	return 0;
}

/* YAML 1.1 implicit typing, as PyYAML and many editors apply it to plain
 * (unquoted) scalars: where we want a string, a plain scalar that such a
 * reader takes for a bool, an int, a float, a date or null is refused, so
 * that "no" never silently becomes false and 1:20 never becomes 80. These
 * matchers follow the resolver patterns of the YAML 1.1 type repository
 * (yaml.org/type/{bool,int,float,timestamp,null}.html). */
static const char *skip_sign(const char *s)
{
	return (*s == '+' || *s == '-') ? s + 1 : s;
}

/* [set]* from s; returns the end. */
static const char *span(const char *s, const char *set)
{
	while (*s && strchr(set, *s))
		s++;
	return s;
}

#define DIGITS "0123456789"

/* (:[0-5]?[0-9])+ ; NULL when there is none. */
static const char *sexagesimal_tail(const char *s)
{
	const char *p = s;

	while (*p == ':') {
		const char *q = p + 1;

		if (q[0] >= '0' && q[0] <= '5' && q[1] >= '0' && q[1] <= '9')
			p = q + 2;
		else if (q[0] >= '0' && q[0] <= '9')
			p = q + 1;
		else
			break;
	}
	return p == s ? NULL : p;
}

static bool yaml11_int(const char *s)
{
	const char *p = skip_sign(s), *q;

	if (p[0] == '0' && p[1] == 'b')
		return p[2] && !*span(p + 2, "01_");
	if (p[0] == '0' && p[1] == 'x')
		return p[2] && !*span(p + 2, DIGITS "abcdefABCDEF_");
	if (p[0] == '0')
		return !*span(p + 1, "01234567_");
	if (!(p[0] >= '1' && p[0] <= '9'))
		return false;
	q = span(p + 1, DIGITS "_");
	if (!*q)
		return true;
	q = sexagesimal_tail(q);
	return q && !*q;
}

static bool exponent_ok(const char *p)
{
	if (!*p)
		return true;
	if ((*p != 'e' && *p != 'E') || (p[1] != '+' && p[1] != '-') || !p[2])
		return false;
	return !*span(p + 2, DIGITS);
}

static bool yaml11_float(const char *s)
{
	const char *p = skip_sign(s), *q;

	if (streq(p, ".inf") || streq(p, ".Inf") || streq(p, ".INF"))
		return true;
	if (streq(s, ".nan") || streq(s, ".NaN") || streq(s, ".NAN"))
		return true;
	if (s[0] == '.' && s[1] >= '0' && s[1] <= '9')
		return exponent_ok(span(s + 1, DIGITS "_"));
	if (!(p[0] >= '0' && p[0] <= '9'))
		return false;
	q = span(p + 1, DIGITS "_");
	if (*q == ':') {
		q = sexagesimal_tail(q);
		return q && *q == '.' && !*span(q + 1, DIGITS "_");
	}
	if (*q != '.')
		return false;
	return exponent_ok(span(q + 1, DIGITS "_"));
}

/* Only the date form YYYY-MM-DD; a full timestamp has a space or 'T' and
 * a time, which no field of ours looks like either. */
static bool yaml11_date(const char *s)
{
	static const char form[] = "dddd-dd-dd";

	if (strlen(s) != sizeof(form) - 1)
		return false;
	for (size_t i = 0; form[i]; i++)
		if (form[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != '-')
			return false;
	return true;
}

bool ynode_plain_is_typed(const struct ynode *n)
{
	static const char *const bools[] = { "yes",  "Yes",  "YES",   "no",    "No",    "NO",
					     "true", "True", "TRUE",  "false", "False", "FALSE",
					     "on",   "On",   "ON",    "off",   "Off",   "OFF" };

	if (!n->plain)
		return false;
	if (ynode_is_null(n))
		return true;
	for (size_t i = 0; i < ELEMENTSOF(bools); i++)
		if (streq(n->value, bools[i]))
			return true;
	return yaml11_int(n->value) || yaml11_float(n->value) || yaml11_date(n->value);
}

/* ---- writing ------------------------------------------------------------------ */

struct yaml_out {
	yaml_emitter_t emitter;
	char *buf; /* NUL-terminated once finished */
	size_t len, cap, max;
	unsigned depth; /* collections open */
	int error;      /* the first one; later calls do nothing */
};

static void out_fail(struct yaml_out *y, int error)
{
	if (!y->error)
		y->error = error;
}

/* Keeps one byte spare for the NUL. */
static int out_append(struct yaml_out *y, const void *p, size_t n)
{
	if (n > y->max - y->len)
		return -EFBIG;
	if (y->len + n + 1 > y->cap) {
		size_t cap = y->cap ? y->cap : 1024;
		char *b;

		while (cap < y->len + n + 1)
			cap *= 2;
		/* not realloc: the old copy is wiped (documents may hold secrets) */
		b = malloc(cap);
		if (!b)
			return -ENOMEM;
		if (y->buf) {
			memcpy(b, y->buf, y->len);
			explicit_wipe(y->buf, y->cap);
			free(y->buf);
		}
		y->buf = b;
		y->cap = cap;
	}
	memcpy(y->buf + y->len, p, n);
	y->len += n;
	return 0;
}

/* libyaml's write handler: 1 written, 0 failed. */
static int out_write(void *data, unsigned char *buffer, size_t size)
{
	struct yaml_out *y = data;
	int r = out_append(y, buffer, size);

	if (r < 0)
		out_fail(y, r);
	return r == 0;
}

/* libyaml destroys the event even when emitting fails; so do we when an
 * earlier error makes us skip it. */
static void out_emit(struct yaml_out *y, yaml_event_t *e)
{
	if (y->error) {
		yaml_event_delete(e);
		return;
	}
	if (!yaml_emitter_emit(&y->emitter, e))
		out_fail(y, y->emitter.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL);
}

int yaml_out_new(const char *header, size_t max_bytes, struct yaml_out **ret)
{
	_cleanup_(yaml_out_freep) struct yaml_out *y = calloc(1, sizeof(*y));
	yaml_event_t e;
	int r;

	if (!y)
		return -ENOMEM;
	y->max = max_bytes;
	if (!yaml_emitter_initialize(&y->emitter)) {
		free(TAKE_PTR(y));
		return -ENOMEM;
	}
	r = out_append(y, header ? header : "", header ? strlen(header) : 0);
	if (r < 0)
		return r;
	yaml_emitter_set_output(&y->emitter, out_write, y);
	yaml_emitter_set_unicode(&y->emitter, 0); /* ASCII out: the rest \u-escaped */
	yaml_emitter_set_width(&y->emitter, -1);  /* never fold a long line */
	yaml_emitter_set_indent(&y->emitter, 2);
	yaml_emitter_set_break(&y->emitter, YAML_LN_BREAK);
	if (!yaml_stream_start_event_initialize(&e, YAML_UTF8_ENCODING))
		return -ENOMEM;
	out_emit(y, &e);
	if (!yaml_document_start_event_initialize(&e, NULL, NULL, NULL, 1))
		return -ENOMEM;
	out_emit(y, &e);
	if (y->error)
		return y->error;
	*ret = TAKE_PTR(y);
	return 0;
}

struct yaml_out *yaml_out_free(struct yaml_out *y)
{
	if (!y)
		return NULL;
	/* libyaml's own output buffer held the text last written */
	if (y->emitter.buffer.start)
		explicit_wipe(y->emitter.buffer.start, (size_t)(y->emitter.buffer.end - y->emitter.buffer.start));
	yaml_emitter_delete(&y->emitter);
	if (y->buf)
		explicit_wipe(y->buf, y->cap);
	free(y->buf);
	free(y);
	return NULL;
}

void yaml_out_map_start(struct yaml_out *y)
{
	yaml_event_t e;

	if (y->error)
		return;
	if (!yaml_mapping_start_event_initialize(&e, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)) {
		out_fail(y, -ENOMEM);
		return;
	}
	y->depth++;
	out_emit(y, &e);
}

void yaml_out_seq_start(struct yaml_out *y, bool flow)
{
	yaml_event_t e;

	if (y->error)
		return;
	if (!yaml_sequence_start_event_initialize(&e, NULL, NULL, 1,
						  flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE)) {
		out_fail(y, -ENOMEM);
		return;
	}
	y->depth++;
	out_emit(y, &e);
}

static void out_end(struct yaml_out *y, bool map)
{
	yaml_event_t e;
	int ok;

	if (y->error)
		return;
	if (y->depth == 0) {
		out_fail(y, -EINVAL);
		return;
	}
	ok = map ? yaml_mapping_end_event_initialize(&e) : yaml_sequence_end_event_initialize(&e);
	if (!ok) {
		out_fail(y, -ENOMEM);
		return;
	}
	y->depth--;
	out_emit(y, &e);
}

void yaml_out_map_end(struct yaml_out *y)
{
	out_end(y, true);
}

void yaml_out_seq_end(struct yaml_out *y)
{
	out_end(y, false);
}

/* plain_implicit off and quoted_implicit on: a quoted string without a
 * tag, so libyaml never writes a string plain (where "yes" or "0644" would
 * be read back as a bool or a number). libyaml refuses invalid UTF-8
 * here (or runs out of memory: we cannot tell them apart, and say
 * -EINVAL). */
static void out_scalar(struct yaml_out *y, const char *s, bool plain, yaml_scalar_style_t style)
{
	yaml_event_t e;

	if (y->error)
		return;
	if (!yaml_scalar_event_initialize(&e, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain, !plain, style)) {
		out_fail(y, -EINVAL);
		return;
	}
	out_emit(y, &e);
}

void yaml_out_key(struct yaml_out *y, const char *key)
{
	out_scalar(y, key, true, YAML_ANY_SCALAR_STYLE);
}

void yaml_out_str(struct yaml_out *y, const char *s)
{
	out_scalar(y, s, false, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

void yaml_out_text(struct yaml_out *y, const char *s)
{
	out_scalar(y, s, false, YAML_LITERAL_SCALAR_STYLE);
}

void yaml_out_bool(struct yaml_out *y, bool b)
{
	out_scalar(y, b ? "true" : "false", true, YAML_PLAIN_SCALAR_STYLE);
}

void yaml_out_uint(struct yaml_out *y, unsigned long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", v);
	out_scalar(y, buf, true, YAML_PLAIN_SCALAR_STYLE);
}

void yaml_out_node(struct yaml_out *y, const struct ynode *n)
{
	switch (n->kind) {
	case YNODE_SCALAR:
		/* a plain scalar stays plain (a number stays a number), a
		 * quoted one is written quoted; a null is written "null"
		 * (libyaml would quote an empty plain scalar: a string) */
		if (ynode_is_null(n))
			out_scalar(y, "null", true, YAML_PLAIN_SCALAR_STYLE);
		else if (strlen(n->value) != n->len)
			out_fail(y, -EINVAL); /* a NUL inside: no C string holds it */
		else
			out_scalar(y, n->value, n->plain,
				   n->plain ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
		break;
	case YNODE_MAPPING:
		yaml_out_map_start(y);
		for (size_t i = 0; i < n->n && i < n->n_keys; i++) {
			yaml_out_node(y, n->keys[i]);
			yaml_out_node(y, n->items[i]);
		}
		yaml_out_map_end(y);
		break;
	case YNODE_SEQUENCE:
		yaml_out_seq_start(y, false);
		for (size_t i = 0; i < n->n; i++)
			yaml_out_node(y, n->items[i]);
		yaml_out_seq_end(y);
		break;
	}
}

int yaml_out_finish(struct yaml_out *y, char **ret, size_t *ret_len)
{
	yaml_event_t e;

	if (y->depth != 0)
		out_fail(y, -EINVAL);
	if (!y->error) {
		if (!yaml_document_end_event_initialize(&e, 1))
			return -ENOMEM;
		out_emit(y, &e);
	}
	if (!y->error) {
		if (!yaml_stream_end_event_initialize(&e))
			return -ENOMEM;
		out_emit(y, &e);
	}
	if (!y->error && !yaml_emitter_flush(&y->emitter))
		out_fail(y, -EIO);
	if (y->error)
		return y->error;
	y->buf[y->len] = '\0';
	*ret = TAKE_PTR(y->buf);
	*ret_len = y->len;
	return 0;
}
