/* SPDX-License-Identifier: MIT */
/*
 * target.c — mount and unmount the installed system's file systems (target.h).
 */
#define _GNU_SOURCE
#include "target.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "disk/lvm.h"
#include "parse.h"
#include "util.h"

__attribute__((format(printf, 3, 4))) static int fail(struct target *t, int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	return error;
}


/* The partition number sysfs gives DIR/NAME, or 0. */
static unsigned partition_number(int dirfd, const char *name)
{
	char path[300], buf[32];
	_cleanup_close_ int fd = -1;
	uint64_t n = 0;
	ssize_t len;

	if (snprintf(path, sizeof(path), "%s/partition", name) >= (int)sizeof(path))
		return 0;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return parse_uint64(buf, &n) == 0 && n >= 1 && n <= 4096 ? (unsigned)n : 0;
}

static int find_partition(const char *sysfs, const char *name, unsigned number, char *ret, size_t size)
{
	_cleanup_closedir_ DIR *d = NULL;
	char path[512];
	struct dirent *de;

	if (snprintf(path, sizeof(path), "%s/class/block/%s", sysfs, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, name, strlen(name)) != 0 || partition_number(dirfd(d), de->d_name) != number)
			continue;
		if (snprintf(ret, size, "/dev/%s", de->d_name) >= (int)size)
			return -ENAMETOOLONG;
		return 0;
	}
	return -ENOENT;
}

int target_partition_node(const char *sysfs, const char *disk, unsigned number, unsigned wait_ms, char *ret,
			  size_t size)
{
	const char *name = strrchr(disk, '/') ? strrchr(disk, '/') + 1 : disk;
	struct stat st;
	int r = -ENOENT;

	if (!sysfs)
		sysfs = "/sys";
	for (unsigned waited = 0;; waited += 100) {
		r = find_partition(sysfs, name, number, ret, size);
		/* the kernel has it; devtmpfs makes the node a moment later */
		if (r == 0 && stat(ret, &st) == 0 && S_ISBLK(st.st_mode))
			return 0;
		if (r == -ENAMETOOLONG || waited >= wait_ms)
			return r == 0 ? -ENOENT : r;
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
	}
}

int target_mount(struct target *t, const char *disk, const char *dir)
{
	struct lvm l;
	char esp_dir[300];
	int r;

	*t = (struct target)TARGET_INIT;
	if (snprintf(t->dir, sizeof(t->dir), "%s", dir) >= (int)sizeof(t->dir) ||
	    snprintf(esp_dir, sizeof(esp_dir), "%s/boot/efi", dir) >= (int)sizeof(esp_dir))
		return fail(t, -ENAMETOOLONG, "target directory '%s' is too long", dir);
	r = target_partition_node(NULL, disk, TARGET_PV_PARTITION, 5000, t->pv_dev, sizeof(t->pv_dev));
	if (r >= 0)
		r = target_partition_node(NULL, disk, TARGET_ESP_PARTITION, 5000, t->esp_dev, sizeof(t->esp_dev));
	if (r < 0)
		return fail(t, r, "%s: the kernel shows no partitions %d and %d: %s", disk, TARGET_ESP_PARTITION,
			    TARGET_PV_PARTITION, strerror(-r));
	r = lvm_init(&l, t->pv_dev);
	if (r < 0)
		return fail(t, r, "%s: not usable as an LVM device", t->pv_dev);
	r = lvm_activate_lv(&l, "root");
	if (r == -EOPNOTSUPP)
		return fail(t, r, "this kernel has no device-mapper: the root LV cannot be mounted");
	if (r < 0)
		return fail(t, r, "activating %s/root: %s", LVM_VG, l.errbuf);
	t->lv_active = true;
	snprintf(t->root_dev, sizeof(t->root_dev), "/dev/mapper/%s-root", LVM_VG);
	r = mkdir_p(dir, 0755);
	if (r < 0) {
		fail(t, r, "cannot create '%s': %s", dir, strerror(-r));
		goto undo;
	}
	if (mount(t->root_dev, dir, "ext4", MS_NOATIME, NULL) < 0) {
		r = fail(t, -errno, "cannot mount %s (ext4) on %s: %m", t->root_dev, dir);
		goto undo;
	}
	t->root_mounted = true;
	r = mkdir_p(esp_dir, 0755);
	if (r < 0) {
		fail(t, r, "cannot create '%s': %s", esp_dir, strerror(-r));
		goto undo;
	}
	if (mount(t->esp_dev, esp_dir, "vfat", MS_NOATIME, NULL) < 0) {
		r = fail(t, -errno, "cannot mount %s (vfat) on %s: %m", t->esp_dev, esp_dir);
		goto undo;
	}
	t->esp_mounted = true;
	return 0;
undo:
	{
		char keep[sizeof(t->err)];

		memcpy(keep, t->err, sizeof(keep));
		(void)target_umount(t);
		memcpy(t->err, keep, sizeof(keep));
	}
	return r;
}

static int umount_one(struct target *t, const char *path)
{
	if (umount2(path, 0) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOENT) /* not mounted (any more) */
		return 0;
	return fail(t, -errno, "cannot unmount %s: %m", path);
}

int target_umount(struct target *t)
{
	char esp_dir[300];
	int r = 0, q;

	if (!t->dir[0])
		return 0;
	if (t->root_mounted) {
		_cleanup_close_ int fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0)
			(void)syncfs(fd);
	}
	snprintf(esp_dir, sizeof(esp_dir), "%s/boot/efi", t->dir);
	if (t->esp_mounted) {
		q = umount_one(t, esp_dir);
		if (q == 0)
			t->esp_mounted = false;
		r = r < 0 ? r : q;
	}
	if (t->root_mounted && !t->esp_mounted) {
		q = umount_one(t, t->dir);
		if (q == 0)
			t->root_mounted = false;
		r = r < 0 ? r : q;
	}
	if (t->lv_active && !t->root_mounted) {
		struct lvm l;

		q = lvm_init(&l, t->pv_dev);
		if (q >= 0)
			q = lvm_deactivate(&l);
		if (q < 0 && r == 0)
			r = fail(t, q, "deactivating %s: %s", LVM_VG, l.errbuf);
		if (q >= 0)
			t->lv_active = false;
	}
	return r;
}
