/* SPDX-License-Identifier: MIT */
#include "run.h"

#include <stdarg.h>

#include "json-util.h"

void run_ctx_init(struct run_ctx *ctx)
{
	*ctx = (struct run_ctx){};
}

void run_ctx_done(struct run_ctx *ctx)
{
	run_ctx_set_result(ctx, NULL);
}

int run_ctx_error(struct run_ctx *ctx, int error, const char *fmt, ...)
{
	va_list ap;

	if (!ctx->error[0]) {
		va_start(ap, fmt);
		vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
		va_end(ap);
	}
	return error;
}

void run_ctx_set_result(struct run_ctx *ctx, struct json_object *result)
{
	if (ctx->result)
		json_object_put(ctx->result);
	ctx->result = result;
}
