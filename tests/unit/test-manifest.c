/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "manifest/manifest.h"
#include "parse.h"
#include "util.h"

static const char minimal[] = "version: 1\n"
			      "cluster: {name: lab, domain: home.arpa}\n"
			      "network: {subnet: 192.168.1.0/24, gateway: 192.168.1.1}\n"
			      "nodes:\n"
			      "  - {name: pve1, role: first, serial: ABC123, ip: 192.168.1.10, disk: {largest_nvme: true}}\n"
			      "assets: [{name: rootfs, file: rootfs.tar.zst}]\n"
			      "proxmox: {rootfs: rootfs, root_password: {secret: pw}}\n"
			      "templates: [{name: tpl, vmid: 9000, image: rootfs, target_node: pve1}]\n"
			      "vms:\n"
			      "  - {id: web, name: \"web{n}\", count: 3, vmid: 300, target_node: pve1, clone: tpl,\n"
			      "     memory: 512, disk: {size: 8G}, ipconfig0: \"ip=192.168.1.100/24\"}\n"
			      "secrets: {names: [pw]}\n";

static uint32_t ip(const char *s)
{
	uint32_t a = 0;

	assert_int_equal(parse_ipv4(s, &a), 0);
	return a;
}

static void test_example(void **state)
{
	const char *top = getenv("TOP");
	char path[4096];
	struct diags d = {};
	struct manifest *m = NULL;
	const struct mf_vm_group *g;
	struct mf_vm vm;

	(void)state;
	snprintf(path, sizeof(path), "%s/examples/homelab.yaml", top ? top : ".");
	assert_int_equal(manifest_load(path, "homelab.yaml", &d, &m), 0);
	assert_non_null(m);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(d.n, 1); /* the .local warning */
	assert_int_equal(d.items[0].severity, DIAG_WARNING);
	assert_string_equal(d.items[0].path, "cluster.domain");

	assert_int_equal(m->version, 1);
	assert_string_equal(m->cluster.domain, "homelab.local");
	assert_string_equal(m->cluster.seed, "devopslab");
	assert_int_equal(m->network.subnet.addr, ip("10.0.10.0"));
	assert_int_equal(m->network.subnet.prefix, 24);
	assert_int_equal(m->network.gateway, ip("10.0.10.1"));
	assert_string_equal(m->network.bridge, "vmbr0");

	assert_int_equal(m->n_nodes, 3);
	assert_string_equal(m->nodes[0].name, "devops-node-01");
	assert_int_equal(m->nodes[0].role, MF_ROLE_FIRST);
	assert_int_equal(m->nodes[2].role, MF_ROLE_MEMBER);
	assert_true(m->nodes[2].has_mac);
	assert_int_equal(m->nodes[2].mac[5], 3);
	assert_int_equal(m->nodes[1].ip, ip("10.0.10.12"));
	assert_string_equal(m->nodes[1].disk.transport, "nvme");
	assert_int_equal(m->nodes[1].disk.min_size, 16ULL << 30);
	assert_int_equal(m->nodes[1].disk.wipe, MF_WIPE_DEVOPSLAB);

	assert_non_null(manifest_find_asset(m, "rootfs"));
	assert_string_equal(manifest_find_asset(m, "rootfs")->file, "debian-13-rootfs.tar.zst");
	assert_string_equal(m->proxmox.root_password.name, "root_password");
	assert_int_equal(manifest_find_template(m, "ubuntu-2204-cloudimage-template")->vmid, 9000);

	/* The seed's proxmox_vm_qemu.k3s_worker, field for field. */
	g = manifest_find_vm_group(m, "k3s_worker");
	assert_non_null(g);
	assert_int_equal(g->count, 2);
	assert_int_equal(g->cores, 2);
	assert_int_equal(g->sockets, 1);
	assert_int_equal(g->memory, 2048);
	assert_true(g->agent);
	assert_string_equal(g->clone, "ubuntu-2204-cloudimage-template");
	assert_int_equal(g->disk.size, 20ULL << 30);
	assert_string_equal(g->disk.type, "scsi");
	assert_string_equal(g->disk.storage, "local-lvm");
	assert_string_equal(g->network.model, "virtio");
	assert_string_equal(g->network.bridge, "vmbr0");
	assert_int_equal(g->ipconfig0.prefix, 24);
	assert_int_equal(g->ipconfig0.gw, ip("10.0.10.1"));
	assert_int_equal(manifest_vm_expand(g, 0, &vm), 0);
	assert_string_equal(vm.name, "devops-k3s-worker-01");
	assert_int_equal(vm.ip, ip("10.0.10.21"));
	assert_string_equal(vm.target_node, "devops-node-01");
	assert_int_equal(manifest_vm_expand(g, 1, &vm), 0);
	assert_string_equal(vm.name, "devops-k3s-worker-02");
	assert_int_equal(vm.ip, ip("10.0.10.22"));
	assert_int_equal(vm.vmid, 202);
	assert_int_equal(manifest_vm_expand(g, 2, &vm), -EINVAL);

	/* Servers spread round-robin over the three nodes. */
	g = manifest_find_vm_group(m, "k3s_server");
	assert_non_null(g);
	for (unsigned i = 0; i < 3; i++) {
		char want[32];

		assert_int_equal(manifest_vm_expand(g, i, &vm), 0);
		snprintf(want, sizeof(want), "devops-node-0%u", i + 1);
		assert_string_equal(vm.target_node, want);
		snprintf(want, sizeof(want), "devops-k3s-server-0%u", i + 1);
		assert_string_equal(vm.name, want);
	}
	assert_true(m->k3s.ha);
	assert_int_equal(manifest_count_vms(m, m->k3s.servers, m->k3s.n_servers), 3);
	assert_int_equal(manifest_find_vm(m, "devops-dns-02", &vm), 0);
	assert_int_equal(vm.index, 1);
	assert_int_equal(manifest_find_vm(m, "devops-dns-03", &vm), -ENOENT);
	assert_string_equal(m->dns.zone, "homelab.local");
	assert_string_equal(m->dns.wildcard, "edge");
	assert_int_equal(m->dns.n_forwarders, 2);
	assert_int_equal(m->dns.forwarders[0].protocol, MF_DNS_HTTPS);
	assert_int_equal(m->edge.ip, ip("10.0.10.30"));
	assert_int_equal(m->edge.cert, MF_CERT_INTERNAL_CA);
	assert_int_equal(m->secrets.n_names, 5);
	assert_string_equal(m->secrets.names[4], MANIFEST_SECRET_CA_CERT);

	manifest_free(m);
	diags_done(&d);
}

