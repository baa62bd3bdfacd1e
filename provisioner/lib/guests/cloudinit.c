/* SPDX-License-Identifier: MIT */
/*
 * cloudinit.c — a VM's NoCloud seed documents. See cloudinit.h and
 * docs/guests.md.
 *
 * The keys follow cloud-init 22.4's cloud-config schema (Debian 12's
 * cloud-init; `cloud-init schema` checks them in
 * tests/integration/t-cloudinit-schema.sh) and network config version 2 as
 * both cloud-init's own renderers (ifupdown's ENI on Debian) and netplan
 * (Ubuntu) read it: a default route as `routes: [{to: 0.0.0.0/0, via:}]`
 * rather than netplan's deprecated gateway4, and no `to: default`, which
 * cloud-init 22.4 cannot parse into a route.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudinit.h"
#include "isoimage.h"
#include "manifest/yaml-util.h"
#include "parse.h"
#include "util.h"

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/*
 * The payload script (docs/guests.md, "The payload"). A constant: what
 * varies is in its arguments and its list, never spliced into shell text.
 * It copies each file to a temporary name next to its path, checks the
 * copy's SHA-256 and only then renames it into place, so a wrong file is
 * never installed under its name; it tries every line, then exits 1 if any
 * failed (runcmd's script then fails and `cloud-init status` says error).
 * The ISO is mounted read-only on a private directory and unmounted on
 * every exit. Indented with spaces: a tab would keep libyaml from writing
 * it as a literal block (YAML allows no tab there as "printable").
 */
static const char payload_script[] =
	"#!/bin/sh\n"
	"# Written by devopslab (docs/guests.md, \"The payload\").\n"
	"# Usage: payload.sh LABEL LIST. Copies each file LIST names from the ISO\n"
	"# labelled LABEL to its path, after checking its SHA-256; exits 1 if any\n"
	"# file is missing, cannot be copied or has another digest (never\n"
	"# installing it).\n"
	"set -u\n"
	"label=$1\n"
	"list=$2\n"
	"dev=/dev/disk/by-label/$label\n"
	"say() { echo \"devopslab-payload: $*\" >&2; }\n"
	"\n"
	"n=0\n"
	"while [ ! -b \"$dev\" ]; do\n"
	"    n=$((n + 1))\n"
	"    if [ \"$n\" -gt 30 ]; then\n"
	"        say \"no device $dev after 30 s\"\n"
	"        exit 1\n"
	"    fi\n"
	"    sleep 1\n"
	"done\n"
	"mnt=$(mktemp -d /run/devopslab-payload.XXXXXX) || exit 1\n"
	"cleanup() {\n"
	"    umount \"$mnt\" 2>/dev/null\n"
	"    rmdir \"$mnt\"\n"
	"}\n"
	"trap cleanup EXIT\n"
	"trap 'exit 1' HUP INT TERM\n"
	"if ! mount -t iso9660 -o ro,nodev,nosuid,noexec \"$dev\" \"$mnt\"; then\n"
	"    say \"cannot mount $dev\"\n"
	"    exit 1\n"
	"fi\n"
	"\n"
	"bad=0\n"
	"while read -r sum src dst mode; do\n"
	"    case $sum in '#'* | '') continue ;; esac\n"
	"    tmp=$dst.devopslab-new\n"
	"    if [ ! -f \"$mnt/$src\" ]; then\n"
	"        say \"$src: not on $label: $dst not installed\"\n"
	"        bad=1\n"
	"        continue\n"
	"    fi\n"
	"    if ! install -D -m \"$mode\" \"$mnt/$src\" \"$tmp\"; then\n"
	"        say \"$src: cannot copy it to $tmp\"\n"
	"        rm -f \"$tmp\"\n"
	"        bad=1\n"
	"        continue\n"
	"    fi\n"
	"    got=$(sha256sum \"$tmp\")\n"
	"    got=${got%% *}\n"
	"    if [ \"$got\" != \"$sum\" ]; then\n"
	"        say \"$src: SHA-256 $got, expected $sum: $dst not installed\"\n"
	"        rm -f \"$tmp\"\n"
	"        bad=1\n"
	"        continue\n"
	"    fi\n"
	"    if ! mv -f \"$tmp\" \"$dst\"; then\n"
	"        say \"$src: cannot rename $tmp to $dst\"\n"
	"        rm -f \"$tmp\"\n"
	"        bad=1\n"
	"        continue\n"
	"    fi\n"
	"    say \"$src: installed as $dst (mode $mode, SHA-256 $sum)\"\n"
	"done <\"$list\"\n"
	"exit $bad\n";

