/* SPDX-License-Identifier: MIT */
/*
 * manifest-check.c — the rules that span fields, run once every value has
 * been decoded: defaults that depend on other fields, references (to
 * nodes, templates, assets, VM groups, secrets), duplicates (names, IPs,
 * VMIDs, MACs), addresses inside network.subnet, the HA quorum rule.
 * Also the small lookups other modules use (manifest_find_*, VM expansion).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "manifest-internal.h"
#include "manifest.h"
#include "parse.h"
#include "seed-id.h"
#include "util.h"

/* Format a field path; a path too long for MF_PATH_MAX is cut short
 * (it is only used to look up a position and in messages). */
const char *mf_pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return buf;
}
#define P(buf, ...) mf_pathf(buf, sizeof(buf), __VA_ARGS__)

/* ---- lookups and VM expansion ------------------------------------------- */

const struct mf_node *manifest_find_node(const struct manifest *m, const char *name)
{
	for (size_t i = 0; name && i < m->n_nodes; i++)
		if (streq_ptr(m->nodes[i].name, name))
			return &m->nodes[i];
	return NULL;
}

const struct mf_template *manifest_find_template(const struct manifest *m, const char *name)
{
	for (size_t i = 0; name && i < m->n_templates; i++)
		if (streq_ptr(m->templates[i].name, name))
			return &m->templates[i];
	return NULL;
}

const struct mf_vm_group *manifest_find_vm_group(const struct manifest *m, const char *id)
{
	for (size_t i = 0; id && i < m->n_vms; i++)
		if (streq_ptr(m->vms[i].id, id))
			return &m->vms[i];
	return NULL;
}

const struct mf_asset *manifest_find_asset(const struct manifest *m, const char *name)
{
	for (size_t i = 0; name && i < m->n_assets; i++)
		if (streq_ptr(m->assets[i].name, name))
			return &m->assets[i];
	return NULL;
}

int manifest_vm_name(const char *pattern, unsigned n, char *buf, size_t size)
{
	size_t o = 0;

	if (!pattern || size == 0)
		return -EINVAL;
	for (const char *p = pattern; *p;) {
		char num[16];
		size_t l;

		if (*p != '{') {
			if (*p == '}')
				return -EINVAL;
			if (o + 1 >= size)
				return -ENAMETOOLONG;
			buf[o++] = *p++;
			continue;
		}
		if (strncmp(p, "{n}", 3) == 0) {
			snprintf(num, sizeof(num), "%u", n);
			p += 3;
		} else if (strncmp(p, "{n:0", 4) == 0 && p[4] >= '1' && p[4] <= '9' && p[5] == '}') {
			snprintf(num, sizeof(num), "%0*u", p[4] - '0', n);
			p += 6;
		} else
			return -EINVAL;
		l = strlen(num);
		if (o + l >= size)
			return -ENAMETOOLONG;
		memcpy(buf + o, num, l);
		o += l;
	}
	buf[o] = '\0';
	return 0;
}

int manifest_template_on(const struct mf_template *t, const char *node, unsigned *ret_vmid)
{
	for (size_t i = 0; t && node && i < t->n_target_nodes; i++)
		if (streq_ptr(t->target_nodes[i], node)) {
			*ret_vmid = t->vmid + (unsigned)i;
			return 0;
		}
	return -ENOENT;
}

int manifest_vm_mac(const char *seed, const char *vm_name, uint8_t ret[6])
{
	uint8_t b[16];
	int r = seed_id_bytes(seed, vm_name, "mac:net0", b);

	if (r < 0)
		return r;
	/* IEEE 802: bit 0 of the first octet is group (multicast), bit 1 local
	 * administration; QEMU's own default prefix 52:54:00 is local too. */
	b[0] = (uint8_t)((b[0] & ~0x01u) | 0x02u);
	memcpy(ret, b, 6);
	return 0;
}

int manifest_vm_expand(const struct mf_vm_group *g, unsigned index, struct mf_vm *ret)
{
	struct mf_vm vm = { .group = g, .index = index };
	int r;

	if (!g || index >= g->count || g->n_target_nodes == 0)
		return -EINVAL;
	r = manifest_vm_name(g->name, index + 1, vm.name, sizeof(vm.name));
	if (r < 0)
		return r;
	vm.vmid = g->vmid + index;
	vm.target_node = g->target_nodes[index % g->n_target_nodes];
	vm.ip = g->ipconfig0.ip + index;
	if (g->seed) {
		r = manifest_vm_mac(g->seed, vm.name, vm.mac);
		if (r < 0)
			return r;
	}
	if (g->template) /* validation made sure there is a copy on every node used */
		(void)manifest_template_on(g->template, vm.target_node, &vm.template_vmid);
	*ret = vm;
	return 0;
}

int manifest_find_vm(const struct manifest *m, const char *name, struct mf_vm *ret)
{
	for (size_t i = 0; name && i < m->n_vms; i++)
		for (unsigned j = 0; j < m->vms[i].count; j++) {
			struct mf_vm vm;

			if (manifest_vm_expand(&m->vms[i], j, &vm) == 0 && streq(vm.name, name)) {
				*ret = vm;
				return 0;
			}
		}
	return -ENOENT;
}

size_t manifest_count_vms(const struct manifest *m, char *const *group_ids, size_t n)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		const struct mf_vm_group *g = manifest_find_vm_group(m, group_ids[i]);

		if (g)
			total += g->count;
	}
	return total;
}

/* Which K3s list group id is in: "servers", "agents", or NULL. */
static const char *k3s_role(const struct manifest *m, const char *id)
{
	const struct mf_k3s *k = &m->k3s;

	for (size_t i = 0; id && k->present && i < k->n_servers; i++)
		if (streq_ptr(k->servers[i], id))
			return "servers";
	for (size_t i = 0; id && k->present && i < k->n_agents; i++)
		if (streq_ptr(k->agents[i], id))
			return "agents";
	return NULL;
}

static void payload_file(struct mf_payload_file *f, const char *asset, const char *key, unsigned mode, const char *dir,
		     const char *name)
{
	f->asset = asset;
	f->key = key;
	f->mode = mode;
	snprintf(f->path, sizeof(f->path), "%s%s%s", dir, name ? "/" : "", name ? name : "");
}

/* An image archive in the directory K3s imports from, under the base
 * name of its asset's file; nothing when the asset does not exist. */
static bool k3s_image(struct mf_payload_file *f, const struct manifest *m, const char *asset, const char *key)
{
	const struct mf_asset *a = manifest_find_asset(m, asset);
	const char *slash;

	if (!a || !a->file)
		return false;
	slash = strrchr(a->file, '/');
	payload_file(f, asset, key, 0644, MANIFEST_K3S_IMAGES_DIR, slash ? slash + 1 : a->file);
	return true;
}

size_t manifest_k3s_payload(const struct manifest *m, const struct mf_vm_group *g,
			    struct mf_payload_file ret[static MANIFEST_K3S_PAYLOAD_MAX])
{
	const struct mf_k3s *k = &m->k3s;
	const struct mf_gitops *go = &m->gitops;
	const struct mf_monitoring *mo = &m->monitoring;
	const struct mf_registry *rg = &m->registry;
	const char *role = g ? k3s_role(m, g->id) : NULL;
	bool server = streq_ptr(role, "servers");
	size_t n = 0;

	if (!role)
		return 0;
	if (k->airgap.binary)
		payload_file(&ret[n++], k->airgap.binary, "k3s.airgap.binary", 0755, MANIFEST_K3S_BINARY_PATH, NULL);
	if (k3s_image(&ret[n], m, k->airgap.images, "k3s.airgap.images"))
		n++;
	if (k->airgap.install_script)
		payload_file(&ret[n++], k->airgap.install_script, "k3s.airgap.install_script", 0755,
			     MANIFEST_K3S_INSTALL_PATH, NULL);
	/* kube-vip runs on the control plane only (docs/k3s.md) */
	if (server && k3s_image(&ret[n], m, k->kube_vip.image, "k3s.kube_vip.image"))
		n++;
	/* the charts on every server: a helm job fetches its chart from
	 * whichever API server the cluster's service sends it to */
	for (size_t i = 0; server && i < k->n_charts; i++) {
		char name[80];

		if (!k->charts[i].name || !k->charts[i].chart)
			continue;
		snprintf(name, sizeof(name), "%s.tgz", k->charts[i].name);
		payload_file(&ret[n++], k->charts[i].chart, "k3s.charts", 0644, MANIFEST_K3S_CHARTS_DIR, name);
	}
	/* the system charts: on the servers, their images on every K3s VM
	 * (their pods go wherever the scheduler puts them) */
	if (go->present && server && go->chart)
		payload_file(&ret[n++], go->chart, "gitops.chart", 0644, MANIFEST_K3S_CHARTS_DIR,
			     MANIFEST_GITOPS_CHART ".tgz");
	for (size_t i = 0; go->present && i < go->n_images && i < MANIFEST_IMAGES_MAX; i++)
		if (k3s_image(&ret[n], m, go->images[i], "gitops.images"))
			n++;
	if (mo->enabled && server && mo->chart)
		payload_file(&ret[n++], mo->chart, "monitoring.chart", 0644, MANIFEST_K3S_CHARTS_DIR,
			     MANIFEST_MONITORING_CHART ".tgz");
	for (size_t i = 0; mo->enabled && i < mo->n_images && i < MANIFEST_IMAGES_MAX; i++)
		if (k3s_image(&ret[n], m, mo->images[i], "monitoring.images"))
			n++;
	if (mo->enabled && mo->logs.enabled && server && mo->logs.chart)
		payload_file(&ret[n++], mo->logs.chart, "monitoring.logs.chart", 0644, MANIFEST_K3S_CHARTS_DIR,
			     MANIFEST_LOGS_CHART ".tgz");
	for (size_t i = 0; mo->enabled && mo->logs.enabled && i < mo->logs.n_images && i < MANIFEST_IMAGES_MAX; i++)
		if (k3s_image(&ret[n], m, mo->logs.images[i], "monitoring.logs.images"))
			n++;
	/* the registry's own image where its pod may run; the archives
	 * pushed into it on the servers, where the registry step runs the
	 * push, outside K3s's import directory */
	if (rg->enabled && k3s_image(&ret[n], m, rg->image, "registry.image"))
		n++;
	for (size_t i = 0; rg->enabled && server && i < rg->n_seed && i < MANIFEST_IMAGES_MAX; i++) {
		const struct mf_asset *a = manifest_find_asset(m, rg->seed[i]);
		const char *slash = a && a->file ? strrchr(a->file, '/') : NULL;

		if (a && a->file)
			payload_file(&ret[n++], rg->seed[i], "registry.seed", 0644, MANIFEST_REGISTRY_SEED_DIR,
				     slash ? slash + 1 : a->file);
	}
	return n;
}

