/* SPDX-License-Identifier: MIT */
/*
 * base64.h — RFC 4648 §4 base64 (standard alphabet, '=' padding). Decoding
 * is strict: any other character, bad padding or length is an error.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Decode `len` bytes of `in` into a new buffer (*ret, NUL-terminated for
 * convenience, freed by the caller). Returns 0 or -EINVAL / -ENOMEM. */
int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_size);
/* Encode n bytes into a new NUL-terminated string (*ret, freed by the
 * caller), no line breaks. Returns 0 or -ENOMEM / -EOVERFLOW. */
int base64_encode(const void *in, size_t n, char **ret);
