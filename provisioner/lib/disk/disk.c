/* SPDX-License-Identifier: MIT */
/*
 * disk.c — discovery. The facts come from where lsblk(8) takes them: sysfs
 * (/sys/block/NAME: size, queue/{logical,physical}_block_size, removable, the device link
 * for the transport), the udev database (/run/udev/data/bMAJ:MIN: serial,
 * WWN, by-id links) and libblkid for the contents. Everything is read-only:
 * disks are opened O_RDONLY|O_CLOEXEC and never written here.
 */
#define _GNU_SOURCE
#include "disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>

#include "blkid-util.h"
#include "errbuf.h"
#include "util.h"

#define ATTR_MAX 4096


static struct errbuf err;
#define failf(...) errbuf_setf(&err, __VA_ARGS__)

const char *disk_errbuf(void)
{
	return err.msg;
}

static const char *const transport_names[_DISK_TRANSPORT_MAX] = {
	[DISK_TRANSPORT_UNKNOWN] = "unknown", [DISK_TRANSPORT_NVME] = "nvme", [DISK_TRANSPORT_SATA] = "sata",
	[DISK_TRANSPORT_USB] = "usb",         [DISK_TRANSPORT_VIRTIO] = "virtio", [DISK_TRANSPORT_MMC] = "mmc",
	[DISK_TRANSPORT_SCSI] = "scsi",       [DISK_TRANSPORT_LOOP] = "loop",   [DISK_TRANSPORT_FILE] = "file",
};

const char *disk_transport_name(enum disk_transport t)
{
	return t < _DISK_TRANSPORT_MAX ? transport_names[t] : "unknown";
}

static const char *opt_root(const char *v, const char *def)
{
	return isempty(v) ? def : v;
}

/* Read a small sysfs/proc attribute, trailing whitespace stripped. */
static char *read_attr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *read_attr(const char *fmt, ...)
{
	char path[PATH_MAX], buf[ATTR_MAX];
	va_list ap;
	ssize_t n;
	int fd;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	return strdup(buf);
}

