/* SPDX-License-Identifier: MIT */
/*
 * plan-apps.c — the plan's part for what the lab runs in K3s beyond K3s
 * itself (plan-builder.h): the system charts of Argo CD and the metrics
 * stack, the lab's UIs at the edge, and the steps registry, gitops and
 * monitoring. docs/plan.md lists their parameters.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "json-util.h"
#include "plan-builder.h"
#include "util.h"

/* Argo CD's chart (gitops), a system chart beside k3s.charts': CRDs
 * installed and kept, its UI served over plain HTTP inside the cluster
 * (the edge terminates TLS), at global.domain when it has a name there;
 * no Dex, no notifications controller: the lab signs in with Argo CD's
 * own admin. */
struct json_object *pb_gitops_chart(struct builder *b)
{
	const struct mf_gitops *g = &b->m->gitops;
	struct json_object *o = pb_obj(b);
	char values[512];

	pb_bfmt(b, values, sizeof(values),
		"crds:\n  install: true\n  keep: true\n%s%s%s"
		"configs:\n  params:\n    server.insecure: true\n"
		"dex:\n  enabled: false\nnotifications:\n  enabled: false\n",
		g->host ? "global:\n  domain: " : "", g->host ? g->host : "", g->host ? "\n" : "");
	pb_put_str(b, o, "name", MANIFEST_GITOPS_CHART);
	pb_put_str(b, o, "namespace", MANIFEST_GITOPS_NAMESPACE);
	pb_put_str(b, o, "asset", g->chart);
	pb_put_str(b, o, "archive", MANIFEST_GITOPS_CHART ".tgz");
	pb_put_str(b, o, "values", values);
	return o;
}

/* Every node's exporter, "IP:9100". */
static struct json_object *exporter_targets(struct builder *b)
{
	struct json_object *t = pb_arr(b);

	for (size_t i = 0; i < b->m->n_nodes; i++) {
		char ip[16], addr[24];

		pb_fmt_ip(b->m->nodes[i].ip, ip);
		pb_bfmt(b, addr, sizeof(addr), "%s:%u", ip, MONITORING_NODE_EXPORTER_PORT);
		pb_push(b, t, pb_str(b, addr));
	}
	return t;
}

/* Traefik's metrics: every endpoint of the Service its chart makes for
 * them (kube-system/traefik-metrics, port metrics) through Kubernetes
 * service discovery: one target per Traefik pod, wherever they run. */
#define TRAEFIK_SCRAPE_JOB                                                                                          \
	"{\"job_name\":\"traefik\",\"kubernetes_sd_configs\":[{\"role\":\"endpoints\",\"namespaces\":{\"names\":"     \
	"[\"kube-system\"]}}],\"relabel_configs\":[{\"source_labels\":[\"__meta_kubernetes_service_name\","             \
	"\"__meta_kubernetes_endpoint_port_name\"],\"regex\":\"traefik-metrics;metrics\",\"action\":\"keep\"}]}"

/* A static scrape job of Prometheus: name, targets, path, scheme. */
static struct json_object *scrape_job(struct builder *b, const char *name, struct json_object *targets,
				      const char *path, const char *scheme)
{
	struct json_object *job = pb_obj(b), *sc = pb_arr(b), *one = pb_obj(b);

	pb_put_str(b, job, "job_name", name);
	pb_put_str(b, job, "metrics_path", path);
	pb_put_str(b, job, "scheme", scheme);
	pb_put(b, one, "targets", targets);
	pb_push(b, sc, one);
	pb_put(b, job, "static_configs", sc);
	return job;
}

/* The monitoring stack's chart (kube-prometheus-stack), a system chart:
 * its objects named monitoring-*, Prometheus keeping monitoring.retention
 * and scraping the nodes' exporters and the manifest's targets besides
 * what the stack finds itself, Grafana's admin from a Secret the
 * monitoring step makes, its dashboards from ConfigMaps; no Alertmanager
 * (nowhere to send alerts in an air-gapped lab). The values are JSON,
 * which YAML reads as it is. */
