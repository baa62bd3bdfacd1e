/* SPDX-License-Identifier: MIT */
/*
 * cmd-validate.c — `devopslab validate [--json] MANIFEST`: load the
 * manifest with every check and report every problem, nothing else.
 *
 * Output: one line per diagnostic on stderr,
 *   FILE:LINE:COL: error: PATH: MESSAGE
 * (warnings likewise), then a summary line. With --json, one JSON object
 * on stdout instead. Exit status: 0 valid (warnings allowed), 2 invalid,
 * unreadable or bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "manifest/manifest.h"
#include "util.h"
#include "verbs.h"


static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static size_t count_warnings(const struct diags *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++)
		n += d->items[i].severity == DIAG_WARNING;
	return n;
}

static void print_json(const struct diags *d, const char *file)
{
	fputs("{\"file\":", stdout);
	json_string(stdout, file);
	printf(",\"valid\":%s,\"errors\":%zu,\"warnings\":%zu,\"diagnostics\":[",
	       d->n_errors ? "false" : "true", d->n_errors, count_warnings(d));
	for (size_t i = 0; i < d->n; i++) {
		const struct diag *x = &d->items[i];

		printf("%s{\"severity\":\"%s\",\"line\":%u,\"column\":%u,\"path\":", i ? "," : "",
		       x->severity == DIAG_ERROR ? "error" : "warning", x->line, x->column);
		json_string(stdout, x->path);
		fputs(",\"message\":", stdout);
		json_string(stdout, x->message);
		fputc('}', stdout);
	}
	fputs("]}\n", stdout);
}

static void print_text(const struct diags *d, const char *file)
{
	size_t warnings = count_warnings(d);
	char line[2048];

	for (size_t i = 0; i < d->n; i++)
		if (diags_format(d, i, line, sizeof(line)) >= 0)
			fprintf(stderr, "%s\n", line);
	if (d->n_errors)
		fprintf(stderr, "%s: invalid: %zu error%s, %zu warning%s\n", file, d->n_errors,
			d->n_errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
	else
		fprintf(stderr, "%s: valid, %zu warning%s\n", file, warnings, warnings == 1 ? "" : "s");
}

int verb_validate(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	struct diags d = {};
	bool json = false;
	const char *file;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("Usage: devopslab validate [--json] MANIFEST\n");
			return EXIT_OK;
		default:
			return EXIT_BADINPUT;
		}
	}
	if (argc - optind != 1) {
		log_error("validate: expected one MANIFEST argument (see devopslab --help)");
		return EXIT_BADINPUT;
	}
	file = argv[optind];
	r = manifest_load(file, file, &d, &m);
	if (r < 0 && r != -EINVAL) {
		log_error("cannot read manifest '%s': %s", file, strerror(-r));
		diags_done(&d);
		return EXIT_BADINPUT;
	}
	if (json)
		print_json(&d, file);
	else
		print_text(&d, file);
	diags_done(&d);
	return r < 0 ? EXIT_BADINPUT : EXIT_OK;
}
