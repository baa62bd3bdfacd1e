/* SPDX-License-Identifier: MIT */
/*
 * test-monitoring.c — the dashboards this build provisions are Grafana
 * dashboard JSON (an object with a uid, a title and panels whose queries
 * name the plan's jobs), and Prometheus's /api/v1/targets read against
 * the plan's static jobs: up, down with Prometheus's words, missing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "monitoring/monitoring.h"
#include "plan/json-util.h"

static void test_dashboards(void **state)
{
	static const char *const names[] = { "hosts", "k3s", "traefik" };

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *text = monitoring_dashboard(names[i]);
		struct json_object *d, *panels;
		char uid[64];

		assert_non_null(text);
		d = json_tokener_parse(text);
		assert_non_null(d);
		snprintf(uid, sizeof(uid), "devopslab-%s", names[i]);
		assert_string_equal(json_get_string(d, "uid"), uid);
		assert_non_null(strstr(json_get_string(d, "title"), "DevOpsLab: "));
		panels = json_get_array(d, "panels");
		assert_int_equal(json_object_array_length(panels), 4);
		for (size_t j = 0; j < 4; j++) {
			struct json_object *p = json_object_array_get_idx(panels, j);
			struct json_object *t = json_object_array_get_idx(json_get_array(p, "targets"), 0);

			assert_string_equal(json_get_string(p, "type"), "timeseries");
			assert_non_null(json_get_string(t, "expr"));
		}
		json_object_put(d);
	}
	/* the hosts' queries name the plan's job */
	assert_non_null(strstr(monitoring_dashboard("hosts"), "job=\\\"proxmox-hosts\\\""));
	assert_null(monitoring_dashboard("nope"));
	assert_null(monitoring_dashboard(NULL));
}

static void test_targets(void **state)
{
	struct json_object *params = json_tokener_parse(
		"{\"jobs\":[{\"name\":\"proxmox-hosts\",\"targets\":[\"10.0.0.11:9100\",\"10.0.0.12:9100\"]},"
		"{\"name\":\"pbs\",\"targets\":[\"pbs.home.arpa:8007\"]}]}");
	struct json_object *answer = json_tokener_parse(
		"{\"status\":\"success\",\"data\":{\"activeTargets\":["
		"{\"labels\":{\"job\":\"proxmox-hosts\",\"instance\":\"10.0.0.11:9100\"},\"health\":\"up\",\"lastError\":\"\"},"
		"{\"labels\":{\"job\":\"proxmox-hosts\",\"instance\":\"10.0.0.12:9100\"},\"health\":\"down\","
		"\"lastError\":\"dial tcp 10.0.0.12:9100: connect: connection refused\"},"
		"{\"labels\":{\"job\":\"other\",\"instance\":\"pbs.home.arpa:8007\"},\"health\":\"up\"}],"
		"\"droppedTargets\":[]}}");
	size_t n = 0, up = 0;
	char why[256];

	(void)state;
	monitoring_targets(params, answer, &n, &up, why, sizeof(why));
	assert_int_equal(n, 3);
	assert_int_equal(up, 1);
	assert_string_equal(why, "proxmox-hosts 10.0.0.12:9100: down, dial tcp 10.0.0.12:9100: connect: connection refused");
	json_object_put(answer);

	/* none listed: the job is not Prometheus's (a target of another job does not count) */
	answer = json_tokener_parse("{\"status\":\"success\",\"data\":{\"activeTargets\":[]}}");
	monitoring_targets(params, answer, &n, &up, why, sizeof(why));
	assert_int_equal(n, 3);
	assert_int_equal(up, 0);
	assert_string_equal(why, "proxmox-hosts 10.0.0.11:9100: not a target of Prometheus");
	json_object_put(answer);
	json_object_put(params);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dashboards),
		cmocka_unit_test(test_targets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
