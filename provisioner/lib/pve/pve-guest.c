/* SPDX-License-Identifier: MIT */
/*
 * pve-guest.c — storage and QEMU guest calls; see pve-guest.h. What each
 * call expects of Proxmox is the 9.1 API schema (the simulator holds every
 * request to it) and qemu-server's / pve-storage's behaviour as described
 * in docs/guests.md.
 */
#define _GNU_SOURCE 1
#include "pve-guest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"
#include "plan/json-util.h"

#define PATH_MAX_LEN 512

/* "/nodes/{node}/qemu/{vmid}" + rest, the node escaped. */
static int vm_path(char *buf, size_t size, const char *node, unsigned vmid, const char *rest)
{
	_cleanup_free_ char *e = NULL;
	int r = pve_escape(node, &e);

	if (r < 0)
		return r;
	r = snprintf(buf, size, "/nodes/%s/qemu/%u%s", e, vmid, rest ? rest : "");
	return r < 0 || (size_t)r >= size ? -ENAMETOOLONG : 0;
}

/* "/nodes/{node}/storage/{storage}" + rest, both escaped. */
static int storage_path(char *buf, size_t size, const char *node, const char *storage, const char *rest)
{
	_cleanup_free_ char *en = NULL, *es = NULL;
	int r = pve_escape(node, &en);

	if (r >= 0)
		r = pve_escape(storage, &es);
	if (r < 0)
		return r;
	r = snprintf(buf, size, "/nodes/%s/storage/%s%s", en, es, rest ? rest : "");
	return r < 0 || (size_t)r >= size ? -ENAMETOOLONG : 0;
}

static int copy_field(char *dst, size_t size, const struct json_object *o, const char *key)
{
	const char *s = json_get_string(o, key);

	if (!s) {
		dst[0] = 0;
		return 0;
	}
	if (strlen(s) >= size)
		return -EBADMSG;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* Proxmox answers numbers, or numeric strings for some fields. */
static uint64_t num(const struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (json_object_is_type(v, json_type_string))
		return strtoull(json_object_get_string(v), NULL, 10);
	if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);

		/* Only what fits: 4e20 (or NaN) converted would be undefined
		 * behaviour (fuzz-pve found it). */
		return d > 0 && d < 18446744073709551616.0 ? (uint64_t)d : 0;
	}
	return json_object_get_int64(v) > 0 ? (uint64_t)json_object_get_int64(v) : 0;
}

static bool flag(const struct json_object *o, const char *key)
{
	return num(o, key) != 0;
}

static int bad_answer(struct pve_client *c, const char *what)
{
	pve_client_set_error(c, "%s on '%s': the answer has an unexpected shape", what, pve_client_node(c));
	return -EBADMSG;
}

/* ---- storage ------------------------------------------------------------- */

int pve_storage_status(struct pve_client *c, const char *node, const char *storage, struct pve_storage_status *ret)
{
	_cleanup_json_ struct json_object *d = NULL;
	struct pve_storage_status st = {};
	char path[PATH_MAX_LEN];
	int r = storage_path(path, sizeof(path), node, storage, "/status");

	if (r >= 0)
		r = pve_call(c, HTTP_GET, path, NULL, &d);
	if (r < 0)
		return r;
	if (!d || !json_object_is_type(d, json_type_object) || copy_field(st.type, sizeof(st.type), d, "type") < 0 ||
	    copy_field(st.content, sizeof(st.content), d, "content") < 0)
		return bad_answer(c, "GET storage status");
	st.active = flag(d, "active");
	st.enabled = flag(d, "enabled");
	st.shared = flag(d, "shared");
	st.total = num(d, "total");
	st.used = num(d, "used");
	st.avail = num(d, "avail");
	*ret = st;
	return 0;
}

