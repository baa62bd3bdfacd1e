/* SPDX-License-Identifier: MIT */
/*
 * backup.c — the step backup-job (backup.h, docs/operations.md): one
 * vzdump job of the cluster (/cluster/backup, Proxmox's jobs.cfg) that
 * backs up every VM of the manifest on its schedule, to its storage, with
 * its retention. Compared first: a converged run writes nothing; a job
 * changed by hand is said and set back.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "backup.h"
#include "bundle/secret.h"
#include "log.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/cluster.h"
#include "pve/pve.h"
#include "util.h"

#define COMMENT "managed by devopslab"
#define KEEP_MAX 8

/* The options we set, as the step's params name them (and the API). */
static const char *const options[] = { "schedule", "storage", "mode", "compress", "vmid", "prune-backups" };

/* "101,102" as a sorted set; -EINVAL for anything else. */
static int vmid_set(const char *s, unsigned *v, size_t max, size_t *ret_n)
{
	size_t n = 0;

	while (s && *s) {
		char *end;
		unsigned long x = strtoul(s, &end, 10);

		if (end == s || x == 0 || x > 999999999 || n == max || (*end && *end != ','))
			return -EINVAL;
		v[n++] = (unsigned)x;
		s = *end ? end + 1 : end;
	}
	for (size_t i = 1; i < n; i++) /* few: insertion sort */
		for (size_t k = i; k > 0 && v[k - 1] > v[k]; k--) {
			unsigned t = v[k];

			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	*ret_n = n;
	return 0;
}

static bool same_vmids(const char *a, const char *b)
{
	unsigned va[MANIFEST_MAX_VMS], vb[MANIFEST_MAX_VMS];
	size_t na = 0, nb = 0;

	return vmid_set(a, va, ELEMENTSOF(va), &na) >= 0 && vmid_set(b, vb, ELEMENTSOF(vb), &nb) >= 0 && na == nb &&
	       memcmp(va, vb, na * sizeof(va[0])) == 0;
}

/* Our "keep-daily=7,keep-weekly=4" against the job's prune-backups
 * (an object of integers in the API's answers; a string in older ones). */
static bool same_prune(const char *want, struct json_object *have)
{
	size_t n = 0;

	if (json_object_is_type(have, json_type_string))
		return streq(json_object_get_string(have), want);
	if (!json_object_is_type(have, json_type_object))
		return false;
	for (const char *p = want; *p;) {
		const char *eq = strchr(p, '='), *end = strchr(p, ',');
		char key[32];
		struct json_object *v;

		if (!end)
			end = p + strlen(p);
		if (!eq || eq > end || (size_t)(eq - p) >= sizeof(key))
			return false;
		memcpy(key, p, (size_t)(eq - p));
		key[eq - p] = '\0';
		if (!json_object_object_get_ex(have, key, &v) ||
		    json_object_get_int64(v) != strtoll(eq + 1, NULL, 10))
			return false;
		n++;
		p = *end ? end + 1 : end;
	}
	return (size_t)json_object_object_length(have) == n;
}

/* The job's option key as the step wants it? */
static bool same_option(const struct step *s, struct json_object *job, const char *key)
{
	const char *want = step_param_string(s, key);
	struct json_object *v = NULL;

	if (!want)
		return true;
	if (!json_object_object_get_ex(job, key, &v))
		return false;
	if (streq(key, "vmid"))
		return same_vmids(want, json_object_get_string(v));
	if (streq(key, "prune-backups"))
		return same_prune(want, v);
	return streq_ptr(json_object_get_string(v), want);
}

/* The entry of a list (GET path) whose `key` is `id` (a new reference),
 * NULL when there is none: a backup job of /cluster/backup, a storage of
 * /storage. */
static int find_entry(struct run_ctx *ctx, struct pve_client *c, const char *path, const char *key, const char *id,
		      struct json_object **ret)
{
	_cleanup_json_ struct json_object *list = NULL;
	int r = pve_call(c, HTTP_GET, path, NULL, &list);

	*ret = NULL;
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot read %s: %s", path, pve_client_error(c));
	for (size_t i = 0; json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
		struct json_object *e = json_object_array_get_idx(list, i);

		if (streq_ptr(json_get_string(e, key), id)) {
			*ret = json_object_get(e);
			break;
		}
	}
	return 0;
}

static int find_job(struct run_ctx *ctx, struct pve_client *c, const char *id, struct json_object **ret)
{
	return find_entry(ctx, c, "/cluster/backup", "id", id, ret);
}

/* What of the job differs from the step's (names, comma-separated, into
 * buf); "" when nothing. */
static void differs(const struct step *s, struct json_object *job, char *buf, size_t size)
{
	struct json_object *en;
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ELEMENTSOF(options); i++)
		if (!same_option(s, job, options[i]))
			len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s", len ? ", " : "",
						options[i]);
	if (json_object_object_get_ex(job, "enabled", &en) && !json_object_get_boolean(en) && len < size)
		snprintf(buf + len, size - len, "%s%s", len ? ", " : "", "enabled");
}

