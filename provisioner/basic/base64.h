/* SPDX-License-Identifier: MIT */
/*
 * base64.h — RFC 4648 §4 base64 decoding (standard alphabet, '=' padding),
 * strict: any other character, bad padding or length is an error.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Decode `len` bytes of `in` into a new buffer (*ret, NUL-terminated for
 * convenience, freed by the caller). Returns 0 or -EINVAL / -ENOMEM. */
int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_size);
