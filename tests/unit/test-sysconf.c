/* SPDX-License-Identifier: MIT */
/*
 * test-sysconf.c — the install phase's configuration steps (sysconf.c,
 * rootfile.c) on a temporary target root, with the example manifest's
 * node devops-node-01: exact file contents, modes and owners, edits that
 * keep the lines they do not own, idempotency through step_run() (the
 * second run finds every step done and applies nothing), a password hash
 * that crypt(3) verifies, and no write ever leaving the root.
 */
#define _GNU_SOURCE
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "plan/json-util.h"
#include "plan/plan.h"
#include "install/rootfile.h"
#include "plan/run.h"
#include "bundle/secret.h"
#include "plan/engine.h"
#include "plan/step.h"
#include "install/sysconf.h"
#include "step-ops.h"

#define PASSWORD "correct horse battery staple"

struct fixture {
	char root[64], host[64];
	char bin[128], bundle[128], pubkey[128];
	struct manifest *m;
	struct plan *full;
	struct secrets *secrets;
	struct install_paths ip;
	unsigned events[_STEP_EVENT_MAX];
};

static void on_progress(const struct step_progress *p, void *userdata)
{
	struct fixture *f = userdata;

	f->events[p->event]++;
}

static void put(const char *root, const char *rel, const char *content, mode_t mode)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	/* missing parent directories, as mkdir -p */
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		(void)mkdir(path, 0755);
		*p = '/';
	}
	fp = fopen(path, "we");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static char *get(const char *root, const char *rel)
{
	char path[512], *buf = NULL;
	size_t n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	fp = fopen(path, "re");
	if (!fp)
		return NULL;
	{
		FILE *mem = open_memstream(&buf, &n);
		int c;

		while ((c = fgetc(fp)) != EOF)
			fputc(c, mem);
		fclose(mem);
	}
	fclose(fp);
	return buf;
}

static void assert_file(const char *root, const char *rel, const char *want, mode_t mode)
{
	char path[512], *have = get(root, rel);
	struct stat st;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	if (!have)
		fail_msg("%s: missing", rel);
	assert_string_equal(have, want);
	free(have);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, mode);
	assert_int_equal(st.st_uid, 0);
}

static bool exists(const char *root, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	return lstat(path, &st) == 0;
}

static void rm_rf(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0); /* test cleanup of our own mkdtemp directory */
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct diags d = {};

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "/tmp/test-sysconf.XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->host, sizeof(f->host), "/tmp/test-sysconf-host.XXXXXX");
	assert_non_null(mkdtemp(f->host));
	assert_int_equal(manifest_load("examples/homelab.yaml", NULL, &d, &f->m), 0);
	diags_done(&d);
	assert_int_equal(plan_build(f->m, "devops-node-01", &f->full), 0);
	assert_int_equal(secrets_parse("root_password=" PASSWORD "\n", strlen("root_password=" PASSWORD "\n"),
				       &f->secrets),
			 0);
	snprintf(f->bin, sizeof(f->bin), "%s/devopslab", f->host);
	snprintf(f->bundle, sizeof(f->bundle), "%s/bundle.tar.zst", f->host);
	snprintf(f->pubkey, sizeof(f->pubkey), "%s/pub.pem", f->host);
	put(f->host, "/devopslab", "#!/bin/true binary stand-in\n", 0755);
	put(f->host, "/bundle.tar.zst", "bundle bytes\n", 0644);
	put(f->host, "/pub.pem", "-----BEGIN PUBLIC KEY-----\n", 0644);
	f->ip = (struct install_paths){ .binary = f->bin, .bundle_file = f->bundle, .pubkey = f->pubkey };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rm_rf(f->root);
	rm_rf(f->host);
	plan_free(f->full);
	manifest_free(f->m);
	secrets_free(f->secrets);
	free(f);
	return 0;
}

static void ctx_init(struct fixture *f, struct run_ctx *ctx)
{
	run_ctx_init(ctx);
	ctx->ops = step_ops_table;
	ctx->manifest = f->m;
	ctx->node = "devops-node-01";
	ctx->root = f->root;
	ctx->secrets = f->secrets;
	ctx->install = &f->ip;
	ctx->progress = on_progress;
	ctx->userdata = f;
}

/* The plan's step of `kind` (its params may be edited by a test). */
static struct step *step_of(struct fixture *f, enum step_kind kind)
{
	for (size_t i = 0; i < f->full->n_steps; i++)
		if (f->full->steps[i].kind == kind)
			return &f->full->steps[i];
	fail_msg("no step of kind %s", step_kind_to_string(kind));
	return NULL;
}

