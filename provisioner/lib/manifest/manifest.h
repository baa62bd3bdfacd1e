/* SPDX-License-Identifier: MIT */
/*
 * manifest.h — the cluster manifest (cluster.yaml): its model, and loading
 * with complete validation. docs/manifest.md documents every field.
 *
 * Ownership: manifest_load() returns a struct manifest the caller frees
 * with manifest_free(); every string and array inside belongs to it.
 * Nothing here prints: problems are collected as diagnostics (all of them,
 * in one run) and the verb prints them.
 *
 * Units: sizes are uint64_t bytes; memory of VMs is MiB as in Proxmox
 * (`memory: 2048`); IPv4 addresses are host-order uint32_t.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "util.h"

/* Hard limits on input; exceeding one is a diagnostic, not a crash. */
#define MANIFEST_MAX_BYTES (4u << 20)
#define MANIFEST_MAX_DEPTH 32
#define MANIFEST_MAX_NODES 1024
#define MANIFEST_MAX_VMS 4096

/* ---- the model --------------------------------------------------------- */

struct mf_pos {
	unsigned line, column;
};

/* A secret is only ever a reference by name (`{secret: NAME}`); the value
 * comes from the encrypted secrets file of the bundle (docs/security.md). */
struct mf_secret {
	char *name;
	struct mf_pos pos;
};

struct mf_cidr {
	uint32_t addr;
	unsigned prefix;
};

struct mf_cluster {
	char *name;
	char *domain;   /* homelab.local: valid, with a warning (RFC 6762) */
	char *timezone; /* Area/City */
	char *keyboard; /* XKB layout, "us" */
	char *seed;     /* derives disk/partition/fs UUIDs; default: cluster name */
	bool unattended; /* disk apply without --yes inside the image */
};

struct mf_network {
	struct mf_cidr subnet;
	uint32_t gateway;
	uint32_t *dns;
	size_t n_dns;
	char *bridge; /* vmbr0 */
	unsigned vlan; /* 0 = untagged, else 1..4094 */
	unsigned mtu;  /* 0 = default */
	char *syslog_host;    /* network.syslog: IPv4 address or DNS name; NULL = none */
	unsigned syslog_port; /* its UDP port, default 514 */
};

enum mf_wipe {
	MF_WIPE_NEVER,     /* default: a disk with any signature is refused */
	MF_WIPE_DEVOPSLAB, /* only a disk carrying our own GPT marker */
	MF_WIPE_ALWAYS,
};

/* Disk selection rules: every rule set must hold; at least one is given
 * or largest_nvme is true. Sizes 0 = no bound. */
struct mf_disk_rules {
	char *by_id;     /* "nvme-Samsung_SSD_980_1TB_S64ANS0T123456" or /dev/disk/by-id/... */
	char *serial;
	char *model;     /* fnmatch(3) glob */
	char *transport; /* nvme, sata, usb, virtio, mmc */
	uint64_t min_size, max_size;
	bool largest_nvme;
	enum mf_wipe wipe;
	struct mf_pos pos;
};

/* Pre-flight checks a node may waive (nodes[].preflight.waive), as bits. */
enum mf_waive {
	MF_WAIVE_VIRTUALIZATION = 1u << 0, /* CPU vmx/svm */
	MF_WAIVE_MEMORY = 1u << 1,         /* RAM below min_memory */
	MF_WAIVE_SMART = 1u << 2,          /* NVMe SMART health/wear */
	MF_WAIVE_LINK = 1u << 3,           /* NIC without carrier */
};

enum mf_role {
	MF_ROLE_MEMBER,
	MF_ROLE_FIRST, /* creates the cluster; exactly one node has it */
};

struct mf_node {
	char *name;
	enum mf_role role;
	uint8_t mac[6];
	bool has_mac;
	char *serial;       /* DMI system serial */
	char *product_uuid; /* DMI product UUID, lower case */
	uint32_t ip;        /* management IP, inside network.subnet */
	char *nic;          /* interface bridged into vmbr0: name or MAC-matched */
	uint64_t min_memory; /* pre-flight minimum RAM, bytes; 0 = no check */
	struct mf_disk_rules disk;
	unsigned preflight_waive; /* enum mf_waive bits */
	struct mf_pos pos;
};

