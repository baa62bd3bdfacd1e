/* SPDX-License-Identifier: MIT */
/*
 * manifest-internal.h — shared between manifest.c and manifest-fields.c
 * (decoding the YAML tree into struct manifest, field by field from
 * declarative tables), manifest-check.c and manifest-apps.c (the rules
 * that span fields: references, duplicates, addresses inside the subnet)
 * and grammars.c (the values' grammars). Not for other modules.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

#define MF_PATH_MAX 256

/* Where each decoded field was written, so that checks across fields can
 * point at the right line:column by field path. */
struct mf_posent {
	char *path;
	unsigned line, column;
};

struct mf_ctx {
	struct diags *diags;
	char path[MF_PATH_MAX];
	size_t plen;
	struct mf_posent *pos;
	size_t n_pos, cap_pos;
	/* Paths whose value could not be decoded (or is missing): checks
	 * across fields stay silent about them and everything below and
	 * above them, so one mistake gives one diagnostic. */
	char **failed;
	size_t n_failed;
	/* mf_failed() for network.subnet and .gateway, computed once by
	 * manifest_check(): every host address is checked against them. */
	bool subnet_failed, gateway_failed;
	int oom; /* -ENOMEM once memory ran out; decoding stops */
};

struct ynode;

/* The field path: push a key or an index, pop back to a saved length. */
size_t mf_path_push_key(struct mf_ctx *c, const char *key);
size_t mf_path_push_index(struct mf_ctx *c, size_t i);
void mf_path_pop(struct mf_ctx *c, size_t old);
/* Remember where the value at the current path is. */
void mf_record_pos(struct mf_ctx *c, const struct ynode *n);
void mf_vreport(struct mf_ctx *c, enum diag_severity sev, unsigned line, unsigned column, const char *path,
		const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
void mf_ctx_done(struct mf_ctx *c);

/* Report at the recorded position of `path`
 * (falling back to its closest recorded parent). */
void mf_report_at(struct mf_ctx *c, enum diag_severity sev, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define mf_error_at(c, path, ...) mf_report_at(c, DIAG_ERROR, path, __VA_ARGS__)
#define mf_warning_at(c, path, ...) mf_report_at(c, DIAG_WARNING, path, __VA_ARGS__)

/* Like mf_report_at(), for a rule about a mapping as a whole that no value
 * inside it decides (k3s needs a secret): silent only when path itself or
 * a parent failed, not when something below it did. */
void mf_report_whole(struct mf_ctx *c, enum diag_severity sev, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define mf_error_whole(c, path, ...) mf_report_whole(c, DIAG_ERROR, path, __VA_ARGS__)
#define mf_warning_whole(c, path, ...) mf_report_whole(c, DIAG_WARNING, path, __VA_ARGS__)

/* Whether the manifest has a value at exactly this path (decoded or not). */
bool mf_given(const struct mf_ctx *c, const char *path);

/* Mark path as broken (from a check): later checks stay silent on it. */
void mf_mark_failed(struct mf_ctx *c, const char *path);

/* Whether path, a parent or a child of it failed to decode. */
bool mf_failed(const struct mf_ctx *c, const char *path);

/* Cross-field validation and defaults; run after decoding succeeded
 * structurally. Adds diagnostics; returns 0 or -ENOMEM. */
int manifest_check(struct mf_ctx *c, struct manifest *m);
/* The same for gitops, monitoring and registry (manifest-apps.c), after
 * manifest_check(). */
int mf_check_apps(struct mf_ctx *c, struct manifest *m);

/* Helpers of the checks (manifest-check.c). A field path into buf (cut
 * short when too long: it is only looked up and shown). */
__attribute__((format(printf, 3, 4))) const char *mf_pathf(char *buf, size_t size, const char *fmt, ...);
/* *field = strdup(value) unless set: 0 or -ENOMEM. */
int mf_set_default(char **field, const char *value);
/* A secret reference names a declared secret (an error at PATH.secret). */
void mf_check_secret(struct mf_ctx *c, const struct manifest *m, const struct mf_secret *s, const char *path);
/* An asset reference names an asset (an error at path). */
void mf_check_asset_ref(struct mf_ctx *c, const struct manifest *m, const char *name, const char *path);

/* grammars.c: white space or a control character in s (never inside a
 * URL, a revision, a metrics path); HOST or HOST:PORT in s[0..n); a Git
 * URL's form (0, or -EACCES with a password, -EPERM for a user in an
 * http(s) URL, -EINVAL); a Prometheus duration in milliseconds. */
bool mf_has_space_or_control(const char *s);
bool mf_host_port_valid(const char *s, size_t n, bool need_port);
int mf_git_url_kind(const char *s, enum mf_git_url *ret);
bool mf_duration_parse(const char *s, uint64_t *ret_ms);

/* ---- the decoder's tables (manifest-fields.c) --------------------------------
 * A table of struct field per mapping, each row naming a key, the parser of
 * its value, where the value goes and whether the key is required; the
 * parsers of the common kinds of value that the tables in manifest.c name. */

struct field;
typedef int (*field_parser)(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);

struct field {
	const char *key;
	field_parser parse;
	size_t offset;  /* where the value goes, from the struct's start */
	bool required;
	const void *arg; /* parser-specific: a range, a name table, a sub-table */
	size_t offset2;  /* count of an array; has_* flag */
};

struct range {
	uint64_t min, max;
};

struct seq_spec {
	const struct field *fields; /* element table (NULL: scalars) */
	field_parser elem;          /* element parser for scalar lists */
	size_t elem_size;
	size_t max;
	size_t pos_offset; /* struct mf_pos in the element, or SIZE_MAX */
	void (*init)(void *elem); /* defaults that decoding may override, or NULL */
};

#define AT(base, off, type) ((type *)((char *)(base) + (off)))
#define FIELD(k, p, type, member, req, a) { k, p, offsetof(type, member), req, a, 0 }
#define FIELD2(k, p, type, member, member2, req, a) \
	{ k, p, offsetof(type, member), req, a, offsetof(type, member2) }

/* Decode mapping n by the table fields (ended by a row without a key) into
 * base: each problem becomes a diagnostic and decoding goes on; an unknown
 * key and a missing required one are errors. 0, or -EINVAL when n is not a
 * mapping. */
int mf_decode_map(struct mf_ctx *c, const struct ynode *n, const struct field *fields, void *base);

/* A diagnostic at n, its path marked failed; returns -EINVAL. */
__attribute__((format(printf, 3, 4))) int mf_derr(struct mf_ctx *c, const struct ynode *n, const char *fmt, ...);
/* n's text if it is a non-null scalar (else an error naming what it must be, and NULL). */
const char *mf_scalar(struct mf_ctx *c, const struct ynode *n, const char *what);
/* n's text if it is a non-empty string of at most 4096 bytes (a plain
 * scalar YAML would read as another type must be quoted), else NULL. */
const char *mf_string_value(struct mf_ctx *c, const struct ynode *n);
/* A copy of s into the char * field f of base: 0 or -ENOMEM. */
int mf_set_string(struct mf_ctx *c, void *base, const struct field *f, const char *s);
int mf_ipv4_value(struct mf_ctx *c, const struct ynode *n, uint32_t *ret);
/* ADDRESS/PREFIX with the host bits clear. */
int mf_cidr_value(struct mf_ctx *c, const struct ynode *n, struct mf_cidr *ret);

/* Parsers for table rows (field_parser): */
int mf_p_str(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);      /* a string */
int mf_p_label(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);    /* a host name */
int mf_p_dnsname(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);  /* a DNS name */
int mf_p_ident(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);    /* a name */
int mf_p_str_enum(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f); /* f->arg names */
int mf_p_enum(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);     /* index in f->arg */
int mf_p_uint(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);     /* in f->arg's range */
int mf_p_bool(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);
int mf_p_size(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);     /* 20G, 512M, ... */
int mf_p_size_opt(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f); /* the same, marked set */
int mf_p_ipv4(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);
int mf_p_cidr(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);     /* prefix 8..30 */
int mf_p_mac(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);      /* sets offset2's flag */
int mf_p_uuid(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);
int mf_p_seq(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);      /* f->arg: seq_spec */
int mf_p_map(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);      /* f->arg: a table */
int mf_p_ipv4_elem(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f);
