/* SPDX-License-Identifier: MIT */
/*
 * test-step.c — the step engine with fake ops over a fake "world": order,
 * skipping what is done, resuming after a failure, refusing an apply that
 * does not converge; steps of a concurrent kind on worker threads (how many
 * at once, each worker's own context, the failure first in plan order, no
 * step started after one failed). Calls are counted to prove what ran.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan/journal.h"
#include "plan/json-util.h"
#include "plan/plan.h"
#include "plan/run.h"
#include "plan/engine.h"
#include "plan/step.h"

#define N 5

struct world {
	bool done[N];        /* the "system state" each step converges */
	unsigned checks[N], applies[N];
	int fail_apply;      /* index whose apply fails, -1 none */
	int no_converge;     /* index whose apply returns 0 but changes nothing */
	int fail_check;      /* index whose check fails */
	char events[4096];   /* "index:event;" for every progress report */
};

static struct world W;

static int index_of(const struct step *s)
{
	uint64_t i = 0;

	assert_int_equal(step_param_u64(s, "i", &i), 0);
	assert_true(i < N);
	return (int)i;
}

static int fake_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	int i = index_of(s);

	W.checks[i]++;
	if (i == W.fail_check)
		return run_ctx_error(ctx, -EIO, "fake check %d broke", i);
	*ret_done = W.done[i];
	return 0;
}

static int fake_apply(struct run_ctx *ctx, const struct step *s)
{
	int i = index_of(s);
	struct json_object *res = json_object_new_object();

	W.applies[i]++;
	if (i == W.fail_apply) {
		json_object_put(res);
		return run_ctx_error(ctx, -EIO, "fake apply %d broke", i);
	}
	if (i != W.no_converge)
		W.done[i] = true;
	assert_int_equal(json_add_u64(res, "applied", (uint64_t)i), 0);
	run_ctx_set_result(ctx, res);
	return 0;
}

static const struct step_ops fake_ops = { .check = fake_check, .apply = fake_apply };
static const struct step_ops *const fake_table[_STEP_KIND_MAX] = {
	[STEP_VM] = &fake_ops,
	/* STEP_TEMPLATE deliberately absent: "not implemented" */
};

static void progress(const struct step_progress *p, void *userdata)
{
	size_t len = strlen(W.events);

	(void)userdata;
	assert_int_equal(p->total, N);
	assert_true(p->index >= 1 && p->index <= p->total);
	snprintf(W.events + len, sizeof(W.events) - len, "%zu:%s;", p->index, step_event_to_string(p->event));
}

static char tmpdir[64];
static char journal_path[128];