int pve_storage_content_types(struct pve_client *c, const char *storage, char ret[PVE_CONTENT_MAX])
{
	_cleanup_json_ struct json_object *d = NULL;
	_cleanup_free_ char *e = NULL, *path = NULL;
	int r = pve_escape(storage, &e);

	if (r < 0 || asprintf(&path, "/storage/%s", e) < 0)
		return -ENOMEM;
	r = pve_call(c, HTTP_GET, path, NULL, &d);
	if (r < 0)
		return r;
	if (!d || copy_field(ret, PVE_CONTENT_MAX, d, "content") < 0)
		return bad_answer(c, "GET /storage");
	return 0;
}

int pve_storage_set_content_types(struct pve_client *c, const char *storage, const char *content)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_free_ char *e = NULL, *path = NULL;
	int r = pve_escape(storage, &e);

	if (r < 0 || asprintf(&path, "/storage/%s", e) < 0)
		return -ENOMEM;
	r = pve_params_add(&p, "content", content);
	return r < 0 ? r : pve_call(c, HTTP_PUT, path, &p, NULL);
}

int pve_storage_volumes(struct pve_client *c, const char *node, const char *storage, const char *content,
			struct pve_volume **ret, size_t *ret_n)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_json_ struct json_object *d = NULL;
	_cleanup_free_ struct pve_volume *v = NULL;
	char path[PATH_MAX_LEN];
	size_t n;
	int r = storage_path(path, sizeof(path), node, storage, "/content");

	if (r >= 0 && content)
		r = pve_params_add(&p, "content", content);
	if (r >= 0)
		r = pve_call(c, HTTP_GET, path, &p, &d);
	if (r < 0)
		return r;
	if (!d || !json_object_is_type(d, json_type_array))
		return bad_answer(c, "GET storage content");
	n = json_object_array_length(d);
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(d, i);

		if (!e || copy_field(v[i].volid, sizeof(v[i].volid), e, "volid") < 0 || !v[i].volid[0] ||
		    copy_field(v[i].content, sizeof(v[i].content), e, "content") < 0 ||
		    copy_field(v[i].format, sizeof(v[i].format), e, "format") < 0)
			return bad_answer(c, "GET storage content");
		v[i].size = num(e, "size");
		v[i].ctime = num(e, "ctime");
		v[i].vmid = (unsigned)num(e, "vmid");
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

int pve_latest_backup(struct pve_client *c, const char *node, const char *storage, unsigned vmid,
		      char ret[PVE_VOLID_MAX])
{
	_cleanup_free_ struct pve_volume *v = NULL;
	const struct pve_volume *best = NULL;
	size_t n = 0;
	int r = pve_storage_volumes(c, node, storage, "backup", &v, &n);

	ret[0] = '\0';
	if (r < 0)
		return r;
	/* vzdump names carry the time too (vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS):
	 * equal ctimes fall back to the name */
	for (size_t i = 0; i < n; i++)
		if (v[i].vmid == vmid && streq(v[i].content, "backup") &&
		    (!best || v[i].ctime > best->ctime ||
		     (v[i].ctime == best->ctime && strcmp(v[i].volid, best->volid) > 0)))
			best = &v[i];
	if (best)
		snprintf(ret, PVE_VOLID_MAX, "%s", best->volid);
	return 0;
}

int pve_storage_delete_volume(struct pve_client *c, const char *node, const char *storage, const char *volid)
{
	_cleanup_json_ struct json_object *d = NULL;
	_cleanup_free_ char *e = NULL, *path = NULL;
	char base[PATH_MAX_LEN];
	int r = storage_path(base, sizeof(base), node, storage, "/content/");

	if (r >= 0)
		r = pve_escape(volid, &e);
	if (r < 0 || asprintf(&path, "%s%s", base, e) < 0)
		return r < 0 ? r : -ENOMEM;
	r = pve_call(c, HTTP_DELETE, path, NULL, &d);
	if (r < 0)
		return r;
	/* Proxmox 9 answers with a task; older versions with null. */
	if (d && json_object_is_type(d, json_type_string))
		return pve_task_wait(c, json_object_get_string(d));
	return 0;
}

/* ---- guests ---------------------------------------------------------------- */

