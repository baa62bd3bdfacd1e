# SPDX-License-Identifier: MIT
"""k8s_sim_monitoring.py — the monitoring stack of k8s_sim_objects.py: a
helm release of the chart named kube-prometheus-stack (MON_CHART; the
stand-in tests/data/monitoring/kube-prometheus-stack), as K3s's helm
controller installs it, and what its pods answer through kube-apiserver's
service proxy.

  * Names, as the chart's helpers make them: F (the stack's fullname) is
    fullnameOverride, else RELEASE when it contains "kube-prometheus-stack",
    else RELEASE-kube-prometheus-stack, cut to 26 characters and a trailing
    '-' dropped (release "monitoring": monitoring-kube-prometheus); a
    subchart's is RELEASE-SUBCHART cut to 63 (RELEASE when it contains it).
  * What an install or upgrade renders (monitoring_objects, written by
    render_monitoring; labelled and annotated as the release's, so helm's
    pruning in k8s_sim_objects removes them on uninstall and an upgrade
    that no longer renders them): Service NS/F-prometheus (9090, http-web);
    with grafana.enabled Service NS/RELEASE-grafana (grafana.service.port,
    default 80, http-web) and, without grafana.admin.existingSecret, the
    chart's Secret NS/RELEASE-grafana (admin-user, admin-password from
    grafana.adminUser, adminPassword); with kube-state-metrics.enabled
    Service NS/RELEASE-kube-state-metrics (8080, http); with
    prometheus-node-exporter.enabled DaemonSet and Service
    NS/RELEASE-prometheus-node-exporter (9100, http-metrics), the DaemonSet
    scheduled on every running node. No Deployments, StatefulSets,
    Prometheus or Alertmanager objects, no ServiceMonitors of its own.
  * Prometheus's pod (prometheus_up): up --prometheus-ms after the release
    was installed, or after the upgrade that made its scrape configuration
    valid again; never while prometheus.prometheusSpec.additionalScrapeConfigs
    is one Prometheus refuses (scrape_errors: not a list, a job that is not a
    map, without job_name, a job_name twice, static_configs not a list of
    maps with targets a list of HOST:PORT strings).
  * Its /api/v1/targets (prometheus_targets), in Prometheus 2.x/3.x's shape:
    one active target per static_configs target of each additional job
    (metrics_path default /metrics, scheme http, params; its labels), up
    when HOST:PORT is in the --scrape-up file (re-read when it changes;
    JSON list of "HOST:PORT"; no file: none answers), else down with
    Prometheus's dial error; the stack's own jobs, always up:
    serviceMonitor/NS/F-prometheus/0 (the Prometheus pod),
    serviceMonitor/NS/RELEASE-kube-state-metrics/0 and
    serviceMonitor/NS/RELEASE-prometheus-node-exporter/0 (NODE_IP:9100 per
    running node) when enabled; and each endpoint IDX of every
    ServiceMonitor Prometheus selects (serviceMonitorSelectorNilUsesHelmValues
    true, the default: labelled release=RELEASE; false: all) gives job
    serviceMonitor/SMNS/SMNAME/IDX with one target per address of the
    Endpoints of each Service its selector and namespaceSelector (default
    its own namespace) match, on the port its endpoint names (or its
    targetPort), up as the static ones. A job that changed in an upgrade
    has health "unknown" for --prometheus-ms (not scraped yet). Not
    modelled: other service discovery (kubernetes_sd_configs, ...: no
    targets), relabelling, PodMonitor targets (the CRD only), notReady
    addresses, droppedTargets, scrape intervals (a flip of --scrape-up shows
    at once).
  * Grafana's pod (grafana_tick, every pass): starts once
    grafana.admin.existingSecret (if set) exists in NS with userKey and
    passwordKey (the chart's own Secret otherwise), up --prometheus-ms after
    that was noticed; it takes the admin's user and password then, as
    Grafana reads them only into a new database: a later change of the
    Secret changes nothing until its values (grafana.*) change in an
    upgrade (a new pod).
  * Through the service proxy (service_proxy): /api/health (no
    authentication, as Grafana serves it to its probes): 200
    {"database": "ok", "version": "11.3.0"}; /api/search (type dash-db or
    none, query a title substring): the dashboards of the sidecar,
    ConfigMaps of grafana.sidecar.dashboards.searchNamespace (empty: NS;
    ALL: every namespace) labelled label=labelValue (grafana_dashboard="1"),
    each data key ending in .json (Grafana's file provider loads only those)
    whose value is a JSON object with a string title; /api/datasources:
    Prometheus, provisioned by the chart when sidecar.datasources.enabled.
    Those two need a signed-in user: kube-apiserver deletes the
    Authorization header of every request it has authenticated (its
    authentication filter) before proxying it, so HTTP basic auth never
    reaches Grafana this way and they answer 401 {"message":
    "Unauthorized"} — unless grafana.ini's auth.anonymous is enabled
    (org_role default Viewer): then search answers, and datasources needs
    org_role Admin (403 otherwise, datasources:read).

State (k8s.json "monitoring", {NS/RELEASE: {"since", "valid", "jobs",
"grafana", "values"}}): what the model remembers of each deployed release:
its coalesced values, when its Prometheus pod came up (or null), each
additional job's digest and since when, and Grafana's start.
"""
import base64
import copy
import hashlib
import json
import os
import re
import time

