/* SPDX-License-Identifier: MIT */
/*
 * fuzz-journal.c — libFuzzer target for the journal reader: any bytes into
 * journal_parse(), and the invariants step_run() relies on checked: only
 * complete lines are consumed, a torn tail is exactly the bytes after the
 * last newline, every record has a non-empty id and a 64-hex-digit hash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan/journal.h"
#include "plan/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal *j = NULL;
	size_t valid = 0;
	int r;

	r = journal_parse((const char *)data, size, &j, &valid);
	if ((r == 0) != (j != NULL))
		abort();
	if (r < 0) {
		if (r != -EBADMSG && r != -EFBIG && r != -ENOMEM)
			abort();
		return 0;
	}
	if (valid > size || (valid > 0 && data[valid - 1] != '\n'))
		abort();
	if (journal_was_torn(j) != (valid < size) || memchr(data + valid, '\n', size - valid))
		abort();
	for (size_t i = 0; i < journal_n_records(j); i++) {
		const struct journal_record *rec = journal_get(j, i);

		if (!rec->id[0] || strlen(rec->hash) != 64 || !rec->phase || !rec->time)
			abort();
		if (journal_find(j, rec->id) == NULL)
			abort();
	}
	journal_free(j);
	return 0;
}
