/* SPDX-License-Identifier: MIT */
/*
 * plan-build.c — from a manifest to the ordered list of steps.
 *
 * The order is the bring-up order: each node's install phase, then first
 * boot: each node's part of forming the cluster (the `first` node creates
 * it, the others join in manifest order; each installs its certificate and
 * waits for quorum); then, run by the first node, storage, templates, VMs,
 * K3s, DNS, the edge, the lab's applications in K3s (plan-apps.c) and a
 * final verification. The builder's helpers are plan-builder.c's.
 * docs/plan.md lists every step with its id and parameters; keep it in step.
 *
 * Parameters are what the step is asked to do, in full, because they are
 * both printed by `plan` and hashed for the journal: a step whose inputs
 * change is looked at again. Secrets appear only by name ({"secret": N}).
 * Sizes are integers in bytes under keys ending in "_bytes" and in the
 * per-node map "bytes" of storage steps; VM memory is
 * MiB ("memory_mib") as in Proxmox.
 */
#include "plan.h"

#include <ctype.h>
#include <stdarg.h>

#include "json-util.h"
#include "plan-builder.h"
#include "plan-internal.h"
#include "manifest/seed-id.h"
#include "parse.h"

/* The layout the Proxmox VE installer makes, which the disk steps are asked
 * to reproduce: BIOS boot partition, EFI system partition, one LVM PV. */
#define BIOS_BOOT_BYTES (1ull << 20)
#define ESP_BYTES (1ull << 30)
#define PVE_VG "pve"
#define K3S_API_PORT 6443
#define EDGE_PVE_PORT 8006         /* pveproxy: the Proxmox web UI and API */
#define EDGE_TECHNITIUM_PORT 53443 /* Technitium's console over HTTPS (TN_HTTPS_PORT, dns/technitium.h) */
/* The interface kube-vip announces the API VIP on: the name the guests'
 * network config gives every VM's one NIC (guests' CLOUDINIT_IFNAME). */
#define K3S_VIP_INTERFACE "eth0"
#define FIRSTBOOT_UNIT "devopslab-firstboot.service"

static const char *wipe_name(enum mf_wipe w)
{
	static const char *const names[] = {
		[MF_WIPE_NEVER] = "never",
		[MF_WIPE_DEVOPSLAB] = "devopslab",
		[MF_WIPE_ALWAYS] = "always",
	};
	return (unsigned)w < ELEMENTSOF(names) ? names[w] : "?";
}

static const char *seed_of(const struct manifest *m)
{
	return m->cluster.seed ? m->cluster.seed : m->cluster.name;
}

/* ---- install phase, per node -------------------------------------------- */

static void add_identify(struct builder *b, const struct mf_node *n)
{
	struct json_object *p = pb_obj(b);
	char title[STEP_TITLE_MAX], mac[18];
	struct step *s;

	pb_put_str(b, p, "name", n->name);
	if (n->has_mac)
		pb_put_str(b, p, "mac", mac_format(n->mac, mac));
	else
		pb_put(b, p, "mac", NULL);
	pb_put_str(b, p, "serial", n->serial);
	pb_put_str(b, p, "product_uuid", n->product_uuid);
	pb_bfmt(b, title, sizeof(title), "Identifying this machine as %s", n->name);
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_NODE_IDENTIFY, n->name, p, title, "node/%s/identify", n->name);
	if (s)
		s->mf_node = n;
}

static void add_preflight(struct builder *b, const struct mf_node *n)
{
	struct json_object *p = pb_obj(b), *checks = pb_arr(b);
	struct step *s;

	static const struct {
		const char *name;
		unsigned waive;
	} all[] = {
		/* the checks of preflight.c, by the names nodes[].preflight.waive uses */
		{ "virtualization", MF_WAIVE_VIRTUALIZATION },
		{ "memory", MF_WAIVE_MEMORY },
		{ "smart", MF_WAIVE_SMART },
		{ "link", MF_WAIVE_LINK },
	};
	struct json_object *waived = pb_arr(b);

	for (size_t i = 0; i < ELEMENTSOF(all); i++)
		pb_push(b, n->preflight_waive & all[i].waive ? waived : checks, pb_str(b, all[i].name));
	pb_put(b, p, "checks", checks);
	pb_put(b, p, "waived", waived);
	if (n->min_memory)
		pb_put_u64(b, p, "min_memory_bytes", n->min_memory);
	else
		pb_put(b, p, "min_memory_bytes", NULL);
	pb_put_str(b, p, "nic", n->nic);
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_PREFLIGHT, n->name, p, "Running pre-flight checks", "node/%s/preflight",
		   n->name);
	if (s)
		s->mf_node = n;
}

static void add_disk_select(struct builder *b, const struct mf_node *n)
{
	const struct mf_disk_rules *d = &n->disk;
	struct json_object *p = pb_obj(b);
	struct step *s;

	pb_put_str(b, p, "by_id", d->by_id);
	pb_put_str(b, p, "serial", d->serial);
	pb_put_str(b, p, "model", d->model);
	pb_put_str(b, p, "transport", d->transport);
	if (d->min_size)
		pb_put_u64(b, p, "min_size_bytes", d->min_size);
	else
		pb_put(b, p, "min_size_bytes", NULL);
	if (d->max_size)
		pb_put_u64(b, p, "max_size_bytes", d->max_size);
	else
		pb_put(b, p, "max_size_bytes", NULL);
	pb_put_bool(b, p, "largest_nvme", d->largest_nvme);
	pb_put_str(b, p, "wipe", wipe_name(d->wipe));
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_DISK_SELECT, n->name, p, "Selecting the target disk",
		   "node/%s/disk/select", n->name);
	if (s)
		s->mf_node = n;
}

static struct json_object *partition(struct builder *b, unsigned number, const char *name, const char *type,
				     uint64_t size)
{
	struct json_object *p = pb_obj(b);

	pb_put_u64(b, p, "number", number);
	pb_put_str(b, p, "name", name);
	pb_put_str(b, p, "type", type);
	if (size)
		pb_put_u64(b, p, "size_bytes", size);
	else
		pb_put(b, p, "size_bytes", NULL); /* the rest of hdsize */
	return p;
}

static void add_disk_partition(struct builder *b, const struct mf_node *n)
{
	struct json_object *p = pb_obj(b), *parts = pb_arr(b);
	struct step *s;

	pb_put_str(b, p, "label", "gpt");
	pb_put_str(b, p, "seed", seed_of(b->m));
	pb_put_size_opt(b, p, "hdsize_bytes", &b->m->proxmox.storage.hdsize);
	pb_push(b, parts, partition(b, 1, "BIOS boot", "bios-boot", BIOS_BOOT_BYTES));
	pb_push(b, parts, partition(b, 2, "EFI system", "esp", ESP_BYTES));
	pb_push(b, parts, partition(b, 3, PVE_VG, "lvm", 0));
	pb_put(b, p, "partitions", parts);
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_DISK_PARTITION, n->name, p, "Partitioning the target disk (GPT)",
		   "node/%s/disk/partition", n->name);
	if (s)
		s->mf_node = n;
}

static struct json_object *volume(struct builder *b, const char *name, const char *type)
{
	struct json_object *v = pb_obj(b);

	pb_put_str(b, v, "name", name);
	pb_put_str(b, v, "type", type);
	return v;
}

static void add_disk_lvm(struct builder *b, const struct mf_node *n)
{
	const struct mf_storage *st = &b->m->proxmox.storage;
	struct json_object *p = pb_obj(b), *lvs = pb_arr(b);
	char title[STEP_TITLE_MAX];
	struct step *s;

	pb_put_str(b, p, "vg", PVE_VG);
	pb_put_u64(b, p, "pv_partition", 3);
	pb_put_size_opt(b, p, "swapsize_bytes", &st->swapsize);
	pb_put_size_opt(b, p, "maxroot_bytes", &st->maxroot);
	pb_put_size_opt(b, p, "minfree_bytes", &st->minfree);
	pb_put_size_opt(b, p, "maxvz_bytes", &st->maxvz);
	pb_push(b, lvs, volume(b, "swap", "linear"));
	pb_push(b, lvs, volume(b, "root", "linear"));
	pb_push(b, lvs, volume(b, "data", "thin-pool"));
	pb_put(b, p, "volumes", lvs);
	pb_bfmt(b, title, sizeof(title), "Creating LVM volume group %s", PVE_VG);
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_DISK_LVM, n->name, p, title, "node/%s/disk/lvm", n->name);
	if (s)
		s->mf_node = n;
}

static struct json_object *filesystem(struct builder *b, const char *device, const char *type, const char *mount)
{
	struct json_object *f = pb_obj(b);

	pb_put_str(b, f, "device", device);
	pb_put_str(b, f, "type", type);
	pb_put_str(b, f, "mount", mount);
	return f;
}

