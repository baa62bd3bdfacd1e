/* SPDX-License-Identifier: MIT */
/*
 * secret.c — secrets.enc: parse the clear-text secrets file, seal it
 * (OpenSSL), open it (mbedtls). See secret.h. Every buffer that held a
 * value or a key is wiped before it is freed.
 */
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "secret.h"
#include "sig-mbedtls.h"
#include "sig-openssl.h"
#include "util.h"

struct secret_item {
	char *name;
	char *value;
	size_t value_len;
};

struct secrets {
	struct secret_item *items; /* sorted by name */
	size_t n, cap;
};

static __thread char secret_errbuf[256];

const char *secret_error(void)
{
	return secret_errbuf[0] ? secret_errbuf : "unknown error";
}

static int __attribute__((format(printf, 2, 3))) failf(int r, const char *fmt, ...)
{
	va_list ap;

	if (!secret_errbuf[0]) {
		va_start(ap, fmt);
		vsnprintf(secret_errbuf, sizeof(secret_errbuf), fmt, ap);
		va_end(ap);
	}
	return r;
}

static void wipe_free(void *p, size_t n)
{
	explicit_wipe(p, n);
	free(p);
}

struct secrets *secrets_free(struct secrets *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		free(s->items[i].name);
		wipe_free(s->items[i].value, s->items[i].value_len);
	}
	free(s->items);
	free(s);
	return NULL;
}

size_t secrets_count(const struct secrets *s)
{
	return s->n;
}

const char *secrets_name(const struct secrets *s, size_t i)
{
	return i < s->n ? s->items[i].name : NULL;
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct secret_item *)a)->name, ((const struct secret_item *)b)->name);
}

const char *secrets_get(const struct secrets *s, const char *name)
{
	struct secret_item key = { .name = (char *)name };
	const struct secret_item *it = bsearch(&key, s->items, s->n, sizeof(key), item_cmp);

	return it ? it->value : NULL;
}

