/* SPDX-License-Identifier: MIT */
/*
 * test-k3s.c — the K3s trust is a function of the cluster CA key alone
 * (the same bytes from its SEC1 and PKCS#8 forms, others from another
 * key; the token's hash is the server CA's SHA-256), the full token form,
 * config.yaml for each role (and what it refuses), the kubeconfig, and
 * the decoders of a NodeList and of agent/exec-status.
 * t-k3s.sh checks the certificates with openssl and the flow against the
 * simulators.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <openssl/sha.h>

#include "k3s/k3s-ca.h"
#include "k3s/k3s-config.h"
#include "k3s/kube.h"
#include "pve/pve-guest.h"
#include "util.h"

#include "test-keys.h"

static void test_trust_deterministic(void **state)
{
	struct k3s_trust a, b, c;
	uint8_t h[32];
	char hex[65];

	(void)state;
	assert_int_equal(k3s_trust_derive(key_sec1, strlen(key_sec1), &a), 0);
	assert_int_equal(k3s_trust_derive(key_pkcs8, strlen(key_pkcs8), &b), 0);
	assert_int_equal(k3s_trust_derive(key_other, strlen(key_other), &c), 0);
	for (size_t i = 0; i < K3S_TLS_FILES; i++) {
		assert_non_null(a.files[i].path);
		assert_string_equal(a.files[i].path, b.files[i].path);
		assert_string_equal(a.files[i].pem, b.files[i].pem);
		assert_string_not_equal(a.files[i].pem, c.files[i].pem);
		assert_int_equal(a.files[i].mode, strstr(a.files[i].path, ".key") ? 0600 : 0644);
		assert_int_equal(strncmp(a.files[i].path, K3S_TLS_DIR "/", strlen(K3S_TLS_DIR) + 1), 0);
	}
	assert_string_equal(a.files[0].path, K3S_TLS_DIR "/server-ca.crt");
	assert_string_equal(a.files[K3S_TLS_FILES - 1].path, K3S_TLS_DIR "/service.key");
	assert_string_equal(a.admin_cert, b.admin_cert);
	assert_string_equal(a.admin_key, b.admin_key);
	assert_string_not_equal(a.admin_cert, c.admin_cert);
	assert_ptr_equal(a.server_ca, a.files[0].pem);
	SHA256((const unsigned char *)a.server_ca, strlen(a.server_ca), h);
	for (size_t i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	assert_string_equal(a.ca_hash, hex);
	assert_string_equal(a.ca_hash, b.ca_hash);
	assert_string_not_equal(a.ca_hash, c.ca_hash);
	k3s_trust_done(&a);
	k3s_trust_done(&b);
	k3s_trust_done(&c);
	assert_int_equal(k3s_trust_derive("not a key", 9, &a), -EINVAL);
}

static void test_token(void **state)
{
	char hash[65];
	_cleanup_free_ char *t = NULL;

	(void)state;
	memset(hash, 'a', 64);
	hash[64] = 0;
	assert_int_equal(k3s_token(hash, "s3cret", &t), 0);
	assert_string_equal(t, "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::server:s3cret");
	assert_int_equal(k3s_token("abc", "s3cret", &t), -EINVAL);
	assert_int_equal(k3s_token(hash, "", &t), -EINVAL);
	assert_int_equal(k3s_token(hash, "a:b", &t), -EINVAL);
	assert_int_equal(k3s_token(hash, "a\nb", &t), -EINVAL);
}

static const char *const disable[] = { "traefik", "servicelb" };
static const char *const san[] = { "10.0.10.5", "10.0.10.31" };

static void test_config(void **state)
{
	struct k3s_node_cfg c = { .role = K3S_ROLE_INIT, .cluster_init = true, .node_name = "k3s-server-01", .node_ip = 0x0a000a1f,
				  .token = "K10ab::server:x", .cluster_cidr = "10.42.0.0/16",
				  .service_cidr = "10.43.0.0/16", .disable = disable, .n_disable = 2, .tls_san = san,
				  .n_tls_san = 2 };
	_cleanup_free_ char *y = NULL;
	size_t n;

	(void)state;
	assert_int_equal(k3s_config_yaml(&c, &y, &n), 0);
	assert_string_equal(y, "# devopslab: K3s configuration (docs/k3s.md)\n"
			       "cluster-init: true\n"
			       "token: \"K10ab::server:x\"\n"
			       "node-name: \"k3s-server-01\"\n"
			       "node-ip: \"10.0.10.31\"\n"
			       "cluster-cidr: \"10.42.0.0/16\"\n"
			       "service-cidr: \"10.43.0.0/16\"\n"
			       "disable:\n"
			       "- \"traefik\"\n"
			       "- \"servicelb\"\n"
			       "tls-san:\n"
			       "- \"10.0.10.5\"\n"
			       "- \"10.0.10.31\"\n"
			       "write-kubeconfig-mode: \"0600\"\n");
	assert_int_equal(strlen(y), n);
	free(TAKE_PTR(y));
	/* without k3s.ha: SQLite, no cluster-init */
	c.cluster_init = false;
	assert_int_equal(k3s_config_yaml(&c, &y, &n), 0);
	assert_null(strstr(y, "cluster-init"));
	assert_non_null(strstr(y, "\ntoken: "));
	free(TAKE_PTR(y));
	/* an agent: the server and its own identity only */
	c = (struct k3s_node_cfg){ .role = K3S_ROLE_AGENT, .node_name = "k3s-worker-01", .node_ip = 0x0a000a15,
				   .server = "https://10.0.10.31:6443", .token = "K10ab::server:x" };
	assert_int_equal(k3s_config_yaml(&c, &y, &n), 0);
	assert_string_equal(y, "# devopslab: K3s configuration (docs/k3s.md)\n"
			       "server: \"https://10.0.10.31:6443\"\n"
			       "token: \"K10ab::server:x\"\n"
			       "node-name: \"k3s-worker-01\"\n"
			       "node-ip: \"10.0.10.21\"\n");
	free(TAKE_PTR(y));
	/* refused: an init server with a server URL, a joiner without, a bad name, a server without CIDRs */
	c.role = K3S_ROLE_INIT;
	assert_int_equal(k3s_config_yaml(&c, &y, &n), -EINVAL);
	c.role = K3S_ROLE_AGENT;
	c.cluster_init = true;
	assert_int_equal(k3s_config_yaml(&c, &y, &n), -EINVAL);
	c.cluster_init = false;
	c.server = NULL;
	assert_int_equal(k3s_config_yaml(&c, &y, &n), -EINVAL);
	c.server = "https://10.0.10.31:6443";
	c.node_name = "Bad_Name";
	assert_int_equal(k3s_config_yaml(&c, &y, &n), -EINVAL);
	c.node_name = "ok";
	c.role = K3S_ROLE_SERVER;
	assert_int_equal(k3s_config_yaml(&c, &y, &n), -EINVAL);
	assert_null(y);
}

