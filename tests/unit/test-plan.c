/* SPDX-License-Identifier: MIT */
/*
 * test-plan.c — plan_build() on small manifests: optional sections leave
 * no steps behind, the node filter, typed references for the ops,
 * deterministic hashes, and the text/JSON renderings.
 * (examples/homelab.yaml is covered byte for byte by t-plan.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "plan/json-util.h"
#include "plan/plan.h"

static const char small[] =
	"version: 1\n"
	"cluster: {name: lab, domain: home.arpa, timezone: UTC}\n"
	"network: {subnet: 10.0.10.0/24, gateway: 10.0.10.1}\n"
	"nodes:\n"
	"  - {name: n1, role: first, mac: \"52:54:00:0a:00:01\", ip: 10.0.10.11, disk: {transport: nvme}}\n"
	"  - {name: n2, mac: \"52:54:00:0a:00:02\", ip: 10.0.10.12, disk: {transport: nvme}}\n"
	"assets:\n"
	"  - {name: rootfs, file: rootfs.tar.zst}\n"
	"  - {name: jammy, file: jammy.img}\n"
	"proxmox: {rootfs: rootfs, root_password: {secret: root_password}}\n"
	"templates:\n"
	"  - {name: tpl, vmid: 9000, image: jammy, target_node: [n1, n2], storage: local-lvm}\n"
	"vms:\n"
	"  - id: app\n"
	"    name: \"app-{n}\"\n"
	"    count: 3\n"
	"    vmid: 300\n"
	"    target_node: [n1, n2]\n"
	"    clone: tpl\n"
	"    memory: 1024\n"
	"    disk: {size: 8G, storage: local-lvm}\n"
	"    ipconfig0: \"ip=10.0.10.51/24,gw=10.0.10.1\"\n"
	"secrets: {names: [root_password]}\n";

/* The plan of tests/manifest/valid/NAME (its manifest into *ret_m). */
static struct plan *plan_of_valid(const char *name, struct manifest **ret_m)
{
	const char *top = getenv("TOP");
	struct diags d = {};
	struct plan *p = NULL;
	char path[4096];

	snprintf(path, sizeof(path), "%s/tests/manifest/valid/%s", top ? top : ".", name);
	assert_int_equal(manifest_load(path, name, &d, ret_m), 0);
	diags_done(&d);
	assert_int_equal(plan_build(*ret_m, NULL, &p), 0);
	return p;
}

static struct manifest *load(const char *yaml)
{
	struct diags d = {};
	struct manifest *m = NULL;
	char line[1024];
	int r = manifest_load_buffer(yaml, strlen(yaml), "test.yaml", &d, &m);

	for (size_t i = 0; r < 0 && i < d.n; i++)
		if (diags_format(&d, i, line, sizeof(line)) >= 0)
			print_error("%s\n", line);
	diags_done(&d);
	assert_int_equal(r, 0);
	return m;
}

static struct json_object *param_of(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static struct json_object *param(const struct step *s, const char *key)
{
	return param_of(s->params, key);
}

static size_t count_kind(const struct plan *p, enum step_kind k)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_steps; i++)
		n += p->steps[i].kind == k;
	return n;
}

static void test_optional_sections(void **state)
{
	struct manifest *m = load(small);
	struct plan *p = NULL;
	const struct step *s;
	struct json_object *checks;

	(void)state;
	assert_int_equal(plan_build(m, NULL, &p), 0);
	/* 2 nodes x 16 install + create + join + 2 quorum + storage + 2 template copies + 3 VMs + verify */
	assert_int_equal(p->n_steps, 32 + 2 + 2 + 1 + 2 + 3 + 1);
	assert_int_equal(count_kind(p, STEP_VM), 3);
	assert_int_equal(count_kind(p, STEP_K3S_SERVER_INIT) + count_kind(p, STEP_DNS_ZONE) + count_kind(p, STEP_EDGE_TRAEFIK),
			 0);
	assert_int_equal(count_kind(p, STEP_STORAGE), 1); /* used twice, checked once */
	s = &p->steps[p->n_steps - 1];
	assert_int_equal(s->kind, STEP_VERIFY);
	checks = json_get_array(s->params, "checks");
	assert_non_null(checks);
	assert_int_equal(json_object_array_length(checks), 2); /* no k3s, dns, edge checks */
	/* no nodes[].nic: the bridge's port is the NIC with the node's mac */
	s = NULL;
	for (size_t i = 0; i < p->n_steps; i++)
		if (p->steps[i].kind == STEP_CONFIG_NETWORK && streq(p->steps[i].node, "n2"))
			s = &p->steps[i];
	assert_non_null(s);
	assert_string_equal(json_object_get_string(param(s, "nic")), "52:54:00:0a:00:02");
	/* new hardware: the install sets the NIC it found; only n2's step changes */
	{
		char before[sizeof(s->params_hash)];
		const struct step *n1 = NULL;

		memcpy(before, s->params_hash, sizeof(before));
		assert_int_equal(plan_set_node_nic(p, "n2", "52:54:00:0b:00:02"), 0);
		assert_string_equal(json_object_get_string(param(s, "nic")), "52:54:00:0b:00:02");
		assert_string_not_equal(s->params_hash, before);
		for (size_t i = 0; i < p->n_steps; i++)
			if (p->steps[i].kind == STEP_CONFIG_NETWORK && streq(p->steps[i].node, "n1"))
				n1 = &p->steps[i];
		assert_non_null(n1);
		assert_string_equal(json_object_get_string(param(n1, "nic")), "52:54:00:0a:00:01");
		assert_int_equal(plan_set_node_nic(p, "nosuch", "eth0"), -ENOENT);
	}
	plan_free(p);
	manifest_free(m);
}

