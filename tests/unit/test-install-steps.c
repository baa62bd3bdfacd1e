/* SPDX-License-Identifier: MIT */
/*
 * test-install-steps.c — the install phase after the disk stages, run by
 * step_run() from the example node's own plan steps (rootfs-extract, the
 * config-* steps, firstboot-install; the boot loader has no ops yet) onto
 * a temporary root, from a small rootfs tar.zst built here with
 * libarchive: owners, modes, setuid, symlinks, a hardlink, a device node,
 * a file capability, a user xattr and a default ACL survive; a second run applies
 * nothing; a killed extraction (a truncated archive) leaves a root that is
 * not done, and the next run wipes it and extracts cleanly — keeping a
 * mount point (as /boot/efi will be) in place.
 */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
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
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "bundle/bundle.h"
#include "plan/json-util.h"
#include "plan/plan.h"
#include "install/rootfs.h"
#include "plan/run.h"
#include "bundle/secret.h"
#include "bundle/sig-mbedtls.h"
#include "plan/engine.h"
#include "plan/step.h"
#include "install/sysconf.h"
#include "step-ops.h"

#define ASSET "debian-13-rootfs.tar.zst"
#define BIG_BYTES (3u << 20)

/* struct vfs_cap_data, revision 2, effective, permitted = CAP_NET_RAW (13) */
static const uint8_t cap_net_raw[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
					 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };

/* system.posix_acl_default (linux/posix_acl_xattr.h, version 2):
 * user::rwx, group::r-x, other::r-x, as mmdebstrap's /var/log/journal */
static const uint8_t acl_default[28] = { 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x00, 0xff, 0xff,
					 0xff, 0xff, 0x04, 0x00, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff,
					 0x20, 0x00, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff };

struct fixture {
	char dir[64], root[128], bundle_dir[128], asset[256], file[128];
	struct manifest *m;
	struct plan *plan;
	struct secrets *secrets;
	struct bundle_member member;
	struct bundle bundle;
	struct install_paths ip;
	unsigned events[_STEP_EVENT_MAX];
	unsigned progress_calls;
	uint64_t progress_last, progress_total;
	bool mounted;
};

static void on_progress(const struct step_progress *p, void *userdata)
{
	struct fixture *f = userdata;

	f->events[p->event]++;
}

static void on_extract(uint64_t done, uint64_t total, void *userdata)
{
	struct fixture *f = userdata;

	f->progress_calls++;
	f->progress_last = done;
	f->progress_total = total;
}

static void add(struct archive *a, const char *path, mode_t type, mode_t perm, int64_t uid, int64_t gid,
		const char *data, size_t len, const char *link)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, gid);
	archive_entry_set_size(e, type == AE_IFREG ? (int64_t)len : 0);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	if (type == AE_IFCHR)
		archive_entry_set_rdev(e, makedev(1, 3));
	if (streq(path, "./usr/bin/ping")) {
		archive_entry_xattr_add_entry(e, "security.capability", cap_net_raw, sizeof(cap_net_raw));
		archive_entry_xattr_add_entry(e, "user.devopslab", "kept", 4);
	}
	if (streq(path, "./var/log/journal/"))
		archive_entry_xattr_add_entry(e, "system.posix_acl_default", acl_default, sizeof(acl_default));
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (type == AE_IFREG && len)
		assert_int_equal(archive_write_data(a, data, len), (ssize_t)len);
	archive_entry_free(e);
}

static void add_hardlink(struct archive *a, const char *path, const char *target)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0755);
	archive_entry_set_hardlink(e, target);
	archive_entry_set_size(e, 0);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_free(e);
}

static const char shadow[] = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";
static const char hosts[] = "127.0.0.1\tlocalhost\n127.0.1.1\tbuilder\n\n::1     localhost ip6-localhost\n";

