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
 *
 * With the manifest's network.syslog set (and no devopslab.syslog= on the
 * kernel command line: the init forwards then), once the node is known the
 * log goes to that syslog receiver too: first the boot log the init kept
 * (--boot-log FILE, or $DEVOPSLAB_BOOT_LOG, [/run/devopslab/boot.log]) as
 * it was when this verb started, then this verb's lines so far, then every
 * further line (docs/boot.md, "Remote syslog").
 *
 * The disk layout and the Proxmox install steps are not bound into this
 * verb yet: it says so and exits 1 rather than pretend.
 *
 * Exit status: 1 failure (and, for now, "install steps not in this build"),
 * 2 bad usage or input, 3 refused (unknown machine, pre-flight failed),
 * 4 bundle verification failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "disk.h"
#include "extract.h"
#include "fetch.h"
#include "log.h"
#include "manifest.h"
#include "node.h"
#include "preflight.h"
#include "remotelog.h"
#include "sig.h"
#include "util.h"
#include "verbs.h"


struct install_args {
	const char *bundle, *pubkey, *node, *workdir;
	const char *sysfs, *proc, *dev;
	const char *boot_log;
};

struct install_ctx {
	struct install_args a;
	char bundle_path[1024]; /* the local bundle file */
	char dir[1024];         /* the verified, extracted bundle */
	struct bundle *bundle;
	struct manifest *manifest;
	struct node_facts facts;
	struct node_match match;
	struct remotelog *rlog;   /* queues this verb's lines until network.syslog is known */
	long long boot_log_size; /* of the boot log when this verb started; -1: none */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: devopslab install --bundle B --pubkey P [--node NAME] [--workdir DIR]\n"
		   "                         [--sysfs DIR] [--proc DIR] [--dev DIR]\n"
		   "Install phase of the boot image: verify the bundle, identify this node, run the\n"
		   "pre-flight gate, find the disks.\n\n"
		   "  --bundle B     bundle file, or an http://, https:// or tftp:// URL (resumable)\n"
		   "  --pubkey P     public key (PEM) the bundle must be signed with\n"
		   "  --node NAME    only consider node NAME (it must still match this machine)\n"
		   "  --workdir DIR  downloads, the extracted bundle, preflight.json [/run/devopslab/work]\n"
		   "  --sysfs DIR, --proc DIR, --dev DIR   other roots (tests) [/sys, /proc, /dev]\n"
		   "  --boot-log FILE  the init's log, replayed to network.syslog\n"
		   "                 [$DEVOPSLAB_BOOT_LOG, else /run/devopslab/boot.log]\n");
}

static int parse_args(int argc, char *argv[], struct install_args *a)
{
	static const struct option options[] = {
		{ "bundle", required_argument, NULL, 'b' }, { "pubkey", required_argument, NULL, 'p' },
		{ "node", required_argument, NULL, 'n' },   { "workdir", required_argument, NULL, 'w' },
		{ "sysfs", required_argument, NULL, 's' },  { "proc", required_argument, NULL, 'P' },
		{ "dev", required_argument, NULL, 'd' },    { "help", no_argument, NULL, 'h' },
		{ "boot-log", required_argument, NULL, 'L' },
		{}
	};
	int c;

	*a = (struct install_args){ .workdir = "/run/devopslab/work", .boot_log = getenv("DEVOPSLAB_BOOT_LOG") };
	if (isempty(a->boot_log))
		a->boot_log = "/run/devopslab/boot.log";
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'b': a->bundle = optarg; break;
		case 'p': a->pubkey = optarg; break;
		case 'n': a->node = optarg; break;
		case 'w': a->workdir = optarg; break;
		case 's': a->sysfs = optarg; break;
		case 'P': a->proc = optarg; break;
		case 'd': a->dev = optarg; break;
		case 'L': a->boot_log = optarg; break;
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

static int step_identify(struct install_ctx *c)
{
	char mac[18];
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
			 node_mac_format(c->match.nic->mac, mac), c->match.nic->name);
	else
		log_info("identified node %s by %s %s", c->match.node->name, node_match_by_name(c->match.by),
			 c->match.by == NODE_BY_SERIAL ? c->facts.serial : c->facts.uuid);
	return EXIT_OK;
}

/* The NIC whose carrier is checked: the manifest's `nic` (a name, or a MAC
 * of this machine), else the one whose MAC identified the node. */
static const char *node_nic(const struct install_ctx *c)
{
	const struct mf_node *n = c->match.node;
	uint8_t mac[6];

	if (n->nic) {
		if (sscanf(n->nic, "%2hhx:%2hhx:%2hhx:%2hhx:%2hhx:%2hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
			   &mac[5]) == 6) {
			for (size_t i = 0; i < c->facts.n_nics; i++)
				if (!memcmp(c->facts.nics[i].mac, mac, 6))
					return c->facts.nics[i].name;
			return NULL;
		}
		return n->nic;
	}
	return c->match.nic ? c->match.nic->name : NULL;
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
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, json, strlen(json)) < 0)
			log_warning("cannot keep the pre-flight findings in '%s': %s", path, strerror(errno));
	}
	if (rep.n_failed) {
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
	if (r == EXIT_OK)
		r = step_manifest(&c);
	if (r == EXIT_OK)
		r = step_identify(&c);
	if (r == EXIT_OK)
		step_remotelog(&c);
	if (r == EXIT_OK)
		r = step_preflight(&c);
	if (r == EXIT_OK)
		r = step_disks(&c);
	if (r == EXIT_OK) {
		log_error("node %s: the disk layout and Proxmox install steps are not part of this build yet; "
			  "stopping here with no disk touched", c.match.node->name);
		r = EXIT_FAIL;
	}
	log_set_sink(NULL, NULL);
	remotelog_free(c.rlog);
	manifest_free(c.manifest);
	bundle_free(c.bundle);
	return r;
}
