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

/* Two OpenSSH public keys (made with ssh-keygen for these tests). */
#define KEY1 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB/84AkNwkIvKpLC+wnEJ8J/URoETXyHW/305I8FG3qh alice@devopslab"
#define KEY1B "AAAAC3NzaC1lZDI1NTE5AAAAIB/84AkNwkIvKpLC+wnEJ8J/URoETXyHW/305I8FG3qh"
#define KEY2 "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBN09Jq6KMHrnXpXG9NNMTrn5CUmU/Etq5pySepIjnMW0hp2uEHpy0hO3p3YH+Kw2k+dP0XPO8FhDKQekK7bdRkE= bob@devopslab"

/* Replace @KEY1@, @KEY2@ and @K1B@ (KEY1's base64 alone) in buf. */
static void subst_keys(char *buf, size_t size)
{
	static const struct {
		const char *token, *value;
	} keys[] = { { "@KEY1@", KEY1 }, { "@KEY2@", KEY2 }, { "@K1B@", KEY1B } };
	char *p = buf;

	while ((p = strchr(p, '@'))) {
		size_t k;

		for (k = 0; k < ELEMENTSOF(keys) && strncmp(p, keys[k].token, strlen(keys[k].token)) != 0; k++)
			;
		if (k == ELEMENTSOF(keys)) {
			p++;
			continue;
		}
		char rest[4096];
		size_t vlen = strlen(keys[k].value);

		snprintf(rest, sizeof(rest), "%s", p + strlen(keys[k].token));
		assert_true((size_t)(p - buf) + vlen + strlen(rest) < size);
		memcpy(p, keys[k].value, vlen);
		memcpy(p + vlen, rest, strlen(rest) + 1);
		p += vlen;
	}
}

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
	assert_int_equal(d.n, 2); /* the .local warning, backups on the nodes' own disks */
	assert_int_equal(d.items[0].severity, DIAG_WARNING);
	assert_string_equal(d.items[0].path, "cluster.domain");
	assert_int_equal(d.items[1].severity, DIAG_WARNING);
	assert_string_equal(d.items[1].path, "backup");

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

	/* The template is built on every node: copies 9000, 9001, 9002. */
	{
		const struct mf_template *t = manifest_find_template(m, "ubuntu-2204-cloudimage-template");
		unsigned vmid = 0;

		assert_int_equal(t->n_target_nodes, 3);
		assert_string_equal(t->target_nodes[2], "devops-node-03");
		assert_int_equal(manifest_template_on(t, "devops-node-03", &vmid), 0);
		assert_int_equal(vmid, 9002);
		assert_int_equal(manifest_template_on(t, "devops-node-09", &vmid), -ENOENT);
		assert_int_equal(vmid, 9002); /* untouched on failure */
	}

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
	assert_true(g->full_clone); /* Terraform's default */
	assert_null(g->ciuser);
	assert_false(g->has_sshkeys);
	assert_int_equal(g->n_sshkeys, 0); /* proxmox.ssh_keys: [] */
	assert_int_equal(g->n_files, 0);
	assert_ptr_equal(g->template, manifest_find_template(m, "ubuntu-2204-cloudimage-template"));
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
		assert_int_equal(vm.template_vmid, 9000 + i); /* the copy on its node */
		assert_int_equal(vm.mac[0] & 0x03, 0x02);     /* unicast, locally administered */
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
	assert_int_equal(m->secrets.n_names, 6);
	assert_string_equal(m->secrets.names[5], MANIFEST_SECRET_CA_CERT);
	/* the edge's defaults */
	assert_string_equal(m->edge.proxmox_host, "pve.homelab.local");
	assert_string_equal(m->edge.dns_host, "dns.homelab.local");
	assert_string_equal(m->edge.dashboard_password.name, "dashboard_password");
	assert_int_equal(m->edge.n_allow, 1);
	assert_int_equal(m->edge.allow[0].addr, ip("10.0.10.0"));
	assert_int_equal(m->edge.allow[0].prefix, 24);
	assert_int_equal(m->edge.rate_limit.average, MANIFEST_EDGE_RATE_AVERAGE);
	assert_int_equal(m->edge.rate_limit.burst, MANIFEST_EDGE_RATE_BURST);
	assert_int_equal(m->k3s.api_vip, ip("10.0.10.5"));
	assert_string_equal(m->k3s.kube_vip.image, "kube-vip");
	assert_string_equal(m->k3s.kube_vip.ref, "ghcr.io/kube-vip/kube-vip:v0.9.2");
	assert_int_equal(m->k3s.cluster_cidr.addr, ip("10.42.0.0")); /* defaults */
	assert_int_equal(m->k3s.cluster_cidr.prefix, 16);
	assert_int_equal(m->k3s.service_cidr.addr, ip("10.43.0.0"));
	assert_int_equal(m->k3s.service_cidr.prefix, 16);
	assert_int_equal(m->k3s.n_disable, 1); /* ServiceLB: kube-vip gives the edge its address */
	assert_string_equal(m->k3s.disable[0], "servicelb");

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

/* net0's MAC: HMAC-SHA256(seed, name "\n" "mac:net0"), first 6 bytes,
 * multicast bit cleared and local bit set; stable for a seed and name. */
static void test_vm_mac(void **state)
{
	uint8_t a[6], b[6], c[6];

	(void)state;
	assert_int_equal(manifest_vm_mac("devopslab", "devops-k3s-worker-01", a), 0);
	assert_int_equal(manifest_vm_mac("devopslab", "devops-k3s-worker-01", b), 0);
	assert_memory_equal(a, b, 6);
	/* the value docs/manifest.md and tests/plan/homelab.txt show */
	assert_memory_equal(a, ((const uint8_t[]){ 0x72, 0x7c, 0xd7, 0x44, 0x5d, 0x05 }), 6);
	assert_int_equal(manifest_vm_mac("devopslab", "devops-k3s-worker-02", c), 0);
	assert_memory_not_equal(a, c, 6);
	assert_int_equal(manifest_vm_mac("other-seed", "devops-k3s-worker-01", c), 0);
	assert_memory_not_equal(a, c, 6);
	for (unsigned i = 0; i < 64; i++) {
		char name[16];

		snprintf(name, sizeof(name), "vm-%u", i);
		assert_int_equal(manifest_vm_mac("s", name, c), 0);
		assert_int_equal(c[0] & 0x03, 0x02);
	}
	assert_int_equal(manifest_vm_mac("", "x", c), -EINVAL);
}

