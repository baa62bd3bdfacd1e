/* SPDX-License-Identifier: MIT */
/*
 * cmd-status.c — `devopslab status (--bundle B --pubkey P | --manifest M)
 * [--journal FILE] [--node NAME] [--json]`: which steps of the plan the
 * journal records as done, which were done with other parameters (the
 * manifest changed since), and which are pending. Read-only: the journal
 * is opened without a lock, so it can watch a running install.
 *
 * Node: --node, else this machine's host name if the manifest has it, else
 * the whole cluster's plan.
 *
 * Exit status: 0 shown (whatever the progress); 2 bad usage, invalid
 * manifest or unknown node; 1 unreadable or corrupt journal.
 *
 * `status --live FIRSTBOOT-OPTIONS`: the cluster's own answer rather than
 * the journal's — `firstboot --dry-run` with those options: each step
 * checked against the API, nothing changed, a drifted guest's differences
 * shown (docs/guests.md, "Identity and drift").
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "input.h"
#include "plan/journal.h"
#include "plan/json-util.h"
#include "log.h"
#include "manifest/manifest.h"
#include "plan/plan.h"
#include "util.h"
#include "verbs.h"


struct status_args {
	struct input_opts in;
	const char *journal;
	const char *node;
	bool json;
};

enum state { STATE_DONE, STATE_CHANGED, STATE_PENDING, _STATE_MAX };

static const char *const state_names[_STATE_MAX] = {
	[STATE_DONE] = "done",
	[STATE_CHANGED] = "changed",
	[STATE_PENDING] = "pending",
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: devopslab status (--bundle B --pubkey P | --manifest M) [--journal FILE] [--node NAME] [--json]\n"
		   "       devopslab status --live FIRSTBOOT-OPTIONS...\n"
		   "Show which steps of the plan are done, changed or pending.\n"
		   "With --live, ask the cluster instead of the journal: every step's check against\n"
		   "the Proxmox API, what would change and how each guest differs from the manifest;\n"
		   "`firstboot --dry-run` with the same options (it changes nothing).\n\n"
		   "  --journal FILE  the journal to read (default " JOURNAL_DEFAULT_PATH ")\n"
		   "  --node NAME     the plan of node NAME (default: this host's name, if in the manifest)\n"
		   "  --json          one JSON document on stdout\n");
}

static int parse_args(int argc, char *argv[], struct status_args *a)
{
	static const struct option options[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "pubkey", required_argument, NULL, 'p' },
		{ "manifest", required_argument, NULL, 'm' },
		{ "journal", required_argument, NULL, 'J' },
		{ "node", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	a->journal = JOURNAL_DEFAULT_PATH;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'b': a->in.bundle = optarg; break;
		case 'p': a->in.pubkey = optarg; break;
		case 'm': a->in.manifest = optarg; break;
		case 'J': a->journal = optarg; break;
		case 'n': a->node = optarg; break;
		case 'j': a->json = true; break;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return EXIT_BADINPUT;
		}
	}
	if (optind < argc) {
		log_error("status: unexpected argument '%s'", argv[optind]);
		return EXIT_BADINPUT;
	}
	return input_check(&a->in, "status");
}

/* The machine's own node, when the manifest knows its host name. */
static const char *default_node(const struct manifest *m, char *buf, size_t size)
{
	if (gethostname(buf, size) < 0)
		return NULL;
	buf[size - 1] = '\0';
	return manifest_find_node(m, buf) ? buf : NULL;
}

static enum state step_state(const struct journal *j, const struct step *s, const struct journal_record **ret)
{
	const struct journal_record *r = j ? journal_find(j, s->id) : NULL;

	*ret = r;
	if (!r)
		return STATE_PENDING;
	return streq(r->hash, s->params_hash) ? STATE_DONE : STATE_CHANGED;
}

static void print_text(const struct status_args *a, const struct plan *p, const struct journal *j)
{
	size_t count[_STATE_MAX] = {};

	for (size_t i = 0; i < p->n_steps; i++) {
		const struct journal_record *r;
		enum state st = step_state(j, &p->steps[i], &r);

		count[st]++;
		printf("%4zu. %-8s %s [%s]", i + 1, state_names[st], p->steps[i].title, p->steps[i].id);
		if (r)
			printf(" %s %s", journal_status_to_string(r->status), r->time);
		putchar('\n');
	}
	if (!j)
		printf("No journal at %s yet.\n", a->journal);
	printf("%s: %zu of %zu steps done, %zu changed, %zu pending\n", p->node ? p->node : "cluster",
	       count[STATE_DONE], p->n_steps, count[STATE_CHANGED], count[STATE_PENDING]);
}

