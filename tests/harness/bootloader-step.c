/* SPDX-License-Identifier: MIT */
/*
 * bootloader-step — test harness (not installed): run the bootloader
 * step's check(), apply(), check() on a prepared target root, as the step
 * engine does, with the plan's parameters. For tests/integration/
 * t-bootloader.sh (and QEMU tests that want the step without the rest of
 * `install`).
 *
 *   bootloader-step [--root-uuid UUID] ROOT DISK [PROC [TARGET...]]
 *
 * UUID is the root file system's (the plan's root_uuid; without it the
 * step refuses to run); PROC is where cmdline is read (default /proc; ""
 * for the default); TARGETs replace the plan's ["x86_64-efi", "i386-pc"].
 * The ESP is partition 2, as in the plan. Firmware variables are
 * never written (--no-nvram): a test must not change its host's boot
 * entries. Prints "check: done|not done", "apply: ok|failed: WHY" and
 * "check: ..." again; exit 0 when the step is done at the end, 1 if not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "install/bootloader.h"
#include "disk/disk-step.h"
#include "plan/run.h"
#include "plan/step.h"

static int check(struct run_ctx *ctx, const struct step *s)
{
	bool done = false;
	int r = bootloader_ops.check(ctx, s, &done);

	if (r < 0) {
		printf("check: error: %s\n", ctx->error);
		return r;
	}
	printf("check: %s\n", done ? "done" : "not done");
	return done ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct bootloader_opts opts = { .no_nvram = true };
	struct disk_step_state disk;
	struct step s = { 0 };
	const char *uuid = NULL;
	struct run_ctx ctx;
	int r;

	if (argc > 2 && strcmp(argv[1], "--root-uuid") == 0) {
		uuid = argv[2];
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: %s [--root-uuid UUID] ROOT DISK [PROC [TARGET...]]\n", argv[0]);
		return 2;
	}
	disk_step_state_init(&disk);
	disk.target.path = strdup(argv[2]);
	opts.proc = argc > 3 && argv[3][0] ? argv[3] : NULL;
	s.id = (char *)"node/test/bootloader";
	s.kind = STEP_BOOTLOADER;
	s.phase = STEP_PHASE_INSTALL;
	s.params = json_tokener_parse("{\"loader\":\"grub\",\"targets\":[\"x86_64-efi\",\"i386-pc\"],"
				      "\"esp_partition\":2}");
	if (!disk.target.path || !s.params) {
		disk_step_state_done(&disk);
		json_object_put(s.params);
		return 1;
	}
	if (s.params && uuid)
		json_object_object_add(s.params, "root_uuid", json_object_new_string(uuid));
	if (argc > 4) {
		struct json_object *t = json_object_new_array();

		for (int i = 4; i < argc; i++)
			json_object_array_add(t, json_object_new_string(argv[i]));
		json_object_object_add(s.params, "targets", t);
	}
	run_ctx_init(&ctx);
	ctx.root = argv[1];
	ctx.disk = &disk;
	ctx.boot = &opts;

	r = check(&ctx, &s);
	if (r == 0) {
		ctx.error[0] = '\0';
		r = bootloader_ops.apply(&ctx, &s);
		if (r < 0)
			printf("apply: failed: %s\n", ctx.error);
		else
			printf("apply: ok\n");
		ctx.error[0] = '\0';
		r = check(&ctx, &s);
	}
	fflush(stdout);
	run_ctx_done(&ctx);
	json_object_put(s.params);
	disk_step_state_done(&disk);
	return r == 1 ? 0 : 1;
}
