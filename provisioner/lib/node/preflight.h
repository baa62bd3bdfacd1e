/* SPDX-License-Identifier: MIT */
/*
 * preflight.h — the gate before any disk is touched: does this machine
 * meet what Proxmox and the manifest need?
 *
 *   virtualization  /proc/cpuinfo has vmx (Intel VT-x) or svm (AMD-V)
 *   memory          MemTotal against the node's min_memory (the kernel and
 *                   firmware keep some RAM back: MemTotal may be 1/16 short)
 *   smart           each NVMe controller's SMART / Health log (NVMe 1.4
 *                   §5.14.1.2, Get Log Page 02h) through the admin ioctl:
 *                   critical warning bits, spare below threshold, wear
 *                   (percentage used) at 100 or more; "unavailable" when the
 *                   log cannot be read, said so and never counted as passed
 *   link            the node's NIC has carrier (/sys/class/net/X/carrier)
 *
 * Each failure is an error unless the node waives it (manifest
 * nodes[].preflight.waive); every finding is recorded in the report, which
 * the install verb prints and keeps. Nothing here prints.
 *
 * Test seams: the /proc and /sys roots and the /dev directory are options;
 * preflight_smart_parse() judges a log page given as bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PREFLIGHT_MAX_FINDINGS 32
#define PREFLIGHT_SMART_LOG_LEN 512

enum preflight_check {
	PREFLIGHT_VIRTUALIZATION,
	PREFLIGHT_MEMORY,
	PREFLIGHT_SMART,
	PREFLIGHT_LINK,
	_PREFLIGHT_CHECK_MAX,
};
const char *preflight_check_name(enum preflight_check c);

enum preflight_status {
	PREFLIGHT_PASS,
	PREFLIGHT_FAIL,        /* an error: the install stops */
	PREFLIGHT_WAIVED,      /* failed, but the manifest waives this check */
	PREFLIGHT_UNAVAILABLE, /* could not be checked; a warning */
	PREFLIGHT_SKIPPED,     /* nothing to check (no min_memory, no NVMe) */
};
const char *preflight_status_name(enum preflight_status s);

struct preflight_finding {
	enum preflight_check check;
	enum preflight_status status;
	char subject[32];  /* "cpu", "ram", "nvme0", "eth0" */
	char detail[160];  /* "svm present", "critical warning 0x04 (reliability degraded)" */
};

struct preflight_report {
	struct preflight_finding items[PREFLIGHT_MAX_FINDINGS];
	size_t n;
	size_t n_failed, n_waived, n_unavailable;
};

struct preflight_opts {
	const char *proc;  /* default "/proc" */
	const char *sysfs; /* default "/sys" */
	const char *dev;   /* default "/dev" */
	uint64_t min_memory; /* bytes; 0 = no check */
	const char *nic;   /* interface name whose carrier is checked; NULL = skipped */
	unsigned waive;    /* enum mf_waive bits (manifest.h) */
	unsigned link_wait_ms; /* a fresh link may need a moment: poll up to this long */
};

/* Run every check. Returns 0 with the report filled (failures are findings,
 * not errors); -errno only when a check could not run at all for a reason
 * other than missing hardware. */
int preflight_run(const struct preflight_opts *o, struct preflight_report *ret);

/* Judge a SMART / Health log page (at least 6 bytes; 512 from the device). */
enum preflight_status preflight_smart_parse(const uint8_t *log, size_t len, char *detail, size_t size);

/* The report as JSON text into buf ("[{check, status, subject, detail}...]"). */
int preflight_report_json(const struct preflight_report *r, char *buf, size_t size);
