/* SPDX-License-Identifier: MIT */
/*
 * test-cloudinit.c — a VM's seed documents (lib/guests/cloudinit.c):
 *   - two VMs' user-data, meta-data and network-config against
 *     tests/data/guests/{full,plain}.* byte for byte (UPDATE_GOLDEN=1
 *     rewrites them: review the diff); one with a user, keys and a payload,
 *     one with none of them, no gateway and no resolvers;
 *   - the same input gives the same bytes;
 *   - every kind of bad input is refused with -EINVAL by all three and by
 *     cloudinit_check(), and nothing is handed out;
 *   - hostile strings (": ", quotes, "#", "yes", YAML indicators, non-ASCII)
 *     in SSH keys come back unchanged when the user-data is parsed with
 *     libyaml; invalid UTF-8 is refused; the document size is capped.
 * What cloud-init itself makes of the documents is
 * tests/integration/t-cloudinit-schema.sh's (cloud-init schema, its
 * renderers, netplan); the payload script is t-guest-payload.sh's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guests/cloudinit.h"
#include "manifest/yaml-util.h"
#include "util.h"

#define SHA_A "9d2f0c1b3a4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
#define SHA_B "0000000000000000000000000000000000000000000000000000000000000001"
#define SHA_C "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

static const char *const full_keys[] = {
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBsYWNlaG9sZGVyLWtleS1mb3ItdGVzdHM ops@lab",
	"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 backup",
};
static const uint32_t full_dns[] = { 0x0a000a02, 0x01010101 };
static const struct cloudinit_file full_files[] = {
	{ "k3s", "/usr/local/bin/k3s", SHA_A, 0755 },
	{ "k3s-airgap-images-amd64.tar.zst", "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst",
	  SHA_B, 0644 },
	{ "install.sh", "/usr/local/lib/devopslab/k3s-install.sh", SHA_C, 0700 },
};

static struct cloudinit_vm full(void)
{
	return (struct cloudinit_vm){
		.hostname = "k3s-server-01",
		.fqdn = "k3s-server-01.lab.example",
		.instance_id = "devopslab-201",
		.user = "ops",
		.ssh_keys = full_keys,
		.n_ssh_keys = ELEMENTSOF(full_keys),
		.mac = "02:AB:00:00:02:01", /* written in lower case */
		.ip = 0x0a000a1f,
		.prefix = 24,
		.gateway = 0x0a000a01,
		.dns = full_dns,
		.n_dns = ELEMENTSOF(full_dns),
		.search = "lab.example",
		.files = full_files,
		.n_files = ELEMENTSOF(full_files),
		.assets_label = "DEVOPSLAB",
	};
}

static struct cloudinit_vm plain(void)
{
	return (struct cloudinit_vm){
		.hostname = "dns1",
		.fqdn = "dns1.home.arpa",
		.instance_id = "devopslab-300",
		.mac = "02-00-00-00-03-00",
		.ip = 0xc0a80105,
		.prefix = 32,
	};
}

typedef int (*doc_fn)(const struct cloudinit_vm *, char **, size_t *);

static const struct {
	const char *suffix;
	doc_fn fn;
} docs[] = {
	{ "user-data", cloudinit_user_data },
	{ "meta-data", cloudinit_meta_data },
	{ "network-config", cloudinit_network_config },
};

static void golden(const char *name, const char *got)
{
	const char *top = getenv("TOP");
	char path[4096], *want = NULL;
	size_t wlen = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/data/guests/%s", top ? top : ".", name);
	if (getenv("UPDATE_GOLDEN") && strcmp(getenv("UPDATE_GOLDEN"), "1") == 0) {
		f = fopen(path, "we");
		assert_non_null(f);
		fputs(got, f);
		fclose(f);
	}
	f = fopen(path, "re");
	if (!f)
		fail_msg("cannot open %s", path);
	if (getdelim(&want, &wlen, '\0', f) < 0)
		want = strdup("");
	fclose(f);
	assert_string_equal(got, want);
	free(want);
}

static void check_golden(const struct cloudinit_vm *vm, const char *prefix)
{
	for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
		char *a = NULL, *b = NULL, name[64];
		size_t alen = 0, blen = 0;

		assert_int_equal(docs[i].fn(vm, &a, &alen), 0);
		assert_int_equal(strlen(a), alen);
		snprintf(name, sizeof(name), "%s.%s", prefix, docs[i].suffix);
		golden(name, a);
		/* the same input, the same bytes */
		assert_int_equal(docs[i].fn(vm, &b, &blen), 0);
		assert_int_equal(alen, blen);
		assert_memory_equal(a, b, alen);
		free(a);
		free(b);
	}
}

