/* SPDX-License-Identifier: MIT */
/*
 * cloudinit.h — the three documents of one VM's NoCloud seed
 * (docs/guests.md, "The seed: what each VM receives"): user-data,
 * meta-data and network-config, as text. Pure functions: no I/O.
 *
 * Every text is written with libyaml's emitter (yaml-util.h), so each
 * string is quoted as YAML needs whatever it holds; the same input gives
 * the same bytes. Each function checks the whole input first and returns
 * -EINVAL for anything out of shape (cloudinit_check() says the same
 * without writing), -EFBIG past CLOUDINIT_DOC_MAX, or -ENOMEM; on success
 * *ret is a malloc'd, NUL-terminated text (the caller frees it) and
 * *ret_len its length. Nothing is written to *ret on failure.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CLOUDINIT_DOC_MAX (1u << 20)   /* bytes in one document */
#define CLOUDINIT_KEYS_MAX 64u         /* SSH keys */
#define CLOUDINIT_KEY_LEN 16384u       /* bytes in one SSH key line */
#define CLOUDINIT_DNS_MAX 16u          /* as the manifest's network.dns */
#define CLOUDINIT_FILES_MAX 256u       /* payload files */
#define CLOUDINIT_PATH_MAX 1024u       /* bytes in a payload file's guest path */
#define CLOUDINIT_ID_MAX 64u           /* bytes in an instance id */

/* Where the user data puts the payload script and its list in the guest. */
#define CLOUDINIT_PAYLOAD_DIR "/usr/local/lib/devopslab"
#define CLOUDINIT_PAYLOAD_SCRIPT CLOUDINIT_PAYLOAD_DIR "/payload.sh"
#define CLOUDINIT_PAYLOAD_LIST CLOUDINIT_PAYLOAD_DIR "/payload.list"
/* The interface name the network config gives the VM's one NIC. */
#define CLOUDINIT_IFNAME "eth0"

/* One payload file: copied in the guest from the assets ISO to path,
 * refused there unless its SHA-256 is sha256. */
struct cloudinit_file {
	const char *source; /* its name on the assets ISO (isoimage_name_ok()) */
	const char *path;   /* absolute, clean path in the guest: no "//", ".", ".." or
			     * trailing "/"; of [A-Za-z0-9._+@=,:/-] */
	const char *sha256; /* 64 lower-case hex digits */
	unsigned mode;      /* at most 07777 */
};

struct cloudinit_vm {
	const char *hostname;    /* one DNS label (RFC 1123) */
	const char *fqdn;        /* a DNS name whose first label is hostname */
	const char *instance_id; /* stable per VM: "devopslab-<vmid>"; [A-Za-z0-9._-] */
	const char *user;        /* NULL: the image's default user gets the keys;
				  * else [a-z_][a-z0-9_-]*, at most 32, not "root" */
	const char *const *ssh_keys; /* authorized_keys lines: no control character */
	size_t n_ssh_keys;
	const char *mac;         /* the NIC the network config matches ("02:..") */
	uint32_t ip;             /* host byte order, as manifest.h; not 0 */
	unsigned prefix;         /* 1..32 */
	uint32_t gateway;        /* 0: none; else inside ip/prefix, not ip */
	const uint32_t *dns;     /* resolvers */
	size_t n_dns;
	const char *search;      /* NULL, or a DNS name: the search domain */
	const struct cloudinit_file *files; /* the payload; distinct paths */
	size_t n_files;
	const char *assets_label; /* the assets ISO's volume id (isoimage_volid_ok());
				   * required with files */
};

/* 0 when vm is in shape, -EINVAL otherwise. */
int cloudinit_check(const struct cloudinit_vm *vm);

/* "#cloud-config": host name, fqdn, /etc/hosts, the user or the default
 * user's keys, no package updates, and with files the payload script, its
 * list and the runcmd that runs it (docs/guests.md). */
int cloudinit_user_data(const struct cloudinit_vm *vm, char **ret, size_t *ret_len);
/* instance-id and local-hostname. */
int cloudinit_meta_data(const struct cloudinit_vm *vm, char **ret, size_t *ret_len);
/* Network config version 2: one ethernet matched by MAC and named
 * CLOUDINIT_IFNAME, its address, default route and resolvers. */
int cloudinit_network_config(const struct cloudinit_vm *vm, char **ret, size_t *ret_len);
