/* SPDX-License-Identifier: MIT */
/*
 * dns-config.h — what a DNS VM receives and what the DNS steps send
 * (docs/dns.md), as pure functions the unit tests hold to their text:
 *
 *   - the web console's certificate: a key and certificate for the VM's
 *     address and name, issued by the cluster CA, as the PKCS#12 file
 *     Technitium reads (base64: it crosses the guest agent as text);
 *   - the first-start environment (Technitium reads it only while it has
 *     no configuration): admin password file, HTTPS on TN_HTTPS_PORT with
 *     that certificate, HTTP redirected to HTTPS;
 *   - the systemd unit and the install script that unpack the bundle's
 *     archives and start it;
 *   - the zone-transfer TSIG key, derived from the cluster CA's key
 *     (HKDF-SHA256): the same on every run and node, secret, and never in
 *     the manifest;
 *   - a forwarder in Technitium's name server address format.
 *
 * Ownership: returned strings are malloc'd (free(); secrets: free_wiped()).
 */
#pragma once

#include <stddef.h>

#include "manifest/manifest.h"

#define DNS_UNIT "technitium"
#define DNS_ETC "/etc/devopslab/technitium"
#define DNS_ADMIN_PW_PATH DNS_ETC "/admin.pw"
#define DNS_PFX_PATH DNS_ETC "/web.pfx"
#define DNS_PFX_B64_PATH DNS_ETC "/web.pfx.b64"
#define DNS_ENV_PATH DNS_ETC "/technitium.env"
#define DNS_UNIT_PATH "/etc/systemd/system/technitium.service"
#define DNS_INSTALL_PATH "/usr/local/lib/devopslab/technitium-install.sh"
#define DNS_CONFIG_DIR "/var/lib/technitium"

#define DNS_TSIG_KEY_NAME MANIFEST_DNS_TSIG_KEY
#define DNS_TSIG_ALGORITHM "hmac-sha256"
#define DNS_TSIG_B64_MAX 48 /* base64 of 32 bytes, with its NUL */
#define DNS_PFX_PASSWORD_LEN 32

/* The TSIG secret (base64 of 32 bytes) for the zone transfers, derived
 * from the cluster CA's private key (PEM). -EINVAL: not a key OpenSSL
 * reads. */
int dns_tsig_secret(const char *ca_key_pem, size_t len, char ret[static DNS_TSIG_B64_MAX]);

/* A new key and certificate (the cluster CA's, 825 days) for the DNS VM
 * named name at ip (dotted quad), with fqdn as a further name; as
 * PKCS#12 sealed with password, base64 in lines of 64. -EINVAL, -EBADMSG
 * as cert_issue() (its words in *ret_err, a static string). */
int dns_web_pfx(const char *ca_cert_file, const char *ca_key_file, const char *name, const char *ip,
		const char *fqdn, const char *password, char **ret_b64, const char **ret_err);

/* A random password for the PKCS#12 file: DNS_PFX_PASSWORD_LEN
 * characters of [A-Za-z0-9]. */
int dns_random_password(char ret[static DNS_PFX_PASSWORD_LEN + 1]);

/* The first-start environment file. */
int dns_env_text(const char *fqdn, const char *pfx_password, char **ret);

/* The unit and the install script (constants). */
const char *dns_unit_text(void);
const char *dns_install_script(void);

/* A forwarder (protocol "udp", "tcp", "tls" or "https", as the plan
 * names it) as Technitium's forwarders setting takes it: "1.1.1.1" (udp,
 * tcp), "dns.quad9.net (9.9.9.9)" (tls: name and address),
 * "https://cloudflare-dns.com/dns-query (1.1.1.1)" (https: URL and
 * address). Returns 0, -EINVAL (an unknown protocol, a missing name) or
 * -ENOSPC. */
int dns_forwarder_address(const char *protocol, const char *address, const char *name, char *buf, size_t size);
/* Technitium's forwarderProtocol for the plan's name (Udp, Tcp, Tls,
 * Https), or NULL. */
const char *dns_forwarder_protocol(const char *protocol);
