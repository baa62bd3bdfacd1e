/* SPDX-License-Identifier: MIT */
/*
 * step.h — what a step is: its phase, its kind, its parameters, and the
 * ops (check/apply) that implement a kind.
 *
 * A plan (plan.h) is an ordered list of steps. Each step has a stable id
 * ("node/devops-node-01/disk/partition", "cluster/vm/devops-k3s-worker-01"),
 * a kind, and parameters (a json-c object) that are both what `plan` prints
 * and what the journal hashes to notice a changed manifest. What a step
 * does is bound per KIND through the ops table (step-ops.c): a read-only
 * check() ("already done?") and an apply().
 *
 * The engine that runs the steps is engine.h (step_run()).
 *
 * Adding a kind: append it to enum step_kind (before _STEP_KIND_MAX) and to
 * the name table in step.c; ids and names are stable (they are in journals).
 * Implementing a kind: define a `const struct step_ops` in your module and
 * set its line in lib/step-ops.c (the table the verbs hand the engine in
 * ctx->ops; the engine itself knows no module that implements a kind). A kind without ops stops the engine with
 * "step KIND is not implemented in this build" — never a fake success.
 *
 * docs/plan.md lists every step, its id and its parameters.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/manifest.h"

struct json_object;
struct run_ctx;

enum step_phase {
	STEP_PHASE_INSTALL,   /* from the boot image, onto the target disk */
	STEP_PHASE_FIRSTBOOT, /* on the installed node, first boot */
	_STEP_PHASE_MAX,
	STEP_PHASE_ANY = -1,  /* for step_run(): every phase */
};

const char *step_phase_to_string(enum step_phase p);
int step_phase_from_string(const char *s); /* enum value, or -EINVAL */

/* Names (step_kind_to_string) are stable: they appear in journals and JSON. */
enum step_kind {
	/* install phase, per node */
	STEP_BUNDLE_VERIFY,       /* "bundle-verify" */
	STEP_NODE_IDENTIFY,       /* "node-identify" */
	STEP_PREFLIGHT,           /* "preflight" */
	STEP_DISK_SELECT,         /* "disk-select" */
	STEP_DISK_PARTITION,      /* "disk-partition" */
	STEP_DISK_LVM,            /* "disk-lvm" */
	STEP_DISK_FILESYSTEMS,    /* "disk-filesystems" */
	STEP_ROOTFS_EXTRACT,      /* "rootfs-extract" */
	STEP_CONFIG_FSTAB,        /* "config-fstab" */
	STEP_CONFIG_HOSTNAME,     /* "config-hostname" */
	STEP_CONFIG_HOSTS,        /* "config-hosts" */
	STEP_CONFIG_NETWORK,      /* "config-network" */
	STEP_CONFIG_USERS,        /* "config-users" */
	STEP_CONFIG_TIMEZONE,     /* "config-timezone" */
	STEP_CONFIG_LOGS,         /* "config-logs" */
	STEP_BOOTLOADER,          /* "bootloader" */
	STEP_FIRSTBOOT_INSTALL,   /* "firstboot-install" */
	/* first-boot phase */
	STEP_CLUSTER_CREATE,      /* "cluster-create" */
	STEP_CLUSTER_JOIN,        /* "cluster-join" */
	STEP_CLUSTER_QUORUM,      /* "cluster-quorum" */
	STEP_CLUSTER_CERTS,       /* "cluster-certs" */
	STEP_STORAGE,             /* "storage" */
	STEP_BACKUP_STORAGE,      /* "backup-storage" */
	STEP_TEMPLATE,            /* "template" */
	STEP_VM,                  /* "vm" */
	STEP_BACKUP_JOB,          /* "backup-job" */
	STEP_K3S_SERVER_INIT,     /* "k3s-server-init" */
	STEP_K3S_SERVER_JOIN,     /* "k3s-server-join" */
	STEP_K3S_AGENT,           /* "k3s-agent" */
	STEP_K3S_CHARTS,          /* "k3s-charts" */
	STEP_DNS_SERVER,          /* "dns-server" */
	STEP_DNS_ZONE,            /* "dns-zone" */
	STEP_DNS_RECORD,          /* "dns-record" */
	STEP_DNS_FORWARDERS,      /* "dns-forwarders" */
	STEP_DNS_SECONDARY,       /* "dns-secondary" */
	STEP_EDGE_TRAEFIK,        /* "edge-traefik" */
	STEP_EDGE_CERTS,          /* "edge-certs" */
	STEP_EDGE_ROUTES,         /* "edge-routes" */
	STEP_REGISTRY,            /* "registry" */
	STEP_GITOPS,              /* "gitops" */
	STEP_MONITORING,          /* "monitoring" */
	STEP_VERIFY,              /* "verify" */
	STEP_DNS_HANDOVER,        /* "dns-handover" */
	_STEP_KIND_MAX,
};

