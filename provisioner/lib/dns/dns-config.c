/* SPDX-License-Identifier: MIT */
/*
 * dns-config.c — see dns-config.h.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "dns-config.h"
#include "pve/cert.h"
#include "technitium.h"
#include "util.h"

#define TSIG_SALT "devopslab dns"
#define TSIG_INFO "zone transfer tsig v1"

int dns_tsig_secret(const char *ca_key_pem, size_t len, char ret[static DNS_TSIG_B64_MAX])
{
	BIO *bio = BIO_new_mem_buf(ca_key_pem, (int)len);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"") : NULL;
	EVP_PKEY_CTX *kdf = NULL;
	unsigned char *der = NULL, out[32];
	size_t n = sizeof(out);
	int der_len = key ? i2d_PrivateKey(key, &der) : -1, r = -EIO;

	BIO_free(bio);
	EVP_PKEY_free(key);
	if (der_len <= 0)
		return -EINVAL;
	/* HKDF over the key's DER: the same for any PEM form of one key */
	kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	if (kdf && EVP_PKEY_derive_init(kdf) > 0 && EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()) > 0 &&
	    EVP_PKEY_CTX_set1_hkdf_salt(kdf, (const unsigned char *)TSIG_SALT, (int)strlen(TSIG_SALT)) > 0 &&
	    EVP_PKEY_CTX_set1_hkdf_key(kdf, der, der_len) > 0 &&
	    EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)TSIG_INFO, (int)strlen(TSIG_INFO)) > 0 &&
	    EVP_PKEY_derive(kdf, out, &n) > 0 && n == sizeof(out)) {
		EVP_EncodeBlock((unsigned char *)ret, out, (int)sizeof(out));
		r = 0;
	}
	EVP_PKEY_CTX_free(kdf);
	explicit_wipe(der, (size_t)der_len);
	OPENSSL_free(der);
	explicit_wipe(out, sizeof(out));
	return r;
}

int dns_random_password(char ret[static DNS_PFX_PASSWORD_LEN + 1])
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char b[DNS_PFX_PASSWORD_LEN];
	size_t i = 0;

	while (i < DNS_PFX_PASSWORD_LEN) {
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
			return -EIO;
		/* 62 symbols: drop bytes >= 248 so each is equally likely */
		for (size_t k = 0; k < sizeof(b) && i < DNS_PFX_PASSWORD_LEN; k++)
			if (b[k] < 248)
				ret[i++] = set[b[k] % 62];
	}
	ret[i] = 0;
	explicit_wipe(b, sizeof(b));
	return 0;
}

/* base64 of data in lines of 64, as base64(1) decodes it. */
static char *b64_lines(const unsigned char *data, size_t n)
{
	size_t lines = (n + 47) / 48, cap = lines * 65 + 1, o = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 48) {
		size_t k = n - i < 48 ? n - i : 48;

		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, data + i, (int)k);
		out[o++] = '\n';
	}
	out[o] = 0;
	return out;
}