static void add_disk_filesystems(struct builder *b, const struct mf_node *n)
{
	struct json_object *p = pb_obj(b), *fs = pb_arr(b);
	struct step *s;

	pb_put_str(b, p, "seed", seed_of(b->m));
	pb_push(b, fs, filesystem(b, "partition 2", "vfat", "/boot/efi"));
	pb_push(b, fs, filesystem(b, PVE_VG "/root", "ext4", "/"));
	pb_push(b, fs, filesystem(b, PVE_VG "/swap", "swap", NULL));
	pb_put(b, p, "filesystems", fs);
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_DISK_FILESYSTEMS, n->name, p, "Creating filesystems",
		   "node/%s/disk/filesystems", n->name);
	if (s)
		s->mf_node = n;
}

static void add_rootfs(struct builder *b, const struct mf_node *n)
{
	const struct mf_asset *a = manifest_find_asset(b->m, b->m->proxmox.rootfs);
	struct json_object *p = pb_obj(b);
	struct step *s;

	pb_put_str(b, p, "asset", b->m->proxmox.rootfs);
	pb_put_str(b, p, "file", a ? a->file : NULL);
	pb_put_str(b, p, "target", "/");
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_ROOTFS_EXTRACT, n->name, p, "Extracting the Proxmox VE root filesystem",
		   "node/%s/rootfs", n->name);
	if (s)
		s->mf_node = n;
}

static void fqdn(struct builder *b, const char *name, char *buf, size_t size)
{
	if (b->m->cluster.domain)
		pb_bfmt(b, buf, size, "%s.%s", name, b->m->cluster.domain);
	else
		pb_bfmt(b, buf, size, "%s", name);
}

/* The file systems disk-filesystems makes, by the UUIDs it gives them
 * (seed-id.h: the same seed, node and purposes), so fstab needs no probing. */
static void add_fstab(struct builder *b, const struct mf_node *n)
{
	const char *seed = seed_of(b->m);
	char root[SEED_UUID_STR], swap[SEED_UUID_STR], esp[9], esp_uuid[10];
	struct json_object *p = pb_obj(b);

	if (b->error)
		return;
	if (seed_id_uuid(seed, n->name, "fs:root", root) < 0 || seed_id_uuid(seed, n->name, "fs:swap", swap) < 0 ||
	    seed_id_vfat(seed, n->name, "fs:esp", esp) < 0) {
		b->error = -ENOMEM;
		return;
	}
	/* blkid and /dev/disk/by-uuid show a FAT serial as XXXX-XXXX, upper case */
	for (size_t i = 0; i < 8; i++)
		esp[i] = (char)toupper((unsigned char)esp[i]);
	snprintf(esp_uuid, sizeof(esp_uuid), "%.4s-%.4s", esp, esp + 4);
	pb_put_str(b, p, "root_uuid", root);
	pb_put_str(b, p, "esp_uuid", esp_uuid);
	pb_put_str(b, p, "swap_uuid", swap);
	pb_add(b, STEP_PHASE_INSTALL, STEP_CONFIG_FSTAB, n->name, p, "Writing /etc/fstab", "node/%s/config/fstab", n->name);
}

static void add_config(struct builder *b, const struct mf_node *n)
{
	const struct manifest *m = b->m;
	struct json_object *p, *a, *dns;
	char title[STEP_TITLE_MAX], name[320], mac[18];
	struct step *s[6] = {};

	add_fstab(b, n);
	p = pb_obj(b);
	fqdn(b, n->name, name, sizeof(name));
	pb_put_str(b, p, "hostname", n->name);
	pb_put_str(b, p, "fqdn", name);
	pb_bfmt(b, title, sizeof(title), "Setting the host name to %s", n->name);
	s[0] = pb_add(b, STEP_PHASE_INSTALL, STEP_CONFIG_HOSTNAME, n->name, p, title, "node/%s/config/hostname", n->name);

	p = pb_obj(b);
	a = pb_arr(b);
	for (size_t i = 0; i < m->n_nodes; i++) {
		struct json_object *e = pb_obj(b);

		fqdn(b, m->nodes[i].name, name, sizeof(name));
		pb_put_ip(b, e, "ip", m->nodes[i].ip);
		pb_put_str(b, e, "fqdn", name);
		pb_put_str(b, e, "name", m->nodes[i].name);
		pb_push(b, a, e);
	}
	pb_put(b, p, "entries", a);
	s[1] = pb_add(b, STEP_PHASE_INSTALL, STEP_CONFIG_HOSTS, n->name, p, "Writing /etc/hosts", "node/%s/config/hosts",
		      n->name);

	p = pb_obj(b);
	dns = pb_arr(b);
	pb_put_str(b, p, "bridge", m->network.bridge);
	/* nodes[].nic, else the NIC with the node's mac; neither: the install
	 * fills in the NIC it finds (cmd-install.c, choose_nic()) */
	if (!n->nic && n->has_mac)
		pb_put_str(b, p, "nic", mac_format(n->mac, mac));
	else
		pb_put_str(b, p, "nic", n->nic);
	pb_put_cidr(b, p, "address", n->ip, m->network.subnet.prefix);
	pb_put_ip(b, p, "gateway", m->network.gateway);
	for (size_t i = 0; i < m->network.n_dns; i++) {
		char ip[16];

		pb_fmt_ip(m->network.dns[i], ip);
		pb_push(b, dns, pb_str(b, ip));
	}
	pb_put(b, p, "dns", dns);
	if (m->network.vlan) /* 0: untagged */
		pb_put_u64(b, p, "vlan", m->network.vlan);
	else
		pb_put(b, p, "vlan", NULL);
	if (m->network.mtu) /* 0: the interface's default */
		pb_put_u64(b, p, "mtu", m->network.mtu);
	else
		pb_put(b, p, "mtu", NULL);
	pb_bfmt(b, title, sizeof(title), "Configuring the network (%s)", m->network.bridge ? m->network.bridge : "?");
	s[2] = pb_add(b, STEP_PHASE_INSTALL, STEP_CONFIG_NETWORK, n->name, p, title, "node/%s/config/network", n->name);

	p = pb_obj(b);
	pb_put_str(b, p, "user", "root");
	pb_put_secret(b, p, "password", &m->proxmox.root_password);
	pb_put_strv(b, p, "ssh_keys", m->proxmox.ssh_keys, m->proxmox.n_ssh_keys);
	s[3] = pb_add(b, STEP_PHASE_INSTALL, STEP_CONFIG_USERS, n->name, p, "Setting root's password and SSH keys",
		      "node/%s/config/users", n->name);

	p = pb_obj(b);
	pb_put_str(b, p, "timezone", m->cluster.timezone);
	pb_put_str(b, p, "keyboard", m->cluster.keyboard);
	pb_bfmt(b, title, sizeof(title), "Setting the time zone to %s", m->cluster.timezone ? m->cluster.timezone : "?");
	s[4] = pb_add(b, STEP_PHASE_INSTALL, STEP_CONFIG_TIMEZONE, n->name, p, title, "node/%s/config/timezone", n->name);
	s[5] = pb_add_config_logs(b, n);

	for (size_t i = 0; i < ELEMENTSOF(s); i++)
		if (s[i])
			s[i]->mf_node = n;
}

static void add_boot(struct builder *b, const struct mf_node *n)
{
	struct json_object *p, *targets;
	char root[SEED_UUID_STR];
	struct step *s;

	if (b->error)
		return;
	/* the root file system's UUID, as add_fstab(): grub.cfg and the ESP's
	 * stub find /boot/grub by it */
	if (seed_id_uuid(seed_of(b->m), n->name, "fs:root", root) < 0) {
		b->error = -ENOMEM;
		return;
	}
	p = pb_obj(b);
	targets = pb_arr(b);
	pb_put_str(b, p, "loader", "grub");
	pb_push(b, targets, pb_str(b, "x86_64-efi"));
	pb_push(b, targets, pb_str(b, "i386-pc"));
	pb_put(b, p, "targets", targets);
	pb_put_u64(b, p, "esp_partition", 2);
	pb_put_str(b, p, "root_uuid", root);
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_BOOTLOADER, n->name, p, "Installing the boot loader",
		   "node/%s/bootloader", n->name);
	if (s)
		s->mf_node = n;

	p = pb_obj(b);
	pb_put_str(b, p, "unit", FIRSTBOOT_UNIT);
	pb_put_str(b, p, "journal", "/var/lib/devopslab/journal");
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_FIRSTBOOT_INSTALL, n->name, p, "Installing the first-boot service",
		   "node/%s/firstboot", n->name);
	if (s)
		s->mf_node = n;
}

static void add_install(struct builder *b, const struct mf_node *n)
{
	struct json_object *p = pb_obj(b);
	struct step *s;

	pb_put_str(b, p, "cluster", b->m->cluster.name);
	pb_put_u64(b, p, "manifest_version", b->m->version);
	s = pb_add(b, STEP_PHASE_INSTALL, STEP_BUNDLE_VERIFY, n->name, p, "Verifying the bundle signature",
		   "node/%s/bundle/verify", n->name);
	if (s)
		s->mf_node = n;
	add_identify(b, n);
	add_preflight(b, n);
	add_disk_select(b, n);
	add_disk_partition(b, n);
	add_disk_lvm(b, n);
	add_disk_filesystems(b, n);
	add_rootfs(b, n);
	add_config(b, n);
	add_boot(b, n);
}

