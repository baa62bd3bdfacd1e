/* SPDX-License-Identifier: MIT */
/*
 * guests.h — the first-boot steps that put guests on the cluster, through
 * the Proxmox API only (pve-guest.h). docs/guests.md is the long form.
 *
 *   storage   every node that uses a storage has it active and enabled,
 *             with room for the disks still to be made there; content
 *             types the guest layer needs (`import`, `iso` on `local`)
 *             are enabled through the API when missing, and it says so.
 *   template  one copy of a template on one node: the cloud image from the
 *             bundle uploaded to the node's `local` (content `import`,
 *             SHA-256 checked by Proxmox on receipt), a VM that imports it
 *             as its disk, converted to a template.
 *   vm        one VM: cloned from its template's copy on its node (full or
 *             linked), sized, NIC with its fixed MAC on the bridge, its own
 *             NoCloud seed ISO (and the payload ISO) uploaded and attached,
 *             started; done when the guest agent reports its address.
 *
 * Identity: a guest is ours when its VMID and its name are the plan's. A
 * VMID held by a guest of another name (or on another node, or a template
 * where a VM belongs) is refused (-EEXIST), never overwritten. A VM whose
 * settings drifted is reported (progress) and set back; it is never
 * recreated.
 *
 * The engine's run_ctx->guests slot holds a struct guests_ctx * (owned by
 * the verb, freed with guests_ctx_free()).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "plan/step.h"

struct pve_client;
struct bundle;

struct guests_cfg {
	struct pve_client *client; /* borrowed: a cluster member's API (it proxies to the others) */
	const char *assets_dir;    /* where the bundle's assets are (the extracted bundle's assets/) */
	const struct bundle *bundle; /* borrowed, may be NULL: the signed digests of the assets */
	const char *work_dir;      /* private directory for the ISOs made here */
	uint64_t poll_ms;          /* waits poll this often; default 2000 */
	uint64_t boot_timeout_ms;  /* a started VM's agent and address; default 15 min */
	uint64_t lock_timeout_ms;  /* a template busy with another clone; default 10 min */
	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

struct guests_ctx;

int guests_ctx_new(const struct guests_cfg *cfg, struct guests_ctx **ret);
/* A context for another thread of the step engine (run.h: worker_init):
 * the same configuration with a client of its own (pve_client_clone()) and
 * the scratch directory WORK_DIR/wN; ISOs are still made one at a time
 * across all of them. */
int guests_ctx_clone(const struct guests_ctx *g, unsigned worker, struct guests_ctx **ret);
struct guests_ctx *guests_ctx_free(struct guests_ctx *g);
DEFINE_FREE_FUNC(struct guests_ctx, guests_ctx_free);

extern const struct step_ops guests_storage_ops;
extern const struct step_ops guests_template_ops;
extern const struct step_ops guests_vm_ops;
