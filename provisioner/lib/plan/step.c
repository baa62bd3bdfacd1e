/* SPDX-License-Identifier: MIT */
/*
 * step.c — step names, parameters and the params hash.
 */
#include "step.h"


#include "json-util.h"
#include "bundle/sig-mbedtls.h"

static const char *const phase_names[_STEP_PHASE_MAX] = {
	[STEP_PHASE_INSTALL] = "install",
	[STEP_PHASE_FIRSTBOOT] = "firstboot",
};

static const char *const kind_names[_STEP_KIND_MAX] = {
	[STEP_BUNDLE_VERIFY] = "bundle-verify",
	[STEP_NODE_IDENTIFY] = "node-identify",
	[STEP_PREFLIGHT] = "preflight",
	[STEP_DISK_SELECT] = "disk-select",
	[STEP_DISK_PARTITION] = "disk-partition",
	[STEP_DISK_LVM] = "disk-lvm",
	[STEP_DISK_FILESYSTEMS] = "disk-filesystems",
	[STEP_ROOTFS_EXTRACT] = "rootfs-extract",
	[STEP_CONFIG_FSTAB] = "config-fstab",
	[STEP_CONFIG_HOSTNAME] = "config-hostname",
	[STEP_CONFIG_HOSTS] = "config-hosts",
	[STEP_CONFIG_NETWORK] = "config-network",
	[STEP_CONFIG_USERS] = "config-users",
	[STEP_CONFIG_TIMEZONE] = "config-timezone",
	[STEP_CONFIG_LOGS] = "config-logs",
	[STEP_BOOTLOADER] = "bootloader",
	[STEP_FIRSTBOOT_INSTALL] = "firstboot-install",
	[STEP_CLUSTER_CREATE] = "cluster-create",
	[STEP_CLUSTER_JOIN] = "cluster-join",
	[STEP_CLUSTER_QUORUM] = "cluster-quorum",
	[STEP_CLUSTER_CERTS] = "cluster-certs",
	[STEP_STORAGE] = "storage",
	[STEP_TEMPLATE] = "template",
	[STEP_VM] = "vm",
	[STEP_BACKUP_STORAGE] = "backup-storage",
	[STEP_BACKUP_JOB] = "backup-job",
	[STEP_K3S_SERVER_INIT] = "k3s-server-init",
	[STEP_K3S_SERVER_JOIN] = "k3s-server-join",
	[STEP_K3S_AGENT] = "k3s-agent",
	[STEP_K3S_CHARTS] = "k3s-charts",
	[STEP_DNS_SERVER] = "dns-server",
	[STEP_DNS_ZONE] = "dns-zone",
	[STEP_DNS_RECORD] = "dns-record",
	[STEP_DNS_FORWARDERS] = "dns-forwarders",
	[STEP_DNS_SECONDARY] = "dns-secondary",
	[STEP_EDGE_TRAEFIK] = "edge-traefik",
	[STEP_EDGE_CERTS] = "edge-certs",
	[STEP_EDGE_ROUTES] = "edge-routes",
	[STEP_REGISTRY] = "registry",
	[STEP_GITOPS] = "gitops",
	[STEP_MONITORING] = "monitoring",
	[STEP_VERIFY] = "verify",
	[STEP_DNS_HANDOVER] = "dns-handover",
};

const char *step_phase_to_string(enum step_phase p)
{
	return (unsigned)p < _STEP_PHASE_MAX ? phase_names[p] : NULL;
}

int step_phase_from_string(const char *s)
{
	for (size_t i = 0; i < ELEMENTSOF(phase_names); i++)
		if (s && streq(s, phase_names[i]))
			return (int)i;
	return -EINVAL;
}

const char *step_kind_to_string(enum step_kind k)
{
	return (unsigned)k < _STEP_KIND_MAX ? kind_names[k] : NULL;
}

int step_kind_from_string(const char *s)
{
	for (size_t i = 0; i < ELEMENTSOF(kind_names); i++)
		if (s && streq(s, kind_names[i]))
			return (int)i;
	return -EINVAL;
}

const char *step_param_string(const struct step *s, const char *key)
{
	return json_get_string(s->params, key);
}

int step_param_u64(const struct step *s, const char *key, uint64_t *ret)
{
	return json_get_u64(s->params, key, ret);
}

/*
 * The hash covers what the step is asked to do: kind, node and the
 * parameters in their canonical form (json-c keeps insertion order and
 * plan.c inserts in a fixed order, so equal manifests give equal text).
 * SHA-256 is used for its collision resistance, not for security: the
 * journal is trusted local state.
 */
_Static_assert(STEP_HASH_HEX == 2 * SIG_SHA256_LEN, "params hash is a hex SHA-256");

int step_hash_params(struct step *s)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	uint8_t md[SIG_SHA256_LEN];
	const char *text;

	if (!o)
		return -ENOMEM;
	if (json_add_string(o, "kind", step_kind_to_string(s->kind)) < 0 || json_add_string(o, "node", s->node) < 0 ||
	    json_add(o, "params", json_object_get(s->params)) < 0)
		return -ENOMEM;
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		return -ENOMEM;
	sig_sha256(text, strlen(text), md);
	sig_hex(md, s->params_hash);
	return 0;
}

int step_set_param_string(struct step *s, const char *key, const char *value)
{
	int r;

	if (!s->params || !json_object_is_type(s->params, json_type_object))
		return -EINVAL;
	r = json_add_string(s->params, key, value);
	return r < 0 ? r : step_hash_params(s);
}

void step_done(struct step *s)
{
	free(s->id);
	free(s->title);
	free(s->node);
	if (s->params)
		json_object_put(s->params);
	*s = (struct step){};
}
