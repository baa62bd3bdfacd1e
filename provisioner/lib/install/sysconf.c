/* SPDX-License-Identifier: MIT */
/*
 * sysconf.c — the install phase's configuration steps. See sysconf.h.
 *
 * Every kind is one function that computes the desired files (a
 * rootfile_set) from the step's parameters and, where a file is edited
 * rather than owned (/etc/hosts, /etc/shadow, /etc/default/keyboard), from
 * its current content; check() and apply() are the same two generic
 * functions over that set. An edit is a function f of the old content with
 * f(f(x)) = f(x): that is what makes the second run write nothing.
 */
#define _GNU_SOURCE
#include <crypt.h>
#include <ctype.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "plan/json-util.h"
#include "rootfile.h"
#include "plan/run.h"
#include "bundle/secret.h"
#include "sysconf.h"
#include "util.h"

#define MARK "# Written by devopslab"
#define HOSTS_MAX_ENTRIES 1024u
#define SSH_KEY_MAX 16384u

typedef int (*build_fn)(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set);

/* A memstream that owns its buffer until taken. */
struct text {
	FILE *f;
	char *buf;
	size_t len;
};

static int text_open(struct text *t)
{
	*t = (struct text){ 0 };
	t->f = open_memstream(&t->buf, &t->len);
	return t->f ? 0 : -ENOMEM;
}

static int text_close(struct text *t)
{
	int r = 0;

	if (t->f && (ferror(t->f) || fclose(t->f) != 0))
		r = -ENOMEM;
	t->f = NULL;
	return r;
}

static void text_done(struct text *t)
{
	if (t->f)
		fclose(t->f);
	if (t->buf)
		explicit_wipe(t->buf, t->len);
	free(t->buf);
	*t = (struct text){ 0 };
}

static int add_text(struct rootfile_set *set, const char *path, struct text *t, mode_t mode, mode_t dir_mode)
{
	int r = text_close(t);

	if (r < 0)
		return r;
	return rootfile_set_file(set, path, t->buf, t->len, mode, dir_mode);
}

static int fail(struct run_ctx *ctx, int r)
{
	if (r == -ENOMEM)
		return run_ctx_error(ctx, r, "out of memory");
	return run_ctx_error(ctx, r, "%s", rootfile_error());
}

static int set_check(struct run_ctx *ctx, const struct step *s, build_fn build, bool *ret_done)
{
	_cleanup_(rootfile_set_donep) struct rootfile_set set = { .n = 0 };
	_cleanup_close_ int rootfd = -1;
	int r;

	r = rootfile_open_root(ctx->root, &rootfd);
	if (r < 0)
		return fail(ctx, r);
	r = build(ctx, s, rootfd, &set);
	if (r < 0)
		return ctx->error[0] ? r : fail(ctx, r);
	r = rootfile_set_check(rootfd, &set, ret_done);
	return r < 0 ? fail(ctx, r) : 0;
}

static int set_apply(struct run_ctx *ctx, const struct step *s, build_fn build)
{
	_cleanup_(rootfile_set_donep) struct rootfile_set set = { .n = 0 };
	_cleanup_close_ int rootfd = -1;
	unsigned writes = 0;
	int r;

	r = rootfile_open_root(ctx->root, &rootfd);
	if (r < 0)
		return fail(ctx, r);
	r = build(ctx, s, rootfd, &set);
	if (r < 0)
		return ctx->error[0] ? r : fail(ctx, r);
	r = rootfile_set_apply(rootfd, &set, &writes);
	if (r < 0)
		return fail(ctx, r);
	(void)writes; /* the files are the result: check() reads them back */
	return 0;
}

#define DEFINE_OPS(name, build)                                                               \
	static int name##_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)   \
	{                                                                                     \
		return set_check(ctx, s, build, ret_done);                                    \
	}                                                                                     \
	static int name##_apply(struct run_ctx *ctx, const struct step *s)                   \
	{                                                                                     \
		return set_apply(ctx, s, build);                                              \
	}                                                                                     \
	const struct step_ops sysconf_##name##_ops = { .check = name##_check, .apply = name##_apply }

/* A value that goes into a config file: printable, no quotes or spaces. */
static bool is_token(const char *v, size_t max)
{
	if (isempty(v) || strlen(v) > max)
		return false;
	for (const char *p = v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\'' || *p == '\\' || *p == '#')
			return false;
	return true;
}

static int need_param(struct run_ctx *ctx, const struct step *s, const char *key, size_t max, const char **ret)
{
	const char *v = step_param_string(s, key);

	if (!is_token(v, max))
		return run_ctx_error(ctx, -EINVAL, "step '%s': parameter '%s' is missing or not a plain value", s->id,
				     key);
	*ret = v;
	return 0;
}