static int setup(void **state)
{
	(void)state;
	memset(&W, 0, sizeof(W));
	W.fail_apply = W.no_converge = W.fail_check = -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-step.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(journal_path, sizeof(journal_path), "%s/journal", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	(void)unlink(journal_path);
	assert_int_equal(rmdir(tmpdir), 0);
	return 0;
}

/* N steps of the fake kind, ids "test/step-I", param i = I (and v = variant). */
static struct plan *make_plan(unsigned variant)
{
	struct plan *p = plan_new(NULL, NULL);

	assert_non_null(p);
	for (int i = 0; i < N; i++) {
		struct json_object *o = json_object_new_object();
		char title[32];

		assert_int_equal(json_add_u64(o, "i", (uint64_t)i), 0);
		assert_int_equal(json_add_u64(o, "v", i == 2 ? variant : 0), 0);
		snprintf(title, sizeof(title), "Doing step %d", i);
		assert_int_equal(plan_add(p, STEP_PHASE_INSTALL, STEP_VM, "n1", o, title, "test/step-%d", i), i);
	}
	return p;
}

static int run(struct plan *p, bool dry_run, const struct step **ret_failed)
{
	struct journal *j = NULL;
	struct run_ctx ctx;
	int r;

	assert_int_equal(journal_open(journal_path, JOURNAL_CREATE, &j), 0);
	run_ctx_init(&ctx);
	ctx.node = "n1";
	ctx.journal = j;
	ctx.dry_run = dry_run;
	ctx.ops = fake_table;
	ctx.progress = progress;
	W.events[0] = '\0';
	r = step_run(&ctx, p, STEP_PHASE_INSTALL);
	if (ret_failed)
		*ret_failed = ctx.failed_step;
	if (r < 0)
		assert_true(ctx.error[0] != '\0');
	assert_null(ctx.result); /* the engine never leaks a result */
	run_ctx_done(&ctx);
	journal_free(j);
	return r;
}

static size_t journal_count(void)
{
	struct journal *j = NULL;
	size_t n;

	assert_int_equal(journal_open(journal_path, JOURNAL_READ_ONLY, &j), 0);
	n = journal_n_records(j);
	journal_free(j);
	return n;
}

static void test_order_and_skip(void **state)
{
	struct plan *p = make_plan(0);
	struct journal *j = NULL;

	(void)state;
	assert_int_equal(run(p, false, NULL), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(W.applies[i], 1);
		assert_int_equal(W.checks[i], 2); /* before and after apply */
	}
	assert_string_equal(W.events, "1:begin;1:applying;1:done;2:begin;2:applying;2:done;3:begin;3:applying;3:done;"
				      "4:begin;4:applying;4:done;5:begin;5:applying;5:done;");
	assert_int_equal(journal_open(journal_path, JOURNAL_READ_ONLY, &j), 0);
	assert_int_equal(journal_n_records(j), N);
	for (int i = 0; i < N; i++) {
		const struct journal_record *r = journal_get(j, (size_t)i);
		char id[32];
		uint64_t applied = 99;

		snprintf(id, sizeof(id), "test/step-%d", i);
		assert_string_equal(r->id, id); /* in plan order */
		assert_string_equal(r->hash, p->steps[i].params_hash);
		assert_int_equal(r->status, JOURNAL_STATUS_APPLIED);
		assert_string_equal(r->phase, "install");
		assert_string_equal(r->node, "n1");
		assert_int_equal(json_get_u64(r->result, "applied", &applied), 0);
		assert_int_equal(applied, (uint64_t)i);
	}
	journal_free(j);

	/* Re-run: everything confirmed by one check each, nothing applied. */
	memset(W.checks, 0, sizeof(W.checks));
	assert_int_equal(run(p, false, NULL), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(W.applies[i], 1);
		assert_int_equal(W.checks[i], 1);
	}
	assert_non_null(strstr(W.events, "5:done (journal);"));
	assert_int_equal(journal_count(), N); /* nothing appended */
	plan_free(p);
}

static void test_failure_stops_and_resumes(void **state)
{
	struct plan *p = make_plan(0);
	const struct step *failed = NULL;

	(void)state;
	W.fail_apply = 2;
	assert_int_equal(run(p, false, &failed), -EIO);
	assert_ptr_equal(failed, &p->steps[2]);
	assert_int_equal(W.applies[0], 1);
	assert_int_equal(W.applies[1], 1);
	assert_int_equal(W.applies[2], 1);
	assert_int_equal(W.checks[3], 0); /* never looked at */
	assert_int_equal(W.applies[3], 0);
	assert_int_equal(journal_count(), 2);
	assert_non_null(strstr(W.events, "3:failed;"));

	/* Fixed; the re-run resumes at step 2. */
	W.fail_apply = -1;
	assert_int_equal(run(p, false, NULL), 0);
	assert_int_equal(W.applies[0], 1);
	assert_int_equal(W.applies[1], 1);
	assert_int_equal(W.applies[2], 2);
	assert_int_equal(W.applies[3], 1);
	assert_int_equal(W.applies[4], 1);
	assert_int_equal(journal_count(), N);
	plan_free(p);
}

static void test_no_converge_is_error(void **state)
{
	struct plan *p = make_plan(0);
	const struct step *failed = NULL;

	(void)state;
	W.no_converge = 1;
	assert_int_equal(run(p, false, &failed), -EPROTO);
	assert_ptr_equal(failed, &p->steps[1]);
	assert_int_equal(W.applies[1], 1);
	assert_int_equal(W.checks[1], 2);
	assert_int_equal(W.checks[2], 0);
	assert_int_equal(journal_count(), 1); /* the failed step is not recorded */
	plan_free(p);
}

static void test_check_failure(void **state)
{
	struct plan *p = make_plan(0);

	(void)state;
	W.fail_check = 0;
	assert_int_equal(run(p, false, NULL), -EIO);
	assert_int_equal(W.applies[0], 0);
	assert_int_equal(journal_count(), 0);
	plan_free(p);
}

static void test_found_done_and_reapply(void **state)
{
	struct plan *p = make_plan(0);
	struct journal *j = NULL;

	(void)state;
	W.done[1] = true; /* already there before the first run */
	assert_int_equal(run(p, false, NULL), 0);
	assert_int_equal(W.applies[1], 0);
	assert_int_equal(W.checks[1], 1);
	assert_non_null(strstr(W.events, "2:already done;"));
	assert_int_equal(journal_open(journal_path, JOURNAL_READ_ONLY, &j), 0);
	assert_int_equal(journal_find(j, "test/step-1")->status, JOURNAL_STATUS_FOUND);
	journal_free(j);

	/* Something undid step 3 behind our back: the journal says done, the
	 * check says otherwise, so it is applied again. */
	W.done[3] = false;
	assert_int_equal(run(p, false, NULL), 0);
	assert_int_equal(W.applies[3], 2);
	assert_non_null(strstr(W.events, "4:no longer done;4:applying;4:done;"));
	assert_int_equal(journal_count(), N + 1);
	plan_free(p);
}

static void test_params_changed(void **state)
{
	struct plan *p = make_plan(0), *q = make_plan(1);

	(void)state;
	assert_string_not_equal(p->steps[2].params_hash, q->steps[2].params_hash);
	assert_string_equal(p->steps[1].params_hash, q->steps[1].params_hash);
	assert_int_equal(run(p, false, NULL), 0);
	/* A changed manifest: step 2's params differ, so the journal entry does
	 * not count; the world lacks the new version, so it is applied again.
	 * The unchanged steps are skipped on the journal's word plus a check. */
	W.done[2] = false;
	assert_int_equal(run(q, false, NULL), 0);
	assert_non_null(strstr(W.events, "3:parameters changed;3:applying;3:done;"));
	assert_null(strstr(W.events, "2:parameters changed"));
	assert_int_equal(W.applies[2], 2);
	assert_int_equal(W.applies[1], 1);
	plan_free(p);
	plan_free(q);
}

static void test_dry_run(void **state)
{
	struct plan *p = make_plan(0);

	(void)state;
	W.done[0] = true;
	assert_int_equal(run(p, true, NULL), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(W.applies[i], 0);
	assert_non_null(strstr(W.events, "1:already done;"));
	assert_non_null(strstr(W.events, "2:would apply;"));
	assert_int_equal(journal_count(), 0);
	plan_free(p);
}

static void test_not_implemented(void **state)
{
	struct plan *p = plan_new(NULL, NULL);
	struct run_ctx ctx;
	int r;

	(void)state;
	assert_int_equal(plan_add(p, STEP_PHASE_FIRSTBOOT, STEP_TEMPLATE, NULL, NULL, "Creating template t",
				  "cluster/template/%s", "t"),
			 0);
	run_ctx_init(&ctx);
	ctx.ops = fake_table;
	r = step_run(&ctx, p, STEP_PHASE_ANY);
	assert_int_equal(r, -EOPNOTSUPP);
	assert_string_equal(ctx.error, "step template is not implemented in this build");
	assert_ptr_equal(ctx.failed_step, &p->steps[0]);
	run_ctx_done(&ctx);
	/* Phase filter: no install steps, nothing to do. */
	run_ctx_init(&ctx);
	ctx.ops = fake_table;
	assert_int_equal(step_run(&ctx, p, STEP_PHASE_INSTALL), 0);
	run_ctx_done(&ctx);
	plan_free(p);
}

static void test_names_and_ids(void **state)
{
	struct plan *p = plan_new(NULL, NULL);
	char longid[STEP_ID_MAX + 8];

	(void)state;
	for (int k = 0; k < _STEP_KIND_MAX; k++) {
		const char *name = step_kind_to_string((enum step_kind)k);

		assert_non_null(name);
		assert_int_equal(step_kind_from_string(name), k);
	}
	assert_null(step_kind_to_string(_STEP_KIND_MAX));
	assert_int_equal(step_kind_from_string("nope"), -EINVAL);
	assert_int_equal(step_phase_from_string("firstboot"), STEP_PHASE_FIRSTBOOT);
	assert_int_equal(plan_add(p, STEP_PHASE_INSTALL, STEP_VM, NULL, NULL, "x", "a/b"), 0);
	assert_int_equal(plan_add(p, STEP_PHASE_INSTALL, STEP_VM, NULL, NULL, "x", "a/%s", "b"), -EEXIST);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(plan_add(p, STEP_PHASE_INSTALL, STEP_VM, NULL, NULL, "x", "%s", longid), -ENAMETOOLONG);
	assert_int_equal(p->n_steps, 1);
	assert_int_equal(strlen(p->steps[0].params_hash), STEP_HASH_HEX);
	plan_free(p);
}

/* The verb's view: the concatenated progress text of a run. */
static char lines[4096];

static void progress_text(const struct step_progress *p, void *userdata)
{
	size_t len = strlen(lines);
	struct step_progress q = *p;

	(void)userdata;
	q.elapsed_usec = 2100000; /* deterministic */
	assert_true(step_progress_format(&q, lines + len, sizeof(lines) - len) >= 0);
}

static void test_progress_text(void **state)
{
	struct plan *p = make_plan(0);
	struct journal *j = NULL;
	struct run_ctx ctx;

	(void)state;
	W.done[0] = true;
	W.fail_apply = 2;
	assert_int_equal(journal_open(journal_path, JOURNAL_CREATE, &j), 0);
	run_ctx_init(&ctx);
	ctx.journal = j;
	ctx.ops = fake_table;
	ctx.progress = progress_text;
	lines[0] = '\0';
	assert_int_equal(step_run(&ctx, p, STEP_PHASE_ANY), -EIO);
	assert_string_equal(lines, "[1/5] Doing step 0 ... already done\n"
				   "[2/5] Doing step 1 ... done (2.1s)\n"
				   "[3/5] Doing step 2 ... FAILED (2.1s)\n");
	assert_string_equal(ctx.error, "fake apply 2 broke");
	run_ctx_done(&ctx);
	journal_free(j);
	plan_free(p);
}

/* One count across two runs of a phase (as install runs its steps): the
 * second run's steps are numbered after the first's, of the whole. */
static void test_progress_offset(void **state)
{
	struct plan *p = make_plan(0);
	struct run_ctx ctx;

	(void)state;
	run_ctx_init(&ctx);
	ctx.ops = fake_table;
	ctx.progress = progress_text;
	ctx.progress_offset = 7;
	ctx.progress_total = 16;
	lines[0] = '\0';
	W.done[1] = W.done[2] = W.done[3] = true;
	assert_int_equal(step_run(&ctx, p, STEP_PHASE_ANY), 0);
	assert_string_equal(lines, "[8/16] Doing step 0 ... done (2.1s)\n"
				   "[9/16] Doing step 1 ... already done\n"
				   "[10/16] Doing step 2 ... already done\n"
				   "[11/16] Doing step 3 ... already done\n"
				   "[12/16] Doing step 4 ... done (2.1s)\n");
	/* A total too small for the steps is raised: never "[9/8]". */
	ctx.progress_total = 3;
	lines[0] = '\0';
	assert_int_equal(step_run(&ctx, p, STEP_PHASE_ANY), 0);
	assert_non_null(strstr(lines, "[8/12] Doing step 0 ... already done\n"));
	assert_non_null(strstr(lines, "[12/12] Doing step 4 ... already done\n"));
	run_ctx_done(&ctx);
	plan_free(p);
}

/* ---- concurrent steps ------------------------------------------------------- */

/* The fake world of the concurrent ops, shared by the workers: no cmocka
 * assertion runs on a worker thread (they longjmp); the test looks after. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* An apply waits (10 s at most) until `want` applies are under way
	 * at once, or `total` have started: how many run at once is then the
	 * engine's doing, not the machine's load. */
	unsigned want, total, started;
	unsigned in_flight, max_in_flight;
	unsigned inits, dones;
	unsigned own_slot_misses; /* an apply that saw the parent's slot */
	int fail_fast[N];         /* apply fails at once (1) */
	unsigned order[N], n_order; /* the order in which applies ended */
	char parent_slot;         /* its address marks the parent's slot */
	char worker_slot[8];
} C = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static int conc_index(const struct step *s)
{
	uint64_t i = 0;

	return step_param_u64(s, "i", &i) < 0 || i >= N ? 0 : (int)i;
}

static int conc_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	int i = conc_index(s);

	(void)ctx;
	pthread_mutex_lock(&C.lock);
	W.checks[i]++;
	*ret_done = W.done[i];
	pthread_mutex_unlock(&C.lock);
	return 0;
}

