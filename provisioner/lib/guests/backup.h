/* SPDX-License-Identifier: MIT */
/*
 * backup.h — the first-boot step backup-job: one vzdump job of the
 * cluster (POST/PUT /cluster/backup) backing up every VM of the manifest,
 * params {id, schedule, storage, mode, compress, vmid, prune-backups}
 * (docs/operations.md). check: the job is there with those options and
 * enabled; apply: create it, or set back what differs. Runs on the
 * cluster context in run_ctx->pve (cluster.h).
 */
#pragma once

#include "plan/step.h"

extern const struct step_ops guests_backup_ops;

/* The first-boot step backup-storage: the Proxmox Backup Server storage
 * the backups go to (POST/PUT /storage, type pbs), params {storage, type,
 * server, datastore, username, password (a secret reference, its value
 * from run_ctx->secrets), fingerprint, namespace, port, content}. check:
 * a storage of that name and type pbs with those settings (the password
 * cannot be read back); apply: create it, or set back what differs. */
extern const struct step_ops guests_backup_storage_ops;
