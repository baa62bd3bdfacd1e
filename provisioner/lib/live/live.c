/* SPDX-License-Identifier: MIT */
/*
 * live.c — the live status server; see live.h.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "live.h"
#include "plan/json-util.h"
#include "pve/http.h"
#include "util.h"

#define REFRESH_SECONDS 3
#define LINE_MAX_LEN 512

enum live_state { LS_PENDING, LS_RUNNING, LS_DONE, LS_FAILED };

static const char *const state_names[] = {
	[LS_PENDING] = "pending",
	[LS_RUNNING] = "running",
	[LS_DONE] = "done",
	[LS_FAILED] = "failed",
};

struct live_step {
	char *id, *title;
	enum live_state state;
	const char *status; /* "applied", "found", "earlier"; NULL */
	uint64_t elapsed_ms;
	bool timed;
	struct timespec begin;
};

struct live_line {
	enum log_level level;
	char text[LINE_MAX_LEN];
};

/* Another node's status, as its own /status.json last said. */
struct live_peer {
	char *name, *url;
	bool asked, reachable;
	char *state, *current, *stop_step, *stop_error, *updated, *error;
	uint64_t done, total, failed;
};

struct live {
	pthread_mutex_t lock;
	/* the other nodes (live_peers()): asked by their own thread */
	struct live_peer *peers;
	size_t n_peers;
	uint64_t peer_every_ms;
	pthread_t poller;
	bool polling, stop;
	pthread_cond_t wake;
	struct MHD_Daemon *daemon;
	unsigned port;
	char *cluster, *node, *phase;
	uint64_t started_ms;
	struct live_step *steps;
	struct json_object *preflight; /* the install's pre-flight findings; NULL: none */
	size_t n_steps;
	ssize_t current;              /* steps[] index running now, -1 none */
	struct live_line log[LIVE_LOG_LINES];
	size_t log_next, log_n;
	char *state;                  /* "running" until live_finish() */
	char *stop_step, *stop_error;
};

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - t0->tv_sec) * 1000u + (uint64_t)((t.tv_nsec - t0->tv_nsec) / 1000000);
}

/* ---- the model --------------------------------------------------------------- */

int live_plan(struct live *l, const struct plan *p, enum step_phase phase)
{
	struct live_step *steps = calloc(p->n_steps ? p->n_steps : 1, sizeof(*steps));
	size_t n = 0;

	if (!steps)
		goto oom;
	for (size_t i = 0; i < p->n_steps; i++) {
		if (phase != STEP_PHASE_ANY && p->steps[i].phase != phase)
			continue;
		steps[n].id = strdup(p->steps[i].id);
		steps[n].title = strdup(p->steps[i].title);
		if (!steps[n].id || !steps[n].title) {
			n++;
			goto oom;
		}
		n++;
	}
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->n_steps; i++) {
		free(l->steps[i].id);
		free(l->steps[i].title);
	}
	free(l->steps);
	l->steps = steps;
	l->n_steps = n;
	l->current = -1;
	pthread_mutex_unlock(&l->lock);
	return 0;
oom:
	for (size_t i = 0; steps && i < n; i++) {
		free(steps[i].id);
		free(steps[i].title);
	}
	free(steps);
	return -ENOMEM;
}

void live_step(struct live *l, const struct step_progress *p)
{
	struct live_step *s;
	size_t i;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	/* by id: the verb may run the plan in parts (install: plan_filter()'s
	 * copies), whose steps are not the plan's own */
	for (i = 0; i < l->n_steps && !streq(l->steps[i].id, p->step->id); i++)
		;
	if (i == l->n_steps) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	s = &l->steps[i];
	switch (p->event) {
	case STEP_EVENT_BEGIN:
		s->state = LS_RUNNING;
		clock_gettime(CLOCK_MONOTONIC, &s->begin);
		l->current = (ssize_t)i;
		break;
	case STEP_EVENT_APPLIED:
	case STEP_EVENT_FOUND_DONE:
	case STEP_EVENT_SKIP_JOURNAL:
		s->state = LS_DONE;
		s->status = p->event == STEP_EVENT_APPLIED ? "applied" : p->event == STEP_EVENT_FOUND_DONE ? "found" : "earlier";
		s->elapsed_ms = p->elapsed_usec / 1000;
		s->timed = true;
		break;
	case STEP_EVENT_WOULD_APPLY:
		s->state = LS_PENDING;
		break;
	case STEP_EVENT_FAILED:
		s->state = LS_FAILED;
		s->elapsed_ms = p->elapsed_usec / 1000;
		s->timed = true;
		break;
	default:
		break;
	}
	if (s->state != LS_RUNNING && l->current == (ssize_t)i)
		l->current = -1;
	pthread_mutex_unlock(&l->lock);
}

