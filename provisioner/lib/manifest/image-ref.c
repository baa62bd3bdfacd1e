/* SPDX-License-Identifier: MIT */
/*
 * image-ref.c — image references as the manifest takes them
 * (manifest_image_ref_valid(), manifest.h): the Distribution reference
 * grammar with the registry written out.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "manifest.h"
#include "parse.h"
#include "util.h"

static bool ref_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* A path component: runs of lower-case letters and digits joined by '.',
 * '_', "__" or any number of '-'. */
static bool ref_path_component(const char *s, size_t n)
{
	for (size_t i = 0;;) {
		size_t start = i;

		while (i < n && ref_lower_alnum(s[i]))
			i++;
		if (i == start)
			return false;
		if (i == n)
			return true;
		if (s[i] == '_' && i + 1 < n && s[i + 1] == '_')
			i += 2;
		else if (s[i] == '.' || s[i] == '_')
			i++;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else
			return false;
	}
}

/* The registry: a DNS name or address with an optional port, that reads
 * as one (a '.', a port, or localhost): a runtime takes "kube-vip/x:1" for
 * docker.io/kube-vip/x:1, and the name would no longer be the one in the
 * tarball. */
static bool ref_registry(const char *s, size_t n)
{
	char host[MANIFEST_IMAGE_REF_MAX + 1];
	const char *colon = memchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n, digits = colon ? n - hn - 1 : 0;
	unsigned long port = 0;

	if (hn >= sizeof(host) || (colon && (digits == 0 || digits > 5)))
		return false;
	for (size_t i = 0; i < digits; i++) {
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return false;
		port = port * 10 + (unsigned long)(colon[1 + i] - '0');
	}
	if (colon && (port == 0 || port > 65535))
		return false;
	memcpy(host, s, hn);
	host[hn] = '\0';
	return dns_name_valid(host) && (colon || strchr(host, '.') || streq(host, "localhost"));
}

static bool ref_tag(const char *s, size_t n)
{
	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!ref_lower_alnum(s[i]) && !(s[i] >= 'A' && s[i] <= 'Z') && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

static bool ref_digest(const char *s)
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s + 7) != 64)
		return false;
	for (s += 7; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

bool manifest_image_ref_valid(const char *s)
{
	const char *at = strchr(s, '@'), *end = at ? at : s + strlen(s);
	const char *slash = memchr(s, '/', (size_t)(end - s)), *last = slash, *colon;

	if (!slash || (at && !ref_digest(at + 1)))
		return false;
	for (const char *p = slash; p < end; p++)
		if (*p == '/')
			last = p;
	colon = memchr(last, ':', (size_t)(end - last));
	if (colon ? !ref_tag(colon + 1, (size_t)(end - colon - 1)) : !at)
		return false;
	if (colon)
		end = colon;
	if (!ref_registry(s, (size_t)(slash - s)))
		return false;
	for (const char *p = slash + 1;;) {
		const char *q = memchr(p, '/', (size_t)(end - p));

		if (!ref_path_component(p, q ? (size_t)(q - p) : (size_t)(end - p)))
			return false;
		if (!q)
			return true;
		p = q + 1;
	}
}
