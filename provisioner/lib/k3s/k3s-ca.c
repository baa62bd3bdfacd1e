/* SPDX-License-Identifier: MIT */
/*
 * k3s-ca.c — see k3s-ca.h. Everything here is a function of the input key:
 * keys come from HKDF-SHA256, the blinding randomness mbedtls asks for
 * from an HMAC-DRBG seeded by HKDF too (it changes no output), and ECDSA
 * signatures are deterministic (MBEDTLS_ECDSA_DETERMINISTIC, RFC 6979).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/hmac_drbg.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "k3s-ca.h"
#include "util.h"

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define KP(x) MBEDTLS_PRIVATE(x)
#define pk_parse(ctx, buf, len) mbedtls_pk_parse_key(ctx, buf, len, NULL, 0, NULL, NULL)
#define sha256(in, n, out) mbedtls_sha256(in, n, out, 0)
#else
#define KP(x) x
#define pk_parse(ctx, buf, len) mbedtls_pk_parse_key(ctx, buf, len, NULL, 0)
#define sha256(in, n, out) mbedtls_sha256_ret(in, n, out, 0)
#endif

#if !defined(MBEDTLS_ECDSA_DETERMINISTIC)
#error "k3s-ca.c needs deterministic ECDSA (MBEDTLS_ECDSA_DETERMINISTIC)"
#endif

#define SALT "devopslab k3s trust v1"
/* Fixed validity: the bytes must not depend on when they are made. K3s
 * rotates its leaf certificates itself; a new CA is a new cluster CA key
 * (docs/k3s.md). */
#define NOT_BEFORE "20260101000000"
#define NOT_AFTER "21251231235959"
#define PEM_MAX 4096

struct deriver {
	uint8_t prk[32];
	const mbedtls_md_info_t *md;
};

static int expand(const struct deriver *d, const char *what, const char *label, unsigned counter, uint8_t *out,
		  size_t n)
{
	char info[128];
	int k = snprintf(info, sizeof(info), "%s:%s:%u", what, label, counter);

	if (k < 0 || (size_t)k >= sizeof(info))
		return -EINVAL;
	return mbedtls_hkdf_expand(d->md, d->prk, sizeof(d->prk), (const uint8_t *)info, (size_t)k, out, n) ? -EIO : 0;
}

static int drbg_rng(void *ctx, unsigned char *out, size_t n)
{
	return mbedtls_hmac_drbg_random(ctx, out, n);
}

/* A P-256 key for `label`: the first HKDF output that is a valid scalar. */
static int derive_key(const struct deriver *d, const char *label, mbedtls_hmac_drbg_context *drbg,
		      mbedtls_pk_context *pk)
{
	uint8_t seed[32];
	mbedtls_ecp_keypair *kp;
	int r = expand(d, "rng", label, 0, seed, sizeof(seed));

	if (r < 0)
		return r;
	mbedtls_hmac_drbg_init(drbg);
	r = mbedtls_hmac_drbg_seed_buf(drbg, d->md, seed, sizeof(seed)) ? -EIO : 0;
	explicit_wipe(seed, sizeof(seed));
	if (r < 0)
		return r;
	if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)))
		return -ENOMEM;
	kp = mbedtls_pk_ec(*pk);
	for (unsigned c = 0; c < 16; c++) {
		uint8_t d_bytes[32];

		r = expand(d, "key", label, c, d_bytes, sizeof(d_bytes));
		if (r < 0)
			return r;
		r = mbedtls_ecp_read_key(MBEDTLS_ECP_DP_SECP256R1, kp, d_bytes, sizeof(d_bytes));
		explicit_wipe(d_bytes, sizeof(d_bytes));
		if (r == 0)
			return mbedtls_ecp_mul(&kp->KP(grp), &kp->KP(Q), &kp->KP(d), &kp->KP(grp).G, drbg_rng, drbg) ? -EIO
														: 0;
	}
	return -EIO; /* 16 scalars out of range: 2^-512, not a real case */
}

