/* SPDX-License-Identifier: MIT */
/*
 * journal.h — the append-only record of finished steps (docs/plan.md).
 *
 * The file is JSON Lines: one object per finished step, written with a
 * single write() and fsync()'d before the step counts as done; the
 * directory is fsync()'d when the file is created. A power cut can leave an
 * incomplete last line (no trailing newline): reading ignores it, and a
 * writable open truncates it away before anything is appended. Any other
 * malformed line is an error (-EBADMSG): the journal is not guessed at.
 *
 * A writable journal is flock()ed (LOCK_EX|LOCK_NB) for its lifetime, so
 * two runs cannot interleave: the second gets -EBUSY. A read-only open
 * takes no lock (status may look at a running install).
 *
 * Ownership: journal_open() returns a journal the caller frees with
 * journal_free() (closes the file, releases the lock). Records returned by
 * journal_find()/journal_get() belong to the journal.
 *
 * Errors: functions return 0 or -errno; journal_error() gives the detail of
 * the last failure (file, line, what).
 */
#pragma once

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct journal;

#define JOURNAL_DEFAULT_PATH "/var/lib/devopslab/journal"
#define JOURNAL_MAX_RECORD (64u << 10)    /* bytes per line, newline included */
#define JOURNAL_MAX_BYTES (16u << 20)     /* whole file */
#define JOURNAL_MAX_DEPTH 16              /* JSON nesting of a record */
#define JOURNAL_FORMAT_VERSION 1

enum journal_status {
	JOURNAL_STATUS_APPLIED, /* "applied": apply() ran and check() confirmed */
	JOURNAL_STATUS_FOUND,   /* "found": check() said done before any apply */
	_JOURNAL_STATUS_MAX,
};

const char *journal_status_to_string(enum journal_status s);

struct journal_record {
	char *id;     /* step id */
	char *phase;  /* "install" | "firstboot" */
	char *node;   /* NULL for cluster-wide steps */
	char *time;   /* RFC 3339 UTC, "2026-11-25T05:00:00Z" */
	enum journal_status status;
	char hash[65];              /* the step's params hash (64 hex digits) */
	uint64_t elapsed_ms;
	struct json_object *result; /* may be NULL */
};

enum {
	JOURNAL_READ_ONLY = 1 << 0, /* no lock, no writes; the file must exist */
	JOURNAL_CREATE = 1 << 1,    /* writable: create the file (and fsync its directory) if missing */
};

int journal_open(const char *path, unsigned flags, struct journal **ret);
struct journal *journal_free(struct journal *j);

/* Parse journal text from memory (what journal_open() does after reading
 * the file). *ret_valid is the length of the complete lines, which is less
 * than size when the last line is torn. For the fuzzer and tests. */
int journal_parse(const char *data, size_t size, struct journal **ret, size_t *ret_valid);

/* Append one record: fills rec->time if NULL (the record is copied; the
 * caller keeps rec and its result). -EROFS on a read-only journal,
 * -E2BIG when the line exceeds JOURNAL_MAX_RECORD, -EFBIG when the file
 * would exceed JOURNAL_MAX_BYTES. Returns after fsync(). */
int journal_append(struct journal *j, const struct journal_record *rec);

/* The latest record for a step id, or NULL. */
const struct journal_record *journal_find(const struct journal *j, const char *id);
size_t journal_n_records(const struct journal *j);
const struct journal_record *journal_get(const struct journal *j, size_t i);

/* True when the last open found (and, if writable, removed) a torn final line. */
bool journal_was_torn(const struct journal *j);

const char *journal_error(void);

DEFINE_FREE_FUNC(struct journal, journal_free)