/* The tiny rootfs, as a pax tar (xattrs need pax) compressed with zstd. */
static void make_rootfs(const char *path)
{
	struct archive *a = archive_write_new();
	char *big = malloc(BIG_BYTES);
	uint32_t x = 12345;

	assert_non_null(a);
	assert_non_null(big);
	for (size_t i = 0; i < BIG_BYTES; i++) { /* incompressible: a truncated archive ends inside it */
		x = x * 1103515245u + 12345u;
		big[i] = (char)(x >> 24);
	}
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	add(a, "./", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./etc/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./etc/shadow", AE_IFREG, 0640, 0, 42, shadow, strlen(shadow), NULL);
	add(a, "./etc/hosts", AE_IFREG, 0644, 0, 0, hosts, strlen(hosts), NULL);
	add(a, "./etc/hostname", AE_IFREG, 0644, 0, 0, "builder\n", 8, NULL);
	add(a, "./etc/machine-id", AE_IFREG, 0444, 0, 0, "0123456789abcdef0123456789abcdef\n", 33, NULL);
	add(a, "./etc/ssh/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./etc/ssh/ssh_host_ed25519_key", AE_IFREG, 0600, 0, 0, "builder's key\n", 14, NULL);
	add(a, "./etc/localtime", AE_IFLNK, 0777, 0, 0, NULL, 0, "/usr/share/zoneinfo/Etc/UTC");
	add(a, "./usr/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./usr/bin/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./usr/bin/ping", AE_IFREG, 0755, 0, 0, "ping\n", 5, NULL);
	add_hardlink(a, "./usr/bin/ping4", "./usr/bin/ping");
	add(a, "./usr/bin/su", AE_IFREG, 04755, 0, 0, "su\n", 3, NULL);
	add(a, "./bin", AE_IFLNK, 0777, 0, 0, NULL, 0, "usr/bin");
	add(a, "./dev/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./dev/null", AE_IFCHR, 0666, 0, 0, NULL, 0, NULL);
	add(a, "./tmp/", AE_IFDIR, 01777, 0, 0, NULL, 0, NULL);
	add(a, "./home/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./home/user/", AE_IFDIR, 0750, 1000, 1000, NULL, 0, NULL);
	add(a, "./boot/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./var/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./var/log/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./var/log/journal/", AE_IFDIR, 02755, 0, 0, NULL, 0, NULL);
	add(a, "./usr/lib/", AE_IFDIR, 0755, 0, 0, NULL, 0, NULL);
	add(a, "./usr/lib/big.bin", AE_IFREG, 0644, 0, 0, big, BIG_BYTES, NULL);
	add(a, "./usr/lib/last", AE_IFREG, 0644, 0, 0, "last member\n", 12, NULL);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	free(big);
}

/* Point the fake verified bundle at the asset's current bytes. */
static void digest(struct fixture *f)
{
	struct sig_sha256 *h = sig_sha256_new();
	char buf[65536];
	ssize_t k;
	int fd = open(f->asset, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_non_null(h);
	while ((k = read(fd, buf, sizeof(buf))) > 0)
		sig_sha256_update(h, buf, (size_t)k);
	close(fd);
	sig_sha256_final(h, f->member.sha256);
	sig_sha256_free(h);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0); /* test scaffolding on our own temp paths */
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct plan *full = NULL;
	struct diags d = {};

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-install-steps.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/target", f->dir);
	snprintf(f->bundle_dir, sizeof(f->bundle_dir), "%s/bundle", f->dir);
	snprintf(f->asset, sizeof(f->asset), "%s/assets/" ASSET, f->bundle_dir);
	snprintf(f->file, sizeof(f->file), "%s/pub.pem", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(f->bundle_dir, 0700), 0);
	sh("mkdir -p '%s/assets'", f->bundle_dir);
	sh("echo public-key > '%s'", f->file);
	make_rootfs(f->asset);

	f->member.path = (char *)"assets/" ASSET;
	digest(f);
	f->bundle = (struct bundle){ .dir = f->bundle_dir, .members = &f->member, .n_members = 1 };
	f->ip = (struct install_paths){ .binary = f->file, .bundle_file = f->asset, .pubkey = f->file,
					.extract_progress = on_extract, .userdata = f };
	assert_int_equal(manifest_load("examples/homelab.yaml", NULL, &d, &f->m), 0);
	diags_done(&d);
	assert_int_equal(secrets_parse("root_password=pw\n", 17, &f->secrets), 0);

	/* the example node's steps from rootfs-extract to firstboot-install */
	assert_int_equal(plan_build(f->m, "devops-node-01", &full), 0);
	f->plan = plan_new(f->m, "devops-node-01");
	assert_non_null(f->plan);
	for (size_t i = 0; i < full->n_steps; i++) {
		const struct step *s = &full->steps[i];
		int r;

		if (s->kind < STEP_ROOTFS_EXTRACT || s->kind > STEP_FIRSTBOOT_INSTALL || s->kind == STEP_BOOTLOADER)
			continue;
		r = plan_add(f->plan, s->phase, s->kind, s->node, json_object_get(s->params), s->title, "%s", s->id);
		assert_true(r >= 0);
		f->plan->steps[r].mf_node = s->mf_node;
	}
	assert_int_equal(f->plan->n_steps, 8);
	plan_free(full);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[256];

	if (f->mounted) {
		snprintf(p, sizeof(p), "%s/boot/efi", f->root);
		(void)umount2(p, MNT_DETACH);
	}
	sh("rm -rf '%s'", f->dir);
	plan_free(f->plan);
	manifest_free(f->m);
	secrets_free(f->secrets);
	free(f);
	return 0;
}

static int run(struct fixture *f, struct run_ctx *ctx)
{
	memset(f->events, 0, sizeof(f->events));
	run_ctx_init(ctx);
	ctx->ops = step_ops_table;
	ctx->manifest = f->m;
	ctx->node = "devops-node-01";
	ctx->root = f->root;
	ctx->secrets = f->secrets;
	ctx->bundle = &f->bundle;
	ctx->install = &f->ip;
	ctx->progress = on_progress;
	ctx->userdata = f;
	return step_run(ctx, f->plan, STEP_PHASE_INSTALL);
}

static void run_ok(struct fixture *f)
{
	struct run_ctx ctx;
	int r = run(f, &ctx);

	if (r < 0)
		fail_msg("step_run: %s", ctx.error);
	run_ctx_done(&ctx);
}

static struct stat st_of(const struct fixture *f, const char *rel)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", f->root, rel);
	if (lstat(p, &st) < 0)
		fail_msg("%s: %s", rel, strerror(errno));
	return st;
}