/* A plan with just step s, run twice: applied, then found done. */
static void run_step_twice(struct fixture *f, const struct step *s)
{
	struct plan *p = plan_new(f->m, "devops-node-01");
	struct run_ctx ctx;
	int r;

	assert_non_null(p);
	r = plan_add(p, s->phase, s->kind, s->node, json_object_get(s->params), s->title, "%s", s->id);
	assert_true(r >= 0);
	p->steps[r].mf_node = s->mf_node;
	memset(f->events, 0, sizeof(f->events));
	ctx_init(f, &ctx);
	r = step_run(&ctx, p, STEP_PHASE_INSTALL);
	if (r < 0)
		fail_msg("step_run: %s", ctx.error);
	assert_int_equal(f->events[STEP_EVENT_APPLIED], 1);
	run_ctx_done(&ctx);
	memset(f->events, 0, sizeof(f->events));
	ctx_init(f, &ctx);
	assert_int_equal(step_run(&ctx, p, STEP_PHASE_INSTALL), 0);
	assert_int_equal(f->events[STEP_EVENT_FOUND_DONE], 1);
	assert_int_equal(f->events[STEP_EVENT_APPLY], 0);
	run_ctx_done(&ctx);
	plan_free(p);
}

/* The plan's step of kind, run twice. */
static void run_twice(struct fixture *f, enum step_kind kind)
{
	run_step_twice(f, step_of(f, kind));
}

static void test_registered(void **state)
{
	(void)state;
	assert_ptr_equal(step_ops_table[STEP_CONFIG_HOSTNAME], &sysconf_hostname_ops);
	assert_ptr_equal(step_ops_table[STEP_CONFIG_HOSTS], &sysconf_hosts_ops);
	assert_ptr_equal(step_ops_table[STEP_CONFIG_NETWORK], &sysconf_network_ops);
	assert_ptr_equal(step_ops_table[STEP_CONFIG_USERS], &sysconf_users_ops);
	assert_ptr_equal(step_ops_table[STEP_CONFIG_TIMEZONE], &sysconf_timezone_ops);
	assert_ptr_equal(step_ops_table[STEP_CONFIG_LOGS], &sysconf_logs_ops);
	assert_ptr_equal(step_ops_table[STEP_FIRSTBOOT_INSTALL], &sysconf_firstboot_ops);
}

static void test_hostname(void **state)
{
	struct fixture *f = *state;

	put(f->root, "/etc/hostname", "builder\n", 0644);
	put(f->root, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0444);
	put(f->root, "/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n", 0444);
	run_twice(f, STEP_CONFIG_HOSTNAME);
	assert_file(f->root, "/etc/hostname", "devops-node-01\n", 0644);
	assert_file(f->root, "/etc/machine-id", "", 0444);
	assert_false(exists(f->root, "/var/lib/dbus/machine-id"));
}

/* The UUIDs are the ones disk-filesystems gives this node's file systems
 * (seed "devopslab"); t-disk-apply checks the ESP's against blkid. */
static void test_fstab(void **state)
{
	struct fixture *f = *state;

	put(f->root, "/etc/fstab", "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n", 0644);
	run_twice(f, STEP_CONFIG_FSTAB);
	assert_file(f->root, "/etc/fstab",
		    "# /etc/fstab: written by devopslab (docs/install.md)\n"
		    "# <file system> <mount point> <type> <options> <dump> <pass>\n"
		    "UUID=b8d1a8de-13cb-4690-ac54-f55a413be8e8 / ext4 errors=remount-ro 0 1\n"
		    "UUID=3784-2C68 /boot/efi vfat defaults 0 1\n"
		    "UUID=823b2bae-ac5f-48c2-a419-1c67fb81e64e none swap sw,nofail 0 0\n"
		    "proc /proc proc defaults 0 0\n",
		    0644);
	assert_file(f->root, "/etc/systemd/system/lvm2-monitor.service.d/devopslab.conf",
		    "# Written by devopslab (config-fstab): dmeventd starts with lvm2-monitor, which\n"
		    "# otherwise starts it on its first request and may give up waiting on a\n"
		    "# slow first boot; a failed attempt is tried again (docs/install.md).\n"
		    "[Unit]\n"
		    "Wants=dm-event.service\n"
		    "StartLimitIntervalSec=10min\n"
		    "StartLimitBurst=4\n"
		    "\n"
		    "[Service]\n"
		    "Restart=on-failure\n"
		    "RestartSec=2\n",
		    0644);
}