static bool parse_u64(const char *s, uint64_t *ret)
{
	char *end;

	if (isempty(s) || *s == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

static uint64_t attr_u64(uint64_t def, const char *sysfs, const char *name, const char *attr)
{
	_cleanup_free_ char *s = read_attr("%s/block/%s/%s", sysfs, name, attr);
	uint64_t v;

	return s && parse_u64(s, &v) ? v : def;
}

static dev_t parse_devnum(const char *s)
{
	unsigned maj, min;

	if (!s || sscanf(s, "%u:%u", &maj, &min) != 2)
		return 0;
	return makedev(maj, min);
}

/* ---- udev database -------------------------------------------------------- */

/* Value of "E:KEY=" in the udev database record, or NULL. */
static char *udev_prop(const char *db, dev_t devnum, const char *key)
{
	_cleanup_free_ char *data = read_attr("%s/b%u:%u", db, major(devnum), minor(devnum));
	size_t kl = strlen(key);

	for (const char *p = data; p && *p;) {
		const char *e = strchrnul(p, '\n');
		if (strncmp(p, "E:", 2) == 0 && strncmp(p + 2, key, kl) == 0 && p[2 + kl] == '=')
			return strndup(p + 3 + kl, (size_t)(e - (p + 3 + kl)));
		p = *e ? e + 1 : e;
	}
	return NULL;
}

/* ---- string lists ----------------------------------------------------------- */

static int strv_add(char ***v, size_t *n, const char *s, size_t max)
{
	for (size_t i = 0; i < *n; i++)
		if (streq((*v)[i], s))
			return 0;
	if (*n >= max)
		return 0;
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* by-id names: the /dev/disk/by-id links that resolve to /dev/NAME. */
static int probe_by_id(struct disk *d, const char *dev)
{
	char dir[PATH_MAX];
	_cleanup_closedir_ DIR *dh = NULL;
	struct dirent *de;
	int r;

	snprintf(dir, sizeof(dir), "%s/disk/by-id", dev);
	dh = opendir(dir);
	if (!dh)
		return 0;
	while ((de = readdir(dh))) {
		char link[PATH_MAX + 512], target[PATH_MAX];
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		const char *base = strrchr(target, '/');
		if (!streq(base ? base + 1 : target, d->name))
			continue;
		r = strv_add(&d->by_id, &d->n_by_id, de->d_name, DISK_MAX_BY_ID);
		if (r < 0)
			return r;
	}
	if (d->n_by_id)
		qsort(d->by_id, d->n_by_id, sizeof(char *), cmp_str);
	return 0;
}

/* ---- sysfs ------------------------------------------------------------------ */

/* The transport from the device's place in the sysfs tree, as lsblk's TRAN
 * does: /sys/block/NAME links into .../nvme/..., .../usbN/..., .../ataN/... */
static enum disk_transport probe_transport(const char *sysfs, const char *name)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	if (strncmp(name, "loop", 4) == 0)
		return DISK_TRANSPORT_LOOP;
	if (strncmp(name, "mmcblk", 6) == 0)
		return DISK_TRANSPORT_MMC;
	snprintf(path, sizeof(path), "%s/block/%s", sysfs, name);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return DISK_TRANSPORT_UNKNOWN;
	target[n] = '\0';
	if (strstr(target, "/nvme/") || strncmp(name, "nvme", 4) == 0)
		return DISK_TRANSPORT_NVME;
	if (strstr(target, "/usb"))
		return DISK_TRANSPORT_USB;
	if (strstr(target, "/virtio"))
		return DISK_TRANSPORT_VIRTIO;
	if (strstr(target, "/mmc_host/"))
		return DISK_TRANSPORT_MMC;
	if (strstr(target, "/ata"))
		return DISK_TRANSPORT_SATA;
	if (strstr(target, "/host"))
		return DISK_TRANSPORT_SCSI;
	return DISK_TRANSPORT_UNKNOWN;
}

static int part_cmp(const void *a, const void *b)
{
	const struct disk_part *x = a, *y = b;
	return x->number < y->number ? -1 : x->number > y->number;
}

/* Partitions the kernel knows: /sys/block/NAME/NAMEpN/partition. */
static int probe_sysfs_parts(struct disk *d, const char *sysfs)
{
	char dir[PATH_MAX];
	_cleanup_closedir_ DIR *dh = NULL;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/block/%s", sysfs, d->name);
	dh = opendir(dir);
	if (!dh)
		return 0;
	while ((de = readdir(dh))) {
		_cleanup_free_ char *num = NULL, *dev = NULL;
		uint64_t v;

		if (strncmp(de->d_name, d->name, strlen(d->name)) != 0)
			continue;
		num = read_attr("%s/%s/partition", dir, de->d_name);
		if (!num || !parse_u64(num, &v) || d->n_parts >= DISK_MAX_PARTS)
			continue;
		struct disk_part *np = realloc(d->parts, (d->n_parts + 1) * sizeof(*np));
		if (!np)
			return -ENOMEM;
		d->parts = np;
		struct disk_part *p = &np[d->n_parts++];
		*p = (struct disk_part){ .number = (unsigned)v };
		p->devname = strdup(de->d_name);
		if (!p->devname)
			return -ENOMEM;
		dev = read_attr("%s/%s/dev", dir, de->d_name);
		p->devnum = parse_devnum(dev);
		free(num);
		num = read_attr("%s/%s/start", dir, de->d_name);
		if (num && parse_u64(num, &v))
			p->start = v * 512;
		free(num);
		num = read_attr("%s/%s/size", dir, de->d_name);
		if (num && parse_u64(num, &v))
			p->size = v * 512;
	}
	if (d->n_parts)
		qsort(d->parts, d->n_parts, sizeof(*d->parts), part_cmp);
	return 0;
}

static int probe_sysfs(struct disk *d, const struct disk_probe_opts *o)
{
	const char *sysfs = opt_root(o->sysfs, "/sys"), *db = opt_root(o->udev_db, "/run/udev/data");
	_cleanup_free_ char *dev = read_attr("%s/block/%s/dev", sysfs, d->name);

	d->devnum = parse_devnum(dev);
	d->size = attr_u64(0, sysfs, d->name, "size") * 512;
	d->logical_sector = (uint32_t)attr_u64(512, sysfs, d->name, "queue/logical_block_size");
	d->physical_sector = (uint32_t)attr_u64(d->logical_sector, sysfs, d->name, "queue/physical_block_size");
	d->removable = attr_u64(0, sysfs, d->name, "removable") != 0;
	d->rotational = attr_u64(0, sysfs, d->name, "queue/rotational") != 0;
	d->readonly = attr_u64(0, sysfs, d->name, "ro") != 0;
	d->transport = probe_transport(sysfs, d->name);
	/* udev's view first (it knows ATA serials); sysfs as the fallback */
	d->model = udev_prop(db, d->devnum, "ID_MODEL");
	if (!d->model)
		d->model = read_attr("%s/block/%s/device/model", sysfs, d->name);
	d->serial = udev_prop(db, d->devnum, "ID_SERIAL_SHORT");
	if (!d->serial)
		d->serial = read_attr("%s/block/%s/device/serial", sysfs, d->name);
	d->wwn = udev_prop(db, d->devnum, "ID_WWN");
	if (!d->wwn)
		d->wwn = read_attr("%s/block/%s/device/wwid", sysfs, d->name);
	if (!d->wwn)
		d->wwn = read_attr("%s/block/%s/wwid", sysfs, d->name);
	if (d->transport == DISK_TRANSPORT_LOOP)
		d->backing_file = read_attr("%s/block/%s/loop/backing_file", sysfs, d->name);
	/* empty attributes are absent ones */
	char **strs[] = { &d->model, &d->serial, &d->wwn, &d->backing_file };
	for (size_t i = 0; i < ELEMENTSOF(strs); i++)
		if (*strs[i] && !**strs[i]) {
			free(*strs[i]);
			*strs[i] = NULL;
		}
	return probe_sysfs_parts(d, sysfs);
}

/* ---- libblkid ----------------------------------------------------------------- */

static int sig_set(struct disk_sig *s, blkid_probe pr, const char *type_key)
{
	const char *v;

	if (blkid_probe_lookup_value(pr, type_key, &v, NULL) == 0 && !(s->type = strdup(v)))
		return -ENOMEM;
	if (blkid_probe_lookup_value(pr, "LABEL", &v, NULL) == 0 && !(s->label = strdup(v)))
		return -ENOMEM;
	if (blkid_probe_lookup_value(pr, "UUID", &v, NULL) == 0 && !(s->uuid = strdup(v)))
		return -ENOMEM;
	return 0;
}

/* Every whole-disk signature, as wipefs lists them: blkid_do_probe()
 * steps through all of them, not only the first. */
static int probe_disk_sigs(struct disk *d, int fd)
{
	_cleanup_blkid_probe_ blkid_probe pr = blkid_new_probe();
	int r;

	if (!pr || blkid_probe_set_device(pr, fd, 0, 0) < 0)
		return -ENOMEM;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_FORCE_GPT);
	while ((r = blkid_do_probe(pr)) == 0) {
		const char *v;
		if (blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0) {
			if (!d->pttype && !(d->pttype = strdup(v)))
				return -ENOMEM;
			if (!d->ptuuid && blkid_probe_lookup_value(pr, "PTUUID", &v, NULL) == 0 &&
			    !(d->ptuuid = strdup(v)))
				return -ENOMEM;
			continue;
		}
		if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) != 0 || d->n_sigs >= 16)
			continue;
		struct disk_sig *ns = realloc(d->sigs, (d->n_sigs + 1) * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		d->sigs = ns;
		ns[d->n_sigs] = (struct disk_sig){ 0 };
		r = sig_set(&ns[d->n_sigs++], pr, "TYPE");
		if (r < 0)
			return r;
	}
	return 0;
}