/* The guest-layer keys of vms[]: what the model holds after loading. */
static void test_guest(void **state)
{
	static const char yaml[] =
		"version: 1\n"
		"cluster: {name: lab, domain: home.arpa}\n"
		"network: {subnet: 192.168.1.0/24, gateway: 192.168.1.1}\n"
		"nodes:\n"
		"  - {name: pve1, role: first, serial: A1, ip: 192.168.1.10, disk: {largest_nvme: true}}\n"
		"  - {name: pve2, serial: A2, ip: 192.168.1.11, disk: {largest_nvme: true}}\n"
		"assets: [{name: rootfs, file: rootfs.tar.zst}, {name: motd, file: etc/motd}]\n"
		"proxmox: {rootfs: rootfs, root_password: {secret: pw}, ssh_keys: [\"@KEY1@\"]}\n"
		"templates: [{name: tpl, vmid: 9000, image: rootfs, target_node: [pve2, pve1]}]\n"
		"vms:\n"
		"  - {id: web, name: \"web{n}\", count: 2, vmid: 300, target_node: [pve1, pve2], clone: tpl,\n"
		"     memory: 512, disk: {size: 8G}, ipconfig0: \"ip=192.168.1.100/24\", full_clone: false,\n"
		"     ciuser: devops, sshkeys: [\"@KEY1@\", \"@KEY2@\"],\n"
		"     files: [{asset: motd, path: /etc/motd}, {asset: motd, path: /opt/x, mode: \"0755\"},\n"
		"             {asset: motd, path: /opt/y, mode: 0700}]}\n"
		"  - {id: db, name: db, vmid: 400, target_node: pve2, clone: tpl, memory: 512, disk: {size: 8G},\n"
		"     ipconfig0: \"ip=192.168.1.120/24\"}\n"
		"secrets: {names: [pw]}\n";
	char buf[4096];
	struct diags d = {};
	struct manifest *m = NULL;
	const struct mf_vm_group *g;
	struct mf_vm vm;

	(void)state;
	snprintf(buf, sizeof(buf), "%s", yaml);
	subst_keys(buf, sizeof(buf));
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "guest.yaml", &d, &m), 0);
	g = manifest_find_vm_group(m, "web");
	assert_false(g->full_clone);
	assert_string_equal(g->ciuser, "devops");
	assert_true(g->has_sshkeys);
	assert_int_equal(g->n_sshkeys, 2);
	assert_string_equal(g->sshkeys[1], KEY2);
	assert_int_equal(g->n_files, 3);
	assert_string_equal(g->files[0].path, "/etc/motd");
	assert_int_equal(g->files[0].mode, 0644); /* default */
	assert_int_equal(g->files[1].mode, 0755); /* "0755" */
	assert_int_equal(g->files[2].mode, 0700); /* plain 0700: octal, as YAML 1.1 */
	assert_int_equal(g->files[2].pos.line, 15);
	assert_int_equal(manifest_vm_expand(g, 0, &vm), 0);
	assert_int_equal(vm.template_vmid, 9001); /* web1 on pve1: the second copy */
	assert_int_equal(manifest_vm_expand(g, 1, &vm), 0);
	assert_int_equal(vm.template_vmid, 9000);
	g = manifest_find_vm_group(m, "db");
	assert_true(g->full_clone);
	assert_false(g->has_sshkeys);
	assert_int_equal(g->n_sshkeys, 1); /* proxmox.ssh_keys, copied */
	assert_string_equal(g->sshkeys[0], KEY1);
	assert_ptr_not_equal(g->sshkeys[0], m->proxmox.ssh_keys[0]);
	manifest_free(m);
	diags_done(&d);
}

/* Each case changes `minimal` once (the first `from` becomes `to`) and
 * expects no error (path NULL) or exactly one, at `path`, whose message
 * contains `msg`. */
static void test_guest_errors(void **state)
{
	static const struct {
		const char *from, *to, *path, *msg;
	} cases[] = {
		{ "clone: tpl,", "clone: tpl, ciuser: root,", "vms[0].ciuser", "must not be root" },
		{ "clone: tpl,", "clone: tpl, ciuser: 9lives,", "vms[0].ciuser", "not a Linux user name" },
		{ "clone: tpl,", "clone: tpl, ciuser: Admin,", "vms[0].ciuser", "not a Linux user name" },
		{ "clone: tpl,", "clone: tpl, ciuser: abcdefghijabcdefghijabcdefghijabc,", "vms[0].ciuser",
		  "not a Linux user name" },
		{ "clone: tpl,", "clone: tpl, ciuser: _svc-1,", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, ciuser: abcdefghijabcdefghijabcdefghijab,", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"@KEY1@\", \"@KEY2@\"],", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"ssh-ed25519 @K1B@\"],", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"ssh-ed25519\t@K1B@\tno\\tcomment\"],", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"ssh-rsa @K1B@ x@y\"],", "vms[0].sshkeys[0]", "not of type ssh-rsa" },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"ssh-ed25519 AAAA x@y\"],", "vms[0].sshkeys[0]",
		  "not of type ssh-ed25519" },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"ssh-ed25519 A=== x@y\"],", "vms[0].sshkeys[0]",
		  "not valid base64" },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"ssh-ed25519 @K1B@ x\\ny\"],", "vms[0].sshkeys[0]",
		  "must be one line" },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\" ssh-ed25519 @K1B@\"],", "vms[0].sshkeys[0]", "not an SSH key type" },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"ssh-dss @K1B@\"],", "vms[0].sshkeys[0]", "'ssh-dss' is not an SSH key type" },
		{ "clone: tpl,", "clone: tpl, sshkeys: [\"ssh-ed25519 \"],", "vms[0].sshkeys[0]", "needs the base64 key" },
		{ "clone: tpl,", "clone: tpl, sshkeys: \"@KEY1@\",", "vms[0].sshkeys", "must be a list" },
		{ "secret: pw}}", "secret: pw}, ssh_keys: [\"ssh-rsa @K1B@\"]}", "proxmox.ssh_keys[0]", "not of type ssh-rsa" },
		{ "clone: tpl,", "clone: tpl, full_clone: no,", "vms[0].full_clone", "must be true or false" },
		{ "clone: tpl,", "clone: tpl, full_clone: false,", NULL, NULL },
		{ "size: 8G}", "size: 8G, storage: zfs}, full_clone: false", "vms[0].full_clone",
		  "a linked clone stays on its template's storage: template 'tpl' is on 'local-lvm', disk.storage is 'zfs'" },
		{ "size: 8G}", "size: 8G, storage: zfs}", NULL, NULL }, /* a full clone may move */
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a/b.txt}],", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: a/b}],", "vms[0].files[0].path", "not an absolute path" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a/./b}],", "vms[0].files[0].path",
		  "'.' or '..' components" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a/..}],", "vms[0].files[0].path",
		  "'.' or '..' components" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a/..b}],", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /}],", "vms[0].files[0].path", "not normalized" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a//b}],", "vms[0].files[0].path", "not normalized" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a/}],", "vms[0].files[0].path", "not normalized" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: \"/a\\tb\"}],", "vms[0].files[0].path",
		  "control character" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: nope, path: /a}],", "vms[0].files[0].asset",
		  "no asset named 'nope'" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /b}, {asset: rootfs, path: /a}, {asset: rootfs, path: /b}],",
		  "vms[0].files[2].path", "'/b' is already the path of vms[0].files[0]" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a, mode: 0644}],", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a, mode: \"7777\"}],", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a, mode: \"07777\"}],", NULL, NULL },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a, mode: 644}],", "vms[0].files[0].mode",
		  "decimal integer to YAML; write \"0644\"" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a, mode: \"17777\"}],", "vms[0].files[0].mode",
		  "not a mode" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a, mode: \"0o644\"}],", "vms[0].files[0].mode",
		  "not a mode" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs, path: /a, mode: \"64\"}],", "vms[0].files[0].mode",
		  "not a mode" },
		{ "clone: tpl,", "clone: tpl, files: [{asset: rootfs}],", "vms[0].files[0]", "missing required key 'path'" },
		{ "target_node: pve1}", "target_node: []}", "templates[0].target_node", "at least one node" },
		{ "target_node: pve1}", "target_node: [pve1, pve1]}", "templates[0].target_node[1]", "listed twice" },
		{ "target_node: pve1}", "target_node: [pve9]}", "templates[0].target_node", "no node named 'pve9'" },
		{ "vmid: 9000", "vmid: 999999999", NULL, NULL },
		{ "target_node: pve1}", "target_node: [pve1, pve1x]}", "templates[0].target_node[1]", "no node named 'pve1x'" },
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char buf[4096];
		const char *at = strstr(minimal, cases[i].from);
		struct diags d = {};
		struct manifest *m = NULL;
		int r;

		assert_non_null(at);
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - minimal), minimal, cases[i].to,
			 at + strlen(cases[i].from));
		subst_keys(buf, sizeof(buf));
		r = manifest_load_buffer(buf, strlen(buf), "t.yaml", &d, &m);
		if (!cases[i].path) {
			if (r != 0)
				fail_msg("case %zu (%s): %s: %s", i, cases[i].to, d.n ? d.items[0].path : "",
					 d.n ? d.items[0].message : "?");
		} else if (r != -EINVAL || d.n_errors != 1 || !streq(d.items[0].path, cases[i].path) ||
			   !strstr(d.items[0].message, cases[i].msg))
			fail_msg("case %zu (%s): r=%d, %zu errors, first %s: %s", i, cases[i].to, r, d.n_errors,
				 d.n ? d.items[0].path : "", d.n ? d.items[0].message : "");
		manifest_free(m);
		diags_done(&d);
	}
}

