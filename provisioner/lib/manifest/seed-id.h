/* SPDX-License-Identifier: MIT */
/*
 * seed-id.h — identifiers derived from the manifest's seed, so that a re-run
 * (and a test) produces byte-identical disks, as systemd-repart's --seed:
 *
 *   bytes = HMAC-SHA256(key = seed, message = node "\n" purpose)[0..15]
 *   then the RFC 4122 version (4) and variant (10xx) bits are set.
 *
 * Purposes used by the disk code: "disk" (GPT disk GUID), "part:N" (GPT
 * partition N), "fs:esp" (FAT volume id = its first 4 bytes), "fs:root",
 * "fs:swap", "lvm:pv" (LVM's 32-character form). docs/disk.md lists them.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SEED_UUID_STR 37 /* 36 + NUL */

int seed_id_bytes(const char *seed, const char *node, const char *purpose, uint8_t ret[16]);
/* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lower case */
int seed_id_uuid(const char *seed, const char *node, const char *purpose, char ret[SEED_UUID_STR]);
/* FAT volume serial: 8 hex digits (mkfs.vfat -i) */
int seed_id_vfat(const char *seed, const char *node, const char *purpose, char ret[9]);
/* LVM UUID: 32 characters [A-Za-z0-9] as 6-4-4-4-4-4-6 (pvcreate --uuid) */
int seed_id_lvm(const char *seed, const char *node, const char *purpose, char ret[39]);