static void test_typed_refs(void **state)
{
	struct manifest *m = load(small);
	struct plan *p = NULL;
	const struct step *s;
	uint64_t vmid = 0;

	(void)state;
	assert_int_equal(plan_build(m, NULL, &p), 0);
	s = plan_find_step(p, "cluster/vm/app-3");
	assert_non_null(s);
	assert_true(s->has_vm);
	assert_int_equal(s->vm.vmid, 302);
	assert_string_equal(s->vm.target_node, "n1"); /* round-robin n1, n2, n1 */
	assert_int_equal(step_param_u64(s, "vmid", &vmid), 0);
	assert_int_equal(vmid, 302);
	assert_string_equal(step_param_string(s, "ip"), "10.0.10.53/24");
	assert_string_equal(step_param_string(s, "node"), "n1");
	s = plan_find_step(p, "node/n2/disk/partition");
	assert_non_null(s);
	assert_ptr_equal(s->mf_node, manifest_find_node(m, "n2"));
	assert_string_equal(s->node, "n2");
	s = plan_find_step(p, "cluster/template/tpl/n2");
	assert_non_null(s);
	assert_ptr_equal(s->mf_template, manifest_find_template(m, "tpl"));
	assert_null(s->node);
	assert_int_equal(step_param_u64(s, "vmid", &vmid), 0);
	assert_int_equal(vmid, 9001); /* the copy on target_node[1] */
	assert_string_equal(step_param_string(s, "node"), "n2");
	s = plan_find_step(p, "cluster/vm/app-2"); /* on n2: the copy there */
	assert_non_null(s);
	assert_int_equal(s->vm.template_vmid, 9001);
	assert_int_equal(step_param_u64(s, "template_vmid", &vmid), 0);
	assert_int_equal(vmid, 9001);
	plan_free(p);
	manifest_free(m);
}

static void test_node_filter(void **state)
{
	struct manifest *m = load(small);
	struct plan *all = NULL, *p1 = NULL, *p2 = NULL;

	(void)state;
	assert_int_equal(plan_build(m, NULL, &all), 0);
	assert_int_equal(plan_build(m, "n1", &p1), 0);
	assert_int_equal(plan_build(m, "n2", &p2), 0);
	assert_int_equal(p1->n_steps + p2->n_steps, all->n_steps);
	assert_int_equal(p2->n_steps, 18); /* install + join + quorum (no CA secret: no certs) */
	for (size_t i = 0; i < p2->n_steps; i++)
		assert_string_equal(p2->steps[i].node, "n2");
	assert_string_equal(p2->steps[16].id, "node/n2/cluster/join");
	assert_string_equal(p2->steps[17].id, "node/n2/cluster/quorum");
	assert_int_equal(count_kind(all, STEP_CLUSTER_CERTS), 0);
	assert_non_null(plan_find_step(p1, "cluster/verify"));
	assert_null(plan_find_step(p2, "cluster/verify"));
	assert_true(plan_step_runs_on(all, plan_find_step(all, "cluster/verify"), "n1"));
	assert_false(plan_step_runs_on(all, plan_find_step(all, "cluster/verify"), "n2"));
	/* Same step, same hash, whichever plan it is in. */
	assert_string_equal(plan_find_step(p2, "node/n2/rootfs")->params_hash,
			    plan_find_step(all, "node/n2/rootfs")->params_hash);
	assert_int_equal(plan_build(m, "n3", &p1), -ENOENT); /* p1 untouched on failure */
	assert_string_equal(plan_error(), "no node \"n3\" in the manifest");
	plan_free(all);
	plan_free(p1);
	plan_free(p2);
	manifest_free(m);
}

static void test_hash_follows_params(void **state)
{
	struct manifest *a = load(small);
	char *changed = strdup(small);
	struct manifest *b;
	struct plan *pa = NULL, *pb = NULL;

	(void)state;
	memcpy(strstr(changed, "memory: 1024"), "memory: 2048", 12);
	b = load(changed);
	assert_int_equal(plan_build(a, NULL, &pa), 0);
	assert_int_equal(plan_build(b, NULL, &pb), 0);
	assert_int_equal(pa->n_steps, pb->n_steps);
	for (size_t i = 0; i < pa->n_steps; i++) {
		bool vm = pa->steps[i].kind == STEP_VM;

		assert_string_equal(pa->steps[i].id, pb->steps[i].id);
		if (vm != !streq(pa->steps[i].params_hash, pb->steps[i].params_hash))
			fail_msg("step %s: hash %s after a VM memory change", pa->steps[i].id,
				 vm ? "unchanged" : "changed");
	}
	plan_free(pa);
	plan_free(pb);
	manifest_free(a);
	manifest_free(b);
	free(changed);
}

/* What the guest steps need: the per-node template copy, clone mode,
 * cloud-init user, keys, DNS and files, the MAC; storage bytes per node. */
