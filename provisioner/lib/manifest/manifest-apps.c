/* SPDX-License-Identifier: MIT */
/*
 * manifest-apps.c — the checks and defaults of what the lab runs in K3s
 * beyond K3s itself: gitops (Argo CD), monitoring (the metrics stack and
 * the log store) and registry (docs/manifest.md); the load runs
 * mf_check_apps() after manifest_check(), with its helpers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "manifest-internal.h"
#include "manifest.h"
#include "util.h"

#define P(buf, ...) mf_pathf(buf, sizeof(buf), __VA_ARGS__)

/* A list of asset names (image tarballs): each exists, each once. */
static void check_asset_list(struct mf_ctx *c, const struct manifest *m, char *const *v, size_t n, const char *key)
{
	char p[MF_PATH_MAX];

	for (size_t i = 0; i < n; i++) {
		if (!v[i])
			continue;
		mf_check_asset_ref(c, m, v[i], P(p, "%s[%zu]", key, i));
		for (size_t j = 0; j < i; j++)
			if (streq_ptr(v[i], v[j])) {
				mf_error_at(c, p, "asset '%s' is %s[%zu] already", v[i], key, j);
				break;
			}
	}
}

/* A UI at the edge (gitops.host, monitoring.hosts.*, registry.host):
 * Traefik routes the name and the lab's DNS answers for it, so it needs
 * both sections; check_edge_hosts() applies edge.dashboard_host's rules. */
static void check_app_host(struct mf_ctx *c, const struct manifest *m, const char *host, const char *key)
{
	const char *need = "a dns section";

	if (!host || (m->edge.present && m->dns.present))
		return;
	if (!m->edge.present)
		need = m->dns.present ? "an edge section" : "an edge and a dns section";
	mf_error_at(c, key, "'%s' is served by the edge under the lab's DNS zone: it needs %s", host, need);
}

/* A system chart's HelmChart sits beside k3s.charts': none of those may
 * take its name. */
static void check_system_chart(struct mf_ctx *c, const struct manifest *m, const char *name, const char *what)
{
	char p[MF_PATH_MAX];

	for (size_t i = 0; i < m->k3s.n_charts; i++)
		if (streq_ptr(m->k3s.charts[i].name, name))
			mf_error_at(c, P(p, "k3s.charts[%zu].name", i),
				    "'%s' is the name of %s: give this chart another name", name, what);
}

static bool git_url_ssh(enum mf_git_url k)
{
	return k == MF_GIT_SSH || k == MF_GIT_SCP;
}

/* Credentials that fit the URL: a password or token over http(s), a
 * private key over SSH; a repository that is not public needs them. */
static int check_gitops_credentials(struct mf_ctx *c, struct manifest *m)
{
	struct mf_gitops *g = &m->gitops;
	bool ssh = git_url_ssh(g->repo_kind);
	const char *need = ssh ? "ssh_key" : "password";
	bool have = (ssh ? g->credentials.ssh_key.name : g->credentials.password.name) != NULL;
	char p[MF_PATH_MAX];

	if (g->credentials.password.name)
		mf_check_secret(c, m, &g->credentials.password, "gitops.credentials.password");
	if (g->credentials.ssh_key.name)
		mf_check_secret(c, m, &g->credentials.ssh_key, "gitops.credentials.ssh_key");
	if (!g->repo)
		return 0; /* missing, or not a URL: reported */
	if (ssh && g->credentials.password.name)
		mf_error_at(c, "gitops.credentials.password",
			    "is for an https:// or http:// repository; '%s' is reached over SSH: give "
			    "credentials.ssh_key",
			    g->repo);
	if (ssh && g->credentials.username)
		mf_error_at(c, "gitops.credentials.username",
			    "is for an https:// or http:// repository; over SSH the user is part of the URL ('%s')",
			    g->repo);
	if (!ssh && g->credentials.ssh_key.name)
		mf_error_at(c, "gitops.credentials.ssh_key",
			    "is for an ssh:// or USER@HOST:PATH repository; '%s' is reached over HTTP(S): give "
			    "credentials.password",
			    g->repo);
	if (!ssh && g->credentials.username && !g->credentials.password.name &&
	    !mf_failed(c, "gitops.credentials.password"))
		mf_error_at(c, "gitops.credentials.username", "is only used with gitops.credentials.password");
	if (!g->public && !have && !mf_failed(c, "gitops.public") && !mf_failed(c, P(p, "gitops.credentials.%s", need)))
		mf_error_whole(c, "gitops.credentials",
			       "the repository '%s' is private (gitops.public is not true): it needs credentials.%s",
			       g->repo, need);
	if (!ssh && g->credentials.password.name)
		return mf_set_default(&g->credentials.username, MANIFEST_GITOPS_USERNAME);
	return 0;
}

