# SPDX-License-Identifier: MIT
"""k8s_sim_logs.py — the lab's log store in k8s_sim_objects.py: a helm
release of the chart named loki-stack (LOGS_CHART; the stand-in
tests/data/logs/loki-stack: Loki and Promtail, Grafana's chart 2.10.x), as
K3s's helm controller installs it, and what Loki answers through
kube-apiserver's service proxy.

  * Names, as the subcharts' helpers make them: LOKI is
    loki.fullnameOverride, else RELEASE when it contains loki.nameOverride
    (default "loki"), else RELEASE-loki; PROMTAIL the same with promtail;
    each cut to 63 characters and a trailing '-' dropped.
  * What an install or upgrade renders (logs_objects, written by
    render_logs; labelled and annotated as the release's, so helm's pruning
    in k8s_sim_objects removes them on uninstall and an upgrade that no
    longer renders them): with loki.enabled, Service NS/LOKI (ClusterIP,
    port loki.service.port, default 3100, named http-metrics, targetPort
    http-metrics); with promtail.enabled, DaemonSet NS/PROMTAIL (its
    container's ports http-metrics 3101 and one per extraPorts entry, its
    extraVolumes and extraVolumeMounts beside the chart's own), its status
    scheduled on every running node and ready there unless Promtail
    refuses its configuration (promtail_errors), and for each extraPorts
    entry KEY with a non-empty service, Service NS/PROMTAIL-KEY (lowercased)
    of service.type (default ClusterIP), port service.port (default the
    containerPort), targetPort the entry's name, protocol its protocol,
    nodePort service.nodePort for a NodePort Service (none given, or a
    LoadBalancer: one allocated from the name). Not rendered: Loki's
    StatefulSet, its headless and memberlist Services, its ConfigMap or
    Secret; Promtail's config Secret, ServiceAccount and RBAC; the
    data-source ConfigMap for Grafana's sidecar (grafana.sidecar.
    datasources.enabled), the test pod, and any other subchart.
  * Loki's pod (loki_ready): starts with the install, and again with an
    upgrade that changes loki.* (a new pod); ready --loki-ms after that.
    The service proxy reaches it before it is ready (a simplification: the
    chart's readinessProbe is /ready, so a real kube-apiserver answers 503
    "no endpoints available" in that window instead of Loki's 503).
    Loki's own configuration is not checked beyond the chart's schema.
  * Promtail's configuration (promtail_errors, scrape_jobs): the chart's
    default job kubernetes-pods and the jobs of
    promtail.config.snippets.extraScrapeConfigs (YAML text of a list of
    scrape configs); Promtail refuses text that does not parse, is not a
    list, a job that is not a map, without job_name, or a job_name twice
    (kubernetes-pods included): its pods crash-loop (the DaemonSet not
    ready) and ship nothing. It ships to Loki only when a
    promtail.config.clients URL (with {{ .Release.Name }} and
    {{ .Release.Namespace }} filled in, as the chart's tpl does) is
    http://HOST:PORT/loki/api/v1/push with HOST this release's LOKI
    (LOKI, LOKI.NS, LOKI.NS.svc, LOKI.NS.svc.cluster.local) and PORT its
    Service's port: the chart's default http://RELEASE:3100/... reaches no
    Loki once LOKI is not RELEASE.
  * Which streams Loki holds: the label sets of --log-streams FILE (JSON
    list of {label: value} objects; re-read when it changes; no file: none)
    are what the hosts and pods send; Loki shows one only while it is ready,
    Promtail ships (above), and Promtail's configuration would make that
    stream:
      - a pod stream (labels namespace, pod and container): promtail.enabled
        (its kubernetes-pods job); its other labels are taken as they are;
      - any other stream: one of the extra jobs of type syslog or journal
        whose static labels (syslog.labels, journal.labels) it carries, all
        its other labels being target_label of that job's relabel_configs
        (action replace, the default) with a source of that type
        (__syslog_* / __journal_*, or a static label), and
          . syslog: the job listens on all addresses (listen_address
            0.0.0.0:PORT, :PORT or [::]:PORT; listen_protocol tcp, the
            default, or udp) and an extraPorts entry of that containerPort
            and protocol has a NodePort or LoadBalancer Service (what the
            hosts send to from outside the cluster);
          . journal: journal.path (default /var/log/journal) lies under an
            extraVolumeMounts mountPath whose volume in extraVolumes is a
            hostPath that maps it to the host's /var/log/journal (or below).
    Not modelled: when a line was sent (series and labels answer the
    streams shipped now, whatever start, end or since say: a stream whose
    job went stops showing at once), log lines and queries
    (query, query_range, tail, push), other job types (static_configs file
    targets, kubernetes_sd_configs other than the default job, ...), other
    relabel actions, pipeline stages, /etc/machine-id (not needed to read
    a journal directory), retention.
  * Through the service proxy (service_proxy; Service NS/LOKI by port 3100
    or http-metrics, http: or no scheme; GET only, else 405; https: 503):
      - /ready: 503 text "Ingester not ready: waiting for 15s after being
        ready\\n" before, then 200 "ready\\n" (text/plain);
      - /loki/api/v1/labels (or /label): {"status": "success", "data":
        [label names, sorted]};
      - /loki/api/v1/label/NAME/values: {"status": "success", "data":
        [values, sorted]}, over the streams that query=SELECTOR (optional)
        selects;
      - /loki/api/v1/series?match[]=SELECTOR (repeatable; start, end
        ignored): {"status": "success", "data": [label sets of the streams
        any selector matches, sorted]}; no match[]: 400;
      - a selector Loki refuses: 400 text in LogQL's words ("parse error at
        line 1, col N: syntax error: unexpected IDENTIFIER, expecting
        STRING", "only label matchers are supported", "parse error :
        queries require at least one regexp or equality matcher that does
        not have an empty-compatible value. ...");
      - any other path: 404 "404 page not found\\n".
    Selectors: {NAME OP "VALUE", ...} with OP = != =~ !~ (Prometheus's
    matchers: a missing label is ""; regular expressions fully anchored,
    Python's re standing in for RE2), VALUE a Go string ("..." with
    escapes, or `...`).

State (k8s.json "logs", {NS/RELEASE: {"values", "since", "loki"}}): the
release's coalesced values, when Loki's pod started (null without Loki)
and the digest of loki.* it started with.
"""
import copy
import hashlib
import json
import os
import re
import urllib.parse

