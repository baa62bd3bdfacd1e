/* SPDX-License-Identifier: MIT */
/*
 * test-gitops.c — the objects of the gitops step (Argo CD's declarative
 * repository Secret and the root Application) from its parameters, the
 * credentials' values looked up by secret name and never missing quietly,
 * and what an Application's status says.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "base64.h"
#include "gitops/gitops.h"
#include "plan/json-util.h"

static const char *lookup(void *userdata, const char *name)
{
	(void)userdata;
	if (strcmp(name, "gitops_token") == 0)
		return "s3cret-token";
	if (strcmp(name, "deploy_key") == 0)
		return "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
	return NULL;
}

static struct json_object *params(const char *creds)
{
	char buf[1024];
	struct json_object *o;

	snprintf(buf, sizeof(buf),
		 "{\"namespace\":\"argocd\",\"application\":\"root\",\"repo\":\"https://git.example.org/lab/c.git\","
		 "\"revision\":\"main\",\"path\":\"clusters/lab\",\"destination_namespace\":\"default\","
		 "\"credentials\":%s}",
		 creds);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	return o;
}

/* data[key] of a Secret, decoded. */
static char *data(struct json_object *secret, const char *key)
{
	const char *v = json_get_string(json_get_object(secret, "data"), key);
	uint8_t *d = NULL;
	size_t n = 0;

	if (!v)
		return NULL;
	assert_int_equal(base64_decode(v, strlen(v), &d, &n), 0);
	return (char *)d;
}

static void expect_data(struct json_object *secret, const char *key, const char *want)
{
	char *v = data(secret, key);

	if (!want) {
		assert_null(v);
		return;
	}
	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
}

static void test_password(void **state)
{
	struct json_object *p = params("{\"username\":\"devopslab\",\"password\":{\"secret\":\"gitops_token\"},"
				       "\"ssh_key\":null}");
	struct json_object *s = NULL, *a = NULL, *md, *spec;
	char err[256];

	(void)state;
	assert_int_equal(gitops_objects(p, lookup, NULL, &s, &a, err, sizeof(err)), 0);
	md = json_get_object(s, "metadata");
	assert_string_equal(json_get_string(s, "kind"), "Secret");
	assert_string_equal(json_get_string(md, "name"), GITOPS_REPO_SECRET);
	assert_string_equal(json_get_string(md, "namespace"), "argocd");
	assert_string_equal(json_get_string(json_get_object(md, "labels"), "argocd.argoproj.io/secret-type"),
			    "repository");
	assert_string_equal(json_get_string(json_get_object(md, "labels"), "app.kubernetes.io/managed-by"),
			    "devopslab");
	expect_data(s, "type", "git");
	expect_data(s, "url", "https://git.example.org/lab/c.git");
	expect_data(s, "username", "devopslab");
	expect_data(s, "password", "s3cret-token");
	expect_data(s, "sshPrivateKey", NULL);
	assert_int_equal(json_object_object_length(json_get_object(s, "data")), 4);

	assert_string_equal(json_get_string(a, "apiVersion"), "argoproj.io/v1alpha1");
	assert_string_equal(json_get_string(a, "kind"), "Application");
	assert_string_equal(json_get_string(json_get_object(a, "metadata"), "name"), "root");
	spec = json_get_object(a, "spec");
	assert_string_equal(json_get_string(spec, "project"), "default");
	assert_string_equal(json_get_string(json_get_object(spec, "source"), "repoURL"),
			    "https://git.example.org/lab/c.git");
	assert_string_equal(json_get_string(json_get_object(spec, "source"), "targetRevision"), "main");
	assert_string_equal(json_get_string(json_get_object(spec, "source"), "path"), "clusters/lab");
	assert_string_equal(json_get_string(json_get_object(spec, "destination"), "server"), GITOPS_DESTINATION);
	assert_string_equal(json_get_string(json_get_object(spec, "destination"), "namespace"), "default");
	assert_true(json_object_get_boolean(
		json_object_object_get(json_get_object(json_get_object(spec, "syncPolicy"), "automated"), "prune")));
	assert_true(json_object_get_boolean(
		json_object_object_get(json_get_object(json_get_object(spec, "syncPolicy"), "automated"), "selfHeal")));
	/* the value is in the Secret only, never in the Application */
	assert_null(strstr(json_object_to_json_string(a), "s3cret"));
	json_object_put(s);
	json_object_put(a);
	json_object_put(p);
}