/* ---- config-fstab ------------------------------------------------------- */

#define LVM_MONITOR_DROPIN "/etc/systemd/system/lvm2-monitor.service.d/devopslab.conf"

/* lvm2-monitor.service (early boot, before local-fs-pre.target) registers
 * the thin pool pve/data with dmeventd, which that first request starts
 * (dm-event.socket). libdevmapper-event gives every reply about 6 s; on a
 * slow or busy first boot dmeventd's start plus its thin plugin took longer
 * (seen under QEMU): "No input from event server", the unit failed and the
 * pool stayed unmonitored. Starting dmeventd together with the monitor
 * fixes that; a retry, bounded so that a broken setup still lets the boot
 * go on, covers a slower machine still. */
static const char lvm_monitor_dropin[] =
	MARK " (config-fstab): dmeventd starts with lvm2-monitor, which\n"
	"# otherwise starts it on its first request and may give up waiting on a\n"
	"# slow first boot; a failed attempt is tried again (docs/install.md).\n"
	"[Unit]\nWants=dm-event.service\nStartLimitIntervalSec=10min\nStartLimitBurst=4\n\n"
	"[Service]\nRestart=on-failure\nRestartSec=2\n";

/* As the Proxmox installer writes it, but by UUID for every file system. A
 * swap volume may be absent (swapsize 0): nofail keeps boot from waiting.
 * With it, the drop-in that makes LVM's monitoring of the thin pool start
 * reliably at boot. */
static int build_fstab(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set)
{
	const char *root = NULL, *esp = NULL, *swap = NULL;
	char text[1024];
	int r, n;

	(void)rootfd;
	r = need_param(ctx, s, "root_uuid", 36, &root);
	if (r >= 0)
		r = need_param(ctx, s, "esp_uuid", 9, &esp);
	if (r >= 0)
		r = need_param(ctx, s, "swap_uuid", 36, &swap);
	if (r < 0)
		return r;
	n = snprintf(text, sizeof(text),
		     "# /etc/fstab: written by devopslab (docs/install.md)\n"
		     "# <file system> <mount point> <type> <options> <dump> <pass>\n"
		     "UUID=%s / ext4 errors=remount-ro 0 1\n"
		     "UUID=%s /boot/efi vfat defaults 0 1\n"
		     "UUID=%s none swap sw,nofail 0 0\n"
		     "proc /proc proc defaults 0 0\n",
		     root, esp, swap);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;
	r = rootfile_set_file(set, "/etc/fstab", text, (size_t)n, 0644, 0755);
	if (r >= 0)
		r = rootfile_set_file(set, LVM_MONITOR_DROPIN, lvm_monitor_dropin, strlen(lvm_monitor_dropin), 0644,
				      0755);
	return r;
}

DEFINE_OPS(fstab, build_fstab);

/* ---- config-hostname ---------------------------------------------------- */

static int build_hostname(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set)
{
	const char *name = NULL;
	char line[300];
	int r;

	(void)rootfd;
	r = need_param(ctx, s, "hostname", 63, &name);
	if (r < 0)
		return r;
	snprintf(line, sizeof(line), "%s\n", name);
	r = rootfile_set_file(set, "/etc/hostname", line, strlen(line), 0644, 0755);
	/* An empty machine-id: systemd generates and commits one at first
	 * boot (machine-id(5), "First Boot Semantics"); dbus's copy would
	 * otherwise keep the rootfs builder's id. */
	if (r >= 0)
		r = rootfile_set_file(set, "/etc/machine-id", "", 0, 0444, 0755);
	if (r >= 0)
		r = rootfile_set_absent(set, "/var/lib/dbus/machine-id");
	return r;
}

DEFINE_OPS(hostname, build_hostname);

/* ---- config-hosts -------------------------------------------------------- */

/* Is this /etc/hosts line about one of our entries (by IP or by name), or
 * Debian's 127.0.1.1 hostname line (Proxmox needs the real IP instead)? */
static bool hosts_line_ours(const char *line, size_t len, struct json_object *entries)
{
	char tok[256];
	bool first = true;

	for (size_t i = 0; i < len;) {
		size_t n = 0;

		while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
			i++;
		while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
			if (n + 1 < sizeof(tok))
				tok[n++] = line[i];
			i++;
		}
		tok[n] = '\0';
		if (n == 0 || tok[0] == '#')
			return false;
		if (first && streq(tok, "127.0.1.1"))
			return true;
		for (size_t k = 0; k < json_object_array_length(entries); k++) {
			struct json_object *e = json_object_array_get_idx(entries, k);

			if (first ? streq_ptr(tok, json_get_string(e, "ip"))
				  : streq_ptr(tok, json_get_string(e, "name")) || streq_ptr(tok, json_get_string(e, "fqdn")))
				return true;
		}
		first = false;
	}
	return false;
}