/* Limits of vms[].files: 256 entries, paths of 4095 bytes. */
static void test_guest_limits(void **state)
{
	const char *at = strstr(minimal, "clone: tpl,") + strlen("clone: tpl,");
	size_t size = 64 * 1024, o;
	char *buf = malloc(size);
	struct diags d = {};
	struct manifest *m = NULL;

	(void)state;
	assert_non_null(buf);
	for (unsigned n = 256; n <= 257; n++) {
		o = (size_t)snprintf(buf, size, "%.*s files: [", (int)(at - minimal), minimal);
		for (unsigned i = 0; i < n; i++)
			o += (size_t)snprintf(buf + o, size - o, "%s{asset: rootfs, path: /f%u}", i ? ", " : "", i);
		o += (size_t)snprintf(buf + o, size - o, "],%s", at);
		assert_int_equal(manifest_load_buffer(buf, o, "t.yaml", &d, &m), n == 256 ? 0 : -EINVAL);
		if (n == 257)
			assert_string_equal(d.items[0].message, "has 257 entries; at most 256 are allowed");
		else
			assert_int_equal(m->vms[0].n_files, 256);
		manifest_free(m);
		m = NULL;
		diags_done(&d);
	}
	for (size_t len = 4095; len <= 4096; len++) {
		o = (size_t)snprintf(buf, size, "%.*s files: [{asset: rootfs, path: /", (int)(at - minimal), minimal);
		memset(buf + o, 'p', len - 1);
		o += len - 1;
		o += (size_t)snprintf(buf + o, size - o, "}],%s", at);
		assert_int_equal(manifest_load_buffer(buf, o, "t.yaml", &d, &m), len == 4095 ? 0 : -EINVAL);
		if (len == 4096)
			assert_string_equal(d.items[0].message, "is longer than 4095 bytes");
		manifest_free(m);
		m = NULL;
		diags_done(&d);
	}
	free(buf);
}

/* A K3s cluster: one server, two agents, two resolvers. */
static const char k3s_yaml[] =
	"version: 1\n"
	"cluster: {name: lab, domain: home.arpa}\n"
	"network: {subnet: 192.168.1.0/24, gateway: 192.168.1.1, dns: [192.168.1.1, 192.168.1.53]}\n"
	"nodes:\n"
	"  - {name: pve1, role: first, serial: A1, ip: 192.168.1.10, disk: {largest_nvme: true}}\n"
	"assets: [{name: rootfs, file: rootfs.tar.zst}, {name: k3s, file: k3s}, {name: inst, file: install.sh},\n"
	"         {name: img, file: images/k3s-airgap.tar.zst}, {name: vip, file: images/kube-vip.tar}]\n"
	"proxmox: {rootfs: rootfs, root_password: {secret: pw}}\n"
	"templates: [{name: tpl, vmid: 9000, image: rootfs, target_node: pve1}]\n"
	"vms:\n"
	"  - {id: srv, name: \"srv{n}\", vmid: 300, target_node: pve1, clone: tpl, memory: 512, disk: {size: 8G},\n"
	"     ipconfig0: \"ip=192.168.1.100/24\"}\n"
	"  - {id: wrk, name: \"wrk{n}\", count: 2, vmid: 400, target_node: pve1, clone: tpl, memory: 512,\n"
	"     disk: {size: 8G}, ipconfig0: \"ip=192.168.1.110/24\"}\n"
	"k3s:\n"
	"  token: {secret: tok}\n"
	"  servers: [srv]\n"
	"  agents: [wrk]\n"
	"  airgap: {binary: k3s, images: img, install_script: inst}\n"
	"secrets: {names: [pw, tok, cluster_ca_key]}\n";

/* k3s_yaml with the first `from` replaced by `to`, then the same for
 * from2/to2 (when given). */
/* Load `yaml` (case i, named `label`): valid when `path` is NULL, else
 * refused with `errors` errors, the first at `path` saying `msg`. */
static void expect_case(size_t i, const char *label, const char *yaml, const char *path, const char *msg,
			size_t errors)
{
	struct diags d = {};
	struct manifest *m = NULL;
	int r = manifest_load_buffer(yaml, strlen(yaml), "t.yaml", &d, &m);

	if (!path) {
		if (r != 0 || d.n_errors)
			fail_msg("case %zu (%s): %s: %s", i, label, d.n ? d.items[0].path : "",
				 d.n ? d.items[0].message : "?");
	} else if (r != -EINVAL || d.n_errors != errors || !streq(d.items[0].path, path) ||
		   !strstr(d.items[0].message, msg))
		fail_msg("case %zu (%s): r=%d, %zu errors, first %s: %s", i, label, r, d.n_errors,
			 d.n ? d.items[0].path : "", d.n ? d.items[0].message : "");
	manifest_free(m);
	diags_done(&d);
}

static void k3s_edit(char *buf, size_t size, const char *from, const char *to, const char *from2, const char *to2)
{
	char tmp[4096];
	const char *at = strstr(k3s_yaml, from);

	assert_non_null(at);
	snprintf(buf, size, "%.*s%s%s", (int)(at - k3s_yaml), k3s_yaml, to, at + strlen(from));
	if (!from2)
		return;
	snprintf(tmp, sizeof(tmp), "%s", buf);
	at = strstr(tmp, from2);
	assert_non_null(at);
	snprintf(buf, size, "%.*s%s%s", (int)(at - tmp), tmp, to2, at + strlen(from2));
}

/* The k3s keys in the model: the API address and what serves it, the
 * networks' defaults, the components left out, and the payload of the K3s
 * groups. */