import yaml

import k8s_sim_monitoring as monitoring
import k8s_sim_objects as objects

LOGS_CHART = "loki-stack"
LOKI_PORT, LOKI_PORT_NAME = 3100, "http-metrics"
PROMTAIL_PORT = 3101
LOKI_CHART = ("loki", "2.16.0", "v2.6.1")  # the subcharts loki-stack 2.10.2 resolves to
PROMTAIL_CHART = ("promtail", "6.15.5", "2.9.3")
PODS_JOB = "kubernetes-pods"  # the promtail chart's default job
JOURNAL_HOST, JOURNAL_DEFAULT = "/var/log/journal", "/var/log/journal"
PUSH_PATH = "/loki/api/v1/push"
NOT_READY = b"Ingester not ready: waiting for 15s after being ready\n"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=UTF-8"
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

d = monitoring.d


def sha(v):
    return hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()


def sub_fullname(values, release, chart):
    """The loki or promtail subchart's fullname."""
    v = d(values.get(chart))
    if v.get("fullnameOverride"):
        return monitoring.trunc(str(v["fullnameOverride"]), 63)
    name = str(v.get("nameOverride") or chart)
    return monitoring.trunc(release if name in release else "%s-%s" % (release, name), 63)


def enabled(values, key):
    return d(values.get(key)).get("enabled", True) is not False


def loki_port(values):
    p = d(d(values.get("loki")).get("service")).get("port")
    return p if isinstance(p, int) and not isinstance(p, bool) else LOKI_PORT


def extra_ports(values):
    """{KEY: entry} of promtail.extraPorts that are maps."""
    return {str(k): v for k, v in d(d(values.get("promtail")).get("extraPorts")).items() if isinstance(v, dict)}


