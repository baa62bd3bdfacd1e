/* SPDX-License-Identifier: MIT */
/*
 * plan.c — the plan container: adding steps, finding them, the node
 * filter. What goes into a plan is plan-build.c; printing is plan-print.c.
 */
#include "plan.h"

#include <stdarg.h>

#include "json-util.h"
#include "plan-internal.h"

static char errbuf[512];

const char *plan_error(void)
{
	return errbuf;
}

int plan_fail(int error, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf[0]) {
		va_start(ap, fmt);
		vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
		va_end(ap);
	}
	return error;
}

void plan_clear_error(void)
{
	errbuf[0] = '\0';
}

struct plan *plan_new(const struct manifest *m, const char *node)
{
	struct plan *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->manifest = m;
	if (node) {
		p->node = strdup(node);
		if (!p->node)
			return plan_free(p);
	}
	return p;
}

struct plan *plan_free(struct plan *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_steps; i++)
		step_done(&p->steps[i]);
	free(p->steps);
	free(p->node);
	free(p);
	return NULL;
}

const struct step *plan_find_step(const struct plan *p, const char *id)
{
	for (size_t i = 0; i < p->n_steps; i++)
		if (streq(p->steps[i].id, id))
			return &p->steps[i];
	return NULL;
}

static int grow(struct plan *p)
{
	struct step *n;
	size_t m;

	if (p->n_steps < p->allocated)
		return 0;
	if (p->n_steps >= PLAN_MAX_STEPS)
		return plan_fail(-E2BIG, "the plan has more than %d steps", PLAN_MAX_STEPS);
	m = p->allocated ? p->allocated * 2 : 64;
	n = reallocarray(p->steps, m, sizeof(*n));
	if (!n)
		return -ENOMEM;
	p->steps = n;
	p->allocated = m;
	return 0;
}

int plan_add(struct plan *p, enum step_phase phase, enum step_kind kind, const char *node,
	     struct json_object *params, const char *title, const char *id_fmt, ...)
{
	_cleanup_json_ struct json_object *owned = params ? params : json_object_new_object();
	struct step s = { .phase = phase, .kind = kind };
	char id[STEP_ID_MAX + 1];
	va_list ap;
	int n, r;

	if (!owned)
		return -ENOMEM;
	va_start(ap, id_fmt);
	n = vsnprintf(id, sizeof(id), id_fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(id))
		return plan_fail(-ENAMETOOLONG, "step id \"%.64s...\" is longer than %d bytes", id, STEP_ID_MAX);
	if (plan_find_step(p, id))
		return plan_fail(-EEXIST, "two steps have the id \"%s\"", id);
	if (strnlen(title, STEP_TITLE_MAX + 1) > STEP_TITLE_MAX)
		return plan_fail(-ENAMETOOLONG, "title of step \"%s\" is too long", id);
	r = grow(p);
	if (r < 0)
		return r;
	s.id = strdup(id);
	s.title = strdup(title);
	s.node = node ? strdup(node) : NULL;
	s.params = TAKE_PTR(owned);
	if (!s.id || !s.title || (node && !s.node) || (r = step_hash_params(&s)) < 0) {
		step_done(&s);
		return r < 0 ? r : -ENOMEM;
	}
	p->steps[p->n_steps] = s;
	return (int)p->n_steps++;
}

int plan_filter(const struct plan *p, bool (*keep)(const struct step *s, void *userdata), void *userdata,
		struct plan **ret)
{
	_cleanup_(plan_freep) struct plan *sub = plan_new(p->manifest, p->node);

	if (!sub)
		return -ENOMEM;
	sub->recover = p->recover;
	for (size_t i = 0; i < p->n_steps; i++) {
		const struct step *s = &p->steps[i];
		struct step *t;
		int r;

		if (!keep(s, userdata))
			continue;
		r = plan_add(sub, s->phase, s->kind, s->node, json_object_get(s->params), s->title, "%s", s->id);
		if (r < 0)
			return r;
		t = &sub->steps[r];
		t->mf_node = s->mf_node;
		t->mf_template = s->mf_template;
		t->vm = s->vm;
		t->has_vm = s->has_vm;
	}
	*ret = TAKE_PTR(sub);
	return 0;
}

static const char *first_node(const struct manifest *m)
{
	for (size_t i = 0; m && i < m->n_nodes; i++)
		if (m->nodes[i].role == MF_ROLE_FIRST)
			return m->nodes[i].name;
	return NULL;
}

bool plan_step_runs_on(const struct plan *p, const struct step *s, const char *node)
{
	if (s->node)
		return streq_ptr(s->node, node);
	if (p->recover)
		return node && streq_ptr(p->node, node);
	return node && streq_ptr(first_node(p->manifest), node);
}

bool plan_has_kind(const struct plan *p, enum step_kind kind)
{
	for (size_t i = 0; p && i < p->n_steps; i++)
		if (p->steps[i].kind == kind)
			return true;
	return false;
}