static bool exists(const struct fixture *f, const char *rel)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", f->root, rel);
	return lstat(p, &st) == 0;
}

static void assert_link(const struct fixture *f, const char *rel, const char *want)
{
	char p[256], t[256];
	ssize_t k;

	snprintf(p, sizeof(p), "%s%s", f->root, rel);
	k = readlink(p, t, sizeof(t) - 1);
	assert_true(k > 0);
	t[k] = '\0';
	assert_string_equal(t, want);
}

static void assert_installed(const struct fixture *f)
{
	char p[256], val[64], hex[65], line[80];
	struct stat st, st2;
	ssize_t k;
	FILE *fp;

	st = st_of(f, "/usr/bin/su");
	assert_int_equal(st.st_mode & 07777, 04755);
	st = st_of(f, "/tmp");
	assert_int_equal(st.st_mode & 07777, 01777);
	st = st_of(f, "/home/user");
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1000);
	assert_int_equal(st.st_mode & 07777, 0750);
	st = st_of(f, "/etc/shadow");
	assert_int_equal(st.st_gid, 42);
	assert_int_equal(st.st_mode & 07777, 0640);
	st = st_of(f, "/dev/null");
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(1, 3));
	st = st_of(f, "/usr/bin/ping");
	st2 = st_of(f, "/usr/bin/ping4");
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_link(f, "/bin", "usr/bin");
	assert_link(f, "/etc/localtime", "/usr/share/zoneinfo/Europe/Berlin"); /* config-timezone's */
	st = st_of(f, "/usr/lib/big.bin");
	assert_int_equal(st.st_size, BIG_BYTES);

	snprintf(p, sizeof(p), "%s/usr/bin/ping", f->root);
	k = getxattr(p, "security.capability", val, sizeof(val));
	assert_int_equal(k, sizeof(cap_net_raw));
	assert_memory_equal(val, cap_net_raw, sizeof(cap_net_raw));
	k = getxattr(p, "user.devopslab", val, sizeof(val));
	assert_int_equal(k, 4);
	assert_memory_equal(val, "kept", 4);
	snprintf(p, sizeof(p), "%s/var/log/journal", f->root);
	k = getxattr(p, "system.posix_acl_default", val, sizeof(val));
	assert_int_equal(k, sizeof(acl_default));
	assert_memory_equal(val, acl_default, sizeof(acl_default));
	st = st_of(f, "/var/log/journal");
	assert_int_equal(st.st_mode & 07777, 02755);

	/* the configuration on top */
	assert_false(exists(f, "/etc/ssh/ssh_host_ed25519_key"));
	assert_true(exists(f, "/etc/systemd/system/devopslab-firstboot.service"));
	assert_true(exists(f, "/etc/network/interfaces"));
	st = st_of(f, "/etc/machine-id");
	assert_int_equal(st.st_size, 0);

	sig_hex(f->member.sha256, hex);
	snprintf(p, sizeof(p), "%s" ROOTFS_MARKER, f->root);
	fp = fopen(p, "re");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	assert_memory_equal(line, hex, 64);
}

static void test_registered(void **state)
{
	(void)state;
	assert_ptr_equal(step_ops_table[STEP_ROOTFS_EXTRACT], &rootfs_extract_ops);
}

