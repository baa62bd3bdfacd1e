/* SPDX-License-Identifier: MIT */
/*
 * guest-exec.c — see guest-exec.h.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "guest-exec.h"
#include "http.h"
#include "log.h"
#include "pve.h"
#include "util.h"

const char *guest_tail(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > max ? s + n - max : s;
}

int guest_run(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm, const char *const *argv,
	      const char *input, uint64_t timeout_ms, struct pve_exec_status *ret_status)
{
	struct pve_exec_status st = {};
	uint64_t deadline = http_now_ms() + timeout_ms, delay = 200;
	unsigned pid;
	int r = pve_vm_agent_exec(g->pve, vm->target_node, vm->vmid, argv, input, &pid);

	if (r < 0)
		return run_ctx_error(ctx, r, "%s: cannot run %s in the guest: %s", vm->name, argv[0],
				     pve_client_error(g->pve));
	for (;;) {
		r = pve_vm_agent_exec_status(g->pve, vm->target_node, vm->vmid, pid, &st);
		if (r < 0)
			return run_ctx_error(ctx, r, "%s: %s: %s", vm->name, argv[0], pve_client_error(g->pve));
		if (st.exited)
			break;
		pve_exec_status_done(&st);
		if (http_now_ms() >= deadline)
			return run_ctx_error(ctx, -ETIMEDOUT, "%s: %s did not finish within %" PRIu64 " s", vm->name,
					     argv[0], timeout_ms / 1000);
		sleep_ms(delay);
		delay = delay * 2 > g->poll_ms ? g->poll_ms : delay * 2;
	}
	if (ret_status) {
		*ret_status = st;
		return 0;
	}
	if (st.exitcode != 0) {
		r = run_ctx_error(ctx, -EIO, "%s: %s %s failed (exit %d%s): %s%s", vm->name, argv[0],
				  argv[1] ? argv[1] : "", st.exitcode, st.signal >= 0 ? ", signal" : "",
				  guest_tail(st.err, GUEST_EXEC_MAX_OUT), guest_tail(st.out, GUEST_EXEC_MAX_OUT));
		pve_exec_status_done(&st);
		return r;
	}
	pve_exec_status_done(&st);
	return 0;
}

int guest_write(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm, const char *path,
		unsigned mode, const char *data)
{
	char m[8];
	const char *argv[] = { "/usr/bin/install", "-D", "-m", m, "/dev/stdin", path, NULL };

	snprintf(m, sizeof(m), "%04o", mode & 07777);
	return guest_run(ctx, g, vm, argv, data, g->timeout_ms, NULL);
}

int guest_settled(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm)
{
	const char *argv[] = { "cloud-init", "status", "--wait", NULL };
	struct pve_exec_status st = {};
	char msg[512];
	int r = guest_run(ctx, g, vm, argv, NULL, g->timeout_ms, &st);

	if (r < 0)
		return r;
	if (st.exitcode == 2) {
		snprintf(msg, sizeof(msg), "%s: cloud-init finished with recoverable errors: %s", vm->name,
			 guest_tail(st.out, 256));
		if (g->progress)
			g->progress(g->userdata, msg);
		else
			log_info("%s", msg);
	} else if (st.exitcode != 0)
		r = run_ctx_error(ctx, -EIO, "%s: cloud-init failed (exit %d): %s", vm->name, st.exitcode,
				  guest_tail(st.out, GUEST_EXEC_MAX_OUT));
	pve_exec_status_done(&st);
	return r;
}

int guest_active(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm, const char *unit,
		 bool *ret)
{
	const char *argv[] = { "systemctl", "is-active", unit, NULL };
	struct pve_exec_status st = {};
	int r = guest_run(ctx, g, vm, argv, NULL, g->timeout_ms, &st);

	if (r < 0)
		return r;
	*ret = st.exitcode == 0 && strncmp(st.out, "active", 6) == 0;
	pve_exec_status_done(&st);
	return 0;
}

void guest_journal(struct run_ctx *ctx, const struct guest_exec *g, const struct mf_vm *vm, const char *unit,
		   char *buf, size_t size)
{
	const char *argv[] = { "journalctl", "-u", unit, "-n", "15", "--no-pager", "-o", "cat", NULL };
	struct pve_exec_status st = {};
	char saved[RUN_ERROR_MAX];

	buf[0] = 0;
	memcpy(saved, ctx->error, sizeof(saved));
	if (guest_run(ctx, g, vm, argv, NULL, 30000, &st) >= 0) {
		snprintf(buf, size, "%s", guest_tail(st.out, size - 1));
		pve_exec_status_done(&st);
	}
	memcpy(ctx->error, saved, sizeof(saved)); /* a failure here is not the step's */
}