const char *const manifest_dns_proto_names[] = { "udp", "tcp", "tls", "https", NULL };

const char *manifest_dns_proto_name(enum mf_dns_proto p)
{
	return (unsigned)p < ELEMENTSOF(manifest_dns_proto_names) - 1 ? manifest_dns_proto_names[p] : "?";
}

/* Whether an expanded VM of g is named name. */
static bool group_has_vm(const struct mf_vm_group *g, const char *name)
{
	struct mf_vm vm;

	for (unsigned i = 0; name && i < g->count; i++)
		if (manifest_vm_expand(g, i, &vm) >= 0 && streq(vm.name, name))
			return true;
	return false;
}

size_t manifest_dns_payload(const struct manifest *m, const struct mf_vm_group *g,
			    struct mf_payload_file ret[static MANIFEST_DNS_PAYLOAD_MAX])
{
	const struct mf_dns *d = &m->dns;

	if (!d->present || !g || !d->airgap.package || !d->airgap.runtime ||
	    !(group_has_vm(g, d->primary) || group_has_vm(g, d->secondary)))
		return 0;
	payload_file(&ret[0], d->airgap.package, "airgap.package", 0644, MANIFEST_DNS_PACKAGE_PATH, NULL);
	payload_file(&ret[1], d->airgap.runtime, "airgap.runtime", 0644, MANIFEST_DNS_RUNTIME_PATH, NULL);
	return 2;
}

/* ---- duplicate detection ------------------------------------------------ */

/* A value that must be unique, with where it was written. Sorting by
 * (key, seq) puts duplicates next to each other, first occurrence first. */
struct uniq {
	char key[72];
	char path[80];
	char what[80]; /* e.g. "VM devops-k3s-worker-02" or "" */
	size_t seq;
};

struct uniq_set {
	struct uniq *v;
	size_t n, cap;
};

static int uniq_add(struct uniq_set *s, const char *key, const char *path, const char *what)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct uniq *v = reallocarray(s->v, ncap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = ncap;
	}
	struct uniq *u = &s->v[s->n];
	snprintf(u->key, sizeof(u->key), "%s", key);
	snprintf(u->path, sizeof(u->path), "%s", path);
	snprintf(u->what, sizeof(u->what), "%s", what ? what : "");
	u->seq = s->n++;
	return 0;
}

static int uniq_cmp(const void *a, const void *b)
{
	const struct uniq *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	if (r)
		return r;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Report every later occurrence of a key, naming the first. */
static void uniq_report(struct mf_ctx *c, struct uniq_set *s, const char *noun)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), uniq_cmp);
	for (size_t i = 1; i < s->n; i++) {
		const struct uniq *first = &s->v[i], *dup = &s->v[i];

		if (!streq(s->v[i - 1].key, dup->key))
			continue;
		while (first > s->v && streq((first - 1)->key, dup->key))
			first--;
		mf_error_at(c, dup->path, "duplicate %s '%s'%s%s%s: already used by %s%s%s%s", noun, dup->key,
			    *dup->what ? " (" : "", dup->what, *dup->what ? ")" : "", first->path,
			    *first->what ? " (" : "", first->what, *first->what ? ")" : "");
	}
	free(s->v);
	*s = (struct uniq_set){};
}

/* ---- small rules ---------------------------------------------------------- */

static bool cluster_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 15)
		return false;
	return hostname_label_valid(s);
}

static bool timezone_valid(const char *s)
{
	int parts = 1;

	if (streq(s, "UTC"))
		return true;
	if (!(*s >= 'A' && *s <= 'Z'))
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '/') {
			if (p[1] == '\0' || p[1] == '/')
				return false;
			parts++;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("_+-", *p)))
			return false;
	}
	return parts >= 2 && parts <= 3 && strlen(s) < 64;
}

static bool word_valid(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr(extra, *p)))
			return false;
	return true;
}

/* Linux interface names: 1..15 bytes, no '/', ':' or white space. */
static bool ifname_valid(const char *s)
{
	return word_valid(s, 15, "-_.");
}

/* A path inside the bundle's assets/: relative, no "..", no empty parts. */
static bool asset_file_valid(const char *s)
{
	if (*s == '/' || strlen(s) > 255)
		return false;
	for (const char *p = s; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
				return false;
		if (!slash)
			break;
		p = slash + 1;
		if (!*p)
			return false;
	}
	return true;
}

static bool has_suffix_domain(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	return n > z + 1 && name[n - z - 1] == '.' && strcasecmp(name + n - z, zone) == 0;
}

int mf_set_default(char **field, const char *value)
{
	if (*field)
		return 0;
	*field = strdup(value);
	return *field ? 0 : -ENOMEM;
}

static bool secret_declared(const struct manifest *m, const char *name)
{
	for (size_t i = 0; i < m->secrets.n_names; i++)
		if (streq_ptr(m->secrets.names[i], name))
			return true;
	return false;
}

void mf_check_secret(struct mf_ctx *c, const struct manifest *m, const struct mf_secret *s, const char *path)
{
	char p[MF_PATH_MAX];

	if (s->name && !secret_declared(m, s->name))
		mf_error_at(c, P(p, "%s.secret", path), "secret '%s' is not declared in secrets.names", s->name);
}

void mf_check_asset_ref(struct mf_ctx *c, const struct manifest *m, const char *name, const char *path)
{
	if (name && !manifest_find_asset(m, name))
		mf_error_at(c, path, "no asset named '%s' in assets", name);
}

/* An address of a host on the management network: inside the subnet, not
 * its network or broadcast address, not the gateway. Returns whether it
 * is not (and was reported). */
static bool check_host_ip(struct mf_ctx *c, const struct manifest *m, uint32_t ip, const char *path,
			  const char *what)
{
	const struct mf_network *net = &m->network;
	uint32_t mask = ipv4_netmask(net->subnet.prefix);
	char a[96], s[16];

	if (c->subnet_failed)
		return false;
	ipv4_format(ip, s, sizeof(s));
	if (what)
		snprintf(a, sizeof(a), "%s (%s)", s, what);
	else
		snprintf(a, sizeof(a), "%s", s);
	ipv4_format(net->subnet.addr, s, sizeof(s));
	if (!ipv4_in_cidr(ip, net->subnet.addr, net->subnet.prefix))
		mf_error_at(c, path, "%s is outside network.subnet %s/%u", a, s, net->subnet.prefix);
	else if (ip == net->subnet.addr || ip == (net->subnet.addr | ~mask))
		mf_error_at(c, path, "%s is the %s address of network.subnet", a,
			    ip == net->subnet.addr ? "network" : "broadcast");
	else if (ip == net->gateway && !c->gateway_failed)
		mf_error_at(c, path, "%s is the gateway's address", a);
	else
		return false;
	return true;
}

/* ---- sections --------------------------------------------------------------- */

static int check_cluster(struct mf_ctx *c, struct manifest *m)
{
	struct mf_cluster *cl = &m->cluster;

	if (cl->name && !cluster_name_valid(cl->name))
		mf_error_at(c, "cluster.name", "'%s' is not a valid Proxmox cluster name (1-15 letters, digits, '-')",
			    cl->name);
	if (cl->domain && (streq(cl->domain, "local") || has_suffix_domain(cl->domain, "local")))
		mf_warning_at(c, "cluster.domain",
			      "'%s' is under .local, the mDNS domain (RFC 6762): some clients never send such "
			      "names to a DNS server; consider home.arpa (RFC 8375)",
			      cl->domain);
	if (cl->timezone && !timezone_valid(cl->timezone))
		mf_error_at(c, "cluster.timezone", "'%s' is not a time zone in Area/City form (or UTC)", cl->timezone);
	if (cl->keyboard && !word_valid(cl->keyboard, 32, "-_"))
		mf_error_at(c, "cluster.keyboard", "'%s' is not a keyboard layout name like us or de-ch",
			    cl->keyboard);
	if (mf_set_default(&cl->timezone, "UTC") < 0 || mf_set_default(&cl->keyboard, "us") < 0 ||
	    (cl->name && mf_set_default(&cl->seed, cl->name) < 0))
		return -ENOMEM;
	return 0;
}