void live_log(enum log_level level, const char *line, void *userdata)
{
	struct live *l = userdata;
	struct live_line *ln;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	ln = &l->log[l->log_next];
	ln->level = level;
	snprintf(ln->text, sizeof(ln->text), "%s", line);
	l->log_next = (l->log_next + 1) % LIVE_LOG_LINES;
	if (l->log_n < LIVE_LOG_LINES)
		l->log_n++;
	pthread_mutex_unlock(&l->lock);
}

void live_preflight(struct live *l, struct json_object *findings)
{
	if (!l) {
		json_object_put(findings);
		return;
	}
	pthread_mutex_lock(&l->lock);
	json_object_put(l->preflight);
	l->preflight = findings;
	pthread_mutex_unlock(&l->lock);
}

void live_finish(struct live *l, const char *state, const char *step, const char *error)
{
	char *st, *sp, *er;

	if (!l)
		return;
	st = strdup(state);
	sp = step ? strdup(step) : NULL;
	er = error ? strdup(error) : NULL;
	pthread_mutex_lock(&l->lock);
	if (st) {
		free(l->state);
		l->state = st;
		free(l->stop_step);
		l->stop_step = sp;
		free(l->stop_error);
		l->stop_error = er;
		l->current = -1;
	} else {
		free(sp);
		free(er);
	}
	pthread_mutex_unlock(&l->lock);
}

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static int nodes_locked(struct live *l, size_t done, size_t failed, struct json_object **ret);

