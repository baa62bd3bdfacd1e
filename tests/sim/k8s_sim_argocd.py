# SPDX-License-Identifier: MIT
"""k8s_sim_argocd.py — Argo CD in the Kubernetes simulator
(k8s_sim_objects.py runs argocd_controller between two requests; k8s_sim.py
reads --git-repos with load_git_repos).

Argo CD (argocd_controller), in each namespace NS where a helm release
of the chart named argo-cd is deployed (the releases' "chart"), while
the Application CRD serves: AppProject NS/default made when missing
(sourceRepos *, destinations server * namespace *, clusterResourceWhitelist
group * kind *; manager argocd-server), and the application controller
(manager argocd-application-controller) for NS's Applications only.
An Application's status is computed --argocd-ms after its inputs last
changed (its spec: from when it was written; its project, the Git
repository on the network, the credentials: from when that was
noticed), and written only when it differs from the stored one but for
its times (argocd_settled: a converged cluster keeps its
resourceVersions; reconciledAt is not refreshed, where Argo CD does so
every timeout.reconciliation) — or when the annotation
argocd.argoproj.io/refresh asks for it: then it is written with a new
reconciledAt and the annotation removed, in one write. Argo CD itself
does not watch repository Secrets; here a change of one is noticed (the
real one would notice at its next reconciliation, 3 min by default).
In Argo CD's order and words (ARGOCD_WORDS):
  - InvalidSpecError (sync Unknown, health Unknown): the project does
    not exist; no repoURL or no path (no Helm chart sources are
    modelled, so a path is needed); the repository not permitted by
    the project's sourceRepos or the destination by its destinations
    (globs, '!' denies); a destination name other than in-cluster, name
    and server both, no server, a server other than
    https://kubernetes.default.svc (no other cluster is known);
  - ComparisonError (sync Unknown with comparedTo, health Healthy):
    "Failed to load target state: failed to generate manifest for
    source 1 of 1: rpc error: code = Unknown desc = " and the
    repo-server's error: an SSH URL (ssh:// or scp-like) without a key
    (the SSH agent error) or with no PEM private key in it; a
    repository not on the network (--git-repos: "failed to list refs:
    repository not found"); credentials other than the ones it asks for
    ("authentication required" over http(s), the SSH handshake failure
    "[none publickey]"); a targetRevision (default HEAD) that is neither
    a ref name nor a commit of its refs ("unable to resolve 'REV' to a
    commit SHA"); a path it does not have ("PATH: app path does not
    exist", absolute, outside the root);
  - else Synced (syncPolicy.automated) or OutOfSync at the commit,
    Healthy, sourceType Directory, comparedTo its source and
    destination; an automated sync of a new revision or source is an
    operationState Succeeded ("successfully synced (all tasks run)")
    at once and a history entry (at most 10).
Credentials: the Secret of NS labelled argocd.argoproj.io/secret-type
repository whose data.url is the repoURL (a trailing / or .git not
counting), with data username, password, sshPrivateKey; lacking those,
the secret-type repo-creds Secret with the longest url the repoURL
starts with. An SSH key matches by the SHA-256 of its bytes, not by
its public half. A deleted Application loses Argo CD's
resources-finalizer at once. Not modelled: the repository's manifests
(nothing is deployed from it, health is always Healthy), Helm,
Kustomize and multi-source applications, other clusters, the
Secret's type, project-scoped repositories, manual sync operations,
Applications outside NS, ApplicationSets, and Argo CD's other
components (no Deployments are rendered from the chart).
"""
import copy
import json
import posixpath
import re

import k8s_sim_objects as objects  # the object store and its resources, used at call time

ARGOCD_CHART = "argo-cd"  # the chart whose release brings Argo CD into its namespace
ARGOCD_CONTROLLER = "argocd-application-controller"
ARGOCD_SERVER = "argocd-server"
ARGOCD_SECRET_TYPE = "argocd.argoproj.io/secret-type"
ARGOCD_REFRESH = "argocd.argoproj.io/refresh"  # "normal" or "hard": compare again now
ARGOCD_FINALIZERS = ("resources-finalizer.argocd.argoproj.io", "resources-finalizer.argocd.argoproj.io/background",
                     "resources-finalizer.argocd.argoproj.io/foreground")
IN_CLUSTER_NAME, IN_CLUSTER_SERVER = "in-cluster", "https://kubernetes.default.svc"
ARGOCD_HISTORY = 10  # spec.revisionHistoryLimit's default

