/* SPDX-License-Identifier: MIT */
/*
 * guests.c — the storage, template and vm steps; see guests.h and
 * docs/guests.md.
 */
#define _GNU_SOURCE 1
#include "guests.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/sig-mbedtls.h"
#include "guests/cloudinit.h"
#include "guests/isoimage.h"
#include "log.h"
#include "parse.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/pve-guest.h"

#define LOCAL_STORAGE "local"
#define SEED_LABEL "cidata"
#define PAYLOAD_LABEL "DEVOPSLAB"
#define SEED_DRIVE "ide2"
#define PAYLOAD_DRIVE "ide3"
#define NAME_MAX_LEN 128
#define MAX_IPS 16
#define MAX_LIST 256
#define HEX_LEN (2 * SIG_SHA256_LEN)

/* What a context and its workers' clones share: one ISO made at a time
 * (libisofs keeps process-wide state, isoimage.c). */
struct guests_shared {
	pthread_mutex_t iso_lock;
	unsigned refs; /* under iso_lock */
};

struct guests_ctx {
	struct guests_cfg cfg;
	char *assets_dir, *work_dir;
	struct pve_client *own_client; /* a worker's (guests_ctx_clone()), else NULL */
	struct guests_shared *shared;
};

/* ---- context ------------------------------------------------------------- */

int guests_ctx_new(const struct guests_cfg *cfg, struct guests_ctx **ret)
{
	_cleanup_(guests_ctx_freep) struct guests_ctx *g = NULL;

	if (!cfg->client || !cfg->work_dir)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->cfg = *cfg;
	g->work_dir = strdup(cfg->work_dir);
	g->assets_dir = cfg->assets_dir ? strdup(cfg->assets_dir) : NULL;
	if (!g->work_dir || (cfg->assets_dir && !g->assets_dir))
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees g (cppcheck 2.10 misses it) */
	g->cfg.work_dir = g->work_dir;
	g->cfg.assets_dir = g->assets_dir;
	g->shared = calloc(1, sizeof(*g->shared));
	if (!g->shared)
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees g */
	pthread_mutex_init(&g->shared->iso_lock, NULL);
	g->shared->refs = 1;
	if (!g->cfg.poll_ms)
		g->cfg.poll_ms = 2000;
	if (!g->cfg.boot_timeout_ms)
		g->cfg.boot_timeout_ms = 15 * 60 * 1000;
	if (!g->cfg.lock_timeout_ms)
		g->cfg.lock_timeout_ms = 10 * 60 * 1000;
	*ret = TAKE_PTR(g);
	return 0;
}

int guests_ctx_clone(const struct guests_ctx *g, unsigned worker, struct guests_ctx **ret)
{
	_cleanup_(guests_ctx_freep) struct guests_ctx *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->cfg = g->cfg;
	c->assets_dir = g->assets_dir ? strdup(g->assets_dir) : NULL;
	if (asprintf(&c->work_dir, "%s/w%u", g->work_dir, worker) < 0)
		c->work_dir = NULL;
	if (!c->work_dir || (g->assets_dir && !c->assets_dir))
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees c (cppcheck 2.10 misses it) */
	c->cfg.work_dir = c->work_dir;
	c->cfg.assets_dir = c->assets_dir;
	if (mkdir(c->work_dir, 0700) < 0 && errno != EEXIST)
		return negative_errno();
	r = pve_client_clone(g->cfg.client, worker + 1, &c->own_client);
	if (r < 0)
		return r;
	c->cfg.client = c->own_client;
	pthread_mutex_lock(&g->shared->iso_lock);
	g->shared->refs++;
	pthread_mutex_unlock(&g->shared->iso_lock);
	c->shared = g->shared;
	*ret = TAKE_PTR(c);
	return 0;
}

struct guests_ctx *guests_ctx_free(struct guests_ctx *g)
{
	if (!g)
		return NULL;
	if (g->shared) {
		unsigned left;

		pthread_mutex_lock(&g->shared->iso_lock);
		left = --g->shared->refs;
		pthread_mutex_unlock(&g->shared->iso_lock);
		if (!left) {
			pthread_mutex_destroy(&g->shared->iso_lock);
			free(g->shared);
		}
	}
	pve_client_free(g->own_client);
	free(g->assets_dir);
	free(g->work_dir);
	free(g);
	return NULL;
}

static void progress(struct guests_ctx *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct guests_ctx *g, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (g->cfg.progress)
		g->cfg.progress(g->cfg.userdata, msg);
	else
		log_info("%s", msg);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


static struct guests_ctx *gctx(struct run_ctx *ctx)
{
	return ctx->guests;
}

/* The client's error text into the step's error. */
static int api_error(struct run_ctx *ctx, int r, const char *what)
{
	return run_ctx_error(ctx, r, "%s: %s", what, pve_client_error(gctx(ctx)->cfg.client));
}

/* ---- parameters ------------------------------------------------------------ */

static const char *pstr(const struct step *s, const char *key)
{
	return step_param_string(s, key);
}

static int pu64(struct run_ctx *ctx, const struct step *s, const char *key, uint64_t *ret)
{
	int r = step_param_u64(s, key, ret);

	return r < 0 ? run_ctx_error(ctx, -EINVAL, "the step has no parameter '%s'", key) : 0;
}

static bool pbool(const struct step *s, const char *key, bool dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(s->params, key, &v) || !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}

static const char *sub_str(const struct step *s, const char *obj, const char *key)
{
	return json_get_string(json_get_object(s->params, obj), key);
}

/* ---- small helpers ----------------------------------------------------------- */

static int sha256_file(const char *path, char hex[HEX_LEN + 1])
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_(sig_sha256_freep) struct sig_sha256 *h = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	uint8_t d[SIG_SHA256_LEN];

	if (fd < 0)
		return negative_errno();
	h = sig_sha256_new();
	buf = malloc(1 << 20);
	if (!h || !buf)
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees h, buf (cppcheck 2.10 misses it) */
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 20);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			break;
		sig_sha256_update(h, buf, (size_t)n);
	}
	sig_sha256_final(h, d);
	sig_hex(d, hex);
	return 0;
}

/* An asset's digest: the bundle's signed one when there is a bundle, else
 * the file's. */
static int asset_digest(struct guests_ctx *g, const char *file, char hex[HEX_LEN + 1])
{
	_cleanup_free_ char *path = NULL, *member = NULL;

	if (!g->assets_dir)
		return -ENOENT;
	if (asprintf(&path, "%s/%s", g->assets_dir, file) < 0 || asprintf(&member, "assets/%s", file) < 0)
		return -ENOMEM;
	if (g->cfg.bundle) {
		const struct bundle_member *m = bundle_find(g->cfg.bundle, member);

		if (!m)
			return -ENOENT;
		sig_hex(m->sha256, hex);
		return 0;
	}
	return sha256_file(path, hex);
}

static void short_hash(const void *data, size_t n, char out[13])
{
	uint8_t d[SIG_SHA256_LEN];
	char hex[HEX_LEN + 1];

	sig_sha256(data, n, d);
	sig_hex(d, hex);
	memcpy(out, hex, 12);
	out[12] = 0;
}

/* Proxmox property strings: "virtio=BC:24:11:00:00:01,bridge=vmbr0". The
 * value of key (or of the first, key-less element when key is NULL). */