static bool name_valid(const char *p, size_t n)
{
	if (n == 0 || n > SECRET_NAME_MAX)
		return false;
	if (!((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z') || p[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = p[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* Take copies of name and value; the value copy is NUL-terminated. */
static int secrets_add(struct secrets *s, const char *name, size_t name_len, const char *value, size_t value_len)
{
	struct secret_item *it;

	if (s->n >= SECRET_MAX_COUNT)
		return failf(-E2BIG, "more than %u secrets", SECRET_MAX_COUNT);
	if (value_len > SECRET_VALUE_MAX || memchr(value, 0, value_len))
		return failf(-EINVAL, "secret '%.*s': value too long or contains a NUL byte", (int)name_len, name);
	if (s->n == s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 16;
		struct secret_item *v = reallocarray(s->items, ncap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->items = v;
		s->cap = ncap;
	}
	it = &s->items[s->n];
	it->name = strndup(name, name_len);
	it->value = malloc(value_len + 1);
	if (!it->name || !it->value) {
		free(it->name);
		free(it->value);
		return -ENOMEM;
	}
	memcpy(it->value, value, value_len);
	it->value[value_len] = 0;
	it->value_len = value_len;
	s->n++;
	return 0;
}

/* Sort; refuse duplicate names. */
static int secrets_finish(struct secrets *s)
{
	if (s->n)
		qsort(s->items, s->n, sizeof(*s->items), item_cmp);
	for (size_t i = 1; i < s->n; i++)
		if (streq(s->items[i - 1].name, s->items[i].name))
			return failf(-EINVAL, "secret '%s' is given twice", s->items[i].name);
	return 0;
}

int secrets_parse(const char *text, size_t size, struct secrets **ret)
{
	_cleanup_(secrets_freep) struct secrets *s = NULL;
	const char *p = text, *end = text + size;
	unsigned line = 0;
	int r;

	secret_errbuf[0] = 0;
	if (size > SECRET_FILE_MAX)
		return failf(-EFBIG, "secrets file larger than %u bytes", SECRET_FILE_MAX);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eq;
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t nlen;

		line++;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0 || p[0] == '#')
			goto next;
		eq = memchr(p, '=', len);
		if (!eq)
			return failf(-EINVAL, "secrets file line %u: not NAME=VALUE", line);
		nlen = (size_t)(eq - p);
		while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
			nlen--;
		if (!name_valid(p, nlen))
			return failf(-EINVAL, "secrets file line %u: not a valid secret name", line);
		r = secrets_add(s, p, nlen, eq + 1, len - nlen - (size_t)(eq + 1 - (p + nlen)));
		if (r < 0)
			return r;
	next:
		p = nl ? nl + 1 : end;
	}
	r = secrets_finish(s);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

/* Read a file that holds secret material; wipe everything on the way out. */
static int read_secret_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *buf;
	size_t n = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return failf(negative_errno(), "cannot open '%s': %m", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
		return failf(-EINVAL, "'%s': not a regular file of at most %zu bytes", path, max);
	buf = malloc(max + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k = read(fd, buf + n, max + 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 || (n += (size_t)k) > max) {
			wipe_free(buf, max + 1);
			return failf(k < 0 ? negative_errno() : -EFBIG, "cannot read '%s'", path);
		}
		if (k == 0)
			break;
	}
	buf[n] = 0;
	*ret = buf;
	*ret_size = n;
	return 0;
}

int secrets_load(const char *path, struct secrets **ret)
{
	char *buf = NULL;
	size_t size = 0;
	int r;

	secret_errbuf[0] = 0;
	r = read_secret_file(path, SECRET_FILE_MAX, &buf, &size);
	if (r < 0)
		return r;
	r = secrets_parse(buf, size, ret);
	wipe_free(buf, size);
	return r;
}

int secret_key_parse(const void *data, size_t size, uint8_t ret_key[SECRET_KEY_LEN])
{
	const char *p = data;
	uint8_t key[SECRET_KEY_LEN];

	if (size == SECRET_KEY_LEN) {
		memcpy(ret_key, data, SECRET_KEY_LEN);
		return 0;
	}
	if (size == 2 * SECRET_KEY_LEN + 1 && p[size - 1] == '\n')
		size--;
	if (size != 2 * SECRET_KEY_LEN || sig_unhex(p, key) < 0)
		return failf(-EINVAL, "a secret key is 32 bytes, or 64 hex digits");
	memcpy(ret_key, key, SECRET_KEY_LEN);
	explicit_wipe(key, sizeof(key));
	return 0;
}

int secret_key_load(const char *path, uint8_t ret_key[SECRET_KEY_LEN])
{
	char *buf = NULL;
	size_t size = 0;
	int r;

	secret_errbuf[0] = 0;
	r = read_secret_file(path, 2 * SECRET_KEY_LEN + 1, &buf, &size);
	if (r < 0)
		return r;
	r = secret_key_parse(buf, size, ret_key);
	wipe_free(buf, 2 * SECRET_KEY_LEN + 2);
	if (r < 0)
		return failf(r, "secret key '%s': 32 bytes, or 64 hex digits, expected", path);
	return 0;
}

int secret_key_from_cmdline(const char *cmdline, uint8_t ret_key[SECRET_KEY_LEN])
{
	const size_t plen = strlen(SECRET_CMDLINE_KEY);
	const char *p = cmdline;

	secret_errbuf[0] = 0;
	while (*p) {
		size_t len;

		p += strspn(p, " \t\n");
		len = strcspn(p, " \t\n");
		if (len > plen && strncmp(p, SECRET_CMDLINE_KEY, plen) == 0)
			return secret_key_parse(p + plen, len - plen, ret_key);
		p += len;
	}
	return failf(-ENOENT, "no " SECRET_CMDLINE_KEY " on the kernel command line");
}

static void make_aad(const uint8_t manifest_sha256[32], uint8_t aad[SECRET_MAGIC_LEN + 32])
{
	memcpy(aad, SECRET_MAGIC, SECRET_MAGIC_LEN);
	memcpy(aad + SECRET_MAGIC_LEN, manifest_sha256, 32);
}

int secret_seal(const struct secrets *s, const uint8_t key[SECRET_KEY_LEN], const uint8_t manifest_sha256[32],
		uint8_t **ret_blob, size_t *ret_size)
{
	uint8_t aad[SECRET_MAGIC_LEN + 32], *blob, *pt;
	size_t pt_len = 0, off = 0, size;
	int r;

	secret_errbuf[0] = 0;
	for (size_t i = 0; i < s->n; i++)
		pt_len += strlen(s->items[i].name) + 1 + s->items[i].value_len + 1;
	pt = malloc(pt_len ? pt_len : 1);
	size = SECRET_MAGIC_LEN + SIG_AEAD_NONCE_LEN + pt_len + SIG_AEAD_TAG_LEN;
	blob = malloc(size);
	if (!pt || !blob) {
		free(pt);
		free(blob);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n; i++) {
		size_t nl = strlen(s->items[i].name) + 1;

		memcpy(pt + off, s->items[i].name, nl);
		off += nl;
		memcpy(pt + off, s->items[i].value, s->items[i].value_len + 1);
		off += s->items[i].value_len + 1;
	}
	memcpy(blob, SECRET_MAGIC, SECRET_MAGIC_LEN);
	make_aad(manifest_sha256, aad);
	/* A random 96-bit nonce: a new one for every bundle (SP 800-38D §8.2.2). */
	sig_error_clear();
	r = sig_openssl_random(blob + SECRET_MAGIC_LEN, SIG_AEAD_NONCE_LEN);
	if (r >= 0)
		r = sig_openssl_aead_seal(key, blob + SECRET_MAGIC_LEN, aad, sizeof(aad), pt, pt_len,
					  blob + SECRET_MAGIC_LEN + SIG_AEAD_NONCE_LEN,
					  blob + SECRET_MAGIC_LEN + SIG_AEAD_NONCE_LEN + pt_len);
	wipe_free(pt, pt_len);
	if (r < 0) {
		free(blob);
		return failf(r, "%s", sig_error());
	}
	*ret_blob = blob;
	*ret_size = size;
	return 0;
}

static int parse_plaintext(const uint8_t *pt, size_t len, struct secrets *s)
{
	size_t off = 0;
	int r;

	while (off < len) {
		const char *name = (const char *)pt + off, *value, *e1, *e2;

		e1 = memchr(name, 0, len - off);
		if (!e1)
			return failf(-EBADMSG, "secrets.enc: malformed contents");
		value = e1 + 1;
		e2 = memchr(value, 0, len - (size_t)((const uint8_t *)value - pt));
		if (!e2 || !name_valid(name, (size_t)(e1 - name)))
			return failf(-EBADMSG, "secrets.enc: malformed contents");
		r = secrets_add(s, name, (size_t)(e1 - name), value, (size_t)(e2 - value));
		if (r < 0)
			return r;
		off = (size_t)((const uint8_t *)e2 + 1 - pt);
	}
	return secrets_finish(s);
}

int secret_open(const uint8_t *blob, size_t size, const uint8_t key[SECRET_KEY_LEN],
		const uint8_t manifest_sha256[32], struct secrets **ret)
{
	_cleanup_(secrets_freep) struct secrets *s = NULL;
	const size_t overhead = SECRET_MAGIC_LEN + SIG_AEAD_NONCE_LEN + SIG_AEAD_TAG_LEN;
	uint8_t aad[SECRET_MAGIC_LEN + 32], *pt;
	size_t ct_len;
	int r;

	secret_errbuf[0] = 0;
	if (size < overhead || size > SECRET_FILE_MAX + overhead || memcmp(blob, SECRET_MAGIC, SECRET_MAGIC_LEN) != 0)
		return failf(-EBADMSG, "secrets.enc: not an encrypted secrets file (format " SECRET_MAGIC ")");
	ct_len = size - overhead;
	pt = malloc(ct_len ? ct_len : 1);
	if (!pt)
		return -ENOMEM;
	make_aad(manifest_sha256, aad);
	sig_error_clear();
	r = sig_aead_open(key, blob + SECRET_MAGIC_LEN, aad, sizeof(aad), blob + SECRET_MAGIC_LEN + SIG_AEAD_NONCE_LEN,
			  ct_len, blob + size - SIG_AEAD_TAG_LEN, pt);
	if (r < 0) {
		free(pt);
		return failf(r, "secrets.enc: %s", sig_error());
	}
	s = calloc(1, sizeof(*s));
	r = s ? parse_plaintext(pt, ct_len, s) : -ENOMEM;
	wipe_free(pt, ct_len);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}