def node_port(ns, name, given):
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    return 30000 + int(objects.sha256("%s/%s" % (ns, name))[:4], 16) % 2768


# ---- what an install renders -----------------------------------------------------------

def logs_objects(w, chart, values, release, ns):
    """[(resource, object)] the stack's templates render, as helm sends them."""
    ann = {objects.RELEASE_NAME: release, objects.RELEASE_NS: ns}
    out = []

    def service(name, labels, selector, stype, port):
        old = w.get(objects.SERVICE, ns, name)
        ip = ((old or {}).get("spec") or {}).get("clusterIP") or \
            w.service_ip(11 + int(objects.sha256("%s/%s" % (ns, name))[:4], 16) % 240)
        out.append((objects.SERVICE, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": dict(ann)},
            "spec": {"type": stype, "clusterIP": ip, "selector": selector, "ports": [port]}}))
    if enabled(values, "loki"):
        name = sub_fullname(values, release, "loki")
        chart_label = "%s-%s" % LOKI_CHART[:2]
        service(name, {"app": "loki", "chart": chart_label, "release": release, "heritage": "Helm"},
                {"app": "loki", "release": release}, "ClusterIP",
                {"name": LOKI_PORT_NAME, "port": loki_port(values), "targetPort": LOKI_PORT_NAME, "protocol": "TCP"})
    if enabled(values, "promtail"):
        name = sub_fullname(values, release, "promtail")
        sel = {"app.kubernetes.io/name": "promtail", "app.kubernetes.io/instance": release}
        labels = dict(sel, **{"helm.sh/chart": "%s-%s" % PROMTAIL_CHART[:2], "app.kubernetes.io/version":
                              PROMTAIL_CHART[2], "app.kubernetes.io/managed-by": "Helm"})
        for key, e in sorted(extra_ports(values).items()):
            svc = d(e.get("service"))
            if not svc:
                continue
            sname = "%s-%s" % (name, key.lower())
            stype = str(svc.get("type") or "ClusterIP")
            port = {"name": e.get("name"), "port": svc.get("port") or e.get("containerPort"),
                    "targetPort": e.get("name"), "protocol": e.get("protocol") or "TCP"}
            if stype in ("NodePort", "LoadBalancer"):
                port["nodePort"] = node_port(ns, sname, svc.get("nodePort") if stype == "NodePort" else None)
            service(sname, dict(labels, **d(e.get("labels"))), sel, stype, port)
        p = d(values.get("promtail"))
        ports = [{"name": "http-metrics", "containerPort": PROMTAIL_PORT, "protocol": "TCP"}] + \
            [{"name": e.get("name"), "containerPort": e.get("containerPort"), "protocol": e.get("protocol") or "TCP"}
             for _, e in sorted(extra_ports(values).items())]
        mounts = [{"name": "config", "mountPath": "/etc/promtail"}, {"name": "run", "mountPath": "/run/promtail"},
                  {"name": "containers", "mountPath": "/var/lib/docker/containers", "readOnly": True},
                  {"name": "pods", "mountPath": "/var/log/pods", "readOnly": True}] + \
            [copy.deepcopy(m) for m in p.get("extraVolumeMounts") or [] if isinstance(m, dict)]
        vols = [{"name": "config", "secret": {"secretName": name}},
                {"name": "run", "hostPath": {"path": "/run/promtail"}},
                {"name": "containers", "hostPath": {"path": "/var/lib/docker/containers"}},
                {"name": "pods", "hostPath": {"path": "/var/log/pods"}}] + \
            [copy.deepcopy(v) for v in p.get("extraVolumes") or [] if isinstance(v, dict)]
        out.append((objects.DAEMONSET, {
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": dict(ann)},
            "spec": {"selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": sel, "annotations": {"checksum/config": sha(
                         d(p.get("config")))}},
                                  "spec": {"serviceAccountName": name, "containers": [{
                                      "name": "promtail", "image": "docker.io/grafana/promtail:%s" % PROMTAIL_CHART[2],
                                      "args": ["-config.file=/etc/promtail/promtail.yaml"],
                                      "ports": ports, "volumeMounts": mounts}], "volumes": vols}}}}))
    return out