import k8s_sim_objects as objects

MON_CHART = "kube-prometheus-stack"
PROM_PORT, PROM_PORT_NAME = 9090, "http-web"
KSM_PORT, NODE_EXPORTER_PORT = 8080, 9100
GRAFANA_VERSION = "11.3.0"
SCRAPE_INTERVAL, SCRAPE_TIMEOUT = "30s", "10s"  # the operator's defaults
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time, as Prometheus prints a target never scraped


def sha(v):
    return hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()


def d(v):
    return v if isinstance(v, dict) else {}


def trunc(s, n):
    return s[:n].rstrip("-") if len(s) > n else s


def fullname(values, release):
    """The chart's kube-prometheus-stack.fullname."""
    if values.get("fullnameOverride"):
        return trunc(str(values["fullnameOverride"]), 26)
    name = str(values.get("nameOverride") or MON_CHART)
    return trunc(release if name in release else "%s-%s" % (release, name), 26)


def sub_fullname(release, chart):
    """A subchart's fullname (grafana, kube-state-metrics, prometheus-node-exporter)."""
    return trunc(release if chart in release else "%s-%s" % (release, chart), 63)


def enabled(values, key):
    return d(values.get(key)).get("enabled", True) is not False


def grafana_admin(values):
    """(secret name, user key, password key, the chart's own Secret?)."""
    g = d(values.get("grafana"))
    adm = d(g.get("admin"))
    own = not adm.get("existingSecret")
    return (str(adm.get("existingSecret") or ""), str(adm.get("userKey") or "admin-user"),
            str(adm.get("passwordKey") or "admin-password"), own)


# ---- what an install renders -----------------------------------------------------------

