/* SPDX-License-Identifier: MIT */
/*
 * test-gate.c — the install gate steps (bundle-verify, node-identify,
 * preflight) over the example manifest's plan: done only with what the
 * verb established for THIS node, never applied afterwards; and
 * plan_filter() keeping exactly the steps asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node/gate.h"
#include "manifest/manifest.h"
#include "plan/plan.h"
#include "plan/run.h"

struct fixture {
	struct manifest *m;
	struct plan *plan;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct diags d = {};

	assert_non_null(f);
	/* run from the top of the tree, as tests/run.sh does */
	assert_int_equal(manifest_load("examples/homelab.yaml", NULL, &d, &f->m), 0);
	diags_done(&d);
	assert_int_equal(plan_build(f->m, "devops-node-02", &f->plan), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	plan_free(f->plan);
	manifest_free(f->m);
	free(f);
	return 0;
}

static const struct step *find_kind(const struct plan *p, enum step_kind k)
{
	for (size_t i = 0; i < p->n_steps; i++)
		if (p->steps[i].kind == k)
			return &p->steps[i];
	fail_msg("no step of kind %s", step_kind_to_string(k));
	return NULL;
}

static bool check(struct run_ctx *ctx, const struct step_ops *ops, const struct step *s)
{
	bool done = true;

	assert_int_equal(ops->check(ctx, s, &done), 0);
	return done;
}

static void test_gate_ops(void **state)
{
	struct fixture *f = *state;
	const struct step *verify = find_kind(f->plan, STEP_BUNDLE_VERIFY);
	const struct step *ident = find_kind(f->plan, STEP_NODE_IDENTIFY);
	const struct step *pre = find_kind(f->plan, STEP_PREFLIGHT);
	struct install_gate g = {};
	struct run_ctx ctx;

	run_ctx_init(&ctx);
	ctx.manifest = f->m;
	/* no gate at all: nothing is done */
	assert_false(check(&ctx, &gate_bundle_ops, verify));
	assert_false(check(&ctx, &gate_identify_ops, ident));
	assert_false(check(&ctx, &gate_preflight_ops, pre));
	ctx.gate = &g;
	/* verified, but not identified as this step's node */
	g.bundle_verified = true;
	assert_false(check(&ctx, &gate_bundle_ops, verify));
	g.node = "devops-node-01";
	assert_false(check(&ctx, &gate_bundle_ops, verify));
	assert_false(check(&ctx, &gate_identify_ops, ident));
	g.node = "devops-node-02";
	assert_true(check(&ctx, &gate_bundle_ops, verify));
	assert_true(check(&ctx, &gate_identify_ops, ident));
	assert_false(check(&ctx, &gate_preflight_ops, pre));
	g.preflight_passed = true;
	assert_true(check(&ctx, &gate_preflight_ops, pre));
	/* unverified: the bundle step is not done, whatever else */
	g.bundle_verified = false;
	assert_false(check(&ctx, &gate_bundle_ops, verify));

	/* apply never pretends */
	assert_int_equal(gate_bundle_ops.apply(&ctx, verify), -EPERM);
	assert_non_null(strstr(ctx.error, "did not verify"));
	run_ctx_done(&ctx);
	run_ctx_init(&ctx);
	assert_int_equal(gate_identify_ops.apply(&ctx, ident), -EPERM);
	assert_non_null(strstr(ctx.error, "devops-node-02"));
	run_ctx_done(&ctx);
}

static bool is_disk(const struct step *s, void *userdata)
{
	(*(unsigned *)userdata)++;
	return s->kind == STEP_DISK_SELECT || s->kind == STEP_DISK_PARTITION || s->kind == STEP_DISK_LVM ||
	       s->kind == STEP_DISK_FILESYSTEMS;
}

static void test_plan_filter(void **state)
{
	struct fixture *f = *state;
	struct plan *sub = NULL;
	unsigned calls = 0;
	const char *want[] = { "node/devops-node-02/disk/select", "node/devops-node-02/disk/partition",
			       "node/devops-node-02/disk/lvm", "node/devops-node-02/disk/filesystems" };

	assert_int_equal(plan_filter(f->plan, is_disk, &calls, &sub), 0);
	assert_int_equal(calls, f->plan->n_steps);
	assert_int_equal(sub->n_steps, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct step *orig = plan_find_step(f->plan, want[i]);

		assert_string_equal(sub->steps[i].id, want[i]);
		assert_non_null(orig);
		assert_string_equal(sub->steps[i].params_hash, orig->params_hash);
		assert_ptr_equal(sub->steps[i].mf_node, orig->mf_node);
		assert_string_equal(sub->steps[i].title, orig->title);
	}
	plan_free(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gate_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_filter, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
