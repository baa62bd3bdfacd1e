/* SPDX-License-Identifier: MIT */
/*
 * cmd-install.c — `devopslab install --bundle B --pubkey P [--node NAME]
 * [--workdir DIR] [--sysfs DIR] [--proc DIR] [--dev DIR]`: the install
 * phase, run by the boot image's /init (docs/boot.md).
 *
 *   fetch      B may be an http(s)/tftp URL: downloaded resumably into DIR
 *   verify     the bundle's signature and every member, then extracted
 *   manifest   loaded from the verified bundle
 *   identify   this machine among the nodes, by MAC or DMI; never guessed
 *   preflight  the gate before any disk is touched; findings kept in
 *              DIR/preflight.json
 *   disks      what is attached (each NVMe with its serial)
 *   secrets    the bundle's sealed secrets, opened with the secret key
 *   install    the node's plan, install phase, through the step engine:
 *              the gate (the three steps above, recorded), the disk steps
 *              (nothing written without --yes or cluster.unattended on the
 *              boot image), then the target mounted at --target DIR
 *              (/mnt/target; the ESP at boot/efi) with its journal
 *              (/var/lib/devopslab/install.journal) and the rest: rootfs,
 *              configuration, boot loader, first-boot service
 *
 * With the manifest's network.syslog set (and no devopslab.syslog= on the
 * kernel command line: the init forwards then), once the node is known the
 * log goes to that syslog receiver too: first the boot log the init kept
 * (--boot-log FILE, or $DEVOPSLAB_BOOT_LOG, [/run/devopslab/boot.log]) as
 * it was when this verb started, then this verb's lines so far, then every
 * further line (docs/boot.md, "Remote syslog").
 *
 * A killed run is resumed by running again: every step checks what is
 * already there (docs/install.md, "Resume").
 *
 * Exit status: 10 installed (something was done: reboot into it), 0 the
 * node was already installed (nothing to do), 1 failure, 2 bad usage or
 * input, 3 refused (unknown machine, pre-flight failed, the disk policy or
 * no confirmation), 4 bundle or secrets verification failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <json-c/json.h>

#include "live/live.h"

#include "install/bootloader.h"
#include "bundle/bundle.h"
#include "disk/disk-step.h"
#include "disk/disk.h"
#include "bundle/extract.h"
#include "bundle/fetch.h"
#include "fileio.h"
#include "node/gate.h"
#include "input.h"
#include "plan/journal.h"
#include "plan/json-util.h"
#include "log.h"
#include "parse.h"
#include "manifest/manifest.h"
#include "node/node.h"
#include "plan/plan.h"
#include "node/preflight.h"
#include "progress.h"
#include "remotelog.h"
#include "install/rootfs.h"
#include "plan/run.h"
#include "bundle/secret.h"
#include "bundle/sig-mbedtls.h"
#include "install/sysconf.h"
#include "install/target.h"
#include "util.h"
#include "verbs.h"

#define INSTALL_LOG_MAX (8u << 20) /* bytes of the install log kept on the node */
#include "step-ops.h"
#include "plan/engine.h"


struct install_args {
	const char *bundle, *pubkey, *node, *nic, *workdir;
	const char *sysfs, *proc, *dev;
	const char *boot_log;
	const char *secret_key, *target;
	const char *status_listen; /* "IP:PORT" or "off"; default: the node's NIC's address, status.port */
	uint64_t status_linger_ms;
	bool yes;
};

/* One step of the gate and disk part, as it ended before the journal (on
 * the target) could be opened: recorded there afterwards. */
struct early_step {
	const struct step *step;
	enum journal_status status;
	uint64_t elapsed_ms;
	struct json_object *result; /* what apply() produced (a reference), or NULL */
};

