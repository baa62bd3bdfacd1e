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

#include <json-c/json.h>

#include "backup.h"
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

/* The job of id from GET /cluster/backup (a new reference), NULL when
 * there is none. */
static int find_job(struct run_ctx *ctx, struct pve_client *c, const char *id, struct json_object **ret)
{
	_cleanup_json_ struct json_object *list = NULL;
	int r = pve_call(c, HTTP_GET, "/cluster/backup", NULL, &list);

	*ret = NULL;
	if (r < 0)
		return run_ctx_error(ctx, r, "cannot read the backup jobs: %s", pve_client_error(c));
	for (size_t i = 0; json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
		struct json_object *job = json_object_array_get_idx(list, i);

		if (streq_ptr(json_get_string(job, "id"), id)) {
			*ret = json_object_get(job);
			break;
		}
	}
	return 0;
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
