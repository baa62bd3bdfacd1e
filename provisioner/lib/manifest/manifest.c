/* SPDX-License-Identifier: MIT */
/*
 * manifest.c — load cluster.yaml: read (bounded), parse into a YAML tree
 * (yaml-util.c), decode the tree into struct manifest with one declarative
 * table per mapping, then run the cross-field checks (manifest-check.c).
 *
 * Each table row names a key, the parser for its value, where the value
 * goes and whether the key is required; a key not in the table is an
 * error. Every rule about a single value is written once, in its parser.
 * Decoding never stops at the first problem: each problem becomes a
 * diagnostic with line:column and field path, and decoding goes on. The
 * machinery and the common parsers are manifest-fields.c's; the values
 * particular to one field and the tables themselves are here.
 */
#define _GNU_SOURCE 1 /* vasprintf */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest-internal.h"
#include "base64.h"
#include "fileio.h"
#include "manifest.h"
#include "parse.h"
#include "util.h"
#include "yaml-util.h"

/* ---- special values -------------------------------------------------------- */

/* Terraform's `agent = 1`: 0, 1, true or false. */
static int p_agent(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	if (n->kind == YNODE_SCALAR && n->plain && (streq(n->value, "0") || streq(n->value, "1"))) {
		*AT(base, f->offset, bool) = streq(n->value, "1");
		return 0;
	}
	if (n->kind == YNODE_SCALAR && n->plain && !streq(n->value, "true") && !streq(n->value, "false"))
		return mf_derr(c, n, "must be 0, 1, true or false, not '%s'", n->value);
	return mf_p_bool(c, n, base, f);
}

/* network.syslog: "HOST[:PORT]", HOST an IPv4 address or a DNS name, PORT
 * 1-65535 (default 514). */
static int p_syslog(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_network *net = base;
	const char *s = mf_string_value(c, n), *colon;
	char host[256];
	unsigned port = 514;
	uint32_t ip;
	size_t hlen;

	(void)f;
	if (!s)
		return -EINVAL;
	colon = strchr(s, ':');
	hlen = colon ? (size_t)(colon - s) : strlen(s);
	if (colon) {
		unsigned long v = 0;
		const char *p = colon + 1;

		if (!*p || strlen(p) > 5)
			goto bad;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				goto bad;
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (v < 1 || v > 65535 || colon[1] == '0')
			goto bad;
		port = (unsigned)v;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (parse_ipv4(host, &ip) < 0 && !dns_name_valid(host))
		goto bad;
	free(net->syslog_host);
	net->syslog_host = strdup(host);
	if (!net->syslog_host)
		return c->oom = -ENOMEM;
	net->syslog_port = port;
	return 0;
bad:
	return mf_derr(c, n, "'%s' is not HOST[:PORT] (an IPv4 address or DNS name, port 1-65535)", s);
}

/* `{secret: NAME}`, the only way to give a secret. */
static const struct field secret_fields[];

static int p_secret(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_secret *s = AT(base, f->offset, struct mf_secret);

	if (n->kind == YNODE_SCALAR && !ynode_is_null(n))
		return mf_derr(c, n, "secrets are never given in clear text; use {secret: NAME}");
	if (n->kind != YNODE_MAPPING)
		return mf_derr(c, n, "must be {secret: NAME}, not %s", ynode_kind_name(n));
	s->pos = (struct mf_pos){ n->line, n->column };
	return mf_decode_map(c, n, secret_fields, s);
}

/* "ip=10.0.10.21/24,gw=10.0.10.1", Proxmox's ipconfig0 syntax. */
static int p_ipconfig(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_vm_group *g = AT(base, f->offset, struct mf_vm_group);
	const char *s = mf_string_value(c, n);
	_cleanup_free_ char *copy = NULL;
	bool have_ip = false;
	char *save = NULL;

	if (!s)
		return -EINVAL;
	copy = strdup(s);
	if (!copy)
		return c->oom = -ENOMEM;
	for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(part, '=');

		if (!eq)
			return mf_derr(c, n, "'%s' is not key=value (like ip=10.0.10.21/24,gw=10.0.10.1)", part);
		*eq = '\0';
		if (streq(part, "ip")) {
			if (streq(eq + 1, "dhcp"))
				return mf_derr(c, n, "ip=dhcp is not supported: VMs get fixed addresses");
			if (parse_cidr(eq + 1, false, &g->ipconfig0.ip, &g->ipconfig0.prefix) < 0)
				return mf_derr(c, n, "ip='%s' is not an address with prefix like 10.0.10.21/24", eq + 1);
			have_ip = true;
		} else if (streq(part, "gw")) {
			if (parse_ipv4(eq + 1, &g->ipconfig0.gw) < 0)
				return mf_derr(c, n, "gw='%s' is not an IPv4 address", eq + 1);
		} else if (streq(part, "ip6") || streq(part, "gw6"))
			return mf_derr(c, n, "%s: IPv6 is not supported yet", part);
		else
			return mf_derr(c, n, "unknown ipconfig0 key '%s' (ip, gw)", part);
	}
	if (!have_ip)
		return mf_derr(c, n, "needs ip=ADDRESS/PREFIX");
	return 0;
}

/* target_node: a node name, or a list of them used round-robin. */
static int p_label_elem(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	(void)f;
	struct field ef = { .offset = 0 };
	return mf_p_label(c, n, base, &ef);
}

static int p_ident_elem(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	(void)f;
	struct field ef = { .offset = 0 };
	return mf_p_ident(c, n, base, &ef);
}

static const struct seq_spec labels_spec = { .elem = p_label_elem, .elem_size = sizeof(char *), .max = MANIFEST_MAX_NODES,
					     .pos_offset = SIZE_MAX };
static const struct seq_spec idents_spec = { .elem = p_ident_elem, .elem_size = sizeof(char *), .max = 256,
					     .pos_offset = SIZE_MAX };
static const struct seq_spec ipv4s_spec = { .elem = mf_p_ipv4_elem, .elem_size = sizeof(uint32_t), .max = 16,
					    .pos_offset = SIZE_MAX };

/* vms[].target_node and templates[].target_node: a node name, or a
 * non-empty list of them. f->offset is the char ** array, f->offset2 its
 * count; either way the model holds a list. */
static int p_target_nodes(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const struct field list = { f->key, mf_p_seq, f->offset, true, &labels_spec, f->offset2 };
	static const struct field one = { .offset = 0 };
	_cleanup_free_ char **v = NULL;

	if (n->kind == YNODE_SEQUENCE) {
		if (n->n == 0)
			return mf_derr(c, n, "must name at least one node");
		return mf_p_seq(c, n, base, &list);
	}
	v = calloc(1, sizeof(char *));
	if (!v)
		return c->oom = -ENOMEM;
	if (mf_p_label(c, n, v, &one) < 0)
		return -EINVAL;
	*AT(base, f->offset, char **) = TAKE_PTR(v);
	*AT(base, f->offset2, size_t) = 1;
	return 0;
}

/* vms[].ciuser: a portable Linux user name (lower case letters, digits,
 * '_' and '-', not starting with a digit or '-', at most 32 bytes), and
 * not root: cloud-init's `user` is the account it creates for people. */