static int print_json(const struct status_args *a, const struct plan *p, const struct journal *j)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	struct json_object *steps = json_object_new_array();
	size_t count[_STATE_MAX] = {};
	int r = 0;

	if (!o || !steps || json_add(o, "journal", json_object_new_string(a->journal)) < 0 ||
	    json_add_bool(o, "journal_exists", j != NULL) < 0 || json_add_string(o, "node", p->node) < 0) {
		json_object_put(steps);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_steps && r >= 0; i++) {
		const struct journal_record *rec;
		enum state st = step_state(j, &p->steps[i], &rec);
		struct json_object *s = json_object_new_object();

		count[st]++;
		if (!s)
			r = -ENOMEM;
		if (r >= 0)
			r = json_add_u64(s, "index", i + 1);
		if (r >= 0)
			r = json_add_string(s, "id", p->steps[i].id);
		if (r >= 0)
			r = json_add_string(s, "title", p->steps[i].title);
		if (r >= 0)
			r = json_add_string(s, "phase", step_phase_to_string(p->steps[i].phase));
		if (r >= 0)
			r = json_add_string(s, "state", state_names[st]);
		if (r >= 0)
			r = json_add_string(s, "time", rec ? rec->time : NULL);
		if (r >= 0)
			r = json_add_string(s, "status", rec ? journal_status_to_string(rec->status) : NULL);
		if (r >= 0)
			r = json_array_add(steps, s);
		else
			json_object_put(s);
	}
	if (r < 0 || (r = json_add(o, "steps", steps)) < 0)
		return r < 0 ? r : -ENOMEM;
	if ((r = json_add_u64(o, "total", p->n_steps)) < 0 || (r = json_add_u64(o, "done", count[STATE_DONE])) < 0 ||
	    (r = json_add_u64(o, "changed", count[STATE_CHANGED])) < 0 ||
	    (r = json_add_u64(o, "pending", count[STATE_PENDING])) < 0)
		return r;
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	return 0;
}

/* `status --live ...`: `firstboot --dry-run` with the same options. */
static int status_live(int argc, char *argv[])
{
	_cleanup_free_ char **args = calloc((size_t)argc + 2, sizeof(*args));
	int n = 0;

	if (!args)
		return EXIT_FAIL;
	for (int i = 0; i < argc; i++)
		if (!streq(argv[i], "--live"))
			args[n++] = argv[i];
	args[n++] = (char *)"--dry-run";
	args[n] = NULL;
	return verb_firstboot(n, args);
}

int verb_status(int argc, char *argv[])
{
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	_cleanup_(plan_freep) struct plan *p = NULL;
	_cleanup_(journal_freep) struct journal *j = NULL;
	struct status_args a = {};
	char host[256];
	int r;

	for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
		if (streq(argv[i], "--live"))
			return status_live(argc, argv);
	r = parse_args(argc, argv, &a);
	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	r = input_load_manifest(&a.in, &m);
	if (r != EXIT_OK)
		return r;
	if (!a.node)
		a.node = default_node(m, host, sizeof(host));
	r = plan_build(m, a.node, &p);
	if (r < 0) {
		log_error("cannot build the plan: %s", plan_error()[0] ? plan_error() : strerror(-r));
		return r == -ENOENT || r == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
	}
	r = journal_open(a.journal, JOURNAL_READ_ONLY, &j);
	if (r == -ENOENT)
		j = NULL; /* nothing has run yet: everything is pending */
	else if (r < 0) {
		log_error("%s", journal_error());
		return EXIT_FAIL;
	} else if (journal_was_torn(j))
		log_warning("journal '%s' ends in an incomplete record (a run was interrupted); it is ignored",
			    a.journal);
	if (!a.json) {
		print_text(&a, p, j);
		return EXIT_OK;
	}
	r = print_json(&a, p, j);
	if (r < 0) {
		log_error("cannot render the status as JSON: %s", strerror(-r));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