def render_logs(w, chart, values, release, ns):
    """An install or upgrade of the stack: its objects written (with the
    DaemonSet's status) and the release's state: Loki's start.
    [(resource, object)]."""
    made = []
    n = len(monitoring.running_nodes(w))
    ready = n if not promtail_errors(values) else 0
    for r, obj in logs_objects(w, chart, values, release, ns):
        o = w.upsert(r, obj, "helm")
        if r is objects.DAEMONSET:
            st = {"observedGeneration": o["metadata"].get("generation", 1), "desiredNumberScheduled": n,
                  "currentNumberScheduled": n, "numberReady": ready, "numberAvailable": ready,
                  "updatedNumberScheduled": n, "numberMisscheduled": 0}
            if n - ready:
                st["numberUnavailable"] = n - ready
            o = w.set_status(r, o, st, "kube-controller-manager")
        made.append((r, o))
    logs = w.st.setdefault("logs", {})
    key = "%s/%s" % (ns, release)
    old = logs.get(key) or {}
    digest = sha(d(values.get("loki"))) if enabled(values, "loki") else None
    since = None
    if digest is not None:
        since = old.get("since") if old.get("since") is not None and old.get("loki") == digest else w.now
    logs[key] = {"values": copy.deepcopy(values), "since": since, "loki": digest}
    return made


def forget_release(w, release, ns):
    """An uninstall: the model's memory of the release goes with it."""
    w.st.get("logs", {}).pop("%s/%s" % (ns, release), None)


def releases(w):
    """[(NS, RELEASE, state)] of the deployed releases of the stack."""
    out = []
    for k, v in sorted((w.st.get("releases") or {}).items()):
        m = (w.st.get("logs") or {}).get(k)
        if v.get("chart") == LOGS_CHART and v.get("status") == "deployed" and m is not None:
            ns, name = k.split("/", 1)
            out.append((ns, name, m))
    return out


def loki_ready(w, m):
    return m.get("since") is not None and w.now >= m["since"] + getattr(w.a, "loki_ms", 300) / 1000.0


# ---- Promtail --------------------------------------------------------------------------

def extra_jobs(values):
    """(jobs, errors) of promtail.config.snippets.extraScrapeConfigs."""
    text = d(d(d(values.get("promtail")).get("config")).get("snippets")).get("extraScrapeConfigs")
    if text is None or text == "":
        return [], []
    if not isinstance(text, str):
        return [], ["extraScrapeConfigs is not a string"]
    try:
        jobs = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [], ["extraScrapeConfigs: %s" % str(e).replace("\n", " ")]
    if jobs is None:
        return [], []
    if not isinstance(jobs, list):
        return [], ["scrape_configs: not a list"]
    return jobs, []


def promtail_errors(values):
    """What Promtail refuses of its scrape configs, as short messages; [] when it starts."""
    jobs, errs = extra_jobs(values)
    seen = {PODS_JOB}
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            errs.append("scrape_configs[%d]: not a map" % i)
            continue
        name = job.get("job_name")
        if not isinstance(name, str) or not name:
            errs.append("scrape_configs[%d]: job_name is required" % i)
            continue
        if name in seen:
            errs.append('found multiple scrape configs with job name "%s"' % name)
        seen.add(name)
        for kind in ("syslog", "journal"):
            if kind in job and not isinstance(job[kind], (dict, type(None))):
                errs.append('job "%s": %s is not a map' % (name, kind))
    return errs


def scrape_jobs(values):
    """[(kind, job)] of the extra jobs of type syslog or journal."""
    if promtail_errors(values):
        return []
    return [(k, j) for j in extra_jobs(values)[0] for k in ("syslog", "journal") if k in j]


def relabel_targets(job, kind, static):
    """The labels a job's relabel_configs give a stream: target_label of
    each replace rule with a source the target type has."""
    out = set()
    for rc in job.get("relabel_configs") or []:
        if not isinstance(rc, dict) or str(rc.get("action") or "replace").lower() != "replace":
            continue
        target = rc.get("target_label")
        srcs = [str(s) for s in rc.get("source_labels") or []]
        if isinstance(target, str) and LABEL_NAME.fullmatch(target) and \
                any(s.startswith("__%s_" % kind) or s in static for s in srcs):
            out.add(target)
    return out