static bool prop_get(const char *s, const char *key, char *buf, size_t size)
{
	const char *p = s;

	while (p && *p) {
		const char *end = strchr(p, ','), *eq = strchr(p, '=');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (!key) {
			if (len >= size)
				return false;
			memcpy(buf, p, len);
			buf[len] = 0;
			return true;
		}
		if (eq && eq < p + len && (size_t)(eq - p) == strlen(key) && strncmp(p, key, strlen(key)) == 0) {
			size_t vl = len - (size_t)(eq - p) - 1;

			if (vl >= size)
				return false;
			memcpy(buf, eq + 1, vl);
			buf[vl] = 0;
			return true;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* "20G", "512M", "10240K", "1T", bytes without unit. */
static uint64_t parse_disk_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);

	switch (*end) {
	case 'K': return v << 10;
	case 'M': return v << 20;
	case 'G': return v << 30;
	case 'T': return v << 40;
	default: return v;
	}
}

static const char *cfg_str(const struct json_object *cfg, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(cfg, key, &v) || !v)
		return NULL;
	return json_object_get_string(v); /* numbers as text, too */
}

/* memory is "[current=]N" in Proxmox 9, a number before. */
static uint64_t cfg_memory(const struct json_object *cfg)
{
	const char *s = cfg_str(cfg, "memory");
	char buf[32];

	if (!s)
		return 512; /* qemu-server's default */
	if (prop_get(s, "current", buf, sizeof(buf)))
		return strtoull(buf, NULL, 10);
	return strtoull(s, NULL, 10);
}

static uint64_t cfg_uint(const struct json_object *cfg, const char *key, uint64_t dflt)
{
	const char *s = cfg_str(cfg, key);

	return s ? strtoull(s, NULL, 10) : dflt;
}

static bool cfg_agent(const struct json_object *cfg)
{
	const char *s = cfg_str(cfg, "agent");
	char buf[8];

	if (!s)
		return false;
	if (prop_get(s, "enabled", buf, sizeof(buf)))
		return streq(buf, "1");
	return prop_get(s, NULL, buf, sizeof(buf)) && streq(buf, "1");
}

/* The volume of a drive ("local:iso/x.iso,media=cdrom" -> "local:iso/x.iso"). */
static bool cfg_volume(const struct json_object *cfg, const char *drive, char *buf, size_t size)
{
	const char *s = cfg_str(cfg, drive);

	return s && prop_get(s, NULL, buf, size);
}

/* ---- the cluster's guests ------------------------------------------------------- */

struct guest_list {
	struct pve_guest *g;
	size_t n;
};

static void guest_list_done(struct guest_list *l)
{
	free(l->g);
	l->g = NULL;
	l->n = 0;
}

static int list_guests(struct run_ctx *ctx, struct guest_list *l)
{
	int r;

	guest_list_done(l);
	r = pve_cluster_guests(gctx(ctx)->cfg.client, &l->g, &l->n);
	return r < 0 ? api_error(ctx, r, "listing the cluster's guests") : 0;
}

/* Ours: the same VMID, name, node and kind; otherwise a refusal. */
static int owned(struct run_ctx *ctx, const struct pve_guest *pg, const char *name, const char *node, bool tmpl)
{
	if (!streq(pg->name, name))
		return run_ctx_error(ctx, -EEXIST,
				     "VMID %u is '%s' on node '%s', not '%s': another guest holds this VMID; "
				     "refusing to touch it (free the VMID or change the manifest's vmid)",
				     pg->vmid, pg->name, pg->node, name);
	if (!streq(pg->node, node))
		return run_ctx_error(ctx, -EEXIST,
				     "%s (VMID %u) is on node '%s', the manifest puts it on '%s': refusing to move it; "
				     "migrate it back or change the manifest",
				     name, pg->vmid, pg->node, node);
	if (pg->template != tmpl)
		return run_ctx_error(ctx, -EEXIST, "VMID %u ('%s') is %s, the manifest wants %s", pg->vmid, name,
				     pg->template ? "a template" : "a VM", tmpl ? "a template" : "a VM");
	return 0;
}

/* A guest with a task on it (clone, create) is locked: wait it out. */
static int wait_unlocked(struct run_ctx *ctx, unsigned vmid, struct guest_list *l, const struct pve_guest **ret)
{
	struct guests_ctx *g = gctx(ctx);
	uint64_t deadline = now_ms() + g->cfg.lock_timeout_ms;
	int r;

	for (;;) {
		const struct pve_guest *pg;

		r = list_guests(ctx, l);
		if (r < 0)
			return r;
		pg = pve_guest_find(l->g, l->n, vmid);
		if (!pg || !pg->lock[0]) {
			*ret = pg;
			return 0;
		}
		if (now_ms() >= deadline)
			return run_ctx_error(ctx, -ETIMEDOUT, "VMID %u is still locked (%s) after %" PRIu64 " s", vmid,
					     pg->lock, g->cfg.lock_timeout_ms / 1000);
		progress(g, "VMID %u is locked (%s): waiting", vmid, pg->lock);
		sleep_ms(g->cfg.poll_ms);
	}
}

/* ---- storage content ------------------------------------------------------------ */

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* Enable a content type on a storage (cluster-wide), keeping the others. */
static int ensure_content(struct run_ctx *ctx, const char *storage, const char *type)
{
	struct guests_ctx *g = gctx(ctx);
	char have[PVE_CONTENT_MAX], want[PVE_CONTENT_MAX + 32];
	int r = pve_storage_content_types(g->cfg.client, storage, have);

	if (r < 0)
		return api_error(ctx, r, "reading the storage configuration");
	if (has_word(have, type))
		return 0;
	snprintf(want, sizeof(want), "%s%s%s", have, have[0] ? "," : "", type);
	progress(g, "storage '%s': enabling content type '%s' (had: %s)", storage, type, have[0] ? have : "none");
	r = pve_storage_set_content_types(g->cfg.client, storage, want);
	return r < 0 ? api_error(ctx, r, "changing the storage's content types") : 0;
}

/* Is local:<content>/<name> on the node? */
static int volume_present(struct run_ctx *ctx, const char *node, const char *content, const char *name,
			  bool *ret)
{
	_cleanup_free_ struct pve_volume *v = NULL;
	char volid[PVE_VOLID_MAX];
	size_t n = 0;
	int r = pve_storage_volumes(gctx(ctx)->cfg.client, node, LOCAL_STORAGE, content, &v, &n);

	if (r < 0)
		return api_error(ctx, r, "listing the node's files");
	snprintf(volid, sizeof(volid), LOCAL_STORAGE ":%s/%s", content, name);
	*ret = false;
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].volid, volid))
			*ret = true;
	return 0;
}

/* A disk of the guest's configuration names a volume its storage no
 * longer has (the node was rebuilt: the cluster kept the configuration,
 * the node's own storage lost the disk). A configuration without disks
 * (a create or clone a killed run left) has none gone. */
static int disk_gone(struct run_ctx *ctx, const char *node, struct json_object *cfg, bool *ret)
{
	*ret = false;
	json_object_object_foreach(cfg, key, val) {
		_cleanup_free_ struct pve_volume *v = NULL;
		char volid[PVE_VOLID_MAX], storage[PVE_VOLID_MAX], media[16];
		const char *colon, *s = json_object_get_string(val);
		size_t n = 0, k = strcspn(key, "0123456789");
		bool found = false;
		int r;

		if (!s || !key[k] || key[k + strspn(key + k, "0123456789")] ||
		    !((k == 4 && (strncmp(key, "scsi", 4) == 0 || strncmp(key, "sata", 4) == 0)) ||
		      (k == 6 && strncmp(key, "virtio", 6) == 0) || (k == 3 && strncmp(key, "ide", 3) == 0)))
			continue; /* not a disk drive */
		if ((prop_get(s, "media", media, sizeof(media)) && streq(media, "cdrom")) ||
		    !prop_get(s, NULL, volid, sizeof(volid)) || !(colon = strchr(volid, ':')))
			continue; /* a CD-ROM (seeds, cloud-init) or no volume */
		snprintf(storage, sizeof(storage), "%.*s", (int)(colon - volid), volid);
		r = pve_storage_volumes(gctx(ctx)->cfg.client, node, storage, "images", &v, &n);
		if (r < 0)
			return api_error(ctx, r, "listing the disks on the node");
		for (size_t i = 0; i < n && !found; i++)
			found = streq(v[i].volid, volid);
		if (!found) {
			*ret = true;
			return 0;
		}
	}
	return 0;
}

