/* SPDX-License-Identifier: MIT */
/*
 * node.c — identify this machine among the manifest's nodes (node.h).
 */
#include "node.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parse.h"
#include "util.h"

static char errbuf[512];

const char *node_error(void)
{
	return errbuf;
}

__attribute__((format(printf, 2, 3))) static int fail(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return r;
}

const char *node_match_by_name(enum node_match_by by)
{
	static const char *const names[] = {
		[NODE_BY_MAC] = "MAC",
		[NODE_BY_SERIAL] = "DMI serial",
		[NODE_BY_UUID] = "DMI product UUID",
		[NODE_BY_NAME] = "name",
	};
	return by < ELEMENTSOF(names) ? names[by] : "?";
}

/* Read a small sysfs attribute, whitespace trimmed. -ENOENT when absent. */
static int read_attr(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	size_t len;

	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, size - 1);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	len = (size_t)n;
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	return 0;
}

/* Firmware fills unset DMI strings with placeholders shared by thousands of
 * boards; matching on one would identify the wrong machine. */
static bool dmi_placeholder(const char *s)
{
	static const char *const junk[] = {
		"To Be Filled By O.E.M.", "To be filled by O.E.M.", "Default string", "System Serial Number",
		"Not Specified", "Not Applicable", "None", "N/A", "0123456789", "Default", "Unknown",
	};
	bool zeros = true;

	if (isempty(s))
		return true;
	for (size_t i = 0; i < ELEMENTSOF(junk); i++)
		if (strcasecmp(s, junk[i]) == 0)
			return true;
	for (const char *p = s; *p; p++)
		if (*p != '0' && *p != '-' && *p != ' ' && *p != 'f' && *p != 'F')
			zeros = false;
	return zeros; /* 00000000-0000-..., FFFFFFFF-FFFF-... */
}

static int nic_cmp(const void *a, const void *b)
{
	return strcmp(((const struct node_nic *)a)->name, ((const struct node_nic *)b)->name);
}

