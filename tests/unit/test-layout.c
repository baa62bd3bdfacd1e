/* SPDX-License-Identifier: MIT */
/*
 * test-layout.c — layout_compute() against the Proxmox installer's rules.
 *
 * The expected values are computed here a second, independent way: the
 * rules of Proxmox/Install.pm (compute_swapsize, create_lvm_volumes) and
 * Proxmox/Sys/Block.pm (partition_bootable_disk) transcribed as the Perl
 * does them — floating point, int() and "& ~0xFFF" — rather than the
 * integer-KiB derivation of layout.c. A table of disk sizes x RAM sizes x
 * sector sizes x overrides is run through both; plus hand-computed rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "disk/layout.h"

#define GiB (1024.0 * 1024 * 1024)
#define MiB (1024.0 * 1024)

struct perl_expect {
	double esp_mb, os_size, swap, root, data, meta;
	bool thin, too_small;
};

static double pand(double x) /* Perl's "int(x) & ~0xFFF" on a non-negative */
{
	return (double)((uint64_t)x & ~(uint64_t)0xFFF);
}

/* Perl semantics: hdsize/swapsize/maxroot/minfree/maxvz are "GB" numbers
 * (may be fractional); negative or undef = not set. */
static struct perl_expect perl(double disk_bytes, double ram_mb, double hdsize_gb, double swapsize_gb,
			       double maxroot_gb, double minfree_gb, double maxvz_gb)
{
	struct perl_expect e = { 0 };
	double hdsize = floor(disk_bytes / 512 / 2); /* hd_size(): KB */
	double esp_size = hdsize > 100 * 1024 * 1024 ? 1024 : 512;
	double esp_end = esp_size + 1;

	if (hdsize_gb >= 0 && hdsize_gb * 1024 * 1024 < hdsize)
		hdsize = hdsize_gb * 1024 * 1024;
	double hdgb = floor(hdsize / (1024 * 1024));
	if (hdgb < 8) {
		e.too_small = true;
		return e;
	}
	e.esp_mb = esp_size;
	e.os_size = hdsize - esp_end * 1024;

	/* compute_swapsize($os_size) */
	double shdgb = floor(e.os_size / (1024 * 1024));
	if (swapsize_gb >= 0) {
		e.swap = pand(swapsize_gb * 1024 * 1024); /* we align the override too */
	} else {
		double ss = floor(ram_mb);
		if (ss < 4096 && shdgb >= 64)
			ss = 4096;
		if (ss < 2048 && shdgb >= 32)
			ss = 2048;
		if (ss >= 2048 && shdgb <= 16)
			ss = 1024;
		if (ss < 512)
			ss = 512;
		if (ss > shdgb * 128)
			ss = floor(shdgb * 128);
		if (ss > 8192)
			ss = 8192;
		e.swap = pand(ss * 1024);
	}

	/* create_lvm_volumes($osdev, $os_size, $swap_size) */
	double lhdgb = floor(e.os_size / (1024 * 1024));
	double space = lhdgb <= 32 ? 4 * 1024 : ((lhdgb > 128 ? 16 : lhdgb / 8) * 1024 * 1024);
	double maxroot_mb = maxroot_gb > 0 ? maxroot_gb * 1024 : 96 * 1024;
	double rest = e.os_size - e.swap;
	double rest_mb = floor(rest / 1024);
	double rootsize_mb;
	if (rest_mb < 12 * 1024)
		rootsize_mb = (double)(((uint64_t)(rest_mb - 4)) & ~(uint64_t)3);
	else if (rest_mb < 48 * 1024)
		rootsize_mb = (double)((uint64_t)floor(rest_mb / 2) & ~(uint64_t)3);
	else
		rootsize_mb = rest_mb / 4 + 12 * 1024;
	if (rootsize_mb > maxroot_mb)
		rootsize_mb = maxroot_mb;
	e.root = pand(floor(rootsize_mb * 1024));
	rest -= e.root;
	double minfree = space;
	if (minfree_gb >= 0)
		minfree = minfree_gb * 1024 * 1024 >= rest ? space : minfree_gb * 1024 * 1024;
	rest = pand(floor(rest - minfree));
	if (maxvz_gb >= 0)
		rest = pand(maxvz_gb * 1024 * 1024) <= rest ? pand(maxvz_gb * 1024 * 1024) : rest;
	if (rest > 4 * 1024 * 1024) {
		double m = floor(rest / 100);
		if (m < 1024 * 1024)
			m = 1024 * 1024;
		if (m > 16 * 1024 * 1024)
			m = 16 * 1024 * 1024;
		e.meta = pand(m);
		e.data = rest - 2 * e.meta - 4 * 1024;
		e.thin = true;
	}
	return e;
}

