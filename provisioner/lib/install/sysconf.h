/* SPDX-License-Identifier: MIT */
/*
 * sysconf.h — the install phase's configuration steps: what the installed
 * system needs to boot as this node. Each kind's check() compares the
 * target's files byte for byte with what the step would write (read-only),
 * apply() writes only what differs (rootfile.h: temp file, fsync, rename),
 * so a second run writes nothing. docs/install.md lists every file.
 *
 *   config-fstab       /etc/fstab: root, ESP and swap by their seeded UUIDs;
 *                      a drop-in starting dmeventd with lvm2-monitor (and
 *                      retrying it) so the thin pool is monitored from boot
 *   config-hostname    /etc/hostname; a fresh machine-id (/etc/machine-id
 *                      empty, /var/lib/dbus/machine-id absent: systemd
 *                      makes one on first boot)
 *   config-hosts       /etc/hosts: the cluster's nodes by management IP
 *                      (Proxmox requires its own name to resolve to it),
 *                      localhost lines kept, Debian's 127.0.1.1 line dropped
 *   config-network     /etc/network/interfaces (ifupdown2, as Proxmox
 *                      writes it: vmbr0 bridged over the NIC), a systemd
 *                      .link naming a MAC-given NIC nic0, /etc/resolv.conf,
 *                      a drop-in ordering ifupdown2 before network-online
 *   config-users       root's password hash in /etc/shadow (SHA-512 crypt,
 *                      from the bundle's secrets), /root/.ssh/authorized_keys,
 *                      SSH host keys removed + a unit making fresh ones
 *   config-timezone    /etc/localtime, /etc/timezone, /etc/default/keyboard
 *   firstboot-install  the provisioner, the verified bundle and its key,
 *                      devopslab-firstboot.service, enabled
 *
 * Context: ctx->root is the target root; ctx->secrets a struct secrets
 * (secret.h) for config-users; ctx->install a struct install_paths for
 * firstboot-install and rootfs-extract. Secrets and hashes never reach an
 * error message.
 */
#pragma once

#include <stdint.h>

#include "plan/step.h"

#define SYSCONF_PROVISIONER "/usr/local/sbin/devopslab"
#define SYSCONF_BUNDLE "/var/lib/devopslab/bundle.tar.zst"
#define SYSCONF_PUBKEY "/etc/devopslab/bundle.pub"
#define SYSCONF_SECRET_KEY "/etc/devopslab/secret.key"
#define SYSCONF_FIRSTBOOT_DONE "/var/lib/devopslab/firstboot.done"
#define SYSCONF_NIC_NAME "nic0"

/* run_ctx's `install` slot, owned by the install verb. */
struct install_paths {
	const char *binary;      /* the provisioner to lay down; NULL = /proc/self/exe */
	const char *bundle_file; /* the verified bundle file */
	const char *pubkey;      /* the public key (PEM) it was verified with */
	const char *secret_key;  /* optional: copied to SYSCONF_SECRET_KEY (0600) */
	/* rootfs-extract's progress: compressed bytes read of total (may be NULL). */
	void (*extract_progress)(uint64_t done, uint64_t total, void *userdata);
	void *userdata;
};

/* Parse "aa:bb:cc:dd:ee:ff" (either case). 0 or -EINVAL. */
int sysconf_parse_mac(const char *s, uint8_t ret[6]);

extern const struct step_ops sysconf_hostname_ops;
extern const struct step_ops sysconf_fstab_ops;
extern const struct step_ops sysconf_hosts_ops;
extern const struct step_ops sysconf_network_ops;
extern const struct step_ops sysconf_users_ops;
extern const struct step_ops sysconf_timezone_ops;
extern const struct step_ops sysconf_logs_ops;
extern const struct step_ops sysconf_firstboot_ops;
