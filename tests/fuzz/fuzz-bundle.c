/* SPDX-License-Identifier: MIT */
/*
 * fuzz-bundle.c — the bundle reader and the secrets parsers.
 *
 * The first input byte picks the target; the rest is its input:
 *   0  verify a bundle from memory (tar + zstd reader, signature, members)
 *   1  verify and extract it into a fresh directory (staging, writes)
 *   2  the clear-text secrets file parser (secrets_parse)
 *   3  secrets.enc opening (secret_open) with a fixed key
 * The seed bundles in tests/fuzz/corpus/bundle/ are signed with the
 * TEST-ONLY key below (tests/data/keys/test-only-p256.pub), so mutations
 * after SHA256SUMS and its signature reach the member-reading code.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/extract.h"
#include "bundle/secret.h"
#include "bundle/sig-mbedtls.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char test_pub[] = "-----BEGIN PUBLIC KEY-----\n"
			       "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEuq0fjfKPqu6E9xCdGVN1S4qvLdS/\n"
			       "mpoYBQ8A2iojrtb/ExH71HHVzzdCLBPlPpVKq8GjLuCafqVPMEsoyam89g==\n"
			       "-----END PUBLIC KEY-----\n";

static char base[64]; /* the scratch directory, made on first use */

/* libFuzzer ends with exit(): leave no empty directory behind in /tmp. */
static void remove_base(void)
{
	if (base[0])
		(void)rmdir(base);
}

static void fuzz_bundle(const uint8_t *data, size_t size, bool extract)
{
	static struct sig_pubkey *key; /* loaded once, kept for the process */
	struct bundle *b = NULL;
	char dest[96];

	if (!key && sig_pubkey_load_mem(test_pub, sizeof(test_pub) - 1, &key) < 0)
		abort();
	if (extract && !base[0]) {
		snprintf(base, sizeof(base), "/tmp/fuzz-bundle.XXXXXX");
		if (!mkdtemp(base))
			abort();
		atexit(remove_base);
	}
	snprintf(dest, sizeof(dest), "%s/out", base);
	if (bundle_open_verified_memory(data, size, key, extract ? dest : NULL, &b) >= 0)
		bundle_free(b);
	if (extract)
		(void)extract_rm_rf_at(AT_FDCWD, dest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[SECRET_KEY_LEN] = { 1, 2, 3 };
	static const uint8_t digest[32] = { 4, 5, 6 };
	struct secrets *s = NULL;

	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
	case 1:
		fuzz_bundle(data + 1, size - 1, data[0] & 1);
		break;
	case 2:
		if (secrets_parse((const char *)data + 1, size - 1, &s) >= 0)
			secrets_free(s);
		break;
	case 3:
		if (secret_open(data + 1, size - 1, key, digest, &s) >= 0)
			secrets_free(s);
		break;
	}
	return 0;
}