/* Upload `path` as local:<content>/<name> unless it is there. */
static int upload(struct run_ctx *ctx, const char *node, const char *content, const char *path, const char *name,
		  const char *sha256)
{
	struct guests_ctx *g = gctx(ctx);
	struct stat st;
	bool present;
	int r = volume_present(ctx, node, content, name, &present);

	if (r < 0 || present)
		return r;
	if (stat(path, &st) < 0)
		return run_ctx_error(ctx, negative_errno(), "%s: %m", path);
	progress(g, "uploading %s to %s (%.1f MiB, SHA-256 %.12s…)", name, node, st.st_size / 1048576.0, sha256);
	r = pve_upload(g->cfg.client, node, LOCAL_STORAGE, content, path, name, sha256);
	return r < 0 ? api_error(ctx, r, "uploading") : 0;
}

/* ---- storage step ------------------------------------------------------------- */

static uint64_t qcow2_or_file_size(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t h[32];
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		return 0;
	if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) && memcmp(h, "QFI\xfb", 4) == 0) {
		uint64_t v = 0;

		for (int i = 24; i < 32; i++) /* the virtual size, big-endian */
			v = v << 8 | h[i];
		return v;
	}
	return (uint64_t)st.st_size;
}

/* Bytes the plan still has to allocate on `storage` of `node`: disks of
 * guests that do not exist yet (the ones that exist already took theirs). */
static int bytes_needed(struct run_ctx *ctx, const struct guest_list *l, const char *storage, const char *node,
			uint64_t *ret)
{
	const struct manifest *m = ctx->manifest;
	struct guests_ctx *g = gctx(ctx);
	uint64_t need = 0;

	for (size_t i = 0; i < m->n_templates; i++) {
		const struct mf_template *t = &m->templates[i];
		const struct mf_asset *a = manifest_find_asset(m, t->image);

		if (!streq(t->storage, storage))
			continue;
		for (size_t k = 0; k < t->n_target_nodes; k++) {
			_cleanup_free_ char *path = NULL;

			if (!streq(t->target_nodes[k], node) || pve_guest_find(l->g, l->n, t->vmid + (unsigned)k))
				continue;
			if (a && g->assets_dir && asprintf(&path, "%s/%s", g->assets_dir, a->file) >= 0)
				need += qcow2_or_file_size(path);
		}
	}
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct mf_vm_group *grp = &m->vms[i];

		if (!streq(grp->disk.storage, storage))
			continue;
		for (unsigned k = 0; k < grp->count; k++) {
			struct mf_vm vm;

			if (manifest_vm_expand(grp, k, &vm) < 0)
				return run_ctx_error(ctx, -EINVAL, "cannot expand VM %u of group %s", k + 1, grp->id);
			if (streq(vm.target_node, node) && !pve_guest_find(l->g, l->n, vm.vmid))
				need += grp->disk.size;
		}
	}
	*ret = need;
	return 0;
}

static int storage_run(struct run_ctx *ctx, const struct step *s, bool apply, bool *ret_done)
{
	struct guests_ctx *g = gctx(ctx);
	const char *storage = pstr(s, "storage");
	struct json_object *nodes = json_get_array(s->params, "nodes"), *content = json_get_array(s->params, "content");
	_cleanup_(guest_list_done) struct guest_list l = {};
	bool done = true;
	int r;

	if (!storage || !nodes)
		return run_ctx_error(ctx, -EINVAL, "the step has no storage or nodes");
	r = list_guests(ctx, &l);
	if (r < 0)
		return r;
	for (size_t i = 0; content && i < json_object_array_length(content); i++) {
		const char *type = json_object_get_string(json_object_array_get_idx(content, i));
		char have[PVE_CONTENT_MAX];

		r = pve_storage_content_types(g->cfg.client, storage, have);
		if (r < 0)
			return api_error(ctx, r, "reading the storage configuration");
		if (has_word(have, type))
			continue;
		done = false;
		if (apply) {
			r = ensure_content(ctx, storage, type);
			if (r < 0)
				return r;
		}
	}
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		const char *node = json_object_get_string(json_object_array_get_idx(nodes, i));
		struct pve_storage_status st;
		uint64_t need = 0;

		r = pve_storage_status(g->cfg.client, node, storage, &st);
		if (r == -EREMOTEIO || r == -ENOENT)
			return run_ctx_error(ctx, -ENOENT, "storage '%s' does not exist on node '%s': %s", storage, node,
					     pve_client_error(g->cfg.client));
		if (r < 0)
			return api_error(ctx, r, "reading the storage's status");
		if (!st.enabled || !st.active)
			return run_ctx_error(ctx, -ENODEV, "storage '%s' on node '%s' is %s", storage, node,
					     !st.enabled ? "disabled" : "not active");
		r = bytes_needed(ctx, &l, storage, node, &need);
		if (r < 0)
			return r;
		if (need > st.avail)
			return run_ctx_error(ctx, -ENOSPC,
					     "storage '%s' on node '%s' has %.1f GiB free; the guests still to be made "
					     "there need %.1f GiB",
					     storage, node, st.avail / 1073741824.0, need / 1073741824.0);
	}
	*ret_done = done;
	return 0;
}

static int storage_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	return storage_run(ctx, s, false, ret_done);
}

static int storage_apply(struct run_ctx *ctx, const struct step *s)
{
	bool done;

	return storage_run(ctx, s, true, &done);
}

const struct step_ops guests_storage_ops = { .check = storage_check, .apply = storage_apply };

/* ---- template step ---------------------------------------------------------------- */

static int template_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	_cleanup_(guest_list_done) struct guest_list l = {};
	_cleanup_json_ struct json_object *cfg = NULL;
	const struct pve_guest *pg;
	bool gone;
	uint64_t vmid;
	int r = pu64(ctx, s, "vmid", &vmid);

	if (r >= 0)
		r = list_guests(ctx, &l);
	if (r < 0)
		return r;
	pg = pve_guest_find(l.g, l.n, (unsigned)vmid);
	*ret_done = false;
	/* A task holds it (a create of ours that a killed run left going):
	 * not done; apply waits for the lock before it looks closer. */
	if (!pg || pg->lock[0])
		return 0;
	if (!pg->template && streq(pg->name, pstr(s, "name")) && streq(pg->node, pstr(s, "node")))
		return 0; /* ours, half made: apply finishes it */
	r = owned(ctx, pg, pstr(s, "name"), pstr(s, "node"), true);
	if (r < 0)
		return r;
	r = pve_vm_config(gctx(ctx)->cfg.client, pg->node, pg->vmid, &cfg);
	if (r < 0)
		return api_error(ctx, r, "reading the template's VM");
	r = disk_gone(ctx, pg->node, cfg, &gone);
	*ret_done = r >= 0 && cfg_str(cfg, "scsi0") && !gone;
	return r;
}

