/* SPDX-License-Identifier: MIT */
/*
 * input.h — how verbs that need a manifest get one: from a signed bundle
 * (--bundle B --pubkey P: verified before anything is parsed) or, for
 * drafts, from a plain manifest file (--manifest M). Diagnostics are
 * printed in validate's format; the return value is an exit status.
 */
#pragma once

#include <stdint.h>

#include "manifest/manifest.h"
#include "bundle/secret.h"

struct bundle;
struct secrets;

struct input_opts {
	const char *bundle, *pubkey, *manifest;
	const char *secret_key; /* overrides the manifest's secrets.key_source */
};

/* Check that exactly one source was given; logs and returns EXIT_BADINPUT if not. */
int input_check(const struct input_opts *in, const char *verb);

/* Print diagnostics in validate's format (stderr), warnings included. */
void input_print_diags(const struct diags *d);

/* Load (and verify) the manifest. Returns EXIT_OK with *ret set, or the
 * exit status to use (EXIT_BADINPUT, EXIT_UNVERIFIED, EXIT_FAIL). */
int input_load_manifest(const struct input_opts *in, struct manifest **ret);

/* The same, and also open the bundle's secrets.enc with the secret key:
 * --secret-key FILE, else where the manifest's secrets.key_source says
 * ("cmdline": devopslab.secret_key= in /proc/cmdline; "file:/path";
 * "initramfs": /etc/devopslab/secret.key). Needs --bundle: a draft
 * manifest has no secrets. */
int input_load_with_secrets(const struct input_opts *in, struct manifest **ret, struct secrets **ret_secrets);

/* The same, keeping the verified bundle extracted for the run (firstboot
 * reads the assets): *ret_kept holds it until input_bundle_free(), which
 * removes the directory. */
struct input_bundle {
	struct bundle *bundle;  /* the signed digests of every member */
	char scratch[64];       /* the private directory (removed on free) */
	char assets_dir[160];   /* scratch/bundle/assets */
};
int input_load_kept(const struct input_opts *in, struct manifest **ret, struct secrets **ret_secrets,
		    struct input_bundle **ret_kept);
struct input_bundle *input_bundle_free(struct input_bundle *k);
DEFINE_FREE_FUNC(struct input_bundle, input_bundle_free);

/* Open the secrets of a bundle already verified and extracted (b), with
 * the key found as input_load_with_secrets() finds it (in->bundle names the
 * bundle in messages). When ret_key is not NULL it receives the key (the
 * caller wipes it). Returns EXIT_OK or the exit status to use. */
int input_open_secrets(const struct input_opts *in, const struct manifest *m, const struct bundle *b,
		       struct secrets **ret, uint8_t ret_key[SECRET_KEY_LEN]);