static void test_golden_full(void **state)
{
	struct cloudinit_vm vm = full();

	(void)state;
	check_golden(&vm, "full");
}

static void test_golden_plain(void **state)
{
	struct cloudinit_vm vm = plain();

	(void)state;
	check_golden(&vm, "plain");
}

/* Keys without a user go to the image's default user; no payload, no
 * write_files and no runcmd. */
static void test_default_user(void **state)
{
	struct cloudinit_vm vm = full();
	char *t = NULL;
	size_t n = 0;

	(void)state;
	vm.user = NULL;
	vm.n_files = 0;
	assert_int_equal(cloudinit_user_data(&vm, &t, &n), 0);
	assert_non_null(strstr(t, "\nssh_authorized_keys:\n- \"ssh-ed25519 "));
	assert_null(strstr(t, "users:"));
	assert_null(strstr(t, "write_files"));
	assert_null(strstr(t, "runcmd"));
	assert_int_equal(strncmp(t, "#cloud-config\n", 14), 0);
	free(t);
}

/* Every function refuses vm with -EINVAL and hands nothing out. */
static void refused(const struct cloudinit_vm *vm, const char *what)
{
	assert_int_equal(cloudinit_check(vm), -EINVAL);
	for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
		char *t = NULL;
		size_t n = 7;
		int r = docs[i].fn(vm, &t, &n);

		if (r != -EINVAL)
			fail_msg("%s: %s gave %d, not -EINVAL", what, docs[i].suffix, r);
		assert_null(t);
		assert_int_equal(n, 7);
	}
}

