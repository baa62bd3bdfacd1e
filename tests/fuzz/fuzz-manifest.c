/* SPDX-License-Identifier: MIT */
/*
 * fuzz-manifest.c — libFuzzer target for the manifest loader: any bytes
 * into manifest_load_buffer(), everything freed, and the result checked
 * for the two invariants callers rely on (a manifest only without errors,
 * every diagnostic formattable).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "manifest/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diags d = {};
	struct manifest *m = NULL;
	char line[1024];
	int r;

	r = manifest_load_buffer((const char *)data, size, "fuzz.yaml", &d, &m);
	if ((r == 0) != (m != NULL) || (r == 0 && d.n_errors > 0) || (r == -EINVAL && d.n_errors == 0))
		abort();
	for (size_t i = 0; i < d.n; i++)
		if (diags_format(&d, i, line, sizeof(line)) < 0)
			abort();
	if (m) {
		/* Walk the expansion, as every consumer does. */
		for (size_t i = 0; i < m->n_vms; i++)
			for (unsigned j = 0; j < m->vms[i].count; j++) {
				struct mf_vm vm;
				if (manifest_vm_expand(&m->vms[i], j, &vm) < 0)
					abort();
			}
	}
	manifest_free(m);
	diags_done(&d);
	return 0;
}