static struct mf_size_opt opt(double gb)
{
	return gb >= 0 ? (struct mf_size_opt){ (uint64_t)(gb * GiB), true } : (struct mf_size_opt){ 0, false };
}

static void check_one(double disk, uint32_t ss, double ram_mb, double hd, double sw, double mr, double mf, double mv)
{
	struct layout_input in = { .disk_bytes = (uint64_t)disk, .sector_size = ss,
				   .ram_bytes = (uint64_t)(ram_mb * MiB) };
	struct layout l;
	char err[256] = "";
	struct perl_expect e = perl(disk, ram_mb, hd, sw, mr, mf, mv);
	int r;

	in.storage.hdsize = opt(hd);
	in.storage.swapsize = opt(sw);
	in.storage.maxroot = opt(mr);
	in.storage.minfree = opt(mf);
	in.storage.maxvz = opt(mv);
	r = layout_compute(&in, &l, err, sizeof(err));
	if (e.too_small) {
		if (r != -ENOSPC)
			fail_msg("disk %.0f: expected too small, got %d", disk, r);
		return;
	}
	if (r < 0)
		fail_msg("disk %.0f ss %u ram %.0f: %d %s", disk, ss, ram_mb, r, err);
#define EQ(field, want)                                                                                \
	do {                                                                                           \
		if ((double)(field) != (want))                                                         \
			fail_msg("disk %.0f B ss %u ram %.0f MiB hd %g sw %g mr %g mf %g mv %g: %s = %.0f, " \
				 "installer rule says %.0f",                                           \
				 disk, ss, ram_mb, hd, sw, mr, mf, mv, #field, (double)(field), (want));   \
	} while (0)
	EQ(l.esp_mib, e.esp_mb);
	EQ(l.os_kib, e.os_size);
	EQ(l.swap_kib, e.swap);
	EQ(l.root_kib, e.root);
	EQ(l.thin, e.thin ? 1.0 : 0.0);
	EQ(l.data_kib, e.data);
	EQ(l.meta_kib, e.meta);
	/* partitions: BIOS boot only with 512-byte sectors, at 34..2047 */
	EQ(l.n_parts, ss == 512 ? 3.0 : 2.0);
	if (ss == 512) {
		EQ(l.parts[0].start, 34.0);
		EQ(l.parts[0].end, 2047.0);
	}
	const struct layout_part *esp = &l.parts[l.n_parts - 2], *lvm = &l.parts[l.n_parts - 1];
	EQ(esp->start * ss, MiB);
	EQ((esp->end + 1) * ss, (1 + e.esp_mb) * MiB);
	EQ(lvm->start * ss, (1 + e.esp_mb) * MiB);
	if (hd >= 0 && hd * GiB < disk)
		EQ((lvm->end + 1) * ss, floor(hd * 1024 * 1024 / 1024) * MiB);
	else
		EQ((lvm->end + 1) * ss, floor((disk - (ss == 512 ? 33.0 * 512 : 5.0 * 4096)) / MiB) * MiB);
}

static void test_table(void **state)
{
	static const double disks_gib[] = { 8, 12, 16, 20, 31.5, 32, 33, 40, 48, 63, 64, 65, 99, 100, 101,
					    127, 128, 129, 200, 256, 500, 512, 1000, 2048, 4096, 16384 };
	static const double ram_mib[] = { 256, 511, 512, 1000, 1024, 2047, 2048, 3000, 4096, 7982,
					  8192, 16000, 32768, 262144 };
	unsigned n = 0;

	(void)state;
	for (size_t d = 0; d < sizeof(disks_gib) / sizeof(disks_gib[0]); d++)
		for (size_t m = 0; m < sizeof(ram_mib) / sizeof(ram_mib[0]); m++)
			for (uint32_t ss = 512; ss <= 4096; ss *= 8) {
				check_one(disks_gib[d] * GiB, ss, ram_mib[m], -1, -1, -1, -1, -1);
				n++;
			}
	/* disk sizes not a multiple of 1 MiB */
	check_one(256 * GiB + 4096 * 7, 512, 8192, -1, -1, -1, -1, -1);
	check_one(256 * GiB + 4096 * 7, 4096, 8192, -1, -1, -1, -1, -1);
	assert_true(n > 700);
}

static void test_overrides(void **state)
{
	(void)state;
	/* hdsize */
	check_one(256 * GiB, 512, 16384, 100, -1, -1, -1, -1);
	check_one(2048 * GiB, 4096, 16384, 500, -1, -1, -1, -1);
	check_one(256 * GiB, 512, 16384, 256, -1, -1, -1, -1); /* = disk: no restriction */
	/* swapsize, including 0 = no swap */
	check_one(256 * GiB, 512, 16384, -1, 0, -1, -1, -1);
	check_one(256 * GiB, 512, 16384, -1, 2, -1, -1, -1);
	check_one(64 * GiB, 512, 16384, -1, 16, -1, -1, -1);
	/* maxroot */
	check_one(2048 * GiB, 512, 16384, -1, -1, 20, -1, -1);
	check_one(2048 * GiB, 512, 16384, -1, -1, 200, -1, -1);
	check_one(128 * GiB, 512, 16384, -1, -1, 30, -1, -1);
	/* minfree: normal, and larger than the rest (falls back to the default) */
	check_one(256 * GiB, 512, 16384, -1, -1, -1, 32, -1);
	check_one(256 * GiB, 512, 16384, -1, -1, -1, 0, -1);
	check_one(256 * GiB, 512, 16384, -1, -1, -1, 10000, -1);
	/* maxvz: cap, zero (no thin pool), and <= 4 GiB (no thin pool) */
	check_one(256 * GiB, 512, 16384, -1, -1, -1, -1, 50);
	check_one(256 * GiB, 512, 16384, -1, -1, -1, -1, 0);
	check_one(256 * GiB, 512, 16384, -1, -1, -1, -1, 4);
	check_one(256 * GiB, 512, 16384, -1, -1, -1, -1, 4.5);
	/* all together */
	check_one(1000 * GiB, 4096, 65536, 300, 4, 40, 8, 100);
}

/* Worked by hand from the Perl, to guard the transcription above too. */
static void test_hand_computed(void **state)
{
	struct layout_input in = { .disk_bytes = 256ULL << 30, .sector_size = 512, .ram_bytes = 16ULL << 30 };
	struct layout l;

	(void)state;
	assert_int_equal(layout_compute(&in, &l, NULL, 0), 0);
	assert_int_equal(l.esp_mib, 1024);
	assert_int_equal(l.os_kib, 267385856);  /* 268435456 - 1025*1024 */
	assert_int_equal(l.swap_kib, 8388608);  /* min(16384, 255*128, 8192) MiB */
	assert_int_equal(l.root_kib, 77328384); /* (252927/4 + 12288) MiB = 77332224 KiB, aligned down */
	assert_int_equal(l.minfree_kib, 16777216);
	assert_int_equal(l.meta_kib, 1646592);  /* 164888576/100 aligned */
	assert_int_equal(l.data_kib, 161591296); /* 164888576 - 2*meta - 4096 */
	assert_true(l.thin);
	assert_int_equal(l.parts[2].start, 1025 * 2048);
	assert_int_equal(l.parts[2].end, (256ULL << 21) - 2048 - 1); /* last full MiB */

	/* 32 GiB, 4 GiB RAM: ESP 512 MiB; hdgb 31 -> swap 2048? no: RAM 4096 > 31*128 = 3968 */
	in.disk_bytes = 32ULL << 30;
	in.ram_bytes = 4ULL << 30;
	assert_int_equal(layout_compute(&in, &l, NULL, 0), 0);
	assert_int_equal(l.esp_mib, 512);
	assert_int_equal(l.os_kib, 33554432 - 513 * 1024);
	assert_int_equal(l.swap_kib, 3968 * 1024);
	assert_int_equal(l.minfree_kib, 4096);
}

static void test_refusals(void **state)
{
	struct layout_input in = { .disk_bytes = 7ULL << 30, .sector_size = 512, .ram_bytes = 1ULL << 30 };
	struct layout l;
	char err[256];

	(void)state;
	assert_int_equal(layout_compute(&in, &l, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "too small"));
	in.disk_bytes = 64ULL << 30;
	in.sector_size = 1024;
	assert_int_equal(layout_compute(&in, &l, err, sizeof(err)), -EINVAL);
	in.sector_size = 4096;
	in.disk_bytes = (64ULL << 30) + 512;
	assert_int_equal(layout_compute(&in, &l, err, sizeof(err)), -EINVAL);
	in.disk_bytes = 64ULL << 30;
	in.storage.hdsize = (struct mf_size_opt){ 65ULL << 30, true };
	assert_int_equal(layout_compute(&in, &l, err, sizeof(err)), -EINVAL);
	in.storage.hdsize.set = false;
	in.storage.swapsize = (struct mf_size_opt){ 70ULL << 30, true };
	assert_int_equal(layout_compute(&in, &l, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_hand_computed),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
