/* SPDX-License-Identifier: MIT */
/*
 * fuzz-registry.c — libFuzzer target for what the registry step reads
 * from a guest: any bytes as the seed script's output into
 * registry_parse_pushed(); the invariants the step relies on checked: a
 * list read without error has exactly *ret_n lines, each under the host
 * with a tag, and an error leaves nothing behind.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char host[] = "registry.home.arpa";
	char *text = malloc(size + 1), *list = NULL;
	size_t n = 0, lines = 0;
	int r;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	r = registry_parse_pushed(text, host, &list, &n);
	if (r != 0 && r != -EBADMSG && r != -E2BIG && r != -ENOMEM)
		abort();
	if (r < 0 && (list || n))
		abort();
	if (r == 0) {
		for (char *p = list, *nl; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl || strncmp(p, host, sizeof(host) - 1) != 0 || p[sizeof(host) - 1] != '/' ||
			    !memchr(p, ':', (size_t)(nl - p)))
				abort();
			lines++;
		}
		if (lines != n || n > REGISTRY_IMAGES_MAX)
			abort();
	}
	free(list);
	free(text);
	return 0;
}
