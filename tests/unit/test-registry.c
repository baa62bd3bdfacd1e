/* SPDX-License-Identifier: MIT */
/*
 * test-registry.c — what the registry step gives every K3s node (K3s's
 * registries.yaml with and without the cluster CA, the resolver's
 * drop-in for the lab's zone), the seed script (dash reads it), and the
 * reading of what the seed script says it pushed.
 */
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

#include "registry/registry.h"

static void test_node_files(void **state)
{
	struct json_object *p = json_tokener_parse(
		"{\"host\":\"registry.home.arpa\",\"dns\":{\"zone\":\"home.arpa\",\"servers\":[\"10.0.0.53\",\"10.0.0.54\"]}}");
	char *reg = NULL, *res = NULL;

	(void)state;
	assert_int_equal(registry_node_files(p, true, &reg, &res), 0);
	assert_string_equal(reg, "# devopslab: the lab's registry (docs/registry.md); K3s reads this file when it starts\n"
				 "mirrors:\n"
				 "  \"*\":\n"
				 "    endpoint:\n"
				 "      - \"https://registry.home.arpa\"\n"
				 "configs:\n"
				 "  \"registry.home.arpa\":\n"
				 "    tls:\n"
				 "      ca_file: \"/etc/rancher/k3s/devopslab-registry-ca.pem\"\n");
	assert_string_equal(res, "# devopslab: the lab's zone through the lab's DNS servers (docs/registry.md)\n"
				 "[Resolve]\n"
				 "DNS=10.0.0.53 10.0.0.54\n"
				 "Domains=~home.arpa\n");
	free(reg);
	free(res);
	/* ACME: the VMs' own roots, no ca_file */
	assert_int_equal(registry_node_files(p, false, &reg, &res), 0);
	assert_null(strstr(reg, "configs:"));
	assert_non_null(strstr(reg, "https://registry.home.arpa"));
	free(reg);
	free(res);
	json_object_put(p);
	/* without a dns block, no drop-in; without a host, nothing */
	p = json_tokener_parse("{\"host\":\"r.lab\"}");
	assert_int_equal(registry_node_files(p, true, &reg, &res), 0);
	assert_null(res);
	free(reg);
	json_object_put(p);
	p = json_tokener_parse("{}");
	assert_int_equal(registry_node_files(p, true, &reg, &res), -EINVAL);
	assert_null(reg);
	json_object_put(p);
}

static void test_seed_script(void **state)
{
	char path[] = "/tmp/test-registry-XXXXXX", cmd[128];
	const char *s = registry_seed_script();
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
	/* Debian's /bin/sh (dash) parses it */
	snprintf(cmd, sizeof(cmd), "dash -n %s", path);
	assert_int_equal(system(cmd), 0);
	unlink(path);
	assert_non_null(strstr(s, "set -eu\n"));
	assert_non_null(strstr(s, "echo \"pushed $ref $dest\""));
}

static void test_parse_pushed(void **state)
{
	char *list = NULL;
	size_t n = 9;

	(void)state;
	assert_int_equal(registry_parse_pushed("pushed docker.io/library/nginx:1.25 r.lab/library/nginx:1.25\n"
					       "registry-seed: x has no tag\n"
					       "pushed ghcr.io/a/b:v1 r.lab/a/b:v1",
					       "r.lab", &list, &n),
			 0);
	assert_int_equal(n, 2);
	assert_string_equal(list, "r.lab/library/nginx:1.25\nr.lab/a/b:v1\n");
	free(list);
	/* nothing pushed: an empty list */
	assert_int_equal(registry_parse_pushed("", "r.lab", &list, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(list, "");
	free(list);
	/* another host, no tag, a digest, a third word: refused */
	assert_int_equal(registry_parse_pushed("pushed a b.lab/x:1\n", "r.lab", &list, &n), -EBADMSG);
	assert_null(list);
	assert_int_equal(registry_parse_pushed("pushed a r.lab/x\n", "r.lab", &list, &n), -EBADMSG);
	assert_int_equal(registry_parse_pushed("pushed a r.lab/x:1/y\n", "r.lab", &list, &n), -EBADMSG);
	assert_int_equal(registry_parse_pushed("pushed a r.lab/x@sha256:00:1\n", "r.lab", &list, &n), -EBADMSG);
	assert_int_equal(registry_parse_pushed("pushed a r.lab/x:1 more\n", "r.lab", &list, &n), -EBADMSG);
	assert_int_equal(registry_parse_pushed("pushed a r.labx/x:1\n", "r.lab", &list, &n), -EBADMSG);
	assert_int_equal(registry_parse_pushed("pushed a r.lab/x:1\n", NULL, &list, &n), -EINVAL);
}

static void test_parse_pushed_cap(void **state)
{
	size_t cap = (REGISTRY_IMAGES_MAX + 1) * 32, len = 0, n = 0;
	char *out = malloc(cap), *list = NULL;

	(void)state;
	assert_non_null(out);
	for (int i = 0; i <= REGISTRY_IMAGES_MAX; i++)
		len += snprintf(out + len, cap - len, "pushed a r.lab/i%d:1\n", i);
	assert_int_equal(registry_parse_pushed(out, "r.lab", &list, &n), -E2BIG);
	assert_null(list);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_files),
		cmocka_unit_test(test_seed_script),
		cmocka_unit_test(test_parse_pushed),
		cmocka_unit_test(test_parse_pushed_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