/* The document, built with l->lock held. */
static int snapshot_locked(struct live *l, struct json_object **ret)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	struct json_object *steps = json_object_new_array(), *log = json_object_new_array(), *cur = NULL, *stop = NULL;
	size_t done = 0, failed = 0;
	char t[RFC3339_MAX];
	int r = o && steps && log ? 0 : -ENOMEM;

	for (size_t i = 0; r >= 0 && i < l->n_steps; i++) {
		const struct live_step *s = &l->steps[i];
		struct json_object *x = json_object_new_object();

		done += s->state == LS_DONE;
		failed += s->state == LS_FAILED;
		r = x ? 0 : -ENOMEM;
		if (r >= 0)
			r = json_add_u64(x, "index", i + 1);
		if (r >= 0)
			r = json_add_string(x, "id", s->id);
		if (r >= 0)
			r = json_add_string(x, "title", s->title);
		if (r >= 0)
			r = json_add_string(x, "state", state_names[s->state]);
		if (r >= 0)
			r = json_add_string(x, "status", s->status);
		if (r >= 0)
			r = json_add(x, "elapsed_ms",
				     s->timed ? json_object_new_uint64(s->elapsed_ms)
					      : s->state == LS_RUNNING ? json_object_new_uint64(ms_since(&s->begin)) : NULL);
		if (r >= 0)
			r = json_array_add(steps, x);
		else
			json_object_put(x);
	}
	for (size_t k = 0; r >= 0 && k < l->log_n; k++) {
		const struct live_line *ln = &l->log[(l->log_next + LIVE_LOG_LINES - l->log_n + k) % LIVE_LOG_LINES];
		struct json_object *x = json_object_new_object();

		r = x ? 0 : -ENOMEM;
		if (r >= 0)
			r = json_add_string(x, "level", level_names[ln->level]);
		if (r >= 0)
			r = json_add_string(x, "line", ln->text);
		if (r >= 0)
			r = json_array_add(log, x);
		else
			json_object_put(x);
	}
	if (r >= 0 && l->current >= 0) {
		const struct live_step *s = &l->steps[l->current];

		cur = json_object_new_object();
		r = cur ? 0 : -ENOMEM;
		if (r >= 0)
			r = json_add_u64(cur, "index", (uint64_t)l->current + 1);
		if (r >= 0)
			r = json_add_string(cur, "id", s->id);
		if (r >= 0)
			r = json_add_string(cur, "title", s->title);
		if (r >= 0)
			r = json_add_u64(cur, "running_ms", ms_since(&s->begin));
	}
	if (r >= 0 && l->stop_step) {
		stop = json_object_new_object();
		r = stop ? 0 : -ENOMEM;
		if (r >= 0)
			r = json_add_string(stop, "step", l->stop_step);
		if (r >= 0)
			r = json_add_string(stop, "message", l->stop_error ? l->stop_error : "");
	}
	if (r < 0) {
		json_object_put(steps);
		json_object_put(log);
		json_object_put(cur);
		json_object_put(stop);
		return r;
	}
	if ((r = json_add_u64(o, "version", LIVE_FORMAT_VERSION)) < 0 ||
	    (r = json_add_string(o, "cluster", l->cluster)) < 0 || (r = json_add_string(o, "node", l->node)) < 0 ||
	    (r = json_add_string(o, "phase", l->phase)) < 0)
		goto fail;
	fmt_rfc3339(l->started_ms, t);
	if ((r = json_add_string(o, "started", t)) < 0)
		goto fail;
	fmt_rfc3339(wall_ms(), t);
	if ((r = json_add_string(o, "updated", t)) < 0 || (r = json_add_string(o, "state", l->state)) < 0 ||
	    (r = json_add_u64(o, "total", l->n_steps)) < 0 || (r = json_add_u64(o, "done", done)) < 0 ||
	    (r = json_add_u64(o, "failed", failed)) < 0)
		goto fail;
	r = json_add(o, "current", cur);
	cur = NULL;
	if (r >= 0)
		r = json_add(o, "stopped_at", stop);
	stop = NULL;
	if (r >= 0)
		r = json_add(o, "steps", steps);
	steps = NULL;
	if (r >= 0)
		r = json_add(o, "log", log);
	log = NULL;
	if (r >= 0) {
		struct json_object *nodes = NULL;

		if (l->n_peers)
			r = nodes_locked(l, done, failed, &nodes);
		if (r >= 0)
			r = json_add(o, "nodes", nodes);
	}
	if (r >= 0)
		r = json_add(o, "preflight", l->preflight ? json_object_get(l->preflight) : NULL);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
fail:
	json_object_put(steps);
	json_object_put(log);
	json_object_put(cur);
	json_object_put(stop);
	return r;
}

int live_snapshot(struct live *l, struct json_object **ret)
{
	int r;

	pthread_mutex_lock(&l->lock);
	r = snapshot_locked(l, ret);
	pthread_mutex_unlock(&l->lock);
	return r;
}

/* ---- the other nodes -------------------------------------------------------------- */

#define PEER_TIMEOUT_MS 2000
#define PEER_MAX_BODY (1u << 20)