/* The image's format by its header: qcow2 or raw (what import-from reads). */
static const char *image_ext(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char magic[4];

	if (fd >= 0 && pread(fd, magic, 4, 0) == 4 && memcmp(magic, "QFI\xfb", 4) == 0)
		return "qcow2";
	return "raw";
}

static int template_create(struct run_ctx *ctx, const struct step *s, unsigned vmid, const char *volume)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	struct guests_ctx *g = gctx(ctx);
	const char *node = pstr(s, "node"), *storage = pstr(s, "storage"), *name = pstr(s, "name");
	char disk[PVE_VOLID_MAX + 64];
	int r;

	snprintf(disk, sizeof(disk), "%s:0,import-from=%s,discard=on", storage, volume);
	r = pve_params_add_int(&p, "vmid", vmid);
	if (r >= 0)
		r = pve_params_add(&p, "name", name);
	/* What a cloud image needs (docs/guests.md): a CPU model with the
	 * x86-64-v2 instructions current distributions require (not kvm64),
	 * virtio-scsi with one controller per disk, a serial console, the
	 * guest agent; the VMs' own sizes are set on the clones. */
	if (r >= 0)
		r = pve_params_add(&p, "ostype", "l26");
	if (r >= 0)
		r = pve_params_add(&p, "cpu", "x86-64-v2-AES");
	if (r >= 0)
		r = pve_params_add_int(&p, "cores", 1);
	if (r >= 0)
		r = pve_params_add_int(&p, "memory", 1024);
	if (r >= 0)
		r = pve_params_add(&p, "scsihw", "virtio-scsi-single");
	if (r >= 0)
		r = pve_params_add(&p, "scsi0", disk);
	if (r >= 0)
		r = pve_params_add(&p, "boot", "order=scsi0");
	if (r >= 0)
		r = pve_params_add(&p, "serial0", "socket");
	if (r >= 0)
		r = pve_params_add(&p, "vga", "serial0");
	if (r >= 0)
		r = pve_params_add(&p, "agent", "enabled=1");
	if (r >= 0)
		r = pve_params_add(&p, "net0", "virtio,bridge=vmbr0");
	if (r >= 0)
		r = pve_params_add(&p, "description", "Made by devopslab from the bundle's image (docs/guests.md).");
	if (r < 0)
		return run_ctx_error(ctx, r, "out of memory");
	progress(g, "creating template %s (VMID %u) on %s from %s", name, vmid, node, volume);
	r = pve_vm_create(g->cfg.client, node, &p);
	return r < 0 ? api_error(ctx, r, "creating the template's VM") : 0;
}

static int template_apply(struct run_ctx *ctx, const struct step *s)
{
	struct guests_ctx *g = gctx(ctx);
	_cleanup_(guest_list_done) struct guest_list l = {};
	_cleanup_free_ char *path = NULL;
	const char *node = pstr(s, "node"), *file = pstr(s, "file"), *image = pstr(s, "image");
	const struct pve_guest *pg;
	char hex[HEX_LEN + 1], name[NAME_MAX_LEN], volume[PVE_VOLID_MAX];
	uint64_t vmid;
	int r = pu64(ctx, s, "vmid", &vmid);

	if (r < 0)
		return r;
	if (!node || !file || !image || !g->assets_dir)
		return run_ctx_error(ctx, -EINVAL, "the template step needs node, image, file and the bundle's assets");
	if (asprintf(&path, "%s/%s", g->assets_dir, file) < 0)
		return -ENOMEM;
	r = asset_digest(g, file, hex);
	if (r < 0)
		return run_ctx_error(ctx, r, "asset '%s' (%s): %s", image, path, strerror(-r));
	/* By content: a changed image is a new file, never a half-replaced one. */
	snprintf(name, sizeof(name), "devopslab-%s-%.12s.%s", image, hex, image_ext(path));
	snprintf(volume, sizeof(volume), LOCAL_STORAGE ":import/%s", name);

	r = wait_unlocked(ctx, (unsigned)vmid, &l, &pg);
	if (r < 0)
		return r;
	if (pg) {
		_cleanup_json_ struct json_object *cfg = NULL;
		bool gone = true;

		r = pve_vm_config(g->cfg.client, node, (unsigned)vmid, &cfg);
		if (r < 0)
			return api_error(ctx, r, "reading the template's VM");
		if (cfg_str(cfg, "scsi0")) {
			r = disk_gone(ctx, node, cfg, &gone);
			if (r < 0)
				return r;
			if (gone)
				progress(g, "template %s (VMID %u): its disk is gone (the node was rebuilt); making it "
					    "anew", pg->name, (unsigned)vmid);
		} else /* our create died before it imported the disk: start over */
			progress(g, "VMID %u (%s) has no disk: a create that did not finish; removing it",
				 (unsigned)vmid, pg->name);
		if (gone) {
			r = pve_vm_destroy(g->cfg.client, node, (unsigned)vmid);
			if (r < 0)
				return api_error(ctx, r, "removing the template's VM");
			pg = NULL;
		}
	}
	if (!pg) {
		r = ensure_content(ctx, LOCAL_STORAGE, "import");
		if (r >= 0)
			r = upload(ctx, node, "import", path, name, hex);
		if (r >= 0)
			r = template_create(ctx, s, (unsigned)vmid, volume);
		if (r < 0)
			return r;
	}
	r = pve_vm_template(g->cfg.client, node, (unsigned)vmid);
	if (r < 0)
		return api_error(ctx, r, "converting to a template");
	/* The image is in the template's disk now; its copy on `local` only
	 * takes room. A failure here costs space, not correctness. */
	{
		bool present = false;

		if (volume_present(ctx, node, "import", name, &present) >= 0 && present &&
		    pve_storage_delete_volume(g->cfg.client, node, LOCAL_STORAGE, volume) < 0)
			log_warning("%s: could not remove %s: %s", node, volume, pve_client_error(g->cfg.client));
		ctx->error[0] = 0;
	}
	return 0;
}

const struct step_ops guests_template_ops = { .check = template_check, .apply = template_apply, .concurrent = true };

/* ---- vm step: what the VM should be ------------------------------------------------ */

struct vm_want {
	unsigned vmid, template_vmid;
	const char *name, *node, *clone_storage;
	bool full, agent;
	uint64_t cores, sockets, memory, disk_bytes;
	char disk[16];            /* "scsi0" */
	char net0[128];           /* "virtio=02:..,bridge=vmbr0" */
	const char *mac;
	uint32_t ip, gateway;
	unsigned prefix;
	char seed_name[NAME_MAX_LEN], seed_volume[PVE_VOLID_MAX];
	char payload_name[NAME_MAX_LEN], payload_volume[PVE_VOLID_MAX];
	char *user_data, *meta_data, *network_config;
	size_t user_data_len, meta_data_len, network_config_len;
	struct cloudinit_file files[MAX_LIST];
	char files_src[MAX_LIST][ISOIMAGE_NAME_MAX + 1]; /* the names on the payload ISO */
	const char *files_asset[MAX_LIST];               /* the files below the assets directory */
	char files_hex[MAX_LIST][HEX_LEN + 1];
	size_t n_files;
};

static void vm_want_done(struct vm_want *w)
{
	free(w->user_data);
	free(w->meta_data);
	free(w->network_config);
	w->user_data = w->meta_data = w->network_config = NULL;
}