def monitoring_objects(w, chart, values, release, ns):
    """[(resource, object)] the stack's templates render, as helm sends them."""
    f = fullname(values, release)
    version = str(chart["meta"]["version"])
    base = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": release,
            "app.kubernetes.io/part-of": MON_CHART, "release": release, "heritage": "Helm",
            "chart": "%s-%s" % (MON_CHART, version)}
    ann = {objects.RELEASE_NAME: release, objects.RELEASE_NS: ns}
    out = []

    def service(name, labels, selector, port, pname, target):
        old = w.get(objects.SERVICE, ns, name)
        ip = ((old or {}).get("spec") or {}).get("clusterIP") or \
            w.service_ip(11 + int(objects.sha256("%s/%s" % (ns, name))[:4], 16) % 240)
        out.append((objects.SERVICE, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": dict(base, **labels), "annotations": dict(ann)},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "selector": selector,
                     "ports": [{"name": pname, "port": port, "targetPort": target, "protocol": "TCP"}]}}))
    service("%s-prometheus" % f, {"app": "kube-prometheus-stack-prometheus", "self-monitor": "true"},
            {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": "%s-prometheus" % f},
            PROM_PORT, PROM_PORT_NAME, PROM_PORT)
    if enabled(values, "grafana"):
        g = d(values.get("grafana"))
        name = sub_fullname(release, "grafana")
        port = d(g.get("service")).get("port")
        service(name, {"app.kubernetes.io/name": "grafana"},
                {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": release},
                port if isinstance(port, int) else 80, "http-web", 3000)
        secret, ukey, pkey, own = grafana_admin(values)
        if own:
            def b64(v):
                return base64.b64encode(str(v).encode()).decode()
            out.append((objects.SECRET, {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": ns, "labels": dict(base, **{"app.kubernetes.io/name":
                                                                                   "grafana"}),
                             "annotations": dict(ann)},
                "data": {ukey: b64(g.get("adminUser") or "admin"),
                         pkey: b64(g.get("adminPassword") or "prom-operator")}}))
    if enabled(values, "kube-state-metrics"):
        name = sub_fullname(release, "kube-state-metrics")
        service(name, {"app.kubernetes.io/name": "kube-state-metrics"},
                {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": release},
                KSM_PORT, "http", KSM_PORT)
    if enabled(values, "prometheus-node-exporter"):
        name = sub_fullname(release, "prometheus-node-exporter")
        sel = {"app.kubernetes.io/name": "prometheus-node-exporter", "app.kubernetes.io/instance": release}
        labels = dict(base, jobLabel="node-exporter", **sel)
        service(name, {"app.kubernetes.io/name": "prometheus-node-exporter", "jobLabel": "node-exporter"}, sel,
                NODE_EXPORTER_PORT, "http-metrics", NODE_EXPORTER_PORT)
        out.append((objects.DAEMONSET, {
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": dict(ann)},
            "spec": {"selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"hostNetwork": True, "hostPID": True, "containers": [{
                                      "name": "node-exporter", "image": "quay.io/prometheus/node-exporter:v1.8.2",
                                      "args": ["--web.listen-address=[$(HOST_IP)]:%d" % NODE_EXPORTER_PORT],
                                      "ports": [{"name": "http-metrics", "containerPort": NODE_EXPORTER_PORT,
                                                 "protocol": "TCP"}]}]}}}}))
    return out


def render_monitoring(w, chart, values, release, ns):
    """An install or upgrade of the stack: its objects written (with the
    DaemonSet's status), and the release's state: the Prometheus pod's
    start, each additional job's digest. [(resource, object)]."""
    made = []
    nodes = running_nodes(w)
    for r, obj in monitoring_objects(w, chart, values, release, ns):
        o = w.upsert(r, obj, "helm")
        if r is objects.DAEMONSET:
            n = len(nodes)
            o = w.set_status(r, o, {"observedGeneration": o["metadata"].get("generation", 1),
                                    "desiredNumberScheduled": n, "currentNumberScheduled": n, "numberReady": n,
                                    "numberAvailable": n, "updatedNumberScheduled": n, "numberMisscheduled": 0},
                             "kube-controller-manager")
        made.append((r, o))
    mon = w.st.setdefault("monitoring", {})
    key = "%s/%s" % (ns, release)
    old = mon.get(key) or {}
    valid = not scrape_errors(prom_spec(values).get("additionalScrapeConfigs"))
    since = old.get("since") if old.get("valid") and valid else (w.now if valid else None)
    jobs = {}
    if valid:
        for job in prom_spec(values).get("additionalScrapeConfigs") or []:
            h = sha(job)
            prev = (old.get("jobs") or {}).get(job["job_name"])
            jobs[job["job_name"]] = prev if prev and prev[0] == h else [h, w.now]
    mon[key] = {"values": copy.deepcopy(values), "valid": valid, "since": since, "jobs": jobs,
                "grafana": old.get("grafana") or {}}
    return made