int pve_decode_guests(struct json_object *d, struct pve_guest **ret, size_t *ret_n)
{
	_cleanup_free_ struct pve_guest *g = NULL;
	size_t n, k = 0;

	if (!d || !json_object_is_type(d, json_type_array))
		return -EBADMSG;
	n = json_object_array_length(d);
	g = calloc(n ? n : 1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(d, i);
		const char *type = json_get_string(e, "type");
		uint64_t vmid = num(e, "vmid");

		if (!type || !streq(type, "qemu"))
			continue; /* lxc, or another resource type */
		if (vmid < 100 || vmid > 999999999 || copy_field(g[k].node, sizeof(g[k].node), e, "node") < 0 ||
		    !g[k].node[0] || copy_field(g[k].name, sizeof(g[k].name), e, "name") < 0 ||
		    copy_field(g[k].status, sizeof(g[k].status), e, "status") < 0 ||
		    copy_field(g[k].lock, sizeof(g[k].lock), e, "lock") < 0)
			return -EBADMSG;
		g[k].vmid = (unsigned)vmid;
		g[k].template = flag(e, "template");
		k++;
	}
	*ret = TAKE_PTR(g);
	*ret_n = k;
	return 0;
}

int pve_cluster_guests(struct pve_client *c, struct pve_guest **ret, size_t *ret_n)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_json_ struct json_object *d = NULL;
	int r = pve_params_add(&p, "type", "vm");

	if (r >= 0)
		r = pve_call(c, HTTP_GET, "/cluster/resources", &p, &d);
	if (r < 0)
		return r;
	r = pve_decode_guests(d, ret, ret_n);
	return r == -EBADMSG ? bad_answer(c, "GET /cluster/resources") : r;
}

const struct pve_guest *pve_guest_find(const struct pve_guest *g, size_t n, unsigned vmid)
{
	for (size_t i = 0; i < n; i++)
		if (g[i].vmid == vmid)
			return &g[i];
	return NULL;
}

int pve_vm_config(struct pve_client *c, const char *node, unsigned vmid, struct json_object **ret)
{
	struct json_object *d = NULL;
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/config");

	if (r >= 0)
		r = pve_call(c, HTTP_GET, path, NULL, &d);
	if (r < 0)
		return r;
	if (!d || !json_object_is_type(d, json_type_object)) {
		json_object_put(d);
		return bad_answer(c, "GET qemu config");
	}
	*ret = d;
	return 0;
}

int pve_vm_create(struct pve_client *c, const char *node, const struct pve_params *p)
{
	_cleanup_free_ char *e = NULL, *path = NULL;

	if (pve_escape(node, &e) < 0 || asprintf(&path, "/nodes/%s/qemu", e) < 0)
		return -ENOMEM;
	return pve_call_task(c, HTTP_POST, path, p);
}

int pve_vm_update(struct pve_client *c, const char *node, unsigned vmid, const struct pve_params *p)
{
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/config");

	return r < 0 ? r : pve_call_task(c, HTTP_POST, path, p);
}

int pve_vm_template(struct pve_client *c, const char *node, unsigned vmid)
{
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/template");

	return r < 0 ? r : pve_call_task(c, HTTP_POST, path, NULL);
}

int pve_vm_restore(struct pve_client *c, const char *node, unsigned vmid, const char *archive, const char *storage,
		   bool force)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	int r = pve_params_add_int(&p, "vmid", vmid);

	if (r >= 0)
		r = pve_params_add(&p, "archive", archive);
	if (r >= 0 && storage)
		r = pve_params_add(&p, "storage", storage);
	if (r >= 0 && force)
		r = pve_params_add_bool(&p, "force", true);
	return r < 0 ? r : pve_vm_create(c, node, &p);
}

/* qemu-server takes the source's config lock for the clone; a second one
 * waits 10 s for it, then "can't lock file '/var/lock/qemu-server/
 * lock-VMID.conf' - got timeout" (the API call or the task fails). */