static bool hosts_line_is_localhost4(const char *line)
{
	return strncmp(line, "127.0.0.1", 9) == 0 && (line[9] == ' ' || line[9] == '\t');
}

static int hosts_entries(struct run_ctx *ctx, const struct step *s, struct text *t, struct json_object *entries)
{
	for (size_t i = 0; i < json_object_array_length(entries); i++) {
		struct json_object *e = json_object_array_get_idx(entries, i);
		const char *ip = json_get_string(e, "ip"), *fqdn = json_get_string(e, "fqdn"),
			   *name = json_get_string(e, "name");

		if (!is_token(ip, 45) || !is_token(name, 63) || (fqdn && !is_token(fqdn, 253)))
			return run_ctx_error(ctx, -EINVAL, "step '%s': entry %zu is not an IP and host name", s->id, i);
		fprintf(t->f, "%s %s%s%s\n", ip, fqdn ? fqdn : "", fqdn ? " " : "", name);
	}
	return 0;
}

static int build_hosts(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set)
{
	struct json_object *entries;
	_cleanup_free_ char *old = NULL;
	struct text t;
	size_t len = 0;
	bool placed = false;
	int r;

	if (!json_object_object_get_ex(s->params, "entries", &entries) ||
	    !json_object_is_type(entries, json_type_array) || json_object_array_length(entries) > HOSTS_MAX_ENTRIES)
		return run_ctx_error(ctx, -EINVAL, "step '%s': no 'entries' list", s->id);
	r = rootfile_read(rootfd, "/etc/hosts", ROOTFILE_READ_MAX, &old, &len);
	if (r < 0 && r != -ENOENT)
		return r;
	r = text_open(&t);
	if (r < 0)
		return r;
	for (const char *p = old ? old : ""; *p;) {
		const char *nl = strchrnul(p, '\n');
		size_t n = (size_t)(nl - p);

		if (!hosts_line_ours(p, n, entries))
			fprintf(t.f, "%.*s\n", (int)n, p);
		/* The cluster's names go right after the IPv4 localhost line,
		 * where Debian and Proxmox put the host's own name. */
		if (!placed && hosts_line_is_localhost4(p)) {
			r = hosts_entries(ctx, s, &t, entries);
			placed = true;
		}
		p = *nl ? nl + 1 : nl;
		if (r < 0)
			break;
	}
	if (r >= 0 && !placed) {
		_cleanup_free_ char *rest = NULL;
		size_t rest_len;

		/* no localhost line: start with one, as Debian's default */
		r = text_close(&t);
		rest = TAKE_PTR(t.buf);
		rest_len = t.len;
		if (r >= 0)
			r = text_open(&t);
		if (r >= 0) {
			fputs("127.0.0.1 localhost\n", t.f);
			r = hosts_entries(ctx, s, &t, entries);
			fwrite(rest, 1, rest_len, t.f);
		}
	}
	if (r >= 0)
		r = add_text(set, "/etc/hosts", &t, 0644, 0755);
	text_done(&t);
	return r;
}

DEFINE_OPS(hosts, build_hosts);

/* ---- config-network ----------------------------------------------------- */

int sysconf_parse_mac(const char *s, uint8_t ret[6])
{
	unsigned v[6];
	int n = 0;

	if (!s || strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &n) != 6 || n != 17)
		return -EINVAL;
	for (size_t i = 0; i < 6; i++) {
		if (s[3 * i + 2] != ':' && i < 5)
			return -EINVAL;
		ret[i] = (uint8_t)v[i];
	}
	return 0;
}