static struct disk_part *find_part(struct disk *d, unsigned number)
{
	for (size_t i = 0; i < d->n_parts; i++)
		if (d->parts[i].number == number)
			return &d->parts[i];
	return NULL;
}

/* What is inside one partition: a probe limited to its byte range. */
static int probe_part_content(struct disk_part *p, int fd)
{
	_cleanup_blkid_probe_ blkid_probe pr = blkid_new_probe();

	if (!pr)
		return -ENOMEM;
	if (blkid_probe_set_device(pr, fd, (blkid_loff_t)p->start, (blkid_loff_t)p->size) < 0)
		return 0;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID);
	if (blkid_do_safeprobe(pr) != 0)
		return 0;
	return sig_set(&p->sig, pr, "TYPE");
}

/* The partition table as libblkid reads it from the disk itself (the
 * kernel's view in sysfs may be stale, and an image file has none). */
static int probe_parts(struct disk *d, int fd)
{
	_cleanup_blkid_probe_ blkid_probe pr = blkid_new_probe();
	blkid_partlist pl;
	int n, r;

	if (!pr || blkid_probe_set_device(pr, fd, 0, 0) < 0)
		return -ENOMEM;
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS | BLKID_PARTS_FORCE_GPT);
	pl = blkid_probe_get_partitions(pr);
	n = pl ? blkid_partlist_numof_partitions(pl) : 0;
	for (int i = 0; i < n && i < DISK_MAX_PARTS; i++) {
		blkid_partition bp = blkid_partlist_get_partition(pl, i);
		unsigned num = (unsigned)blkid_partition_get_partno(bp);
		struct disk_part *p = find_part(d, num);
		const char *v;

		if (!p) {
			struct disk_part *np = realloc(d->parts, (d->n_parts + 1) * sizeof(*np));
			if (!np)
				return -ENOMEM;
			d->parts = np;
			p = &np[d->n_parts++];
			*p = (struct disk_part){ .number = num };
		}
		p->start = (uint64_t)blkid_partition_get_start(bp) * 512;
		p->size = (uint64_t)blkid_partition_get_size(bp) * 512;
		free(p->type), free(p->name), free(p->uuid);
		p->type = p->name = p->uuid = NULL;
		if ((v = blkid_partition_get_type_string(bp)))
			p->type = strdup(v);
		else if (asprintf(&p->type, "0x%x", (unsigned)blkid_partition_get_type(bp)) < 0)
			p->type = NULL;
		if ((v = blkid_partition_get_name(bp)) && *v)
			p->name = strdup(v);
		if ((v = blkid_partition_get_uuid(bp)))
			p->uuid = strdup(v);
		if (!p->type)
			return -ENOMEM;
	}
	if (d->n_parts)
		qsort(d->parts, d->n_parts, sizeof(*d->parts), part_cmp);
	for (size_t i = 0; i < d->n_parts; i++) {
		r = probe_part_content(&d->parts[i], fd);
		if (r < 0)
			return r;
	}
	return 0;
}

