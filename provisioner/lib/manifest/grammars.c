/* SPDX-License-Identifier: MIT */
/*
 * grammars.c — the grammars of the manifest's string values that are more
 * than a parser of basic/parse.h: Git URLs (git-clone(1)), HOST[:PORT] and
 * Prometheus durations (manifest-internal.h). Pure functions of the text.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "manifest-internal.h"
#include "parse.h"
#include "util.h"

/* White space or a control character: never inside a URL, a revision, a
 * metrics path. */
bool mf_has_space_or_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return true;
	return false;
}

/* HOST or HOST:PORT in s[0..n): HOST an IPv4 address or a DNS name, PORT
 * 1-65535 without a leading zero; need_port: the port must be there. */
bool mf_host_port_valid(const char *s, size_t n, bool need_port)
{
	const char *colon = memchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n;
	unsigned long port = 0;
	const char *last;
	char host[256];
	uint32_t ip;

	if ((need_port && !colon) || hn == 0 || hn >= sizeof(host))
		return false;
	if (colon) {
		size_t digits = n - hn - 1;

		if (digits == 0 || digits > 5 || colon[1] == '0')
			return false;
		for (size_t i = 1; i <= digits; i++) {
			if (colon[i] < '0' || colon[i] > '9')
				return false;
			port = port * 10 + (unsigned long)(colon[i] - '0');
		}
		if (port > 65535)
			return false;
	}
	memcpy(host, s, hn);
	host[hn] = '\0';
	if (parse_ipv4(host, &ip) == 0)
		return true;
	/* a name's last label is never all digits (RFC 1123 2.1): 10.0.10.300
	 * is a mistyped address, not a name */
	last = strrchr(host, '.');
	last = last ? last + 1 : host;
	return dns_name_valid(host) && strspn(last, "0123456789") != strlen(last);
}

/* The user of an ssh:// or scp-like URL ("git"). */
static bool git_user_valid(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static const struct {
	const char *prefix;
	enum mf_git_url kind;
} git_schemes[] = {
	{ "https://", MF_GIT_HTTPS },
	{ "http://", MF_GIT_HTTP },
	{ "ssh://", MF_GIT_SSH },
};

/* The form of a Git URL (git-clone(1), "GIT URLS"), without white space:
 * SCHEME://[USER@]HOST[:PORT]/PATH for https, http and ssh (a user only
 * with ssh), or scp-like USER@HOST:PATH. Returns 0 and the form, -EACCES
 * when it holds a password (USER:PASSWORD@), -EPERM for a user in an
 * http(s) URL, -EINVAL for anything else. */
int mf_git_url_kind(const char *s, enum mf_git_url *ret)
{
	const char *sep = strstr(s, "://"), *at, *colon;

	if (sep) { /* any scheme: USER:PASSWORD@ in the authority */
		const char *auth = sep + 3, *end = auth + strcspn(auth, "/");

		at = memchr(auth, '@', (size_t)(end - auth));
		if (at && memchr(auth, ':', (size_t)(at - auth)))
			return -EACCES;
	}
	for (size_t i = 0; i < ELEMENTSOF(git_schemes); i++) {
		size_t pl = strlen(git_schemes[i].prefix);
		const char *auth = s + pl, *end, *host;

		if (strncmp(s, git_schemes[i].prefix, pl) != 0)
			continue;
		end = auth + strcspn(auth, "/"); /* the authority ends at the path */
		at = memchr(auth, '@', (size_t)(end - auth));
		if (at && git_schemes[i].kind != MF_GIT_SSH)
			return -EPERM;
		if (at && !git_user_valid(auth, (size_t)(at - auth)))
			return -EINVAL;
		host = at ? at + 1 : auth;
		if (!mf_host_port_valid(host, (size_t)(end - host), false) || end[0] != '/' || !end[1])
			return -EINVAL;
		*ret = git_schemes[i].kind;
		return 0;
	}
	if (sep)
		return -EINVAL;
	at = strchr(s, '@');
	if (!at)
		return -EINVAL;
	if (memchr(s, ':', (size_t)(at - s)))
		return -EACCES;
	colon = strchr(at, ':');
	if (!colon || !colon[1] || !git_user_valid(s, (size_t)(at - s)) ||
	    !mf_host_port_valid(at + 1, (size_t)(colon - at - 1), false))
		return -EINVAL;
	*ret = MF_GIT_SCP;
	return 0;
}

/* A Prometheus duration (model.ParseDuration; Loki's settings take the
 * same): one or more NUMBER UNIT, the units y, w, d, h, m, s, ms each at
 * most once and the larger first ("1w2d", not "2d1w"); a year is 365
 * days. Returns whether s is one, and its milliseconds (at most
 * INT64_MAX, as Prometheus keeps them). */
bool mf_duration_parse(const char *s, uint64_t *ret_ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
		{ "y", 365ULL * 86400000 }, { "w", 7ULL * 86400000 }, { "d", 86400000 }, { "h", 3600000 },
		{ "m", 60000 },             { "s", 1000 },            { "ms", 1 },
	};
	uint64_t total = 0;
	size_t next = 0;

	if (!*s)
		return false;
	while (*s) {
		const char *digits = s;
		uint64_t v = 0;
		size_t u;

		for (; *s >= '0' && *s <= '9'; s++) {
			if (v > (UINT64_MAX - 9) / 10)
				return false;
			v = v * 10 + (uint64_t)(*s - '0');
		}
		if (s == digits)
			return false;
		for (u = next; u < ELEMENTSOF(units); u++)
			if (strncmp(s, units[u].unit, strlen(units[u].unit)) == 0 && !(streq(units[u].unit, "m") && s[1] == 's'))
				break;
		if (u == ELEMENTSOF(units) || v > (uint64_t)INT64_MAX / units[u].ms ||
		    total > (uint64_t)INT64_MAX - v * units[u].ms)
			return false;
		total += v * units[u].ms;
		s += strlen(units[u].unit);
		next = u + 1;
	}
	*ret_ms = total;
	return true;
}