static bool lock_timeout(const char *err)
{
	return strstr(err, "can't lock file") && strstr(err, "got timeout");
}

int pve_vm_clone(struct pve_client *c, const char *node, unsigned vmid, unsigned newid, const char *name, bool full,
		 const char *storage)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/clone");

	if (r >= 0)
		r = pve_params_add_int(&p, "newid", newid);
	if (r >= 0)
		r = pve_params_add(&p, "name", name);
	if (r >= 0)
		r = pve_params_add_bool(&p, "full", full);
	if (r >= 0 && full && storage)
		r = pve_params_add(&p, "storage", storage);
	if (r < 0)
		return r;
	r = pve_call_task(c, HTTP_POST, path, &p);
	if (r < 0 && (r == -EREMOTEIO || r == -EIO) && lock_timeout(pve_client_error(c)))
		return -EBUSY;
	return r;
}

int pve_vm_resize(struct pve_client *c, const char *node, unsigned vmid, const char *disk, uint64_t bytes)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_json_ struct json_object *d = NULL;
	char path[PATH_MAX_LEN], size[32];
	int r = vm_path(path, sizeof(path), node, vmid, "/resize");

	/* Whole MiB as "NM": the unit Proxmox rounds disk sizes to. */
	snprintf(size, sizeof(size), "%" PRIu64 "M", (bytes + (1u << 20) - 1) >> 20);
	if (r >= 0)
		r = pve_params_add(&p, "disk", disk);
	if (r >= 0)
		r = pve_params_add(&p, "size", size);
	if (r >= 0)
		r = pve_call(c, HTTP_PUT, path, &p, &d);
	if (r < 0)
		return r;
	/* A task in Proxmox 9 (the schema returns a UPID); null before. */
	if (d && json_object_is_type(d, json_type_string))
		return pve_task_wait(c, json_object_get_string(d));
	return 0;
}

int pve_vm_status(struct pve_client *c, const char *node, unsigned vmid, char ret[16])
{
	_cleanup_json_ struct json_object *d = NULL;
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/status/current");

	if (r >= 0)
		r = pve_call(c, HTTP_GET, path, NULL, &d);
	if (r < 0)
		return r;
	if (!d || copy_field(ret, 16, d, "status") < 0 || !ret[0])
		return bad_answer(c, "GET qemu status");
	return 0;
}

int pve_vm_start(struct pve_client *c, const char *node, unsigned vmid)
{
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/status/start");

	return r < 0 ? r : pve_call_task(c, HTTP_POST, path, NULL);
}

int pve_vm_destroy(struct pve_client *c, const char *node, unsigned vmid)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, NULL);

	if (r >= 0)
		r = pve_params_add_bool(&p, "purge", true);
	if (r >= 0)
		r = pve_params_add_bool(&p, "destroy-unreferenced-disks", true);
	return r < 0 ? r : pve_call_task(c, HTTP_DELETE, path, &p);
}

int pve_vm_agent_ping(struct pve_client *c, const char *node, unsigned vmid)
{
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/agent/ping");

	return r < 0 ? r : pve_call(c, HTTP_POST, path, NULL, NULL);
}

/* {"result": [{"name": "eth0", "hardware-address": "bc:24:11:..",
 *   "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.10.21",
 *   "prefix": 24}, ...]}, ...]} — the guest agent's answer, passed through. */
int pve_decode_agent_ipv4(struct json_object *d, const char *mac, uint32_t *ret, size_t max, size_t *ret_n)
{
	struct json_object *list = json_get_array(d, "result");
	size_t k = 0;

	if (!list)
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		const char *hw = json_get_string(e, "hardware-address");
		struct json_object *ips = json_get_array(e, "ip-addresses");

		if (!hw || strcasecmp(hw, mac) != 0 || !ips)
			continue;
		for (size_t j = 0; j < json_object_array_length(ips); j++) {
			struct json_object *a = json_object_array_get_idx(ips, j);
			const char *type = json_get_string(a, "ip-address-type");
			const char *ip = json_get_string(a, "ip-address");
			uint32_t v;

			if (!type || !streq(type, "ipv4") || !ip || parse_ipv4(ip, &v) < 0)
				continue;
			if (k < max)
				ret[k] = v;
			k++;
		}
	}
	*ret_n = k < max ? k : max;
	return 0;
}