static int probe_contents(struct disk *d)
{
	_cleanup_close_ int fd = open(d->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int r;

	if (fd < 0)
		return 0; /* no medium, or no node: 'probed' stays false */
	r = probe_disk_sigs(d, fd);
	if (r < 0)
		return r;
	r = probe_parts(d, fd);
	if (r < 0)
		return r;
	d->probed = true;
	return 0;
}

/* ---- in use ------------------------------------------------------------------- */

enum use { USE_MOUNTED, USE_BOOT, USE_SWAP, USE_HELD };

static void set_use(struct disk *d, enum use u, const char *what, const char *detail)
{
	switch (u) {
	case USE_MOUNTED: d->mounted = true; break;
	case USE_BOOT: d->boot = d->mounted = true; break;
	case USE_SWAP: d->swap = true; break;
	case USE_HELD: d->held = true; break;
	}
	/* the boot medium is the reason that matters most */
	if (d->in_use && !(u == USE_BOOT && !strstr(d->in_use, "boot")))
		return;
	free(d->in_use);
	if (asprintf(&d->in_use, "%s %s%s", what, detail,
		     u == USE_BOOT ? " (the running system's boot medium)" : "") < 0)
		d->in_use = NULL;
}

/* Mark the disk that holds devnum; follow device-mapper/md slaves and loop
 * backing files down to the disks underneath (depth-limited). */
static void mark_dev(struct disk_list *l, const char *sysfs, dev_t devnum, enum use u, const char *detail,
		     unsigned depth)
{
	char dir[PATH_MAX], what[128];
	struct stat st;

	if (!devnum || depth > 8)
		return;
	for (size_t i = 0; i < l->n; i++) {
		struct disk *d = &l->disks[i];
		if (d->devnum == devnum) {
			snprintf(what, sizeof(what), "%s is", d->name);
			set_use(d, u, what, detail);
			return;
		}
		for (size_t j = 0; j < d->n_parts; j++)
			if (d->parts[j].devnum == devnum) {
				snprintf(what, sizeof(what), "partition %s is", d->parts[j].devname);
				set_use(d, u, what, detail);
				return;
			}
	}
	snprintf(dir, sizeof(dir), "%s/dev/block/%u:%u/slaves", sysfs, major(devnum), minor(devnum));
	_cleanup_closedir_ DIR *dh = opendir(dir);
	for (struct dirent *de; dh && (de = readdir(dh));) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *dev = read_attr("%s/%s/dev", dir, de->d_name);
		mark_dev(l, sysfs, parse_devnum(dev), u, detail, depth + 1);
	}
	_cleanup_free_ char *backing =
		read_attr("%s/dev/block/%u:%u/loop/backing_file", sysfs, major(devnum), minor(devnum));
	if (backing && stat(backing, &st) == 0)
		mark_dev(l, sysfs, st.st_dev, u, detail, depth + 1);
}