def syslog_reachable(values, job):
    """A syslog job listening on all addresses on a port the hosts reach
    from outside the cluster (an extra port with a NodePort or
    LoadBalancer Service)."""
    s = d(job.get("syslog"))
    m = re.fullmatch(r"(0\.0\.0\.0|\[::\]|)?:(\d{1,5})", str(s.get("listen_address") or ""))
    if not m:
        return False
    proto = str(s.get("listen_protocol") or "tcp").upper()
    for e in extra_ports(values).values():
        svc = d(e.get("service"))
        if e.get("containerPort") == int(m.group(2)) and str(e.get("protocol") or "TCP") == proto and \
                svc.get("type") in ("NodePort", "LoadBalancer"):
            return True
    return False


def journal_reachable(values, job):
    """journal.path under a mount of a hostPath volume that maps it to the host's journal."""
    path = str(d(job.get("journal")).get("path") or JOURNAL_DEFAULT).rstrip("/") or "/"
    p = d(values.get("promtail"))
    vols = {v.get("name"): v for v in p.get("extraVolumes") or [] if isinstance(v, dict)}
    for mnt in p.get("extraVolumeMounts") or []:
        if not isinstance(mnt, dict) or mnt.get("subPath"):
            continue
        mp = str(mnt.get("mountPath") or "").rstrip("/")
        if not mp or not (path == mp or path.startswith(mp + "/")):
            continue
        host = d(d(vols.get(mnt.get("name"))).get("hostPath")).get("path")
        if isinstance(host, str):
            hp = host.rstrip("/") + path[len(mp):]
            if hp == JOURNAL_HOST or hp.startswith(JOURNAL_HOST + "/"):
                return True
    return False


def ships_to_loki(values, release, ns):
    """A client URL of Promtail's that reaches this release's Loki."""
    if not enabled(values, "loki"):
        return False
    loki = sub_fullname(values, release, "loki")
    hosts = {loki, "%s.%s" % (loki, ns), "%s.%s.svc" % (loki, ns), "%s.%s.svc.cluster.local" % (loki, ns)}
    for c in d(d(values.get("promtail")).get("config")).get("clients") or []:
        url = re.sub(r"\{\{-?\s*\.Release\.Name\s*-?\}\}", release, str(d(c).get("url") or ""))
        url = re.sub(r"\{\{-?\s*\.Release\.Namespace\s*-?\}\}", ns, url)
        try:
            u = urllib.parse.urlsplit(url)
            port = u.port or 80
        except ValueError:
            continue
        if u.scheme == "http" and u.hostname in hosts and port == loki_port(values) and \
                u.path.rstrip("/") == PUSH_PATH:
            return True
    return False


def producers(values):
    """[(static labels, allowed labels)] of the extra jobs whose input reaches Promtail."""
    out = []
    for kind, job in scrape_jobs(values):
        static = {str(k): str(v) for k, v in d(d(job.get(kind)).get("labels")).items()}
        ok = syslog_reachable(values, job) if kind == "syslog" else journal_reachable(values, job)
        if ok:
            out.append((static, set(static) | relabel_targets(job, kind, static)))
    return out


LOG_STREAMS = {"path": None, "stamp": None, "streams": []}


def check_streams(v):
    """The streams of --log-streams as a list of {name: value}; ValueError."""
    if not isinstance(v, list):
        raise ValueError("not a JSON list of label sets")
    for s in v:
        if not isinstance(s, dict) or not s:
            raise ValueError("a stream that is not a non-empty JSON object: %s" % json.dumps(s))
        for k, x in s.items():
            if not LABEL_NAME.fullmatch(k) or k.startswith("__") or not isinstance(x, str) or not x:
                raise ValueError("%s: not a label name with a non-empty string value" % json.dumps({k: x}))
    return v


