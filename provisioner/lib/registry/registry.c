/* SPDX-License-Identifier: MIT */
/*
 * registry.c — the step `registry` (registry.h; docs/registry.md).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "k3s/k3s.h"
#include "k3s/kube.h"
#include "log.h"
#include "manifest/manifest.h"
#include "plan/json-util.h"
#include "plan/run.h"
#include "pve/guest-exec.h"
#include "pve/http.h"
#include "registry.h"
#include "util.h"

#define POLL_MS_DEFAULT 2000
#define TIMEOUT_MS_DEFAULT (10 * 60 * 1000)
#define MANAGED_BY "app.kubernetes.io/managed-by"
#define APP_LABEL "app.kubernetes.io/name"
#define OBJECTS 4 /* Namespace, PVC, Deployment, Service */

#define progress(g, ...) log_progress((g)->progress, (g)->userdata, __VA_ARGS__)

/* ---- what the nodes get (no network) ----------------------------------------- */

int registry_node_files(struct json_object *params, bool with_ca, char **ret_registries, char **ret_resolved)
{
	const char *host = json_get_string(params, "host");
	struct json_object *dns = json_get_object(params, "dns"), *servers = json_get_array(dns, "servers");
	_cleanup_free_ char *reg = NULL, *res = NULL;
	char *list = NULL;
	size_t n = 0;
	FILE *f;

	*ret_registries = *ret_resolved = NULL;
	if (isempty(host))
		return -EINVAL;
	/* every registry's pulls go to the lab's first: what it has is never
	 * fetched from the internet, and the nodes have no internet anyway */
	if (asprintf(&reg,
		     "# devopslab: the lab's registry (docs/registry.md); K3s reads this file when it starts\n"
		     "mirrors:\n  \"*\":\n    endpoint:\n      - \"https://%s\"\n",
		     host) < 0) {
		reg = NULL;
		return -ENOMEM;
	}
	if (with_ca) {
		char *full = NULL;

		if (asprintf(&full, "%sconfigs:\n  \"%s\":\n    tls:\n      ca_file: \"" REGISTRY_CA_PATH "\"\n", reg,
			     host) < 0)
			return -ENOMEM;
		free(reg);
		reg = full;
	}
	if (dns && servers && json_object_array_length(servers) > 0) {
		f = open_memstream(&list, &n);
		if (!f)
			return -ENOMEM;
		for (size_t i = 0; i < json_object_array_length(servers); i++)
			fprintf(f, "%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(servers, i)));
		if (fclose(f) != 0) {
			free(list);
			return -ENOMEM;
		}
		/* a routing domain: only the lab's zone goes to the lab's servers */
		if (asprintf(&res,
			     "# devopslab: the lab's zone through the lab's DNS servers (docs/registry.md)\n"
			     "[Resolve]\nDNS=%s\nDomains=~%s\n",
			     list, json_get_string(dns, "zone") ?: "?") < 0)
			res = NULL;
		free(list);
		if (!res)
			return -ENOMEM;
	}
	*ret_registries = TAKE_PTR(reg);
	*ret_resolved = TAKE_PTR(res);
	return 0;
}

/* Run by /bin/sh in the first server: K3s's own ctr, in a namespace of
 * its own (kubelet's images stay as they are), one archive at a time. */
static const char seed_script[] =
	"#!/bin/sh\n"
	"# registry-seed.sh HOST CAFILE ARCHIVE (devopslab's registry step; docs/registry.md):\n"
	"# every image of ARCHIVE pushed into the lab's registry HOST, through the\n"
	"# edge, as HOST/PATH:TAG; CAFILE \"-\": the system's roots.\n"
	"set -eu\n"
	"host=$1 ca=$2 archive=$3\n"
	"ctr() { /usr/local/bin/k3s ctr -n devopslab-seed \"$@\"; }\n"
	"platform=linux/$(dpkg --print-architecture)\n"
	"old=$(ctr images ls -q)\n"
	"[ -z \"$old\" ] || ctr images rm $old >/dev/null\n"
	"ctr images import --platform \"$platform\" \"$archive\" >/dev/null\n"
	"for ref in $(ctr images ls -q); do\n"
	"\tcase $ref in\n"
	"\t*@sha256:*) echo \"registry-seed: $ref has no tag: not pushed\" >&2; continue ;;\n"
	"\tesac\n"
	"\tdest=$host/${ref#*/}\n"
	"\tctr images tag --force \"$ref\" \"$dest\" >/dev/null\n"
	"\tif [ \"$ca\" = - ]; then\n"
	"\t\tctr images push --platform \"$platform\" \"$dest\" >/dev/null\n"
	"\telse\n"
	"\t\tctr images push --platform \"$platform\" --tlscacert \"$ca\" \"$dest\" >/dev/null\n"
	"\tfi\n"
	"\techo \"pushed $ref $dest\"\n"
	"done\n";

const char *registry_seed_script(void)
{
	return seed_script;
}

/* "HOST/PATH:TAG" → PATH and TAG (pointers into a copy in buf). */
static int split_dest(const char *dest, const char *host, char *buf, size_t size, const char **path,
		      const char **tag)
{
	size_t h = strlen(host);
	char *colon, *slash;

	if (strncmp(dest, host, h) != 0 || dest[h] != '/' || strlen(dest + h + 1) >= size)
		return -EBADMSG;
	strcpy(buf, dest + h + 1);
	colon = strrchr(buf, ':');
	slash = strrchr(buf, '/');
	if (!colon || colon == buf || (slash && slash > colon) || !colon[1] || strchr(buf, '@'))
		return -EBADMSG;
	*colon = '\0';
	*path = buf;
	*tag = colon + 1;
	return 0;
}

int registry_parse_pushed(const char *out, const char *host, char **ret, size_t *ret_n)
{
	_cleanup_free_ char *copy = NULL, *list = NULL;
	size_t n = 0, len = 0;
	char *save = NULL;
	FILE *f;
	int r = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!host)
		return -EINVAL;
	f = open_memstream(&list, &len);
	if (!f)
		return -ENOMEM;
	copy = strdup(out ? out : "");
	if (!copy)
		r = -ENOMEM;
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char src[512], dest[512], buf[512], extra;
		const char *path, *tag;

		if (strncmp(line, "pushed ", 7) != 0)
			continue;
		if (sscanf(line, "pushed %511s %511s %c", src, dest, &extra) != 2 ||
		    split_dest(dest, host, buf, sizeof(buf), &path, &tag) < 0) {
			r = -EBADMSG;
			break;
		}
		if (++n > REGISTRY_IMAGES_MAX) {
			r = -E2BIG;
			break;
		}
		fprintf(f, "%s\n", dest);
	}
	if (fclose(f) != 0 && r >= 0)
		r = -ENOMEM;
	if (r < 0)
		return r;
	*ret = TAKE_PTR(list);
	*ret_n = n;
	return 0;
}

