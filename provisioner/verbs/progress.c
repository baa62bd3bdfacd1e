/* SPDX-License-Identifier: MIT */
/*
 * progress.c — the step engine's progress as log lines (progress.h).
 */
#include "progress.h"

#include <inttypes.h>
#include <string.h>

#include "log.h"

void verbs_log_lines(const char *indent, const char *msg)
{
	const char *p = msg, *nl;

	while ((nl = strchr(p, '\n'))) {
		log_error("%s%.*s", indent, (int)(nl - p), p);
		p = nl + 1;
	}
	log_error("%s%s", indent, p);
}

void verbs_log_step(const struct step_progress *p)
{
	const char *title = p->step->title;

	switch (p->event) {
	case STEP_EVENT_APPLY:
		log_info("[%zu/%zu] %s", p->index, p->total, title);
		break;
	case STEP_EVENT_FOUND_DONE:
		log_info("[%zu/%zu] %s: already done", p->index, p->total, title);
		break;
	case STEP_EVENT_SKIP_JOURNAL:
		log_info("[%zu/%zu] %s: done earlier", p->index, p->total, title);
		break;
	case STEP_EVENT_REAPPLY:
		log_info("[%zu/%zu] %s: no longer done, doing it again", p->index, p->total, title);
		break;
	case STEP_EVENT_PARAMS_CHANGED:
		log_info("[%zu/%zu] %s: the manifest changed it, looking again", p->index, p->total, title);
		break;
	case STEP_EVENT_APPLIED:
		log_info("[%zu/%zu] %s: done (%" PRIu64 ".%01" PRIu64 " s)", p->index, p->total, title,
			 p->elapsed_usec / 1000000, p->elapsed_usec / 100000 % 10);
		break;
	case STEP_EVENT_WOULD_APPLY:
		log_info("[%zu/%zu] %s: would apply", p->index, p->total, title);
		break;
	case STEP_EVENT_FAILED:
		/* Beside other steps, each failure is said where it happens; the
		 * verb reports the one step_run() returns again at the end. */
		if (p->concurrent)
			log_error("[%zu/%zu] %s: failed: %s", p->index, p->total, title,
				  p->message && p->message[0] ? p->message : "(no reason given)");
		break;
	default:
		break;
	}
}
