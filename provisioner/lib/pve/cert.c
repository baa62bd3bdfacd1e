/* SPDX-License-Identifier: MIT */
/*
 * cert.c — node API certificates signed by the cluster CA; see cert.h.
 * X.509 v3 per RFC 5280: serverAuth, the node's names and addresses in
 * subjectAltName (RFC 6125: names are matched there, not in the CN).
 */
#define _GNU_SOURCE 1
#include "cert.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

static char errbuf[512];

static int fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int r, const char *fmt, ...)
{
	unsigned long e = ERR_get_error();
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	n = strlen(errbuf);
	if (e && n + 3 < sizeof(errbuf)) {
		snprintf(errbuf + n, sizeof(errbuf) - n, ": ");
		ERR_error_string_n(e, errbuf + n + 2, sizeof(errbuf) - n - 2);
	}
	ERR_clear_error();
	return r;
}

const char *cert_error(void)
{
	return errbuf[0] ? errbuf : "no error";
}

static void x509_freep(X509 **p) { X509_free(*p); }
static void pkey_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static void bio_freep(BIO **p) { BIO_free(*p); }

static int read_pem(const char *path, bool key, void **ret)
{
	_cleanup_(bio_freep) BIO *b = BIO_new_file(path, "r");
	void *o;

	struct stat st;

	if (!b || stat(path, &st) < 0)
		return fail(-ENOENT, "cannot open '%s'", path);
	if (st.st_size > (off_t)CERT_FILE_MAX)
		return fail(-EFBIG, "'%s' is too large", path);
	o = key ? (void *)PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : (void *)PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (!o)
		return fail(-EBADMSG, "'%s' holds no PEM %s", path, key ? "private key" : "certificate");
	*ret = o;
	return 0;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return fail(-EINVAL, "bad certificate extension '%s'", value);
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : fail(-ENOMEM, "cannot add extension");
}

/* A host name, or a wildcard "*.NAME" (the edge's certificate). */
static bool plain_name(const char *s)
{
	if (!isempty(s) && s[0] == '*' && s[1] == '.')
		s += 2;
	if (isempty(s) || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '.'))
			return false;
	return true;
}

static int san_string(const struct cert_request *req, char **ret)
{
	char buf[4096];
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < req->n_dns + req->n_ips; i++) {
		const char *v = i < req->n_dns ? req->dns[i] : req->ips[i - req->n_dns];
		unsigned char addr[16];
		int n;

		if (i < req->n_dns ? !plain_name(v)
				   : inet_pton(strchr(v, ':') ? AF_INET6 : AF_INET, v, addr) != 1)
			return fail(-EINVAL, "'%s' is not a valid %s for a certificate", v,
				    i < req->n_dns ? "DNS name" : "IP address");
		n = snprintf(buf + o, sizeof(buf) - o, "%s%s:%s", o ? "," : "", i < req->n_dns ? "DNS" : "IP", v);
		if (n < 0 || (size_t)n >= sizeof(buf) - o)
			return fail(-E2BIG, "too many names");
		o += (size_t)n;
	}
	if (!o)
		return fail(-EINVAL, "a certificate needs at least one name");
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

static int pem_of(bool key, void *o, char **ret)
{
	_cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int ok;

	if (!b)
		return -ENOMEM;
	ok = key ? PEM_write_bio_PrivateKey(b, o, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_X509(b, o);
	if (!ok)
		return fail(-ENOMEM, "cannot write PEM");
	n = BIO_get_mem_data(b, &data);
	/* Not strndup(): the BIO's buffer is not NUL-terminated. */
	*ret = malloc((size_t)n + 1);
	if (*ret) {
		memcpy(*ret, data, (size_t)n);
		(*ret)[n] = '\0';
	}
	if (key)
		explicit_wipe(data, (size_t)n);
	return *ret ? 0 : -ENOMEM;
}

int cert_issue(const char *ca_cert_file, const char *ca_key_file, const struct cert_request *req, char **ret_chain,
	       char **ret_key)
{
	_cleanup_(x509_freep) X509 *ca = NULL, *cert = NULL;
	_cleanup_(pkey_freep) EVP_PKEY *ca_key = NULL, *key = NULL;
	_cleanup_free_ char *san = NULL, *leaf_pem = NULL, *ca_pem = NULL, *key_pem = NULL;
	unsigned char serial[16];
	BIGNUM *bn;
	X509_NAME *name;
	char *chain;
	int r;

	errbuf[0] = 0;
	if (req->n_dns > CERT_MAX_NAMES || req->n_ips > CERT_MAX_NAMES || !plain_name(req->common_name))
		return fail(-EINVAL, "bad certificate request");
	r = read_pem(ca_cert_file, false, (void **)&ca);
	if (r >= 0)
		r = read_pem(ca_key_file, true, (void **)&ca_key);
	if (r < 0)
		return r;
	if (X509_check_private_key(ca, ca_key) != 1)
		return fail(-EINVAL, "the CA key '%s' does not belong to the CA certificate '%s'", ca_key_file,
			    ca_cert_file);
	r = san_string(req, &san);
	if (r < 0)
		return r;

	key = EVP_EC_gen("P-256");
	cert = X509_new();
	if (!key || !cert || RAND_bytes(serial, sizeof(serial)) != 1)
		return fail(-ENOMEM, "cannot generate a key");
	serial[0] &= 0x7f; /* a positive serial (RFC 5280 4.1.2.2) */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert))) {
		BN_free(bn);
		return fail(-ENOMEM, "cannot set the serial");
	}
	BN_free(bn);
	name = X509_get_subject_name(cert);
	if (X509_set_version(cert, 2) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)(req->days ? req->days : 825) * 86400) ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"DevOpsLab", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)req->common_name, -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1 || X509_set_pubkey(cert, key) != 1)
		return fail(-ENOMEM, "cannot fill the certificate");
	r = add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE");
	if (r >= 0)
		r = add_ext(cert, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment");
	if (r >= 0)
		r = add_ext(cert, ca, NID_ext_key_usage, "serverAuth");
	if (r >= 0)
		r = add_ext(cert, ca, NID_subject_key_identifier, "hash");
	if (r >= 0)
		r = add_ext(cert, ca, NID_authority_key_identifier, "keyid:always");
	if (r >= 0)
		r = add_ext(cert, ca, NID_subject_alt_name, san);
	if (r < 0)
		return r;
	if (X509_sign(cert, ca_key, EVP_sha256()) <= 0)
		return fail(-EINVAL, "cannot sign with the CA key");

	r = pem_of(false, cert, &leaf_pem);
	if (r >= 0)
		r = pem_of(false, ca, &ca_pem);
	if (r >= 0)
		r = pem_of(true, key, &key_pem);
	if (r < 0)
		return r;
	if (asprintf(&chain, "%s%s", leaf_pem, ca_pem) < 0)
		return -ENOMEM;
	*ret_chain = chain;
	*ret_key = TAKE_PTR(key_pem);
	return 0;
}