/* Proxmox installer sizing knobs; 'set' false = the installer's default. */
struct mf_size_opt {
	uint64_t bytes;
	bool set;
};

struct mf_storage {
	struct mf_size_opt hdsize, swapsize, maxroot, minfree, maxvz;
};

struct mf_asset {
	char *name; /* how the manifest refers to it */
	char *file; /* path inside the bundle's assets/ */
	struct mf_pos pos;
};

struct mf_proxmox {
	char *rootfs; /* asset name */
	struct mf_secret root_password;
	char **ssh_keys;
	size_t n_ssh_keys;
	struct mf_storage storage;
};

/* A template is built on every node in target_nodes (a clone from
 * node-local storage stays on its template's node): the copy on
 * target_nodes[i] has VMID vmid + i and the same name
 * (manifest_template_on()). */
struct mf_template {
	char *name;
	unsigned vmid;       /* the copy on target_nodes[0] */
	char *image;         /* asset name */
	char **target_nodes; /* one or more, no node twice */
	size_t n_target_nodes;
	char *storage;
	struct mf_pos pos;
};

#define MANIFEST_MAX_VM_FILES 256
#define MANIFEST_VM_FILE_PATH_MAX 4095

/* A payload file copied into the guest at first boot (vms[].files). */
struct mf_vm_file {
	char *asset;   /* asset name: the content */
	char *path;    /* absolute and normalized, in the guest */
	unsigned mode; /* permission bits, <= 07777; default 0644 */
	struct mf_pos pos;
};

/* A group of `count` VMs, like Terraform's proxmox_vm_qemu with count.
 * `name` is a pattern: "{n}" is the 1-based index, "{n:02}" zero-padded.
 * vmid and the ipconfig0 address are the first VM's; VM i adds i. */
struct mf_vm_group {
	char *id;   /* referenced from k3s/dns: "k3s_worker" */
	char *name; /* "devops-k3s-worker-{n:02}" */
	unsigned count;
	unsigned vmid;
	char **target_nodes; /* one, or several used round-robin */
	size_t n_target_nodes;
	char *clone; /* template name */
	unsigned cores, sockets;
	unsigned memory; /* MiB */
	bool agent;
	bool full_clone; /* default true (Terraform's); false: a linked clone */
	char *ciuser;    /* the user cloud-init creates; NULL: the image's default user */
	/* OpenSSH public key lines for ciuser. After loading: the group's
	 * `sshkeys`, or a copy of proxmox.ssh_keys when it has none. */
	char **sshkeys;
	size_t n_sshkeys;
	bool has_sshkeys; /* `sshkeys` was given (maybe []) */
	struct mf_vm_file *files;
	size_t n_files;
	struct {
		uint64_t size;
		char *type;    /* scsi, virtio, sata, ide */
		char *storage; /* local-lvm */
	} disk;
	struct {
		char *model;  /* virtio, e1000 */
		char *bridge; /* vmbr0 */
	} network;
	struct {
		uint32_t ip; /* first VM's */
		unsigned prefix;
		uint32_t gw;
	} ipconfig0;
	/* Set by manifest_load(), borrowed from the same manifest: */
	const struct mf_template *template; /* `clone` */
	const char *seed;                   /* cluster.seed: derives the MACs */
	struct mf_pos pos;
};

/* One concrete VM of a group (see manifest_vm_expand()). */
struct mf_vm {
	char name[64];
	unsigned vmid;
	const char *target_node;
	uint32_t ip;
	uint8_t mac[6];         /* net0's, manifest_vm_mac() of the name */
	unsigned template_vmid; /* the clone template's copy on target_node */
	const struct mf_vm_group *group;
	unsigned index; /* 0-based */
};

