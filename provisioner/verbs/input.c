/* SPDX-License-Identifier: MIT */
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "bundle/bundle.h"
#include "bundle/extract.h"
#include "log.h"
#include "bundle/secret.h"
#include "bundle/sig-mbedtls.h"
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
void input_print_diags(const struct diags *d)
{
	char line[2048];

	for (size_t i = 0; i < d->n; i++)
		if (diags_format(d, i, line, sizeof(line)) >= 0)
			fprintf(stderr, "%s\n", line);
	if (d->n_errors)
		fprintf(stderr, "%s: invalid: %zu error%s\n", d->file ? d->file : "manifest", d->n_errors,
			d->n_errors == 1 ? "" : "s");
}

static int load_file(const char *path, const char *display, struct manifest **ret)
{
	struct diags d = {};
	int r;

	r = manifest_load(path, display, &d, ret);
	if (r < 0 && r != -EINVAL) {
		log_error("cannot read manifest '%s': %s", display, strerror(-r));
		diags_done(&d);
		return EXIT_BADINPUT;
	}
	input_print_diags(&d);
	diags_done(&d);
	return r < 0 ? EXIT_BADINPUT : EXIT_OK;
}

/* A private scratch directory for the verified members, removed after use. */
struct scratch {
	char dir[64];
	bool made;
};

static void scratch_done(struct scratch *s)
{
	if (!s->made)
		return;
	(void)extract_rm_rf_at(AT_FDCWD, s->dir);
	s->made = false;
}

static int scratch_init(struct scratch *s)
{
	const char *tmp = getenv("TMPDIR");

	if (isempty(tmp) || snprintf(s->dir, sizeof(s->dir), "%s/devopslab-bundle.XXXXXX", tmp) >= (int)sizeof(s->dir))
		snprintf(s->dir, sizeof(s->dir), "/tmp/devopslab-bundle.XXXXXX");
	if (!mkdtemp(s->dir))
		return negative_errno();
	s->made = true;
	return 0;
}

/*
 * Verify first, parse after: bundle_open_verified() writes members only
 * once the signature has checked out and each member's digest matches, so
 * the manifest read below is exactly the signed one. The bundle API has no
 * "manifest only" read, so the assets are extracted too (into a private
 * directory that is removed before returning).
 */
#define SECRET_KEY_INITRAMFS "/etc/devopslab/secret.key"

static int load_secret_key(const struct input_opts *in, const struct manifest *m, uint8_t key[SECRET_KEY_LEN])
{
	const char *src = m->secrets.key_source;
	_cleanup_free_ char *cmdline = NULL;
	size_t size;
	int r;

	if (in->secret_key)
		r = secret_key_load(in->secret_key, key);
	else if (!src || streq(src, "cmdline")) {
		r = sig_read_small_file("/proc/cmdline", 65536, &cmdline, &size);
		if (r >= 0)
			r = secret_key_from_cmdline(cmdline, key);
		if (r == -ENOENT) {
			log_error("no secret key: give --secret-key FILE, or boot with " SECRET_CMDLINE_KEY "<64 hex digits>");
			return r;
		}
	} else if (streq(src, "initramfs"))
		r = secret_key_load(SECRET_KEY_INITRAMFS, key);
	else if (strncmp(src, "file:", 5) == 0)
		r = secret_key_load(src + 5, key);
	else
		r = -EINVAL;
	if (r < 0)
		log_error("cannot get the secret key (%s): %s", in->secret_key ? "--secret-key" : "secrets.key_source",
			  secret_error()[0] ? secret_error() : strerror(-r));
	return r;
}

int input_open_secrets(const struct input_opts *in, const struct manifest *m, const struct bundle *b,
		       struct secrets **ret, uint8_t ret_key[SECRET_KEY_LEN])
{
	const struct bundle_member *mm = bundle_find(b, BUNDLE_MANIFEST);
	_cleanup_free_ char *blob = NULL;
	uint8_t key[SECRET_KEY_LEN];
	char path[PATH_MAX];
	size_t size;
	int r;

