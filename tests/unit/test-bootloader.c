/* SPDX-License-Identifier: MIT */
/*
 * test-bootloader.c — the bootloader step (bootloader.c) and the texts it
 * writes (grubcfg.c), the ESP files (efi.c):
 *   - the installer's console= arguments in devopslab.cfg (hostile and
 *     overlong values too); grub.cfg against tests/data/bootloader/grub.cfg
 *     byte for byte (UPDATE_GOLDEN=1 rewrites it: review the diff); the
 *     ESP stub; efibootmgr's listing;
 *   - check() on a fabricated root and disk image: "done" only with every
 *     artefact exactly as apply() leaves it, each one removed or changed
 *     in turn; check() never writes;
 *   - as root, apply() on a fabricated root: an ESP that is not mounted and
 *     a root without the prepared files are refused before anything else;
 *     with a tmpfs as ESP and the UEFI target alone the step completes (the
 *     ESP files copied from the root, check() then done, a re-run changes
 *     nothing); a missing tool is named; no bind mount is ever left.
 * The real tools (grub-bios-setup, update-initramfs) on a real rootfs are
 * tests/integration/t-bootloader.sh's; booting is t-e2e-install.sh's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "install/bootloader.h"
#include "install/efi.h"
#include "install/grubcfg.h"
#include "install/initrd.h"
#include "disk/disk-step.h"
#include "exec.h"
#include "bundle/extract.h"
#include "fake-tree.h"
#include "plan/run.h"
#include "plan/step.h"
#include "step-ops.h"

#define KVER "6.12.57+deb13-amd64"
#define KVER2 "6.12.60+deb13-amd64"
#define UUID "b8d1a8de-13cb-4690-ac54-f55a413be8e8"
#define CMDLINE "BOOT_IMAGE=/vmlinuz console=tty0 console=ttyS0,115200n8\n"

#define CFG_HEAD "# Written by devopslab (docs/install.md, \"Boot loader\").\nGRUB_DISTRIBUTOR=\"Proxmox VE\"\n"
#define CFG_CONS "# The installer's consoles and what followed its \"---\", as debian-installer\n# carries them over.\n"
#define STUB "search.fs_uuid " UUID " root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"

/* ---- the texts ----------------------------------------------------------------- */

static void cfg_is(const char *cmdline, const char *want)
{
	struct grubcfg_consoles c;
	char *got = NULL;
	size_t len = 0;

	grubcfg_consoles(cmdline, &c);
	assert_int_equal(grubcfg_defaults(&c, &got, &len), 0);
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(got);
}

static void test_cfg_none(void **state)
{
	(void)state;
	cfg_is(NULL, CFG_HEAD);
	cfg_is("", CFG_HEAD);
	cfg_is("BOOT_IMAGE=/vmlinuz quiet root=/dev/ram0 xconsole=ttyS0 consoles=tty0", CFG_HEAD);
	/* after "--" the arguments are init's */
	cfg_is("quiet -- console=ttyS0,115200", CFG_HEAD);
}

static void test_cfg_vga_and_serial(void **state)
{
	(void)state;
	cfg_is("BOOT_IMAGE=/vmlinuz quiet console=tty0 console=ttyS0,115200n8\n",
	       CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200n8\"\n"
				 "GRUB_TERMINAL=\"console serial\"\n"
				 "GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n");
	cfg_is("console=tty0", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=tty0\"\n");
	/* tabs and newlines separate too; the last serial console wins */
	cfg_is("console=ttyS0,115200n8\tconsole=ttyS1,9600\nconsole=tty1",
	       CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=ttyS0,115200n8 console=ttyS1,9600 console=tty1\"\n"
				 "GRUB_TERMINAL=\"console serial\"\n"
				 "GRUB_SERIAL_COMMAND=\"serial --unit=1 --speed=9600\"\n");
}

/* What follows "---" on the installer's line is the installed system's too
 * (as debian-installer has it), up to a "--"; unsafe or oversized
 * arguments are dropped, never quoted. */
static void test_cfg_carried(void **state)
{
	(void)state;
	cfg_is("quiet console=ttyS0,115200 --- no_timer_check",
	       CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=ttyS0,115200 no_timer_check\"\n"
				 "GRUB_TERMINAL=\"console serial\"\n"
				 "GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n");
	cfg_is("--- no_timer_check nvme_core.io_timeout=60",
	       CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"no_timer_check nvme_core.io_timeout=60\"\n");
	/* before "---" only consoles; after it "--" still ends the kernel's part */
	cfg_is("no_timer_check --- a=1 -- b=2", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"a=1\"\n");
	cfg_is("--- x\";reboot y$(id) z`id` ok", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"ok\"\n");
	cfg_is("--- 1 2 3 4 5 6 7 8 9 10",
	       CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"1 2 3 4 5 6 7 8\"\n");
	cfg_is("---", CFG_HEAD);
}

static void test_cfg_serial_no_speed(void **state)
{
	(void)state;
	cfg_is("console=ttyS1", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=ttyS1\"\n"
						"GRUB_TERMINAL=\"console serial\"\n"
						"GRUB_SERIAL_COMMAND=\"serial --unit=1\"\n");
	/* carried to Linux as given, but not a serial port GRUB can drive */
	cfg_is("console=ttyS0,abc", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=ttyS0,abc\"\n");
	cfg_is("console=ttyS1234,9600", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=ttyS1234,9600\"\n");
	cfg_is("console=ttyS0,12345678", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=ttyS0,12345678\"\n");
	cfg_is("console=ttyS,9600", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=ttyS,9600\"\n");
	cfg_is("console=uart8250,io,0x3f8,115200",
	       CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=uart8250,io,0x3f8,115200\"\n");
}