/* ---- first boot: cluster ------------------------------------------------ */

/* The CA that signs the nodes' API certificates is the cluster CA whose key
 * the bundle carries as a secret (docs/manifest.md, docs/pve.md). */
#define CLUSTER_CA_SECRET MANIFEST_SECRET_CA_KEY

static bool has_secret(const struct manifest *m, const char *name)
{
	for (size_t i = 0; i < m->secrets.n_names; i++)
		if (streq(m->secrets.names[i], name))
			return true;
	return false;
}

static void add_node_certs(struct builder *b, const struct mf_node *n)
{
	struct json_object *p, *ref;
	char name[320];
	struct step *s;

	if (!has_secret(b->m, CLUSTER_CA_SECRET))
		return;
	p = pb_obj(b);
	ref = pb_obj(b);
	fqdn(b, n->name, name, sizeof(name));
	pb_put_str(b, p, "node", n->name);
	pb_put_str(b, p, "fqdn", name);
	pb_put_ip(b, p, "ip", n->ip);
	pb_put_str(b, ref, "secret", CLUSTER_CA_SECRET);
	pb_put(b, p, "ca_key", ref);
	s = pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_CLUSTER_CERTS, n->name, p,
		   "Installing the node certificate signed by the cluster CA", "node/%s/cluster/certs", n->name);
	if (s)
		s->mf_node = n;
}

static void add_quorum(struct builder *b, const struct mf_node *n)
{
	struct json_object *p = pb_obj(b), *a = pb_arr(b);
	char title[STEP_TITLE_MAX];
	struct step *s;

	for (size_t i = 0; i < b->m->n_nodes; i++)
		pb_push(b, a, pb_str(b, b->m->nodes[i].name));
	pb_put(b, p, "nodes", a);
	pb_put_u64(b, p, "expected_votes", b->m->n_nodes);
	pb_bfmt(b, title, sizeof(title), "Waiting for quorum (%zu votes)", b->m->n_nodes);
	s = pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_CLUSTER_QUORUM, n->name, p, title, "node/%s/cluster/quorum", n->name);
	if (s)
		s->mf_node = n;
}

/*
 * Each node's own first boot, as `firstboot` runs it (docs/pve.md):
 *   first:   certs, create, quorum
 *   members: join, certs, quorum  (a join replaces the node's certificates,
 *            so members install theirs afterwards)
 * Listed node by node, the first node first.
 */
static void add_cluster_formation(struct builder *b)
{
	const struct manifest *m = b->m;
	const struct mf_node *f = b->first;
	struct json_object *p = pb_obj(b);
	char title[STEP_TITLE_MAX];
	struct step *s;

	add_node_certs(b, f);
	pb_put_str(b, p, "cluster", m->cluster.name);
	pb_put_ip(b, p, "link0", f->ip);
	pb_bfmt(b, title, sizeof(title), "Creating Proxmox cluster %s", m->cluster.name);
	s = pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_CLUSTER_CREATE, f->name, p, title, "node/%s/cluster/create", f->name);
	if (s)
		s->mf_node = f;
	add_quorum(b, f);

	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mf_node *n = &m->nodes[i];

		if (n == f)
			continue;
		p = pb_obj(b);
		pb_put_str(b, p, "cluster", m->cluster.name);
		pb_put_str(b, p, "via", f->name);
		pb_put_ip(b, p, "via_ip", f->ip);
		pb_put_ip(b, p, "link0", n->ip);
		pb_bfmt(b, title, sizeof(title), "Joining cluster %s", m->cluster.name);
		s = pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_CLUSTER_JOIN, n->name, p, title, "node/%s/cluster/join", n->name);
		if (s)
			s->mf_node = n;
		add_node_certs(b, n);
		add_quorum(b, n);
	}
}

static bool seen_storage(const struct plan *p, const char *name)
{
	char id[STEP_ID_MAX + 1];

	snprintf(id, sizeof(id), "cluster/storage/%s", name);
	return plan_find_step(p, id) != NULL;
}

static size_t node_index(const struct manifest *m, const char *name)
{
	for (size_t i = 0; name && i < m->n_nodes; i++)
		if (streq_ptr(m->nodes[i].name, name))
			return i;
	return SIZE_MAX;
}

/* What storage `name` must hold on each node (0 = the node does not use
 * it; used[] says whether it does): the virtual size of every VM disk on
 * it (a clone is resized to disk.size). A template copy marks its node as
 * a user, but adds 0 bytes: its image's virtual size is inside the image
 * file, which the plan does not read (docs/plan.md). */
static int storage_needs(const struct manifest *m, const char *name, bool *used, uint64_t *need)
{
	for (size_t i = 0; i < m->n_templates; i++) {
		const struct mf_template *t = &m->templates[i];

		for (size_t j = 0; streq_ptr(t->storage, name) && j < t->n_target_nodes; j++) {
			size_t k = node_index(m, t->target_nodes[j]);

			if (k == SIZE_MAX)
				return plan_fail(-EINVAL, "template \"%s\": no node \"%s\"", t->name, t->target_nodes[j]);
			used[k] = true;
		}
	}
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct mf_vm_group *g = &m->vms[i];

		for (unsigned v = 0; streq_ptr(g->disk.storage, name) && g->n_target_nodes && v < g->count; v++) {
			size_t k = node_index(m, g->target_nodes[v % g->n_target_nodes]);

			if (k == SIZE_MAX)
				return plan_fail(-EINVAL, "VM group \"%s\": no node \"%s\"", g->id,
						 g->target_nodes[v % g->n_target_nodes]);
			if (need[k] > UINT64_MAX - g->disk.size)
				return plan_fail(-EOVERFLOW, "storage \"%s\": the disks on node \"%s\" add up past 2^64 bytes",
						 name, m->nodes[k].name);
			used[k] = true;
			need[k] += g->disk.size;
		}
	}
	return 0;
}

static void add_storage_one(struct builder *b, const char *name)
{
	const struct manifest *m = b->m;
	_cleanup_free_ bool *used = NULL;
	_cleanup_free_ uint64_t *need = NULL;
	struct json_object *p, *a, *bytes;
	char title[STEP_TITLE_MAX];
	const char *last = NULL;
	size_t n = 0;
	int r;

	if (!name || b->error < 0 || seen_storage(b->plan, name))
		return;
	used = calloc(m->n_nodes ? m->n_nodes : 1, sizeof(*used));
	need = calloc(m->n_nodes ? m->n_nodes : 1, sizeof(*need));
	if (!used || !need) {
		b->error = -ENOMEM;
		return;
	}
	r = storage_needs(m, name, used, need);
	if (r < 0) {
		b->error = r;
		return;
	}
	p = pb_obj(b);
	a = pb_arr(b);
	bytes = pb_obj(b);
	pb_put_str(b, p, "storage", name);
	for (size_t i = 0; i < m->n_nodes; i++) {
		if (!used[i])
			continue;
		pb_push(b, a, pb_str(b, m->nodes[i].name));
		pb_put_u64(b, bytes, m->nodes[i].name, need[i]);
		last = m->nodes[i].name;
		n++;
	}
	pb_put(b, p, "nodes", a);
	pb_put(b, p, "bytes", bytes);
	if (n == m->n_nodes)
		pb_bfmt(b, title, sizeof(title), "Checking storage %s on every node", name);
	else if (n == 1)
		pb_bfmt(b, title, sizeof(title), "Checking storage %s on %s", name, last);
	else
		pb_bfmt(b, title, sizeof(title), "Checking storage %s on %zu nodes", name, n);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_STORAGE, NULL, p, title, "cluster/storage/%s", name);
}

/* Every storage a template or VM disk uses, in order of first use. */
static void add_storage(struct builder *b)
{
	for (size_t i = 0; i < b->m->n_templates; i++)
		add_storage_one(b, b->m->templates[i].storage);
	for (size_t i = 0; i < b->m->n_vms; i++)
		add_storage_one(b, b->m->vms[i].disk.storage);
}

/* One step per copy of each template: the copy on target_nodes[j] has
 * VMID vmid + j. No digest of the image: the step takes it from the
 * verified bundle by `file`, as rootfs-extract does. */
static void add_templates(struct builder *b)
{
	for (size_t i = 0; i < b->m->n_templates; i++) {
		const struct mf_template *t = &b->m->templates[i];
		const struct mf_asset *a = manifest_find_asset(b->m, t->image);

		for (size_t j = 0; j < t->n_target_nodes; j++) {
			const char *node = t->target_nodes[j];
			struct json_object *p = pb_obj(b);
			char title[STEP_TITLE_MAX];
			struct step *s;

			pb_put_u64(b, p, "vmid", (uint64_t)t->vmid + j);
			pb_put_str(b, p, "name", t->name);
			pb_put_str(b, p, "node", node);
			pb_put_str(b, p, "storage", t->storage);
			pb_put_str(b, p, "image", t->image);
			pb_put_str(b, p, "file", a ? a->file : NULL);
			pb_bfmt(b, title, sizeof(title), "Creating template %s on %s", t->name, node);
			s = pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_TEMPLATE, NULL, p, title, "cluster/template/%s/%s", t->name,
				   node);
			if (s)
				s->mf_template = t;
		}
	}
}

