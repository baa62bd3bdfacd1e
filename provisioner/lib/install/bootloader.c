/* SPDX-License-Identifier: MIT */
/*
 * bootloader.c — the bootloader step. See bootloader.h.
 *
 * check() and apply() both start from the same description of the wanted
 * result (struct want: the targets, the disk, the texts of the files, the
 * kernels in /boot and the marker text that records them), so the two can
 * never disagree about what "done" means.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdint.h>
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
#include "efi.h"
#include "exec.h"
#include "grubcfg.h"
#include "initrd.h"
#include "plan/json-util.h"
#include "rootfile.h"
#include "plan/run.h"
#include "util.h"

#define KVER_MAX GRUBCFG_KVER_MAX
#define DISK_PATH_MAX 256u
#define EFIVARS "/sys/firmware/efi/efivars"
#define UNBIND_MAX 8 /* stacked leftovers of killed runs we detach */
#define ESP_PART_MAX 128u /* a GPT's usual number of entries */
#define LINK_DIR "/etc/systemd/network"
#define LINK_MAX (64u << 10) /* a .link file we put into the initramfs */

/* What image/rootfs-boot.sh prepared in the root (paths inside it). */
#define GRUB_PC_DIR "/boot/grub/i386-pc"
#define GRUB_PC_CORE GRUB_PC_DIR "/core.img"
#define GRUB_BIOS_SETUP "/usr/lib/grub/i386-pc/grub-bios-setup"
#define SHIM "/usr/lib/shim/shimx64.efi.signed"
#define SHIM_MM "/usr/lib/shim/mmx64.efi.signed"
#define SHIM_FB "/usr/lib/shim/fbx64.efi.signed"
#define SHIM_CSV "/usr/lib/shim/BOOTX64.CSV"
#define GRUB_SIGNED "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"

/* The ESP as Debian's grub-install --uefi-secure-boot leaves it, with and
 * without --removable (NULL source: the grub.cfg stub). In each directory
 * shim comes last: it never points at a GRUB that is not there yet. */
static const struct {
	const char *esp, *src;
} esp_files[] = {
	{ "EFI/" BOOTLOADER_EFI_ID "/grub.cfg", NULL },
	{ "EFI/" BOOTLOADER_EFI_ID "/grubx64.efi", GRUB_SIGNED },
	{ "EFI/" BOOTLOADER_EFI_ID "/mmx64.efi", SHIM_MM },
	{ "EFI/" BOOTLOADER_EFI_ID "/fbx64.efi", SHIM_FB },
	{ "EFI/" BOOTLOADER_EFI_ID "/BOOTX64.CSV", SHIM_CSV },
	{ "EFI/" BOOTLOADER_EFI_ID "/shimx64.efi", SHIM },
	/* the fallback path (UEFI 2.10, 3.5.1.1): firmware without our boot
	 * entry (OVMF, a reset NVRAM, another machine) boots it; no fbx64.efi
	 * here, or shim would run the fallback tool instead of GRUB */
	{ "EFI/BOOT/grub.cfg", NULL },
	{ "EFI/BOOT/grubx64.efi", GRUB_SIGNED },
	{ "EFI/BOOT/mmx64.efi", SHIM_MM },
	{ "EFI/BOOT/BOOTX64.CSV", SHIM_CSV },
	{ "EFI/BOOT/BOOTX64.EFI", SHIM },
};

/* The chroot's environment: Debian's PATH, no locale surprises, and no
 * debconf question can wait for an answer. */
static char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
static char env_lang[] = "LC_ALL=C";
static char env_home[] = "HOME=/root";
static char env_deb[] = "DEBIAN_FRONTEND=noninteractive";
static char *const chroot_env[] = { env_path, env_lang, env_home, env_deb, NULL };

struct want {
	bool efi, bios;
	const char *disk;      /* borrowed from ctx->disk */
	const char *root_uuid; /* borrowed from the step's parameters */
	unsigned esp_part;
	struct grubcfg_consoles cons;
	char *cfg, *menu, *stub, *marker; /* devopslab.cfg, grub.cfg, the ESP stub, the marker */
	size_t cfg_len, menu_len, stub_len, marker_len;
	char *overlay; /* the node's .link files in front of each initramfs (initrd.h); NULL: none */
	size_t overlay_len;
	char links[INITRD_FILES_MAX][NAME_MAX + 1];
	size_t n_links;
	char kernels[BOOTLOADER_KERNELS_MAX][KVER_MAX + 1];
	size_t n_kernels;
};