static int check_network(struct mf_ctx *c, struct manifest *m)
{
	struct mf_network *net = &m->network;
	uint32_t mask = ipv4_netmask(net->subnet.prefix);
	char a[16];

	ipv4_format(net->gateway, a, sizeof(a));
	if (c->subnet_failed || c->gateway_failed)
		; /* already reported */
	else if (!ipv4_in_cidr(net->gateway, net->subnet.addr, net->subnet.prefix))
		mf_error_at(c, "network.gateway", "%s is outside network.subnet", a);
	else if (net->gateway == net->subnet.addr || net->gateway == (net->subnet.addr | ~mask))
		mf_error_at(c, "network.gateway", "%s is the network or broadcast address", a);
	if (net->bridge && !ifname_valid(net->bridge))
		mf_error_at(c, "network.bridge", "'%s' is not a Linux interface name", net->bridge);
	return mf_set_default(&net->bridge, "vmbr0");
}

static void check_disk(struct mf_ctx *c, const struct mf_disk_rules *d, const char *path)
{
	char p[MF_PATH_MAX];

	if (!d->by_id && !d->serial && !d->model && !d->transport && !d->min_size && !d->max_size &&
	    !d->largest_nvme)
		mf_error_at(c, path,
			    "needs at least one selection rule (by_id, serial, model, transport, min_size, "
			    "max_size, largest_nvme)");
	if (d->min_size && d->max_size && d->min_size > d->max_size)
		mf_error_at(c, P(p, "%s.max_size", path), "is smaller than min_size");
	if (d->by_id && strchr(d->by_id, '/') && (strncmp(d->by_id, "/dev/disk/by-id/", 16) != 0 ||
						  strchr(d->by_id + 16, '/') || !d->by_id[16]))
		mf_error_at(c, P(p, "%s.by_id", path), "'%s' must be a name in /dev/disk/by-id/", d->by_id);
}

static int check_nodes(struct mf_ctx *c, struct manifest *m, struct uniq_set *names, struct uniq_set *ips)
{
	struct uniq_set macs = {}, serials = {}, uuids = {};
	size_t first = 0;
	char p[MF_PATH_MAX], k[32];
	int r = 0;

	if (m->n_nodes == 0)
		mf_error_at(c, "nodes", "needs at least one node");
	for (size_t i = 0; i < m->n_nodes && r >= 0; i++) {
		const struct mf_node *n = &m->nodes[i];

		if (n->role == MF_ROLE_FIRST && ++first > 1)
			mf_error_at(c, P(p, "nodes[%zu].role", i), "only one node can be 'first' (it creates the cluster)");
		if (!n->has_mac && !n->serial && !n->product_uuid)
			mf_error_at(c, P(p, "nodes[%zu]", i),
				    "needs at least one of mac, serial, product_uuid to recognise the machine");
		if (n->nic && !ifname_valid(n->nic)) {
			uint8_t mac[6];
			if (parse_mac(n->nic, mac) < 0)
				mf_error_at(c, P(p, "nodes[%zu].nic", i), "'%s' is neither an interface name nor a MAC",
					    n->nic);
		}
		check_host_ip(c, m, n->ip, P(p, "nodes[%zu].ip", i), NULL);
		check_disk(c, &n->disk, P(p, "nodes[%zu].disk", i));
		if (n->name)
			r = uniq_add(names, n->name, P(p, "nodes[%zu].name", i), NULL);
		if (r >= 0)
			r = uniq_add(ips, ipv4_format(n->ip, k, sizeof(k)), P(p, "nodes[%zu].ip", i), NULL);
		if (r >= 0 && n->has_mac) {
			mac_format(n->mac, k);
			r = uniq_add(&macs, k, P(p, "nodes[%zu].mac", i), NULL);
		}
		if (r >= 0 && n->serial)
			r = uniq_add(&serials, n->serial, P(p, "nodes[%zu].serial", i), NULL);
		if (r >= 0 && n->product_uuid)
			r = uniq_add(&uuids, n->product_uuid, P(p, "nodes[%zu].product_uuid", i), NULL);
	}
	if (m->n_nodes > 0 && first == 0)
		mf_error_at(c, "nodes", "exactly one node needs role: first (it creates the cluster)");
	uniq_report(c, &macs, "MAC");
	uniq_report(c, &serials, "serial");
	uniq_report(c, &uuids, "product_uuid");
	return r;
}

static int check_assets_proxmox(struct mf_ctx *c, struct manifest *m)
{
	struct uniq_set names = {};
	char p[MF_PATH_MAX];
	int r = 0;

	for (size_t i = 0; i < m->n_assets && r >= 0; i++) {
		const struct mf_asset *a = &m->assets[i];

		if (a->file && !asset_file_valid(a->file))
			mf_error_at(c, P(p, "assets[%zu].file", i),
				    "'%s' must be a relative path inside the bundle's assets/ (no '..')", a->file);
		if (a->name)
			r = uniq_add(&names, a->name, P(p, "assets[%zu].name", i), NULL);
	}
	uniq_report(c, &names, "asset name");
	mf_check_asset_ref(c, m, m->proxmox.rootfs, "proxmox.rootfs");
	mf_check_secret(c, m, &m->proxmox.root_password, "proxmox.root_password");
	const struct mf_storage *s = &m->proxmox.storage;
	if (s->hdsize.set && s->maxroot.set && s->maxroot.bytes > s->hdsize.bytes)
		mf_error_at(c, "proxmox.storage.maxroot", "is larger than hdsize");
	if (s->hdsize.set && s->swapsize.set && s->swapsize.bytes >= s->hdsize.bytes)
		mf_error_at(c, "proxmox.storage.swapsize", "is not smaller than hdsize");
	return r;
}

/* The path of element j of a target_node that may be one name or a list. */
static const char *target_node_path(char *buf, size_t size, const char *list, size_t i, size_t n, size_t j)
{
	if (n > 1)
		return mf_pathf(buf, size, "%s[%zu].target_node[%zu]", list, i, j);
	return mf_pathf(buf, size, "%s[%zu].target_node", list, i);
}

/* One copy of the template per node in target_node, VMIDs vmid + j. */
static int check_templates(struct mf_ctx *c, struct manifest *m, struct uniq_set *vmids)
{
	struct uniq_set names = {};
	char p[MF_PATH_MAX], k[16], what[80];
	int r = 0;

	for (size_t i = 0; i < m->n_templates && r >= 0; i++) {
		struct mf_template *t = &m->templates[i];

		mf_check_asset_ref(c, m, t->image, P(p, "templates[%zu].image", i));
		for (size_t j = 0; j < t->n_target_nodes; j++) {
			const char *node = t->target_nodes[j];

			target_node_path(p, sizeof(p), "templates", i, t->n_target_nodes, j);
			if (!node)
				continue;
			if (!manifest_find_node(m, node)) {
				mf_error_at(c, p, "no node named '%s' in nodes", node);
				mf_mark_failed(c, p); /* no cascade into the VMs' template check */
			}
			for (size_t e = 0; e < j; e++)
				if (streq_ptr(t->target_nodes[e], node)) {
					mf_error_at(c, p, "node '%s' is listed twice: a node holds one copy", node);
					break;
				}
		}
		if (t->n_target_nodes > 0 && (uint64_t)t->vmid + t->n_target_nodes - 1 > 999999999)
			mf_error_at(c, P(p, "templates[%zu].vmid", i), "the copies' VMIDs run past 999999999");
		if (t->storage && !word_valid(t->storage, 64, "-_."))
			mf_error_at(c, P(p, "templates[%zu].storage", i), "'%s' is not a Proxmox storage id", t->storage);
		if (t->name)
			r = uniq_add(&names, t->name, P(p, "templates[%zu].name", i), NULL);
		for (size_t j = 0; j < t->n_target_nodes && r >= 0 && t->vmid; j++) {
			snprintf(k, sizeof(k), "%u", t->vmid + (unsigned)j);
			snprintf(what, sizeof(what), "the copy on %s", t->target_nodes[j] ? t->target_nodes[j] : "?");
			r = uniq_add(vmids, k, P(p, "templates[%zu].vmid", i), t->n_target_nodes > 1 ? what : NULL);
		}
		if (r >= 0)
			r = mf_set_default(&t->storage, "local-lvm");
	}
	uniq_report(c, &names, "template name");
	return r;
}

static int strv_copy(char *const *v, size_t n, char ***ret, size_t *ret_n)
{
	char **copy;
	size_t k = 0;

	if (n == 0)
		return 0;
	copy = calloc(n, sizeof(char *));
	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!v[i]) /* failed to decode; reported */
			continue;
		copy[k] = strdup(v[i]);
		if (!copy[k]) {
			while (k > 0)
				free(copy[--k]);
			free(copy);
			return -ENOMEM;
		}
		k++;
	}
	*ret = copy;
	*ret_n = k;
	return 0;
}

static int group_defaults(struct manifest *m, struct mf_vm_group *g)
{
	g->template = manifest_find_template(m, g->clone);
	g->seed = m->cluster.seed;
	if (!g->has_sshkeys && strv_copy(m->proxmox.ssh_keys, m->proxmox.n_ssh_keys, &g->sshkeys, &g->n_sshkeys) < 0)
		return -ENOMEM;
	if (!g->count)
		g->count = 1;
	if (!g->cores)
		g->cores = 1;
	if (!g->sockets)
		g->sockets = 1;
	if (!g->ipconfig0.gw)
		g->ipconfig0.gw = m->network.gateway;
	if (mf_set_default(&g->disk.type, "scsi") < 0 || mf_set_default(&g->disk.storage, "local-lvm") < 0 ||
	    mf_set_default(&g->network.model, "virtio") < 0 ||
	    mf_set_default(&g->network.bridge, m->network.bridge ? m->network.bridge : "vmbr0") < 0)
		return -ENOMEM;
	return 0;
}