/* ---- the registry through the API server ------------------------------------ */

static void proxy_path(struct json_object *p, const char *rest, char *buf, size_t size)
{
	uint64_t port = 0;

	(void)json_get_u64(p, "port", &port);
	snprintf(buf, size, "/api/v1/namespaces/%s/services/http:%s:%" PRIu64 "/proxy%s",
		 json_get_string(p, "namespace") ?: "?", json_get_string(p, "name") ?: "?", port, rest);
}

/* Whether the registry lists PATH with TAG. */
static int has_tag(struct kube_client *k, struct json_object *p, const char *path, const char *tag, bool *ret)
{
	_cleanup_json_ struct json_object *list = NULL;
	struct json_object *tags;
	char rest[600], url[800];
	int r;

	*ret = false;
	snprintf(rest, sizeof(rest), "/v2/%s/tags/list", path);
	proxy_path(p, rest, url, sizeof(url));
	r = kube_get(k, url, &list);
	if (r == -ENOENT)
		return 0; /* NAME_UNKNOWN */
	if (r < 0)
		return r;
	tags = json_get_array(list, "tags");
	for (size_t i = 0; tags && i < json_object_array_length(tags); i++)
		if (streq_ptr(json_object_get_string(json_object_array_get_idx(tags, i)), tag))
			*ret = true;
	return 0;
}