# Argo CD's words (v2.13): a condition's message, the repo-server's errors
# behind "rpc error: code = Unknown desc = ", a sync's message.
ARGOCD_WORDS = {
    "compare": "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = "
               "Unknown desc = %s",
    "repo_not_found": "failed to list refs: repository not found",
    "http_auth": "failed to list refs: authentication required",
    "ssh_auth": "failed to list refs: ssh: handshake failed: ssh: unable to authenticate, attempted methods "
                "[none publickey], no supported methods remain",
    "ssh_agent": 'failed to list refs: error creating SSH agent: "SSH agent requested but SSH_AUTH_SOCK '
                 'not-specified"',
    "ssh_key": "failed to list refs: ssh: no key found",
    "revision": "unable to resolve '%s' to a commit SHA",
    "path_missing": "%s: app path does not exist",
    "path_absolute": "%s: app path is absolute",
    "path_outside": "%s: app path outside root",
    "project": "Application referencing project %s which does not exist",
    "source": "spec.source.repoURL and either spec.source.path or spec.source.chart are required",
    "repo_denied": "application repo %s is not permitted in project '%s'",
    "dest_both": "application destination can't have both name and server defined: %s %s",
    "dest_name": "unable to find destination server: there are no clusters with this name: %s",
    "dest_denied": "application destination server '%s' and namespace '%s' do not match any of the allowed "
                   "destinations in project '%s'",
    "dest_unknown": "cluster '%s' has not been configured",
    "dest_missing": "Destination server missing from app spec",
    "synced": "successfully synced (all tasks run)",
}


def git_url_key(url):
    """A repository URL as the model compares them: a trailing '/' or
    '.git' does not count."""
    u = str(url or "").strip()
    if u.endswith("/"):
        u = u[:-1]
    if u.endswith(".git"):
        u = u[:-4]
    return u


def git_is_ssh(url):
    """ssh://... or scp-like USER@HOST:PATH, as Argo CD tells them apart."""
    u = str(url or "")
    return u.startswith("ssh://") or bool(re.match(r"[^/:@]+@[^/:]+:", u))


def load_git_repos(path):
    """--git-repos FILE: {URL: {"auth": null | {"username", "password"} |
    {"ssh_private_key_sha256"}, "refs": {NAME: SHA}, "paths": [DIR]}}, the
    Git repositories the simulated network reaches. Raises ValueError."""
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    if not isinstance(d, dict):
        raise ValueError("not a JSON object {URL: repository}")
    out = {}
    for url, e in d.items():
        where = "repository %s" % json.dumps(url)
        if not isinstance(e, dict) or set(e) - {"auth", "refs", "paths"}:
            raise ValueError("%s: an object of auth, refs and paths" % where)
        auth = e.get("auth")
        if auth is not None and not (isinstance(auth, dict) and (
                (set(auth) == {"username", "password"} and all(isinstance(v, str) for v in auth.values())) or
                (set(auth) == {"ssh_private_key_sha256"} and
                 re.fullmatch(r"[0-9a-f]{64}", str(auth["ssh_private_key_sha256"]))))):
            raise ValueError("%s: auth is null, {username, password} or {ssh_private_key_sha256: 64 hex digits}"
                             % where)
        refs = e.get("refs") or {}
        if not isinstance(refs, dict) or not all(isinstance(k, str) and isinstance(v, str) and
                                                 re.fullmatch(r"[0-9a-f]{40}", v) for k, v in refs.items()):
            raise ValueError("%s: refs is {NAME: 40 hex digits}" % where)
        paths = e.get("paths") or []
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError("%s: paths is a list of directories" % where)
        out[git_url_key(url)] = {"url": url, "auth": auth, "refs": dict(refs),
                                 "paths": sorted({git_path_key(p) for p in paths})}
    return out


def git_path_key(p):
    p = posixpath.normpath(str(p) or ".")
    return "." if p in ("", ".") else p


def argocd_credentials(w, ns, url):
    """Argo CD's declarative repositories (docs: declarative setup): the
    Secret of NS labelled secret-type repository whose url is this
    repository (git_url_key), and when it has no credentials of its own the
    secret-type repo-creds Secret with the longest url that the URL starts
    with. {"username", "password", "sshPrivateKey"} (None when not given)."""
    repo, tmpl = None, None
    for s in w.list(objects.SECRET, ns):
        kind = (s["metadata"].get("labels") or {}).get(ARGOCD_SECRET_TYPE)
        su = objects.b64_field(s, "url")
        if su is None:
            continue
        if kind == "repository" and repo is None and git_url_key(su) == git_url_key(url):
            repo = s
        elif kind == "repo-creds" and su and str(url).startswith(su) and \
                (tmpl is None or len(su) > len(objects.b64_field(tmpl, "url"))):
            tmpl = s
    keys = ("username", "password", "sshPrivateKey")
    have = {k: objects.b64_field(repo, k) for k in keys} if repo is not None else {}
    if not any(have.values()) and tmpl is not None:
        have = {k: objects.b64_field(tmpl, k) for k in keys}
    return {k: have.get(k) for k in keys}