static void test_cfg_hostile(void **state)
{
	char line[4096], want[4096], v64[65], v65[66];
	size_t off = 0;

	(void)state;
	/* quotes, shell syntax, spaces in quotes, empty values: ignored */
	cfg_is("console=ttyS0\";reboot console=$(reboot) console=`id` console=\"tty0 x\" console= console=tty0\\",
	       CFG_HEAD);
	cfg_is("console=ttyS0\";reboot console=tty0", CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=tty0\"\n");
	/* GRUBCFG_CONSOLE_LEN bytes are carried, one more is not */
	memset(v64, 'a', 64);
	v64[64] = '\0';
	memset(v65, 'b', 65);
	v65[65] = '\0';
	snprintf(line, sizeof(line), "console=%s console=%s", v65, v64);
	snprintf(want, sizeof(want), CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=%s\"\n", v64);
	cfg_is(line, want);
	/* at most GRUBCFG_CONSOLES_MAX of them, the longest fitting */
	for (unsigned i = 0; i < 12; i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "console=tty%u ", i);
	cfg_is(line, CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=tty0 console=tty1 console=tty2 console=tty3 "
					"console=tty4 console=tty5 console=tty6 console=tty7\"\n");
	off = 0;
	for (unsigned i = 0; i < GRUBCFG_CONSOLES_MAX; i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "console=%s ", v64);
	off = (size_t)snprintf(want, sizeof(want), CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"");
	for (unsigned i = 0; i < GRUBCFG_CONSOLES_MAX; i++)
		off += (size_t)snprintf(want + off, sizeof(want) - off, "%sconsole=%s", i ? " " : "", v64);
	snprintf(want + off, sizeof(want) - off, "\"\n");
	cfg_is(line, want);
	/* control bytes and high bytes */
	cfg_is("console=tty\x01 console=tty\xc3\xa4 console=ttyS0,9600\x7f", CFG_HEAD);
}

static char *golden_path(char *buf, size_t size)
{
	const char *top = getenv("TOP");

	snprintf(buf, size, "%s/tests/data/bootloader/grub.cfg", top ? top : ".");
	return buf;
}