static int conc_apply(struct run_ctx *ctx, const struct step *s)
{
	int i = conc_index(s);
	bool fail;

	pthread_mutex_lock(&C.lock);
	W.applies[i]++;
	if (ctx->guests == &C.parent_slot)
		C.own_slot_misses++;
	fail = C.fail_fast[i];
	C.in_flight++;
	C.started++;
	if (C.in_flight > C.max_in_flight)
		C.max_in_flight = C.in_flight;
	pthread_cond_broadcast(&C.cond);
	if (!fail && C.want) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		while (C.in_flight < C.want && C.started < C.total)
			if (pthread_cond_timedwait(&C.cond, &C.lock, &until) != 0)
				break;
	}
	pthread_mutex_unlock(&C.lock);
	if (!fail)
		usleep(20 * 1000);
	pthread_mutex_lock(&C.lock);
	C.in_flight--;
	if (!fail) {
		W.done[i] = true;
		C.order[C.n_order++] = (unsigned)i;
	}
	pthread_mutex_unlock(&C.lock);
	return fail ? run_ctx_error(ctx, -EIO, "fake apply %d broke", i) : 0;
}

static int conc_worker_init(struct run_ctx *w, unsigned index, void *userdata)
{
	(void)userdata;
	if (index >= sizeof(C.worker_slot))
		return -E2BIG;
	C.inits++; /* the engine calls this one worker at a time */
	w->guests = &C.worker_slot[index];
	return 0;
}

