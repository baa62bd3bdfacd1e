/* SPDX-License-Identifier: MIT */
/*
 * plan-internal.h — shared between plan.c, plan-build.c and plan-print.c
 * only: the module's error buffer (first error wins; plan_error() reads it).
 */
#pragma once

int plan_fail(int error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void plan_clear_error(void);