static int strv_param(struct run_ctx *ctx, const struct step *s, const char *key, const char **v, size_t max,
		      size_t *ret_n)
{
	struct json_object *a = json_get_array(s->params, key);
	size_t n = a ? json_object_array_length(a) : 0;

	if (n > max)
		return run_ctx_error(ctx, -E2BIG, "more than %zu %s", max, key);
	for (size_t i = 0; i < n; i++) {
		v[i] = json_object_get_string(json_object_array_get_idx(a, i));
		if (!v[i])
			return run_ctx_error(ctx, -EINVAL, "%s[%zu] is not a string", key, i);
	}
	*ret_n = n;
	return 0;
}

static int vm_want_files(struct run_ctx *ctx, const struct step *s, struct vm_want *w)
{
	struct guests_ctx *g = gctx(ctx);
	struct json_object *a = json_get_array(s->params, "files");
	_cleanup_free_ char *list = NULL;
	size_t list_len = 0;
	_cleanup_fclose_ FILE *f = NULL;
	char h[13];

	w->n_files = a ? json_object_array_length(a) : 0;
	if (w->n_files > MAX_LIST)
		return run_ctx_error(ctx, -E2BIG, "more than %d payload files", MAX_LIST);
	if (!w->n_files)
		return 0;
	f = open_memstream(&list, &list_len);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_files; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		const char *file = json_get_string(e, "file"), *path = json_get_string(e, "path");
		const char *sha = json_get_string(e, "sha256");
		const char *mode_s = json_get_string(e, "mode");
		unsigned long mode = 0644;
		char *end = NULL;
		int r;

		if (!file || !path)
			return run_ctx_error(ctx, -EINVAL, "files[%zu] needs file and path", i);
		if (mode_s) { /* "0755": octal, as the plan prints it */
			errno = 0;
			mode = strtoul(mode_s, &end, 8);
			if (errno || !*mode_s || *end || mode > 07777)
				return run_ctx_error(ctx, -EINVAL, "files[%zu].mode '%s' is not an octal mode", i, mode_s);
		}
		if (sha && strlen(sha) == HEX_LEN) {
			memcpy(w->files_hex[i], sha, HEX_LEN + 1);
		} else {
			r = asset_digest(g, file, w->files_hex[i]);
			if (r < 0)
				return run_ctx_error(ctx, r, "payload asset '%s': %s", file, strerror(-r));
		}
		/* On the ISO by name, flat: "images/x.tar" is "images_x.tar". */
		if (strlen(file) > ISOIMAGE_NAME_MAX)
			return run_ctx_error(ctx, -ENAMETOOLONG, "payload asset file '%s' has a name over %u bytes", file,
					     ISOIMAGE_NAME_MAX);
		snprintf(w->files_src[i], sizeof(w->files_src[i]), "%s", file);
		for (char *c = w->files_src[i]; *c; c++)
			if (*c == '/')
				*c = '_';
		if (!isoimage_name_ok(w->files_src[i]))
			return run_ctx_error(ctx, -EINVAL, "payload asset file '%s' cannot be named on an ISO", file);
		for (size_t k = 0; k < i; k++)
			if (streq(w->files_src[k], w->files_src[i]) && !streq(w->files_asset[k], file))
				return run_ctx_error(ctx, -EINVAL, "payload files '%s' and '%s' have one name on the ISO",
						     w->files_asset[k], file);
		w->files_asset[i] = file;
		w->files[i] = (struct cloudinit_file){ .source = w->files_src[i], .path = path, .sha256 = w->files_hex[i],
						.mode = (unsigned)mode };
		fprintf(f, "%s %s\n", w->files_hex[i], file);
	}
	if (fflush(f) != 0)
		return -ENOMEM;
	/* The payload ISO holds the files by name: the same files, the same
	 * ISO, shared by every VM on the node that needs them. */
	short_hash(list, list_len, h);
	snprintf(w->payload_name, sizeof(w->payload_name), "devopslab-payload-%s.iso", h);
	snprintf(w->payload_volume, sizeof(w->payload_volume), LOCAL_STORAGE ":iso/%s", w->payload_name);
	return 0;
}

static int vm_want_seed(struct run_ctx *ctx, const struct step *s, struct vm_want *w)
{
	const struct manifest *m = ctx->manifest;
	const char *keys[MAX_LIST], *ns_s[16];
	uint32_t dns[16];
	size_t n_keys = 0, n_ns = 0;
	char fqdn[256], iid[64], h[13];
	_cleanup_free_ char *all = NULL;
	struct cloudinit_vm vm;
	int r;

	r = strv_param(ctx, s, "sshkeys", keys, ELEMENTSOF(keys), &n_keys);
	if (r >= 0)
		r = strv_param(ctx, s, "nameserver", ns_s, ELEMENTSOF(ns_s), &n_ns);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_ns; i++)
		if (parse_ipv4(ns_s[i], &dns[i]) < 0)
			return run_ctx_error(ctx, -EINVAL, "nameserver '%s' is not an IPv4 address", ns_s[i]);
	if (pstr(s, "searchdomain"))
		snprintf(fqdn, sizeof(fqdn), "%s.%s", w->name, pstr(s, "searchdomain"));
	else if (m && m->cluster.domain)
		snprintf(fqdn, sizeof(fqdn), "%s.%s", w->name, m->cluster.domain);
	else
		snprintf(fqdn, sizeof(fqdn), "%s", w->name);
	/* Stable for the VM's life: cloud-init runs its per-instance modules
	 * once, not again for a changed seed (docs/guests.md). */
	snprintf(iid, sizeof(iid), "devopslab-%u", w->vmid);
	vm = (struct cloudinit_vm){
		.hostname = w->name, .fqdn = fqdn, .instance_id = iid, .user = pstr(s, "ciuser"),
		.ssh_keys = keys, .n_ssh_keys = n_keys, .mac = w->mac, .ip = w->ip, .prefix = w->prefix,
		.gateway = w->gateway, .dns = dns, .n_dns = n_ns, .search = pstr(s, "searchdomain"),
		.files = w->files, .n_files = w->n_files, .assets_label = PAYLOAD_LABEL,
	};
	r = cloudinit_user_data(&vm, &w->user_data, &w->user_data_len);
	if (r >= 0)
		r = cloudinit_meta_data(&vm, &w->meta_data, &w->meta_data_len);
	if (r >= 0)
		r = cloudinit_network_config(&vm, &w->network_config, &w->network_config_len);
	if (r < 0)
		return run_ctx_error(ctx, r, "making the cloud-init seed: %s", strerror(-r));
	if (asprintf(&all, "%s%c%s%c%s", w->user_data, 0, w->meta_data, 0, w->network_config) < 0)
		return -ENOMEM;
	short_hash(all, w->user_data_len + w->meta_data_len + w->network_config_len + 2, h);
	snprintf(w->seed_name, sizeof(w->seed_name), "devopslab-seed-%u-%s.iso", w->vmid, h);
	snprintf(w->seed_volume, sizeof(w->seed_volume), LOCAL_STORAGE ":iso/%s", w->seed_name);
	return 0;
}