	if (!bundle_find(b, BUNDLE_SECRETS)) {
		log_error("bundle '%s' has no " BUNDLE_SECRETS, in->bundle);
		return EXIT_BADINPUT;
	}
	if (load_secret_key(in, m, key) < 0)
		return EXIT_BADINPUT;
	snprintf(path, sizeof(path), "%s/" BUNDLE_SECRETS, b->dir);
	r = sig_read_small_file(path, BUNDLE_SECRETS_MAX_BYTES, &blob, &size);
	if (r >= 0)
		r = secret_open((const uint8_t *)blob, size, key, mm->sha256, ret);
	if (r >= 0 && ret_key)
		memcpy(ret_key, key, SECRET_KEY_LEN);
	explicit_wipe(key, sizeof(key));
	if (r < 0) {
		log_error("cannot decrypt " BUNDLE_SECRETS " of '%s': %s", in->bundle, secret_error());
		return r == -EBADMSG ? EXIT_UNVERIFIED : EXIT_FAIL;
	}
	return EXIT_OK;
}

static int load_bundle(const struct input_opts *in, struct manifest **ret, struct secrets **ret_secrets,
		       struct input_bundle **ret_kept)
{
	_cleanup_(sig_pubkey_freep) struct sig_pubkey *key = NULL;
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_(scratch_done) struct scratch tmp = {};
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	char dest[128], path[192], display[1024];
	int r;

	sig_error_clear();
	r = sig_pubkey_load(in->pubkey, &key);
	if (r < 0) {
		log_error("cannot use public key '%s': %s", in->pubkey, sig_error());
		return EXIT_BADINPUT;
	}
	r = scratch_init(&tmp);
	if (r < 0) {
		log_error("cannot create a scratch directory: %s", strerror(-r));
		return EXIT_FAIL;
	}
	snprintf(dest, sizeof(dest), "%s/bundle", tmp.dir);
	r = bundle_open_verified(in->bundle, key, dest, &b);
	if (r == -EBADMSG) {
		log_error("bundle '%s' failed verification: %s", in->bundle, bundle_error());
		return EXIT_UNVERIFIED;
	}
	if (r < 0) {
		log_error("bundle '%s': %s", in->bundle, bundle_error()[0] ? bundle_error() : strerror(-r));
		return r == -ENOENT || r == -EACCES || r == -EISDIR ? EXIT_BADINPUT : EXIT_FAIL;
	}
	snprintf(path, sizeof(path), "%s/" BUNDLE_MANIFEST, dest);
	snprintf(display, sizeof(display), "%s:" BUNDLE_MANIFEST, in->bundle);
	r = load_file(path, display, &m);
	if (r != EXIT_OK)
		return r;
	if (ret_secrets) {
		r = input_open_secrets(in, m, b, ret_secrets, NULL);
		if (r != EXIT_OK)
			return r;
	}
	if (ret_kept) {
		struct input_bundle *k = calloc(1, sizeof(*k));

		if (!k)
			return EXIT_FAIL;
		memcpy(k->scratch, tmp.dir, sizeof(k->scratch));
		tmp.made = false; /* the kept bundle owns it now */
		snprintf(k->assets_dir, sizeof(k->assets_dir), "%s/" BUNDLE_ASSETS_DIR, dest);
		k->bundle = TAKE_PTR(b);
		*ret_kept = k;
	}
	*ret = TAKE_PTR(m);
	return EXIT_OK;
}

struct input_bundle *input_bundle_free(struct input_bundle *k)
{
	if (!k)
		return NULL;
	bundle_free(k->bundle);
	(void)extract_rm_rf_at(AT_FDCWD, k->scratch);
	free(k);
	return NULL;
}

int input_load_kept(const struct input_opts *in, struct manifest **ret, struct secrets **ret_secrets,
		    struct input_bundle **ret_kept)
{
	if (!in->bundle) {
		log_error("secrets come only from a signed bundle: use --bundle B --pubkey P");
		return EXIT_BADINPUT;
	}
	return load_bundle(in, ret, ret_secrets, ret_kept);
}

int input_load_manifest(const struct input_opts *in, struct manifest **ret)
{
	if (in->manifest)
		return load_file(in->manifest, in->manifest, ret);
	return load_bundle(in, ret, NULL, NULL);
}

int input_load_with_secrets(const struct input_opts *in, struct manifest **ret, struct secrets **ret_secrets)
{
	if (!in->bundle) {
		log_error("secrets come only from a signed bundle: use --bundle B --pubkey P");
		return EXIT_BADINPUT;
	}
	return load_bundle(in, ret, ret_secrets, NULL);
}
