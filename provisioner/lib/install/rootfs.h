/* SPDX-License-Identifier: MIT */
/*
 * rootfs.h — the rootfs-extract step: the bundle's root file system asset
 * (a tar.zst, image/rootfs.sh) streamed onto the target root.
 *
 * check(): done when the target holds the marker ROOTFS_MARKER with the
 * asset's SHA-256 (the digest the bundle's signed SHA256SUMS gives). The
 * marker is written last, after syncfs(2): a root whose extraction was
 * killed has no marker and is not done.
 *
 * apply(): first empties the target root (a killed run's partial content;
 * never crossing into another file system — a mount point such as
 * /boot/efi is emptied and kept — and never following a symlink; the
 * top-level lost+found is kept), then extracts with EXTRACT_POLICY_ROOTFS
 * (owners, modes, setuid bits, symlinks, hardlinks, devices, sparse files,
 * xattrs including file capabilities) in bounded memory, reporting
 * progress through struct install_paths' extract_progress.
 *
 * Context: ctx->root the target (mounted) root; ctx->bundle the verified,
 * extracted struct bundle (bundle.h), where the asset is
 * bundle->dir/assets/FILE; ctx->install optional (progress).
 */
#pragma once

#include "plan/step.h"

#define ROOTFS_MARKER "/var/lib/devopslab/rootfs.sha256"
/* The install phase's journal on the target: the one file the wipe keeps,
 * so a redone extraction does not forget the steps done before it. */
#define ROOTFS_INSTALL_JOURNAL "/var/lib/devopslab/install.journal"

extern const struct step_ops rootfs_extract_ops;

/* Remove everything below the directory fd rootfd as described above,
 * except `keep` (a path relative to the root, or NULL) and the directories
 * leading to it. -EPERM when rootfd is the running system's "/", -EINVAL
 * for an absolute keep or one with "..". */
int rootfs_wipe(int rootfd, const char *keep);