/* An optional number: absent or null = 0. */
static int param_uint(const struct step *s, const char *key, unsigned max, unsigned *ret)
{
	struct json_object *o = NULL;
	int64_t v;

	if (!json_object_object_get_ex(s->params, key, &o) || !o) {
		*ret = 0;
		return 0;
	}
	if (!json_object_is_type(o, json_type_int))
		return -EINVAL;
	v = json_object_get_int64(o);
	if (v < 0 || (uint64_t)v > max)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

static void write_interfaces(struct text *t, const char *nic, const char *bridge, const char *address,
			     const char *gateway, unsigned vlan, unsigned mtu)
{
	fprintf(t->f,
		MARK " (config-network); Proxmox VE reads and edits this file.\n"
		     "\nauto lo\niface lo inet loopback\n\niface %s inet manual\n",
		nic);
	if (mtu)
		fprintf(t->f, "\tmtu %u\n", mtu);
	fprintf(t->f, "\nauto %s\niface %s inet %s\n", bridge, bridge, vlan ? "manual" : "static");
	if (!vlan)
		fprintf(t->f, "\taddress %s\n\tgateway %s\n", address, gateway);
	fprintf(t->f, "\tbridge-ports %s\n\tbridge-stp off\n\tbridge-fd 0\n", nic);
	if (vlan)
		/* VLAN-aware bridge, management address on its VLAN
		 * interface: the layout of the Proxmox VE admin guide
		 * ("VLAN on the host", vmbr0.N). */
		fputs("\tbridge-vlan-aware yes\n\tbridge-vids 2-4094\n", t->f);
	if (mtu)
		fprintf(t->f, "\tmtu %u\n", mtu);
	if (vlan)
		fprintf(t->f, "\nauto %s.%u\niface %s.%u inet static\n\taddress %s\n\tgateway %s\n", bridge, vlan,
			bridge, vlan, address, gateway);
	fputs("\nsource /etc/network/interfaces.d/*\n", t->f);
}

static int write_resolv(struct run_ctx *ctx, const struct step *s, struct text *t)
{
	const char *domain = ctx->manifest ? ctx->manifest->cluster.domain : NULL;
	struct json_object *dns;

	fputs(MARK " (config-network).\n", t->f);
	if (domain && is_token(domain, 253))
		fprintf(t->f, "search %s\n", domain);
	if (json_object_object_get_ex(s->params, "dns", &dns) && json_object_is_type(dns, json_type_array))
		for (size_t i = 0; i < json_object_array_length(dns) && i < 3; i++) { /* resolv.conf(5): MAXNS 3 */
			const char *ip = json_object_get_string(json_object_array_get_idx(dns, i));

			if (!is_token(ip, 45))
				return run_ctx_error(ctx, -EINVAL, "step '%s': dns[%zu] is not an address", s->id, i);
			fprintf(t->f, "nameserver %s\n", ip);
		}
	return 0;
}

#define LINK_FILE "/etc/systemd/network/10-devopslab-" SYSCONF_NIC_NAME ".link"
#define NETWORKING_DROPIN "/etc/systemd/system/networking.service.d/devopslab.conf"

/* Debian 13's ifupdown2 networking.service is ordered before neither
 * network.target nor network-online.target (ifupdown's is), so "the network
 * is up" came before vmbr0 had its address: the first-boot service
 * (After=network-online.target) and the login prompt did not wait for it.
 * systemd.special(7): the network manager orders itself before both. */
static const char networking_dropin[] =
	MARK " (config-network): the network is up once ifupdown2 has\n"
	"# configured it (docs/install.md).\n"
	"[Unit]\nWants=network.target\nBefore=network.target network-online.target\n";

static int build_network(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set)
{
	const char *nic = NULL, *bridge = NULL, *address = NULL, *gateway = NULL;
	struct text t;
	unsigned vlan, mtu;
	uint8_t mac[6];
	bool by_mac;
	int r;

	(void)rootfd;
	if ((r = need_param(ctx, s, "nic", 32, &nic)) < 0 || (r = need_param(ctx, s, "bridge", 15, &bridge)) < 0 ||
	    (r = need_param(ctx, s, "address", 64, &address)) < 0 ||
	    (r = need_param(ctx, s, "gateway", 45, &gateway)) < 0)
		return r;
	if (param_uint(s, "vlan", 4094, &vlan) < 0 || param_uint(s, "mtu", 65535, &mtu) < 0)
		return run_ctx_error(ctx, -EINVAL, "step '%s': vlan or mtu out of range", s->id);
	by_mac = sysconf_parse_mac(nic, mac) == 0;
	r = text_open(&t);
	if (r < 0)
		return r;
	write_interfaces(&t, by_mac ? SYSCONF_NIC_NAME : nic, bridge, address, gateway, vlan, mtu);
	r = add_text(set, "/etc/network/interfaces", &t, 0644, 0755);
	text_done(&t);
	if (r >= 0)
		r = rootfile_set_file(set, NETWORKING_DROPIN, networking_dropin, strlen(networking_dropin), 0644,
				      0755);
	if (r < 0)
		return r;
	if (by_mac) {
		/* The manifest knows the NIC by MAC; the installed system's
		 * predictable name is not known here. A .link file gives it a
		 * stable name (systemd.link(5)); Type=ether keeps the bridge,
		 * which inherits the MAC, from matching too. */
		char link[512];

		snprintf(link, sizeof(link),
			 MARK " (config-network): the manifest names this NIC by its MAC.\n"
			      "[Match]\nMACAddress=%02x:%02x:%02x:%02x:%02x:%02x\nType=ether\n\n[Link]\nName=%s\n",
			 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], SYSCONF_NIC_NAME);
		r = rootfile_set_file(set, LINK_FILE, link, strlen(link), 0644, 0755);
	} else {
		r = rootfile_set_absent(set, LINK_FILE);
	}
	if (r < 0)
		return r;
	r = text_open(&t);
	if (r < 0)
		return r;
	r = write_resolv(ctx, s, &t);
	if (r >= 0)
		r = add_text(set, "/etc/resolv.conf", &t, 0644, 0755);
	text_done(&t);
	return r;
}

