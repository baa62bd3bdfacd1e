/* SPDX-License-Identifier: MIT */
/*
 * fake-tree.h — for unit tests that fabricate a machine (sysfs, /proc,
 * /dev) under a scratch directory: write a file, creating its parents.
 * Include after <cmocka.h>.
 */
#pragma once

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Create every missing parent directory of path (not path itself). */
static inline void fake_tree_mkparents(const char *path)
{
	char dir[1024];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		(void)mkdir(dir, 0755);
		*p = '/';
	}
}

/* Write `content` to root/rel. */
static inline void fake_tree_put(const char *root, const char *rel, const char *content)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fake_tree_mkparents(path);
	f = fopen(path, "we");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}