struct install_ctx {
	struct install_args a;
	char bundle_path[1024]; /* the local bundle file */
	char dir[1024];         /* the verified, extracted bundle */
	struct bundle *bundle;
	struct manifest *manifest;
	struct node_facts facts;
	struct node_match match;
	const struct node_nic *nic; /* the management NIC on this machine; NULL: none known */
	bool nic_by_mac;            /* the installed system names it by its MAC (new hardware, --nic) */
	struct remotelog *rlog;   /* queues this verb's lines until network.syslog is known */
	long long boot_log_size; /* of the boot log when this verb started; -1: none */
	struct secrets *secrets;
	char key_file[1100];     /* the secret key as a file, for firstboot-install; "" = none */
	bool key_file_made;      /* key_file is ours (removed at the end) */
	struct install_gate gate;
	struct early_step early[16];
	size_t n_early;
	const struct run_ctx *run; /* while the steps run: their results */
	size_t n_applied;        /* steps applied in this run */
	unsigned last_pct;       /* extraction progress last printed */
	struct live *live;       /* the status page; NULL: none */
	char fail_step[256], fail_msg[512]; /* the step that failed, for the page */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: devopslab install --bundle B --pubkey P [--node NAME] [--nic NIC] [--workdir DIR]\n"
		   "                         [--sysfs DIR] [--proc DIR] [--dev DIR]\n"
		   "Install phase of the boot image: verify the bundle, identify this node, run the\n"
		   "pre-flight gate, then the node's install steps: disk, root file system,\n"
		   "configuration, boot loader, first-boot service.\n\n"
		   "  --bundle B     bundle file, or an http://, https:// or tftp:// URL (resumable)\n"
		   "  --pubkey P     public key (PEM) the bundle must be signed with\n"
		   "  --node NAME    this machine is node NAME: it must match its entry, or (new\n"
		   "                 hardware) match no entry at all\n"
		   "  --nic NIC      the management NIC on this machine (a name or MAC), when the\n"
		   "                 manifest's nic is not here [the only NIC with a link]\n"
		   "  --workdir DIR  downloads, the extracted bundle, preflight.json [/run/devopslab/work]\n"
		   "  --sysfs DIR, --proc DIR, --dev DIR   other roots (tests) [/sys, /proc, /dev]\n"
		   "  --boot-log FILE  the init's log, replayed to network.syslog\n"
		   "                 [$DEVOPSLAB_BOOT_LOG, else /run/devopslab/boot.log]\n"
		   "  --secret-key FILE  the key of the bundle's secrets [the manifest's secrets.key_source]\n"
		   "  --target DIR   where the new system is mounted [" TARGET_DIR "]\n"
		   "  --yes          write to the selected disk without asking (the boot image does\n"
		   "                 so by itself when the manifest sets cluster.unattended)\n"
		   "  --status-listen IP:PORT|off  the live status page [the NIC's address, status.port]\n"
		   "  --status-linger SEC  serve the final status SEC seconds after the run\n");
}

static int parse_args(int argc, char *argv[], struct install_args *a)
{
	static const struct option options[] = {
		{ "secret-key", required_argument, NULL, 'k' }, { "target", required_argument, NULL, 't' },
		{ "yes", no_argument, NULL, 'y' },
		{ "bundle", required_argument, NULL, 'b' }, { "pubkey", required_argument, NULL, 'p' },
		{ "node", required_argument, NULL, 'n' },   { "workdir", required_argument, NULL, 'w' },
		{ "nic", required_argument, NULL, 'N' },
		{ "sysfs", required_argument, NULL, 's' },  { "proc", required_argument, NULL, 'P' },
		{ "dev", required_argument, NULL, 'd' },    { "help", no_argument, NULL, 'h' },
		{ "boot-log", required_argument, NULL, 'L' },
		{ "status-listen", required_argument, NULL, 'S' },
		{ "status-linger", required_argument, NULL, 'G' },
		{}
	};
	int c;

	*a = (struct install_args){ .workdir = "/run/devopslab/work", .boot_log = getenv("DEVOPSLAB_BOOT_LOG"),
				    .target = TARGET_DIR };
	if (isempty(a->boot_log))
		a->boot_log = "/run/devopslab/boot.log";
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'b': a->bundle = optarg; break;
		case 'p': a->pubkey = optarg; break;
		case 'n': a->node = optarg; break;
		case 'N': a->nic = optarg; break;
		case 'w': a->workdir = optarg; break;
		case 's': a->sysfs = optarg; break;
		case 'P': a->proc = optarg; break;
		case 'd': a->dev = optarg; break;
		case 'L': a->boot_log = optarg; break;
		case 'k': a->secret_key = optarg; break;
		case 't': a->target = optarg; break;
		case 'y': a->yes = true; break;
		case 'S': a->status_listen = optarg; break;
		case 'G': {
			char *end;

			errno = 0;
			a->status_linger_ms = strtoull(optarg, &end, 10) * 1000;
			if (errno || *end || !*optarg) {
				log_error("install: --status-linger takes seconds");
				return EXIT_BADINPUT;
			}
			break;
		}
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return EXIT_BADINPUT;
		}
	}
	if (optind < argc) {
		log_error("install: unexpected argument '%s'", argv[optind]);
		return EXIT_BADINPUT;
	}
	if (!a->bundle || !a->pubkey) {
		log_error("install: --bundle B and --pubkey P are required");
		return EXIT_BADINPUT;
	}
	return EXIT_OK;
}

static void on_progress(void *userdata, uint64_t have, uint64_t total)
{
	(void)userdata;
	if (total)
		log_info("  %" PRIu64 " / %" PRIu64 " KiB", have >> 10, total >> 10);
	else
		log_info("  %" PRIu64 " KiB", have >> 10);
}