static void want_done(struct want *w)
{
	free(w->cfg);
	free(w->menu);
	free(w->stub);
	free(w->marker);
	free(w->overlay);
	*w = (struct want){ 0 };
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

static int read_targets(struct run_ctx *ctx, const struct step *s, struct want *w)
{
	struct json_object *targets = json_get_array(s->params, "targets");

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
	return 0;
}

static int read_params(struct run_ctx *ctx, const struct step *s, struct want *w)
{
	const char *loader = step_param_string(s, "loader");
	const struct disk_step_state *st = ctx->disk;
	uint64_t part = 0;
	int r;

	if (!streq_ptr(loader, "grub"))
		return run_ctx_error(ctx, -EOPNOTSUPP, "step '%s': boot loader '%s' is not supported (only grub)", s->id,
				     loader ? loader : "(none)");
	r = read_targets(ctx, s, w);
	if (r < 0)
		return r;
	w->root_uuid = step_param_string(s, "root_uuid");
	if (!grubcfg_uuid_ok(w->root_uuid))
		return run_ctx_error(ctx, -EINVAL, "step '%s': no root file system UUID (root_uuid) in its parameters",
				     s->id);
	if (step_param_u64(s, "esp_partition", &part) < 0 || part < 1 || part > ESP_PART_MAX)
		return run_ctx_error(ctx, -EINVAL, "step '%s': no ESP partition number (esp_partition)", s->id);
	w->esp_part = (unsigned)part;
	if (!st || isempty(st->target.path))
		return run_ctx_error(ctx, -EINVAL, "step '%s': no target disk (the disk steps have not selected one)",
				     s->id);
	if (strlen(st->target.path) > DISK_PATH_MAX || strchr(st->target.path, '\n'))
		return run_ctx_error(ctx, -EINVAL, "step '%s': unusable target disk path", s->id);
	w->disk = st->target.path;
	return 0;
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

		if (strncmp(de->d_name, "vmlinuz-", 8) != 0 || !grubcfg_kver_ok(de->d_name + 8))
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
	int err;

	if (!f)
		return -ENOMEM;
	fprintf(f, "loader grub\ntargets%s%s\ndisk %s\n", w->efi ? " x86_64-efi" : "", w->bios ? " i386-pc" : "",
		w->disk);
	for (size_t i = 0; i < w->n_kernels; i++)
		fprintf(f, "kernel %s\n", w->kernels[i]);
	err = ferror(f);
	return fclose(f) != 0 || err ? -ENOMEM : 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The names of the .link files in the target's /etc/systemd/network, the
 * ones Debian's udev initramfs hook copies ("*.link*"), sorted. */
static int find_links(struct run_ctx *ctx, int rootfd, struct want *w)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd = openat(rootfd, &LINK_DIR[1], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot open '%s" LINK_DIR "': %m", ctx->root);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strstr(de->d_name, ".link") || strlen(de->d_name) > NAME_MAX)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (w->n_links >= INITRD_FILES_MAX)
			return run_ctx_error(ctx, -E2BIG, "more than %u .link files in '%s" LINK_DIR "'",
					     INITRD_FILES_MAX, ctx->root);
		snprintf(w->links[w->n_links++], NAME_MAX + 1, "%s", de->d_name);
	}
	qsort(w->links, w->n_links, sizeof(w->links[0]), cmp_name);
	return 0;
}

/* The initramfs overlay of the .link files (none without any). */
static int make_overlay(struct run_ctx *ctx, int rootfd, struct want *w)
{
	char *data[INITRD_FILES_MAX] = { NULL };
	struct initrd_file files[INITRD_FILES_MAX];
	char path[sizeof(LINK_DIR) + NAME_MAX + 1];
	int r = 0;

	for (size_t i = 0; r >= 0 && i < w->n_links; i++) {
		snprintf(path, sizeof(path), LINK_DIR "/%s", w->links[i]);
		files[i] = (struct initrd_file){ .name = w->links[i] };
		r = rootfile_read(rootfd, path, LINK_MAX, &data[i], &files[i].len);
		if (r < 0)
			r = run_ctx_error(ctx, r, "%s", r == -ENOMEM ? "out of memory" : rootfile_error());
		files[i].data = data[i];
	}
	if (r >= 0 && w->n_links > 0) {
		r = initrd_overlay(files, w->n_links, &w->overlay, &w->overlay_len);
		if (r < 0)
			r = run_ctx_error(ctx, r, "cannot put the .link files of '%s" LINK_DIR "' into an initramfs: %s",
					  ctx->root, strerror(-r));
	}
	for (size_t i = 0; i < w->n_links; i++)
		free(data[i]);
	return r;
}

static int make_texts(struct want *w)
{
	const char *k[BOOTLOADER_KERNELS_MAX];
	int r;

	for (size_t i = 0; i < w->n_kernels; i++)
		k[i] = w->kernels[i];
	r = grubcfg_defaults(&w->cons, &w->cfg, &w->cfg_len);
	if (r >= 0)
		r = grubcfg_menu(&w->cons, w->root_uuid, k, w->n_kernels, &w->menu, &w->menu_len);
	if (r >= 0)
		r = grubcfg_stub(w->root_uuid, &w->stub, &w->stub_len);
	if (r >= 0)
		r = make_marker(w);
	return r;
}

static int want_build(struct run_ctx *ctx, const struct step *s, int rootfd, struct want *w)
{
	_cleanup_free_ char *cmdline = NULL;
	int r;

	r = read_params(ctx, s, w);
	if (r >= 0)
		r = read_cmdline(ctx, &cmdline);
	if (r >= 0)
		r = find_kernels(ctx, rootfd, w);
	if (r >= 0)
		r = find_links(ctx, rootfd, w);
	if (r >= 0)
		r = make_overlay(ctx, rootfd, w);
	if (r < 0)
		return r;
	grubcfg_consoles(cmdline, &w->cons);
	r = make_texts(w);
	return r < 0 ? run_ctx_error(ctx, r, "step '%s': cannot make GRUB's configuration: %s", s->id, strerror(-r))
		     : 0;
}

/* ---- check ------------------------------------------------------------------ */

/* A non-empty regular file at rel below dirfd, never leaving its file
 * system or following a symlink. */
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

/* The bytes an ESP file must hold: the stub, or its source in the root. */
static int esp_content(struct run_ctx *ctx, int rootfd, const struct want *w, size_t i, char **ret, size_t *ret_len)
{
	int r;

	if (!esp_files[i].src) {
		*ret = strdup(w->stub);
		*ret_len = w->stub_len;
		return *ret ? 0 : run_ctx_error(ctx, -ENOMEM, "out of memory");
	}
	r = rootfile_read(rootfd, esp_files[i].src, EFI_FILE_MAX, ret, ret_len);
	if (r == -ENOENT)
		return run_ctx_error(ctx, r, "the root file system has no '%s' (packages shim-signed, "
					     "grub-efi-amd64-signed)", esp_files[i].src);
	return r < 0 ? run_ctx_error(ctx, r, "%s", r == -ENOMEM ? "out of memory" : rootfile_error()) : 0;
}

static int esp_done(struct run_ctx *ctx, int rootfd, const struct want *w, bool *ret)
{
	_cleanup_close_ int esp = -1;
	int r = efi_esp_open(rootfd, false, &esp);

	*ret = false;
	if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP)
		return 0;
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot open '%s/" EFI_ESP_DIR "': %s", ctx->root, strerror(-r));
	for (size_t i = 0; i < ELEMENTSOF(esp_files); i++) {
		_cleanup_free_ char *want = NULL;
		size_t len = 0;
		bool same = false;

		r = esp_content(ctx, rootfd, w, i, &want, &len);
		if (r < 0)
			return r;
		r = efi_file_same(esp, esp_files[i].esp, want, len, &same);
		if (r < 0)
			return run_ctx_error(ctx, r, "cannot read '%s/" EFI_ESP_DIR "/%s': %s", ctx->root,
					     esp_files[i].esp, strerror(-r));
		if (!same)
			return 0;
	}
	*ret = true;
	return 0;
}

