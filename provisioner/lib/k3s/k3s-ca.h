/* SPDX-License-Identifier: MIT */
/*
 * k3s-ca.h — the K3s cluster's trust, derived from the bundle
 * (docs/k3s.md, "Trust"). Pure functions of the sealed cluster CA key: the
 * same key gives the same bytes on every run and every node, so the
 * secure token's CA hash, the files the first server receives and the
 * kubeconfig never change, and nothing is trusted on first use.
 *
 * From HKDF-SHA256 over the CA key (its DER, so the PEM's layout does not
 * matter), one P-256 key per purpose; the five CAs K3s takes as custom CA
 * certificates (server, client, request-header, etcd server, etcd peer)
 * self-signed with deterministic ECDSA (RFC 6979); the service-account
 * key; an administrator's client certificate (O=system:masters) from the
 * client CA for the provisioner and the exported kubeconfig.
 */
#pragma once

#include <stddef.h>

#define K3S_TLS_DIR "/var/lib/rancher/k3s/server/tls"
#define K3S_CA_HASH_LEN 64 /* hex SHA-256 */
#define K3S_TLS_FILES 11

/* One file of server/tls: path in the guest, PEM text, mode. */
struct k3s_tls_file {
	const char *path;
	char *pem;
	unsigned mode; /* 0644 certificates, 0600 keys */
};

struct k3s_trust {
	const char *server_ca;   /* = files[0].pem: what K3s serves at /cacerts */
	char ca_hash[K3S_CA_HASH_LEN + 1]; /* hex SHA-256 of server_ca: the token's K10 part */
	char *admin_cert, *admin_key;      /* CN=devopslab-admin, O=system:masters */
	struct k3s_tls_file files[K3S_TLS_FILES];
};

/* Derive everything from the cluster CA's private key (PEM, any type
 * mbedtls parses). Returns 0, -EINVAL (not a key), -ENOMEM, -EIO. */
int k3s_trust_derive(const char *ca_key_pem, size_t len, struct k3s_trust *ret);
/* Wipes the keys and frees. */
void k3s_trust_done(struct k3s_trust *t);