static int make_workdir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_error("cannot create work directory '%s': %s", dir, strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* A URL is downloaded first (an earlier partial download is resumed). */
static int step_fetch(struct install_ctx *c)
{
	struct fetch_opts fo = { .progress = on_progress, .attempts = 8, .retry_delay_ms = 1000 };
	struct fetch_result fr = {};
	int r;

	if (!fetch_is_url(c->a.bundle)) {
		snprintf(c->bundle_path, sizeof(c->bundle_path), "%s", c->a.bundle);
		return EXIT_OK;
	}
	if (snprintf(c->bundle_path, sizeof(c->bundle_path), "%s/bundle.tar.zst", c->a.workdir) >=
	    (int)sizeof(c->bundle_path)) {
		log_error("install: --workdir path too long");
		return EXIT_BADINPUT;
	}
	if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
		fo.ca_file = "/etc/ssl/certs/ca-certificates.crt";
	(void)unlink(c->bundle_path); /* a complete earlier download is verified again from scratch */
	log_info("fetching the bundle from %s", c->a.bundle);
	r = fetch_url(c->a.bundle, c->bundle_path, &fo, &fr);
	if (r < 0) {
		log_error("cannot fetch the bundle: %s", fetch_error());
		return r == -EINVAL || r == -ENOENT ? EXIT_BADINPUT : EXIT_FAIL;
	}
	log_info("fetched %" PRIu64 " bytes in %u attempt%s%s", fr.bytes, fr.attempts, fr.attempts == 1 ? "" : "s",
		 fr.resumed_at ? " (resumed)" : "");
	return EXIT_OK;
}

static int step_verify(struct install_ctx *c)
{
	_cleanup_(sig_pubkey_freep) struct sig_pubkey *key = NULL;
	char hex[2 * SIG_SHA256_LEN + 1];
	int r;

	sig_error_clear();
	r = sig_pubkey_load(c->a.pubkey, &key);
	if (r < 0) {
		log_error("cannot use public key '%s': %s", c->a.pubkey, sig_error());
		return EXIT_BADINPUT;
	}
	if (snprintf(c->dir, sizeof(c->dir), "%s/bundle", c->a.workdir) >= (int)sizeof(c->dir)) {
		log_error("install: --workdir path too long");
		return EXIT_BADINPUT;
	}
	/* The destination must be new: what an earlier boot left is removed. */
	r = extract_rm_rf_at(AT_FDCWD, c->dir);
	if (r < 0 && r != -ENOENT) {
		log_error("cannot remove '%s': %s", c->dir, strerror(-r));
		return EXIT_FAIL;
	}
	log_info("verifying bundle %s", c->bundle_path);
	r = bundle_open_verified(c->bundle_path, key, c->dir, &c->bundle);
	if (r == -EBADMSG) {
		log_error("bundle verification failed: %s", bundle_error());
		return EXIT_UNVERIFIED;
	}
	if (r < 0) {
		log_error("cannot read bundle '%s': %s", c->bundle_path,
			  bundle_error()[0] ? bundle_error() : strerror(-r));
		return r == -ENOENT || r == -EACCES || r == -EISDIR ? EXIT_BADINPUT : EXIT_FAIL;
	}
	for (size_t i = 0; i < SIG_SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", c->bundle->sums_sha256[i]);
	log_info("bundle verified: %zu members, %" PRIu64 " bytes, SHA256SUMS sha256 %s", c->bundle->n_members,
		 c->bundle->total_bytes, hex);
	return EXIT_OK;
}

static int step_manifest(struct install_ctx *c)
{
	struct diags d = {};
	char path[1100], line[2048];
	int r;

	snprintf(path, sizeof(path), "%s/" BUNDLE_MANIFEST, c->dir);
	r = manifest_load(path, BUNDLE_MANIFEST, &d, &c->manifest);
	for (size_t i = 0; i < d.n; i++)
		if (d.items[i].severity == DIAG_ERROR && diags_format(&d, i, line, sizeof(line)) >= 0)
			log_error("%s", line);
	diags_done(&d);
	if (r < 0) {
		log_error("the bundle's manifest is not usable: %s", r == -EINVAL ? "invalid" : strerror(-r));
		return EXIT_BADINPUT;
	}
	log_info("manifest: cluster '%s', %zu nodes", c->manifest->cluster.name, c->manifest->n_nodes);
	return EXIT_OK;
}

/* Whether the manifest names a NIC the installed system can use as it is:
 * by name (the installed system's name, which the boot image cannot check),
 * or by a MAC this machine has. */
static bool manifest_nic_here(const struct install_ctx *c)
{
	const struct mf_node *n = c->match.node;
	uint8_t mac[6];

	if (n->nic && parse_mac(n->nic, mac) < 0)
		return true;
	if (!n->nic && !n->has_mac)
		return false;
	if (!n->nic)
		memcpy(mac, n->mac, sizeof(mac));
	for (size_t i = 0; i < c->facts.n_nics; i++)
		if (!memcmp(c->facts.nics[i].mac, mac, sizeof(mac)))
			return true;
	return false;
}

/* The management NIC: the manifest's, found on this machine. On new
 * hardware, when the manifest's is not here, or named by --nic, it is this
 * machine's own, which the installed system then knows by its MAC (the
 * config-network step's `nic`, node_plan()). */
static int choose_nic(struct install_ctx *c)
{
	const struct mf_node *n = c->match.node;
	bool need = c->match.by == NODE_BY_NAME || c->a.nic || !manifest_nic_here(c);
	char mac[18];
	int r;

	r = node_choose_nic(&c->match, &c->facts, c->a.nic, &c->nic);
	if (r < 0 && need) {
		log_error("cannot tell this machine's management NIC: %s; name it with devopslab.nic=NAME|MAC on the "
			  "kernel command line (install --nic)", node_error());
		return EXIT_REFUSED;
	}
	if (r < 0) {
		c->nic = NULL; /* the pre-flight link check says it has none */
		return EXIT_OK;
	}
	c->nic_by_mac = need;
	if (need)
		log_info("management NIC: %s (MAC %s), %s; the installed system knows it by this MAC", c->nic->name,
			 mac_format(c->nic->mac, mac),
			 c->a.nic ? "named by --nic"
			 : n->nic && streq(n->nic, c->nic->name) ? "the manifest's nic"
								   : "the only one with a link");
	return EXIT_OK;
}

static int step_identify(struct install_ctx *c)
{
	char mac[18], facts[1024];
	int r;

	r = node_facts_read(c->a.sysfs, &c->facts);
	if (r < 0) {
		log_error("cannot read this machine's identity: %s", node_error());
		return EXIT_FAIL;
	}
	r = node_identify(c->manifest, &c->facts, c->a.node, &c->match);
	if (r < 0) {
		log_error("unknown machine: %s", node_error());
		return EXIT_REFUSED;
	}
	if (c->match.by == NODE_BY_MAC)
		log_info("identified node %s by MAC %s (%s)", c->match.node->name,
			 mac_format(c->match.nic->mac, mac), c->match.nic->name);
	else if (c->match.by == NODE_BY_NAME) {
		if (node_facts_describe(&c->facts, facts, sizeof(facts)) < 0)
			snprintf(facts, sizeof(facts), "(too many to list)");
		log_warning("new hardware: this machine matches no manifest node (%s); it is node %s, as the command "
			    "line says", facts, c->match.node->name);
	} else
		log_info("identified node %s by %s %s", c->match.node->name, node_match_by_name(c->match.by),
			 c->match.by == NODE_BY_SERIAL ? c->facts.serial : c->facts.uuid);
	return choose_nic(c);
}

/* The NIC whose carrier is checked and whose address serves the status. */
static const char *node_nic(const struct install_ctx *c)
{
	return c->nic ? c->nic->name : NULL;
}

/* The node's plan, with what this machine adds: on new hardware (or with
 * --nic) the bridge's port is its management NIC, by MAC. */
static int node_plan(const struct install_ctx *c, struct plan **ret)
{
	_cleanup_(plan_freep) struct plan *p = NULL;
	char mac[18];
	int r;

	r = plan_build(c->manifest, c->match.node->name, &p);
	if (r < 0)
		return r;
	if (c->nic_by_mac) {
		r = plan_set_node_nic(p, c->match.node->name, mac_format(c->nic->mac, mac));
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(p);
	return 0;
}

/* Whether the kernel command line has devopslab.syslog= (then the init's
 * syslogd already forwards the whole log, ours included). */
static bool cmdline_has_syslog(const struct install_ctx *c)
{
	char path[1100], buf[4096];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/cmdline", c->a.proc ? c->a.proc : "/proc");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (char *p = buf; (p = strstr(p, "devopslab.syslog=")); p++)
		if (p == buf || p[-1] == ' ' || p[-1] == '\t')
			return true;
	return false;
}

/* network.syslog: never fatal; the install goes on without it. */
static void step_remotelog(struct install_ctx *c)
{
	const struct mf_network *net = &c->manifest->network;
	int r;

	if (!net->syslog_host || cmdline_has_syslog(c)) {
		if (net->syslog_host)
			log_info("network.syslog: the kernel command line's devopslab.syslog= is used instead");
		log_set_sink(NULL, NULL);
		c->rlog = remotelog_free(c->rlog);
		return;
	}
	if (!c->rlog)
		return;
	r = remotelog_open(c->rlog, net->syslog_host, net->syslog_port, c->match.node->name);
	if (r < 0) {
		log_set_sink(NULL, NULL);
		c->rlog = remotelog_free(c->rlog);
		log_warning("network.syslog: %s; going on without it", remotelog_error());
		return;
	}
	if (c->boot_log_size >= 0) {
		r = remotelog_replay_file(c->rlog, c->a.boot_log, c->boot_log_size);
		if (r < 0)
			log_warning("network.syslog: the boot log is not replayed: %s", remotelog_error());
	}
	remotelog_flush(c->rlog);
	log_info("logging to syslog at %s:%u (UDP)", net->syslog_host, net->syslog_port);
}

static int step_preflight(struct install_ctx *c)
{
	struct preflight_opts po = {
		.proc = c->a.proc, .sysfs = c->a.sysfs, .dev = c->a.dev,
		.min_memory = c->match.node->min_memory, .nic = node_nic(c),
		.waive = c->match.node->preflight_waive, .link_wait_ms = 5000,
	};
	struct preflight_report rep;
	char path[1100], json[8192];
	_cleanup_close_ int fd = -1;

	(void)preflight_run(&po, &rep);
	log_info("pre-flight checks:");
	for (size_t i = 0; i < rep.n; i++) {
		const struct preflight_finding *f = &rep.items[i];

		log_msg(f->status == PREFLIGHT_FAIL ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO, "  %-14s %-11s %-8s %s",
			preflight_check_name(f->check), preflight_status_name(f->status), f->subject, f->detail);
	}
	/* Kept for the install report. */
	snprintf(path, sizeof(path), "%s/preflight.json", c->a.workdir);
	if (preflight_report_json(&rep, json, sizeof(json)) >= 0) {
		live_preflight(c->live, json_tokener_parse(json));
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, json, strlen(json)) < 0)
			log_warning("cannot keep the pre-flight findings in '%s': %s", path, strerror(errno));
	}
	if (rep.n_failed) {
		snprintf(c->fail_step, sizeof(c->fail_step), "node/%s/preflight", c->match.node->name);
		snprintf(c->fail_msg, sizeof(c->fail_msg), "%zu pre-flight check%s failed", rep.n_failed,
			 rep.n_failed == 1 ? "" : "s");
		log_error("pre-flight: %zu check%s failed; nothing was written to any disk "
			  "(a check the manifest must waive goes into nodes[].preflight.waive)",
			  rep.n_failed, rep.n_failed == 1 ? "" : "s");
		return EXIT_REFUSED;
	}
	log_info("pre-flight: passed (%zu waived, %zu unavailable)", rep.n_waived, rep.n_unavailable);
	return EXIT_OK;
}

static int step_disks(struct install_ctx *c)
{
	struct disk_probe_opts o = { .sysfs = c->a.sysfs, .dev = c->a.dev, .proc = c->a.proc };
	_cleanup_(disk_list_freep) struct disk_list *l = NULL;
	size_t n_nvme = 0;
	int r;

	r = disk_probe_all(&o, &l);
	if (r < 0) {
		log_error("cannot list the disks: %s", disk_errbuf());
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct disk *d = &l->disks[i];

		n_nvme += d->transport == DISK_TRANSPORT_NVME;
		log_info("disk %s: %s, %" PRIu64 " MiB, model '%s', serial '%s'%s%s", d->name,
			 disk_transport_name(d->transport), d->size >> 20, d->model ? d->model : "?",
			 d->serial ? d->serial : "?", d->in_use ? ", in use: " : "", d->in_use ? d->in_use : "");
	}
	log_info("%zu disk%s, %zu NVMe", l->n, l->n == 1 ? "" : "s", n_nvme);
	return EXIT_OK;
}

/* The secrets the configuration steps need (the root password), and the
 * key as a file for the installed system's first boot. */
static int step_secrets(struct install_ctx *c)
{
	struct input_opts in = { .bundle = c->bundle_path, .secret_key = c->a.secret_key };
	uint8_t key[SECRET_KEY_LEN];
	char hex[2 * SECRET_KEY_LEN + 2];
	_cleanup_close_ int fd = -1;
	int r;

	if (!bundle_find(c->bundle, BUNDLE_SECRETS)) {
		log_info("the bundle carries no secrets");
		return EXIT_OK;
	}
	r = input_open_secrets(&in, c->manifest, c->bundle, &c->secrets, key);
	if (r != EXIT_OK)
		return r;
	log_info("secrets: %zu opened", secrets_count(c->secrets));
	if (c->a.secret_key) {
		snprintf(c->key_file, sizeof(c->key_file), "%s", c->a.secret_key);
		explicit_wipe(key, sizeof(key));
		return EXIT_OK;
	}
	/* From the kernel command line or the image: written where only we read it. */
	snprintf(c->key_file, sizeof(c->key_file), "%s/secret.key", c->a.workdir);
	for (size_t i = 0; i < SECRET_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	hex[2 * SECRET_KEY_LEN] = '\n';
	explicit_wipe(key, sizeof(key));
	(void)unlink(c->key_file);
	fd = open(c->key_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	r = fd < 0 || write(fd, hex, 2 * SECRET_KEY_LEN + 1) != 2 * SECRET_KEY_LEN + 1 ? -EIO : 0;
	explicit_wipe(hex, sizeof(hex));
	if (r < 0) {
		log_error("cannot keep the secret key in '%s': %m", c->key_file);
		c->key_file[0] = '\0';
		return EXIT_FAIL;
	}
	c->key_file_made = true;
	return EXIT_OK;
}

static void on_step(const struct step_progress *p, void *userdata)
{
	struct install_ctx *c = userdata;

	live_step(c->live, p);
	if (p->event == STEP_EVENT_FAILED) {
		snprintf(c->fail_step, sizeof(c->fail_step), "%s", p->step->id);
		snprintf(c->fail_msg, sizeof(c->fail_msg), "%s", p->message ? p->message : "");
	}
	verbs_log_step(p);
	c->n_applied += p->event == STEP_EVENT_APPLIED;
	/* Before the target's journal exists: kept, recorded once it does. */
	if ((p->event == STEP_EVENT_APPLIED || p->event == STEP_EVENT_FOUND_DONE) && c->n_early < ELEMENTSOF(c->early))
		c->early[c->n_early++] = (struct early_step){
			.step = p->step,
			.status = p->event == STEP_EVENT_APPLIED ? JOURNAL_STATUS_APPLIED : JOURNAL_STATUS_FOUND,
			.elapsed_ms = p->elapsed_usec / 1000,
			.result = p->event == STEP_EVENT_APPLIED && c->run ? json_object_get(c->run->result) : NULL,
		};
}

/* The console progress of the root file system's extraction: one line per
 * 5 %, a bar that reads in a serial log as well as on a screen. */
static void on_extract(uint64_t done, uint64_t total, void *userdata)
{
	struct install_ctx *c = userdata;
	char bar[21];
	unsigned pct;

	if (!total)
		return;
	pct = (unsigned)(done * 100 / total);
	if (pct > 100)
		pct = 100;
	if (pct < c->last_pct + 5 && pct != 100)
		return;
	if (pct == 100 && c->last_pct == 100)
		return;
	c->last_pct = pct;
	for (unsigned i = 0; i < 20; i++)
		bar[i] = i < pct / 5 ? '#' : '.';
	bar[20] = '\0';
	log_info("  extracting [%s] %3u%%  %" PRIu64 " / %" PRIu64 " MiB", bar, pct, done >> 20, total >> 20);
}

static bool is_early(const struct step *s, void *userdata)
{
	(void)userdata;
	return s->phase == STEP_PHASE_INSTALL && (s->kind == STEP_BUNDLE_VERIFY || s->kind == STEP_NODE_IDENTIFY ||
						  s->kind == STEP_PREFLIGHT || disk_step_kind(s->kind));
}

static bool is_on_target(const struct step *s, void *userdata)
{
	return s->phase == STEP_PHASE_INSTALL && !is_early(s, userdata);
}

/* The install's log (the boot image's, this run's lines among them) kept
 * on the new system, where rsyslog sends it to the log store
 * (config-logs). Best effort: a warning when it cannot be. */
static void keep_install_log(const char *boot_log, const char *root)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = boot_log ? open(boot_log, O_RDONLY | O_CLOEXEC) : -1;
	char path[PATH_MAX], dir[PATH_MAX];
	size_t len = 0;
	int r;

	snprintf(path, sizeof(path), "%s%s", root, MANIFEST_LOGS_INSTALL_LOG);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	r = fd < 0 ? -errno : read_fd_capped(fd, INSTALL_LOG_MAX, &text, &len);
	if (r >= 0 && len > INSTALL_LOG_MAX)
		len = INSTALL_LOG_MAX; /* its first part: the install's start */
	if (r >= 0)
		r = mkdir_p(dir, 0755);
	if (r >= 0)
		r = write_file_atomic(path, text, len, 0640);
	if (r < 0)
		log_warning("the install's log is not kept on the new system (%s): %s", MANIFEST_LOGS_INSTALL_LOG,
			    strerror(-r));
}

/* Exit status for a failed step. */
static int exit_for_step(const struct run_ctx *ctx, int r)
{
	if (ctx->failed_step && disk_step_kind(ctx->failed_step->kind))
		return verbs_exit_for_disk(r);
	return r == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
}

static void log_step_error(const struct run_ctx *ctx, int r)
{
	log_error("%s failed:", ctx->failed_step ? ctx->failed_step->id : "install");
	verbs_log_lines("  ", ctx->error[0] ? ctx->error : strerror(-r));
}

/* What disk-select chose, for its journal record (its check() does the
 * choosing, so the engine has no apply() result for it). */
static struct json_object *selected_disk(const struct disk_target *t)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();

	if (!o || json_add_string(o, "path", t->path) < 0 ||
	    (t->disk->serial && json_add_string(o, "serial", t->disk->serial) < 0) ||
	    (t->disk->model && json_add_string(o, "model", t->disk->model) < 0) ||
	    json_add_u64(o, "size_bytes", t->disk->size) < 0)
		return NULL;
	return TAKE_PTR(o);
}

/* The journal on the target, with the early steps this run did or found. */
static int open_journal(struct install_ctx *c, const char *root, const struct disk_target *disk,
			struct journal **ret)
{
	_cleanup_(journal_freep) struct journal *j = NULL;
	char path[1100], dir[1100];
	int r;

	snprintf(dir, sizeof(dir), "%s/var/lib/devopslab", root);
	snprintf(path, sizeof(path), "%s" ROOTFS_INSTALL_JOURNAL, root);
	r = mkdir_p(dir, 0755);
	if (r < 0) {
		log_error("cannot create '%s': %s", dir, strerror(-r));
		return r;
	}
	r = journal_open(path, JOURNAL_CREATE, &j);
	if (r < 0) {
		log_error("journal '%s': %s", path, journal_error());
		return r;
	}
	for (size_t i = 0; i < c->n_early; i++) {
		const struct step *s = c->early[i].step;
		const struct journal_record *old = journal_find(j, s->id);
		struct journal_record rec = {
			.id = s->id, .phase = (char *)step_phase_to_string(s->phase), .node = s->node,
			.status = c->early[i].status, .elapsed_ms = c->early[i].elapsed_ms,
			.result = c->early[i].result,
		};

		_cleanup_json_ struct json_object *chosen = NULL;

		if (old && streq(old->hash, s->params_hash))
			continue;
		if (s->kind == STEP_DISK_SELECT && !rec.result && disk->disk)
			rec.result = chosen = selected_disk(disk);
		memcpy(rec.hash, s->params_hash, sizeof(rec.hash));
		r = journal_append(j, &rec);
		if (r < 0) {
			log_error("journal '%s': %s", path, journal_error());
			return r;
		}
	}
	*ret = TAKE_PTR(j);
	return 0;
}

/* The node's install phase through the step engine (docs/install.md). */
static int step_install(struct install_ctx *c)
{
	_cleanup_(plan_freep) struct plan *plan = NULL;
	_cleanup_(plan_freep) struct plan *early = NULL;
	_cleanup_(plan_freep) struct plan *rest = NULL;
	_cleanup_(journal_freep) struct journal *journal = NULL;
	const char *node = c->match.node->name;
	struct install_paths paths = {
		.bundle_file = c->bundle_path, .pubkey = c->a.pubkey,
		.secret_key = c->key_file[0] ? c->key_file : NULL,
		.extract_progress = on_extract, .userdata = c,
	};
	struct disk_probe_opts probe = { .sysfs = c->a.sysfs, .dev = c->a.dev, .proc = c->a.proc };
	struct bootloader_opts boot = { .proc = c->a.proc };
	struct disk_step_state st;
	struct target tg = TARGET_INIT;
	struct run_ctx ctx;
	int r, ret = EXIT_FAIL;

	r = node_plan(c, &plan);
	if (r >= 0)
		r = plan_filter(plan, is_early, NULL, &early);
	if (r >= 0)
		r = plan_filter(plan, is_on_target, NULL, &rest);
	if (r < 0) {
		log_error("cannot build the plan for node %s: %s", node, r == -ENOMEM ? strerror(-r) : plan_error());
		return EXIT_FAIL;
	}
	log_info("plan for node %s: %zu install steps (devopslab plan --node %s shows them)", node,
		 early->n_steps + rest->n_steps, node);

	disk_step_state_init(&st);
	st.probe = &probe;
	st.confirmed = c->a.yes || (c->manifest->cluster.unattended && access(INSTALLER_MARKER, F_OK) == 0);
	run_ctx_init(&ctx);
	ctx.ops = step_ops_table;
	c->run = &ctx;
	ctx.manifest = c->manifest;
	ctx.node = node;
	ctx.bundle = c->bundle;
	ctx.secrets = c->secrets;
	ctx.install = &paths;
	ctx.gate = &c->gate;
	ctx.disk = &st;
	ctx.boot = &boot;
	ctx.progress = on_step;
	ctx.userdata = c;
	/* Two runs, one count: [1/16] .. [7/16], then [8/16] .. [16/16]. */
	ctx.progress_total = early->n_steps + rest->n_steps;
	r = step_run(&ctx, early, STEP_PHASE_INSTALL);
	if (r < 0) {
		log_step_error(&ctx, r);
		if (ctx.failed_step && disk_step_kind(ctx.failed_step->kind) && r == -EPERM && !st.confirmed)
			log_error("nothing was written: run with --yes, or set cluster.unattended: true in the manifest "
				  "to let the boot image write without asking");
		ret = exit_for_step(&ctx, r);
		goto out;
	}
	r = disk_target_share(&st.target);
	if (r < 0) {
		log_error("%s", st.target.err);
		goto out;
	}
	r = target_mount(&tg, st.target.path, c->a.target);
	if (r < 0) {
		log_error("cannot mount the new system: %s", tg.err);
		goto out;
	}
	log_info("new system mounted at %s (root %s, ESP %s)", tg.dir, tg.root_dev, tg.esp_dev);
	r = open_journal(c, tg.dir, &st.target, &journal);
	if (r < 0)
		goto out;
	ctx.root = tg.dir;
	ctx.journal = journal;
	ctx.progress_offset = early->n_steps;
	r = step_run(&ctx, rest, STEP_PHASE_INSTALL);
	if (r < 0) {
		log_step_error(&ctx, r);
		ret = exit_for_step(&ctx, r);
		goto out;
	}
	ret = c->n_applied ? EXIT_REBOOT : EXIT_OK;
	if (ret == EXIT_REBOOT && plan_has_kind(rest, STEP_CONFIG_LOGS))
		keep_install_log(c->a.boot_log, tg.dir);
out:
	c->run = NULL;
	run_ctx_done(&ctx);
	for (size_t i = 0; i < c->n_early; i++) {
		json_object_put(c->early[i].result);
		c->early[i].result = NULL;
	}
	c->n_early = 0;
	journal = journal_free(journal); /* closed before its file system goes */
	if (target_umount(&tg) < 0) {
		log_error("%s", tg.err);
		if (ret == EXIT_OK || ret == EXIT_REBOOT)
			ret = EXIT_FAIL;
	}
	disk_step_state_done(&st);
	if (ret == EXIT_REBOOT)
		log_info("node %s is installed (%zu steps done in this run); reboot into it", node, c->n_applied);
	else if (ret == EXIT_OK)
		log_info("node %s was installed already: nothing to do; boot it from its disk", node);
	return ret;
}

/* Every log line to the remote syslog queue and to the status page. */
static void install_sink(enum log_level level, const char *line, void *userdata)
{
	struct install_ctx *c = userdata;

	if (c->rlog)
		remotelog_sink(level, line, c->rlog);
	live_log(level, line, c->live);
}

/* The IPv4 address the node's management NIC has now (the boot image's
 * network), else the manifest's. */
static void nic_address(const struct install_ctx *c, char buf[static INET_ADDRSTRLEN])
{
	const char *nic = node_nic(c);
	struct ifaddrs *ifs = NULL;
	uint32_t ip = c->match.node->ip;

	ipv4_format(ip, buf, INET_ADDRSTRLEN);
	if (!nic || getifaddrs(&ifs) < 0)
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && streq(i->ifa_name, nic)) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, INET_ADDRSTRLEN);
			break;
		}
	freeifaddrs(ifs);
}