struct json_object *pb_monitoring_chart(struct builder *b)
{
	const struct manifest *m = b->m;
	const struct mf_monitoring *mo = &m->monitoring;
	struct json_object *o = pb_obj(b), *v = pb_obj(b), *prom = pb_obj(b), *spec = pb_obj(b), *jobs = pb_arr(b), *graf = pb_obj(b),
			   *admin = pb_obj(b), *sidecar = pb_obj(b), *dash = pb_obj(b), *off = pb_obj(b);
	struct json_object *traefik = json_tokener_parse(TRAEFIK_SCRAPE_JOB);

	pb_push(b, jobs, scrape_job(b, MANIFEST_MONITORING_HOSTS_JOB, exporter_targets(b), "/metrics", "http"));
	pb_push(b, jobs, traefik);
	for (size_t i = 0; i < mo->n_scrape_targets; i++) {
		const struct mf_scrape_target *t = &mo->scrape_targets[i];
		struct json_object *targets = pb_arr(b);

		for (size_t j = 0; j < t->n_targets; j++)
			pb_push(b, targets, pb_str(b, t->targets[j]));
		pb_push(b, jobs, scrape_job(b, t->name, targets, t->metrics_path,
					    t->scheme == MF_SCRAPE_HTTPS ? "https" : "http"));
	}
	pb_put_str(b, spec, "retention", mo->retention);
	pb_put(b, spec, "additionalScrapeConfigs", jobs);
	pb_put(b, prom, "prometheusSpec", spec);
	pb_put_str(b, admin, "existingSecret", MANIFEST_MONITORING_GRAFANA_SECRET);
	pb_put_str(b, admin, "userKey", "admin-user");
	pb_put_str(b, admin, "passwordKey", "admin-password");
	pb_put(b, graf, "admin", admin);
	pb_put_bool(b, dash, "enabled", true);
	pb_put_str(b, dash, "label", "grafana_dashboard");
	pb_put_str(b, dash, "labelValue", "1");
	pb_put(b, sidecar, "dashboards", dash);
	if (mo->logs.enabled) {
		/* Grafana loads the log store's data source, which the
		 * monitoring step writes, from a labelled ConfigMap */
		struct json_object *ds = pb_obj(b);

		pb_put_bool(b, ds, "enabled", true);
		pb_put_str(b, ds, "label", "grafana_datasource");
		pb_put_str(b, ds, "labelValue", "1");
		pb_put(b, sidecar, "datasources", ds);
	}
	pb_put(b, graf, "sidecar", sidecar);
	pb_put_str(b, v, "fullnameOverride", MANIFEST_MONITORING_CHART);
	pb_put_bool(b, off, "enabled", false);
	pb_put(b, v, "alertmanager", off);
	pb_put(b, v, "prometheus", prom);
	pb_put(b, v, "grafana", graf);
	pb_put_str(b, o, "name", MANIFEST_MONITORING_CHART);
	pb_put_str(b, o, "namespace", MANIFEST_MONITORING_NAMESPACE);
	pb_put_str(b, o, "asset", mo->chart);
	pb_put_str(b, o, "archive", MANIFEST_MONITORING_CHART ".tgz");
	pb_put_str(b, o, "values",
		   v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL);
	json_object_put(v);
	return o;
}

/* The agent's extra jobs (promtail's config.snippets.extraScrapeConfigs):
 * every K3s VM's journal, and the syslog receiver the nodes send theirs
 * to; the Kubernetes pods (Traefik's access log among them) are the
 * chart's own job. */
#define LOGS_SCRAPE_CONFIGS                                                                  \
	"- job_name: journal\n"                                                              \
	"  journal:\n    path: /var/log/journal\n    max_age: 12h\n"                        \
	"    labels:\n      job: systemd-journal\n"                                         \
	"  relabel_configs:\n"                                                               \
	"    - {source_labels: ['__journal__hostname'], target_label: host}\n"               \
	"    - {source_labels: ['__journal__systemd_unit'], target_label: unit}\n"           \
	"- job_name: syslog\n"                                                               \
	"  syslog:\n    listen_address: 0.0.0.0:1514\n"                                      \
	"    labels:\n      job: syslog\n"                                                  \
	"  relabel_configs:\n"                                                               \
	"    - {source_labels: ['__syslog_message_hostname'], target_label: host}\n"         \
	"    - {source_labels: ['__syslog_message_app_name'], target_label: app}\n"