static void push_file(struct builder *b, struct json_object *a, const char *asset_name, const char *path,
		      unsigned mode)
{
	const struct mf_asset *asset = manifest_find_asset(b->m, asset_name);
	struct json_object *o = pb_obj(b);
	char octal[8];

	snprintf(octal, sizeof(octal), "%04o", mode & 07777u);
	pb_put_str(b, o, "asset", asset_name);
	pb_put_str(b, o, "file", asset ? asset->file : NULL);
	pb_put_str(b, o, "path", path);
	pb_put_str(b, o, "mode", octal);
	pb_push(b, a, o);
}

/* vms[].files: what to copy into the guest; then, in a K3s server or agent
 * group, the K3s payload (manifest_k3s_payload(): the K3s VMs have no
 * internet, so the binary, images and install script travel the same
 * way, and on the servers kube-vip's image); in the DNS VMs' group,
 * Technitium and its runtime (manifest_dns_payload()). No digest: the step takes
 * each from the verified bundle by `file`, as rootfs-extract does. */
static struct json_object *vm_files(struct builder *b, const struct mf_vm_group *g)
{
	struct json_object *a = pb_arr(b);
	struct mf_payload_file k3s[MANIFEST_K3S_PAYLOAD_MAX];
	size_t n = manifest_k3s_payload(b->m, g, k3s);

	struct mf_payload_file dns[MANIFEST_DNS_PAYLOAD_MAX];
	size_t n_dns = manifest_dns_payload(b->m, g, dns);

	for (size_t i = 0; i < g->n_files; i++)
		push_file(b, a, g->files[i].asset, g->files[i].path, g->files[i].mode);
	for (size_t i = 0; i < n; i++)
		push_file(b, a, k3s[i].asset, k3s[i].path, k3s[i].mode);
	for (size_t i = 0; i < n_dns; i++)
		push_file(b, a, dns[i].asset, dns[i].path, dns[i].mode);
	return a;
}

static bool group_listed(char *const *v, size_t n, const char *id)
{
	for (size_t i = 0; id && i < n; i++)
		if (streq_ptr(v[i], id))
			return true;
	return false;
}

/* Does the group run K3s servers with embedded etcd? */
static bool etcd_member(const struct manifest *m, const struct mf_vm_group *g)
{
	return m->k3s.present && m->k3s.ha && group_listed(m->k3s.servers, m->k3s.n_servers, g->id);
}

static void add_vm(struct builder *b, const struct mf_vm *vm)
{
	const struct mf_vm_group *g = vm->group;
	const struct manifest *m = b->m;
	struct json_object *p, *disk, *net, *dns;
	char title[STEP_TITLE_MAX], mac[18];
	struct step *s;

	if (!vm->template_vmid) { /* validation rules it out */
		if (b->error >= 0)
			b->error = plan_fail(-EINVAL, "VM \"%s\": template \"%s\" has no copy on \"%s\"", vm->name,
					     g->clone, vm->target_node);
		return;
	}
	p = pb_obj(b);
	disk = pb_obj(b);
	net = pb_obj(b);
	dns = pb_arr(b);
	pb_put_u64(b, p, "vmid", vm->vmid);
	pb_put_str(b, p, "name", vm->name);
	pb_put_str(b, p, "node", vm->target_node);
	pb_put_str(b, p, "group", g->id);
	pb_put_str(b, p, "clone", g->clone);
	pb_put_u64(b, p, "template_vmid", vm->template_vmid);
	pb_put_bool(b, p, "full", g->full_clone);
	pb_put_u64(b, p, "cores", g->cores);
	pb_put_u64(b, p, "sockets", g->sockets);
	pb_put_u64(b, p, "memory_mib", g->memory);
	pb_put_bool(b, p, "agent", g->agent);
	pb_put_u64(b, disk, "size_bytes", g->disk.size);
	pb_put_str(b, disk, "type", g->disk.type);
	pb_put_str(b, disk, "storage", g->disk.storage);
	pb_put(b, p, "disk", disk);
	pb_put_str(b, net, "model", g->network.model);
	pb_put_str(b, net, "bridge", g->network.bridge);
	pb_put(b, p, "network", net);
	pb_put_str(b, p, "mac", mac_format(vm->mac, mac));
	pb_put_cidr(b, p, "ip", vm->ip, g->ipconfig0.prefix);
	pb_put_ip(b, p, "gateway", g->ipconfig0.gw);
	for (size_t i = 0; i < m->network.n_dns; i++) {
		char ip[16];

		pb_fmt_ip(m->network.dns[i], ip);
		pb_push(b, dns, pb_str(b, ip));
	}
	pb_put(b, p, "nameserver", dns);
	pb_put_str(b, p, "searchdomain", m->cluster.domain);
	pb_put_str(b, p, "ciuser", g->ciuser);
	pb_put_strv(b, p, "sshkeys", g->sshkeys, g->n_sshkeys);
	pb_put(b, p, "files", vm_files(b, g));
	/* A VM whose disks are gone (its node rebuilt) comes back from its
	 * newest backup when the backup storage has one, else is made anew.
	 * Never an etcd member: a stale disk would bring back a removed
	 * member with old data; the cluster's etcd holds it all. */
	if (m->backup.present && !etcd_member(m, g))
		pb_put_str(b, p, "restore_from", m->backup.storage);
	pb_bfmt(b, title, sizeof(title), "Creating VM %s", vm->name);
	s = pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_VM, NULL, p, title, "cluster/vm/%s", vm->name);
	if (s) {
		s->vm = *vm;
		s->has_vm = true;
	}
}

static void add_vms(struct builder *b)
{
	for (size_t i = 0; i < b->m->n_vms && b->error >= 0; i++)
		for (unsigned k = 0; k < b->m->vms[i].count && b->error >= 0; k++) {
			struct mf_vm vm;

			if (pb_expand(b, &b->m->vms[i], k, &vm) >= 0)
				add_vm(b, &vm);
		}
}

/* The Proxmox Backup Server storage backup.pbs describes, before the
 * templates and VMs: a lab rebuilt from scratch can restore from it. */
static void add_backup_storage(struct builder *b)
{
	const struct mf_backup *bk = &b->m->backup;
	struct json_object *p;
	char title[STEP_TITLE_MAX];

	if (!bk->present || !bk->pbs.present)
		return;
	p = pb_obj(b);
	pb_put_str(b, p, "storage", bk->storage);
	pb_put_str(b, p, "type", "pbs");
	pb_put_str(b, p, "server", bk->pbs.server);
	pb_put_str(b, p, "datastore", bk->pbs.datastore);
	pb_put_str(b, p, "username", bk->pbs.username);
	pb_put_secret(b, p, "password", &bk->pbs.password);
	if (bk->pbs.fingerprint)
		pb_put_str(b, p, "fingerprint", bk->pbs.fingerprint);
	if (bk->pbs.namespace)
		pb_put_str(b, p, "namespace", bk->pbs.namespace);
	if (bk->pbs.port)
		pb_put_u64(b, p, "port", bk->pbs.port);
	pb_put_str(b, p, "content", "backup");
	pb_bfmt(b, title, sizeof(title), "Adding the Proxmox Backup Server storage %s (datastore %s on %s)", bk->storage,
		bk->pbs.datastore, bk->pbs.server);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_BACKUP_STORAGE, NULL, p, title, "cluster/backup-storage/%s", bk->storage);
}

/* The backup job of every VM of the manifest (docs/operations.md). */
static int cmp_uint(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

static void add_backup(struct builder *b)
{
	static const char *const modes[] = { "snapshot", "suspend", "stop" };
	const struct mf_backup *bk = &b->m->backup;
	unsigned vmids[MANIFEST_MAX_VMS];
	char list[MANIFEST_MAX_VMS * 11 + 1] = "", prune[160] = "", title[STEP_TITLE_MAX];
	const struct {
		const char *name;
		uint64_t n;
	} keep[] = { { "keep-last", bk->keep.last },	     { "keep-daily", bk->keep.daily },
		     { "keep-weekly", bk->keep.weekly },     { "keep-monthly", bk->keep.monthly },
		     { "keep-yearly", bk->keep.yearly } };
	struct json_object *p;
	size_t n = 0, len = 0;

	if (!bk->present)
		return;
	for (size_t i = 0; i < b->m->n_vms && b->error >= 0; i++)
		for (unsigned k = 0; k < b->m->vms[i].count && n < ELEMENTSOF(vmids) && b->error >= 0; k++) {
			struct mf_vm vm;

			if (pb_expand(b, &b->m->vms[i], k, &vm) >= 0)
				vmids[n++] = vm.vmid;
		}
	qsort(vmids, n, sizeof(vmids[0]), cmp_uint);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%u", i ? "," : "", vmids[i]);
	len = 0;
	for (size_t i = 0; i < ELEMENTSOF(keep); i++)
		if (keep[i].n)
			len += (size_t)snprintf(prune + len, sizeof(prune) - len, "%s%s=%" PRIu64, len ? "," : "",
						keep[i].name, keep[i].n);
	p = pb_obj(b);
	pb_put_str(b, p, "id", MANIFEST_BACKUP_JOB);
	pb_put_str(b, p, "schedule", bk->schedule);
	pb_put_str(b, p, "storage", bk->storage);
	pb_put_str(b, p, "mode", modes[bk->mode]);
	pb_put_str(b, p, "compress", "zstd");
	pb_put_str(b, p, "vmid", list);
	pb_put_str(b, p, "prune-backups", prune);
	pb_bfmt(b, title, sizeof(title), "Scheduling the VMs' backups (%s, on %s)", bk->schedule, bk->storage);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_BACKUP_JOB, NULL, p, title, "cluster/backup/" MANIFEST_BACKUP_JOB);
}