static const char guest[] =
	"version: 1\n"
	"cluster: {name: lab, domain: home.arpa, seed: s33d}\n"
	"network: {subnet: 10.0.10.0/24, gateway: 10.0.10.1, dns: [10.0.10.1, 9.9.9.9]}\n"
	"nodes:\n"
	"  - {name: n1, role: first, mac: \"52:54:00:0a:00:01\", ip: 10.0.10.11, disk: {transport: nvme}}\n"
	"  - {name: n2, mac: \"52:54:00:0a:00:02\", ip: 10.0.10.12, disk: {transport: nvme}}\n"
	"  - {name: n3, mac: \"52:54:00:0a:00:03\", ip: 10.0.10.13, disk: {transport: nvme}}\n"
	"assets:\n"
	"  - {name: rootfs, file: rootfs.tar.zst}\n"
	"  - {name: jammy, file: jammy.img}\n"
	"  - {name: motd, file: guest/motd}\n"
	"proxmox:\n"
	"  rootfs: rootfs\n"
	"  root_password: {secret: root_password}\n"
	"  ssh_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB/84AkNwkIvKpLC+wnEJ8J/URoETXyHW/305I8FG3qh a@b\"]\n"
	"templates:\n"
	"  - {name: tpl, vmid: 9000, image: jammy, target_node: [n2, n1]}\n"
	"  - {name: zfs, vmid: 9100, image: jammy, target_node: n3, storage: local-zfs}\n"
	"  - {name: spare, vmid: 9200, image: jammy, target_node: n3, storage: spare-pool}\n"
	"vms:\n"
	"  - {id: app, name: \"app-{n}\", count: 3, vmid: 300, target_node: [n1, n2], clone: tpl, memory: 512,\n"
	"     full_clone: false, ciuser: devops, disk: {size: 8G}, ipconfig0: \"ip=10.0.10.51/24\",\n"
	"     files: [{asset: motd, path: /etc/motd}, {asset: motd, path: /usr/local/bin/x, mode: \"0755\"}]}\n"
	"  - {id: db, name: db, vmid: 400, target_node: n3, clone: zfs, memory: 512, disk: {size: 1T, storage: local-zfs},\n"
	"     sshkeys: [], ipconfig0: \"ip=10.0.10.61/24\"}\n"
	"secrets: {names: [root_password]}\n";

static void test_guest_params(void **state)
{
	struct manifest *m = load(guest);
	struct plan *p = NULL;
	const struct step *s;
	struct json_object *a, *o, *bytes;
	uint64_t v = 0;
	uint8_t mac[6];
	char want[18];

	(void)state;
	assert_int_equal(plan_build(m, NULL, &p), 0);
	/* Template copies in target_node order, VMIDs by position. */
	assert_non_null(s = plan_find_step(p, "cluster/template/tpl/n2"));
	assert_int_equal(step_param_u64(s, "vmid", &v), 0);
	assert_int_equal(v, 9000);
	assert_non_null(s = plan_find_step(p, "cluster/template/tpl/n1"));
	assert_int_equal(step_param_u64(s, "vmid", &v), 0);
	assert_int_equal(v, 9001);
	assert_string_equal(step_param_string(s, "file"), "jammy.img");
	assert_null(json_get_string(s->params, "sha256")); /* the step takes it from the bundle */

	s = plan_find_step(p, "cluster/vm/app-3"); /* on n1 */
	assert_non_null(s);
	assert_int_equal(step_param_u64(s, "template_vmid", &v), 0);
	assert_int_equal(v, 9001);
	assert_false(json_object_get_boolean(param(s, "full")));
	assert_string_equal(step_param_string(s, "ciuser"), "devops");
	assert_string_equal(step_param_string(s, "searchdomain"), "home.arpa");
	a = json_get_array(s->params, "nameserver");
	assert_int_equal(json_object_array_length(a), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(a, 1)), "9.9.9.9");
	a = json_get_array(s->params, "sshkeys"); /* proxmox.ssh_keys by default */
	assert_int_equal(json_object_array_length(a), 1);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(a, 0)), m->proxmox.ssh_keys[0]);
	a = json_get_array(s->params, "files");
	assert_int_equal(json_object_array_length(a), 2);
	o = json_object_array_get_idx(a, 0);
	assert_string_equal(json_get_string(o, "file"), "guest/motd");
	assert_string_equal(json_get_string(o, "path"), "/etc/motd");
	assert_string_equal(json_get_string(o, "mode"), "0644");
	assert_string_equal(json_get_string(json_object_array_get_idx(a, 1), "mode"), "0755");
	assert_int_equal(manifest_vm_mac("s33d", "app-3", mac), 0);
	snprintf(want, sizeof(want), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	assert_string_equal(step_param_string(s, "mac"), want);
	assert_memory_equal(s->vm.mac, mac, 6);

	s = plan_find_step(p, "cluster/vm/db");
	assert_non_null(s);
	assert_true(json_object_get_boolean(param(s, "full")));
	assert_null(param(s, "ciuser"));
	assert_int_equal(json_object_array_length(json_get_array(s->params, "sshkeys")), 0); /* [] given */

	/* Storage: only the nodes that use it, the disks' sizes on each; a
	 * template copy counts its node in, with 0 bytes of its own. */
	s = plan_find_step(p, "cluster/storage/local-lvm");
	assert_non_null(s);
	a = json_get_array(s->params, "nodes");
	assert_int_equal(json_object_array_length(a), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(a, 0)), "n1");
	bytes = json_get_object(s->params, "bytes");
	assert_int_equal(json_get_u64(bytes, "n1", &v), 0);
	assert_int_equal(v, 16ull << 30); /* app-1, app-3 */
	assert_int_equal(json_get_u64(bytes, "n2", &v), 0);
	assert_int_equal(v, 8ull << 30);
	assert_null(param_of(bytes, "n3"));
	assert_string_equal(s->title, "Checking storage local-lvm on 2 nodes");
	s = plan_find_step(p, "cluster/storage/local-zfs");
	assert_non_null(s);
	assert_int_equal(json_get_u64(json_get_object(s->params, "bytes"), "n3", &v), 0);
	assert_int_equal(v, 1ull << 40);
	assert_string_equal(s->title, "Checking storage local-zfs on n3");
	s = plan_find_step(p, "cluster/storage/spare-pool");
	assert_non_null(s);
	assert_int_equal(json_get_u64(json_get_object(s->params, "bytes"), "n3", &v), 0);
	assert_int_equal(v, 0); /* a template only: its image's size is not known to the plan */
	s = plan_find_step(p, "cluster/storage/local-lvm");
	assert_true(s < plan_find_step(p, "cluster/template/tpl/n2"));
	plan_free(p);
	manifest_free(m);
}