/* Two kernels given oldest first, a VGA and a serial console. */
static void test_menu_golden(void **state)
{
	const char *kernels[] = { KVER, KVER2 };
	struct grubcfg_consoles c;
	char *got = NULL, *want = NULL, path[4096];
	size_t len = 0, wlen = 0;
	FILE *f;

	(void)state;
	grubcfg_consoles(CMDLINE, &c);
	assert_int_equal(grubcfg_menu(&c, UUID, kernels, 2, &got, &len), 0);
	assert_int_equal(strlen(got), len);
	if (getenv("UPDATE_GOLDEN") && strcmp(getenv("UPDATE_GOLDEN"), "1") == 0) {
		f = fopen(golden_path(path, sizeof(path)), "we");
		assert_non_null(f);
		fputs(got, f);
		fclose(f);
	}
	f = fopen(golden_path(path, sizeof(path)), "re");
	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(getdelim(&want, &wlen, '\0', f) > 0, 1);
	fclose(f);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void test_menu_plain(void **state)
{
	const char *kernels[] = { KVER };
	struct grubcfg_consoles c;
	char *got = NULL;
	size_t len = 0;

	(void)state;
	grubcfg_consoles("BOOT_IMAGE=/vmlinuz quiet", &c);
	assert_int_equal(grubcfg_menu(&c, UUID, kernels, 1, &got, &len), 0);
	/* no serial terminal, Debian's "quiet" alone, the recovery entry */
	assert_null(strstr(got, "serial"));
	assert_null(strstr(got, "terminal_"));
	assert_non_null(strstr(got, "\tlinux\t/boot/vmlinuz-" KVER " root=/dev/mapper/pve-root ro quiet\n"));
	assert_non_null(strstr(got, "\t\tlinux\t/boot/vmlinuz-" KVER " root=/dev/mapper/pve-root ro single dis_ucode_ldr\n"));
	assert_non_null(strstr(got, "\tinitrd\t/boot/initrd.img-" KVER "\n"));
	assert_non_null(strstr(got, "$menuentry_id_option 'gnulinux-simple-" UUID "' {\n"));
	assert_non_null(strstr(got, "search --no-floppy --fs-uuid --set=root " UUID "\n"));
	free(got);
}

static void test_menu_refused(void **state)
{
	const char *ok[] = { KVER }, *bad1[] = { "6.1 x" }, *bad2[] = { "6.1'$(x)" }, *bad3[] = { "" };
	struct grubcfg_consoles c;
	char *got = NULL;
	size_t len = 0;

	(void)state;
	grubcfg_consoles(NULL, &c);
	assert_int_equal(grubcfg_menu(&c, "B8D1A8DE-13CB-4690-AC54-F55A413BE8E8", ok, 1, &got, &len), -EINVAL);
	assert_int_equal(grubcfg_menu(&c, "b8d1a8de-13cb-4690-ac54", ok, 1, &got, &len), -EINVAL);
	assert_int_equal(grubcfg_menu(&c, "b8d1a8de-13cb-4690-ac54-f55a413be8e8' x", ok, 1, &got, &len), -EINVAL);
	assert_int_equal(grubcfg_menu(&c, NULL, ok, 1, &got, &len), -EINVAL);
	assert_int_equal(grubcfg_menu(&c, UUID, ok, 0, &got, &len), -EINVAL);
	assert_int_equal(grubcfg_menu(&c, UUID, bad1, 1, &got, &len), -EINVAL);
	assert_int_equal(grubcfg_menu(&c, UUID, bad2, 1, &got, &len), -EINVAL);
	assert_int_equal(grubcfg_menu(&c, UUID, bad3, 1, &got, &len), -EINVAL);
	assert_null(got);
	assert_int_equal(grubcfg_stub("not-a-uuid", &got, &len), -EINVAL);
	assert_null(got);
}

static void test_stub(void **state)
{
	char *got = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(grubcfg_stub(UUID, &got, &len), 0);
	assert_string_equal(got, STUB);
	assert_int_equal(len, strlen(STUB));
	free(got);
}

static void test_boot_entries(void **state)
{
	const char *listing = "BootCurrent: 0001\n"
			      "Timeout: 0 seconds\n"
			      "BootOrder: 0003,0001,000A\n"
			      "Boot0001* UEFI QEMU NVMe Ctrl 1\tPciRoot(0x0)/Pci(0x3,0x0)/NVMe(0x1,00-00)\n"
			      "Boot0003* proxmox\tHD(2,GPT,811435cc,0x800,0x100000)/\\EFI\\proxmox\\shimx64.efi\n"
			      "Boot0004  proxmox-old\tHD(2,GPT,1,0x800,0x100000)/\\EFI\\x\\a.efi\n"
			      "Boot000A  proxmox\tHD(2,GPT,1,0x800,0x100000)/\\EFI\\proxmox\\grubx64.efi\n"
			      "Boot0010* proxmox2\tHD(2,GPT,1,0x800,0x100000)/\\EFI\\p\\a.efi\n"
			      "Boot0011* Proxmox\tHD(2,GPT,1,0x800,0x100000)/\\EFI\\p\\a.efi\n"
			      "Boot00FF* proxmox";
	unsigned nums[4] = { 0 };
	size_t n = 99;

	(void)state;
	assert_int_equal(efi_boot_entries(listing, "proxmox", nums, 4, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(nums[0], 0x0003);
	assert_int_equal(nums[1], 0x000A);
	assert_int_equal(nums[2], 0x00FF);
	assert_int_equal(efi_boot_entries(listing, "proxmox", nums, 2, &n), -E2BIG);
	assert_int_equal(efi_boot_entries("BootOrder: 0001\n", "proxmox", nums, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(efi_boot_entries(NULL, "proxmox", nums, 4, &n), 0);
	assert_int_equal(n, 0);
}

/* ---- check() on a fabricated root -------------------------------------------- */

struct fixture {
	char dir[64], root[96], proc[96], disk[96];
	struct disk_step_state st;
	struct bootloader_opts opts;
	struct step s;
	struct run_ctx ctx;
	bool esp_mounted;
};

static void write_disk(const char *path, bool grub)
{
	char sector[512] = { 0 };
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	if (grub)
		memcpy(sector + 0x180, "GRUB \0Geom\0Hard Disk\0Read\0 Error", 32); /* as boot.img has it */
	sector[510] = 0x55;
	sector[511] = (char)0xaa;
	assert_int_equal(write(fd, sector, sizeof(sector)), 512);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
}

/* The root's sources, and where apply() copies each on the ESP. */
static const struct {
	const char *src, *content, *esp[2];
} sources[] = {
	{ "usr/lib/shim/shimx64.efi.signed", "shim", { "EFI/proxmox/shimx64.efi", "EFI/BOOT/BOOTX64.EFI" } },
	{ "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", "grub",
	  { "EFI/proxmox/grubx64.efi", "EFI/BOOT/grubx64.efi" } },
	{ "usr/lib/shim/mmx64.efi.signed", "mm", { "EFI/proxmox/mmx64.efi", "EFI/BOOT/mmx64.efi" } },
	{ "usr/lib/shim/fbx64.efi.signed", "fb", { "EFI/proxmox/fbx64.efi", NULL } },
	{ "usr/lib/shim/BOOTX64.CSV", "csv", { "EFI/proxmox/BOOTX64.CSV", "EFI/BOOT/BOOTX64.CSV" } },
};
static const char *const stubs[] = { "EFI/proxmox/grub.cfg", "EFI/BOOT/grub.cfg" };

static void put_esp(struct fixture *f, const char *rel, const char *content)
{
	char path[256];

	snprintf(path, sizeof(path), "boot/efi/%s", rel);
	fake_tree_put(f->root, path, content);
}

static void put_menu(struct fixture *f, const char *cmdline)
{
	const char *kernels[] = { KVER };
	struct grubcfg_consoles c;
	char *menu = NULL, path[256];
	size_t len = 0;

	grubcfg_consoles(cmdline, &c);
	assert_int_equal(grubcfg_menu(&c, UUID, kernels, 1, &menu, &len), 0);
	fake_tree_put(f->root, "boot/grub/grub.cfg", menu);
	snprintf(path, sizeof(path), "%s/boot/grub/grub.cfg", f->root);
	assert_int_equal(chmod(path, 0600), 0);
	free(menu);
}

/* The sources of the prepared root file system (image/rootfs-boot.sh). */
static void fabricate_rootfs(struct fixture *f)
{
	fake_tree_put(f->root, "boot/vmlinuz-" KVER, "kernel");
	fake_tree_put(f->root, "boot/initrd.img-" KVER, "initrd");
	fake_tree_put(f->root, "boot/grub/i386-pc/core.img", "core");
	fake_tree_put(f->root, "boot/grub/i386-pc/boot.img", "boot");
	fake_tree_put(f->root, "usr/lib/grub/i386-pc/grub-bios-setup", "not a program");
	for (size_t i = 0; i < ELEMENTSOF(sources); i++)
		fake_tree_put(f->root, sources[i].src, sources[i].content);
}

/* Everything as a successful apply() leaves it. */
static void fabricate(struct fixture *f)
{
	char marker[512];

	fabricate_rootfs(f);
	for (size_t i = 0; i < ELEMENTSOF(sources); i++)
		for (size_t j = 0; j < 2; j++)
			if (sources[i].esp[j])
				put_esp(f, sources[i].esp[j], sources[i].content);
	for (size_t i = 0; i < ELEMENTSOF(stubs); i++)
		put_esp(f, stubs[i], STUB);
	fake_tree_put(f->proc, "cmdline", CMDLINE);
	put_menu(f, CMDLINE);
	fake_tree_put(f->root, "etc/default/grub.d/devopslab.cfg",
		      CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200n8\"\n"
					"GRUB_TERMINAL=\"console serial\"\n"
					"GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n");
	snprintf(marker, sizeof(marker), "loader grub\ntargets x86_64-efi i386-pc\ndisk %s\nkernel " KVER "\n", f->disk);
	fake_tree_put(f->root, "var/lib/devopslab/bootloader.done", marker);
	write_disk(f->disk, true);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-bootloader.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	snprintf(f->proc, sizeof(f->proc), "%s/proc", f->dir);
	snprintf(f->disk, sizeof(f->disk), "%s/disk.img", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	disk_step_state_init(&f->st);
	f->st.target.path = strdup(f->disk);
	assert_non_null(f->st.target.path);
	f->opts = (struct bootloader_opts){ .proc = f->proc, .no_nvram = true };
	f->s.id = (char *)"node/n1/bootloader";
	f->s.kind = STEP_BOOTLOADER;
	f->s.params = json_tokener_parse("{\"loader\":\"grub\",\"targets\":[\"x86_64-efi\",\"i386-pc\"],"
					 "\"esp_partition\":2,\"root_uuid\":\"" UUID "\"}");
	assert_non_null(f->s.params);
	run_ctx_init(&f->ctx);
	f->ctx.root = f->root;
	f->ctx.disk = &f->st;
	f->ctx.boot = &f->opts;
	fabricate(f);
	*state = f;
	return 0;
}

/* Any mount below our scratch directory? Then never remove it. */
static bool mounted_below(const char *dir)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;

	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, dir))
			found = true;
	fclose(fp);
	return found;
}

/* A bind mount of the step left below the root (the ESP's tmpfs aside)? */
static bool binds_left(struct fixture *f)
{
	static const char *const dirs[] = { "dev", "proc", "sys", "run" };
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[4096], at[256];
	bool found = false;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
			snprintf(at, sizeof(at), " %s/%s", f->root, dirs[i]);
			if (strstr(line, at))
				found = true;
		}
	fclose(fp);
	return found;
}

static void esp_umount(struct fixture *f)
{
	char path[256];

	if (!f->esp_mounted)
		return;
	snprintf(path, sizeof(path), "%s/boot/efi", f->root);
	assert_int_equal(umount(path), 0);
	f->esp_mounted = false;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	esp_umount(f);
	assert_false(mounted_below(f->dir));
	run_ctx_done(&f->ctx);
	json_object_put(f->s.params);
	disk_step_state_done(&f->st);
	assert_int_equal(extract_rm_rf_at(AT_FDCWD, f->dir), 0);
	free(f);
	return 0;
}

static bool check_done(struct fixture *f)
{
	bool done = true;

	f->ctx.error[0] = '\0';
	assert_int_equal(bootloader_ops.check(&f->ctx, &f->s, &done), 0);
	return done;
}

static void test_check_done(void **state)
{
	struct fixture *f = *state;

	assert_true(check_done(f));
}

static void unlink_in(const char *root, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (unlink(path) < 0)
		fail_msg("unlink %s: %m", path);
}

/* Each artefact missing, then different: not done; put back: done. */
static void each_removed(struct fixture *f, const char *rel, const char *good)
{
	unlink_in(f->root, rel);
	if (check_done(f))
		fail_msg("done without %s", rel);
	fake_tree_put(f->root, rel, "other bytes");
	if (check_done(f))
		fail_msg("done with another %s", rel);
	fake_tree_put(f->root, rel, good);
	if (!check_done(f))
		fail_msg("not done with %s put back", rel);
}

static void test_check_each_artefact(void **state)
{
	struct fixture *f = *state;
	char rel[256], path[512];

	for (size_t i = 0; i < ELEMENTSOF(sources); i++)
		for (size_t j = 0; j < 2; j++) {
			if (!sources[i].esp[j])
				continue;
			snprintf(rel, sizeof(rel), "boot/efi/%s", sources[i].esp[j]);
			each_removed(f, rel, sources[i].content);
		}
	for (size_t i = 0; i < ELEMENTSOF(stubs); i++) {
		snprintf(rel, sizeof(rel), "boot/efi/%s", stubs[i]);
		each_removed(f, rel, STUB);
	}
	/* an empty initrd or core image is none; their content is the rootfs's */
	unlink_in(f->root, "boot/initrd.img-" KVER);
	assert_false(check_done(f));
	fake_tree_put(f->root, "boot/initrd.img-" KVER, "");
	assert_false(check_done(f));
	fake_tree_put(f->root, "boot/initrd.img-" KVER, "initrd");
	assert_true(check_done(f));
	unlink_in(f->root, "boot/grub/i386-pc/core.img");
	assert_false(check_done(f));
	fake_tree_put(f->root, "boot/grub/i386-pc/core.img", "core");
	assert_true(check_done(f));
	/* grub.cfg: exactly ours, mode 0600 */
	fake_tree_put(f->root, "boot/grub/grub.cfg", "menuentry x {}\n");
	assert_false(check_done(f));
	put_menu(f, CMDLINE);
	assert_true(check_done(f));
	snprintf(path, sizeof(path), "%s/boot/grub/grub.cfg", f->root);
	assert_int_equal(chmod(path, 0644), 0);
	assert_false(check_done(f));
	assert_int_equal(chmod(path, 0600), 0);
	assert_true(check_done(f));
	/* a newer shim in the root (an upgraded rootfs): the ESP's is stale */
	fake_tree_put(f->root, "usr/lib/shim/shimx64.efi.signed", "shim 2");
	assert_false(check_done(f));
	fake_tree_put(f->root, "usr/lib/shim/shimx64.efi.signed", "shim");
	assert_true(check_done(f));
	/* a symlink on the ESP is not followed */
	unlink_in(f->root, "boot/efi/EFI/BOOT/BOOTX64.EFI");
	snprintf(path, sizeof(path), "%s/boot/efi/EFI/BOOT/BOOTX64.EFI", f->root);
	assert_int_equal(symlink("../proxmox/shimx64.efi", path), 0);
	assert_false(check_done(f));
}

#define LINK "[Match]\nMACAddress=52:54:00:0a:00:01\nType=ether\n\n[Link]\nName=nic0\n"

/* The initramfs with the node's .link file in front, as apply() makes it. */
static void put_initrd_with_link(struct fixture *f)
{
	const struct initrd_file link = { "10-devopslab-nic0.link", LINK, sizeof(LINK) - 1 };
	char *o = NULL, path[512];
	size_t len = 0;
	FILE *fp;

	assert_int_equal(initrd_overlay(&link, 1, &o, &len), 0);
	snprintf(path, sizeof(path), "%s/boot/initrd.img-" KVER, f->root);
	fp = fopen(path, "we");
	assert_non_null(fp);
	assert_int_equal(fwrite(o, 1, len, fp), len);
	fputs("initrd", fp);
	fclose(fp);
	free(o);
}

/* config-network's .link file must be in every initramfs (initrd.h). */
static void test_check_node_files(void **state)
{
	struct fixture *f = *state;

	fake_tree_put(f->root, "etc/systemd/network/10-devopslab-nic0.link", LINK);
	assert_false(check_done(f));
	put_initrd_with_link(f);
	assert_true(check_done(f));
	/* another .link content: the initramfs's copy is stale */
	fake_tree_put(f->root, "etc/systemd/network/10-devopslab-nic0.link", "[Match]\n");
	assert_false(check_done(f));
	fake_tree_put(f->root, "etc/systemd/network/10-devopslab-nic0.link", LINK);
	assert_true(check_done(f));
	/* a NIC given by name: no .link, so none may be in the initramfs */
	unlink_in(f->root, "etc/systemd/network/10-devopslab-nic0.link");
	assert_false(check_done(f));
	fake_tree_put(f->root, "boot/initrd.img-" KVER, "initrd");
	assert_true(check_done(f));
	/* other files there are not udev's .link files */
	fake_tree_put(f->root, "etc/systemd/network/10-x.network", "[Match]\n");
	assert_true(check_done(f));
}

static void test_check_sector0(void **state)
{
	struct fixture *f = *state;

	write_disk(f->disk, false);
	assert_false(check_done(f));
	write_disk(f->disk, true);
	assert_true(check_done(f));
}

static void test_check_marker_and_cfg(void **state)
{
	struct fixture *f = *state;
	char path[512];

	/* no marker */
	unlink_in(f->root, "var/lib/devopslab/bootloader.done");
	assert_false(check_done(f));
	fabricate(f);
	assert_true(check_done(f));
	/* another disk than the one recorded */
	free(f->st.target.path);
	f->st.target.path = strdup("/dev/null");
	assert_false(check_done(f));
	free(f->st.target.path);
	f->st.target.path = strdup(f->disk);
	assert_true(check_done(f));
	/* a new kernel: not recorded, not in grub.cfg, and it has no initrd */
	fake_tree_put(f->root, "boot/vmlinuz-" KVER2, "kernel");
	assert_false(check_done(f));
	unlink_in(f->root, "boot/vmlinuz-" KVER2);
	assert_true(check_done(f));
	/* the installer's console changed: devopslab.cfg and grub.cfg are not what apply writes */
	fake_tree_put(f->proc, "cmdline", "console=ttyS1,9600\n");
	assert_false(check_done(f));
	put_menu(f, "console=ttyS1,9600\n");
	assert_false(check_done(f)); /* devopslab.cfg still the old one */
	fake_tree_put(f->proc, "cmdline", CMDLINE);
	put_menu(f, CMDLINE);
	assert_true(check_done(f));
	/* another root file system UUID */
	json_object_object_add(f->s.params, "root_uuid",
			       json_object_new_string("00000000-0000-4000-8000-000000000000"));
	assert_false(check_done(f));
	json_object_object_add(f->s.params, "root_uuid", json_object_new_string(UUID));
	assert_true(check_done(f));
	/* BIOS only: the ESP is not needed, the marker says so */
	json_object_object_add(f->s.params, "targets", json_tokener_parse("[\"i386-pc\"]"));
	assert_false(check_done(f)); /* marker still says both */
	snprintf(path, sizeof(path), "loader grub\ntargets i386-pc\ndisk %s\nkernel " KVER "\n", f->disk);
	fake_tree_put(f->root, "var/lib/devopslab/bootloader.done", path);
	unlink_in(f->root, "boot/efi/EFI/BOOT/BOOTX64.EFI");
	assert_true(check_done(f));
	/* UEFI only: the disk's first sector does not matter */
	json_object_object_add(f->s.params, "targets", json_tokener_parse("[\"x86_64-efi\"]"));
	snprintf(path, sizeof(path), "loader grub\ntargets x86_64-efi\ndisk %s\nkernel " KVER "\n", f->disk);
	fake_tree_put(f->root, "var/lib/devopslab/bootloader.done", path);
	put_esp(f, "EFI/BOOT/BOOTX64.EFI", "shim");
	write_disk(f->disk, false);
	assert_true(check_done(f));
}

static void test_check_never_writes(void **state)
{
	struct fixture *f = *state;
	char path[512];
	struct stat st;

	unlink_in(f->root, "etc/default/grub.d/devopslab.cfg");
	unlink_in(f->root, "var/lib/devopslab/bootloader.done");
	unlink_in(f->root, "boot/grub/grub.cfg");
	unlink_in(f->root, "boot/efi/EFI/proxmox/grub.cfg");
	assert_false(check_done(f));
	snprintf(path, sizeof(path), "%s/etc/default/grub.d/devopslab.cfg", f->root);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/var/lib/devopslab/bootloader.done", f->root);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/boot/grub/grub.cfg", f->root);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/boot/efi/EFI/proxmox/grub.cfg", f->root);
	assert_int_equal(stat(path, &st), -1);
}

static void check_fails(struct fixture *f, int err, const char *msg)
{
	bool done = true;

	f->ctx.error[0] = '\0';
	assert_int_equal(bootloader_ops.check(&f->ctx, &f->s, &done), err);
	if (!strstr(f->ctx.error, msg))
		fail_msg("error '%s' lacks '%s'", f->ctx.error, msg);
}

static void test_bad_context(void **state)
{
	struct fixture *f = *state;
	char path[512];

	f->ctx.disk = NULL;
	check_fails(f, -EINVAL, "no target disk");
	f->ctx.error[0] = '\0';
	assert_int_equal(bootloader_ops.apply(&f->ctx, &f->s), -EINVAL);
	assert_non_null(strstr(f->ctx.error, "no target disk"));
	f->ctx.disk = &f->st;
	free(f->st.target.path);
	f->st.target.path = NULL;
	check_fails(f, -EINVAL, "no target disk");
	f->st.target.path = strdup(f->disk);

	json_object_object_add(f->s.params, "targets", json_tokener_parse("[\"arm64-efi\"]"));
	check_fails(f, -EOPNOTSUPP, "GRUB target 'arm64-efi' is not supported");
	json_object_object_add(f->s.params, "targets", json_tokener_parse("[]"));
	check_fails(f, -EINVAL, "no GRUB target");
	json_object_object_add(f->s.params, "targets", json_tokener_parse("[\"i386-pc\"]"));
	json_object_object_add(f->s.params, "loader", json_object_new_string("systemd-boot"));
	check_fails(f, -EOPNOTSUPP, "boot loader 'systemd-boot' is not supported");
	json_object_object_add(f->s.params, "loader", json_object_new_string("grub"));
	json_object_object_add(f->s.params, "root_uuid", json_object_new_string("UUID=" UUID));
	check_fails(f, -EINVAL, "no root file system UUID");
	json_object_object_del(f->s.params, "root_uuid");
	check_fails(f, -EINVAL, "no root file system UUID");
	json_object_object_add(f->s.params, "root_uuid", json_object_new_string(UUID));
	json_object_object_add(f->s.params, "esp_partition", json_object_new_int(0));
	check_fails(f, -EINVAL, "no ESP partition number");
	json_object_object_add(f->s.params, "esp_partition", json_object_new_int(2));

	/* no kernel; an overlong /proc/cmdline */
	unlink_in(f->root, "boot/vmlinuz-" KVER);
	check_fails(f, -ENOENT, "no kernel");
	fake_tree_put(f->root, "boot/vmlinuz-" KVER, "kernel");
	memset(path, 'x', sizeof(path));
	path[sizeof(path) - 1] = '\0';
	{
		FILE *fp;
		char p[256];

		snprintf(p, sizeof(p), "%s/cmdline", f->proc);
		fp = fopen(p, "we");
		assert_non_null(fp);
		for (int i = 0; i < 10; i++)
			fputs(path, fp);
		fclose(fp);
	}
	check_fails(f, -EFBIG, "longer than");
}

/* ---- apply() on a fabricated root (root: mounts) --------------------------------- */

static bool need_root(void)
{
	if (geteuid() == 0)
		return true;
	skip();
	return false;
}

/* A fresh root as image/rootfs.sh leaves it: nothing of the step's yet. */
static void fresh_root(struct fixture *f)
{
	static const char *const dirs[] = { "dev", "proc", "sys", "run", "boot/efi" };
	char path[512];

	assert_int_equal(extract_rm_rf_at(AT_FDCWD, f->root), 0);
	assert_int_equal(mkdir(f->root, 0755), 0);
	fabricate_rootfs(f);
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->root, dirs[i]);
		fake_tree_mkparents(path);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	write_disk(f->disk, false);
}

