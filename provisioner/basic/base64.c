/* SPDX-License-Identifier: MIT */
#include "base64.h"

#include "util.h"

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_size)
{
	_cleanup_free_ uint8_t *out = NULL;
	size_t n = 0;

	if (len % 4 != 0)
		return -EINVAL;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int v[4];

		for (size_t k = 0; k < 4; k++) {
			v[k] = b64val(in[i + k]);
			/* '=' only at the end: "xx==" or "xxx=" */
			if (v[k] < 0 && !(last && in[i + k] == '=' && k >= 2 && (k == 3 || in[i + 3] == '=')))
				return -EINVAL;
		}
		out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (v[2] >= 0)
			out[n++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
		if (v[3] >= 0) {
			if (v[2] < 0)
				return -EINVAL;
			out[n++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
		}
	}
	out[n] = 0;
	*ret_size = n;
	*ret = TAKE_PTR(out);
	return 0;
}

int base64_encode(const void *in, size_t n, char **ret)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = in;
	size_t i, k = 0;
	char *out;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return -EOVERFLOW;
	out = malloc((n + 2) / 3 * 4 + 1);
	if (!out)
		return -ENOMEM;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[k++] = abc[v >> 18];
		out[k++] = abc[(v >> 12) & 63];
		out[k++] = abc[(v >> 6) & 63];
		out[k++] = abc[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);

		out[k++] = abc[v >> 18];
		out[k++] = abc[(v >> 12) & 63];
		out[k++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
		out[k++] = '=';
	}
	out[k] = 0;
	*ret = out;
	return 0;
}