static void test_k3s(void **state)
{
	char buf[4096];
	struct diags d = {};
	struct manifest *m = NULL;
	struct mf_payload_file pl[MANIFEST_K3S_PAYLOAD_MAX];

	(void)state;
	k3s_edit(buf, sizeof(buf), "  agents: [wrk]\n",
		 "  agents: [wrk]\n  api_vip: 192.168.1.5\n  service_cidr: 10.96.0.0/12\n"
		 "  disable: [traefik, servicelb]\n"
		 "  kube_vip: {image: vip, ref: \"ghcr.io/kube-vip/kube-vip@sha256:"
		 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}\n",
		 NULL, NULL);
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "k3s.yaml", &d, &m), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(m->k3s.api_vip, ip("192.168.1.5"));
	assert_string_equal(m->k3s.kube_vip.image, "vip");
	assert_string_equal(m->k3s.kube_vip.ref, "ghcr.io/kube-vip/kube-vip@sha256:"
						 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_int_equal(m->k3s.cluster_cidr.addr, ip("10.42.0.0"));
	assert_int_equal(m->k3s.cluster_cidr.prefix, 16);
	assert_int_equal(m->k3s.service_cidr.addr, ip("10.96.0.0"));
	assert_int_equal(m->k3s.service_cidr.prefix, 12);
	assert_int_equal(m->k3s.n_disable, 2);
	assert_string_equal(m->k3s.disable[0], "traefik");
	assert_string_equal(m->k3s.disable[1], "servicelb");

	assert_int_equal(manifest_k3s_payload(m, manifest_find_vm_group(m, "srv"), pl), 4);
	assert_string_equal(pl[0].asset, "k3s");
	assert_string_equal(pl[0].path, MANIFEST_K3S_BINARY_PATH);
	assert_int_equal(pl[0].mode, 0755);
	assert_string_equal(pl[0].key, "k3s.airgap.binary");
	assert_string_equal(pl[1].asset, "img");
	assert_string_equal(pl[1].path, "/var/lib/rancher/k3s/agent/images/k3s-airgap.tar.zst"); /* the base name */
	assert_int_equal(pl[1].mode, 0644);
	assert_string_equal(pl[2].asset, "inst");
	assert_string_equal(pl[2].path, "/usr/local/lib/devopslab/k3s-install.sh");
	assert_int_equal(pl[2].mode, 0755);
	assert_string_equal(pl[3].asset, "vip"); /* kube-vip's image, after the air gap's */
	assert_string_equal(pl[3].path, "/var/lib/rancher/k3s/agent/images/kube-vip.tar");
	assert_int_equal(pl[3].mode, 0644);
	assert_string_equal(pl[3].key, "k3s.kube_vip.image");
	/* agents too, but not kube-vip: it runs on the control plane */
	assert_int_equal(manifest_k3s_payload(m, manifest_find_vm_group(m, "wrk"), pl), 3);
	assert_string_equal(pl[2].key, "k3s.airgap.install_script");
	manifest_free(m);
	m = NULL;
	diags_done(&d);

	/* Without images: valid, with a warning, and two payload files. */
	k3s_edit(buf, sizeof(buf), "images: img, ", "", NULL, NULL);
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "k3s.yaml", &d, &m), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.items[0].severity, DIAG_WARNING);
	assert_string_equal(d.items[0].path, "k3s.airgap");
	assert_int_equal(d.items[0].line, 19);
	assert_int_equal(manifest_k3s_payload(m, manifest_find_vm_group(m, "srv"), pl), 2);
	assert_string_equal(pl[1].path, MANIFEST_K3S_INSTALL_PATH);
	manifest_free(m);
	m = NULL;
	diags_done(&d);

	/* A group outside k3s gets nothing. */
	k3s_edit(buf, sizeof(buf), "  agents: [wrk]\n", "", NULL, NULL);
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "k3s.yaml", &d, &m), 0);
	assert_int_equal(manifest_k3s_payload(m, manifest_find_vm_group(m, "wrk"), pl), 0);
	manifest_free(m);
	diags_done(&d);
}

/* Each case edits k3s_yaml (k3s_edit()) and expects `errors` errors (0:
 * valid), the first (by position) at `path` with `msg` in its message. */
