/* SPDX-License-Identifier: MIT */
/*
 * remotelog.h — the install log to a remote syslog receiver (manifest
 * network.syslog): RFC 5424 messages over UDP, facility local0, APP-NAME
 * "devopslab", HOSTNAME "devopslab-<node>".
 *
 * Never blocks the install: the socket is nonblocking, a datagram that
 * cannot be sent right now is dropped (counted), nothing is retried. Every
 * message is bounded (REMOTELOG_MSG_MAX bytes). It forwards only lines the
 * logger prints, which never hold a secret.
 *
 * Lines logged before the receiver is known (before the manifest is read)
 * are kept in a bounded in-memory queue and sent once it is opened, after the
 * replayed boot log.
 */
#pragma once

#include <stddef.h>
#include <time.h>

#include "log.h"

#define REMOTELOG_MSG_MAX 1024      /* one datagram, header included */
#define REMOTELOG_PENDING_MAX 128   /* lines queued before the receiver is known */
#define REMOTELOG_REPLAY_MAX 65536  /* bytes of the boot log replayed (the last ones) */
#define REMOTELOG_FACILITY_LOCAL0 16

struct remotelog;

int remotelog_new(struct remotelog **ret);
struct remotelog *remotelog_free(struct remotelog *rl);

/* Opens the UDP socket to HOST (IPv4 address or DNS name) and PORT; the
 * messages carry HOSTNAME "devopslab-NODE" (NODE NULL: "-"). Sends nothing. */
int remotelog_open(struct remotelog *rl, const char *host, unsigned port, const char *node);

/* Sends up to the last REMOTELOG_REPLAY_MAX bytes of the first LIMIT bytes
 * of the file PATH (the boot log; LIMIT -1: all), a line per message with
 * MSGID "boot", at info severity. Returns the number of lines sent or queued
 * to the socket, or -errno. */
int remotelog_replay_file(struct remotelog *rl, const char *path, long long limit);

/* Sends the queued lines (MSGID "install"); later lines go out at once. */
void remotelog_flush(struct remotelog *rl);

/* A log line: sent if open, else queued (bounded; the excess is counted). */
void remotelog_line(struct remotelog *rl, enum log_level level, const char *line);

/* The log_set_sink() callback; userdata is a struct remotelog. */
void remotelog_sink(enum log_level level, const char *line, void *userdata);

size_t remotelog_dropped(const struct remotelog *rl);

/* Formats one RFC 5424 message into buf (always NUL-terminated, truncated to
 * size-1 and to REMOTELOG_MSG_MAX): PRI = facility * 8 + the severity of
 * LEVEL; TIMESTAMP from ts in UTC with microseconds; HOSTNAME, MSGID "-" if
 * NULL or empty; PROCID pid; no STRUCTURED-DATA; MSG with control characters
 * replaced by '?'. Returns the length. */
size_t remotelog_format(char *buf, size_t size, int facility, enum log_level level, const struct timespec *ts,
			const char *hostname, long pid, const char *msgid, const char *msg);

const char *remotelog_error(void);