/* K3s: a server group with a file of its own, an agent group, no VIP. */
static const char k3s[] =
	"version: 1\n"
	"cluster: {name: lab, domain: home.arpa}\n"
	"network: {subnet: 10.0.10.0/24, gateway: 10.0.10.1}\n"
	"nodes:\n"
	"  - {name: n1, role: first, mac: \"52:54:00:0a:00:01\", ip: 10.0.10.11, disk: {transport: nvme}}\n"
	"assets:\n"
	"  - {name: rootfs, file: rootfs.tar.zst}\n"
	"  - {name: jammy, file: jammy.img}\n"
	"  - {name: motd, file: guest/motd}\n"
	"  - {name: bin, file: k3s/k3s-v1.30}\n"
	"  - {name: img, file: k3s/airgap-images.tar.zst}\n"
	"  - {name: inst, file: install.sh}\n"
	"  - {name: kv, file: images/kube-vip-v0.9.2.tar}\n"
	"proxmox: {rootfs: rootfs, root_password: {secret: root_password}}\n"
	"templates: [{name: tpl, vmid: 9000, image: jammy, target_node: n1}]\n"
	"vms:\n"
	"  - {id: srv, name: \"srv-{n}\", count: 3, vmid: 300, target_node: n1, clone: tpl, memory: 512,\n"
	"     disk: {size: 8G}, ipconfig0: \"ip=10.0.10.51/24\", files: [{asset: motd, path: /etc/motd}]}\n"
	"  - {id: wrk, name: \"wrk-{n}\", vmid: 400, target_node: n1, clone: tpl, memory: 512, disk: {size: 8G},\n"
	"     ipconfig0: \"ip=10.0.10.61/24\"}\n"
	"  - {id: other, name: other, vmid: 500, target_node: n1, clone: tpl, memory: 512, disk: {size: 8G},\n"
	"     ipconfig0: \"ip=10.0.10.71/24\"}\n"
	"k3s:\n"
	"  token: {secret: tok}\n"
	"  servers: [srv]\n"
	"  agents: [wrk]\n"
	"  ha: true\n"
	"  cluster_cidr: 10.100.0.0/16\n"
	"  disable: [traefik, local-storage]\n"
	"  airgap: {binary: bin, images: img, install_script: inst}\n"
	"secrets: {names: [root_password, tok, cluster_ca_key]}\n";

/* The names of an object's members from `first` on (NULL: all),
 * comma-separated. */
static void obj_keys_from(struct json_object *obj, const char *first, char *buf, size_t size)
{
	bool on = false;
	size_t o = 0;

	buf[0] = '\0';
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		on = on || !first || streq(key, first);
		if (on && o < size)
			o += (size_t)snprintf(buf + o, size - o, "%s%s", o ? "," : "", key);
	}
}

/* The names of a step's params from `first` on. */
static void keys_from(const struct step *s, const char *first, char *buf, size_t size)
{
	obj_keys_from(s->params, first, buf, size);
}

static const char *str_at(struct json_object *a, size_t i)
{
	return json_object_get_string(json_object_array_get_idx(a, i));
}