DEFINE_OPS(network, build_network);

/* ---- config-users --------------------------------------------------------- */

/* Does `hash` (a crypt(3) string) verify `password`? */
static bool hash_verifies(const char *password, const char *hash, size_t hash_len)
{
	_cleanup_free_ struct crypt_data *cd = calloc(1, sizeof(*cd));
	char h[CRYPT_OUTPUT_SIZE];
	const char *out;
	bool ok;

	if (!cd || hash_len < 4 || hash_len >= sizeof(h) || strncmp(hash, "$6$", 3) != 0)
		return false;
	memcpy(h, hash, hash_len);
	h[hash_len] = '\0';
	out = crypt_r(password, h, cd);
	ok = out && out[0] != '*' && streq(out, h);
	explicit_wipe(cd, sizeof(*cd));
	return ok;
}

/* SHA-512 crypt with 16 random bytes of salt from getrandom(2). */
static int hash_new(const char *password, char ret[CRYPT_OUTPUT_SIZE])
{
	_cleanup_free_ struct crypt_data *cd = calloc(1, sizeof(*cd));
	char rnd[16], salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *out;

	if (!cd)
		return -ENOMEM;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return negative_errno(); /* cppcheck-suppress memleak ; _cleanup_ frees cd (cppcheck 2.10 misses it) */
	if (!crypt_gensalt_rn("$6$", 0, rnd, sizeof(rnd), salt, sizeof(salt)))
		return -EINVAL; /* cppcheck-suppress memleak ; _cleanup_ frees cd (cppcheck 2.10 misses it) */
	out = crypt_r(password, salt, cd);
	if (!out || out[0] == '*' || strlen(out) >= CRYPT_OUTPUT_SIZE) {
		explicit_wipe(cd, sizeof(*cd));
		return -EINVAL;
	}
	snprintf(ret, CRYPT_OUTPUT_SIZE, "%s", out);
	explicit_wipe(cd, sizeof(*cd));
	return 0;
}

/* The new /etc/shadow: `user`'s second field is the hash (kept when it
 * already verifies the password, so a re-run changes nothing); a zero
 * "last change" (which forces a change at login) becomes today. */
static int shadow_edit(struct run_ctx *ctx, const char *old, size_t old_len, const char *user,
		       const char *password, struct text *t)
{
	size_t ulen = strlen(user);
	bool found = false;

	for (const char *p = old; p < old + old_len;) {
		const char *nl = memchr(p, '\n', (size_t)(old + old_len - p));
		const char *end = nl ? nl : old + old_len;
		const char *f1, *f2, *f3;

		if ((size_t)(end - p) <= ulen || strncmp(p, user, ulen) != 0 || p[ulen] != ':' || found) {
			fprintf(t->f, "%.*s\n", (int)(end - p), p);
			p = end + 1;
			continue;
		}
		found = true;
		f1 = p + ulen + 1;
		f2 = memchr(f1, ':', (size_t)(end - f1));
		if (!f2)
			return run_ctx_error(ctx, -EINVAL, "/etc/shadow: the line of '%s' is malformed", user);
		f3 = memchr(f2 + 1, ':', (size_t)(end - f2 - 1));
		if (hash_verifies(password, f1, (size_t)(f2 - f1))) {
			fprintf(t->f, "%.*s\n", (int)(end - p), p);
		} else {
			char hash[CRYPT_OUTPUT_SIZE];
			int r = hash_new(password, hash);

			if (r < 0)
				return run_ctx_error(ctx, r, "cannot hash the password of '%s'", user);
			fprintf(t->f, "%s:%s", user, hash);
			explicit_wipe(hash, sizeof(hash));
			if (f3 && f3 == f2 + 2 && f2[1] == '0')
				fprintf(t->f, ":%lld%.*s\n", (long long)(time(NULL) / 86400), (int)(end - f3), f3);
			else
				fprintf(t->f, "%.*s\n", (int)(end - f2), f2);
		}
		p = end + 1;
	}
	if (!found)
		return run_ctx_error(ctx, -ENOENT, "/etc/shadow of the target has no line for '%s'", user);
	return 0;
}

