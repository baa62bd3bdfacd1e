/* SPDX-License-Identifier: MIT */
/*
 * step-ops.c — which module implements which step kind in this build.
 *
 * One line per kind. A module that implements a kind defines
 * `const struct step_ops foo_ops` (declared in its own header), includes
 * that header below and changes its kind's line from NULL to &foo_ops.
 * Lines stay one per kind, separated by blank lines between subsystems, so
 * parallel branches edit different lines. NULL means "not implemented in
 * this build": the engine stops there and says so.
 */
#include "step-ops.h"
#include "install/bootloader.h"
#include "pve/cluster.h"
#include "guests/backup.h"
#include "guests/guests.h"
#include "disk/disk-step.h"
#include "node/gate.h"
#include "install/rootfs.h"
#include "install/sysconf.h"
#include "k3s/k3s.h"
#include "dns/dns.h"
#include "edge/edge.h"
#include "gitops/gitops.h"
#include "monitoring/monitoring.h"
#include "registry/registry.h"
#include "verify/verify.h"

const struct step_ops *const step_ops_table[_STEP_KIND_MAX] = {
	[STEP_BUNDLE_VERIFY] = &gate_bundle_ops, /* install: gate */

	[STEP_NODE_IDENTIFY] = &gate_identify_ops, /* install: gate */

	[STEP_PREFLIGHT] = &gate_preflight_ops, /* install: gate */

	[STEP_DISK_SELECT] = &disk_select_ops, /* disk */

	[STEP_DISK_PARTITION] = &disk_partition_ops, /* disk */

	[STEP_DISK_LVM] = &disk_lvm_ops, /* disk */

	[STEP_DISK_FILESYSTEMS] = &disk_filesystems_ops, /* disk */

	[STEP_ROOTFS_EXTRACT] = &rootfs_extract_ops, /* install: rootfs */

	[STEP_CONFIG_FSTAB] = &sysconf_fstab_ops, /* install: configure */

	[STEP_CONFIG_HOSTNAME] = &sysconf_hostname_ops, /* install: configure */

	[STEP_CONFIG_HOSTS] = &sysconf_hosts_ops, /* install: configure */

	[STEP_CONFIG_NETWORK] = &sysconf_network_ops, /* install: configure */

	[STEP_CONFIG_USERS] = &sysconf_users_ops, /* install: configure */

	[STEP_CONFIG_TIMEZONE] = &sysconf_timezone_ops, /* install: configure */
	[STEP_CONFIG_LOGS] = &sysconf_logs_ops,         /* install: configure */

	[STEP_BOOTLOADER] = &bootloader_ops, /* install: boot loader */

	[STEP_FIRSTBOOT_INSTALL] = &sysconf_firstboot_ops, /* install: firstboot unit */

	[STEP_CLUSTER_CREATE] = &cluster_create_ops, /* pve */

	[STEP_CLUSTER_JOIN] = &cluster_join_ops, /* pve */

	[STEP_CLUSTER_QUORUM] = &cluster_quorum_ops, /* pve */

	[STEP_CLUSTER_CERTS] = &cluster_certs_ops, /* pve */

	[STEP_STORAGE] = &guests_storage_ops, /* guests */

	[STEP_TEMPLATE] = &guests_template_ops, /* guests */

	[STEP_VM] = &guests_vm_ops,      /* guests */

	[STEP_BACKUP_STORAGE] = &guests_backup_storage_ops, /* guests */
	[STEP_BACKUP_JOB] = &guests_backup_ops, /* guests */

	[STEP_K3S_SERVER_INIT] = &k3s_server_init_ops, /* k3s */

	[STEP_K3S_SERVER_JOIN] = &k3s_server_join_ops, /* k3s */

	[STEP_K3S_AGENT] = &k3s_agent_ops, /* k3s */

	[STEP_K3S_CHARTS] = &k3s_charts_ops, /* k3s */

	[STEP_DNS_SERVER] = &dns_server_ops, /* dns */

	[STEP_DNS_ZONE] = &dns_zone_ops, /* dns */

	[STEP_DNS_RECORD] = &dns_record_ops, /* dns */

	[STEP_DNS_FORWARDERS] = &dns_forwarders_ops, /* dns */

	[STEP_DNS_SECONDARY] = &dns_secondary_ops, /* dns */

	[STEP_EDGE_TRAEFIK] = &edge_traefik_ops, /* edge */
	[STEP_EDGE_CERTS] = &edge_certs_ops,     /* edge */
	[STEP_EDGE_ROUTES] = &edge_routes_ops,   /* edge */

	[STEP_GITOPS] = &gitops_ops, /* gitops */

	[STEP_REGISTRY] = &registry_ops, /* registry */
	[STEP_MONITORING] = &monitoring_ops, /* monitoring */

	[STEP_VERIFY] = &verify_ops, /* verify */

	[STEP_DNS_HANDOVER] = &dns_handover_ops, /* dns */
};