/* Every node the group's VMs land on needs a copy of the clone template:
 * Proxmox clones to another node ("target") only from shared storage
 * (POST /nodes/{node}/qemu/{vmid}/clone), and local-lvm is not shared. One
 * error per target_node entry, naming the first VM it gets. */
static void check_template_copies(struct mf_ctx *c, const struct manifest *m, size_t i)
{
	const struct mf_vm_group *g = &m->vms[i];
	const struct mf_template *t = g->template;
	size_t ti = t ? (size_t)(t - m->templates) : 0;
	char p[MF_PATH_MAX], who[96], name[64];
	unsigned vmid;

	if (!t || mf_failed(c, P(p, "templates[%zu].target_node", ti)) || mf_failed(c, P(p, "vms[%zu].target_node", i)))
		return;
	for (size_t k = 0; k < g->n_target_nodes && k < g->count; k++) {
		const char *node = g->target_nodes[k];
		bool seen = false;

		for (size_t e = 0; e < k; e++)
			seen = seen || streq_ptr(g->target_nodes[e], node);
		if (seen || !node || !manifest_find_node(m, node) || manifest_template_on(t, node, &vmid) == 0)
			continue;
		if (g->name && manifest_vm_name(g->name, (unsigned)k + 1, name, sizeof(name)) == 0 &&
		    hostname_label_valid(name))
			snprintf(who, sizeof(who), "VM %s", name);
		else
			snprintf(who, sizeof(who), "VM %zu of group '%s'", k + 1, g->id ? g->id : "?");
		mf_error_at(c, target_node_path(p, sizeof(p), "vms", i, g->n_target_nodes, k),
			    "%s is on %s, but template '%s' has no copy there: add %s to templates[%zu].target_node "
			    "(a clone stays on its template's node when storage is node-local)",
			    who, node, t->name, node, ti);
	}
}

static int file_cmp(const void *a, const void *b)
{
	const struct mf_vm_file *x = *(const struct mf_vm_file *const *)a, *y = *(const struct mf_vm_file *const *)b;
	int r = strcmp(x->path, y->path);

	if (r)
		return r;
	return x < y ? -1 : x > y;
}

/* vms[].files: assets that exist, each guest path once. */
static int check_vm_files(struct mf_ctx *c, const struct manifest *m, size_t i)
{
	const struct mf_vm_group *g = &m->vms[i];
	_cleanup_free_ const struct mf_vm_file **v = NULL;
	char p[MF_PATH_MAX];
	size_t n = 0;

	for (size_t j = 0; j < g->n_files; j++)
		mf_check_asset_ref(c, m, g->files[j].asset, P(p, "vms[%zu].files[%zu].asset", i, j));
	if (g->n_files < 2)
		return 0;
	v = calloc(g->n_files, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t j = 0; j < g->n_files; j++)
		if (g->files[j].path)
			v[n++] = &g->files[j];
	qsort(v, n, sizeof(*v), file_cmp);
	for (size_t j = 1, first = 0; j < n; j++) {
		if (!streq(v[first]->path, v[j]->path)) {
			first = j;
			continue;
		}
		mf_error_at(c, P(p, "vms[%zu].files[%zu].path", i, (size_t)(v[j] - g->files)),
			    "'%s' is already the path of vms[%zu].files[%zu]", v[j]->path, i,
			    (size_t)(v[first] - g->files));
	}
	return 0;
}

static int check_vm_group(struct mf_ctx *c, struct manifest *m, size_t i, struct uniq_set *names,
			  struct uniq_set *ips, struct uniq_set *vmids)
{
	struct mf_vm_group *g = &m->vms[i];
	const struct mf_network *net = &m->network;
	char p[MF_PATH_MAX], k[32], buf[64];
	int r;

	r = group_defaults(m, g);
	if (r < 0)
		return r;
	if (g->clone && !manifest_find_template(m, g->clone))
		mf_error_at(c, P(p, "vms[%zu].clone", i), "no template named '%s' in templates", g->clone);
	for (size_t j = 0; j < g->n_target_nodes; j++)
		if (g->target_nodes[j] && !manifest_find_node(m, g->target_nodes[j]))
			mf_error_at(c, g->n_target_nodes > 1 ? P(p, "vms[%zu].target_node[%zu]", i, j)
							     : P(p, "vms[%zu].target_node", i),
				    "no node named '%s' in nodes", g->target_nodes[j]);
	if (g->disk.storage && !word_valid(g->disk.storage, 64, "-_."))
		mf_error_at(c, P(p, "vms[%zu].disk.storage", i), "'%s' is not a Proxmox storage id", g->disk.storage);
	if (g->network.bridge && !ifname_valid(g->network.bridge))
		mf_error_at(c, P(p, "vms[%zu].network.bridge", i), "'%s' is not a Linux interface name",
			    g->network.bridge);
	if (g->disk.size && g->disk.size < (1ULL << 20))
		mf_error_at(c, P(p, "vms[%zu].disk.size", i), "is smaller than 1M");
	if ((uint64_t)g->vmid + g->count - 1 > 999999999)
		mf_error_at(c, P(p, "vms[%zu].count", i), "VMIDs of this group run past 999999999");
	if (!g->full_clone && g->template && g->template->storage && g->disk.storage &&
	    !streq(g->template->storage, g->disk.storage))
		mf_error_at(c, P(p, "vms[%zu].full_clone", i),
			    "a linked clone stays on its template's storage: template '%s' is on '%s', disk.storage is "
			    "'%s' (set disk.storage: %s, or full_clone: true)",
			    g->template->name, g->template->storage, g->disk.storage, g->template->storage);
	check_template_copies(c, m, i);
	r = check_vm_files(c, m, i);
	if (r < 0)
		return r;
	if (g->ipconfig0.ip && !c->subnet_failed && !c->gateway_failed) {
		if (g->ipconfig0.prefix != net->subnet.prefix)
			mf_error_at(c, P(p, "vms[%zu].ipconfig0", i), "prefix /%u differs from network.subnet's /%u",
				    g->ipconfig0.prefix, net->subnet.prefix);
		if (!ipv4_in_cidr(g->ipconfig0.gw, net->subnet.addr, net->subnet.prefix))
			mf_error_at(c, P(p, "vms[%zu].ipconfig0", i), "gw=%s is outside network.subnet",
				    ipv4_format(g->ipconfig0.gw, k, sizeof(k)));
		else if (g->ipconfig0.gw != net->gateway)
			mf_warning_at(c, P(p, "vms[%zu].ipconfig0", i), "gw=%s differs from network.gateway",
				      ipv4_format(g->ipconfig0.gw, k, sizeof(k)));
	}
	if (!g->name)
		return 0;
	r = manifest_vm_name(g->name, 1, buf, sizeof(buf));
	if (r == -EINVAL) {
		mf_error_at(c, P(p, "vms[%zu].name", i), "'%s': only {n} and {n:0W} (W = 1..9) may appear in braces",
			    g->name);
		mf_mark_failed(c, p);
		return 0;
	}
	if (g->count > 1 && !strstr(g->name, "{n")) {
		mf_error_at(c, P(p, "vms[%zu].name", i), "'%s' needs {n} or {n:02}: count is %u", g->name, g->count);
		mf_mark_failed(c, p);
		return 0;
	}
	for (unsigned j = 0; j < g->count; j++) {
		/* Not manifest_vm_expand(): that needs target_nodes, which may
		 * have failed to decode; names, addresses and VMIDs do not. */
		uint32_t ip = g->ipconfig0.ip + j;
		char name[64], what[80];

		r = manifest_vm_name(g->name, j + 1, name, sizeof(name));
		if (r < 0 || !hostname_label_valid(name)) {
			mf_error_at(c, P(p, "vms[%zu].name", i), "'%s' gives %s%s%s for VM %u, not a valid host name",
				    g->name, r < 0 ? "a name over 63 bytes" : "'", r < 0 ? "" : name, r < 0 ? "" : "'",
				    j + 1);
			mf_mark_failed(c, p);
			return 0;
		}
		snprintf(what, sizeof(what), "VM %s", name);
		r = uniq_add(names, name, P(p, "vms[%zu].name", i), what);
		if (r >= 0 && g->ipconfig0.ip) {
			if (ip < g->ipconfig0.ip) {
				mf_error_at(c, P(p, "vms[%zu].ipconfig0", i), "addresses run past 255.255.255.255");
				return 0;
			}
			check_host_ip(c, m, ip, P(p, "vms[%zu].ipconfig0", i), what);
			r = uniq_add(ips, ipv4_format(ip, k, sizeof(k)), P(p, "vms[%zu].ipconfig0", i), what);
		}
		snprintf(k, sizeof(k), "%u", g->vmid + j);
		if (r >= 0)
			r = uniq_add(vmids, k, P(p, "vms[%zu].vmid", i), what);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_vms(struct mf_ctx *c, struct manifest *m, struct uniq_set *names, struct uniq_set *ips,
		     struct uniq_set *vmids)
{
	struct uniq_set ids = {};
	size_t total = 0;
	char p[MF_PATH_MAX];
	int r = 0;

	for (size_t i = 0; i < m->n_vms; i++) {
		total += m->vms[i].count ? m->vms[i].count : 1;
		if (total > MANIFEST_MAX_VMS) {
			mf_error_at(c, P(p, "vms[%zu].count", i), "more than %d VMs in total", MANIFEST_MAX_VMS);
			mf_mark_failed(c, "vms");
			return 0;
		}
	}
	for (size_t i = 0; i < m->n_vms && r >= 0; i++) {
		if (m->vms[i].id)
			r = uniq_add(&ids, m->vms[i].id, P(p, "vms[%zu].id", i), NULL);
		if (r >= 0)
			r = check_vm_group(c, m, i, names, ips, vmids);
	}
	uniq_report(c, &ids, "VM group id");
	return r;
}

static void check_groups(struct mf_ctx *c, const struct manifest *m, char *const *ids, size_t n, const char *key)
{
	char p[MF_PATH_MAX];

	for (size_t i = 0; i < n; i++)
		if (ids[i] && !manifest_find_vm_group(m, ids[i]))
			mf_error_at(c, P(p, "k3s.%s[%zu]", key, i), "no VM group with id '%s' in vms", ids[i]);
}

/* k3s.api_vip: a host address of the subnet that no node, VM, edge or
 * resolver holds (the servers answer on it besides their own addresses). */
static void check_api_vip(struct mf_ctx *c, const struct manifest *m)
{
	uint32_t vip = m->k3s.api_vip;
	char a[16], name[64], p[MF_PATH_MAX];

	if (!vip || check_host_ip(c, m, vip, "k3s.api_vip", NULL))
		return;
	ipv4_format(vip, a, sizeof(a));
	for (size_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i].ip == vip) {
			mf_error_at(c, "k3s.api_vip", "%s is node %s's address", a,
				    m->nodes[i].name ? m->nodes[i].name : P(p, "nodes[%zu]", i));
			return;
		}
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct mf_vm_group *g = &m->vms[i];
		unsigned j = vip - g->ipconfig0.ip;

		if (!g->ipconfig0.ip || vip < g->ipconfig0.ip || j >= g->count ||
		    mf_failed(c, P(p, "vms[%zu].ipconfig0", i)))
			continue;
		if (g->name && manifest_vm_name(g->name, j + 1, name, sizeof(name)) == 0 && hostname_label_valid(name))
			mf_error_at(c, "k3s.api_vip", "%s is VM %s's address", a, name);
		else
			mf_error_at(c, "k3s.api_vip", "%s is the address of VM %u of group '%s'", a, j + 1,
				    g->id ? g->id : "?");
		return;
	}
	if (m->edge.present && m->edge.ip == vip) {
		mf_error_at(c, "k3s.api_vip", "%s is the edge's address (edge.ip)", a);
		return;
	}
	for (size_t i = 0; i < m->network.n_dns; i++)
		if (m->network.dns[i] == vip) {
			mf_error_at(c, "k3s.api_vip", "%s is a resolver's address (network.dns[%zu])", a, i);
			return;
		}
}