/* ---- first boot: K3s, DNS, edge ----------------------------------------- */

/* What the first server's K3s deploys to serve api_vip: kube-vip, its
 * image from the payload (ref), announcing the address by ARP on the
 * VMs' NIC; NULL (JSON null) without api_vip. */
static struct json_object *kube_vip(struct builder *b)
{
	const struct mf_k3s *k = &b->m->k3s;
	struct json_object *o;

	if (!k->api_vip || !k->kube_vip.ref)
		return NULL;
	o = pb_obj(b);
	pb_put_str(b, o, "ref", k->kube_vip.ref);
	pb_put_str(b, o, "interface", K3S_VIP_INTERFACE);
	pb_put_ip(b, o, "address", k->api_vip);
	return o;
}

static void add_k3s_node(struct builder *b, enum step_kind kind, const struct mf_vm *vm, const struct mf_vm *init)
{
	const struct mf_k3s *k = &b->m->k3s;
	struct json_object *p = pb_obj(b), *san;
	char title[STEP_TITLE_MAX], url[48], ip[16];
	const char *role = kind == STEP_K3S_AGENT ? "agent" : "server";
	struct step *s;

	pb_put_str(b, p, "vm", vm->name);
	pb_put_ip(b, p, "ip", vm->ip);
	pb_put_str(b, p, "role", role);
	pb_put_str(b, p, "version", k->version);
	pb_put_str(b, p, "node_name", vm->name);
	pb_put_cidr(b, p, "cluster_cidr", k->cluster_cidr.addr, k->cluster_cidr.prefix);
	pb_put_cidr(b, p, "service_cidr", k->service_cidr.addr, k->service_cidr.prefix);
	pb_put_strv(b, p, "disable", k->disable, k->n_disable);
	pb_put_ip(b, p, "api_vip", k->api_vip);
	if (kind != STEP_K3S_AGENT) {
		/* The names the API server's certificate carries besides its
		 * defaults: the virtual address first, then the VM's own. */
		san = pb_arr(b);
		if (k->api_vip) {
			pb_fmt_ip(k->api_vip, ip);
			pb_push(b, san, pb_str(b, ip));
		}
		pb_fmt_ip(vm->ip, ip);
		pb_push(b, san, pb_str(b, ip));
		pb_put(b, p, "tls_san", san);
	}
	if (kind == STEP_K3S_SERVER_INIT) {
		pb_put_str(b, p, "datastore", k->ha ? "embedded-etcd" : "sqlite");
		pb_put_bool(b, p, "cluster_init", k->ha);
		pb_put(b, p, "kube_vip", kube_vip(b));
	} else {
		/* through the VIP when there is one, so that members and the
		 * cluster outlive the first server */
		pb_fmt_ip(k->api_vip ? k->api_vip : init->ip, ip);
		pb_bfmt(b, url, sizeof(url), "https://%s:%d", ip, K3S_API_PORT);
		pb_put_str(b, p, "server", url);
	}
	pb_put_secret(b, p, "token", &k->token);
	pb_put_str(b, p, "airgap_binary", k->airgap.binary);
	pb_put_str(b, p, "airgap_images", k->airgap.images);
	pb_put_str(b, p, "install_script", k->airgap.install_script);
	if (kind == STEP_K3S_SERVER_INIT)
		pb_bfmt(b, title, sizeof(title), "Initialising K3s server %s", vm->name);
	else
		pb_bfmt(b, title, sizeof(title), "Joining K3s %s %s", role, vm->name);
	s = pb_add(b, STEP_PHASE_FIRSTBOOT, kind, NULL, p, title, "cluster/k3s/%s/%s", role, vm->name);
	if (s) {
		s->vm = *vm;
		s->has_vm = true;
	}
}

/* The first server rebuilt while the others run joins them instead of
 * initialising (docs/k3s.md, "A rebuilt first server"): through the
 * virtual address, else the second server. Only with embedded etcd: a
 * lone SQLite server's data is gone with it. */
static void add_k3s_rejoin(struct builder *b, size_t init_step, const struct mf_vm *second)
{
	const struct mf_k3s *k = &b->m->k3s;
	struct step *s = &b->plan->steps[init_step];
	char url[48], ip[16];

	if (!k->ha || (!k->api_vip && !second))
		return;
	pb_fmt_ip(k->api_vip ? k->api_vip : second->ip, ip);
	pb_bfmt(b, url, sizeof(url), "https://%s:%d", ip, K3S_API_PORT);
	pb_put_str(b, s->params, "rejoin", url);
	if (b->error >= 0 && step_hash_params(s) < 0)
		b->error = plan_fail(-ENOMEM, "cannot hash the K3s step's parameters");
}

static void add_k3s_groups(struct builder *b, char *const *ids, size_t n, bool servers, struct mf_vm *init,
			   bool *have_init)
{
	for (size_t i = 0; i < n && b->error >= 0; i++) {
		const struct mf_vm_group *g = manifest_find_vm_group(b->m, ids[i]);

		if (!g) {
			b->error = plan_fail(-EINVAL, "k3s: no VM group \"%s\"", ids[i]);
			return;
		}
		for (unsigned k = 0; k < g->count && b->error >= 0; k++) {
			struct mf_vm vm;

			if (pb_expand(b, g, k, &vm) < 0)
				return;
			if (servers && !*have_init) {
				*init = vm;
				*have_init = true;
				add_k3s_node(b, STEP_K3S_SERVER_INIT, &vm, NULL);
			} else
				add_k3s_node(b, servers ? STEP_K3S_SERVER_JOIN : STEP_K3S_AGENT, &vm, init);
		}
	}
}

/* The charts K3s installs, once every node has joined: their HelmCharts
 * go into the first server's auto-deploying manifests (the archives are
 * on every server already, from the vm steps' payload). The step is there
 * without charts too: it removes the ones a manifest has dropped. */
static void add_k3s_charts(struct builder *b, const struct mf_vm *init)
{
	const struct mf_k3s *k = &b->m->k3s;
	struct json_object *p, *a;
	struct step *s;

	if (b->error < 0)
		return;
	p = pb_obj(b);
	a = pb_arr(b);
	pb_put_str(b, p, "vm", init->name);
	for (size_t i = 0; i < k->n_charts; i++) {
		const struct mf_k3s_chart *c = &k->charts[i];
		struct json_object *o = pb_obj(b);
		char file[96];

		pb_put_str(b, o, "name", c->name);
		pb_put_str(b, o, "namespace", c->namespace ? c->namespace : "default");
		pb_put_str(b, o, "asset", c->chart);
		pb_bfmt(b, file, sizeof(file), "%s.tgz", c->name);
		pb_put_str(b, o, "archive", file);
		pb_put_str(b, o, "values", c->values);
		pb_push(b, a, o);
	}
	if (b->m->gitops.present)
		pb_push(b, a, pb_gitops_chart(b));
	if (b->m->monitoring.enabled)
		pb_push(b, a, pb_monitoring_chart(b));
	if (b->m->monitoring.enabled && b->m->monitoring.logs.enabled)
		pb_push(b, a, pb_logs_chart(b));
	pb_put(b, p, "charts", a);
	s = pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_K3S_CHARTS, NULL, p, "Installing the K3s charts", "cluster/k3s/charts");
	if (s) {
		s->vm = *init;
		s->has_vm = true;
	}
}

static void add_k3s(struct builder *b)
{
	const struct mf_k3s *k = &b->m->k3s;
	struct mf_vm init = {};
	bool have_init = false;

	if (!k->present)
		return;
	add_k3s_groups(b, k->servers, k->n_servers, true, &init, &have_init);
	if (!have_init && b->error >= 0) {
		b->error = plan_fail(-EINVAL, "k3s: no server VM");
		return;
	}
	if (b->error >= 0) {
		size_t first = b->plan->n_steps;
		const struct mf_vm *second = NULL;

		for (size_t i = 0; i < b->plan->n_steps; i++) {
			const struct step *s = &b->plan->steps[i];

			if (s->kind == STEP_K3S_SERVER_INIT)
				first = i;
			else if (s->kind == STEP_K3S_SERVER_JOIN && !second)
				second = &s->vm;
		}
		if (first < b->plan->n_steps)
			add_k3s_rejoin(b, first, second);
	}
	add_k3s_groups(b, k->agents, k->n_agents, false, &init, &have_init);
	add_k3s_charts(b, &init);
}