static int build_shadow(struct run_ctx *ctx, const struct step *s, int rootfd, const char *user,
			struct rootfile_set *set)
{
	struct json_object *pw = json_get_object(s->params, "password");
	const char *name = json_get_string(pw, "secret"), *password;
	_cleanup_free_ char *old = NULL;
	struct stat st;
	struct text t;
	size_t len;
	int r;

	if (!pw)
		return 0; /* no password in the manifest: the rootfs's stays (root locked) */
	if (!ctx->secrets || !name)
		return run_ctx_error(ctx, -ENOKEY, "step '%s': the root password secret '%s' is not available", s->id,
				     name ? name : "?");
	password = secrets_get(ctx->secrets, name);
	if (isempty(password))
		return run_ctx_error(ctx, -ENOKEY, "step '%s': the bundle has no value for secret '%s'", s->id, name);
	r = rootfile_read(rootfd, "/etc/shadow", ROOTFILE_READ_MAX, &old, &len);
	if (r < 0)
		return r == -ENOENT ? run_ctx_error(ctx, r, "the target has no /etc/shadow") : r;
	/* keep the file's mode and group (Debian: 0640 root:shadow) */
	r = rootfile_stat(rootfd, "/etc/shadow", &st);
	if (r < 0)
		return r;
	r = text_open(&t);
	if (r >= 0)
		r = shadow_edit(ctx, old, len, user, password, &t);
	if (r >= 0)
		r = add_text(set, "/etc/shadow", &t, st.st_mode & 0777, 0755);
	if (r >= 0)
		set->items[set->n - 1].gid = st.st_gid;
	text_done(&t);
	explicit_wipe(old, len);
	return r;
}

static int build_authorized_keys(struct run_ctx *ctx, const struct step *s, struct rootfile_set *set)
{
	struct json_object *keys;
	struct text t;
	int r;

	if (!json_object_object_get_ex(s->params, "ssh_keys", &keys) || !json_object_is_type(keys, json_type_array) ||
	    json_object_array_length(keys) == 0)
		return 0; /* none given: the file is left as the rootfs has it */
	r = text_open(&t);
	if (r < 0)
		return r;
	fputs(MARK " (config-users) from the manifest's proxmox.ssh_keys.\n", t.f);
	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		const char *k = json_object_get_string(json_object_array_get_idx(keys, i));

		if (isempty(k) || strlen(k) > SSH_KEY_MAX || strpbrk(k, "\r\n")) {
			text_done(&t);
			return run_ctx_error(ctx, -EINVAL, "step '%s': ssh_keys[%zu] is not one line", s->id, i);
		}
		fprintf(t.f, "%s\n", k);
	}
	/* sshd's StrictModes: the file 0600 and ~/.ssh 0700, owned by root */
	r = add_text(set, "/root/.ssh/authorized_keys", &t, 0600, 0700);
	text_done(&t);
	return r;
}

#define KEYGEN_UNIT "devopslab-ssh-keygen.service"

static const char keygen_unit[] =
	MARK " (config-users): the rootfs ships without SSH host keys,\n"
	"# so that every node gets its own; they are made before sshd starts.\n"
	"[Unit]\nDescription=Generate SSH host keys\nBefore=ssh.service\n"
	"ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n\n"
	"[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\nRemainAfterExit=yes\n\n"
	"[Install]\nWantedBy=ssh.service multi-user.target\n";

static int build_users(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set)
{
	const char *user = NULL;
	int r;

	r = need_param(ctx, s, "user", 32, &user);
	if (r < 0)
		return r;
	if (!streq(user, "root"))
		return run_ctx_error(ctx, -EINVAL, "step '%s': only root is configured at install", s->id);
	r = build_shadow(ctx, s, rootfd, user, set);
	if (r >= 0)
		r = build_authorized_keys(ctx, s, set);
	if (r >= 0)
		r = rootfile_set_absent_prefix(set, "/etc/ssh", "ssh_host_");
	if (r >= 0)
		r = rootfile_set_file(set, "/etc/systemd/system/" KEYGEN_UNIT, keygen_unit, strlen(keygen_unit), 0644,
				      0755);
	/* enabled the way `systemctl enable` would, without running it */
	if (r >= 0)
		r = rootfile_set_symlink(set, "/etc/systemd/system/ssh.service.wants/" KEYGEN_UNIT,
					 "/etc/systemd/system/" KEYGEN_UNIT);
	if (r >= 0)
		r = rootfile_set_symlink(set, "/etc/systemd/system/multi-user.target.wants/" KEYGEN_UNIT,
					 "/etc/systemd/system/" KEYGEN_UNIT);
	return r;
}

