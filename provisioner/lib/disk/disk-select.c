/* SPDX-License-Identifier: MIT */
/*
 * disk-select.c — every rule given must hold (AND); "largest_nvme" is
 * applied last, among the NVMe disks that passed the other rules, so it
 * combines with e.g. max_size. A tie for the largest is two matches.
 */
#define _GNU_SOURCE
#include "disk-select.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void disk_format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ELEMENTSOF(units))
		v /= 1024, u++;
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static const char *strip_by_id(const char *s)
{
	static const char prefix[] = "/dev/disk/by-id/";
	return strncmp(s, prefix, sizeof(prefix) - 1) == 0 ? s + sizeof(prefix) - 1 : s;
}

/* Apply every rule but largest_nvme; on failure say which and why. */
static bool match_rules(const struct disk *d, const struct mf_disk_rules *r, char *why, size_t n)
{
	char a[32], b[32];

	if (r->by_id) {
		const char *want = strip_by_id(r->by_id);
		bool ok = false;
		for (size_t i = 0; i < d->n_by_id && !ok; i++)
			ok = streq(d->by_id[i], want);
		if (!ok)
			return snprintf(why, n, "no /dev/disk/by-id/%s link", want), false;
	}
	if (r->serial && !streq_ptr(d->serial, r->serial))
		return snprintf(why, n, "serial '%s' is not '%s'", d->serial ? d->serial : "(none)", r->serial),
		       false;
	if (r->model && (!d->model || fnmatch(r->model, d->model, 0) != 0))
		return snprintf(why, n, "model '%s' does not match '%s'", d->model ? d->model : "(none)", r->model),
		       false;
	if (r->transport && !streq(disk_transport_name(d->transport), r->transport))
		return snprintf(why, n, "transport %s is not %s", disk_transport_name(d->transport), r->transport),
		       false;
	if (r->largest_nvme && d->transport != DISK_TRANSPORT_NVME)
		return snprintf(why, n, "not NVMe (%s) and the rule is largest_nvme",
				disk_transport_name(d->transport)),
		       false;
	if (r->min_size && d->size < r->min_size) {
		disk_format_size(d->size, a, sizeof(a));
		disk_format_size(r->min_size, b, sizeof(b));
		return snprintf(why, n, "size %s < min_size %s", a, b), false;
	}
	if (r->max_size && d->size > r->max_size) {
		disk_format_size(d->size, a, sizeof(a));
		disk_format_size(r->max_size, b, sizeof(b));
		return snprintf(why, n, "size %s > max_size %s", a, b), false;
	}
	return true;
}

static bool has_rule(const struct mf_disk_rules *r)
{
	return r->by_id || r->serial || r->model || r->transport || r->min_size || r->max_size || r->largest_nvme;
}

static void describe_match(const struct disk *d, const struct mf_disk_rules *r, char *buf, size_t n)
{
	char sz[32];

	disk_format_size(d->size, sz, sizeof(sz));
	snprintf(buf, n, "matches (%s%s%s%s, %s%s)", disk_transport_name(d->transport), d->model ? " '" : "",
		 d->model ? d->model : "", d->model ? "'" : "", sz, r->largest_nvme ? ", the largest NVMe" : "");
}

int disk_select(const struct disk_list *l, const struct mf_disk_rules *rules, struct disk_selection *ret)
{
	struct disk_selection s = { 0 };
	uint64_t largest = 0;

	if (!l || !rules || !ret)
		return -EINVAL;
	*ret = s;
	if (!has_rule(rules))
		return -EINVAL;
	s.verdicts = calloc(l->n ? l->n : 1, sizeof(*s.verdicts));
	if (!s.verdicts)
		return -ENOMEM;
	s.n = l->n;
	for (size_t i = 0; i < l->n; i++) {
		struct disk_verdict *v = &s.verdicts[i];
		v->disk = &l->disks[i];
		v->match = match_rules(v->disk, rules, v->reason, sizeof(v->reason));
		if (v->match && v->disk->size > largest)
			largest = v->disk->size;
	}
	for (size_t i = 0; i < s.n; i++) {
		struct disk_verdict *v = &s.verdicts[i];
		if (!v->match)
			continue;
		if (rules->largest_nvme && v->disk->size < largest) {
			char a[32], b[32];
			disk_format_size(v->disk->size, a, sizeof(a));
			disk_format_size(largest, b, sizeof(b));
			snprintf(v->reason, sizeof(v->reason), "NVMe, but %s < the largest NVMe's %s", a, b);
			v->match = false;
			continue;
		}
		describe_match(v->disk, rules, v->reason, sizeof(v->reason));
		s.n_matches++;
		s.chosen = v->disk;
	}
	if (s.n_matches != 1)
		s.chosen = NULL;
	*ret = s;
	return s.n_matches == 1 ? 0 : s.n_matches == 0 ? -ENODEV : -ENOTUNIQ;
}

void disk_selection_done(struct disk_selection *s)
{
	if (!s)
		return;
	free(s->verdicts);
	*s = (struct disk_selection){ 0 };
}