static void test_k3s_params(void **state)
{
	struct manifest *m = load(k3s);
	struct plan *p = NULL;
	const struct step *s;
	struct json_object *a, *o;
	char keys[512];

	(void)state;
	assert_int_equal(plan_build(m, NULL, &p), 0);
	s = plan_find_step(p, "cluster/k3s/server/srv-1");
	assert_non_null(s);
	assert_int_equal(s->kind, STEP_K3S_SERVER_INIT);
	keys_from(s, "version", keys, sizeof(keys));
	assert_string_equal(keys, "version,node_name,cluster_cidr,service_cidr,disable,api_vip,tls_san,datastore,"
				  "cluster_init,kube_vip,token,airgap_binary,airgap_images,install_script,rejoin");
	/* rebuilt, the first server joins the others: without a VIP through the second */
	assert_string_equal(step_param_string(s, "rejoin"), "https://10.0.10.52:6443");
	assert_string_equal(step_param_string(s, "node_name"), "srv-1");
	assert_string_equal(step_param_string(s, "cluster_cidr"), "10.100.0.0/16");
	assert_string_equal(step_param_string(s, "service_cidr"), "10.43.0.0/16"); /* the default */
	a = json_get_array(s->params, "disable");
	assert_int_equal(json_object_array_length(a), 2);
	assert_string_equal(str_at(a, 0), "traefik");
	assert_string_equal(str_at(a, 1), "local-storage");
	assert_true(json_object_object_get_ex(s->params, "api_vip", &o));
	assert_null(o); /* none: JSON null, "-" in text */
	assert_true(json_object_object_get_ex(s->params, "kube_vip", &o));
	assert_null(o); /* nothing to serve */
	a = json_get_array(s->params, "tls_san");
	assert_int_equal(json_object_array_length(a), 1);
	assert_string_equal(str_at(a, 0), "10.0.10.51");

	s = plan_find_step(p, "cluster/k3s/server/srv-3");
	assert_int_equal(s->kind, STEP_K3S_SERVER_JOIN);
	keys_from(s, "version", keys, sizeof(keys));
	assert_string_equal(keys, "version,node_name,cluster_cidr,service_cidr,disable,api_vip,tls_san,server,token,"
				  "airgap_binary,airgap_images,install_script");
	assert_string_equal(step_param_string(s, "server"), "https://10.0.10.51:6443");
	assert_string_equal(str_at(json_get_array(s->params, "tls_san"), 0), "10.0.10.53");

	s = plan_find_step(p, "cluster/k3s/agent/wrk-1");
	assert_int_equal(s->kind, STEP_K3S_AGENT);
	keys_from(s, "version", keys, sizeof(keys));
	assert_string_equal(keys, "version,node_name,cluster_cidr,service_cidr,disable,api_vip,server,token,"
				  "airgap_binary,airgap_images,install_script");
	assert_string_equal(step_param_string(s, "node_name"), "wrk-1");
	assert_null(param(s, "tls_san"));

	/* The vm steps: the group's own files, then the air-gap payload. */
	s = plan_find_step(p, "cluster/vm/srv-2");
	a = json_get_array(s->params, "files");
	assert_int_equal(json_object_array_length(a), 4);
	assert_string_equal(json_get_string(json_object_array_get_idx(a, 0), "path"), "/etc/motd");
	o = json_object_array_get_idx(a, 1);
	assert_string_equal(json_get_string(o, "asset"), "bin");
	assert_string_equal(json_get_string(o, "file"), "k3s/k3s-v1.30");
	assert_string_equal(json_get_string(o, "path"), "/usr/local/bin/k3s");
	assert_string_equal(json_get_string(o, "mode"), "0755");
	o = json_object_array_get_idx(a, 2);
	assert_string_equal(json_get_string(o, "asset"), "img");
	assert_string_equal(json_get_string(o, "file"), "k3s/airgap-images.tar.zst");
	assert_string_equal(json_get_string(o, "path"), "/var/lib/rancher/k3s/agent/images/airgap-images.tar.zst");
	assert_string_equal(json_get_string(o, "mode"), "0644");
	o = json_object_array_get_idx(a, 3);
	assert_string_equal(json_get_string(o, "asset"), "inst");
	assert_string_equal(json_get_string(o, "path"), "/usr/local/lib/devopslab/k3s-install.sh");
	assert_string_equal(json_get_string(o, "mode"), "0755");
	assert_int_equal(json_object_array_length(json_get_array(plan_find_step(p, "cluster/vm/wrk-1")->params, "files")),
			 3);
	assert_int_equal(json_object_array_length(json_get_array(plan_find_step(p, "cluster/vm/other")->params, "files")),
			 0);
	plan_free(p);
	manifest_free(m);
}

/* With api_vip: in every K3s step, first in the servers' tls_san, the
 * address joins and agents register through; kube-vip, which serves it,
 * deployed by the first server, its image in every server's payload. */
