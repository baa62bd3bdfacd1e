/* SPDX-License-Identifier: MIT */
/*
 * preflight.c — the pre-flight gate (preflight.h).
 */
#include "preflight.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nvme_ioctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "manifest/manifest.h"
#include "util.h"

const char *preflight_check_name(enum preflight_check c)
{
	static const char *const names[] = {
		[PREFLIGHT_VIRTUALIZATION] = "virtualization",
		[PREFLIGHT_MEMORY] = "memory",
		[PREFLIGHT_SMART] = "smart",
		[PREFLIGHT_LINK] = "link",
	};
	return c < ELEMENTSOF(names) ? names[c] : "?";
}

const char *preflight_status_name(enum preflight_status s)
{
	static const char *const names[] = {
		[PREFLIGHT_PASS] = "pass",
		[PREFLIGHT_FAIL] = "fail",
		[PREFLIGHT_WAIVED] = "waived",
		[PREFLIGHT_UNAVAILABLE] = "unavailable",
		[PREFLIGHT_SKIPPED] = "skipped",
	};
	return s < ELEMENTSOF(names) ? names[s] : "?";
}

/* The check's bit in enum mf_waive follows enum preflight_check's order. */
static unsigned waive_bit(enum preflight_check c)
{
	static const unsigned bits[] = {
		[PREFLIGHT_VIRTUALIZATION] = MF_WAIVE_VIRTUALIZATION,
		[PREFLIGHT_MEMORY] = MF_WAIVE_MEMORY,
		[PREFLIGHT_SMART] = MF_WAIVE_SMART,
		[PREFLIGHT_LINK] = MF_WAIVE_LINK,
	};
	return c < ELEMENTSOF(bits) ? bits[c] : 0;
}

__attribute__((format(printf, 6, 7))) static void add(struct preflight_report *r, const struct preflight_opts *o,
						      enum preflight_check c, enum preflight_status s,
						      const char *subject, const char *fmt, ...)
{
	struct preflight_finding *f;
	va_list ap;

	if (r->n >= PREFLIGHT_MAX_FINDINGS)
		return;
	if (s == PREFLIGHT_FAIL && (o->waive & waive_bit(c)))
		s = PREFLIGHT_WAIVED;
	f = &r->items[r->n++];
	f->check = c;
	f->status = s;
	snprintf(f->subject, sizeof(f->subject), "%s", subject);
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
	r->n_failed += s == PREFLIGHT_FAIL;
	r->n_waived += s == PREFLIGHT_WAIVED;
	r->n_unavailable += s == PREFLIGHT_UNAVAILABLE;
}