static void test_k3s_errors(void **state)
{
	static const struct {
		const char *from, *to, *from2, *to2;
		size_t errors;
		const char *path, *msg;
	} cases[] = {
#define KUBE_VIP "  kube_vip: {image: vip, ref: \"ghcr.io/kube-vip/kube-vip:v0.9.2\"}\n"
#define VIP(v) "  agents: [wrk]\n", "  agents: [wrk]\n  api_vip: " v "\n" KUBE_VIP, NULL, NULL
#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define WITH_VIP "  agents: [wrk]\n", "  agents: [wrk]\n  api_vip: 192.168.1.5\n" KUBE_VIP
#define REF(v) \
	"  agents: [wrk]\n", "  agents: [wrk]\n  api_vip: 192.168.1.5\n  kube_vip: {image: vip, ref: " v "}\n", \
		NULL, NULL
#define K3S(v) "  agents: [wrk]\n", "  agents: [wrk]\n" v, NULL, NULL
		{ VIP("192.168.1.5"), 0, NULL, NULL },
		{ VIP("192.168.2.5"), 1, "k3s.api_vip", "192.168.2.5 is outside network.subnet 192.168.1.0/24" },
		{ VIP("192.168.1.0"), 1, "k3s.api_vip", "192.168.1.0 is the network address of network.subnet" },
		{ VIP("192.168.1.255"), 1, "k3s.api_vip", "192.168.1.255 is the broadcast address of network.subnet" },
		{ VIP("192.168.1.1"), 1, "k3s.api_vip", "192.168.1.1 is the gateway's address" },
		{ VIP("192.168.1.10"), 1, "k3s.api_vip", "192.168.1.10 is node pve1's address" },
		{ VIP("192.168.1.100"), 1, "k3s.api_vip", "192.168.1.100 is VM srv1's address" },
		{ VIP("192.168.1.111"), 1, "k3s.api_vip", "192.168.1.111 is VM wrk2's address" },
		{ VIP("192.168.1.112"), 0, NULL, NULL },
		{ "  agents: [wrk]\n", "  agents: [wrk]\n  disable: [servicelb]\n  api_vip: 192.168.1.200\n" KUBE_VIP, "secrets:",
		  "edge: {ip: 192.168.1.200}\nsecrets:", 1, "k3s.api_vip", "192.168.1.200 is the edge's address (edge.ip)" },
		{ VIP("192.168.1.53"), 1, "k3s.api_vip", "192.168.1.53 is a resolver's address (network.dns[1])" },
		{ VIP("0.0.0.0"), 1, "k3s.api_vip", "0.0.0.0 is not a host address" },
		{ VIP("192.168.1"), 1, "k3s.api_vip", "'192.168.1' is not an IPv4 address" },
		/* kube-vip serves the VIP: one needs the other */
		{ K3S("  api_vip: 192.168.1.5\n"), 1, "k3s.api_vip",
		  "k3s.api_vip needs k3s.kube_vip: the image that serves the address (docs/k3s.md)" },
		{ K3S(KUBE_VIP), 1, "k3s.kube_vip", "k3s.kube_vip serves k3s.api_vip, which is not set" },
		/* a VIP or a kube_vip that failed to decode says so once */
		{ K3S("  api_vip: 0.0.0.0\n"), 1, "k3s.api_vip", "0.0.0.0 is not a host address" },
		{ K3S("  api_vip: 192.168.1.5\n  kube_vip: vip\n"), 1, "k3s.kube_vip", "must be a mapping" },
		{ K3S("  api_vip: 192.168.1.5\n  kube_vip: {image: vip}\n"), 1, "k3s.kube_vip",
		  "missing required key 'ref'" },
		{ K3S("  api_vip: 192.168.1.5\n"
		      "  kube_vip: {image: nope, ref: \"ghcr.io/kube-vip/kube-vip:v0.9.2\"}\n"),
		  1, "k3s.kube_vip.image", "no asset named 'nope' in assets" },
		{ REF("\"localhost:5000/kube-vip:v1\""), 0, NULL, NULL },
		{ REF("\"10.0.0.2:5000/a/b__c/d--e.f:V1_x.2-rc\""), 0, NULL, NULL },
		{ REF("\"ghcr.io/kube-vip/kube-vip:v0.9.2@sha256:"
		      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""), 0, NULL, NULL },
		{ REF("\"ghcr.io/kube-vip/kube-vip\""), 1, "k3s.kube_vip.ref",
		  "'ghcr.io/kube-vip/kube-vip' is not an image reference like ghcr.io/kube-vip/kube-vip:v0.9.2 "
		  "(REGISTRY/PATH:TAG or REGISTRY/PATH@sha256:DIGEST)" },
		{ REF("\"kube-vip/kube-vip:v0.9.2\""), 1, "k3s.kube_vip.ref", "is not an image reference" },
		{ REF("\"ghcr.io/Kube-Vip/kube-vip:v0.9.2\""), 1, "k3s.kube_vip.ref", "is not an image reference" },
		{ REF("\"ghcr.io/kube-vip/kube-vip:.v1\""), 1, "k3s.kube_vip.ref", "is not an image reference" },
		{ REF("\"ghcr.io/kube-vip/kube-vip@sha256:abc\""), 1, "k3s.kube_vip.ref", "is not an image reference" },
		{ REF("\"ghcr.io:99999/kube-vip:v1\""), 1, "k3s.kube_vip.ref", "is not an image reference" },
		{ REF("\"ghcr.io/kube-vip/kube-vip :v0.9.2\""), 1, "k3s.kube_vip.ref",
		  "must not contain whitespace or control characters" },
		{ REF("\"\""), 1, "k3s.kube_vip.ref", "must not be empty" },
		{ REF("\"ghcr.io/" A64 A64 A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:v1\""), 1,
		  "k3s.kube_vip.ref", "is longer than 255 bytes" }, /* 256 bytes */
		{ REF("\"ghcr.io/" A64 A64 A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:v1\""), 0, NULL,
		  NULL }, /* 255 */
		{ K3S("  cluster_cidr: 192.168.0.0/16\n"), 1, "k3s.cluster_cidr",
		  "192.168.0.0/16 overlaps network.subnet 192.168.1.0/24" },
		{ K3S("  service_cidr: 192.168.1.128/25\n"), 1, "k3s.service_cidr",
		  "192.168.1.128/25 overlaps network.subnet 192.168.1.0/24" },
		{ K3S("  service_cidr: 10.42.5.0/24\n"), 1, "k3s.service_cidr",
		  "10.42.5.0/24 overlaps k3s.cluster_cidr 10.42.0.0/16 (the default)" },
		{ K3S("  cluster_cidr: 10.43.0.0/24\n"), 1, "k3s.cluster_cidr",
		  "10.43.0.0/24 overlaps k3s.service_cidr 10.43.0.0/16 (the default)" },
		{ K3S("  cluster_cidr: 10.0.0.0/8\n  service_cidr: 10.128.0.0/16\n"), 1, "k3s.service_cidr",
		  "10.128.0.0/16 overlaps k3s.cluster_cidr 10.0.0.0/8" },
		{ K3S("  cluster_cidr: 10.0.0.0/9\n  service_cidr: 10.128.0.0/16\n"), 0, NULL, NULL },
		{ K3S("  cluster_cidr: 10.42.0.1/16\n"), 1, "k3s.cluster_cidr", "has host bits set" },
		{ K3S("  disable: []\n"), 0, NULL, NULL },
		{ K3S("  disable: [coredns, servicelb, traefik, local-storage, metrics-server]\n"), 0, NULL, NULL },
		{ K3S("  disable: [traefik, coredns, traefik]\n"), 1, "k3s.disable[2]",
		  "'traefik' is already in k3s.disable[0]" },
		{ K3S("  disable: [flannel]\n"), 1, "k3s.disable[0]",
		  "'flannel' is not one of: coredns, servicelb, traefik, local-storage, metrics-server" },
		{ K3S("  disable: traefik\n"), 1, "k3s.disable", "must be a list" },
		{ "tok, cluster_ca_key]", "tok]", NULL, NULL, 1, "k3s",
		  "k3s needs the secret cluster_ca_key (its CAs derive from it; docs/k3s.md)" },
		/* not hidden by a value below k3s that failed to decode */
		{ "tok, cluster_ca_key]", "tok]", "  agents: [wrk]\n", "  agents: [wrk]\n  disable: [flannel]\n", 2, "k3s",
		  "k3s needs the secret cluster_ca_key" },
		{ "{binary: k3s, images: img, install_script: inst}", "{images: img}", NULL, NULL, 2, "k3s.airgap",
		  "k3s.airgap.binary is required: the nodes have no internet" },
		{ "{binary: k3s, images: img, install_script: inst}", "{binary: k3s}", NULL, NULL, 1, "k3s.airgap",
		  "k3s.airgap.install_script is required: the nodes have no internet" },
		{ "  airgap: {binary: k3s, images: img, install_script: inst}\n", "", NULL, NULL, 2, "k3s",
		  "k3s.airgap.binary is required: the nodes have no internet" },
		{ "binary: k3s,", "binary: nope,", NULL, NULL, 1, "k3s.airgap.binary", "no asset named 'nope'" },
		{ "binary: k3s,", "binary: \"k 3 s\",", NULL, NULL, 1, "k3s.airgap.binary", "is not a valid name" },
		{ "ipconfig0: \"ip=192.168.1.100/24\"}",
		  "ipconfig0: \"ip=192.168.1.100/24\", files: [{asset: k3s, path: /usr/local/bin/k3s}]}", NULL, NULL, 1,
		  "vms[0].files[0].path",
		  "'/usr/local/bin/k3s' is where k3s.airgap.binary goes in every VM of group 'srv' (in k3s.servers)" },
		{ "ipconfig0: \"ip=192.168.1.110/24\"}",
		  "ipconfig0: \"ip=192.168.1.110/24\", files: [{asset: k3s, path: /etc/k3s},\n"
		  "     {asset: img, path: /var/lib/rancher/k3s/agent/images/k3s-airgap.tar.zst}]}",
		  NULL, NULL, 1, "vms[1].files[1].path",
		  "'/var/lib/rancher/k3s/agent/images/k3s-airgap.tar.zst' is where k3s.airgap.images goes in every VM of "
		  "group 'wrk' (in k3s.agents)" },
		{ "ipconfig0: \"ip=192.168.1.110/24\"}",
		  "ipconfig0: \"ip=192.168.1.110/24\", files: [{asset: inst, path: /usr/local/lib/devopslab/k3s-install.sh}]}",
		  NULL, NULL, 1, "vms[1].files[0].path", "is where k3s.airgap.install_script goes" },
		/* another base name, or a group outside k3s: no conflict */
		{ "ipconfig0: \"ip=192.168.1.110/24\"}",
		  "ipconfig0: \"ip=192.168.1.110/24\", files: [{asset: img, path: /var/lib/rancher/k3s/agent/images/x.tar}]}",
		  NULL, NULL, 0, NULL, NULL },
		{ "ipconfig0: \"ip=192.168.1.110/24\"}",
		  "ipconfig0: \"ip=192.168.1.110/24\", files: [{asset: k3s, path: /usr/local/bin/k3s}]}", "  agents: [wrk]\n",
		  "", 0, NULL, NULL },
		/* kube-vip's image: in the servers' payload, not the agents' */
		{ "ipconfig0: \"ip=192.168.1.100/24\"}",
		  "ipconfig0: \"ip=192.168.1.100/24\",\n"
		  "     files: [{asset: vip, path: /var/lib/rancher/k3s/agent/images/kube-vip.tar}]}",
		  WITH_VIP, 1, "vms[0].files[0].path",
		  "'/var/lib/rancher/k3s/agent/images/kube-vip.tar' is where k3s.kube_vip.image goes in every VM of "
		  "group 'srv' (in k3s.servers)" },
		{ "ipconfig0: \"ip=192.168.1.110/24\"}",
		  "ipconfig0: \"ip=192.168.1.110/24\",\n"
		  "     files: [{asset: vip, path: /var/lib/rancher/k3s/agent/images/kube-vip.tar}]}",
		  WITH_VIP, 0, NULL, NULL },
		/* and not where the air-gap images go */
		{ "{name: vip, file: images/kube-vip.tar}", "{name: vip, file: vip/k3s-airgap.tar.zst}", WITH_VIP, 1,
		  "k3s.kube_vip.image",
		  "'/var/lib/rancher/k3s/agent/images/k3s-airgap.tar.zst' is where k3s.airgap.images goes already: "
		  "the two assets' files need different base names" },
		{ K3S("  api_vip: 192.168.1.5\n"
		      "  kube_vip: {image: img, ref: \"ghcr.io/kube-vip/kube-vip:v0.9.2\"}\n"),
		  1, "k3s.kube_vip.image", "asset 'img' is k3s.airgap.images already" },
#undef VIP
#undef K3S
#undef REF
#undef WITH_VIP
#undef A64
#undef KUBE_VIP
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char buf[4096];

		k3s_edit(buf, sizeof(buf), cases[i].from, cases[i].to, cases[i].from2, cases[i].to2);
		expect_case(i, cases[i].to, buf, cases[i].path, cases[i].msg, cases[i].errors);
	}
}