def argocd_glob(pattern, value, sep=None):
    """Argo CD's glob match (gobwas/glob): '*' any run of characters (not
    SEP, when given), '?' one, '**' anything."""
    if pattern == "*":
        return True
    rx = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            rx, i = rx + ".*", i + 2
        elif pattern[i] == "*":
            rx, i = rx + ("[^%s]*" % re.escape(sep) if sep else ".*"), i + 1
        elif pattern[i] == "?":
            rx, i = rx + ("[^%s]" % re.escape(sep) if sep else "."), i + 1
        else:
            rx, i = rx + re.escape(pattern[i]), i + 1
    return re.fullmatch(rx, str(value)) is not None


def argocd_permits(rules, match):
    """An AppProject list's verdict: some rule that is not a deny rule
    ('!' prefix) matches, and no deny rule matches. rules: [(pattern...)],
    match(patterns) -> bool."""
    allow = deny = False
    for pats in rules:
        neg = any(str(p).startswith("!") for p in pats)
        if match([str(p)[1:] if str(p).startswith("!") else str(p) for p in pats]):
            if neg:
                deny = True
            else:
                allow = True
    return allow and not deny


def argocd_spec_errors(w, ns, spec):
    """The application controller's refreshAppConditions: InvalidSpecError
    messages, in Argo CD's order (the project, the source, the destination
    resolved and checked against the project)."""
    d = objects.as_dict
    project = spec.get("project") or "default"
    proj = w.get(objects.APPPROJECT, ns, project) if w.served(objects.APPPROJECT) else None
    if proj is None:
        return [ARGOCD_WORDS["project"] % project]
    pspec = d(proj.get("spec"))
    src, dest = d(spec.get("source")), d(spec.get("destination"))
    repo_url, path = src.get("repoURL") or "", src.get("path") or ""
    if not repo_url or not path:
        return [ARGOCD_WORDS["source"]]
    out = []
    repos = [(p,) for p in pspec.get("sourceRepos") or [] if isinstance(p, str)]
    if not argocd_permits(repos, lambda p: argocd_glob(git_url_key(p[0]).lower(), git_url_key(repo_url).lower(),
                                                       "/")):
        out.append(ARGOCD_WORDS["repo_denied"] % (repo_url, project))
    server, name, dns = dest.get("server") or "", dest.get("name") or "", dest.get("namespace") or ""
    if name:
        if server:
            return out + [ARGOCD_WORDS["dest_both"] % (name, server)]
        if name != IN_CLUSTER_NAME:
            return out + [ARGOCD_WORDS["dest_name"] % name]
        server = IN_CLUSTER_SERVER
    if not server:
        return out + [ARGOCD_WORDS["dest_missing"]]
    rules = [(x.get("server") or "", x.get("namespace") or "", x.get("name") or "")
             for x in pspec.get("destinations") or [] if isinstance(x, dict)]
    if not argocd_permits(rules, lambda p: ((bool(p[0]) and argocd_glob(p[0], server)) or
                                            (bool(p[2]) and argocd_glob(p[2], name)))
                          and argocd_glob(p[1], dns)):
        out.append(ARGOCD_WORDS["dest_denied"] % (server, dns, project))
    if server != IN_CLUSTER_SERVER:
        out.append(ARGOCD_WORDS["dest_unknown"] % server)
    return out


