/* SPDX-License-Identifier: MIT */
/*
 * test-preflight.c — the pre-flight gate on a fabricated /proc and /sys:
 * CPU flags, memory with its 1/16 allowance, SMART log judgement, NIC
 * carrier, waivers, the JSON record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake-tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bundle/extract.h"
#include "manifest/manifest.h"
#include "node/preflight.h"
#include "util.h"

static char root[64], proc[96], sys[96], dev[96];

static void put(const char *rel, const char *content)
{
	fake_tree_put(root, rel, content);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/test-preflight.XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(proc, sizeof(proc), "%s/proc", root);
	snprintf(sys, sizeof(sys), "%s/sys", root);
	snprintf(dev, sizeof(dev), "%s/dev", root);
	put("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme svm lm\n\nprocessor\t: 1\nflags\t\t: fpu\n");
	put("proc/meminfo", "MemTotal:        8052000 kB\nMemFree:         100 kB\n");
	put("sys/class/net/eth0/carrier", "1\n");
	put("sys/class/net/eth1/carrier", "0\n");
	put("sys/class/nvme/nvme0/model", "fake\n"); /* no /dev node: SMART unavailable */
	put("dev/.keep", "");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return extract_rm_rf_at(AT_FDCWD, root) < 0 ? -1 : 0;
}

static const struct preflight_finding *find(const struct preflight_report *r, enum preflight_check c)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].check == c)
			return &r->items[i];
	fail_msg("no finding for %s", preflight_check_name(c));
	return NULL;
}

static void test_pass(void **state)
{
	struct preflight_opts o = { .proc = proc, .sysfs = sys, .dev = dev, .nic = "eth0",
				    .min_memory = 8ull << 30 };
	struct preflight_report r;

	(void)state;
	assert_int_equal(preflight_run(&o, &r), 0);
	assert_int_equal(find(&r, PREFLIGHT_VIRTUALIZATION)->status, PREFLIGHT_PASS);
	assert_string_equal(find(&r, PREFLIGHT_VIRTUALIZATION)->detail, "svm (AMD-V) present");
	/* 7863 MiB is within 1/16 of 8 GiB */
	assert_int_equal(find(&r, PREFLIGHT_MEMORY)->status, PREFLIGHT_PASS);
	assert_string_equal(find(&r, PREFLIGHT_MEMORY)->detail, "7863 MiB usable, the manifest asks for 8192 MiB");
	assert_int_equal(find(&r, PREFLIGHT_SMART)->status, PREFLIGHT_UNAVAILABLE);
	assert_string_equal(find(&r, PREFLIGHT_SMART)->subject, "nvme0");
	assert_int_equal(find(&r, PREFLIGHT_LINK)->status, PREFLIGHT_PASS);
	assert_int_equal(r.n_failed, 0);
	assert_int_equal(r.n_unavailable, 1);
}

static void test_failures_and_waivers(void **state)
{
	struct preflight_opts o = { .proc = proc, .sysfs = sys, .dev = dev, .nic = "eth1",
				    .min_memory = 16ull << 30, .link_wait_ms = 200 };
	struct preflight_report r;
	char json[4096];

	(void)state;
	put("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu svmx vmxx lm\n"); /* no whole-word flag */
	assert_int_equal(preflight_run(&o, &r), 0);
	assert_int_equal(find(&r, PREFLIGHT_VIRTUALIZATION)->status, PREFLIGHT_FAIL);
	assert_int_equal(find(&r, PREFLIGHT_MEMORY)->status, PREFLIGHT_FAIL);
	assert_int_equal(find(&r, PREFLIGHT_LINK)->status, PREFLIGHT_FAIL);
	assert_string_equal(find(&r, PREFLIGHT_LINK)->detail, "no link: is the cable plugged in?");
	assert_int_equal(r.n_failed, 3);

	o.waive = MF_WAIVE_VIRTUALIZATION | MF_WAIVE_LINK;
	assert_int_equal(preflight_run(&o, &r), 0);
	assert_int_equal(find(&r, PREFLIGHT_VIRTUALIZATION)->status, PREFLIGHT_WAIVED);
	assert_int_equal(find(&r, PREFLIGHT_LINK)->status, PREFLIGHT_WAIVED);
	assert_int_equal(find(&r, PREFLIGHT_MEMORY)->status, PREFLIGHT_FAIL);
	assert_int_equal(r.n_failed, 1);
	assert_int_equal(r.n_waived, 2);
	assert_int_equal(preflight_report_json(&r, json, sizeof(json)), 0);
	assert_non_null(strstr(json, "{\"check\": \"virtualization\", \"status\": \"waived\", \"subject\": \"cpu\""));
	assert_non_null(strstr(json, "\"check\": \"memory\", \"status\": \"fail\""));
	assert_int_equal(preflight_report_json(&r, json, 40), -ENOBUFS);

	o.nic = "eth9";
	o.waive = 0;
	assert_int_equal(preflight_run(&o, &r), 0);
	assert_string_equal(find(&r, PREFLIGHT_LINK)->detail, "no such interface");
	o.nic = NULL;
	o.min_memory = 0;
	assert_int_equal(preflight_run(&o, &r), 0);
	assert_int_equal(find(&r, PREFLIGHT_LINK)->status, PREFLIGHT_SKIPPED);
	assert_int_equal(find(&r, PREFLIGHT_MEMORY)->status, PREFLIGHT_SKIPPED);
	put("proc/cpuinfo", "processor\t: 0\nflags\t\t: vmx\n");
	assert_int_equal(preflight_run(&o, &r), 0);
	assert_string_equal(find(&r, PREFLIGHT_VIRTUALIZATION)->detail, "vmx (Intel VT-x) present");
}

static void test_smart_parse(void **state)
{
	uint8_t log[512] = {};
	char d[160];

	(void)state;
	log[1] = 0x3e; log[2] = 0x01; /* 318 K = 45 C */
	log[3] = 100; log[4] = 10; log[5] = 3;
	assert_int_equal(preflight_smart_parse(log, sizeof(log), d, sizeof(d)), PREFLIGHT_PASS);
	assert_string_equal(d, "healthy: 3% used, spare 100% (threshold 10%), 45 C");
	log[0] = 0x04 | 0x08;
	assert_int_equal(preflight_smart_parse(log, sizeof(log), d, sizeof(d)), PREFLIGHT_FAIL);
	assert_string_equal(d, "critical warning 0x0c: reliability degraded read-only");
	log[0] = 0;
	log[3] = 5;
	assert_int_equal(preflight_smart_parse(log, sizeof(log), d, sizeof(d)), PREFLIGHT_FAIL);
	assert_string_equal(d, "available spare 5% below its threshold 10%");
	log[3] = 50;
	log[5] = 100;
	assert_int_equal(preflight_smart_parse(log, sizeof(log), d, sizeof(d)), PREFLIGHT_FAIL);
	assert_string_equal(d, "worn out: 100% of its rated endurance used");
	assert_int_equal(preflight_smart_parse(log, 5, d, sizeof(d)), PREFLIGHT_UNAVAILABLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_failures_and_waivers),
		cmocka_unit_test(test_smart_parse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