/* k3s_yaml with the assets of the sections below and `section` (gitops,
 * monitoring, registry) before its secrets, which gain git and graf. */
static void apps_edit(char *buf, size_t size, const char *section)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%ssecrets: {names: [pw, tok, cluster_ca_key, git, graf]}\n", section);
	k3s_edit(buf, size, "secrets: {names: [pw, tok, cluster_ca_key]}\n", tmp, "{name: vip, file: images/kube-vip.tar}]",
		 "{name: vip, file: images/kube-vip.tar},\n"
		 "         {name: argo, file: charts/argo-cd.tgz}, {name: mon, file: charts/mon.tgz},\n"
		 "         {name: loki, file: charts/loki.tgz}, {name: reg, file: images/registry.tar}]");
}

/* The defaults of gitops, monitoring and the registry, and what the
 * valid examples decode to. */
static void test_apps(void **state)
{
	static const char section[] = "gitops:\n"
				      "  repo: https://git.example.org/lab/x.git\n"
				      "  credentials: {password: {secret: git}}\n"
				      "  chart: argo\n"
				      "monitoring:\n"
				      "  grafana_password: {secret: graf}\n"
				      "  chart: mon\n"
				      "  scrape_targets: [{name: nodes, targets: [192.168.1.10:9100]}]\n"
				      "registry: {enabled: false, image: reg, ref: \"localhost:5000/registry:2\"}\n";
	const char *top = getenv("TOP");
	char buf[4096], path[4096];
	struct diags d = {};
	struct manifest *m = NULL;
	struct mf_payload_file pl[MANIFEST_K3S_PAYLOAD_MAX];

	(void)state;
	apps_edit(buf, sizeof(buf), section);
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "apps.yaml", &d, &m), 0);
	assert_int_equal(d.n, 0);
	assert_true(m->gitops.present);
	assert_int_equal(m->gitops.repo_kind, MF_GIT_HTTPS);
	assert_string_equal(m->gitops.revision, MANIFEST_GITOPS_REVISION);
	assert_string_equal(m->gitops.path, MANIFEST_GITOPS_PATH);
	assert_false(m->gitops.public);
	assert_string_equal(m->gitops.credentials.username, MANIFEST_GITOPS_USERNAME);
	assert_string_equal(m->gitops.credentials.password.name, "git");
	assert_null(m->gitops.credentials.ssh_key.name);
	assert_int_equal(m->gitops.n_images, 0);
	assert_null(m->gitops.host);
	assert_true(m->monitoring.present);
	assert_true(m->monitoring.enabled);
	assert_string_equal(m->monitoring.retention, MANIFEST_MONITORING_RETENTION);
	assert_int_equal(m->monitoring.n_scrape_targets, 1);
	assert_string_equal(m->monitoring.scrape_targets[0].metrics_path, MANIFEST_SCRAPE_PATH);
	assert_int_equal(m->monitoring.scrape_targets[0].scheme, MF_SCRAPE_HTTP);
	assert_string_equal(m->monitoring.scrape_targets[0].targets[0], "192.168.1.10:9100");
	assert_false(m->monitoring.logs.present);
	assert_false(m->monitoring.logs.enabled);
	assert_null(m->monitoring.logs.retention);
	assert_true(m->registry.present);
	assert_false(m->registry.enabled);
	assert_int_equal(m->registry.size, MANIFEST_REGISTRY_SIZE);
	manifest_free(m);
	m = NULL;
	diags_done(&d);

	/* a logs block is on, kept 7 days */
	apps_edit(buf, sizeof(buf), "monitoring: {grafana_password: {secret: graf}, chart: mon, logs: {chart: loki}}\n");
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "apps.yaml", &d, &m), 0);
	assert_true(m->monitoring.logs.present);
	assert_true(m->monitoring.logs.enabled);
	assert_string_equal(m->monitoring.logs.retention, MANIFEST_LOGS_RETENTION);
	assert_false(m->gitops.present);
	assert_false(m->registry.present);
	manifest_free(m);
	m = NULL;
	diags_done(&d);

	/* an SSH repository: no user name defaulted */
	apps_edit(buf, sizeof(buf), "gitops: {repo: \"git@git.example.org:lab/x.git\", credentials: {ssh_key: {secret: git}}, "
				    "chart: argo, images: [reg]}\n");
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "apps.yaml", &d, &m), 0);
	assert_int_equal(m->gitops.repo_kind, MF_GIT_SCP);
	assert_null(m->gitops.credentials.username);
	assert_string_equal(m->gitops.credentials.ssh_key.name, "git");
	/* Argo CD's chart on the servers, its images on every K3s VM */
	assert_int_equal(manifest_k3s_payload(m, manifest_find_vm_group(m, "srv"), pl), 5);
	assert_string_equal(pl[3].asset, "argo");
	assert_string_equal(pl[3].key, "gitops.chart");
	assert_string_equal(pl[3].path, MANIFEST_K3S_CHARTS_DIR "/" MANIFEST_GITOPS_CHART ".tgz");
	assert_int_equal(pl[3].mode, 0644);
	assert_string_equal(pl[4].key, "gitops.images");
	assert_string_equal(pl[4].path, MANIFEST_K3S_IMAGES_DIR "/registry.tar");
	assert_int_equal(manifest_k3s_payload(m, manifest_find_vm_group(m, "wrk"), pl), 4);
	assert_string_equal(pl[3].asset, "reg");
	assert_string_equal(pl[3].path, MANIFEST_K3S_IMAGES_DIR "/registry.tar");
	manifest_free(m);
	m = NULL;
	diags_done(&d);

	/* the registry's image on every K3s VM, the seed archives on the
	 * servers only, outside K3s's import directory */
	snprintf(path, sizeof(path), "%s/tests/manifest/valid/registry.yaml", top ? top : ".");
	assert_int_equal(manifest_load(path, "registry.yaml", &d, &m), 0);
	assert_int_equal(manifest_k3s_payload(m, manifest_find_vm_group(m, "k3s_server"), pl), 7);
	assert_string_equal(pl[4].key, "registry.image");
	assert_string_equal(pl[4].path, MANIFEST_K3S_IMAGES_DIR "/registry-2.8.3.tar");
	assert_string_equal(pl[5].key, "registry.seed");
	assert_string_equal(pl[5].asset, "podinfo-image");
	assert_string_equal(pl[5].path, MANIFEST_REGISTRY_SEED_DIR "/podinfo-6.7.1.tar");
	assert_string_equal(pl[6].path, MANIFEST_REGISTRY_SEED_DIR "/nginx-1.27.3.tar");
	manifest_free(m);
	m = NULL;
	diags_done(&d);

	/* the examples (one warning each: the DNS VMs without dns.airgap) */
	snprintf(path, sizeof(path), "%s/tests/manifest/valid/gitops.yaml", top ? top : ".");
	assert_int_equal(manifest_load(path, "gitops.yaml", &d, &m), 0);
	assert_int_equal(d.n_errors, 0);
	assert_string_equal(m->gitops.revision, "main");
	assert_string_equal(m->gitops.path, "clusters/lab");
	assert_string_equal(m->gitops.credentials.username, "devopslab");
	assert_int_equal(m->gitops.n_images, 2);
	assert_string_equal(m->gitops.images[1], "redis-image");
	assert_string_equal(m->gitops.host, "argocd.home.arpa");
	manifest_free(m);
	m = NULL;
	diags_done(&d);
	snprintf(path, sizeof(path), "%s/tests/manifest/valid/monitoring.yaml", top ? top : ".");
	assert_int_equal(manifest_load(path, "monitoring.yaml", &d, &m), 0);
	assert_int_equal(d.n_errors, 0);
	assert_string_equal(m->monitoring.retention, "30d");
	assert_int_equal(m->monitoring.n_scrape_targets, 2);
	assert_int_equal(m->monitoring.scrape_targets[0].n_targets, 2);
	assert_int_equal(m->monitoring.scrape_targets[1].scheme, MF_SCRAPE_HTTPS);
	assert_string_equal(m->monitoring.scrape_targets[1].metrics_path, "/api2/prometheus/metrics");
	assert_string_equal(m->monitoring.logs.retention, "1w2d");
	assert_string_equal(m->monitoring.hosts.prometheus, "prometheus.home.arpa");
	manifest_free(m);
	m = NULL;
	diags_done(&d);
	snprintf(path, sizeof(path), "%s/tests/manifest/valid/registry.yaml", top ? top : ".");
	assert_int_equal(manifest_load(path, "registry.yaml", &d, &m), 0);
	assert_int_equal(d.n_errors, 0);
	assert_true(m->registry.enabled);
	assert_string_equal(m->registry.ref, "docker.io/library/registry:2.8.3");
	assert_int_equal(m->registry.size, 50ULL << 30);
	assert_int_equal(m->registry.n_seed, 2);
	manifest_free(m);
	diags_done(&d);
}