def argocd_compare(w, ns, src, repos):
    """The repo-server's answer for a Git source (ls-remote, then the
    path): (commit SHA, None) or (None, error), in the order Argo CD meets
    them: an SSH URL needs a parseable key before anything is sent; the
    repository must be on the simulated network (--git-repos), the
    credentials must be the ones it asks for, targetRevision (default
    HEAD) a ref name or a commit of its refs, path a directory it has."""
    url = src.get("repoURL") or ""
    creds = argocd_credentials(w, ns, url)
    ssh = git_is_ssh(url)
    key = creds["sshPrivateKey"]
    if ssh and not key:
        return None, ARGOCD_WORDS["ssh_agent"]
    if ssh and not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", key):
        return None, ARGOCD_WORDS["ssh_key"]
    entry = repos.get(git_url_key(url))
    if entry is None:
        return None, ARGOCD_WORDS["repo_not_found"]
    auth = entry["auth"]
    if auth is not None:
        if ssh:
            ok = auth.get("ssh_private_key_sha256") == objects.sha256(key)
        else:
            ok = "username" in auth and (creds["username"], creds["password"]) == (auth["username"],
                                                                                   auth["password"])
        if not ok:
            return None, ARGOCD_WORDS["ssh_auth" if ssh else "http_auth"]
    rev = src.get("targetRevision") or "HEAD"
    sha = entry["refs"].get(rev) or (rev if rev in entry["refs"].values() else None)
    if sha is None:
        return None, ARGOCD_WORDS["revision"] % rev
    path = src.get("path") or ""
    if path.startswith("/"):
        return None, ARGOCD_WORDS["path_absolute"] % path
    if git_path_key(path).startswith("../") or git_path_key(path) == "..":
        return None, ARGOCD_WORDS["path_outside"] % path
    if git_path_key(path) not in entry["paths"]:
        return None, ARGOCD_WORDS["path_missing"] % path
    return sha, None


def argocd_settled(status):
    """A status without its times: what decides whether it must be written."""
    st = copy.deepcopy(status or {})
    st.pop("reconciledAt", None)
    for c in st.get("conditions") or []:
        if isinstance(c, dict):
            c.pop("lastTransitionTime", None)
    if isinstance(st.get("operationState"), dict):
        st["operationState"].pop("startedAt", None)
        st["operationState"].pop("finishedAt", None)
    for h in st.get("history") or []:
        if isinstance(h, dict):
            h.pop("deployedAt", None)
            h.pop("deployStartedAt", None)
    return st


def argocd_status(w, ns, spec, old, repos):
    """The status the application controller gives an Application now."""
    d = objects.as_dict
    old = d(old)
    src, dest = copy.deepcopy(d(spec.get("source"))), copy.deepcopy(d(spec.get("destination")))
    now = objects.ts(w.now)
    since = {(c.get("type"), c.get("message")): c.get("lastTransitionTime")
             for c in old.get("conditions") or [] if isinstance(c, dict)}

    def conditions(ctype, msgs):
        return [{"type": ctype, "message": m, "lastTransitionTime": since.get((ctype, m)) or now} for m in msgs]
    st = {"controllerNamespace": ns, "reconciledAt": now}
    for k in ("operationState", "history"):
        if k in old:
            st[k] = copy.deepcopy(old[k])
    invalid_spec = argocd_spec_errors(w, ns, spec)
    if invalid_spec:
        st.update({"sync": {"status": "Unknown"}, "health": {"status": "Unknown"},
                   "conditions": conditions("InvalidSpecError", invalid_spec)})
        return st
    sha, err = argocd_compare(w, ns, src, repos)
    compared = {"source": src, "destination": dest}
    if err is not None:
        st.update({"sync": {"status": "Unknown", "comparedTo": compared}, "health": {"status": "Healthy"},
                   "conditions": conditions("ComparisonError", [ARGOCD_WORDS["compare"] % err])})
        return st
    auto = isinstance(d(spec.get("syncPolicy")).get("automated"), dict)
    st.update({"sync": {"status": "Synced" if auto else "OutOfSync", "revision": sha, "comparedTo": compared},
               "health": {"status": "Healthy"}, "sourceType": "Directory"})
    last = d(st.get("operationState"))
    if auto and not (last.get("phase") == "Succeeded" and d(last.get("syncResult")).get("revision") == sha and
                     d(last.get("syncResult")).get("source") == src):
        # an automated sync of this revision: done at once (the resources
        # of the repository are not modelled)
        st["operationState"] = {"operation": {"sync": {"revision": sha}, "initiatedBy": {"automated": True}},
                                "phase": "Succeeded", "message": ARGOCD_WORDS["synced"],
                                "syncResult": {"revision": sha, "source": src}, "startedAt": now, "finishedAt": now}
        hist = [h for h in st.get("history") or [] if isinstance(h, dict)]
        hist.append({"id": max([h.get("id", -1) for h in hist] + [-1]) + 1, "revision": sha, "source": src,
                     "deployStartedAt": now, "deployedAt": now})
        st["history"] = hist[-ARGOCD_HISTORY:]
    return st


def argocd_namespaces(w):
    """Where Argo CD runs: each namespace with a deployed helm release of the
    argo-cd chart."""
    return sorted({k.split("/", 1)[0] for k, v in (w.st.get("releases") or {}).items()
                   if v.get("chart") == ARGOCD_CHART and v.get("status") == "deployed"})