static int p_ciuser(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);
	size_t len;

	if (!s)
		return -EINVAL;
	len = strlen(s);
	if (len > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		goto bad;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			goto bad;
	if (streq(s, "root"))
		return mf_derr(c, n, "must not be root: cloud-init creates this user (leave ciuser out for the "
			    "image's default user)");
	return mf_set_string(c, base, f, s);
bad:
	return mf_derr(c, n, "'%s' is not a Linux user name (1-32 of a-z, 0-9, '_', '-'; starting with a-z or '_')",
		    s);
}

/* The key types OpenSSH's sshd accepts in authorized_keys by default
 * (DSA is gone since OpenSSH 9.8; certificates are not keys). */
static const char *const ssh_key_types[] = {
	"ssh-ed25519",
	"ssh-rsa",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com",
	NULL,
};

static const char *ssh_key_type(const char *s, size_t len)
{
	for (size_t i = 0; ssh_key_types[i]; i++)
		if (strlen(ssh_key_types[i]) == len && strncmp(ssh_key_types[i], s, len) == 0)
			return ssh_key_types[i];
	return NULL;
}

/* Whether the key blob (RFC 4253 section 6.6) starts with `type` as an SSH
 * string: a big-endian uint32 length, then the bytes. */
static bool ssh_blob_has_type(const uint8_t *blob, size_t size, const char *type)
{
	size_t tlen = strlen(type);
	uint32_t len;

	if (size < 4)
		return false;
	len = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | blob[3];
	return len == tlen && size - 4 >= tlen && memcmp(blob + 4, type, tlen) == 0;
}

/* One OpenSSH public key line as authorized_keys holds it, without
 * options: "TYPE BASE64 [comment]" (sshd(8), AUTHORIZED_KEYS FILE FORMAT).
 * The base64 must decode, and the blob must name the same type. */
static int p_sshkey_elem(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	static const struct field ef = { .offset = 0 };
	const char *s = mf_string_value(c, n), *type, *b64;
	_cleanup_free_ uint8_t *blob = NULL;
	size_t tlen, blen, size = 0;
	int r;

	(void)f;
	if (!s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p == '\n' || *p == '\r')
			return mf_derr(c, n, "must be one line: one OpenSSH public key per list entry");
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return mf_derr(c, n, "contains a control character");
	}
	tlen = strcspn(s, " \t");
	type = ssh_key_type(s, tlen);
	if (!type)
		return mf_derr(c, n,
			    "'%.*s' is not an SSH key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, "
			    "sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com); a key line is TYPE "
			    "BASE64 [comment], without options",
			    (int)(tlen < 64 ? tlen : 64), s);
	b64 = s + tlen + strspn(s + tlen, " \t");
	blen = strcspn(b64, " \t");
	if (blen == 0)
		return mf_derr(c, n, "needs the base64 key after '%s' (TYPE BASE64 [comment])", type);
	r = base64_decode(b64, blen, &blob, &size);
	if (r == -ENOMEM)
		return c->oom = -ENOMEM;
	if (r < 0)
		return mf_derr(c, n, "the key after '%s' is not valid base64", type);
	if (!ssh_blob_has_type(blob, size, type))
		return mf_derr(c, n, "the base64 key is not of type %s (the key blob starts with its type name)", type);
	return mf_set_string(c, base, &ef, s);
}

/* A path in the guest (vms[].files[].path): absolute and normalized (no
 * empty, '.' or '..' components, no trailing '/'), no control characters,
 * at most MANIFEST_VM_FILE_PATH_MAX bytes (PATH_MAX with its NUL). */
static int p_guest_path(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	if (s[0] != '/')
		return mf_derr(c, n, "'%s' is not an absolute path", s);
	if (strlen(s) > MANIFEST_VM_FILE_PATH_MAX)
		return mf_derr(c, n, "is longer than %d bytes", MANIFEST_VM_FILE_PATH_MAX);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return mf_derr(c, n, "contains a control character");
	for (const char *p = s + 1;; ) {
		size_t len = strcspn(p, "/");

		if (len == 0)
			return mf_derr(c, n, "'%s' is not normalized: no '//' and no trailing '/'", s);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return mf_derr(c, n, "'%s' must not have '.' or '..' components", s);
		if (!p[len])
			break;
		p += len + 1;
	}
	return mf_set_string(c, base, f, s);
}

/* A permission mode (vms[].files[].mode): an octal string ("0644", "755"),
 * or a plain integer with a leading 0, which YAML 1.1 readers (PyYAML)
 * take as octal too. A plain integer without one is refused: `mode: 644`
 * is decimal 644 (0o1204) to every YAML reader, never what was meant. */
static int p_mode(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_scalar(c, n, "a mode like \"0644\"");
	size_t len, digits;
	unsigned v = 0;

	if (!s)
		return -EINVAL;
	len = strlen(s);
	digits = strspn(s, "01234567");
	if (n->plain && s[0] != '0' && digits == len && len >= 3 && len <= 4)
		return mf_derr(c, n, "%s is a decimal integer to YAML; write \"0%s\" (octal)", s, s);
	if (len < 3 || digits != len || len > (s[0] == '0' ? 5u : 4u) || (n->plain && s[0] != '0'))
		return mf_derr(c, n, "'%s' is not a mode: 3-4 octal digits like \"0644\"", s);
	for (const char *p = s; *p; p++)
		v = v * 8 + (unsigned)(*p - '0');
	*AT(base, f->offset, unsigned) = v;
	return 0;
}

static const struct seq_spec sshkeys_spec = { .elem = p_sshkey_elem, .elem_size = sizeof(char *), .max = 256,
					      .pos_offset = SIZE_MAX };

/* ---- the tables ------------------------------------------------------------- */

static const struct range r_version = { 1, 1 };
static const struct range r_vlan = { 1, 4094 };
static const struct range r_mtu = { 576, 9216 };
static const struct range r_vmid = { 100, 999999999 };
static const struct range r_count = { 1, MANIFEST_MAX_VMS };
static const struct range r_cores = { 1, 512 };
static const struct range r_sockets = { 1, 16 };
static const struct range r_memory = { 16, 4u << 20 }; /* MiB: 16 MiB .. 4 TiB */

static const char *const wipe_names[] = { "never", "devopslab", "always", NULL };
static const char *const role_names[] = { "member", "first", NULL };
static const char *const transport_names[] = { "nvme", "sata", "usb", "virtio", "mmc", NULL };
static const char *const disk_type_names[] = { "scsi", "virtio", "sata", "ide", NULL };
static const char *const nic_model_names[] = { "virtio", "e1000", "rtl8139", "vmxnet3", NULL };
static const char *const record_type_names[] = { "A", "AAAA", "CNAME", "TXT", NULL };

static const char *const cert_names[] = { "internal-ca", "acme-dns01", NULL };

static const struct field secret_fields[] = {
	FIELD("secret", mf_p_ident, struct mf_secret, name, true, NULL),
	{}
};

static const struct field cluster_fields[] = {
	FIELD("name", mf_p_str, struct mf_cluster, name, true, NULL),
	FIELD("domain", mf_p_dnsname, struct mf_cluster, domain, true, NULL),
	FIELD("timezone", mf_p_str, struct mf_cluster, timezone, false, NULL),
	FIELD("keyboard", mf_p_str, struct mf_cluster, keyboard, false, NULL),
	FIELD("seed", mf_p_str, struct mf_cluster, seed, false, NULL),
	FIELD("unattended", mf_p_bool, struct mf_cluster, unattended, false, NULL),
	{}
};