def forget_release(w, release, ns):
    """An uninstall: the model's memory of the release goes with it."""
    w.st.get("monitoring", {}).pop("%s/%s" % (ns, release), None)


def running_nodes(w):
    """{node name: InternalIP} of the nodes whose K3s runs (k8s_sim.world)."""
    return dict(getattr(w, "node_ips", None) or {})


def releases(w):
    """[(NS, RELEASE, state)] of the deployed releases of the stack."""
    out = []
    for k, v in sorted((w.st.get("releases") or {}).items()):
        m = (w.st.get("monitoring") or {}).get(k)
        if v.get("chart") == MON_CHART and v.get("status") == "deployed" and m is not None:
            ns, name = k.split("/", 1)
            out.append((ns, name, m))
    return out


# ---- Prometheus ------------------------------------------------------------------------

def prom_spec(values):
    return d(d(values.get("prometheus")).get("prometheusSpec"))


def split_host_port(t):
    """'HOST:PORT' or '[V6]:PORT' -> (host, port) or None."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:/\s\[\]]+):(\d{1,5})", str(t))
    if not m:
        return None
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return (host, int(port)) if 0 < int(port) < 65536 else None


def scrape_errors(jobs):
    """What Prometheus refuses of a list of scrape configs (its config
    loader's checks the model knows), as short messages; [] when it starts."""
    if jobs is None:
        return []
    if not isinstance(jobs, list):
        return ["additionalScrapeConfigs is not a list of scrape configs"]
    errs, seen = [], set()
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            errs.append("scrape config %d is not a map" % i)
            continue
        name = job.get("job_name")
        if not isinstance(name, str) or not name:
            errs.append("job_name is empty")
            continue
        if name in seen:
            errs.append('found multiple scrape configs with job name "%s"' % name)
        seen.add(name)
        sc = job.get("static_configs", [])
        if not isinstance(sc, list) or not all(isinstance(g, dict) for g in sc):
            errs.append('job "%s": static_configs is not a list of maps' % name)
            continue
        for g in sc:
            ts = g.get("targets", [])
            if not isinstance(ts, list):
                errs.append('job "%s": targets is not a list' % name)
                continue
            for t in ts:
                if split_host_port(t) is None:
                    errs.append('job "%s": "%s" is not a valid HOST:PORT target' % (name, t))
            if not isinstance(g.get("labels", {}), dict):
                errs.append('job "%s": labels is not a map' % name)
    return errs


SCRAPE_UP = {"path": None, "stamp": None, "up": set()}


def scrape_up(w):
    """The HOST:PORT targets that answer (--scrape-up FILE, re-read when it
    changes; a file that does not exist or does not parse: none, or the last
    good read)."""
    path = getattr(w.a, "scrape_up", None)
    if not path:
        return set()
    try:
        st = os.stat(path)
    except OSError:
        return set()
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    if SCRAPE_UP["path"] != path or SCRAPE_UP["stamp"] != stamp:
        try:
            with open(path, encoding="utf-8") as f:
                v = json.load(f)
            if isinstance(v, list) and all(isinstance(x, str) for x in v):
                SCRAPE_UP.update(path=path, stamp=stamp, up=set(v))
        except (OSError, ValueError):
            pass
    return SCRAPE_UP["up"] if SCRAPE_UP["path"] == path else set()


def load_scrape_up(path):
    """--scrape-up FILE checked at start (it may not exist yet). Raises ValueError."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        v = json.load(f)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError('not a JSON list of "HOST:PORT" strings')


def prometheus_up(w, m):
    return m.get("valid") and m.get("since") is not None and \
        w.now >= m["since"] + getattr(w.a, "prometheus_ms", 300) / 1000.0


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + (".%06dZ" % int((t % 1) * 1e6))


def target(w, pool, address, scheme, path, params, labels, health, interval, timeout, extra_disc=None):
    """One active target as /api/v1/targets shows it."""
    q = "&".join("%s=%s" % (k, v) for k in sorted(params) for v in params[k])
    url = "%s://%s%s%s" % (scheme, address, path, "?" + q if q else "")
    disc = {"__address__": address, "__metrics_path__": path, "__scheme__": scheme,
            "__scrape_interval__": interval, "__scrape_timeout__": timeout, "job": pool}
    disc.update(extra_disc or {})
    disc.update(labels)
    lab = dict(labels, instance=labels.get("instance", address), job=labels.get("job", pool))
    t = {"discoveredLabels": disc, "labels": lab, "scrapePool": pool, "scrapeUrl": url, "globalUrl": url,
         "lastError": "", "lastScrape": ZERO_TIME, "lastScrapeDuration": 0, "health": health,
         "scrapeInterval": interval, "scrapeTimeout": timeout}
    if health != "unknown":
        t["lastScrape"] = rfc3339(w.now)
        t["lastScrapeDuration"] = 0.003
        if health == "down":
            t["lastError"] = 'Get "%s": dial tcp %s: connect: connection refused' % (url, address)
    return t


def static_targets(w, m, up):
    ms = getattr(w.a, "prometheus_ms", 300) / 1000.0
    out = []
    for job in prom_spec(m["values"]).get("additionalScrapeConfigs") or []:
        pool = job["job_name"]
        since = (m.get("jobs") or {}).get(pool, [None, 0])[1]
        scheme = str(job.get("scheme") or "http")
        path = str(job.get("metrics_path") or "/metrics")
        params = {str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
                  for k, v in d(job.get("params")).items()}
        interval = str(job.get("scrape_interval") or SCRAPE_INTERVAL)
        timeout = str(job.get("scrape_timeout") or SCRAPE_TIMEOUT)
        for g in job.get("static_configs") or []:
            labels = {str(k): str(v) for k, v in d(g.get("labels")).items()}
            for addr in g.get("targets") or []:
                health = "unknown" if w.now < since + ms else ("up" if addr in up else "down")
                out.append(target(w, pool, addr, scheme, path, params, labels, health, interval, timeout))
    return out


def selector_reqs(sel):
    """A LabelSelector {matchLabels, matchExpressions} as labels_match's requirements."""
    reqs = [(str(k), "=", {str(v)}) for k, v in d(d(sel).get("matchLabels")).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for e in d(sel).get("matchExpressions") or []:
        if isinstance(e, dict) and e.get("operator") in ops:
            reqs.append((str(e.get("key")), ops[e["operator"]], {str(x) for x in e.get("values") or []}))
    return reqs


def service_monitor_targets(w, m, release, up):
    """The targets of the ServiceMonitors Prometheus selects: per endpoint,
    per matching Service, the addresses of its Endpoints on that port."""
    sm_res = objects.SERVICEMONITOR
    if not w.served(sm_res):
        return []
    only_release = prom_spec(m["values"]).get("serviceMonitorSelectorNilUsesHelmValues", True) is not False
    out = []
    for sm in w.list(sm_res):
        md = sm["metadata"]
        if only_release and (md.get("labels") or {}).get("release") != release:
            continue
        spec = d(sm.get("spec"))
        nsel = d(spec.get("namespaceSelector"))
        if nsel.get("any") is True:
            svcs = w.list(objects.SERVICE)
        else:
            names = nsel.get("matchNames") or [md["namespace"]]
            svcs = [s for n in names for s in w.list(objects.SERVICE, str(n))]
        reqs = selector_reqs(spec.get("selector"))
        svcs = [s for s in svcs if objects.labels_match(reqs, s["metadata"].get("labels") or {})]
        for i, ep in enumerate(spec.get("endpoints") or []):
            if not isinstance(ep, dict):
                continue
            pool = "serviceMonitor/%s/%s/%d" % (md["namespace"], md["name"], i)
            for s in svcs:
                eps = w.get(objects.ENDPOINTS, s["metadata"]["namespace"], s["metadata"]["name"])
                job = (s["metadata"].get("labels") or {}).get(str(spec.get("jobLabel") or "")) or \
                    s["metadata"]["name"]
                for sub in d(eps).get("subsets") or []:
                    for p in sub.get("ports") or []:
                        if not port_matches(ep, p):
                            continue
                        for a in sub.get("addresses") or []:
                            addr = "%s:%s" % (a.get("ip"), p.get("port"))
                            labels = {"job": job, "instance": addr, "namespace": s["metadata"]["namespace"],
                                      "service": s["metadata"]["name"], "endpoint": str(ep.get("port") or
                                                                                        p.get("name") or "")}
                            tr = d(a.get("targetRef"))
                            if tr.get("kind") == "Pod":
                                labels["pod"] = str(tr.get("name"))
                            out.append(target(w, pool, addr, str(ep.get("scheme") or "http"),
                                              str(ep.get("path") or "/metrics"), {}, labels,
                                              "up" if addr in up else "down",
                                              str(ep.get("interval") or SCRAPE_INTERVAL),
                                              str(ep.get("scrapeTimeout") or SCRAPE_TIMEOUT)))
    return out


def port_matches(ep, p):
    if ep.get("port"):
        return p.get("name") == ep["port"]
    tp = ep.get("targetPort")
    if isinstance(tp, int):
        return p.get("port") == tp
    return tp is not None and p.get("name") == tp


def prometheus_targets(w, ns, release, m):
    """Prometheus's answer to GET /api/v1/targets."""
    v = m["values"]
    f = fullname(v, release)
    up = scrape_up(w)
    own = []

    def sm(name, job, addrs, port):
        pool = "serviceMonitor/%s/%s/0" % (ns, name)
        for a in addrs:
            addr = "%s:%d" % (a, port)
            own.append(target(w, pool, addr, "http", "/metrics", {},
                              {"job": job, "instance": addr, "namespace": ns, "service": name}, "up",
                              SCRAPE_INTERVAL, SCRAPE_TIMEOUT))
    sm("%s-prometheus" % f, "%s-prometheus" % f, [pod_ip(ns, "prometheus-%s-prometheus-0" % f)], PROM_PORT)
    if enabled(v, "kube-state-metrics"):
        name = sub_fullname(release, "kube-state-metrics")
        sm(name, "kube-state-metrics", [pod_ip(ns, name)], KSM_PORT)
    if enabled(v, "prometheus-node-exporter"):
        sm(sub_fullname(release, "prometheus-node-exporter"), "node-exporter",
           [ip for _, ip in sorted(running_nodes(w).items()) if ip], NODE_EXPORTER_PORT)
    active = own + static_targets(w, m, up) + service_monitor_targets(w, m, release, up)
    active.sort(key=lambda t: (t["scrapePool"], t["labels"]["instance"]))
    return {"status": "success", "data": {"activeTargets": active, "droppedTargets": []}}


def pod_ip(ns, name):
    """A stable pod address in K3s's default cluster CIDR (10.42.0.0/16)."""
    n = int(hashlib.sha256(("%s/%s" % (ns, name)).encode()).hexdigest()[:4], 16)
    return "10.42.%d.%d" % (n // 254 % 256, n % 254 + 1)


# ---- Grafana ---------------------------------------------------------------------------

def grafana_creds(w, ns, release, values):
    """(user, password) from the admin Secret when Grafana's pod can start
    with it (the Secret exists with both keys), else None."""
    secret, ukey, pkey, own = grafana_admin(values)
    name = secret or sub_fullname(release, "grafana")
    s = w.get(objects.SECRET, ns, name)
    if s is None:
        return None
    u, p = objects.b64_field(s, ukey), objects.b64_field(s, pkey)
    if u is None or p is None:
        return None
    return u, p


def grafana_tick(w):
    """Each deployed stack's Grafana: started once its admin Secret is
    there (what Grafana's pod needs to start), its credentials taken then;
    restarted (taken again) when its values change."""
    for ns, release, m in releases(w):
        v = m["values"]
        if not enabled(v, "grafana"):
            m["grafana"] = {}
            continue
        key = sha(d(v.get("grafana")))
        g = m.get("grafana") or {}
        if g.get("key") != key:
            g = {"key": key, "since": None}
        if g.get("since") is None:
            creds = grafana_creds(w, ns, release, v)
            if creds is not None:
                g = {"key": key, "since": w.now, "creds": sha(list(creds))}
        m["grafana"] = g


def grafana_up(w, m):
    g = m.get("grafana") or {}
    return enabled(m["values"], "grafana") and g.get("since") is not None and \
        w.now >= g["since"] + getattr(w.a, "prometheus_ms", 300) / 1000.0


def grafana_role(values, authorization):
    """The org role a request to Grafana gets: the admin's by basic auth
    (not modelled here: the service proxy never forwards the header), else
    auth.anonymous's when grafana.ini enables it, else None (401)."""
    ini = d(d(values.get("grafana")).get("grafana.ini"))
    anon = d(ini.get("auth.anonymous"))
    if anon.get("enabled") in (True, "true"):
        return str(anon.get("org_role") or "Viewer")
    return None


def dashboards(w, ns, values):
    """The sidecar's dashboards: [(title, uid)], Grafana's order (by title)."""
    sc = d(d(d(values.get("grafana")).get("sidecar")).get("dashboards"))
    if sc.get("enabled") is False:
        return []
    label, want = str(sc.get("label") or "grafana_dashboard"), str(sc.get("labelValue") or "1")
    where = str(sc.get("searchNamespace") or "")
    cms = w.list(objects.CONFIGMAP) if where == "ALL" else \
        [c for n in (where.split(",") if where else [ns]) for c in w.list(objects.CONFIGMAP, n.strip())]
    out = {}
    for cm in cms:
        if (cm["metadata"].get("labels") or {}).get(label) != want:
            continue
        for k, text in sorted((cm.get("data") or {}).items()):
            if not k.endswith(".json"):
                continue
            try:
                dash = json.loads(text)
            except ValueError:
                continue
            if not isinstance(dash, dict) or not isinstance(dash.get("title"), str):
                continue
            uid = dash.get("uid") if isinstance(dash.get("uid"), str) and dash.get("uid") else \
                hashlib.sha256(("%s/%s/%s" % (cm["metadata"]["namespace"], cm["metadata"]["name"], k))
                               .encode()).hexdigest()[:14]
            out.setdefault(uid, dash["title"])  # a uid already provisioned: the later one is refused
    return sorted(((t, u) for u, t in out.items()), key=lambda x: (x[0].lower(), x[1]))


def slug(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def grafana_answer(w, ns, release, m, path, query):
    """(code, body) of Grafana's API for one proxied GET."""
    v = m["values"]
    if path == "api/health":
        return 200, {"database": "ok", "version": GRAFANA_VERSION}
    if path not in ("api/search", "api/datasources"):
        return 404, {"message": "Not found"}
    role = grafana_role(v, None)  # kube-apiserver deleted the Authorization header
    if role is None:
        return 401, {"message": "Unauthorized"}
    if path == "api/search":
        if query.get("type") not in (None, "", "dash-db"):
            return 200, []
        q = str(query.get("query") or "").lower()
        return 200, [{"id": i + 1, "uid": u, "title": t, "uri": "db/" + slug(t), "url": "/d/%s/%s" % (u, slug(t)),
                      "slug": "", "type": "dash-db", "tags": [], "isStarred": False, "sortMeta": 0}
                     for i, (t, u) in enumerate(dashboards(w, ns, v)) if q in t.lower()]
    if role != "Admin":
        return 403, {"message": "You'll need additional permissions to perform this action. Permissions needed: "
                                "datasources:read"}
    sc = d(d(d(v.get("grafana")).get("sidecar")).get("datasources"))
    if sc.get("enabled") is False:
        return 200, []
    return 200, [{"id": 1, "uid": "prometheus", "orgId": 1, "name": "Prometheus", "type": "prometheus",
                  "typeName": "Prometheus", "access": "proxy", "url": "http://%s-prometheus.%s:%d/"
                  % (fullname(v, release), ns, PROM_PORT), "basicAuth": False, "isDefault": True,
                  "readOnly": True}]


# ---- kube-apiserver's service proxy ----------------------------------------------------
# Shared with the registry's model (k8s_sim_registry.service_proxy): how
# kube-apiserver resolves services/[SCHEME:]NAME[:PORT]/proxy/PATH before a
# pod answers, and its own answers when none can.

def parse_ref(ref):
    """(scheme, name, port) of [SCHEME:]NAME[:PORT] ('' when left out)."""
    parts = ref.split(":")
    return ("", parts[0], "") if len(parts) == 1 else \
        (("", parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[1], parts[2]))


def proxy_target(w, ns, name, port):
    """The Service NS/NAME and the entry of its spec.ports the request names
    (by number or name; none named: the first, or None when it has none) —
    404 when the Service does not exist, 503 when it has no such port."""
    svc = w.get(objects.SERVICE, ns, name)
    if svc is None:
        raise objects.not_found(objects.SERVICE, name)
    ports = (svc.get("spec") or {}).get("ports") or []
    if not port:
        return svc, (ports[0] if ports else None)
    p = next((p for p in ports if str(p.get("port")) == port or p.get("name") == port), None)
    if p is None:
        raise objects.ApiError(503, "ServiceUnavailable", 'no service port "%s" found for service "%s"'
                               % (port, name))
    return svc, p


def no_endpoints(name):
    """The Service has no ready endpoint (no pod behind it is Ready)."""
    return objects.ApiError(503, "ServiceUnavailable", 'no endpoints available for service "%s"' % name)


def method_not_modelled():
    """A method the model of the pod behind the proxy does not take."""
    return objects.ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                    "resource")


def plain_http(scheme):
    """The pods modelled serve plain HTTP: an https: proxy request fails as
    kube-apiserver's TLS handshake with them would."""
    if scheme == "https":
        raise objects.ApiError(503, "ServiceUnavailable", "error trying to reach service: http: server gave HTTP "
                                                          "response to HTTPS client")


def service_proxy(w, method, ns, ref, rest, query):
    """GET /api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH,
    as kube-apiserver resolves it (the Service must exist: 404; a port it
    has, by number or name: else 503; a ready endpoint: else 503) and as
    the pod behind it answers. (code, body, content type)."""
    scheme, name, port = parse_ref(ref)
    proxy_target(w, ns, name, port)
    if method != "GET":
        raise method_not_modelled()
    path = "/".join(rest)
    for rns, release, m in releases(w):
        if rns != ns:
            continue
        v = m["values"]
        if name == "%s-prometheus" % fullname(v, release):
            if not prometheus_up(w, m):
                raise no_endpoints(name)
            plain_http(scheme)
            if path == "api/v1/targets":
                return 200, prometheus_targets(w, ns, release, m), "application/json"
            return 404, b"404 page not found\n", "text/plain; charset=utf-8"
        if enabled(v, "grafana") and name == sub_fullname(release, "grafana"):
            if not grafana_up(w, m):
                raise no_endpoints(name)
            plain_http(scheme)
            code, body = grafana_answer(w, ns, release, m, path, query)
            return code, body, "application/json"
    raise no_endpoints(name)  # no pods of any other Service are modelled here


def monitoring_controller(w):
    """Every pass: Grafana's start (grafana_tick). Prometheus's start is
    decided by the install or upgrade (render_monitoring)."""
    grafana_tick(w)