/* Read a whole small text file (at most size-1 bytes) into buf. */
static int read_text(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return negative_errno();
	while (off < size - 1) {
		ssize_t n = read(fd, buf + off, size - 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	return 0;
}

static bool has_flag(const char *flags, const char *flag)
{
	size_t len = strlen(flag);

	for (const char *p = flags; (p = strstr(p, flag)); p += len)
		if ((p == flags || p[-1] == ' ' || p[-1] == '\t') && (p[len] == ' ' || p[len] == '\n' || !p[len]))
			return true;
	return false;
}

static void check_cpu(const struct preflight_opts *o, struct preflight_report *r)
{
	static char buf[1 << 16]; /* the first CPU's entry is enough */
	char path[256];
	char *line, *end;

	snprintf(path, sizeof(path), "%s/cpuinfo", o->proc);
	if (read_text(path, buf, sizeof(buf)) < 0) {
		add(r, o, PREFLIGHT_VIRTUALIZATION, PREFLIGHT_UNAVAILABLE, "cpu", "cannot read %s", path);
		return;
	}
	line = strstr(buf, "\nflags");
	if (!line) {
		add(r, o, PREFLIGHT_VIRTUALIZATION, PREFLIGHT_UNAVAILABLE, "cpu", "%s has no flags line", path);
		return;
	}
	end = strchr(line + 1, '\n');
	if (end)
		*end = '\0';
	if (has_flag(line, "vmx"))
		add(r, o, PREFLIGHT_VIRTUALIZATION, PREFLIGHT_PASS, "cpu", "vmx (Intel VT-x) present");
	else if (has_flag(line, "svm"))
		add(r, o, PREFLIGHT_VIRTUALIZATION, PREFLIGHT_PASS, "cpu", "svm (AMD-V) present");
	else
		add(r, o, PREFLIGHT_VIRTUALIZATION, PREFLIGHT_FAIL, "cpu",
		    "neither vmx nor svm: enable VT-x/AMD-V in the firmware setup (Proxmox needs it for KVM)");
}

static void check_memory(const struct preflight_opts *o, struct preflight_report *r)
{
	char path[256], buf[4096];
	unsigned long long kib;
	const char *p;
	uint64_t have, floor;

	if (!o->min_memory) {
		add(r, o, PREFLIGHT_MEMORY, PREFLIGHT_SKIPPED, "ram", "no min_memory in the manifest");
		return;
	}
	snprintf(path, sizeof(path), "%s/meminfo", o->proc);
	if (read_text(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, "MemTotal:")) ||
	    sscanf(p, "MemTotal: %llu kB", &kib) != 1 || kib > UINT64_MAX / 1024) {
		add(r, o, PREFLIGHT_MEMORY, PREFLIGHT_UNAVAILABLE, "ram", "cannot read MemTotal from %s", path);
		return;
	}
	have = (uint64_t)kib * 1024;
	floor = o->min_memory - o->min_memory / 16;
	add(r, o, PREFLIGHT_MEMORY, have >= floor ? PREFLIGHT_PASS : PREFLIGHT_FAIL, "ram",
	    "%" PRIu64 " MiB usable, the manifest asks for %" PRIu64 " MiB", have >> 20, o->min_memory >> 20);
}

enum preflight_status preflight_smart_parse(const uint8_t *log, size_t len, char *detail, size_t size)
{
	/* SMART / Health Information log, NVMe 1.4 figure 194: byte 0 critical
	 * warning, 1-2 composite temperature (K), 3 available spare (%),
	 * 4 available spare threshold (%), 5 percentage used. */
	unsigned warn, spare, thresh, used, temp_c;

	if (len < 6) {
		snprintf(detail, size, "SMART log too short (%zu bytes)", len);
		return PREFLIGHT_UNAVAILABLE;
	}
	warn = log[0];
	temp_c = (unsigned)(log[1] | log[2] << 8);
	temp_c = temp_c > 273 ? temp_c - 273 : 0;
	spare = log[3];
	thresh = log[4];
	used = log[5];
	if (warn) {
		snprintf(detail, size, "critical warning 0x%02x:%s%s%s%s%s%s", warn, warn & 0x01 ? " spare low" : "",
			 warn & 0x02 ? " temperature" : "", warn & 0x04 ? " reliability degraded" : "",
			 warn & 0x08 ? " read-only" : "", warn & 0x10 ? " backup failed" : "",
			 warn & 0x20 ? " PMR read-only" : "");
		return PREFLIGHT_FAIL;
	}
	if (spare < thresh) {
		snprintf(detail, size, "available spare %u%% below its threshold %u%%", spare, thresh);
		return PREFLIGHT_FAIL;
	}
	if (used >= 100) {
		snprintf(detail, size, "worn out: %u%% of its rated endurance used", used);
		return PREFLIGHT_FAIL;
	}
	snprintf(detail, size, "healthy: %u%% used, spare %u%% (threshold %u%%), %u C", used, spare, thresh, temp_c);
	return PREFLIGHT_PASS;
}

/* Get Log Page (admin opcode 02h), log 02h, all namespaces. */
static int smart_read(const char *path, uint8_t log[PREFLIGHT_SMART_LOG_LEN])
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct nvme_admin_cmd cmd = {
		.opcode = 0x02,
		.nsid = 0xffffffffu,
		.addr = (uint64_t)(uintptr_t)log,
		.data_len = PREFLIGHT_SMART_LOG_LEN,
		/* NUMDL (0's based dword count) in 31:16, log identifier in 7:0 */
		.cdw10 = ((PREFLIGHT_SMART_LOG_LEN / 4 - 1) << 16) | 0x02,
	};

	if (fd < 0)
		return negative_errno();
	if (ioctl(fd, NVME_IOCTL_ADMIN_CMD, &cmd) < 0)
		return negative_errno();
	return 0;
}