static const struct field network_fields[] = {
	FIELD("subnet", mf_p_cidr, struct mf_network, subnet, true, NULL),
	FIELD("gateway", mf_p_ipv4, struct mf_network, gateway, true, NULL),
	FIELD2("dns", mf_p_seq, struct mf_network, dns, n_dns, false, &ipv4s_spec),
	FIELD("bridge", mf_p_str, struct mf_network, bridge, false, NULL),
	FIELD("vlan", mf_p_uint, struct mf_network, vlan, false, &r_vlan),
	FIELD("mtu", mf_p_uint, struct mf_network, mtu, false, &r_mtu),
	FIELD("syslog", p_syslog, struct mf_network, syslog_host, false, NULL),
	{}
};

static const struct field disk_fields[] = {
	FIELD("by_id", mf_p_str, struct mf_disk_rules, by_id, false, NULL),
	FIELD("serial", mf_p_str, struct mf_disk_rules, serial, false, NULL),
	FIELD("model", mf_p_str, struct mf_disk_rules, model, false, NULL),
	FIELD("transport", mf_p_str_enum, struct mf_disk_rules, transport, false, transport_names),
	FIELD("min_size", mf_p_size, struct mf_disk_rules, min_size, false, NULL),
	FIELD("max_size", mf_p_size, struct mf_disk_rules, max_size, false, NULL),
	FIELD("largest_nvme", mf_p_bool, struct mf_disk_rules, largest_nvme, false, NULL),
	FIELD("wipe", mf_p_enum, struct mf_disk_rules, wipe, false, wipe_names),
	{}
};

static int p_disk(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_disk_rules *d = AT(base, f->offset, struct mf_disk_rules);

	d->pos = (struct mf_pos){ n->line, n->column };
	return mf_decode_map(c, n, disk_fields, d);
}

/* nodes[].preflight: {waive: [virtualization, memory, smart, link]}; the
 * bit order follows enum mf_waive. */
static const char *const waive_names[] = { "virtualization", "memory", "smart", "link", NULL };

static int p_waive(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	unsigned *mask = AT(base, f->offset, unsigned);

	if (n->kind != YNODE_SEQUENCE)
		return mf_derr(c, n, "must be a list, not %s", ynode_kind_name(n));
	for (size_t i = 0; i < n->n; i++) {
		const char *s = mf_string_value(c, n->items[i]);
		size_t k;

		if (!s)
			continue;
		for (k = 0; waive_names[k] && !streq(waive_names[k], s); k++)
			;
		if (!waive_names[k])
			(void)mf_derr(c, n->items[i], "'%s' is not one of virtualization, memory, smart, link", s);
		else
			*mask |= 1u << k;
	}
	return 0;
}

static const struct field preflight_fields[] = {
	FIELD("waive", p_waive, struct mf_node, preflight_waive, false, NULL),
	{}
};

static int p_preflight(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	(void)f;
	return mf_decode_map(c, n, preflight_fields, base);
}

static const struct field node_fields[] = {
	FIELD("name", mf_p_label, struct mf_node, name, true, NULL),
	FIELD("role", mf_p_enum, struct mf_node, role, false, role_names),
	FIELD2("mac", mf_p_mac, struct mf_node, mac, has_mac, false, NULL),
	FIELD("serial", mf_p_str, struct mf_node, serial, false, NULL),
	FIELD("product_uuid", mf_p_uuid, struct mf_node, product_uuid, false, NULL),
	FIELD("ip", mf_p_ipv4, struct mf_node, ip, true, NULL),
	FIELD("nic", mf_p_str, struct mf_node, nic, false, NULL),
	FIELD("min_memory", mf_p_size, struct mf_node, min_memory, false, NULL),
	FIELD("disk", p_disk, struct mf_node, disk, true, NULL),
	FIELD("preflight", p_preflight, struct mf_node, preflight_waive, false, NULL),
	{}
};

static const struct seq_spec nodes_spec = { .fields = node_fields, .elem_size = sizeof(struct mf_node),
					    .max = MANIFEST_MAX_NODES, .pos_offset = offsetof(struct mf_node, pos) };

static const struct field asset_fields[] = {
	FIELD("name", mf_p_ident, struct mf_asset, name, true, NULL),
	FIELD("file", mf_p_str, struct mf_asset, file, true, NULL),
	{}
};

static const struct seq_spec assets_spec = { .fields = asset_fields, .elem_size = sizeof(struct mf_asset),
					     .max = 256, .pos_offset = offsetof(struct mf_asset, pos) };

static const struct field storage_fields[] = {
	FIELD("hdsize", mf_p_size_opt, struct mf_storage, hdsize, false, NULL),
	FIELD("swapsize", mf_p_size_opt, struct mf_storage, swapsize, false, NULL),
	FIELD("maxroot", mf_p_size_opt, struct mf_storage, maxroot, false, NULL),
	FIELD("minfree", mf_p_size_opt, struct mf_storage, minfree, false, NULL),
	FIELD("maxvz", mf_p_size_opt, struct mf_storage, maxvz, false, NULL),
	{}
};

static const struct field proxmox_fields[] = {
	FIELD("rootfs", mf_p_ident, struct mf_proxmox, rootfs, true, NULL),
	FIELD("root_password", p_secret, struct mf_proxmox, root_password, true, NULL),
	FIELD2("ssh_keys", mf_p_seq, struct mf_proxmox, ssh_keys, n_ssh_keys, false, &sshkeys_spec),
	FIELD("storage", mf_p_map, struct mf_proxmox, storage, false, storage_fields),
	{}
};

static const struct field template_fields[] = {
	FIELD("name", mf_p_label, struct mf_template, name, true, NULL),
	FIELD("vmid", mf_p_uint, struct mf_template, vmid, true, &r_vmid),
	FIELD("image", mf_p_ident, struct mf_template, image, true, NULL),
	FIELD2("target_node", p_target_nodes, struct mf_template, target_nodes, n_target_nodes, true, NULL),
	FIELD("storage", mf_p_str, struct mf_template, storage, false, NULL),
	{}
};

static const struct seq_spec templates_spec = { .fields = template_fields,
						.elem_size = sizeof(struct mf_template),
						.max = 64,
						.pos_offset = offsetof(struct mf_template, pos) };

static const struct field vm_disk_fields[] = {
	FIELD("size", mf_p_size, struct mf_vm_group, disk.size, true, NULL),
	FIELD("type", mf_p_str_enum, struct mf_vm_group, disk.type, false, disk_type_names),
	FIELD("storage", mf_p_str, struct mf_vm_group, disk.storage, false, NULL),
	{}
};

static const struct field vm_network_fields[] = {
	FIELD("model", mf_p_str_enum, struct mf_vm_group, network.model, false, nic_model_names),
	FIELD("bridge", mf_p_str, struct mf_vm_group, network.bridge, false, NULL),
	{}
};

/* A nested mapping whose table uses offsets from the enclosing struct
 * (vms[].disk and .network, k3s.airgap and .kube_vip, edge.acme). */
