/* SPDX-License-Identifier: MIT */
/*
 * sig.c — what both crypto backends share: the error buffer, hex, and
 * reading a small key file. No crypto library headers here.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "sig.h"
#include "fileio.h"
#include "parse.h"
#include "util.h"

static __thread char sig_errbuf[512];

const char *sig_error(void)
{
	return sig_errbuf[0] ? sig_errbuf : "unknown error";
}

void sig_error_clear(void)
{
	sig_errbuf[0] = 0;
}

void sig_failf(const char *fmt, ...)
{
	va_list ap;

	if (sig_errbuf[0])
		return; /* the first error is the one that explains */
	va_start(ap, fmt);
	vsnprintf(sig_errbuf, sizeof(sig_errbuf), fmt, ap);
	va_end(ap);
}

void sig_hex(const uint8_t digest[SIG_SHA256_LEN], char out[2 * SIG_SHA256_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < SIG_SHA256_LEN; i++) {
		out[2 * i] = digits[digest[i] >> 4];
		out[2 * i + 1] = digits[digest[i] & 15];
	}
	out[2 * SIG_SHA256_LEN] = 0;
}


int sig_unhex(const char *hex, uint8_t ret_digest[SIG_SHA256_LEN])
{
	uint8_t d[SIG_SHA256_LEN];

	for (size_t i = 0; i < SIG_SHA256_LEN; i++) {
		int hi = unhexchar(hex[2 * i]), lo;

		if (hi < 0)
			return -EINVAL;
		lo = unhexchar(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		d[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(ret_digest, d, sizeof(d));
	return 0;
}

int sig_read_small_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t n;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	r = read_fd_capped(fd, max, &buf, &n);
	if (r < 0)
		return r;
	if (n > max)
		return -EFBIG; /* grew while we read it */
	*ret_size = n;
	*ret = TAKE_PTR(buf);
	return 0;
}
