/* SPDX-License-Identifier: MIT */
/*
 * test-disk-select.c — discovery on a fabricated machine (sysfs, /dev,
 * /proc and the udev database in a temporary directory) and selection of
 * exactly one disk by the manifest's rules, with per-candidate reasons.
 *
 * The machine: two NVMe disks (1 TB, 512 GB), a SATA SSD (serial only in
 * the udev database, as on real systems), a USB stick that is the boot
 * medium (its partition is mounted on /run/live/medium), and a virtio disk
 * with 4Kn sectors whose partition is active swap... and an unused loop.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake-tree.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk/disk-select.h"
#include "util.h"

static char root[256];

static void put(const char *rel, const char *content)
{
	fake_tree_put(root, rel, content);
}

static void link_(const char *target, const char *rel)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fake_tree_mkparents(path);
	assert_int_equal(symlink(target, path), 0);
}

/* A disk under sys/devices/<devpath>/<name>, linked from sys/block/<name>. */
static void mkdisk(const char *devpath, const char *name, const char *devnum, unsigned long long sectors,
		   unsigned lbs, const char *model, const char *serial, int removable)
{
	char rel[512], val[64], target[512];

#define P(attr, v)                                                              \
	do {                                                                    \
		snprintf(rel, sizeof(rel), "sys/devices/%s/%s/%s", devpath, name, attr); \
		put(rel, v);                                                    \
	} while (0)
	snprintf(val, sizeof(val), "%llu\n", sectors);
	P("size", val);
	snprintf(val, sizeof(val), "%s\n", devnum);
	P("dev", val);
	snprintf(val, sizeof(val), "%u\n", lbs);
	P("queue/logical_block_size", val);
	P("queue/physical_block_size", val);
	P("queue/rotational", "0\n");
	P("removable", removable ? "1\n" : "0\n");
	if (model)
		P("device/model", model);
	if (serial)
		P("device/serial", serial);
	snprintf(target, sizeof(target), "../devices/%s/%s", devpath, name);
	snprintf(rel, sizeof(rel), "sys/block/%s", name);
	link_(target, rel);
#undef P
}

static void mkpart(const char *devpath, const char *disk, const char *part, const char *devnum, unsigned n,
		   unsigned long long start, unsigned long long size)
{
	char rel[512], val[64];

	snprintf(rel, sizeof(rel), "sys/devices/%s/%s/%s/partition", devpath, disk, part);
	snprintf(val, sizeof(val), "%u\n", n);
	put(rel, val);
	snprintf(rel, sizeof(rel), "sys/devices/%s/%s/%s/dev", devpath, disk, part);
	snprintf(val, sizeof(val), "%s\n", devnum);
	put(rel, val);
	snprintf(rel, sizeof(rel), "sys/devices/%s/%s/%s/start", devpath, disk, part);
	snprintf(val, sizeof(val), "%llu\n", start);
	put(rel, val);
	snprintf(rel, sizeof(rel), "sys/devices/%s/%s/%s/size", devpath, disk, part);
	snprintf(val, sizeof(val), "%llu\n", size);
	put(rel, val);
}

#define NVME "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0"
#define NVME1 "pci0000:00/0000:00:1c.0/0000:3e:00.0/nvme/nvme1"
#define SATA "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block"
#define USB "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block"
#define VIRT "pci0000:00/0000:00:05.0/virtio2/block"
#define LOOP "virtual/block"

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/devopslab-test-disk.XXXXXX");
	assert_non_null(mkdtemp(root));
	mkdisk(NVME, "nvme0n1", "259:0", 1953525168ULL, 512, "Samsung SSD 980 1TB\n", "S64ANS0T123456\n", 0);
	mkdisk(NVME1, "nvme1n1", "259:1", 1000215216ULL, 512, "WD Blue SN570 500GB\n", "2207ZZ\n", 0);
	mkdisk(SATA, "sda", "8:0", 500118192ULL, 512, "CT500MX500SSD1  \n", NULL, 0);
	mkdisk(USB, "sdb", "8:16", 60062500ULL, 512, "Flash Disk\n", NULL, 1);
	mkpart(USB, "sdb", "sdb1", "8:17", 1, 2048, 60000000);
	mkdisk(VIRT, "vda", "254:0", 67108864ULL, 4096, NULL, "virt-serial\n", 0);
	mkpart(VIRT, "vda", "vda2", "254:2", 2, 2048, 8388608);
	mkdisk(LOOP, "loop0", "7:0", 0, 512, NULL, NULL, 0);       /* no file: not listed */
	mkdisk(LOOP, "zram0", "253:0", 1000, 4096, NULL, NULL, 0); /* skipped */
	put("run/udev/data/b8:0", "S:disk/by-id/ata-CT500MX500SSD1_2034E4A1B2C3\nE:ID_SERIAL_SHORT=2034E4A1B2C3\n"
				  "E:ID_MODEL=CT500MX500SSD1\nE:ID_WWN=0x500a0751e4a1b2c3\n");
	put("dev/disk/by-id/.keep", "");
	link_("../../nvme0n1", "dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T123456");
	link_("../../nvme0n1", "dev/disk/by-id/nvme-eui.002538b111b2c3d4");
	link_("../../nvme1n1", "dev/disk/by-id/nvme-WD_Blue_SN570_500GB_2207ZZ");
	link_("../../sda", "dev/disk/by-id/ata-CT500MX500SSD1_2034E4A1B2C3");
	link_("../../sdb1", "dev/disk/by-id/usb-Flash_Disk-0:0-part1");
	put("proc/self/mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n"
				   "30 1 8:17 / /run/live/medium ro - vfat /dev/sdb1 ro\n");
	put("proc/swaps", "Filename Type Size Used Priority\n");
	return 0;
}

