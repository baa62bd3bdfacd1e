/* SPDX-License-Identifier: MIT */
#include "seed-id.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

int seed_id_bytes(const char *seed, const char *node, const char *purpose, uint8_t ret[16])
{
	unsigned char md[EVP_MAX_MD_SIZE], msg[512];
	unsigned int mdlen = 0;
	int n;

	if (!seed || !*seed || !node || !purpose)
		return -EINVAL;
	n = snprintf((char *)msg, sizeof(msg), "%s\n%s", node, purpose);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -ENAMETOOLONG;
	if (!HMAC(EVP_sha256(), seed, (int)strlen(seed), msg, (size_t)n, md, &mdlen) || mdlen < 16)
		return -EIO;
	memcpy(ret, md, 16);
	ret[6] = (ret[6] & 0x0f) | 0x40; /* version 4 */
	ret[8] = (ret[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	return 0;
}

int seed_id_uuid(const char *seed, const char *node, const char *purpose, char ret[SEED_UUID_STR])
{
	uint8_t b[16];
	int r = seed_id_bytes(seed, node, purpose, b);

	if (r < 0)
		return r;
	snprintf(ret, SEED_UUID_STR, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

int seed_id_vfat(const char *seed, const char *node, const char *purpose, char ret[9])
{
	uint8_t b[16];
	int r = seed_id_bytes(seed, node, purpose, b);

	if (r < 0)
		return r;
	snprintf(ret, 9, "%02X%02X%02X%02X", b[0], b[1], b[2], b[3]);
	return 0;
}

int seed_id_lvm(const char *seed, const char *node, const char *purpose, char ret[39])
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	static const int groups[] = { 6, 4, 4, 4, 4, 4, 6 };
	uint8_t b[32];
	int r = seed_id_bytes(seed, node, purpose, b), k = 0, o = 0;

	if (r < 0)
		return r;
	char tail[256];
	snprintf(tail, sizeof(tail), "%s:tail", purpose); /* 32 characters need 32 bytes */
	r = seed_id_bytes(seed, node, tail, b + 16);
	if (r < 0)
		return r;
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		if (g)
			ret[o++] = '-';
		for (int i = 0; i < groups[g]; i++)
			ret[o++] = alphabet[b[k++] % 62];
	}
	ret[o] = '\0';
	return 0;
}
