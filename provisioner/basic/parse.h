/* SPDX-License-Identifier: MIT */
/*
 * parse.h — libc-only parsers for the small value syntaxes of the manifest:
 * sizes, unsigned integers, IPv4 addresses and CIDR prefixes, MAC
 * addresses, UUIDs, host names and DNS names.
 *
 * Every function takes a NUL-terminated string, accepts the whole string
 * or nothing, returns 0 on success and -EINVAL (or -ERANGE on overflow)
 * otherwise, and writes its ret_* output only on success.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* "20G", "512M", "1T", "1048576", "20GiB", "20GB".
 * K/M/G/T/P and KiB/MiB/... are powers of 1024 (as Proxmox and
 * Terraform's "20G" mean); KB/MB/GB/TB/PB are powers of 1000. A trailing
 * "B" alone means bytes. Decimal fractions are refused. */
/* The value of one hex digit (either case), or -1. */
int unhexchar(char c);

int parse_size(const char *s, uint64_t *ret);

/* Decimal digits only (no sign, no spaces, no leading '+'). */
int parse_uint64(const char *s, uint64_t *ret);

/* Dotted quad, exactly four decimal parts 0..255, no leading zeros
 * (a leading zero is octal to inet_aton(3): refusing it avoids surprises).
 * Result in host byte order. */
int parse_ipv4(const char *s, uint32_t *ret);

/* "10.0.10.0/24". With host_bits_zero, bits outside the prefix must be 0. */
int parse_cidr(const char *s, bool host_bits_zero, uint32_t *ret_addr, unsigned *ret_prefix);

/* "52:54:00:0a:00:01" or with '-' separators; hex case-insensitive. */
int parse_mac(const char *s, uint8_t ret[6]);

/* 8-4-4-4-12 hex digits; the output is lower case (37 bytes). */
int parse_uuid(const char *s, char ret[37]);

/* RFC 1123 host name label: 1..63 of [a-zA-Z0-9-], not starting or ending
 * with '-'. */
bool hostname_label_valid(const char *s);

/* DNS name: labels as above joined by '.', total <= 253, no trailing dot. */
bool dns_name_valid(const char *s);

/* IPv4 helpers (host byte order). */
uint32_t ipv4_netmask(unsigned prefix);
bool ipv4_in_cidr(uint32_t ip, uint32_t net, unsigned prefix);
/* Writes "a.b.c.d" into buf (>= 16 bytes). Returns buf. */
char *ipv4_format(uint32_t ip, char *buf, size_t size);
/* Writes a MAC address as "aa:bb:cc:dd:ee:ff" (lower case). Returns buf. */
char *mac_format(const uint8_t mac[6], char buf[static 18]);