/* ---- input checks ------------------------------------------------------------ */

static bool chars_ok(const char *s, size_t min, size_t max, const char *set)
{
	size_t n = s ? strlen(s) : 0;

	return n >= min && n <= max && strspn(s, set) == n;
}

/* Absolute, clean: "/a/b", no empty, "." or ".." component, no trailing
 * "/", and only characters that need no quoting in the payload list. */
static bool path_ok(const char *p)
{
	if (!chars_ok(p, 2, CLOUDINIT_PATH_MAX, ALNUM "._+@=,:/-") || p[0] != '/')
		return false;
	for (const char *c = p + 1;;) {
		size_t k = strcspn(c, "/");

		if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!c[k])
			return true;
		c += k + 1;
	}
}

static bool sha256_ok(const char *s)
{
	return chars_ok(s, 64, 64, "0123456789abcdef");
}

/* useradd's default NAME_REGEX (Debian's adduser is stricter still). */
static bool user_ok(const char *u)
{
	return chars_ok(u, 1, 32, "abcdefghijklmnopqrstuvwxyz0123456789_-") && !(u[0] >= '0' && u[0] <= '9') &&
	       u[0] != '-' && !streq(u, "root");
}

/* One authorized_keys line: no newline (a second line would be a second
 * key), no other control character. */