static bool cidr_overlap(const struct mf_cidr *a, const struct mf_cidr *b)
{
	return ipv4_in_cidr(a->addr, b->addr, b->prefix) || ipv4_in_cidr(b->addr, a->addr, a->prefix);
}

static const char *format_cidr(const struct mf_cidr *a, char buf[static 24])
{
	char ip[16];

	ipv4_format(a->addr, ip, sizeof(ip));
	snprintf(buf, 24, "%s/%u", ip, a->prefix);
	return buf;
}

/* The pod and service networks: defaults, then apart from each other and
 * from the management network (a pod or service address there would
 * shadow a host on it). A value that failed to decode is left out. */
static void check_k3s_cidrs(struct mf_ctx *c, struct manifest *m)
{
	struct mf_k3s *k = &m->k3s;
	const struct mf_cidr *net = &m->network.subnet;
	struct {
		struct mf_cidr *cidr;
		const char *key;
		struct mf_cidr def;
		bool given;
	} v[] = {
		{ &k->cluster_cidr, "cluster_cidr", { 10u << 24 | 42u << 16, 16 }, k->cluster_cidr.prefix != 0 },
		{ &k->service_cidr, "service_cidr", { 10u << 24 | 43u << 16, 16 }, k->service_cidr.prefix != 0 },
	};
	char p[MF_PATH_MAX], a[24], b[24];

	for (size_t i = 0; i < ELEMENTSOF(v); i++)
		if (!v[i].given && !mf_failed(c, P(p, "k3s.%s", v[i].key)))
			*v[i].cidr = v[i].def;
	for (size_t i = 0; i < ELEMENTSOF(v); i++) {
		if (!v[i].cidr->prefix || c->subnet_failed || !cidr_overlap(v[i].cidr, net))
			continue;
		mf_error_at(c, P(p, "k3s.%s", v[i].key), "%s%s overlaps network.subnet %s%s",
			    v[i].given ? "" : "the default ", format_cidr(v[i].cidr, a), format_cidr(net, b),
			    v[i].given ? "" : ": set it to a range the network does not use");
	}
	if (k->cluster_cidr.prefix && k->service_cidr.prefix && cidr_overlap(&k->cluster_cidr, &k->service_cidr)) {
		size_t at = v[1].given ? 1 : 0, other = 1 - at;

		mf_error_at(c, P(p, "k3s.%s", v[at].key), "%s overlaps k3s.%s %s%s", format_cidr(v[at].cidr, a),
			    v[other].key, format_cidr(v[other].cidr, b), v[other].given ? "" : " (the default)");
	}
}

/* k3s.disable: each component once (the values were checked when decoded). */
static void check_k3s_disable(struct mf_ctx *c, const struct mf_k3s *k)
{
	char p[MF_PATH_MAX];

	for (size_t i = 0; i < k->n_disable; i++)
		for (size_t j = 0; j < i; j++)
			if (k->disable[i] && streq_ptr(k->disable[i], k->disable[j])) {
				mf_error_at(c, P(p, "k3s.disable[%zu]", i), "'%s' is already in k3s.disable[%zu]",
					    k->disable[i], j);
				break;
			}
}

/* The air gap: the nodes reach no registry and no download site, so the
 * binary and the install script come from the bundle; so should the
 * images, or every pod waits for a pull that cannot happen. */
static void check_k3s_airgap(struct mf_ctx *c, const struct manifest *m)
{
	const struct mf_k3s *k = &m->k3s;
	const char *at = mf_given(c, "k3s.airgap") ? "k3s.airgap" : "k3s";

	if (!k->airgap.binary && !mf_failed(c, "k3s.airgap.binary"))
		mf_error_whole(c, at, "k3s.airgap.binary is required: the nodes have no internet");
	if (!k->airgap.install_script && !mf_failed(c, "k3s.airgap.install_script"))
		mf_error_whole(c, at, "k3s.airgap.install_script is required: the nodes have no internet");
	if (!k->airgap.images && !mf_failed(c, "k3s.airgap.images"))
		mf_warning_whole(c, at,
				 "k3s.airgap.images is not set: the nodes have no internet, and without this "
				 "archive K3s cannot pull its own images (pause, coredns, ...)");
	mf_check_asset_ref(c, m, k->airgap.binary, "k3s.airgap.binary");
	mf_check_asset_ref(c, m, k->airgap.images, "k3s.airgap.images");
	mf_check_asset_ref(c, m, k->airgap.install_script, "k3s.airgap.install_script");
}

/* A K3s group's own files must not take the paths of the K3s payload (the
 * air gap's, kube-vip's image), which the vm step adds to every VM of the
 * group. */
static void check_k3s_payload(struct mf_ctx *c, const struct manifest *m)
{
	char p[MF_PATH_MAX];

	for (size_t i = 0; i < m->n_vms; i++) {
		const struct mf_vm_group *g = &m->vms[i];
		struct mf_payload_file pl[MANIFEST_K3S_PAYLOAD_MAX];
		size_t n = manifest_k3s_payload(m, g, pl);

		for (size_t j = 0; j < g->n_files; j++)
			for (size_t e = 0; e < n; e++)
				if (streq_ptr(g->files[j].path, pl[e].path))
					mf_error_at(c, P(p, "vms[%zu].files[%zu].path", i, j),
						    "'%s' is where %s goes in every VM of group '%s' (in "
						    "k3s.%s)",
						    pl[e].path, pl[e].key, g->id, k3s_role(m, g->id));
	}
}

/* Two images archives of the payload at one path (their assets' files
 * have the same base name): the later would replace the earlier. A
 * server group's payload has them all. */
static void check_k3s_payload_paths(struct mf_ctx *c, const struct manifest *m)
{
	for (size_t i = 0; i < m->n_vms; i++) {
		struct mf_payload_file pl[MANIFEST_K3S_PAYLOAD_MAX];
		size_t n;

		if (!streq_ptr(k3s_role(m, m->vms[i].id), "servers"))
			continue;
		n = manifest_k3s_payload(m, &m->vms[i], pl);
		for (size_t e = 1; e < n; e++)
			for (size_t d = 0; d < e; d++) {
				/* charts by name: a name twice is check_k3s_charts()'s;
				 * an image twice in one list check_asset_list()'s */
				if (!streq(pl[e].path, pl[d].path) || streq(pl[e].key, "k3s.charts") ||
				    streq(pl[d].key, "k3s.charts") ||
				    (streq(pl[e].key, pl[d].key) && streq(pl[e].asset, pl[d].asset)))
					continue;
				if (streq(pl[e].asset, pl[d].asset))
					mf_error_at(c, pl[e].key, "asset '%s' is %s already", pl[e].asset, pl[d].key);
				else
					mf_error_at(c, pl[e].key,
						    "'%s' is where %s goes already: the two assets' files need "
						    "different base names",
						    pl[e].path, pl[d].key);
			}
		return;
	}
}

/* kube-vip serves api_vip: an address nothing announces is as much a
 * mistake as an announcer without an address. */
