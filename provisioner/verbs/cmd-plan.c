/* SPDX-License-Identifier: MIT */
/*
 * cmd-plan.c — `devopslab plan (--bundle B --pubkey P | --manifest M)
 * [--node NAME | --recover NAME] [--json]`: print the ordered steps
 * `install` and `firstboot` will execute, with every parameter; with
 * --recover, those of rebuilding that node (docs/operations.md). No side effects: nothing
 * is probed, written or contacted. docs/plan.md describes the steps.
 *
 * Exit status: 0 printed; 2 bad usage, invalid manifest or unknown node;
 * 4 bundle verification failed; 1 anything else.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "input.h"
#include "plan/json-util.h"
#include "log.h"
#include "manifest/manifest.h"
#include "plan/plan.h"
#include "util.h"
#include "verbs.h"


struct plan_args {
	struct input_opts in;
	const char *node, *recover;
	bool json;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: devopslab plan (--bundle B --pubkey P | --manifest M) [--node NAME | --recover NAME] [--json]\n"
		   "Print the ordered steps install and firstboot will execute.\n\n"
		   "  --bundle B      signed bundle (verified with --pubkey before it is read)\n"
		   "  --pubkey P      public key (PEM) the bundle must be signed with\n"
		   "  --manifest M    an unsigned draft manifest instead of a bundle\n"
		   "  --node NAME     only the steps the node NAME executes\n"
		   "  --recover NAME  what rebuilding the dead node NAME does: its steps and the\n"
		   "                  cluster-wide ones it then runs, each marked with what it brings back\n"
		   "  --json          one JSON document on stdout\n");
}

static int parse_args(int argc, char *argv[], struct plan_args *a)
{
	static const struct option options[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "pubkey", required_argument, NULL, 'p' },
		{ "manifest", required_argument, NULL, 'm' },
		{ "node", required_argument, NULL, 'n' },
		{ "recover", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'b': a->in.bundle = optarg; break;
		case 'p': a->in.pubkey = optarg; break;
		case 'm': a->in.manifest = optarg; break;
		case 'n': a->node = optarg; break;
		case 'r': a->recover = optarg; break;
		case 'j': a->json = true; break;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return EXIT_BADINPUT;
		}
	}
	if (optind < argc) {
		log_error("plan: unexpected argument '%s'", argv[optind]);
		return EXIT_BADINPUT;
	}
	if (a->node && a->recover) {
		log_error("plan: --node and --recover exclude each other (a recovery plan is the node's own)");
		return EXIT_BADINPUT;
	}
	return input_check(&a->in, "plan");
}

static int print_json(const struct plan *p)
{
	_cleanup_json_ struct json_object *o = NULL;
	int r = plan_to_json(p, &o);

	if (r < 0) {
		log_error("cannot render the plan as JSON: %s", strerror(-r));
		return EXIT_FAIL;
	}
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

int verb_plan(int argc, char *argv[])
{
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	_cleanup_(plan_freep) struct plan *p = NULL;
	struct plan_args a = {};
	int r;

	r = parse_args(argc, argv, &a);
	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	r = input_load_manifest(&a.in, &m);
	if (r != EXIT_OK)
		return r;
	r = a.recover ? plan_build_recover(m, a.recover, &p) : plan_build(m, a.node, &p);
	if (r < 0) {
		log_error("cannot build the plan: %s", plan_error()[0] ? plan_error() : strerror(-r));
		return r == -ENOENT || r == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
	}
	if (a.json)
		return print_json(p);
	r = plan_print_text(stdout, p);
	if (r < 0) {
		log_error("%s", plan_error());
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
