/* SPDX-License-Identifier: MIT */
/*
 * test-disk-step.c — the disk stages bound to the step engine (disk-step.c):
 * registered for their kinds, run from the plan's own disk steps on a
 * sparse image file, never writing without confirmation or in a dry run,
 * refusing foreign content, and converging on a second run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "disk/disk-step.h"
#include "plan/json-util.h"
#include "plan/plan.h"
#include "plan/run.h"
#include "plan/engine.h"
#include "plan/step.h"
#include "step-ops.h"

static const char yaml[] =
	"version: 1\n"
	"cluster: {name: lab, seed: unit-seed, domain: home.arpa, timezone: UTC}\n"
	"network: {subnet: 10.0.10.0/24, gateway: 10.0.10.1}\n"
	"nodes:\n"
	"  - {name: n1, role: first, mac: \"52:54:00:0a:00:01\", ip: 10.0.10.11, disk: {transport: nvme}}\n"
	"assets:\n"
	"  - {name: rootfs, file: rootfs.tar.zst}\n"
	"proxmox: {rootfs: rootfs, root_password: {secret: root_password}}\n"
	"secrets: {names: [root_password]}\n";

struct fixture {
	char dir[64], image[128];
	struct manifest *m;
	struct plan *plan; /* the node's disk steps, from plan_build() */
	unsigned events[_STEP_EVENT_MAX];
};

static void on_progress(const struct step_progress *p, void *userdata)
{
	struct fixture *f = userdata;

	f->events[p->event]++;
}

/* The plan's disk steps of kinds up to and including `last`. */
static struct plan *disk_steps(const struct manifest *m, enum step_kind last)
{
	struct plan *full = NULL, *sub = plan_new(m, "n1");
	int r;

	assert_non_null(sub);
	assert_int_equal(plan_build(m, "n1", &full), 0);
	for (size_t i = 0; i < full->n_steps; i++) {
		const struct step *s = &full->steps[i];
		if (s->kind < STEP_DISK_SELECT || s->kind > last)
			continue;
		r = plan_add(sub, s->phase, s->kind, s->node, json_object_get(s->params), s->title, "%s", s->id);
		assert_true(r >= 0);
		sub->steps[r].mf_node = s->mf_node;
	}
	plan_free(full);
	return sub;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct diags d = {};
	int fd;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-disk-step.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->image, sizeof(f->image), "%s/disk.img", f->dir);
	fd = open(f->image, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 32LL << 30), 0);
	close(fd);
	assert_int_equal(manifest_load_buffer(yaml, strlen(yaml), "t.yaml", &d, &f->m), 0);
	diags_done(&d);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	plan_free(f->plan);
	manifest_free(f->m);
	unlink(f->image);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Run f->plan with a fresh state on the image; returns step_run's result. */
static int run(struct fixture *f, bool dry, bool confirmed, const char *device, char *err, size_t errsize,
	       enum step_kind *failed)
{
	struct disk_step_state st;
	struct run_ctx ctx;
	int r;

	memset(f->events, 0, sizeof(f->events));
	disk_step_state_init(&st);
	st.device = device ? device : f->image;
	st.ram_bytes = 8ULL << 30;
	st.confirmed = confirmed;
	run_ctx_init(&ctx);
	ctx.ops = step_ops_table;
	ctx.manifest = f->m;
	ctx.node = "n1";
	ctx.dry_run = dry;
	ctx.disk = &st;
	ctx.progress = on_progress;
	ctx.userdata = f;
	r = step_run(&ctx, f->plan, STEP_PHASE_ANY);
	if (err)
		snprintf(err, errsize, "%s", ctx.error);
	if (failed)
		*failed = ctx.failed_step ? ctx.failed_step->kind : _STEP_KIND_MAX;
	run_ctx_done(&ctx);
	disk_step_state_done(&st);
	return r;
}

static blkcnt_t blocks(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_blocks;
}

static void test_registered(void **state)
{
	(void)state;
	assert_non_null(step_ops_table[STEP_DISK_SELECT]);
	assert_non_null(step_ops_table[STEP_DISK_PARTITION]);
	assert_non_null(step_ops_table[STEP_DISK_LVM]);
	assert_non_null(step_ops_table[STEP_DISK_FILESYSTEMS]);
	assert_ptr_equal(step_ops_table[STEP_DISK_LVM], &disk_lvm_ops);
}