/* A certificate for `pk` named `subject`, issued by issuer_pk/issuer_name. */
static int make_cert(const struct deriver *d, const char *label, mbedtls_pk_context *pk, const char *subject,
		     mbedtls_pk_context *issuer_pk, const char *issuer_name, bool ca, mbedtls_hmac_drbg_context *drbg,
		     char **ret)
{
	/* extKeyUsage clientAuth: SEQUENCE { OID 1.3.6.1.5.5.7.3.2 } */
	static const unsigned char eku_client[] = { 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01,
						    0x05, 0x05, 0x07, 0x03, 0x02 };
	mbedtls_x509write_cert crt;
	mbedtls_mpi serial;
	uint8_t sn[16];
	_cleanup_free_ char *pem = malloc(PEM_MAX);
	int r;

	if (!pem)
		return -ENOMEM;
	r = expand(d, "serial", label, 0, sn, sizeof(sn));
	if (r < 0)
		return r; /* cppcheck-suppress memleak ; _cleanup_ frees pem */
	sn[0] &= 0x7f; /* positive */
	sn[0] |= 0x40; /* and 16 bytes long */
	mbedtls_x509write_crt_init(&crt);
	mbedtls_mpi_init(&serial);
	mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&crt, pk);
	mbedtls_x509write_crt_set_issuer_key(&crt, issuer_pk);
	r = mbedtls_x509write_crt_set_subject_name(&crt, subject) ||
			    mbedtls_x509write_crt_set_issuer_name(&crt, issuer_name) ||
			    mbedtls_mpi_read_binary(&serial, sn, sizeof(sn)) ||
			    mbedtls_x509write_crt_set_serial(&crt, &serial) ||
			    mbedtls_x509write_crt_set_validity(&crt, NOT_BEFORE, NOT_AFTER) ||
			    mbedtls_x509write_crt_set_basic_constraints(&crt, ca, -1) ||
			    mbedtls_x509write_crt_set_key_usage(&crt, ca ? MBEDTLS_X509_KU_KEY_CERT_SIGN |
										   MBEDTLS_X509_KU_CRL_SIGN |
										   MBEDTLS_X509_KU_DIGITAL_SIGNATURE
									 : MBEDTLS_X509_KU_DIGITAL_SIGNATURE) ||
			    mbedtls_x509write_crt_set_subject_key_identifier(&crt) ||
			    mbedtls_x509write_crt_set_authority_key_identifier(&crt) ||
			    (!ca && mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
									MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0,
									eku_client, sizeof(eku_client))) ||
			    mbedtls_x509write_crt_pem(&crt, (unsigned char *)pem, PEM_MAX, drbg_rng, drbg)
		    ? -EIO
		    : 0;
	mbedtls_mpi_free(&serial);
	mbedtls_x509write_crt_free(&crt);
	if (r == 0)
		*ret = TAKE_PTR(pem);
	return r;
}

static int key_pem(mbedtls_pk_context *pk, char **ret)
{
	char *pem = malloc(PEM_MAX);

	if (!pem)
		return -ENOMEM;
	if (mbedtls_pk_write_key_pem(pk, (unsigned char *)pem, PEM_MAX)) {
		explicit_wipe(pem, PEM_MAX);
		free(pem);
		return -EIO;
	}
	*ret = pem;
	return 0;
}

/* The five CAs, in the order of files[]: cert at 2i, key at 2i+1. */
static const struct {
	const char *label, *cn, *cert, *key;
} cas[] = {
	{ "server-ca", "k3s-server-ca", K3S_TLS_DIR "/server-ca.crt", K3S_TLS_DIR "/server-ca.key" },
	{ "client-ca", "k3s-client-ca", K3S_TLS_DIR "/client-ca.crt", K3S_TLS_DIR "/client-ca.key" },
	{ "request-header-ca", "k3s-request-header-ca", K3S_TLS_DIR "/request-header-ca.crt",
	  K3S_TLS_DIR "/request-header-ca.key" },
	{ "etcd-server-ca", "etcd-server-ca", K3S_TLS_DIR "/etcd/server-ca.crt", K3S_TLS_DIR "/etcd/server-ca.key" },
	{ "etcd-peer-ca", "etcd-peer-ca", K3S_TLS_DIR "/etcd/peer-ca.crt", K3S_TLS_DIR "/etcd/peer-ca.key" },
};