static bool key_ok(const char *k)
{
	size_t n = k ? strlen(k) : 0;

	if (n == 0 || n > CLOUDINIT_KEY_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
			return false;
	return true;
}

static bool fqdn_ok(const char *fqdn, const char *hostname)
{
	size_t n = strlen(hostname);

	return fqdn && dns_name_valid(fqdn) && strncmp(fqdn, hostname, n) == 0 && fqdn[n] == '.';
}

static bool network_ok(const struct cloudinit_vm *vm)
{
	uint8_t mac[6];

	if (!vm->mac || parse_mac(vm->mac, mac) < 0)
		return false;
	if (vm->ip == 0 || vm->prefix < 1 || vm->prefix > 32)
		return false;
	if (vm->gateway && (vm->gateway == vm->ip || !ipv4_in_cidr(vm->gateway, vm->ip & ipv4_netmask(vm->prefix),
								      vm->prefix)))
		return false;
	if (vm->n_dns > CLOUDINIT_DNS_MAX || (vm->n_dns && !vm->dns))
		return false;
	for (size_t i = 0; i < vm->n_dns; i++)
		if (vm->dns[i] == 0)
			return false;
	return !vm->search || dns_name_valid(vm->search);
}

static bool files_ok(const struct cloudinit_vm *vm)
{
	if (vm->n_files == 0)
		return true;
	if (vm->n_files > CLOUDINIT_FILES_MAX || !vm->files || !isoimage_volid_ok(vm->assets_label))
		return false;
	for (size_t i = 0; i < vm->n_files; i++) {
		const struct cloudinit_file *f = &vm->files[i];

		if (!isoimage_name_ok(f->source) || !path_ok(f->path) || !sha256_ok(f->sha256) || f->mode > 07777)
			return false;
		for (size_t j = 0; j < i; j++)
			if (streq(vm->files[j].path, f->path))
				return false;
	}
	return true;
}

int cloudinit_check(const struct cloudinit_vm *vm)
{
	if (!vm->hostname || !hostname_label_valid(vm->hostname) || !fqdn_ok(vm->fqdn, vm->hostname))
		return -EINVAL;
	if (!chars_ok(vm->instance_id, 1, CLOUDINIT_ID_MAX, ALNUM "._-"))
		return -EINVAL;
	if (vm->user && !user_ok(vm->user))
		return -EINVAL;
	if (vm->n_ssh_keys > CLOUDINIT_KEYS_MAX || (vm->n_ssh_keys && !vm->ssh_keys))
		return -EINVAL;
	for (size_t i = 0; i < vm->n_ssh_keys; i++)
		if (!key_ok(vm->ssh_keys[i]))
			return -EINVAL;
	if (!network_ok(vm) || !files_ok(vm))
		return -EINVAL;
	return 0;
}

/* ---- the documents --------------------------------------------------------------- */

static void kv_str(struct yaml_out *y, const char *key, const char *value)
{
	yaml_out_key(y, key);
	yaml_out_str(y, value);
}

static void kv_bool(struct yaml_out *y, const char *key, bool value)
{
	yaml_out_key(y, key);
	yaml_out_bool(y, value);
}

static void keys(struct yaml_out *y, const struct cloudinit_vm *vm)
{
	yaml_out_key(y, "ssh_authorized_keys");
	yaml_out_seq_start(y, false);
	for (size_t i = 0; i < vm->n_ssh_keys; i++)
		yaml_out_str(y, vm->ssh_keys[i]);
	yaml_out_seq_end(y);
}

/* With a user, `users` replaces the image's default user by ours (sudo
 * without a password, as the default user has it; no password at all);
 * without one, the keys go to the default user. */
static void users(struct yaml_out *y, const struct cloudinit_vm *vm)
{
	if (!vm->user) {
		if (vm->n_ssh_keys)
			keys(y, vm);
		return;
	}
	yaml_out_key(y, "users");
	yaml_out_seq_start(y, false);
	yaml_out_map_start(y);
	kv_str(y, "name", vm->user);
	kv_str(y, "sudo", "ALL=(ALL) NOPASSWD:ALL");
	kv_str(y, "shell", "/bin/bash");
	kv_bool(y, "lock_passwd", true);
	if (vm->n_ssh_keys)
		keys(y, vm);
	yaml_out_map_end(y);
	yaml_out_seq_end(y);
}

/* "sha256  source  path  mode" per file, after a comment line; every
 * field was checked to hold no white space. */
static int payload_list(const struct cloudinit_vm *vm, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int err;

	if (!f)
		return -ENOMEM;
	fputs("# sha256  source  path  mode: read by " CLOUDINIT_PAYLOAD_SCRIPT " (docs/guests.md)\n", f);
	for (size_t i = 0; i < vm->n_files; i++) {
		const struct cloudinit_file *file = &vm->files[i];

		fprintf(f, "%s  %s  %s  %04o\n", file->sha256, file->source, file->path, file->mode);
	}
	err = ferror(f);
	if (fclose(f) != 0 || err)
		return -ENOMEM;
	*ret = TAKE_PTR(buf);
	return 0;
}

static void write_file(struct yaml_out *y, const char *path, const char *permissions, const char *content)
{
	yaml_out_map_start(y);
	kv_str(y, "path", path);
	kv_str(y, "owner", "root:root");
	kv_str(y, "permissions", permissions);
	yaml_out_key(y, "content");
	yaml_out_text(y, content);
	yaml_out_map_end(y);
}

/* write_files (the init stage) lays down the script and its list; runcmd
 * (the final stage, once per instance) runs it. runcmd is cloud-init's one
 * shell script without `set -e`: what later entries add that needs the
 * files must come after this one and test its outcome (docs/guests.md). */
static int payload(struct yaml_out *y, const struct cloudinit_vm *vm)
{
	_cleanup_free_ char *list = NULL;
	int r = payload_list(vm, &list);

	if (r < 0)
		return r;
	yaml_out_key(y, "write_files");
	yaml_out_seq_start(y, false);
	write_file(y, CLOUDINIT_PAYLOAD_SCRIPT, "0755", payload_script);
	write_file(y, CLOUDINIT_PAYLOAD_LIST, "0644", list);
	yaml_out_seq_end(y);
	yaml_out_key(y, "runcmd");
	yaml_out_seq_start(y, false);
	yaml_out_seq_start(y, true);
	yaml_out_str(y, "/bin/sh");
	yaml_out_str(y, CLOUDINIT_PAYLOAD_SCRIPT);
	yaml_out_str(y, vm->assets_label);
	yaml_out_str(y, CLOUDINIT_PAYLOAD_LIST);
	yaml_out_seq_end(y);
	yaml_out_seq_end(y);
	return 0;
}

int cloudinit_user_data(const struct cloudinit_vm *vm, char **ret, size_t *ret_len)
{
	_cleanup_(yaml_out_freep) struct yaml_out *y = NULL;
	int r = cloudinit_check(vm);

	if (r < 0)
		return r;
	r = yaml_out_new("#cloud-config\n", CLOUDINIT_DOC_MAX, &y);
	if (r < 0)
		return r;
	yaml_out_map_start(y);
	kv_str(y, "hostname", vm->hostname);
	kv_str(y, "fqdn", vm->fqdn);
	kv_bool(y, "manage_etc_hosts", true);
	users(y, vm);
	kv_bool(y, "ssh_pwauth", false);
	/* air-gapped: no mirror to update from; what the guest needs is in its image or the payload */
	kv_bool(y, "package_update", false);
	kv_bool(y, "package_upgrade", false);
	if (vm->n_files) {
		r = payload(y, vm);
		if (r < 0)
			return r;
	}
	yaml_out_map_end(y);
	return yaml_out_finish(y, ret, ret_len);
}

int cloudinit_meta_data(const struct cloudinit_vm *vm, char **ret, size_t *ret_len)
{
	_cleanup_(yaml_out_freep) struct yaml_out *y = NULL;
	int r = cloudinit_check(vm);

	if (r < 0)
		return r;
	r = yaml_out_new(NULL, CLOUDINIT_DOC_MAX, &y);
	if (r < 0)
		return r;
	yaml_out_map_start(y);
	kv_str(y, "instance-id", vm->instance_id);
	kv_str(y, "local-hostname", vm->hostname);
	yaml_out_map_end(y);
	return yaml_out_finish(y, ret, ret_len);
}

static void ipv4_str(struct yaml_out *y, uint32_t ip, int prefix)
{
	char addr[16], buf[32];

	ipv4_format(ip, addr, sizeof(addr));
	if (prefix >= 0)
		snprintf(buf, sizeof(buf), "%s/%d", addr, prefix);
	else
		snprintf(buf, sizeof(buf), "%s", addr);
	yaml_out_str(y, buf);
}

static void nameservers(struct yaml_out *y, const struct cloudinit_vm *vm)
{
	if (!vm->n_dns && !vm->search)
		return;
	yaml_out_key(y, "nameservers");
	yaml_out_map_start(y);
	if (vm->n_dns) {
		yaml_out_key(y, "addresses");
		yaml_out_seq_start(y, false);
		for (size_t i = 0; i < vm->n_dns; i++)
			ipv4_str(y, vm->dns[i], -1);
		yaml_out_seq_end(y);
	}
	if (vm->search) {
		yaml_out_key(y, "search");
		yaml_out_seq_start(y, false);
		yaml_out_str(y, vm->search);
		yaml_out_seq_end(y);
	}
	yaml_out_map_end(y);
}

/* The NIC is matched by MAC and renamed CLOUDINIT_IFNAME, as Proxmox's own
 * cloud-init drive does (`name: eth0` in its version 1 config): one name
 * whatever the image's naming scheme makes of the PCI slot, for what later
 * configuration refers to. cloud-init renames the NIC itself before
 * bringing up the network, with either renderer. */
int cloudinit_network_config(const struct cloudinit_vm *vm, char **ret, size_t *ret_len)
{
	_cleanup_(yaml_out_freep) struct yaml_out *y = NULL;
	uint8_t m[6];
	char mac[18];
	int r = cloudinit_check(vm);

	if (r < 0)
		return r;
	(void)parse_mac(vm->mac, m); /* checked above */
	mac_format(m, mac);
	r = yaml_out_new(NULL, CLOUDINIT_DOC_MAX, &y);
	if (r < 0)
		return r;
	yaml_out_map_start(y);
	yaml_out_key(y, "version");
	yaml_out_uint(y, 2);
	yaml_out_key(y, "ethernets");
	yaml_out_map_start(y);
	yaml_out_key(y, CLOUDINIT_IFNAME);
	yaml_out_map_start(y);
	yaml_out_key(y, "match");
	yaml_out_map_start(y);
	kv_str(y, "macaddress", mac);
	yaml_out_map_end(y);
	kv_str(y, "set-name", CLOUDINIT_IFNAME);
	yaml_out_key(y, "addresses");
	yaml_out_seq_start(y, false);
	ipv4_str(y, vm->ip, (int)vm->prefix);
	yaml_out_seq_end(y);
	if (vm->gateway) {
		yaml_out_key(y, "routes");
		yaml_out_seq_start(y, false);
		yaml_out_map_start(y);
		kv_str(y, "to", "0.0.0.0/0");
		yaml_out_key(y, "via");
		ipv4_str(y, vm->gateway, -1);
		yaml_out_map_end(y);
		yaml_out_seq_end(y);
	}
	nameservers(y, vm);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	yaml_out_map_end(y);
	return yaml_out_finish(y, ret, ret_len);
}