/* A record (DESTs "HOST/PATH:TAG", one per line): how many, how many the
 * registry lists; the first missing into why. */
static int record_listed(struct kube_client *k, struct json_object *p, const char *rec, size_t *n, size_t *have,
			 char *why, size_t why_size)
{
	_cleanup_free_ char *copy = strdup(rec ? rec : "");
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *d = strtok_r(copy, "\n", &save); d; d = strtok_r(NULL, "\n", &save)) {
		const char *path, *tag, *slash = strchr(d, '/');
		char host[256], buf[512];
		bool ok = false;
		int r;

		(*n)++;
		if (!slash || (size_t)(slash - d) >= sizeof(host)) {
			if (!why[0])
				snprintf(why, why_size, "'%s' is not an image the seeding recorded", d);
			continue;
		}
		memcpy(host, d, slash - d);
		host[slash - d] = '\0';
		if (split_dest(d, host, buf, sizeof(buf), &path, &tag) < 0) {
			if (!why[0])
				snprintf(why, why_size, "'%s' is not an image the seeding recorded", d);
			continue;
		}
		r = has_tag(k, p, path, tag, &ok);
		if (r < 0)
			return r;
		if (ok)
			(*have)++;
		else if (!why[0])
			snprintf(why, why_size, "the registry does not list %s", d);
	}
	return 0;
}

static int seed_records(struct kube_client *k, struct json_object *p, struct json_object **ret)
{
	char path[256];
	int r;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/" REGISTRY_SEED_CONFIGMAP,
		 json_get_string(p, "namespace") ?: "?");
	*ret = NULL;
	r = kube_get(k, path, ret);
	return r == -ENOENT ? 0 : r;
}