static int check_gitops(struct mf_ctx *c, struct manifest *m)
{
	struct mf_gitops *g = &m->gitops;

	if (!g->present)
		return 0;
	if (!m->k3s.present)
		mf_error_whole(c, "gitops", "Argo CD runs in K3s: gitops needs a k3s section");
	mf_check_asset_ref(c, m, g->chart, "gitops.chart");
	check_asset_list(c, m, g->images, g->n_images, "gitops.images");
	check_system_chart(c, m, MANIFEST_GITOPS_CHART, "Argo CD's chart (gitops)");
	check_app_host(c, m, g->host, "gitops.host");
	if (mf_set_default(&g->revision, MANIFEST_GITOPS_REVISION) < 0 || mf_set_default(&g->path, MANIFEST_GITOPS_PATH) < 0)
		return -ENOMEM;
	return check_gitops_credentials(c, m);
}

/* Each job's name once (Prometheus's job_name); the default path. */
static int check_scrape_targets(struct mf_ctx *c, struct mf_monitoring *mo)
{
	char p[MF_PATH_MAX];

	for (size_t i = 0; i < mo->n_scrape_targets; i++) {
		struct mf_scrape_target *t = &mo->scrape_targets[i];

		for (size_t j = 0; t->name && j < i; j++)
			if (streq_ptr(t->name, mo->scrape_targets[j].name)) {
				mf_error_at(c, P(p, "monitoring.scrape_targets[%zu].name", i),
					    "job '%s' is monitoring.scrape_targets[%zu] already", t->name, j);
				break;
			}
		if (mf_set_default(&t->metrics_path, MANIFEST_SCRAPE_PATH) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* monitoring.logs: the log store, shown in monitoring's Grafana. */
static int check_logs(struct mf_ctx *c, struct manifest *m)
{
	struct mf_monitoring *mo = &m->monitoring;

	if (!mo->logs.present)
		return 0;
	if (mo->logs.enabled && !mo->enabled && !mf_failed(c, "monitoring.enabled"))
		mf_error_at(c, "monitoring.logs",
			    "the logs are read in Grafana, which monitoring.enabled: false leaves out (set "
			    "monitoring.logs.enabled: false too)");
	if (mo->logs.enabled && !mo->logs.chart && !mf_failed(c, "monitoring.logs.chart"))
		mf_error_whole(c, "monitoring.logs",
			       "monitoring.logs.chart is required: the nodes have no internet, the chart comes from the "
			       "bundle");
	mf_check_asset_ref(c, m, mo->logs.chart, "monitoring.logs.chart");
	check_asset_list(c, m, mo->logs.images, mo->logs.n_images, "monitoring.logs.images");
	if (mo->logs.enabled && mo->enabled)
		check_system_chart(c, m, MANIFEST_LOGS_CHART, "the log store's chart (monitoring.logs)");
	return mf_set_default(&mo->logs.retention, MANIFEST_LOGS_RETENTION);
}

static int check_monitoring(struct mf_ctx *c, struct manifest *m)
{
	struct mf_monitoring *mo = &m->monitoring;
	char p[MF_PATH_MAX];

	if (!mo->present)
		return 0;
	if (mo->enabled && !m->k3s.present)
		mf_error_whole(c, "monitoring", "the monitoring stack runs in K3s: monitoring needs a k3s section");
	if (mo->enabled && !mo->chart && !mf_failed(c, "monitoring.chart"))
		mf_error_whole(c, "monitoring",
			       "monitoring.chart is required: the nodes have no internet, the chart comes from the bundle");
	if (mo->enabled && !mo->grafana_password.name && !mf_failed(c, "monitoring.grafana_password"))
		mf_error_whole(c, "monitoring", "monitoring.grafana_password is required: Grafana's admin password");
	if (mo->grafana_password.name)
		mf_check_secret(c, m, &mo->grafana_password, "monitoring.grafana_password");
	mf_check_asset_ref(c, m, mo->chart, "monitoring.chart");
	check_asset_list(c, m, mo->images, mo->n_images, "monitoring.images");
	check_app_host(c, m, mo->hosts.grafana, "monitoring.hosts.grafana");
	check_app_host(c, m, mo->hosts.prometheus, "monitoring.hosts.prometheus");
	if (mo->enabled)
		check_system_chart(c, m, MANIFEST_MONITORING_CHART, "the monitoring stack's chart (monitoring)");
	for (size_t i = 0; i < mo->n_scrape_targets; i++)
		if (streq_ptr(mo->scrape_targets[i].name, MANIFEST_MONITORING_HOSTS_JOB))
			mf_error_at(c, P(p, "monitoring.scrape_targets[%zu].name", i),
				    "'%s' is the job of the nodes' exporters, which Prometheus scrapes already: "
				    "give this job another name",
				    MANIFEST_MONITORING_HOSTS_JOB);
	if (mf_set_default(&mo->retention, MANIFEST_MONITORING_RETENTION) < 0 || check_logs(c, m) < 0)
		return -ENOMEM;
	return check_scrape_targets(c, mo);
}

static bool in_cidr(uint32_t ip, const struct mf_cidr *n)
{
	uint32_t mask = n->prefix ? ~(uint32_t)0 << (32 - n->prefix) : 0;

	return (ip & mask) == (n->addr & mask);
}

static bool listed(char *const *v, size_t n, const char *id)
{
	for (size_t i = 0; id && i < n; i++)
		if (streq_ptr(v[i], id))
			return true;
	return false;
}

/* Every K3s node pulls through the edge, whose allow-list must let it:
 * the first VM it leaves out, as an error at edge.allow. */
static void check_registry_allowed(struct mf_ctx *c, const struct manifest *m)
{
	const struct mf_edge *e = &m->edge;

	if (!e->present || !e->n_allow || mf_failed(c, "edge.allow"))
		return;
	for (size_t g = 0; g < m->n_vms; g++) {
		if (!listed(m->k3s.servers, m->k3s.n_servers, m->vms[g].id) &&
		    !listed(m->k3s.agents, m->k3s.n_agents, m->vms[g].id))
			continue;
		for (unsigned i = 0; i < m->vms[g].count; i++) {
			struct mf_vm vm;
			bool ok = false;
			char ip[16];

			if (manifest_vm_expand(&m->vms[g], i, &vm) < 0 || !vm.ip)
				continue;
			for (size_t a = 0; a < e->n_allow && !ok; a++)
				ok = in_cidr(vm.ip, &e->allow[a]);
			if (ok)
				continue;
			snprintf(ip, sizeof(ip), "%u.%u.%u.%u", vm.ip >> 24, (vm.ip >> 16) & 255, (vm.ip >> 8) & 255,
				 vm.ip & 255);
			mf_error_at(c, "edge.allow",
				    "leaves out K3s VM %s (%s), which pulls its images from registry.host through the "
				    "edge",
				    vm.name, ip);
			return;
		}
	}
}

static int check_registry(struct mf_ctx *c, struct manifest *m)
{
	struct mf_registry *rg = &m->registry;

	if (!rg->present)
		return 0;
	if (rg->enabled && !m->k3s.present)
		mf_error_whole(c, "registry", "the registry runs in K3s: registry needs a k3s section");
	mf_check_asset_ref(c, m, rg->image, "registry.image");
	check_asset_list(c, m, rg->seed, rg->n_seed, "registry.seed");
	if (rg->enabled && !rg->host && !mf_failed(c, "registry.host"))
		mf_error_whole(c, "registry",
			       "registry.host is required: K3s pulls from the registry by that name, through the edge");
	check_app_host(c, m, rg->host, "registry.host");
	if (rg->enabled && m->k3s.present)
		check_registry_allowed(c, m);
	if (!mf_given(c, "registry.size"))
		rg->size = MANIFEST_REGISTRY_SIZE;
	else if (rg->size < MANIFEST_REGISTRY_SIZE_MIN)
		mf_error_at(c, "registry.size", "is smaller than 1G");
	return 0;
}

int mf_check_apps(struct mf_ctx *c, struct manifest *m)
{
	int r = check_gitops(c, m);

	if (r >= 0)
		r = check_monitoring(c, m);
	if (r >= 0)
		r = check_registry(c, m);
	return r;
}
