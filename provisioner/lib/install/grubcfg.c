/* SPDX-License-Identifier: MIT */
/*
 * grubcfg.c — the text of the GRUB configuration. See grubcfg.h.
 *
 * grub.cfg follows what grub-mkconfig 2.12 makes from Debian's
 * /etc/grub.d scripts (00_header, 05_debian_theme, 10_linux, 25_bli,
 * 30_uefi-firmware, 41_custom) for a root on LVM, with the same entry
 * titles and ids (so grub-reboot and grub-set-default keep meaning the same
 * entries after update-grub has replaced the file), minus what only those
 * scripts' probing adds: the LVM UUID hints (the search by file system UUID
 * finds the root without them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grubcfg.h"
#include "util.h"

#define CLASS "proxmox" /* update-grub's --class: GRUB_DISTRIBUTOR's first word, lower case */
#define TITLE GRUBCFG_DISTRIBUTOR " GNU/Linux"

/* ---- consoles ------------------------------------------------------------ */

/* n bytes of v, 1..max, all of them in set (never quoted: no shell or GRUB metacharacters). */
static bool arg_ok(const char *v, size_t n, size_t max, const char *set)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(set, v[i]))
			return false;
	return true;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static bool console_ok(const char *v, size_t n)
{
	return arg_ok(v, n, GRUBCFG_CONSOLE_LEN, ALNUM ",._:/-");
}

/* Up to max decimal digits at *p (advanced); -1 when there are none. */
static long digits(const char **p, const char *end, unsigned max)
{
	long v = 0;
	unsigned n = 0;

	while (*p < end && **p >= '0' && **p <= '9' && n < max)
		v = v * 10 + (*(*p)++ - '0'), n++;
	return n == 0 || (*p < end && **p >= '0' && **p <= '9') ? -1 : v;
}

/* "ttyS<unit>[,<speed>[<parity><bits>...]]" (the kernel's serial console
 * syntax, Documentation/admin-guide/serial-console.rst); *speed 0 = none. */
static bool serial_of(const char *v, size_t n, unsigned *unit, unsigned *speed)
{
	const char *p = v + 4, *end = v + n;
	long u, s = 0;

	if (n < 5 || strncmp(v, "ttyS", 4) != 0)
		return false;
	u = digits(&p, end, 3);
	if (u < 0 || u > 255 || (p < end && *p != ','))
		return false;
	if (p < end) {
		p++;
		s = digits(&p, end, 7);
		if (s <= 0)
			return false;
	}
	*unit = (unsigned)u;
	*speed = (unsigned)s;
	return true;
}

void grubcfg_consoles(const char *cmdline, struct grubcfg_consoles *ret)
{
	struct grubcfg_consoles c = { .n = 0 };
	size_t off = 0;
	bool carry = false;

	for (const char *p = cmdline ? cmdline : ""; *p;) {
		size_t k;

		p += strspn(p, " \t\n");
		k = strcspn(p, " \t\n");
		if (k == 2 && strncmp(p, "--", 2) == 0)
			break; /* the rest is init's, not the kernel's */
		if (k == 3 && strncmp(p, "---", 3) == 0) {
			carry = true;
		} else if (carry) {
			if (arg_ok(p, k, GRUBCFG_CARRY_LEN, ALNUM ",._:/=-") && c.n_carried < GRUBCFG_CARRY_MAX) {
				/* fits: the buffer has room for every console and every carried argument */
				off += (size_t)snprintf(c.args + off, sizeof(c.args) - off, "%s%.*s", off ? " " : "",
							(int)k, p);
				c.n_carried++;
			}
		} else if (k > 8 && strncmp(p, "console=", 8) == 0 && console_ok(p + 8, k - 8) && c.n < GRUBCFG_CONSOLES_MAX) {
			/* fits: GRUBCFG_CONSOLES_MAX values of at most GRUBCFG_CONSOLE_LEN */
			off += (size_t)snprintf(c.args + off, sizeof(c.args) - off, "%sconsole=%.*s", off ? " " : "",
						(int)(k - 8), p + 8);
			c.n++;
			if (serial_of(p + 8, k - 8, &c.unit, &c.speed))
				c.serial = true;
		}
		p += k;
	}
	*ret = c;
}

/* ---- the files ------------------------------------------------------------ */

bool grubcfg_uuid_ok(const char *uuid)
{
	if (!uuid || strlen(uuid) != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? uuid[i] != '-' : !strchr("0123456789abcdef", uuid[i]))
			return false;
	}
	return true;
}