int dns_web_pfx(const char *ca_cert_file, const char *ca_key_file, const char *name, const char *ip,
		const char *fqdn, const char *password, char **ret_b64, const char **ret_err)
{
	struct cert_request req = { .common_name = name, .dns = { name }, .n_dns = 1, .ips = { ip }, .n_ips = 1 };
	char *chain = NULL, *key_pem = NULL, *b64 = NULL;
	BIO *cb = NULL, *kb = NULL;
	X509 *leaf = NULL, *x;
	STACK_OF(X509) *cas = NULL;
	EVP_PKEY *key = NULL;
	PKCS12 *p12 = NULL;
	unsigned char *der = NULL;
	int der_len = -1, r;

	*ret_err = NULL;
	if (fqdn && !streq(fqdn, name))
		req.dns[req.n_dns++] = fqdn;
	r = cert_issue(ca_cert_file, ca_key_file, &req, &chain, &key_pem);
	if (r < 0) {
		*ret_err = cert_error();
		return r;
	}
	r = -EIO;
	cb = BIO_new_mem_buf(chain, -1);
	kb = BIO_new_mem_buf(key_pem, -1);
	cas = sk_X509_new_null();
	if (!cb || !kb || !cas)
		goto out;
	leaf = PEM_read_bio_X509(cb, NULL, NULL, NULL);
	key = PEM_read_bio_PrivateKey(kb, NULL, NULL, (void *)"");
	while ((x = PEM_read_bio_X509(cb, NULL, NULL, NULL)))
		if (!sk_X509_push(cas, x)) {
			X509_free(x);
			goto out;
		}
	if (!leaf || !key)
		goto out;
	/* OpenSSL 3's defaults: AES-256-CBC, PBKDF2, an HMAC-SHA256 MAC */
	p12 = PKCS12_create(password, name, key, leaf, cas, 0, 0, 0, 0, 0);
	der_len = p12 ? i2d_PKCS12(p12, &der) : -1;
	if (der_len <= 0)
		goto out;
	b64 = b64_lines(der, (size_t)der_len);
	r = b64 ? 0 : -ENOMEM;
out:
	if (r < 0)
		*ret_err = "OpenSSL could not make the PKCS#12 file";
	if (der) {
		explicit_wipe(der, (size_t)der_len);
		OPENSSL_free(der);
	}
	PKCS12_free(p12);
	EVP_PKEY_free(key);
	X509_free(leaf);
	sk_X509_pop_free(cas, X509_free);
	BIO_free(cb);
	BIO_free(kb);
	free(chain);
	free_wiped(key_pem);
	*ret_b64 = b64;
	return r;
}

int dns_env_text(const char *fqdn, const char *pfx_password, char **ret)
{
	return asprintf(ret,
			"# Technitium DNS Server's first start (DevOpsLab, docs/dns.md): read only\n"
			"# while it has no configuration in " DNS_CONFIG_DIR ".\n"
			"DNS_SERVER_DOMAIN=%s\n"
			"DNS_SERVER_ADMIN_PASSWORD_FILE=" DNS_ADMIN_PW_PATH "\n"
			"DNS_SERVER_WEB_SERVICE_ENABLE_HTTPS=true\n"
			"DNS_SERVER_WEB_SERVICE_HTTPS_PORT=%d\n"
			"DNS_SERVER_WEB_SERVICE_USE_SELF_SIGNED_CERT=false\n"
			"DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PATH=" DNS_PFX_PATH "\n"
			"DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PASSWORD=%s\n"
			"DNS_SERVER_WEB_SERVICE_HTTP_TO_TLS_REDIRECT=true\n",
			fqdn, TN_HTTPS_PORT, pfx_password) < 0
		       ? -ENOMEM
		       : 0;
}

const char *dns_unit_text(void)
{
	return "# Technitium DNS Server, installed by DevOpsLab from the bundle (docs/dns.md)\n"
	       "[Unit]\n"
	       "Description=Technitium DNS Server\n"
	       "Wants=network-online.target\n"
	       "After=network-online.target\n"
	       "\n"
	       "[Service]\n"
	       "EnvironmentFile=" DNS_ENV_PATH "\n"
	       "Environment=DOTNET_CLI_TELEMETRY_OPTOUT=1\n"
	       "WorkingDirectory=/opt/devopslab/technitium\n"
	       "ExecStart=/opt/devopslab/dotnet/dotnet /opt/devopslab/technitium/DnsServerApp.dll " DNS_CONFIG_DIR "\n"
	       "KillSignal=SIGINT\n"
	       "Restart=always\n"
	       "RestartSec=5\n"
	       "\n"
	       "[Install]\n"
	       "WantedBy=multi-user.target\n";
}

