/* SPDX-License-Identifier: MIT */
/*
 * pve-guest.h — the Proxmox VE API calls for storage and QEMU guests, on
 * top of the client in pve.h (same errors, same error text). Every call
 * names the node it is about; a cluster member proxies /nodes/OTHER/...,
 * so one client reaches every node. Calls that start a task wait for it
 * (pve_task_wait): its log's tail is in the error text when it fails.
 *
 * Paths and parameters are those of the Proxmox VE 9.1 API schema
 * (../shared/reference/pve-api-schema-9.1.json); docs/guests.md says which
 * step uses which.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pve.h"

#define PVE_CONTENT_MAX 256
#define PVE_VOLID_MAX 256

/* ---- storage ------------------------------------------------------------- */

/* GET /nodes/{node}/storage/{storage}/status */
struct pve_storage_status {
	char type[32];                    /* dir, lvmthin, zfspool, ... */
	char content[PVE_CONTENT_MAX];    /* "images,rootdir" */
	bool active, enabled, shared;
	uint64_t total, used, avail;      /* bytes */
};
int pve_storage_status(struct pve_client *c, const char *node, const char *storage, struct pve_storage_status *ret);

/* GET /storage/{storage}: the cluster-wide content types. */
int pve_storage_content_types(struct pve_client *c, const char *storage, char ret[PVE_CONTENT_MAX]);
/* PUT /storage/{storage} content=... (the whole list). */
int pve_storage_set_content_types(struct pve_client *c, const char *storage, const char *content);

/* GET /nodes/{node}/storage/{storage}/content */
struct pve_volume {
	char volid[PVE_VOLID_MAX];        /* "local:iso/seed.iso", "local-lvm:vm-201-disk-0" */
	char content[16];
	char format[16];
	uint64_t size;
	uint64_t ctime;                   /* creation, seconds since the epoch; 0 when not given */
	unsigned vmid;                    /* 0 when none */
};
/* content: a type filter or NULL. *ret is malloc'd (free()). */
int pve_storage_volumes(struct pve_client *c, const char *node, const char *storage, const char *content,
			struct pve_volume **ret, size_t *ret_n);
/* The newest backup archive of VM vmid on storage (as seen from node):
 * *ret its volid, "" when there is none. */
int pve_latest_backup(struct pve_client *c, const char *node, const char *storage, unsigned vmid,
		      char ret[PVE_VOLID_MAX]);
/* DELETE /nodes/{node}/storage/{storage}/content/{volume} (waits when it is a task). */
int pve_storage_delete_volume(struct pve_client *c, const char *node, const char *storage, const char *volid);

/* ---- QEMU guests ----------------------------------------------------------- */

/* One row of GET /cluster/resources?type=vm (QEMU guests only). */
struct pve_guest {
	unsigned vmid;
	char node[PVE_NAME_MAX];
	char name[PVE_NAME_MAX];
	char status[16];                  /* running, stopped */
	bool template;
	char lock[32];                    /* "" when not locked */
};
/* Every QEMU guest of the cluster. *ret is malloc'd (free()). */
int pve_cluster_guests(struct pve_client *c, struct pve_guest **ret, size_t *ret_n);
const struct pve_guest *pve_guest_find(const struct pve_guest *g, size_t n, unsigned vmid);

/* GET /nodes/{node}/qemu/{vmid}/config: the config (pending values
 * included, as Proxmox answers by default); the caller puts it. */
struct json_object;
int pve_vm_config(struct pve_client *c, const char *node, unsigned vmid, struct json_object **ret);
/* POST /nodes/{node}/qemu (vmid and everything else in p). */
int pve_vm_create(struct pve_client *c, const char *node, const struct pve_params *p);
/* POST /nodes/{node}/qemu/{vmid}/config (asynchronous in Proxmox: a task). */
int pve_vm_update(struct pve_client *c, const char *node, unsigned vmid, const struct pve_params *p);
/* POST /nodes/{node}/qemu/{vmid}/template */
int pve_vm_template(struct pve_client *c, const char *node, unsigned vmid);
/* qmrestore through the API: POST /nodes/{node}/qemu with archive (a
 * backup's volid), its disks onto storage (NULL: where they were); force
 * replaces an existing VM of that VMID. Waits for the task. */
int pve_vm_restore(struct pve_client *c, const char *node, unsigned vmid, const char *archive, const char *storage,
		   bool force);
/* POST /nodes/{node}/qemu/{vmid}/clone on the template's node. full: a
 * full copy onto `storage` (NULL: the template's); otherwise a linked
 * clone. -EBUSY when the template is locked by another clone (Proxmox:
 * "can't lock file ... got timeout"): the caller may try again. */
int pve_vm_clone(struct pve_client *c, const char *node, unsigned vmid, unsigned newid, const char *name, bool full,
		 const char *storage);
/* PUT /nodes/{node}/qemu/{vmid}/resize to an absolute size (grow only). */
int pve_vm_resize(struct pve_client *c, const char *node, unsigned vmid, const char *disk, uint64_t bytes);
/* GET /nodes/{node}/qemu/{vmid}/status/current: "running"/"stopped". */
int pve_vm_status(struct pve_client *c, const char *node, unsigned vmid, char ret[16]);
/* POST /nodes/{node}/qemu/{vmid}/status/start */
int pve_vm_start(struct pve_client *c, const char *node, unsigned vmid);
/* DELETE /nodes/{node}/qemu/{vmid} (stopped guests; purge=1). */
int pve_vm_destroy(struct pve_client *c, const char *node, unsigned vmid);

/* POST /nodes/{node}/qemu/{vmid}/agent/ping: 0 once the guest agent answers. */
int pve_vm_agent_ping(struct pve_client *c, const char *node, unsigned vmid);
/* GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces: the IPv4
 * addresses of the interface with MAC `mac` (case-insensitive). */
int pve_vm_agent_ipv4(struct pve_client *c, const char *node, unsigned vmid, const char *mac, uint32_t *ret,
		      size_t max, size_t *ret_n);

/* POST /nodes/{node}/qemu/{vmid}/agent/exec: start argv[0] with the
 * arguments argv[1..] (NULL-terminated) in the guest, input (may be NULL,
 * at most 64 KiB; treated as a secret: never logged) on its standard
 * input. *ret_pid is the guest's PID for pve_vm_agent_exec_status(). */
int pve_vm_agent_exec(struct pve_client *c, const char *node, unsigned vmid, const char *const *argv,
		      const char *input, unsigned *ret_pid);
/* GET /nodes/{node}/qemu/{vmid}/agent/exec-status?pid=N */
struct pve_exec_status {
	bool exited;
	int exitcode;   /* -1 when it did not exit normally (yet) */
	int signal;     /* -1 when none */
	char *out, *err; /* what the agent captured ("" when none); malloc'd */
};
int pve_vm_agent_exec_status(struct pve_client *c, const char *node, unsigned vmid, unsigned pid,
			     struct pve_exec_status *ret);
void pve_exec_status_done(struct pve_exec_status *s);

/* Decoders, exposed for tests and fuzzing (-EBADMSG on a shape we refuse). */
int pve_decode_guests(struct json_object *data, struct pve_guest **ret, size_t *ret_n);
int pve_decode_agent_ipv4(struct json_object *data, const char *mac, uint32_t *ret, size_t max, size_t *ret_n);
int pve_decode_exec_status(struct json_object *data, struct pve_exec_status *ret);