DEFINE_OPS(users, build_users);

/* ---- config-timezone (and keyboard) --------------------------------------- */

static bool is_zone(const char *z)
{
	if (isempty(z) || strlen(z) > 64 || z[0] == '/' || strstr(z, ".."))
		return false;
	for (const char *p = z; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("/_+-", *p)))
			return false;
	return true;
}

static bool is_layout(const char *k)
{
	if (isempty(k) || strlen(k) > 64)
		return false;
	for (const char *p = k; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr(",_-()", *p)))
			return false;
	return true;
}

/* /etc/default/keyboard (keyboard(5)) with XKBLAYOUT set, other lines kept. */
static int keyboard_edit(const char *old, const char *layout, struct text *t)
{
	bool done = false;

	if (!old) {
		fprintf(t->f,
			"# KEYBOARD CONFIGURATION FILE\n\n# Consult the keyboard(5) manual page.\n\n"
			"XKBMODEL=\"pc105\"\nXKBLAYOUT=\"%s\"\nXKBVARIANT=\"\"\nXKBOPTIONS=\"\"\n\nBACKSPACE=\"guess\"\n",
			layout);
		return 0;
	}
	for (const char *p = old; *p;) {
		const char *nl = strchrnul(p, '\n');

		if (strncmp(p, "XKBLAYOUT=", 10) == 0) {
			if (!done)
				fprintf(t->f, "XKBLAYOUT=\"%s\"\n", layout);
			done = true;
		} else {
			fprintf(t->f, "%.*s\n", (int)(nl - p), p);
		}
		p = *nl ? nl + 1 : nl;
	}
	if (!done)
		fprintf(t->f, "XKBLAYOUT=\"%s\"\n", layout);
	return 0;
}

static int build_timezone(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set)
{
	const char *tz = step_param_string(s, "timezone"), *kb = step_param_string(s, "keyboard");
	char buf[160];
	int r;

	if (!is_zone(tz))
		return run_ctx_error(ctx, -EINVAL, "step '%s': '%s' is not a time zone name", s->id, tz ? tz : "");
	/* what timedatectl set-timezone writes: an absolute symlink (it is
	 * resolved inside the target at boot) plus Debian's /etc/timezone */
	snprintf(buf, sizeof(buf), "/usr/share/zoneinfo/%s", tz);
	r = rootfile_set_symlink(set, "/etc/localtime", buf);
	snprintf(buf, sizeof(buf), "%s\n", tz);
	if (r >= 0)
		r = rootfile_set_file(set, "/etc/timezone", buf, strlen(buf), 0644, 0755);
	if (r >= 0 && kb) {
		_cleanup_free_ char *old = NULL;
		struct text t;
		size_t len;

		if (!is_layout(kb))
			return run_ctx_error(ctx, -EINVAL, "step '%s': '%s' is not an XKB layout", s->id, kb);
		r = rootfile_read(rootfd, "/etc/default/keyboard", ROOTFILE_READ_MAX, &old, &len);
		if (r < 0 && r != -ENOENT)
			return r;
		r = text_open(&t);
		if (r >= 0)
			r = keyboard_edit(old, kb, &t);
		if (r >= 0)
			r = add_text(set, "/etc/default/keyboard", &t, 0644, 0755);
		text_done(&t);
	}
	return r;
}

DEFINE_OPS(timezone, build_timezone);

/* ---- config-logs ------------------------------------------------------------ */

/* rsyslog (in the root file system) forwards everything the node logs —
 * journald hands it every entry, the provisioner's first-boot runs
 * included — and the install's log file to the log store's syslog
 * receiver: RFC 5424 over TCP, octet-counted (what Promtail's syslog
 * target reads), through a disk-assisted queue that keeps what the node
 * logs until the receiver answers (it is not there before K3s is). */