static void check_smart(const struct preflight_opts *o, struct preflight_report *r)
{
	char path[512], detail[160];
	struct dirent *de;
	size_t found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/class/nvme", o->sysfs);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		uint8_t log[PREFLIGHT_SMART_LOG_LEN] = {};
		enum preflight_status s;
		int q;

		if (strncmp(de->d_name, "nvme", 4) != 0)
			continue;
		found++;
		snprintf(path, sizeof(path), "%s/%s", o->dev, de->d_name);
		q = smart_read(path, log);
		if (q < 0) {
			add(r, o, PREFLIGHT_SMART, PREFLIGHT_UNAVAILABLE, de->d_name, "cannot read the SMART log of %s: %s",
			    path, strerror(-q));
			continue;
		}
		s = preflight_smart_parse(log, sizeof(log), detail, sizeof(detail));
		add(r, o, PREFLIGHT_SMART, s, de->d_name, "%s", detail);
	}
	if (d)
		closedir(d);
	if (!found)
		add(r, o, PREFLIGHT_SMART, PREFLIGHT_SKIPPED, "nvme", "no NVMe controller");
}

static void check_link(const struct preflight_opts *o, struct preflight_report *r)
{
	char path[512], buf[16];
	unsigned waited = 0;
	int q;

	if (isempty(o->nic)) {
		add(r, o, PREFLIGHT_LINK, PREFLIGHT_SKIPPED, "nic", "no NIC identified for this node");
		return;
	}
	snprintf(path, sizeof(path), "%s/class/net/%s/carrier", o->sysfs, o->nic);
	for (;;) {
		/* carrier reads EINVAL while the interface is down */
		q = read_text(path, buf, sizeof(buf));
		if (q >= 0 && buf[0] == '1')
			break;
		if (waited >= o->link_wait_ms)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
		waited += 100;
	}
	if (q == -ENOENT)
		add(r, o, PREFLIGHT_LINK, PREFLIGHT_FAIL, o->nic, "no such interface");
	else if (q < 0)
		add(r, o, PREFLIGHT_LINK, PREFLIGHT_FAIL, o->nic, "interface is down (%s)", strerror(-q));
	else
		add(r, o, PREFLIGHT_LINK, buf[0] == '1' ? PREFLIGHT_PASS : PREFLIGHT_FAIL, o->nic, "%s",
		    buf[0] == '1' ? "link up" : "no link: is the cable plugged in?");
}

int preflight_run(const struct preflight_opts *o, struct preflight_report *ret)
{
	struct preflight_opts opts = *o;
	struct preflight_report r = {};

	if (!opts.proc)
		opts.proc = "/proc";
	if (!opts.sysfs)
		opts.sysfs = "/sys";
	if (!opts.dev)
		opts.dev = "/dev";
	check_cpu(&opts, &r);
	check_memory(&opts, &r);
	check_smart(&opts, &r);
	check_link(&opts, &r);
	*ret = r;
	return 0;
}

/* JSON string body: the details are our own text, but subjects come from
 * directory names; escape anything outside printable ASCII. */
static int put_json_str(char *buf, size_t size, size_t *off, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int n = (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
				? snprintf(buf + *off, size - *off, "\\u%04x", ch)
				: snprintf(buf + *off, size - *off, "%c", ch);

		if (n < 0 || (size_t)n >= size - *off)
			return -ENOBUFS;
		*off += (size_t)n;
	}
	return 0;
}

int preflight_report_json(const struct preflight_report *r, char *buf, size_t size)
{
	size_t off = 0;
	int n;

#define PUT(s)                                                   \
	do {                                                     \
		n = snprintf(buf + off, size - off, "%s", s);    \
		if (n < 0 || (size_t)n >= size - off)            \
			return -ENOBUFS;                         \
		off += (size_t)n;                                \
	} while (0)
	PUT("[");
	for (size_t i = 0; i < r->n; i++) {
		const struct preflight_finding *f = &r->items[i];

		PUT(i ? ",\n {\"check\": \"" : "{\"check\": \"");
		PUT(preflight_check_name(f->check));
		PUT("\", \"status\": \"");
		PUT(preflight_status_name(f->status));
		PUT("\", \"subject\": \"");
		if (put_json_str(buf, size, &off, f->subject) < 0)
			return -ENOBUFS;
		PUT("\", \"detail\": \"");
		if (put_json_str(buf, size, &off, f->detail) < 0)
			return -ENOBUFS;
		PUT("\"}");
	}
	PUT("]\n");
#undef PUT
	return 0;
}