/* The install's status page (docs/operations.md, "Live status"), once the
 * node is known: its install steps, the pre-flight findings, the log. */
static void status_start(struct install_ctx *c)
{
	const struct manifest *m = c->manifest;
	_cleanup_(plan_freep) struct plan *p = NULL;
	char listen[64], ip[INET_ADDRSTRLEN];
	int r;

	if ((c->a.status_listen && streq(c->a.status_listen, "off")) || (!c->a.status_listen && !m->status.enabled))
		return;
	if (c->a.status_listen)
		snprintf(listen, sizeof(listen), "%s", c->a.status_listen);
	else {
		nic_address(c, ip);
		snprintf(listen, sizeof(listen), "%s:%u", ip, m->status.port);
	}
	r = node_plan(c, &p);
	if (r >= 0)
		r = live_start(listen, m->cluster.name, c->match.node->name, "install", &c->live);
	if (r >= 0)
		r = live_plan(c->live, p, STEP_PHASE_INSTALL);
	if (r < 0) {
		c->live = live_stop(c->live);
		log_warning("the status page is not served on %s: %s", listen,
			    r == -EINVAL ? "not an IPv4 address and port" : strerror(-r));
		return;
	}
	log_set_sink(install_sink, c);
	log_info("status page: http://%.*s:%u/ (JSON: /status.json)", (int)(strrchr(listen, ':') - listen), listen,
		 live_port(c->live));
}