static void peer_clear(struct live_peer *p)
{
	free(p->state);
	free(p->current);
	free(p->stop_step);
	free(p->stop_error);
	free(p->updated);
	free(p->error);
	p->state = p->current = p->stop_step = p->stop_error = p->updated = p->error = NULL;
	p->done = p->total = p->failed = 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Ask one peer (no lock held), then file the answer under the lock. */
static void peer_ask(struct live *l, size_t i)
{
	struct live_peer got = {};
	_cleanup_json_ struct json_object *doc = NULL;
	char *body = NULL, err[160] = "";
	size_t len = 0;
	long status = 0;
	int r;

	r = http_get_public(l->peers[i].url, PEER_TIMEOUT_MS, PEER_MAX_BODY, &body, &len, &status);
	if (r < 0)
		snprintf(err, sizeof(err), "no answer: %s", strerror(-r));
	else if (status != 200)
		snprintf(err, sizeof(err), "HTTP %ld", status);
	else if (!(doc = json_tokener_parse(body)) || !json_object_is_type(doc, json_type_object) ||
		 !json_get_string(doc, "state"))
		snprintf(err, sizeof(err), "not a status document");
	free(body);
	if (!err[0]) {
		struct json_object *cur = json_get_object(doc, "current"), *stop = json_get_object(doc, "stopped_at");

		got.reachable = true;
		got.state = dup_or_null(json_get_string(doc, "state"));
		got.updated = dup_or_null(json_get_string(doc, "updated"));
		got.current = cur ? dup_or_null(json_get_string(cur, "title")) : NULL;
		got.stop_step = stop ? dup_or_null(json_get_string(stop, "step")) : NULL;
		got.stop_error = stop ? dup_or_null(json_get_string(stop, "message")) : NULL;
		(void)json_get_u64(doc, "done", &got.done);
		(void)json_get_u64(doc, "total", &got.total);
		(void)json_get_u64(doc, "failed", &got.failed);
	} else
		got.error = strdup(err);
	pthread_mutex_lock(&l->lock);
	peer_clear(&l->peers[i]);
	got.name = l->peers[i].name;
	got.url = l->peers[i].url;
	got.asked = true;
	l->peers[i] = got;
	pthread_mutex_unlock(&l->lock);
}

static void *poller_main(void *arg)
{
	struct live *l = arg;

	pthread_mutex_lock(&l->lock);
	while (!l->stop) {
		struct timespec until;

		pthread_mutex_unlock(&l->lock);
		for (size_t i = 0; i < l->n_peers; i++)
			peer_ask(l, i);
		pthread_mutex_lock(&l->lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(l->peer_every_ms / 1000);
		until.tv_nsec += (long)(l->peer_every_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (!l->stop)
			pthread_cond_timedwait(&l->wake, &l->lock, &until);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int live_peers(struct live *l, const char *const *names, const char *const *urls, size_t n, uint64_t every_ms)
{
	struct live_peer *peers;
	int r;

	if (l->polling || n == 0)
		return l->polling ? -EBUSY : 0;
	peers = calloc(n, sizeof(*peers));
	if (!peers)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		peers[i].name = strdup(names[i]);
		peers[i].url = strdup(urls[i]);
		if (!peers[i].name || !peers[i].url) {
			for (size_t k = 0; k <= i; k++) {
				free(peers[k].name);
				free(peers[k].url);
			}
			free(peers);
			return -ENOMEM;
		}
	}
	pthread_mutex_lock(&l->lock);
	l->peers = peers;
	l->n_peers = n;
	l->peer_every_ms = every_ms ? every_ms : 3000;
	pthread_mutex_unlock(&l->lock);
	r = -pthread_create(&l->poller, NULL, poller_main, l);
	if (r == 0)
		l->polling = true;
	return r;
}

/* The "nodes" array: this node, then every peer as last asked. */
static int nodes_locked(struct live *l, size_t done, size_t failed, struct json_object **ret)
{
	_cleanup_json_ struct json_object *a = json_object_new_array();
	int r = a ? 0 : -ENOMEM;

	for (size_t i = 0; r >= 0 && i <= l->n_peers; i++) {
		const struct live_peer *p = i ? &l->peers[i - 1] : NULL;
		struct json_object *x = json_object_new_object();

		r = x ? 0 : -ENOMEM;
		if (r >= 0)
			r = json_add_string(x, "node", p ? p->name : l->node);
		if (r >= 0)
			r = json_add_string(x, "url", p ? p->url : NULL);
		if (r >= 0)
			r = json_add_bool(x, "reachable", p ? p->reachable : true);
		if (r >= 0)
			r = json_add_string(x, "state", p ? p->state : l->state);
		if (r >= 0)
			r = json_add_u64(x, "done", p ? p->done : done);
		if (r >= 0)
			r = json_add_u64(x, "total", p ? p->total : l->n_steps);
		if (r >= 0)
			r = json_add_u64(x, "failed", p ? p->failed : failed);
		if (r >= 0)
			r = json_add_string(x, "current",
					    p ? p->current : l->current >= 0 ? l->steps[l->current].title : NULL);
		if (r >= 0)
			r = json_add_string(x, "stopped_at", p ? p->stop_step : l->stop_step);
		if (r >= 0)
			r = json_add_string(x, "message", p ? p->stop_error : l->stop_error);
		if (r >= 0)
			r = json_add_string(x, "error", p ? (p->asked ? p->error : "not asked yet") : NULL);
		if (r >= 0)
			r = json_array_add(a, x);
		else
			json_object_put(x);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(a);
	return 0;
}

int live_summary(struct live *l, char *buf, size_t size, uint64_t *ret_running_ms)
{
	size_t done = 0;
	int r = 0;

	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->n_steps; i++)
		done += l->steps[i].state == LS_DONE;
	if (l->current >= 0) {
		const struct live_step *s = &l->steps[l->current];
		uint64_t ms = ms_since(&s->begin);

		*ret_running_ms = ms;
		snprintf(buf, size, "[%zd/%zu] %s: running for %" PRIu64 " s; %zu of %zu steps done", l->current + 1,
			 l->n_steps, s->title, ms / 1000, done, l->n_steps);
		r = 1;
	} else
		*ret_running_ms = 0;
	pthread_mutex_unlock(&l->lock);
	return r;
}

int live_bar(struct live *l, char *buf, size_t size)
{
	size_t done = 0, n;
	int r = 0;

	pthread_mutex_lock(&l->lock);
	n = l->n_steps;
	for (size_t i = 0; i < n; i++)
		done += l->steps[i].state == LS_DONE;
	if (l->current >= 0) {
		const struct live_step *s = &l->steps[l->current];
		char bar[21];
		size_t fill = n ? done * 20 / n : 0;

		for (size_t k = 0; k < 20; k++)
			bar[k] = k < fill ? '#' : '.';
		bar[20] = '\0';
		snprintf(buf, size, "[%s] %zu/%zu  %s (%" PRIu64 " s)", bar, done, n, s->title,
			 ms_since(&s->begin) / 1000);
		r = 1;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

/* ---- the page ----------------------------------------------------------------- */

static void html_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

static const char *str_of(struct json_object *o, const char *key)
{
	const char *s = json_get_string(o, key);

	return s ? s : "";
}

static uint64_t u64_of(struct json_object *o, const char *key)
{
	uint64_t n = 0;

	(void)json_get_u64(o, key, &n);
	return n;
}

/* The HTML page from the JSON document: the same facts, for a browser. */
static void page(FILE *f, struct json_object *doc)
{
	struct json_object *a, *cur = json_get_object(doc, "current"), *stop = json_get_object(doc, "stopped_at");
	const char *state = str_of(doc, "state");
	uint64_t total = u64_of(doc, "total"), done = u64_of(doc, "done");

	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
	if (streq(state, "running"))
		fprintf(f, "<meta http-equiv=\"refresh\" content=\"%d\">\n", REFRESH_SECONDS);
	fputs("<title>", f);
	html_text(f, str_of(doc, "node"));
	fprintf(f, ": %s</title>\n<style>\n"
		   "body{font-family:sans-serif;margin:1.5em;color:#111}\n"
		   "table{border-collapse:separate;border-spacing:0 3px}td,th{padding:.2em .6em;text-align:left}\n"
		   "tr.done td.state{color:#fff;background:#2e7d32}tr.failed td.state{color:#fff;background:#c62828}\n"
		   "tr.running td.state{color:#fff;background:#1565c0}tr.pending td.state{color:#333;background:#ddd}\n"
		   "tr.failed{background:#ffebee;font-weight:bold}tr.running{background:#e3f2fd}\n"
		   "tr.node-done td.state{color:#2e7d32}tr.node-failed td.state{color:#c62828}\n"
		   "tr.node-running td.state{color:#1565c0}td.state{font-weight:bold}\n"
		   ".error{border:2px solid #8e0000;background:#fff3f3;padding:.6em;margin:1em 0}\n"
		   "pre{background:#f4f4f4;padding:.6em;white-space:pre-wrap}\n"
		   "</style></head><body>\n", state);
	fputs("<h1>DevOpsLab: ", f);
	html_text(f, str_of(doc, "node"));
	fputs(" (", f);
	html_text(f, str_of(doc, "phase"));
	fputs(")</h1>\n<p id=\"summary\">Cluster ", f);
	html_text(f, str_of(doc, "cluster"));
	fprintf(f, ": <b id=\"state\">%s</b>, %" PRIu64 " of %" PRIu64 " steps done, updated ",
		streq(state, "failed") ? "FAILED" : state, done, total);
	html_text(f, str_of(doc, "updated"));
	fprintf(f, "</p>\n<progress max=\"%" PRIu64 "\" value=\"%" PRIu64 "\"></progress>\n", total ? total : 1, done);
	if ((a = json_get_array(doc, "nodes"))) {
		fputs("<h2>Nodes</h2>\n<table id=\"nodes\"><tr><th>node</th><th>state</th><th>steps</th><th>now</th></tr>\n",
		      f);
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *n = json_object_array_get_idx(a, i);
			bool up = json_object_get_boolean(json_object_object_get(n, "reachable"));
			const char *nst = up ? str_of(n, "state") : "unreachable";

			fprintf(f, "<tr class=\"node-%s\"><td>", streq(nst, "complete") ? "done"
								: streq(nst, "failed") || !up ? "failed"
								: streq(nst, "running") ? "running" : "pending");
			if (json_get_string(n, "url")) {
				fputs("<a href=\"", f);
				html_text(f, str_of(n, "url"));
				fputs("\">", f);
				html_text(f, str_of(n, "node"));
				fputs("</a>", f);
			} else
				html_text(f, str_of(n, "node"));
			fputs("</td><td class=\"state\">", f);
			html_text(f, streq(nst, "failed") ? "FAILED" : nst);
			fprintf(f, "</td><td>%" PRIu64 "/%" PRIu64 "</td><td>", u64_of(n, "done"), u64_of(n, "total"));
			html_text(f, up ? (json_get_string(n, "stopped_at") ? str_of(n, "message") : str_of(n, "current"))
					: str_of(n, "error"));
			fputs("</td></tr>\n", f);
		}
		fputs("</table>\n", f);
	}
	if (cur) {
		fputs("<p id=\"current\">Now: ", f);
		html_text(f, str_of(cur, "title"));
		fprintf(f, " (%" PRIu64 " s)</p>\n", u64_of(cur, "running_ms") / 1000);
	}
	if (stop) {
		fprintf(f, "<div class=\"error\" id=\"error\">%s at ", streq(state, "failed") ? "Failed" : "Stopped");
		html_text(f, str_of(stop, "step"));
		fputs(": ", f);
		html_text(f, str_of(stop, "message"));
		fputs("</div>\n", f);
	}
	if ((a = json_get_array(doc, "preflight"))) {
		fputs("<h2>Pre-flight</h2>\n<table id=\"preflight\"><tr><th>check</th><th>status</th><th>subject</th>"
		      "<th>detail</th></tr>\n", f);
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *x = json_object_array_get_idx(a, i);
			const char *st = str_of(x, "status");

			fprintf(f, "<tr class=\"node-%s\"><td>", streq(st, "fail") ? "failed" : streq(st, "pass") ? "done"
												 : "pending");
			html_text(f, str_of(x, "check"));
			fputs("</td><td class=\"state\">", f);
			html_text(f, st);
			fputs("</td><td>", f);
			html_text(f, str_of(x, "subject"));
			fputs("</td><td>", f);
			html_text(f, str_of(x, "detail"));
			fputs("</td></tr>\n", f);
		}
		fputs("</table>\n", f);
	}
	fputs("<table id=\"steps\"><tr><th>#</th><th>state</th><th>step</th><th>time</th></tr>\n", f);
	a = json_get_array(doc, "steps");
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *s = json_object_array_get_idx(a, i);
		const char *st = str_of(s, "state");

		fprintf(f, "<tr class=\"%s\"><td>%zu</td><td class=\"state\">%s</td><td>", st, i + 1,
			streq(st, "failed") ? "FAILED" : st);
		html_text(f, str_of(s, "title"));
		fputs("</td><td>", f);
		if (json_object_object_get(s, "elapsed_ms"))
			fprintf(f, "%.1f s", (double)u64_of(s, "elapsed_ms") / 1000.0);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n<h2>Last log lines</h2>\n<pre id=\"log\">", f);
	a = json_get_array(doc, "log");
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *ln = json_object_array_get_idx(a, i);

		if (!streq(str_of(ln, "level"), "info")) {
			html_text(f, str_of(ln, "level"));
			fputs(": ", f);
		}
		html_text(f, str_of(ln, "line"));
		fputc('\n', f);
	}
	fputs("</pre>\n<p><a href=\"/status.json\">status.json</a></p>\n</body></html>\n", f);
}

/* ---- HTTP ------------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, const char *type, char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned code, const char *text)
{
	char *body = strdup(text);

	return body ? respond(c, code, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct live *l = cls;
	_cleanup_json_ struct json_object *doc = NULL;
	char *body = NULL;
	size_t len = 0;
	FILE *f;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size) /* a body: not ours to take */
		*upload_data_size = 0;
	if (!streq(method, MHD_HTTP_METHOD_GET) && !streq(method, MHD_HTTP_METHOD_HEAD))
		return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: GET /status.json or /\n");
	if (!streq(url, "/") && !streq(url, "/status.json"))
		return respond_text(c, MHD_HTTP_NOT_FOUND, "not found: GET /status.json or /\n");
	if (live_snapshot(l, &doc) < 0)
		return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
	if (streq(url, "/status.json")) {
		const char *s = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

		body = s ? strdup(s) : NULL;
		return body ? respond(c, MHD_HTTP_OK, "application/json", body, strlen(body))
			    : respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
	}
	f = open_memstream(&body, &len);
	if (!f)
		return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
	page(f, doc);
	if (fclose(f) != 0) {
		free(body);
		return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
	}
	return respond(c, MHD_HTTP_OK, "text/html; charset=utf-8", body, len);
}

int live_start(const char *listen, const char *cluster, const char *node, const char *phase, struct live **ret)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	char host[INET_ADDRSTRLEN];
	const union MHD_DaemonInfo *info;
	struct live *l;
	unsigned long port;
	char *end;

	if (listen && (!colon || (size_t)(colon - listen) >= sizeof(host)))
		return -EINVAL;
	if (listen) {
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || !colon[1] || *end || errno || port > 65535)
			return -EINVAL;
		sa.sin_port = htons((uint16_t)port);
	} else
		port = 0;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&l->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	l->current = -1;
	l->started_ms = wall_ms();
	l->cluster = strdup(cluster ? cluster : "");
	l->node = strdup(node ? node : "");
	l->phase = strdup(phase ? phase : "");
	l->state = strdup("running");
	if (!l->cluster || !l->node || !l->phase || !l->state) {
		live_stop(l);
		return -ENOMEM;
	}
	if (!listen) {
		*ret = l;
		return 0;
	}
	errno = 0;
	l->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, (uint16_t)port, NULL, NULL, handle,
				     l, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (!l->daemon) {
		int r = errno > 0 ? -errno : -EADDRNOTAVAIL;

		live_stop(l);
		return r;
	}
	info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT);
	l->port = info ? info->port : (unsigned)port;
	*ret = l;
	return 0;
}

unsigned live_port(const struct live *l)
{
	return l->port;
}

struct live *live_stop(struct live *l)
{
	if (!l)
		return NULL;
	if (l->polling) {
		pthread_mutex_lock(&l->lock);
		l->stop = true;
		pthread_cond_signal(&l->wake);
		pthread_mutex_unlock(&l->lock);
		pthread_join(l->poller, NULL);
	}
	if (l->daemon)
		MHD_stop_daemon(l->daemon);
	for (size_t i = 0; i < l->n_peers; i++) {
		peer_clear(&l->peers[i]);
		free(l->peers[i].name);
		free(l->peers[i].url);
	}
	free(l->peers);
	for (size_t i = 0; i < l->n_steps; i++) {
		free(l->steps[i].id);
		free(l->steps[i].title);
	}
	free(l->steps);
	json_object_put(l->preflight);
	free(l->cluster);
	free(l->node);
	free(l->phase);
	free(l->state);
	free(l->stop_step);
	free(l->stop_error);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l);
	return NULL;
}