static int teardown(void **state)
{
	char *argv[] = { (char *)"rm", (char *)"-rf", root, NULL };
	pid_t pid;

	(void)state;
	pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return 0;
}

static struct disk_list *probe(void)
{
	char sys[300], dev[300], proc[300], udev[300];
	struct disk_probe_opts o = { sys, dev, proc, udev, true };
	struct disk_list *l = NULL;

	snprintf(sys, sizeof(sys), "%s/sys", root);
	snprintf(dev, sizeof(dev), "%s/dev", root);
	snprintf(proc, sizeof(proc), "%s/proc", root);
	snprintf(udev, sizeof(udev), "%s/run/udev/data", root);
	assert_int_equal(disk_probe_all(&o, &l), 0);
	return l;
}

static const struct disk *find(const struct disk_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->disks[i].name, name))
			return &l->disks[i];
	fail_msg("disk %s not listed", name);
	return NULL;
}

static void test_discovery(void **state)
{
	_cleanup_(disk_list_freep) struct disk_list *l = probe();
	const struct disk *d;

	(void)state;
	assert_int_equal(l->n, 5); /* nvme0n1 nvme1n1 sda sdb vda; not the empty loop, not zram */
	d = find(l, "nvme0n1");
	assert_string_equal(disk_transport_name(d->transport), "nvme");
	assert_int_equal(d->size, 1953525168ULL * 512);
	assert_string_equal(d->model, "Samsung SSD 980 1TB");
	assert_string_equal(d->serial, "S64ANS0T123456");
	assert_int_equal(d->n_by_id, 2);
	assert_string_equal(d->by_id[0], "nvme-Samsung_SSD_980_1TB_S64ANS0T123456");
	assert_false(d->mounted || d->boot || d->held || d->swap);

	d = find(l, "sda");
	assert_string_equal(disk_transport_name(d->transport), "sata");
	assert_string_equal(d->serial, "2034E4A1B2C3"); /* from the udev database */
	assert_string_equal(d->model, "CT500MX500SSD1");
	assert_string_equal(d->wwn, "0x500a0751e4a1b2c3");

	d = find(l, "sdb");
	assert_string_equal(disk_transport_name(d->transport), "usb");
	assert_true(d->removable);
	assert_true(d->boot);
	assert_int_equal(d->n_parts, 1);
	assert_int_equal(d->parts[0].start, 2048 * 512);
	assert_non_null(strstr(d->in_use, "sdb1"));
	assert_non_null(strstr(d->in_use, "/run/live/medium"));

	d = find(l, "vda");
	assert_string_equal(disk_transport_name(d->transport), "virtio");
	assert_int_equal(d->logical_sector, 4096);
	assert_false(d->boot);
}

static void test_in_use_mount_and_holders(void **state)
{
	(void)state;
	put("proc/self/mountinfo", "25 1 254:0 / / rw - ext4 /dev/vda rw\n");
	put("sys/devices/" NVME1 "/nvme1n1/holders/dm-0", "");
	_cleanup_(disk_list_freep) struct disk_list *l = probe();
	const struct disk *d = find(l, "vda");
	assert_true(d->boot);
	d = find(l, "nvme1n1");
	assert_true(d->held);
	assert_non_null(strstr(d->in_use, "dm-0"));
	d = find(l, "sdb");
	assert_false(d->mounted);
}