static const char debian_hosts[] = "127.0.0.1\tlocalhost\n"
				   "127.0.1.1\tbuilder\n"
				   "\n"
				   "# The following lines are desirable for IPv6 capable hosts\n"
				   "::1     localhost ip6-localhost ip6-loopback\n"
				   "ff02::1 ip6-allnodes\n"
				   "10.0.10.12 stale-name devops-node-02\n";

static void test_hosts(void **state)
{
	struct fixture *f = *state;

	put(f->root, "/etc/hosts", debian_hosts, 0644);
	run_twice(f, STEP_CONFIG_HOSTS);
	assert_file(f->root, "/etc/hosts",
		    "127.0.0.1\tlocalhost\n"
		    "10.0.10.11 devops-node-01.homelab.local devops-node-01\n"
		    "10.0.10.12 devops-node-02.homelab.local devops-node-02\n"
		    "10.0.10.13 devops-node-03.homelab.local devops-node-03\n"
		    "\n"
		    "# The following lines are desirable for IPv6 capable hosts\n"
		    "::1     localhost ip6-localhost ip6-loopback\n"
		    "ff02::1 ip6-allnodes\n",
		    0644);
}

static void test_hosts_missing(void **state)
{
	struct fixture *f = *state;

	run_twice(f, STEP_CONFIG_HOSTS);
	assert_file(f->root, "/etc/hosts",
		    "127.0.0.1 localhost\n"
		    "10.0.10.11 devops-node-01.homelab.local devops-node-01\n"
		    "10.0.10.12 devops-node-02.homelab.local devops-node-02\n"
		    "10.0.10.13 devops-node-03.homelab.local devops-node-03\n",
		    0644);
}

static void test_network(void **state)
{
	struct fixture *f = *state;

	/* a symlink where resolv.conf goes is replaced, never written through */
	put(f->root, "/etc/placeholder", "", 0644);
	{
		char p[256];

		snprintf(p, sizeof(p), "%s/etc/resolv.conf", f->root);
		assert_int_equal(symlink("/run/systemd/resolve/stub-resolv.conf", p), 0);
	}
	run_twice(f, STEP_CONFIG_NETWORK);
	assert_file(f->root, "/etc/network/interfaces",
		    "# Written by devopslab (config-network); Proxmox VE reads and edits this file.\n"
		    "\n"
		    "auto lo\n"
		    "iface lo inet loopback\n"
		    "\n"
		    "iface nic0 inet manual\n"
		    "\n"
		    "auto vmbr0\n"
		    "iface vmbr0 inet static\n"
		    "\taddress 10.0.10.11/24\n"
		    "\tgateway 10.0.10.1\n"
		    "\tbridge-ports nic0\n"
		    "\tbridge-stp off\n"
		    "\tbridge-fd 0\n"
		    "\n"
		    "source /etc/network/interfaces.d/*\n",
		    0644);
	assert_file(f->root, "/etc/systemd/network/10-devopslab-nic0.link",
		    "# Written by devopslab (config-network): the manifest names this NIC by its MAC.\n"
		    "[Match]\nMACAddress=52:54:00:0a:00:01\nType=ether\n\n[Link]\nName=nic0\n",
		    0644);
	assert_file(f->root, "/etc/systemd/system/networking.service.d/devopslab.conf",
		    "# Written by devopslab (config-network): the network is up once ifupdown2 has\n"
		    "# configured it (docs/install.md).\n"
		    "[Unit]\n"
		    "Wants=network.target\n"
		    "Before=network.target network-online.target\n",
		    0644);
	assert_file(f->root, "/etc/resolv.conf",
		    "# Written by devopslab (config-network).\nsearch homelab.local\nnameserver 10.0.10.1\n", 0644);
	{
		char p[256];
		struct stat st;

		snprintf(p, sizeof(p), "%s/etc/resolv.conf", f->root);
		assert_int_equal(lstat(p, &st), 0);
		assert_true(S_ISREG(st.st_mode));
	}
}

