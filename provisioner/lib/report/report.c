/* SPDX-License-Identifier: MIT */
/*
 * report.c — the final report; see report.h.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <yaml.h>

#include "fileio.h"
#include "log.h"
#include "parse.h"
#include "plan/journal.h"
#include "plan/json-util.h"
#include "plan/plan.h"
#include "report.h"
#include "util.h"

#define PVE_CONSOLE_PORT 8006      /* the Proxmox VE web console and API (pveproxy) */
#define TECHNITIUM_CONSOLE_PORT 53443 /* Technitium's console over HTTPS (dns/technitium.h) */
#define DASHBOARD_PATH "/dashboard/"  /* Traefik's dashboard below its host */

/* A json-c builder that remembers the first allocation failure, so the
 * document is put together without a check after every call. */
struct rb {
	int err;
};

static struct json_object *rb_keep(struct rb *b, struct json_object *o)
{
	if (!o && b->err >= 0)
		b->err = -ENOMEM;
	return o;
}

static struct json_object *rb_obj(struct rb *b) { return rb_keep(b, json_object_new_object()); }
static struct json_object *rb_arr(struct rb *b) { return rb_keep(b, json_object_new_array()); }

/* o[key] = v (taken); a NULL v (failed, or nothing to say) is JSON null. */
static void rb_put(struct rb *b, struct json_object *o, const char *key, struct json_object *v)
{
	if (o && json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		b->err = b->err < 0 ? b->err : -ENOMEM;
	} else if (!o)
		json_object_put(v);
}

static void rb_str(struct rb *b, struct json_object *o, const char *key, const char *s)
{
	rb_put(b, o, key, s ? rb_keep(b, json_object_new_string(s)) : NULL);
}

static void rb_u64(struct rb *b, struct json_object *o, const char *key, uint64_t n)
{
	rb_put(b, o, key, rb_keep(b, json_object_new_uint64(n)));
}

static void rb_push(struct rb *b, struct json_object *a, struct json_object *v)
{
	if (a && v && json_object_array_add(a, v) == 0)
		return;
	json_object_put(v);
	b->err = b->err < 0 ? b->err : -ENOMEM;
}

static void fmt_ip(uint32_t ip, char buf[static INET_ADDRSTRLEN])
{
	ipv4_format(ip, buf, INET_ADDRSTRLEN);
}

/* ---- web consoles ------------------------------------------------------------ */