static int p_inline_map(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	return mf_decode_map(c, n, f->arg, base);
}

/* vms[].sshkeys: given (even as []) means "not proxmox.ssh_keys". */
static int p_sshkeys(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	((struct mf_vm_group *)base)->has_sshkeys = true;
	return mf_p_seq(c, n, base, f);
}

static void vm_file_init(void *elem)
{
	((struct mf_vm_file *)elem)->mode = 0644;
}

static const struct field vm_file_fields[] = {
	FIELD("asset", mf_p_ident, struct mf_vm_file, asset, true, NULL),
	FIELD("path", p_guest_path, struct mf_vm_file, path, true, NULL),
	FIELD("mode", p_mode, struct mf_vm_file, mode, false, NULL),
	{}
};

static const struct seq_spec vm_files_spec = { .fields = vm_file_fields,
					       .elem_size = sizeof(struct mf_vm_file),
					       .max = MANIFEST_MAX_VM_FILES,
					       .pos_offset = offsetof(struct mf_vm_file, pos),
					       .init = vm_file_init };

static void vm_group_init(void *elem)
{
	((struct mf_vm_group *)elem)->full_clone = true; /* Terraform's default */
}

static const struct field vm_fields[] = {
	FIELD("id", mf_p_ident, struct mf_vm_group, id, true, NULL),
	FIELD("name", mf_p_str, struct mf_vm_group, name, true, NULL),
	FIELD("count", mf_p_uint, struct mf_vm_group, count, false, &r_count),
	FIELD("vmid", mf_p_uint, struct mf_vm_group, vmid, true, &r_vmid),
	FIELD2("target_node", p_target_nodes, struct mf_vm_group, target_nodes, n_target_nodes, true, NULL),
	FIELD("clone", mf_p_label, struct mf_vm_group, clone, true, NULL),
	FIELD("full_clone", mf_p_bool, struct mf_vm_group, full_clone, false, NULL),
	FIELD("cores", mf_p_uint, struct mf_vm_group, cores, false, &r_cores),
	FIELD("sockets", mf_p_uint, struct mf_vm_group, sockets, false, &r_sockets),
	FIELD("memory", mf_p_uint, struct mf_vm_group, memory, true, &r_memory),
	FIELD("agent", p_agent, struct mf_vm_group, agent, false, NULL),
	{ "disk", p_inline_map, 0, true, vm_disk_fields, 0 },
	{ "network", p_inline_map, 0, false, vm_network_fields, 0 },
	{ "ipconfig0", p_ipconfig, 0, true, NULL, 0 },
	FIELD("ciuser", p_ciuser, struct mf_vm_group, ciuser, false, NULL),
	FIELD2("sshkeys", p_sshkeys, struct mf_vm_group, sshkeys, n_sshkeys, false, &sshkeys_spec),
	FIELD2("files", mf_p_seq, struct mf_vm_group, files, n_files, false, &vm_files_spec),
	{}
};

static const struct seq_spec vms_spec = { .fields = vm_fields,
					  .elem_size = sizeof(struct mf_vm_group),
					  .max = MANIFEST_MAX_VMS,
					  .pos_offset = offsetof(struct mf_vm_group, pos),
					  .init = vm_group_init };

/* binary and install_script are required whenever k3s is present, so
 * manifest-check.c says so, with why (the nodes have no internet). */
static const struct field airgap_fields[] = {
	FIELD("binary", mf_p_ident, struct mf_k3s, airgap.binary, false, NULL),
	FIELD("images", mf_p_ident, struct mf_k3s, airgap.images, false, NULL),
	FIELD("install_script", mf_p_ident, struct mf_k3s, airgap.install_script, false, NULL),
	{}
};

/* k3s.api_vip: an address, never 0.0.0.0 (0 means "none" in the model). */
static int p_api_vip(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	uint32_t *ip = AT(base, f->offset, uint32_t);
	int r = mf_ipv4_value(c, n, ip);

	if (r >= 0 && *ip == 0)
		return mf_derr(c, n, "0.0.0.0 is not a host address");
	return r;
}

/* k3s.kube_vip.ref: the name of the image inside the asset's tarball, as
 * K3s imports it and the kube-vip DaemonSet asks for it. */
static int p_image_ref(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	if (strlen(s) > MANIFEST_IMAGE_REF_MAX)
		return mf_derr(c, n, "is longer than %d bytes", MANIFEST_IMAGE_REF_MAX);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return mf_derr(c, n, "must not contain whitespace or control characters");
	if (!manifest_image_ref_valid(s))
		return mf_derr(c, n,
			    "'%s' is not an image reference like ghcr.io/kube-vip/kube-vip:v0.9.2 "
			    "(REGISTRY/PATH:TAG or REGISTRY/PATH@sha256:DIGEST)",
			    s);
	return mf_set_string(c, base, f, s);
}

/* Both keys are required: the tarball and the name of the image in it. */
static const struct field kube_vip_fields[] = {
	FIELD("image", mf_p_ident, struct mf_k3s, kube_vip.image, true, NULL),
	FIELD("ref", p_image_ref, struct mf_k3s, kube_vip.ref, true, NULL),
	{}
};

/* The packaged components of K3s that its `--disable` flag takes. */
static const char *const k3s_component_names[] = { "coredns", "servicelb", "traefik", "local-storage",
						   "metrics-server", NULL };

static int p_k3s_component_elem(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const struct field ef = { .offset = 0, .arg = k3s_component_names };

	(void)f;
	return mf_p_str_enum(c, n, base, &ef);
}

static const struct seq_spec k3s_components_spec = { .elem = p_k3s_component_elem, .elem_size = sizeof(char *),
						     .max = 16, .pos_offset = SIZE_MAX };

/* A Kubernetes object name that is also a DNS label (RFC 1123): what a
 * HelmChart's name and a namespace must be. */
