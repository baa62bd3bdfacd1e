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
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

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
