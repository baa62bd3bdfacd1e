/* SPDX-License-Identifier: MIT */
/*
 * progress.c — the step engine's progress as log lines (progress.h).
 */
#include "progress.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- the ticker ------------------------------------------------------------- */

struct ticker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool tty;
	struct live *live;
	uint64_t every_ms;
};

static void *ticker_main(void *arg)
{
	struct ticker *t = arg;
	uint64_t last_ms = 0, now_ms = 0;
	char line[320];

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec until;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&t->cond, &t->lock, &until);
		if (t->stop)
			break;
		pthread_mutex_unlock(&t->lock);
		now_ms += 1000;
		if (t->tty) {
			log_set_status(live_bar(t->live, line, sizeof(line)) > 0 ? line : NULL);
		} else {
			uint64_t running = 0;

			/* a step that has run a while: one line every every_ms */
			if (live_summary(t->live, line, sizeof(line), &running) > 0 && running >= t->every_ms &&
			    now_ms - last_ms >= t->every_ms) {
				log_info("%s", line);
				last_ms = now_ms;
			}
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int ticker_start(struct live *l, uint64_t every_ms, struct ticker **ret)
{
	struct ticker *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;
	int r;

	if (!t)
		return -ENOMEM;
	t->live = l;
	t->every_ms = every_ms ? every_ms : TICKER_EVERY_MS;
	t->tty = log_status_possible();
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	r = -pthread_create(&t->thread, NULL, ticker_main, t);
	if (r < 0) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return r;
	}
	*ret = t;
	return 0;
}

void ticker_stop(struct ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	if (t->tty)
		log_set_status(NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
