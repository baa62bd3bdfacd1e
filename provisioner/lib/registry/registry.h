/* SPDX-License-Identifier: MIT */
/*
 * registry.h — the lab's own container registry (docs/registry.md is the
 * long form): the Distribution registry from the bundle's image, run in
 * K3s, served by the edge under registry.host with the edge's
 * certificate, and every K3s node pulling through it.
 *
 *   registry  Namespace, PersistentVolumeClaim (local-path), Deployment
 *             and Service NAME in NS, each compared before a server-side
 *             apply (field manager "devopslab"); once the Deployment is
 *             available and the registry answers /v2/ (through the API
 *             server's service proxy), every K3s VM gets, through the
 *             guest agent, the lab's zone resolved by the lab's DNS
 *             servers (a systemd-resolved drop-in), the CA of the edge's
 *             certificate and K3s's registries.yaml (a mirror for every
 *             registry, "*", at https://HOST), and K3s restarted on a VM
 *             whose files changed, one VM at a time, each Ready before
 *             the next. Then the first server pushes every seed archive
 *             through the edge (registry-seed.sh: `k3s ctr` import, tag
 *             HOST/PATH:TAG, push), and the images pushed are recorded
 *             per archive in ConfigMap NS/devopslab-seed. Done when all of
 *             it holds and every recorded image's tag is in the registry.
 *
 * The engine's run_ctx->registry slot holds a struct registry_cfg *
 * (owned by the verb).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/step.h"

struct k3s_ctx;
struct kube_client;
struct json_object;

#define REGISTRY_MANAGER "devopslab"
#define REGISTRY_SEED_CONFIGMAP "devopslab-seed"
#define REGISTRY_K3S_CONFIG "/etc/rancher/k3s/registries.yaml"
#define REGISTRY_CA_PATH "/etc/rancher/k3s/devopslab-registry-ca.pem"
#define REGISTRY_RESOLVED_DROPIN "/etc/systemd/resolved.conf.d/devopslab.conf"
#define REGISTRY_SEED_SCRIPT "/usr/local/lib/devopslab/registry-seed.sh"
#define REGISTRY_IMAGES_MAX 256 /* images recorded per archive */

struct registry_cfg {
	struct k3s_ctx *k3s; /* borrowed: its Kubernetes API client and guest agent */
	const char *ca_pem;  /* the CA of the edge's certificate (PEM, borrowed); NULL: the VMs' own roots (ACME) */
	uint64_t poll_ms;    /* default 2000 */
	uint64_t timeout_ms; /* the registry available, a node Ready again; default 10 min */
	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

/* What every K3s VM gets from the step's parameters: K3s's
 * registries.yaml (with a ca_file when with_ca) and the resolved drop-in
 * (NULL when the parameters have no "dns"). malloc'd; 0 or -EINVAL
 * (parameters without host) / -ENOMEM. Exposed for tests. */
int registry_node_files(struct json_object *params, bool with_ca, char **ret_registries, char **ret_resolved);

/* The seed script the first server runs (registry-seed.sh HOST CAFILE
 * ARCHIVE; CAFILE "-": the system's roots): a static string. */
const char *registry_seed_script(void);

/* The images the seed script says it pushed ("pushed SRC DEST" lines;
 * any other line is ignored), each DEST "HOST/PATH:TAG": *ret the DESTs
 * one per line, each ending in a newline (malloc'd; what the ConfigMap
 * records per archive), *ret_n how many. -EBADMSG for a DEST outside HOST
 * or without a tag, -E2BIG past REGISTRY_IMAGES_MAX. Exposed for tests and
 * the fuzz target. */
int registry_parse_pushed(const char *out, const char *host, char **ret, size_t *ret_n);

/* The seeded images as recorded (ConfigMap NS/devopslab-seed) and as the
 * registry lists them (tags/list through the service proxy), for the
 * parameters {namespace, name, port}: *ret_n recorded, *ret_have listed;
 * the first missing into why. Errors: the API's, other than 404. */
int registry_seeded(struct kube_client *k, struct json_object *params, size_t *ret_n, size_t *ret_have, char *why,
		    size_t why_size);

extern const struct step_ops registry_ops;
