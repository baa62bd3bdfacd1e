/* SPDX-License-Identifier: MIT */
/*
 * plan-print.c — the plan as text (for people) and as one JSON document.
 *
 * Both outputs are deterministic for a given manifest (tests/plan/ holds
 * golden copies): steps in plan order, parameters in insertion order.
 * Text conventions: "-" is an unset value (the default applies), sizes in
 * bytes are followed by a binary-unit rendering, secrets show as
 * <secret NAME> (their values are never in a plan).
 */
#include "plan.h"

#include <inttypes.h>

#include "json-util.h"
#include "plan-internal.h"

static const char *cluster_name(const struct plan *p)
{
	return p->manifest && p->manifest->cluster.name ? p->manifest->cluster.name : "?";
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && streq(s + n - k, suffix);
}

/* Sizes in bytes: under keys ending in "_bytes", and every member of an
 * object under "bytes" or "..._bytes" (storage: bytes per node). */
static bool is_size_key(const char *key)
{
	return key && (streq(key, "bytes") || ends_with(key, "_bytes"));
}

/* Control characters never reach the terminal raw. */
static void put_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void put_size(FILE *f, uint64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	uint64_t div = 1024;
	size_t u = 0;

	fprintf(f, "%" PRIu64, n);
	if (n < 1024)
		return;
	while (u + 1 < ELEMENTSOF(units) && n / div >= 1024) {
		div *= 1024;
		u++;
	}
	if (n % div == 0)
		fprintf(f, " (%" PRIu64 " %s)", n / div, units[u]);
	else
		fprintf(f, " (%.1f %s)", (double)n / (double)div, units[u]);
}

static bool is_secret_ref(struct json_object *v)
{
	return json_object_is_type(v, json_type_object) && json_object_object_length(v) == 1 &&
	       json_get_string(v, "secret");
}

static bool is_scalar(struct json_object *v)
{
	return !v || is_secret_ref(v) ||
	       (!json_object_is_type(v, json_type_object) && !json_object_is_type(v, json_type_array));
}