#define REFUSE(field, value)                          \
	do {                                          \
		struct cloudinit_vm v = full();       \
		v.field = value;                      \
		refused(&v, #field " = " #value);     \
	} while (0)

static void test_refused(void **state)
{
	static const char *const nl_key[] = { "ssh-ed25519 AAAA a\nssh-ed25519 BBBB b" };
	static const char *const cr_key[] = { "ssh-ed25519 AAAA a\r" };
	static const char *const empty_key[] = { "" };
	static const uint32_t zero_dns[] = { 0 };
	char long_id[CLOUDINIT_ID_MAX + 2];

	(void)state;
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	REFUSE(hostname, NULL);
	REFUSE(hostname, "");
	REFUSE(hostname, "vm#1");
	REFUSE(hostname, "vm 1");
	REFUSE(hostname, "-vm");
	REFUSE(hostname, "vm.lab");
	REFUSE(fqdn, NULL);
	REFUSE(fqdn, "k3s-server-01");                /* not a domain name under the host */
	REFUSE(fqdn, "other.lab.example");            /* another host */
	REFUSE(fqdn, "k3s-server-01x.lab.example");   /* the host name is a prefix, not the label */
	REFUSE(fqdn, "k3s-server-01.lab.example.");
	REFUSE(fqdn, "k3s-server-01.lab#.example");
	REFUSE(instance_id, NULL);
	REFUSE(instance_id, "");
	REFUSE(instance_id, "devopslab 201");
	REFUSE(instance_id, "devopslab-201\n");
	REFUSE(instance_id, "a: b");
	REFUSE(instance_id, long_id);
	REFUSE(user, "");
	REFUSE(user, "root");
	REFUSE(user, "Ops");
	REFUSE(user, "1ops");
	REFUSE(user, "-ops");
	REFUSE(user, "ops user");
	REFUSE(user, "abcdefghijklmnopqrstuvwxyz0123456");
	REFUSE(ssh_keys, nl_key);
	REFUSE(ssh_keys, cr_key);
	REFUSE(ssh_keys, empty_key);
	REFUSE(ssh_keys, NULL);
	REFUSE(n_ssh_keys, CLOUDINIT_KEYS_MAX + 1);
	REFUSE(mac, NULL);
	REFUSE(mac, "02:00:00:00:00");
	REFUSE(mac, "02:00:00:00:00:0g");
	REFUSE(ip, 0);
	REFUSE(prefix, 0);
	REFUSE(prefix, 33);
	REFUSE(gateway, 0x0a000b01);                  /* outside 10.0.10.0/24 */
	REFUSE(gateway, 0x0a000a1f);                  /* the VM's own address */
	REFUSE(dns, zero_dns);
	REFUSE(dns, NULL);
	REFUSE(n_dns, CLOUDINIT_DNS_MAX + 1);
	REFUSE(search, "lab..example");
	REFUSE(search, "lab example");
	REFUSE(assets_label, NULL);
	REFUSE(assets_label, "DEVOPS-LAB");
	REFUSE(assets_label, "ABCDEFGHIJKLMNOPQ");
	REFUSE(files, NULL);
	REFUSE(n_files, CLOUDINIT_FILES_MAX + 1);
}

static void file_refused(struct cloudinit_file f, const char *what)
{
	struct cloudinit_vm vm = full();

	vm.files = &f;
	vm.n_files = 1;
	refused(&vm, what);
}

#define FREFUSE(field, value)                          \
	do {                                           \
		struct cloudinit_file f = full_files[0]; \
		f.field = value;                       \
		file_refused(f, #field " = " #value);  \
	} while (0)

static void test_file_refused(void **state)
{
	static const struct cloudinit_file twice[] = {
		{ "a", "/opt/x", SHA_A, 0644 },
		{ "b", "/opt/x", SHA_B, 0644 },
	};
	char long_path[CLOUDINIT_PATH_MAX + 2];
	struct cloudinit_vm vm = full();

	(void)state;
	long_path[0] = '/';
	memset(long_path + 1, 'a', sizeof(long_path) - 2);
	long_path[sizeof(long_path) - 1] = '\0';
	FREFUSE(source, NULL);
	FREFUSE(source, "");
	FREFUSE(source, "../k3s");
	FREFUSE(source, "dir/k3s");
	FREFUSE(source, ".hidden");
	FREFUSE(source, "k3s bin");
	FREFUSE(path, NULL);
	FREFUSE(path, "");
	FREFUSE(path, "/");
	FREFUSE(path, "usr/local/bin/k3s");
	FREFUSE(path, "/usr/local/bin/");
	FREFUSE(path, "/usr//local/bin/k3s");
	FREFUSE(path, "/usr/local/../bin/k3s");
	FREFUSE(path, "/usr/local/./bin/k3s");
	FREFUSE(path, "/usr/local/bin/..");
	FREFUSE(path, "/usr/local/bin/k3s two");
	FREFUSE(path, "/usr/local/bin/k3s\n/etc/shadow");
	FREFUSE(path, "/usr/local/bin/$(id)");
	FREFUSE(path, "/usr/local/bin/'k3s'");
	FREFUSE(path, long_path);
	FREFUSE(sha256, NULL);
	FREFUSE(sha256, "");
	FREFUSE(sha256, SHA_A "0");
	FREFUSE(sha256, "9D2F0C1B3A4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8");
	FREFUSE(sha256, "9d2f0c1b3a4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7eg");
	FREFUSE(mode, 010000);
	FREFUSE(mode, 0xffffffff);
	vm.files = twice;
	vm.n_files = 2;
	refused(&vm, "two files to one path");
}

/* What the limits allow is accepted: modes up to 07777, the longest path,
 * 64-character names, the most keys, files and resolvers. */
static void test_limits_accepted(void **state)
{
	static char path[CLOUDINIT_PATH_MAX + 1];
	static struct cloudinit_file files[CLOUDINIT_FILES_MAX];
	static char names[CLOUDINIT_FILES_MAX][16];
	static const char *keys[CLOUDINIT_KEYS_MAX];
	static uint32_t dns[CLOUDINIT_DNS_MAX];
	struct cloudinit_vm vm = full();
	char *t = NULL;
	size_t n = 0;

	(void)state;
	path[0] = '/';
	memset(path + 1, 'p', CLOUDINIT_PATH_MAX - 1);
	for (unsigned i = 0; i < CLOUDINIT_FILES_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "f%u", i);
		files[i] = (struct cloudinit_file){ names[i], NULL, SHA_A, 07777 };
	}
	/* distinct paths: /pppp...p (the longest) and /opt/fN */
	files[0].path = path;
	for (unsigned i = 1; i < CLOUDINIT_FILES_MAX; i++) {
		char *p = NULL;

		assert_true(asprintf(&p, "/opt/%s", names[i]) > 0);
		files[i].path = p;
	}
	for (unsigned i = 0; i < CLOUDINIT_KEYS_MAX; i++)
		keys[i] = full_keys[0];
	for (unsigned i = 0; i < CLOUDINIT_DNS_MAX; i++)
		dns[i] = 0x0a000a02 + i;
	vm.files = files;
	vm.n_files = CLOUDINIT_FILES_MAX;
	vm.ssh_keys = keys;
	vm.n_ssh_keys = CLOUDINIT_KEYS_MAX;
	vm.dns = dns;
	vm.n_dns = CLOUDINIT_DNS_MAX;
	vm.assets_label = "ABCDEFGHIJKLMNOP";
	assert_int_equal(cloudinit_check(&vm), 0);
	assert_int_equal(cloudinit_user_data(&vm, &t, &n), 0);
	assert_non_null(strstr(t, "  f0  /ppp"));
	assert_non_null(strstr(t, "  7777\n"));
	free(t);
	assert_int_equal(cloudinit_network_config(&vm, &t, &n), 0);
	free(t);
	for (unsigned i = 1; i < CLOUDINIT_FILES_MAX; i++)
		free((char *)files[i].path);
}

/* The YAML libyaml reads back from a document: its top-level mapping. */
static struct ynode *parse(const char *text, size_t len)
{
	struct yaml_limits lim = { .max_depth = 16, .max_nodes = 100000, .max_scalar = 1 << 20 };
	struct diags d = { .file = (char *)"test" };
	struct ynode *root = NULL;

	assert_int_equal(yaml_tree_parse(text, len, &lim, &d, &root), 0);
	assert_int_equal(d.n, 0);
	assert_non_null(root);
	assert_int_equal(root->kind, YNODE_MAPPING);
	return root;
}

static const struct ynode *get(const struct ynode *map, const char *key)
{
	assert_int_equal(map->kind, YNODE_MAPPING);
	for (size_t i = 0; i < map->n_keys; i++)
		if (streq(map->keys[i]->value, key))
			return map->items[i];
	fail_msg("no key '%s'", key);
	return NULL;
}

/* Strings a careless writer would break: YAML indicators, quotes, a
 * comment, words YAML 1.1 reads as bools or numbers, non-ASCII. Each comes
 * back unchanged and as a quoted (never plain) scalar. */
static void test_hostile_roundtrip(void **state)
{
	static const char *const hostile[] = {
		"ssh-ed25519 AAAA key: with colon",
		"\"double\" and 'single' quotes",
		"#not a comment",
		"ssh-ed25519 AAAA a # b",
		"yes",
		"0644",
		"1:20",
		"~",
		"- dash",
		"? question",
		"{flow: map}",
		"[flow, seq]",
		"&anchor *alias !tag %directive @at `tick` |pipe >fold",
		"back\\slash and \\n not a newline",
		"trailing space ",
		" leading space",
		"k\xc3\xa4se \xe2\x82\xac",
		"---",
		"...",
	};
	struct cloudinit_vm vm = full();
	struct ynode *root;
	const struct ynode *users, *keys;
	char *t = NULL;
	size_t n = 0;

	(void)state;
	vm.ssh_keys = hostile;
	vm.n_ssh_keys = ELEMENTSOF(hostile);
	assert_int_equal(cloudinit_user_data(&vm, &t, &n), 0);
	root = parse(t, n);
	users = get(root, "users");
	assert_int_equal(users->kind, YNODE_SEQUENCE);
	assert_int_equal(users->n, 1);
	keys = get(users->items[0], "ssh_authorized_keys");
	assert_int_equal(keys->kind, YNODE_SEQUENCE);
	assert_int_equal(keys->n, ELEMENTSOF(hostile));
	for (size_t i = 0; i < ELEMENTSOF(hostile); i++) {
		assert_int_equal(keys->items[i]->kind, YNODE_SCALAR);
		assert_false(keys->items[i]->plain);
		assert_string_equal(keys->items[i]->value, hostile[i]);
	}
	/* and the rest is where it belongs */
	assert_string_equal(get(root, "hostname")->value, "k3s-server-01");
	assert_false(get(root, "hostname")->plain);
	assert_true(get(root, "manage_etc_hosts")->plain);
	assert_string_equal(get(root, "manage_etc_hosts")->value, "true");
	assert_string_equal(get(get(root, "write_files")->items[1], "permissions")->value, "0644");
	ynode_free(root);
	/* ASCII out: non-ASCII is escaped inside double quotes */
	for (size_t i = 0; i < n; i++)
		assert_true((unsigned char)t[i] < 0x80);
	free(t);
}

/* The documents parse back into what they say. */
static void test_parse_back(void **state)
{
	struct cloudinit_vm vm = full();
	struct ynode *root;
	const struct ynode *eth, *list, *cmd;
	char *t = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(cloudinit_network_config(&vm, &t, &n), 0);
	root = parse(t, n);
	assert_string_equal(get(root, "version")->value, "2");
	assert_true(get(root, "version")->plain);
	eth = get(get(root, "ethernets"), CLOUDINIT_IFNAME);
	assert_string_equal(get(get(eth, "match"), "macaddress")->value, "02:ab:00:00:02:01");
	assert_false(get(get(eth, "match"), "macaddress")->plain); /* else YAML 1.1 may read a number */
	assert_string_equal(get(eth, "addresses")->items[0]->value, "10.0.10.31/24");
	assert_string_equal(get(get(eth, "routes")->items[0], "via")->value, "10.0.10.1");
	assert_string_equal(get(get(eth, "nameservers"), "addresses")->items[1]->value, "1.1.1.1");
	ynode_free(root);
	free(t);

	assert_int_equal(cloudinit_meta_data(&vm, &t, &n), 0);
	root = parse(t, n);
	assert_string_equal(get(root, "instance-id")->value, "devopslab-201");
	assert_string_equal(get(root, "local-hostname")->value, "k3s-server-01");
	ynode_free(root);
	free(t);

	assert_int_equal(cloudinit_user_data(&vm, &t, &n), 0);
	root = parse(t, n);
	list = get(get(root, "write_files")->items[1], "content");
	assert_string_equal(list->value,
			    "# sha256  source  path  mode: read by " CLOUDINIT_PAYLOAD_SCRIPT " (docs/guests.md)\n"
			    SHA_A "  k3s  /usr/local/bin/k3s  0755\n"
			    SHA_B "  k3s-airgap-images-amd64.tar.zst  "
				  "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst  0644\n"
			    SHA_C "  install.sh  /usr/local/lib/devopslab/k3s-install.sh  0700\n");
	assert_string_equal(get(get(root, "write_files")->items[0], "path")->value, CLOUDINIT_PAYLOAD_SCRIPT);
	assert_non_null(strstr(get(get(root, "write_files")->items[0], "content")->value, "exit $bad\n"));
	cmd = get(root, "runcmd")->items[0];
	assert_int_equal(cmd->kind, YNODE_SEQUENCE);
	assert_int_equal(cmd->n, 4);
	assert_string_equal(cmd->items[0]->value, "/bin/sh");
	assert_string_equal(cmd->items[1]->value, CLOUDINIT_PAYLOAD_SCRIPT);
	assert_string_equal(cmd->items[2]->value, "DEVOPSLAB");
	assert_string_equal(cmd->items[3]->value, CLOUDINIT_PAYLOAD_LIST);
	ynode_free(root);
	free(t);
}

static void test_bad_utf8(void **state)
{
	static const char *const bad[] = { "ssh-ed25519 AAAA \xc3(" };
	struct cloudinit_vm vm = full();
	char *t = NULL;
	size_t n = 0;

	(void)state;
	vm.ssh_keys = bad;
	vm.n_ssh_keys = 1;
	assert_int_equal(cloudinit_user_data(&vm, &t, &n), -EINVAL);
	assert_null(t);
}

/* 64 keys of 16 KiB do not fit in CLOUDINIT_DOC_MAX. */
static void test_too_big(void **state)
{
	static const char *keys[CLOUDINIT_KEYS_MAX];
	struct cloudinit_vm vm = full();
	char *big = malloc(CLOUDINIT_KEY_LEN + 1), *t = NULL;
	size_t n = 0;

	(void)state;
	assert_non_null(big);
	memset(big, 'k', CLOUDINIT_KEY_LEN);
	big[CLOUDINIT_KEY_LEN] = '\0';
	for (unsigned i = 0; i < CLOUDINIT_KEYS_MAX; i++)
		keys[i] = big;
	vm.ssh_keys = keys;
	vm.n_ssh_keys = CLOUDINIT_KEYS_MAX;
	assert_int_equal(cloudinit_user_data(&vm, &t, &n), -EFBIG);
	assert_null(t);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_full),
		cmocka_unit_test(test_golden_plain),
		cmocka_unit_test(test_default_user),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_file_refused),
		cmocka_unit_test(test_limits_accepted),
		cmocka_unit_test(test_hostile_roundtrip),
		cmocka_unit_test(test_parse_back),
		cmocka_unit_test(test_bad_utf8),
		cmocka_unit_test(test_too_big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