static void test_no_state(void **state)
{
	struct fixture *f = *state;
	struct run_ctx ctx;

	f->plan = disk_steps(f->m, STEP_DISK_FILESYSTEMS);
	assert_int_equal(f->plan->n_steps, 4);
	run_ctx_init(&ctx);
	ctx.ops = step_ops_table;
	ctx.manifest = f->m;
	assert_int_equal(step_run(&ctx, f->plan, STEP_PHASE_ANY), -EINVAL);
	assert_non_null(strstr(ctx.error, "no disk state"));
	assert_int_equal(ctx.failed_step->kind, STEP_DISK_SELECT);
	run_ctx_done(&ctx);
}

static void test_dry_run_writes_nothing(void **state)
{
	struct fixture *f = *state;

	f->plan = disk_steps(f->m, STEP_DISK_FILESYSTEMS);
	assert_int_equal(run(f, true, true, NULL, NULL, 0, NULL), 0);
	assert_int_equal(f->events[STEP_EVENT_WOULD_APPLY], 3); /* partition, lvm, filesystems */
	assert_int_equal(f->events[STEP_EVENT_APPLY], 0);
	assert_int_equal(blocks(f->image), 0);
}

static void test_unconfirmed_refuses(void **state)
{
	struct fixture *f = *state;
	enum step_kind failed;
	char err[RUN_ERROR_MAX];

	f->plan = disk_steps(f->m, STEP_DISK_FILESYSTEMS);
	assert_int_equal(run(f, false, false, NULL, err, sizeof(err), &failed), -EPERM);
	assert_int_equal(failed, STEP_DISK_PARTITION);
	assert_non_null(strstr(err, "without confirmation"));
	assert_int_equal(blocks(f->image), 0);
}

static void test_partition_converges(void **state)
{
	struct fixture *f = *state;

	f->plan = disk_steps(f->m, STEP_DISK_PARTITION);
	assert_int_equal(f->plan->n_steps, 2);
	assert_int_equal(run(f, false, true, NULL, NULL, 0, NULL), 0);
	assert_int_equal(f->events[STEP_EVENT_APPLIED], 1);
	assert_true(blocks(f->image) > 0);
	/* a second run finds our GPT: nothing applied, and no confirmation needed */
	assert_int_equal(run(f, false, false, NULL, NULL, 0, NULL), 0);
	assert_int_equal(f->events[STEP_EVENT_APPLIED], 0);
	assert_int_equal(f->events[STEP_EVENT_FOUND_DONE], 2);
}

static void test_foreign_refused(void **state)
{
	struct fixture *f = *state;
	/* an MBR with one Linux partition from sector 2048 */
	static const unsigned char entry[16] = { 0x00, 0, 0, 0, 0x83, 0, 0, 0, 0x00, 0x08, 0, 0, 0x00, 0x00, 0x10, 0 };
	unsigned char sig[2] = { 0x55, 0xaa };
	enum step_kind failed;
	char err[RUN_ERROR_MAX];
	int fd = open(f->image, O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, entry, sizeof(entry), 446), (ssize_t)sizeof(entry));
	assert_int_equal(pwrite(fd, sig, 2, 510), 2);
	close(fd);
	f->plan = disk_steps(f->m, STEP_DISK_FILESYSTEMS);
	assert_int_equal(run(f, false, true, NULL, err, sizeof(err), &failed), -EPERM);
	assert_int_equal(failed, STEP_DISK_SELECT);
	assert_non_null(strstr(err, "wipe: never"));
	assert_int_equal(f->events[STEP_EVENT_APPLY], 0);
}

static void test_missing_device(void **state)
{
	struct fixture *f = *state;
	enum step_kind failed;
	char err[RUN_ERROR_MAX];

	f->plan = disk_steps(f->m, STEP_DISK_FILESYSTEMS);
	assert_true(run(f, false, true, "/nonexistent/disk.img", err, sizeof(err), &failed) < 0);
	assert_int_equal(failed, STEP_DISK_SELECT);
	assert_true(err[0] != '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registered),
		cmocka_unit_test_setup_teardown(test_no_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unconfirmed_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_converges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_device, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
