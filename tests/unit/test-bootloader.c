/* SPDX-License-Identifier: MIT */
/*
 * test-bootloader.c — the bootloader step's pure parts (bootloader.c):
 * the installer's console= arguments turned into
 * /etc/default/grub.d/devopslab.cfg (including hostile and overlong values),
 * and check() on a fabricated target root and disk image, which must say
 * "done" only with every artefact present and the marker exactly as apply()
 * records it — and must never write. As root, apply() on a fabricated root
 * without the tools: the failure names the command, and no bind mount is
 * left behind. The real GRUB install is tests/integration/t-bootloader.sh.
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "install/bootloader.h"
#include "disk/disk-step.h"
#include "exec.h"
#include "bundle/extract.h"
#include "fake-tree.h"
#include "plan/run.h"
#include "plan/step.h"
#include "step-ops.h"

#define KVER "6.12.57+deb13-amd64"
#define KVER2 "6.12.60+deb13-amd64"

#define CFG_HEAD "# Written by devopslab (docs/install.md, \"Boot loader\").\nGRUB_DISTRIBUTOR=\"Proxmox VE\"\n"
#define CFG_CONS "# The installer's consoles, as debian-installer carries them over.\n"

static void cfg_is(const char *cmdline, const char *want)
{
	char *got = NULL;
	size_t len = 0;

	assert_int_equal(bootloader_grub_cfg(cmdline, &got, &len), 0);
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
	/* BOOTLOADER_CONSOLE_LEN bytes are carried, one more is not */
	memset(v64, 'a', 64);
	v64[64] = '\0';
	memset(v65, 'b', 65);
	v65[65] = '\0';
	snprintf(line, sizeof(line), "console=%s console=%s", v65, v64);
	snprintf(want, sizeof(want), CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=%s\"\n", v64);
	cfg_is(line, want);
	/* at most BOOTLOADER_CONSOLES_MAX of them */
	for (unsigned i = 0; i < 12; i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "console=tty%u ", i);
	cfg_is(line, CFG_HEAD CFG_CONS "GRUB_CMDLINE_LINUX=\"console=tty0 console=tty1 console=tty2 console=tty3 "
					"console=tty4 console=tty5 console=tty6 console=tty7\"\n");
	/* control bytes and high bytes */
	cfg_is("console=tty\x01 console=tty\xc3\xa4 console=ttyS0,9600\x7f", CFG_HEAD);
}

/* ---- check() on a fabricated root -------------------------------------------- */

struct fixture {
	char dir[64], root[96], proc[96], disk[96];
	struct disk_step_state st;
	struct bootloader_opts opts;
	struct step s;
	struct run_ctx ctx;
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

static const char *const artefacts[] = {
	"boot/efi/EFI/proxmox/shimx64.efi", "boot/efi/EFI/proxmox/grubx64.efi", "boot/efi/EFI/BOOT/BOOTX64.EFI",
	"boot/grub/grub.cfg",               "boot/grub/i386-pc/core.img",       "boot/initrd.img-" KVER,
};

static void fabricate(struct fixture *f)
{
	char marker[512];

	fake_tree_put(f->root, "boot/vmlinuz-" KVER, "kernel");
	for (size_t i = 0; i < ELEMENTSOF(artefacts); i++)
		fake_tree_put(f->root, artefacts[i], "x");
	fake_tree_put(f->proc, "cmdline", "BOOT_IMAGE=/vmlinuz console=tty0 console=ttyS0,115200n8\n");
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
	f->s.params = json_tokener_parse(
		"{\"loader\":\"grub\",\"targets\":[\"x86_64-efi\",\"i386-pc\"],\"esp_partition\":2}");
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

static int teardown(void **state)
{
	struct fixture *f = *state;

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
	/* grubx64.efi alone (no shim-signed) is a complete EFI install too */
	fake_tree_put(f->root, "boot/efi/EFI/proxmox/shimx64.efi", "");
	assert_true(check_done(f));
}

static void test_check_each_artefact(void **state)
{
	struct fixture *f = *state;
	char path[512];

	/* shim and GRUB: either one is an EFI install, neither is not */
	snprintf(path, sizeof(path), "%s/%s", f->root, artefacts[0]);
	assert_int_equal(unlink(path), 0);
	assert_true(check_done(f));
	snprintf(path, sizeof(path), "%s/%s", f->root, artefacts[1]);
	assert_int_equal(unlink(path), 0);
	assert_false(check_done(f));
	fake_tree_put(f->root, artefacts[0], "x");
	assert_true(check_done(f));
	fake_tree_put(f->root, artefacts[0], ""); /* an empty file is not an artefact */
	assert_false(check_done(f));
	fake_tree_put(f->root, artefacts[0], "x");
	fake_tree_put(f->root, artefacts[1], "x");
	for (size_t i = 2; i < ELEMENTSOF(artefacts); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->root, artefacts[i]);
		assert_int_equal(unlink(path), 0);
		if (check_done(f))
			fail_msg("done without %s", artefacts[i]);
		fake_tree_put(f->root, artefacts[i], "");
		if (check_done(f))
			fail_msg("done with an empty %s", artefacts[i]);
		fake_tree_put(f->root, artefacts[i], "x");
		assert_true(check_done(f));
	}
	/* a symlink on the ESP is not followed */
	snprintf(path, sizeof(path), "%s/boot/efi/EFI/BOOT/BOOTX64.EFI", f->root);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("../proxmox/grubx64.efi", path), 0);
	assert_false(check_done(f));
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
	snprintf(path, sizeof(path), "%s/var/lib/devopslab/bootloader.done", f->root);
	assert_int_equal(unlink(path), 0);
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
	/* a new kernel: not recorded, and it has no initrd */
	fake_tree_put(f->root, "boot/vmlinuz-" KVER2, "kernel");
	assert_false(check_done(f));
	snprintf(path, sizeof(path), "%s/boot/vmlinuz-" KVER2, f->root);
	assert_int_equal(unlink(path), 0);
	assert_true(check_done(f));
	/* the installer's console changed: the config is not what apply writes */
	fake_tree_put(f->proc, "cmdline", "console=ttyS1,9600\n");
	assert_false(check_done(f));
	fake_tree_put(f->proc, "cmdline", "BOOT_IMAGE=/vmlinuz console=tty0 console=ttyS0,115200n8\n");
	assert_true(check_done(f));
	/* BIOS only: the ESP is not needed, the marker says so */
	json_object_object_add(f->s.params, "targets", json_tokener_parse("[\"i386-pc\"]"));
	assert_false(check_done(f)); /* marker still says both */
	snprintf(path, sizeof(path), "loader grub\ntargets i386-pc\ndisk %s\nkernel " KVER "\n", f->disk);
	fake_tree_put(f->root, "var/lib/devopslab/bootloader.done", path);
	snprintf(path, sizeof(path), "%s/boot/efi/EFI/BOOT/BOOTX64.EFI", f->root);
	assert_int_equal(unlink(path), 0);
	assert_true(check_done(f));
}