/* Each DNS server: Technitium installed (from the bundle, or already in
 * the image), its web console on HTTPS with a certificate of the cluster
 * CA, recursion for the LAN only, and the zone-transfer TSIG key when
 * there is a secondary (docs/dns.md). */
static void add_dns_server(struct builder *b, const struct mf_vm *vm, const char *role)
{
	const struct mf_dns *d = &b->m->dns;
	struct json_object *p = pb_obj(b), *acl = pb_arr(b);
	char title[STEP_TITLE_MAX], fqdn[320], cidr[24], ip[16];
	struct step *s;

	pb_bfmt(b, fqdn, sizeof(fqdn), "%s.%s", vm->name, d->zone);
	pb_fmt_ip(b->m->network.subnet.addr, ip);
	pb_bfmt(b, cidr, sizeof(cidr), "%s/%u", ip, b->m->network.subnet.prefix);
	pb_push(b, acl, pb_str(b, cidr));
	pb_put_str(b, p, "vm", vm->name);
	pb_put_ip(b, p, "ip", vm->ip);
	pb_put_str(b, p, "role", role);
	pb_put_str(b, p, "fqdn", fqdn);
	pb_put_str(b, p, "install", d->airgap.package ? "bundle" : "image");
	pb_put(b, p, "recursion_acl", acl);
	pb_put_str(b, p, "tsig_key", d->secondary ? MANIFEST_DNS_TSIG_KEY : NULL);
	pb_put_secret(b, p, "admin_password", &d->admin_password);
	pb_bfmt(b, title, sizeof(title), "Installing Technitium DNS on %s", vm->name);
	s = pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_DNS_SERVER, NULL, p, title, "cluster/dns/server/%s", vm->name);
	if (s) {
		s->vm = *vm;
		s->has_vm = true;
	}
}

static void add_record(struct builder *b, const char *name, const char *type, const char *value)
{
	const char *zone = b->m->dns.zone;
	const char *server = b->m->dns.primary;
	struct json_object *p = pb_obj(b);
	char title[STEP_TITLE_MAX], full[320];

	if (streq(name, "@"))
		pb_bfmt(b, full, sizeof(full), "%s", zone);
	else
		pb_bfmt(b, full, sizeof(full), "%s.%s", name, zone);
	pb_put_str(b, p, "zone", zone);
	pb_put_str(b, p, "server", server);
	pb_put_str(b, p, "name", full);
	pb_put_str(b, p, "type", type);
	pb_put_str(b, p, "value", value);
	pb_bfmt(b, title, sizeof(title), "Adding DNS record %s %s %s", full, type, value);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_DNS_RECORD, NULL, p, title, "cluster/dns/record/%s/%s", full, type);
}

static void add_dns_records(struct builder *b)
{
	const struct mf_dns *d = &b->m->dns;
	const char *hosts[] = { b->m->edge.proxmox_host, b->m->edge.dns_host, b->m->edge.dashboard_host };
	char ip[16];

	if (d->wildcard) {
		if (streq(d->wildcard, "edge")) {
			pb_fmt_ip(b->m->edge.ip, ip);
			add_record(b, "*", "A", ip);
		} else
			add_record(b, "*", "A", d->wildcard);
	}
	if (d->node_records) {
		for (size_t i = 0; i < b->m->n_nodes; i++) {
			pb_fmt_ip(b->m->nodes[i].ip, ip);
			add_record(b, b->m->nodes[i].name, "A", ip);
		}
		/* the VMs with a static address, group by group */
		for (size_t g = 0; g < b->m->n_vms; g++)
			for (unsigned i = 0; i < b->m->vms[g].count; i++) {
				struct mf_vm vm;

				if (manifest_vm_expand(&b->m->vms[g], i, &vm) < 0 || !vm.ip)
					continue;
				pb_fmt_ip(vm.ip, ip);
				add_record(b, vm.name, "A", ip);
			}
	}
	/* the web consoles at the edge (manifest-check: inside the zone) */
	for (size_t i = 0; d->node_records && b->m->edge.present && i < ELEMENTSOF(hosts); i++) {
		size_t n = hosts[i] ? strlen(hosts[i]) : 0, z = strlen(d->zone);
		char rel[256];

		if (n <= z + 1 || n - z - 1 >= sizeof(rel))
			continue;
		memcpy(rel, hosts[i], n - z - 1);
		rel[n - z - 1] = '\0';
		pb_fmt_ip(b->m->edge.ip, ip);
		add_record(b, rel, "A", ip);
	}
	for (size_t i = 0; i < d->n_records; i++)
		add_record(b, d->records[i].name, d->records[i].type, d->records[i].value);
}

/* The zone step also removes the records of ours the plan no longer has:
 * it gets the (name, type) of every record step after it. */
static void add_zone_records(struct builder *b, size_t zone)
{
	struct json_object *a;
	struct step *z;

	if (b->error < 0 || zone >= b->plan->n_steps)
		return;
	a = pb_arr(b);
	for (size_t i = zone + 1; i < b->plan->n_steps; i++) {
		const struct step *s = &b->plan->steps[i];
		struct json_object *q;

		if (s->kind != STEP_DNS_RECORD)
			continue;
		q = pb_obj(b);
		pb_put_str(b, q, "name", step_param_string(s, "name"));
		pb_put_str(b, q, "type", step_param_string(s, "type"));
		pb_push(b, a, q);
	}
	z = &b->plan->steps[zone];
	pb_put(b, z->params, "records", a);
	if (b->error >= 0 && step_hash_params(z) < 0)
		b->error = plan_fail(-ENOMEM, "cannot hash the zone step's parameters");
}

static void add_dns(struct builder *b)
{
	const struct mf_dns *d = &b->m->dns;
	struct mf_vm primary, secondary;
	struct json_object *p, *a;
	char title[STEP_TITLE_MAX];
	size_t zone;

	if (!d->present || pb_find_vm(b, d->primary, &primary) < 0)
		return;
	if (d->secondary && pb_find_vm(b, d->secondary, &secondary) < 0)
		return;
	add_dns_server(b, &primary, "primary");
	if (d->secondary)
		add_dns_server(b, &secondary, "secondary");

	p = pb_obj(b);
	pb_put_str(b, p, "zone", d->zone);
	pb_put_str(b, p, "primary", primary.name);
	pb_put_ip(b, p, "primary_ip", primary.ip);
	if (d->secondary) {
		pb_put_ip(b, p, "secondary_ip", secondary.ip);
		pb_put_str(b, p, "tsig_key", MANIFEST_DNS_TSIG_KEY);
	}
	pb_bfmt(b, title, sizeof(title), "Creating DNS zone %s", d->zone);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_DNS_ZONE, NULL, p, title, "cluster/dns/zone/%s", d->zone);
	zone = b->plan->n_steps - 1;
	add_dns_records(b);
	add_zone_records(b, zone);

	if (d->n_forwarders > 0) {
		p = pb_obj(b);
		a = pb_arr(b);
		for (size_t i = 0; i < d->n_forwarders; i++) {
			struct json_object *f = pb_obj(b);

			pb_put_str(b, f, "address", d->forwarders[i].address);
			pb_put_str(b, f, "protocol", manifest_dns_proto_name(d->forwarders[i].protocol));
			pb_put_str(b, f, "name", d->forwarders[i].name);
			pb_push(b, a, f);
		}
		pb_put(b, p, "forwarders", a);
		a = pb_arr(b);
		pb_push(b, a, pb_str(b, primary.name));
		if (d->secondary)
			pb_push(b, a, pb_str(b, secondary.name));
		pb_put(b, p, "servers", a);
		pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_DNS_FORWARDERS, NULL, p, "Setting the DNS forwarders",
		       "cluster/dns/forwarders");
	}
	if (d->secondary) {
		p = pb_obj(b);
		pb_put_str(b, p, "zone", d->zone);
		pb_put_str(b, p, "secondary", secondary.name);
		pb_put_ip(b, p, "secondary_ip", secondary.ip);
		pb_put_ip(b, p, "primary_ip", primary.ip);
		pb_put_str(b, p, "primary", primary.name);
		pb_put_str(b, p, "tsig_key", MANIFEST_DNS_TSIG_KEY);
		pb_bfmt(b, title, sizeof(title), "Making %s a secondary for %s", secondary.name, d->zone);
		pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_DNS_SECONDARY, NULL, p, title, "cluster/dns/secondary/%s",
		       secondary.name);
	}
}

/* One web console behind the edge: a name, the backends' addresses and
 * port (HTTPS, certificates by the cluster CA). */
static void add_edge_route(struct builder *b, struct json_object *routes, const char *name, const char *host,
			   const uint32_t *addrs, size_t n, unsigned port)
{
	struct json_object *q = pb_obj(b), *a = pb_arr(b);

	for (size_t i = 0; i < n; i++) {
		char ip[16];

		pb_fmt_ip(addrs[i], ip);
		pb_push(b, a, pb_str(b, ip));
	}
	pb_put_str(b, q, "name", name);
	pb_put_str(b, q, "host", host);
	pb_put(b, q, "addresses", a);
	pb_put_u64(b, q, "port", port);
	pb_push(b, routes, q);
}