static void test_ssh_and_public(void **state)
{
	struct json_object *p = params("{\"username\":null,\"password\":null,\"ssh_key\":{\"secret\":\"deploy_key\"}}");
	struct json_object *s = NULL, *a = NULL;
	char err[256];

	(void)state;
	assert_int_equal(gitops_objects(p, lookup, NULL, &s, &a, err, sizeof(err)), 0);
	expect_data(s, "sshPrivateKey", lookup(NULL, "deploy_key"));
	expect_data(s, "username", NULL);
	expect_data(s, "password", NULL);
	json_object_put(s);
	json_object_put(a);
	json_object_put(p);

	/* public: the repository declared, no credentials */
	p = params("null");
	assert_int_equal(gitops_objects(p, lookup, NULL, &s, &a, err, sizeof(err)), 0);
	assert_int_equal(json_object_object_length(json_get_object(s, "data")), 2);
	expect_data(s, "url", "https://git.example.org/lab/c.git");
	json_object_put(s);
	json_object_put(a);
	json_object_put(p);
}

static void test_missing(void **state)
{
	struct json_object *p = params("{\"username\":\"git\",\"password\":{\"secret\":\"other\"},\"ssh_key\":null}");
	struct json_object *s = NULL, *a = NULL;
	char err[256];

	(void)state;
	assert_int_equal(gitops_objects(p, lookup, NULL, &s, &a, err, sizeof(err)), -EINVAL);
	assert_null(s);
	assert_null(a);
	assert_string_equal(err, "the Git repository's password (secret 'other') is not among the bundle's sealed "
				 "secrets: firstboot needs --bundle with its secrets (or, with --manifest, "
				 "--gitops-credential-file)");
	/* without secrets at all (a --manifest run) */
	assert_int_equal(gitops_objects(p, NULL, NULL, &s, &a, err, sizeof(err)), -EINVAL);
	json_object_put(p);

	p = json_tokener_parse("{\"namespace\":\"argocd\"}");
	assert_int_equal(gitops_objects(p, lookup, NULL, &s, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "its parameters lack"));
	json_object_put(p);
}

static void test_app_state(void **state)
{
	struct json_object *p = params("null"), *s = NULL, *a = NULL, *have;
	struct gitops_app_state st;
	char err[256];

	(void)state;
	assert_int_equal(gitops_objects(p, lookup, NULL, &s, &a, err, sizeof(err)), 0);

	/* before Argo CD saw it */
	gitops_app_state(a, a, &st);
	assert_string_equal(st.sync, "");
	assert_false(st.compared);

	have = json_tokener_parse(
		"{\"status\":{\"sync\":{\"status\":\"Synced\",\"revision\":\"0123456789abcdef0123456789abcdef01234567\","
		"\"comparedTo\":{\"source\":{\"repoURL\":\"https://git.example.org/lab/c.git\",\"targetRevision\":\"main\","
		"\"path\":\"clusters/lab\"},\"destination\":{}}},\"health\":{\"status\":\"Healthy\"}}}");
	gitops_app_state(a, have, &st);
	assert_string_equal(st.sync, "Synced");
	assert_string_equal(st.health, "Healthy");
	assert_string_equal(st.revision, "0123456789abcdef0123456789abcdef01234567");
	assert_true(st.compared);
	assert_string_equal(st.problem, "");
	assert_false(st.refreshing);
	json_object_put(have);

	/* a refresh asked for and not done yet */
	have = json_tokener_parse("{\"metadata\":{\"annotations\":{\"" GITOPS_REFRESH "\":\"hard\"}},"
				  "\"status\":{\"sync\":{\"status\":\"Synced\"}}}");
	gitops_app_state(a, have, &st);
	assert_true(st.refreshing);
	json_object_put(have);

	/* compared with another revision (the spec before ours), a problem */
	have = json_tokener_parse(
		"{\"status\":{\"sync\":{\"status\":\"Unknown\",\"comparedTo\":{\"source\":{\"repoURL\":"
		"\"https://git.example.org/lab/c.git\",\"targetRevision\":\"dev\",\"path\":\"clusters/lab\"}}},"
		"\"health\":{\"status\":\"Healthy\"},\"conditions\":[{\"type\":\"SyncWarning\",\"message\":\"w\"},"
		"{\"type\":\"ComparisonError\",\"message\":\"failed to list refs: authentication required\"}]}}");
	gitops_app_state(a, have, &st);
	assert_false(st.compared);
	assert_string_equal(st.sync, "Unknown");
	assert_string_equal(st.problem, "ComparisonError: failed to list refs: authentication required");
	json_object_put(have);
	json_object_put(s);
	json_object_put(a);
	json_object_put(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password),
		cmocka_unit_test(test_ssh_and_public),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_app_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