static void test_network_vlan_mtu_name(void **state)
{
	struct fixture *f = *state;
	struct step *s = step_of(f, STEP_CONFIG_NETWORK);

	json_object_object_add(s->params, "nic", json_object_new_string("enp1s0"));
	json_object_object_add(s->params, "vlan", json_object_new_int(20));
	json_object_object_add(s->params, "mtu", json_object_new_int(9000));
	put(f->root, "/etc/systemd/network/10-devopslab-nic0.link", "stale\n", 0644);
	run_twice(f, STEP_CONFIG_NETWORK);
	assert_file(f->root, "/etc/network/interfaces",
		    "# Written by devopslab (config-network); Proxmox VE reads and edits this file.\n"
		    "\n"
		    "auto lo\n"
		    "iface lo inet loopback\n"
		    "\n"
		    "iface enp1s0 inet manual\n"
		    "\tmtu 9000\n"
		    "\n"
		    "auto vmbr0\n"
		    "iface vmbr0 inet manual\n"
		    "\tbridge-ports enp1s0\n"
		    "\tbridge-stp off\n"
		    "\tbridge-fd 0\n"
		    "\tbridge-vlan-aware yes\n"
		    "\tbridge-vids 2-4094\n"
		    "\tmtu 9000\n"
		    "\n"
		    "auto vmbr0.20\n"
		    "iface vmbr0.20 inet static\n"
		    "\taddress 10.0.10.11/24\n"
		    "\tgateway 10.0.10.1\n"
		    "\n"
		    "source /etc/network/interfaces.d/*\n",
		    0644);
	/* a NIC given by name needs no .link file: a stale one goes */
	assert_false(exists(f->root, "/etc/systemd/network/10-devopslab-nic0.link"));
}

static char *shadow_root_hash(const char *shadow)
{
	const char *p = strstr(shadow, "root:");
	const char *end;

	assert_non_null(p);
	p += 5;
	end = strchr(p, ':');
	assert_non_null(end);
	return strndup(p, (size_t)(end - p));
}

