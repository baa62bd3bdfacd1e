/* SPDX-License-Identifier: MIT */
/*
 * live.h — a run's live status, served over HTTP while it runs
 * (docs/operations.md, "Live status"): the plan's steps with their state
 * and timing, the step running now, the last log lines and the error, as
 * JSON (GET /status.json, docs/status.schema.json) and as one small HTML
 * page that refreshes itself (GET /). Read-only: any other method is 405,
 * any other path 404. The server is libmicrohttpd's, on its own thread,
 * bound to one address (the node's management address, from the manifest's
 * `status` section; tests bind loopback).
 *
 * The verb feeds it: live_plan() once, then live_step() from the engine's
 * progress events, live_log() from the log sink, live_finish() at the end.
 * Everything it shows went through the logger first, which never sees a
 * secret. Feeding and serving share one mutex; nothing logs while holding
 * it.
 *
 * Ownership: live_start() returns a server the caller stops with
 * live_stop() (the thread is joined; no request is answered after it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "util.h"
#include "plan/engine.h"
#include "plan/plan.h"

struct live;
struct json_object;

#define LIVE_LOG_LINES 20
#define LIVE_FORMAT_VERSION 1

/* listen: "IPv4:PORT" (port 0: any free port; live_port() says which);
 * NULL: the model only, no server (the console's summaries still use it).
 * Returns 0, -EINVAL for a malformed address, -EADDRNOTAVAIL /
 * -EADDRINUSE / -errno when the server cannot start. */
int live_start(const char *listen, const char *cluster, const char *node, const char *phase, struct live **ret);
struct live *live_stop(struct live *l);
unsigned live_port(const struct live *l);

/* The steps this run goes through (the plan's steps of `phase`), pending. */
int live_plan(struct live *l, const struct plan *p, enum step_phase phase);
void live_step(struct live *l, const struct step_progress *p);
/* A log_set_sink() callback (userdata: the struct live). */
void live_log(enum log_level level, const char *line, void *userdata);
/* The install's pre-flight findings (preflight.h's JSON array; taken). */
void live_preflight(struct live *l, struct json_object *findings);
/* The run ended: "complete", "incomplete" or "failed", with the step and error. */
void live_finish(struct live *l, const char *state, const char *step, const char *error);

/* The console's view (verbs/progress.c): one line on the step running now,
 * "[12/45] Creating VM x: running for 42 s; 11 of 45 steps done", with how
 * long it has run in *ret_running_ms; or a progress bar for a terminal's
 * status line, "[####......] 11/45  Creating VM x (42 s)". Each returns 1
 * with buf filled while a step runs, 0 between steps. */
int live_summary(struct live *l, char *buf, size_t size, uint64_t *ret_running_ms);
int live_bar(struct live *l, char *buf, size_t size);

/* The orchestrating node's page gathers the other nodes: a thread asks
 * each url (another node's http://IP:PORT/status.json) every every_ms (0:
 * 3 s), and the document gets "nodes": this node, then each peer as it last
 * answered (or why it did not). Once per server. */
int live_peers(struct live *l, const char *const *names, const char *const *urls, size_t n, uint64_t every_ms);

/* The document /status.json serves (for the verb's tests and the page). */
int live_snapshot(struct live *l, struct json_object **ret);

DEFINE_FREE_FUNC(struct live, live_stop)