static void test_k3s_vip(void **state)
{
	char buf[sizeof(k3s) + 128];
	const char *at = strstr(k3s, "  disable:");
	struct manifest *m;
	struct plan *p = NULL;
	const struct step *s;
	struct json_object *a, *o;
	char *text = NULL, keys[512];
	size_t size = 0;
	FILE *f;

	(void)state;
	snprintf(buf, sizeof(buf),
		 "%.*s  api_vip: 10.0.10.5\n  kube_vip: {image: kv, ref: \"ghcr.io/kube-vip/kube-vip:v0.9.2\"}\n%s",
		 (int)(at - k3s), k3s, at);
	m = load(buf);
	assert_int_equal(plan_build(m, NULL, &p), 0);
	s = plan_find_step(p, "cluster/k3s/server/srv-1");
	keys_from(s, "cluster_init", keys, sizeof(keys));
	assert_string_equal(keys, "cluster_init,kube_vip,token,airgap_binary,airgap_images,install_script,rejoin");
	assert_string_equal(step_param_string(s, "rejoin"), "https://10.0.10.5:6443"); /* through the VIP */
	o = json_get_object(s->params, "kube_vip");
	obj_keys_from(o, NULL, keys, sizeof(keys));
	assert_string_equal(keys, "ref,interface,address");
	assert_string_equal(json_get_string(o, "ref"), "ghcr.io/kube-vip/kube-vip:v0.9.2");
	assert_string_equal(json_get_string(o, "interface"), "eth0");
	assert_string_equal(json_get_string(o, "address"), "10.0.10.5");
	s = plan_find_step(p, "cluster/k3s/server/srv-2");
	assert_string_equal(step_param_string(s, "api_vip"), "10.0.10.5");
	a = json_get_array(s->params, "tls_san");
	assert_int_equal(json_object_array_length(a), 2);
	assert_string_equal(str_at(a, 0), "10.0.10.5");
	assert_string_equal(str_at(a, 1), "10.0.10.52");
	assert_string_equal(step_param_string(s, "server"), "https://10.0.10.5:6443"); /* through the VIP */
	assert_false(json_object_object_get_ex(s->params, "kube_vip", NULL)); /* the first server's only */
	s = plan_find_step(p, "cluster/k3s/agent/wrk-1");
	assert_string_equal(step_param_string(s, "api_vip"), "10.0.10.5");
	assert_string_equal(step_param_string(s, "server"), "https://10.0.10.5:6443");
	assert_false(json_object_object_get_ex(s->params, "kube_vip", NULL));

	/* kube-vip's image: after the air-gap payload, on the servers only */
	a = json_get_array(plan_find_step(p, "cluster/vm/srv-3")->params, "files");
	assert_int_equal(json_object_array_length(a), 5);
	o = json_object_array_get_idx(a, 4);
	assert_string_equal(json_get_string(o, "asset"), "kv");
	assert_string_equal(json_get_string(o, "file"), "images/kube-vip-v0.9.2.tar");
	assert_string_equal(json_get_string(o, "path"), "/var/lib/rancher/k3s/agent/images/kube-vip-v0.9.2.tar");
	assert_string_equal(json_get_string(o, "mode"), "0644");
	assert_int_equal(json_object_array_length(json_get_array(plan_find_step(p, "cluster/vm/wrk-1")->params, "files")),
			 3);
	f = open_memstream(&text, &size);
	assert_non_null(f);
	assert_int_equal(plan_print_text(f, p), 0);
	fclose(f);
	assert_non_null(strstr(text, "      node_name: srv-2\n      cluster_cidr: 10.100.0.0/16\n"
				     "      service_cidr: 10.43.0.0/16\n      disable: traefik, local-storage\n"
				     "      api_vip: 10.0.10.5\n      tls_san: 10.0.10.5, 10.0.10.52\n"));
	assert_non_null(strstr(text, "      cluster_init: true\n      kube_vip:\n"
				     "        ref: ghcr.io/kube-vip/kube-vip:v0.9.2\n        interface: eth0\n"
				     "        address: 10.0.10.5\n"));
	free(text);
	plan_free(p);
	manifest_free(m);
}

/* gitops: Argo CD's chart after k3s.charts' in the charts step, the
 * gitops step after the edge's, its credentials by secret name only. */
static void test_gitops(void **state)
{
	struct manifest *m = NULL;
	struct plan *p = NULL;
	const struct step *s;
	struct json_object *a, *o, *c;
	size_t at = 0;

	(void)state;
	p = plan_of_valid("gitops.yaml", &m);
	s = plan_find_step(p, "cluster/k3s/charts");
	assert_non_null(s);
	a = json_get_array(s->params, "charts");
	assert_int_equal(json_object_array_length(a), 1);
	o = json_object_array_get_idx(a, 0);
	assert_string_equal(json_get_string(o, "name"), "argo-cd");
	assert_string_equal(json_get_string(o, "namespace"), "argocd");
	assert_string_equal(json_get_string(o, "asset"), "argocd-chart");
	assert_string_equal(json_get_string(o, "archive"), "argo-cd.tgz");
	assert_non_null(strstr(json_get_string(o, "values"), "global:\n  domain: argocd.home.arpa\n"));
	assert_non_null(strstr(json_get_string(o, "values"), "    server.insecure: true\n"));

	s = plan_find_step(p, "cluster/gitops/root");
	assert_non_null(s);
	assert_int_equal(s->kind, STEP_GITOPS);
	assert_int_equal(s->phase, STEP_PHASE_FIRSTBOOT);
	assert_string_equal(step_param_string(s, "repo"), "https://git.example.org/lab/cluster-config.git");
	assert_string_equal(step_param_string(s, "revision"), "main");
	assert_string_equal(step_param_string(s, "path"), "clusters/lab");
	assert_string_equal(step_param_string(s, "namespace"), "argocd");
	c = param(s, "credentials");
	assert_string_equal(json_get_string(c, "username"), "devopslab");
	assert_string_equal(json_get_string(json_get_object(c, "password"), "secret"), "gitops_token");
	assert_null(param_of(c, "ssh_key"));
	/* after the edge's routes, before the verification */
	for (size_t i = 0; i < p->n_steps; i++)
		if (&p->steps[i] == s)
			at = i;
	assert_int_equal(p->steps[at - 1].kind, STEP_EDGE_ROUTES);
	assert_int_equal(p->steps[at + 1].kind, STEP_VERIFY);
	plan_free(p);
	manifest_free(m);
}

/* monitoring: the stack's chart with the plan's values, the monitoring
 * step with the static jobs, the UIs at the edge, the verification's
 * targets. */
