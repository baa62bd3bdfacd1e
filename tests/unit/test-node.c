/* SPDX-License-Identifier: MIT */
/*
 * test-node.c — node identification against a fabricated sysfs and a
 * manifest built in memory: by MAC, by DMI serial and UUID, placeholders,
 * unknown, ambiguous, contradictory, --node, new hardware and the choice
 * of its management NIC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake-tree.h"
#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bundle/extract.h"
#include "node/node.h"
#include "util.h"

static char root[64];

static void put(const char *rel, const char *content)
{
	fake_tree_put(root, rel, content);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/test-node.XXXXXX");
	assert_non_null(mkdtemp(root));
	put("class/net/lo/address", "00:00:00:00:00:00\n");
	put("class/net/eth0/address", "52:54:00:0a:00:02\n");
	put("class/net/eth0/carrier", "1\n");
	put("class/net/wlan0/carrier", "0\n");
	put("class/net/wlan0/address", "aa:bb:cc:dd:ee:ff\n");
	put("class/dmi/id/product_serial", "To Be Filled By O.E.M.\n");
	put("class/dmi/id/product_uuid", "4C4C4544-0042-3610-8052-B4C04F4E4D32\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return extract_rm_rf_at(AT_FDCWD, root) < 0 ? -1 : 0;
}

/* Three nodes like examples/homelab.yaml; node 3 by DMI only. */
static struct mf_node nodes[3];
static struct manifest m = { .nodes = nodes, .n_nodes = 3 };

static void reset_nodes(void)
{
	memset(nodes, 0, sizeof(nodes));
	nodes[0] = (struct mf_node){ .name = (char *)"devops-node-01", .mac = { 0x52, 0x54, 0, 0x0a, 0, 1 }, .has_mac = true };
	nodes[1] = (struct mf_node){ .name = (char *)"devops-node-02", .mac = { 0x52, 0x54, 0, 0x0a, 0, 2 }, .has_mac = true };
	nodes[2] = (struct mf_node){ .name = (char *)"devops-node-03", .serial = (char *)"SN-3" };
}