/* Where the air-gap payload lands in every VM of a K3s server or agent
 * group (the vm step's `files`, docs/k3s.md): the binary, the install
 * script, and the images archive under its asset file's base name in the
 * directory K3s imports archives from when it starts; the servers' VMs
 * also get the kube-vip image there, under its asset file's base name. */
#define MANIFEST_K3S_BINARY_PATH "/usr/local/bin/k3s"
#define MANIFEST_K3S_IMAGES_DIR "/var/lib/rancher/k3s/agent/images"
#define MANIFEST_K3S_INSTALL_PATH "/usr/local/lib/devopslab/k3s-install.sh"
/* The servers' VMs get each k3s.charts archive as NAME.tgz here: K3s's API
 * server serves the directory as https://%{KUBERNETES_API}%/static/, where
 * its helm controller fetches the chart (docs/k3s.md, "Workloads"). */
#define MANIFEST_K3S_CHARTS_DIR "/var/lib/rancher/k3s/server/static/charts"
#define MANIFEST_K3S_CHARTS_MAX 32
/* The longest `values` of a chart, as YAML: it travels in the HelmChart's
 * manifest, written through the guest agent (64 KiB of input at most). */
#define MANIFEST_K3S_VALUES_MAX 32768
/* The longest image reference k3s.kube_vip.ref takes: the OCI
 * distribution grammar's limit on a repository name, applied to the whole
 * reference. */
#define MANIFEST_IMAGE_REF_MAX 255

/* Whether s is an image reference the manifest takes (docs/manifest.md,
 * "image reference"): REGISTRY/PATH[:TAG][@sha256:DIGEST] with a tag or a
 * digest or both, the registry written out (a '.', a port, or localhost).
 * Length and whitespace are the caller's to check. */
bool manifest_image_ref_valid(const char *s);

/* A Helm chart K3s installs and keeps (a HelmChart; docs/k3s.md). */
struct mf_k3s_chart {
	char *name;      /* the HelmChart's and the release's name: a DNS-1123 label */
	char *chart;     /* asset name: the chart archive (.tgz), from the bundle */
	char *namespace; /* the release's namespace: a DNS-1123 label; default "default" */
	/* `values` (a mapping) as YAML text, the HelmChart's valuesContent;
	 * NULL when not given. At most MANIFEST_K3S_VALUES_MAX bytes. */
	char *values;
	struct mf_pos pos;
};

struct mf_k3s {
	char *version;
	struct mf_secret token;
	char **servers; /* VM group ids */
	size_t n_servers;
	char **agents;
	size_t n_agents;
	bool ha; /* embedded etcd; needs an odd number >= 3 of servers */
	/* A virtual address for the API server (the servers' TLS certificates
	 * name it); 0 = none. A host address of network.subnet no one else
	 * holds. */
	uint32_t api_vip;
	/* Pod and service networks; after loading, the defaults 10.42.0.0/16
	 * and 10.43.0.0/16 when not given. Neither overlaps the other nor
	 * network.subnet. */
	struct mf_cidr cluster_cidr, service_cidr;
	char **disable; /* coredns, servicelb, traefik, local-storage, metrics-server: each once, in manifest order */
	size_t n_disable;
	/* kube-vip, which serves api_vip from the servers (ARP, leader
	 * election): its image as an asset, a container image tarball K3s
	 * imports from MANIFEST_K3S_IMAGES_DIR (the nodes have no registry),
	 * and the reference the image has inside it, REGISTRY/PATH:TAG or
	 * REGISTRY/PATH@sha256:DIGEST. Given exactly when api_vip is, and then
	 * both set; NULL otherwise. */
	struct {
		char *image, *ref;
	} kube_vip;
	struct mf_k3s_chart *charts; /* names unique; at most MANIFEST_K3S_CHARTS_MAX */
	size_t n_charts;
	struct {
		/* asset names; binary and install_script are required,
		 * images is optional (a warning when absent) */
		char *binary, *images, *install_script;
	} airgap;
	bool present;
};

