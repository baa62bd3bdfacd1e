/* SPDX-License-Identifier: MIT */
/*
 * guest-exec.h — commands in a VM through the Proxmox API's QEMU guest
 * agent (agent/exec, exec-status), as the first-boot steps that work
 * inside guests use them (K3s, DNS). Errors are said in the run context
 * (run_ctx_error()); a command's output reaches an error only as its
 * tail, and the input (it may be a secret) never does.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "manifest/manifest.h"
#include "plan/run.h"
#include "pve-guest.h"

#define GUEST_EXEC_MAX_OUT 2048 /* bytes of a failed command's output in an error */

struct guest_exec {
	struct pve_client *pve;     /* borrowed: a cluster member's API */
	uint64_t poll_ms;           /* longest wait between exec-status polls */
	uint64_t timeout_ms;        /* one command, unless said otherwise */
	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

/* The last max bytes of s. */
const char *guest_tail(const char *s, size_t max);

/* Run argv in the VM (input: its standard input, or NULL) and wait for it
 * to exit, at most timeout_ms; *ret_status (optional;
 * pve_exec_status_done() it) gets how it ended, otherwise anything but
 * exit 0 is an error naming the command with its output's tail. */
int guest_run(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm, const char *const *argv,
	      const char *input, uint64_t timeout_ms, struct pve_exec_status *ret_status);
/* data into path with mode (coreutils install from stdin, its
 * directories made). */
int guest_write(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm, const char *path,
		unsigned mode, const char *data);
/* cloud-init has finished (it laid the payload): exit 0, or 2 ("done"
 * with recoverable errors: said through progress, not fatal). */
int guest_settled(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm);
/* systemctl is-active unit: *ret true when it says "active". */
int guest_active(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm, const char *unit,
		 bool *ret);
/* The last lines of a unit's journal into buf (best effort; "" when not
 * readable); ctx's error text is kept. */
void guest_journal(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm, const char *unit,
		   char *buf, size_t size);