const char *dns_install_script(void)
{
	return "#!/bin/sh\n"
	       "# Installs Technitium DNS Server from the bundle's archives (DevOpsLab,\n"
	       "# docs/dns.md). Idempotent: a second run replaces the files and restarts.\n"
	       "set -eu\n"
	       "payload=" MANIFEST_DNS_DIR "\n"
	       "etc=" DNS_ETC "\n"
	       "opt=/opt/devopslab\n"
	       "die() { echo \"technitium-install: $*\" >&2; exit 1; }\n"
	       "[ -s \"$payload/DnsServerPortable.tar.gz\" ] || die \"$payload/DnsServerPortable.tar.gz is missing "
	       "(dns.airgap.package)\"\n"
	       "[ -s \"$payload/aspnetcore-runtime.tar.gz\" ] || die \"$payload/aspnetcore-runtime.tar.gz is missing "
	       "(dns.airgap.runtime)\"\n"
	       "for f in \"$etc/admin.pw\" \"$etc/web.pfx.b64\" \"$etc/technitium.env\" " DNS_UNIT_PATH "; do\n"
	       "\t[ -s \"$f\" ] || die \"$f is missing\"\n"
	       "done\n"
	       "umask 077\n"
	       "base64 -d \"$etc/web.pfx.b64\" >\"$etc/web.pfx.tmp\" || die \"$etc/web.pfx.b64 is not base64\"\n"
	       "mv -f \"$etc/web.pfx.tmp\" \"$etc/web.pfx\"\n"
	       "umask 022\n"
	       "rm -rf \"$opt/dotnet.new\" \"$opt/technitium.new\"\n"
	       "mkdir -p \"$opt/dotnet.new\" \"$opt/technitium.new\" " DNS_CONFIG_DIR "\n"
	       "tar -xzf \"$payload/aspnetcore-runtime.tar.gz\" -C \"$opt/dotnet.new\" --no-same-owner\n"
	       "tar -xzf \"$payload/DnsServerPortable.tar.gz\" -C \"$opt/technitium.new\" --no-same-owner\n"
	       "[ -x \"$opt/dotnet.new/dotnet\" ] || die \"the runtime archive has no dotnet\"\n"
	       "[ -f \"$opt/technitium.new/DnsServerApp.dll\" ] || die \"the package archive has no DnsServerApp.dll\"\n"
	       "systemctl stop " DNS_UNIT " 2>/dev/null || :\n"
	       "rm -rf \"$opt/dotnet\" \"$opt/technitium\"\n"
	       "mv \"$opt/dotnet.new\" \"$opt/dotnet\"\n"
	       "mv \"$opt/technitium.new\" \"$opt/technitium\"\n"
	       "# port 53: systemd-resolved's stub listener holds 127.0.0.53:53\n"
	       "if systemctl is-active --quiet systemd-resolved; then\n"
	       "\tmkdir -p /etc/systemd/resolved.conf.d\n"
	       "\tprintf '[Resolve]\\nDNSStubListener=no\\n' >/etc/systemd/resolved.conf.d/devopslab-technitium.conf\n"
	       "\tln -sf /run/systemd/resolve/resolv.conf /etc/resolv.conf\n"
	       "\tsystemctl restart systemd-resolved\n"
	       "fi\n"
	       "systemctl daemon-reload\n"
	       "systemctl enable --now " DNS_UNIT ".service\n";
}

const char *dns_forwarder_protocol(const char *protocol)
{
	static const char *const map[][2] = {
		{ "udp", "Udp" }, { "tcp", "Tcp" }, { "tls", "Tls" }, { "https", "Https" },
	};

	for (size_t i = 0; protocol && i < ELEMENTSOF(map); i++)
		if (streq(protocol, map[i][0]))
			return map[i][1];
	return NULL;
}

int dns_forwarder_address(const char *protocol, const char *address, const char *name, char *buf, size_t size)
{
	const char *p = dns_forwarder_protocol(protocol);
	int n;

	if (!p || isempty(address))
		return -EINVAL;
	if (streq(p, "Udp") || streq(p, "Tcp"))
		n = snprintf(buf, size, "%s", address);
	else if (isempty(name))
		return -EINVAL;
	else
		n = snprintf(buf, size, "%s (%s)", name, address);
	return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}
