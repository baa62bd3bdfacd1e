/* SPDX-License-Identifier: MIT */
/*
 * test-edge.c — what the edge steps decide without a cluster: the Traefik
 * chart's major version from K3s's HelmChart, the values in each chart
 * version's form (validated against the charts' own schemas by
 * t-edge.sh's simulator), the comparison that keeps a converged run from
 * writing (kube_has), and the certificate check that decides whether the
 * wildcard certificate is issued again (cert_check: the CA's, its key,
 * its names, its days left). t-edge.sh runs the steps against the
 * simulators.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "edge/edge.h"
#include "k3s/kube.h"
#include "plan/json-util.h"
#include "pve/cert.h"
#include "util.h"

#include "test-ca.h"

static void test_chart_major(void **state)
{
	(void)state;
	assert_int_equal(edge_chart_major("https://%{KUBERNETES_API}%/static/charts/traefik-34.2.1+up34.2.0.tgz"), 34);
	assert_int_equal(edge_chart_major("https://%{KUBERNETES_API}%/static/charts/traefik-39.0.701+up39.0.7.tgz"), 39);
	assert_int_equal(edge_chart_major("traefik-38.0.2.tgz"), 38);
	assert_int_equal(edge_chart_major("https://x/static/charts/traefik-crd-34.2.1+up34.2.0.tgz"), -EINVAL);
	assert_int_equal(edge_chart_major("https://x/static/charts/nginx-1.0.0.tgz"), -EINVAL);
	assert_int_equal(edge_chart_major(""), -EINVAL);
	assert_int_equal(edge_chart_major(NULL), -EINVAL);
}

static struct json_object *path(struct json_object *o, const char *const *keys)
{
	for (; *keys && o; keys++)
		o = json_get_object(o, *keys);
	return o;
}

static void test_values(void **state)
{
	char *text = NULL;
	struct json_object *v, *web;

	(void)state;
	/* up to chart 38: ports.web.redirections */
	assert_int_equal(edge_traefik_values(34, "10.0.10.30", &text), 0);
	v = json_tokener_parse(text);
	assert_non_null(v);
	web = path(v, (const char *const[]){ "ports", "web", NULL });
	assert_non_null(path(web, (const char *const[]){ "redirections", "entryPoint", NULL }));
	assert_null(json_get_object(web, "http"));
	assert_string_equal(json_get_string(path(web, (const char *const[]){ "redirections", "entryPoint", NULL }), "to"),
			    "websecure");
	assert_string_equal(json_get_string(path(v, (const char *const[]){ "service", "annotations", NULL }),
					    "kube-vip.io/loadbalancerIPs"),
			    "10.0.10.30");
	assert_string_equal(json_get_string(path(v, (const char *const[]){ "service", "spec", NULL }),
					    "externalTrafficPolicy"),
			    "Local");
	assert_null(json_get_string(path(v, (const char *const[]){ "service", "spec", NULL }), "loadBalancerClass"));
	assert_string_equal(json_get_string(json_get_object(v, "deployment"), "kind"), "DaemonSet");
	/* metrics for Prometheus, with their Service; access logs as JSON */
	assert_string_equal(json_get_string(path(v, (const char *const[]){ "metrics", "prometheus", NULL }),
					    "entryPoint"),
			    "metrics");
	assert_true(json_object_get_boolean(json_object_object_get(
		path(v, (const char *const[]){ "metrics", "prometheus", "service", NULL }), "enabled")));
	assert_string_equal(json_get_string(path(v, (const char *const[]){ "logs", "access", NULL }), "format"),
			    "json");
	json_object_put(v);
	free(text);
	/* chart 39: under ports.web.http, the old key gone */
	assert_int_equal(edge_traefik_values(39, "10.0.10.30", &text), 0);
	v = json_tokener_parse(text);
	web = path(v, (const char *const[]){ "ports", "web", NULL });
	assert_null(json_get_object(web, "redirections"));
	assert_non_null(path(web, (const char *const[]){ "http", "redirections", "entryPoint", NULL }));
	json_object_put(v);
	free(text);
}

