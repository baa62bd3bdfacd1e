/* SPDX-License-Identifier: MIT */
#include "remotelog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define LINE_MAX_KEPT 512 /* a queued line is cut here */

struct pending_line {
	enum log_level level;
	char text[LINE_MAX_KEPT];
};

struct remotelog {
	int fd;
	char hostname[80];
	struct pending_line *pending;
	size_t n_pending;
	size_t dropped;
	bool sending; /* reentrancy guard */
};

static char errbuf[256];

const char *remotelog_error(void)
{
	return errbuf;
}

static int set_error(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_error(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return r;
}

static const int severity[] = {
	[LOG_LEVEL_ERROR] = 3, [LOG_LEVEL_WARNING] = 4, [LOG_LEVEL_INFO] = 6, [LOG_LEVEL_DEBUG] = 7,
};

/* Appends s (NULL or empty: "-") as a header field: printable ASCII only. */
static size_t put_field(char *buf, size_t size, size_t at, const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		s = "-";
	for (; *s && n < max && at + 1 < size; s++, n++)
		buf[at++] = (*s > 32 && *s < 127) ? *s : '?';
	buf[at] = '\0';
	return at;
}

size_t remotelog_format(char *buf, size_t size, int facility, enum log_level level, const struct timespec *ts,
			const char *hostname, long pid, const char *msgid, const char *msg)
{
	struct tm tm;
	size_t at;
	int n;

	if (size == 0)
		return 0;
	if (size > REMOTELOG_MSG_MAX + 1)
		size = REMOTELOG_MSG_MAX + 1;
	if ((unsigned)level >= ELEMENTSOF(severity))
		level = LOG_LEVEL_INFO;
	if (facility < 0 || facility > 23)
		facility = REMOTELOG_FACILITY_LOCAL0;
	if (!gmtime_r(&ts->tv_sec, &tm))
		memset(&tm, 0, sizeof(tm));
	n = snprintf(buf, size, "<%d>1 %04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ", facility * 8 + severity[level],
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (long)(ts->tv_nsec / 1000) % 1000000);
	if (n < 0)
		n = 0;
	at = (size_t)n < size ? (size_t)n : size - 1;
	at = put_field(buf, size, at, hostname, 255);
	if (at + 1 < size)
		buf[at++] = ' ', buf[at] = '\0';
	at = put_field(buf, size, at, "devopslab", 48);
	n = snprintf(buf + at, size - at, " %ld ", pid);
	at += n > 0 ? ((size_t)n < size - at ? (size_t)n : size - at - 1) : 0;
	at = put_field(buf, size, at, msgid, 32);
	if (at + 3 < size) {
		memcpy(buf + at, " - ", 3);
		at += 3;
		buf[at] = '\0';
	}
	for (const char *p = msg ? msg : ""; *p && at + 1 < size; p++) {
		unsigned char ch = (unsigned char)*p;

		buf[at++] = (ch < 32 || ch == 127) ? '?' : (char)ch;
	}
	buf[at] = '\0';
	return at;
}

int remotelog_new(struct remotelog **ret)
{
	struct remotelog *rl = calloc(1, sizeof(*rl));

	if (!rl)
		return -ENOMEM;
	rl->pending = calloc(REMOTELOG_PENDING_MAX, sizeof(*rl->pending));
	if (!rl->pending) {
		free(rl);
		return -ENOMEM;
	}
	rl->fd = -1;
	snprintf(rl->hostname, sizeof(rl->hostname), "-");
	*ret = rl;
	return 0;
}

struct remotelog *remotelog_free(struct remotelog *rl)
{
	if (!rl)
		return NULL;
	if (rl->fd >= 0)
		close(rl->fd);
	free(rl->pending);
	free(rl);
	return NULL;
}

size_t remotelog_dropped(const struct remotelog *rl)
{
	return rl->dropped;
}

int remotelog_open(struct remotelog *rl, const char *host, unsigned port, const char *node)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd;

	if (!host || !*host || port == 0 || port > 65535)
		return set_error(-EINVAL, "no syslog receiver");
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM }, *ai = NULL;
		int r = getaddrinfo(host, NULL, &hints, &ai);

		if (r != 0 || !ai)
			return set_error(-EHOSTUNREACH, "cannot resolve '%s': %s", host, gai_strerror(r));
		sa.sin_addr = ((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
		freeaddrinfo(ai);
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return set_error(-errno, "socket: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return set_error(r, "cannot reach %s:%u: %s", host, port, strerror(-r));
	}
	if (rl->fd >= 0)
		close(rl->fd);
	rl->fd = fd;
	if (node && *node)
		snprintf(rl->hostname, sizeof(rl->hostname), "devopslab-%.60s", node);
	return 0;
}

static void send_line(struct remotelog *rl, enum log_level level, const char *msgid, const char *line)
{
	char buf[REMOTELOG_MSG_MAX + 1];
	struct timespec ts;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = remotelog_format(buf, sizeof(buf), REMOTELOG_FACILITY_LOCAL0, level, &ts, rl->hostname, (long)getpid(),
			     msgid, line);
	/* MSG_DONTWAIT: never wait for the socket; a refused or full send is a drop. */
	if (send(rl->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		rl->dropped++;
}

void remotelog_line(struct remotelog *rl, enum log_level level, const char *line)
{
	if (!rl || rl->sending)
		return;
	rl->sending = true;
	if (rl->fd >= 0)
		send_line(rl, level, "install", line);
	else if (rl->n_pending < REMOTELOG_PENDING_MAX) {
		rl->pending[rl->n_pending].level = level;
		snprintf(rl->pending[rl->n_pending].text, LINE_MAX_KEPT, "%s", line);
		rl->n_pending++;
	} else
		rl->dropped++;
	rl->sending = false;
}

void remotelog_sink(enum log_level level, const char *line, void *userdata)
{
	remotelog_line(userdata, level, line);
}

void remotelog_flush(struct remotelog *rl)
{
	if (!rl || rl->fd < 0)
		return;
	for (size_t i = 0; i < rl->n_pending; i++)
		send_line(rl, rl->pending[i].level, "install", rl->pending[i].text);
	rl->n_pending = 0;
}

int remotelog_replay_file(struct remotelog *rl, const char *path, long long limit)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	off_t start = 0, end;
	size_t have = 0;
	int sent = 0;
	char *p, *line;

	if (rl->fd < 0)
		return set_error(-ENOTCONN, "the remote log is not open");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return set_error(-errno, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return set_error(-errno, "cannot stat '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return set_error(-EINVAL, "'%s' is not a regular file", path);
	end = st.st_size;
	if (limit >= 0 && limit < end)
		end = (off_t)limit;
	if (end > REMOTELOG_REPLAY_MAX)
		start = end - REMOTELOG_REPLAY_MAX;
	buf = malloc((size_t)(end - start) + 1);
	if (!buf)
		return -ENOMEM;
	while (have < (size_t)(end - start)) {
		ssize_t n = pread(fd, buf + have, (size_t)(end - start) - have, start + (off_t)have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return set_error(-errno, "cannot read '%s': %s", path, strerror(errno));
		if (n == 0)
			break;
		have += (size_t)n;
	}
	buf[have] = '\0';
	p = buf;
	if (start > 0) { /* a cut line: skipped, and said so */
		char note[96];
		char *nl = strchr(p, '\n');

		p = nl ? nl + 1 : p + have;
		snprintf(note, sizeof(note), "(the first %lld bytes of the boot log are not replayed)",
			 (long long)(start + (p - buf)));
		send_line(rl, LOG_LEVEL_INFO, "boot", note);
		sent++;
	}
	while ((line = strsep(&p, "\n"))) {
		if (!*line && !p)
			break; /* after the last newline */
		send_line(rl, LOG_LEVEL_INFO, "boot", line);
		sent++;
	}
	return sent;
}