enum mf_dns_proto { MF_DNS_UDP, MF_DNS_TCP, MF_DNS_TLS, MF_DNS_HTTPS };

/* "udp", "tcp", "tls", "https" (the manifest's words for enum mf_dns_proto) */
extern const char *const manifest_dns_proto_names[];
const char *manifest_dns_proto_name(enum mf_dns_proto p);

struct mf_dns_forwarder {
	char *address; /* IP, or host for TLS/HTTPS */
	char *name;    /* TLS server name or DoH URL */
	enum mf_dns_proto protocol;
};

struct mf_dns_record {
	char *name; /* relative to the zone */
	char *type; /* A, AAAA, CNAME, TXT */
	char *value;
};

struct mf_dns {
	char *primary;   /* VM name (an expanded VM) that runs Technitium */
	char *secondary; /* VM name, optional */
	char *zone;
	char *wildcard;  /* target of *.zone: an IP, or "edge" for edge.ip */
	bool node_records;
	struct mf_dns_record *records;
	size_t n_records;
	struct mf_dns_forwarder *forwarders;
	size_t n_forwarders;
	struct mf_secret admin_password;
	struct {
		/* asset names: Technitium DNS Server's portable archive
		 * (DnsServerPortable.tar.gz) and the ASP.NET Core runtime
		 * archive it runs on; both or neither (NULL: the DNS VMs'
		 * image has Technitium installed already) */
		char *package, *runtime;
	} airgap;
	bool present;
};

/* backup: one vzdump job for every VM of the manifest (docs/operations.md).
 * After loading, the defaults are set. */
enum mf_backup_mode { MF_BACKUP_SNAPSHOT, MF_BACKUP_SUSPEND, MF_BACKUP_STOP };
#define MANIFEST_BACKUP_SCHEDULE "02:30"
#define MANIFEST_BACKUP_STORAGE "local"
#define MANIFEST_BACKUP_JOB "devopslab"

struct mf_backup {
	char *schedule; /* a Proxmox calendar event ("02:30", "sun 01:00") */
	char *storage;  /* a storage with content "backup" */
	enum mf_backup_mode mode;
	/* retention (prune-backups); all 0 after loading = 7 daily, 4
	 * weekly, 6 monthly */
	struct {
		uint64_t last, daily, weekly, monthly, yearly;
	} keep;
	/* pbs: a Proxmox Backup Server storage of that name, made by the plan
	 * (docs/operations.md, "Backups"); present when given. */
	struct {
		char *server;      /* IP or DNS name */
		char *datastore;
		char *username;    /* user@realm, or user@realm!token */
		struct mf_secret password; /* the password, or the API token's secret */
		char *fingerprint; /* the server certificate's SHA-256, AA:BB:..; NULL: a trusted certificate */
		char *namespace;   /* NULL: the datastore's root */
		uint64_t port;     /* 0: PBS's 8007 */
		bool present;
	} pbs;
	bool present;
};

/* status: each node's live status page while it installs and provisions
 * (docs/operations.md, "Live status"). After loading, port defaults to
 * MANIFEST_STATUS_PORT and enabled to true. */
#define MANIFEST_STATUS_PORT 8080

struct mf_status {
	unsigned port;
	bool enabled;
	bool present;
};

/* Lists of image tarballs (asset names) of the sections below: gitops and
 * monitoring images, registry.seed. */
#define MANIFEST_IMAGES_MAX 64

/* gitops: Argo CD in K3s, following one Git repository (docs/manifest.md,
 * "gitops"; docs/gitops.md). Its chart is a system chart of the K3s charts
 * step, HelmChart kube-system/MANIFEST_GITOPS_CHART into namespace
 * MANIFEST_GITOPS_NAMESPACE; the step gitops makes the repository Secret
 * and the root Application. After loading, revision defaults to MANIFEST_GITOPS_REVISION, path to
 * MANIFEST_GITOPS_PATH, and with credentials.password on an http(s) URL,
 * credentials.username to MANIFEST_GITOPS_USERNAME. */
