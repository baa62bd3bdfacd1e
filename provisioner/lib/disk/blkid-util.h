/* SPDX-License-Identifier: MIT */
/* blkid-util.h — the one place <blkid.h> comes in: cleanup helpers. */
#pragma once

#include <blkid.h>

static inline void blkid_free_probep(blkid_probe *p)
{
	if (*p)
		blkid_free_probe(*p);
}
#define _cleanup_blkid_probe_ __attribute__((cleanup(blkid_free_probep)))