static void put_scalar(FILE *f, const char *key, struct json_object *v)
{
	if (!v) {
		fputc('-', f);
		return;
	}
	if (is_secret_ref(v)) {
		fputs("<secret ", f);
		put_text(f, json_get_string(v, "secret"));
		fputc('>', f);
		return;
	}
	switch (json_object_get_type(v)) {
	case json_type_string:
		put_text(f, json_object_get_string(v));
		break;
	case json_type_int:
		if (is_size_key(key))
			put_size(f, (uint64_t)json_object_get_int64(v));
		else
			fprintf(f, "%" PRId64, json_object_get_int64(v));
		break;
	default: /* bool, double, or a nested value inside a one-line element */
		put_text(f, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		break;
	}
}

/* An array element on one line: "k: v, k: v" for objects. */
static void put_inline(FILE *f, struct json_object *v)
{
	bool first = true;

	if (is_scalar(v)) {
		put_scalar(f, NULL, v);
		return;
	}
	if (!json_object_is_type(v, json_type_object)) {
		put_scalar(f, NULL, v);
		return;
	}
	json_object_object_foreach(v, key, val)
	{
		fprintf(f, "%s%s: ", first ? "" : ", ", key);
		put_scalar(f, key, val);
		first = false;
	}
}

static bool all_scalars(struct json_object *a)
{
	for (size_t i = 0; i < json_object_array_length(a); i++)
		if (!is_scalar(json_object_array_get_idx(a, i)))
			return false;
	return true;
}

static void put_members(FILE *f, struct json_object *o, int indent, bool sizes)
{
	json_object_object_foreach(o, key, val)
	{
		size_t n;

		fprintf(f, "%*s%s:", indent, "", key);
		if (is_scalar(val)) {
			fputc(' ', f);
			put_scalar(f, sizes ? "bytes" : key, val);
			fputc('\n', f);
		} else if (json_object_is_type(val, json_type_object)) {
			fputc('\n', f);
			put_members(f, val, indent + 2, is_size_key(key));
		} else if ((n = json_object_array_length(val)) == 0) {
			fputs(" []\n", f);
		} else if (all_scalars(val)) {
			for (size_t i = 0; i < n; i++) {
				fputs(i ? ", " : " ", f);
				put_scalar(f, key, json_object_array_get_idx(val, i));
			}
			fputc('\n', f);
		} else {
			fputc('\n', f);
			for (size_t i = 0; i < n; i++) {
				fprintf(f, "%*s- ", indent + 2, "");
				put_inline(f, json_object_array_get_idx(val, i));
				fputc('\n', f);
			}
		}
	}
}

static const char *first_node_name(const struct plan *p)
{
	if (p->recover && p->node)
		return p->node;
	for (size_t i = 0; p->manifest && i < p->manifest->n_nodes; i++)
		if (p->manifest->nodes[i].role == MF_ROLE_FIRST)
			return p->manifest->nodes[i].name;
	return "the first node";
}

static void put_group_header(FILE *f, const struct plan *p, const struct step *s)
{
	fprintf(f, "\n%s ", step_phase_to_string(s->phase));
	if (s->node)
		fprintf(f, "on %s\n", s->node);
	else
		fprintf(f, "cluster-wide (run by %s)\n", first_node_name(p));
}

int plan_print_text(FILE *f, const struct plan *p)
{
	const struct step *prev = NULL;

	if (p->recover)
		fprintf(f, "Recovery plan for node %s of cluster %s: %zu steps\n"
			   "The node is reinstalled as on its first install; its first boot rejoins it to the\n"
			   "cluster and runs the cluster-wide steps itself.\n"
			   "Steps marked \"recover:\" bring back what lived on it; the others only check that\n"
			   "the rest of the lab is as it was (each step changes nothing that is already right).\n",
			p->node, cluster_name(p), p->n_steps);
	else {
		fprintf(f, "Plan for cluster %s", cluster_name(p));
		if (p->node)
			fprintf(f, ", node %s", p->node);
		fprintf(f, ": %zu steps\n", p->n_steps);
	}
	for (size_t i = 0; i < p->n_steps; i++) {
		const struct step *s = &p->steps[i];
		char note[512];

		if (!prev || prev->phase != s->phase || !streq_ptr(prev->node, s->node))
			put_group_header(f, p, s);
		fprintf(f, "%4zu. %s\n", i + 1, s->title);
		if (plan_recovery_note(p, s, note, sizeof(note)))
			fprintf(f, "      recover: %s\n", note);
		fprintf(f, "      id: %s (%s)\n", s->id, step_kind_to_string(s->kind));
		put_members(f, s->params, 6, false);
		prev = s;
	}
	if (fflush(f) != 0 || ferror(f))
		return plan_fail(negative_errno(), "cannot write the plan: %m");
	return 0;
}

static int step_to_json(const struct plan *p, const struct step *s, size_t index, struct json_object **ret)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	char note[512];
	int r;

	if (!o)
		return -ENOMEM;
	if ((r = json_add_u64(o, "index", index)) < 0 || (r = json_add_string(o, "id", s->id)) < 0 ||
	    (r = json_add_string(o, "phase", step_phase_to_string(s->phase))) < 0 ||
	    (r = json_add_string(o, "node", s->node)) < 0 ||
	    (r = json_add_string(o, "kind", step_kind_to_string(s->kind))) < 0 ||
	    (r = json_add_string(o, "title", s->title)) < 0 ||
	    (r = json_add(o, "params", json_object_get(s->params))) < 0 ||
	    (r = json_add_string(o, "params_hash", s->params_hash)) < 0)
		return r;
	if (p->recover && (r = json_add_string(o, "recover", plan_recovery_note(p, s, note, sizeof(note)))) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

int plan_to_json(const struct plan *p, struct json_object **ret)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	struct json_object *steps = json_object_new_array();
	int r;

	if (!o || !steps) {
		json_object_put(steps);
		return -ENOMEM;
	}
	if ((r = json_add_string(o, "cluster", cluster_name(p))) < 0 || (r = json_add_string(o, "node", p->node)) < 0 ||
	    (r = json_add_u64(o, "n_steps", p->n_steps)) < 0 || (r = json_add(o, "steps", steps)) < 0 ||
	    (p->recover && (r = json_add(o, "recover", json_object_new_boolean(true))) < 0))
		return r;
	for (size_t i = 0; i < p->n_steps; i++) {
		struct json_object *s = NULL;

		r = step_to_json(p, &p->steps[i], i + 1, &s);
		if (r < 0 || (r = json_array_add(steps, s)) < 0)
			return r;
	}
	*ret = TAKE_PTR(o);
	return 0;
}