static void conc_worker_done(struct run_ctx *w, void *userdata)
{
	(void)userdata;
	if (w->guests != &C.parent_slot)
		C.dones++;
}

static const struct step_ops conc_ops = { .check = conc_check, .apply = conc_apply, .concurrent = true };
static const struct step_ops *const conc_table[_STEP_KIND_MAX] = {
	[STEP_VM] = &conc_ops,
	[STEP_STORAGE] = &fake_ops, /* one at a time: it ends a run of VM steps */
};

static int conc_run(struct plan *p, unsigned jobs, const struct step **ret_failed, char *err, size_t errlen)
{
	struct journal *j = NULL;
	struct run_ctx ctx;
	int r;

	C.in_flight = C.max_in_flight = C.inits = C.dones = C.own_slot_misses = C.n_order = C.started = 0;
	assert_int_equal(journal_open(journal_path, JOURNAL_CREATE, &j), 0);
	run_ctx_init(&ctx);
	ctx.journal = j;
	ctx.ops = conc_table;
	ctx.jobs = jobs;
	ctx.worker_init = conc_worker_init;
	ctx.worker_done = conc_worker_done;
	ctx.guests = &C.parent_slot;
	r = step_run(&ctx, p, STEP_PHASE_INSTALL);
	if (ret_failed)
		*ret_failed = ctx.failed_step;
	if (err)
		snprintf(err, errlen, "%s", ctx.error);
	assert_ptr_equal(ctx.guests, &C.parent_slot); /* the verb's slots are left alone */
	assert_null(ctx.result);
	run_ctx_done(&ctx);
	journal_free(j);
	return r;
}