int pve_vm_agent_ipv4(struct pve_client *c, const char *node, unsigned vmid, const char *mac, uint32_t *ret,
		      size_t max, size_t *ret_n)
{
	_cleanup_json_ struct json_object *d = NULL;
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/agent/network-get-interfaces");

	if (r >= 0)
		r = pve_call(c, HTTP_GET, path, NULL, &d);
	if (r < 0)
		return r;
	r = pve_decode_agent_ipv4(d, mac, ret, max, ret_n);
	return r == -EBADMSG ? bad_answer(c, "GET agent/network-get-interfaces") : r;
}

/* ---- guest agent: commands --------------------------------------------- */

int pve_vm_agent_exec(struct pve_client *c, const char *node, unsigned vmid, const char *const *argv,
		      const char *input, unsigned *ret_pid)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_(json_object_putp) struct json_object *d = NULL;
	char path[PATH_MAX_LEN];
	uint64_t pid;
	int r = vm_path(path, sizeof(path), node, vmid, "/agent/exec");

	/* an array parameter is the key repeated, in order */
	for (size_t i = 0; r >= 0 && argv[i]; i++)
		r = pve_params_add(&p, "command", argv[i]);
	if (r >= 0 && input)
		r = pve_params_add_secret(&p, "input-data", input);
	if (r >= 0)
		r = pve_call(c, HTTP_POST, path, &p, &d);
	if (r < 0)
		return r;
	if (json_get_u64(d, "pid", &pid) < 0 || pid > UINT32_MAX) {
		pve_client_set_error(c, "%s: no pid in the answer", path);
		return -EBADMSG;
	}
	*ret_pid = (unsigned)pid;
	return 0;
}

static char *dup_field(const struct json_object *d, const char *key)
{
	const char *s = json_get_string(d, key);

	return strdup(s ? s : "");
}

int pve_decode_exec_status(struct json_object *d, struct pve_exec_status *ret)
{
	struct json_object *v;
	uint64_t n;

	*ret = (struct pve_exec_status){ .exitcode = -1, .signal = -1 };
	if (!json_object_is_type(d, json_type_object) || !json_object_object_get_ex(d, "exited", &v))
		return -EBADMSG;
	ret->exited = json_object_get_boolean(v);
	if (json_get_u64(d, "exitcode", &n) == 0 && n <= INT32_MAX)
		ret->exitcode = (int)n;
	if (json_get_u64(d, "signal", &n) == 0 && n <= INT32_MAX)
		ret->signal = (int)n;
	ret->out = dup_field(d, "out-data");
	ret->err = dup_field(d, "err-data");
	if (!ret->out || !ret->err) {
		pve_exec_status_done(ret);
		return -ENOMEM;
	}
	return 0;
}

int pve_vm_agent_exec_status(struct pve_client *c, const char *node, unsigned vmid, unsigned pid,
			     struct pve_exec_status *ret)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	_cleanup_(json_object_putp) struct json_object *d = NULL;
	char path[PATH_MAX_LEN];
	int r = vm_path(path, sizeof(path), node, vmid, "/agent/exec-status");

	if (r >= 0)
		r = pve_params_add_int(&p, "pid", pid);
	if (r >= 0)
		r = pve_call(c, HTTP_GET, path, &p, &d);
	if (r < 0)
		return r;
	r = pve_decode_exec_status(d, ret);
	if (r == -EBADMSG)
		pve_client_set_error(c, "%s: an answer without 'exited'", path);
	return r;
}

void pve_exec_status_done(struct pve_exec_status *s)
{
	free(s->out);
	free(s->err);
	s->out = s->err = NULL;
}