static void test_install_and_rerun(void **state)
{
	struct fixture *f = *state;
	FILE *fp;
	char p[256], line[256];

	if (geteuid() != 0)
		skip(); /* owners, devices and capabilities need root */
	run_ok(f);
	assert_int_equal(f->events[STEP_EVENT_APPLIED], 8);
	assert_installed(f);
	assert_true(f->progress_calls >= 1);
	assert_int_equal(f->progress_last, f->progress_total);

	snprintf(p, sizeof(p), "%s/etc/hostname", f->root);
	fp = fopen(p, "re");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	assert_string_equal(line, "devops-node-01\n");

	/* second run: every step found done, nothing applied */
	f->progress_calls = 0;
	run_ok(f);
	assert_int_equal(f->events[STEP_EVENT_FOUND_DONE], 8);
	assert_int_equal(f->events[STEP_EVENT_APPLY], 0);
	assert_int_equal(f->progress_calls, 0);
}

static void truncate_asset(struct fixture *f, off_t size)
{
	assert_int_equal(truncate(f->asset, size), 0);
	digest(f);
}

static void test_killed_extraction(void **state)
{
	struct fixture *f = *state;
	struct run_ctx ctx;
	struct stat st;
	char p[256];
	int r;

	if (geteuid() != 0)
		skip();
	/* a mount point inside the target, as /boot/efi during install */
	snprintf(p, sizeof(p), "%s/boot/efi", f->root);
	sh("mkdir -p '%s'", p);
	f->mounted = mount("tmpfs", p, "tmpfs", 0, "size=1m") == 0;
	sh("echo stray > '%s/stray'", f->root);
	/* the install journal, and a neighbour that is not kept */
	sh("mkdir -p '%s/var/lib/devopslab' && echo journal > '%s" ROOTFS_INSTALL_JOURNAL "'", f->root, f->root);
	sh("echo other > '%s/var/lib/devopslab/other'", f->root);
	if (f->mounted)
		sh("echo old > '%s/boot/efi/old'", f->root);

	/* the extraction dies half-way (what a kill leaves: no marker) */
	assert_int_equal(stat(f->asset, &st), 0);
	truncate_asset(f, st.st_size / 2);
	r = run(f, &ctx);
	assert_true(r < 0);
	assert_non_null(ctx.failed_step);
	assert_int_equal(ctx.failed_step->kind, STEP_ROOTFS_EXTRACT);
	run_ctx_done(&ctx);
	assert_false(exists(f, ROOTFS_MARKER));
	assert_false(exists(f, "/stray"));        /* wiped before extracting */
	assert_true(exists(f, ROOTFS_INSTALL_JOURNAL)); /* ... but the journal kept */
	assert_false(exists(f, "/var/lib/devopslab/other"));
	assert_true(exists(f, "/etc/shadow"));    /* partial content */
	assert_false(exists(f, "/usr/lib/last")); /* ... that never got to the end */

	/* the next run (with the whole archive) wipes and extracts again */
	make_rootfs(f->asset);
	digest(f);
	run_ok(f);
	assert_int_equal(f->events[STEP_EVENT_APPLIED], 8);
	assert_installed(f);
	assert_true(exists(f, "/usr/lib/last"));
	assert_true(exists(f, ROOTFS_INSTALL_JOURNAL));
	if (f->mounted) {
		struct stat root_st = st_of(f, "/"), efi_st = st_of(f, "/boot/efi");

		assert_int_not_equal(root_st.st_dev, efi_st.st_dev); /* still mounted */
		assert_false(exists(f, "/boot/efi/old"));            /* but emptied */
	}
}

static void test_no_bundle(void **state)
{
	struct fixture *f = *state;
	struct run_ctx ctx;
	bool done;

	run_ctx_init(&ctx);

	ctx.ops = step_ops_table;
	ctx.root = f->root;
	assert_int_equal(rootfs_extract_ops.check(&ctx, &f->plan->steps[0], &done), -EINVAL);
	assert_non_null(strstr(ctx.error, "no verified bundle"));
	run_ctx_done(&ctx);
}

/* The guard is tested inside a chroot of a scratch directory: were it
 * broken, only that directory would be emptied, never this machine. */
static void test_never_wipes_system_root(void **state)
{
	struct fixture *f = *state;
	int status;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	sh("echo precious > '%s/precious'", f->root);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd, ok = 1;

		if (chroot(f->root) < 0 || chdir("/") < 0 || mkdir("/etc", 0755) < 0)
			_exit(3);
		fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ok &= fd >= 0 && rootfs_wipe(fd, NULL) == -EPERM;
		close(fd);
		fd = open("/etc/..", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* "/" in disguise */
		ok &= fd >= 0 && rootfs_wipe(fd, NULL) == -EPERM;
		ok &= access("/precious", F_OK) == 0;
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(exists(f, "/precious"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registered),
		cmocka_unit_test_setup_teardown(test_install_and_rerun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_extraction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_bundle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_wipes_system_root, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