static int open_boot(struct run_ctx *ctx, int rootfd, int *ret_fd)
{
	int fd = openat(rootfd, "boot", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return run_ctx_error(ctx, negative_errno(), "cannot open '%s/boot': %m", ctx->root);
	*ret_fd = fd;
	return 0;
}

/* Every initramfs starts with exactly the node's overlay (or none). With
 * fix, rewrite those that do not. */
static int initrds_overlay(struct run_ctx *ctx, int rootfd, const struct want *w, bool fix, bool *ret)
{
	_cleanup_close_ int boot = -1;
	char name[KVER_MAX + 16];
	int r = open_boot(ctx, rootfd, &boot);

	*ret = true;
	for (size_t i = 0; r >= 0 && i < w->n_kernels; i++) {
		bool same = false;

		snprintf(name, sizeof(name), "initrd.img-%s", w->kernels[i]);
		r = initrd_check(boot, name, w->overlay, w->overlay_len, &same);
		if (r >= 0 && !same && fix)
			r = initrd_apply(boot, name, w->overlay, w->overlay_len);
		else if (r >= 0 && !same)
			*ret = false;
		if (r < 0)
			r = run_ctx_error(ctx, r, "cannot %s the node's files in '%s/boot/%s': %s",
					  fix ? "put" : "look for", ctx->root, name, strerror(-r));
	}
	return r;
}

static int initrds_done(struct run_ctx *ctx, int rootfd, const struct want *w, bool *ret)
{
	return initrds_overlay(ctx, rootfd, w, false, ret);
}

static int artefacts_present(struct run_ctx *ctx, int rootfd, const struct want *w, bool *ret)
{
	char rel[KVER_MAX + 32];
	bool ok = true;
	int r = 0;

	for (size_t i = 0; ok && i < w->n_kernels; i++) {
		snprintf(rel, sizeof(rel), "boot/initrd.img-%s", w->kernels[i]);
		ok = present(rootfd, rel);
	}
	if (ok)
		r = initrds_done(ctx, rootfd, w, &ok);
	if (r >= 0 && ok && w->bios) {
		ok = present(rootfd, &GRUB_PC_CORE[1]);
		if (ok)
			r = sector0_has_grub(ctx, w->disk, &ok);
	}
	if (r >= 0 && ok && w->efi)
		r = esp_done(ctx, rootfd, w, &ok);
	*ret = ok;
	return r;
}

static int file_same(struct run_ctx *ctx, int rootfd, const char *path, const char *content, size_t len,
		     mode_t mode, bool *ret)
{
	_cleanup_(rootfile_set_donep) struct rootfile_set set = { .n = 0 };
	int r = rootfile_set_file(&set, path, content, len, mode, 0755);

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
	r = file_same(ctx, rootfd, BOOTLOADER_MARKER, w.marker, w.marker_len, 0644, &same);
	if (r >= 0 && same)
		r = file_same(ctx, rootfd, BOOTLOADER_CFG, w.cfg, w.cfg_len, 0644, &same);
	if (r >= 0 && same)
		r = file_same(ctx, rootfd, BOOTLOADER_GRUB_CFG, w.menu, w.menu_len, 0600, &same);
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

/* argv in the root; with ret_out, its stdout (malloc'd) on success. */
static int run_in_root(struct run_ctx *ctx, const char *const argv[], char **ret_out)
{
	struct exec_opts o = { .env = chroot_env, .root = ctx->root };
	struct exec_result res = { 0 };
	char cmd[512], brief[512];
	int r = exec_run((char *const *)argv, &o, &res);

	exec_format_argv((char *const *)argv, cmd, sizeof(cmd));
	if (r < 0)
		r = run_ctx_error(ctx, r, "cannot run '%s' in '%s': %s", cmd, ctx->root, strerror(-r));
	else if (res.status != 0)
		r = run_ctx_error(ctx, -EIO, "'%s' failed (exit %d): %s", cmd, res.status,
				  exec_result_brief(&res, brief, sizeof(brief)));
	else if (ret_out)
		*ret_out = TAKE_PTR(res.out);
	exec_result_done(&res);
	return r;
}

/* An initramfs only for a kernel that has none: image/rootfs-boot.sh made
 * a generic one for every kernel of the root file system, so normally
 * nothing runs here (update-initramfs alone took minutes under TCG). */
static int run_initramfs(struct run_ctx *ctx, int rootfd, const struct want *w, struct json_object *made)
{
	char rel[KVER_MAX + 32];
	int r = 0;

	for (size_t i = 0; r >= 0 && i < w->n_kernels; i++) {
		const char *argv[] = { "/usr/sbin/update-initramfs", "-c", "-k", w->kernels[i], NULL };

		snprintf(rel, sizeof(rel), "boot/initrd.img-%s", w->kernels[i]);
		if (present(rootfd, rel))
			continue;
		r = run_in_root(ctx, argv, NULL);
		if (r >= 0)
			json_array_add(made, json_object_new_string(w->kernels[i]));
	}
	return r;
}

/* boot.img into the first sector (the partition table kept), core.img
 * into the BIOS boot partition, both as image/rootfs-boot.sh made them. */
static int run_bios(struct run_ctx *ctx, const struct want *w)
{
	const char *argv[] = { GRUB_BIOS_SETUP, "--directory=" GRUB_PC_DIR, w->disk, NULL };

	return run_in_root(ctx, argv, NULL);
}

/* As grub-install does: every entry labelled BOOTLOADER_EFI_ID removed,
 * then ours added first in the boot order, pointing at shim. */
static int run_nvram(struct run_ctx *ctx, const struct want *w)
{
	const char *list[] = { "/usr/bin/efibootmgr", NULL };
	unsigned nums[EFI_ENTRIES_MAX];
	_cleanup_free_ char *out = NULL;
	char num[8], part[16];
	size_t n = 0;
	int r;

	r = run_in_root(ctx, list, &out);
	if (r < 0)
		return r;
	r = efi_boot_entries(out, BOOTLOADER_EFI_ID, nums, ELEMENTSOF(nums), &n);
	if (r < 0)
		return run_ctx_error(ctx, r, "more than %u firmware boot entries named '" BOOTLOADER_EFI_ID "'",
				     EFI_ENTRIES_MAX);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		const char *del[] = { "/usr/bin/efibootmgr", "-q", "-b", num, "-B", NULL };

		snprintf(num, sizeof(num), "%04X", nums[i]);
		r = run_in_root(ctx, del, NULL);
	}
	snprintf(part, sizeof(part), "%u", w->esp_part);
	if (r >= 0) {
		const char *add[] = { "/usr/bin/efibootmgr", "-q", "-c", "-d", w->disk, "-p", part, "-w",
				      "-L", BOOTLOADER_EFI_ID, "-l", "\\EFI\\" BOOTLOADER_EFI_ID "\\shimx64.efi", NULL };

		r = run_in_root(ctx, add, NULL);
	}
	return r;
}

/* ---- apply: the files -------------------------------------------------------- */

static int write_file(struct run_ctx *ctx, int rootfd, const char *path, const char *content, size_t len,
		      mode_t mode, bool absent)
{
	_cleanup_(rootfile_set_donep) struct rootfile_set set = { .n = 0 };
	int r = absent ? rootfile_set_absent(&set, path) : rootfile_set_file(&set, path, content, len, mode, 0755);

	if (r >= 0)
		r = rootfile_apply(rootfd, &set.items[0]);
	return r < 0 ? run_ctx_error(ctx, r, "%s", r == -ENOMEM ? "out of memory" : rootfile_error()) : 0;
}

/* Everything apply() needs from the root file system and the mounts, so
 * that a root not built by image/rootfs.sh, or an ESP not mounted, is
 * refused before anything is written. */
static int preflight(struct run_ctx *ctx, int rootfd, const struct want *w, int *ret_esp)
{
	static const char *const bios[] = { GRUB_PC_CORE, GRUB_PC_DIR "/boot.img", GRUB_BIOS_SETUP };
	int r;

	for (size_t i = 0; w->bios && i < ELEMENTSOF(bios); i++)
		if (!present(rootfd, bios[i] + 1))
			return run_ctx_error(ctx, -ENOENT, "the root file system has no '%s' (made by "
						     "image/rootfs-boot.sh: rebuild it with image/rootfs.sh)", bios[i]);
	for (size_t i = 0; w->efi && i < ELEMENTSOF(esp_files); i++)
		if (esp_files[i].src && !present(rootfd, esp_files[i].src + 1))
			return run_ctx_error(ctx, -ENOENT, "the root file system has no '%s' (packages "
						     "shim-signed, grub-efi-amd64-signed)", esp_files[i].src);
	if (!w->efi)
		return 0;
	r = efi_esp_open(rootfd, true, ret_esp);
	if (r == -EXDEV)
		return run_ctx_error(ctx, r, "'%s/" EFI_ESP_DIR "' is not a mount point: the ESP is not mounted",
				     ctx->root);
	return r < 0 ? run_ctx_error(ctx, r, "cannot open '%s/" EFI_ESP_DIR "': %s", ctx->root, strerror(-r)) : 0;
}

static int write_esp(struct run_ctx *ctx, int rootfd, int esp, const struct want *w)
{
	int r;

	for (size_t i = 0; i < ELEMENTSOF(esp_files); i++) {
		_cleanup_free_ char *data = NULL;
		size_t len = 0;

		r = esp_content(ctx, rootfd, w, i, &data, &len);
		if (r < 0)
			return r;
		r = efi_file_write(esp, esp_files[i].esp, data, len);
		if (r < 0)
			return run_ctx_error(ctx, r, "cannot write '%s/" EFI_ESP_DIR "/%s': %s", ctx->root,
					     esp_files[i].esp, strerror(-r));
	}
	return syncfs(esp) < 0 ? run_ctx_error(ctx, negative_errno(), "syncing '%s/" EFI_ESP_DIR "': %m", ctx->root)
			       : 0;
}

static void set_result(struct run_ctx *ctx, const struct want *w, bool nvram, struct json_object *made)
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
	json_add(o, "initramfs_made", json_object_get(made));
	k = json_object_new_array();
	for (size_t i = 0; k && i < w->n_links; i++)
		json_array_add(k, json_object_new_string(w->links[i]));
	json_add(o, "initramfs_node_files", k);
	json_add_string(o, "disk", w->disk);
	json_add_bool(o, "efi", w->efi);
	json_add_bool(o, "bios", w->bios);
	json_add_bool(o, "nvram", nvram);
	run_ctx_set_result(ctx, o);
}

