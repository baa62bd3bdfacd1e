/* SPDX-License-Identifier: MIT */
/*
 * cmd-bundle.c — `bundle create`, `bundle verify`, `bundle extract`.
 * The format and its guarantees: provisioner/lib/bundle.h, docs/security.md.
 */
#define _GNU_SOURCE 1 /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "bundle/bundle.h"
#include "bundle/extract.h"
#include "input.h"
#include "manifest/manifest.h"
#include "log.h"
#include "bundle/secret.h"
#include "bundle/sig-mbedtls.h"
#include "util.h"
#include "verbs.h"

/* -EBADMSG is "verification failed"; a file we cannot use is bad input. */
static int exit_status(int r)
{
	switch (r) {
	case -EBADMSG:
		return EXIT_UNVERIFIED;
	case -ENOENT:
	case -EACCES:
	case -EINVAL:
	case -EEXIST:
	case -ENOTDIR:
	case -EISDIR:
	case -EFBIG:
	case -E2BIG:
	case -ELOOP:
		return EXIT_BADINPUT;
	default:
		return EXIT_FAIL;
	}
}

static int load_pubkey(const char *path, struct sig_pubkey **ret)
{
	int r;

	sig_error_clear();
	r = sig_pubkey_load(path, ret);
	if (r < 0)
		log_error("cannot use public key '%s': %s", path, sig_error());
	return r;
}

/* ---- bundle create ---------------------------------------------------------- */

struct create_opts {
	const char *manifest, *assets, *key, *secrets, *secret_key, *output;
};

static int create_usage(void)
{
	fprintf(stderr, "Usage: devopslab bundle create --manifest M --assets DIR --key KEY.pem\n"
			"                             [--secrets FILE --secret-key KEYFILE] -o BUNDLE\n");
	return EXIT_BADINPUT;
}