static void console(struct rb *b, struct json_object *a, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void console(struct rb *b, struct json_object *a, const char *name, const char *fmt, ...)
{
	struct json_object *c = rb_obj(b);
	char url[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(url, sizeof(url), fmt, ap);
	va_end(ap);
	rb_str(b, c, "name", name);
	rb_str(b, c, "url", url);
	rb_push(b, a, c);
}

static struct json_object *consoles(struct rb *b, const struct report_input *in)
{
	const struct manifest *m = in->m;
	struct json_object *a = rb_arr(b);
	char ip[INET_ADDRSTRLEN], name[128];

	for (size_t i = 0; i < m->n_nodes; i++) {
		fmt_ip(m->nodes[i].ip, ip);
		snprintf(name, sizeof(name), "Proxmox VE %s", m->nodes[i].name);
		console(b, a, name, "https://%s:%d/", ip, PVE_CONSOLE_PORT);
	}
	if (m->edge.present && m->edge.proxmox_host)
		console(b, a, "Proxmox VE (edge, every node)", "https://%s/", m->edge.proxmox_host);
	if (m->dns.present) {
		const char *vms[] = { m->dns.primary, m->dns.secondary };
		const char *what[] = { "primary", "secondary" };

		for (size_t i = 0; i < ELEMENTSOF(vms); i++) {
			struct mf_vm vm;

			if (!vms[i] || manifest_find_vm(m, vms[i], &vm) < 0)
				continue;
			fmt_ip(vm.ip, ip);
			snprintf(name, sizeof(name), "Technitium DNS %s (%s)", what[i], vms[i]);
			console(b, a, name, "https://%s:%d/", ip, TECHNITIUM_CONSOLE_PORT);
		}
		if (m->edge.present && m->edge.dns_host)
			console(b, a, "Technitium DNS (edge)", "https://%s/", m->edge.dns_host);
	}
	if (m->edge.present && m->edge.dashboard_host)
		console(b, a, "Traefik dashboard", "https://%s" DASHBOARD_PATH, m->edge.dashboard_host);
	if (m->gitops.present && m->gitops.host && m->edge.present)
		console(b, a, "Argo CD (edge)", "https://%s/", m->gitops.host);
	if (m->monitoring.enabled && m->monitoring.hosts.grafana && m->edge.present)
		console(b, a, "Grafana (edge)", "https://%s/", m->monitoring.hosts.grafana);
	if (m->monitoring.enabled && m->monitoring.hosts.prometheus && m->edge.present)
		console(b, a, "Prometheus (edge)", "https://%s/", m->monitoring.hosts.prometheus);
	if (m->registry.enabled && m->registry.host && m->k3s.present && m->edge.present)
		console(b, a, "Container registry (edge)", "https://%s/v2/", m->registry.host);
	if (in->k3s_api)
		console(b, a, "Kubernetes API", "%s", in->k3s_api);
	return a;
}

/* ---- credentials: where each lives, never its value --------------------------- */

/* Where a credential lives: a secret of the bundle's, a file, or a
 * Kubernetes Secret (namespace/name) and its key; the others NULL. */
struct cred_where {
	const char *secret, *file, *k8s_secret, *key;
};

static void credential(struct rb *b, struct json_object *a, const char *what, const char *user,
		       struct cred_where w)
{
	struct json_object *c = rb_obj(b);

	rb_str(b, c, "what", what);
	rb_str(b, c, "user", user);
	rb_str(b, c, "secret", w.secret);
	rb_str(b, c, "file", w.file);
	rb_str(b, c, "kubernetes_secret", w.k8s_secret);
	rb_str(b, c, "key", w.key);
	rb_push(b, a, c);
}

static bool secret_declared(const struct manifest *m, const char *name)
{
	for (size_t i = 0; i < m->secrets.n_names; i++)
		if (streq(m->secrets.names[i], name))
			return true;
	return false;
}

static struct json_object *credentials(struct rb *b, const struct report_input *in, const char *kubeconfig)
{
	const struct manifest *m = in->m;
	struct json_object *a = rb_arr(b);

	if (m->proxmox.root_password.name)
		credential(b, a, "Proxmox VE web console and SSH of every node", "root@pam",
			   (struct cred_where){ .secret = m->proxmox.root_password.name });
	if (m->k3s.present && m->k3s.token.name)
		credential(b, a, "K3s join token", NULL, (struct cred_where){ .secret = m->k3s.token.name });
	if (kubeconfig)
		credential(b, a, "Kubernetes cluster administrator", "devopslab", (struct cred_where){ .file = kubeconfig });
	if (m->dns.present && m->dns.admin_password.name)
		credential(b, a, "Technitium DNS web console", "admin",
			   (struct cred_where){ .secret = m->dns.admin_password.name });
	if (m->edge.present && m->edge.dashboard_host && m->edge.dashboard_password.name)
		credential(b, a, "Traefik dashboard (basic auth)", MANIFEST_EDGE_DASHBOARD_USER,
			   (struct cred_where){ .secret = m->edge.dashboard_password.name });
	if (m->gitops.present && m->k3s.present)
		credential(b, a, "Argo CD (its initial admin password)", "admin",
			   (struct cred_where){ .k8s_secret = MANIFEST_GITOPS_NAMESPACE "/argocd-initial-admin-secret",
						.key = "password" });
	if (m->monitoring.enabled && m->k3s.present && m->monitoring.grafana_password.name)
		credential(b, a, "Grafana", MANIFEST_MONITORING_GRAFANA_USER,
			   (struct cred_where){ .secret = m->monitoring.grafana_password.name });
	if (secret_declared(m, MANIFEST_SECRET_CA_CERT))
		credential(b, a, "cluster CA certificate (trust it in browsers)", NULL,
			   (struct cred_where){ .secret = MANIFEST_SECRET_CA_CERT });
	if (secret_declared(m, MANIFEST_SECRET_CA_KEY))
		credential(b, a, "cluster CA private key", NULL, (struct cred_where){ .secret = MANIFEST_SECRET_CA_KEY });
	return a;
}

/* ---- the Ansible inventory ------------------------------------------------------ */

/* Ansible's group names: letters, digits and '_' (others become '_'). */
static void group_name(const char *id, char buf[static 80])
{
	size_t i;

	for (i = 0; i < 79 && id[i]; i++)
		buf[i] = isalnum((unsigned char)id[i]) || id[i] == '_' ? id[i] : '_';
	buf[i] = '\0';
}

static bool in_list(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (streq(list[i], s))
			return true;
	return false;
}

static struct json_object *inventory(struct rb *b, const struct manifest *m)
{
	struct json_object *all = rb_obj(b), *vars = rb_obj(b), *children = rb_obj(b);
	struct json_object *pve = rb_obj(b), *pve_hosts = rb_obj(b), *kube = NULL, *kube_children = NULL;
	char ip[INET_ADDRSTRLEN], g[80];

	rb_str(b, vars, "devopslab_cluster", m->cluster.name);
	rb_str(b, vars, "devopslab_domain", m->cluster.domain);
	for (size_t i = 0; i < m->n_nodes; i++) {
		struct json_object *h = rb_obj(b);

		fmt_ip(m->nodes[i].ip, ip);
		rb_str(b, h, "ansible_host", ip);
		rb_str(b, h, "ansible_user", "root");
		rb_put(b, pve_hosts, m->nodes[i].name, h);
	}
	rb_put(b, pve, "hosts", pve_hosts);
	rb_put(b, children, "proxmox_nodes", pve);
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct mf_vm_group *vg = &m->vms[i];
		struct json_object *grp = rb_obj(b), *hosts = rb_obj(b);

		for (unsigned k = 0; k < vg->count; k++) {
			struct json_object *h;
			struct mf_vm vm;

			if (manifest_vm_expand(vg, k, &vm) < 0)
				continue;
			h = rb_obj(b);
			fmt_ip(vm.ip, ip);
			rb_str(b, h, "ansible_host", ip);
			if (vg->ciuser)
				rb_str(b, h, "ansible_user", vg->ciuser);
			rb_u64(b, h, "proxmox_vmid", vm.vmid);
			rb_str(b, h, "proxmox_node", vm.target_node);
			rb_put(b, hosts, vm.name, h);
		}
		rb_put(b, grp, "hosts", hosts);
		group_name(vg->id, g);
		rb_put(b, children, g, grp);
		/* the seed's playbook runs on kubernetes_nodes: every K3s VM */
		if (m->k3s.present && (in_list(m->k3s.servers, m->k3s.n_servers, vg->id) ||
				       in_list(m->k3s.agents, m->k3s.n_agents, vg->id))) {
			if (!kube) {
				kube = rb_obj(b);
				kube_children = rb_obj(b);
			}
			rb_put(b, kube_children, g, rb_obj(b));
		}
	}
	if (kube) {
		rb_put(b, kube, "children", kube_children);
		rb_put(b, children, "kubernetes_nodes", kube);
	}
	rb_put(b, all, "vars", vars);
	rb_put(b, all, "children", children);
	return all;
}

/* ---- the plan as executed ----------------------------------------------------- */

/* One step: what this run did with it, else what the journal says. */
static void step_state(const struct report_input *in, size_t i, const char **ret_state, const char **ret_status,
		       const struct journal_record **ret_rec, uint64_t *ret_elapsed, bool *ret_timed)
{
	const struct step *s = &in->plan->steps[i];
	const struct journal *j = s->phase == STEP_PHASE_INSTALL && in->install_journal ? in->install_journal
										 : in->journal;
	const struct journal_record *r = j ? journal_find(j, s->id) : NULL;
	enum report_run run = in->run ? in->run[i].run : REPORT_RUN_NONE;

	*ret_rec = r;
	*ret_status = r ? journal_status_to_string(r->status) : NULL;
	*ret_elapsed = r ? r->elapsed_ms : 0;
	*ret_timed = r != NULL;
	switch (run) {
	case REPORT_RUN_APPLIED:
	case REPORT_RUN_FOUND:
		*ret_state = "done";
		*ret_status = run == REPORT_RUN_APPLIED ? "applied" : "found";
		*ret_elapsed = in->run[i].elapsed_ms;
		*ret_timed = true;
		return;
	case REPORT_RUN_FAILED:
		*ret_state = "failed";
		*ret_status = NULL;
		*ret_elapsed = in->run[i].elapsed_ms;
		*ret_timed = true;
		return;
	case REPORT_RUN_EARLIER:
		*ret_state = "done";
		return;
	case REPORT_RUN_NONE:
		break;
	}
	if (in->failed_step && streq(in->failed_step, s->id)) {
		*ret_state = in->outcome == REPORT_FAILED ? "failed" : "not-run";
		*ret_status = NULL;
		*ret_timed = false;
	} else if (!r)
		*ret_state = "pending";
	else
		*ret_state = streq(r->hash, s->params_hash) ? "done" : "changed";
}

static struct json_object *steps(struct rb *b, const struct report_input *in, struct json_object *totals)
{
	struct json_object *a = rb_arr(b);
	uint64_t n = 0, done = 0, applied = 0, pending = 0, elapsed = 0;

	for (size_t i = 0; i < in->plan->n_steps; i++) {
		const struct step *s = &in->plan->steps[i];
		const struct journal_record *r;
		const char *st, *status;
		struct json_object *o = rb_obj(b);
		uint64_t ms;
		bool timed;

		step_state(in, i, &st, &status, &r, &ms, &timed);
		rb_u64(b, o, "index", i + 1);
		rb_str(b, o, "id", s->id);
		rb_str(b, o, "title", s->title);
		rb_str(b, o, "phase", step_phase_to_string(s->phase));
		rb_str(b, o, "state", st);
		rb_str(b, o, "status", status);
		rb_str(b, o, "time", r && !streq(st, "failed") ? r->time : NULL);
		rb_put(b, o, "elapsed_ms", timed ? rb_keep(b, json_object_new_uint64(ms)) : NULL);
		rb_push(b, a, o);
		if (s->phase != STEP_PHASE_FIRSTBOOT)
			continue; /* counted: the run's own phase */
		n++;
		if (streq(st, "done")) {
			done++;
			applied += status && streq(status, "applied");
			elapsed += ms;
		} else
			pending++;
	}
	rb_u64(b, totals, "steps", n);
	rb_u64(b, totals, "done", done);
	rb_u64(b, totals, "applied", applied);
	rb_u64(b, totals, "not_done", pending);
	rb_u64(b, totals, "steps_elapsed_ms", elapsed);
	return a;
}

static const char *const outcome_names[] = {
	[REPORT_COMPLETE] = "complete",
	[REPORT_INCOMPLETE] = "incomplete",
	[REPORT_FAILED] = "failed",
};

int report_build(const struct report_input *in, struct json_object **ret)
{
	const struct manifest *m = in->m;
	struct rb b = {};
	struct json_object *r = rb_obj(&b), *totals = rb_obj(&b), *o;
	char when[RFC3339_MAX], path[PATH_MAX], hex[65];

	if (!in->m || !in->plan || !in->node || !in->dir || (unsigned)in->outcome >= ELEMENTSOF(outcome_names)) {
		json_object_put(r);
		json_object_put(totals);
		return -EINVAL;
	}
	rb_u64(&b, r, "version", REPORT_FORMAT_VERSION);
	rb_str(&b, r, "cluster", m->cluster.name);
	rb_str(&b, r, "domain", m->cluster.domain);
	rb_str(&b, r, "node", in->node);
	rb_str(&b, r, "directory", in->dir);
	fmt_rfc3339(in->started_ms, when);
	rb_str(&b, r, "started", when);
	fmt_rfc3339(in->finished_ms, when);
	rb_str(&b, r, "finished", when);
	rb_u64(&b, r, "elapsed_ms", in->finished_ms > in->started_ms ? in->finished_ms - in->started_ms : 0);
	rb_str(&b, r, "outcome", outcome_names[in->outcome]);
	o = NULL;
	if (in->failed_step) {
		o = rb_obj(&b);
		rb_str(&b, o, "step", in->failed_step);
		rb_str(&b, o, "message", in->error);
	}
	rb_put(&b, r, "stopped_at", o);
	o = NULL;
	if (in->bundle_digest) {
		for (size_t i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", in->bundle_digest[i]);
		o = rb_obj(&b);
		rb_str(&b, o, "sha256sums_sha256", hex);
	}
	rb_put(&b, r, "bundle", o);
	rb_put(&b, r, "consoles", consoles(&b, in));
	o = NULL;
	if (in->kubeconfig) {
		snprintf(path, sizeof(path), "%s/%s", in->dir, REPORT_KUBECONFIG);
		o = rb_obj(&b);
		rb_str(&b, o, "file", path);
		rb_str(&b, o, "api", in->k3s_api);
	}
	rb_put(&b, r, "kubeconfig", o);
	rb_put(&b, r, "credentials", credentials(&b, in, o ? path : NULL));
	o = NULL;
	if (m->dns.present) {
		const char *vms[] = { m->dns.primary, m->dns.secondary };
		struct json_object *servers = rb_arr(&b);
		char ip[INET_ADDRSTRLEN];

		for (size_t i = 0; i < ELEMENTSOF(vms); i++) {
			struct mf_vm vm;

			if (vms[i] && manifest_find_vm(m, vms[i], &vm) >= 0) {
				fmt_ip(vm.ip, ip);
				rb_push(&b, servers, rb_keep(&b, json_object_new_string(ip)));
			}
		}
		o = rb_obj(&b);
		rb_str(&b, o, "zone", m->dns.zone);
		rb_put(&b, o, "dhcp_servers", servers);
	}
	rb_put(&b, r, "dns", o);
	snprintf(path, sizeof(path), "%s/%s", in->dir, REPORT_INVENTORY);
	rb_str(&b, r, "inventory_file", path);
	rb_put(&b, r, "verification", in->verification ? json_object_get(in->verification) : NULL);
	rb_put(&b, r, "steps", steps(&b, in, totals));
	rb_put(&b, r, "totals", totals);
	rb_put(&b, r, "inventory", inventory(&b, m));
	if (b.err < 0) {
		json_object_put(r);
		return b.err;
	}
	*ret = r;
	return 0;
}

/* ---- text ------------------------------------------------------------------ */

static void print_ms(FILE *f, uint64_t ms)
{
	if (ms >= 60000)
		fprintf(f, "%" PRIu64 "m%02" PRIu64 "s", ms / 60000, ms / 1000 % 60);
	else
		fprintf(f, "%" PRIu64 ".%01" PRIu64 "s", ms / 1000, ms / 100 % 10);
}

static uint64_t u64_of(struct json_object *o, const char *key)
{
	uint64_t n = 0;

	(void)json_get_u64(o, key, &n);
	return n;
}

static const char *str_of(struct json_object *o, const char *key)
{
	const char *s = json_get_string(o, key);

	return s ? s : "";
}

void report_print(FILE *f, struct json_object *rep, bool with_steps)
{
	struct json_object *totals = json_get_object(rep, "totals"), *stop = json_get_object(rep, "stopped_at");
	struct json_object *a, *o;
	const char *outcome = str_of(rep, "outcome");

	fprintf(f, "DevOpsLab report: cluster %s (%s), run on %s, finished %s\n", str_of(rep, "cluster"),
		str_of(rep, "domain"), str_of(rep, "node"), str_of(rep, "finished"));
	fprintf(f, "Outcome: %s: %" PRIu64 " of %" PRIu64 " first-boot steps done (%" PRIu64 " changed something) in ",
		streq(outcome, "failed") ? "FAILED" : outcome, u64_of(totals, "done"), u64_of(totals, "steps"),
		u64_of(totals, "applied"));
	print_ms(f, u64_of(rep, "elapsed_ms"));
	fputc('\n', f);
	if (stop)
		fprintf(f, "  %s at %s: %s\n", streq(outcome, "failed") ? "failed" : "stopped", str_of(stop, "step"),
			str_of(stop, "message"));

	fprintf(f, "\nWeb consoles\n");
	a = json_get_array(rep, "consoles");
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		o = json_object_array_get_idx(a, i);
		fprintf(f, "  %-40s %s\n", str_of(o, "name"), str_of(o, "url"));
	}
	fprintf(f, "\nCredentials (never shown: each lives where it says)\n");
	a = json_get_array(rep, "credentials");
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		const char *user = json_get_string(o = json_object_array_get_idx(a, i), "user");
		char who[160];

		snprintf(who, sizeof(who), "%s%s%s%s", str_of(o, "what"), user ? " (user " : "", user ? user : "",
			 user ? ")" : "");
		if (json_get_string(o, "secret"))
			fprintf(f, "  %-58s secret '%s' of the bundle's sealed secrets\n", who, str_of(o, "secret"));
		else if (json_get_string(o, "kubernetes_secret"))
			fprintf(f, "  %-58s Kubernetes Secret %s, key %s (kubeconfig above)\n", who,
				str_of(o, "kubernetes_secret"), str_of(o, "key"));
		else
			fprintf(f, "  %-58s file %s (mode 0600)\n", who, str_of(o, "file"));
	}
	if ((o = json_get_object(rep, "dns"))) {
		fprintf(f, "\nDNS: zone %s; hand these out as the LAN's DNS servers (DHCP option 6):", str_of(o, "zone"));
		a = json_get_array(o, "dhcp_servers");
		for (size_t i = 0; a && i < json_object_array_length(a); i++)
			fprintf(f, " %s", json_object_get_string(json_object_array_get_idx(a, i)));
		fputc('\n', f);
	}
	fprintf(f, "\nAnsible inventory: %s\n", str_of(rep, "inventory_file"));
	if ((o = json_get_object(rep, "bundle")))
		fprintf(f, "Bundle: SHA256SUMS sha256 %s\n", str_of(o, "sha256sums_sha256"));
	else
		fprintf(f, "Bundle: none (a draft manifest ran)\n");
	if ((a = json_get_array(rep, "verification"))) {
		size_t ok = 0, n = json_object_array_length(a);

		for (size_t i = 0; i < n; i++)
			ok += json_object_get_boolean(json_object_object_get(json_object_array_get_idx(a, i), "ok"));
		fprintf(f, "Verification: %zu of %zu checks answered as planned\n", ok, n);
	}
	fprintf(f, "Full report: %s/%s (and %s)\n", str_of(rep, "directory"), REPORT_TEXT, REPORT_JSON);
	if (!with_steps)
		return;
	fprintf(f, "\nThe plan as executed\n");
	a = json_get_array(rep, "steps");
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		o = json_object_array_get_idx(a, i);
		fprintf(f, "%4" PRIu64 ". %-8s %-8s ", u64_of(o, "index"), str_of(o, "state"), str_of(o, "status"));
		if (json_object_object_get(o, "elapsed_ms"))
			print_ms(f, u64_of(o, "elapsed_ms"));
		else
			fputc('-', f);
		fprintf(f, "  %s [%s]\n", str_of(o, "title"), str_of(o, "id"));
	}
}