static void test_kubeconfig(void **state)
{
	struct k3s_trust t;
	_cleanup_free_ char *y = NULL;
	size_t n;

	(void)state;
	assert_int_equal(k3s_trust_derive(key_sec1, strlen(key_sec1), &t), 0);
	assert_int_equal(k3s_kubeconfig("devopslab", "https://10.0.10.5:6443", &t, &y, &n), 0);
	assert_non_null(strstr(y, "server: \"https://10.0.10.5:6443\"\n"));
	assert_non_null(strstr(y, "certificate-authority-data: \"LS0tLS1CRUdJTi"));
	assert_non_null(strstr(y, "client-key-data: \"LS0tLS1CRUdJTi"));
	assert_non_null(strstr(y, "current-context: \"devopslab\""));
	assert_int_equal(k3s_kubeconfig("Bad Name", "https://x", &t, &y, &n), -EINVAL);
	k3s_trust_done(&t);
}

static void test_kube_vip(void **state)
{
	_cleanup_free_ char *y = NULL;
	size_t n = 0, docs = 0;

	(void)state;
	assert_int_equal(k3s_kube_vip_manifest("ghcr.io/kube-vip/kube-vip:v0.9.2", "eth0", 0x0a000a05, &y, &n), 0);
	assert_int_equal(strlen(y), n);
	for (const char *p = y; (p = strstr(p, "\n---\n")); p++)
		docs++;
	assert_int_equal(docs, 3); /* four objects, one per document */
	assert_non_null(strstr(y, "kind: \"ServiceAccount\""));
	assert_non_null(strstr(y, "kind: \"ClusterRoleBinding\""));
	assert_non_null(strstr(y, "kind: \"DaemonSet\""));
	assert_non_null(strstr(y, "image: \"ghcr.io/kube-vip/kube-vip:v0.9.2\"\n"));
	assert_non_null(strstr(y, "imagePullPolicy: \"Never\""));
	assert_non_null(strstr(y, "- name: \"address\"\n          value: \"10.0.10.5\"\n"));
	assert_int_equal(k3s_kube_vip_manifest("bad ref", "eth0", 1, &y, &n), -EINVAL);
	assert_int_equal(k3s_kube_vip_manifest("r:1", "eth0", 0, &y, &n), -EINVAL);
}

