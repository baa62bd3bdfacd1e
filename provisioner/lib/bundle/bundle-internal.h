/* SPDX-License-Identifier: MIT */
/*
 * bundle-internal.h — shared by bundle.c (reading) and bundle-create.c
 * (writing); not for other modules.
 */
#pragma once

#include <stdbool.h>

#include "util.h"

void bundle_error_clear(void);
/* Record the first error of a call (printf-style); returns r. */
int bundle_failf(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Characters allowed in an asset path component: safe in sha256sum(1)
 * lines, shells and logs. */
static inline bool bundle_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '-' || c == '+' || c == '@';
}

bool bundle_path_valid(const char *path);