enum mf_git_url {
	MF_GIT_HTTPS, /* https://HOST[:PORT]/PATH */
	MF_GIT_HTTP,  /* http://HOST[:PORT]/PATH */
	MF_GIT_SSH,   /* ssh://[USER@]HOST[:PORT]/PATH */
	MF_GIT_SCP,   /* USER@HOST:PATH, scp-like */
};
#define MANIFEST_GITOPS_REVISION "HEAD"
#define MANIFEST_GITOPS_REVISION_MAX 255
#define MANIFEST_GITOPS_PATH "."
#define MANIFEST_GITOPS_USERNAME "git"
#define MANIFEST_GITOPS_CHART "argo-cd"    /* its HelmChart's name, not one of k3s.charts' */
#define MANIFEST_GITOPS_NAMESPACE "argocd" /* where Argo CD and its Applications live */
#define MANIFEST_GITOPS_APPLICATION "root"  /* the Application that follows gitops.repo */

struct mf_gitops {
	char *repo;                /* the URL, as written */
	enum mf_git_url repo_kind; /* which form repo has */
	char *revision;            /* a branch, tag or commit */
	char *path;                /* inside the repository: relative, no ".." */
	bool public;               /* no credentials needed */
	struct {
		char *username;            /* http(s) only */
		struct mf_secret password; /* http(s): a password or token */
		struct mf_secret ssh_key;  /* ssh and scp-like: the private key */
	} credentials;
	char *chart;   /* asset name: Argo CD's Helm chart archive */
	char **images; /* asset names: image tarballs; at most MANIFEST_IMAGES_MAX */
	size_t n_images;
	char *host; /* Argo CD's UI at the edge, one label below the zone; NULL: none */
	bool present;
};

/* monitoring: metrics (Prometheus, Grafana, kube-state-metrics,
 * node-exporter) and logs (Loki and its agent) in K3s (docs/manifest.md,
 * "monitoring"; docs/monitoring.md). The metrics' chart is a system chart
 * of the K3s charts step (MANIFEST_MONITORING_CHART into
 * MANIFEST_MONITORING_NAMESPACE); the step monitoring gives Grafana its
 * admin Secret and dashboards and waits for the targets. The logs' chart
 * is a second system chart (MANIFEST_LOGS_CHART, same namespace); the
 * nodes send their logs to it (the install's config-logs), the monitoring
 * step gives Grafana its data source and waits for every source's logs.
 * After loading, retention defaults to
 * MANIFEST_MONITORING_RETENTION, logs.retention (with a logs block) to
 * MANIFEST_LOGS_RETENTION, scrape_targets[].metrics_path to
 * MANIFEST_SCRAPE_PATH. enabled is true when the block is present and does
 * not say false; logs.enabled likewise for the logs block. */
#define MANIFEST_MONITORING_RETENTION "15d"
#define MANIFEST_LOGS_RETENTION "7d"
#define MANIFEST_SCRAPE_PATH "/metrics"
#define MANIFEST_SCRAPE_TARGETS_MAX 32
#define MANIFEST_MONITORING_CHART "monitoring"     /* its HelmChart's and release's name, not one of k3s.charts' */
#define MANIFEST_MONITORING_NAMESPACE "monitoring" /* where Prometheus and Grafana live */
#define MANIFEST_MONITORING_HOSTS_JOB "proxmox-hosts" /* Prometheus's job for the nodes' exporters; not a scrape_targets name */
#define MANIFEST_MONITORING_GRAFANA_SECRET "devopslab-grafana-admin" /* Grafana's admin: the monitoring step makes it */
#define MANIFEST_MONITORING_GRAFANA_USER "admin"
/* The log store (monitoring.logs; docs/monitoring.md): its HelmChart's
 * and release's name (not one of k3s.charts'), in
 * MANIFEST_MONITORING_NAMESPACE; Loki's Service; the agent's syslog
 * receiver, a NodePort on every K3s VM, where the nodes send their logs. */
