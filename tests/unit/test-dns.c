/* SPDX-License-Identifier: MIT */
/*
 * test-dns.c — the Technitium client's form encoding and reply decoding
 * (status ok / error with its errorMessage / invalid-token / not JSON),
 * and what dns-config.h makes: the TSIG secret as a function of the CA
 * key alone (the same from its SEC1 and PKCS#8 forms), the first-start
 * environment, the forwarder addresses in Technitium's format, the unit,
 * the install script, and a PKCS#12 file OpenSSL opens with its password
 * holding a certificate of the CA for the VM's address.
 * t-dns.sh runs the steps against the simulators.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "dns/dns-config.h"
#include "dns/technitium.h"
#include "plan/json-util.h"
#include "util.h"

#include "test-ca.h"
#include "test-keys.h"

static void test_form(void **state)
{
	const struct tn_param p[] = {
		{ "user", "admin" }, { "pass", "p@ss word&=+" }, { "skipped", NULL }, { "domain", "*.home.arpa" },
	};
	char *s = NULL;

	(void)state;
	assert_int_equal(tn_form_encode(p, ELEMENTSOF(p), &s), 0);
	assert_string_equal(s, "user=admin&pass=p%40ss+word%26%3D%2B&domain=%2A.home.arpa");
	free(s);
	assert_int_equal(tn_form_encode(NULL, 0, &s), 0);
	assert_string_equal(s, "");
	free(s);
}

static void test_reply(void **state)
{
	struct json_object *o = NULL;
	char msg[64];
	const char *ok = "{\"response\":{\"domain\":\"home.arpa\"},\"status\":\"ok\"}";
	const char *err = "{\"status\":\"error\",\"errorMessage\":\"Zone already exists: home.arpa\","
			  "\"stackTrace\":\"   at DnsServerCore...\"}";
	const char *tok = "{\"status\":\"invalid-token\",\"errorMessage\":\"Invalid token or session expired.\"}";

	(void)state;
	assert_int_equal(tn_decode_reply(ok, strlen(ok), &o, msg, sizeof(msg)), 0);
	assert_string_equal(json_get_string(json_get_object(o, "response"), "domain"), "home.arpa");
	json_object_put(o);
	o = NULL;
	assert_int_equal(tn_decode_reply(err, strlen(err), &o, msg, sizeof(msg)), -EPROTO);
	assert_null(o);
	assert_string_equal(msg, "Zone already exists: home.arpa");
	assert_int_equal(tn_decode_reply(tok, strlen(tok), &o, msg, sizeof(msg)), -EKEYEXPIRED);
	/* HTTP 200 with something else: not a success */
	assert_int_equal(tn_decode_reply("<html>", 6, &o, msg, sizeof(msg)), -EBADMSG);
	assert_int_equal(tn_decode_reply("{\"status\":\"maybe\"}", 18, &o, msg, sizeof(msg)), -EBADMSG);
	assert_int_equal(tn_decode_reply("{\"response\":{}}", 15, &o, msg, sizeof(msg)), -EBADMSG);
	assert_int_equal(tn_decode_reply("{\"status\":\"ok\"} x", 17, &o, msg, sizeof(msg)), -EBADMSG);
	assert_int_equal(tn_decode_reply("", 0, &o, msg, sizeof(msg)), -EBADMSG);
	assert_null(o);
	/* an error without a message still says what happened */
	assert_int_equal(tn_decode_reply("{\"status\":\"error\"}", 18, NULL, msg, sizeof(msg)), -EPROTO);
	assert_non_null(strstr(msg, "without errorMessage"));
}

static void test_tsig(void **state)
{
	char a[DNS_TSIG_B64_MAX], b[DNS_TSIG_B64_MAX], c[DNS_TSIG_B64_MAX];
	unsigned char raw[64];

	(void)state;
	assert_int_equal(dns_tsig_secret(key_sec1, strlen(key_sec1), a), 0);
	assert_int_equal(dns_tsig_secret(key_pkcs8, strlen(key_pkcs8), b), 0);
	assert_int_equal(dns_tsig_secret(key_other, strlen(key_other), c), 0);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), 44);
	assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)a, 44), 33); /* 32 + the padding's byte */
	assert_int_equal(dns_tsig_secret("not a key", 9, a), -EINVAL);
}