static void check_kube_vip(struct mf_ctx *c, const struct manifest *m)
{
	const struct mf_k3s *k = &m->k3s;
	bool vip = mf_given(c, "k3s.api_vip"), kube_vip = mf_given(c, "k3s.kube_vip");

	if (vip && !kube_vip)
		mf_error_at(c, "k3s.api_vip",
			    "k3s.api_vip needs k3s.kube_vip: the image that serves the address (docs/k3s.md)");
	if (kube_vip && !vip)
		mf_error_whole(c, "k3s.kube_vip", "k3s.kube_vip serves k3s.api_vip, which is not set");
	mf_check_asset_ref(c, m, k->kube_vip.image, "k3s.kube_vip.image");
}

/* Each chart's asset exists and its name is unique (one HelmChart, one
 * release, one archive per name). */
static void check_k3s_charts(struct mf_ctx *c, const struct manifest *m)
{
	const struct mf_k3s *k = &m->k3s;
	char p[MF_PATH_MAX];

	for (size_t i = 0; i < k->n_charts; i++) {
		mf_check_asset_ref(c, m, k->charts[i].chart, P(p, "k3s.charts[%zu].chart", i));
		for (size_t j = 0; j < i; j++)
			if (streq_ptr(k->charts[i].name, k->charts[j].name))
				mf_error_at(c, P(p, "k3s.charts[%zu].name", i), "chart '%s' is k3s.charts[%zu] already",
					    k->charts[i].name, j);
	}
}

static void check_k3s(struct mf_ctx *c, struct manifest *m)
{
	const struct mf_k3s *k = &m->k3s;
	char p[MF_PATH_MAX];
	size_t servers;

	if (!k->present)
		return;
	mf_check_secret(c, m, &k->token, "k3s.token");
	if (!secret_declared(m, MANIFEST_SECRET_CA_KEY))
		mf_error_whole(c, "k3s", "k3s needs the secret %s (its CAs derive from it; docs/k3s.md)",
			       MANIFEST_SECRET_CA_KEY);
	if (k->n_servers == 0)
		mf_error_at(c, "k3s.servers", "needs at least one VM group");
	check_groups(c, m, k->servers, k->n_servers, "servers");
	check_groups(c, m, k->agents, k->n_agents, "agents");
	for (size_t i = 0; i < k->n_agents; i++)
		for (size_t j = 0; j < k->n_servers; j++)
			if (streq_ptr(k->agents[i], k->servers[j]))
				mf_error_at(c, P(p, "k3s.agents[%zu]", i), "group '%s' is already in k3s.servers",
					    k->agents[i]);
	servers = manifest_count_vms(m, k->servers, k->n_servers);
	if (k->ha && (servers < 3 || servers % 2 == 0))
		mf_error_at(c, "k3s.servers",
			    "ha (embedded etcd) needs an odd number of server VMs, at least 3; the groups have %zu",
			    servers);
	else if (!k->ha && servers > 1)
		mf_error_at(c, "k3s.servers", "%zu server VMs need ha: true (embedded etcd)", servers);
	check_api_vip(c, m);
	check_k3s_cidrs(c, m);
	check_k3s_disable(c, k);
	check_k3s_airgap(c, m);
	check_kube_vip(c, m);
	check_k3s_charts(c, m);
	check_k3s_payload(c, m);
	check_k3s_payload_paths(c, m);
}

static void check_record(struct mf_ctx *c, const struct mf_dns_record *rec, size_t i)
{
	char p[MF_PATH_MAX];
	unsigned char buf[16];
	uint32_t ip;

	if (rec->name && !streq(rec->name, "@") && !dns_name_valid(rec->name) &&
	    !(rec->name[0] == '*' && rec->name[1] == '.' && dns_name_valid(rec->name + 2)))
		mf_error_at(c, P(p, "dns.records[%zu].name", i), "'%s' is not a name inside the zone (or @)",
			    rec->name);
	if (!rec->type || !rec->value)
		return;
	P(p, "dns.records[%zu].value", i);
	if (streq(rec->type, "A") && parse_ipv4(rec->value, &ip) < 0)
		mf_error_at(c, p, "'%s' is not an IPv4 address", rec->value);
	else if (streq(rec->type, "AAAA") && inet_pton(AF_INET6, rec->value, buf) != 1)
		mf_error_at(c, p, "'%s' is not an IPv6 address", rec->value);
	else if (streq(rec->type, "CNAME") && !dns_name_valid(rec->value))
		mf_error_at(c, p, "'%s' is not a DNS name", rec->value);
	else if (streq(rec->type, "TXT") && strlen(rec->value) > 255)
		mf_error_at(c, p, "TXT values are at most 255 bytes");
}

static void check_forwarder(struct mf_ctx *c, const struct mf_dns_forwarder *f, size_t i)
{
	char p[MF_PATH_MAX];
	uint32_t ip;

	if (!f->address)
		return;
	if ((f->protocol == MF_DNS_UDP || f->protocol == MF_DNS_TCP) && parse_ipv4(f->address, &ip) < 0)
		mf_error_at(c, P(p, "dns.forwarders[%zu].address", i), "'%s' is not an IPv4 address", f->address);
	if ((f->protocol == MF_DNS_TLS || f->protocol == MF_DNS_HTTPS) && parse_ipv4(f->address, &ip) < 0 &&
	    !dns_name_valid(f->address))
		mf_error_at(c, P(p, "dns.forwarders[%zu].address", i), "'%s' is not an IPv4 address or host name",
			    f->address);
	if (f->protocol == MF_DNS_TLS && !f->name)
		mf_error_at(c, P(p, "dns.forwarders[%zu]", i), "protocol tls needs name (the server's TLS name)");
	else if (f->protocol == MF_DNS_TLS && !dns_name_valid(f->name))
		mf_error_at(c, P(p, "dns.forwarders[%zu].name", i), "'%s' is not a DNS name", f->name);
	if (f->protocol == MF_DNS_HTTPS && !f->name)
		mf_error_at(c, P(p, "dns.forwarders[%zu]", i), "protocol https needs name (the DoH URL)");
	else if (f->protocol == MF_DNS_HTTPS && strncmp(f->name, "https://", 8) != 0)
		mf_error_at(c, P(p, "dns.forwarders[%zu].name", i), "'%s' is not an https:// URL", f->name);
}

/* The DNS payload: its assets exist, and no group's own file takes one
 * of its paths. Without it the DNS VMs' image must have Technitium. */
static void check_dns_airgap(struct mf_ctx *c, const struct manifest *m)
{
	const struct mf_dns *d = &m->dns;
	char p[MF_PATH_MAX];

	if (!d->airgap.package && !d->airgap.runtime) {
		if (!mf_failed(c, "dns.airgap"))
			mf_warning_whole(c, "dns", "no dns.airgap: the DNS VMs' image must have Technitium DNS Server "
						   "installed already (unit 'technitium', docs/dns.md)");
		return;
	}
	mf_check_asset_ref(c, m, d->airgap.package, "dns.airgap.package");
	mf_check_asset_ref(c, m, d->airgap.runtime, "dns.airgap.runtime");
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct mf_vm_group *g = &m->vms[i];
		struct mf_payload_file pl[MANIFEST_DNS_PAYLOAD_MAX];
		size_t n = manifest_dns_payload(m, g, pl);

		for (size_t j = 0; j < g->n_files; j++)
			for (size_t e = 0; e < n; e++)
				if (streq_ptr(g->files[j].path, pl[e].path))
					mf_error_at(c, P(p, "vms[%zu].files[%zu].path", i, j),
						    "'%s' is where dns.%s goes in the DNS VMs", pl[e].path, pl[e].key);
	}
}

/* Names the zone answers for must not fight: a record of the manifest's
 * for a name node_records already answers, or the wildcard answering for
 * a node's name with the edge's address. */
static void check_dns_names(struct mf_ctx *c, const struct manifest *m, bool vm_names)
{
	const struct mf_dns *d = &m->dns;
	char p[MF_PATH_MAX];
	struct mf_vm vm;

	for (size_t i = 0; i < d->n_records; i++) {
		const char *name = d->records[i].name;

		if (!name)
			continue;
		/* the node's A record: another A or a CNAME for it fights it */
		if (!d->node_records || !d->records[i].type ||
		    !(streq(d->records[i].type, "A") || streq(d->records[i].type, "CNAME")))
			continue;
		for (size_t k = 0; k < m->n_nodes; k++)
			if (streq_ptr(m->nodes[k].name, name))
				mf_error_at(c, P(p, "dns.records[%zu].name", i),
					    "'%s' collides with node %s's record (dns.node_records: true)", name, name);
		if (vm_names && manifest_find_vm(m, name, &vm) >= 0 && vm.ip)
			mf_error_at(c, P(p, "dns.records[%zu].name", i),
				    "'%s' collides with VM %s's record (dns.node_records: true)", name, name);
	}
	if (!d->wildcard || d->node_records)
		return;
	for (size_t k = 0; k < m->n_nodes; k++) {
		const char *node = m->nodes[k].name;
		bool own = false;

		for (size_t i = 0; node && i < d->n_records; i++)
			own = own || streq_ptr(d->records[i].name, node);
		if (!node || own)
			continue;
		mf_error_at(c, "dns.wildcard",
			    "*.%s would answer for node %s.%s with %s address: set dns.node_records: true or give "
			    "the nodes records",
			    d->zone ? d->zone : "?", node, d->zone ? d->zone : "?",
			    streq(d->wildcard, "edge") ? "the edge's" : "its");
		break;
	}
}