static bool is_boot_mountpoint(const char *m)
{
	static const char *const boot[] = { "/", "/boot", "/boot/efi", "/efi", "/run/live/medium", "/cdrom",
					    "/run/initramfs/live", "/lib/live/mount/medium" };
	for (size_t i = 0; i < ELEMENTSOF(boot); i++)
		if (streq(m, boot[i]))
			return true;
	return false;
}

static void mark_mounts(struct disk_list *l, const char *sysfs, const char *proc)
{
	char path[PATH_MAX], line[4096];

	snprintf(path, sizeof(path), "%s/self/mountinfo", proc);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		char devs[32], mnt[1024], detail[1100];
		/* id parent MAJ:MIN root MOUNTPOINT ... */
		if (sscanf(line, "%*s %*s %31s %*s %1023s", devs, mnt) != 2)
			continue;
		snprintf(detail, sizeof(detail), "mounted on %s", mnt);
		mark_dev(l, sysfs, parse_devnum(devs), is_boot_mountpoint(mnt) ? USE_BOOT : USE_MOUNTED, detail, 0);
	}
}

static void mark_swaps(struct disk_list *l, const char *sysfs, const char *proc)
{
	char path[PATH_MAX], line[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/swaps", proc);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		char dev[1024];
		if (line[0] != '/' || sscanf(line, "%1023s", dev) != 1 || stat(dev, &st) < 0)
			continue;
		mark_dev(l, sysfs, S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev, USE_SWAP, "active swap", 0);
	}
}

static void mark_holders_one(struct disk *d, const char *dir, const char *what)
{
	_cleanup_closedir_ DIR *dh = opendir(dir);
	char detail[512];

	for (struct dirent *de; dh && (de = readdir(dh));) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(detail, sizeof(detail), "held by %s (device-mapper/md: active LVM, LUKS or RAID)",
			 de->d_name);
		set_use(d, USE_HELD, what, detail);
		return;
	}
}

static void mark_holders(struct disk_list *l, const char *sysfs)
{
	char dir[PATH_MAX], what[128];

	for (size_t i = 0; i < l->n; i++) {
		struct disk *d = &l->disks[i];
		snprintf(dir, sizeof(dir), "%s/block/%s/holders", sysfs, d->name);
		snprintf(what, sizeof(what), "%s is", d->name);
		mark_holders_one(d, dir, what);
		for (size_t j = 0; j < d->n_parts; j++) {
			if (!d->parts[j].devname)
				continue;
			snprintf(dir, sizeof(dir), "%s/block/%s/%s/holders", sysfs, d->name, d->parts[j].devname);
			snprintf(what, sizeof(what), "partition %s is", d->parts[j].devname);
			mark_holders_one(d, dir, what);
		}
	}
}

static void mark_in_use(struct disk_list *l, const struct disk_probe_opts *o)
{
	const char *sysfs = opt_root(o->sysfs, "/sys"), *proc = opt_root(o->proc, "/proc");

	mark_mounts(l, sysfs, proc);
	mark_swaps(l, sysfs, proc);
	mark_holders(l, sysfs);
}

/* ---- the list ------------------------------------------------------------------ */

/* Whole disks worth listing: not partitions, not stacked devices (dm, md:
 * those are holders), not RAM disks, not empty (loop without a file). */
static bool want_block(const char *sysfs, const char *name)
{
	static const char *const skip[] = { "ram", "zram", "dm-", "md", "sr", "fd", "nbd" };

	if (name[0] == '.')
		return false;
	for (size_t i = 0; i < ELEMENTSOF(skip); i++)
		if (strncmp(name, skip[i], strlen(skip[i])) == 0)
			return false;
	return attr_u64(0, sysfs, name, "size") > 0;
}