static int job_params(const struct step *s, bool create, struct pve_params *p)
{
	int r = 0;

	if (create)
		r = pve_params_add(p, "id", step_param_string(s, "id"));
	for (size_t i = 0; i < ELEMENTSOF(options) && r >= 0; i++)
		r = pve_params_add(p, options[i], step_param_string(s, options[i]));
	if (r >= 0)
		r = pve_params_add_bool(p, "enabled", true);
	if (r >= 0)
		r = pve_params_add(p, "comment", COMMENT);
	return r;
}

static int backup_run(struct run_ctx *ctx, const struct step *s, bool apply, bool *ret_done)
{
	_cleanup_json_ struct json_object *job = NULL;
	struct pve_params p = {};
	struct pve_client *c = NULL;
	const char *id = step_param_string(s, "id");
	char diff[256], path[160];
	int r;

	for (size_t i = 0; i < ELEMENTSOF(options); i++)
		if (!step_param_string(s, options[i]))
			return run_ctx_error(ctx, -EINVAL, "%s: no %s", s->id, options[i]);
	if (!ctx->pve || !id)
		return run_ctx_error(ctx, -EINVAL, "%s: no cluster context or no id", s->id);
	r = cluster_self_client(ctx->pve, &c);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", cluster_error(ctx->pve));
	r = find_job(ctx, c, id, &job);
	if (r < 0)
		return r;
	if (job)
		differs(s, job, diff, sizeof(diff));
	if (!apply || (job && !diff[0])) {
		*ret_done = job && !diff[0];
		return 0;
	}
	if (job)
		log_info("backup job %s differs from the manifest (%s): setting it back", id, diff);
	snprintf(path, sizeof(path), "/cluster/backup/%s", id);
	r = job_params(s, !job, &p);
	if (r >= 0)
		r = pve_call(c, job ? HTTP_PUT : HTTP_POST, job ? path : "/cluster/backup", &p, NULL);
	pve_params_done(&p);
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot %s backup job %s: %s", job ? "update" : "create", id,
				     pve_client_error(c));
	json_object_put(TAKE_PTR(job));
	r = find_job(ctx, c, id, &job);
	if (r < 0)
		return r;
	if (!job)
		return run_ctx_error(ctx, -EPROTO, "backup job %s is not there after it was written", id);
	differs(s, job, diff, sizeof(diff));
	if (diff[0])
		return run_ctx_error(ctx, -EPROTO, "backup job %s still differs after it was written (%s)", id, diff);
	return 0;
}

STEP_OPS_OF_RUN(guests_backup_ops, backup_run);

/* ---- backup-storage ---------------------------------------------------------- */

/* The settings compared with the storage's; the password is write-only.
 * The datastore is fixed once the storage exists (PBSPlugin.pm options). */
static const char *const pbs_keys[] = { "server", "datastore", "username", "fingerprint", "namespace", "port" };

static bool has_backup_content(const char *content)
{
	for (const char *p = content; p && *p;) {
		size_t n = strcspn(p, ",; ");

		if (n == 6 && strncmp(p, "backup", 6) == 0)
			return true;
		p += n + (p[n] != '\0');
	}
	return false;
}

/* What of the storage differs from the step's ("" when nothing). */
static void storage_differs(const struct step *s, struct json_object *sc, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ELEMENTSOF(pbs_keys); i++) {
		struct json_object *want = json_object_object_get(s->params, pbs_keys[i]), *have = NULL;
		bool same;

		if (!want)
			continue; /* not set by the manifest: whatever Proxmox has */
		json_object_object_get_ex(sc, pbs_keys[i], &have);
		same = have && (json_object_is_type(want, json_type_int)
					? json_object_get_int64(have) == json_object_get_int64(want)
				: streq(pbs_keys[i], "fingerprint")
					? strcasecmp(json_object_get_string(have), json_object_get_string(want)) == 0
					: streq(json_object_get_string(have), json_object_get_string(want)));
		if (!same)
			len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s", len ? ", " : "",
						pbs_keys[i]);
	}
	if (!has_backup_content(json_get_string(sc, "content")) && len < size)
		snprintf(buf + len, size - len, "%s%s", len ? ", " : "", "content");
}

