/* SPDX-License-Identifier: MIT */
/*
 * fetch.h — download one file by URL (http, https, tftp) with libcurl,
 * resumably: the bytes land in DEST.part, a broken transfer is retried from
 * where it stopped (HTTP Range), and DEST appears, fsync'd and renamed,
 * only when the transfer completed. Nothing here trusts the content: the
 * caller verifies it (a bundle's signature) before use.
 *
 * Limits: max_bytes (the whole file), attempts, a connect timeout and a
 * low-speed abort (under 1 KiB/s for 30 s). Self-contained on purpose
 * (http.c is the API client's transport); nothing here prints: the detail
 * of a failure is in fetch_error().
 */
#pragma once

#include <stdint.h>

struct fetch_opts {
	uint64_t max_bytes;     /* 0 = FETCH_DEFAULT_MAX */
	unsigned attempts;      /* 0 = FETCH_DEFAULT_ATTEMPTS */
	unsigned retry_delay_ms; /* between attempts, doubled each time (capped at 8 s) */
	const char *ca_file;    /* NULL = libcurl's default */
	/* progress: called at most once a second and at the end */
	void (*progress)(void *userdata, uint64_t have, uint64_t total);
	void *userdata;
};

#define FETCH_DEFAULT_MAX (64ull << 30)
#define FETCH_DEFAULT_ATTEMPTS 8

struct fetch_result {
	uint64_t bytes;        /* size of DEST */
	uint64_t resumed_at;   /* first byte of the last attempt (0 = from scratch) */
	unsigned attempts;     /* attempts used */
};

/* 0 on success; -EINVAL bad URL/scheme, -EFBIG over max_bytes, -EIO the
 * transfer failed on every attempt, other -errno from the file system. */
int fetch_url(const char *url, const char *dest, const struct fetch_opts *o, struct fetch_result *ret);
const char *fetch_error(void);
/* True for the URL schemes fetch_url() accepts. */
int fetch_is_url(const char *s);