/* Each case puts `section` into apps_edit()'s manifest and expects
 * `errors` errors (0: valid), the first (by position) at `path` with
 * `msg` in its message. */
static void test_apps_errors(void **state)
{
#define E10 "a:1, a:2, a:3, a:4, a:5, a:6, a:7, a:8, a:9, a:10, "
#define S10 "mon, mon, mon, mon, mon, mon, mon, mon, mon, mon, "
#define GIT(repo, more) "gitops: {repo: \"" repo "\", chart: argo" more "}\n"
#define MON(more) "monitoring: {grafana_password: {secret: graf}, chart: mon" more "}\n"
#define REG(more) "registry: {enabled: false, image: reg, ref: \"localhost:5000/registry:2\"" more "}\n"
	static const struct {
		const char *section;
		size_t errors;
		const char *path, *msg;
	} cases[] = {
		{ GIT("https://git.example.org/x.git", ", public: true"), 0, NULL, NULL },
		{ GIT("http://10.0.0.9:3000/lab/x", ", credentials: {password: {secret: git}}"), 0, NULL, NULL },
		{ GIT("ssh://git@git.example.org:2222/x.git", ", credentials: {ssh_key: {secret: git}}"), 0, NULL, NULL },
		{ GIT("git@git.example.org:/srv/x.git", ", public: true"), 0, NULL, NULL },
		{ GIT("https://git.example.org/x.git", ""), 1, "gitops.credentials",
		  "the repository 'https://git.example.org/x.git' is private (gitops.public is not true): it needs "
		  "credentials.password" },
		{ GIT("https://git.example.org/x.git", ", public: false, credentials: {username: me}"), 2,
		  "gitops.credentials", "it needs credentials.password" },
		{ GIT("git@git.example.org:x.git", ", credentials: {}"), 1, "gitops.credentials",
		  "is private (gitops.public is not true): it needs credentials.ssh_key" },
		{ GIT("ssh://git.example.org/x.git", ", credentials: {password: {secret: git}}"), 2, "gitops.credentials",
		  "it needs credentials.ssh_key" },
		{ GIT("ssh://git.example.org/x.git", ", public: true, credentials: {password: {secret: git}}"), 1,
		  "gitops.credentials.password", "is for an https:// or http:// repository" },
		{ GIT("https://git.example.org/x.git", ", public: true, credentials: {ssh_key: {secret: git}}"), 1,
		  "gitops.credentials.ssh_key", "is for an ssh:// or USER@HOST:PATH repository" },
		{ GIT("https://git.example.org/x.git", ", credentials: {password: {secret: nope}}"), 1,
		  "gitops.credentials.password.secret", "secret 'nope' is not declared in secrets.names" },
		{ GIT("git.example.org:x.git", ""), 1, "gitops.repo", "is not a Git repository URL" },
		{ GIT("https://git.example.org", ""), 1, "gitops.repo", "is not a Git repository URL" },
		{ GIT("https://me@git.example.org/x.git", ""), 1, "gitops.repo",
		  "holds a user name: give it as gitops.credentials.username" },
		{ GIT("https://git.example.org/x y.git", ""), 1, "gitops.repo", "must not contain whitespace" },
		{ GIT("https://git.example.org/x.git", ", public: true, path: a/..b/c, revision: v1.2.3"), 0, NULL, NULL },
		{ GIT("https://git.example.org/x.git", ", public: true, path: a/.."), 1, "gitops.path",
		  "'a/..' has a '..' component" },
		{ GIT("https://git.example.org/x.git", ", public: true, path: /a"), 1, "gitops.path", "is absolute" },
		{ GIT("https://git.example.org/x.git", ", public: true, images: [argo, nope]"), 1, "gitops.images[1]",
		  "no asset named 'nope' in assets" },
		{ "gitops: {repo: \"https://git.example.org/x.git\", public: true, chart: nope}\n", 1, "gitops.chart",
		  "no asset named 'nope' in assets" },
		{ "gitops: {repo: \"https://git.example.org/x.git\", public: true}\n", 1, "gitops",
		  "missing required key 'chart'" },
		{ GIT("https://git.example.org/x.git", ", public: true, host: argo.home.arpa"), 1, "gitops.host",
		  "'argo.home.arpa' is served by the edge under the lab's DNS zone: it needs an edge and a dns section" },
		{ MON(", retention: 1w2d"), 0, NULL, NULL },
		{ MON(", retention: 500ms"), 0, NULL, NULL },
		{ MON(", retention: 2d1w"), 1, "monitoring.retention", "'2d1w' is not a duration like 15d or 1w2d" },
		{ MON(", retention: 1m1m"), 1, "monitoring.retention", "is not a duration" },
		{ MON(", retention: 0s"), 1, "monitoring.retention", "'0s' is zero" },
		{ MON(", retention: 292471209y"), 1, "monitoring.retention", "is not a duration" }, /* past INT64_MAX ms */
		{ "monitoring: {chart: mon}\n", 1, "monitoring", "monitoring.grafana_password is required" },
		{ "monitoring: {grafana_password: {secret: graf}}\n", 1, "monitoring", "monitoring.chart is required" },
		{ "monitoring: {enabled: false}\n", 0, NULL, NULL },
		{ "monitoring: {enabled: false, logs: {chart: loki}}\n", 1, "monitoring.logs",
		  "the logs are read in Grafana, which monitoring.enabled: false leaves out" },
		{ "monitoring: {enabled: false, logs: {enabled: false}}\n", 0, NULL, NULL },
		{ MON(", logs: {retention: 3d}"), 1, "monitoring.logs", "monitoring.logs.chart is required" },
		{ MON(", scrape_targets: [{name: a, targets: [x:1]}, {name: a, targets: [y:2]}]"), 1,
		  "monitoring.scrape_targets[1].name", "job 'a' is monitoring.scrape_targets[0] already" },
		{ MON(", scrape_targets: [{name: a, targets: [10.0.0.300:9100]}]"), 1,
		  "monitoring.scrape_targets[0].targets[0]", "is not HOST:PORT" },
		{ MON(", scrape_targets: [{name: a, targets: [" E10 E10 E10 E10 E10 E10 "a:1, a:2, a:3, a:4]}]"), 0, NULL,
		  NULL },
		{ MON(", scrape_targets: [{name: a, targets: [" E10 E10 E10 E10 E10 E10 "a:1, a:2, a:3, a:4, a:5]}]"), 1,
		  "monitoring.scrape_targets[0].targets", "has 65 entries; at most 64 are allowed" },
		{ REG(""), 0, NULL, NULL },
		{ REG(", size: 1G"), 0, NULL, NULL },
		{ REG(", size: 0"), 1, "registry.size", "is smaller than 1G" },
		{ "registry: {enabled: false, image: reg, ref: \"registry:2\"}\n", 1, "registry.ref",
		  "is not an image reference" },
		{ REG(", seed: [" S10 S10 S10 S10 S10 S10 "argo, loki, reg, vip]"), 59, "registry.seed[1]",
		  "asset 'mon' is registry.seed[0] already" },
		{ REG(", seed: [" S10 S10 S10 S10 S10 S10 "argo, loki, reg, vip, img]"), 1, "registry.seed",
		  "has 65 entries; at most 64 are allowed" },
		{ "registry: {image: reg, ref: \"localhost:5000/registry:2\"}\n", 1, "registry",
		  "registry.host is required: K3s pulls from the registry by that name, through the edge" },
		{ "registry: {image: reg, ref: \"localhost:5000/registry:2\", host: reg.home.arpa}\n", 1, "registry.host",
		  "needs an edge and a dns section" },
#undef E10
#undef S10
#undef GIT
#undef MON
#undef REG
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char buf[4096];

		apps_edit(buf, sizeof(buf), cases[i].section);
		expect_case(i, cases[i].section, buf, cases[i].path, cases[i].msg, cases[i].errors);
	}
}