static void test_facts(void **state)
{
	struct node_facts f;
	char buf[512];

	(void)state;
	assert_int_equal(node_facts_read(root, &f), 0);
	assert_int_equal(f.n_nics, 2); /* lo and the all-zero MAC are not facts */
	assert_string_equal(f.nics[0].name, "eth0");
	assert_string_equal(f.nics[1].name, "wlan0");
	assert_true(f.nics[0].link);
	assert_false(f.nics[1].link);
	assert_string_equal(f.serial, ""); /* placeholder */
	assert_string_equal(f.uuid, "4c4c4544-0042-3610-8052-b4c04f4e4d32");
	assert_int_equal(node_facts_describe(&f, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "MACs 52:54:00:0a:00:02 (eth0), aa:bb:cc:dd:ee:ff (wlan0); DMI serial (none); "
				 "product UUID 4c4c4544-0042-3610-8052-b4c04f4e4d32");
	assert_int_equal(node_facts_describe(&f, buf, 20), -ENOBUFS);
	assert_int_equal(node_facts_read("/nonexistent", &f), -ENOENT);
}

static void test_by_mac(void **state)
{
	struct node_facts f;
	struct node_match r;
	char mac[18];

	(void)state;
	reset_nodes();
	assert_int_equal(node_facts_read(root, &f), 0);
	assert_int_equal(node_identify(&m, &f, NULL, &r), 0);
	assert_string_equal(r.node->name, "devops-node-02");
	assert_int_equal(r.by, NODE_BY_MAC);
	assert_string_equal(r.nic->name, "eth0");
	assert_string_equal(mac_format(r.nic->mac, mac), "52:54:00:0a:00:02");
	assert_int_equal(node_identify(&m, &f, "devops-node-02", &r), 0);
	/* --node names the node: a machine that is another node is refused */
	assert_int_equal(node_identify(&m, &f, "devops-node-01", &r), -EBADE);
	assert_string_equal(node_error(), "this machine is node 'devops-node-02' by its MAC or DMI identity, not "
					  "'devops-node-01'; refusing to take it as 'devops-node-01'");
	assert_int_equal(node_identify(&m, &f, "nosuch", &r), -ENOENT);
	assert_string_equal(node_error(), "the manifest has no node 'nosuch'");
}

static void test_by_dmi(void **state)
{
	struct node_facts f;
	struct node_match r;

	(void)state;
	reset_nodes();
	assert_int_equal(node_facts_read(root, &f), 0);
	snprintf(f.serial, sizeof(f.serial), "SN-3");
	f.n_nics = 0;
	assert_int_equal(node_identify(&m, &f, NULL, &r), 0);
	assert_string_equal(r.node->name, "devops-node-03");
	assert_int_equal(r.by, NODE_BY_SERIAL);
	assert_null(r.nic);
	/* by UUID, case-insensitively */
	nodes[2].serial = NULL;
	nodes[2].product_uuid = (char *)"4c4c4544-0042-3610-8052-B4C04F4E4D32";
	assert_int_equal(node_identify(&m, &f, NULL, &r), 0);
	assert_int_equal(r.by, NODE_BY_UUID);
}

static void test_refusals(void **state)
{
	struct node_facts f;
	struct node_match r = {};

	(void)state;
	reset_nodes();
	assert_int_equal(node_facts_read(root, &f), 0);
	/* unknown: nothing matches */
	f.nics[0].mac[5] = 0x99;
	assert_int_equal(node_identify(&m, &f, NULL, &r), -ENOENT);
	assert_null(r.node);
	assert_non_null(strstr(node_error(), "no manifest node matches this machine (MACs 52:54:00:0a:00:99 (eth0)"));
	/* two nodes match: one by MAC, one by serial */
	f.nics[0].mac[5] = 0x01;
	snprintf(f.serial, sizeof(f.serial), "SN-3");
	assert_int_equal(node_identify(&m, &f, NULL, &r), -ENOTUNIQ);
	assert_string_equal(node_error(), "this machine matches both node 'devops-node-01' and node 'devops-node-03'; "
					  "refusing to choose");
	/* a contradiction: the MAC of node 1, node 1's serial is another */
	nodes[2].serial = NULL;
	nodes[0].serial = (char *)"SN-1";
	assert_int_equal(node_identify(&m, &f, NULL, &r), -EBADE);
	assert_non_null(strstr(node_error(), "node 'devops-node-01' matches by MAC but its serial SN-1 differs"));
	/* a placeholder serial in the manifest never matches a placeholder */
	nodes[0].serial = NULL;
	f.serial[0] = '\0';
	nodes[2].serial = (char *)"To Be Filled By O.E.M.";
	assert_int_equal(node_identify(&m, &f, NULL, &r), 0);
	assert_string_equal(r.node->name, "devops-node-01");
}

/* New hardware: a box that matches no entry, named by --node. */
static void test_new_hardware(void **state)
{
	struct node_facts f;
	struct node_match r = {};
	const struct node_nic *nic = NULL;

	(void)state;
	reset_nodes();
	assert_int_equal(node_facts_read(root, &f), 0);
	f.nics[0].mac[5] = 0x99; /* eth0: not node 2's MAC any more */
	assert_int_equal(node_identify(&m, &f, NULL, &r), -ENOENT);
	assert_int_equal(node_identify(&m, &f, "devops-node-02", &r), 0);
	assert_string_equal(r.node->name, "devops-node-02");
	assert_int_equal(r.by, NODE_BY_NAME);
	assert_null(r.nic);
	assert_string_equal(node_match_by_name(r.by), "name");
	/* named, but it is node 3 by its serial: refused */
	snprintf(f.serial, sizeof(f.serial), "SN-3");
	assert_int_equal(node_identify(&m, &f, "devops-node-02", &r), -EBADE);
	assert_non_null(strstr(node_error(), "this machine is node 'devops-node-03'"));
	f.serial[0] = '\0';
	/* node 2's serial is another: still new hardware (nothing of it matches) */
	nodes[1].serial = (char *)"SN-2-OLD";
	assert_int_equal(node_identify(&m, &f, "devops-node-02", &r), 0);
	assert_int_equal(r.by, NODE_BY_NAME);

	/* its management NIC: the only one with a link */
	f.nics[0].link = false;
	assert_int_equal(node_choose_nic(&r, &f, NULL, &nic), -ENOENT);
	assert_string_equal(node_error(), "no NIC of this machine has a link");
	f.nics[1].link = true; /* wlan0 */
	assert_int_equal(node_choose_nic(&r, &f, NULL, &nic), 0);
	assert_string_equal(nic->name, "wlan0");
	f.nics[0].link = true;
	assert_int_equal(node_choose_nic(&r, &f, NULL, &nic), -ENOTUNIQ);
	assert_string_equal(node_error(), "2 NICs have a link (eth0, wlan0)");
	/* named by --nic (a name or a MAC), or the manifest's nic when here */
	assert_int_equal(node_choose_nic(&r, &f, "aa:bb:cc:dd:ee:ff", &nic), 0);
	assert_string_equal(nic->name, "wlan0");
	assert_int_equal(node_choose_nic(&r, &f, "eth0", &nic), 0);
	assert_string_equal(nic->name, "eth0");
	assert_int_equal(node_choose_nic(&r, &f, "eth7", &nic), -ENOENT);
	assert_string_equal(node_error(), "this machine has no NIC 'eth7'");
	nodes[1].nic = (char *)"wlan0";
	assert_int_equal(node_choose_nic(&r, &f, NULL, &nic), 0);
	assert_string_equal(nic->name, "wlan0");
	/* a manifest nic this machine has not (the old board's MAC): by link */
	nodes[1].nic = (char *)"52:54:00:0a:00:02";
	f.nics[0].link = false;
	assert_int_equal(node_choose_nic(&r, &f, NULL, &nic), 0);
	assert_string_equal(nic->name, "wlan0");
}

/* A known box: the manifest's nic when here, else the NIC that identified it. */
static void test_choose_nic(void **state)
{
	struct node_facts f;
	struct node_match r;
	const struct node_nic *nic = NULL;

	(void)state;
	reset_nodes();
	assert_int_equal(node_facts_read(root, &f), 0);
	assert_int_equal(node_identify(&m, &f, NULL, &r), 0);
	assert_int_equal(node_choose_nic(&r, &f, NULL, &nic), 0);
	assert_string_equal(nic->name, "eth0");
	nodes[1].nic = (char *)"aa:bb:cc:dd:ee:ff";
	assert_int_equal(node_choose_nic(&r, &f, NULL, &nic), 0);
	assert_string_equal(nic->name, "wlan0");
	/* a name the boot image has not (the installed system's): the identifying NIC */
	nodes[1].nic = (char *)"enp1s0";
	assert_int_equal(node_choose_nic(&r, &f, NULL, &nic), 0);
	assert_string_equal(nic->name, "eth0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_facts),
		cmocka_unit_test(test_by_mac),
		cmocka_unit_test(test_new_hardware),
		cmocka_unit_test(test_choose_nic),
		cmocka_unit_test(test_by_dmi),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
