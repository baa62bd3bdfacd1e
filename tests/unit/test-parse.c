/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse.h"
#include "util.h"

static uint64_t size_ok(const char *s)
{
	uint64_t v = 0;

	assert_int_equal(parse_size(s, &v), 0);
	return v;
}

static void test_size(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("1048576"), 1048576);
	assert_int_equal(size_ok("512B"), 512);
	assert_int_equal(size_ok("1K"), 1024);
	assert_int_equal(size_ok("512M"), 512ULL << 20);
	assert_int_equal(size_ok("20G"), 20ULL << 30);
	assert_int_equal(size_ok("1T"), 1ULL << 40);
	assert_int_equal(size_ok("20GiB"), 20ULL << 30);
	assert_int_equal(size_ok("16MiB"), 16ULL << 20);
	assert_int_equal(size_ok("20GB"), 20000000000ULL);
	assert_int_equal(size_ok("1TB"), 1000000000000ULL);
	assert_int_equal(size_ok("18446744073709551615"), UINT64_MAX);
	assert_int_equal(parse_size("16383P", &v), 0);
	assert_int_equal(parse_size("16384P", &v), -ERANGE);
	assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_size("999999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("G", &v), -EINVAL);
	assert_int_equal(parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(parse_size("-1G", &v), -EINVAL);
	assert_int_equal(parse_size("20g", &v), -EINVAL);
	assert_int_equal(parse_size("20 G", &v), -EINVAL);
	assert_int_equal(parse_size("20Gi", &v), -EINVAL);
	assert_int_equal(parse_size(NULL, &v), -EINVAL);
	assert_int_equal(v, 16383ULL << 50); /* untouched by the failures */
}

static void test_uint64(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_uint64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint64("4094", &v), 0);
	assert_int_equal(v, 4094);
	assert_int_equal(parse_uint64("+1", &v), -EINVAL);
	assert_int_equal(parse_uint64(" 1", &v), -EINVAL);
	assert_int_equal(parse_uint64("1 ", &v), -EINVAL);
	assert_int_equal(parse_uint64("0x10", &v), -EINVAL);
	assert_int_equal(parse_uint64("18446744073709551616", &v), -ERANGE);
}

static void test_ipv4(void **state)
{
	uint32_t ip = 0;
	char buf[16];

	(void)state;
	assert_int_equal(parse_ipv4("10.0.10.1", &ip), 0);
	assert_int_equal(ip, 0x0a000a01);
	assert_string_equal(ipv4_format(ip, buf, sizeof(buf)), "10.0.10.1");
	assert_int_equal(parse_ipv4("255.255.255.255", &ip), 0);
	assert_int_equal(ip, 0xffffffff);
	assert_int_equal(parse_ipv4("0.0.0.0", &ip), 0);
	assert_int_equal(ip, 0);
	assert_int_equal(parse_ipv4("10.0.10.256", &ip), -EINVAL);
	assert_int_equal(parse_ipv4("10.0.10", &ip), -EINVAL);
	assert_int_equal(parse_ipv4("10.0.10.1.", &ip), -EINVAL);
	assert_int_equal(parse_ipv4("10.0.010.1", &ip), -EINVAL); /* octal to inet_aton */
	assert_int_equal(parse_ipv4("10..10.1", &ip), -EINVAL);
	assert_int_equal(parse_ipv4("a.b.c.d", &ip), -EINVAL);
	assert_int_equal(parse_ipv4("1.2.3.4 ", &ip), -EINVAL);
	assert_int_equal(parse_ipv4("1234.2.3.4", &ip), -EINVAL);
	assert_int_equal(ip, 0);
}