static void test_defaults(void **state)
{
	struct diags d = {};
	struct manifest *m = NULL;
	struct mf_vm vm;

	(void)state;
	assert_int_equal(manifest_load_buffer(minimal, strlen(minimal), "min.yaml", &d, &m), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(m->cluster.seed, "lab");
	assert_string_equal(m->cluster.timezone, "UTC");
	assert_string_equal(m->network.bridge, "vmbr0");
	assert_string_equal(m->secrets.key_source, "cmdline");
	assert_int_equal(m->nodes[0].disk.wipe, MF_WIPE_NEVER);
	assert_false(m->k3s.present);
	assert_false(m->dns.present);
	assert_int_equal(m->vms[0].sockets, 1);
	assert_int_equal(m->vms[0].cores, 1);
	assert_false(m->vms[0].agent);
	assert_string_equal(m->vms[0].disk.type, "scsi");
	assert_int_equal(m->vms[0].ipconfig0.gw, ip("192.168.1.1"));
	assert_string_equal(m->templates[0].storage, "local-lvm");
	assert_int_equal(manifest_vm_expand(&m->vms[0], 2, &vm), 0);
	assert_string_equal(vm.name, "web3");
	assert_int_equal(vm.vmid, 302);
	assert_int_equal(vm.ip, ip("192.168.1.102"));
	manifest_free(m);
	diags_done(&d);
}

/* Every problem is reported, sorted by position, and nothing is returned. */
static void test_errors(void **state)
{
	static const char bad[] = "version: 2\n"
				  "cluster: {name: lab, domain: home.arpa, extra: 1}\n"
				  "network: {subnet: 192.168.1.0/24, gateway: 192.168.1.1}\n"
				  "nodes:\n"
				  "  - {name: pve1, role: first, serial: A, ip: 10.9.9.9, disk: {min_size: 2X}}\n"
				  "proxmox: {rootfs: nope, root_password: hunter2}\n";
	struct diags d = {};
	struct manifest *m = (struct manifest *)0x1;
	char line[512];

	(void)state;
	assert_int_equal(manifest_load_buffer(bad, strlen(bad), "bad.yaml", &d, &m), -EINVAL);
	assert_ptr_equal(m, (struct manifest *)0x1);
	assert_int_equal(d.n_errors, 6);
	assert_int_equal(d.n, 6);
	for (size_t i = 1; i < d.n; i++)
		assert_true(d.items[i - 1].line < d.items[i].line ||
			    (d.items[i - 1].line == d.items[i].line && d.items[i - 1].column <= d.items[i].column));
	assert_true(diags_format(&d, 0, line, sizeof(line)) > 0);
	assert_string_equal(line, "bad.yaml:1:10: error: version: 2 is out of range 1..1");
	assert_true(diags_format(&d, 3, line, sizeof(line)) > 0);
	assert_string_equal(line, "bad.yaml:5:73: error: nodes[0].disk.min_size: '2X' is not a size (like 20G, 512M, "
				  "1T, 20GiB, 20GB or bytes)");
	assert_string_equal(d.items[2].path, "nodes[0].ip");
	assert_string_equal(d.items[5].message, "secrets are never given in clear text; use {secret: NAME}");
	assert_int_equal(diags_format(&d, 6, line, sizeof(line)), -EINVAL);
	diags_done(&d);
}

static void test_limits(void **state)
{
	struct diags d = {};
	struct manifest *m = NULL;
	size_t n = MANIFEST_MAX_BYTES + 1;
	char *big = malloc(n);
	char deep[256] = "";

	(void)state;
	assert_non_null(big);
	memset(big, '#', n);
	assert_int_equal(manifest_load_buffer(big, n, "big.yaml", &d, &m), -EINVAL);
	assert_int_equal(d.n_errors, 1);
	assert_null(m);
	free(big);
	diags_done(&d);

	for (int i = 0; i < MANIFEST_MAX_DEPTH + 2; i++)
		strcat(deep, "[");
	assert_int_equal(manifest_load_buffer(deep, strlen(deep), "deep.yaml", &d, &m), -EINVAL);
	assert_string_equal(d.items[0].message, "nesting is too deep (limit reached)");
	diags_done(&d);

	assert_int_equal(manifest_load_buffer("", 0, "empty.yaml", &d, &m), -EINVAL);
	assert_string_equal(d.items[0].message, "the manifest is empty");
	diags_done(&d);
}

/* Plain scalars that YAML 1.1 readers (PyYAML, the JSON Schema test) take
 * for non-strings are refused where a string belongs; the expectations
 * are PyYAML's yaml.safe_load() types. */
static void test_yaml_typing(void **state)
{
	static const struct {
		const char *value;
		bool typed;
	} cases[] = {
		{ "no", true },          { "yes", true },         { "on", true },          { "y", false },
		{ "n", false },          { "1:20", true },        { "00:11:22:33:44:55", false },
		{ "52:54:00:12:34:56", true },                   { "52:54:00:12:34:99", false },
		{ "0x1f", true },        { "0b101", true },       { "0777", true },        { "089", false },
		{ "1_000", true },       { "1.5", true },         { ".5", true },          { "1e5", false },
		{ "1.0e+5", true },      { "-1.5", true },        { ".inf", true },        { "-.inf", true },
		{ ".nan", true },        { "2024-01-01", true },  { "10.0.10.1", false },  { "cafe", false },
		{ "12345", true },       { "abc", false },        { "20G", false },        { "~", true },
		{ "1:20.5", true },      { "+12", true },         { "0", true },           { "-0", true },
		{ "0o17", false },       { "1.", true },          { "1.e-3", true },       { "\"12345\"", false },
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char buf[sizeof(minimal) + 64];
		struct diags d = {};
		struct manifest *m = NULL;
		int r;

		const char *at = strstr(minimal, "{name: lab") + 1;

		snprintf(buf, sizeof(buf), "%.*sseed: %s, %s", (int)(at - minimal), minimal, cases[i].value, at);
		r = manifest_load_buffer(buf, strlen(buf), "t.yaml", &d, &m);
		if (cases[i].typed) {
			if (r != -EINVAL || d.n != 1 || !strstr(d.items[0].message, "must be a string"))
				fail_msg("'%s' should be refused as typed (r=%d, n=%zu: %s)", cases[i].value, r, d.n,
					 d.n ? d.items[0].message : "");
		} else if (r != 0)
			fail_msg("'%s' should be a string: %s", cases[i].value, d.n ? d.items[0].message : "?");
		manifest_free(m);
		diags_done(&d);
	}
}

/* At most DIAGS_MAX diagnostics are kept, then one that says so; the
 * error count stays complete. */
static void test_diag_cap(void **state)
{
	const size_t keys = DIAGS_MAX + 100;
	size_t size = keys * 16 + 1, o = 0;
	char *buf = malloc(size);
	struct diags d = {};
	struct manifest *m = NULL;

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < keys; i++)
		o += (size_t)snprintf(buf + o, size - o, "k%zu: 1\n", i);
	assert_int_equal(manifest_load_buffer(buf, o, "cap.yaml", &d, &m), -EINVAL);
	/* every unknown key, plus the 5 required keys that are missing */
	assert_int_equal(d.n_errors, keys + 5);
	assert_int_equal(d.n, DIAGS_MAX + 1);
	assert_string_equal(d.items[DIAGS_MAX].message, "too many problems; the rest are not shown");
	assert_int_equal(d.items[DIAGS_MAX].line, 0);
	assert_string_equal(d.items[0].message, "unknown key 'k0'");
	assert_string_equal(d.items[DIAGS_MAX - 1].message, "unknown key 'k999'");
	free(buf);
	diags_done(&d);
}

static void test_vm_name(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(manifest_vm_name("w-{n:02}", 7, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "w-07");
	assert_int_equal(manifest_vm_name("w-{n:03}-x", 12, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "w-012-x");
	assert_int_equal(manifest_vm_name("w{n}", 123, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "w123");
	assert_int_equal(manifest_vm_name("single", 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "single");
	assert_int_equal(manifest_vm_name("w{i}", 1, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(manifest_vm_name("w{n:2}", 1, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(manifest_vm_name("w}", 1, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(manifest_vm_name("w{n", 1, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(manifest_vm_name("abcdefgh{n}", 1, buf, 8), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example), cmocka_unit_test(test_defaults), cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),  cmocka_unit_test(test_vm_name), cmocka_unit_test(test_yaml_typing), cmocka_unit_test(test_diag_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
