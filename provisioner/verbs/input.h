/* SPDX-License-Identifier: MIT */
/*
 * input.h — how verbs that need a manifest get one: from a signed bundle
 * (--bundle B --pubkey P: verified before anything is parsed) or, for
 * drafts, from a plain manifest file (--manifest M). Diagnostics are
 * printed in validate's format; the return value is an exit status.
 */
#pragma once

#include "manifest.h"

struct input_opts {
	const char *bundle, *pubkey, *manifest;
};

/* Check that exactly one source was given; logs and returns EXIT_BADINPUT if not. */
int input_check(const struct input_opts *in, const char *verb);

/* Load (and verify) the manifest. Returns EXIT_OK with *ret set, or the
 * exit status to use (EXIT_BADINPUT, EXIT_UNVERIFIED, EXIT_FAIL). */
int input_load_manifest(const struct input_opts *in, struct manifest **ret);
