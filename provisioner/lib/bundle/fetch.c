/* SPDX-License-Identifier: MIT */
/*
 * fetch.c — resumable download of one file (fetch.h).
 */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

static char errbuf[CURL_ERROR_SIZE + 256];

const char *fetch_error(void)
{
	return errbuf;
}

__attribute__((format(printf, 2, 3))) static int fail(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return r;
}

int fetch_is_url(const char *s)
{
	return s && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0 ||
		     strncmp(s, "tftp://", 7) == 0);
}

struct sink {
	int fd;
	uint64_t have, max;
	int werr; /* -errno of a failed write */
	bool too_big;
	const struct fetch_opts *o;
	time_t last_progress;
	uint64_t total;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t len = size * nmemb, off = 0;

	if (s->have + len > s->max) {
		s->too_big = true;
		return 0;
	}
	while (off < len) {
		ssize_t n = write(s->fd, ptr + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			s->werr = negative_errno();
			return 0;
		}
		off += (size_t)n;
	}
	s->have += len;
	if (s->o->progress && time(NULL) != s->last_progress) {
		s->last_progress = time(NULL);
		s->o->progress(s->o->userdata, s->have, s->total);
	}
	return len;
}

static void curl_easy_cleanupp(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

/* One attempt from s->have on. 0 done, 1 retry, <0 give up. */
static int attempt(const char *url, const struct fetch_opts *o, struct sink *s)
{
	__attribute__((cleanup(curl_easy_cleanupp))) CURL *c = curl_easy_init();
	char cerr[CURL_ERROR_SIZE] = "";
	curl_off_t cl = -1;
	long code = 0;
	CURLcode cc;

	if (!c)
		return fail(-ENOMEM, "out of memory");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,tftp");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "devopslab-fetch");
	if (o->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	if (s->have)
		curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)s->have);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0)
		s->total = s->have + (uint64_t)cl;
	if (s->too_big)
		return fail(-EFBIG, "%s is larger than the limit of %llu bytes", url, (unsigned long long)s->max);
	if (s->werr)
		return fail(s->werr, "writing the download failed: %s", strerror(-s->werr));
	if (cc == CURLE_OK)
		return 0;
	/* The server ignored the Range request: start again from zero. */
	if (cc == CURLE_RANGE_ERROR || code == 416) {
		if (ftruncate(s->fd, 0) < 0 || lseek(s->fd, 0, SEEK_SET) < 0)
			return fail(negative_errno(), "cannot restart the download: %s", strerror(errno));
		s->have = 0;
		fail(-EIO, "%s: the server refused to resume", url);
		return 1;
	}
	if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT)
		return fail(-EINVAL, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(cc));
	if (code == 404 || code == 403 || code == 401)
		return fail(-ENOENT, "%s: HTTP %ld", url, code);
	fail(-EIO, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(cc));
	return 1;
}

int fetch_url(const char *url, const char *dest, const struct fetch_opts *o, struct fetch_result *ret)
{
	static const struct fetch_opts defaults = {};
	_cleanup_close_ int fd = -1;
	char part[4096];
	unsigned delay, tries;
	struct sink s;
	struct stat st;
	int r = -EIO;

	errbuf[0] = '\0';
	if (!o)
		o = &defaults;
	if (!fetch_is_url(url))
		return fail(-EINVAL, "'%s' is not an http, https or tftp URL", url);
	if (snprintf(part, sizeof(part), "%s.part", dest) >= (int)sizeof(part))
		return fail(-ENAMETOOLONG, "destination path too long");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return fail(-EIO, "libcurl initialisation failed");
	/* An earlier boot's partial download is resumed, not thrown away. */
	fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &st) < 0)
		return fail(negative_errno(), "cannot open '%s': %s", part, strerror(errno));
	s = (struct sink){ .fd = fd, .have = (uint64_t)st.st_size, .o = o,
			   .max = o->max_bytes ? o->max_bytes : FETCH_DEFAULT_MAX };
	tries = o->attempts ? o->attempts : FETCH_DEFAULT_ATTEMPTS;
	delay = o->retry_delay_ms ? o->retry_delay_ms : 1000;
	for (unsigned i = 1; i <= tries; i++) {
		uint64_t from = s.have;

		r = attempt(url, o, &s);
		if (r <= 0 || i == tries) {
			if (ret)
				*ret = (struct fetch_result){ .bytes = s.have, .resumed_at = from, .attempts = i };
			break;
		}
		nanosleep(&(struct timespec){ .tv_sec = delay / 1000, .tv_nsec = (long)(delay % 1000) * 1000000L },
			  NULL);
		delay = delay * 2 > 8000 ? 8000 : delay * 2;
	}
	if (r > 0)
		r = -EIO; /* errbuf holds the last attempt's reason */
	if (r < 0)
		return r;
	if (o->progress)
		o->progress(o->userdata, s.have, s.have);
	if (fsync(fd) < 0 || rename(part, dest) < 0)
		return fail(negative_errno(), "cannot store '%s': %s", dest, strerror(errno));
	return 0;
}