static void test_check_never_writes(void **state)
{
	struct fixture *f = *state;
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/etc/default/grub.d/devopslab.cfg", f->root);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/var/lib/devopslab/bootloader.done", f->root);
	assert_int_equal(unlink(path), 0);
	assert_false(check_done(f));
	snprintf(path, sizeof(path), "%s/etc/default/grub.d/devopslab.cfg", f->root);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/var/lib/devopslab/bootloader.done", f->root);
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

	/* no kernel; an overlong /proc/cmdline */
	snprintf(path, sizeof(path), "%s/boot/vmlinuz-" KVER, f->root);
	assert_int_equal(unlink(path), 0);
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

/* apply() with the tools missing from the root: the bind mounts are made
 * and undone, the failure names the command. Needs root (mount(2)). */
static void test_apply_missing_tools(void **state)
{
	struct fixture *f = *state;
	static const char *const dirs[] = { "dev", "proc", "sys", "run" };
	char path[512];
	struct stat st;

	if (geteuid() != 0) {
		skip();
		return;
	}
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->root, dirs[i]);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	f->ctx.error[0] = '\0';
	assert_int_equal(bootloader_ops.apply(&f->ctx, &f->s), -ENOENT);
	if (!strstr(f->ctx.error, "cannot run '/usr/sbin/update-initramfs -u -k " KVER "' in"))
		fail_msg("unexpected error: %s", f->ctx.error);
	assert_false(mounted_below(f->dir));
	/* the marker went first (a failed run is never done), the config was written */
	snprintf(path, sizeof(path), "%s/var/lib/devopslab/bootloader.done", f->root);
	assert_int_equal(stat(path, &st), -1);
	assert_false(check_done(f));
	snprintf(path, sizeof(path), "%s/etc/default/grub.d/devopslab.cfg", f->root);
	assert_int_equal(stat(path, &st), 0);
	/* a root directory that is a symlink is refused before any mount */
	snprintf(path, sizeof(path), "%s/run", f->root);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(symlink("/run", path), 0);
	f->ctx.error[0] = '\0';
	assert_int_equal(bootloader_ops.apply(&f->ctx, &f->s), -ENOTDIR);
	assert_non_null(strstr(f->ctx.error, "is not a directory"));
	assert_false(mounted_below(f->dir));
}

/* exec.h as the step uses it: stdin fed to a child that reads to EOF
 * (debconf-set-selections does), which must see EOF while we wait. */
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
		cmocka_unit_test(test_cfg_hostile),
		cmocka_unit_test_setup_teardown(test_check_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_each_artefact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_sector0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_marker_and_cfg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_never_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_missing_tools, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
