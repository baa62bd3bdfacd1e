/* SPDX-License-Identifier: MIT */
/*
 * bootloader.c — the bootloader step. See bootloader.h.
 *
 * check() and apply() both start from the same description of the wanted
 * result (struct want: the targets, the disk, the config file's text, the
 * kernels in /boot and the marker text that records them), so the two can
 * never disagree about what "done" means.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bootloader.h"
#include "disk/disk-step.h"
#include "exec.h"
#include "plan/json-util.h"
#include "rootfile.h"
#include "plan/run.h"
#include "util.h"

#define DISTRIBUTOR "Proxmox VE"
#define KVER_MAX 64u
#define DISK_PATH_MAX 256u
#define MARKER_MAX 4096u
#define EFIVARS "/sys/firmware/efi/efivars"
#define UNBIND_MAX 8 /* stacked leftovers of killed runs we detach */

/* The chroot's environment: Debian's PATH, no locale surprises, and no
 * debconf question can wait for an answer. */
static char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
static char env_lang[] = "LC_ALL=C";
static char env_home[] = "HOME=/root";
static char env_deb[] = "DEBIAN_FRONTEND=noninteractive";
static char *const chroot_env[] = { env_path, env_lang, env_home, env_deb, NULL };

struct want {
	bool efi, bios;
	const char *disk; /* borrowed from ctx->disk */
	char *cfg;
	size_t cfg_len;
	char kernels[BOOTLOADER_KERNELS_MAX][KVER_MAX + 1];
	size_t n_kernels;
	char *marker;
	size_t marker_len;
};

static void want_done(struct want *w)
{
	free(w->cfg);
	free(w->marker);
	*w = (struct want){ 0 };
}


/* ---- the config file ------------------------------------------------------ */