def argocd_inputs(w, ns, app, repos):
    """A digest of what an Application's status follows: its spec, its
    project, the repository as the network has it, the credentials that
    Argo CD would take for it, and a refresh asked for."""
    spec = app.get("spec") or {}
    src = (spec.get("source") if isinstance(spec.get("source"), dict) else {}) or {}
    url = src.get("repoURL") or ""
    proj = w.get(objects.APPPROJECT, ns, spec.get("project") or "default") if w.served(objects.APPPROJECT) else None
    creds = argocd_credentials(w, ns, url)
    return objects.sha256(json.dumps([spec, (proj or {}).get("spec"), repos.get(git_url_key(url)),
                              {k: objects.sha256(v) if v is not None else None for k, v in creds.items()},
                              (app["metadata"].get("annotations") or {}).get(ARGOCD_REFRESH)], sort_keys=True))


def argocd_app(w, ns, app, repos):
    """One Application: its finalizers honoured once it is being deleted
    (no resources of its own are modelled), else its status recomputed
    --argocd-ms after its inputs (argocd_inputs) last changed — its spec's
    change counts from when it was written — and written only when it
    differs from what it is (argocd_settled), or when the annotation
    argocd.argoproj.io/refresh asked for a refresh: then the status is
    written with a new reconciledAt and the annotation removed in the same
    write, as Argo CD's persistAppStatus does."""
    md = app["metadata"]
    if md.get("deletionTimestamp"):
        fin = [f for f in md.get("finalizers") or [] if f not in ARGOCD_FINALIZERS]
        if fin != (md.get("finalizers") or []):
            new = copy.deepcopy(app)
            new["metadata"]["finalizers"] = fin
            w.write(objects.APPLICATION, new, app, ARGOCD_CONTROLLER)
        return
    ms = getattr(w.a, "argocd_ms", 300)
    h = argocd_inputs(w, ns, app, repos)
    asim = dict((app.get("_sim") or {}).get("argocd") or {})
    if asim.get("in") != h:
        hs = objects.sha256(json.dumps(app.get("spec"), sort_keys=True))
        since = (app.get("_sim") or {}).get("spec_at", w.now) if asim.get("spec") != hs else w.now
        asim = {"in": h, "spec": hs, "since": since}
        new = copy.deepcopy(app)
        new.setdefault("_sim", {})["argocd"] = asim
        app = w.write(objects.APPLICATION, new, app, ARGOCD_CONTROLLER)  # the simulator's own: no new version
    if w.now < asim["since"] + ms / 1000.0:
        return
    want = argocd_status(w, ns, app.get("spec") or {}, app.get("status"), repos)
    refresh = ARGOCD_REFRESH in (md.get("annotations") or {})
    if not refresh and argocd_settled(want) == argocd_settled(app.get("status")):
        return
    new = copy.deepcopy(app)
    new["status"] = want
    if refresh:
        del new["metadata"]["annotations"][ARGOCD_REFRESH]
        if not new["metadata"]["annotations"]:
            del new["metadata"]["annotations"]
    try:
        w.validate(objects.APPLICATION, new, old=app)
    except objects.ApiError:
        return  # the controller logs the API's refusal and tries again later
    w.write(objects.APPLICATION, new, app, ARGOCD_CONTROLLER)


def argocd_default_project(w, ns):
    """AppProject NS/default, as Argo CD makes it when it is missing."""
    if not w.served(objects.APPPROJECT) or w.get(objects.APPPROJECT, ns, "default") is not None or w.ns_ok(ns) is not None:
        return
    proj = {"apiVersion": objects.APPPROJECT.gv, "kind": objects.APPPROJECT.kind, "metadata": {"name": "default", "namespace": ns},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                     "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}}
    try:
        w.validate(objects.APPPROJECT, proj)
    except objects.ApiError:
        return
    w.write(objects.APPPROJECT, proj, None, ARGOCD_SERVER)


def argocd_controller(w):
    """Argo CD, in each namespace where a release of the argo-cd chart is
    deployed (argocd_namespaces), while the Application CRD serves: the
    AppProject default made when missing, and the application controller
    for the Applications of that namespace (argocd_app). It reads Secrets
    and writes Applications, through World's write path."""
    if not w.served(objects.APPLICATION):
        return
    repos = getattr(w.a, "git_repos", None) or {}
    for ns in argocd_namespaces(w):
        argocd_default_project(w, ns)
        for app in w.list(objects.APPLICATION, ns):
            argocd_app(w, ns, app, repos)