static int p_kube_label(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	if (!hostname_label_valid(s) || strpbrk(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
		return mf_derr(c, n,
			    "'%s' is not a Kubernetes name (1-63 lower-case letters, digits and '-', not at either "
			    "end)",
			    s);
	return mf_set_string(c, base, f, s);
}

/* k3s.charts[].values: any mapping, kept as the YAML text that becomes
 * the HelmChart's valuesContent (its scalars as written: a plain 2 stays
 * a number, a quoted "2" a string). */
static int p_chart_values(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	_cleanup_(yaml_out_freep) struct yaml_out *y = NULL;
	char **dst = AT(base, f->offset, char *);
	char *text = NULL;
	size_t len = 0;
	int r;

	if (n->kind != YNODE_MAPPING)
		return mf_derr(c, n, "must be a mapping (the chart's values), not %s", ynode_kind_name(n));
	r = yaml_out_new(NULL, MANIFEST_K3S_VALUES_MAX, &y);
	if (r < 0)
		return c->oom = r;
	yaml_out_node(y, n);
	r = yaml_out_finish(y, &text, &len);
	if (r == -ENOMEM)
		return c->oom = r;
	if (r == -EFBIG)
		return mf_derr(c, n, "is longer than %d bytes as YAML", MANIFEST_K3S_VALUES_MAX);
	if (r < 0)
		return mf_derr(c, n, "cannot be written back as YAML (a NUL byte in a string?)");
	free(*dst);
	*dst = text;
	return 0;
}

static const struct field k3s_chart_fields[] = {
	FIELD("name", p_kube_label, struct mf_k3s_chart, name, true, NULL),
	FIELD("chart", mf_p_ident, struct mf_k3s_chart, chart, true, NULL),
	FIELD("namespace", p_kube_label, struct mf_k3s_chart, namespace, false, NULL),
	FIELD("values", p_chart_values, struct mf_k3s_chart, values, false, NULL),
	{}
};

static const struct seq_spec k3s_charts_spec = { .fields = k3s_chart_fields,
						 .elem_size = sizeof(struct mf_k3s_chart),
						 .max = MANIFEST_K3S_CHARTS_MAX,
						 .pos_offset = offsetof(struct mf_k3s_chart, pos) };

static const struct field k3s_fields[] = {
	FIELD("version", mf_p_str, struct mf_k3s, version, false, NULL),
	FIELD("token", p_secret, struct mf_k3s, token, true, NULL),
	FIELD2("servers", mf_p_seq, struct mf_k3s, servers, n_servers, true, &idents_spec),
	FIELD2("agents", mf_p_seq, struct mf_k3s, agents, n_agents, false, &idents_spec),
	FIELD("ha", mf_p_bool, struct mf_k3s, ha, false, NULL),
	FIELD("api_vip", p_api_vip, struct mf_k3s, api_vip, false, NULL),
	FIELD("cluster_cidr", mf_p_cidr, struct mf_k3s, cluster_cidr, false, NULL),
	FIELD("service_cidr", mf_p_cidr, struct mf_k3s, service_cidr, false, NULL),
	FIELD2("disable", mf_p_seq, struct mf_k3s, disable, n_disable, false, &k3s_components_spec),
	{ "airgap", p_inline_map, 0, false, airgap_fields, 0 },
	{ "kube_vip", p_inline_map, 0, false, kube_vip_fields, 0 },
	FIELD2("charts", mf_p_seq, struct mf_k3s, charts, n_charts, false, &k3s_charts_spec),
	{}
};

static const struct field record_fields[] = {
	FIELD("name", mf_p_str, struct mf_dns_record, name, true, NULL),
	FIELD("type", mf_p_str_enum, struct mf_dns_record, type, true, record_type_names),
	FIELD("value", mf_p_str, struct mf_dns_record, value, true, NULL),
	{}
};

static const struct seq_spec records_spec = { .fields = record_fields, .elem_size = sizeof(struct mf_dns_record),
					      .max = 1024, .pos_offset = SIZE_MAX };

static const struct field forwarder_fields[] = {
	FIELD("address", mf_p_str, struct mf_dns_forwarder, address, true, NULL),
	FIELD("protocol", mf_p_enum, struct mf_dns_forwarder, protocol, false, manifest_dns_proto_names),
	FIELD("name", mf_p_str, struct mf_dns_forwarder, name, false, NULL),
	{}
};

static const struct seq_spec forwarders_spec = { .fields = forwarder_fields,
						 .elem_size = sizeof(struct mf_dns_forwarder),
						 .max = 16,
						 .pos_offset = SIZE_MAX };

static const struct field dns_airgap_fields[] = {
	FIELD("package", mf_p_ident, struct mf_dns, airgap.package, true, NULL),
	FIELD("runtime", mf_p_ident, struct mf_dns, airgap.runtime, true, NULL),
	{}
};

static const struct field dns_fields[] = {
	FIELD("primary", mf_p_label, struct mf_dns, primary, true, NULL),
	FIELD("secondary", mf_p_label, struct mf_dns, secondary, false, NULL),
	FIELD("zone", mf_p_dnsname, struct mf_dns, zone, false, NULL),
	FIELD("wildcard", mf_p_str, struct mf_dns, wildcard, false, NULL),
	FIELD("node_records", mf_p_bool, struct mf_dns, node_records, false, NULL),
	FIELD2("records", mf_p_seq, struct mf_dns, records, n_records, false, &records_spec),
	FIELD2("forwarders", mf_p_seq, struct mf_dns, forwarders, n_forwarders, false, &forwarders_spec),
	FIELD("admin_password", p_secret, struct mf_dns, admin_password, true, NULL),
	{ "airgap", p_inline_map, 0, false, dns_airgap_fields, 0 },
	{}
};

static const struct field acme_fields[] = {
	FIELD("email", mf_p_str, struct mf_edge, acme.email, true, NULL),
	FIELD("server", mf_p_str, struct mf_edge, acme.server, false, NULL),
	FIELD("provider", mf_p_str, struct mf_edge, acme.provider, false, NULL),
	{}
};

/* An allow-list entry: any network, /0 to /32. */
static int p_allow_elem(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	return mf_cidr_value(c, n, AT(base, f->offset, struct mf_cidr));
}

static const struct seq_spec allow_spec = { .elem = p_allow_elem, .elem_size = sizeof(struct mf_cidr), .max = 64,
					    .pos_offset = SIZE_MAX };

static const struct range rate_range = { 1, 1000000 };

static const struct field rate_limit_fields[] = {
	FIELD("average", mf_p_uint, struct mf_edge, rate_limit.average, true, &rate_range),
	FIELD("burst", mf_p_uint, struct mf_edge, rate_limit.burst, true, &rate_range),
	{}
};

static const struct field edge_fields[] = {
	FIELD("ip", mf_p_ipv4, struct mf_edge, ip, true, NULL),
	FIELD("certificate", mf_p_enum, struct mf_edge, cert, false, cert_names),
	{ "acme", p_inline_map, 0, false, acme_fields, 0 },
	FIELD("dashboard_host", mf_p_dnsname, struct mf_edge, dashboard_host, false, NULL),
	FIELD("dashboard_password", p_secret, struct mf_edge, dashboard_password, false, NULL),
	FIELD("proxmox_host", mf_p_dnsname, struct mf_edge, proxmox_host, false, NULL),
	FIELD("dns_host", mf_p_dnsname, struct mf_edge, dns_host, false, NULL),
	FIELD2("allow", mf_p_seq, struct mf_edge, allow, n_allow, false, &allow_spec),
	{ "rate_limit", p_inline_map, 0, false, rate_limit_fields, 0 },
	{}
};

static const char *const backup_mode_names[] = { "snapshot", "suspend", "stop", NULL };
static const struct range keep_range = { 0, 1000 };

static const struct field keep_fields[] = {
	FIELD("last", mf_p_uint, struct mf_backup, keep.last, false, &keep_range),
	FIELD("daily", mf_p_uint, struct mf_backup, keep.daily, false, &keep_range),
	FIELD("weekly", mf_p_uint, struct mf_backup, keep.weekly, false, &keep_range),
	FIELD("monthly", mf_p_uint, struct mf_backup, keep.monthly, false, &keep_range),
	FIELD("yearly", mf_p_uint, struct mf_backup, keep.yearly, false, &keep_range),
	{}
};

static const struct range pbs_port_range = { 1, 65535 };

static const struct field pbs_fields[] = {
	FIELD("server", mf_p_str, struct mf_backup, pbs.server, true, NULL),
	FIELD("datastore", mf_p_str, struct mf_backup, pbs.datastore, true, NULL),
	FIELD("username", mf_p_str, struct mf_backup, pbs.username, true, NULL),
	FIELD("password", p_secret, struct mf_backup, pbs.password, true, NULL),
	FIELD("fingerprint", mf_p_str, struct mf_backup, pbs.fingerprint, false, NULL),
	FIELD("namespace", mf_p_str, struct mf_backup, pbs.namespace, false, NULL),
	FIELD("port", mf_p_uint, struct mf_backup, pbs.port, false, &pbs_port_range),
	{}
};

static const struct field backup_fields[] = {
	FIELD("schedule", mf_p_str, struct mf_backup, schedule, false, NULL),
	FIELD("storage", mf_p_str, struct mf_backup, storage, false, NULL),
	FIELD("mode", mf_p_enum, struct mf_backup, mode, false, backup_mode_names),
	{ "keep", p_inline_map, 0, false, keep_fields, 0 },
	{ "pbs", p_inline_map, 0, false, pbs_fields, 0 },
	{}
};

static const struct range port_range = { 1, 65535 };

static const struct field status_fields[] = {
	FIELD("port", mf_p_uint, struct mf_status, port, false, &port_range),
	FIELD("enabled", mf_p_bool, struct mf_status, enabled, false, NULL),
	{}
};

/* ---- gitops, monitoring, registry ------------------------------------------- */

/* gitops.repo: the URL, and its form at f->offset2. A URL that holds a
 * password is refused without being quoted back. */
static int p_git_repo(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);
	enum mf_git_url kind = MF_GIT_HTTPS;
	int r;

	if (!s)
		return -EINVAL;
	if (mf_has_space_or_control(s))
		return mf_derr(c, n, "must not contain whitespace or control characters");
	r = mf_git_url_kind(s, &kind);
	if (r == -EACCES)
		return mf_derr(c, n, "holds a password: secrets are never given in clear text; use gitops.credentials");
	if (r == -EPERM)
		return mf_derr(c, n, "'%s' holds a user name: give it as gitops.credentials.username", s);
	if (r < 0)
		return mf_derr(c, n,
			    "'%s' is not a Git repository URL (https://HOST/PATH, http://HOST/PATH, "
			    "ssh://[USER@]HOST[:PORT]/PATH or USER@HOST:PATH)",
			    s);
	*AT(base, f->offset2, enum mf_git_url) = kind;
	return mf_set_string(c, base, f, s);
}

/* gitops.revision: a branch, tag or commit, as Argo CD's targetRevision. */
static int p_git_revision(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	if (strlen(s) > MANIFEST_GITOPS_REVISION_MAX)
		return mf_derr(c, n, "is longer than %d bytes", MANIFEST_GITOPS_REVISION_MAX);
	if (mf_has_space_or_control(s))
		return mf_derr(c, n, "must not contain whitespace or control characters (a branch, tag or commit)");
	return mf_set_string(c, base, f, s);
}

/* gitops.path: a directory inside the repository, relative to its root. */
static int p_git_path(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return mf_derr(c, n, "contains a control character");
	if (s[0] == '/')
		return mf_derr(c, n, "'%s' is absolute: the path is relative to the repository's root", s);
	for (const char *p = s;;) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return mf_derr(c, n, "'%s' has a '..' component: the path stays inside the repository", s);
		if (!p[len])
			break;
		p += len + 1;
	}
	return mf_set_string(c, base, f, s);
}