static void test_cidr(void **state)
{
	uint32_t a = 0;
	unsigned p = 0;

	(void)state;
	assert_int_equal(parse_cidr("10.0.10.0/24", true, &a, &p), 0);
	assert_int_equal(a, 0x0a000a00);
	assert_int_equal(p, 24);
	assert_int_equal(parse_cidr("10.0.10.21/24", false, &a, &p), 0);
	assert_int_equal(a, 0x0a000a15);
	assert_int_equal(parse_cidr("10.0.10.21/24", true, &a, &p), -EINVAL);
	assert_int_equal(parse_cidr("0.0.0.0/0", true, &a, &p), 0);
	assert_int_equal(p, 0);
	assert_int_equal(parse_cidr("10.0.10.0/33", true, &a, &p), -EINVAL);
	assert_int_equal(parse_cidr("10.0.10.0/024", true, &a, &p), -EINVAL);
	assert_int_equal(parse_cidr("10.0.10.0/", true, &a, &p), -EINVAL);
	assert_int_equal(parse_cidr("10.0.10.0", true, &a, &p), -EINVAL);
	assert_true(ipv4_in_cidr(0x0a000aff, 0x0a000a00, 24));
	assert_false(ipv4_in_cidr(0x0a000b01, 0x0a000a00, 24));
	assert_int_equal(ipv4_netmask(0), 0);
	assert_int_equal(ipv4_netmask(24), 0xffffff00);
	assert_int_equal(ipv4_netmask(32), 0xffffffff);
}

static void test_mac(void **state)
{
	uint8_t mac[6] = {};
	const uint8_t want[6] = { 0x52, 0x54, 0x00, 0x0a, 0x00, 0xff };

	(void)state;
	assert_int_equal(parse_mac("52:54:00:0a:00:FF", mac), 0);
	assert_memory_equal(mac, want, 6);
	assert_int_equal(parse_mac("52-54-00-0a-00-ff", mac), 0);
	assert_int_equal(parse_mac("52:54-00:0a:00:ff", mac), -EINVAL);
	assert_int_equal(parse_mac("52:54:00:0a:00", mac), -EINVAL);
	assert_int_equal(parse_mac("52:54:00:0a:00:fg", mac), -EINVAL);
	assert_int_equal(parse_mac("5254000a00ff", mac), -EINVAL);
}

static void test_uuid(void **state)
{
	char u[37];

	(void)state;
	assert_int_equal(parse_uuid("4C4C4544-0042-3610-8052-B4C04F4E4D32", u), 0);
	assert_string_equal(u, "4c4c4544-0042-3610-8052-b4c04f4e4d32");
	assert_int_equal(parse_uuid("4c4c4544004236108052b4c04f4e4d32", u), -EINVAL);
	assert_int_equal(parse_uuid("4c4c4544-0042-3610-8052-b4c04f4e4d3g", u), -EINVAL);
	assert_int_equal(parse_uuid("4c4c4544-0042-3610-8052_b4c04f4e4d32", u), -EINVAL);
}

static void test_names(void **state)
{
	char long_label[65];

	(void)state;
	assert_true(hostname_label_valid("devops-node-01"));
	assert_true(hostname_label_valid("a"));
	assert_true(hostname_label_valid("1node"));
	assert_false(hostname_label_valid(""));
	assert_false(hostname_label_valid("-a"));
	assert_false(hostname_label_valid("a-"));
	assert_false(hostname_label_valid("a_b"));
	assert_false(hostname_label_valid("a.b"));
	assert_false(hostname_label_valid("nöde"));
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	assert_false(hostname_label_valid(long_label));
	long_label[63] = '\0';
	assert_true(hostname_label_valid(long_label));
	assert_true(dns_name_valid("homelab.local"));
	assert_true(dns_name_valid("home.arpa"));
	assert_true(dns_name_valid("traefik.homelab.local"));
	assert_false(dns_name_valid("homelab..local"));
	assert_false(dns_name_valid("homelab.local."));
	assert_false(dns_name_valid(".local"));
	assert_false(dns_name_valid("a_b.local"));
	assert_false(dns_name_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),  cmocka_unit_test(test_uint64), cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_cidr),  cmocka_unit_test(test_mac),    cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
