/* SPDX-License-Identifier: MIT */
/*
 * cert.h — the cluster CA issues each node's API certificate (OpenSSL
 * libcrypto). The CA certificate travels in the bundle; its key is one of
 * the bundle's secrets. docs/security.md ("Proxmox API trust") describes the chain.
 *
 * Ownership: the PEM strings returned are the caller's (free(); the key
 * is a secret: explicit_wipe() it first). Nothing here logs.
 */
#pragma once

#include <stddef.h>

#define CERT_MAX_NAMES 8
#define CERT_FILE_MAX (64u << 10) /* a CA certificate or key file */

struct cert_request {
	const char *common_name;               /* the node name */
	const char *dns[CERT_MAX_NAMES];       /* subjectAltName DNS entries */
	size_t n_dns;
	const char *ips[CERT_MAX_NAMES];       /* subjectAltName IP entries */
	size_t n_ips;
	unsigned days;                         /* validity; default 825 */
};

/* A new P-256 key and a certificate for it signed by the CA. ret_chain is
 * the leaf followed by the CA certificate (what Proxmox's
 * /nodes/{node}/certificates/custom takes as "certificates"); ret_key the
 * PKCS#8 private key. -EINVAL for a bad request or a CA whose key does not
 * match its certificate; -EBADMSG for unreadable PEM; detail in cert_error(). */
int cert_issue(const char *ca_cert_file, const char *ca_key_file, const struct cert_request *req, char **ret_chain,
	       char **ret_key);

/* Whether chain_pem's first certificate (the leaf; intermediates may
 * follow) chains up to a certificate of trust_file (the cluster CA, or
 * the roots an ACME CA issues under) as a TLS server's, key_pem is its
 * key, every dns name is among its subjectAltNames (literally: "*.zone"
 * for a wildcard), and it is valid for min_days more days. 0 when so;
 * -EKEYREJECTED (not the CA's, or not its key), -ENOENT (a name missing),
 * -ETIME (not valid so long), -EBADMSG (no PEM); detail in cert_error(). */
int cert_check(const char *trust_file, const char *chain_pem, const char *key_pem, const char *const *dns,
	       size_t n_dns, unsigned min_days);

const char *cert_error(void);