bool grubcfg_kver_ok(const char *kver)
{
	size_t n = kver ? strlen(kver) : 0;

	return n > 0 && n <= GRUBCFG_KVER_MAX &&
	       strspn(kver, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+~-") == n;
}

/* Close a memstream (fclose sets its buffer and length) and hand its text over. */
static int finish(FILE *f, char **buf, size_t *len, char **ret, size_t *ret_len)
{
	int err = ferror(f);

	if (fclose(f) != 0 || err) {
		free(*buf);
		return -ENOMEM;
	}
	*ret = *buf;
	*ret_len = *len;
	return 0;
}

int grubcfg_defaults(const struct grubcfg_consoles *c, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	fputs("# Written by devopslab (docs/install.md, \"Boot loader\").\n"
	      "GRUB_DISTRIBUTOR=\"" GRUBCFG_DISTRIBUTOR "\"\n", f);
	if (c->args[0]) {
		fputs("# The installer's consoles and what followed its \"---\", as debian-installer\n"
		      "# carries them over.\n", f);
		fprintf(f, "GRUB_CMDLINE_LINUX=\"%s\"\n", c->args);
	}
	if (c->serial) {
		fputs("GRUB_TERMINAL=\"console serial\"\n", f);
		if (c->speed)
			fprintf(f, "GRUB_SERIAL_COMMAND=\"serial --unit=%u --speed=%u\"\n", c->unit, c->speed);
		else
			fprintf(f, "GRUB_SERIAL_COMMAND=\"serial --unit=%u\"\n", c->unit);
	}
	return finish(f, &buf, &len, ret, ret_len);
}

/* 00_header (Debian's defaults: no saved default, no hidden menu). */
static void header(FILE *f, const struct grubcfg_consoles *c)
{
	fputs("#\n"
	      "# Written by devopslab at install time (docs/install.md, \"Boot loader\"):\n"
	      "# the entries update-grub makes from /etc/default/grub and\n"
	      "# /etc/default/grub.d/devopslab.cfg. update-grub replaces this file.\n"
	      "#\n\n"
	      "if [ -s $prefix/grubenv ]; then\n"
	      "  set have_grubenv=true\n"
	      "  load_env\n"
	      "fi\n"
	      "if [ \"${next_entry}\" ] ; then\n"
	      "   set default=\"${next_entry}\"\n"
	      "   set next_entry=\n"
	      "   save_env next_entry\n"
	      "   set boot_once=true\n"
	      "else\n"
	      "   set default=\"0\"\n"
	      "fi\n\n"
	      "if [ x\"${feature_menuentry_id}\" = xy ]; then\n"
	      "  menuentry_id_option=\"--id\"\n"
	      "else\n"
	      "  menuentry_id_option=\"\"\n"
	      "fi\n\n"
	      "export menuentry_id_option\n\n"
	      "function load_video {\n"
	      "  if [ x$feature_all_video_module = xy ]; then\n"
	      "    insmod all_video\n"
	      "  else\n"
	      "    insmod efi_gop\n"
	      "    insmod efi_uga\n"
	      "    insmod ieee1275_fb\n"
	      "    insmod vbe\n"
	      "    insmod vga\n"
	      "    insmod video_bochs\n"
	      "    insmod video_cirrus\n"
	      "  fi\n"
	      "}\n\n", f);
	if (c->serial) {
		if (c->speed)
			fprintf(f, "serial --unit=%u --speed=%u\n", c->unit, c->speed);
		else
			fprintf(f, "serial --unit=%u\n", c->unit);
		fputs("terminal_input console serial\n"
		      "terminal_output console serial\n", f);
	}
	fprintf(f,
		"if [ \"${recordfail}\" = 1 ] ; then\n"
		"  set timeout=30\n"
		"else\n"
		"  if [ x$feature_timeout_style = xy ] ; then\n"
		"    set timeout_style=menu\n"
		"    set timeout=%d\n"
		"  else\n"
		"    set timeout=%d\n"
		"  fi\n"
		"fi\n\n"
		"set menu_color_normal=cyan/blue\n"
		"set menu_color_highlight=white/blue\n\n",
		GRUBCFG_TIMEOUT, GRUBCFG_TIMEOUT);
}

/* One 10_linux entry; `in` is the indentation (a tab inside the submenu). */
static void entry(FILE *f, const char *in, const char *title, const char *id, const char *uuid, const char *kver,
		  const char *args)
{
	fprintf(f, "%smenuentry '%s' --class " CLASS " --class gnu-linux --class gnu --class os "
		   "$menuentry_id_option '%s' {\n", in, title, id);
	fprintf(f, "%s\tload_video\n"
		   "%s\tinsmod gzio\n"
		   "%s\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n"
		   "%s\tinsmod part_gpt\n"
		   "%s\tinsmod lvm\n"
		   "%s\tinsmod ext2\n"
		   "%s\tsearch --no-floppy --fs-uuid --set=root %s\n"
		   "%s\techo\t'Loading Linux %s ...'\n"
		   "%s\tlinux\t/boot/vmlinuz-%s root=" GRUBCFG_ROOT_DEVICE " ro %s\n"
		   "%s\techo\t'Loading initial ramdisk ...'\n"
		   "%s\tinitrd\t/boot/initrd.img-%s\n"
		   "%s}\n",
		in, in, in, in, in, in, in, uuid, in, kver, in, kver, args, in, in, kver, in);
}

static int cmp_newest_first(const void *a, const void *b)
{
	return strverscmp(*(const char *const *)b, *(const char *const *)a);
}

static void linux_entries(FILE *f, const struct grubcfg_consoles *c, const char *uuid, const char **k, size_t n)
{
	char title[256], id[256], args[sizeof(c->args) + 64];

	fputs("### BEGIN /etc/grub.d/10_linux ###\n", f);
	snprintf(args, sizeof(args), "%s%s" GRUBCFG_LINUX_DEFAULT, c->args, c->args[0] ? " " : "");
	snprintf(id, sizeof(id), "gnulinux-simple-%s", uuid);
	entry(f, "", TITLE, id, uuid, k[0], args);
	fprintf(f, "submenu 'Advanced options for " TITLE "' $menuentry_id_option 'gnulinux-advanced-%s' {\n", uuid);
	for (size_t i = 0; i < n; i++) {
		snprintf(title, sizeof(title), TITLE ", with Linux %s", k[i]);
		snprintf(id, sizeof(id), "gnulinux-%s-advanced-%s", k[i], uuid);
		snprintf(args, sizeof(args), "%s%s" GRUBCFG_LINUX_DEFAULT, c->args, c->args[0] ? " " : "");
		entry(f, "\t", title, id, uuid, k[i], args);
		/* Debian's recovery entry: single user, no early microcode */
		snprintf(title, sizeof(title), TITLE ", with Linux %s (recovery mode)", k[i]);
		snprintf(id, sizeof(id), "gnulinux-%s-recovery-%s", k[i], uuid);
		snprintf(args, sizeof(args), "single dis_ucode_ldr%s%s", c->args[0] ? " " : "", c->args);
		entry(f, "\t", title, id, uuid, k[i], args);
	}
	fputs("}\n### END /etc/grub.d/10_linux ###\n\n", f);
}

/* 25_bli, 30_uefi-firmware and 41_custom: the same text on every machine. */
static void trailer(FILE *f)
{
	fputs("if [ \"$grub_platform\" = \"efi\" ]; then\n"
	      "  insmod bli\n"
	      "fi\n\n"
	      "if [ \"$grub_platform\" = \"efi\" ]; then\n"
	      "\tfwsetup --is-supported\n"
	      "\tif [ \"$?\" = 0 ]; then\n"
	      "\t\tmenuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {\n"
	      "\t\t\tfwsetup\n"
	      "\t\t}\n"
	      "\tfi\n"
	      "fi\n\n"
	      "if [ -f  ${config_directory}/custom.cfg ]; then\n"
	      "  source ${config_directory}/custom.cfg\n"
	      "elif [ -z \"${config_directory}\" -a -f  $prefix/custom.cfg ]; then\n"
	      "  source $prefix/custom.cfg\n"
	      "fi\n", f);
}

int grubcfg_menu(const struct grubcfg_consoles *c, const char *root_uuid, const char *const *kernels,
		 size_t n_kernels, char **ret, size_t *ret_len)
{
	_cleanup_free_ const char **sorted = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!grubcfg_uuid_ok(root_uuid) || n_kernels == 0)
		return -EINVAL;
	for (size_t i = 0; i < n_kernels; i++)
		if (!grubcfg_kver_ok(kernels[i]))
			return -EINVAL;
	sorted = malloc(n_kernels * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, kernels, n_kernels * sizeof(*sorted));
	qsort(sorted, n_kernels, sizeof(*sorted), cmp_newest_first);

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	header(f, c);
	linux_entries(f, c, root_uuid, sorted, n_kernels);
	trailer(f);
	return finish(f, &buf, &len, ret, ret_len);
}

int grubcfg_stub(const char *root_uuid, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!grubcfg_uuid_ok(root_uuid))
		return -EINVAL;
	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "search.fs_uuid %s root\n"
		   "set prefix=($root)'/boot/grub'\n"
		   "configfile $prefix/grub.cfg\n",
		root_uuid);
	return finish(f, &buf, &len, ret, ret_len);
}