/* Whether every VM name could be expanded: a name lookup means something. */
static bool vm_names_known(struct mf_ctx *c, const struct manifest *m)
{
	char p[MF_PATH_MAX];

	for (size_t i = 0; i < m->n_vms; i++)
		if (mf_failed(c, P(p, "vms[%zu].name", i)) || mf_failed(c, P(p, "vms[%zu].count", i)))
			return false;
	return true;
}

static int check_dns(struct mf_ctx *c, struct manifest *m)
{
	struct mf_dns *d = &m->dns;
	bool names = vm_names_known(c, m);
	struct mf_vm vm;
	uint32_t ip;

	if (!d->present)
		return 0;
	mf_check_secret(c, m, &d->admin_password, "dns.admin_password");
	if (names && d->primary && manifest_find_vm(m, d->primary, &vm) < 0)
		mf_error_at(c, "dns.primary", "no VM named '%s' (after expanding vms[].name)", d->primary);
	if (names && d->secondary && manifest_find_vm(m, d->secondary, &vm) < 0)
		mf_error_at(c, "dns.secondary", "no VM named '%s' (after expanding vms[].name)", d->secondary);
	if (d->secondary && streq_ptr(d->primary, d->secondary))
		mf_error_at(c, "dns.secondary", "must differ from dns.primary");
	if (d->wildcard && streq(d->wildcard, "edge") && !m->edge.present)
		mf_error_at(c, "dns.wildcard", "'edge' needs an edge section");
	else if (d->wildcard && !streq(d->wildcard, "edge") && parse_ipv4(d->wildcard, &ip) < 0)
		mf_error_at(c, "dns.wildcard", "'%s' is neither an IPv4 address nor 'edge'", d->wildcard);
	for (size_t i = 0; i < d->n_records; i++)
		check_record(c, &d->records[i], i);
	for (size_t i = 0; i < d->n_forwarders; i++) {
		char p[MF_PATH_MAX];

		check_forwarder(c, &d->forwarders[i], i);
		/* Technitium's forwarders setting has one forwarderProtocol */
		if (i > 0 && d->forwarders[i].protocol != d->forwarders[0].protocol)
			mf_error_at(c, P(p, "dns.forwarders[%zu].protocol", i),
				    "Technitium's forwarders share one protocol: dns.forwarders[0]'s is %s",
				    manifest_dns_proto_name(d->forwarders[0].protocol));
	}
	check_dns_airgap(c, m);
	if (m->cluster.domain && mf_set_default(&d->zone, m->cluster.domain) < 0)
		return -ENOMEM;
	if (m->edge.present && mf_set_default(&d->wildcard, "edge") < 0)
		return -ENOMEM;
	check_dns_names(c, m, names);
	return 0;
}

/* name relative to zone ("pve" for pve.home.arpa in home.arpa); NULL when
 * it is not a single label under it */
static const char *zone_label(const char *name, const char *zone, char *buf, size_t size)
{
	size_t n = strlen(name), z = strlen(zone);

	if (n <= z + 1 || name[n - z - 1] != '.' || strcasecmp(name + n - z, zone) != 0 || n - z - 1 >= size)
		return NULL;
	memcpy(buf, name, n - z - 1);
	buf[n - z - 1] = '\0';
	return strchr(buf, '.') ? NULL : buf;
}

/* The web consoles' names: inside the zone, distinct, and not a name the
 * zone already answers otherwise (a node's or VM's record, one of
 * dns.records). */
static void check_edge_hosts(struct mf_ctx *c, const struct manifest *m, const char *zone)
{
	const struct mf_edge *e = &m->edge;
	/* the UIs of gitops, monitoring and the registry: without a dns
	 * section, check_app_host() says they need one */
	bool apps = m->dns.present;
	const struct {
		const char *key, *host;
	} h[] = { { "edge.dashboard_host", e->dashboard_host },
		  { "edge.proxmox_host", e->proxmox_host },
		  { "edge.dns_host", e->dns_host },
		  { "gitops.host", apps ? m->gitops.host : NULL },
		  { "monitoring.hosts.grafana", apps ? m->monitoring.hosts.grafana : NULL },
		  { "monitoring.hosts.prometheus", apps ? m->monitoring.hosts.prometheus : NULL },
		  { "registry.host", apps ? m->registry.host : NULL } };
	char label[256], p[MF_PATH_MAX];
	struct mf_vm vm;

	for (size_t i = 0; i < ELEMENTSOF(h); i++) {
		const char *l;

		if (!h[i].host)
			continue;
		for (size_t j = 0; j < i; j++)
			if (h[j].host && strcasecmp(h[i].host, h[j].host) == 0)
				mf_error_at(c, h[i].key, "'%s' is also %s: each web console needs its own name", h[i].host,
					    h[j].key);
		if (!has_suffix_domain(h[i].host, zone)) {
			mf_error_at(c, h[i].key, "'%s' is not inside the DNS zone '%s'", h[i].host, zone);
			continue;
		}
		/* the wildcard certificate *.ZONE covers one label below it */
		l = zone_label(h[i].host, zone, label, sizeof(label));
		if (!l) {
			mf_error_at(c, h[i].key, "'%s' is not one label below '%s': the edge's certificate is for *.%s",
				    h[i].host, zone, zone);
			continue;
		}
		/* with node_records the zone gets their records (edge.ip) */
		if (!m->dns.present || !m->dns.node_records)
			continue;
		for (size_t k = 0; k < m->n_nodes; k++)
			if (m->nodes[k].name && strcasecmp(m->nodes[k].name, l) == 0)
				mf_error_at(c, h[i].key, "'%s' is node %s's name in the zone", h[i].host, l);
		if (manifest_find_vm(m, l, &vm) >= 0 && vm.ip)
			mf_error_at(c, h[i].key, "'%s' is VM %s's name in the zone", h[i].host, l);
		for (size_t k = 0; k < m->dns.n_records; k++)
			if (m->dns.records[k].name && strcasecmp(m->dns.records[k].name, l) == 0)
				mf_error_at(c, P(p, "dns.records[%zu].name", k),
					    "'%s' collides with the edge's record for %s (dns.node_records: true)", l,
					    h[i].key);
	}
}

static bool k3s_disables(const struct manifest *m, const char *what)
{
	for (size_t i = 0; i < m->k3s.n_disable; i++)
		if (streq_ptr(m->k3s.disable[i], what))
			return true;
	return false;
}

static int check_edge(struct mf_ctx *c, struct manifest *m, struct uniq_set *ips)
{
	struct mf_edge *e = &m->edge;
	const char *zone = m->dns.zone ? m->dns.zone : m->cluster.domain;
	char k[16], host[320];

	if (!e->present)
		return 0;
	check_host_ip(c, m, e->ip, "edge.ip", NULL);
	if (uniq_add(ips, ipv4_format(e->ip, k, sizeof(k)), "edge.ip", NULL) < 0)
		c->oom = -ENOMEM;
	/* Traefik is K3s's; kube-vip announces its address (docs/edge.md) */
	if (!m->k3s.present)
		mf_error_whole(c, "edge", "the edge is K3s's Traefik: it needs a k3s section");
	else if (!m->k3s.kube_vip.image && !mf_failed(c, "k3s.kube_vip") && !mf_failed(c, "k3s.api_vip"))
		mf_error_at(c, "edge.ip", "needs k3s.kube_vip: kube-vip announces the edge's address (docs/edge.md)");
	if (m->k3s.present && k3s_disables(m, "traefik"))
		mf_error_at(c, "k3s.disable", "disables traefik, which serves the edge");
	/* ServiceLB would publish the nodes' addresses for Traefik's Service
	 * and take ports 80 and 443 on every node; a class to keep it out
	 * cannot be added to the Service K3s made first (immutable) */
	if (m->k3s.present && !k3s_disables(m, "servicelb"))
		mf_error_at(c, "edge.ip",
			    "needs servicelb in k3s.disable: K3s's ServiceLB would give Traefik the nodes' addresses, "
			    "not edge.ip (docs/edge.md)");
	if (e->cert == MF_CERT_ACME_DNS01 && !e->acme.email)
		mf_error_at(c, "edge.certificate", "acme-dns01 needs an acme section");
	if (e->cert == MF_CERT_INTERNAL_CA && e->acme.email)
		mf_error_at(c, "edge.acme", "is only used with certificate: acme-dns01");
	if (e->acme.email && !strchr(e->acme.email, '@'))
		mf_error_at(c, "edge.acme.email", "'%s' is not an e-mail address", e->acme.email);
	if (e->acme.server && strncmp(e->acme.server, "https://", 8) != 0)
		mf_error_at(c, "edge.acme.server", "'%s' is not an https:// URL", e->acme.server);
	if (e->acme.provider && !streq(e->acme.provider, MANIFEST_ACME_PROVIDER))
		mf_error_at(c, "edge.acme.provider",
			    "'%s' is not a DNS provider of this build: only technitium (the lab's own DNS answers the "
			    "challenges through its API)",
			    e->acme.provider);
	if (e->cert == MF_CERT_ACME_DNS01 && !m->dns.present)
		mf_error_at(c, "edge.certificate",
			    "acme-dns01 answers the challenges with TXT records in the lab's DNS: needs a dns section");
	if (e->cert == MF_CERT_ACME_DNS01 && e->acme.email &&
	    (mf_set_default(&e->acme.server, MANIFEST_ACME_SERVER) < 0 ||
	     mf_set_default(&e->acme.provider, MANIFEST_ACME_PROVIDER) < 0))
		return -ENOMEM;
	if (e->dashboard_password.name)
		mf_check_secret(c, m, &e->dashboard_password, "edge.dashboard_password");
	if (e->dashboard_host && !e->dashboard_password.name)
		mf_error_at(c, "edge.dashboard_host",
			    "needs edge.dashboard_password: the dashboard is only served behind basic auth");
	if (e->dashboard_password.name && !e->dashboard_host)
		mf_error_at(c, "edge.dashboard_password", "is only used with edge.dashboard_host");
	if (!e->rate_limit.average && !mf_given(c, "edge.rate_limit")) {
		e->rate_limit.average = MANIFEST_EDGE_RATE_AVERAGE;
		e->rate_limit.burst = MANIFEST_EDGE_RATE_BURST;
	}
	if (e->n_allow == 0 && !mf_given(c, "edge.allow") && !c->subnet_failed) {
		e->allow = calloc(1, sizeof(*e->allow));
		if (!e->allow)
			return -ENOMEM;
		e->allow[0] = m->network.subnet;
		e->n_allow = 1;
	}
	if (mf_given(c, "edge.allow") && e->n_allow == 0)
		mf_error_at(c, "edge.allow", "is empty: no client could reach the edge");
	if (!zone)
		return 0;
	if (snprintf(host, sizeof(host), "pve.%s", zone) < (int)sizeof(host) && mf_set_default(&e->proxmox_host, host) < 0)
		return -ENOMEM;
	if (m->dns.present && snprintf(host, sizeof(host), "dns.%s", zone) < (int)sizeof(host) &&
	    mf_set_default(&e->dns_host, host) < 0)
		return -ENOMEM;
	if (e->dns_host && !m->dns.present)
		mf_error_at(c, "edge.dns_host", "names the DNS console, but there is no dns section");
	check_edge_hosts(c, m, zone);
	/* without node_records only the wildcard answers for the consoles */
	if (m->dns.present && !m->dns.node_records && m->dns.wildcard && !streq(m->dns.wildcard, "edge") &&
	    !streq(m->dns.wildcard, ipv4_format(e->ip, k, sizeof(k))))
		mf_error_at(c, "dns.wildcard",
			    "'%s' is not the edge's address: the web consoles' names would not reach the edge (set "
			    "dns.node_records: true, or wildcard: edge)",
			    m->dns.wildcard);
	return 0;
}