static bool console_ok(const char *v, size_t n)
{
	if (n == 0 || n > BOOTLOADER_CONSOLE_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,._:/-", v[i]))
			return false;
	return true;
}

/* Up to max decimal digits at *p (advanced); -1 when there are none. */
static long digits(const char **p, const char *end, unsigned max)
{
	long v = 0;
	unsigned n = 0;

	while (*p < end && **p >= '0' && **p <= '9' && n < max)
		v = v * 10 + (*(*p)++ - '0'), n++;
	return n == 0 || (*p < end && **p >= '0' && **p <= '9') ? -1 : v;
}

/* "ttyS<unit>[,<speed>[<parity><bits>...]]" (the kernel's serial console
 * syntax, Documentation/admin-guide/serial-console.rst); *speed 0 = none. */
static bool serial_of(const char *v, size_t n, unsigned *unit, unsigned *speed)
{
	const char *p = v + 4, *end = v + n;
	long u, s = 0;

	if (n < 5 || strncmp(v, "ttyS", 4) != 0)
		return false;
	u = digits(&p, end, 3);
	if (u < 0 || u > 255 || (p < end && *p != ','))
		return false;
	if (p < end) {
		p++;
		s = digits(&p, end, 7);
		if (s <= 0)
			return false;
	}
	*unit = (unsigned)u;
	*speed = (unsigned)s;
	return true;
}

int bootloader_grub_cfg(const char *cmdline, char **ret, size_t *ret_len)
{
	char cons[BOOTLOADER_CONSOLES_MAX * (BOOTLOADER_CONSOLE_LEN + 1) + 1] = "";
	unsigned n = 0, unit = 0, speed = 0;
	bool serial = false;
	size_t off = 0, len = 0;
	char *buf = NULL;
	FILE *f;

	for (const char *p = cmdline ? cmdline : ""; *p;) {
		size_t k;

		p += strspn(p, " \t\n");
		k = strcspn(p, " \t\n");
		if (k == 2 && strncmp(p, "--", 2) == 0)
			break; /* the rest is init's, not the kernel's */
		if (k > 8 && strncmp(p, "console=", 8) == 0 && console_ok(p + 8, k - 8) && n < BOOTLOADER_CONSOLES_MAX) {
			int w = snprintf(cons + off, sizeof(cons) - off, "%sconsole=%.*s", n ? " " : "", (int)(k - 8), p + 8);

			if (w > 0 && (size_t)w < sizeof(cons) - off) {
				off += (size_t)w;
				n++;
				if (serial_of(p + 8, k - 8, &unit, &speed))
					serial = true;
			} else
				cons[off] = '\0';
		}
		p += k;
	}

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fputs("# Written by devopslab (docs/install.md, \"Boot loader\").\n"
	      "GRUB_DISTRIBUTOR=\"" DISTRIBUTOR "\"\n", f);
	if (n > 0) {
		fputs("# The installer's consoles, as debian-installer carries them over.\n", f);
		fprintf(f, "GRUB_CMDLINE_LINUX=\"%s\"\n", cons);
	}
	if (serial) {
		fputs("GRUB_TERMINAL=\"console serial\"\n", f);
		if (speed)
			fprintf(f, "GRUB_SERIAL_COMMAND=\"serial --unit=%u --speed=%u\"\n", unit, speed);
		else
			fprintf(f, "GRUB_SERIAL_COMMAND=\"serial --unit=%u\"\n", unit);
	}
	if (ferror(f) || fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* ---- what the step wants --------------------------------------------------- */

static int read_cmdline(struct run_ctx *ctx, char **ret)
{
	const struct bootloader_opts *o = ctx->boot;
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	char path[4096];
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/cmdline", o && o->proc ? o->proc : "/proc");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot open '%s': %m", path);
	buf = malloc(BOOTLOADER_CMDLINE_MAX + 1);
	if (!buf)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	for (;;) {
		ssize_t k = read(fd, buf + len, BOOTLOADER_CMDLINE_MAX + 1 - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return run_ctx_error(ctx, negative_errno(), "cannot read '%s': %m", path);
		if (k == 0)
			break;
		len += (size_t)k;
		if (len > BOOTLOADER_CMDLINE_MAX)
			return run_ctx_error(ctx, -EFBIG, "'%s' is longer than %u bytes", path, BOOTLOADER_CMDLINE_MAX);
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

static int read_params(struct run_ctx *ctx, const struct step *s, struct want *w)
{
	const char *loader = step_param_string(s, "loader");
	struct json_object *targets = json_get_array(s->params, "targets");
	const struct disk_step_state *st = ctx->disk;

	if (!streq_ptr(loader, "grub"))
		return run_ctx_error(ctx, -EOPNOTSUPP, "step '%s': boot loader '%s' is not supported (only grub)", s->id,
				     loader ? loader : "(none)");
	for (size_t i = 0; targets && i < json_object_array_length(targets); i++) {
		const char *t = json_object_get_string(json_object_array_get_idx(targets, i));

		if (streq_ptr(t, "x86_64-efi"))
			w->efi = true;
		else if (streq_ptr(t, "i386-pc"))
			w->bios = true;
		else
			return run_ctx_error(ctx, -EOPNOTSUPP, "step '%s': GRUB target '%s' is not supported", s->id,
					     t ? t : "(none)");
	}
	if (!w->efi && !w->bios)
		return run_ctx_error(ctx, -EINVAL, "step '%s': no GRUB target", s->id);
	if (!st || isempty(st->target.path))
		return run_ctx_error(ctx, -EINVAL, "step '%s': no target disk (the disk steps have not selected one)",
				     s->id);
	if (strlen(st->target.path) > DISK_PATH_MAX || strchr(st->target.path, '\n'))
		return run_ctx_error(ctx, -EINVAL, "step '%s': unusable target disk path", s->id);
	w->disk = st->target.path;
	return 0;
}

static bool kver_ok(const char *v)
{
	size_t n = strlen(v);

	return n > 0 && n <= KVER_MAX &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+~-") == n;
}

static int cmp_kver(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The kernels in the target's /boot (regular files vmlinuz-KVER), sorted. */
static int find_kernels(struct run_ctx *ctx, int rootfd, struct want *w)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd = openat(rootfd, "boot", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot open '%s/boot': %m", ctx->root);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (strncmp(de->d_name, "vmlinuz-", 8) != 0 || !kver_ok(de->d_name + 8))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (w->n_kernels >= BOOTLOADER_KERNELS_MAX)
			return run_ctx_error(ctx, -E2BIG, "more than %u kernels in '%s/boot'", BOOTLOADER_KERNELS_MAX,
					     ctx->root);
		snprintf(w->kernels[w->n_kernels++], KVER_MAX + 1, "%s", de->d_name + 8);
	}
	if (w->n_kernels == 0)
		return run_ctx_error(ctx, -ENOENT, "no kernel (vmlinuz-*) in '%s/boot': is the rootfs extracted?",
				     ctx->root);
	qsort(w->kernels, w->n_kernels, sizeof(w->kernels[0]), cmp_kver);
	return 0;
}

static int make_marker(struct want *w)
{
	FILE *f = open_memstream(&w->marker, &w->marker_len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "loader grub\ntargets%s%s\ndisk %s\n", w->efi ? " x86_64-efi" : "", w->bios ? " i386-pc" : "",
		w->disk);
	for (size_t i = 0; i < w->n_kernels; i++)
		fprintf(f, "kernel %s\n", w->kernels[i]);
	if (ferror(f) || fclose(f) != 0)
		return -ENOMEM;
	return 0;
}

static int want_build(struct run_ctx *ctx, const struct step *s, int rootfd, struct want *w)
{
	_cleanup_free_ char *cmdline = NULL;
	int r;

	r = read_params(ctx, s, w);
	if (r >= 0)
		r = read_cmdline(ctx, &cmdline);
	if (r < 0)
		return r;
	if (bootloader_grub_cfg(cmdline, &w->cfg, &w->cfg_len) < 0)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	r = find_kernels(ctx, rootfd, w);
	if (r < 0)
		return r;
	return make_marker(w) < 0 ? run_ctx_error(ctx, -ENOMEM, "out of memory") : 0;
}

/* ---- check ------------------------------------------------------------------ */

/* A non-empty regular file at rel below dirfd, never leaving its file
 * system or following a symlink (the ESP has none; ours are plain files). */
static bool present(int dirfd, const char *rel)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
	};
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* GRUB's boot.img (its MBR boot code) carries the message "GRUB " it
 * prints before loading core.img. */
static int sector0_has_grub(struct run_ctx *ctx, const char *disk, bool *ret)
{
	_cleanup_close_ int fd = open(disk, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char sector[512];
	ssize_t k;

	if (fd < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot open the target disk '%s': %m", disk);
	k = pread(fd, sector, sizeof(sector), 0);
	if (k < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot read the first sector of '%s': %m", disk);
	*ret = k == (ssize_t)sizeof(sector) && memmem(sector, 440, "GRUB ", 5) != NULL;
	return 0;
}

static int artefacts_present(struct run_ctx *ctx, int rootfd, const struct want *w, bool *ret)
{
	_cleanup_close_ int esp = -1;
	char rel[KVER_MAX + 32];
	bool ok = present(rootfd, "boot/grub/grub.cfg");

	for (size_t i = 0; ok && i < w->n_kernels; i++) {
		snprintf(rel, sizeof(rel), "boot/initrd.img-%s", w->kernels[i]);
		ok = present(rootfd, rel);
	}
	if (ok && w->efi) {
		esp = openat(rootfd, "boot/efi", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		ok = esp >= 0 &&
		     (present(esp, "EFI/" BOOTLOADER_EFI_ID "/shimx64.efi") ||
		      present(esp, "EFI/" BOOTLOADER_EFI_ID "/grubx64.efi")) &&
		     present(esp, "EFI/BOOT/BOOTX64.EFI");
	}
	if (ok && w->bios) {
		ok = present(rootfd, "boot/grub/i386-pc/core.img");
		if (ok) {
			int r = sector0_has_grub(ctx, w->disk, &ok);

			if (r < 0)
				return r;
		}
	}
	*ret = ok;
	return 0;
}

static int file_same(struct run_ctx *ctx, int rootfd, const char *path, const char *content, size_t len,
		     bool *ret)
{
	_cleanup_(rootfile_set_donep) struct rootfile_set set = { .n = 0 };
	int r = rootfile_set_file(&set, path, content, len, 0644, 0755);

	if (r >= 0)
		r = rootfile_check(rootfd, &set.items[0], ret);
	return r < 0 ? run_ctx_error(ctx, r, "%s", r == -ENOMEM ? "out of memory" : rootfile_error()) : 0;
}

static int bootloader_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	_cleanup_(want_done) struct want w = { 0 };
	_cleanup_close_ int rootfd = -1;
	bool same = false;
	int r;

	r = rootfile_open_root(ctx->root, &rootfd);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", rootfile_error());
	r = want_build(ctx, s, rootfd, &w);
	if (r < 0)
		return r;
	r = file_same(ctx, rootfd, BOOTLOADER_MARKER, w.marker, w.marker_len, &same);
	if (r >= 0 && same)
		r = file_same(ctx, rootfd, BOOTLOADER_CFG, w.cfg, w.cfg_len, &same);
	if (r >= 0 && same)
		r = artefacts_present(ctx, rootfd, &w, &same);
	if (r < 0)
		return r;
	*ret_done = same;
	return 0;
}

/* ---- apply: the bind mounts ----------------------------------------------- */

struct binds {
	char path[5][4096];
	size_t n;
};

static bool is_efivarfs(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && sf.f_type == (typeof(sf.f_type))EFIVARFS_MAGIC;
}

/* Detach whatever a killed run left mounted on dst (stacked, at most a
 * few): dst must be the root file system's own directory again. */
static int unbind_stale(struct run_ctx *ctx, const char *dst, dev_t rootdev)
{
	struct stat st;

	for (int i = 0; i < UNBIND_MAX; i++) {
		if (lstat(dst, &st) < 0)
			return run_ctx_error(ctx, negative_errno(), "cannot stat '%s': %m", dst);
		if (!S_ISDIR(st.st_mode))
			return run_ctx_error(ctx, -ENOTDIR, "'%s' is not a directory", dst);
		if (st.st_dev == rootdev)
			return 0;
		if (umount2(dst, MNT_DETACH) < 0)
			return run_ctx_error(ctx, negative_errno(), "cannot detach a leftover mount on '%s': %m", dst);
	}
	return run_ctx_error(ctx, -EBUSY, "'%s' is still a mount point", dst);
}

static int bind_one(struct run_ctx *ctx, struct binds *b, const char *src, dev_t rootdev, bool stale_check)
{
	char *dst = b->path[b->n];
	int r;

	if ((size_t)snprintf(dst, sizeof(b->path[0]), "%s%s", ctx->root, src) >= sizeof(b->path[0]))
		return run_ctx_error(ctx, -ENAMETOOLONG, "target root path too long");
	if (stale_check) {
		r = unbind_stale(ctx, dst, rootdev);
		if (r < 0)
			return r;
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot bind-mount '%s' on '%s': %m", src, dst);
	b->n++; /* from here on it is ours to unmount */
	/* A slave receives the host's mount events but sends none back: an
	 * unmount below ROOT/dev must never unmount the host's /dev/pts
	 * (mount_namespaces(7), "Shared subtrees"). */
	if (mount(NULL, dst, NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot make '%s' a slave mount: %m", dst);
	return 0;
}

static int bind_all(struct run_ctx *ctx, int rootfd, struct binds *b, bool *ret_efivars)
{
	static const char *const srcs[] = { "/dev", "/proc", "/sys", "/run" };
	char in_root[4096];
	struct stat st;
	int r;

	*ret_efivars = false;
	if (fstat(rootfd, &st) < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot stat '%s': %m", ctx->root);
	for (size_t i = 0; i < ELEMENTSOF(srcs); i++) {
		r = bind_one(ctx, b, srcs[i], st.st_dev, true);
		if (r < 0)
			return r;
	}
	/* Booted UEFI with its variables mounted: the recursive /sys carries
	 * them; if not, bind them on their own. */
	if (!is_efivarfs(EFIVARS))
		return 0;
	snprintf(in_root, sizeof(in_root), "%s" EFIVARS, ctx->root);
	if (!is_efivarfs(in_root)) {
		r = bind_one(ctx, b, EFIVARS, st.st_dev, false);
		if (r < 0)
			return r;
	}
	*ret_efivars = true;
	return 0;
}

/* In reverse order; a busy one is detached lazily (gone from the tree at
 * once, released when its last user goes). Returns the first failure. */
static int unbind_all(struct binds *b)
{
	int r = 0;

	for (size_t i = b->n; i-- > 0;)
		if (umount2(b->path[i], 0) < 0 && umount2(b->path[i], MNT_DETACH) < 0 && r == 0)
			r = negative_errno();
	b->n = 0;
	return r;
}

/* ---- apply: the commands --------------------------------------------------- */

static int run_in_root_stdin(struct run_ctx *ctx, const char *const argv[], const char *stdin_data)
{
	struct exec_opts o = { .env = chroot_env, .root = ctx->root, .stdin_data = stdin_data,
			       .stdin_len = stdin_data ? strlen(stdin_data) : 0 };
	struct exec_result res = { 0 };
	char cmd[512], brief[512];
	int r = exec_run((char *const *)argv, &o, &res);

	exec_format_argv((char *const *)argv, cmd, sizeof(cmd));
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot run '%s' in '%s': %s", cmd, ctx->root, strerror(-r));
	if (res.status != 0)
		r = run_ctx_error(ctx, -EIO, "'%s' failed (exit %d): %s", cmd, res.status,
				  exec_result_brief(&res, brief, sizeof(brief)));
	exec_result_done(&res);
	return r;
}

static int run_in_root(struct run_ctx *ctx, const char *const argv[])
{
	return run_in_root_stdin(ctx, argv, NULL);
}

/* One initramfs per kernel: created where there is none yet, updated
 * otherwise ("-u -k all" would skip a kernel without one). Debian's lvm2
 * hook puts lvm into it: the root is on LVM. */
static int run_initramfs(struct run_ctx *ctx, int rootfd, const struct want *w)
{
	char rel[KVER_MAX + 32];
	int r = 0;

	for (size_t i = 0; r >= 0 && i < w->n_kernels; i++) {
		const char *argv[] = { "/usr/sbin/update-initramfs", "-u", "-k", w->kernels[i], NULL };

		snprintf(rel, sizeof(rel), "boot/initrd.img-%s", w->kernels[i]);
		if (!present(rootfd, rel))
			argv[1] = "-c";
		r = run_in_root(ctx, argv);
	}
	return r;
}

static int run_grub(struct run_ctx *ctx, const struct want *w, bool nvram)
{
	const char *bios[] = { "/usr/sbin/grub-install", "--target=i386-pc", "--recheck", w->disk, NULL };
	const char *efi[] = { "/usr/sbin/grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi",
			      "--bootloader-id=" BOOTLOADER_EFI_ID, nvram ? NULL : "--no-nvram", NULL };
	/* The fallback path EFI/BOOT/BOOTX64.EFI (UEFI spec 2.10, 3.5.1.1),
	 * shim first when shim-signed is there: firmware that lost or never had
	 * our boot entry (OVMF, a reset NVRAM) boots it. */
	const char *removable[] = { "/usr/sbin/grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi",
				    "--removable", "--no-nvram", NULL };
	const char *mkconfig[] = { "/usr/sbin/update-grub", NULL };
	const char *debconf[] = { "/usr/bin/debconf-set-selections", NULL };
	int r = 0;

	if (w->bios)
		r = run_in_root(ctx, bios);
	/* grub.cfg does not depend on the EFI image: made before it, so a
	 * machine whose ESP refuses GRUB still has a complete BIOS boot. */
	if (r >= 0)
		r = run_in_root(ctx, mkconfig);
	/* Debian's grub-efi-amd64 runs grub-install again on every upgrade;
	 * with this it renews the fallback path too, so a shim and GRUB there
	 * never go stale (and revoked by SBAT) under Secure Boot. */
	if (r >= 0 && w->efi)
		r = run_in_root_stdin(ctx, debconf, "grub-efi-amd64 grub2/force_efi_extra_removable boolean true\n");
	if (r >= 0 && w->efi)
		r = run_in_root(ctx, efi);
	if (r >= 0 && w->efi)
		r = run_in_root(ctx, removable);
	return r;
}

static int sync_all(struct run_ctx *ctx, int rootfd, bool efi)
{
	_cleanup_close_ int esp = -1;

	if (syncfs(rootfd) < 0)
		return run_ctx_error(ctx, negative_errno(), "syncing '%s': %m", ctx->root);
	if (!efi)
		return 0;
	esp = openat(rootfd, "boot/efi", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (esp < 0 || syncfs(esp) < 0)
		return run_ctx_error(ctx, negative_errno(), "syncing '%s/boot/efi': %m", ctx->root);
	return 0;
}

static int write_file(struct run_ctx *ctx, int rootfd, const char *path, const char *content, size_t len,
		      bool absent)
{
	_cleanup_(rootfile_set_donep) struct rootfile_set set = { .n = 0 };
	int r = absent ? rootfile_set_absent(&set, path) : rootfile_set_file(&set, path, content, len, 0644, 0755);

	if (r >= 0)
		r = rootfile_apply(rootfd, &set.items[0]);
	return r < 0 ? run_ctx_error(ctx, r, "%s", r == -ENOMEM ? "out of memory" : rootfile_error()) : 0;
}

static void set_result(struct run_ctx *ctx, const struct want *w, bool nvram)
{
	struct json_object *o = json_object_new_object(), *k = json_object_new_array();

	if (!o || !k) {
		json_object_put(o);
		json_object_put(k);
		return;
	}
	for (size_t i = 0; i < w->n_kernels; i++)
		json_array_add(k, json_object_new_string(w->kernels[i]));
	json_add(o, "kernels", k);
	json_add_string(o, "disk", w->disk);
	json_add_bool(o, "efi", w->efi);
	json_add_bool(o, "bios", w->bios);
	json_add_bool(o, "nvram", nvram);
	run_ctx_set_result(ctx, o);
}

static int bootloader_apply(struct run_ctx *ctx, const struct step *s)
{
	const struct bootloader_opts *o = ctx->boot;
	_cleanup_(want_done) struct want w = { 0 };
	_cleanup_close_ int rootfd = -1;
	struct binds b = { .n = 0 };
	bool efivars = false;
	int r, u;

	r = rootfile_open_root(ctx->root, &rootfd);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", rootfile_error());
	r = want_build(ctx, s, rootfd, &w);
	if (r >= 0)
		r = write_file(ctx, rootfd, BOOTLOADER_MARKER, NULL, 0, true);
	if (r >= 0)
		r = write_file(ctx, rootfd, BOOTLOADER_CFG, w.cfg, w.cfg_len, false);
	if (r < 0)
		return r;

	r = bind_all(ctx, rootfd, &b, &efivars);
	if (r >= 0)
		r = run_initramfs(ctx, rootfd, &w);
	if (r >= 0)
		r = run_grub(ctx, &w, efivars && !(o && o->no_nvram));
	u = unbind_all(&b); /* always, whatever happened above */
	if (r < 0)
		return r;
	if (u < 0)
		return run_ctx_error(ctx, u, "cannot unmount the bind mounts below '%s': %s", ctx->root, strerror(-u));

	/* everything on disk before the marker says "done" */
	r = sync_all(ctx, rootfd, w.efi);
	if (r >= 0)
		r = write_file(ctx, rootfd, BOOTLOADER_MARKER, w.marker, w.marker_len, false);
	if (r >= 0)
		set_result(ctx, &w, efivars && !(o && o->no_nvram));
	return r;
}

const struct step_ops bootloader_ops = { .check = bootloader_check, .apply = bootloader_apply };
