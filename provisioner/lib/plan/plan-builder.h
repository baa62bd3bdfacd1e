/* SPDX-License-Identifier: MIT */
/*
 * plan-builder.h — the plan builder's state and its parameter helpers,
 * shared by plan-build.c (the bring-up's steps) and plan-apps.c (what the
 * lab runs in K3s beyond K3s itself). Not for use outside lib/plan.
 *
 * Every helper latches the first failure in b->error; once it is set,
 * later calls do nothing (a NULL object, no step), and plan_build()
 * returns that error.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest/manifest.h"
#include "plan.h"

struct json_object;

#define MONITORING_NODE_EXPORTER_PORT 9100 /* Debian's prometheus-node-exporter on every node */

struct builder {
	struct plan *plan;
	const struct manifest *m;
	const struct mf_node *first;
	int error; /* first failure; every later call is a no-op */
};

/* ---- plan-builder.c ---------------------------------------------------------- */

/* snprintf that latches truncation as an error. */
__attribute__((format(printf, 4, 5))) void pb_bfmt(struct builder *b, char *buf, size_t size, const char *fmt, ...);
struct json_object *pb_obj(struct builder *b);
struct json_object *pb_arr(struct builder *b);
void pb_put(struct builder *b, struct json_object *o, const char *key, struct json_object *v);
struct json_object *pb_str(struct builder *b, const char *s);
void pb_put_str(struct builder *b, struct json_object *o, const char *key, const char *s);
void pb_put_u64(struct builder *b, struct json_object *o, const char *key, uint64_t n);
void pb_put_bool(struct builder *b, struct json_object *o, const char *key, bool val);
void pb_push(struct builder *b, struct json_object *a, struct json_object *v);
void pb_fmt_ip(uint32_t ip, char buf[static 16]);
void pb_put_ip(struct builder *b, struct json_object *o, const char *key, uint32_t ip);
void pb_put_cidr(struct builder *b, struct json_object *o, const char *key, uint32_t ip, unsigned prefix);
void pb_put_size_opt(struct builder *b, struct json_object *o, const char *key, const struct mf_size_opt *s);
void pb_put_secret(struct builder *b, struct json_object *o, const char *key, const struct mf_secret *s);
void pb_put_strv(struct builder *b, struct json_object *o, const char *key, char *const *v, size_t n);
/* Append a step; consumes params. The id is printf-formatted. */
__attribute__((format(printf, 7, 8))) struct step *pb_add(struct builder *b, enum step_phase phase,
							  enum step_kind kind, const char *node,
							  struct json_object *params, const char *title,
							  const char *id_fmt, ...);
/* The expanded VM i of group g; a failure latched. */
int pb_expand(struct builder *b, const struct mf_vm_group *g, unsigned i, struct mf_vm *ret);
/* An expanded VM by name; a VM the manifest lacks latched as an error. */
int pb_find_vm(struct builder *b, const char *name, struct mf_vm *ret);

/* ---- plan-apps.c: the lab's applications in K3s -------------------------------- */

/* The system charts of the k3s-charts step: Argo CD's (gitops), the
 * metrics stack's (monitoring). */
struct json_object *pb_gitops_chart(struct builder *b);
struct json_object *pb_monitoring_chart(struct builder *b);
/* The log store's system chart (monitoring.logs). */
struct json_object *pb_logs_chart(struct builder *b);
/* Loki's Service and the sources of logs (the monitoring step's and the
 * verification's parameters) into p as "logs". */
void pb_put_logs(struct builder *b, struct json_object *p);
/* The edge-routes step's apps: the lab's own UIs in K3s behind the edge. */
struct json_object *pb_edge_apps(struct builder *b);
/* Where Prometheus answers and the static scrape jobs (the monitoring
 * step's and the verification's parameters) into p. */
void pb_put_probe(struct builder *b, struct json_object *p);
/* The install step config-logs of node n (NULL without monitoring.logs). */
struct step *pb_add_config_logs(struct builder *b, const struct mf_node *n);
/* The steps registry, gitops and monitoring. */
void pb_add_registry(struct builder *b);
void pb_add_gitops(struct builder *b);
void pb_add_monitoring(struct builder *b);