static int vm_want(struct run_ctx *ctx, const struct step *s, struct vm_want *w)
{
	const char *ip = pstr(s, "ip"), *gw = pstr(s, "gateway"), *type = sub_str(s, "disk", "type");
	const char *model = sub_str(s, "network", "model"), *bridge = sub_str(s, "network", "bridge");
	uint64_t vmid, tvmid;
	struct json_object *disk = json_get_object(s->params, "disk");
	int r;

	r = pu64(ctx, s, "vmid", &vmid);
	if (r >= 0)
		r = pu64(ctx, s, "template_vmid", &tvmid);
	if (r >= 0)
		r = pu64(ctx, s, "cores", &w->cores);
	if (r >= 0)
		r = pu64(ctx, s, "sockets", &w->sockets);
	if (r >= 0)
		r = pu64(ctx, s, "memory_mib", &w->memory);
	if (r < 0)
		return r;
	w->vmid = (unsigned)vmid;
	w->template_vmid = (unsigned)tvmid;
	w->name = pstr(s, "name");
	w->node = pstr(s, "node");
	w->mac = pstr(s, "mac");
	w->full = pbool(s, "full", true);
	w->agent = pbool(s, "agent", false);
	w->clone_storage = sub_str(s, "disk", "storage");
	if (!w->name || !w->node || !w->mac || !ip || !gw || !type || !model || !bridge || !disk ||
	    json_get_u64(disk, "size_bytes", &w->disk_bytes) < 0)
		return run_ctx_error(ctx, -EINVAL, "the vm step lacks name, node, mac, ip, gateway, disk or network");
	if (parse_cidr(ip, false, &w->ip, &w->prefix) < 0 || parse_ipv4(gw, &w->gateway) < 0)
		return run_ctx_error(ctx, -EINVAL, "ip '%s' or gateway '%s' is malformed", ip, gw);
	snprintf(w->disk, sizeof(w->disk), "%s0", type);
	snprintf(w->net0, sizeof(w->net0), "%s=%s,bridge=%s", model, w->mac, bridge);
	r = vm_want_files(ctx, s, w);
	return r < 0 ? r : vm_want_seed(ctx, s, w);
}

/* ---- vm step: how the VM differs --------------------------------------------------- */

struct vm_diff {
	char what[512];  /* "memory 4096 -> 2048, ..." for the report */
	size_t o;
	bool any;
};