def log_streams(w):
    """The label sets of --log-streams FILE (re-read when it changes; no file: none)."""
    path = getattr(w.a, "log_streams", None)
    if not path:
        return []
    try:
        st = os.stat(path)
    except OSError:
        return []
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    if LOG_STREAMS["path"] != path or LOG_STREAMS["stamp"] != stamp:
        try:
            with open(path, encoding="utf-8") as f:
                LOG_STREAMS.update(path=path, stamp=stamp, streams=check_streams(json.load(f)))
        except (OSError, ValueError):
            pass  # the last good read stays
    return LOG_STREAMS["streams"] if LOG_STREAMS["path"] == path else []


def load_log_streams(path):
    """--log-streams FILE checked at start (it may not exist yet). Raises ValueError."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            check_streams(json.load(f))


def visible_streams(w, ns, release, m):
    """The streams Loki holds now: [{name: value}], each once."""
    v = m["values"]
    if not loki_ready(w, m) or not enabled(v, "promtail") or promtail_errors(v) or not ships_to_loki(v, release, ns):
        return []
    prods = producers(v)
    out = {}
    for s in log_streams(w):
        pod = all(k in s for k in ("namespace", "pod", "container"))
        if pod or any(all(s.get(k) == x for k, x in static.items()) and set(s) <= allowed
                      for static, allowed in prods):
            out[json.dumps(s, sort_keys=True)] = dict(sorted(s.items()))
    return [out[k] for k in sorted(out)]


# ---- LogQL stream selectors ------------------------------------------------------------

class ParseError(Exception):
    pass


LEX = re.compile(r'(?P<ws>\s+)|(?P<id>[a-zA-Z_][a-zA-Z0-9_]*)|(?P<str>"(?:[^"\\\n]|\\.)*"|`[^`]*`)|'
                 r'(?P<open>"|`)|(?P<num>[0-9]+(?:\.[0-9]+)?)|(?P<op>=~|!~|!=|\|=|\|~|\|>|=|\{|\}|,|\||\(|\))')
ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def tokens(s):
    """[(kind, text, col)]: IDENTIFIER, STRING, NUMBER, an operator's text, or
    a character Loki's lexer has no token for; then $end."""
    out, i = [], 0
    while i < len(s):
        m = LEX.match(s, i)
        if m is None:
            out.append((s[i], s[i], i + 1))
            i += 1
            continue
        i = m.end()
        k = m.lastgroup
        if k == "ws":
            continue
        if k == "open":
            raise ParseError("parse error at line 1, col %d: literal not terminated" % (m.start() + 1))
        out.append(({"id": "IDENTIFIER", "str": "STRING", "num": "NUMBER"}.get(k, m.group()), m.group(), m.start() + 1))
    out.append(("$end", "", len(s) + 1))
    return out


def unquote(text, col):
    """A Go string literal's value (strconv.Unquote: "..." with escapes, `...` raw)."""
    if text[0] == "`":
        return text[1:-1]
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        if body[i] != "\\":
            out.append(body[i])
            i += 1
            continue
        n = body[i + 1]
        k = {"x": 2, "u": 4, "U": 8}.get(n, 0)
        hexd = body[i + 2:i + 2 + k]
        if n in ESCAPES:
            out.append(ESCAPES[n])
            i += 2
        elif k and re.fullmatch(r"[0-9a-fA-F]{%d}" % k, hexd) and int(hexd, 16) < 0x110000:
            out.append(chr(int(hexd, 16)))
            i += 2 + k
        elif re.fullmatch(r"[0-3][0-7]{2}", body[i + 1:i + 4]):
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            raise ParseError("parse error at line 1, col %d: invalid char escape" % col)
    return "".join(out)


def unexpected(tok, expecting=None):
    msg = "parse error at line 1, col %d: syntax error: unexpected %s" % (tok[2], tok[0])
    return ParseError(msg + (", expecting %s" % expecting if expecting else ""))