static int derive_all(const struct deriver *d, struct k3s_trust *t)
{
	mbedtls_pk_context pk[ELEMENTSOF(cas) + 2];
	mbedtls_hmac_drbg_context drbg[ELEMENTSOF(cas) + 2];
	const size_t sa = ELEMENTSOF(cas), admin = ELEMENTSOF(cas) + 1;
	char name[96];
	int r = 0;

	for (size_t i = 0; i < ELEMENTSOF(pk); i++) {
		mbedtls_pk_init(&pk[i]);
		mbedtls_hmac_drbg_init(&drbg[i]);
	}
	for (size_t i = 0; i < ELEMENTSOF(cas) && r >= 0; i++) {
		snprintf(name, sizeof(name), "O=devopslab,CN=%s", cas[i].cn);
		r = derive_key(d, cas[i].label, &drbg[i], &pk[i]);
		if (r >= 0)
			r = make_cert(d, cas[i].label, &pk[i], name, &pk[i], name, true, &drbg[i], &t->files[2 * i].pem);
		if (r >= 0)
			r = key_pem(&pk[i], &t->files[2 * i + 1].pem);
		t->files[2 * i] = (struct k3s_tls_file){ cas[i].cert, t->files[2 * i].pem, 0644 };
		t->files[2 * i + 1] = (struct k3s_tls_file){ cas[i].key, t->files[2 * i + 1].pem, 0600 };
	}
	if (r >= 0)
		r = derive_key(d, "service-account", &drbg[sa], &pk[sa]);
	if (r >= 0)
		r = key_pem(&pk[sa], &t->files[K3S_TLS_FILES - 1].pem);
	t->files[K3S_TLS_FILES - 1].path = K3S_TLS_DIR "/service.key";
	t->files[K3S_TLS_FILES - 1].mode = 0600;
	if (r >= 0)
		r = derive_key(d, "admin", &drbg[admin], &pk[admin]);
	if (r >= 0)
		r = make_cert(d, "admin", &pk[admin], "O=system:masters,CN=devopslab-admin", &pk[1],
			      "O=devopslab,CN=k3s-client-ca", false, &drbg[admin], &t->admin_cert);
	if (r >= 0)
		r = key_pem(&pk[admin], &t->admin_key);
	for (size_t i = 0; i < ELEMENTSOF(pk); i++) {
		mbedtls_pk_free(&pk[i]);
		mbedtls_hmac_drbg_free(&drbg[i]);
	}
	return r;
}

int k3s_trust_derive(const char *ca_key_pem, size_t len, struct k3s_trust *ret)
{
	_cleanup_free_ unsigned char *buf = NULL, *der = NULL;
	const size_t der_max = 8192;
	mbedtls_pk_context ca;
	struct deriver d = { .md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256) };
	struct k3s_trust t = {};
	uint8_t h[32];
	int n, r;

	if (!ca_key_pem || !d.md)
		return -EINVAL;
	/* mbedtls wants the PEM's terminating NUL counted in its length */
	buf = malloc(len + 1);
	der = malloc(der_max);
	if (!buf || !der)
		return -ENOMEM;
	memcpy(buf, ca_key_pem, len);
	buf[len] = 0;
	mbedtls_pk_init(&ca);
	r = pk_parse(&ca, buf, len + 1) ? -EINVAL : 0;
	explicit_wipe(buf, len);
	n = r < 0 ? 0 : mbedtls_pk_write_key_der(&ca, der, der_max);
	mbedtls_pk_free(&ca);
	if (r < 0)
		return r;
	if (n <= 0)
		return -EIO;
	/* the DER is written at the end of the buffer */
	r = mbedtls_hkdf_extract(d.md, (const uint8_t *)SALT, strlen(SALT), der + der_max - n, (size_t)n, d.prk) ? -EIO
														  : 0;
	explicit_wipe(der, der_max);
	if (r >= 0)
		r = derive_all(&d, &t);
	explicit_wipe(d.prk, sizeof(d.prk));
	if (r >= 0 && sha256((const unsigned char *)t.files[0].pem, strlen(t.files[0].pem), h))
		r = -EIO;
	if (r < 0) {
		k3s_trust_done(&t);
		return r;
	}
	for (size_t i = 0; i < sizeof(h); i++)
		snprintf(t.ca_hash + 2 * i, 3, "%02x", h[i]);
	t.server_ca = t.files[0].pem;
	*ret = t;
	return 0;
}


void k3s_trust_done(struct k3s_trust *t)
{
	for (size_t i = 0; i < K3S_TLS_FILES; i++)
		free_wiped(t->files[i].pem);
	free_wiped(t->admin_cert);
	free_wiped(t->admin_key);
	*t = (struct k3s_trust){};
}