static void diff_add(struct vm_diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diff_add(struct vm_diff *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	d->any = true;
	if (d->o >= sizeof(d->what) - 1)
		return;
	if (d->o)
		d->o += (size_t)snprintf(d->what + d->o, sizeof(d->what) - d->o, ", ");
	if (d->o >= sizeof(d->what) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(d->what + d->o, sizeof(d->what) - d->o, fmt, ap);
	va_end(ap);
	if (n > 0)
		d->o += (size_t)n;
}

/* The net0 we want, compared as Proxmox writes it back: model=MAC first,
 * bridge; other flags (firewall=1) are left alone. */
static bool net0_matches(const char *have, const char *want)
{
	char hm[64], wm[64], hb[32], wb[32];

	if (!have || !prop_get(have, NULL, hm, sizeof(hm)) || !prop_get(want, NULL, wm, sizeof(wm)))
		return false;
	return strcasecmp(hm, wm) == 0 && prop_get(have, "bridge", hb, sizeof(hb)) &&
	       prop_get(want, "bridge", wb, sizeof(wb)) && streq(hb, wb);
}

static void vm_compare(const struct vm_want *w, const struct json_object *cfg, struct vm_diff *d, bool *disk_moved,
		       uint64_t *disk_have)
{
	char vol[PVE_VOLID_MAX], size[32];
	const char *disk = cfg_str(cfg, w->disk);

	if (cfg_uint(cfg, "cores", 1) != w->cores)
		diff_add(d, "cores %" PRIu64 " -> %" PRIu64, cfg_uint(cfg, "cores", 1), w->cores);
	if (cfg_uint(cfg, "sockets", 1) != w->sockets)
		diff_add(d, "sockets %" PRIu64 " -> %" PRIu64, cfg_uint(cfg, "sockets", 1), w->sockets);
	if (cfg_memory(cfg) != w->memory)
		diff_add(d, "memory %" PRIu64 " -> %" PRIu64 " MiB", cfg_memory(cfg), w->memory);
	if (cfg_agent(cfg) != w->agent)
		diff_add(d, "agent %d -> %d", cfg_agent(cfg), w->agent);
	if (!net0_matches(cfg_str(cfg, "net0"), w->net0))
		diff_add(d, "net0 '%s' -> '%s'", cfg_str(cfg, "net0") ? cfg_str(cfg, "net0") : "", w->net0);
	if (!cfg_volume(cfg, SEED_DRIVE, vol, sizeof(vol)) || !streq(vol, w->seed_volume))
		diff_add(d, "%s (seed) -> %s", SEED_DRIVE, w->seed_volume);
	if (w->n_files && (!cfg_volume(cfg, PAYLOAD_DRIVE, vol, sizeof(vol)) || !streq(vol, w->payload_volume)))
		diff_add(d, "%s (payload) -> %s", PAYLOAD_DRIVE, w->payload_volume);
	*disk_moved = !disk;
	*disk_have = 0;
	if (!disk)
		diff_add(d, "disk on %s", w->disk);
	else if (prop_get(disk, "size", size, sizeof(size)))
		*disk_have = parse_disk_size(size);
	if (disk && *disk_have < w->disk_bytes)
		diff_add(d, "%s %" PRIu64 " MiB -> %" PRIu64 " MiB", w->disk, *disk_have >> 20, w->disk_bytes >> 20);
}

/* The agent reports the planned address on the VM's NIC. ping (a POST)
 * only while waiting in apply; check() reads with GETs alone. */
static int agent_has_ip(struct guests_ctx *g, const struct vm_want *w, bool ping, bool *ret)
{
	uint32_t ips[MAX_IPS];
	size_t n = 0;
	int r = 0;

	*ret = false;
	if (ping)
		r = pve_vm_agent_ping(g->cfg.client, w->node, w->vmid);
	if (r >= 0)
		r = pve_vm_agent_ipv4(g->cfg.client, w->node, w->vmid, w->mac, ips, MAX_IPS, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (ips[i] == w->ip)
			*ret = true;
	return 0;
}

static int vm_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct guests_ctx *g = gctx(ctx);
	_cleanup_(vm_want_done) struct vm_want w = {};
	_cleanup_(guest_list_done) struct guest_list l = {};
	_cleanup_json_ struct json_object *cfg = NULL;
	const struct pve_guest *pg;
	struct vm_diff d = {};
	bool moved, ip = false;
	uint64_t have;
	int r = vm_want(ctx, s, &w);

	*ret_done = false;
	if (r >= 0)
		r = list_guests(ctx, &l);
	if (r < 0)
		return r;
	pg = pve_guest_find(l.g, l.n, w.vmid);
	/* Locked: a task is on it (our clone, left going by a killed run);
	 * its name may not be set yet. apply waits the task out. */
	if (!pg || pg->lock[0])
		return 0;
	r = owned(ctx, pg, w.name, w.node, false);
	if (r < 0)
		return r;
	r = pve_vm_config(g->cfg.client, w.node, w.vmid, &cfg);
	if (r < 0)
		return api_error(ctx, r, "reading the VM's configuration");
	vm_compare(&w, cfg, &d, &moved, &have);
	if (d.any) {
		progress(g, "%s differs from the manifest: %s", w.name, d.what);
		return 0;
	}
	if (!streq(pg->status, "running"))
		return 0;
	if (w.agent) {
		/* Not answering (yet) is "not done", not an error. */
		if (agent_has_ip(g, &w, false, &ip) < 0 || !ip)
			return 0;
	}
	*ret_done = true;
	return 0;
}

/* ---- vm step: making it so ---------------------------------------------------------- */

/* One file of an ISO: from memory, or from a file on disk. */
struct iso_entry {
	const char *name;
	const void *data;
	size_t len;
	const char *src_path;
};

/* Build a seed or payload ISO in the work directory and upload it. */
static int ensure_iso(struct run_ctx *ctx, const struct vm_want *w, const char *name, const char *label,
		      const struct iso_entry *e, size_t n)
{
	struct guests_ctx *g = gctx(ctx);
	_cleanup_free_ char *path = NULL;
	struct isoimage *img = NULL;
	char hex[HEX_LEN + 1];
	bool present;
	int r = volume_present(ctx, w->node, "iso", name, &present);

	if (r < 0 || present)
		return r;
	if (asprintf(&path, "%s/%s", g->work_dir, name) < 0)
		return -ENOMEM;
	/* Fixed timestamps: the same content makes the same bytes. */
	pthread_mutex_lock(&g->shared->iso_lock);
	r = isoimage_new(label, 0, &img);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = e[i].src_path ? isoimage_add_file(img, e[i].name, e[i].src_path)
				  : isoimage_add_data(img, e[i].name, e[i].data, e[i].len);
	if (r >= 0)
		r = isoimage_write_path(img, path);
	if (r < 0)
		r = run_ctx_error(ctx, r, "writing %s: %s", path, img && isoimage_error(img)[0] ? isoimage_error(img)
											     : strerror(-r));
	isoimage_free(img);
	pthread_mutex_unlock(&g->shared->iso_lock);
	if (r < 0) {
		(void)unlink(path);
		return r;
	}
	r = sha256_file(path, hex);
	if (r >= 0)
		r = upload(ctx, w->node, "iso", path, name, hex);
	(void)unlink(path);
	return r;
}

static int vm_media(struct run_ctx *ctx, const struct vm_want *w)
{
	struct guests_ctx *g = gctx(ctx);
	const struct iso_entry seed[] = {
		{ .name = "user-data", .data = w->user_data, .len = w->user_data_len },
		{ .name = "meta-data", .data = w->meta_data, .len = w->meta_data_len },
		{ .name = "network-config", .data = w->network_config, .len = w->network_config_len },
	};
	struct iso_entry payload[MAX_LIST];
	_cleanup_free_ char *paths = NULL;
	size_t n = 0;
	int r = ensure_content(ctx, LOCAL_STORAGE, "iso");

	if (r >= 0)
		r = ensure_iso(ctx, w, w->seed_name, SEED_LABEL, seed, ELEMENTSOF(seed));
	if (r < 0 || !w->n_files)
		return r;
	if (!g->assets_dir)
		return run_ctx_error(ctx, -ENOENT, "payload files need the bundle's assets");
	paths = calloc(w->n_files, PATH_MAX);
	if (!paths)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_files; i++) {
		char *p = paths + n * PATH_MAX;
		bool dup = false;

		/* One asset copied to two paths is on the ISO once. */
		for (size_t k = 0; k < n; k++)
			dup |= streq(payload[k].name, w->files_src[i]);
		if (dup)
			continue;
		snprintf(p, PATH_MAX, "%s/%s", g->assets_dir, w->files_asset[i]);
		payload[n++] = (struct iso_entry){ .name = w->files_src[i], .src_path = p };
	}
	return ensure_iso(ctx, w, w->payload_name, PAYLOAD_LABEL, payload, n);
}

static int vm_clone(struct run_ctx *ctx, const struct vm_want *w)
{
	struct guests_ctx *g = gctx(ctx);
	uint64_t deadline = now_ms() + g->cfg.lock_timeout_ms;
	int r;

	progress(g, "cloning %s (VMID %u) from template %u on %s (%s clone)", w->name, w->vmid, w->template_vmid,
		 w->node, w->full ? "full" : "linked");
	/* One clone of a template at a time: Proxmox holds the template's
	 * lock for the whole copy. Another one running is waited out. */
	for (;;) {
		r = pve_vm_clone(g->cfg.client, w->node, w->template_vmid, w->vmid, w->name, w->full,
				 w->full ? w->clone_storage : NULL);
		if (r != -EBUSY)
			break;
		if (now_ms() >= deadline)
			break;
		progress(g, "template %u is busy with another clone: waiting", w->template_vmid);
		sleep_ms(g->cfg.poll_ms);
	}
	return r < 0 ? api_error(ctx, r, "cloning") : 0;
}

/* A VM that is missing, or whose disk is gone (`existing`: its
 * configuration is still in the cluster): restored from its newest backup
 * on the step's restore_from storage when there is one, else (after
 * removing what is left of it) cloned anew from its template. */
static int vm_bring_back(struct run_ctx *ctx, const struct step *s, const struct vm_want *w, bool existing)
{
	struct guests_ctx *g = gctx(ctx);
	const char *from = pstr(s, "restore_from");
	char archive[PVE_VOLID_MAX] = "";
	int r;

	if (from) {
		r = pve_latest_backup(g->cfg.client, w->node, from, w->vmid, archive);
		if (r < 0)
			return api_error(ctx, r, "looking for the VM's backups");
	}
	if (archive[0]) {
		progress(g, "restoring %s (VMID %u) on %s from its latest backup %s", w->name, w->vmid, w->node,
			 archive);
		r = pve_vm_restore(g->cfg.client, w->node, w->vmid, archive, w->clone_storage, existing);
		return r < 0 ? api_error(ctx, r, "restoring the VM from its backup") : 0;
	}
	if (existing) {
		progress(g, "%s (VMID %u): no backup of it%s%s; removing what is left of it and making it anew",
			 w->name, w->vmid, from ? " on " : "", from ? from : "");
		r = pve_vm_destroy(g->cfg.client, w->node, w->vmid);
		if (r < 0)
			return api_error(ctx, r, "removing the VM");
	}
	return vm_clone(ctx, w);
}

static int vm_configure(struct run_ctx *ctx, const struct vm_want *w, const struct json_object *cfg)
{
	_cleanup_(pve_params_done) struct pve_params p = {};
	struct guests_ctx *g = gctx(ctx);
	char buf[PVE_VOLID_MAX + 32];
	int r = 0;

	if (cfg_uint(cfg, "cores", 1) != w->cores)
		r = pve_params_add_int(&p, "cores", (int64_t)w->cores);
	if (r >= 0 && cfg_uint(cfg, "sockets", 1) != w->sockets)
		r = pve_params_add_int(&p, "sockets", (int64_t)w->sockets);
	if (r >= 0 && cfg_memory(cfg) != w->memory)
		r = pve_params_add_int(&p, "memory", (int64_t)w->memory);
	if (r >= 0 && cfg_agent(cfg) != w->agent)
		r = pve_params_add(&p, "agent", w->agent ? "enabled=1" : "enabled=0");
	if (r >= 0 && !net0_matches(cfg_str(cfg, "net0"), w->net0))
		r = pve_params_add(&p, "net0", w->net0);
	if (r >= 0 && (!cfg_volume(cfg, SEED_DRIVE, buf, sizeof(buf)) || !streq(buf, w->seed_volume))) {
		snprintf(buf, sizeof(buf), "%s,media=cdrom", w->seed_volume);
		r = pve_params_add(&p, SEED_DRIVE, buf);
	}
	if (r >= 0 && w->n_files &&
	    (!cfg_volume(cfg, PAYLOAD_DRIVE, buf, sizeof(buf)) || !streq(buf, w->payload_volume))) {
		snprintf(buf, sizeof(buf), "%s,media=cdrom", w->payload_volume);
		r = pve_params_add(&p, PAYLOAD_DRIVE, buf);
	}
	if (r < 0)
		return run_ctx_error(ctx, r, "out of memory");
	if (!p.n)
		return 0;
	r = pve_vm_update(g->cfg.client, w->node, w->vmid, &p);
	return r < 0 ? api_error(ctx, r, "configuring the VM") : 0;
}

/* The VM's own disk among unusedN ("local-lvm:vm-400-disk-0"). */
static bool unused_disk(const struct json_object *cfg, unsigned vmid, char *buf, size_t size)
{
	char own[32];

	snprintf(own, sizeof(own), "vm-%u-disk-", vmid);
	for (int i = 0; i < 256; i++) {
		char key[32];

		snprintf(key, sizeof(key), "unused%d", i);
		if (cfg_volume(cfg, key, buf, size) && strstr(buf, own))
			return true;
	}
	return false;
}

/* The template's disk is scsi0; a VM that wants another bus gets the same
 * volume there: detached (it becomes unused0), attached again (which
 * takes it off the unused list; deleting unused0 would destroy it),
 * booted from. */
static int vm_move_disk(struct run_ctx *ctx, const struct vm_want *w, const struct json_object *cfg)
{
	_cleanup_(pve_params_done) struct pve_params detach = {}, attach = {};
	struct guests_ctx *g = gctx(ctx);
	_cleanup_json_ struct json_object *now = NULL;
	char vol[PVE_VOLID_MAX], boot[32];
	int r;

	if (cfg_volume(cfg, "scsi0", vol, sizeof(vol))) {
		progress(g, "%s: moving its disk from scsi0 to %s", w->name, w->disk);
		r = pve_params_add(&detach, "delete", "scsi0");
		if (r >= 0)
			r = pve_vm_update(g->cfg.client, w->node, w->vmid, &detach);
		if (r < 0)
			return api_error(ctx, r, "detaching scsi0");
	} else if (!unused_disk(cfg, w->vmid, vol, sizeof(vol))) {
		return run_ctx_error(ctx, -ENOENT, "%s has no disk on %s, on scsi0 or unused", w->name, w->disk);
	} else {
		/* A run killed between detaching and attaching left it unused. */
		progress(g, "%s: attaching its detached disk %s as %s", w->name, vol, w->disk);
	}
	snprintf(boot, sizeof(boot), "order=%s", w->disk);
	r = pve_params_add(&attach, w->disk, vol);
	if (r >= 0)
		r = pve_params_add(&attach, "boot", boot);
	if (r >= 0)
		r = pve_vm_update(g->cfg.client, w->node, w->vmid, &attach);
	if (r < 0)
		return api_error(ctx, r, "attaching the disk");
	r = pve_vm_config(g->cfg.client, w->node, w->vmid, &now);
	return r < 0 ? api_error(ctx, r, "reading the VM's configuration") : 0;
}

static int wait_agent(struct run_ctx *ctx, const struct vm_want *w)
{
	struct guests_ctx *g = gctx(ctx);
	uint64_t start = now_ms(), deadline = start + g->cfg.boot_timeout_ms, said = start;
	char ip_text[16];

	for (;;) {
		bool ip;
		int r = agent_has_ip(g, w, true, &ip);

		if (r >= 0 && ip)
			return 0;
		if (now_ms() >= deadline)
			return run_ctx_error(ctx, -ETIMEDOUT,
					     "%s: %s after %" PRIu64 " s (last answer: %s)", w->name,
					     r < 0 ? "the guest agent did not answer (is qemu-guest-agent in the image?)"
						   : "the guest agent does not report the planned address",
					     g->cfg.boot_timeout_ms / 1000,
					     r < 0 ? pve_client_error(g->cfg.client) : "no such address");
		if (now_ms() - said >= 30000) {
			progress(g, "%s: waiting for the guest agent to report %s (%" PRIu64 " s)", w->name,
				 ipv4_format(w->ip, ip_text, sizeof(ip_text)), (now_ms() - start) / 1000);
			said = now_ms();
		}
		sleep_ms(g->cfg.poll_ms);
	}
}

static int vm_apply(struct run_ctx *ctx, const struct step *s)
{
	struct guests_ctx *g = gctx(ctx);
	_cleanup_(vm_want_done) struct vm_want w = {};
	_cleanup_(guest_list_done) struct guest_list l = {};
	_cleanup_json_ struct json_object *cfg = NULL;
	const struct pve_guest *pg;
	struct vm_diff d = {};
	char status[16];
	bool moved;
	uint64_t have;
	int r = vm_want(ctx, s, &w);

	if (r >= 0)
		r = wait_unlocked(ctx, w.vmid, &l, &pg);
	if (r < 0)
		return r;
	if (pg) {
		r = owned(ctx, pg, w.name, w.node, false);
		if (r < 0)
			return r;
	}
	r = vm_media(ctx, &w);
	if (r < 0)
		return r;
	if (pg && !streq(pg->status, "running")) {
		_cleanup_json_ struct json_object *old = NULL;
		bool gone = false;

		r = pve_vm_config(g->cfg.client, w.node, w.vmid, &old);
		if (r < 0)
			return api_error(ctx, r, "reading the VM's configuration");
		r = disk_gone(ctx, w.node, old, &gone);
		if (r < 0)
			return r;
		if (gone) {
			progress(g, "%s (VMID %u): its disk is gone (the node was rebuilt)", w.name, w.vmid);
			r = vm_bring_back(ctx, s, &w, true);
			if (r < 0)
				return r;
		}
	} else if (!pg) {
		r = vm_bring_back(ctx, s, &w, false);
		if (r < 0)
			return r;
	}
	r = pve_vm_config(g->cfg.client, w.node, w.vmid, &cfg);
	if (r < 0)
		return api_error(ctx, r, "reading the VM's configuration");
	vm_compare(&w, cfg, &d, &moved, &have);
	if (d.any && pg)
		progress(g, "%s: setting back %s", w.name, d.what);
	if (moved) {
		r = vm_move_disk(ctx, &w, cfg);
		if (r < 0)
			return r;
		json_object_put(cfg);
		cfg = NULL;
		r = pve_vm_config(g->cfg.client, w.node, w.vmid, &cfg);
		if (r < 0)
			return api_error(ctx, r, "reading the VM's configuration");
		vm_compare(&w, cfg, &(struct vm_diff){}, &moved, &have);
	}
	r = vm_configure(ctx, &w, cfg);
	if (r < 0)
		return r;
	if (have < w.disk_bytes) {
		r = pve_vm_resize(g->cfg.client, w.node, w.vmid, w.disk, w.disk_bytes);
		if (r < 0)
			return api_error(ctx, r, "resizing the disk");
	}
	r = pve_vm_status(g->cfg.client, w.node, w.vmid, status);
	if (r < 0)
		return api_error(ctx, r, "reading the VM's status");
	if (!streq(status, "running")) {
		progress(g, "starting %s on %s", w.name, w.node);
		r = pve_vm_start(g->cfg.client, w.node, w.vmid);
		if (r < 0) {
			char why[RUN_ERROR_MAX];

			/* A start a killed run left going wins the race:
			 * "already running" is the state we want. */
			snprintf(why, sizeof(why), "%s", pve_client_error(g->cfg.client));
			if (pve_vm_status(g->cfg.client, w.node, w.vmid, status) < 0 || !streq(status, "running"))
				return run_ctx_error(ctx, r, "starting the VM: %s", why);
		}
	}
	return w.agent ? wait_agent(ctx, &w) : 0;
}

const struct step_ops guests_vm_ops = { .check = vm_check, .apply = vm_apply, .concurrent = true };
