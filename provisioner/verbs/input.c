/* SPDX-License-Identifier: MIT */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "verbs.h"

int input_check(const struct input_opts *in, const char *verb)
{
	if (in->manifest && (in->bundle || in->pubkey)) {
		log_error("%s: give either --manifest or --bundle with --pubkey, not both", verb);
		return EXIT_BADINPUT;
	}
	if (!in->manifest && !in->bundle) {
		log_error("%s: --bundle B --pubkey P (or --manifest M for a draft) is required", verb);
		return EXIT_BADINPUT;
	}
	if (in->bundle && !in->pubkey) {
		log_error("%s: --bundle needs --pubkey: a bundle is only read after its signature is verified", verb);
		return EXIT_BADINPUT;
	}
	return EXIT_OK;
}

/* Same format as `validate`: every diagnostic on stderr, warnings included. */
static void print_diags(const struct diags *d)
{
	char line[2048];

	for (size_t i = 0; i < d->n; i++)
		if (diags_format(d, i, line, sizeof(line)) >= 0)
			fprintf(stderr, "%s\n", line);
	if (d->n_errors)
		fprintf(stderr, "%s: invalid: %zu error%s\n", d->file ? d->file : "manifest", d->n_errors,
			d->n_errors == 1 ? "" : "s");
}

static int load_file(const char *path, struct manifest **ret)
{
	struct diags d = {};
	int r;

	r = manifest_load(path, path, &d, ret);
	if (r < 0 && r != -EINVAL) {
		log_error("cannot read manifest '%s': %s", path, strerror(-r));
		diags_done(&d);
		return EXIT_BADINPUT;
	}
	print_diags(&d);
	diags_done(&d);
	return r < 0 ? EXIT_BADINPUT : EXIT_OK;
}

int input_load_manifest(const struct input_opts *in, struct manifest **ret)
{
	if (in->manifest)
		return load_file(in->manifest, ret);
	/* The bundle module (verify, then extract) is not in this build yet;
	 * refusing is honest, reading the bundle unverified is not. */
	log_error("--bundle is not supported by this build yet; use --manifest M for an unsigned draft");
	return EXIT_FAIL;
}