static void test_monitoring(void **state)
{
	struct manifest *m = NULL;
	struct plan *p = NULL;
	const struct step *s;
	struct json_object *a, *o, *v, *jobs;

	(void)state;
	p = plan_of_valid("monitoring.yaml", &m);
	a = json_get_array(plan_find_step(p, "cluster/k3s/charts")->params, "charts");
	o = json_object_array_get_idx(a, json_object_array_length(a) - 2); /* the logs' chart last */
	assert_string_equal(json_get_string(o, "name"), "monitoring");
	assert_string_equal(json_get_string(o, "namespace"), "monitoring");
	assert_string_equal(json_get_string(o, "archive"), "monitoring.tgz");
	v = json_tokener_parse(json_get_string(o, "values"));
	assert_non_null(v);
	assert_string_equal(json_get_string(v, "fullnameOverride"), "monitoring");
	o = json_get_object(json_get_object(v, "prometheus"), "prometheusSpec");
	assert_string_equal(json_get_string(o, "retention"), "30d");
	jobs = json_get_array(o, "additionalScrapeConfigs");
	assert_int_equal(json_object_array_length(jobs), 4);
	assert_string_equal(json_get_string(json_object_array_get_idx(jobs, 0), "job_name"), "proxmox-hosts");
	assert_string_equal(json_get_string(json_object_array_get_idx(jobs, 1), "job_name"), "traefik");
	o = json_object_array_get_idx(jobs, 3);
	assert_string_equal(json_get_string(o, "job_name"), "pbs");
	assert_string_equal(json_get_string(o, "metrics_path"), "/api2/prometheus/metrics");
	assert_string_equal(json_get_string(o, "scheme"), "https");
	assert_string_equal(json_get_string(json_get_object(json_get_object(v, "grafana"), "admin"), "existingSecret"),
			    "devopslab-grafana-admin");
	json_object_put(v);

	s = plan_find_step(p, "cluster/monitoring");
	assert_non_null(s);
	assert_int_equal(s->kind, STEP_MONITORING);
	jobs = json_get_array(s->params, "jobs");
	assert_int_equal(json_object_array_length(jobs), 3); /* the static ones: traefik is found, not listed */
	o = json_object_array_get_idx(jobs, 0);
	assert_string_equal(json_get_string(o, "name"), "proxmox-hosts");
	assert_string_equal(str_at(json_get_array(o, "targets"), 1), "10.0.10.12:9100");
	assert_string_equal(json_get_string(json_get_object(s->params, "grafana_password"), "secret"), "grafana_password");

	a = json_get_array(plan_find_step(p, "cluster/edge/routes")->params, "apps");
	assert_int_equal(json_object_array_length(a), 2);
	assert_string_equal(json_get_string(json_object_array_get_idx(a, 0), "service"), "monitoring-grafana");
	assert_string_equal(json_get_string(json_object_array_get_idx(a, 1), "host"), "prometheus.home.arpa");
	s = plan_find_step(p, "cluster/verify");
	assert_int_equal(json_object_array_length(json_get_array(json_get_object(s->params, "monitoring"), "jobs")), 3);
	plan_free(p);
	manifest_free(m);
}

static void test_logs(void **state)
{
	struct manifest *m = NULL;
	struct plan *p = NULL;
	const struct step *s;
	struct json_object *a, *o, *v, *src;

	(void)state;
	p = plan_of_valid("monitoring.yaml", &m);
	/* the log store: a second system chart, Loki with the retention, the
	 * agent's syslog receiver on a NodePort, the journal mounted */
	a = json_get_array(plan_find_step(p, "cluster/k3s/charts")->params, "charts");
	o = json_object_array_get_idx(a, json_object_array_length(a) - 1);
	assert_string_equal(json_get_string(o, "name"), "logs");
	assert_string_equal(json_get_string(o, "namespace"), "monitoring");
	assert_string_equal(json_get_string(o, "archive"), "logs.tgz");
	v = json_tokener_parse(json_get_string(o, "values"));
	assert_non_null(v);
	o = json_get_object(v, "loki");
	assert_string_equal(json_get_string(o, "fullnameOverride"), "logs-loki");
	assert_string_equal(json_get_string(json_get_object(json_get_object(o, "config"), "limits_config"),
					    "retention_period"),
			    "1w2d");
	o = json_get_object(v, "promtail");
	assert_int_equal(json_object_get_int(json_object_object_get(
				 json_get_object(json_get_object(json_get_object(o, "extraPorts"), "syslog"), "service"),
				 "nodePort")),
			 30514);
	assert_non_null(strstr(json_get_string(json_get_object(json_get_object(o, "config"), "snippets"),
					       "extraScrapeConfigs"),
			       "job_name: syslog"));
	json_object_put(v);
	/* Grafana loads the data source the step writes */
	a = json_get_array(plan_find_step(p, "cluster/k3s/charts")->params, "charts");
	v = json_tokener_parse(json_get_string(json_object_array_get_idx(a, json_object_array_length(a) - 2), "values"));
	assert_string_equal(json_get_string(json_get_object(json_get_object(json_get_object(v, "grafana"), "sidecar"),
							    "datasources"),
					    "label"),
			    "grafana_datasource");
	json_object_put(v);
	/* every node sends its logs to the receiver on the VIP */
	s = plan_find_step(p, "node/node-02/config/logs");
	assert_non_null(s);
	assert_int_equal(s->kind, STEP_CONFIG_LOGS);
	assert_int_equal(s->phase, STEP_PHASE_INSTALL);
	assert_string_equal(json_get_string(s->params, "receiver"), "10.0.10.5");
	assert_string_equal(json_get_string(s->params, "install_log"), "/var/log/devopslab/install.log");
	/* the sources the step and the verification wait for */
	s = plan_find_step(p, "cluster/monitoring");
	src = json_get_array(json_get_object(s->params, "logs"), "sources");
	assert_int_equal(json_object_array_length(src), 2 + 3 + 1); /* two nodes, three K3s VMs, Traefik */
	assert_string_equal(json_get_string(json_object_array_get_idx(src, 1), "selector"),
			    "{job=\"syslog\",host=\"node-02\"}");
	assert_string_equal(json_get_string(json_object_array_get_idx(src, 5), "selector"),
			    "{namespace=\"kube-system\",container=\"traefik\"}");
	s = plan_find_step(p, "cluster/verify");
	assert_non_null(json_get_object(json_get_object(s->params, "monitoring"), "logs"));
	plan_free(p);
	manifest_free(m);
}