static int check_secrets(struct mf_ctx *c, struct manifest *m)
{
	struct mf_secrets *s = &m->secrets;
	struct uniq_set names = {};
	char p[MF_PATH_MAX];
	int r = 0;

	if (s->key_source && !streq(s->key_source, "cmdline") && !streq(s->key_source, "initramfs") &&
	    !(strncmp(s->key_source, "file:/", 6) == 0 && !strstr(s->key_source, "/../") &&
	      !strstr(s->key_source, "/./")))
		mf_error_at(c, "secrets.key_source", "'%s' is not cmdline, initramfs or file:/ABSOLUTE/PATH",
			    s->key_source);
	for (size_t i = 0; i < s->n_names && r >= 0; i++)
		if (s->names[i])
			r = uniq_add(&names, s->names[i], P(p, "secrets.names[%zu]", i), NULL);
	uniq_report(c, &names, "secret name");
	if (r >= 0)
		r = mf_set_default(&s->key_source, "cmdline");
	return r;
}

/* A Proxmox calendar event, as far as its form goes ("02:30", "sun
 * 01:00", "mon..fri 22:00", "*-*-01 03:00", "daily"): Proxmox parses it
 * (PVE::CalendarEvent) when the job is written and says what is wrong. */
static bool calendar_valid(const char *s)
{
	size_t fields = 0;

	if (isempty(s) || strlen(s) > 128 || strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz*.,:/-~ ") != strlen(s))
		return false;
	for (const char *p = s; *p; p++)
		if (*p != ' ' && (p == s || p[-1] == ' '))
			fields++;
	return fields >= 1 && fields <= 3 && s[0] != ' ' && s[strlen(s) - 1] != ' ';
}

/* user@realm or user@realm!tokenid (PBS's Userid and Authid). */
static bool pbs_auth_id_valid(const char *s)
{
	const char *at = strchr(s, '@'), *bang = strchr(s, '!');
	char realm[64];

	if (!at || at == s || (size_t)(at - s) > 64 || strchr(at + 1, '@'))
		return false;
	if (bang && (bang < at || !word_valid(bang + 1, 64, "-_.")))
		return false;
	snprintf(realm, sizeof(realm), "%.*s", bang ? (int)(bang - at - 1) : (int)strlen(at + 1), at + 1);
	return word_valid(realm, 32, "-_.");
}

/* "AA:BB:..." — 32 bytes in hex, as PBS shows its certificate's SHA-256. */
static bool fingerprint_valid(const char *s)
{
	if (strlen(s) != 95)
		return false;
	for (size_t i = 0; i < 95; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static void check_pbs(struct mf_ctx *c, const struct manifest *m)
{
	const struct mf_backup *b = &m->backup;
	uint32_t ip;

	if (b->pbs.server && parse_ipv4(b->pbs.server, &ip) < 0 && !dns_name_valid(b->pbs.server))
		mf_error_at(c, "backup.pbs.server", "'%s' is neither an IPv4 address nor a DNS name", b->pbs.server);
	if (b->pbs.datastore && !word_valid(b->pbs.datastore, 32, "-_."))
		mf_error_at(c, "backup.pbs.datastore", "'%s' is not a datastore name (letters, digits, - _ .)",
			    b->pbs.datastore);
	if (b->pbs.username && !pbs_auth_id_valid(b->pbs.username))
		mf_error_at(c, "backup.pbs.username", "'%s' is not user@realm or user@realm!token", b->pbs.username);
	if (b->pbs.password.name)
		mf_check_secret(c, m, &b->pbs.password, "backup.pbs.password");
	if (b->pbs.fingerprint && !fingerprint_valid(b->pbs.fingerprint))
		mf_error_at(c, "backup.pbs.fingerprint",
			    "'%s' is not a SHA-256 fingerprint (32 hex bytes separated by ':', as PBS shows it)",
			    b->pbs.fingerprint);
	if (b->pbs.namespace && !word_valid(b->pbs.namespace, 255, "-_./"))
		mf_error_at(c, "backup.pbs.namespace", "'%s' is not a namespace (a/b/c)", b->pbs.namespace);
}

static int check_backup(struct mf_ctx *c, struct manifest *m)
{
	struct mf_backup *b = &m->backup;

	if (!b->present)
		return 0;
	if (m->n_vms == 0)
		mf_error_at(c, "backup", "the manifest has no VMs to back up");
	if (mf_set_default(&b->schedule, MANIFEST_BACKUP_SCHEDULE) < 0 || mf_set_default(&b->storage, MANIFEST_BACKUP_STORAGE) < 0)
		return -ENOMEM;
	if (!calendar_valid(b->schedule))
		mf_error_at(c, "backup.schedule",
			    "'%s' is not a Proxmox calendar event (\"02:30\", \"sun 01:00\", \"mon..fri 22:00\")",
			    b->schedule);
	b->pbs.present = mf_given(c, "backup.pbs");
	if (b->pbs.present)
		check_pbs(c, m);
	if (!word_valid(b->storage, 64, "-_."))
		mf_error_at(c, "backup.storage", "'%s' is not a Proxmox storage id", b->storage);
	else if (b->pbs.present && (streq(b->storage, MANIFEST_BACKUP_STORAGE) || streq(b->storage, "local-lvm")))
		mf_error_at(c, "backup.storage", "'%s' is the installer's own storage; name the Proxmox Backup Server "
						 "storage backup.pbs makes (\"pbs\", say)",
			    b->storage);
	else if (streq(b->storage, MANIFEST_BACKUP_STORAGE))
		mf_warning_at(c, "backup", "storage 'local' is each node's own disk: a node's backups are lost with it "
					   "(a shared or Proxmox Backup Server storage keeps them; docs/operations.md)");
	if (!mf_given(c, "backup.keep")) {
		b->keep.daily = 7;
		b->keep.weekly = 4;
		b->keep.monthly = 6;
	} else if (!b->keep.last && !b->keep.daily && !b->keep.weekly && !b->keep.monthly && !b->keep.yearly)
		mf_error_at(c, "backup.keep", "keeps no backup: name at least one of last, daily, weekly, monthly, yearly");
	return 0;
}

/* status: on by default, on MANIFEST_STATUS_PORT. */
static void check_status(struct manifest *m)
{
	if (!m->status.present)
		m->status.enabled = true;
	if (!m->status.port)
		m->status.port = MANIFEST_STATUS_PORT;
}

int manifest_check(struct mf_ctx *c, struct manifest *m)
{
	struct uniq_set names = {}, ips = {}, vmids = {};
	int r;

	c->subnet_failed = mf_failed(c, "network.subnet");
	c->gateway_failed = mf_failed(c, "network.gateway");
	r = check_cluster(c, m);
	if (r >= 0)
		r = check_network(c, m);
	if (r >= 0)
		r = check_secrets(c, m);
	if (r >= 0)
		r = check_nodes(c, m, &names, &ips);
	if (r >= 0)
		r = check_assets_proxmox(c, m);
	if (r >= 0)
		r = check_templates(c, m, &vmids);
	if (r >= 0)
		r = check_vms(c, m, &names, &ips, &vmids);
	if (r >= 0)
		r = check_dns(c, m);
	if (r >= 0)
		check_k3s(c, m);
	if (r >= 0)
		r = check_edge(c, m, &ips);
	if (r >= 0)
		r = check_backup(c, m);
	if (r >= 0)
		check_status(m);
	uniq_report(c, &names, "host name");
	uniq_report(c, &ips, "IP");
	uniq_report(c, &vmids, "VMID");
	return r < 0 ? r : c->oom;
}
