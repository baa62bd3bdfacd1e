/* SPDX-License-Identifier: MIT */
/*
 * gitops.h — the first-boot step that hands the cluster to Argo CD
 * (docs/gitops.md is the long form). Argo CD itself is a system chart of
 * the k3s-charts step (its archive and images from the bundle); this step
 * gives it what to follow, through the Kubernetes API by server-side apply
 * (field manager "devopslab"), each object compared first:
 *
 *   gitops  Secret NS/devopslab-repo, Argo CD's declarative repository
 *           (label argocd.argoproj.io/secret-type: repository; type git,
 *           url, and username + password or sshPrivateKey from the
 *           bundle's sealed secrets, never from the plan), and Application
 *           NS/root (project default; source the manifest's repository,
 *           revision and path; destination the cluster itself; automated
 *           sync with prune and self-heal). Done when both are ours and
 *           Argo CD reports the Application compared against our source,
 *           Synced to a commit and Healthy (after a change of ours, once
 *           it has done the refresh we ask for); otherwise, after the timeout,
 *           it fails with Argo CD's own condition ("authentication
 *           required", "unable to resolve 'main' to a commit SHA", ...).
 *
 * The engine's run_ctx->gitops slot holds a struct gitops_cfg * (owned by
 * the verb); run_ctx->secrets the bundle's secrets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/step.h"

struct k3s_ctx;
struct json_object;

#define GITOPS_MANAGER "devopslab"
#define GITOPS_REPO_SECRET "devopslab-repo"
#define GITOPS_DESTINATION "https://kubernetes.default.svc" /* Argo CD's name for its own cluster */
/* Asks Argo CD to compare an Application with its repository now (it
 * removes the annotation once it has): after the Secret or the
 * Application changed, its status until then is about the old ones. */
#define GITOPS_REFRESH "argocd.argoproj.io/refresh"
#define GITOPS_REFRESH_MANAGER "devopslab-refresh"

struct gitops_cfg {
	struct k3s_ctx *k3s; /* borrowed: its Kubernetes API client */
	const char *credential; /* a draft manifest's run: the value of gitops.credentials' secret (borrowed) */
	uint64_t poll_ms;    /* default 2000 */
	uint64_t timeout_ms; /* Argo CD's first sync; default 10 min */
	void (*progress)(void *userdata, const char *msg);
	void *userdata;
};

/* What Argo CD says of an Application (its status). */
struct gitops_app_state {
	char sync[32];      /* status.sync.status: "Synced", "OutOfSync", "Unknown"; "" before Argo CD saw it */
	char health[32];    /* status.health.status */
	char revision[64];  /* status.sync.revision: the commit it compared with */
	char problem[512];  /* the message of its last condition whose type ends in "Error"; "" when none */
	bool compared;      /* status.sync.comparedTo.source is want's spec.source */
	bool refreshing;    /* a refresh we asked for (GITOPS_REFRESH) is not done yet */
};

/* The Secret and the Application of the step's parameters (params), the
 * credentials' values looked up by secret name through secret(); *err
 * names what is missing. Exposed for tests. */
int gitops_objects(struct json_object *params, const char *(*secret)(void *userdata, const char *name),
		   void *userdata, struct json_object **ret_secret, struct json_object **ret_app, char *err,
		   size_t err_size);
/* Decode an Application's status against the one we want (NULL: compared
 * stays false). */
void gitops_app_state(const struct json_object *want, const struct json_object *have, struct gitops_app_state *ret);

extern const struct step_ops gitops_ops;
