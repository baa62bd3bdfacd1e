/* SPDX-License-Identifier: MIT */
/*
 * yaml-util.h — the one place that meets libyaml. It turns one YAML
 * document into a small tree of struct ynode (scalars, mappings,
 * sequences, each with its line:column), refusing what we never want in a
 * manifest: anchors and aliases (which also kills alias bombs), merge keys
 * ("<<"), duplicate mapping keys, tags, more than one document, nesting
 * deeper than a limit, and more nodes than a limit.
 *
 * Ownership: yaml_tree_parse() returns a tree the caller frees with
 * ynode_free(). Problems go into *diags (all of them that the parser can
 * report; a syntax error stops the parse, since libyaml cannot resume).
 *
 * It also writes YAML, with libyaml's emitter (struct yaml_out, below), so
 * that quoting is libyaml's business and never a format string's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "util.h"

enum ynode_kind { YNODE_SCALAR, YNODE_MAPPING, YNODE_SEQUENCE };

struct ynode {
	enum ynode_kind kind;
	unsigned line, column; /* 1-based */
	/* scalar */
	char *value;
	size_t len;
	bool plain; /* unquoted: may be a number, a bool or null */
	/* mapping: keys[i] (scalars) -> items[i]; sequence: items[i] */
	struct ynode **keys;
	struct ynode **items;
	size_t n, n_keys;
	size_t cap, kcap; /* allocated items, keys */
};

struct yaml_limits {
	size_t max_depth;
	size_t max_nodes;
	size_t max_scalar; /* bytes in one scalar (key or value) */
};

/* Returns 0 and the root node (NULL for an empty document) when the YAML
 * is well formed; -EINVAL with diagnostics otherwise; -ENOMEM. */
int yaml_tree_parse(const char *data, size_t size, const struct yaml_limits *limits, struct diags *diags,
		    struct ynode **ret);
struct ynode *ynode_free(struct ynode *n);

/* A plain scalar that YAML reads as null: "", "~", "null", "Null", "NULL". */
bool ynode_is_null(const struct ynode *n);
const char *ynode_kind_name(const struct ynode *n);

/* Whether a YAML 1.1 reader (PyYAML, many editors) takes this plain scalar
 * for a bool, int, float, date or null rather than a string. */
bool ynode_plain_is_typed(const struct ynode *n);

/* ---- writing ------------------------------------------------------------------
 *
 * One YAML document built event by event with libyaml's emitter: block
 * style, indent 2, no line folding, ASCII output (anything else is
 * \u-escaped inside double quotes), no "---" or "..." markers. The calls
 * do not return errors: the first one (invalid UTF-8 in a string:
 * -EINVAL; the text growing past max_bytes: -EFBIG; -ENOMEM; unbalanced
 * starts and ends: -EINVAL) is kept, later calls do nothing, and
 * yaml_out_finish() returns it, as ferror() does for stdio. The same calls
 * give the same bytes. Every buffer that held the text is wiped when it is
 * let go (a K3s config holds a token, a kubeconfig a key).
 */
struct yaml_out;

/* header (NULL: none) is written verbatim before the YAML, e.g.
 * "#cloud-config\n"; max_bytes bounds the whole text. Returns 0, -EFBIG
 * (the header alone is longer) or -ENOMEM; *ret is freed with
 * yaml_out_free(). */
int yaml_out_new(const char *header, size_t max_bytes, struct yaml_out **ret);
struct yaml_out *yaml_out_free(struct yaml_out *y);
DEFINE_FREE_FUNC(struct yaml_out, yaml_out_free)

/* A mapping's keys and values, or a sequence's items, come between its
 * start and end; flow: [a, b] on one line rather than "- " items. */
void yaml_out_map_start(struct yaml_out *y);
void yaml_out_map_end(struct yaml_out *y);
void yaml_out_seq_start(struct yaml_out *y, bool flow);
void yaml_out_seq_end(struct yaml_out *y);

/* A mapping key: plain (unquoted) where libyaml may write it so. For our
 * own constant keys ("hostname"), which no YAML reader takes for anything
 * but a string. */
void yaml_out_key(struct yaml_out *y, const char *key);
/* A string value, always double-quoted: whatever it holds (": ", "#",
 * quotes, "yes", "0644", "02:00:00:00:00:01"), every YAML reader gets the
 * same string back. */
void yaml_out_str(struct yaml_out *y, const char *s);
/* A multi-line string as a literal block ("|"), kept verbatim; libyaml
 * falls back to double quotes where a literal block cannot hold it. */
void yaml_out_text(struct yaml_out *y, const char *s);
void yaml_out_bool(struct yaml_out *y, bool b);
void yaml_out_uint(struct yaml_out *y, unsigned long long v);

/* A parsed tree (a subtree of yaml_tree_parse()'s) written back: its
 * plain scalars plain, its quoted ones double-quoted, nulls as null, so
 * that a YAML reader gets the same values back; block style throughout.
 * A scalar holding a NUL byte is -EINVAL. */
void yaml_out_node(struct yaml_out *y, const struct ynode *n);
/* Ends the document and hands over its text (the header, then the YAML),
 * NUL-terminated, in *ret (the caller frees it) and its length in
 * *ret_len. Returns 0 or the first error; y is spent either way (free it). */
int yaml_out_finish(struct yaml_out *y, char **ret, size_t *ret_len);
