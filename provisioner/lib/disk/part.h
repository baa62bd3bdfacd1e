/* SPDX-License-Identifier: MIT */
/*
 * part.h — the GPT of the target disk, through libfdisk (the only module
 * that includes <libfdisk.h>). Reads compare the table on the disk with the
 * wanted layout; the write creates it with the seeded disk GUID and
 * partition UUIDs.
 *
 * The fd is the caller's single, locked open of the target (O_RDWR for
 * part_write); it is never closed here. Errors: -errno, detail in
 * part_errbuf().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "layout.h"
#include "manifest/seed-id.h"

struct part_spec {
	const struct layout *layout;
	char disk_uuid[SEED_UUID_STR];
	char part_uuid[LAYOUT_MAX_PARTS][SEED_UUID_STR]; /* index as layout->parts */
};

enum part_state {
	PART_STATE_EMPTY,   /* no partition table */
	PART_STATE_MATCHES, /* exactly the wanted GPT (ids included) */
	PART_STATE_OURS,    /* a GPT carrying our marker, but not this layout */
	PART_STATE_FOREIGN, /* any other table */
};

const char *part_state_name(enum part_state s);

/* Fill spec's ids from the seed (seed-id.h purposes "disk", "part:N"). */
int part_spec_init(struct part_spec *spec, const struct layout *l, const char *seed, const char *node);

/* Read-only. *why (may be NULL) says what differs when not MATCHES. */
int part_check(int fd, const char *name, const struct part_spec *spec, enum part_state *ret, char *why,
	       size_t whysz);
/* Create the GPT (replacing any table) and re-read it on a block device. */
int part_write(int fd, const char *name, const struct part_spec *spec);

const char *part_errbuf(void);