/* ---- YAML (libyaml's emitter) --------------------------------------------------- */

static int emit(yaml_emitter_t *e, yaml_event_t *ev, int ok)
{
	if (!ok)
		return -ENOMEM;
	return yaml_emitter_emit(e, ev) ? 0 : -EIO;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, bool plain)
{
	yaml_event_t ev;

	return emit(e, &ev, yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain, 1,
							 plain ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE));
}

/* A string YAML would not read as a number, boolean or null may go plain
 * (libyaml still quotes it where the syntax needs). */
static bool plain_string(const char *s)
{
	static const char *const special[] = { "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~" };

	if (!*s || strspn(s, "0123456789.-+eExXoO_:") == strlen(s))
		return false;
	for (size_t i = 0; i < ELEMENTSOF(special); i++)
		if (strcasecmp(s, special[i]) == 0)
			return false;
	return true;
}

/* A json-c value as YAML: objects as mappings, arrays as sequences, strings
 * quoted by libyaml where they need it, numbers and booleans plain. */
static int emit_json(yaml_emitter_t *e, struct json_object *v)
{
	yaml_event_t ev;
	int r;

	switch (json_object_get_type(v)) {
	case json_type_object:
		r = emit(e, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
		json_object_object_foreach(v, key, val) {
			if (r >= 0)
				r = emit_scalar(e, key, plain_string(key));
			if (r >= 0)
				r = emit_json(e, val);
		}
		return r < 0 ? r : emit(e, &ev, yaml_mapping_end_event_initialize(&ev));
	case json_type_array:
		r = emit(e, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
		for (size_t i = 0; r >= 0 && i < json_object_array_length(v); i++)
			r = emit_json(e, json_object_array_get_idx(v, i));
		return r < 0 ? r : emit(e, &ev, yaml_sequence_end_event_initialize(&ev));
	case json_type_string:
		return emit_scalar(e, json_object_get_string(v), plain_string(json_object_get_string(v)));
	case json_type_null:
		return emit_scalar(e, "null", true);
	default:
		return emit_scalar(e, json_object_get_string(v), true);
	}
}

static int yaml_out(void *data, unsigned char *buf, size_t size)
{
	return fwrite(buf, 1, size, data) == size;
}

int report_inventory_yaml(struct json_object *rep, FILE *f)
{
	struct json_object *inv = json_get_object(rep, "inventory"), *doc;
	yaml_emitter_t e;
	yaml_event_t ev;
	int r;

	if (!inv)
		return -EINVAL;
	doc = json_object_new_object();
	if (!doc || json_object_object_add(doc, "all", json_object_get(inv)) < 0) {
		json_object_put(doc);
		return -ENOMEM;
	}
	fprintf(f, "# Ansible inventory of the DevOpsLab cluster %s (devopslab report)\n", str_of(rep, "cluster"));
	if (!yaml_emitter_initialize(&e)) {
		json_object_put(doc);
		return -ENOMEM;
	}
	yaml_emitter_set_output(&e, yaml_out, f);
	yaml_emitter_set_unicode(&e, 1);
	r = emit(&e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	if (r >= 0)
		r = emit(&e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
	if (r >= 0)
		r = emit_json(&e, doc);
	if (r >= 0)
		r = emit(&e, &ev, yaml_document_end_event_initialize(&ev, 1));
	if (r >= 0)
		r = emit(&e, &ev, yaml_stream_end_event_initialize(&ev));
	if (r >= 0 && !yaml_emitter_flush(&e))
		r = -EIO;
	yaml_emitter_delete(&e);
	json_object_put(doc);
	return r;
}

/* ---- files ------------------------------------------------------------------- */

/* dir/name replaced by what fill() writes: a temporary file, fsync, rename. */
static int write_one(const char *dir, const char *name, struct json_object *rep,
		     int (*fill)(struct json_object *rep, FILE *f))
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	r = fill(rep, f);
	if (fclose(f) != 0 && r >= 0)
		r = -ENOMEM;
	if (r >= 0)
		r = write_file_atomic(path, text, len, 0644);
	free(text);
	if (r < 0)
		log_error("cannot write the report file '%s': %s", path, strerror(-r));
	return r;
}

static int fill_json(struct json_object *rep, FILE *f)
{
	fprintf(f, "%s\n", json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
	return 0;
}

static int fill_text(struct json_object *rep, FILE *f)
{
	report_print(f, rep, true);
	return 0;
}

int report_write(const char *dir, struct json_object *rep)
{
	int r = mkdir_p(dir, 0700);

	if (r < 0) {
		log_error("cannot make the report directory '%s': %s", dir, strerror(-r));
		return r;
	}
	r = write_one(dir, REPORT_INVENTORY, rep, report_inventory_yaml);
	if (r >= 0)
		r = write_one(dir, REPORT_TEXT, rep, fill_text);
	/* last: report.json is what `devopslab report` reads */
	if (r >= 0)
		r = write_one(dir, REPORT_JSON, rep, fill_json);
	return r;
}