#define MANIFEST_LOGS_CHART "logs"
#define MANIFEST_LOGS_LOKI "logs-loki"
#define MANIFEST_LOGS_LOKI_PORT 3100
#define MANIFEST_LOGS_SYSLOG_PORT 30514
#define MANIFEST_LOGS_INSTALL_LOG "/var/log/devopslab/install.log" /* the install's log, kept on the node */
#define MANIFEST_SCRAPE_ENDPOINTS_MAX 64

enum mf_scrape_scheme { MF_SCRAPE_HTTP, MF_SCRAPE_HTTPS };

/* One extra scrape job of Prometheus. */
struct mf_scrape_target {
	char *name;     /* the job's name: a DNS-1123 label, unique */
	char **targets; /* "HOST:PORT", HOST an IPv4 address or DNS name; 1..MANIFEST_SCRAPE_ENDPOINTS_MAX */
	size_t n_targets;
	char *metrics_path; /* starts with '/' */
	enum mf_scrape_scheme scheme;
	struct mf_pos pos;
};

struct mf_monitoring {
	bool enabled;
	char *retention; /* a Prometheus duration: "15d", "1w2d" */
	struct mf_secret grafana_password; /* Grafana's admin password; required when enabled */
	struct mf_scrape_target *scrape_targets; /* at most MANIFEST_SCRAPE_TARGETS_MAX */
	size_t n_scrape_targets;
	char *chart;   /* asset name: the monitoring chart archive; required when enabled */
	char **images; /* asset names: image tarballs */
	size_t n_images;
	struct {
		bool enabled;
		char *retention; /* a Prometheus-style duration, "7d" */
		char *chart;     /* asset name: the log store's chart archive; required when enabled */
		char **images;
		size_t n_images;
		bool present;
	} logs;
	/* UIs at the edge, one label below the zone; NULL: none */
	struct {
		char *grafana, *prometheus;
	} hosts;
	bool present;
};

/* registry: the lab's own container registry in K3s (docs/manifest.md,
 * "registry"; docs/registry.md): the registry step runs it (Deployment,
 * volume and Service MANIFEST_REGISTRY_NAME in namespace
 * MANIFEST_REGISTRY_NAMESPACE), the edge serves it as host, every K3s
 * node pulls through it, and the archives of seed are pushed into it from
 * MANIFEST_REGISTRY_SEED_DIR on the first server. After loading, size
 * defaults to MANIFEST_REGISTRY_SIZE; enabled is true when the block is
 * present and does not say false. */
#define MANIFEST_REGISTRY_NAME "registry"
#define MANIFEST_REGISTRY_NAMESPACE "registry"
#define MANIFEST_REGISTRY_PORT 5000
#define MANIFEST_REGISTRY_SEED_DIR "/var/lib/devopslab/registry-seed"
#define MANIFEST_REGISTRY_SIZE (20ULL << 30)
#define MANIFEST_REGISTRY_SIZE_MIN (1ULL << 30)

struct mf_registry {
	bool enabled;
	char *image; /* asset name: the registry's image tarball */
	char *ref;   /* the image's reference inside it (as k3s.kube_vip.ref) */
	char *host;  /* its name at the edge, one label below the zone; required when enabled */
	uint64_t size; /* its volume, bytes */
	char **seed;   /* asset names: image tarballs pushed into it at first boot; at most MANIFEST_IMAGES_MAX */
	size_t n_seed;
	bool present;
};

enum mf_cert_mode { MF_CERT_INTERNAL_CA, MF_CERT_ACME_DNS01 };

