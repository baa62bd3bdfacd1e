/* SPDX-License-Identifier: MIT */
/*
 * main.c — the verb table and dispatch. `devopslab --help` is printed from
 * the table, so the help and the table cannot disagree; docs/devopslab.1 is
 * checked against --help by tests/integration/t-cli.sh.
 */
#include <getopt.h>
#include <stdio.h>

#include "log.h"
#include "util.h"
#include "verbs.h"

#define DEVOPSLAB_VERSION "0.1.0"

static const struct verb verbs[] = {
	{ "validate", "[--json] MANIFEST", "check a cluster manifest; report every error", verb_validate },
	{ "plan", "(--bundle B --pubkey P | --manifest M) [--node NAME | --recover NAME] [--json]",
	  "print the ordered steps install and firstboot will execute", verb_plan },
	{ "status", "(--bundle B --pubkey P | --manifest M) [--journal FILE] [--node NAME] [--json] | --live FIRSTBOOT-OPTIONS",
	  "show which steps of the plan the journal records as done (--live: as the cluster shows them)", verb_status },
	{ "report", "[--report-dir DIR] [--json]",
	  "print the report of the last first-boot run: consoles, credentials' places, inventory, timings", verb_report },
	{ "bundle create", "--manifest M --assets DIR --key KEY.pem [--secrets FILE --secret-key FILE] -o BUNDLE",
	  "write a signed bundle", verb_bundle_create },
	{ "bundle verify", "--pubkey PUB.pem BUNDLE", "verify a bundle's signature and contents", verb_bundle_verify },
	{ "bundle extract", "--pubkey PUB.pem [--secret-key FILE] BUNDLE DIR",
	  "verify a bundle and write its members into the new directory DIR", verb_bundle_extract },
	{ "firstboot", "(--bundle B --pubkey P [--secret-key FILE] | --manifest M) --node NAME [--journal FILE] [--api NODE=URL]... "
		       "[--fingerprint NODE=SHA256]... [--ca FILE [--ca-key FILE]] [--password-file FILE]",
	  "first boot of a node: the Proxmox cluster, guests and K3s, through their APIs", verb_firstboot },
	{ "disk list", "[--json]", "every whole disk: identity, size, contents, whether in use", verb_disk_list },
	{ "disk plan", "(--bundle B --pubkey P | --manifest M) --node NAME [--device PATH] [--memory SIZE]",
	  "print the node's disk layout and what apply would do; changes nothing", verb_disk_plan },
	{ "disk apply", "(--bundle B --pubkey P | --manifest M) --node NAME [--device PATH] [--yes] [--recovery]",
	  "partition the node's disk: GPT, ESP, LVM (Proxmox installer layout)", verb_disk_apply },
	{ "install", "--bundle B|URL --pubkey P [--node NAME] [--nic NIC] [--secret-key FILE] [--yes] [--target DIR] [--workdir DIR]",
	  "install phase of the boot image: verify, identify, pre-flight, disk, system, boot loader", verb_install },
};

static void help(FILE *f)
{
	fprintf(f, "Usage: devopslab [--verbose|--quiet] VERB [OPTIONS]\n"
		   "       devopslab --help | --version\n\n"
		   "Verbs:\n");
	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		fprintf(f, "  %-14s %s\n  %-14s   %s\n", verbs[i].name, verbs[i].synopsis, "", verbs[i].summary);
	fprintf(f, "\nExit status: 0 ok, 1 failure, 2 bad input or usage, 3 refused by a safety policy,\n"
		   "4 bundle verification failed, 5 incomplete (steps this build cannot run yet),\n"
		   "10 installed (reboot needed).\n"
		   "See devopslab(1).\n");
}

/* Match argv[0] (and argv[1] for two-word verbs) against the table. */
static const struct verb *find_verb(int argc, char *argv[], int *ret_words)
{
	for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
		const char *name = verbs[i].name;
		const char *space = strchr(name, ' ');

		if (!space) {
			if (streq(argv[0], name)) {
				*ret_words = 1;
				return &verbs[i];
			}
			continue;
		}
		if (argc >= 2 && strlen(argv[0]) == (size_t)(space - name) &&
		    strncmp(argv[0], name, (size_t)(space - name)) == 0 && streq(argv[1], space + 1)) {
			*ret_words = 2;
			return &verbs[i];
		}
	}
	return NULL;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{}
	};
	const struct verb *v;
	int c, words = 0;

	/* '+': stop at the verb; the verb parses its own options. */
	while ((c = getopt_long(argc, argv, "+hVvq", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help(stdout);
			return EXIT_OK;
		case 'V':
			printf("devopslab %s\n", DEVOPSLAB_VERSION);
			return EXIT_OK;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'q':
			log_set_level(LOG_LEVEL_WARNING);
			break;
		default:
			help(stderr);
			return EXIT_BADINPUT;
		}
	}
	if (optind >= argc) {
		help(stderr);
		return EXIT_BADINPUT;
	}
	v = find_verb(argc - optind, argv + optind, &words);
	if (!v) {
		log_error("unknown verb '%s' (see devopslab --help)", argv[optind]);
		return EXIT_BADINPUT;
	}
	/* The verb sees argv[0] = its own name, then its options. */
	argv += optind + words - 1;
	argc -= optind + words - 1;
	optind = 0;
	return v->run(argc, argv);
}
