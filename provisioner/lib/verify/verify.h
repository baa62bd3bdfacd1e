/* SPDX-License-Identifier: MIT */
/*
 * verify.h — the plan's last first-boot step, "Verifying the cluster end
 * to end" (verify): what the steps before it made, checked from the
 * outside as a user meets it (docs/plan.md):
 *
 *   quorum           the Proxmox cluster is quorate with every node
 *   vms-running      every VM of the manifest runs
 *   k3s-nodes-ready  every K3s VM is a Ready node (the Kubernetes API)
 *   dns-resolves     every record of the plan is answered by every DNS
 *                    server, asked over real DNS (libresolv; resolve.h)
 *   edge-https       every web console at the edge: its name resolves to
 *                    edge.ip (the first DNS server, when the lab has
 *                    DNS), and HTTPS through edge.ip answers as planned
 *                    with a chain of the cluster CA for that name
 *
 * check() asks once and is done when all answer as planned; apply() asks
 * again until they do or the timeout passes. Either way the table of what
 * answered goes to the run's output, and a failure names every row that
 * did not answer as planned.
 *
 * The run_ctx->verify slot holds a struct verify_cfg * (the verb's).
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "plan/step.h"

struct pve_client;
struct k3s_ctx;
struct dns_ctx;
struct json_object;

struct verify_cfg {
	struct pve_client *pve; /* borrowed: a cluster member's API */
	struct k3s_ctx *k3s;    /* borrowed; NULL without K3s steps */
	struct dns_ctx *dns;    /* borrowed; NULL without DNS steps */
	const char *ca_file;    /* the cluster CA: the edge's certificates */
	const char *edge_ca_file; /* instead, when an ACME CA issued them: its roots */
	const char *edge_connect; /* "HOST:PORT" to reach edge.ip:443 at (tests); NULL = edge.ip:443 */
	uint64_t poll_ms;       /* default 2000 */
	uint64_t timeout_ms;    /* apply: how long to wait for all; default 3 min */
	FILE *out;              /* the table; default stdout */
	/* out: the last table printed, an array of {check, target, ok,
	 * answer} (the report's "verification"); the verb puts it */
	struct json_object *rows;
};

extern const struct step_ops verify_ops;