struct mf_edge {
	uint32_t ip; /* Traefik's load-balancer address */
	enum mf_cert_mode cert;
	struct {
		/* after loading, server defaults to MANIFEST_ACME_SERVER and
		 * provider to "technitium" (the only one: the lab's DNS answers
		 * the DNS-01 challenges) */
		char *email, *server, *provider;
	} acme;
	char *dashboard_host;
	struct mf_secret dashboard_password; /* basic auth of the dashboard (user "admin") */
	/* the web consoles' names at the edge; after loading, defaults
	 * pve.<zone> and (with a dns section) dns.<zone> */
	char *proxmox_host, *dns_host;
	/* client addresses every route accepts; after loading, network.subnet
	 * when not given */
	struct mf_cidr *allow;
	size_t n_allow;
	/* requests per second per client address; after loading, 100 and 200
	 * when not given */
	struct {
		unsigned average, burst;
	} rate_limit;
	bool present;
};

#define MANIFEST_EDGE_RATE_AVERAGE 100
#define MANIFEST_EDGE_RATE_BURST 200
#define MANIFEST_ACME_SERVER "https://acme-v02.api.letsencrypt.org/directory"
#define MANIFEST_ACME_PROVIDER "technitium"
#define MANIFEST_EDGE_DASHBOARD_USER "admin"

/* Secrets with a meaning of their own: the cluster CA (docs/pve.md). Their
 * values are base64 of the PEM (a secrets file holds one line per value). */
#define MANIFEST_SECRET_CA_KEY "cluster_ca_key"
#define MANIFEST_SECRET_CA_CERT "cluster_ca_cert"

struct mf_secrets {
	char *key_source; /* where the decryption key comes from at boot */
	char **names;     /* every secret the manifest may reference */
	size_t n_names;
};

struct manifest {
	unsigned version;
	struct mf_cluster cluster;
	struct mf_network network;
	struct mf_node *nodes;
	size_t n_nodes;
	struct mf_proxmox proxmox;
	struct mf_asset *assets;
	size_t n_assets;
	struct mf_template *templates;
	size_t n_templates;
	struct mf_vm_group *vms;
	size_t n_vms;
	struct mf_k3s k3s;
	struct mf_dns dns;
	struct mf_edge edge;
	struct mf_backup backup;
	struct mf_status status;
	struct mf_gitops gitops;
	struct mf_monitoring monitoring;
	struct mf_registry registry;
	struct mf_secrets secrets;
};

/* Parse and validate. Returns 0 and a manifest when there is no error
 * (warnings may be present in *diags); -EINVAL with every error in *diags
 * when the manifest is invalid; other -errno when the file cannot be read.
 * `display_name` is used in diagnostics (defaults to path). */
int manifest_load(const char *path, const char *display_name, struct diags *diags, struct manifest **ret);
int manifest_load_buffer(const char *data, size_t size, const char *display_name, struct diags *diags,
			 struct manifest **ret);
struct manifest *manifest_free(struct manifest *m);

const struct mf_node *manifest_find_node(const struct manifest *m, const char *name);
const struct mf_template *manifest_find_template(const struct manifest *m, const char *name);
const struct mf_vm_group *manifest_find_vm_group(const struct manifest *m, const char *id);
const struct mf_asset *manifest_find_asset(const struct manifest *m, const char *name);

/* The copy of template t on `node`: its VMID in *ret_vmid. Returns 0, or
 * -ENOENT when t is not built on that node. */
int manifest_template_on(const struct mf_template *t, const char *node, unsigned *ret_vmid);

/* The MAC address of a VM's net0, derived from the cluster seed and the VM
 * name (seed-id.h: purpose "mac:net0"; the first 6 bytes, then the
 * multicast bit cleared and the locally administered bit set). Returns 0 or
 * -errno. */
int manifest_vm_mac(const char *seed, const char *vm_name, uint8_t ret[6]);

/* Fill *ret with VM `index` (0-based) of group g. Returns -EINVAL when
 * index >= g->count or the name pattern does not expand to a host name.
 * On a loaded manifest mac and template_vmid are always set. */
int manifest_vm_expand(const struct mf_vm_group *g, unsigned index, struct mf_vm *ret);

/* Expand a VM name pattern ("{n}", "{n:02}") for the 1-based index n into
 * buf. Returns 0, -EINVAL for a malformed pattern, -ENAMETOOLONG. */