static void esp_mount(struct fixture *f)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/boot/efi", f->root);
	assert_int_equal(mount("tmpfs", path, "tmpfs", 0, "size=4m,mode=0755"), 0);
	f->esp_mounted = true;
}

static int apply(struct fixture *f)
{
	f->ctx.error[0] = '\0';
	return bootloader_ops.apply(&f->ctx, &f->s);
}

static void assert_error(struct fixture *f, const char *msg)
{
	if (!strstr(f->ctx.error, msg))
		fail_msg("error '%s' lacks '%s'", f->ctx.error, msg);
}

static bool exists(struct fixture *f, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	return lstat(path, &st) == 0;
}

/* Refused before anything is mounted or written but the config file. */
static void test_apply_refused(void **state)
{
	struct fixture *f = *state;

	if (!need_root())
		return;
	fresh_root(f);
	/* the ESP is the root file system's directory: not mounted */
	assert_int_equal(apply(f), -EXDEV);
	assert_error(f, "boot/efi' is not a mount point: the ESP is not mounted");
	assert_false(mounted_below(f->dir));
	assert_true(exists(f, "etc/default/grub.d/devopslab.cfg"));
	assert_false(exists(f, "boot/grub/grub.cfg"));
	assert_false(exists(f, "boot/efi/EFI"));
	assert_false(exists(f, "var/lib/devopslab/bootloader.done"));
	/* a root without the prepared BIOS core image, or without shim */
	esp_mount(f);
	unlink_in(f->root, "boot/grub/i386-pc/core.img");
	assert_int_equal(apply(f), -ENOENT);
	assert_error(f, "the root file system has no '/boot/grub/i386-pc/core.img' (made by image/rootfs-boot.sh");
	fake_tree_put(f->root, "boot/grub/i386-pc/core.img", "core");
	unlink_in(f->root, "usr/lib/shim/shimx64.efi.signed");
	assert_int_equal(apply(f), -ENOENT);
	assert_error(f, "the root file system has no '/usr/lib/shim/shimx64.efi.signed'");
	assert_false(binds_left(f));
	assert_false(exists(f, "boot/efi/EFI"));
	assert_false(exists(f, "boot/grub/grub.cfg"));
	esp_umount(f);
	assert_false(mounted_below(f->dir));
}