static void sans_freep(GENERAL_NAMES **p) { GENERAL_NAMES_free(*p); }

static bool has_dns_name(X509 *leaf, const char *name)
{
	_cleanup_(sans_freep) GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);

	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *d;
		int n;

		if (g->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(g->d.dNSName);
		n = ASN1_STRING_length(g->d.dNSName);
		if (n >= 0 && (size_t)n == strlen(name) && strncasecmp((const char *)d, name, (size_t)n) == 0)
			return true;
	}
	return false;
}

static void store_freep(X509_STORE **p) { X509_STORE_free(*p); }
static void store_ctx_freep(X509_STORE_CTX **p) { X509_STORE_CTX_free(*p); }
static void stack_freep(STACK_OF(X509) **p) { sk_X509_pop_free(*p, X509_free); }

/* leaf verified up to a certificate of trust_file, through the others in
 * rest (intermediates), as a TLS server's. */
static int verify_chain(const char *trust_file, X509 *leaf, STACK_OF(X509) *rest)
{
	_cleanup_(store_freep) X509_STORE *store = X509_STORE_new();
	_cleanup_(store_ctx_freep) X509_STORE_CTX *vc = X509_STORE_CTX_new();

	if (!store || !vc)
		return fail(-ENOMEM, "out of memory");
	if (X509_STORE_load_file(store, trust_file) != 1)
		return fail(-ENOENT, "cannot read the trusted certificates of '%s'", trust_file);
	if (X509_STORE_CTX_init(vc, store, leaf, rest) != 1 || X509_STORE_CTX_set_purpose(vc, X509_PURPOSE_SSL_SERVER) != 1)
		return fail(-ENOMEM, "out of memory");
	if (X509_verify_cert(vc) != 1)
		return fail(-EKEYREJECTED, "the certificate is not the trusted CA's (%s)",
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
	return 0;
}

int cert_check(const char *trust_file, const char *chain_pem, const char *key_pem, const char *const *dns,
	       size_t n_dns, unsigned min_days)
{
	_cleanup_(x509_freep) X509 *leaf = NULL;
	_cleanup_(stack_freep) STACK_OF(X509) *rest = sk_X509_new_null();
	_cleanup_(pkey_freep) EVP_PKEY *key = NULL;
	_cleanup_(bio_freep) BIO *b = NULL, *kb = NULL;
	time_t when = time(NULL) + (time_t)min_days * 86400;
	X509 *c;

	errbuf[0] = '\0';
	b = BIO_new_mem_buf(chain_pem, -1);
	leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	if (!leaf || !rest)
		return fail(-EBADMSG, "no PEM certificate");
	while ((c = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		if (!sk_X509_push(rest, c)) {
			X509_free(c);
			return fail(-ENOMEM, "out of memory");
		}
	ERR_clear_error(); /* the end of the PEM text */
	kb = BIO_new_mem_buf(key_pem, -1);
	key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	if (!key)
		return fail(-EBADMSG, "no PEM private key");
	if (X509_check_private_key(leaf, key) != 1)
		return fail(-EKEYREJECTED, "the key is not the certificate's");
	for (size_t i = 0; i < n_dns; i++)
		if (!has_dns_name(leaf, dns[i]))
			return fail(-ENOENT, "the certificate does not name %s", dns[i]);
	if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
		return fail(-ETIME, "the certificate is not valid yet");
	if (X509_cmp_time(X509_get0_notAfter(leaf), &when) <= 0)
		return fail(-ETIME, "the certificate expires in less than %u days", min_days);
	return verify_chain(trust_file, leaf, rest);
}