/* Steps 5-8 of bootloader.h, with the binds in place. */
static int install_all(struct run_ctx *ctx, int rootfd, int esp, const struct want *w, bool nvram,
		   struct json_object *made)
{
	int r;

	bool same;

	r = run_initramfs(ctx, rootfd, w, made);
	if (r >= 0)
		r = initrds_overlay(ctx, rootfd, w, true, &same);
	if (r >= 0 && w->bios)
		r = run_bios(ctx, w);
	/* grub.cfg before the EFI part: a machine whose ESP refuses still
	 * has a complete BIOS boot */
	if (r >= 0)
		r = write_file(ctx, rootfd, BOOTLOADER_GRUB_CFG, w->menu, w->menu_len, 0600, false);
	if (r >= 0 && w->efi)
		r = write_esp(ctx, rootfd, esp, w);
	if (r >= 0 && w->efi && nvram)
		r = run_nvram(ctx, w);
	return r;
}

static int bootloader_apply(struct run_ctx *ctx, const struct step *s)
{
	const struct bootloader_opts *o = ctx->boot;
	_cleanup_(want_done) struct want w = { 0 };
	_cleanup_(json_object_putp) struct json_object *made = NULL;
	_cleanup_close_ int rootfd = -1, esp = -1;
	struct binds b = { .n = 0 };
	bool efivars = false, nvram;
	int r, u;

	r = rootfile_open_root(ctx->root, &rootfd);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", rootfile_error());
	made = json_object_new_array();
	if (!made)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	r = want_build(ctx, s, rootfd, &w);
	if (r >= 0)
		r = write_file(ctx, rootfd, BOOTLOADER_MARKER, NULL, 0, 0, true);
	if (r >= 0)
		r = write_file(ctx, rootfd, BOOTLOADER_CFG, w.cfg, w.cfg_len, 0644, false);
	if (r >= 0)
		r = preflight(ctx, rootfd, &w, &esp);
	if (r < 0)
		return r;

	r = bind_all(ctx, rootfd, &b, &efivars);
	nvram = efivars && !(o && o->no_nvram);
	if (r >= 0)
		r = install_all(ctx, rootfd, esp, &w, nvram, made);
	u = unbind_all(&b); /* always, whatever happened above */
	if (r < 0)
		return r;
	if (u < 0)
		return run_ctx_error(ctx, u, "cannot unmount the bind mounts below '%s': %s", ctx->root, strerror(-u));

	/* everything on disk before the marker says "done" */
	if (syncfs(rootfd) < 0)
		return run_ctx_error(ctx, negative_errno(), "syncing '%s': %m", ctx->root);
	r = write_file(ctx, rootfd, BOOTLOADER_MARKER, w.marker, w.marker_len, 0644, false);
	if (r >= 0)
		set_result(ctx, &w, nvram, made);
	return r;
}

const struct step_ops bootloader_ops = { .check = bootloader_check, .apply = bootloader_apply };