static void status_stop(struct install_ctx *c, int ret)
{
	if (!c->live)
		return;
	live_finish(c->live, ret == EXIT_OK || ret == EXIT_REBOOT ? "complete" : "failed",
		    ret == EXIT_OK || ret == EXIT_REBOOT || !c->fail_step[0] ? NULL : c->fail_step,
		    ret == EXIT_OK || ret == EXIT_REBOOT || !c->fail_step[0] ? NULL : c->fail_msg);
	if (c->a.status_linger_ms) {
		log_info("status page: serving the final status for %" PRIu64 " s", c->a.status_linger_ms / 1000);
		sleep_ms(c->a.status_linger_ms);
	}
	log_set_sink(c->rlog ? remotelog_sink : NULL, c->rlog);
	c->live = live_stop(c->live);
}

int verb_install(int argc, char *argv[])
{
	struct install_ctx c = {};
	int r;

	r = parse_args(argc, argv, &c.a);
	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	/* The boot log as it is now: what the init wrote before this verb. */
	{
		struct stat st;

		c.boot_log_size = stat(c.a.boot_log, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
	}
	if (remotelog_new(&c.rlog) >= 0)
		log_set_sink(remotelog_sink, c.rlog);
	log_info("provisioner started: devopslab install");
	r = make_workdir(c.a.workdir);
	if (r == EXIT_OK)
		r = step_fetch(&c);
	if (r == EXIT_OK)
		r = step_verify(&c);
	if (r == EXIT_OK) {
		c.gate.bundle_verified = true;
		r = step_manifest(&c);
	}
	if (r == EXIT_OK)
		r = step_identify(&c);
	if (r == EXIT_OK) {
		c.gate.node = c.match.node->name;
		step_remotelog(&c);
		status_start(&c);
		r = step_preflight(&c);
	}
	if (r == EXIT_OK) {
		c.gate.preflight_passed = true;
		r = step_disks(&c);
	}
	if (r == EXIT_OK)
		r = step_secrets(&c);
	if (r == EXIT_OK)
		r = step_install(&c);
	status_stop(&c, r);
	log_set_sink(NULL, NULL);
	remotelog_free(c.rlog);
	if (c.key_file_made)
		(void)unlink(c.key_file);
	secrets_free(c.secrets);
	manifest_free(c.manifest);
	bundle_free(c.bundle);
	return r;
}