static void add_edge(struct builder *b)
{
	const struct manifest *m = b->m;
	const struct mf_edge *e = &m->edge;
	const char *domain = m->dns.present ? m->dns.zone : m->cluster.domain;
	struct json_object *p, *a, *acme, *routes, *rl;
	char title[STEP_TITLE_MAX], ip[16], wild[320];
	uint32_t nodes[MANIFEST_MAX_NODES];
	struct mf_vm primary;

	if (!e->present)
		return;
	pb_fmt_ip(e->ip, ip);
	p = pb_obj(b);
	pb_put_str(b, p, "ip", ip);
	pb_bfmt(b, title, sizeof(title), "Deploying the Traefik edge on %s", ip);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_EDGE_TRAEFIK, NULL, p, title, "cluster/edge/traefik");

	p = pb_obj(b);
	a = pb_arr(b);
	pb_bfmt(b, wild, sizeof(wild), "*.%s", domain ? domain : "?");
	pb_push(b, a, pb_str(b, wild));
	pb_push(b, a, pb_str(b, domain));
	pb_put_str(b, p, "mode", e->cert == MF_CERT_ACME_DNS01 ? "acme-dns01" : "internal-ca");
	pb_put(b, p, "domains", a);
	if (e->cert == MF_CERT_ACME_DNS01) {
		acme = pb_obj(b);
		pb_put_str(b, acme, "email", e->acme.email);
		pb_put_str(b, acme, "server", e->acme.server);
		pb_put_str(b, acme, "provider", e->acme.provider);
		pb_put(b, p, "acme", acme);
	}
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_EDGE_CERTS, NULL, p, "Issuing the edge certificates",
	       "cluster/edge/certificates");

	p = pb_obj(b);
	routes = pb_arr(b);
	for (size_t i = 0; i < m->n_nodes && i < ELEMENTSOF(nodes); i++)
		nodes[i] = m->nodes[i].ip;
	if (e->proxmox_host)
		add_edge_route(b, routes, "proxmox", e->proxmox_host, nodes,
			       m->n_nodes < ELEMENTSOF(nodes) ? m->n_nodes : ELEMENTSOF(nodes), EDGE_PVE_PORT);
	if (e->dns_host && m->dns.present && pb_find_vm(b, m->dns.primary, &primary) >= 0)
		add_edge_route(b, routes, "technitium", e->dns_host, &primary.ip, 1, EDGE_TECHNITIUM_PORT);
	pb_put(b, p, "routes", routes);
	pb_put(b, p, "apps", pb_edge_apps(b));
	a = pb_arr(b);
	for (size_t i = 0; i < e->n_allow; i++) {
		char cidr[24];

		pb_fmt_ip(e->allow[i].addr, ip);
		pb_bfmt(b, cidr, sizeof(cidr), "%s/%u", ip, e->allow[i].prefix);
		pb_push(b, a, pb_str(b, cidr));
	}
	pb_put(b, p, "allow", a);
	rl = pb_obj(b);
	pb_put_u64(b, rl, "average", e->rate_limit.average);
	pb_put_u64(b, rl, "burst", e->rate_limit.burst);
	pb_put(b, p, "rate_limit", rl);
	if (e->dashboard_host) {
		pb_put_str(b, p, "dashboard_host", e->dashboard_host);
		pb_put_str(b, p, "dashboard_user", MANIFEST_EDGE_DASHBOARD_USER);
		pb_put_secret(b, p, "dashboard_password", &e->dashboard_password);
	}
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_EDGE_ROUTES, NULL, p, "Routing the web consoles through the edge",
	       "cluster/edge/routes");
}

/* What the verification step checks, from the steps before it: every VM
 * running, every K3s node Ready, and every DNS record of the plan answered
 * by every DNS server (the wildcard asked for a name under it). */
static void add_verify(struct builder *b)
{
	const struct manifest *m = b->m;
	struct json_object *p = pb_obj(b), *a = pb_arr(b), *names = pb_arr(b), *k3s = pb_arr(b), *servers = pb_arr(b),
			   *dns = pb_arr(b);
	size_t n_vms = 0;

	for (size_t g = 0; g < m->n_vms; g++)
		for (unsigned i = 0; i < m->vms[g].count; i++) {
			struct mf_vm vm;

			if (manifest_vm_expand(&m->vms[g], i, &vm) < 0)
				continue;
			pb_push(b, names, pb_str(b, vm.name));
			if (m->k3s.present && (group_listed(m->k3s.servers, m->k3s.n_servers, m->vms[g].id) ||
					       group_listed(m->k3s.agents, m->k3s.n_agents, m->vms[g].id)))
				pb_push(b, k3s, pb_str(b, vm.name));
			n_vms++;
		}
	for (size_t i = 0; m->dns.present && i < b->plan->n_steps; i++) {
		const struct step *s = &b->plan->steps[i];
		struct json_object *q;
		const char *name = step_param_string(s, "name");
		char under[320];

		if (s->kind == STEP_DNS_SERVER) {
			q = pb_obj(b);
			pb_put_str(b, q, "vm", step_param_string(s, "vm"));
			pb_put_str(b, q, "ip", step_param_string(s, "ip"));
			pb_push(b, servers, q);
		}
		if (s->kind != STEP_DNS_RECORD || !name)
			continue;
		q = pb_obj(b);
		/* a wildcard answers for any name under it: ask for one */
		if (name[0] == '*' && name[1] == '.')
			pb_bfmt(b, under, sizeof(under), "devopslab-verify.%s", name + 2);
		pb_put_str(b, q, "name", name[0] == '*' ? under : name);
		pb_put_str(b, q, "type", step_param_string(s, "type"));
		pb_put_str(b, q, "value", step_param_string(s, "value"));
		pb_push(b, dns, q);
	}
	pb_push(b, a, pb_str(b, "quorum"));
	pb_push(b, a, pb_str(b, "vms-running"));
	if (m->k3s.present)
		pb_push(b, a, pb_str(b, "k3s-nodes-ready"));
	if (m->dns.present)
		pb_push(b, a, pb_str(b, "dns-resolves"));
	if (m->edge.present) {
		struct json_object *e = pb_obj(b), *routes = pb_arr(b);
		const char *hosts[][3] = { { m->edge.proxmox_host, "/", "ok" },
					   { m->dns.present ? m->edge.dns_host : NULL, "/", "ok" },
					   /* no credentials: the dashboard must refuse */
					   { m->edge.dashboard_host, "/dashboard/", "401" },
					   /* Argo CD's UI: its sign-in page */
					   { m->gitops.present ? m->gitops.host : NULL, "/", "ok" },
					   /* Grafana's sign-in page (a redirect to it), Prometheus's UI */
					   { m->monitoring.enabled ? m->monitoring.hosts.grafana : NULL, "/", "ok" },
					   { m->monitoring.enabled ? m->monitoring.hosts.prometheus : NULL, "/", "ok" },
					   /* the registry's API root, as a runtime first asks it */
					   { m->registry.enabled && m->k3s.present ? m->registry.host : NULL, "/v2/", "ok" } };
		char ip[16];

		pb_push(b, a, pb_str(b, "edge-https"));
		for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
			struct json_object *q;

			if (!hosts[i][0])
				continue;
			q = pb_obj(b);
			pb_put_str(b, q, "host", hosts[i][0]);
			pb_put_str(b, q, "path", hosts[i][1]);
			pb_put_str(b, q, "expect", hosts[i][2]);
			pb_push(b, routes, q);
		}
		pb_fmt_ip(m->edge.ip, ip);
		pb_put_str(b, e, "ip", ip);
		pb_put(b, e, "routes", routes);
		pb_put(b, p, "edge", e);
	}
	if (m->gitops.present && m->k3s.present) {
		struct json_object *g = pb_obj(b);

		pb_push(b, a, pb_str(b, "gitops-synced"));
		pb_put_str(b, g, "namespace", MANIFEST_GITOPS_NAMESPACE);
		pb_put_str(b, g, "application", MANIFEST_GITOPS_APPLICATION);
		pb_put(b, p, "gitops", g);
	}
	if (m->registry.enabled && m->k3s.present && m->edge.present) {
		struct json_object *rg = pb_obj(b);

		pb_push(b, a, pb_str(b, "registry-images"));
		pb_put_str(b, rg, "namespace", MANIFEST_REGISTRY_NAMESPACE);
		pb_put_str(b, rg, "name", MANIFEST_REGISTRY_NAME);
		pb_put_u64(b, rg, "port", MANIFEST_REGISTRY_PORT);
		pb_put(b, p, "registry", rg);
	}
	if (m->monitoring.enabled && m->k3s.present) {
		struct json_object *mon = pb_obj(b);

		pb_push(b, a, pb_str(b, "metrics-targets"));
		pb_put_probe(b, mon);
		pb_put(b, p, "monitoring", mon);
		if (m->monitoring.logs.enabled) {
			pb_push(b, a, pb_str(b, "logs-sources"));
			pb_put_logs(b, mon);
		}
	}
	pb_put(b, p, "checks", a);
	pb_put_u64(b, p, "nodes", m->n_nodes);
	pb_put_u64(b, p, "vms", n_vms);
	pb_put(b, p, "vm_names", names);
	pb_put(b, p, "k3s_nodes", k3s);
	pb_put(b, p, "dns_servers", servers);
	pb_put(b, p, "dns_names", dns);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_VERIFY, NULL, p, "Verifying the cluster end to end", "cluster/verify");
}