/* The log store's chart (monitoring.logs), laid out as Grafana's
 * loki-stack: Loki with the manifest's retention, Promtail on every K3s
 * VM shipping the pods' logs, the VM's journal and what the nodes send to
 * its syslog receiver (a NodePort on every K3s VM); no Grafana of its own
 * (the monitoring chart's reads it: its data source is the monitoring
 * step's). */
struct json_object *pb_logs_chart(struct builder *b)
{
	const struct mf_monitoring *mo = &b->m->monitoring;
	struct json_object *o = pb_obj(b), *v;
	char values[2048], url[96];

	snprintf(url, sizeof(url), "http://%s:%d/loki/api/v1/push", MANIFEST_LOGS_LOKI, MANIFEST_LOGS_LOKI_PORT);
	pb_bfmt(b, values, sizeof(values),
		"{\"loki\":{\"enabled\":true,\"fullnameOverride\":\"%s\",\"isDefault\":false,"
		"\"config\":{\"limits_config\":{\"retention_period\":\"%s\"},"
		"\"compactor\":{\"retention_enabled\":true}}},"
		"\"promtail\":{\"enabled\":true,\"fullnameOverride\":\"%s-promtail\","
		"\"config\":{\"clients\":[{\"url\":\"%s\"}],\"snippets\":{}},"
		"\"extraPorts\":{\"syslog\":{\"name\":\"tcp-syslog\",\"containerPort\":1514,\"protocol\":\"TCP\","
		"\"service\":{\"type\":\"NodePort\",\"port\":1514,\"nodePort\":%d}}},"
		"\"extraVolumes\":[{\"name\":\"journal\",\"hostPath\":{\"path\":\"/var/log/journal\"}},"
		"{\"name\":\"machine-id\",\"hostPath\":{\"path\":\"/etc/machine-id\"}}],"
		"\"extraVolumeMounts\":[{\"name\":\"journal\",\"mountPath\":\"/var/log/journal\",\"readOnly\":true},"
		"{\"name\":\"machine-id\",\"mountPath\":\"/etc/machine-id\",\"readOnly\":true}]},"
		"\"grafana\":{\"enabled\":false,\"sidecar\":{\"datasources\":{\"enabled\":false}}}}",
		MANIFEST_LOGS_LOKI, mo->logs.retention ? mo->logs.retention : MANIFEST_LOGS_RETENTION, MANIFEST_LOGS_CHART,
		url, MANIFEST_LOGS_SYSLOG_PORT);
	v = json_tokener_parse(values);
	if (!v && b->error >= 0)
		b->error = -ENOMEM;
	pb_put_str(b, json_get_object(json_get_object(json_get_object(v, "promtail"), "config"), "snippets"),
		   "extraScrapeConfigs", LOGS_SCRAPE_CONFIGS);
	pb_put_str(b, o, "name", MANIFEST_LOGS_CHART);
	pb_put_str(b, o, "namespace", MANIFEST_MONITORING_NAMESPACE);
	pb_put_str(b, o, "asset", mo->logs.chart);
	pb_put_str(b, o, "archive", MANIFEST_LOGS_CHART ".tgz");
	pb_put_str(b, o, "values",
		   v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL);
	json_object_put(v);
	return o;
}

/* One source of logs the monitoring step and the verification wait for:
 * a name and the LogQL stream selector its lines carry. */
static void log_source(struct builder *b, struct json_object *a, const char *name, const char *selector)
{
	struct json_object *q = pb_obj(b);

	pb_put_str(b, q, "name", name);
	pb_put_str(b, q, "selector", selector);
	pb_push(b, a, q);
}

/* Loki's Service and every source of logs the plan makes: each node's
 * syslog (its journal, the provisioner's runs and install log among it),
 * each K3s VM's journal, Traefik's access log (its pods' output). */