static int build_logs(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set)
{
	const char *receiver = NULL, *install_log = NULL;
	unsigned port = 0;
	struct text t;
	int r;

	(void)rootfd;
	if ((r = need_param(ctx, s, "receiver", 45, &receiver)) < 0 ||
	    (r = need_param(ctx, s, "install_log", 200, &install_log)) < 0)
		return r;
	if (param_uint(s, "port", 65535, &port) < 0 || !port || install_log[0] != '/')
		return run_ctx_error(ctx, -EINVAL, "step '%s': no port, or a relative install_log", s->id);
	r = text_open(&t);
	if (r < 0)
		return r;
	fprintf(t.f,
		MARK " (config-logs): this node's logs to the lab's log store (docs/monitoring.md).\n"
		"module(load=\"imfile\")\n"
		"input(type=\"imfile\" File=\"%s\" Tag=\"devopslab-install\" Facility=\"local0\")\n"
		"action(type=\"omfwd\" target=\"%s\" port=\"%u\" protocol=\"tcp\" TCP_Framing=\"octet-counted\"\n"
		"       template=\"RSYSLOG_SyslogProtocol23Format\"\n"
		"       queue.type=\"LinkedList\" queue.filename=\"devopslab-logs\" queue.maxDiskSpace=\"256m\"\n"
		"       queue.saveOnShutdown=\"on\" action.resumeRetryCount=\"-1\" action.resumeInterval=\"10\")\n",
		install_log, receiver, port);
	r = add_text(set, "/etc/rsyslog.d/60-devopslab-logs.conf", &t, 0644, 0755);
	text_done(&t);
	/* journald hands rsyslog every entry (its socket, imuxsock) */
	if (r >= 0)
		r = rootfile_set_file(set, "/etc/systemd/journald.conf.d/60-devopslab-logs.conf",
				      MARK " (config-logs).\n[Journal]\nForwardToSyslog=yes\n",
				      strlen(MARK " (config-logs).\n[Journal]\nForwardToSyslog=yes\n"), 0644, 0755);
	return r;
}

DEFINE_OPS(logs, build_logs);

/* ---- firstboot-install ----------------------------------------------------- */

static int build_firstboot(struct run_ctx *ctx, const struct step *s, int rootfd, struct rootfile_set *set)
{
	const struct install_paths *ip = ctx->install;
	const char *unit = NULL, *journal = NULL;
	char path[ROOTFILE_PATH_MAX];
	struct text t;
	int r;

	(void)rootfd;
	if ((r = need_param(ctx, s, "unit", 64, &unit)) < 0 || (r = need_param(ctx, s, "journal", 200, &journal)) < 0)
		return r;
	if (!ip || isempty(ip->bundle_file) || isempty(ip->pubkey))
		return run_ctx_error(ctx, -EINVAL, "step '%s': the verified bundle and its key are not known", s->id);
	if (!is_token(s->node, 63) || journal[0] != '/')
		return run_ctx_error(ctx, -EINVAL, "step '%s': no node name or a relative journal path", s->id);
	r = rootfile_set_copy(set, SYSCONF_PROVISIONER, ip->binary ? ip->binary : "/proc/self/exe", 0755, 0755);
	if (r >= 0)
		r = rootfile_set_copy(set, SYSCONF_BUNDLE, ip->bundle_file, 0600, 0700);
	if (r >= 0)
		r = rootfile_set_copy(set, SYSCONF_PUBKEY, ip->pubkey, 0644, 0755);
	if (r >= 0 && ip->secret_key)
		r = rootfile_set_copy(set, SYSCONF_SECRET_KEY, ip->secret_key, 0600, 0755);
	if (r < 0)
		return r;
	r = text_open(&t);
	if (r < 0)
		return r;
	/* Runs once the network is up (and, on Proxmox, pmxcfs); the journal
	 * makes a re-run skip what is done, and the .done file written after
	 * success keeps it from starting at all on later boots. */
	fprintf(t.f,
		MARK " (firstboot-install).\n[Unit]\nDescription=DevOpsLab first-boot provisioning\n"
		"After=network-online.target pve-cluster.service\nWants=network-online.target\n"
		"ConditionPathExists=!%s\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
		"ExecStart=%s firstboot --bundle %s --pubkey %s%s%s --node %s --journal %s\n"
		"ExecStartPost=/usr/bin/touch %s\nTimeoutStartSec=infinity\nStandardOutput=journal+console\n\n"
		"[Install]\nWantedBy=multi-user.target\n",
		SYSCONF_FIRSTBOOT_DONE, SYSCONF_PROVISIONER, SYSCONF_BUNDLE, SYSCONF_PUBKEY,
		ip->secret_key ? " --secret-key " : "", ip->secret_key ? SYSCONF_SECRET_KEY : "", s->node, journal,
		SYSCONF_FIRSTBOOT_DONE);
	snprintf(path, sizeof(path), "/etc/systemd/system/%s", unit);
	r = add_text(set, path, &t, 0644, 0755);
	text_done(&t);
	if (r >= 0) {
		char link[ROOTFILE_PATH_MAX];

		snprintf(link, sizeof(link), "/etc/systemd/system/multi-user.target.wants/%s", unit);
		r = rootfile_set_symlink(set, link, path);
	}
	return r;
}

DEFINE_OPS(firstboot, build_firstboot);