static int sel(const struct disk_list *l, struct mf_disk_rules r, struct disk_selection *s)
{
	return disk_select(l, &r, s);
}

static const struct disk_verdict *verdict(const struct disk_selection *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->verdicts[i].disk->name, name))
			return &s->verdicts[i];
	fail_msg("no verdict for %s", name);
	return NULL;
}

static void test_select(void **state)
{
	_cleanup_(disk_list_freep) struct disk_list *l = probe();
	struct disk_selection s;

	(void)state;
	/* by-id, with or without the /dev/disk/by-id/ prefix */
	assert_int_equal(sel(l, (struct mf_disk_rules){ .by_id = (char *)"/dev/disk/by-id/ata-CT500MX500SSD1_2034E4A1B2C3" }, &s), 0);
	assert_string_equal(s.chosen->name, "sda");
	assert_non_null(strstr(verdict(&s, "nvme0n1")->reason, "no /dev/disk/by-id/ata-CT500"));
	disk_selection_done(&s);
	assert_int_equal(sel(l, (struct mf_disk_rules){ .by_id = (char *)"nvme-eui.002538b111b2c3d4" }, &s), 0);
	assert_string_equal(s.chosen->name, "nvme0n1");
	disk_selection_done(&s);
	/* serial */
	assert_int_equal(sel(l, (struct mf_disk_rules){ .serial = (char *)"2207ZZ" }, &s), 0);
	assert_string_equal(s.chosen->name, "nvme1n1");
	assert_non_null(strstr(verdict(&s, "sda")->reason, "serial '2034E4A1B2C3' is not '2207ZZ'"));
	disk_selection_done(&s);
	/* model glob */
	assert_int_equal(sel(l, (struct mf_disk_rules){ .model = (char *)"Samsung*" }, &s), 0);
	assert_string_equal(s.chosen->name, "nvme0n1");
	disk_selection_done(&s);
	/* transport alone: two NVMe disks -> two matches, each listed */
	assert_int_equal(sel(l, (struct mf_disk_rules){ .transport = (char *)"nvme" }, &s), -ENOTUNIQ);
	assert_int_equal(s.n_matches, 2);
	assert_null(s.chosen);
	assert_true(verdict(&s, "nvme0n1")->match);
	assert_true(verdict(&s, "nvme1n1")->match);
	assert_non_null(strstr(verdict(&s, "sda")->reason, "transport sata is not nvme"));
	disk_selection_done(&s);
	/* transport + max size */
	assert_int_equal(sel(l, (struct mf_disk_rules){ .transport = (char *)"nvme", .max_size = 600ULL << 30 }, &s), 0);
	assert_string_equal(s.chosen->name, "nvme1n1");
	assert_non_null(strstr(verdict(&s, "nvme0n1")->reason, "> max_size"));
	disk_selection_done(&s);
	/* min size */
	assert_int_equal(sel(l, (struct mf_disk_rules){ .min_size = 900ULL << 30 }, &s), 0);
	assert_string_equal(s.chosen->name, "nvme0n1");
	assert_non_null(strstr(verdict(&s, "sdb")->reason, "< min_size"));
	disk_selection_done(&s);
	/* the largest NVMe */
	assert_int_equal(sel(l, (struct mf_disk_rules){ .largest_nvme = true }, &s), 0);
	assert_string_equal(s.chosen->name, "nvme0n1");
	assert_non_null(strstr(verdict(&s, "nvme1n1")->reason, "the largest NVMe"));
	assert_non_null(strstr(verdict(&s, "sda")->reason, "not NVMe"));
	disk_selection_done(&s);
	/* no match */
	assert_int_equal(sel(l, (struct mf_disk_rules){ .serial = (char *)"nope" }, &s), -ENODEV);
	assert_int_equal(s.n_matches, 0);
	assert_int_equal(s.n, 5);
	disk_selection_done(&s);
	/* no rule at all */
	assert_int_equal(sel(l, (struct mf_disk_rules){ 0 }, &s), -EINVAL);
	disk_selection_done(&s);
}

static void test_largest_nvme_tie(void **state)
{
	(void)state;
	put("sys/devices/" NVME1 "/nvme1n1/size", "1953525168\n");
	_cleanup_(disk_list_freep) struct disk_list *l = probe();
	struct disk_selection s;
	assert_int_equal(sel(l, (struct mf_disk_rules){ .largest_nvme = true }, &s), -ENOTUNIQ);
	assert_int_equal(s.n_matches, 2);
	disk_selection_done(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_use_mount_and_holders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_select, setup, teardown),
		cmocka_unit_test_setup_teardown(test_largest_nvme_tie, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