/* monitoring.retention, monitoring.logs.retention: how long data is kept. */
static int p_duration(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);
	uint64_t ms = 0;

	if (!s)
		return -EINVAL;
	if (!mf_duration_parse(s, &ms))
		return mf_derr(c, n,
			    "'%s' is not a duration like 15d or 1w2d (NUMBER UNIT, repeated; units y, w, d, h, m, s, "
			    "ms, each once, larger first)",
			    s);
	if (ms == 0)
		return mf_derr(c, n, "'%s' is zero: nothing would be kept", s);
	return mf_set_string(c, base, f, s);
}

/* gitops.credentials.username: HTTP basic auth's user (RFC 7617: no ':'). */
static int p_git_username(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	if (strchr(s, ':') || mf_has_space_or_control(s))
		return mf_derr(c, n, "must not contain ':', whitespace or control characters (an HTTP basic auth user)");
	return mf_set_string(c, base, f, s);
}

/* monitoring.scrape_targets[].targets[]: HOST:PORT, as Prometheus's
 * static_configs take them. */
static int p_scrape_endpoint_elem(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	static const struct field ef = { .offset = 0 };
	const char *s = mf_string_value(c, n);

	(void)f;
	if (!s)
		return -EINVAL;
	if (!mf_host_port_valid(s, strlen(s), true))
		return mf_derr(c, n, "'%s' is not HOST:PORT (an IPv4 address or DNS name, port 1-65535)", s);
	return mf_set_string(c, base, &ef, s);
}

static const struct seq_spec scrape_endpoints_spec = { .elem = p_scrape_endpoint_elem,
						       .elem_size = sizeof(char *),
						       .max = MANIFEST_SCRAPE_ENDPOINTS_MAX,
						       .pos_offset = SIZE_MAX };

static int p_scrape_endpoints(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	if (n->kind == YNODE_SEQUENCE && n->n == 0)
		return mf_derr(c, n, "needs at least one HOST:PORT");
	return mf_p_seq(c, n, base, f);
}

/* monitoring.scrape_targets[].metrics_path: the path on each target. */
static int p_metrics_path(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	const char *s = mf_string_value(c, n);

	if (!s)
		return -EINVAL;
	if (mf_has_space_or_control(s))
		return mf_derr(c, n, "must not contain whitespace or control characters");
	if (s[0] != '/')
		return mf_derr(c, n, "'%s' does not start with '/'", s);
	return mf_set_string(c, base, f, s);
}

static const struct seq_spec images_spec = { .elem = p_ident_elem, .elem_size = sizeof(char *),
					     .max = MANIFEST_IMAGES_MAX, .pos_offset = SIZE_MAX };

static const struct field git_credentials_fields[] = {
	FIELD("username", p_git_username, struct mf_gitops, credentials.username, false, NULL),
	FIELD("password", p_secret, struct mf_gitops, credentials.password, false, NULL),
	FIELD("ssh_key", p_secret, struct mf_gitops, credentials.ssh_key, false, NULL),
	{}
};

static const struct field gitops_fields[] = {
	FIELD2("repo", p_git_repo, struct mf_gitops, repo, repo_kind, true, NULL),
	FIELD("revision", p_git_revision, struct mf_gitops, revision, false, NULL),
	FIELD("path", p_git_path, struct mf_gitops, path, false, NULL),
	FIELD("public", mf_p_bool, struct mf_gitops, public, false, NULL),
	{ "credentials", p_inline_map, 0, false, git_credentials_fields, 0 },
	FIELD("chart", mf_p_ident, struct mf_gitops, chart, true, NULL),
	FIELD2("images", mf_p_seq, struct mf_gitops, images, n_images, false, &images_spec),
	FIELD("host", mf_p_dnsname, struct mf_gitops, host, false, NULL),
	{}
};

static const char *const scrape_scheme_names[] = { "http", "https", NULL };