/* The UEFI target alone runs no command: the whole step, for real. */
static void test_apply_efi(void **state)
{
	struct fixture *f = *state;
	char path[512], marker[512];
	struct stat a, b;

	if (!need_root())
		return;
	fresh_root(f);
	json_object_object_add(f->s.params, "targets", json_tokener_parse("[\"x86_64-efi\"]"));
	esp_mount(f);
	fake_tree_put(f->root, "etc/systemd/network/10-devopslab-nic0.link", LINK);
	assert_false(check_done(f));
	assert_int_equal(apply(f), 0);
	assert_true(check_done(f));
	/* the .link file in front of the rootfs's initramfs */
	{
		const struct initrd_file link = { "10-devopslab-nic0.link", LINK, sizeof(LINK) - 1 };
		char *o = NULL, *got = NULL;
		size_t len = 0, glen = 0;
		FILE *fp;

		assert_int_equal(initrd_overlay(&link, 1, &o, &len), 0);
		snprintf(path, sizeof(path), "%s/boot/initrd.img-" KVER, f->root);
		fp = fopen(path, "re");
		assert_non_null(fp);
		got = malloc(len + 64);
		assert_non_null(got);
		glen = fread(got, 1, len + 64, fp);
		fclose(fp);
		assert_int_equal(glen, len + strlen("initrd"));
		assert_memory_equal(got, o, len);
		assert_memory_equal(got + len, "initrd", 6);
		free(o);
		free(got);
	}
	/* the ESP as Debian's grub-install leaves it */
	for (size_t i = 0; i < ELEMENTSOF(sources); i++)
		for (size_t j = 0; j < 2; j++) {
			char *got = NULL;
			size_t len = 0;
			FILE *fp;

			if (!sources[i].esp[j])
				continue;
			snprintf(path, sizeof(path), "%s/boot/efi/%s", f->root, sources[i].esp[j]);
			fp = fopen(path, "re");
			if (!fp)
				fail_msg("no %s", path);
			assert_true(getdelim(&got, &len, '\0', fp) > 0);
			fclose(fp);
			assert_string_equal(got, sources[i].content);
			free(got);
		}
	assert_false(exists(f, "boot/efi/EFI/BOOT/fbx64.efi"));
	assert_false(exists(f, "boot/efi/EFI/proxmox/grub.cfg.devopslab-new"));
	snprintf(marker, sizeof(marker), "loader grub\ntargets x86_64-efi\ndisk %s\nkernel " KVER "\n", f->disk);
	{
		char *got = NULL;
		size_t len = 0;
		FILE *fp;

		snprintf(path, sizeof(path), "%s/var/lib/devopslab/bootloader.done", f->root);
		fp = fopen(path, "re");
		assert_non_null(fp);
		assert_true(getdelim(&got, &len, '\0', fp) > 0);
		fclose(fp);
		assert_string_equal(got, marker);
		free(got);
		snprintf(path, sizeof(path), "%s/boot/efi/EFI/BOOT/grub.cfg", f->root);
		fp = fopen(path, "re");
		assert_non_null(fp);
		got = NULL;
		assert_true(getdelim(&got, &len, '\0', fp) > 0);
		fclose(fp);
		assert_string_equal(got, STUB);
		free(got);
	}
	assert_false(binds_left(f));
	/* the journal's result: no initramfs made, no NVRAM entry */
	assert_non_null(f->ctx.result);
	snprintf(marker, sizeof(marker),
		 "{\"kernels\":[\"" KVER "\"],\"initramfs_made\":[],\"initramfs_node_files\":[\"10-devopslab-nic0.link\"],\"disk\":\"%s\",\"efi\":true,"
		 "\"bios\":false,\"nvram\":false}", f->disk);
	assert_string_equal(json_object_to_json_string_ext(f->ctx.result, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), marker);
	/* a second apply rewrites the same bytes; check stays done */
	snprintf(path, sizeof(path), "%s/boot/grub/grub.cfg", f->root);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(apply(f), 0);
	assert_true(check_done(f));
	assert_int_equal(stat(path, &b), 0);
	assert_int_equal(a.st_size, b.st_size);
	/* a kernel without initramfs: update-initramfs is run for it (and
	 * missing here: named) */
	unlink_in(f->root, "boot/initrd.img-" KVER);
	assert_int_equal(apply(f), -ENOENT);
	assert_error(f, "cannot run '/usr/sbin/update-initramfs -c -k " KVER "' in");
	assert_false(exists(f, "var/lib/devopslab/bootloader.done"));
	assert_false(check_done(f));
	esp_umount(f);
	assert_false(mounted_below(f->dir));
}

