/* SPDX-License-Identifier: MIT */
/*
 * disk-select.h — a node's manifest rules (struct mf_disk_rules) pick
 * exactly one disk of a struct disk_list; every candidate gets a verdict
 * with the reason it matched or not, so a failure can list them all.
 *
 * Ownership: the verdicts array belongs to struct disk_selection (freed
 * with disk_selection_done()); it points into the disk_list, which must
 * outlive it.
 */
#pragma once

#include "disk.h"
#include "manifest/manifest.h"

struct disk_verdict {
	const struct disk *disk;
	bool match;
	char reason[256]; /* "serial 'S1' matches" / "size 32.0 GiB < min_size 100.0 GiB" */
};

struct disk_selection {
	const struct disk *chosen;  /* set when exactly one matched */
	struct disk_verdict *verdicts;
	size_t n, n_matches;
};

/* 0 and sel->chosen when exactly one disk matches; -ENODEV when none,
 * -ENOTUNIQ when several (the verdicts say why, either way); -EINVAL when
 * the rules select nothing at all (no rule given). */
int disk_select(const struct disk_list *l, const struct mf_disk_rules *rules, struct disk_selection *ret);
void disk_selection_done(struct disk_selection *s);

/* "1.0 TiB", "512.0 MiB" */
void disk_format_size(uint64_t bytes, char *buf, size_t size);