const char *step_kind_to_string(enum step_kind k);
int step_kind_from_string(const char *s); /* enum value, or -EINVAL */

#define STEP_ID_MAX 256     /* bytes, without the NUL */
#define STEP_TITLE_MAX 256
#define STEP_HASH_HEX 64    /* SHA-256 of the canonical params JSON */

struct step {
	char *id;    /* stable key, see docs/plan.md; unique within a plan */
	char *title; /* gerund, for progress: "Creating VM devops-k3s-worker-01" */
	enum step_phase phase;
	enum step_kind kind;
	char *node;  /* the node that runs it; NULL = cluster-wide, run by the `first` node */
	struct json_object *params; /* owned; never NULL (an empty object at least) */
	char params_hash[STEP_HASH_HEX + 1];

	/* Typed references for the ops, borrowed from the plan's manifest; set
	 * where they apply, NULL otherwise. */
	const struct mf_node *mf_node;         /* the node a node/... step is about */
	const struct mf_template *mf_template; /* STEP_TEMPLATE */
	struct mf_vm vm;                       /* STEP_VM, STEP_K3S_*, STEP_DNS_SERVER/SECONDARY */
	bool has_vm;
};

/* Parameter accessors for ops (NULL / -ENOENT when absent). */
const char *step_param_string(const struct step *s, const char *key);
int step_param_u64(const struct step *s, const char *key, uint64_t *ret);

/*
 * What a kind does. Both return 0 or -errno; on failure they explain in
 * ctx->error via run_ctx_error(). check() must not change anything (it also
 * runs in dry-run mode). apply() may leave a small result for the journal
 * (a partition UUID, a VM's MAC) with run_ctx_set_result().
 */
struct step_ops {
	int (*check)(struct run_ctx *ctx, const struct step *s, bool *ret_done);
	int (*apply)(struct run_ctx *ctx, const struct step *s);
	/* Steps of this kind that follow one another in the plan are
	 * independent of each other: the engine may run them at the same time
	 * (up to ctx->jobs, engine.h), each in a worker with a run_ctx of its
	 * own. check() and apply() then touch nothing shared but what the
	 * worker's slots share on purpose. */
	bool concurrent;
};

/* The ops of a step whose one function run(ctx, s, apply, ret_done) both
 * checks (apply false: reads only) and applies. */
#define STEP_OPS_OF_RUN(ops, run)                                                          \
	static int run##_check(struct run_ctx *ctx, const struct step *s, bool *ret_done) \
	{                                                                                  \
		return run(ctx, s, false, ret_done);                                       \
	}                                                                                  \
	static int run##_apply(struct run_ctx *ctx, const struct step *s)                 \
	{                                                                                  \
		bool done;                                                                 \
		return run(ctx, s, true, &done);                                           \
	}                                                                                  \
	const struct step_ops ops = { .check = run##_check, .apply = run##_apply }

/* Compute s->params_hash from s->params (plan.c calls it for every step). */
int step_hash_params(struct step *s);

/* Set a string parameter (what this machine adds to the manifest's plan, as
 * the NIC of new hardware) and hash the parameters again. */
int step_set_param_string(struct step *s, const char *key, const char *value);

void step_done(struct step *s);