static void test_concurrent_steps(void **state)
{
	struct plan *p = make_plan(0);

	(void)state;
	C.want = 3;
	C.total = N;
	assert_int_equal(conc_run(p, 3, NULL, NULL, 0), 0);
	for (int i = 0; i < N; i++) {
		assert_true(W.done[i]);
		assert_int_equal(W.applies[i], 1);
		assert_int_equal(W.checks[i], 2); /* before and after apply */
	}
	assert_int_equal(C.max_in_flight, 3);
	assert_int_equal(C.inits, 3);
	assert_int_equal(C.dones, 3);
	assert_int_equal(C.own_slot_misses, 0);
	assert_int_equal(journal_count(), N);

	/* converged: a re-run applies nothing */
	assert_int_equal(conc_run(p, 3, NULL, NULL, 0), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(W.applies[i], 1);
	assert_int_equal(journal_count(), N);
	plan_free(p);
}

static void test_concurrent_one_job(void **state)
{
	struct plan *p = make_plan(0);

	(void)state;
	C.want = 0;
	assert_int_equal(conc_run(p, 1, NULL, NULL, 0), 0);
	assert_int_equal(C.max_in_flight, 1);
	assert_int_equal(C.inits, 0); /* no worker: the verb's own context */
	assert_int_equal(C.n_order, N);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(C.order[i], i);
	plan_free(p);
}

static void test_concurrent_failure(void **state)
{
	struct plan *p = make_plan(0);
	const struct step *failed = NULL;
	char err[RUN_ERROR_MAX];

	(void)state;
	C.want = 0; /* whichever way the workers start, nothing follows step 1 */
	memset(C.fail_fast, 0, sizeof(C.fail_fast));
	C.fail_fast[1] = C.fail_fast[3] = 1;
	assert_int_equal(conc_run(p, 2, &failed, err, sizeof(err)), -EIO);
	assert_non_null(failed);
	assert_string_equal(failed->id, "test/step-1"); /* the first in plan order */
	assert_string_equal(err, "fake apply 1 broke");
	/* step 0 was under way and finished; nothing started after the failure */
	assert_true(W.done[0]);
	assert_int_equal(W.applies[2] + W.applies[3] + W.applies[4], 0);
	assert_int_equal(journal_count(), 1);
	assert_int_equal(C.inits, C.dones);

	/* fixed: the re-run resumes (step 0 done earlier) */
	memset(C.fail_fast, 0, sizeof(C.fail_fast));
	assert_int_equal(conc_run(p, 2, NULL, NULL, 0), 0);
	assert_int_equal(W.applies[0], 1);
	for (int i = 1; i < N; i++)
		assert_true(W.done[i]);
	assert_int_equal(journal_count(), N);
	plan_free(p);
}

/* A step of another kind ends a run: the VM steps before it are all done
 * when it starts, the ones after it start after it. */
static void test_concurrent_runs_end_at_other_kinds(void **state)
{
	struct plan *p = plan_new(NULL, NULL);
	enum step_kind kinds[N] = { STEP_VM, STEP_VM, STEP_STORAGE, STEP_VM, STEP_VM };

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < N; i++) {
		struct json_object *o = json_object_new_object();

		assert_int_equal(json_add_u64(o, "i", (uint64_t)i), 0);
		assert_int_equal(plan_add(p, STEP_PHASE_INSTALL, kinds[i], NULL, o, "Doing", "test/step-%d", i), i);
	}
	C.want = 2;
	C.total = 4;
	assert_int_equal(conc_run(p, 4, NULL, NULL, 0), 0);
	assert_int_equal(C.max_in_flight, 2);
	assert_int_equal(C.n_order, 4); /* the VM steps; step 2 is the one-at-a-time kind */
	assert_true((C.order[0] == 0 && C.order[1] == 1) || (C.order[0] == 1 && C.order[1] == 0));
	assert_true((C.order[2] == 3 && C.order[3] == 4) || (C.order[2] == 4 && C.order[3] == 3));
	assert_int_equal(W.applies[2], 1);
	assert_int_equal(C.inits, 4); /* two workers for each run */
	plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_skip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_stops_and_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_converge_is_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_found_done_and_reapply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_implemented, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_and_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_one_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_runs_end_at_other_kinds, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