static int disk_init(struct disk *d, const struct disk_probe_opts *o, const char *name)
{
	const char *dev = opt_root(o->dev, "/dev");
	int r;

	d->name = strdup(name);
	if (!d->name || asprintf(&d->path, "%s/%s", dev, name) < 0)
		return -ENOMEM;
	r = probe_sysfs(d, o);
	if (r < 0)
		return r;
	r = probe_by_id(d, dev);
	if (r < 0)
		return r;
	return o->no_signatures ? 0 : probe_contents(d);
}

static int disk_cmp(const void *a, const void *b)
{
	return strcmp(((const struct disk *)a)->name, ((const struct disk *)b)->name);
}

int disk_probe_all(const struct disk_probe_opts *o, struct disk_list **ret)
{
	static const struct disk_probe_opts defaults = { 0 };
	const char *sysfs;
	char dir[PATH_MAX];
	_cleanup_(disk_list_freep) struct disk_list *l = NULL;
	struct dirent *de;
	int r;

	errbuf_clear(&err);
	o = o ? o : &defaults;
	sysfs = opt_root(o->sysfs, "/sys");
	snprintf(dir, sizeof(dir), "%s/block", sysfs);
	_cleanup_closedir_ DIR *dh = opendir(dir);
	if (!dh) {
		r = negative_errno();
		failf("cannot read %s: %s", dir, strerror(-r));
		return r;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	while ((de = readdir(dh))) {
		if (!want_block(sysfs, de->d_name))
			continue;
		if (l->n >= DISK_MAX_DISKS) {
			failf("more than %d disks", DISK_MAX_DISKS);
			return -E2BIG;
		}
		struct disk *nd = realloc(l->disks, (l->n + 1) * sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		l->disks = nd;
		nd[l->n] = (struct disk){ 0 };
		r = disk_init(&nd[l->n++], o, de->d_name);
		if (r < 0) {
			failf("probing %s: %s", de->d_name, strerror(-r));
			return r;
		}
	}
	if (l->n)
		qsort(l->disks, l->n, sizeof(*l->disks), disk_cmp);
	mark_in_use(l, o);
	*ret = TAKE_PTR(l);
	return 0;
}

/* An image file attached to a loop device is in use by that device. */
static void mark_file_attached(struct disk *d, const struct disk_list *all)
{
	char real[PATH_MAX], what[128];

	if (!realpath(d->path, real))
		return;
	for (size_t i = 0; i < all->n; i++)
		if (all->disks[i].backing_file && streq(all->disks[i].backing_file, real)) {
			snprintf(what, sizeof(what), "image is attached to /dev/%s", all->disks[i].name);
			set_use(d, USE_HELD, what, "(detach it first)");
			return;
		}
}

static int probe_file(const struct disk_probe_opts *o, const char *path, const struct stat *st, struct disk **ret)
{
	_cleanup_(disk_freep) struct disk *d = calloc(1, sizeof(*d));
	_cleanup_(disk_list_freep) struct disk_list *all = NULL;
	const char *base = strrchr(path, '/');
	int r;

	if (!d)
		return -ENOMEM;
	d->name = strdup(base ? base + 1 : path);
	d->path = strdup(path);
	if (!d->name || !d->path)
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees d (cppcheck 2.10 misses it) */
	d->transport = DISK_TRANSPORT_FILE;
	d->size = (uint64_t)st->st_size;
	d->logical_sector = d->physical_sector = 512;
	if (!o->no_signatures) {
		r = probe_contents(d);
		if (r < 0)
			return r;
	}
	r = disk_probe_all(o, &all);
	if (r < 0)
		return r;
	mark_file_attached(d, all);
	*ret = TAKE_PTR(d);
	return 0;
}

int disk_probe_path(const struct disk_probe_opts *o, const char *path, struct disk **ret)
{
	static const struct disk_probe_opts defaults = { 0 };
	_cleanup_(disk_list_freep) struct disk_list *l = NULL;
	struct stat st;
	int r;

	errbuf_clear(&err);
	o = o ? o : &defaults;
	if (stat(path, &st) < 0) {
		r = negative_errno();
		failf("'%s': %s", path, strerror(-r));
		return r;
	}
	if (S_ISREG(st.st_mode))
		return probe_file(o, path, &st, ret);
	if (!S_ISBLK(st.st_mode)) {
		failf("'%s' is neither a block device nor a disk image file", path);
		return -ENOTBLK;
	}
	r = disk_probe_all(o, &l);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l->n; i++) {
		if (l->disks[i].devnum == st.st_rdev) {
			struct disk *d = malloc(sizeof(*d));
			if (!d)
				return -ENOMEM;
			*d = l->disks[i];
			l->disks[i] = (struct disk){ 0 };
			*ret = d;
			return 0;
		}
		for (size_t j = 0; j < l->disks[i].n_parts; j++)
			if (l->disks[i].parts[j].devnum == st.st_rdev) {
				failf("'%s' is partition %s of /dev/%s, not a whole disk", path,
				      l->disks[i].parts[j].devname, l->disks[i].name);
				return -EINVAL;
			}
	}
	failf("'%s' (%u:%u) is not a whole disk this system lists", path, major(st.st_rdev), minor(st.st_rdev));
	return -ENODEV;
}

/* ---- lifecycle and descriptions ----------------------------------------------- */

void disk_sig_done(struct disk_sig *s)
{
	if (!s)
		return;
	free(s->type), free(s->label), free(s->uuid);
	*s = (struct disk_sig){ 0 };
}

int disk_probe_region(int fd, uint64_t off, uint64_t size, struct disk_sig *ret)
{
	struct disk_part p = { .start = off, .size = size };
	int r = probe_part_content(&p, fd);

	if (r < 0) {
		disk_sig_done(&p.sig);
		return r;
	}
	*ret = p.sig;
	return 0;
}

void disk_done(struct disk *d)
{
	if (!d)
		return;
	free(d->name), free(d->path), free(d->model), free(d->serial), free(d->wwn), free(d->backing_file);
	free(d->pttype), free(d->ptuuid), free(d->in_use);
	for (size_t i = 0; i < d->n_by_id; i++)
		free(d->by_id[i]);
	free(d->by_id);
	for (size_t i = 0; i < d->n_sigs; i++)
		disk_sig_done(&d->sigs[i]);
	free(d->sigs);
	for (size_t i = 0; i < d->n_parts; i++) {
		struct disk_part *p = &d->parts[i];
		free(p->devname), free(p->type), free(p->name), free(p->uuid);
		disk_sig_done(&p->sig);
	}
	free(d->parts);
	*d = (struct disk){ 0 };
}

struct disk *disk_free(struct disk *d)
{
	disk_done(d);
	free(d);
	return NULL;
}

struct disk_list *disk_list_free(struct disk_list *l)
{
	if (!l)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		disk_done(&l->disks[i]);
	free(l->disks);
	free(l);
	return NULL;
}

bool disk_has_content(const struct disk *d)
{
	return d->pttype || d->n_sigs > 0 || d->n_parts > 0;
}

int disk_describe_content(const struct disk *d, char *buf, size_t size)
{
	size_t off = 0;
	int n;

#define ADD(...)                                                       \
	do {                                                           \
		n = snprintf(buf + off, size - off, __VA_ARGS__);      \
		if (n < 0 || (size_t)n >= size - off)                  \
			return -ENOBUFS;                               \
		off += (size_t)n;                                      \
	} while (0)
	if (!size)
		return -ENOBUFS;
	buf[0] = '\0';
	if (!disk_has_content(d)) {
		ADD("nothing (no partition table, no signature)");
		return 0;
	}
	if (d->pttype)
		ADD("%s partition table with %zu partition%s", d->pttype, d->n_parts, d->n_parts == 1 ? "" : "s");
	for (size_t i = 0; i < d->n_sigs; i++)
		ADD("%s%s signature%s%s%s", off ? "; " : "", d->sigs[i].type, d->sigs[i].label ? " \"" : "",
		    d->sigs[i].label ? d->sigs[i].label : "", d->sigs[i].label ? "\"" : "");
	for (size_t i = 0; i < d->n_parts; i++) {
		const struct disk_part *p = &d->parts[i];
		ADD("%sp%u", i ? ", " : ": ", p->number);
		if (p->name)
			ADD(" \"%s\"", p->name);
		if (p->sig.type)
			ADD(" %s", p->sig.type);
		if (p->sig.label)
			ADD(" label \"%s\"", p->sig.label);
	}
#undef ADD
	return 0;
}
