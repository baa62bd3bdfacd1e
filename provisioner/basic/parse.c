/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

int unhexchar(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int parse_uint64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*ret = v;
	return 0;
}

static const struct {
	const char *suffix;
	uint64_t factor;
} size_units[] = {
	{ "", 1 },
	{ "B", 1 },
	{ "K", 1ULL << 10 },
	{ "M", 1ULL << 20 },
	{ "G", 1ULL << 30 },
	{ "T", 1ULL << 40 },
	{ "P", 1ULL << 50 },
	{ "KiB", 1ULL << 10 },
	{ "MiB", 1ULL << 20 },
	{ "GiB", 1ULL << 30 },
	{ "TiB", 1ULL << 40 },
	{ "PiB", 1ULL << 50 },
	{ "KB", 1000ULL },
	{ "MB", 1000ULL * 1000 },
	{ "GB", 1000ULL * 1000 * 1000 },
	{ "TB", 1000ULL * 1000 * 1000 * 1000 },
	{ "PB", 1000ULL * 1000 * 1000 * 1000 * 1000 },
};

int parse_size(const char *s, uint64_t *ret)
{
	char digits[21];
	size_t n = 0;
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0 || n >= sizeof(digits))
		return n == 0 ? -EINVAL : -ERANGE;
	memcpy(digits, s, n);
	digits[n] = '\0';
	r = parse_uint64(digits, &v);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
		if (strcmp(s + n, size_units[i].suffix) != 0)
			continue;
		if (v > UINT64_MAX / size_units[i].factor)
			return -ERANGE;
		*ret = v * size_units[i].factor;
		return 0;
	}
	return -EINVAL;
}

int parse_ipv4(const char *s, uint32_t *ret)
{
	uint32_t addr = 0;
	const char *p = s;

	if (!s)
		return -EINVAL;
	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;

		if (part > 0) {
			if (*p != '.')
				return -EINVAL;
			p++;
		}
		if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			v = v * 10 + (unsigned)(*p - '0');
			if (++digits > 3 || v > 255)
				return -EINVAL;
			p++;
		}
		if (digits == 0)
			return -EINVAL;
		addr = addr << 8 | v;
	}
	if (*p)
		return -EINVAL;
	*ret = addr;
	return 0;
}

uint32_t ipv4_netmask(unsigned prefix)
{
	return prefix == 0 ? 0 : prefix >= 32 ? UINT32_MAX : ~(UINT32_MAX >> prefix);
}

bool ipv4_in_cidr(uint32_t ip, uint32_t net, unsigned prefix)
{
	return (ip & ipv4_netmask(prefix)) == (net & ipv4_netmask(prefix));
}

char *ipv4_format(uint32_t ip, char *buf, size_t size)
{
	snprintf(buf, size, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
	return buf;
}

char *mac_format(const uint8_t mac[6], char buf[static 18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return buf;
}

int parse_cidr(const char *s, bool host_bits_zero, uint32_t *ret_addr, unsigned *ret_prefix)
{
	char ip[16];
	const char *slash;
	uint64_t prefix;
	uint32_t addr;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (parse_ipv4(ip, &addr) < 0)
		return -EINVAL;
	if (strlen(slash + 1) > 2 || (slash[1] == '0' && slash[2]) || parse_uint64(slash + 1, &prefix) < 0 ||
	    prefix > 32)
		return -EINVAL;
	if (host_bits_zero && (addr & ~ipv4_netmask((unsigned)prefix)))
		return -EINVAL;
	*ret_addr = addr;
	*ret_prefix = (unsigned)prefix;
	return 0;
}


int parse_mac(const char *s, uint8_t ret[6])
{
	uint8_t mac[6];
	char sep;

	if (!s || strlen(s) != 17)
		return -EINVAL;
	sep = s[2];
	if (sep != ':' && sep != '-')
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int hi = unhexchar(s[i * 3]), lo = unhexchar(s[i * 3 + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != sep))
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(ret, mac, sizeof(mac));
	return 0;
}

int parse_uuid(const char *s, char ret[37])
{
	char out[37];

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			out[i] = '-';
			continue;
		}
		if (unhexchar(s[i]) < 0)
			return -EINVAL;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[36] = '\0';
	memcpy(ret, out, sizeof(out));
	return 0;
}

static bool label_valid(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

bool hostname_label_valid(const char *s)
{
	return s && label_valid(s, strlen(s));
}

bool dns_name_valid(const char *s)
{
	size_t len;

	if (!s)
		return false;
	len = strlen(s);
	if (len == 0 || len > 253)
		return false;
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (!label_valid(p, n))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}
