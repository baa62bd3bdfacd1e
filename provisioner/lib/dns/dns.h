/* SPDX-License-Identifier: MIT */
/*
 * dns.h — the first-boot steps that make the lab's DNS: Technitium DNS
 * Server in the manifest's DNS VMs, configured only through its HTTP API
 * (docs/dns.md is the long form):
 *
 *   dns-server      Technitium installed in the VM from the bundle's
 *                   archives through the guest agent (its web console on
 *                   HTTPS with a certificate of the cluster CA, the admin
 *                   password from the sealed secrets), then its settings:
 *                   its name, recursion for the LAN only, the TSIG key of
 *                   the zone transfers. Done when the unit is active, we
 *                   log in over verified TLS and the settings match.
 *   dns-zone        the primary zone on the primary; zone transfer and
 *                   NOTIFY to the secondary only, TSIG-signed.
 *   dns-record      one name and type of the zone: compared, then written
 *                   (overwrite); a value changed by hand is said and set back.
 *   dns-forwarders  the upstream resolvers (DoH/DoT) on every DNS server.
 *   dns-secondary   the secondary zone on the secondary (TSIG-signed AXFR
 *                   from the primary); done when it serves the primary's
 *                   serial.
 *   dns-handover    after the verification step: every Proxmox node
 *                   resolves through the DNS servers (PUT /nodes/{n}/dns).
 *
 * Every API reply's status is checked and its errorMessage passed on
 * (technitium.h). The run_ctx->dns slot holds a struct dns_ctx * (owned
 * by the verb, freed with dns_ctx_free()).
 */
#pragma once

#include <stdint.h>

#include "manifest/manifest.h"
#include "plan/step.h"
#include "pve/http.h"

struct pve_client;

#define DNS_CONNECT_MAX 8

struct dns_cfg {
	struct pve_client *pve;      /* borrowed: a cluster member's API (guest agent) */
	const char *ca_file;         /* the cluster CA: trusts the servers, issues their certificates */
	const char *ca_key_file;
	const char *admin_password;  /* the value of dns.admin_password (secret) */
	/* tests: for VM vm[i], connect to connect_to[i] ("HOST:PORT") instead
	 * of its address (the certificate is still checked for the VM's);
	 * copied by dns_ctx_new() */
	const char *vm[DNS_CONNECT_MAX], *connect_to[DNS_CONNECT_MAX];
	size_t n_connect;
	/* tests: the DNS queries (port 53) of VM query_vm[i] go to
	 * query_to[i] ("HOST:PORT") instead; copied by dns_ctx_new() */
	const char *query_vm[DNS_CONNECT_MAX], *query_to[DNS_CONNECT_MAX];
	size_t n_query;
	uint64_t poll_ms;          /* default 2000 */
	uint64_t exec_timeout_ms;  /* one command in a guest; default 10 min */
	uint64_t ready_timeout_ms; /* the API up, a zone transferred; default 5 min */
	struct http_opts http;
	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

struct dns_ctx;

/* -EINVAL: no password, no CA files, or a CA key OpenSSL cannot read. */
int dns_ctx_new(const struct dns_cfg *cfg, const struct manifest *m, struct dns_ctx **ret);
struct dns_ctx *dns_ctx_free(struct dns_ctx *d);
DEFINE_FREE_FUNC(struct dns_ctx, dns_ctx_free);

/* Where DNS queries for the server in VM vm (address ip) go: its address
 * and port 53, or the test's mapping. host gets a dotted quad. */
int dns_query_endpoint(const struct dns_ctx *d, const char *vm, const char *ip, char host[static 64],
		       unsigned *ret_port);

struct run_ctx;

/* The TXT records at name (in the zone; "_acme-challenge.ZONE") become
 * exactly values on the primary (others there removed; n == 0 removes
 * all), then, when n > 0, wait until every DNS server of the lab answers
 * them (the secondary after its transfer). For the edge's ACME DNS-01
 * challenges; errors said in ctx. */
int dns_txt_publish(struct run_ctx *ctx, struct dns_ctx *d, const char *name, const char *const *values, size_t n);

extern const struct step_ops dns_server_ops;
extern const struct step_ops dns_zone_ops;
extern const struct step_ops dns_record_ops;
extern const struct step_ops dns_forwarders_ops;
extern const struct step_ops dns_secondary_ops;
extern const struct step_ops dns_handover_ops; /* after the verification: the nodes' resolver */