static int parse_create(int argc, char *argv[], struct create_opts *o)
{
	static const struct option options[] = {
		{ "manifest", required_argument, NULL, 'm' }, { "assets", required_argument, NULL, 'a' },
		{ "key", required_argument, NULL, 'k' },      { "secrets", required_argument, NULL, 's' },
		{ "secret-key", required_argument, NULL, 'S' }, { "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },           {}
	};
	int c;

	while ((c = getopt_long(argc, argv, "o:h", options, NULL)) >= 0) {
		switch (c) {
		case 'm': o->manifest = optarg; break;
		case 'a': o->assets = optarg; break;
		case 'k': o->key = optarg; break;
		case 's': o->secrets = optarg; break;
		case 'S': o->secret_key = optarg; break;
		case 'o': o->output = optarg; break;
		case 'h': create_usage(); return 1;
		default: return -EINVAL;
		}
	}
	if (optind != argc || !o->manifest || !o->assets || !o->key || !o->output) {
		log_error("bundle create: --manifest, --assets, --key and -o are required");
		return -EINVAL;
	}
	if (!o->secrets != !o->secret_key) {
		log_error("bundle create: --secrets and --secret-key go together");
		return -EINVAL;
	}
	return 0;
}

/* SOURCE_DATE_EPOCH (reproducible-builds.org) or 0. */
static int source_date_epoch(int64_t *ret)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long v;

	*ret = 0;
	if (isempty(s))
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0) {
		log_error("SOURCE_DATE_EPOCH='%s' is not a number of seconds", s);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* Every secret the manifest declares must have a value; a value the
 * manifest does not declare is carried but never used: say so. */
static int check_secret_names(const struct create_opts *o, const struct manifest *m, const struct secrets *s)
{
	int r = 0;

	for (size_t i = 0; i < m->secrets.n_names; i++)
		if (!secrets_get(s, m->secrets.names[i])) {
			log_error("secrets file '%s' has no value for '%s', which the manifest declares", o->secrets,
				  m->secrets.names[i]);
			r = -EINVAL;
		}
	for (size_t i = 0; i < secrets_count(s); i++) {
		bool declared = false;

		for (size_t j = 0; j < m->secrets.n_names && !declared; j++)
			declared = streq(secrets_name(s, i), m->secrets.names[j]);
		if (!declared)
			log_warning("secrets file '%s': '%s' is not declared in the manifest's secrets.names",
				    o->secrets, secrets_name(s, i));
	}
	return r;
}

static int seal_secrets(const struct create_opts *o, const struct manifest *m, const char *manifest,
			size_t manifest_size, uint8_t **ret_blob, size_t *ret_size)
{
	_cleanup_(secrets_freep) struct secrets *s = NULL;
	uint8_t key[SECRET_KEY_LEN], digest[SIG_SHA256_LEN];
	int r;

	r = secrets_load(o->secrets, &s);
	if (r < 0) {
		log_error("secrets file '%s': %s", o->secrets, secret_error());
		return r;
	}
	r = check_secret_names(o, m, s);
	if (r < 0)
		return r;
	r = secret_key_load(o->secret_key, key);
	if (r < 0) {
		log_error("%s", secret_error());
		return r;
	}
	sig_sha256(manifest, manifest_size, digest);
	r = secret_seal(s, key, digest, ret_blob, ret_size);
	explicit_wipe(key, sizeof(key));
	if (r < 0) {
		log_error("cannot encrypt the secrets: %s", secret_error());
		return r;
	}
	log_debug("sealed %zu secrets into " BUNDLE_SECRETS, secrets_count(s));
	return 0;
}

/* The manifest must be valid before it is signed: the image trusts what
 * the signature covers. */
static int load_manifest(const char *path, const char *data, size_t size, struct manifest **ret)
{
	struct diags d = {};
	int r;

	r = manifest_load_buffer(data, size, path, &d, ret);
	input_print_diags(&d);
	diags_done(&d);
	return r < 0 ? -EINVAL : 0;
}

/* Every asset the manifest names must be among the files being bundled. */
static int check_assets(const struct create_opts *o, const struct manifest *m, const struct bundle_asset *a,
			size_t n)
{
	int r = 0;

	for (size_t i = 0; i < m->n_assets; i++) {
		bool found = false;

		for (size_t j = 0; j < n && !found; j++)
			found = streq(a[j].path, m->assets[i].file);
		if (!found) {
			log_error("%s:%u:%u: assets[%zu].file: '%s' (asset '%s') is not in '%s'", o->manifest,
				  m->assets[i].pos.line, m->assets[i].pos.column, i, m->assets[i].file,
				  m->assets[i].name, o->assets);
			r = -EINVAL;
		}
	}
	if (m->secrets.n_names > 0 && !o->secrets) {
		log_error("the manifest declares %zu secret%s: give their values with --secrets FILE --secret-key KEYFILE",
			  m->secrets.n_names, m->secrets.n_names == 1 ? "" : "s");
		r = -EINVAL;
	}
	return r;
}

int verb_bundle_create(int argc, char *argv[])
{
	struct create_opts o = {};
	_cleanup_free_ char *manifest = NULL;
	_cleanup_free_ uint8_t *secrets_enc = NULL;
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	struct bundle_asset *assets = NULL;
	size_t manifest_size = 0, secrets_size = 0, n_assets = 0;
	struct bundle_create_args args;
	int r;

	r = parse_create(argc, argv, &o);
	if (r != 0)
		return r > 0 ? EXIT_OK : create_usage();
	r = sig_read_small_file(o.manifest, BUNDLE_MANIFEST_MAX_BYTES, &manifest, &manifest_size);
	if (r < 0) {
		log_error("cannot read manifest '%s': %s", o.manifest, strerror(-r));
		return EXIT_BADINPUT;
	}
	if (load_manifest(o.manifest, manifest, manifest_size, &m) < 0)
		return EXIT_BADINPUT;
	r = bundle_assets_scan(o.assets, &assets, &n_assets);
	if (r < 0) {
		log_error("%s", bundle_error());
		return exit_status(r);
	}
	r = check_assets(&o, m, assets, n_assets);
	if (r < 0) {
		bundle_assets_free(assets, n_assets);
		return EXIT_BADINPUT;
	}
	args = (struct bundle_create_args){
		.manifest = manifest, .manifest_size = manifest_size,
		.assets_dir = o.assets, .assets = assets, .n_assets = n_assets,
		.key_path = o.key, .output = o.output,
	};
	r = source_date_epoch(&args.mtime);
	if (r >= 0 && o.secrets) {
		r = seal_secrets(&o, m, manifest, manifest_size, &secrets_enc, &secrets_size);
		args.secrets_enc = secrets_enc;
		args.secrets_enc_size = secrets_size;
	}
	if (r >= 0) {
		r = bundle_create(&args);
		if (r < 0)
			log_error("bundle create: %s", bundle_error());
	}
	bundle_assets_free(assets, n_assets);
	if (r < 0)
		return exit_status(r);
	printf("%s: %zu members (manifest%s, %zu assets), signed\n", o.output, n_assets + 1 + !!secrets_enc,
	       secrets_enc ? ", secrets" : "", n_assets);
	return EXIT_OK;
}

/* ---- bundle verify / extract ----------------------------------------------- */

static int verify_usage(const char *verb)
{
	if (streq(verb, "extract"))
		fprintf(stderr, "Usage: devopslab bundle extract --pubkey PUB.pem [--secret-key KEYFILE] BUNDLE DIR\n");
	else
		fprintf(stderr, "Usage: devopslab bundle verify --pubkey PUB.pem BUNDLE\n");
	return EXIT_BADINPUT;
}

static void print_summary(const char *path, const struct bundle *b)
{
	char hex[2 * SIG_SHA256_LEN + 1];

	sig_hex(b->sums_sha256, hex);
	printf("%s: OK: signature valid, %zu members, %" PRIu64 " bytes, SHA256SUMS %s\n", path, b->n_members,
	       b->total_bytes, hex);
}

/* Check that secrets.enc opens with the key; report how many, never what. */
static int check_secrets(const struct bundle *b, const char *key_path)
{
	_cleanup_(secrets_freep) struct secrets *s = NULL;
	_cleanup_free_ char *path = NULL, *blob = NULL;
	const struct bundle_member *manifest = bundle_find(b, BUNDLE_MANIFEST);
	uint8_t key[SECRET_KEY_LEN];
	size_t size;
	int r;

	if (!bundle_find(b, BUNDLE_SECRETS)) {
		log_error("bundle has no " BUNDLE_SECRETS);
		return -ENOENT;
	}
	r = secret_key_load(key_path, key);
	if (r < 0) {
		log_error("%s", secret_error());
		return r;
	}
	if (asprintf(&path, "%s/" BUNDLE_SECRETS, b->dir) < 0)
		return -ENOMEM;
	r = sig_read_small_file(path, BUNDLE_SECRETS_MAX_BYTES, &blob, &size);
	if (r >= 0)
		r = secret_open((const uint8_t *)blob, size, key, manifest->sha256, &s);
	explicit_wipe(key, sizeof(key));
	if (r < 0) {
		log_error("cannot decrypt " BUNDLE_SECRETS ": %s", secret_error());
		return r == -EBADMSG ? -EBADMSG : r;
	}
	printf("%s: %zu secrets decrypted\n", BUNDLE_SECRETS, secrets_count(s));
	return 0;
}

static int run_verify(int argc, char *argv[], bool extract)
{
	static const struct option options[] = {
		{ "pubkey", required_argument, NULL, 'p' },
		{ "secret-key", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *verb = extract ? "extract" : "verify", *pubkey = NULL, *secret_key = NULL, *path, *dest;
	_cleanup_(sig_pubkey_freep) struct sig_pubkey *key = NULL;
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'p': pubkey = optarg; break;
		case 'S': secret_key = optarg; break;
		case 'h': verify_usage(verb); return EXIT_OK;
		default: return verify_usage(verb);
		}
	}
	if (!pubkey || argc - optind != (extract ? 2 : 1) || (secret_key && !extract)) {
		log_error("bundle %s: --pubkey and %s are required", verb, extract ? "BUNDLE DIR" : "one BUNDLE");
		return verify_usage(verb);
	}
	path = argv[optind];
	dest = extract ? argv[optind + 1] : NULL;
	r = load_pubkey(pubkey, &key);
	if (r < 0)
		return EXIT_BADINPUT;
	r = bundle_open_verified(path, key, dest, &b);
	if (r < 0) {
		if (r == -EBADMSG)
			log_error("bundle '%s' failed verification: %s", path, bundle_error());
		else
			log_error("bundle '%s': %s", path, bundle_error());
		return exit_status(r);
	}
	print_summary(path, b);
	if (secret_key) {
		r = check_secrets(b, secret_key);
		if (r < 0) {
			/* All or nothing: a bundle whose secrets do not open
			 * with this key is not left behind half-usable. */
			(void)extract_rm_rf_at(AT_FDCWD, dest);
			return exit_status(r);
		}
	}
	return EXIT_OK;
}

int verb_bundle_verify(int argc, char *argv[])
{
	return run_verify(argc, argv, false);
}

int verb_bundle_extract(int argc, char *argv[])
{
	return run_verify(argc, argv, true);
}