void pb_put_logs(struct builder *b, struct json_object *p)
{
	const struct manifest *m = b->m;
	struct json_object *l = pb_obj(b), *src = pb_arr(b);
	char name[128], sel[256];

	pb_put_str(b, l, "service", MANIFEST_LOGS_LOKI);
	pb_put_u64(b, l, "port", MANIFEST_LOGS_LOKI_PORT);
	for (size_t i = 0; i < m->n_nodes; i++) {
		pb_bfmt(b, name, sizeof(name), "node %s", m->nodes[i].name);
		pb_bfmt(b, sel, sizeof(sel), "{job=\"syslog\",host=\"%s\"}", m->nodes[i].name);
		log_source(b, src, name, sel);
	}
	for (size_t i = 0; i < b->plan->n_steps; i++) {
		const struct step *s = &b->plan->steps[i];

		if (s->kind != STEP_K3S_SERVER_INIT && s->kind != STEP_K3S_SERVER_JOIN && s->kind != STEP_K3S_AGENT)
			continue;
		pb_bfmt(b, name, sizeof(name), "journal of %s", s->vm.name);
		pb_bfmt(b, sel, sizeof(sel), "{job=\"systemd-journal\",host=\"%s\"}", s->vm.name);
		log_source(b, src, name, sel);
	}
	if (m->edge.present)
		log_source(b, src, "Traefik's access log", "{namespace=\"kube-system\",container=\"traefik\"}");
	pb_put(b, l, "sources", src);
	pb_put(b, p, "logs", l);
}

/* The lab's own web UIs in K3s behind the edge: a name, its host, and
 * the Service (namespace, name, port) the chart that makes it names. */
struct json_object *pb_edge_apps(struct builder *b)
{
	const struct mf_gitops *g = &b->m->gitops;
	struct json_object *a = pb_arr(b), *q;

	if (b->m->monitoring.enabled && b->m->edge.present) {
		const char *hosts[] = { b->m->monitoring.hosts.grafana, b->m->monitoring.hosts.prometheus };
		const char *names[] = { "grafana", "prometheus" };
		const unsigned ports[] = { 80, 9090 };

		for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
			char svc[64];

			if (!hosts[i])
				continue;
			q = pb_obj(b);
			pb_bfmt(b, svc, sizeof(svc), MANIFEST_MONITORING_CHART "-%s", names[i]);
			pb_put_str(b, q, "name", names[i]);
			pb_put_str(b, q, "host", hosts[i]);
			pb_put_str(b, q, "namespace", MANIFEST_MONITORING_NAMESPACE);
			pb_put_str(b, q, "service", svc);
			pb_put_u64(b, q, "port", ports[i]);
			pb_push(b, a, q);
		}
	}
	if (b->m->registry.enabled && b->m->registry.host && b->m->k3s.present) {
		q = pb_obj(b);
		pb_put_str(b, q, "name", "registry");
		pb_put_str(b, q, "host", b->m->registry.host);
		pb_put_str(b, q, "namespace", MANIFEST_REGISTRY_NAMESPACE);
		pb_put_str(b, q, "service", MANIFEST_REGISTRY_NAME);
		pb_put_u64(b, q, "port", MANIFEST_REGISTRY_PORT);
		pb_push(b, a, q);
	}
	if (g->present && g->host) {
		q = pb_obj(b);
		pb_put_str(b, q, "name", "argocd");
		pb_put_str(b, q, "host", g->host);
		pb_put_str(b, q, "namespace", MANIFEST_GITOPS_NAMESPACE);
		pb_put_str(b, q, "service", "argocd-server"); /* the chart's (nameOverride argocd), plain HTTP */
		pb_put_u64(b, q, "port", 80);
		pb_push(b, a, q);
	}
	return a;
}

/* The lab's registry (docs/registry.md): its objects' shape, every K3s
 * VM (with its K3s unit) that pulls through it, and the archives the
 * first server pushes into it. */