static void test_forwarders(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(dns_forwarder_address("https", "1.1.1.1", "https://cloudflare-dns.com/dns-query", buf,
					       sizeof(buf)),
			 0);
	assert_string_equal(buf, "https://cloudflare-dns.com/dns-query (1.1.1.1)");
	assert_int_equal(dns_forwarder_address("tls", "9.9.9.9", "dns.quad9.net", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "dns.quad9.net (9.9.9.9)");
	assert_int_equal(dns_forwarder_address("udp", "10.0.0.1", NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.0.0.1");
	assert_int_equal(dns_forwarder_address("tls", "9.9.9.9", NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(dns_forwarder_address("quic", "9.9.9.9", "x", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(dns_forwarder_address("https", "1.1.1.1", "https://cloudflare-dns.com/dns-query", buf, 10),
			 -ENOSPC);
	assert_string_equal(dns_forwarder_protocol("https"), "Https");
	assert_null(dns_forwarder_protocol("HTTPS"));
}

static void test_texts(void **state)
{
	char *env = NULL, pw[DNS_PFX_PASSWORD_LEN + 1], pw2[DNS_PFX_PASSWORD_LEN + 1];

	(void)state;
	assert_int_equal(dns_env_text("dns-01.home.arpa", "secretpfx", &env), 0);
	assert_non_null(strstr(env, "\nDNS_SERVER_DOMAIN=dns-01.home.arpa\n"));
	assert_non_null(strstr(env, "\nDNS_SERVER_ADMIN_PASSWORD_FILE=/etc/devopslab/technitium/admin.pw\n"));
	assert_non_null(strstr(env, "\nDNS_SERVER_WEB_SERVICE_ENABLE_HTTPS=true\n"));
	assert_non_null(strstr(env, "\nDNS_SERVER_WEB_SERVICE_HTTPS_PORT=53443\n"));
	assert_non_null(strstr(env, "\nDNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PATH=/etc/devopslab/technitium/web.pfx\n"));
	assert_non_null(strstr(env, "\nDNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PASSWORD=secretpfx\n"));
	assert_non_null(strstr(env, "\nDNS_SERVER_WEB_SERVICE_HTTP_TO_TLS_REDIRECT=true\n"));
	/* never the admin password itself: only the file naming it */
	assert_null(strstr(env, "DNS_SERVER_ADMIN_PASSWORD="));
	free(env);
	assert_non_null(strstr(dns_unit_text(), "EnvironmentFile=/etc/devopslab/technitium/technitium.env\n"));
	assert_non_null(strstr(dns_unit_text(), "DnsServerApp.dll /var/lib/technitium\n"));
	assert_non_null(strstr(dns_install_script(), "systemctl enable --now technitium.service\n"));
	assert_non_null(strstr(dns_install_script(), "DNSStubListener=no"));
	assert_int_equal(dns_random_password(pw), 0);
	assert_int_equal(dns_random_password(pw2), 0);
	assert_int_equal(strlen(pw), DNS_PFX_PASSWORD_LEN);
	assert_int_equal(strspn(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
			 DNS_PFX_PASSWORD_LEN);
	assert_string_not_equal(pw, pw2);
}

/* A CA (the cluster's) in two temporary files. */
static void test_pfx(void **state)
{
	char cert_path[] = "/tmp/test-dns-ca.XXXXXX", key_path[] = "/tmp/test-dns-key.XXXXXX";
	unsigned char *der;
	char *b64 = NULL, *flat, *o;
	const char *err = NULL;
	PKCS12 *p12;
	EVP_PKEY *key = NULL;
	X509 *leaf = NULL, *ca;
	STACK_OF(X509) *chain = NULL;
	X509_STORE *store;
	X509_STORE_CTX *vctx;
	BIO *bio;
	int n;

	(void)state;
	make_ca(cert_path, key_path);
	n = dns_web_pfx(cert_path, key_path, "dns-01", "10.0.0.41", "dns-01.home.arpa", "pfxpw", &b64, &err);
	if (n < 0)
		fail_msg("dns_web_pfx: %s", err ? err : "?");
	/* lines of 64 as base64(1) writes them */
	assert_true(strchr(b64, '\n') - b64 == 64);
	flat = malloc(strlen(b64) + 1);
	o = flat;
	for (const char *p = b64; *p; p++)
		if (*p != '\n')
			*o++ = *p;
	*o = 0;
	der = malloc(strlen(flat));
	n = EVP_DecodeBlock(der, (unsigned char *)flat, (int)strlen(flat));
	assert_true(n > 0);
	for (size_t k = strlen(flat); k > 0 && flat[k - 1] == '='; k--)
		n--; /* EVP_DecodeBlock counts the padding's bytes */
	{
		const unsigned char *p = der;

		p12 = d2i_PKCS12(NULL, &p, n);
	}
	assert_non_null(p12);
	assert_int_equal(PKCS12_parse(p12, "wrong", &key, &leaf, &chain), 0);
	assert_int_equal(PKCS12_parse(p12, "pfxpw", &key, &leaf, &chain), 1);
	assert_non_null(leaf);
	assert_int_equal(X509_check_private_key(leaf, key), 1);
	assert_int_equal(X509_check_ip_asc(leaf, "10.0.0.41", 0), 1);
	assert_int_equal(X509_check_host(leaf, "dns-01.home.arpa", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(leaf, "10.0.0.42", 0), 0);
	/* verified against the CA */
	bio = BIO_new_file(cert_path, "r");
	ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	store = X509_STORE_new();
	X509_STORE_add_cert(store, ca);
	vctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(vctx, store, leaf, chain);
	assert_int_equal(X509_verify_cert(vctx), 1);
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(key);
	sk_X509_pop_free(chain, X509_free);
	PKCS12_free(p12);
	free(der);
	free(flat);
	free(b64);
	unlink(cert_path);
	unlink(key_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form),  cmocka_unit_test(test_reply), cmocka_unit_test(test_tsig),
		cmocka_unit_test(test_forwarders), cmocka_unit_test(test_texts), cmocka_unit_test(test_pfx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