static const struct field scrape_target_fields[] = {
	FIELD("name", p_kube_label, struct mf_scrape_target, name, true, NULL),
	FIELD2("targets", p_scrape_endpoints, struct mf_scrape_target, targets, n_targets, true, &scrape_endpoints_spec),
	FIELD("metrics_path", p_metrics_path, struct mf_scrape_target, metrics_path, false, NULL),
	FIELD("scheme", mf_p_enum, struct mf_scrape_target, scheme, false, scrape_scheme_names),
	{}
};

static const struct seq_spec scrape_targets_spec = { .fields = scrape_target_fields,
						     .elem_size = sizeof(struct mf_scrape_target),
						     .max = MANIFEST_SCRAPE_TARGETS_MAX,
						     .pos_offset = offsetof(struct mf_scrape_target, pos) };

static const struct field logs_fields[] = {
	FIELD("enabled", mf_p_bool, struct mf_monitoring, logs.enabled, false, NULL),
	FIELD("retention", p_duration, struct mf_monitoring, logs.retention, false, NULL),
	FIELD("chart", mf_p_ident, struct mf_monitoring, logs.chart, false, NULL),
	FIELD2("images", mf_p_seq, struct mf_monitoring, logs.images, logs.n_images, false, &images_spec),
	{}
};

/* monitoring.logs: on when the block is there, unless it says otherwise. */
static int p_logs(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_monitoring *mo = base;

	(void)f;
	mo->logs.present = true;
	mo->logs.enabled = true;
	return mf_decode_map(c, n, logs_fields, mo);
}

static const struct field monitoring_hosts_fields[] = {
	FIELD("grafana", mf_p_dnsname, struct mf_monitoring, hosts.grafana, false, NULL),
	FIELD("prometheus", mf_p_dnsname, struct mf_monitoring, hosts.prometheus, false, NULL),
	{}
};

/* chart and grafana_password are required when enabled: manifest-check.c
 * says so. */
static const struct field monitoring_fields[] = {
	FIELD("enabled", mf_p_bool, struct mf_monitoring, enabled, false, NULL),
	FIELD("retention", p_duration, struct mf_monitoring, retention, false, NULL),
	FIELD("grafana_password", p_secret, struct mf_monitoring, grafana_password, false, NULL),
	FIELD2("scrape_targets", mf_p_seq, struct mf_monitoring, scrape_targets, n_scrape_targets, false,
	       &scrape_targets_spec),
	FIELD("chart", mf_p_ident, struct mf_monitoring, chart, false, NULL),
	FIELD2("images", mf_p_seq, struct mf_monitoring, images, n_images, false, &images_spec),
	{ "logs", p_logs, 0, false, NULL, 0 },
	{ "hosts", p_inline_map, 0, false, monitoring_hosts_fields, 0 },
	{}
};

/* host is required when enabled: manifest-check.c says so. */
static const struct field registry_fields[] = {
	FIELD("enabled", mf_p_bool, struct mf_registry, enabled, false, NULL),
	FIELD("image", mf_p_ident, struct mf_registry, image, true, NULL),
	FIELD("ref", p_image_ref, struct mf_registry, ref, true, NULL),
	FIELD("host", mf_p_dnsname, struct mf_registry, host, false, NULL),
	FIELD("size", mf_p_size, struct mf_registry, size, false, NULL),
	FIELD2("seed", mf_p_seq, struct mf_registry, seed, n_seed, false, &images_spec),
	{}
};

static const struct field secrets_fields[] = {
	FIELD("key_source", mf_p_str, struct mf_secrets, key_source, false, NULL),
	FIELD2("names", mf_p_seq, struct mf_secrets, names, n_names, false, &idents_spec),
	{}
};

/* Sections that the model marks as present, with defaults set first. */
static int p_k3s(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_k3s *k = AT(base, f->offset, struct mf_k3s);

	k->present = true;
	return mf_decode_map(c, n, k3s_fields, k);
}

static int p_dns(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_dns *d = AT(base, f->offset, struct mf_dns);

	d->present = true;
	d->node_records = true;
	return mf_decode_map(c, n, dns_fields, d);
}

static int p_edge(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_edge *e = AT(base, f->offset, struct mf_edge);

	e->present = true;
	return mf_decode_map(c, n, edge_fields, e);
}

static int p_backup(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_backup *b = AT(base, f->offset, struct mf_backup);

	b->present = true;
	return mf_decode_map(c, n, backup_fields, b);
}

static int p_status(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_status *st = AT(base, f->offset, struct mf_status);

	st->present = true;
	st->enabled = true;
	return mf_decode_map(c, n, status_fields, st);
}

static int p_gitops(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_gitops *g = AT(base, f->offset, struct mf_gitops);

	g->present = true;
	return mf_decode_map(c, n, gitops_fields, g);
}

static int p_monitoring(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_monitoring *mo = AT(base, f->offset, struct mf_monitoring);

	mo->present = true;
	mo->enabled = true;
	return mf_decode_map(c, n, monitoring_fields, mo);
}

static int p_registry(struct mf_ctx *c, const struct ynode *n, void *base, const struct field *f)
{
	struct mf_registry *rg = AT(base, f->offset, struct mf_registry);

	rg->present = true;
	rg->enabled = true;
	return mf_decode_map(c, n, registry_fields, rg);
}

static const struct field manifest_fields[] = {
	FIELD("version", mf_p_uint, struct manifest, version, true, &r_version),
	FIELD("cluster", mf_p_map, struct manifest, cluster, true, cluster_fields),
	FIELD("network", mf_p_map, struct manifest, network, true, network_fields),
	FIELD2("nodes", mf_p_seq, struct manifest, nodes, n_nodes, true, &nodes_spec),
	FIELD2("assets", mf_p_seq, struct manifest, assets, n_assets, false, &assets_spec),
	FIELD("proxmox", mf_p_map, struct manifest, proxmox, true, proxmox_fields),
	FIELD2("templates", mf_p_seq, struct manifest, templates, n_templates, false, &templates_spec),
	FIELD2("vms", mf_p_seq, struct manifest, vms, n_vms, false, &vms_spec),
	FIELD("k3s", p_k3s, struct manifest, k3s, false, NULL),
	FIELD("dns", p_dns, struct manifest, dns, false, NULL),
	FIELD("edge", p_edge, struct manifest, edge, false, NULL),
	FIELD("backup", p_backup, struct manifest, backup, false, NULL),
	FIELD("status", p_status, struct manifest, status, false, NULL),
	FIELD("gitops", p_gitops, struct manifest, gitops, false, NULL),
	FIELD("monitoring", p_monitoring, struct manifest, monitoring, false, NULL),
	FIELD("registry", p_registry, struct manifest, registry, false, NULL),
	FIELD("secrets", mf_p_map, struct manifest, secrets, false, secrets_fields),
	{}
};