static void test_registry(void **state)
{
	struct manifest *m = NULL;
	struct plan *p = NULL;
	const struct step *s;
	struct json_object *a, *o;
	size_t at_routes = 0, at_registry = 0;

	(void)state;
	p = plan_of_valid("registry.yaml", &m);
	s = plan_find_step(p, "cluster/registry");
	assert_non_null(s);
	assert_int_equal(s->kind, STEP_REGISTRY);
	assert_null(s->node); /* cluster-wide: the first node runs it */
	assert_string_equal(json_get_string(s->params, "host"), "registry.home.arpa");
	assert_string_equal(json_get_string(s->params, "image"), "docker.io/library/registry:2.8.3");
	assert_string_equal(json_get_string(s->params, "trust"), "cluster-ca");
	assert_int_equal(json_object_get_int64(json_object_object_get(s->params, "size")), 50LL << 30);
	/* every K3s VM with its unit; the first server seeds */
	a = json_get_array(s->params, "vms");
	assert_int_equal(json_object_array_length(a), 3);
	assert_string_equal(json_get_string(json_object_array_get_idx(a, 0), "vm"), "server-01");
	assert_string_equal(json_get_string(json_object_array_get_idx(a, 2), "unit"), "k3s");
	assert_string_equal(json_get_string(s->params, "seed_vm"), "server-01");
	a = json_get_array(s->params, "seed");
	assert_int_equal(json_object_array_length(a), 2);
	o = json_object_array_get_idx(a, 1);
	assert_string_equal(json_get_string(o, "asset"), "nginx-image");
	assert_string_equal(json_get_string(o, "path"), "/var/lib/devopslab/registry-seed/nginx-1.27.3.tar");
	/* the nodes resolve the zone through both DNS VMs */
	o = json_get_object(s->params, "dns");
	assert_string_equal(json_get_string(o, "zone"), "home.arpa");
	assert_string_equal(str_at(json_get_array(o, "servers"), 0), "10.0.10.41");
	assert_string_equal(str_at(json_get_array(o, "servers"), 1), "10.0.10.42");
	/* after the routes, which serve it */
	for (size_t i = 0; i < p->n_steps; i++) {
		if (streq(p->steps[i].id, "cluster/edge/routes"))
			at_routes = i;
		if (streq(p->steps[i].id, "cluster/registry"))
			at_registry = i;
	}
	assert_true(at_routes < at_registry);
	a = json_get_array(plan_find_step(p, "cluster/edge/routes")->params, "apps");
	assert_int_equal(json_object_array_length(a), 1);
	o = json_object_array_get_idx(a, 0);
	assert_string_equal(json_get_string(o, "namespace"), "registry");
	assert_string_equal(json_get_string(o, "service"), "registry");
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "port")), 5000);
	s = plan_find_step(p, "cluster/verify");
	assert_non_null(json_get_object(s->params, "registry"));
	plan_free(p);
	manifest_free(m);
}

static void test_render(void **state)
{
	struct manifest *m = load(small);
	struct plan *p = NULL;
	struct json_object *o = NULL, *steps;
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	(void)state;
	assert_int_equal(plan_build(m, "n2", &p), 0);
	f = open_memstream(&text, &size);
	assert_non_null(f);
	assert_int_equal(plan_print_text(f, p), 0);
	fclose(f);
	assert_non_null(strstr(text, "Plan for cluster lab, node n2: 18 steps\n\ninstall on n2\n"));
	assert_non_null(strstr(text, "      password: <secret root_password>\n"));
	assert_non_null(strstr(text, "        - number: 2, name: EFI system, type: esp, size_bytes: 1073741824 (1 GiB)\n"));
	assert_non_null(strstr(text, "\nfirstboot on n2\n  17. Joining cluster lab\n      id: node/n2/cluster/join (cluster-join)\n"));
	free(text);
	assert_int_equal(plan_to_json(p, &o), 0);
	assert_string_equal(json_get_string(o, "node"), "n2");
	steps = json_get_array(o, "steps");
	assert_int_equal(json_object_array_length(steps), 18);
	assert_string_equal(json_get_string(json_object_array_get_idx(steps, 16), "kind"), "cluster-join");
	json_object_put(o);
	plan_free(p);
	manifest_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_optional_sections),
		cmocka_unit_test(test_typed_refs),
		cmocka_unit_test(test_node_filter),
		cmocka_unit_test(test_hash_follows_params),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_guest_params),
		cmocka_unit_test(test_k3s_params),
		cmocka_unit_test(test_k3s_vip),
		cmocka_unit_test(test_gitops),
		cmocka_unit_test(test_monitoring),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_logs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