static void test_kube_has(void **state)
{
	struct json_object *want = json_tokener_parse("{\"spec\":{\"a\":1,\"l\":[{\"x\":\"y\"}]},\"data\":{\"k\":\"v\"}}");
	struct json_object *same = json_tokener_parse(
		"{\"metadata\":{\"uid\":\"u\"},\"spec\":{\"a\":1,\"b\":2,\"l\":[{\"x\":\"y\",\"z\":0}]},\"data\":{\"k\":\"v\"},"
		"\"status\":{}}");
	struct json_object *changed = json_tokener_parse("{\"spec\":{\"a\":2,\"l\":[{\"x\":\"y\"}]},\"data\":{\"k\":\"v\"}}");
	struct json_object *longer =
		json_tokener_parse("{\"spec\":{\"a\":1,\"l\":[{\"x\":\"y\"},{\"x\":\"w\"}]},\"data\":{\"k\":\"v\"}}");
	struct json_object *missing = json_tokener_parse("{\"spec\":{\"a\":1,\"l\":[{\"x\":\"y\"}]}}");
	struct json_object *typed = json_tokener_parse("{\"spec\":{\"a\":\"1\",\"l\":[{\"x\":\"y\"}]},\"data\":{\"k\":\"v\"}}");

	(void)state;
	assert_true(kube_has(want, same));      /* defaults and status of the server's do not count */
	assert_false(kube_has(want, changed));  /* a field of ours changed by hand */
	assert_false(kube_has(want, longer));   /* a list is ours whole */
	assert_false(kube_has(want, missing));  /* a field of ours removed */
	assert_false(kube_has(want, typed));    /* "1" is not 1 */
	json_object_put(want);
	json_object_put(same);
	json_object_put(changed);
	json_object_put(longer);
	json_object_put(missing);
	json_object_put(typed);
}

static void test_cert_check(void **state)
{
	char ca[] = "/tmp/test-edge-ca.XXXXXX", ca_key[] = "/tmp/test-edge-key.XXXXXX";
	char other[] = "/tmp/test-edge-ca2.XXXXXX", other_key[] = "/tmp/test-edge-key2.XXXXXX";
	const char *names[] = { "*.home.arpa", "home.arpa" }, *more[] = { "*.home.arpa", "www.example.org" };
	struct cert_request req = { .common_name = "*.home.arpa", .dns = { "*.home.arpa", "home.arpa" }, .n_dns = 2,
				    .days = 90 };
	char *chain = NULL, *key = NULL, *chain2 = NULL, *key2 = NULL;

	(void)state;
	make_ca(ca, ca_key);
	make_ca(other, other_key);
	assert_int_equal(cert_issue(ca, ca_key, &req, &chain, &key), 0);
	assert_int_equal(cert_check(ca, chain, key, names, 2, 30), 0);
	assert_int_equal(cert_check(ca, chain, key, more, 2, 30), -ENOENT);  /* a name it lacks */
	assert_int_equal(cert_check(other, chain, key, names, 2, 30), -EKEYREJECTED); /* another CA's */
	assert_int_equal(cert_check(ca, chain, key, names, 2, 91), -ETIME);   /* too few days left */
	assert_int_equal(cert_issue(ca, ca_key, &req, &chain2, &key2), 0);
	assert_int_equal(cert_check(ca, chain, key2, names, 2, 30), -EKEYREJECTED); /* not its key */
	assert_int_equal(cert_check(ca, "garbage", key, names, 2, 30), -EBADMSG);
	free(chain);
	free(key);
	free(chain2);
	free(key2);
	unlink(ca);
	unlink(ca_key);
	unlink(other);
	unlink(other_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chart_major),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_kube_has),
		cmocka_unit_test(test_cert_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