/* ---- lifecycle -------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct manifest *manifest_free(struct manifest *m)
{
	if (!m)
		return NULL;
	free(m->cluster.name);
	free(m->cluster.domain);
	free(m->cluster.timezone);
	free(m->cluster.keyboard);
	free(m->cluster.seed);
	free(m->network.dns);
	free(m->network.bridge);
	free(m->network.syslog_host);
	for (size_t i = 0; i < m->n_nodes; i++) {
		struct mf_node *n = &m->nodes[i];
		free(n->name);
		free(n->serial);
		free(n->product_uuid);
		free(n->nic);
		free(n->disk.by_id);
		free(n->disk.serial);
		free(n->disk.model);
		free(n->disk.transport);
	}
	free(m->nodes);
	for (size_t i = 0; i < m->n_assets; i++) {
		free(m->assets[i].name);
		free(m->assets[i].file);
	}
	free(m->assets);
	free(m->proxmox.rootfs);
	free(m->proxmox.root_password.name);
	strv_free(m->proxmox.ssh_keys, m->proxmox.n_ssh_keys);
	for (size_t i = 0; i < m->n_templates; i++) {
		free(m->templates[i].name);
		free(m->templates[i].image);
		strv_free(m->templates[i].target_nodes, m->templates[i].n_target_nodes);
		free(m->templates[i].storage);
	}
	free(m->templates);
	for (size_t i = 0; i < m->n_vms; i++) {
		struct mf_vm_group *g = &m->vms[i];
		free(g->id);
		free(g->name);
		strv_free(g->target_nodes, g->n_target_nodes);
		free(g->clone);
		free(g->disk.type);
		free(g->disk.storage);
		free(g->network.model);
		free(g->network.bridge);
		free(g->ciuser);
		strv_free(g->sshkeys, g->n_sshkeys);
		for (size_t j = 0; j < g->n_files; j++) {
			free(g->files[j].asset);
			free(g->files[j].path);
		}
		free(g->files);
	}
	free(m->vms);
	free(m->k3s.version);
	free(m->k3s.token.name);
	strv_free(m->k3s.servers, m->k3s.n_servers);
	strv_free(m->k3s.agents, m->k3s.n_agents);
	strv_free(m->k3s.disable, m->k3s.n_disable);
	free(m->k3s.airgap.binary);
	free(m->k3s.airgap.images);
	free(m->k3s.airgap.install_script);
	free(m->k3s.kube_vip.image);
	free(m->k3s.kube_vip.ref);
	for (size_t i = 0; i < m->k3s.n_charts; i++) {
		free(m->k3s.charts[i].name);
		free(m->k3s.charts[i].chart);
		free(m->k3s.charts[i].namespace);
		free(m->k3s.charts[i].values);
	}
	free(m->k3s.charts);
	free(m->dns.primary);
	free(m->dns.secondary);
	free(m->dns.zone);
	free(m->dns.wildcard);
	for (size_t i = 0; i < m->dns.n_records; i++) {
		free(m->dns.records[i].name);
		free(m->dns.records[i].type);
		free(m->dns.records[i].value);
	}
	free(m->dns.records);
	for (size_t i = 0; i < m->dns.n_forwarders; i++) {
		free(m->dns.forwarders[i].address);
		free(m->dns.forwarders[i].name);
	}
	free(m->dns.forwarders);
	free(m->dns.admin_password.name);
	free(m->dns.airgap.package);
	free(m->dns.airgap.runtime);
	free(m->backup.schedule);
	free(m->backup.storage);
	free(m->backup.pbs.server);
	free(m->backup.pbs.datastore);
	free(m->backup.pbs.username);
	free(m->backup.pbs.password.name);
	free(m->backup.pbs.fingerprint);
	free(m->backup.pbs.namespace);
	free(m->edge.acme.email);
	free(m->edge.acme.server);
	free(m->edge.acme.provider);
	free(m->edge.dashboard_host);
	free(m->edge.dashboard_password.name);
	free(m->edge.proxmox_host);
	free(m->edge.dns_host);
	free(m->edge.allow);
	free(m->gitops.repo);
	free(m->gitops.revision);
	free(m->gitops.path);
	free(m->gitops.credentials.username);
	free(m->gitops.credentials.password.name);
	free(m->gitops.credentials.ssh_key.name);
	free(m->gitops.chart);
	strv_free(m->gitops.images, m->gitops.n_images);
	free(m->gitops.host);
	free(m->monitoring.retention);
	free(m->monitoring.grafana_password.name);
	for (size_t i = 0; i < m->monitoring.n_scrape_targets; i++) {
		struct mf_scrape_target *t = &m->monitoring.scrape_targets[i];
		free(t->name);
		strv_free(t->targets, t->n_targets);
		free(t->metrics_path);
	}
	free(m->monitoring.scrape_targets);
	free(m->monitoring.chart);
	strv_free(m->monitoring.images, m->monitoring.n_images);
	free(m->monitoring.logs.retention);
	free(m->monitoring.logs.chart);
	strv_free(m->monitoring.logs.images, m->monitoring.logs.n_images);
	free(m->monitoring.hosts.grafana);
	free(m->monitoring.hosts.prometheus);
	free(m->registry.image);
	free(m->registry.ref);
	free(m->registry.host);
	strv_free(m->registry.seed, m->registry.n_seed);
	free(m->secrets.key_source);
	strv_free(m->secrets.names, m->secrets.n_names);
	free(m);
	return NULL;
}

DEFINE_FREE_FUNC(struct ynode, ynode_free)

int manifest_load_buffer(const char *data, size_t size, const char *display_name, struct diags *diags,
			 struct manifest **ret)
{
	static const struct yaml_limits limits = {
		.max_depth = MANIFEST_MAX_DEPTH,
		/* Generous for MANIFEST_MAX_NODES nodes of ~30 values each. */
		.max_nodes = 200000,
		/* Longer than any string field (4096) or SSH key, short enough
		 * to quote in a diagnostic. */
		.max_scalar = 65536,
	};
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	_cleanup_(ynode_freep) struct ynode *root = NULL;
	struct mf_ctx c = { .diags = diags };
	int r;

	if (!diags->file) {
		diags->file = strdup(display_name ? display_name : "-");
		if (!diags->file)
			return -ENOMEM;
	}
	if (size > MANIFEST_MAX_BYTES) {
		diags_add(diags, DIAG_ERROR, 0, 0, NULL, "the manifest is larger than %u bytes", MANIFEST_MAX_BYTES);
		return -EINVAL;
	}
	r = yaml_tree_parse(data, size, &limits, diags, &root);
	if (r == -EINVAL) {
		diags_sort(diags);
		return r;
	}
	if (r < 0)
		return r;
	if (!root) {
		diags_add(diags, DIAG_ERROR, 0, 0, NULL, "the manifest is empty");
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	(void)mf_decode_map(&c, root, manifest_fields, m);
	if (!c.oom)
		r = manifest_check(&c, m);
	if (!c.oom && r >= 0)
		r = mf_check_apps(&c, m);
	mf_ctx_done(&c);
	if (c.oom || r == -ENOMEM)
		return -ENOMEM;
	diags_sort(diags);
	if (diags->n_errors > 0)
		return -EINVAL;
	*ret = TAKE_PTR(m);
	return 0;
}

int manifest_load(const char *path, const char *display_name, struct diags *diags, struct manifest **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t n;
	struct stat st;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	/* One byte past the limit at most: manifest_load_buffer() reports
	 * an oversized file as a diagnostic. */
	r = read_fd_capped(fd, MANIFEST_MAX_BYTES, &buf, &n);
	if (r < 0)
		return r;
	return manifest_load_buffer(buf, n, display_name ? display_name : path, diags, ret);
}
