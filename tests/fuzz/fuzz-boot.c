/* SPDX-License-Identifier: MIT */
/*
 * fuzz-boot.c — the boot loader's parsers.
 *
 * The first input byte picks the target; the rest is its input:
 *   0  initrd_overlay_len(): the start of an initramfs file from the target
 *      (whatever the root file system holds): a length it returns is
 *      within the input, block-aligned, and only for an archive of ours;
 *   1  efi_boot_entries(): efibootmgr's listing: at most `max` entries;
 *   2  the installer's kernel command line into devopslab.cfg and grub.cfg:
 *      nothing from it reaches them but console= values of the allowed
 *      characters (no quote, '$', backslash, space or control byte).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "install/efi.h"
#include "install/grubcfg.h"
#include "install/initrd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void overlay_len(const char *buf, size_t len)
{
	size_t olen = 1;
	int r = initrd_overlay_len(buf, len, &olen);

	if (r < 0) {
		if (r != -EBADMSG)
			abort();
		return;
	}
	if (olen == 0)
		return;
	if (olen > len || olen > INITRD_OVERLAY_MAX || olen % 512 || memcmp(buf, "070701", 6) != 0)
		abort();
}

static void boot_entries(const char *buf, size_t len)
{
	char *s = strndup(buf, len);
	unsigned nums[4];
	size_t n = 99;
	int r;

	if (!s)
		return;
	r = efi_boot_entries(s, "proxmox", nums, 4, &n);
	if (r == 0 ? n > 4 : r != -E2BIG)
		abort();
	for (size_t i = 0; r == 0 && i < n; i++)
		if (nums[i] > 0xffff)
			abort();
	free(s);
}

/* Only [A-Za-z0-9,._:/-] inside the quotes of GRUB_CMDLINE_LINUX. */
static void check_args(const struct grubcfg_consoles *c)
{
	for (const char *p = c->args; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,._:/-= ", *p))
			abort();
	if (c->n > GRUBCFG_CONSOLES_MAX)
		abort();
}

static void cmdline(const char *buf, size_t len)
{
	static const char *const kernels[] = { "6.12.57+deb13-amd64" };
	struct grubcfg_consoles c;
	char *s = strndup(buf, len), *out = NULL;
	size_t olen = 0;

	if (!s)
		return;
	grubcfg_consoles(s, &c);
	check_args(&c);
	if (grubcfg_defaults(&c, &out, &olen) == 0) {
		if (strlen(out) != olen)
			abort();
		free(out);
	}
	if (grubcfg_menu(&c, "b8d1a8de-13cb-4690-ac54-f55a413be8e8", kernels, 1, &out, &olen) == 0) {
		if (strlen(out) != olen)
			abort();
		free(out);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 1;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		overlay_len(buf, size - 1);
		break;
	case 1:
		boot_entries(buf, size - 1);
		break;
	default:
		cmdline(buf, size - 1);
		break;
	}
	return 0;
}