def parse_selector(s):
    """[(name, op, value, compiled regex or None)] of a stream selector, as
    LogQL's ParseMatchers with validation takes it. Raises ParseError."""
    toks = tokens(s)
    i = 0

    def take(*kinds, expecting=None):
        nonlocal i
        t = toks[i]
        if t[0] not in kinds:
            raise unexpected(t, expecting)
        i += 1
        return t
    take("{")
    if toks[i][0] == "}":
        raise unexpected(toks[i], "IDENTIFIER")
    out = []
    while True:
        name = take("IDENTIFIER", expecting="IDENTIFIER")
        op = take("=", "!=", "=~", "!~", expecting="!= or !~ or =~ or =")
        val = take("STRING", expecting="STRING")
        value = unquote(val[1], val[2])
        rx = None
        if op[0] in ("=~", "!~"):
            try:
                rx = re.compile(value)
            except re.error as e:
                raise ParseError("parse error at line 1, col %d: error parsing regexp: %s: `%s`" % (val[2], e, value))
        out.append((name[1], op[0], value, rx))
        if take("}", ",", expecting="} or ,")[0] == "}":
            break
    if toks[i][0] in ("|=", "|~", "|", "!=", "!~", "|>"):
        raise ParseError("only label matchers are supported")
    if toks[i][0] != "$end":
        raise unexpected(toks[i])
    if all(matches(mt, "") for mt in out):
        raise ParseError('parse error : queries require at least one regexp or equality matcher that does not have '
                         'an empty-compatible value. For instance, app=~".*" does not meet this requirement, but '
                         'app=~".+" will')
    return out


def matches(mt, value):
    _, op, want, rx = mt
    if op == "=":
        return value == want
    if op == "!=":
        return value != want
    hit = rx.fullmatch(value) is not None
    return hit if op == "=~" else not hit


def selects(sel, stream):
    return all(matches(mt, stream.get(mt[0], "")) for mt in sel)


# ---- Loki's HTTP API -------------------------------------------------------------------

def body(v):
    return json.dumps(v, separators=(",", ":")).encode()


def loki_answer(w, ns, release, m, path, query):
    """(code, body, content type) of Loki for one proxied GET."""
    if path == "ready":
        return (200, b"ready\n", TEXT) if loki_ready(w, m) else (503, NOT_READY, TEXT)
    parts = path.split("/")
    streams = visible_streams(w, ns, release, m)
    try:
        if path in ("loki/api/v1/labels", "loki/api/v1/label"):
            return 200, body({"status": "success", "data": sorted({k for s in streams for k in s})}), JSON
        if len(parts) == 6 and parts[:4] == ["loki", "api", "v1", "label"] and parts[5] == "values":
            q = query.get("query")
            q = q[-1] if isinstance(q, list) else q
            if q:
                sel = parse_selector(q)
                streams = [s for s in streams if selects(sel, s)]
            return 200, body({"status": "success", "data": sorted({s[parts[4]] for s in streams
                                                                   if parts[4] in s})}), JSON
        if path == "loki/api/v1/series":
            want = query.get("match[]") or []
            want = want if isinstance(want, list) else [want]
            if not want:
                return 400, b"at least one match[] argument is required\n", TEXT
            sels = [parse_selector(x) for x in want]
            return 200, body({"status": "success", "data": [s for s in streams
                                                            if any(selects(sel, s) for sel in sels)]}), JSON
    except ParseError as e:
        return 400, (str(e) + "\n").encode(), TEXT
    return 404, b"404 page not found\n", TEXT


def service_proxy(w, method, ns, ref, rest, query, others):
    """kube-apiserver's service proxy: the Service NS/LOKI of a deployed
    release answered by its Loki, any other by others(w, method, ns, ref,
    rest, query) (the registry's and the monitoring stack's models). Every
    value of a repeated query parameter from w.query_all when the server
    gave it. (code, body, content type)."""
    scheme, name, port = monitoring.parse_ref(ref)
    for rns, release, m in releases(w):
        v = m["values"]
        if rns != ns or not enabled(v, "loki") or name != sub_fullname(v, release, "loki"):
            continue
        monitoring.proxy_target(w, ns, name, port)
        if method != "GET":
            raise monitoring.method_not_modelled()
        monitoring.plain_http(scheme)
        full = getattr(w, "query_all", None)
        q = dict(full) if isinstance(full, dict) else {k: [x] for k, x in query.items()}
        return loki_answer(w, ns, release, m, "/".join(rest).strip("/"), q)
    return others(w, method, ns, ref, rest, query)
