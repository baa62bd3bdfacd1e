/* SPDX-License-Identifier: MIT */
/*
 * bundle.h — the signed bundle: a zstd-compressed tar holding, in order,
 *
 *   SHA256SUMS       sha256sum(1) lines "<hex>  <path>", sorted by path,
 *                    one for every member below and for no other
 *   SHA256SUMS.sig   DER ECDSA P-256 signature of SHA-256(SHA256SUMS)
 *                    (what `openssl dgst -sha256 -sign` writes)
 *   manifest.yaml
 *   secrets.enc      optional: the secret values, AES-256-GCM (secret.h)
 *   assets/<file>... sorted
 *
 * Reading streams in one pass and in bounded memory: the two small members
 * come first, the signature is checked (mbedtls) before anything else is
 * parsed, then every member is hashed as it streams and compared with its
 * signed digest. Only regular files are accepted; unknown, duplicate or
 * missing members, bad paths and any mismatch are refused (-EBADMSG).
 *
 * Using a bundle = bundle_open_verified() into a fresh directory: the
 * members are written only after the signature checked out, each one's
 * digest is checked as it is written, and on any failure the staging
 * directory is removed, so nothing unverified is ever left to be used and
 * there is no window between verifying and using (no TOCTOU).
 *
 * Errors: 0 or -errno; -EBADMSG = verification failed; detail (naming the
 * member) in bundle_error(). Nothing here prints.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sig-mbedtls.h"

#define BUNDLE_SUMS "SHA256SUMS"
#define BUNDLE_SUMS_SIG "SHA256SUMS.sig"
#define BUNDLE_MANIFEST "manifest.yaml"
#define BUNDLE_SECRETS "secrets.enc"
#define BUNDLE_ASSETS_DIR "assets"

#define BUNDLE_SUMS_MAX_BYTES (1u << 20)
#define BUNDLE_MAX_MEMBERS 10000u
#define BUNDLE_MANIFEST_MAX_BYTES (4u << 20)
#define BUNDLE_SECRETS_MAX_BYTES (1u << 20)
#define BUNDLE_ASSET_DEPTH_MAX 16u
#define BUNDLE_PATH_MAX 1024u
#define BUNDLE_MEMBER_MAX_BYTES (64ull << 30)
#define BUNDLE_TOTAL_MAX_BYTES (128ull << 30)
/* Assets are compressed images and binaries; 1000:1 is a bomb. */
#define BUNDLE_MAX_RATIO 1000u

struct bundle_member {
	char *path; /* "manifest.yaml", "assets/pve-rootfs.tar.zst" */
	uint8_t sha256[SIG_SHA256_LEN];
	uint64_t size; /* filled while reading */
	bool seen;
};

struct bundle {
	char *dir; /* the extracted bundle; NULL when only verified */
	struct bundle_member *members; /* sorted by path, as in SHA256SUMS */
	size_t n_members;
	uint8_t sums_sha256[SIG_SHA256_LEN]; /* the signed digest */
	uint64_t total_bytes;
};

const char *bundle_error(void);

/* Verify the bundle at `path` (or in memory) with `key`. When dest_dir is
 * not NULL it must not exist: the verified members end up there and
 * nowhere else (dest_dir itself 0700, as mkdtemp(3) makes the staging
 * directory; subdirectories 0755; files 0644). */
int bundle_open_verified(const char *path, const struct sig_pubkey *key, const char *dest_dir,
			 struct bundle **ret);
int bundle_open_verified_memory(const void *data, size_t size, const struct sig_pubkey *key,
				const char *dest_dir, struct bundle **ret);
struct bundle *bundle_free(struct bundle *b);
const struct bundle_member *bundle_find(const struct bundle *b, const char *path);

/* ---- creating ------------------------------------------------------------ */

struct bundle_asset {
	char *path; /* relative to the assets directory: "images/debian.qcow2" */
	uint64_t size;
};

/* List the regular files below dir, sorted; refuses symlinks, special
 * files, names outside [A-Za-z0-9._+@-], over BUNDLE_MAX_MEMBERS. */
int bundle_assets_scan(const char *dir, struct bundle_asset **ret, size_t *ret_n);
void bundle_assets_free(struct bundle_asset *a, size_t n);

struct bundle_create_args {
	const void *manifest;       /* the manifest's bytes, as validated */
	size_t manifest_size;
	const char *assets_dir;     /* with the result of bundle_assets_scan() */
	const struct bundle_asset *assets;
	size_t n_assets;
	const void *secrets_enc;    /* optional: secret_seal() output */
	size_t secrets_enc_size;
	const char *key_path;       /* PEM private key, P-256 */
	const char *output;         /* written to a temporary name, fsync'd, renamed */
	int64_t mtime;              /* every member's mtime: SOURCE_DATE_EPOCH or 0 */
};

/* Same inputs, same bytes: members sorted, mtime fixed, owner 0:0, mode
 * 0644 (a secrets.enc makes it differ: its nonce is random). */
int bundle_create(const struct bundle_create_args *args);

static inline void bundle_freep(struct bundle **b)
{
	if (*b)
		bundle_free(*b);
}
