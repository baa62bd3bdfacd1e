/* SPDX-License-Identifier: MIT */
/*
 * guest-seed — test harness (not installed): a VM's seed documents
 * (lib/guests/cloudinit.c) and ISO images (lib/guests/isoimage.c) from the
 * command line, for tests/integration/t-cloudinit-schema.sh and
 * t-isoimage.sh, which check them with cloud-init, netplan and xorriso.
 *
 *   guest-seed docs DIR [OPTION...]
 *       writes DIR/user-data, DIR/meta-data, DIR/network-config for a VM
 *       named vm1 (vm1.lab.example, instance devopslab-101, MAC
 *       02:00:00:00:01:01, 10.0.10.21/24 via 10.0.10.1, resolver 10.0.10.2,
 *       search lab.example), changed by:
 *         --hostname H --fqdn F --user U --key LINE (repeated)
 *         --file SOURCE:PATH:SHA256:MODE (repeated; MODE octal)
 *         --label LABEL (the assets ISO's; default DEVOPSLAB)
 *         --no-gateway --no-dns
 *   guest-seed iso OUT VOLID MTIME NAME=PATH...
 *       writes the image OUT (through a temporary file) holding each PATH
 *       as NAME; MTIME in seconds since the epoch.
 *
 * Exit 0, 1 when the library refused (its error on stderr), 2 on usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guests/cloudinit.h"
#include "guests/isoimage.h"
#include "parse.h"
#include "util.h"

#define MAX_ITEMS 64

static int usage(void)
{
	fputs("usage: guest-seed docs DIR [--hostname H] [--fqdn F] [--user U] [--key LINE]...\n"
	      "                  [--file SOURCE:PATH:SHA256:MODE]... [--label L] [--no-gateway] [--no-dns]\n"
	      "       guest-seed iso OUT VOLID MTIME NAME=PATH...\n",
	      stderr);
	return 2;
}

static int write_doc(const char *dir, const char *name, int (*make)(const struct cloudinit_vm *, char **, size_t *),
		     const struct cloudinit_vm *vm)
{
	_cleanup_free_ char *text = NULL, *path = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	size_t len = 0;
	int r = make(vm, &text, &len);

	if (r < 0) {
		fprintf(stderr, "guest-seed: %s: %s\n", name, strerror(-r));
		return 1;
	}
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return 1;
	f = fopen(path, "we");
	if (!f || fwrite(text, 1, len, f) != len || fflush(f) != 0) {
		fprintf(stderr, "guest-seed: %s: %m\n", path);
		return 1;
	}
	return 0;
}

/* SOURCE:PATH:SHA256:MODE, split in place. */
static int parse_file(char *arg, struct cloudinit_file *f)
{
	char *mode, *end;
	unsigned long m;

	f->source = strsep(&arg, ":");
	f->path = strsep(&arg, ":");
	f->sha256 = strsep(&arg, ":");
	mode = strsep(&arg, ":");
	if (!f->path || !f->sha256 || !mode || arg)
		return -EINVAL;
	errno = 0;
	m = strtoul(mode, &end, 8);
	if (errno || !*mode || *end || m > 0xffffffffUL)
		return -EINVAL;
	f->mode = (unsigned)m;
	return 0;
}

static int docs(int argc, char **argv)
{
	static const uint32_t dns[] = { 0x0a000a02 };
	const char *keys[MAX_ITEMS];
	struct cloudinit_file files[MAX_ITEMS];
	struct cloudinit_vm vm = {
		.hostname = "vm1",
		.fqdn = "vm1.lab.example",
		.instance_id = "devopslab-101",
		.ssh_keys = keys,
		.mac = "02:00:00:00:01:01",
		.ip = 0x0a000a15,
		.prefix = 24,
		.gateway = 0x0a000a01,
		.dns = dns,
		.n_dns = 1,
		.search = "lab.example",
		.files = files,
		.assets_label = "DEVOPSLAB",
	};
	const char *dir = argv[0];
	int i, r;

	for (i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (streq(o, "--no-gateway")) {
			vm.gateway = 0;
			continue;
		}
		if (streq(o, "--no-dns")) {
			vm.n_dns = 0;
			vm.search = NULL;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (streq(o, "--hostname"))
			vm.hostname = v;
		else if (streq(o, "--fqdn"))
			vm.fqdn = v;
		else if (streq(o, "--user"))
			vm.user = v;
		else if (streq(o, "--label"))
			vm.assets_label = v;
		else if (streq(o, "--key") && vm.n_ssh_keys < MAX_ITEMS)
			keys[vm.n_ssh_keys++] = v;
		else if (streq(o, "--file") && vm.n_files < MAX_ITEMS) {
			if (parse_file(argv[i], &files[vm.n_files++]) < 0)
				return usage();
		} else
			return usage();
	}
	r = cloudinit_check(&vm);
	if (r < 0) {
		fprintf(stderr, "guest-seed: the VM's parameters are refused: %s\n", strerror(-r));
		return 1;
	}
	if (write_doc(dir, "user-data", cloudinit_user_data, &vm) || write_doc(dir, "meta-data", cloudinit_meta_data, &vm) ||
	    write_doc(dir, "network-config", cloudinit_network_config, &vm))
		return 1;
	return 0;
}

static int iso(int argc, char **argv)
{
	_cleanup_(isoimage_freep) struct isoimage *img = NULL;
	uint64_t mtime;
	int r;

	if (argc < 3 || parse_uint64(argv[2], &mtime) < 0)
		return usage();
	r = isoimage_new(argv[1], (time_t)mtime, &img);
	if (r < 0) {
		fprintf(stderr, "guest-seed: %s\n", strerror(-r));
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq)
			return usage();
		*eq = '\0';
		r = isoimage_add_file(img, argv[i], eq + 1);
		if (r < 0)
			break;
	}
	if (r >= 0)
		r = isoimage_write_path(img, argv[0]);
	if (r < 0) {
		fprintf(stderr, "guest-seed: %s: %s\n", isoimage_error(img), strerror(-r));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && streq(argv[1], "docs"))
		return docs(argc - 2, argv + 2);
	if (argc >= 3 && streq(argv[1], "iso"))
		return iso(argc - 2, argv + 2);
	return usage();
}