static int find_storage(struct run_ctx *ctx, struct pve_client *c, const char *name, struct json_object **ret)
{
	return find_entry(ctx, c, "/storage", "storage", name, ret);
}

static int storage_params(struct run_ctx *ctx, const struct step *s, bool create, struct pve_params *p)
{
	const char *secret = json_get_string(json_object_object_get(s->params, "password"), "secret");
	const char *pw = secret && ctx->secrets ? secrets_get(ctx->secrets, secret) : NULL;
	int r = 0;

	if (isempty(pw))
		return run_ctx_error(ctx, -ENOKEY,
				     "%s: the Proxmox Backup Server password (secret '%s') is needed: run from the "
				     "bundle, whose sealed secrets hold it",
				     s->id, secret ? secret : "?");
	if (create) {
		r = pve_params_add(p, "storage", step_param_string(s, "storage"));
		if (r >= 0)
			r = pve_params_add(p, "type", "pbs");
	}
	for (size_t i = 0; i < ELEMENTSOF(pbs_keys) && r >= 0; i++) {
		struct json_object *v = json_object_object_get(s->params, pbs_keys[i]);

		if (v && (create || !streq(pbs_keys[i], "datastore")))
			r = pve_params_add(p, pbs_keys[i], json_object_get_string(v));
	}
	if (r >= 0)
		r = pve_params_add(p, "content", "backup");
	if (r >= 0)
		r = pve_params_add_secret(p, "password", pw);
	return r < 0 ? run_ctx_error(ctx, r, "%s: %s", s->id, strerror(-r)) : 0;
}

static int backup_storage_run(struct run_ctx *ctx, const struct step *s, bool apply, bool *ret_done)
{
	_cleanup_json_ struct json_object *sc = NULL;
	_cleanup_(pve_params_done) struct pve_params p = {};
	const char *name = step_param_string(s, "storage");
	struct pve_client *c = NULL;
	char diff[256], path[160];
	int r;

	if (!ctx->pve || !name || !step_param_string(s, "server") || !step_param_string(s, "datastore"))
		return run_ctx_error(ctx, -EINVAL, "%s: no cluster context, storage, server or datastore", s->id);
	r = cluster_self_client(ctx->pve, &c);
	if (r < 0)
		return run_ctx_error(ctx, r, "%s", cluster_error(ctx->pve));
	r = find_storage(ctx, c, name, &sc);
	if (r < 0)
		return r;
	if (sc && !streq_ptr(json_get_string(sc, "type"), "pbs"))
		return run_ctx_error(ctx, -EEXIST,
				     "storage '%s' exists as type '%s', not a Proxmox Backup Server: not replacing it "
				     "(rename it, or name another backup.storage)",
				     name, json_get_string(sc, "type") ?: "?");
	if (sc)
		storage_differs(s, sc, diff, sizeof(diff));
	if (sc && !streq_ptr(json_get_string(sc, "datastore"), step_param_string(s, "datastore")))
		return run_ctx_error(ctx, -EEXIST,
				     "storage '%s' is datastore '%s', the manifest's is '%s': Proxmox cannot change a "
				     "storage's datastore; remove the storage in Proxmox, or name another backup.storage",
				     name, json_get_string(sc, "datastore") ?: "?", step_param_string(s, "datastore"));
	if (!apply || (sc && !diff[0])) {
		*ret_done = sc && !diff[0];
		return 0;
	}
	if (sc)
		log_info("storage %s differs from the manifest (%s): setting it back", name, diff);
	else
		log_info("adding the Proxmox Backup Server storage %s (datastore %s on %s)", name,
			 step_param_string(s, "datastore"), step_param_string(s, "server"));
	snprintf(path, sizeof(path), "/storage/%s", name);
	r = storage_params(ctx, s, !sc, &p);
	if (r < 0)
		return r;
	r = pve_call(c, sc ? HTTP_PUT : HTTP_POST, sc ? path : "/storage", &p, NULL);
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot %s storage %s: %s", sc ? "update" : "add", name,
				     pve_client_error(c));
	json_object_put(TAKE_PTR(sc));
	r = find_storage(ctx, c, name, &sc);
	if (r < 0)
		return r;
	if (!sc)
		return run_ctx_error(ctx, -EPROTO, "storage %s is not there after it was added", name);
	storage_differs(s, sc, diff, sizeof(diff));
	if (diff[0])
		return run_ctx_error(ctx, -EPROTO, "storage %s still differs after it was written (%s)", name, diff);
	return 0;
}

STEP_OPS_OF_RUN(guests_backup_storage_ops, backup_storage_run);