/* A password in the repository's URL is refused without being quoted; the
 * sections need K3s. */
static void test_apps_refusals(void **state)
{
	static const char no_k3s[] = "gitops: {repo: \"https://git.example.org/x.git\", public: true, chart: rootfs}\n"
				     "monitoring: {grafana_password: {secret: pw}, chart: rootfs}\n"
				     "registry: {enabled: false, image: rootfs, ref: \"localhost:5000/registry:2\"}\n";
	char buf[4096];
	struct diags d = {};
	struct manifest *m = NULL;

	(void)state;
	apps_edit(buf, sizeof(buf), "gitops: {repo: \"https://me:hunter2@git.example.org/x.git\", chart: argo}\n");
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "t.yaml", &d, &m), -EINVAL);
	assert_int_equal(d.n_errors, 1);
	assert_string_equal(d.items[0].path, "gitops.repo");
	assert_string_equal(d.items[0].message,
			    "holds a password: secrets are never given in clear text; use gitops.credentials");
	diags_done(&d);
	apps_edit(buf, sizeof(buf), "gitops: {repo: \"ftp://me:hunter2@git.example.org/x.git\", chart: argo}\n");
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "t.yaml", &d, &m), -EINVAL);
	assert_null(strstr(d.items[0].message, "hunter2"));
	diags_done(&d);

	/* minimal has no k3s: gitops always needs it; monitoring and the
	 * registry when enabled */
	snprintf(buf, sizeof(buf), "%s%s", minimal, no_k3s);
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "t.yaml", &d, &m), -EINVAL);
	assert_int_equal(d.n_errors, 2);
	assert_string_equal(d.items[0].path, "gitops");
	assert_string_equal(d.items[0].message, "Argo CD runs in K3s: gitops needs a k3s section");
	assert_string_equal(d.items[1].path, "monitoring");
	assert_string_equal(d.items[1].message, "the monitoring stack runs in K3s: monitoring needs a k3s section");
	diags_done(&d);
}

/* The networks' defaults are checked against the subnet as well. */
static void test_k3s_default_cidrs(void **state)
{
	char buf[4096], *p;
	struct diags d = {};
	struct manifest *m = NULL;

	(void)state;
	/* every address into 10.43.7.0/24, inside the default service CIDR */
	snprintf(buf, sizeof(buf), "%s", k3s_yaml);
	while ((p = strstr(buf, "192.168.1."))) {
		memcpy(p, "10.43.7.", 8);
		memmove(p + 8, p + 10, strlen(p + 10) + 1);
	}
	assert_null(strstr(buf, "192.168"));
	assert_int_equal(manifest_load_buffer(buf, strlen(buf), "t.yaml", &d, &m), -EINVAL);
	assert_int_equal(d.n_errors, 1);
	assert_string_equal(d.items[0].path, "k3s.service_cidr");
	assert_string_equal(d.items[0].message, "the default 10.43.0.0/16 overlaps network.subnet 10.43.7.0/24: set it to "
						"a range the network does not use");
	assert_int_equal(d.items[0].line, 16); /* the k3s mapping: the key is not there */
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
		cmocka_unit_test(test_vm_mac),  cmocka_unit_test(test_guest),   cmocka_unit_test(test_guest_errors),
		cmocka_unit_test(test_guest_limits), cmocka_unit_test(test_k3s), cmocka_unit_test(test_k3s_errors),
		cmocka_unit_test(test_k3s_default_cidrs), cmocka_unit_test(test_apps), cmocka_unit_test(test_apps_errors),
		cmocka_unit_test(test_apps_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
