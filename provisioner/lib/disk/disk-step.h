/* SPDX-License-Identifier: MIT */
/*
 * disk-step.h — the disk stages bound to the step engine: the plan's
 * node/NAME/disk/{select,partition,lvm,filesystems} steps (kinds
 * disk-select, disk-partition, disk-lvm, disk-filesystems) run through
 * these ops, both in `install` and in `devopslab disk apply`.
 *
 * The state lives in run_ctx's `disk` slot: a struct disk_step_state the
 * verb owns (disk_step_state_init() / disk_step_state_done()). The verb
 * fills in the options; disk-select's check() selects the disk by the
 * node's rules (or takes `device`), opens and locks it, and applies the
 * safety policy — all without writing — unless the verb did that already
 * (disk_step_open()), as `disk apply` does to show the plan and ask first.
 *
 * Nothing is written unless `confirmed` is set (the operator's --yes, or
 * the image's unattended mode) or the disk already carries exactly our GPT
 * (then the stages only finish what a killed run left undone).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "disk-apply.h"
#include "manifest/manifest.h"
#include "plan/step.h"

struct disk_step_state {
	/* Options, set by the verb. */
	const char *device;     /* a block device or image file instead of the rules; NULL = rules */
	const struct disk_probe_opts *probe; /* where the rules look (tests: a fabricated machine); NULL = this one */
	uint64_t ram_bytes;     /* for the swap size; 0 = this machine's MemTotal */
	const char *backup_dir; /* where wipe saves the old tables; NULL = the default */
	bool recovery;          /* disaster-recovery mode: any content may be wiped */
	bool confirmed;         /* the operator agreed to writing (or unattended) */

	/* Filled in by disk_step_open(). */
	bool opened;            /* selected, opened, locked and allowed by the policy */
	bool have_layout;       /* target opened and its layout computed (even if refused) */
	struct disk_target target;
	enum disk_verdict_code verdict;
	char selection[1024];   /* how the disk was chosen, or every candidate when none/several */
	char err[1536];
};

void disk_step_state_init(struct disk_step_state *st);
void disk_step_state_done(struct disk_step_state *st);

/* Select (rules or st->device), open, lock, compute the layout, apply the
 * safety policy. 0, or -errno with st->err: -ENODEV no disk matches,
 * -ENOTUNIQ several match, -EPERM refused by the policy, -ENOSPC too small. */
int disk_step_open(struct disk_step_state *st, const struct manifest *m, const struct mf_node *n);

/* The machine's RAM from /proc/meminfo (512 MiB when unknown, as the
 * Proxmox installer assumes). */
uint64_t disk_step_mem_total(void);

/* True for the four kinds these ops implement (disk-select, -partition,
 * -lvm, -filesystems). */
bool disk_step_kind(enum step_kind k);

extern const struct step_ops disk_select_ops;
extern const struct step_ops disk_partition_ops;
extern const struct step_ops disk_lvm_ops;
extern const struct step_ops disk_filesystems_ops;