static void test_users(void **state)
{
	struct fixture *f = *state;
	struct step *s = step_of(f, STEP_CONFIG_USERS);
	struct json_object *keys = json_object_new_array();
	struct crypt_data cd = { 0 };
	char path[256], *shadow, *hash, *again;
	struct stat st;

	json_object_array_add(keys, json_object_new_string("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA test@lab"));
	json_object_object_add(s->params, "ssh_keys", keys);
	put(f->root, "/etc/shadow",
	    "daemon:*:19000:0:99999:7:::\nroot:*:0:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0640);
	snprintf(path, sizeof(path), "%s/etc/shadow", f->root);
	assert_int_equal(chown(path, 0, 42), 0);
	put(f->root, "/etc/ssh/ssh_host_ed25519_key", "old key\n", 0600);
	put(f->root, "/etc/ssh/ssh_host_ed25519_key.pub", "old key pub\n", 0644);
	put(f->root, "/etc/ssh/sshd_config", "# kept\n", 0644);
	run_twice(f, STEP_CONFIG_USERS);

	shadow = get(f->root, "/etc/shadow");
	assert_non_null(shadow);
	hash = shadow_root_hash(shadow);
	assert_memory_equal(hash, "$6$", 3);
	assert_string_equal(crypt_r(PASSWORD, hash, &cd), hash);
	assert_string_not_equal(crypt_r("wrong", hash, &cd), hash);
	assert_non_null(strstr(shadow, "daemon:*:19000:0:99999:7:::\nroot:$6$"));
	assert_non_null(strstr(shadow, ":0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"));
	assert_null(strstr(shadow, "root:*"));
	assert_null(strstr(shadow, PASSWORD));
	assert_null(strstr(shadow, ":0:0:99999")); /* "changed on day 0" (forces a change) replaced */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_gid, 42);

	assert_file(f->root, "/root/.ssh/authorized_keys",
		    "# Written by devopslab (config-users) from the manifest's proxmox.ssh_keys.\n"
		    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA test@lab\n",
		    0600);
	snprintf(path, sizeof(path), "%s/root/.ssh", f->root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_false(exists(f->root, "/etc/ssh/ssh_host_ed25519_key"));
	assert_false(exists(f->root, "/etc/ssh/ssh_host_ed25519_key.pub"));
	assert_true(exists(f->root, "/etc/ssh/sshd_config"));
	assert_true(exists(f->root, "/etc/systemd/system/devopslab-ssh-keygen.service"));
	snprintf(path, sizeof(path), "%s/etc/systemd/system/ssh.service.wants/devopslab-ssh-keygen.service", f->root);
	{
		char link[256];
		ssize_t k = readlink(path, link, sizeof(link) - 1);

		assert_true(k > 0);
		link[k] = '\0';
		assert_string_equal(link, "/etc/systemd/system/devopslab-ssh-keygen.service");
	}

	/* the second run kept the hash (same salt): nothing rewritten */
	again = get(f->root, "/etc/shadow");
	assert_string_equal(again, shadow);
	free(again);
	free(hash);
	free(shadow);
}

static void test_users_no_secret(void **state)
{
	struct fixture *f = *state;
	const struct step *s = step_of(f, STEP_CONFIG_USERS);
	struct run_ctx ctx;
	bool done = true;

	put(f->root, "/etc/shadow", "root:*:19000:0:99999:7:::\n", 0640);
	ctx_init(f, &ctx);
	ctx.secrets = NULL;
	assert_int_equal(sysconf_users_ops.check(&ctx, s, &done), -ENOKEY);
	assert_non_null(strstr(ctx.error, "root_password"));
	run_ctx_done(&ctx);
}

static void test_timezone(void **state)
{
	struct fixture *f = *state;
	char path[256], link[256];
	ssize_t k;

	put(f->root, "/etc/default/keyboard", "XKBMODEL=\"pc105\"\nXKBLAYOUT=\"de\"\nXKBVARIANT=\"\"\n", 0644);
	run_twice(f, STEP_CONFIG_TIMEZONE);
	snprintf(path, sizeof(path), "%s/etc/localtime", f->root);
	k = readlink(path, link, sizeof(link) - 1);
	assert_true(k > 0);
	link[k] = '\0';
	assert_string_equal(link, "/usr/share/zoneinfo/Europe/Berlin");
	assert_file(f->root, "/etc/timezone", "Europe/Berlin\n", 0644);
	assert_file(f->root, "/etc/default/keyboard", "XKBMODEL=\"pc105\"\nXKBLAYOUT=\"us\"\nXKBVARIANT=\"\"\n", 0644);
}

/* config-logs (the example has no monitoring.logs: the plan's shape,
 * made here): rsyslog's forwarding and journald's hand-over; a receiver
 * that is not a plain value is refused. */
static void test_logs(void **state)
{
	struct fixture *f = *state;
	char id[] = "node/devops-node-01/config/logs", title[] = "Sending the node's logs", node[] = "devops-node-01";
	struct step s = { .id = id, .title = title, .phase = STEP_PHASE_INSTALL, .kind = STEP_CONFIG_LOGS,
			  .node = node };
	struct plan *p = plan_new(f->m, "devops-node-01");
	struct run_ctx ctx;
	char *text;

	s.params = json_tokener_parse("{\"receiver\":\"10.0.10.5\",\"port\":30514,"
				      "\"install_log\":\"/var/log/devopslab/install.log\"}");
	run_step_twice(f, &s);
	text = get(f->root, "/etc/rsyslog.d/60-devopslab-logs.conf");
	assert_non_null(strstr(text, "input(type=\"imfile\" File=\"/var/log/devopslab/install.log\" "
				     "Tag=\"devopslab-install\""));
	assert_non_null(strstr(text, "action(type=\"omfwd\" target=\"10.0.10.5\" port=\"30514\" protocol=\"tcp\" "
				     "TCP_Framing=\"octet-counted\""));
	assert_non_null(strstr(text, "queue.saveOnShutdown=\"on\" action.resumeRetryCount=\"-1\""));
	free(text);
	assert_file(f->root, "/etc/systemd/journald.conf.d/60-devopslab-logs.conf",
		    "# Written by devopslab (config-logs).\n[Journal]\nForwardToSyslog=yes\n", 0644);
	json_object_put(s.params);
	/* a receiver with a quote would write rsyslog's configuration for it */
	s.params = json_tokener_parse("{\"receiver\":\"10.0.10.5\\\" x=\\\"\",\"port\":30514,"
				      "\"install_log\":\"/var/log/devopslab/install.log\"}");
	assert_non_null(p);
	assert_true(plan_add(p, s.phase, s.kind, s.node, json_object_get(s.params), s.title, "%s", s.id) >= 0);
	ctx_init(f, &ctx);
	assert_int_equal(step_run(&ctx, p, STEP_PHASE_INSTALL), -EINVAL);
	assert_non_null(strstr(ctx.error, "parameter 'receiver' is missing or not a plain value"));
	run_ctx_done(&ctx);
	plan_free(p);
	json_object_put(s.params);
}

static void test_firstboot(void **state)
{
	struct fixture *f = *state;
	char path[256], link[256];
	struct stat st;
	ssize_t k;

	run_twice(f, STEP_FIRSTBOOT_INSTALL);
	assert_file(f->root, "/etc/systemd/system/devopslab-firstboot.service",
		    "# Written by devopslab (firstboot-install).\n"
		    "[Unit]\n"
		    "Description=DevOpsLab first-boot provisioning\n"
		    "After=network-online.target pve-cluster.service\n"
		    "Wants=network-online.target\n"
		    "ConditionPathExists=!/var/lib/devopslab/firstboot.done\n"
		    "\n"
		    "[Service]\n"
		    "Type=oneshot\n"
		    "RemainAfterExit=yes\n"
		    "ExecStart=/usr/local/sbin/devopslab firstboot --bundle /var/lib/devopslab/bundle.tar.zst "
		    "--pubkey /etc/devopslab/bundle.pub --node devops-node-01 --journal /var/lib/devopslab/journal\n"
		    "ExecStartPost=/usr/bin/touch /var/lib/devopslab/firstboot.done\n"
		    "TimeoutStartSec=infinity\n"
		    "StandardOutput=journal+console\n"
		    "\n"
		    "[Install]\n"
		    "WantedBy=multi-user.target\n",
		    0644);
	snprintf(path, sizeof(path), "%s/etc/systemd/system/multi-user.target.wants/devopslab-firstboot.service",
		 f->root);
	k = readlink(path, link, sizeof(link) - 1);
	assert_true(k > 0);
	link[k] = '\0';
	assert_string_equal(link, "/etc/systemd/system/devopslab-firstboot.service");
	assert_file(f->root, "/usr/local/sbin/devopslab", "#!/bin/true binary stand-in\n", 0755);
	assert_file(f->root, "/var/lib/devopslab/bundle.tar.zst", "bundle bytes\n", 0600);
	assert_file(f->root, "/etc/devopslab/bundle.pub", "-----BEGIN PUBLIC KEY-----\n", 0644);
	snprintf(path, sizeof(path), "%s/var/lib/devopslab", f->root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	/* a changed bundle on the host: the copy is no longer done */
	put(f->host, "/bundle.tar.zst", "bundle bytes, v2\n", 0644);
	run_twice(f, STEP_FIRSTBOOT_INSTALL);
	assert_file(f->root, "/var/lib/devopslab/bundle.tar.zst", "bundle bytes, v2\n", 0600);
}

/* Symlinks in the target resolve inside it, as after boot: an absolute
 * /etc -> /elsewhere writes below root/elsewhere, never the host's. */
static void test_symlink_stays_inside(void **state)
{
	struct fixture *f = *state;
	char path[256];

	put(f->root, "/tmp/test-sysconf-escape/placeholder", "", 0644);
	snprintf(path, sizeof(path), "%s/etc", f->root);
	assert_int_equal(symlink("/../../../../..//tmp/test-sysconf-escape", path), 0);
	run_twice(f, STEP_CONFIG_HOSTNAME);
	assert_false(exists("/tmp/test-sysconf-escape", "/hostname"));
	assert_file(f->root, "/tmp/test-sysconf-escape/hostname", "devops-node-01\n", 0644);
}

static void test_rootfile_atomic(void **state)
{
	struct fixture *f = *state;
	struct rootfile_set set = { .n = 0 };
	unsigned writes = 99;
	bool done;
	int rootfd;

	assert_int_equal(rootfile_open_root(f->root, &rootfd), 0);
	assert_int_equal(rootfile_set_file(&set, "/a/b/c", "x\n", 2, 0640, 0750), 0);
	assert_int_equal(rootfile_set_absent(&set, "/gone"), 0);
	assert_int_equal(rootfile_set_file(&set, "/bad/../x", "", 0, 0644, 0755), -EINVAL);
	put(f->root, "/gone", "", 0644);
	assert_int_equal(rootfile_set_check(rootfd, &set, &done), 0);
	assert_false(done);
	assert_int_equal(rootfile_set_apply(rootfd, &set, &writes), 0);
	assert_int_equal(writes, 2);
	assert_int_equal(rootfile_set_apply(rootfd, &set, &writes), 0);
	assert_int_equal(writes, 0);
	assert_file(f->root, "/a/b/c", "x\n", 0640);
	/* no temporary file is left next to it */
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/a/b' | grep -v '^c$')\"", f->root);
		assert_int_equal(system(cmd), 0);
	}
	rootfile_set_done(&set);
	close(rootfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registered),
		cmocka_unit_test_setup_teardown(test_fstab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostname, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hosts_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_vlan_mtu_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users_no_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timezone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_firstboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_stays_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rootfile_atomic, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
