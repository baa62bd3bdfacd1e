/* SPDX-License-Identifier: MIT */
/*
 * verbs.h — the command line: one file per verb (cmd-*.c), one table in
 * main.c. A verb's run() parses its own options, logs what went wrong, and
 * returns one of the documented exit codes below (never a negative errno).
 */
#pragma once

/* Exit status table; docs/devopslab.1 EXIT STATUS lists the same. */
/* Present only in the DevOpsLab boot image (image/initramfs.sh): there,
 * a manifest with cluster.unattended writes to the selected disk without
 * asking, as --yes does. */
#define INSTALLER_MARKER "/etc/devopslab/installer-image"

/* The exit status for a failure of a disk step (or of disk_step_open()):
 * no disk / several / the policy / in use / too small are refusals (3),
 * -EINVAL bad input (2), anything else 1. In cmd-disk.c. */
int verbs_exit_for_disk(int r);

enum {
	EXIT_OK = 0,          /* success (also: nothing to do, already converged) */
	EXIT_FAIL = 1,        /* the operation failed */
	EXIT_BADINPUT = 2,    /* bad usage or bad input: manifest, options, files */
	EXIT_REFUSED = 3,     /* a safety policy refused (disk not selectable or not wipeable) */
	EXIT_UNVERIFIED = 4,  /* bundle signature or integrity check failed */
	EXIT_INCOMPLETE = 5,  /* every step this build implements is done; the plan goes on with
			       * steps it cannot run yet (named in the message) */
	EXIT_REBOOT = 10,     /* install finished: reboot into the installed system */
};

struct verb {
	const char *name;     /* "plan", or two words: "bundle create" */
	const char *synopsis; /* options, as in the man page */
	const char *summary;  /* one line */
	int (*run)(int argc, char *argv[]);
};

/* Each cmd-*.c defines its verbs' run functions. */
int verb_validate(int argc, char *argv[]);
int verb_plan(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_report(int argc, char *argv[]);
int verb_bundle_create(int argc, char *argv[]);
int verb_bundle_verify(int argc, char *argv[]);
int verb_bundle_extract(int argc, char *argv[]);
int verb_firstboot(int argc, char *argv[]);
int verb_disk_list(int argc, char *argv[]);
int verb_disk_plan(int argc, char *argv[]);
int verb_disk_apply(int argc, char *argv[]);
int verb_install(int argc, char *argv[]);
