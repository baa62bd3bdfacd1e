/* SPDX-License-Identifier: MIT */
/*
 * node.h — which manifest node is this machine? The facts come from sysfs:
 * every NIC's MAC (/sys/class/net/X/address) and the DMI system serial and
 * product UUID (/sys/class/dmi/id/{product_serial,product_uuid}). A node
 * matches when one of its identifiers (mac, serial, product_uuid) equals a
 * fact and none of its given identifiers contradicts one. An unknown box is
 * refused and never guessed: no match is -ENOENT, two matching nodes are
 * -ENOTUNIQ, a contradiction (MAC of one node, serial of another
 * identifier) is -EBADE. DMI placeholders ("To Be Filled By O.E.M.",
 * "Default string", all zeros...) are not facts.
 *
 * New hardware: the operator names the node (install --node NAME, the
 * kernel command line's devopslab.node=NAME) for a box that matches no
 * entry; it is taken as NAME (NODE_BY_NAME), never when it matches another
 * entry. Its management NIC is then chosen on the box (node_choose_nic()).
 *
 * Test seam: the sysfs root is a parameter. Nothing here prints; the
 * detail of a refusal is in node_error().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/manifest.h"

#define NODE_MAX_NICS 64
#define NODE_DMI_MAX 128

struct node_nic {
	char name[16]; /* IFNAMSIZ */
	uint8_t mac[6];
	bool link; /* class/net/X/carrier says 1 */
};

struct node_facts {
	struct node_nic nics[NODE_MAX_NICS]; /* sorted by name */
	size_t n_nics;
	char serial[NODE_DMI_MAX]; /* "" when absent or a placeholder */
	char uuid[37];             /* lower case; "" when absent */
};

enum node_match_by { NODE_BY_MAC, NODE_BY_SERIAL, NODE_BY_UUID, NODE_BY_NAME };
const char *node_match_by_name(enum node_match_by by);

struct node_match {
	const struct mf_node *node; /* points into the manifest */
	enum node_match_by by;
	const struct node_nic *nic; /* the NIC whose MAC matched (NODE_BY_MAC) */
};

/* Read the facts below `sysfs` ("/sys" when NULL). Missing DMI files are
 * not an error (the facts stay empty); an unreadable class/net is. */
int node_facts_read(const char *sysfs, struct node_facts *ret);

/* Find the one node matching the facts. `only` (may be NULL) is the node
 * the operator named: it is taken when it matches, or when nothing does
 * (new hardware, NODE_BY_NAME); a box matching another node is refused. */
int node_identify(const struct manifest *m, const struct node_facts *f, const char *only,
		  struct node_match *ret);

/* This machine's management NIC for the matched node (the one bridged into
 * network.bridge): `want` (--nic: a name or MAC of this machine) when given,
 * else the manifest's `nic` when this machine has it, else the NIC whose MAC
 * identified the node, else the only NIC with a link. -ENOENT when there is
 * none, -ENOTUNIQ when several have a link; node_error() says which. */
int node_choose_nic(const struct node_match *m, const struct node_facts *f, const char *want,
		    const struct node_nic **ret);

/* One line: "MACs 52:54:..(eth0), ...; DMI serial S; product UUID U". */
int node_facts_describe(const struct node_facts *f, char *buf, size_t size);

const char *node_error(void);