static void test_decode_nodes(void **state)
{
	static const char list[] =
		"{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"items\":["
		"{\"metadata\":{\"name\":\"s1\",\"labels\":{\"node-role.kubernetes.io/control-plane\":\"true\","
		"\"node-role.kubernetes.io/etcd\":\"true\"}},\"status\":{\"conditions\":[{\"type\":\"MemoryPressure\","
		"\"status\":\"False\"},{\"type\":\"Ready\",\"status\":\"True\"}],\"addresses\":[{\"type\":\"Hostname\","
		"\"address\":\"s1\"},{\"type\":\"InternalIP\",\"address\":\"10.0.10.31\"}],"
		"\"nodeInfo\":{\"kubeletVersion\":\"v1.33.5+k3s1\"}}},"
		"{\"metadata\":{\"name\":\"w1\",\"labels\":{}},\"status\":{\"conditions\":[{\"type\":\"Ready\","
		"\"status\":\"Unknown\"}]}}]}";
	struct json_object *o = json_tokener_parse(list), *bad = json_tokener_parse("{\"kind\":\"PodList\",\"items\":[]}");
	_cleanup_free_ struct kube_node *v = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(kube_decode_nodes(o, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "s1");
	assert_true(v[0].ready && v[0].control_plane && v[0].etcd);
	assert_string_equal(v[0].internal_ip, "10.0.10.31");
	assert_string_equal(v[0].kubelet_version, "v1.33.5+k3s1");
	assert_false(v[1].ready || v[1].control_plane || v[1].etcd);
	assert_ptr_equal(kube_node_find(v, n, "w1"), &v[1]);
	assert_null(kube_node_find(v, n, "w2"));
	assert_int_equal(kube_decode_nodes(bad, &v, &n), -EBADMSG);
	json_object_put(o);
	json_object_put(bad);
}

static void test_helm_chart(void **state)
{
	const struct k3s_chart c = { .name = "podinfo", .namespace = "apps", .archive = "podinfo.tgz",
				     .values = "replicaCount: 2\nui:\n  message: \"yes\"\n" };
	struct k3s_chart bad = c;
	_cleanup_free_ char *y = NULL;
	char *t = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(k3s_helm_chart_manifest(&c, &y, &n), 0);
	assert_int_equal(strlen(y), n);
	assert_non_null(strstr(y, "kind: \"HelmChart\"\n"));
	assert_non_null(strstr(y, "  namespace: \"kube-system\"\n"));
	assert_non_null(strstr(y, "    app.kubernetes.io/managed-by: \"devopslab\"\n"));
	assert_non_null(strstr(y, "  chart: \"https://%{KUBERNETES_API}%/static/charts/podinfo.tgz\"\n"));
	assert_non_null(strstr(y, "  targetNamespace: \"apps\"\n  createNamespace: true\n"));
	/* the values verbatim, as a literal block */
	assert_non_null(strstr(y, "  valuesContent: |\n    replicaCount: 2\n    ui:\n      message: \"yes\"\n"));
	bad.name = "Pod_Info";
	assert_int_equal(k3s_helm_chart_manifest(&bad, &t, &n), -EINVAL);
	bad = c;
	bad.archive = "../x.tgz";
	assert_int_equal(k3s_helm_chart_manifest(&bad, &t, &n), -EINVAL);
	bad = c;
	bad.values = NULL;
	assert_int_equal(k3s_helm_chart_manifest(&bad, &t, &n), 0);
	assert_null(strstr(t, "valuesContent"));
	free(t);
}

static void test_decode_helm(void **state)
{
	struct json_object *list = json_tokener_parse(
		"{\"kind\":\"HelmChartList\",\"items\":[{\"metadata\":{\"name\":\"podinfo\"},\"spec\":{\"chart\":"
		"\"https://x/static/charts/podinfo.tgz\",\"targetNamespace\":\"apps\",\"valuesContent\":\"a: 1\\n\"},"
		"\"status\":{\"jobName\":\"helm-install-podinfo\"}},{\"metadata\":{\"name\":\"b\"},\"spec\":{}}]}");
	struct json_object *job_ok = json_tokener_parse(
		"{\"kind\":\"Job\",\"status\":{\"succeeded\":1,\"conditions\":[{\"type\":\"Complete\",\"status\":\"True\"}]}}");
	struct json_object *job_bad = json_tokener_parse(
		"{\"kind\":\"Job\",\"status\":{\"active\":1,\"conditions\":[{\"type\":\"Failed\",\"status\":\"True\","
		"\"reason\":\"BackoffLimitExceeded\",\"message\":\"Job has reached the specified backoff limit\"}]}}");
	struct json_object *events = json_tokener_parse(
		"{\"kind\":\"EventList\",\"items\":[{\"reason\":\"ApplyManifestFailed\",\"message\":\"old\","
		"\"lastTimestamp\":\"2026-01-02T00:00:00Z\"},{\"reason\":\"AppliedManifest\",\"message\":\"ok\","
		"\"lastTimestamp\":\"2026-01-03T00:00:00Z\"},{\"reason\":\"ApplyManifestFailed\",\"message\":\"new\","
		"\"lastTimestamp\":\"2026-01-02T10:00:00Z\"}]}");
	struct kube_helm_chart *v = NULL;
	struct kube_job j;
	char buf[32];
	size_t n = 0;

	(void)state;
	assert_int_equal(kube_decode_helm_charts(list, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "podinfo");
	assert_string_equal(v[0].target_namespace, "apps");
	assert_string_equal(v[0].values, "a: 1\n");
	assert_string_equal(v[0].job_name, "helm-install-podinfo");
	assert_null(v[1].values);
	assert_string_equal(v[1].job_name, "");
	kube_helm_charts_free(v, n);
	assert_int_equal(kube_decode_helm_charts(job_ok, &v, &n), -EBADMSG);
	assert_int_equal(kube_decode_job(job_ok, &j), 0);
	assert_true(j.complete && !j.failed);
	assert_int_equal(kube_decode_job(job_bad, &j), 0);
	assert_true(j.failed && !j.complete && j.active == 1);
	assert_string_equal(j.reason, "BackoffLimitExceeded");
	assert_int_equal(kube_decode_job(list, &j), -EBADMSG);
	assert_int_equal(kube_decode_event_message(events, "ApplyManifestFailed", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "new");
	assert_int_equal(kube_decode_event_message(events, "Other", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	{
		struct json_object *pl = json_tokener_parse(
			"{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":\"helm-install-demo-x\"},"
			"\"status\":{\"containerStatuses\":[{\"restartCount\":2},{\"restartCount\":4}]}},"
			"{\"metadata\":{\"name\":\"p2\"},\"status\":{}}]}");
		struct kube_pod *pods = NULL;

		assert_int_equal(kube_decode_pods(pl, &pods, &n), 0);
		assert_int_equal(n, 2);
		assert_string_equal(pods[0].name, "helm-install-demo-x");
		assert_int_equal(pods[0].restarts, 4);
		assert_int_equal(pods[1].restarts, 0);
		free(pods);
		assert_int_equal(kube_decode_pods(events, &pods, &n), -EBADMSG);
		json_object_put(pl);
	}
	json_object_put(list);
	json_object_put(job_ok);
	json_object_put(job_bad);
	json_object_put(events);
}

static void test_decode_exec_status(void **state)
{
	struct json_object *running = json_tokener_parse("{\"exited\":0}");
	struct json_object *done = json_tokener_parse("{\"exited\":1,\"exitcode\":3,\"out-data\":\"inactive\\n\"}");
	struct json_object *bad = json_tokener_parse("{\"exitcode\":0}");
	struct pve_exec_status s;

	(void)state;
	assert_int_equal(pve_decode_exec_status(running, &s), 0);
	assert_false(s.exited);
	assert_int_equal(s.exitcode, -1);
	pve_exec_status_done(&s);
	assert_int_equal(pve_decode_exec_status(done, &s), 0);
	assert_true(s.exited);
	assert_int_equal(s.exitcode, 3);
	assert_string_equal(s.out, "inactive\n");
	assert_string_equal(s.err, "");
	pve_exec_status_done(&s);
	assert_int_equal(pve_decode_exec_status(bad, &s), -EBADMSG);
	json_object_put(running);
	json_object_put(done);
	json_object_put(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trust_deterministic), cmocka_unit_test(test_token),
		cmocka_unit_test(test_config),		    cmocka_unit_test(test_kubeconfig),
		cmocka_unit_test(test_kube_vip),	    cmocka_unit_test(test_decode_nodes),	    cmocka_unit_test(test_decode_exec_status),
		cmocka_unit_test(test_helm_chart), cmocka_unit_test(test_decode_helm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