/* BIOS: grub-bios-setup runs in the root (here not a program: named). */
static void test_apply_bios_tool(void **state)
{
	struct fixture *f = *state;
	char want[512];

	if (!need_root())
		return;
	fresh_root(f);
	esp_mount(f);
	assert_true(apply(f) < 0);
	snprintf(want, sizeof(want), "cannot run '/usr/lib/grub/i386-pc/grub-bios-setup --directory=/boot/grub/i386-pc %s' in",
		 f->disk);
	assert_error(f, want);
	assert_false(exists(f, "var/lib/devopslab/bootloader.done"));
	assert_false(exists(f, "boot/efi/EFI")); /* the EFI part comes after */
	assert_false(binds_left(f));
	/* a root directory that is a symlink is refused before any mount */
	snprintf(want, sizeof(want), "%s/run", f->root);
	assert_int_equal(rmdir(want), 0);
	assert_int_equal(symlink("/run", want), 0);
	assert_int_equal(apply(f), -ENOTDIR);
	assert_error(f, "is not a directory");
	assert_false(binds_left(f));
	esp_umount(f);
	assert_false(mounted_below(f->dir));
}

/* exec.h's stdin: a child that reads to EOF must see EOF while we wait (a
 * hang once). */
static void test_exec_stdin(void **state)
{
	const char *argv[] = { "cat", NULL };
	struct exec_opts o = { .stdin_data = "grub-efi-amd64 x boolean true\n", .stdin_len = 31 };
	struct exec_result res = { 0 };

	(void)state;
	alarm(20); /* a hang fails here, not at the harness's timeout */
	assert_int_equal(exec_run((char *const *)argv, &o, &res), 0);
	alarm(0);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.out, "grub-efi-amd64 x boolean true\n");
	exec_result_done(&res);
}

static void test_registered(void **state)
{
	(void)state;
	assert_ptr_equal(step_ops_table[STEP_BOOTLOADER], &bootloader_ops);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registered),
		cmocka_unit_test(test_exec_stdin),
		cmocka_unit_test(test_cfg_none),
		cmocka_unit_test(test_cfg_vga_and_serial),
		cmocka_unit_test(test_cfg_serial_no_speed),
		cmocka_unit_test(test_cfg_carried),
		cmocka_unit_test(test_cfg_hostile),
		cmocka_unit_test(test_menu_golden),
		cmocka_unit_test(test_menu_plain),
		cmocka_unit_test(test_menu_refused),
		cmocka_unit_test(test_stub),
		cmocka_unit_test(test_boot_entries),
		cmocka_unit_test_setup_teardown(test_check_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_each_artefact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_node_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_sector0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_marker_and_cfg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_never_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_efi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_bios_tool, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