static int read_nics(const char *sysfs, struct node_facts *f)
{
	char path[512], value[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/class/net", sysfs);
	d = opendir(path);
	if (!d)
		return fail(negative_errno(), "cannot list %s: %s", path, strerror(errno));
	while ((de = readdir(d))) {
		struct node_nic *n;

		if (de->d_name[0] == '.' || streq(de->d_name, "lo") || strlen(de->d_name) >= sizeof(n->name))
			continue;
		if (f->n_nics >= NODE_MAX_NICS)
			break;
		if (snprintf(path, sizeof(path), "%s/class/net/%s/address", sysfs, de->d_name) >= (int)sizeof(path))
			continue;
		n = &f->nics[f->n_nics];
		if (read_attr(path, value, sizeof(value)) < 0 || parse_mac(value, n->mac) < 0)
			continue;
		if (!memcmp(n->mac, "\0\0\0\0\0\0", 6))
			continue;
		memcpy(n->name, de->d_name, strlen(de->d_name) + 1); /* length checked above */
		/* carrier: "1" up; "0", or EINVAL while the interface is down */
		snprintf(path, sizeof(path), "%s/class/net/%s/carrier", sysfs, de->d_name);
		n->link = read_attr(path, value, sizeof(value)) >= 0 && streq(value, "1");
		f->n_nics++;
	}
	closedir(d);
	qsort(f->nics, f->n_nics, sizeof(f->nics[0]), nic_cmp);
	return 0;
}

int node_facts_read(const char *sysfs, struct node_facts *ret)
{
	struct node_facts f = {};
	char path[512], value[NODE_DMI_MAX];
	int r;

	errbuf[0] = '\0';
	if (!sysfs)
		sysfs = "/sys";
	r = read_nics(sysfs, &f);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/class/dmi/id/product_serial", sysfs);
	if (read_attr(path, value, sizeof(value)) >= 0 && !dmi_placeholder(value))
		snprintf(f.serial, sizeof(f.serial), "%s", value);
	snprintf(path, sizeof(path), "%s/class/dmi/id/product_uuid", sysfs);
	if (read_attr(path, value, sizeof(value)) >= 0 && !dmi_placeholder(value) &&
	    parse_uuid(value, f.uuid) < 0)
		f.uuid[0] = '\0';
	*ret = f;
	return 0;
}

int node_facts_describe(const struct node_facts *f, char *buf, size_t size)
{
	size_t off = 0;
	char mac[18];
	int n;

#define PUT(...)                                                         \
	do {                                                             \
		n = snprintf(buf + off, size - off, __VA_ARGS__);        \
		if (n < 0 || (size_t)n >= size - off)                    \
			return -ENOBUFS;                                 \
		off += (size_t)n;                                        \
	} while (0)
	PUT("MACs");
	if (f->n_nics == 0)
		PUT(" (none)");
	for (size_t i = 0; i < f->n_nics; i++)
		PUT("%s %s (%s)", i ? "," : "", mac_format(f->nics[i].mac, mac), f->nics[i].name);
	PUT("; DMI serial %s; product UUID %s", f->serial[0] ? f->serial : "(none)",
	    f->uuid[0] ? f->uuid : "(none)");
#undef PUT
	return 0;
}

static const struct node_nic *find_mac(const struct node_facts *f, const uint8_t mac[6])
{
	for (size_t i = 0; i < f->n_nics; i++)
		if (!memcmp(f->nics[i].mac, mac, 6))
			return &f->nics[i];
	return NULL;
}

/* 1 = matches, 0 = no identifier matches, -EBADE = an identifier contradicts. */
static int match_node(const struct mf_node *n, const struct node_facts *f, struct node_match *ret)
{
	const struct node_nic *nic = n->has_mac ? find_mac(f, n->mac) : NULL;
	bool serial_eq = n->serial && f->serial[0] && streq(n->serial, f->serial);
	bool uuid_eq = n->product_uuid && f->uuid[0] && strcasecmp(n->product_uuid, f->uuid) == 0;
	bool serial_ne = n->serial && f->serial[0] && !serial_eq;
	bool uuid_ne = n->product_uuid && f->uuid[0] && !uuid_eq;

	if (!nic && !serial_eq && !uuid_eq)
		return 0;
	if (serial_ne || uuid_ne)
		return fail(-EBADE, "node '%s' matches by %s but its %s %s differs from this machine's %s", n->name,
			    nic ? "MAC" : serial_eq ? "DMI serial" : "DMI product UUID",
			    serial_ne ? "serial" : "product_uuid", serial_ne ? n->serial : n->product_uuid,
			    serial_ne ? f->serial : f->uuid);
	*ret = (struct node_match){
		.node = n,
		.by = nic ? NODE_BY_MAC : serial_eq ? NODE_BY_SERIAL : NODE_BY_UUID,
		.nic = nic,
	};
	return 1;
}

/* The first node other than `name` this machine matches (or contradicts). */
static const struct mf_node *matches_other(const struct manifest *m, const struct node_facts *f, const char *name)
{
	struct node_match cand;

	for (size_t i = 0; i < m->n_nodes; i++)
		if (!streq(m->nodes[i].name, name) && match_node(&m->nodes[i], f, &cand) != 0)
			return &m->nodes[i];
	return NULL;
}

/* The operator named the node: it is taken when it matches, or as new
 * hardware when no node does; never when another node matches. */
static int identify_named(const struct manifest *m, const struct node_facts *f, const char *only,
			  struct node_match *ret)
{
	const struct mf_node *named = manifest_find_node(m, only), *other;
	int r;

	if (!named)
		return fail(-ENOENT, "the manifest has no node '%s'", only);
	r = match_node(named, f, ret);
	if (r != 0)
		return r < 0 ? r : 0;
	other = matches_other(m, f, only);
	if (other)
		return fail(-EBADE, "this machine is node '%s' by its MAC or DMI identity, not '%s'; refusing to take "
				    "it as '%s'", other->name, only, only);
	*ret = (struct node_match){ .node = named, .by = NODE_BY_NAME };
	return 0;
}

int node_identify(const struct manifest *m, const struct node_facts *f, const char *only, struct node_match *ret)
{
	struct node_match found = {}, cand;
	char facts[1024];
	size_t n_found = 0;

	errbuf[0] = '\0';
	if (only)
		return identify_named(m, f, only, ret);
	for (size_t i = 0; i < m->n_nodes; i++) {
		const struct mf_node *n = &m->nodes[i];
		int r = match_node(n, f, &cand);

		if (r < 0)
			return r;
		if (r == 0)
			continue;
		if (++n_found > 1)
			return fail(-ENOTUNIQ, "this machine matches both node '%s' and node '%s'; refusing to choose",
				    found.node->name, n->name);
		found = cand;
	}
	if (n_found == 0) {
		if (node_facts_describe(f, facts, sizeof(facts)) < 0)
			snprintf(facts, sizeof(facts), "(too many to list)");
		return fail(-ENOENT, "no manifest node matches this machine (%s); refusing to guess", facts);
	}
	*ret = found;
	return 0;
}

/* A NIC of this machine by name or MAC; NULL when it has none such. */
static const struct node_nic *find_nic(const struct node_facts *f, const char *name_or_mac)
{
	uint8_t mac[6];

	if (parse_mac(name_or_mac, mac) >= 0)
		return find_mac(f, mac);
	for (size_t i = 0; i < f->n_nics; i++)
		if (streq(f->nics[i].name, name_or_mac))
			return &f->nics[i];
	return NULL;
}

int node_choose_nic(const struct node_match *m, const struct node_facts *f, const char *want,
		    const struct node_nic **ret)
{
	const struct node_nic *nic = NULL;
	char linked[512] = "";
	size_t n_linked = 0, off = 0;

	errbuf[0] = '\0';
	if (want) {
		nic = find_nic(f, want);
		if (!nic)
			return fail(-ENOENT, "this machine has no NIC '%s'", want);
	} else if (m->node->nic && (nic = find_nic(f, m->node->nic)))
		;
	else if (m->nic)
		nic = m->nic;
	else {
		for (size_t i = 0; i < f->n_nics; i++) {
			int n;

			if (!f->nics[i].link)
				continue;
			nic = &f->nics[i];
			n = snprintf(linked + off, sizeof(linked) - off, "%s%s", n_linked++ ? ", " : "", nic->name);
			if (n > 0 && (size_t)n < sizeof(linked) - off)
				off += (size_t)n;
		}
		if (n_linked == 0)
			return fail(-ENOENT, "no NIC of this machine has a link");
		if (n_linked > 1)
			return fail(-ENOTUNIQ, "%zu NICs have a link (%s)", n_linked, linked);
	}
	*ret = nic;
	return 0;
}