int registry_seeded(struct kube_client *k, struct json_object *params, size_t *ret_n, size_t *ret_have, char *why,
		    size_t why_size)
{
	_cleanup_json_ struct json_object *cm = NULL;
	int r = seed_records(k, params, &cm);

	*ret_n = *ret_have = 0;
	if (why_size)
		why[0] = '\0';
	if (r < 0)
		return r;
	json_object_object_foreach(json_get_object(cm, "data"), asset, rec)
	{
		(void)asset;
		r = record_listed(k, params, json_object_get_string(rec), ret_n, ret_have, why, why_size);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the step ---------------------------------------------------------------- */

static struct registry_cfg *rcfg(struct run_ctx *ctx)
{
	return ctx->registry;
}

/* A size as the API server writes a quantity back: the largest binary
 * suffix that keeps it whole, so that a compare finds it unchanged. */
static void quantity(uint64_t bytes, char *buf, size_t size)
{
	static const char *const sfx[] = { "Ei", "Pi", "Ti", "Gi", "Mi", "Ki" };

	for (size_t i = 0; i < ELEMENTSOF(sfx); i++) {
		uint64_t unit = 1ULL << (10 * (ELEMENTSOF(sfx) - i));

		if (bytes && bytes % unit == 0) {
			snprintf(buf, size, "%" PRIu64 "%s", bytes / unit, sfx[i]);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64, bytes);
}

/* The Namespace, volume, Deployment and Service. The names and the image
 * reference come from the validated manifest (no quotes, no
 * backslashes), so the JSON is written as text and parsed. */
static int wants(struct run_ctx *ctx, const struct step *s, struct kube_want *w, size_t *ret_n)
{
	const char *ns = json_get_string(s->params, "namespace"), *name = json_get_string(s->params, "name");
	const char *image = json_get_string(s->params, "image");
	uint64_t port = 0, size = 0;
	char qty[32], text[2048], nsfield[320];
	size_t n = 0;

	*ret_n = 0;
	if (!ns || !name || !image || json_get_u64(s->params, "port", &port) < 0 ||
	    json_get_u64(s->params, "size", &size) < 0)
		return run_ctx_error(ctx, -EINVAL, "%s: its parameters lack namespace, name, image, port or size", s->id);
	quantity(size, qty, sizeof(qty));
#define META(kind, api) "{\"apiVersion\":\"" api "\",\"kind\":\"" kind "\",\"metadata\":{\"name\":\"%s\",%s\"labels\":{\"" MANAGED_BY "\":\"" REGISTRY_MANAGER "\"}}"
	snprintf(w[n].path, sizeof(w[n].path), "/api/v1/namespaces/%s", ns);
	snprintf(text, sizeof(text), META("Namespace", "v1") "}", ns, "");
	w[n++].obj = json_tokener_parse(text);

	snprintf(nsfield, sizeof(nsfield), "\"namespace\":\"%s\",", ns);
	snprintf(w[n].path, sizeof(w[n].path), "/api/v1/namespaces/%s/persistentvolumeclaims/%s", ns, name);
	snprintf(text, sizeof(text),
		 META("PersistentVolumeClaim", "v1") ",\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],"
						     "\"storageClassName\":\"local-path\","
						     "\"resources\":{\"requests\":{\"storage\":\"%s\"}}}}",
		 name, nsfield, qty);
	w[n++].obj = json_tokener_parse(text);

	snprintf(w[n].path, sizeof(w[n].path), "/apis/apps/v1/namespaces/%s/deployments/%s", ns, name);
	snprintf(text, sizeof(text),
		 META("Deployment", "apps/v1") ",\"spec\":{\"replicas\":1,\"strategy\":{\"type\":\"Recreate\"},"
		 "\"selector\":{\"matchLabels\":{\"" APP_LABEL "\":\"%s\"}},"
		 "\"template\":{\"metadata\":{\"labels\":{\"" APP_LABEL "\":\"%s\"}},"
		 "\"spec\":{\"containers\":[{\"name\":\"%s\",\"image\":\"%s\",\"imagePullPolicy\":\"IfNotPresent\","
		 "\"ports\":[{\"name\":\"http\",\"containerPort\":%" PRIu64 "}],"
		 "\"env\":[{\"name\":\"REGISTRY_STORAGE_DELETE_ENABLED\",\"value\":\"true\"}],"
		 "\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/var/lib/registry\"}],"
		 "\"readinessProbe\":{\"httpGet\":{\"path\":\"/v2/\",\"port\":\"http\"}}}],"
		 "\"volumes\":[{\"name\":\"data\",\"persistentVolumeClaim\":{\"claimName\":\"%s\"}}]}}}}",
		 name, nsfield, name, name, name, image, port, name);
	w[n++].obj = json_tokener_parse(text);

	snprintf(w[n].path, sizeof(w[n].path), "/api/v1/namespaces/%s/services/%s", ns, name);
	snprintf(text, sizeof(text),
		 META("Service", "v1") ",\"spec\":{\"selector\":{\"" APP_LABEL "\":\"%s\"},"
				       "\"ports\":[{\"name\":\"http\",\"port\":%" PRIu64 ",\"targetPort\":\"http\"}]}}",
		 name, nsfield, name, port);
	w[n++].obj = json_tokener_parse(text);
#undef META
	for (size_t i = 0; i < n; i++)
		if (!w[i].obj) {
			kube_wants_done(w, n);
			return run_ctx_error(ctx, -EINVAL, "%s: cannot write the registry's objects", s->id);
		}
	*ret_n = n;
	return 0;
}

struct state {
	size_t diff;       /* objects that differ from ours */
	bool available;    /* the Deployment is available and the registry answers */
	size_t nodes_diff; /* K3s VMs whose files differ */
	size_t seeds_left; /* archives not (all) in the registry */
	char why[512];     /* what is not there yet */
};

#define WHY(st, ...)                                                          \
	do {                                                                  \
		if (!(st)->why[0])                                            \
			snprintf((st)->why, sizeof((st)->why), __VA_ARGS__); \
	} while (0)

static int objects(struct run_ctx *ctx, const struct step *s, struct kube_want *w, size_t nw, bool apply,
		   struct state *st)
{
	struct registry_cfg *g = rcfg(ctx);
	struct kube_client *k = k3s_kube(g->k3s);
	_cleanup_json_ struct json_object *dep = NULL, *root = NULL;
	struct json_object *status;
	uint64_t gen = 0, seen = 0, avail = 0;
	char path[384];
	int r;

	for (size_t i = 0; i < nw; i++) {
		_cleanup_json_ struct json_object *have = NULL;
		bool differs = false;

		r = kube_ensure(k, w[i].path, REGISTRY_MANAGER, w[i].obj, apply, &differs, &have);
		if (r < 0)
			return run_ctx_error(ctx, r, "%s: %s", w[i].path, kube_error(k));
		if (differs && apply)
			progress(g, "%s %s", w[i].path, have ? "differs from ours: setting it back" : "is new: applied");
		st->diff += differs;
	}
	r = kube_get(k, w[2].path, &dep);
	if (r < 0 && r != -ENOENT)
		return run_ctx_error(ctx, r, "%s: %s", w[2].path, kube_error(k));
	status = json_get_object(dep, "status");
	(void)json_get_u64(json_get_object(dep, "metadata"), "generation", &gen);
	(void)json_get_u64(status, "observedGeneration", &seen);
	(void)json_get_u64(status, "availableReplicas", &avail);
	if (!dep || seen < gen || avail < 1) {
		WHY(st, "Deployment %s/%s is not available yet", json_get_string(s->params, "namespace"),
		    json_get_string(s->params, "name"));
		return 0;
	}
	proxy_path(s->params, "/v2/", path, sizeof(path));
	r = kube_get(k, path, &root);
	if (r < 0) {
		WHY(st, "the registry does not answer /v2/ yet (%s)", kube_error(k));
		return 0;
	}
	st->available = true;
	return 0;
}

/* A file of a VM as it is ("" when it cannot be read). */
static int guest_cat(struct run_ctx *ctx, const struct mf_vm *vm, const char *path, char **ret)
{
	const struct guest_exec *gx = k3s_guest(rcfg(ctx)->k3s);
	const char *argv[] = { "cat", path, NULL };
	struct pve_exec_status es = {};
	int r = guest_run(ctx, gx, vm, argv, NULL, gx->timeout_ms, &es);

	if (r < 0)
		return r;
	*ret = strdup(es.exitcode == 0 && es.out ? es.out : "");
	pve_exec_status_done(&es);
	return *ret ? 0 : run_ctx_error(ctx, -ENOMEM, "out of memory");
}

static int node_ready(struct run_ctx *ctx, const char *name)
{
	struct registry_cfg *g = rcfg(ctx);
	uint64_t poll = g->poll_ms ? g->poll_ms : POLL_MS_DEFAULT;
	uint64_t timeout = g->timeout_ms ? g->timeout_ms : TIMEOUT_MS_DEFAULT, start = http_now_ms();
	const char *names[] = { name };
	char why[256] = "";
	bool ready = false;

	for (;;) {
		int r = k3s_nodes_ready(g->k3s, names, 1, &ready, why, sizeof(why));

		if (r >= 0 && ready)
			return 0;
		if (http_now_ms() - start >= timeout)
			return run_ctx_error(ctx, -ETIMEDOUT, "%s: not Ready %" PRIu64 " s after K3s restarted%s%s", name,
					     timeout / 1000, why[0] ? ": " : "", why);
		sleep_ms(poll);
	}
}

static int restart(struct run_ctx *ctx, const struct mf_vm *vm, const char *unit)
{
	const struct guest_exec *gx = k3s_guest(rcfg(ctx)->k3s);
	const char *argv[] = { "systemctl", "restart", unit, NULL };

	return guest_run(ctx, gx, vm, argv, NULL, gx->timeout_ms, NULL);
}

/* One K3s VM's files: compared, and with apply written (the resolver
 * first, then the CA and registries.yaml, K3s restarted and Ready). */
static int node(struct run_ctx *ctx, const struct step *s, struct json_object *v, const char *reg, const char *res,
		bool apply, struct state *st)
{
	struct registry_cfg *g = rcfg(ctx);
	const struct guest_exec *gx = k3s_guest(g->k3s);
	const char *name = json_get_string(v, "vm"), *unit = json_get_string(v, "unit");
	_cleanup_free_ char *have_reg = NULL, *have_res = NULL, *have_ca = NULL;
	bool res_differs, k3s_differs;
	struct mf_vm vm;
	int r;

	if (!name || !unit || manifest_find_vm(ctx->manifest, name, &vm) < 0)
		return run_ctx_error(ctx, -EINVAL, "%s: no K3s VM '%s' in the manifest", s->id, name ?: "?");
	r = guest_cat(ctx, &vm, REGISTRY_K3S_CONFIG, &have_reg);
	if (r >= 0 && res)
		r = guest_cat(ctx, &vm, REGISTRY_RESOLVED_DROPIN, &have_res);
	if (r >= 0 && g->ca_pem)
		r = guest_cat(ctx, &vm, REGISTRY_CA_PATH, &have_ca);
	if (r < 0)
		return r;
	res_differs = res && !streq(have_res, res);
	k3s_differs = !streq(have_reg, reg) || (g->ca_pem && !streq(have_ca, g->ca_pem));
	if (!res_differs && !k3s_differs)
		return 0;
	st->nodes_diff++;
	WHY(st, "%s: %s differs from ours", name, res_differs ? REGISTRY_RESOLVED_DROPIN : REGISTRY_K3S_CONFIG);
	if (!apply)
		return 0;
	if (res_differs) {
		progress(g, "%s: the lab's zone %s through the lab's DNS servers", name,
			 json_get_string(json_get_object(s->params, "dns"), "zone") ?: "?");
		r = guest_write(ctx, gx, &vm, REGISTRY_RESOLVED_DROPIN, 0644, res);
		if (r >= 0)
			r = restart(ctx, &vm, "systemd-resolved");
		if (r < 0)
			return r;
	}
	if (!k3s_differs)
		return 0;
	progress(g, "%s: K3s pulls through %s; restarting %s", name, json_get_string(s->params, "host"), unit);
	if (g->ca_pem)
		r = guest_write(ctx, gx, &vm, REGISTRY_CA_PATH, 0644, g->ca_pem);
	if (r >= 0)
		r = guest_write(ctx, gx, &vm, REGISTRY_K3S_CONFIG, 0600, reg);
	if (r >= 0)
		r = restart(ctx, &vm, unit);
	return r < 0 ? r : node_ready(ctx, name);
}

static int nodes(struct run_ctx *ctx, const struct step *s, bool apply, struct state *st)
{
	struct json_object *vms = json_get_array(s->params, "vms");
	_cleanup_free_ char *reg = NULL, *res = NULL;
	int r = registry_node_files(s->params, rcfg(ctx)->ca_pem != NULL, &reg, &res);

	if (r < 0)
		return run_ctx_error(ctx, r, "%s: cannot write the nodes' registries.yaml: %s", s->id, strerror(-r));
	/* one VM at a time: a restarted K3s is Ready before the next goes */
	for (size_t i = 0; vms && i < json_object_array_length(vms) && r >= 0; i++)
		r = node(ctx, s, json_object_array_get_idx(vms, i), reg, res, apply, st);
	return r;
}

/* Push one archive from the first server; its images into *ret_list. */
static int push(struct run_ctx *ctx, const struct step *s, const struct mf_vm *vm, const char *archive,
		char **ret_list)
{
	struct registry_cfg *g = rcfg(ctx);
	const char *host = json_get_string(s->params, "host");
	const char *argv[] = { "/bin/sh", REGISTRY_SEED_SCRIPT, host, g->ca_pem ? REGISTRY_CA_PATH : "-", archive, NULL };
	struct pve_exec_status es = {};
	size_t n = 0;
	int r;

	progress(g, "%s: pushing the images of %s into %s", vm->name, archive, host);
	r = guest_run(ctx, k3s_guest(g->k3s), vm, argv, NULL, g->timeout_ms ? g->timeout_ms : TIMEOUT_MS_DEFAULT, &es);
	if (r >= 0 && es.exitcode != 0)
		r = run_ctx_error(ctx, -EIO, "%s: the seeding of %s failed (exit %d): %s", vm->name, archive, es.exitcode,
				  guest_tail(es.err && es.err[0] ? es.err : es.out ?: "", GUEST_EXEC_MAX_OUT));
	if (r >= 0) {
		r = registry_parse_pushed(es.out, host, ret_list, &n);
		if (r < 0)
			r = run_ctx_error(ctx, r, "%s: the seeding of %s said what it pushed in words we cannot read: %s",
					  vm->name, archive, guest_tail(es.out ?: "", 256));
		else if (n == 0)
			r = run_ctx_error(ctx, -ENOENT, "%s: %s holds no image with a name and tag to push", vm->name,
					  archive);
	}
	pve_exec_status_done(&es);
	return r;
}

/* The seed archives: each recorded and all its images listed; with
 * apply, the others pushed and recorded. */
static int seeds(struct run_ctx *ctx, const struct step *s, bool apply, struct state *st)
{
	struct registry_cfg *g = rcfg(ctx);
	struct kube_client *k = k3s_kube(g->k3s);
	struct json_object *list = json_get_array(s->params, "seed");
	_cleanup_json_ struct json_object *cm = NULL, *want = NULL;
	struct json_object *data;
	const char *ns = json_get_string(s->params, "namespace");
	bool wrote_script = false, changed = false;
	struct mf_vm vm;
	char path[320], text[512];
	int r;

	if (!list || json_object_array_length(list) == 0)
		return 0;
	r = seed_records(k, s->params, &cm);
	if (r < 0)
		return run_ctx_error(ctx, r, "the seeding's records: %s", kube_error(k));
	snprintf(text, sizeof(text),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"" REGISTRY_SEED_CONFIGMAP
		 "\",\"namespace\":\"%s\",\"labels\":{\"" MANAGED_BY "\":\"" REGISTRY_MANAGER "\"}},\"data\":{}}",
		 ns ?: "?");
	want = json_tokener_parse(text);
	data = json_get_object(want, "data");
	if (!data)
		return run_ctx_error(ctx, -ENOMEM, "out of memory");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		const char *asset = json_get_string(e, "asset"), *archive = json_get_string(e, "path");
		const char *rec = json_get_string(json_get_object(cm, "data"), asset ?: "");
		_cleanup_free_ char *pushed = NULL;
		size_t n = 0, have = 0;
		char why[384] = "";

		if (!asset || !archive)
			return run_ctx_error(ctx, -EINVAL, "%s: a seed without asset or path", s->id);
		if (rec) {
			r = record_listed(k, s->params, rec, &n, &have, why, sizeof(why));
			if (r < 0)
				return run_ctx_error(ctx, r, "the registry through the API server: %s", kube_error(k));
		}
		if (rec && n > 0 && have == n) {
			if (json_add_string(data, asset, rec) < 0)
				return run_ctx_error(ctx, -ENOMEM, "out of memory");
			continue;
		}
		st->seeds_left++;
		WHY(st, "%s: %s", asset, rec ? why : "not pushed yet");
		if (!apply)
			continue;
		if (!wrote_script) {
			if (manifest_find_vm(ctx->manifest, json_get_string(s->params, "seed_vm") ?: "", &vm) < 0)
				return run_ctx_error(ctx, -EINVAL, "%s: no seeding VM", s->id);
			r = guest_write(ctx, k3s_guest(g->k3s), &vm, REGISTRY_SEED_SCRIPT, 0755, seed_script);
			if (r < 0)
				return r;
			wrote_script = true;
		}
		r = push(ctx, s, &vm, archive, &pushed);
		if (r < 0)
			return r;
		if (json_add_string(data, asset, pushed) < 0)
			return run_ctx_error(ctx, -ENOMEM, "out of memory");
		changed = true;
	}
	if (changed) {
		bool differs = false;

		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/" REGISTRY_SEED_CONFIGMAP, ns ?: "?");
		r = kube_ensure(k, path, REGISTRY_MANAGER, want, true, &differs, NULL);
		if (r < 0)
			return run_ctx_error(ctx, r, "%s: %s", path, kube_error(k));
		st->seeds_left = 0;
	}
	return 0;
}

static int survey(struct run_ctx *ctx, const struct step *s, struct kube_want *w, size_t nw, bool apply,
		  struct state *st)
{
	int r;

	*st = (struct state){};
	r = objects(ctx, s, w, nw, apply, st);
	if (r < 0 || !st->available)
		return r;
	r = nodes(ctx, s, apply, st);
	if (r >= 0)
		r = seeds(ctx, s, apply, st);
	return r;
}

static bool done(const struct state *st)
{
	return st->diff == 0 && st->available && st->nodes_diff == 0 && st->seeds_left == 0;
}

static int registry_check(struct run_ctx *ctx, const struct step *s, bool *ret_done)
{
	struct kube_want w[OBJECTS];
	struct state st;
	size_t n = 0;
	int r;

	if (!rcfg(ctx))
		return run_ctx_error(ctx, -EINVAL, "%s: no registry context", s->id);
	r = wants(ctx, s, w, &n);
	if (r < 0)
		return r;
	r = survey(ctx, s, w, n, false, &st);
	kube_wants_done(w, n);
	*ret_done = r >= 0 && done(&st);
	return r;
}

static int registry_apply(struct run_ctx *ctx, const struct step *s)
{
	struct registry_cfg *g = rcfg(ctx);
	uint64_t poll = g && g->poll_ms ? g->poll_ms : POLL_MS_DEFAULT;
	uint64_t timeout = g && g->timeout_ms ? g->timeout_ms : TIMEOUT_MS_DEFAULT, start;
	struct kube_want w[OBJECTS];
	struct json_object *res;
	char said[sizeof(((struct state *)0)->why)] = "";
	struct state st;
	size_t n = 0;
	int r;

	if (!g)
		return run_ctx_error(ctx, -EINVAL, "%s: no registry context", s->id);
	r = wants(ctx, s, w, &n);
	if (r < 0)
		return r;
	start = http_now_ms();
	/* the objects until the registry answers; then the nodes and the
	 * seeds once (each waits for what it started) */
	for (r = survey(ctx, s, w, n, true, &st); r >= 0 && !st.available; r = survey(ctx, s, w, n, true, &st)) {
		if (http_now_ms() - start >= timeout) {
			r = run_ctx_error(ctx, -ETIMEDOUT, "the registry is not available after %" PRIu64 " s: %s",
					  timeout / 1000, st.why);
			break;
		}
		if (!streq(st.why, said)) {
			progress(g, "registry: %s", st.why);
			snprintf(said, sizeof(said), "%s", st.why);
		}
		sleep_ms(poll);
	}
	kube_wants_done(w, n);
	if (r < 0)
		return r;
	progress(g, "the registry answers at https://%s/ for %zu K3s VMs", json_get_string(s->params, "host"),
		 json_object_array_length(json_get_array(s->params, "vms")));
	res = json_object_new_object();
	if (res && json_add_u64(res, "seeded", json_object_array_length(json_get_array(s->params, "seed"))) >= 0)
		run_ctx_set_result(ctx, res);
	else
		json_object_put(res);
	return 0;
}

const struct step_ops registry_ops = { .check = registry_check, .apply = registry_apply };
