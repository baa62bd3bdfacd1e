/* SPDX-License-Identifier: MIT */
/*
 * cmd-report.c — `devopslab report [--report-dir DIR] [--json]`: the final
 * report of the last first-boot run again (report.h), from DIR/report.json:
 * the summary and the plan as executed, or the JSON document itself.
 *
 * Exit status: 0 shown; 1 no report yet, or one that cannot be read; 2 bad
 * usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fileio.h"
#include "log.h"
#include "plan/json-util.h"
#include "report/report.h"
#include "util.h"
#include "verbs.h"

#define REPORT_MAX (16u << 20)

static void usage(FILE *f)
{
	fprintf(f, "Usage: devopslab report [--report-dir DIR] [--json]\n"
		   "Print the report of the last first-boot run: web consoles, where each credential\n"
		   "lives, the kubeconfig, the DNS servers to hand out, the Ansible inventory, the\n"
		   "bundle's digest and the plan as executed with its timings.\n\n"
		   "  --report-dir DIR  where firstboot wrote it (default " REPORT_DIR_DEFAULT ")\n"
		   "  --json            the report as one JSON document\n");
}

int verb_report(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "report-dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	_cleanup_json_ struct json_object *rep = NULL;
	_cleanup_free_ char *text = NULL;
	const char *dir = REPORT_DIR_DEFAULT;
	char path[PATH_MAX];
	struct json_tokener *tok;
	bool json = false;
	size_t size = 0;
	int c, fd, r;
	uint64_t version = 0;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_BADINPUT;
		}
	}
	if (optind < argc) {
		log_error("report: unexpected argument '%s'", argv[optind]);
		return EXIT_BADINPUT;
	}
	if (snprintf(path, sizeof(path), "%s/%s", dir, REPORT_JSON) >= (int)sizeof(path)) {
		log_error("report: the directory name '%s' is too long", dir);
		return EXIT_BADINPUT;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			log_error("no report in '%s' yet: `devopslab firstboot` writes it when its run ends", dir);
		else
			log_error("cannot open '%s': %m", path);
		return EXIT_FAIL;
	}
	r = read_fd_capped(fd, REPORT_MAX, &text, &size);
	close(fd);
	if (r >= 0 && size > REPORT_MAX)
		r = -EFBIG;
	if (r < 0) {
		log_error("cannot read '%s': %s", path, strerror(-r));
		return EXIT_FAIL;
	}
	tok = json_tokener_new();
	if (!tok)
		return EXIT_FAIL;
	rep = json_tokener_parse_ex(tok, text, (int)size);
	if (rep && tok->char_offset < (int)size && strspn(text + tok->char_offset, " \t\r\n") != size - (size_t)tok->char_offset) {
		json_object_put(rep);
		rep = NULL;
	}
	json_tokener_free(tok);
	if (!rep || !json_object_is_type(rep, json_type_object) || json_get_u64(rep, "version", &version) < 0 ||
	    version != REPORT_FORMAT_VERSION) {
		log_error("'%s' is not a report of this version (format %d)", path, REPORT_FORMAT_VERSION);
		return EXIT_FAIL;
	}
	if (json)
		puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		report_print(stdout, rep, true);
	return EXIT_OK;
}