/* Once the verification has passed: the Proxmox nodes resolve through the
 * lab's DNS servers (PUT /nodes/{node}/dns), the first of network.dns kept
 * as the last resort. */
static void add_dns_handover(struct builder *b)
{
	const struct manifest *m = b->m;
	struct json_object *p, *nodes, *servers;
	struct mf_vm vm;
	char ip[16];

	if (!m->dns.present)
		return;
	p = pb_obj(b);
	nodes = pb_arr(b);
	servers = pb_arr(b);
	for (size_t i = 0; i < m->n_nodes; i++)
		pb_push(b, nodes, pb_str(b, m->nodes[i].name));
	if (manifest_find_vm(m, m->dns.primary, &vm) >= 0) {
		pb_fmt_ip(vm.ip, ip);
		pb_push(b, servers, pb_str(b, ip));
	}
	if (m->dns.secondary && manifest_find_vm(m, m->dns.secondary, &vm) >= 0) {
		pb_fmt_ip(vm.ip, ip);
		pb_push(b, servers, pb_str(b, ip));
	}
	if (m->network.n_dns) {
		pb_fmt_ip(m->network.dns[0], ip);
		pb_push(b, servers, pb_str(b, ip));
	}
	pb_put(b, p, "nodes", nodes);
	pb_put(b, p, "servers", servers);
	pb_put_str(b, p, "search", m->dns.zone);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_DNS_HANDOVER, NULL, p, "Handing the nodes' DNS over to the lab's DNS servers",
	       "cluster/dns/handover");
}

/* ---- the whole plan ----------------------------------------------------- */

static const struct mf_node *find_first(const struct manifest *m)
{
	for (size_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i].role == MF_ROLE_FIRST)
			return &m->nodes[i];
	return NULL;
}

/* Keep only the steps `node` runs, preserving order. */
static void filter(struct plan *p, const char *node)
{
	size_t k = 0;

	for (size_t i = 0; i < p->n_steps; i++) {
		if (plan_step_runs_on(p, &p->steps[i], node))
			p->steps[k++] = p->steps[i];
		else
			step_done(&p->steps[i]);
	}
	p->n_steps = k;
}

int plan_build(const struct manifest *m, const char *node, struct plan **ret)
{
	struct builder b = { .m = m };

	plan_clear_error();
	if (node && !manifest_find_node(m, node))
		return plan_fail(-ENOENT, "no node \"%s\" in the manifest", node);
	b.first = find_first(m);
	if (!b.first)
		return plan_fail(-EINVAL, "no node has role \"first\"");
	b.plan = plan_new(m, node);
	if (!b.plan)
		return -ENOMEM;

	for (size_t i = 0; i < m->n_nodes; i++)
		add_install(&b, &m->nodes[i]);
	add_cluster_formation(&b);
	add_storage(&b);
	add_backup_storage(&b);
	add_templates(&b);
	add_vms(&b);
	add_backup(&b);
	add_k3s(&b);
	add_dns(&b);
	add_edge(&b);
	pb_add_registry(&b);
	pb_add_gitops(&b);
	pb_add_monitoring(&b);
	add_verify(&b);
	add_dns_handover(&b);

	if (b.error < 0) {
		plan_free(b.plan);
		return b.error;
	}
	if (node)
		filter(b.plan, node);
	*ret = b.plan;
	return 0;
}

/* ---- recovery of one node ------------------------------------------------ */

int plan_build_recover(const struct manifest *m, const char *node, struct plan **ret)
{
	struct plan *p = NULL;
	int r;

	if (!node)
		return plan_fail(-EINVAL, "a recovery plan is for one node");
	if (!manifest_find_node(m, node))
		return plan_fail(-ENOENT, "no node \"%s\" in the manifest", node);
	r = plan_build(m, NULL, &p);
	if (r < 0)
		return r;
	free(p->node);
	p->node = strdup(node);
	if (!p->node) {
		plan_free(p);
		return -ENOMEM;
	}
	p->recover = true;
	filter(p, node);
	*ret = p;
	return 0;
}

/* The node the plan puts VM `name` on, or NULL. */
static const char *vm_node(const struct plan *p, const char *name)
{
	for (size_t i = 0; name && i < p->n_steps; i++)
		if (p->steps[i].kind == STEP_VM && p->steps[i].has_vm && streq(p->steps[i].vm.name, name))
			return p->steps[i].vm.target_node;
	return NULL;
}

int plan_set_node_nic(struct plan *p, const char *node, const char *nic)
{
	for (size_t i = 0; i < p->n_steps; i++)
		if (p->steps[i].kind == STEP_CONFIG_NETWORK && streq_ptr(p->steps[i].node, node))
			return step_set_param_string(&p->steps[i], "nic", nic);
	return -ENOENT;
}

static bool on_node(const struct plan *p, const char *vm)
{
	return streq_ptr(vm_node(p, vm), p->node);
}

const char *plan_recovery_note(const struct plan *p, const struct step *s, char *buf, size_t size)
{
	const struct manifest *m = p->manifest;
	const char *primary = m->dns.present ? m->dns.primary : NULL;
	const char *secondary = m->dns.present ? m->dns.secondary : NULL;
	const char *from;

	if (!p->recover || !p->node)
		return NULL;
	if (s->phase == STEP_PHASE_INSTALL)
		return NULL; /* a first install's, as the plan's header says */
	switch (s->kind) {
	case STEP_CLUSTER_CREATE:
	case STEP_CLUSTER_JOIN:
		snprintf(buf, size,
			 "a running member removes the dead %s from cluster %s (pvecm delnode; the cluster keeps its "
			 "quorum: the others are a majority), then %s joins again; never a second cluster",
			 p->node, m->cluster.name, p->node);
		return buf;
	case STEP_TEMPLATE:
		if (!streq_ptr(step_param_string(s, "node"), p->node))
			return NULL;
		snprintf(buf, size, "its disk was on %s: the template is made anew from the bundle's image", p->node);
		return buf;
	case STEP_VM:
		if (!s->has_vm || !streq_ptr(s->vm.target_node, p->node))
			return NULL;
		from = step_param_string(s, "restore_from");
		if (from)
			snprintf(buf, size,
				 "its disk was on %s: restored from its newest backup on storage %s if there is one "
				 "(a storage only %s had is gone with it), else cloned anew",
				 p->node, from, p->node);
		else
			snprintf(buf, size, "its disk was on %s: cloned anew from its template%s", p->node,
				 m->backup.present ? " (an etcd member is never restored from a backup: the cluster's "
						     "etcd holds its data)"
						   : " (no backup: the manifest has no backup:)");
		return buf;
	case STEP_K3S_SERVER_INIT:
		if (!s->has_vm || !on_node(p, s->vm.name))
			return NULL;
		if (step_param_string(s, "rejoin"))
			snprintf(buf, size,
				 "the first K3s server lived on %s: its old node and etcd member are removed through a "
				 "running server, then it joins the running cluster through %s instead of initialising one",
				 p->node, step_param_string(s, "rejoin"));
		else
			snprintf(buf, size, "the only K3s server lived on %s (SQLite, no etcd to rejoin): a new "
					    "cluster is initialised; what the old one held is gone",
				 p->node);
		return buf;
	case STEP_K3S_SERVER_JOIN:
	case STEP_K3S_AGENT:
		if (!s->has_vm || !on_node(p, s->vm.name))
			return NULL;
		snprintf(buf, size,
			 "its old node%s removed through a running server before the new one joins%s",
			 s->kind == STEP_K3S_AGENT ? " is" : " and etcd member are",
			 s->kind == STEP_K3S_AGENT ? "" : " (etcd never has more members than the manifest's servers)");
		return buf;
	case STEP_DNS_SERVER:
		if (!s->has_vm || !on_node(p, s->vm.name))
			return NULL;
		snprintf(buf, size, "Technitium installed anew on the new %s", s->vm.name);
		return buf;
	case STEP_DNS_ZONE:
	case STEP_DNS_RECORD:
	case STEP_DNS_FORWARDERS:
		if (!on_node(p, primary))
			return NULL;
		snprintf(buf, size, "checked on the rebuilt primary %s, made again where missing", primary);
		return buf;
	case STEP_DNS_SECONDARY:
		if (!on_node(p, primary) && !on_node(p, secondary))
			return NULL;
		snprintf(buf, size, "the secondary %s re-synchronised from the primary %s (a full zone transfer)",
			 secondary, primary);
		return buf;
	default:
		return NULL;
	}
}