void pb_add_registry(struct builder *b)
{
	const struct manifest *m = b->m;
	const struct mf_registry *rg = &m->registry;
	struct json_object *p, *vms, *seeds, *q;
	const char *seeder = NULL;

	if (!rg->enabled || !m->k3s.present || !m->edge.present)
		return;
	vms = pb_arr(b);
	seeds = pb_arr(b);
	for (size_t i = 0; i < b->plan->n_steps; i++) {
		const struct step *s = &b->plan->steps[i];

		if (s->kind != STEP_K3S_SERVER_INIT && s->kind != STEP_K3S_SERVER_JOIN && s->kind != STEP_K3S_AGENT)
			continue;
		if (s->kind == STEP_K3S_SERVER_INIT)
			seeder = s->vm.name;
		q = pb_obj(b);
		pb_put_str(b, q, "vm", s->vm.name);
		pb_put_str(b, q, "unit", s->kind == STEP_K3S_AGENT ? "k3s-agent" : "k3s");
		pb_push(b, vms, q);
	}
	for (size_t i = 0; i < rg->n_seed; i++) {
		const struct mf_asset *a = manifest_find_asset(m, rg->seed[i]);
		const char *slash = a && a->file ? strrchr(a->file, '/') : NULL;
		char path[320];

		if (!a || !a->file)
			continue;
		pb_bfmt(b, path, sizeof(path), MANIFEST_REGISTRY_SEED_DIR "/%s", slash ? slash + 1 : a->file);
		q = pb_obj(b);
		pb_put_str(b, q, "asset", rg->seed[i]);
		pb_put_str(b, q, "path", path);
		pb_push(b, seeds, q);
	}
	p = pb_obj(b);
	if (m->dns.present) {
		/* the nodes find registry.host through the lab's DNS servers */
		struct json_object *dns = pb_obj(b), *servers = pb_arr(b);
		const char *names[] = { m->dns.primary, m->dns.secondary };

		for (size_t i = 0; i < ELEMENTSOF(names); i++) {
			struct mf_vm vm;
			char ip[16];

			if (!names[i] || pb_find_vm(b, names[i], &vm) < 0)
				continue;
			pb_fmt_ip(vm.ip, ip);
			pb_push(b, servers, pb_str(b, ip));
		}
		pb_put_str(b, dns, "zone", m->dns.zone);
		pb_put(b, dns, "servers", servers);
		pb_put(b, p, "dns", dns);
	}
	pb_put_str(b, p, "namespace", MANIFEST_REGISTRY_NAMESPACE);
	pb_put_str(b, p, "name", MANIFEST_REGISTRY_NAME);
	pb_put_u64(b, p, "port", MANIFEST_REGISTRY_PORT);
	pb_put_str(b, p, "host", rg->host);
	pb_put_str(b, p, "image", rg->ref);
	pb_put_u64(b, p, "size", rg->size);
	/* who signs the edge's certificate, which the nodes must trust */
	pb_put_str(b, p, "trust", m->edge.cert == MF_CERT_ACME_DNS01 ? "acme" : "cluster-ca");
	pb_put(b, p, "vms", vms);
	pb_put_str(b, p, "seed_vm", seeder);
	pb_put(b, p, "seed", seeds);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_REGISTRY, NULL, p, "Running the lab's container registry", "cluster/registry");
}

/* The root Application Argo CD keeps the cluster in step with, and its
 * repository's Secret: credentials by secret name only. */
void pb_add_gitops(struct builder *b)
{
	const struct mf_gitops *g = &b->m->gitops;
	struct json_object *p, *cred;

	if (!g->present || !b->m->k3s.present)
		return;
	p = pb_obj(b);
	pb_put_str(b, p, "namespace", MANIFEST_GITOPS_NAMESPACE);
	pb_put_str(b, p, "application", MANIFEST_GITOPS_APPLICATION);
	pb_put_str(b, p, "repo", g->repo);
	pb_put_str(b, p, "revision", g->revision);
	pb_put_str(b, p, "path", g->path);
	pb_put_str(b, p, "destination_namespace", "default");
	if (g->credentials.password.name || g->credentials.ssh_key.name) {
		cred = pb_obj(b);
		pb_put_str(b, cred, "username", g->credentials.username);
		pb_put_secret(b, cred, "password", &g->credentials.password);
		pb_put_secret(b, cred, "ssh_key", &g->credentials.ssh_key);
		pb_put(b, p, "credentials", cred);
	} else
		pb_put(b, p, "credentials", NULL);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_GITOPS, NULL, p, "Handing the cluster to Argo CD", "cluster/gitops/root");
}