int manifest_vm_name(const char *pattern, unsigned n, char *buf, size_t size);

/* Find an expanded VM by name; fills *ret. Returns 0 or -ENOENT. */
int manifest_find_vm(const struct manifest *m, const char *name, struct mf_vm *ret);

/* Total number of VMs in the groups listed (k3s servers, say). */
size_t manifest_count_vms(const struct manifest *m, char *const *group_ids, size_t n);

/* One file the plan adds to a VM's payload (manifest_k3s_payload(),
 * manifest_dns_payload()). */
struct mf_payload_file {
	const char *asset; /* borrowed from the manifest */
	char path[320];    /* in the guest */
	unsigned mode;
	const char *key;   /* the manifest key that names the asset: "k3s.airgap.binary", "gitops.images" */
};

#define MANIFEST_K3S_PAYLOAD_MAX (8 + MANIFEST_K3S_CHARTS_MAX + 4 * MANIFEST_IMAGES_MAX)

/* The K3s payload every VM of group g gets when g is in k3s.servers or
 * k3s.agents, in order: airgap.binary at MANIFEST_K3S_BINARY_PATH (0755),
 * airgap.images in MANIFEST_K3S_IMAGES_DIR (0644; only when set and its
 * asset exists, whose file's base name it keeps), airgap.install_script at
 * MANIFEST_K3S_INSTALL_PATH (0755), then, in a server group only,
 * kube_vip.image in MANIFEST_K3S_IMAGES_DIR (0644; as airgap.images) and
 * each of k3s.charts as MANIFEST_K3S_CHARTS_DIR/NAME.tgz (0644); with
 * gitops, its chart as MANIFEST_K3S_CHARTS_DIR/MANIFEST_GITOPS_CHART.tgz
 * (servers only) and its images in MANIFEST_K3S_IMAGES_DIR (every K3s
 * VM: Argo CD's pods may run on any node); with monitoring enabled, the
 * same for its chart (MANIFEST_MONITORING_CHART.tgz) and images, and with
 * its logs enabled for theirs (MANIFEST_LOGS_CHART.tgz); with the
 * registry enabled, its image in MANIFEST_K3S_IMAGES_DIR (every K3s VM)
 * and, in a server group, each of registry.seed in
 * MANIFEST_REGISTRY_SEED_DIR under its file's base name. An unset
 * key is left out. Returns how many entries of ret[] were filled: 0
 * for any other group or without k3s. */
size_t manifest_k3s_payload(const struct manifest *m, const struct mf_vm_group *g,
			    struct mf_payload_file ret[static MANIFEST_K3S_PAYLOAD_MAX]);

/* Where the DNS payload goes in a DNS VM (docs/dns.md). */
#define MANIFEST_DNS_DIR "/usr/local/lib/devopslab/technitium"
#define MANIFEST_DNS_PACKAGE_PATH MANIFEST_DNS_DIR "/DnsServerPortable.tar.gz"
#define MANIFEST_DNS_RUNTIME_PATH MANIFEST_DNS_DIR "/aspnetcore-runtime.tar.gz"
#define MANIFEST_DNS_PAYLOAD_MAX 2
/* The TSIG key the secondary's zone transfers are signed with (its
 * secret derives from the cluster CA's key: docs/dns.md). */
#define MANIFEST_DNS_TSIG_KEY "devopslab-xfr"

/* The DNS payload every VM of group g gets when one of g's VMs is
 * dns.primary or dns.secondary and dns.airgap is set: airgap.package at
 * MANIFEST_DNS_PACKAGE_PATH, airgap.runtime at MANIFEST_DNS_RUNTIME_PATH
 * (both 0644). Returns how many entries of ret[] were filled. */
size_t manifest_dns_payload(const struct manifest *m, const struct mf_vm_group *g,
			    struct mf_payload_file ret[static MANIFEST_DNS_PAYLOAD_MAX]);

DEFINE_FREE_FUNC(struct manifest, manifest_free)