/* A service of the monitoring stack (fullnameOverride monitoring). */
static struct json_object *stack_service(struct builder *b, const char *name, unsigned port)
{
	struct json_object *o = pb_obj(b);

	pb_put_str(b, o, "service", name);
	pb_put_u64(b, o, "port", port);
	return o;
}

/* Where Prometheus answers and the static scrape jobs whose targets
 * must be up (the nodes' exporters, then the manifest's): the monitoring
 * step's and the verification's. */
void pb_put_probe(struct builder *b, struct json_object *p)
{
	const struct mf_monitoring *mo = &b->m->monitoring;
	struct json_object *jobs = pb_arr(b), *job;

	pb_put_str(b, p, "namespace", MANIFEST_MONITORING_NAMESPACE);
	pb_put(b, p, "prometheus", stack_service(b, MANIFEST_MONITORING_CHART "-prometheus", 9090));
	job = pb_obj(b);
	pb_put_str(b, job, "name", MANIFEST_MONITORING_HOSTS_JOB);
	pb_put(b, job, "targets", exporter_targets(b));
	pb_push(b, jobs, job);
	for (size_t i = 0; i < mo->n_scrape_targets; i++) {
		job = pb_obj(b);
		pb_put_str(b, job, "name", mo->scrape_targets[i].name);
		pb_put_strv(b, job, "targets", mo->scrape_targets[i].targets, mo->scrape_targets[i].n_targets);
		pb_push(b, jobs, job);
	}
	pb_put(b, p, "jobs", jobs);
}

/* Grafana's admin and dashboards, and the targets up. */
void pb_add_monitoring(struct builder *b)
{
	const struct mf_monitoring *mo = &b->m->monitoring;
	struct json_object *p, *dash;

	if (!mo->enabled || !b->m->k3s.present)
		return;
	p = pb_obj(b);
	pb_put_probe(b, p);
	pb_put_str(b, p, "grafana_user", MANIFEST_MONITORING_GRAFANA_USER);
	pb_put_secret(b, p, "grafana_password", &mo->grafana_password);
	pb_put(b, p, "grafana", stack_service(b, MANIFEST_MONITORING_CHART "-grafana", 80));
	dash = pb_arr(b);
	pb_push(b, dash, pb_str(b, "hosts"));
	pb_push(b, dash, pb_str(b, "k3s"));
	pb_push(b, dash, pb_str(b, "traefik"));
	pb_put(b, p, "dashboards", dash);
	if (mo->logs.enabled)
		pb_put_logs(b, p);
	pb_add(b, STEP_PHASE_FIRSTBOOT, STEP_MONITORING, NULL, p, "Checking the lab's metrics", "cluster/monitoring");
}

/* The node's logs to the log store (monitoring.logs): rsyslog forwards
 * them to the agent's syslog receiver, the NodePort on K3s's virtual
 * address (else the first server's). Nothing without logs. */
struct step *pb_add_config_logs(struct builder *b, const struct mf_node *n)
{
	const struct manifest *m = b->m;
	const struct mf_vm_group *g;
	struct json_object *p;
	struct mf_vm first;
	uint32_t ip = m->k3s.api_vip;
	char addr[16];

	if (!m->monitoring.enabled || !m->monitoring.logs.enabled || !m->k3s.present)
		return NULL;
	if (!ip) {
		g = m->k3s.n_servers ? manifest_find_vm_group(m, m->k3s.servers[0]) : NULL;
		if (!g || pb_expand(b, g, 0, &first) < 0)
			return NULL;
		ip = first.ip;
	}
	pb_fmt_ip(ip, addr);
	p = pb_obj(b);
	pb_put_str(b, p, "receiver", addr);
	pb_put_u64(b, p, "port", MANIFEST_LOGS_SYSLOG_PORT);
	pb_put_str(b, p, "install_log", MANIFEST_LOGS_INSTALL_LOG);
	return pb_add(b, STEP_PHASE_INSTALL, STEP_CONFIG_LOGS, n->name, p, "Sending the node's logs to the log store",
		      "node/%s/config/logs", n->name);
}
