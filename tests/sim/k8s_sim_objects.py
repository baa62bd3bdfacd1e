# SPDX-License-Identifier: MIT
"""k8s_sim_objects.py — the object side of k8s_sim.py: a Kubernetes API
server's generic object store and the K3s controllers that act on it.

  * The store (World): namespaced and cluster-scoped objects of the kinds in
    RESOURCES, each with metadata.uid, resourceVersion (one counter for the
    whole cluster, as etcd's revision), creationTimestamp, generation (CRDs
    and workloads: bumped when anything but metadata and status changes),
    managedFields (per manager and operation, the leaf fields it set), the
    status subresource (status in a create or update of the main resource
    is ignored), finalizers and deletionTimestamp, ownerReferences and their
    garbage collection, namespace deletion.
  * Resources of stored CustomResourceDefinitions (Res stored_crd: Argo
    CD's Application and AppProject, argoproj.io/v1alpha1, namespaced):
    served (paths, discovery) only while the CRD PLURAL.GROUP exists and
    defines them (group, plural, kind, scope; the version served) —
    otherwise the 404 of an unknown path; validated against that CRD
    version's openAPIV3Schema (crd_json_schema: required, types, enums,
    nullable, int-or-string, defaults filled in; unknown fields pruned
    unless x-kubernetes-preserve-unknown-fields); a status subresource only
    when the CRD declares one — Argo CD's CRDs declare none, so a
    whole-object create, update or apply carries status (owned in
    managedFields like the rest) and any change but metadata, status
    included, bumps the generation; their objects go once the CRD does
    (crd_controller). A CRD itself is checked as apiextensions checks it,
    in part (crd_causes: the name PLURAL.GROUP, group, plural, kind, scope,
    one storage version, structural schemas), defaulted (singular,
    listKind) and given its status (NamesAccepted, Established,
    storedVersions).
  * Validation (kube-apiserver + apiextensions): names are DNS-1123
    subdomains (namespaces labels, services RFC 1035 labels); HelmChart,
    HelmChartConfig and the Traefik CRDs against the official schemas
    (--schemas DIR), a stored CRD's resources against its schema; unknown
    fields are pruned as a structural CRD schema prunes them
    (fieldValidation Warn, the default: a Warning header; Strict: 400); a
    Service's spec.loadBalancerClass as
    validateLoadBalancerClassField checks it (service_causes: on every
    update of a Service that is and stays type LoadBalancer it may not
    change, unset -> set and set -> unset included; it must be a qualified
    name; another type may not set it), on every write path: create, PUT,
    merge / JSON / strategic patch, server-side apply, the deploy
    controller's apply and the helm controller's releases; other violations
    422 Invalid with causes.
  * The HTTP API (api()): discovery, get/list (labelSelector,
    fieldSelector, limit/continue), create, replace, merge / JSON patch,
    server-side apply (application/apply-patch+yaml, conflicts, force),
    delete and deletecollection, the status subresource and pod logs.
  * K3s's deploy controller (deploy_controller): every running server's
    /var/lib/rancher/k3s/server/manifests, an Addon per file, wrangler's
    apply with pruning, Events.
  * K3s's helm controller (helm_controller) and the Job controller and
    kubelet for its jobs: a Job helm-install-NAME per HelmChart whose pod
    runs klipper-helm's helm install/upgrade, decided as helm decides it
    (chart from the servers' static directory or chartContent, Chart.yaml,
    values.schema.json), restarts with back-off until the Job's backoffLimit
    (the HelmChart's backOffLimit, default 1000), helm's output as the
    pod's log; uninstall through helm-delete-NAME when a HelmChart is deleted.
    An install (not an upgrade) first creates the CustomResourceDefinitions
    of the chart's crds/ directory (*.yaml, *.yml, *.json; not templated;
    one that exists is skipped; only CRDs are modelled there, anything
    else fails the install), before the values are checked, so they stay
    when the install fails later; an upgrade never touches them, an
    uninstall never deletes them (helm v3's documented behaviour). A
    subchart's crds/ are not modelled.
  * K3s's packaged Traefik (k8s_sim.py --traefik-chart VERSION: 34.2.0,
    K3s 1.33's and the default, 38.0.2 or 39.0.7), unless the cluster's
    `disable` holds traefik: every running server's manifests directory also
    holds the traefik.yaml K3s writes itself (HelmCharts kube-system/traefik-crd
    and kube-system/traefik, K3s's valuesContent; not a guest file: a guest's
    own traefik.yaml is overwritten, traefik.yaml.skip keeps it out), and the
    static directory the two packaged chart archives, so they need no file
    there. The traefik chart's values (HelmChart, then HelmChartConfig,
    coalesced over the few chart defaults the model renders from) are
    checked against that version's values.schema.json
    (--schemas/traefik-helm-chart-vVERSION, draft 2020-12: v39 refuses
    unknown keys, older ones do not); an install or upgrade renders what the
    product checks: Deployment (DaemonSet with deployment.kind DaemonSet)
    kube-system/traefik, and Service kube-system/traefik (service.type,
    default LoadBalancer; the ports with expose.default, exposedPort ->
    targetPort or the port's name; service.annotations, service.spec,
    service.ipFamilyPolicy). What the API refuses of those objects
    (release_refusals: World.validate, e.g. a Service whose
    loadBalancerClass would change) fails the run as helm fails it ("Error:
    UPGRADE FAILED: cannot patch "traefik" with kind Service: <the API's
    message>"), the job crash-looping, and changes nothing. A release's
    objects (annotated meta.helm.sh/release-name) that an upgrade no longer
    renders, or an uninstall, are deleted.
  * Load-balancer addresses (lb_controller, every pass, so a Service follows
    the cluster as it is now; a status that is already right is not written
    again): the status.loadBalancer.ingress of every Service of type
    LoadBalancer, from
      - kube-vip, when it runs with services on: a DaemonSet (any
        namespace) whose container's image contains "kube-vip" and whose
        env has svc_enable true (Go's ParseBool; a value it refuses stops
        kube-vip), for a Service kube-vip's class filter takes (legacy
        handling, kube-vip's default: no loadBalancerClass unless
        lb_class_only, or the class lb_class_name, default
        kube-vip.io/kube-vip-class; lb_class_legacy_handling false: that
        class only) and not annotated kube-vip.io/ignore "true": the
        addresses of the annotation kube-vip.io/loadbalancerIPs (comma
        separated), else of the deprecated spec.loadBalancerIP. Without such
        a DaemonSet (the provisioner's has svc_enable "true" since the edge;
        it reaches the cluster as a manifest the deploy controller applies)
        the annotation gives nothing;
      - else K3s's ServiceLB (the cloud-provider service controller), which
        ignores a Service whose spec.loadBalancerClass is set (any value)
        and otherwise, unless servicelb is disabled, gives the first
        server's node InternalIP;
      - else nothing (status.loadBalancer {}).
    A class-less Service with an address kube-vip serves gets kube-vip's:
    the real ServiceLB and kube-vip would both write its status (which is
    why the edge names kube-vip's class). A Service that no controller
    serves any more loses its address here; the real status would go stale.
  * Argo CD (k8s_sim_argocd.py), in each namespace where a helm release of
    the chart named argo-cd is deployed: its AppProject default and its
    application controller for that namespace's Applications, in Argo
    CD's order and words, over the Git repositories of --git-repos.
  * The monitoring stack (k8s_sim_monitoring.py), where a release of the
    chart named kube-prometheus-stack is deployed: the Services (and the
    node-exporter DaemonSet) its install renders, Prometheus's
    /api/v1/targets and Grafana's health, search and data sources through
    kube-apiserver's service proxy (GET /api/v1/namespaces/NS/services/
    [SCHEME:]NAME[:PORT]/proxy/PATH: 404 for a Service that does not exist,
    503 "no endpoints available" for one without a modelled pod), with the
    Prometheus operator's ServiceMonitor and PodMonitor served while their
    CRDs exist.
  * Workloads and the lab's registry (k8s_sim_registry.py): Deployments and
    PersistentVolumeClaims decoded and validated as kube-apiserver does
    (typed patch objects for server-side apply); a client's Deployment
    rolled out (ReplicaSet, Pods, status) --deploy-ms after the claims it
    mounts exist, a local-path claim Bound once its consumer is available;
    DIR/ready (--registry-dir) while Deployment registry/registry is
    available, and the Distribution API of Service registry/registry
    through the service proxy.
  * The log store (k8s_sim_logs.py), where a release of the chart named
    loki-stack is deployed: Loki's Service, Promtail's DaemonSet and extra
    ports' Services, and Loki's /ready, labels and series through the
    service proxy.

State (in k8s.json): "objects" {KEY: object} with KEY GROUP/PLURAL/NS/NAME
("core" for the core group, NS empty for cluster-scoped objects); an
object's "_sim" holds what the simulator keeps beside it (managed fields,
a job's run, a pod's log, "spec_at" when a stored CRD's object's spec last
changed, "argocd" what Argo CD last saw of an Application) and is never
served; "rv" the resourceVersion counter; "deploy" {K3S-START-KEY: {PATH:
{"sum", "ok", "at"}}} what each server's deploy controller has seen;
"releases" {NS/NAME: {"revision", "chart", "version", "status"}} the helm
releases ("chart": the chart's name, which argocd_controller and the
monitoring model follow); "monitoring" {NS/NAME: ...} what the monitoring
model remembers of a deployed kube-prometheus-stack release
(k8s_sim_monitoring.py); "logs" the same of a loki-stack release
(k8s_sim_logs.py).
"""
import base64
import copy
import gzip
import hashlib
import io
import ipaddress
import json
import os
import posixpath
import re
import tarfile
import time
import urllib.parse

import jsonschema
import yaml

import k8s_sim_argocd as argocd
import k8s_sim_logs as logs
import k8s_sim_monitoring as monitoring
import k8s_sim_registry as registry

MANIFESTS = "/var/lib/rancher/k3s/server/manifests/"
STATIC = "/var/lib/rancher/k3s/server/static/"
DEPLOY_RETRY_S = 15  # K3s's deploy controller lists its directories every 15 s
EVENT_TTL_S = 3600  # kube-apiserver --event-ttl default (1h)
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
CHART_LABEL = "helmcharts.helm.cattle.io/chart"
CONFIG_HASH = "helmcharts.helm.cattle.io/configHash"
MANAGED_BY = "helmcharts.cattle.io/managed-by"
HELM_FINALIZER = "wrangler.cattle.io/on-helm-chart-remove"
JOB_IMAGE = "rancher/klipper-helm:v0.9.8-build20250709"
GVK_ANNOTATION = "addon.k3s.cattle.io/gvks"
OS_APPLIED = "objectset.rio.cattle.io/applied"
OS_HASH = "objectset.rio.cattle.io/hash"


class ApiError(Exception):
    """An API answer other than success: a Kubernetes Status."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
             "reason": self.reason, "code": self.code}
        if self.details is not None:
            s["details"] = self.details
        return s


# ---- the resources the API serves -------------------------------------------------

class Res:
    """A resource the API knows. schema: the official schema file that
    validates it (Schemas); stored_crd: served only while the
    CustomResourceDefinition PLURAL.GROUP in the store defines it, validated
    by that CRD's openAPIV3Schema, with a status subresource only if the CRD
    declares one (World.crd_version, World.status_sub)."""

    def __init__(self, group, version, plural, kind, namespaced=True, gen=False, schema=None, readonly=False,
                 traefik=False, stored_crd=False):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.gen, self.schema, self.readonly, self.traefik = (namespaced, gen, schema, readonly,
                                                                              traefik)
        self.stored_crd = stored_crd
        self.gv = "%s/%s" % (group, version) if group else version
        self.crd = group.endswith(".cattle.io") or group == "traefik.io" or stored_crd

    def gr(self):
        """'helmcharts.helm.cattle.io', 'secrets': how NotFound and AlreadyExists name it."""
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    def gk(self):
        """'HelmChart.helm.cattle.io', 'Namespace': how Invalid names it."""
        return "%s.%s" % (self.kind, self.group) if self.group else self.kind


TRAEFIK_KINDS = ("IngressRoute", "IngressRouteTCP", "IngressRouteUDP", "Middleware", "MiddlewareTCP",
                 "ServersTransport", "ServersTransportTCP", "TLSOption", "TLSStore", "TraefikService")

RESOURCES = [
    Res("", "v1", "namespaces", "Namespace", namespaced=False),
    Res("", "v1", "configmaps", "ConfigMap"),
    Res("", "v1", "secrets", "Secret"),
    Res("", "v1", "serviceaccounts", "ServiceAccount"),
    Res("", "v1", "services", "Service"),
    Res("", "v1", "endpoints", "Endpoints"),
    Res("", "v1", "pods", "Pod", readonly=True),
    Res("", "v1", "events", "Event"),
    Res("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    Res("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False),
    Res("", "v1", "limitranges", "LimitRange"),
    Res("", "v1", "resourcequotas", "ResourceQuota"),
    Res("apps", "v1", "deployments", "Deployment", gen=True),
    Res("apps", "v1", "daemonsets", "DaemonSet", gen=True),
    Res("apps", "v1", "statefulsets", "StatefulSet", gen=True),
    Res("apps", "v1", "replicasets", "ReplicaSet", gen=True),
    Res("batch", "v1", "jobs", "Job", gen=True),
    Res("batch", "v1", "cronjobs", "CronJob", gen=True),
    Res("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Res("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Res("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    Res("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    Res("networking.k8s.io", "v1", "ingresses", "Ingress", gen=True),
    Res("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False, gen=True),
    Res("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", gen=True),
    Res("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", gen=True),
    Res("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False),
    Res("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False,
        gen=True),
    Res("coordination.k8s.io", "v1", "leases", "Lease"),
    Res("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", namespaced=False),
    Res("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
        namespaced=False, gen=True),
    Res("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
        namespaced=False, gen=True),
    Res("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", gen=True),
    Res("k3s.cattle.io", "v1", "addons", "Addon", gen=True),
    Res("helm.cattle.io", "v1", "helmcharts", "HelmChart", gen=True, schema="helm.cattle.io/helmchart_v1.json"),
    Res("helm.cattle.io", "v1", "helmchartconfigs", "HelmChartConfig", gen=True,
        schema="helm.cattle.io/helmchartconfig_v1.json"),
    # Argo CD's, from the CRDs its chart installs
    Res("argoproj.io", "v1alpha1", "applications", "Application", gen=True, stored_crd=True),
    Res("argoproj.io", "v1alpha1", "appprojects", "AppProject", gen=True, stored_crd=True),
    # the Prometheus operator's, from the CRDs of the kube-prometheus-stack chart
    Res("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", gen=True, stored_crd=True),
    Res("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor", gen=True, stored_crd=True),
] + [Res("traefik.io", "v1alpha1", k.lower() + "s", k, gen=True, schema="traefik.io/%s_v1alpha1.json" % k.lower(),
         traefik=True) for k in TRAEFIK_KINDS]

BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.gv, r.kind): r for r in RESOURCES}


def res(group, plural):
    return next(r for r in RESOURCES if r.group == group and r.plural == plural)


NS, SECRET, CONFIGMAP, SA, CRB = (res("", "namespaces"), res("", "secrets"), res("", "configmaps"),
                                  res("", "serviceaccounts"), res("rbac.authorization.k8s.io", "clusterrolebindings"))
POD, EVENT, JOB = res("", "pods"), res("", "events"), res("batch", "jobs")
SERVICE, DEPLOYMENT, DAEMONSET = res("", "services"), res("apps", "deployments"), res("apps", "daemonsets")
ADDON, HELMCHART, HELMCHARTCONFIG = (res("k3s.cattle.io", "addons"), res("helm.cattle.io", "helmcharts"),
                                     res("helm.cattle.io", "helmchartconfigs"))
CRD = res("apiextensions.k8s.io", "customresourcedefinitions")
APPLICATION, APPPROJECT = res("argoproj.io", "applications"), res("argoproj.io", "appprojects")
SERVICEMONITOR, ENDPOINTS = res("monitoring.coreos.com", "servicemonitors"), res("", "endpoints")


# ---- small helpers -----------------------------------------------------------------

def ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def sha256(b):
    return hashlib.sha256(b.encode() if isinstance(b, str) else b).hexdigest()


def b64_field(o, k):
    """A Secret's data[k], decoded (None when absent or not base64)."""
    v = (o.get("data") or {}).get(k)
    if not isinstance(v, str):
        return None
    try:
        return base64.b64decode(v, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def okey(r, ns, name):
    return "%s/%s/%s/%s" % (r.group or "core", r.plural, (ns or "") if r.namespaced else "", name)


def get_path(o, p):
    for k in p:
        if not isinstance(o, dict) or k not in o:
            return None
        o = o[k]
    return o


def set_path(o, p, v):
    for k in p[:-1]:
        if not isinstance(o.get(k), dict):
            o[k] = {}
        o = o[k]
    o[p[-1]] = v


def del_path(o, p):
    """Remove the leaf at p and the maps it leaves empty (never a top-level key's map)."""
    chain = []
    for k in p[:-1]:
        if not isinstance(o, dict) or not isinstance(o.get(k), dict):
            return
        chain.append((o, k))
        o = o[k]
    if isinstance(o, dict):
        o.pop(p[-1], None)
    for parent, k in reversed(chain[1:]):
        if parent[k] == {}:
            del parent[k]


def leaves(v, p=()):
    """{path: value} of the leaves of v: maps are walked, lists are atomic."""
    out = {}
    if isinstance(v, dict) and v:
        for k, x in v.items():
            out.update(leaves(x, p + (k,)))
    elif p:
        out[p] = v
    return out


SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "deletionTimestamp",
               "deletionGracePeriodSeconds", "selfLink")


def owned_leaves(obj, status=False, whole=False):
    """The fields of obj a manager owns when it sends obj: everything but the
    type, the name and namespace and what the server sets; status only
    through the status subresource (whole: a resource without one, whose
    status is written like the rest)."""
    out = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind", "_sim") or (not whole and (k == "status") != status):
            continue
        if k == "metadata":
            for mk in ("labels", "annotations"):
                for lk, lv in (v.get(mk) or {}).items():
                    out[("metadata", mk, lk)] = lv
            for mk in ("finalizers", "ownerReferences"):
                if mk in v:
                    out[("metadata", mk)] = v[mk]
            continue
        out.update(leaves(v, (k,)) if isinstance(v, dict) and v else {(k,): v})
    return out


def overlap(p, q):
    n = min(len(p), len(q))
    return p[:n] == q[:n]


def path_str(p):
    return "." + ".".join(str(x) for x in p)


def k8s_path(p):
    """spec.routes[0].match: a field path as Kubernetes prints it."""
    s = ""
    for x in p:
        s += "[%d]" % x if isinstance(x, int) else ("." if s else "") + str(x)
    return s


def gotype(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def as_dict(v):
    return v if isinstance(v, dict) else {}


def num(v):
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def make_uid(seed):
    h = sha256(seed)
    return "%s-%s-4%s-a%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:32])


def yaml_error(e):
    """A PyYAML error in sigs.k8s.io/yaml's words."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return "error converting YAML to JSON: yaml: line %d: %s" % (mark.line + 1, problem)
    return "error converting YAML to JSON: yaml: %s" % problem


# ---- names -------------------------------------------------------------------------

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"


PATH_SEGMENT_NAMES = ("roles", "rolebindings", "clusterroles", "clusterrolebindings")


def name_errors(r, name):
    """kube-apiserver's validation of metadata.name, per kind: RBAC objects
    only need a valid path segment (system:kube-vip-role), namespaces a
    DNS-1123 label, services an RFC 1035 label, the rest a DNS-1123
    subdomain. [(field, cause reason, message)]."""
    if isinstance(name, str) and name and r.plural in PATH_SEGMENT_NAMES:
        if name in (".", ".."):
            return [("metadata.name", "FieldValueInvalid", "Invalid value: %s: may not be '%s'"
                     % (json.dumps(name), name))]
        bad = [c for c in ("/", "%") if c in name]
        return [("metadata.name", "FieldValueInvalid", "Invalid value: %s: may not contain '%s'"
                 % (json.dumps(name), bad[0]))] if bad else []
    if r is NS:
        rx, n, what, eg = DNS1123_LABEL, 63, "RFC 1123 label", "'my-name',  or '123-abc'"
        rule = "consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric " \
               "character"
    elif r.plural == "services":
        rx, n, what, eg = DNS1035_LABEL, 63, "RFC 1035 label", "'my-name',  or 'abc-123'"
        rule = "consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end " \
               "with an alphanumeric character"
    else:
        rx, n, what, eg = DNS1123_SUBDOMAIN, 253, "RFC 1123 subdomain", "'example.com'"
        rule = "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an " \
               "alphanumeric character"
    if not isinstance(name, str) or not name:
        return [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]
    errs = []
    if len(name) > n:
        errs.append(("metadata.name", "FieldValueInvalid",
                     "Invalid value: %s: must be no more than %d characters" % (json.dumps(name), n)))
    if not re.fullmatch(rx, name):
        errs.append(("metadata.name", "FieldValueInvalid",
                     "Invalid value: %s: a lowercase %s must %s (e.g. %s, regex used for validation is '%s')"
                     % (json.dumps(name), what, rule, eg, rx)))
    return errs


QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_RULE = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an " \
                 "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is " \
                 "'%s')" % QUALIFIED_NAME


def qualified_name_errors(value):
    """apimachinery's IsQualifiedName: [message] (an optional DNS-1123
    subdomain prefix and '/', a name part of at most 63 characters)."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name %s with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                % QUALIFIED_RULE]
    errs = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errs.append("prefix part must be no more than 253 characters")
            if not re.fullmatch(DNS1123_SUBDOMAIN, prefix):
                errs.append("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                            "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                            "'example.com', regex used for validation is '%s')" % DNS1123_SUBDOMAIN)
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not re.fullmatch(QUALIFIED_NAME, name):
        errs.append("name part " + QUALIFIED_RULE)
    return errs


def service_causes(svc, old=None):
    """kube-apiserver's validateLoadBalancerClassField, the Service rule for
    spec.loadBalancerClass: on an update (old given) where the old and the
    new Service are both of type LoadBalancer the class may not change (unset
    -> set and set -> unset included; the value shown is the new one, "null"
    when unset); a LoadBalancer Service's class must be a qualified name; a
    Service of another type (no type: ClusterIP, the default) may not set
    one. [(field, cause reason, message)]."""
    def spec(o):
        return (o or {}).get("spec") if isinstance((o or {}).get("spec"), dict) else {}
    new_spec, f = spec(svc), "spec.loadBalancerClass"
    cls = new_spec.get("loadBalancerClass")
    lb = new_spec.get("type") == "LoadBalancer"
    out = []
    if old is not None and lb and spec(old).get("type") == "LoadBalancer" and \
            spec(old).get("loadBalancerClass") != cls:
        out.append((f, "FieldValueInvalid", "Invalid value: %s: may not change once set"
                    % json.dumps("null" if cls is None else str(cls))))
    if cls is not None:
        if not lb:
            out.append((f, "FieldValueForbidden", "Forbidden: may only be used when `type` is 'LoadBalancer'"))
        else:
            out += [(f, "FieldValueInvalid", "Invalid value: %s: %s" % (json.dumps(str(cls)), m))
                    for m in qualified_name_errors(str(cls))]
    return out


def invalid(r, name, causes):
    """422 Invalid, as errors.NewInvalid words it."""
    errs = ["%s: %s" % (f, m) for f, _, m in causes]
    msg = "%s %s is invalid: %s" % (r.gk(), json.dumps(name or ""), errs[0] if len(errs) == 1 else
                                    "[%s]" % ", ".join(errs))
    return ApiError(422, "Invalid", msg, {"name": name or "", "group": r.group, "kind": r.kind,
                                          "causes": [{"reason": c, "message": m, "field": f} for f, c, m in causes]})


# ---- schemas -----------------------------------------------------------------------

class Schemas:
    """The official schemas (../shared/reference/schemas): one validator per file."""

    def __init__(self, d):
        self.d = d
        self.cache = {}

    def validator(self, rel):
        v = self.cache.get(rel)
        if v is None:
            with open(os.path.join(self.d, rel), encoding="utf-8") as f:
                s = json.load(f)
            # no $schema: draft-07, as the catalogue's README says (Ajv's default)
            v = jsonschema.validators.validator_for(s, default=jsonschema.Draft7Validator)(s)
            self.cache[rel] = v
        return v

    def traefik_values(self, version):
        """The packaged Traefik chart's values.schema.json (a dict), None
        when the catalogue lacks that version."""
        rel = "traefik-helm-chart-v%s/values.schema.json" % version
        if rel not in self.cache:
            try:
                with open(os.path.join(self.d, rel), encoding="utf-8") as f:
                    self.cache[rel] = json.load(f)
            except FileNotFoundError:
                self.cache[rel] = None
        return self.cache[rel]


def prune_unknown(v, obj):
    """Remove the fields the schema does not declare (additionalProperties:
    false), as kube-apiserver prunes a structural CRD schema's unknown fields.
    Returns their paths."""
    gone = []
    for _ in range(32):
        errs = [e for e in v.iter_errors(obj) if e.validator == "additionalProperties" and e.validator_value is False]
        if not errs:
            break
        for e in errs:
            inst = get_path(obj, tuple(e.absolute_path)) if e.absolute_path else obj
            if not isinstance(inst, dict):
                continue
            props = e.schema.get("properties", {})
            pats = e.schema.get("patternProperties", {})
            for k in list(inst):
                if k not in props and not any(re.search(p, k) for p in pats):
                    del inst[k]
                    gone.append(k8s_path(list(e.absolute_path) + [k]))
    return gone


def schema_causes(v, obj):
    """The schema's violations as kube-apiserver's CRD validation words them."""
    out = []
    for e in sorted(v.iter_errors(obj), key=lambda e: [str(x) for x in e.absolute_path]):
        p = list(e.absolute_path)
        f = k8s_path(p)
        val, inst = e.validator, e.instance
        shown = json.dumps(inst) if not isinstance(inst, (dict, list)) else json.dumps(inst)[:80]
        if val == "type":
            want = e.validator_value if isinstance(e.validator_value, str) else "/".join(e.validator_value)
            out.append((f, "FieldValueTypeInvalid", 'Invalid value: "%s": %s in body must be of type %s: "%s"'
                        % (gotype(inst), f, want, gotype(inst))))
        elif val == "required":
            m = re.match(r"'(.*)' is a required property", e.message)
            out.append((k8s_path(p + [m.group(1) if m else "?"]), "FieldValueRequired", "Required value"))
        elif val == "enum":
            out.append((f, "FieldValueNotSupported", "Unsupported value: %s: supported values: %s"
                        % (shown, ", ".join(json.dumps(x) for x in e.validator_value))))
        elif val in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
            rel = {"maximum": "less than or equal to", "minimum": "greater than or equal to",
                   "exclusiveMaximum": "less than", "exclusiveMinimum": "greater than"}[val]
            out.append((f, "FieldValueInvalid", "Invalid value: %s: %s in body should be %s %s"
                        % (shown, f, rel, num(e.validator_value))))
        elif val == "pattern":
            out.append((f, "FieldValueInvalid", "Invalid value: %s: %s in body should match '%s'"
                        % (shown, f, e.validator_value)))
        elif val == "maxLength":
            out.append((f, "FieldValueTooLong", "Too long: may not be more than %d bytes" % e.validator_value))
        elif val == "minLength":
            out.append((f, "FieldValueInvalid", "Invalid value: %s: %s in body should be at least %d chars long"
                        % (shown, f, e.validator_value)))
        elif val == "maxItems":
            out.append((f, "FieldValueTooMany", "Too many: %d: must have at most %d items"
                        % (len(inst), e.validator_value)))
        elif val == "minItems":
            out.append((f, "FieldValueInvalid", "Invalid value: %d: %s in body should have at least %d items"
                        % (len(inst), f, e.validator_value)))
        else:
            out.append((f or "<nil>", "FieldValueInvalid", "Invalid value: %s: %s" % (shown, e.message)))
    return out


# ---- schemas of stored CustomResourceDefinitions --------------------------------------

CRD_VALIDATORS = {}  # sha256 of an openAPIV3Schema -> its validator (crd_validator)
VALUE_KEYS = ("required", "enum", "pattern", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems",
              "minProperties", "maxProperties", "multipleOf", "minimum", "maximum", "format", "default")


def crd_json_schema(s, root=True, branch=False):
    """A CRD version's openAPIV3Schema (structural: crd_causes checked it) as
    the JSON Schema that checks and prunes the way kube-apiserver does:
    nullable adds null to the type, x-kubernetes-int-or-string takes an
    integer or a string, OpenAPI 3.0's boolean exclusiveMinimum/Maximum
    become draft-07's numbers, and an object that neither sets
    additionalProperties nor x-kubernetes-preserve-unknown-fields gets
    additionalProperties false: what prune_unknown removes, as structural
    pruning does (not inside allOf/anyOf/oneOf/not, which only validate).
    The root and an x-kubernetes-embedded-resource object always take
    apiVersion, kind and metadata (metadata is ObjectMeta, not pruned here)."""
    if not isinstance(s, dict):
        return {}
    o = {k: copy.deepcopy(s[k]) for k in VALUE_KEYS if k in s}
    for k, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if s.get(k) is True and bound in s:
            o[k] = o.pop(bound)
    t = s.get("type")
    if s.get("x-kubernetes-int-or-string"):
        t = ["integer", "string"]
    if t:
        t = list(t) if isinstance(t, list) else [t]
        if s.get("nullable"):
            t.append("null")
        o["type"] = t[0] if len(t) == 1 else t
    if isinstance(s.get("properties"), dict):
        o["properties"] = {k: crd_json_schema(v, False, branch) for k, v in s["properties"].items()}
    if isinstance(s.get("items"), dict):
        o["items"] = crd_json_schema(s["items"], False, branch)
    if isinstance(s.get("additionalProperties"), dict):
        o["additionalProperties"] = crd_json_schema(s["additionalProperties"], False, branch)
    elif isinstance(s.get("additionalProperties"), bool):
        o["additionalProperties"] = s["additionalProperties"]
    for k in ("allOf", "anyOf", "oneOf"):
        if isinstance(s.get(k), list):
            o[k] = [crd_json_schema(x, False, True) for x in s[k]]
    if isinstance(s.get("not"), dict):
        o["not"] = crd_json_schema(s["not"], False, True)
    if root or s.get("x-kubernetes-embedded-resource"):
        props = o.setdefault("properties", {})
        props.update({"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}})
    objectish = s.get("type") == "object" or "properties" in s
    if objectish and not branch and not s.get("x-kubernetes-preserve-unknown-fields") and \
            "additionalProperties" not in s:
        o.setdefault("properties", {})
        o["additionalProperties"] = False
    return o


def crd_validator(schema):
    """The (cached) validator of a stored CRD version's openAPIV3Schema."""
    key = sha256(json.dumps(schema, sort_keys=True))
    v = CRD_VALIDATORS.get(key)
    if v is None:
        v = CRD_VALIDATORS[key] = jsonschema.Draft7Validator(crd_json_schema(schema))
    return v


def apply_defaults(schema, obj):
    """Structural defaulting: a missing property whose schema has a default
    gets it, at every level (schema: crd_json_schema's form)."""
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        for k, ps in props.items():
            if k not in obj and isinstance(ps, dict) and "default" in ps:
                obj[k] = copy.deepcopy(ps["default"])
            if k in obj:
                apply_defaults(ps, obj[k])
        if isinstance(schema.get("additionalProperties"), dict):
            for k, v in obj.items():
                if k not in props:
                    apply_defaults(schema["additionalProperties"], v)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for x in obj:
            apply_defaults(schema["items"], x)


def structural_causes(s, f, root=False):
    """What apiextensions refuses of a schema that is not structural (the
    part modelled: every specified field, item and map value says its type,
    the root is an object, properties and additionalProperties exclude each
    other)."""
    out = []
    if not isinstance(s, dict):
        return [(f, "FieldValueInvalid", "Invalid value: %s: must be an object" % json.dumps(s)[:80])]
    if root:
        if not s.get("type"):
            out.append((f + ".type", "FieldValueRequired", "Required value: must not be empty at the root"))
        elif s["type"] != "object":
            out.append((f + ".type", "FieldValueInvalid", "Invalid value: %s: must be object at the root"
                        % json.dumps(s["type"])))
    if "properties" in s and isinstance(s.get("additionalProperties"), dict):
        out.append((f + ".additionalProperties", "FieldValueForbidden",
                    "Forbidden: additionalProperties and properties are mutual exclusive"))
    children = [(f + ".properties[%s]" % k, v, "object fields") for k, v in (s.get("properties") or {}).items()] \
        if isinstance(s.get("properties"), dict) else []
    if "properties" in s and not isinstance(s["properties"], dict):
        out.append((f + ".properties", "FieldValueInvalid", "Invalid value: %s: must be an object"
                    % json.dumps(s["properties"])[:80]))
    if "items" in s:
        children.append((f + ".items", s["items"], "array items"))
    if isinstance(s.get("additionalProperties"), dict):
        children.append((f + ".additionalProperties", s["additionalProperties"], "object fields"))
    for cf, c, what in children:
        if isinstance(c, dict) and not c.get("type") and not c.get("x-kubernetes-int-or-string") and \
                not c.get("x-kubernetes-preserve-unknown-fields"):
            out.append((cf + ".type", "FieldValueRequired", "Required value: must not be empty for specified %s"
                        % what))
        out += structural_causes(c, cf)
    return out


def crd_defaults(crd):
    """What kube-apiserver fills in on a CustomResourceDefinition: the
    singular name and the list kind from the kind, conversion None."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str) and names["kind"]:
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})


def crd_causes(crd, old=None):
    """apiextensions' validation of a CustomResourceDefinition (the rules
    modelled): the name is PLURAL.GROUP, group (a domain with a dot), the
    plural and kind given, the scope Cluster or Namespaced, group and scope
    immutable, exactly one storage version, and each version's schema
    given and structural (structural_causes). [(field, reason, message)]."""
    d = as_dict
    spec = d(crd.get("spec"))
    names = d(spec.get("names"))
    name = d(crd.get("metadata")).get("name")
    group, plural, kind, scope = spec.get("group"), names.get("plural"), names.get("kind"), spec.get("scope")
    out = []
    if plural and group and name != "%s.%s" % (plural, group):
        out.append(("metadata.name", "FieldValueInvalid", 'Invalid value: %s: must be spec.names.plural+"."+spec.group'
                    % json.dumps(name)))
    if not group:
        out.append(("spec.group", "FieldValueRequired", "Required value"))
    elif "." not in str(group):
        out.append(("spec.group", "FieldValueInvalid", "Invalid value: %s: should be a domain with at least one dot"
                    % json.dumps(group)))
    if not plural:
        out.append(("spec.names.plural", "FieldValueRequired", "Required value"))
    if not kind:
        out.append(("spec.names.kind", "FieldValueRequired", "Required value"))
    if not scope:
        out.append(("spec.scope", "FieldValueRequired", "Required value"))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(("spec.scope", "FieldValueNotSupported", 'Unsupported value: %s: supported values: "Cluster", '
                    '"Namespaced"' % json.dumps(scope)))
    if old is not None:
        ospec = d(old.get("spec"))
        for k in ("group", "scope"):
            if spec.get(k) != ospec.get(k):
                out.append(("spec." + k, "FieldValueInvalid", "Invalid value: %s: field is immutable"
                            % json.dumps(spec.get(k))))
    versions = spec.get("versions") if isinstance(spec.get("versions"), list) else []
    if sum(1 for v in versions if d(v).get("storage") is True) != 1:
        out.append(("spec.versions", "FieldValueInvalid", "Invalid value: %s: must have exactly one version marked "
                    "as storage version" % json.dumps([d(v).get("name") for v in versions])))
    for i, v in enumerate(versions):
        f = "spec.versions[%d]" % i
        if not d(v).get("name"):
            out.append((f + ".name", "FieldValueRequired", "Required value"))
        sch = d(d(v).get("schema")).get("openAPIV3Schema")
        if sch is None:
            out.append((f + ".schema.openAPIV3Schema", "FieldValueRequired", "Required value: schemas are required"))
        else:
            out += structural_causes(sch, f + ".schema.openAPIV3Schema", root=True)
    return out


# ---- selectors ---------------------------------------------------------------------

def parse_label_selector(s):
    """k8s.io/apimachinery/pkg/labels: equality (=, ==, !=), set (in, notin)
    and existence (k, !k) requirements, comma-separated."""
    reqs = []
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    key = r"([A-Za-z0-9][-A-Za-z0-9_./]*)"
    for p in (x.strip() for x in parts):
        if not p:
            continue
        m = re.fullmatch(key + r"\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)", p)
        if m:
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            continue
        m = re.fullmatch(key + r"\s+(in|notin)\s*\(([^)]*)\)", p)
        if m:
            reqs.append((m.group(1), m.group(2), {x.strip() for x in m.group(3).split(",") if x.strip()}))
            continue
        m = re.fullmatch(r"(!?)\s*" + key, p)
        if m:
            reqs.append((m.group(2), "!" if m.group(1) else "exists", set()))
            continue
        raise ApiError(400, "BadRequest", "unable to parse requirement: found '%s', expected: identifier" % p)
    return reqs


def labels_match(reqs, labels):
    for k, op, vals in reqs:
        have = k in labels
        v = labels.get(k)
        if op == "=" and not (have and v in vals):
            return False
        if op == "!=" and have and v in vals:
            return False
        if op == "in" and not (have and v in vals):
            return False
        if op == "notin" and have and v in vals:
            return False
        if op == "exists" and not have:
            return False
        if op == "!" and have:
            return False
    return True


FIELD_LABELS = {
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
               "reason", "reportingComponent", "source", "type"),
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "status.phase", "status.podIP", "status.nominatedNodeName"),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "jobs": ("status.successful",),
}


def parse_field_selector(r, s):
    reqs = []
    for p in (x.strip() for x in s.split(",")):
        if not p:
            continue
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)", p)
        if not m:
            raise ApiError(400, "BadRequest", "invalid selector: '%s'; can't understand '%s'" % (s, p))
        f = m.group(1)
        if f not in ("metadata.name", "metadata.namespace") + FIELD_LABELS.get(r.plural, ()):
            raise ApiError(400, "BadRequest", 'field label not supported: %s' % f)
        reqs.append((f, m.group(2) == "!=", m.group(3)))
    return reqs


def field_value(o, f):
    if f == "source":
        return (o.get("source") or {}).get("component", "")
    if f == "status.successful":
        return str((o.get("status") or {}).get("succeeded", 0))
    v = get_path(o, tuple(f.split(".")))
    return "" if v is None else str(v)


def fields_match(reqs, o):
    return all((field_value(o, f) != v) if neg else (field_value(o, f) == v) for f, neg, v in reqs)


# ---- patches -----------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(doc, ops):
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    doc = copy.deepcopy(doc)

    def walk(ptr):
        if not ptr.startswith("/"):
            raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request: "
                           "invalid JSON pointer %s" % json.dumps(ptr))
        toks = [t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")]
        o = doc
        for t in toks[:-1]:
            o = o[int(t)] if isinstance(o, list) else o[t]
        return o, toks[-1]

    try:
        for op in ops:
            kind = op.get("op")
            if kind in ("add", "replace", "test"):
                val = copy.deepcopy(op["value"])
            if kind == "move" or kind == "copy":
                src, k = walk(op["from"])
                val = copy.deepcopy(src[int(k)] if isinstance(src, list) else src[k])
                if kind == "move":
                    del src[int(k) if isinstance(src, list) else k]
                kind = "add"
            parent, k = walk(op["path"])
            if kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if k == "-" else int(k), val)
                else:
                    parent[k] = val
            elif kind == "remove":
                del parent[int(k) if isinstance(parent, list) else k]
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(k)] = val
                else:
                    if k not in parent:
                        raise KeyError(k)
                    parent[k] = val
            elif kind == "test":
                if (parent[int(k)] if isinstance(parent, list) else parent[k]) != val:
                    raise ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                                   "request: testing value %s failed" % op["path"])
            else:
                raise ApiError(400, "BadRequest", "Unexpected kind: %s" % kind)
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request: %s" % e)
    return doc


# ---- the store ---------------------------------------------------------------------

class World:
    """The cluster's objects (st["objects"]) at one moment, with the
    running K3s servers [(start key, vm)] the controllers act through."""

    def __init__(self, st, a, now, servers=(), schemas=None):
        self.st, self.a, self.now = st, a, now
        self.servers = list(servers)
        self.objs = st.setdefault("objects", {})
        st.setdefault("rv", 1000)
        self.schemas = schemas
        self.warnings = []

    # -- cluster facts
    def disables(self):
        d = ((self.st.get("cluster") or {}).get("flags") or {}).get("disable")
        if d is None:
            return set()
        if isinstance(d, str):
            d = d.split(",")
        return {str(x).strip() for x in d}

    def served(self, r):
        # K3s installs the traefik.io CRDs with its packaged Traefik (the
        # traefik-crd chart); --disable traefik leaves them out. A resource
        # of a stored CRD is served while that CRD defines it.
        if r.stored_crd:
            return self.crd_version(r) is not None
        return not (r.traefik and "traefik" in self.disables())

    def crd_version(self, r):
        """The entry of spec.versions that serves r in the stored
        CustomResourceDefinition PLURAL.GROUP, when that CRD defines r as the
        model knows it (group, plural, kind, scope); else None."""
        crd = self.get(CRD, None, r.gr())
        if crd is None:
            return None
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        if (spec.get("group"), names.get("plural"), names.get("kind"), spec.get("scope")) != \
                (r.group, r.plural, r.kind, "Namespaced" if r.namespaced else "Cluster"):
            return None
        return next((v for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("name") == r.version
                     and v.get("served") is True), None)

    def status_sub(self, r):
        """Has r a status subresource? A stored CRD's resource only when its
        version declares subresources.status; the rest as modelled so far."""
        if r.stored_crd:
            v = self.crd_version(r) or {}
            return isinstance(v.get("subresources"), dict) and "status" in v["subresources"]
        return True

    def validator(self, r):
        """The schema validator of r: its stored CRD's openAPIV3Schema, or its
        official schema file (--schemas); None when there is none."""
        if r.stored_crd:
            sch = (((self.crd_version(r) or {}).get("schema") or {}).get("openAPIV3Schema"))
            return crd_validator(sch) if isinstance(sch, dict) else None
        if r.schema and self.schemas is not None:
            return self.schemas.validator(r.schema)
        return None

    def service_ip(self, n):
        cidr = ((self.st.get("cluster") or {}).get("flags") or {}).get("service-cidr") or "10.43.0.0/16"
        try:
            return str(ipaddress.ip_network(str(cidr).split(",")[0], strict=False)[n])
        except ValueError:
            return "10.43.0.%d" % n

    # -- reads
    def get(self, r, ns, name):
        return self.objs.get(okey(r, ns, name))

    def list(self, r, ns=None):
        prefix = "%s/%s/" % (r.group or "core", r.plural)
        if ns and r.namespaced:
            prefix += ns + "/"
        return [self.objs[k] for k in sorted(self.objs) if k.startswith(prefix)]

    def ns_ok(self, ns):
        """None when objects can be made in ns, else the API's refusal."""
        o = self.get(NS, None, ns)
        if o is None:
            return ApiError(404, "NotFound", 'namespaces "%s" not found' % ns,
                            {"name": ns, "kind": "namespaces"})
        if o["metadata"].get("deletionTimestamp"):
            return ApiError(403, "Forbidden", 'unable to create new content in namespace %s because it is being '
                            'terminated' % ns)
        return None

    # -- validation
    def validate(self, r, obj, strict=False, old=None, status=False):
        """Names and the schemas (the official ones, or a stored CRD's, whose
        defaults are filled in first); unknown fields pruned (a Warning),
        or refused with fieldValidation=Strict; a Service's own rules
        (service_causes: old, the stored object when this is an update; not
        for the status subresource, which validates status only); a
        CustomResourceDefinition's (crd_causes). Raises ApiError."""
        md = obj.get("metadata") or {}
        causes = name_errors(r, md.get("name"))
        if not status:  # Deployments and claims: decoded and validated (k8s_sim_registry)
            causes += registry.builtin_causes(self, r, obj, strict)
        if r is SERVICE and not status:
            # ValidateServiceUpdate checks the class before the rest,
            # ValidateServiceCreate after
            svc = service_causes(obj, old)
            causes = svc + causes if old is not None else causes + svc
        if r is CRD and not status:
            crd_defaults(obj)
            causes += crd_causes(obj, old)
        v = self.validator(r) if not causes else None
        if v is not None:
            sim = obj.pop("_sim", None)
            if r.stored_crd:
                apply_defaults(v.schema, obj)
            try:
                if strict:
                    gone = prune_unknown(v, copy.deepcopy(obj))
                    if gone:
                        raise ApiError(400, "BadRequest", '%s in version "%s" cannot be handled as a %s: strict '
                                       'decoding error: %s' % (r.kind, r.version, r.kind, ", ".join(
                                           'unknown field "%s"' % g for g in gone)))
                self.warnings += ['unknown field "%s"' % g for g in prune_unknown(v, obj)]
                causes = schema_causes(v, obj)
            finally:
                if sim is not None:
                    obj["_sim"] = sim
        if causes:
            raise invalid(r, md.get("name"), causes)

    # -- writes
    def bump(self):
        self.st["rv"] += 1
        return str(self.st["rv"])

    def write(self, r, obj, old, manager=None, op="Update", mf=None, uid=None, status=False, sub=None):
        """Store obj (a whole object) in place of old (None: new). Unchanged:
        no new resourceVersion. Returns what is stored (None when a deletion
        completed: deletionTimestamp and no finalizer left)."""
        md = obj.setdefault("metadata", {})
        ns = md.get("namespace") if r.namespaced else None
        if not r.namespaced:
            md.pop("namespace", None)
        k = okey(r, ns, md["name"])
        obj["apiVersion"], obj["kind"] = r.gv, r.kind
        md.pop("managedFields", None)
        if old is not None:
            om = old["metadata"]
            for f in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "resourceVersion"):
                if f in om:
                    md[f] = om[f]
                else:
                    md.pop(f, None)
            if "_sim" not in obj and "_sim" in old:
                obj["_sim"] = copy.deepcopy(old["_sim"])
        else:
            md["uid"] = uid or make_uid("%s@%d" % (k, self.st["rv"]))
            md["creationTimestamp"] = ts(self.now)
            if r.gen:
                md["generation"] = 1
            for f in ("deletionTimestamp", "resourceVersion"):
                md.pop(f, None)
        sim = obj.setdefault("_sim", {})
        whole = not self.status_sub(r)  # no status subresource: status is written like the rest
        if mf is None:
            mf = update_managed(copy.deepcopy((old or {}).get("_sim", {}).get("mf", [])), manager, op, r.gv,
                                owned_leaves(old, status, whole) if old else {}, owned_leaves(obj, status, whole),
                                self.now, sub)
        new_leaves = dict(owned_leaves(obj))
        new_leaves.update(owned_leaves(obj, True))
        for e in mf:  # a field nobody has any more is owned by nobody
            e["fields"] = [p for p in e["fields"] if tuple(p) in new_leaves]
        sim["mf"] = [e for e in mf if e["fields"]]
        if r.stored_crd and (old is None or spec_of(obj) != spec_of(old)):
            sim["spec_at"] = self.now  # when its spec last changed (argocd_controller)
        if old is not None:
            # a CRD's resource without a status subresource: any change but
            # metadata bumps the generation, status included
            if r.gen and "generation" in md and (spec_of(obj) != spec_of(old) or
                                                 (whole and obj.get("status") != old.get("status"))):
                md["generation"] = md["generation"] + 1
            if visible(obj) == visible(old):
                self.objs[k] = obj  # what only the simulator sees may change without a new version
                return obj
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            self.objs.pop(k, None)
            return None
        md["resourceVersion"] = self.bump()
        self.objs[k] = obj
        return obj

    def remove(self, r, obj):
        """Delete obj now (finalizers are the caller's business)."""
        md = obj["metadata"]
        self.objs.pop(okey(r, md.get("namespace"), md["name"]), None)
        self.bump()

    def delete(self, r, obj, propagation=None):
        """A deletion as the API makes it: finalizers hold it (deletionTimestamp
        set), namespaces terminate, dependents follow unless orphaned."""
        md = obj["metadata"]
        if r is NS:
            if md["name"] in SYSTEM_NAMESPACES:
                raise ApiError(403, "Forbidden", 'namespaces "%s" is forbidden: this namespace may not be deleted'
                               % md["name"])
            if not md.get("deletionTimestamp"):
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = ts(self.now)
                new.setdefault("status", {})["phase"] = "Terminating"
                self.put_raw(r, new)
            return self.get(r, None, md["name"])
        if md.get("finalizers"):
            if not md.get("deletionTimestamp"):
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = ts(self.now)
                self.put_raw(r, new)
            return self.get(r, md.get("namespace"), md["name"])
        self.remove(r, obj)
        if propagation is None:
            propagation = "Orphan" if r is JOB else "Background"  # batch/v1 Jobs orphan by default
        if propagation == "Orphan":
            for k, o in list(self.objs.items()):
                refs = o["metadata"].get("ownerReferences") or []
                if any(x.get("uid") == md["uid"] for x in refs):
                    o = copy.deepcopy(o)
                    o["metadata"]["ownerReferences"] = [x for x in refs if x.get("uid") != md["uid"]]
                    if not o["metadata"]["ownerReferences"]:
                        del o["metadata"]["ownerReferences"]
                    o["metadata"]["resourceVersion"] = self.bump()
                    self.objs[k] = o
        else:
            self.collect_garbage()
        return None

    def put_raw(self, r, obj):
        """A change the server itself makes (no managed fields)."""
        md = obj["metadata"]
        md["resourceVersion"] = self.bump()
        self.objs[okey(r, md.get("namespace"), md["name"])] = obj

    def collect_garbage(self):
        """The garbage collector: an object whose every owner is gone goes too."""
        for _ in range(8):
            uids = {o["metadata"]["uid"] for o in self.objs.values()}
            gone = [(k, o) for k, o in self.objs.items() if o["metadata"].get("ownerReferences") and
                    not any(x.get("uid") in uids for x in o["metadata"]["ownerReferences"])]
            if not gone:
                return
            for k, o in gone:
                if o["metadata"].get("finalizers"):
                    if not o["metadata"].get("deletionTimestamp"):
                        o["metadata"]["deletionTimestamp"] = ts(self.now)
                        o["metadata"]["resourceVersion"] = self.bump()
                    continue
                del self.objs[k]
                self.bump()

    def upsert(self, r, obj, manager):
        """Create or update obj as a controller's client does (no validation
        beyond what the controller already knows)."""
        md = obj["metadata"]
        old = self.get(r, md.get("namespace"), md["name"])
        new = copy.deepcopy(obj)
        if old is not None and "status" in old and "status" not in new:
            new["status"] = copy.deepcopy(old["status"])
        return self.write(r, new, old, manager)

    def set_status(self, r, obj, status, manager):
        new = copy.deepcopy(obj)
        new["status"] = status
        return self.write(r, new, obj, manager, status=True, sub="status")

    # -- events
    def event(self, r, obj, etype, reason, message, component):
        """client-go's event recorder: a like event (same object, reason,
        message, source) is counted, not repeated."""
        md = obj["metadata"]
        ns = md.get("namespace") or "default"
        inv = {"apiVersion": r.gv, "kind": r.kind, "name": md["name"], "namespace": md.get("namespace", ""),
               "uid": md.get("uid", ""), "resourceVersion": md.get("resourceVersion", "")}
        if not r.namespaced:
            del inv["namespace"]
        for e in self.list(EVENT, ns):
            io_ = e["involvedObject"]
            if (io_.get("uid"), io_.get("name"), e["reason"], e["message"], e["type"],
                    e["source"].get("component")) == (inv["uid"], inv["name"], reason, message, etype, component):
                new = copy.deepcopy(e)
                new["count"] = e.get("count", 1) + 1
                new["lastTimestamp"] = ts(self.now)
                return self.write(EVENT, new, e, component)
        ev = {"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": "%s.%016x" % (md["name"], self.st["rv"] + 1), "namespace": ns},
              "involvedObject": inv, "reason": reason, "message": message, "source": {"component": component},
              "firstTimestamp": ts(self.now), "lastTimestamp": ts(self.now), "count": 1, "type": etype,
              "eventTime": None, "reportingComponent": component, "reportingInstance": ""}
        return self.write(EVENT, ev, None, component)


def spec_of(o):
    return {k: v for k, v in o.items() if k not in ("metadata", "status", "_sim", "apiVersion", "kind")}


def visible(o):
    md = {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}
    out = {k: v for k, v in o.items() if k not in ("metadata", "_sim")}
    out["metadata"] = md
    out["mf"] = sorted((e["manager"], e["operation"], e.get("subresource", ""), sorted(map(tuple, e["fields"])))
                       for e in (o.get("_sim") or {}).get("mf", []))
    return out


def update_managed(mf, manager, op, apiv, old_leaves, new_leaves, now, sub=None):
    """An Update by manager: it owns what it changed, taken from the others."""
    if not manager:
        return mf
    changed = {p for p, v in new_leaves.items() if p not in old_leaves or old_leaves[p] != v}
    entry = None
    for e in mf:
        if (e["manager"], e["operation"], e.get("subresource")) == (manager, op, sub):
            entry = e
        else:
            e["fields"] = [f for f in e["fields"] if tuple(f) not in changed]
    if entry is None:
        if not changed:
            return mf
        entry = {"manager": manager, "operation": op, "apiVersion": apiv, "fields": []}
        if sub:
            entry["subresource"] = sub
        mf.append(entry)
    if changed:
        entry["time"] = ts(now)
    entry["fields"] = sorted({tuple(f) for f in entry["fields"]} | changed)
    entry["fields"] = [list(f) for f in entry["fields"]]
    return mf


def fields_v1(paths):
    t = {}
    for p in sorted(tuple(x) for x in paths):
        n = t
        for el in p:
            n = n.setdefault("f:" + str(el), {})
    return t


def public(o):
    """The object as the API serves it: managedFields from what the simulator keeps."""
    out = {k: copy.deepcopy(v) for k, v in o.items() if k != "_sim"}
    mf = (o.get("_sim") or {}).get("mf")
    if mf:
        out["metadata"]["managedFields"] = [
            dict({"manager": e["manager"], "operation": e["operation"], "apiVersion": e["apiVersion"],
                  "time": e.get("time", out["metadata"].get("creationTimestamp")), "fieldsType": "FieldsV1",
                  "fieldsV1": fields_v1(e["fields"])}, **({"subresource": e["subresource"]}
                                                        if e.get("subresource") else {}))
            for e in mf]
    return out


# ---- server-side apply -------------------------------------------------------------

def server_side_apply(w, r, ns, name, cfg, manager, force, old):
    """Server-side apply (structured-merge-diff, simplified: lists atomic):
    the manager's applied fields set, a field another manager owns with a
    different value a conflict unless forced, fields it stopped applying
    removed when nobody else owns them. Returns (object, managed fields)."""
    applied = {p: v for p, v in owned_leaves(cfg, whole=not w.status_sub(r)).items()}
    live = copy.deepcopy(old) if old else {"apiVersion": r.gv, "kind": r.kind,
                                           "metadata": dict({"name": name}, **({"namespace": ns} if ns else {}))}
    live.pop("_sim", None)
    new = copy.deepcopy(live)
    for p, v in applied.items():
        if v is None:
            del_path(new, p)
        else:
            set_path(new, p, copy.deepcopy(v))
    mf = copy.deepcopy((old or {}).get("_sim", {}).get("mf", []))
    mine = next((e for e in mf if (e["manager"], e["operation"], e.get("subresource")) == (manager, "Apply", None)),
                None)
    conflicts = []
    for e in mf:
        if e is mine or e.get("subresource"):
            continue
        for f in e["fields"]:
            f = tuple(f)
            if any(overlap(f, q) for q in applied) and get_path(live, f) != get_path(new, f):
                conflicts.append((e, f))
    if conflicts and not force:
        def who(e):
            s = json.dumps(e["manager"])
            if e["operation"] == "Update":
                s += " using %s" % e["apiVersion"] + (" at %s" % e["time"] if e.get("time") else "")
            return s
        if len(conflicts) == 1:
            msg = "Apply failed with 1 conflict: conflict with %s: %s" % (who(conflicts[0][0]),
                                                                          path_str(conflicts[0][1]))
        else:
            lines = []
            for e in [x for i, x in enumerate(c[0] for c in conflicts) if x not in [c[0] for c in conflicts][:i]]:
                lines.append("conflicts with %s:" % who(e))
                lines += ["- %s" % path_str(f) for x, f in conflicts if x is e]
            msg = "Apply failed with %d conflicts: %s" % (len(conflicts), "\n".join(lines))
        raise ApiError(409, "Conflict", msg, {"name": name, "group": r.group, "kind": r.plural, "causes": [
            {"reason": "FieldManagerConflict", "message": "conflict with %s" % who(e), "field": path_str(f)}
            for e, f in conflicts]})
    for e, f in conflicts:
        e["fields"] = [x for x in e["fields"] if tuple(x) != f and not overlap(tuple(x), f)]
    others = {tuple(f) for e in mf if e is not mine for f in e["fields"]}
    for p in sorted({tuple(f) for f in (mine or {}).get("fields", [])} - set(applied), key=len, reverse=True):
        if any(overlap(p, q) for q in applied) or any(overlap(p, o) for o in others):
            continue
        del_path(new, p)
    if mine is None:
        mine = {"manager": manager, "operation": "Apply", "apiVersion": r.gv, "fields": []}
        mf.append(mine)
    mine["fields"] = [list(p) for p in sorted(p for p, v in applied.items() if v is not None)]
    mine["time"] = ts(w.now)
    mine["apiVersion"] = r.gv
    return new, mf


# ---- the HTTP API ------------------------------------------------------------------

def not_found(r, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (r.gr(), name),
                    {"name": name, "group": r.group, "kind": r.plural})


NOTHING = ApiError(404, "NotFound", "the server could not find the requested resource")


def api(w, method, path, query, body, ctype, ua, node_secret):
    """One request to the object API. Returns (code, body, content type).
    node_secret(ns, name) -> a K3s node-password secret kept by k8s_sim."""
    segs = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
    if segs[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", segs[2:]
    elif segs[0] == "apis" and len(segs) >= 3:
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return discovery(w, segs)
    if not rest:
        return discovery(w, segs)
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        ns, rest = rest[1], rest[2:]
    if (group, version) == ("", "v1") and ns is not None and len(rest) >= 3 and rest[0] == "services" and \
            rest[2] == "proxy":
        # kube-apiserver's service proxy, to the pods the model has
        # (k8s_sim_registry: the registry's; k8s_sim_monitoring: Prometheus's and Grafana's)
        # (k8s_sim_logs: Loki's, then the others)
        return logs.service_proxy(w, method, ns, rest[1], rest[3:] + ([""] if path.endswith("/") else []), query,
                                  registry.service_proxy)
    if len(rest) > 3:
        raise NOTHING
    r = BY_PATH.get((group, version, rest[0]))
    if r is None or not w.served(r) or (ns is not None and not r.namespaced):
        raise NOTHING
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub not in (None, "status", "log") or (sub == "log" and r is not POD) or \
            (sub == "status" and not w.status_sub(r)):
        raise NOTHING
    if r.namespaced and ns is None and (name is not None or method not in ("GET",)):
        raise NOTHING
    if r.readonly and method != "GET":
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    manager = query.get("fieldManager") or (ua or "unknown").split("/")[0] or "unknown"
    dry = query.get("dryRun") == "All"
    fv = query.get("fieldValidation", "Warn")
    if fv not in ("Ignore", "Warn", "Strict"):
        raise ApiError(400, "BadRequest", 'fieldValidation "%s" is invalid' % fv)
    strict = fv == "Strict"
    if method == "GET":
        if name is None:
            return 200, list_objects(w, r, ns, query, node_secret), "application/json"
        o = w.get(r, ns, name) or (node_secret(ns, name) if r is SECRET else None)
        if o is None:
            raise not_found(r, name)
        if sub == "log":
            return 200, pod_log(o, query), "text/plain"
        return 200, public(o), "application/json"
    if method == "DELETE":
        if name is None:
            return delete_collection(w, r, ns, query)
        o = w.get(r, ns, name)
        if o is None:
            if r is SECRET and node_secret(ns, name, delete=True):
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": name, "kind": r.plural}}, "application/json"
            raise not_found(r, name)
        opts = parse_body(body, ctype) if body else {}
        prop = query.get("propagationPolicy") or (opts or {}).get("propagationPolicy")
        left = w.delete(r, o, prop) if not dry else o
        if left is not None:
            return 200, public(left), "application/json"
        if r.crd:
            return 200, public(o), "application/json"
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": r.group, "kind": r.plural, "uid": o["metadata"]["uid"]}}, \
            "application/json"
    if query.get("force") and not (method == "PATCH" and ctype == "application/apply-patch+yaml"):
        raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be '
                       'specified for non-apply patch')
    data = parse_body(body, ctype if method != "PATCH" else "application/json"
                      if ctype != "application/apply-patch+yaml" else "application/yaml")
    if method == "POST":
        if name is not None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                   "resource")
        o = create(w, r, ns, data, manager, dry, strict)
        return 201, public(o), "application/json"
    if name is None:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    old = w.get(r, ns, name)
    if method == "PUT":
        if old is None:
            raise not_found(r, name)
        o = replace(w, r, ns, name, data, old, manager, dry, strict, sub == "status")
        return 200, public(o), "application/json"
    if method == "PATCH":
        if ctype == "application/apply-patch+yaml":
            if sub:
                raise ApiError(415, "UnsupportedMediaType", "apply is not supported on subresources here")
            if not query.get("fieldManager"):
                raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                               'value: is required for apply patch', {"group": "meta.k8s.io", "kind": "PatchOptions",
                                                                      "causes": [{"reason": "FieldValueRequired",
                                                                                  "message": "Required value: is "
                                                                                  "required for apply patch",
                                                                                  "field": "fieldManager"}]})
            force = query.get("force") in ("true", "1", "True")
            o, created = apply(w, r, ns, name, data, old, query["fieldManager"], force, dry, strict)
            return (201 if created else 200), public(o), "application/json"
        if old is None:
            raise not_found(r, name)
        if ctype == "application/merge-patch+json" or (ctype == "application/strategic-merge-patch+json"
                                                       and not r.crd):
            # strategic merge patch of a built-in type: as a merge patch (its list
            # merge keys are not modelled)
            if not isinstance(data, dict):
                raise ApiError(400, "BadRequest", "json: cannot unmarshal into Go value of type "
                               "map[string]interface {}")
            target = merge_patch(public(old), data)
        elif ctype == "application/json-patch+json":
            if not isinstance(data, list):
                raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            target = json_patch(public(old), data)
        else:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json-patch+json, "
                           "application/merge-patch+json, application/apply-patch+yaml")
        target["metadata"].pop("managedFields", None)
        o = replace(w, r, ns, name, target, old, manager, dry, strict, sub == "status")
        return 200, public(o), "application/json"
    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def int_param(query, k):
    try:
        return int(query[k])
    except ValueError:
        raise ApiError(400, "BadRequest", "%s: invalid value %s: an integer is expected" % (k, json.dumps(query[k])))


def parse_body(body, ctype):
    try:
        if ctype in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(body.decode("utf-8"))
        return json.loads(body.decode("utf-8"))
    except (ValueError, yaml.YAMLError) as e:
        if ctype in ("application/yaml", "application/apply-patch+yaml") and isinstance(e, yaml.YAMLError):
            msg = yaml_error(e)
        else:
            msg = "couldn't get version/kind; json parse error: %s" % e
        raise ApiError(400, "BadRequest", msg)


def check_type(r, data):
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", "the body of the request is not a Kubernetes object")
    av, kind = data.get("apiVersion"), data.get("kind")
    if r.crd and (not av or not kind):
        raise ApiError(400, "BadRequest", "Object 'Kind' is missing in '%s'" % json.dumps(data)[:200]
                       if not kind else "Object 'apiVersion' is missing in '%s'" % json.dumps(data)[:200])
    if av and av != r.gv:
        raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API "
                       "version (%s)" % (av, r.gv))
    if kind and kind != r.kind:
        raise ApiError(400, "BadRequest", "the kind in the data (%s) does not match the expected kind (%s)"
                       % (kind, r.kind))
    if not isinstance(data.get("metadata", {}), dict):
        raise ApiError(400, "BadRequest", "metadata: expected an object")


def defaults(r, o):
    """What the API server fills in on create."""
    md = o["metadata"]
    if r is NS:
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
        o.setdefault("spec", {"finalizers": ["kubernetes"]})
        o["status"] = {"phase": "Active"}
    elif r is SECRET:
        o.setdefault("type", "Opaque")
        sd = o.pop("stringData", None)
        if sd:
            o.setdefault("data", {}).update({k: base64.b64encode(str(v).encode()).decode() for k, v in sd.items()})


def create(w, r, ns, data, manager, dry=False, strict=False, uid=None):
    check_type(r, data)
    o = copy.deepcopy(data)
    md = o.setdefault("metadata", {})
    if r.namespaced:
        if md.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        md["namespace"] = ns
    else:
        md.pop("namespace", None)
    if not md.get("name") and md.get("generateName"):
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        h = int(sha256("%s@%d" % (md["generateName"], w.st["rv"])), 16)
        md["name"] = md["generateName"] + "".join(alphabet[(h >> (5 * i)) % 27] for i in range(5))
    for f in SERVER_META:
        md.pop(f, None)
    if w.status_sub(r):
        o.pop("status", None)  # the status subresource: status is not set on create
    w.validate(r, o, strict)
    if r.namespaced:
        bad = w.ns_ok(ns)
        if bad:
            raise bad
    if w.get(r, ns, md["name"]) is not None:
        raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (r.gr(), md["name"]),
                       {"name": md["name"], "group": r.group, "kind": r.plural})
    defaults(r, o)
    if dry:
        return o
    return w.write(r, o, None, manager, uid=uid)


def replace(w, r, ns, name, data, old, manager, dry=False, strict=False, status=False):
    check_type(r, data)
    o = copy.deepcopy(data)
    md = o.setdefault("metadata", {})
    if md.get("name", name) != name:
        raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                       % (md.get("name"), name))
    md["name"] = name
    if r.namespaced:
        if md.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        md["namespace"] = ns
    rv = md.get("resourceVersion")
    if rv and rv != old["metadata"]["resourceVersion"]:
        raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                       'please apply your changes to the latest version and try again' % (r.gr(), name),
                       {"name": name, "group": r.group, "kind": r.plural})
    if status:
        # the status subresource changes status only
        new = copy.deepcopy(old)
        new.pop("_sim", None)
        new["status"] = o.get("status")
        o = new
    elif w.status_sub(r):
        # the main resource: status stays what it was
        if "status" in old:
            o["status"] = copy.deepcopy(old["status"])
        else:
            o.pop("status", None)
        if r is NS:
            o["status"] = old.get("status", {"phase": "Active"})
    w.validate(r, o, strict, old=old, status=status)
    if dry:
        return o
    got = w.write(r, o, old, manager, status=status, sub="status" if status else None)
    if got is None:  # the last finalizer removed from an object being deleted
        w.collect_garbage()
        return dict(o, metadata=dict(o["metadata"]))
    return got


def apply(w, r, ns, name, data, old, manager, force, dry=False, strict=False):
    check_type(r, data)
    if not data.get("apiVersion") or not data.get("kind"):
        raise ApiError(400, "BadRequest", "apiVersion and kind must be set in an apply configuration")
    md = data.setdefault("metadata", {})
    if md.get("name", name) != name:
        raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                       % (md.get("name"), name))
    if r.namespaced and md.get("namespace") not in (None, "", ns):
        raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                       "sent on the request")
    cfg = copy.deepcopy(data)
    if w.status_sub(r):
        cfg.pop("status", None)
    for f in SERVER_META:
        cfg["metadata"].pop(f, None)
    cfg["metadata"]["name"] = name
    registry.apply_check(r, cfg)  # a built-in type's typed patch object
    v = w.validator(r)
    if v is not None:
        gone = prune_unknown(v, cfg)
        if gone and strict:
            raise ApiError(400, "BadRequest", '.%s: field not declared in schema' % gone[0])
        w.warnings += ['unknown field "%s"' % g for g in gone]
    if old is None and r.namespaced:
        bad = w.ns_ok(ns)
        if bad:
            raise bad
    new, mf = server_side_apply(w, r, ns if r.namespaced else None, name, cfg, manager, force, old)
    if old is None:
        defaults(r, new)
    w.validate(r, new, strict, old=old)
    if dry:
        return new, old is None
    got = w.write(r, new, old, manager, "Apply", mf=mf)
    return (got if got is not None else new), old is None


def list_objects(w, r, ns, query, node_secret):
    labels = parse_label_selector(query.get("labelSelector", ""))
    fields = parse_field_selector(r, query.get("fieldSelector", ""))
    items = w.list(r, ns)
    if r is SECRET:
        items = sorted(items + node_secret(ns, None),
                       key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    items = [o for o in items if labels_match(labels, o["metadata"].get("labels") or {}) and
             fields_match(fields, o)]
    md = {"resourceVersion": str(w.st["rv"])}
    cont = query.get("continue")
    if cont:
        try:
            after = base64.b64decode(cont).decode()
        except ValueError:
            raise ApiError(400, "BadRequest", "continue key is not valid")
        items = [o for o in items if okey(r, o["metadata"].get("namespace"), o["metadata"]["name"]) > after]
    limit = int_param(query, "limit") if query.get("limit") else 0
    if limit and len(items) > limit:
        last = items[limit - 1]
        md["continue"] = base64.b64encode(okey(r, last["metadata"].get("namespace"),
                                               last["metadata"]["name"]).encode()).decode()
        md["remainingItemCount"] = len(items) - limit
        items = items[:limit]
    return {"kind": r.kind + "List", "apiVersion": r.gv, "metadata": md,
            "items": [public(o) for o in items]}


def delete_collection(w, r, ns, query):
    labels = parse_label_selector(query.get("labelSelector", ""))
    fields = parse_field_selector(r, query.get("fieldSelector", ""))
    gone = []
    for o in w.list(r, ns):
        if labels_match(labels, o["metadata"].get("labels") or {}) and fields_match(fields, o):
            if r is NS and o["metadata"]["name"] in SYSTEM_NAMESPACES:
                continue
            w.delete(r, o, query.get("propagationPolicy"))
            gone.append(public(o))
    return 200, {"kind": r.kind + "List", "apiVersion": r.gv, "metadata": {"resourceVersion": str(w.st["rv"])},
                 "items": gone}, "application/json"


def discovery(w, segs):
    """/api, /api/v1, /apis, /apis/GROUP, /apis/GROUP/VERSION."""
    served = [r for r in RESOURCES if w.served(r)]

    def resources(rs):
        out = []
        for r in rs:
            verbs = ["get", "list"] if r.readonly else ["create", "delete", "deletecollection", "get", "list",
                                                         "patch", "update"]
            out.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": verbs})
            if r is POD:
                out.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                            "verbs": ["get"]})
            if not r.readonly and r not in (CONFIGMAP, SECRET, SA, EVENT) and w.status_sub(r):
                out.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
        return out

    groups = sorted({r.group for r in served if r.group})
    if segs == ["api"]:
        return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}, "application/json"
    if segs == ["api", "v1"]:
        rs = [r for r in served if not r.group]
        out = resources(rs)
        out.insert(0, {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
                       "verbs": ["delete", "get", "list"]})
        return 200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": out}, "application/json"

    def group_obj(g):
        vs = sorted({r.version for r in served if r.group == g})
        return {"name": g, "versions": [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in vs],
                "preferredVersion": {"groupVersion": "%s/%s" % (g, vs[0]), "version": vs[0]}}

    if segs == ["apis"]:
        return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_obj(g) for g in groups]}, \
            "application/json"
    if len(segs) == 2 and segs[0] == "apis" and segs[1] in groups:
        return 200, dict({"kind": "APIGroup", "apiVersion": "v1"}, **group_obj(segs[1])), "application/json"
    if len(segs) == 3 and segs[0] == "apis":
        rs = [r for r in served if r.group == segs[1] and r.version == segs[2]]
        if rs:
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "%s/%s" % tuple(segs[1:]),
                         "resources": resources(rs)}, "application/json"
    raise NOTHING


def pod_log(pod, query):
    """kubelet's container log: the running container's, else the last
    terminated one's; previous=true the one before. tailLines, limitBytes."""
    sim = pod.get("_sim") or {}
    cs = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
    c = query.get("container", "helm")
    if c != "helm":
        raise ApiError(400, "BadRequest", 'container %s is not valid for pod %s' % (c, pod["metadata"]["name"]))
    state = cs.get("state") or {}
    if query.get("previous") in ("true", "1"):
        if "terminated" not in (cs.get("lastState") or {}):
            raise ApiError(400, "BadRequest", 'previous terminated container "helm" in pod "%s" not found'
                           % pod["metadata"]["name"])
        text = sim.get("lastState", "")
    elif "running" in state or "terminated" in state:
        text = sim.get("current", "")
    elif "terminated" in (cs.get("lastState") or {}):  # crash-looping: the last run's
        text = sim.get("lastState", "")
    else:
        raise ApiError(400, "BadRequest", 'container "helm" in pod "%s" is waiting to start: ContainerCreating'
                       % pod["metadata"]["name"])
    if query.get("tailLines"):
        n = int_param(query, "tailLines")
        lines = text.splitlines(True)
        text = "".join(lines[-n:]) if n > 0 else ""
    if query.get("limitBytes"):
        text = text.encode()[:int_param(query, "limitBytes")].decode("utf-8", "replace")
    return text.encode()


# ---- K3s's deploy controller -------------------------------------------------------

def file_bytes(f):
    """A guest file: written through the agent ({"data": str}) or from the
    payload ({"b64": ...})."""
    if "b64" in f:
        return base64.b64decode(f["b64"])
    return (f.get("data") or "").encode("utf-8")


def deploy_controller(w):
    """K3s pkg/deploy: each running server's watcher lists its manifests
    directory (at its start, forced; then every 15 s, a file applied again
    when it changed, and after a failure), K3s's rules: names starting with
    "." skipped, NAME.skip skips NAME, only .yaml/.yml/.json (any case), a
    file named after a disabled component deleted with what it made; the
    Addon is kube-system/<name before the first dot>. K3s's packaged
    manifests (packaged_manifests) are in every server's directory. A file
    removed from the directory changes nothing in the cluster (K3s
    documents that its resources stay)."""
    mem = w.st.setdefault("deploy", {})
    keys = {k for k, _ in w.servers}
    for k in list(mem):
        if k not in keys:
            del mem[k]  # that K3s stopped; its next start lists afresh (forced)
    disables = w.disables()
    packaged = packaged_manifests(w)
    for key, vm in w.servers:
        files = {p: f for p, f in (vm.get("guestfs") or {}).items() if p.startswith(MANIFESTS)}
        for p, text in packaged.items():
            if p + ".skip" not in files:  # K3s writes its own at its start, over the guest's
                files[p] = {"data": text}
        first = key not in mem
        seen = mem.setdefault(key, {})
        skips = {p.rsplit("/", 1)[1][:-len(".skip")] for p in files if p.endswith(".skip")}
        for path in sorted(files):
            rel = path[len(MANIFESTS):]
            fname = rel.rsplit("/", 1)[-1]
            if disabled(rel, fname, disables):
                addon = w.get(ADDON, "kube-system", fname.split(".", 1)[0])
                if addon is not None:
                    prune_owned(w, addon, keep=())
                    w.event(ADDON, addon, "Normal", "DeletingManifest", 'Deleting manifest at "%s"' % path, "deploy")
                    w.remove(ADDON, addon)
                continue
            if fname.startswith(".") or fname in skips or not re.search(r"\.(ya?ml|json)$", fname, re.I):
                continue
            data = file_bytes(files[path])
            s = sha256(data)
            m = seen.get(path)
            if not first and m and m["sum"] == s and (m["ok"] or w.now - m["at"] < DEPLOY_RETRY_S):
                continue
            ok = deploy_file(w, path, data, compare=not first)
            seen[path] = {"sum": s, "ok": ok, "at": w.now}
        for path in list(seen):
            if path not in files:
                del seen[path]


def disabled(rel, fname, disables):
    parts = rel.split("/")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in disables:
            return True
    if not re.search(r"\.(ya?ml|json)$", fname, re.I):
        return False
    return fname.rsplit(".", 1)[0] in disables


def deploy_file(w, path, data, compare):
    name = path.rsplit("/", 1)[1].split(".", 1)[0]
    if name_errors(ADDON, name):
        # K3s logs "Failed to process config: ... Addon.k3s.cattle.io ... is
        # invalid" and makes no Addon, so no event either
        return False
    addon = w.get(ADDON, "kube-system", name)
    if addon is None:
        addon = w.write(ADDON, {"apiVersion": ADDON.gv, "kind": "Addon",
                                "metadata": {"name": name, "namespace": "kube-system"},
                                "spec": {"source": path}}, None, "k3s")
    elif addon.get("spec", {}).get("source") != path:
        new = copy.deepcopy(addon)
        new.setdefault("spec", {})["source"] = path
        addon = w.write(ADDON, new, addon, "k3s")
    s = sha256(data)
    if compare and s == addon.get("spec", {}).get("checksum"):
        return True
    try:
        objs = manifest_objects(data)
    except ValueError as e:
        w.event(ADDON, addon, "Warning", "ParseManifestFailed", 'Parse manifest at "%s" failed: %s' % (path, e),
                "deploy")
        return False
    w.event(ADDON, addon, "Normal", "ApplyingManifest", 'Applying manifest at "%s"' % path, "deploy")
    try:
        gvks = wrangler_apply(w, addon, objs)
    except ApiError as e:
        w.event(ADDON, w.get(ADDON, "kube-system", name), "Warning", "ApplyManifestFailed",
                'Applying manifest at "%s" failed: %s' % (path, e.message), "deploy")
        return False
    addon = w.get(ADDON, "kube-system", name)
    w.event(ADDON, addon, "Normal", "AppliedManifest", 'Applied manifest at "%s"' % path, "deploy")
    addon = w.get(ADDON, "kube-system", name)
    new = copy.deepcopy(addon)
    new.setdefault("spec", {})["checksum"] = s
    new["metadata"].setdefault("annotations", {})[GVK_ANNOTATION] = ";".join(gvks)
    w.write(ADDON, new, addon, "k3s")
    return True


def manifest_objects(data):
    """The objects of a manifest file, as K3s's yamlToObjects reads them:
    YAML (or JSON) documents, empty ones skipped, a List's items."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("error converting YAML to JSON: yaml: invalid UTF-8: %s" % e)
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise ValueError(yaml_error(e))
    out = []
    for d in docs:
        if d is None:
            continue
        if not isinstance(d, dict):
            raise ValueError("json: cannot unmarshal %s into Go value of type map[string]interface {}"
                             % gotype(d).replace("integer", "number"))
        if not d.get("kind"):
            raise ValueError("Object 'Kind' is missing in '%s'" % json.dumps(d, sort_keys=True)[:200])
        if not d.get("apiVersion"):
            raise ValueError("Object 'apiVersion' is missing in '%s'" % json.dumps(d, sort_keys=True)[:200])
        if d["kind"].endswith("List") and isinstance(d.get("items"), list):
            out += [x for x in d["items"] if isinstance(x, dict)]
        else:
            out.append(d)
    return out


def owned_by(o, addon):
    a = o["metadata"].get("annotations") or {}
    return (a.get("objectset.rio.cattle.io/owner-gvk") == "k3s.cattle.io/v1, Kind=Addon" and
            a.get("objectset.rio.cattle.io/owner-name") == addon["metadata"]["name"] and
            a.get("objectset.rio.cattle.io/owner-namespace") == "kube-system")


def prune_owned(w, addon, keep):
    for k, o in list(w.objs.items()):
        if k in keep or not owned_by(o, addon):
            continue
        g, plural = k.split("/")[:2]
        r = BY_PATH.get(("" if g == "core" else g, o["apiVersion"].rsplit("/", 1)[-1], plural))
        if r is not None and w.get(r, o["metadata"].get("namespace"), o["metadata"]["name"]) is not None:
            w.delete(r, o)


def applied_of(o):
    a = (o["metadata"].get("annotations") or {}).get(OS_APPLIED)
    if not a:
        return {}
    try:
        return json.loads(gzip.decompress(base64.b64decode(a)))
    except (ValueError, OSError):
        return {}


def wrangler_apply(w, addon, objs):
    """wrangler's apply.WithOwner(addon).Apply(objects): each object marked
    with its owner (objectset annotations and hash label) and its applied
    form; created, or three-way merged with what was applied before and what
    is live; objects this addon applied before and no longer lists deleted.
    Everything is checked first, so a bad document changes nothing."""
    an = addon["metadata"]["name"]
    marks = {"objectset.rio.cattle.io/id": "", "objectset.rio.cattle.io/owner-gvk": "k3s.cattle.io/v1, Kind=Addon",
             "objectset.rio.cattle.io/owner-name": an, "objectset.rio.cattle.io/owner-namespace": "kube-system"}
    set_hash = hashlib.sha1(("k3s.cattle.io/v1, Kind=Addon/kube-system/%s" % an).encode()).hexdigest()
    plan, gvks = [], []
    new_ns = {((o.get("metadata") or {}).get("name")) for o in objs if o.get("kind") == "Namespace" and
              o.get("apiVersion") == "v1"}
    for o in objs:
        r = BY_KIND.get((o["apiVersion"], o["kind"]))
        if r is None or not w.served(r) or r.readonly:
            raise ApiError(400, "BadRequest", 'no matches for kind "%s" in version "%s"' % (o["kind"],
                                                                                          o["apiVersion"]))
        desired = copy.deepcopy(o)
        md = desired.get("metadata")
        if not isinstance(md, dict):
            md = desired["metadata"] = {}
        desired.pop("status", None)
        for f in SERVER_META:
            md.pop(f, None)
        ns = (md.get("namespace") or "kube-system") if r.namespaced else None
        if r.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        md.setdefault("annotations", {}).update(marks)
        md.setdefault("labels", {})[OS_HASH] = set_hash
        md["annotations"].pop(OS_APPLIED, None)
        applied = copy.deepcopy(desired)
        md["annotations"][OS_APPLIED] = base64.b64encode(gzip.compress(
            json.dumps(applied, sort_keys=True).encode(), mtime=0)).decode()
        name = md.get("name")
        verb = "create"
        old = w.get(r, ns, name) if isinstance(name, str) else None
        if old is not None:
            verb = "update"
            new = three_way(old, applied_of(old), desired)
        else:
            new = desired
        where = "%s/%s" % (ns, name) if ns else str(name)
        try:
            w.validate(r, new, old=old)
            if r.namespaced and ns not in new_ns:
                bad = w.ns_ok(ns)
                if bad:
                    raise bad
        except ApiError as e:
            raise ApiError(e.code, e.reason, "failed to %s %s %s, Kind=%s for k3s.cattle.io/v1, Kind=Addon "
                           "kube-system/%s: %s" % (verb, where, r.gv, r.kind, an, e.message))
        plan.append((r, ns, name, new, old))
        gvk = "%s, Kind=%s" % (r.gv, r.kind)
        if gvk not in gvks:
            gvks.append(gvk)
    plan.sort(key=lambda x: (x[0] is not NS, x[0].plural != "customresourcedefinitions"))
    keep = set()
    for r, ns, name, new, old in plan:
        if old is not None and "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        if old is None:
            defaults(r, new)
        w.write(r, new, old, "k3s")
        keep.add(okey(r, ns, name))
    prune_owned(w, addon, keep)
    return gvks


def three_way(live, applied_before, desired):
    new = copy.deepcopy(live)
    new.pop("_sim", None)
    gone = set(leaves(strip_meta(applied_before))) - set(leaves(strip_meta(desired)))
    for p in sorted(gone, key=len, reverse=True):
        if not any(overlap(p, q) for q in leaves(strip_meta(desired))):
            del_path(new, p)
    overlay(new, desired)
    return new


def strip_meta(o):
    o = {k: v for k, v in o.items() if k not in ("status", "apiVersion", "kind")}
    if "metadata" in o:
        o["metadata"] = {k: v for k, v in o["metadata"].items() if k in ("labels", "annotations")}
    return o


def overlay(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict) and v:
            overlay(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


# ---- K3s's helm controller, the Job controller and kubelet for its jobs --------------

class HelmError(Exception):
    pass


def helm_controller(w):
    """k3s-io/helm-controller (chart.go) for every HelmChart with a chart:
    claimed (managed-by annotation, the removal finalizer), its install job
    helm-install-NAME (re)made whenever the job it wants differs (args,
    environment, the config hash of its values secret and content
    configmap, backoffLimit), then run; a deleted HelmChart is uninstalled
    by helm-delete-NAME before its finalizer goes."""
    for hc in list(w.list(HELMCHART)):
        md = hc["metadata"]
        spec = hc.get("spec") or {}
        if not spec.get("chart") and not spec.get("chartContent"):
            continue
        ann = md.get("annotations") or {}
        if "helmcharts.helm.cattle.io/unmanaged" in ann:
            continue
        if ann.get(MANAGED_BY, "helm-controller") != "helm-controller":
            continue
        if MANAGED_BY not in ann or (HELM_FINALIZER not in (md.get("finalizers") or []) and
                                     not md.get("deletionTimestamp")):
            new = copy.deepcopy(hc)
            new["metadata"].setdefault("annotations", {})[MANAGED_BY] = "helm-controller"
            fin = new["metadata"].setdefault("finalizers", [])
            if HELM_FINALIZER not in fin:
                fin.append(HELM_FINALIZER)
            hc = w.write(HELMCHART, new, hc, "k3s")
        if hc["metadata"].get("deletionTimestamp"):
            uninstall(w, hc)
        else:
            install(w, hc)


def job_wanted(w, hc, action):
    """What chart.go's job() and getJobAndRelatedResources() make: the
    values secret's and content configmap's data, the job's args and env,
    and the config hash over the two (SHA256=<HEX>, as hashObjects writes it)."""
    md, spec = hc["metadata"], hc.get("spec") or {}
    name, ns = md["name"], md["namespace"]
    conf = w.get(HELMCHARTCONFIG, ns, name)
    cspec = (conf or {}).get("spec") or {}
    values = {}
    if spec.get("valuesContent"):
        values["values-01_HelmChart.yaml"] = spec["valuesContent"]
    if spec.get("repoCA"):
        values["ca-file.pem"] = spec["repoCA"]
    if cspec.get("valuesContent"):
        values["values-10_HelmChartConfig.yaml"] = cspec["valuesContent"]
    content = {}
    if spec.get("chartContent"):
        content["%s.tgz.base64" % name] = spec["chartContent"]
    h = hashlib.sha256()
    for k in sorted(content):
        h.update(k.encode() + content[k].encode())
    for k in sorted(values):
        h.update(k.encode() + base64.b64encode(values[k].encode()))
    target = spec.get("targetNamespace") or ns
    chart = spec.get("chart", "")
    if spec.get("repo"):
        chart = name + "/" + chart
    if action == "delete":
        args = ["delete"]
    else:
        args = ["install"]
        if spec.get("targetNamespace"):
            args += ["--namespace", spec["targetNamespace"]]
        if spec.get("createNamespace"):
            args.append("--create-namespace")
        if spec.get("version"):
            args += ["--version", str(spec["version"])]
        for k in sorted(spec.get("set") or {}):
            v = spec["set"][k]
            typed = isinstance(v, int) or str(v).lower() in ("true", "false", "null")
            if not typed:  # chart.go escapeComma: a comma not escaped already gets a backslash
                v = re.sub(r"\\*,", lambda m: m.group(0) if len(m.group(0)) % 2 == 0 else "\\" + m.group(0), str(v))
            args += ["--set" if typed else "--set-string", "%s=%s" % (k, v)]
    failure = cspec.get("failurePolicy") or spec.get("failurePolicy") or "reinstall"
    env = [{"name": "NAME", "value": name}, {"name": "VERSION", "value": str(spec.get("version", ""))},
           {"name": "REPO", "value": spec.get("repo", "")}, {"name": "HELM_DRIVER", "value": "secret"},
           {"name": "CHART_NAMESPACE", "value": ns}, {"name": "CHART", "value": chart},
           {"name": "HELM_VERSION", "value": spec.get("helmVersion", "")},
           {"name": "TARGET_NAMESPACE", "value": target},
           {"name": "AUTH_PASS_CREDENTIALS", "value": str(bool(spec.get("authPassCredentials"))).lower()},
           {"name": "INSECURE_SKIP_TLS_VERIFY", "value": str(bool(spec.get("insecureSkipTLSVerify"))).lower()},
           {"name": "PLAIN_HTTP", "value": str(bool(spec.get("plainHTTP"))).lower()},
           {"name": "FAILURE_POLICY", "value": failure}]
    backoff = spec.get("backOffLimit")
    return {"values": values, "content": content, "hash": "SHA256=" + h.hexdigest().upper(), "args": args,
            "env": env, "backoffLimit": 1000 if backoff is None else int(backoff),
            "image": (spec.get("jobImage") or "").strip() or JOB_IMAGE, "target": target}


def owner_ref(r, o):
    return {"apiVersion": r.gv, "kind": r.kind, "name": o["metadata"]["name"], "uid": o["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def job_objects(w, hc, want, action):
    md = hc["metadata"]
    name, ns = md["name"], md["namespace"]
    jn = "helm-%s-%s" % (action, name)
    ref = [owner_ref(HELMCHART, hc)]
    related = [
        (SECRET, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": "chart-values-" + name, "namespace": ns, "ownerReferences": ref},
                  "data": {k: base64.b64encode(v.encode()).decode() for k, v in want["values"].items()}}),
        (CONFIGMAP, {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "chart-content-" + name, "namespace": ns, "ownerReferences": ref},
                     "data": dict(want["content"])}),
        (SA, {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": True,
              "metadata": {"name": "helm-" + name, "namespace": ns, "ownerReferences": ref}}),
        (CRB, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "helm-%s-%s" % (ns, name), "ownerReferences": ref},
               "roleRef": {"kind": "ClusterRole", "apiGroup": "rbac.authorization.k8s.io", "name": "cluster-admin"},
               "subjects": [{"name": "helm-" + name, "kind": "ServiceAccount", "namespace": ns}]}),
    ]
    template = {"metadata": {"annotations": {CONFIG_HASH: want["hash"]}, "labels": {CHART_LABEL: name}},
                "spec": {"restartPolicy": "OnFailure", "serviceAccountName": "helm-" + name,
                         "nodeSelector": {"kubernetes.io/os": "linux"},
                         "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                         "containers": [{"name": "helm", "image": want["image"], "imagePullPolicy": "IfNotPresent",
                                         "args": want["args"], "env": want["env"],
                                         "volumeMounts": [{"name": "values", "mountPath": "/config"},
                                                          {"name": "content", "mountPath": "/chart"}]}],
                         "volumes": [{"name": "values", "secret": {"secretName": "chart-values-" + name}},
                                     {"name": "content", "configMap": {"name": "chart-content-" + name}}]}}
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": jn, "namespace": ns, "labels": {CHART_LABEL: name}, "ownerReferences": ref},
           "spec": {"backoffLimit": want["backoffLimit"], "completions": 1, "parallelism": 1,
                    "template": template}}
    return related, job


def replace_job(w, hc, want, action):
    """wrangler's apply with helm-controller's jobPatcher: a job that must
    change is deleted (foreground: its pods first) and made anew."""
    md = hc["metadata"]
    ns, name = md["namespace"], md["name"]
    related, job = job_objects(w, hc, want, action)
    for r, o in related:
        w.upsert(r, o, "k3s")
    for act in ("install", "delete"):
        old = w.get(JOB, ns, "helm-%s-%s" % (act, name))
        if old is not None:
            delete_job(w, old)
    fp = sha256(json.dumps([job["spec"], want["target"]], sort_keys=True))
    juid = make_uid("%s/%s@%d" % (ns, job["metadata"]["name"], w.st["rv"]))
    lab = {"batch.kubernetes.io/controller-uid": juid, "batch.kubernetes.io/job-name": job["metadata"]["name"],
           "controller-uid": juid, "job-name": job["metadata"]["name"]}
    job["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": juid}}
    job["spec"]["template"]["metadata"]["labels"].update(lab)
    job["status"] = {"active": 1, "ready": 0, "startTime": ts(w.now), "terminating": 0,
                     "uncountedTerminatedPods": {}}
    job["_sim"] = {"fp": fp, "action": action, "start": w.now, "cur": w.now, "restarts": 0, "done": None,
                   "target": want["target"]}
    job = w.write(JOB, job, None, "k3s", uid=juid)
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    h = int(sha256(juid), 16)
    pn = job["metadata"]["name"] + "-" + "".join(alphabet[(h >> (5 * i)) % 27] for i in range(5))
    tmpl = job["spec"]["template"]
    node = next((n for n, x in sorted(w.st.get("nodes", {}).items()) if x.get("role") == "server"), "")
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": pn, "namespace": ns, "generateName": job["metadata"]["name"] + "-",
                        "labels": dict(tmpl["metadata"]["labels"]),
                        "annotations": dict(tmpl["metadata"]["annotations"]),
                        "ownerReferences": [owner_ref(JOB, job)]},
           "spec": dict(copy.deepcopy(tmpl["spec"]), nodeName=node),
           "_sim": {}}
    pod = w.write(POD, pod, None, "kube-controller-manager")
    sim = dict(job["_sim"], pod=pn)
    new = copy.deepcopy(job)
    new["_sim"] = sim
    w.write(JOB, new, job)
    return w.get(JOB, ns, job["metadata"]["name"])


def delete_job(w, job):
    md = job["metadata"]
    for p in w.list(POD, md["namespace"]):
        if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/controller-uid") == md["uid"]:
            w.remove(POD, p)
    w.remove(JOB, job)


def install(w, hc):
    md = hc["metadata"]
    want = job_wanted(w, hc, "install")
    related, job = job_objects(w, hc, want, "install")
    fp = sha256(json.dumps([job["spec"], want["target"]], sort_keys=True))
    j = w.get(JOB, md["namespace"], "helm-install-" + md["name"])
    if j is None or (j.get("_sim") or {}).get("fp") != fp:
        j = replace_job(w, hc, want, "install")
        w.set_status(HELMCHART, w.get(HELMCHART, md["namespace"], md["name"]), {
            "jobName": j["metadata"]["name"],
            "conditions": [{"type": "JobCreated", "status": "True", "reason": "Job created",
                            "message": "Applying HelmChart using Job %s/%s" % (md["namespace"],
                                                                               j["metadata"]["name"])},
                           {"type": "Failed", "status": "False"}]}, "k3s")
        w.event(HELMCHART, w.get(HELMCHART, md["namespace"], md["name"]), "Normal", "ApplyJob",
                "Applying HelmChart using Job %s/%s" % (md["namespace"], j["metadata"]["name"]), "helm-controller")
    run_job(w, j, w.get(HELMCHART, md["namespace"], md["name"]))


def uninstall(w, hc):
    """OnRemove: the delete job replaces the install job; once it has
    succeeded the chart's resources and the finalizer go."""
    md = hc["metadata"]
    ns, name = md["namespace"], md["name"]
    j = w.get(JOB, ns, "helm-delete-" + name)
    if j is None:
        want = job_wanted(w, hc, "delete")
        j = replace_job(w, hc, want, "delete")
        hc = w.get(HELMCHART, ns, name)
        new = copy.deepcopy(hc)
        new.setdefault("status", {})["jobName"] = j["metadata"]["name"]
        w.write(HELMCHART, new, hc, "k3s", status=True, sub="status")
    j = run_job(w, j, w.get(HELMCHART, ns, name))
    if j is not None and (j.get("_sim") or {}).get("done") == "ok":
        hc = w.get(HELMCHART, ns, name)
        w.event(HELMCHART, hc, "Normal", "RemoveJob", "Uninstalled HelmChart using Job %s/%s, removing resources"
                % (ns, j["metadata"]["name"]), "helm-controller")
        for act in ("install", "delete"):
            old = w.get(JOB, ns, "helm-%s-%s" % (act, name))
            if old is not None:
                delete_job(w, old)
        for r, o in job_objects(w, hc, job_wanted(w, hc, "delete"), "delete")[0]:
            got = w.get(r, o["metadata"].get("namespace"), o["metadata"]["name"])
            if got is not None:
                w.remove(r, got)
        hc = w.get(HELMCHART, ns, name)
        new = copy.deepcopy(hc)
        new["metadata"]["finalizers"] = [f for f in hc["metadata"].get("finalizers", []) if f != HELM_FINALIZER]
        w.write(HELMCHART, new, hc, "k3s")


def backoff_s(w, restarts):
    """kubelet's crash-loop back-off (10 s doubling to 5 min), with 10 s
    scaled to --helm-ms so that tests stay fast."""
    return w.a.helm_ms / 1000.0 * min(2 ** (restarts - 1), 30)


def run_job(w, job, hc):
    """The Job controller and kubelet for a helm job: each attempt runs
    --helm-ms and ends as helm would end it now; a failed container is
    restarted (restartPolicy OnFailure) after its back-off, and the job fails
    once the restarts reach backoffLimit (0: at the first failure), its pod
    then deleted as the Job controller does."""
    sim = job.get("_sim") or {}
    if sim.get("done") or hc is None:
        return job
    md = job["metadata"]
    ns = md["namespace"]
    pod = w.get(POD, ns, sim.get("pod", ""))
    if pod is None:
        return job
    H = w.a.helm_ms / 1000.0
    limit = job["spec"].get("backoffLimit", 6)
    psim = dict(pod.get("_sim") or {})
    jstatus = copy.deepcopy(job["status"])
    cs = copy.deepcopy(((pod.get("status") or {}).get("containerStatuses") or [{}])[0])
    pod_deleted = False
    head = helm_head(w, hc, sim["action"])
    # the log of the container in "state" (running: what it printed so far)
    # and of the one in "lastState"
    psim.setdefault("current", head)
    while not sim.get("done"):
        end = sim["cur"] + H
        if w.now < end:
            break
        ok, text, effects = helm_run(w, hc, sim["action"], head)
        fin = {"exitCode": 0 if ok else 1, "reason": "Completed" if ok else "Error",
               "startedAt": ts(sim["cur"]), "finishedAt": ts(end),
               "containerID": "containerd://" + sha256("%s@%f" % (md["uid"], sim["cur"]))}
        if ok:
            psim["current"] = text
        else:
            psim["lastState"], psim["current"] = text, head
        if ok:
            effects()
            sim["done"] = "ok"
            cs = dict({"state": {"terminated": fin}, "restartCount": sim["restarts"], "ready": False},
                      **({"lastState": cs["lastState"]} if cs.get("lastState") else {}))
            jstatus = {"succeeded": 1, "startTime": jstatus.get("startTime"), "completionTime": ts(end),
                       "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                                       "message": "Reached expected number of succeeded pods",
                                       "lastProbeTime": ts(end), "lastTransitionTime": ts(end)},
                                      {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                                       "message": "Reached expected number of succeeded pods",
                                       "lastProbeTime": ts(end), "lastTransitionTime": ts(end)}]}
            pstatus = "Succeeded"
            break
        sim["restarts"] += 1
        cs = {"lastState": {"terminated": fin}, "restartCount": sim["restarts"], "ready": False}
        if (limit == 0 and sim["restarts"] > 0) or (limit > 0 and sim["restarts"] >= limit):
            sim["done"] = "failed"
            jstatus = {"failed": 1, "startTime": jstatus.get("startTime"), "ready": 0, "terminating": 0,
                       "uncountedTerminatedPods": {},
                       "conditions": [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                                       "message": "Job has reached the specified backoff limit",
                                       "lastProbeTime": ts(end), "lastTransitionTime": ts(end)},
                                      {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                       "message": "Job has reached the specified backoff limit",
                                       "lastProbeTime": ts(end), "lastTransitionTime": ts(end)}]}
            pod_deleted = True
            break
        sim["cur"] = end + backoff_s(w, sim["restarts"])
    if pod_deleted:
        w.remove(POD, pod)
    else:
        if not sim.get("done"):
            if w.now >= sim["cur"]:
                cs["state"] = {"running": {"startedAt": ts(sim["cur"])}}
                cs["ready"] = True
                pstatus = "Running"
            else:
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off %ds restarting failed "
                               "container=helm pod=%s_%s(%s)" % (10 * min(2 ** (sim["restarts"] - 1), 30),
                                                                 pod["metadata"]["name"], ns,
                                                                 pod["metadata"]["uid"])}}
                pstatus = "Running"
            jstatus["ready"] = 1 if cs.get("ready") else 0
        cs.update({"name": "helm", "image": job["spec"]["template"]["spec"]["containers"][0]["image"],
                   "imageID": "", "started": "running" in cs.get("state", {})})
        cs.setdefault("restartCount", sim["restarts"])
        new = copy.deepcopy(pod)
        new["_sim"] = psim
        new["status"] = {"phase": pstatus, "hostIP": "", "podIP": "10.42.0.%d" % (1 + int(sha256(
            pod["metadata"]["uid"])[:4], 16) % 250), "startTime": ts(sim["start"]),
            "qosClass": "BestEffort", "containerStatuses": [cs],
            "conditions": [{"type": "Ready", "status": "True" if cs.get("ready") else "False"}]}
        w.write(POD, new, pod, "k3s")
    new = copy.deepcopy(w.get(JOB, ns, md["name"]))
    new["_sim"] = sim
    new["status"] = jstatus
    return w.write(JOB, new, w.get(JOB, ns, md["name"]), "k3s", status=True, sub="status")


def chart_url(w, spec):
    """klipper-helm replaces %{KUBERNETES_API}% with the kubernetes service's
    address (the service CIDR's first address, port 443)."""
    return str(spec.get("chart", "")).replace("%{KUBERNETES_API}%", "%s:443" % w.service_ip(1))


def helm_head(w, hc, action):
    """The first lines klipper-helm's entry script prints (set -x)."""
    md, spec = hc["metadata"], hc.get("spec") or {}
    name = md["name"]
    target = spec.get("targetNamespace") or md["namespace"]
    rel = w.st.get("releases", {}).get("%s/%s" % (target, name))
    if action == "delete":
        return "+ helm_v3 uninstall %s --namespace %s\n" % (name, target)
    verb = "upgrade" if rel else "install"
    want = job_wanted(w, hc, action)
    args = [verb] + want["args"][1:] + [name, "/tmp/%s.tgz" % name if spec.get("chartContent") else
                                        chart_url(w, spec)]
    for k in sorted(want["values"]):
        if k.endswith(".yaml"):
            args += ["--values", "/config/" + k]
    return "+ helm_v3 %s\n" % " ".join(args)


def helm_run(w, hc, action, head):
    """One run of klipper-helm: (succeeded, its output, effects) — decided
    as helm v3 decides: the chart fetched and loaded, values merged and
    checked against values.schema.json, the release namespace."""
    md, spec = hc["metadata"], hc.get("spec") or {}
    name, ns = md["name"], md["namespace"]
    target = spec.get("targetNamespace") or ns
    releases = w.st.setdefault("releases", {})
    rkey = "%s/%s" % (target, name)
    if action == "delete":
        out = head + ('release "%s" uninstalled\n' % name if rkey in releases else
                      "Error: uninstall: Release not loaded: %s: release: not found\n+ true\n" % name)

        def gone():
            if releases.pop(rkey, None) is not None:
                for s in w.list(SECRET, target):
                    lab = s["metadata"].get("labels") or {}
                    if lab.get("owner") == "helm" and lab.get("name") == name:
                        w.remove(SECRET, s)
                prune_release(w, name, target, keep=())
                monitoring.forget_release(w, name, target)
                logs.forget_release(w, name, target)
        return True, out, gone
    upgrade = rkey in releases
    what = "UPGRADE FAILED" if upgrade else "INSTALLATION FAILED"
    try:
        chart = packaged_chart(w, spec)
        if chart is None:
            data = fetch_chart(w, spec, name)
            chart = load_chart(data, name)
        vals = user_values(w, hc)
        if not upgrade and chart.get("crds"):
            install_crds(w, chart["crds"])
        final = coalesce(chart["values"], vals)
        if chart["schema"] is not None:
            errs = values_errors(chart["schema"], final, chart.get("validator"))
            if errs:
                msg = "%s: values don't meet the specifications of the schema(s) in the following chart(s):\n" \
                      "%s:\n%s" % (what, chart["meta"]["name"], "".join("- %s\n" % e for e in errs))
                raise HelmError(msg.rstrip("\n"))
        missing = w.get(NS, None, target) is None
        if missing and not spec.get("createNamespace"):
            raise HelmError('%s: create: failed to create: namespaces "%s" not found' % (what, target))
        if chart.get("packaged") == "traefik":
            refused = release_refusals(w, traefik_objects(w, chart, final, name, target), upgrade)
            if refused:
                raise HelmError("%s: %s" % (what, refused))
    except HelmError as e:
        msg = str(e)
        if not msg.startswith(("looks like", what)):
            msg = "%s: %s" % (what, msg)
        return False, head + "Error: %s\n" % msg, None
    rev = releases.get(rkey, {}).get("revision", 0) + 1
    when = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(w.now))
    if upgrade:
        out = head + 'Release "%s" has been upgraded. Happy Helming!\n' % name
    else:
        out = head
    out += "NAME: %s\nLAST DEPLOYED: %s\nNAMESPACE: %s\nSTATUS: deployed\nREVISION: %d\nTEST SUITE: None\n" % (
        name, when, target, rev)

    def effects():
        if w.get(NS, None, target) is None:
            # helm --create-namespace
            w.write(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": target, "labels": {"kubernetes.io/metadata.name": target, "name": target}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}, None, "helm")
        for s in w.list(SECRET, target):
            lab = s["metadata"].get("labels") or {}
            if lab.get("owner") == "helm" and lab.get("name") == name and lab.get("status") == "deployed":
                new = copy.deepcopy(s)
                new["metadata"]["labels"]["status"] = "superseded"
                w.write(SECRET, new, s, "helm")
        releases[rkey] = {"revision": rev, "chart": chart["meta"]["name"], "version": str(chart["meta"]["version"]),
                          "status": "deployed"}
        # what the chart's templates make (modelled for the packaged Traefik
        # and the monitoring and log stacks only); what the release made before and
        # no longer renders goes
        made = []
        if chart.get("packaged") == "traefik":
            made = render_traefik(w, chart, final, name, target)
        elif chart["meta"]["name"] == monitoring.MON_CHART:
            made = monitoring.render_monitoring(w, chart, final, name, target)
        elif chart["meta"]["name"] == logs.LOGS_CHART:
            made = logs.render_logs(w, chart, final, name, target)
        prune_release(w, name, target, keep={okey(r, o["metadata"].get("namespace"), o["metadata"]["name"])
                                             for r, o in made})
        # helm's secret storage driver: one secret per revision
        w.write(SECRET, {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                         "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (name, rev), "namespace": target,
                                      "labels": {"name": name, "owner": "helm", "status": "deployed",
                                                 "version": str(rev)}},
                         "data": {"release": base64.b64encode(json.dumps(releases[rkey]).encode()).decode()}},
                None, "helm")
    return True, out, effects


def fetch_chart(w, spec, name):
    """The archive helm gets: chartContent, or the chart from K3s's static
    directory through the kubernetes service — a request any server may
    answer, so every running server must have the file. Nothing else is
    reachable: the nodes have no internet."""
    if spec.get("chartContent"):
        try:
            return base64.b64decode(spec["chartContent"], validate=False)
        except ValueError as e:
            raise HelmError("illegal base64 data: %s" % e)
    chart = str(spec.get("chart", ""))
    url = chart_url(w, spec)
    dns = w.service_ip(10)
    if spec.get("repo"):
        host = urllib.parse.urlsplit(spec["repo"]).hostname or spec["repo"]
        raise HelmError('looks like "%s" is not a valid chart repository or cannot be reached: Get "%s/index.yaml": '
                        'dial tcp: lookup %s on %s:53: server misbehaving' % (spec["repo"],
                                                                              spec["repo"].rstrip("/"), host, dns))
    m = re.fullmatch(r"https://%\{KUBERNETES_API\}%(/.*)", chart)
    if m:
        p = urllib.parse.unquote(m.group(1))
        if not p.startswith("/static/") or not w.servers:
            raise HelmError("failed to fetch %s : 404 Not Found" % url)
        path = STATIC + p[len("/static/"):]
        got = []
        for _, vm in w.servers:
            f = (vm.get("guestfs") or {}).get(path)
            if f is None:
                raise HelmError("failed to fetch %s : 404 Not Found" % url)
            got.append(file_bytes(f))
        return got[0]
    if re.match(r"(https?|oci)://", chart):
        host = urllib.parse.urlsplit(chart).hostname or ""
        if chart.startswith("oci://"):
            raise HelmError('failed to do request: Head "https://%s/v2/%s/manifests/%s": dial tcp: lookup %s on '
                            '%s:53: server misbehaving' % (host, chart.split("/", 3)[-1],
                                                           spec.get("version") or "latest", host, dns))
        raise HelmError('Get "%s": dial tcp: lookup %s on %s:53: server misbehaving' % (chart, host, dns))
    if "/" in chart:
        raise HelmError("repo %s not found" % chart.split("/", 1)[0])
    raise HelmError("non-absolute URLs should be in form of repo_name/path_to_chart, got: %s" % chart)


SEMVER = r"v?\d+(\.\d+)?(\.\d+)?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"


def load_chart(data, name):
    """helm's loader (pkg/chart/loader/archive.go, load.go): a gzip tar whose
    entries sit in one top directory, Chart.yaml there, validated."""
    if data[:2] != b"\x1f\x8b":
        try:
            data[:512].decode("utf-8")
            kind = "text/plain; charset=utf-8"
        except UnicodeDecodeError:
            kind = "application/octet-stream"
        raise HelmError("file '/tmp/%s.tgz' does not appear to be a gzipped archive; got '%s'" % (name, kind))
    files = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
            for m in tf.getmembers():
                if not m.isfile():
                    continue
                parts = m.name.replace("\\", "/").split("/")
                n = "/".join(parts[1:])
                if n.startswith("/"):
                    raise HelmError("chart illegally contains absolute paths")
                n = posixpath.normpath(n) if n else "."
                if n == ".":
                    raise HelmError('chart illegally contains content outside the base directory: "%s"' % m.name)
                if n.startswith(".."):
                    raise HelmError("chart illegally references parent directory")
                files[n] = tf.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as e:
        raise HelmError("archive/tar: %s" % e)
    if "Chart.yaml" not in files:
        raise HelmError("Chart.yaml file is missing")
    try:
        meta = yaml.safe_load(files["Chart.yaml"].decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise HelmError("cannot load Chart.yaml: %s" % (yaml_error(e) if isinstance(e, yaml.YAMLError) else e))
    if not isinstance(meta, dict):
        raise HelmError("cannot load Chart.yaml: error unmarshaling JSON: json: cannot unmarshal %s into Go value "
                        "of type chart.Metadata" % gotype(meta))
    meta.setdefault("apiVersion", "v1")  # helm 3 reads a Chart.yaml without apiVersion as v1
    if not meta.get("apiVersion"):
        raise HelmError("validation: chart.metadata.apiVersion is required")
    if not meta.get("name"):
        raise HelmError("validation: chart.metadata.name is required")
    if "version" not in meta or meta["version"] in (None, ""):
        raise HelmError("validation: chart.metadata.version is required")
    if not re.fullmatch(SEMVER, str(meta["version"])):
        raise HelmError('validation: chart.metadata.version "%s" is invalid' % meta["version"])
    if meta.get("type", "application") not in ("application", "library"):
        raise HelmError("validation: chart.metadata.type must be application or library")
    if meta.get("type") == "library":
        raise HelmError("validation: chart type is not valid: library")
    for d in meta.get("dependencies") or []:
        dn = d.get("name") if isinstance(d, dict) else None
        if dn and not any(k.startswith("charts/%s/" % dn) or re.fullmatch(r"charts/%s-.*\.tgz" % re.escape(dn), k)
                          for k in files):
            raise HelmError("An error occurred while checking for chart dependencies. You may need to run `helm "
                            "dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in "
                            "charts/ directory: %s" % dn)
    values = {}
    if "values.yaml" in files:
        try:
            values = yaml.safe_load(files["values.yaml"].decode("utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise HelmError("cannot load values.yaml: %s" % (yaml_error(e) if isinstance(e, yaml.YAMLError) else e))
    schema = None
    if "values.schema.json" in files:
        try:
            schema = json.loads(files["values.schema.json"].decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise HelmError("cannot load values.schema.json: %s" % e)
    # helm's Chart.CRDObjects: the files under crds/ named .yaml, .yml or
    # .json (this chart's; a subchart's are not modelled), never templated
    crds = {n: files[n] for n in sorted(files) if n.startswith("crds/") and
            posixpath.splitext(n)[1] in (".yaml", ".yml", ".json")}
    return {"meta": meta, "values": values if isinstance(values, dict) else {}, "schema": schema, "crds": crds}


def install_crds(w, crds):
    """helm v3's Install.installCRDs: each file of the chart's crds/
    directory created as it is, before the values are checked (so they stay
    when the install fails later); a CRD that exists already is skipped
    (helm logs "CRD NAME is already present. Skipping."). Only
    CustomResourceDefinitions are modelled there: any other kind fails the
    install. An upgrade never comes here, an uninstall never deletes them."""
    for fname, data in crds.items():
        try:
            objs = manifest_objects(data)
        except ValueError as e:
            raise HelmError("failed to install CRD %s: %s" % (fname, e))
        for o in objs:
            if o.get("kind") == CRD.kind and o.get("apiVersion") != CRD.gv:
                # apiextensions.k8s.io/v1beta1 is gone since Kubernetes 1.22
                raise HelmError('failed to install CRD %s: resource mapping not found for name: %s namespace: "" '
                                'from "": no matches for kind "%s" in version "%s"'
                                % (fname, json.dumps((o.get("metadata") or {}).get("name") or ""), CRD.kind,
                                   o.get("apiVersion")))
            if (o.get("apiVersion"), o.get("kind")) != (CRD.gv, CRD.kind):
                raise HelmError('failed to install CRD %s: the model takes only %s, Kind=%s from a chart\'s crds/ '
                                'directory, not %s, Kind=%s' % (fname, CRD.gv, CRD.kind, o.get("apiVersion"),
                                                                o.get("kind")))
            name = (o.get("metadata") or {}).get("name")
            if isinstance(name, str) and w.get(CRD, None, name) is not None:
                continue
            try:
                create(w, CRD, None, o, "helm")
            except ApiError as e:
                if e.reason == "AlreadyExists":
                    continue
                raise HelmError("failed to install CRD %s: %s" % (fname, e.message))


def user_values(w, hc):
    """klipper-helm's --values files in order (the HelmChart's, then the
    HelmChartConfig's: later files win, maps merged) and spec.set."""
    md, spec = hc["metadata"], hc.get("spec") or {}
    conf = w.get(HELMCHARTCONFIG, md["namespace"], md["name"])
    out = {}
    for fname, text in (("values-01_HelmChart.yaml", spec.get("valuesContent")),
                        ("values-10_HelmChartConfig.yaml", ((conf or {}).get("spec") or {}).get("valuesContent"))):
        if not text:
            continue
        try:
            v = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise HelmError("failed to parse /config/%s: %s" % (fname, yaml_error(e)))
        if v is None:
            continue
        if not isinstance(v, dict):
            raise HelmError("failed to parse /config/%s: error unmarshaling JSON: json: cannot unmarshal %s into Go "
                            "value of type map[string]interface {}" % (fname, gotype(v)))
        out = merge_maps(out, v)
    for k in sorted(spec.get("set") or {}):
        v = spec["set"][k]
        if isinstance(v, str):
            low = v.lower()
            v = True if low == "true" else False if low == "false" else None if low == "null" else v
        node = out
        parts = k.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = v
    return out


def merge_maps(a, b):
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_maps(out[k], v)
        else:
            out[k] = v
    return out


def coalesce(defaults, user):
    """helm's CoalesceValues: the user's values over the chart's; null deletes."""
    out = copy.deepcopy(defaults) if isinstance(defaults, dict) else {}
    for k, v in user.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = coalesce(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def values_errors(schema, values, cls=None):
    """values.schema.json's verdict in helm's words (gojsonschema, helm <=
    3.17: "<field>: <description>", the root "(root)"); cls: the validator
    class (default: the schema's $schema, else draft-07)."""
    try:
        v = (cls or jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator))(schema)
        errs = sorted(v.iter_errors(values), key=lambda e: ([str(x) for x in e.absolute_path], e.validator))
    except jsonschema.exceptions.SchemaError as e:
        return ["(root): invalid schema: %s" % e.message]
    out = []
    for e in errs:
        field = ".".join(str(x) for x in e.absolute_path) or "(root)"
        val, vv, inst = e.validator, e.validator_value, e.instance
        if val == "required":
            m = re.match(r"'(.*)' is a required property", e.message)
            out.append("%s: %s is required" % (field, m.group(1) if m else "?"))
        elif val == "type":
            want = vv if isinstance(vv, str) else ", ".join(vv)
            out.append("%s: Invalid type. Expected: %s, given: %s" % (field, want, gotype(inst)))
        elif val == "additionalProperties":
            props = e.schema.get("properties", {})
            pats = e.schema.get("patternProperties", {})
            for k in sorted(inst):
                if k not in props and not any(re.search(p, k) for p in pats):
                    out.append("%s: Additional property %s is not allowed" % (field, k))
        elif val in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf"):
            words = {"maximum": "Must be less than or equal to", "minimum": "Must be greater than or equal to",
                     "exclusiveMaximum": "Must be less than", "exclusiveMinimum": "Must be greater than",
                     "multipleOf": "Must be a multiple of"}[val]
            out.append("%s: %s %s" % (field, words, num(vv)))
        elif val == "enum":
            out.append("%s: %s must be one of the following: %s" % (field, field, ", ".join(json.dumps(x) for x in vv)))
        elif val == "const":
            out.append("%s: %s does not match: %s" % (field, field, json.dumps(vv)))
        elif val == "pattern":
            out.append("%s: Does not match pattern '%s'" % (field, vv))
        elif val == "format":
            out.append("%s: Does not match format '%s'" % (field, vv))
        elif val in ("minLength", "maxLength"):
            out.append("%s: String length must be %s %d" % (field, "greater than or equal to" if val == "minLength"
                                                             else "less than or equal to", vv))
        elif val in ("minItems", "maxItems"):
            out.append("%s: Array must have %s %d items" % (field, "at least" if val == "minItems" else "at most",
                                                            vv))
        elif val == "uniqueItems":
            out.append("%s: array items must be unique" % field)
        elif val in ("anyOf", "oneOf", "allOf", "not"):
            out.append("%s: %s" % (field, {"anyOf": "Must validate at least one schema (anyOf)",
                                           "oneOf": "Must validate one and only one schema (oneOf)",
                                           "allOf": "Must validate all the schemas (allOf)",
                                           "not": "Must not validate the schema (not)"}[val]))
        elif val in ("minProperties", "maxProperties"):
            out.append("%s: Must have %s %d properties" % (field, "at least" if val == "minProperties" else "at most",
                                                          vv))
        else:
            out.append("%s: %s" % (field, e.message))
    return out


# ---- K3s's packaged Traefik ----------------------------------------------------------

# --traefik-chart: the traefik-helm-chart version K3s packages -> (K3s's
# build of the chart, as its static/charts file names say, and the Traefik
# image tag K3s pins). 34.2.1+up34.2.0 is K3s 1.32/1.33's file name; the
# other two follow k3s-charts' naming (PATCH*100+build) and the chart's
# appVersion.
TRAEFIK_CHARTS = {"34.2.0": ("34.2.1+up34.2.0", "3.3.6"), "38.0.2": ("38.0.201+up38.0.2", "3.6.6"),
                  "39.0.7": ("39.0.701+up39.0.7", "3.6.12")}
TRAEFIK_DEFAULT = "34.2.0"
KUBE_VIP_LB_IPS = "kube-vip.io/loadbalancerIPs"
RELEASE_NAME, RELEASE_NS = "meta.helm.sh/release-name", "meta.helm.sh/release-namespace"

# K3s's manifests/traefik.yaml, as K3s writes it (%{KUBERNETES_API}% and
# the registry are for klipper-helm to fill in)
TRAEFIK_MANIFEST = """---
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: traefik-crd
  namespace: kube-system
spec:
  chart: https://%%{KUBERNETES_API}%%/static/charts/traefik-crd-%(build)s.tgz
---
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: traefik
  namespace: kube-system
spec:
  chart: https://%%{KUBERNETES_API}%%/static/charts/traefik-%(build)s.tgz
  set:
    global.systemDefaultRegistry: ""
  valuesContent: |-
    deployment:
      podAnnotations:
        prometheus.io/port: "8082"
        prometheus.io/scrape: "true"
    providers:
      kubernetesIngress:
        publishedService:
          enabled: true
    priorityClassName: "system-cluster-critical"
    image:
      repository: "rancher/mirrored-library-traefik"
      tag: "%(tag)s"
    tolerations:
    - key: "CriticalAddonsOnly"
      operator: "Exists"
    - key: "node-role.kubernetes.io/control-plane"
      operator: "Exists"
      effect: "NoSchedule"
    service:
      ipFamilyPolicy: "PreferDualStack"
"""


def traefik_version(w):
    return getattr(w.a, "traefik_chart", None) or TRAEFIK_DEFAULT


def packaged_manifests(w):
    """{path: text}: the manifests K3s writes itself into each server's
    manifests directory at its start (of those, Traefik's only), none for a
    disabled component."""
    if "traefik" in w.disables():
        return {}
    build, tag = TRAEFIK_CHARTS[traefik_version(w)]
    return {MANIFESTS + "traefik.yaml": TRAEFIK_MANIFEST % {"build": build, "tag": tag}}


def traefik_defaults():
    """The part of the Traefik chart's values.yaml the model renders from
    (valid under each modelled version's schema)."""
    def port(n, exposed, expose):
        return {"port": n, "expose": {"default": expose}, "exposedPort": exposed, "protocol": "TCP"}
    return {"deployment": {"enabled": True, "kind": "Deployment", "replicas": 1},
            "image": {"registry": "docker.io", "repository": "traefik", "pullPolicy": "IfNotPresent"},
            "ports": {"traefik": port(8080, 8080, False), "web": port(8000, 80, True),
                      "websecure": port(8443, 443, True), "metrics": port(9100, 9100, False)},
            "service": {"enabled": True, "type": "LoadBalancer", "annotations": {}, "labels": {}, "spec": {}}}


def packaged_chart(w, spec):
    """A chart K3s's static directory holds by itself: traefik-crd and
    traefik of --traefik-chart, as load_chart returns a chart (with
    "packaged" and the schema's validator class); None for any other."""
    if spec.get("chartContent") or spec.get("repo"):
        return None
    m = re.fullmatch(r"https://%\{KUBERNETES_API\}%/static/charts/(traefik|traefik-crd)-(.+)\.tgz",
                     str(spec.get("chart", "")))
    version = traefik_version(w)
    build, tag = TRAEFIK_CHARTS[version]
    if not m or m.group(2) != build:
        return None
    meta = {"apiVersion": "v2", "name": m.group(1), "version": build, "appVersion": "v" + tag}
    if m.group(1) == "traefik-crd":
        return {"meta": meta, "values": {}, "schema": None, "packaged": "traefik-crd"}
    schema = w.schemas.traefik_values(version) if w.schemas is not None else None
    return {"meta": meta, "values": traefik_defaults(), "schema": schema,
            "validator": jsonschema.Draft202012Validator, "packaged": "traefik"}


def release_objects(w, name, ns):
    """[(resource, object)] that helm release ns/name made (its annotations)."""
    out = []
    for k, o in sorted(w.objs.items()):
        a = o["metadata"].get("annotations") or {}
        if a.get(RELEASE_NAME) == name and a.get(RELEASE_NS) == ns:
            g, plural = k.split("/")[:2]
            r = BY_PATH.get(("" if g == "core" else g, o["apiVersion"].rsplit("/", 1)[-1], plural))
            if r is not None:
                out.append((r, o))
    return out


def prune_release(w, name, ns, keep):
    for r, o in release_objects(w, name, ns):
        if okey(r, o["metadata"].get("namespace"), o["metadata"]["name"]) not in keep:
            w.delete(r, o, "Background")


def traefik_objects(w, chart, values, name, ns):
    """What the Traefik chart's templates render from the coalesced values,
    as helm sends it to the API: [(resource, object)], the Deployment (or
    DaemonSet) and the Service, without status."""
    out = []
    inst = {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "%s-%s" % (name, ns)}
    labels = dict(inst, **{"helm.sh/chart": "traefik-%s" % chart["meta"]["version"].replace("+", "_"),
                           "app.kubernetes.io/managed-by": "Helm"})
    meta = {"namespace": ns, "labels": labels, "annotations": {RELEASE_NAME: name, RELEASE_NS: ns}}

    def d(v):
        return v if isinstance(v, dict) else {}
    ports = {k: v for k, v in d(values.get("ports")).items() if isinstance(v, dict)}
    dep = d(values.get("deployment"))
    if dep.get("enabled", True) is not False:
        r = DAEMONSET if dep.get("kind") == "DaemonSet" else DEPLOYMENT
        img = d(values.get("image"))
        image = "%s:%s" % ("/".join(str(x) for x in (img.get("registry"), img.get("repository") or "traefik") if x),
                           img.get("tag") or chart["meta"]["appVersion"])
        pod = {"serviceAccountName": name, "containers": [{
            "name": "traefik", "image": image, "imagePullPolicy": img.get("pullPolicy") or "IfNotPresent",
            "args": ["--entryPoints.%s.address=:%s/%s" % (k, v.get("port"), str(v.get("protocol") or "TCP").lower())
                     for k, v in sorted(ports.items())],
            "ports": [{"name": k, "containerPort": v.get("port"), "protocol": v.get("protocol") or "TCP"}
                      for k, v in sorted(ports.items())]}]}
        for k in ("priorityClassName", "tolerations", "nodeSelector", "affinity"):
            if values.get(k):
                pod[k] = copy.deepcopy(values[k])
        spec = {"selector": {"matchLabels": dict(inst)},
                "template": {"metadata": {"labels": dict(labels),
                                          "annotations": copy.deepcopy(d(dep.get("podAnnotations")))},
                             "spec": pod}}
        if r is DEPLOYMENT:
            spec["replicas"] = dep.get("replicas") if isinstance(dep.get("replicas"), int) else 1
        out.append((r, {"apiVersion": r.gv, "kind": r.kind, "metadata": dict(copy.deepcopy(meta), name=name),
                        "spec": spec}))
    svc = d(values.get("service"))
    if svc.get("enabled", True) is not False:
        old = w.get(SERVICE, ns, name)
        spec = copy.deepcopy(d(svc.get("spec")))
        spec.update({"type": svc.get("type") or "LoadBalancer", "selector": dict(inst), "ports": [
            {"name": k, "port": v.get("exposedPort") or v.get("port"), "targetPort": v.get("targetPort") or k,
             "protocol": v.get("protocol") or "TCP"}
            for k, v in sorted(ports.items()) if d(v.get("expose")).get("default")]})
        for k in ("ipFamilyPolicy", "ipFamilies", "externalIPs", "loadBalancerSourceRanges"):
            if svc.get(k):
                spec[k] = copy.deepcopy(svc[k])
        spec["clusterIP"] = ((old or {}).get("spec") or {}).get("clusterIP") or \
            w.service_ip(11 + int(sha256("%s/%s" % (ns, name))[:4], 16) % 240)
        md = dict(copy.deepcopy(meta), name=name)
        md["labels"].update({str(k): str(v) for k, v in d(svc.get("labels")).items()})
        md["annotations"].update({str(k): str(v) for k, v in d(svc.get("annotations")).items()})
        out.append((SERVICE, {"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": spec}))
    return out


def release_refusals(w, objs, upgrade):
    """What the API answers when helm sends a release's objects: None when it
    takes them all, else helm's error (kube.Client's words) — an object that
    does not exist yet is created (install: the API's error as it is; upgrade:
    "failed to create resource: ..."), one that does is patched ("cannot patch
    NAME with kind KIND: ...", every refusal, joined by " && "). Only the
    API's validation (World.validate) is modelled; a refusal leaves the whole
    release unapplied here, where helm would have applied the objects before
    and after the refused one."""
    patch_errs = []
    for r, o in objs:
        md = o["metadata"]
        old = w.get(r, md.get("namespace"), md["name"])
        try:
            w.validate(r, copy.deepcopy(o), old=old)
        except ApiError as e:
            if old is None:
                return ("failed to create resource: " if upgrade else "") + e.message
            patch_errs.append("cannot patch %s with kind %s: %s" % (json.dumps(md["name"]), r.kind, e.message))
    return " && ".join(patch_errs) or None


def render_traefik(w, chart, values, name, ns):
    """The Traefik chart's Deployment (or DaemonSet) and Service
    (traefik_objects) written, with their status; [(resource, object)]."""
    made = []
    for r, obj in traefik_objects(w, chart, values, name, ns):
        o = w.upsert(r, obj, "helm")
        if r is SERVICE:
            made.append((SERVICE, lb_status(w, o)))
            continue
        st = {"observedGeneration": o["metadata"].get("generation", 1)}
        if r is DEPLOYMENT:
            n = obj["spec"]["replicas"]
            st.update({"replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                       "message": "Deployment has minimum availability."}]})
        else:
            st.update({"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberReady": 1,
                       "numberAvailable": 1, "updatedNumberScheduled": 1, "numberMisscheduled": 0})
        made.append((r, w.set_status(r, o, st, "kube-controller-manager")))
    return made


KUBE_VIP_CLASS = "kube-vip.io/kube-vip-class"  # kube-vip's lb_class_name default
KUBE_VIP_IGNORE = "kube-vip.io/ignore"
GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def container_env(c):
    """{name: value} of a container's env as the process sees it (a later
    entry of the same name wins; valueFrom is not resolved: left out)."""
    env = {}
    for e in c.get("env") or []:
        if isinstance(e, dict) and isinstance(e.get("name"), str) and "valueFrom" not in e:
            env[e["name"]] = "" if e.get("value") is None else str(e["value"])
    return env


def kube_vips(w):
    """The kube-vip instances that serve Services: for each container of a
    DaemonSet (any namespace, not being deleted) whose image contains
    "kube-vip" and whose env has svc_enable true, its class settings
    {"class", "class_only", "legacy"} (kube-vip's config_envvar: ParseBool,
    an error stops it)."""
    out = []
    for ds in w.list(DAEMONSET):
        if ds["metadata"].get("deletionTimestamp"):
            continue
        pod = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c in pod.get("containers") or []:
            if not isinstance(c, dict) or "kube-vip" not in str(c.get("image") or ""):
                continue
            env = container_env(c)
            flags = {}
            for k, default in (("svc_enable", False), ("lb_class_only", False), ("lb_class_legacy_handling", True)):
                v = env.get(k, "")
                flags[k] = default if v == "" else GO_BOOLS.get(v)
            if flags["svc_enable"] is not True or None in flags.values():
                continue
            out.append({"class": env.get("lb_class_name", KUBE_VIP_CLASS), "class_only": flags["lb_class_only"],
                        "legacy": flags["lb_class_legacy_handling"]})
    return out


def kube_vip_takes(kv, svc):
    """kube-vip's filter (lbClassFilterLegacy / lbClassFilter): does this
    instance serve the Service?"""
    if (svc["metadata"].get("annotations") or {}).get(KUBE_VIP_IGNORE) == "true":
        return False
    cls = (svc.get("spec") or {}).get("loadBalancerClass")
    if cls is None:
        return not kv["class_only"] if kv["legacy"] else kv["class"] == ""
    return cls == kv["class"]


def kube_vip_addresses(svc):
    """The addresses a Service asks kube-vip for: the annotation
    kube-vip.io/loadbalancerIPs (comma separated), else spec.loadBalancerIP."""
    asked = (svc["metadata"].get("annotations") or {}).get(KUBE_VIP_LB_IPS)
    if asked:
        return [x.strip() for x in str(asked).split(",") if x.strip()]
    lbip = (svc.get("spec") or {}).get("loadBalancerIP")
    return [str(lbip)] if lbip else []


def lb_ingress(w, svc, kvs=None):
    """The addresses a Service gets, and who writes them: kube-vip for the
    addresses the Service asks for when a kube-vip with services on takes
    it; else K3s's ServiceLB for a LoadBalancer Service that names no
    loadBalancerClass (the first server's node address, unless
    --disable servicelb); else none. kvs: kube_vips(w), when known."""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return [], "k3s"
    asked = kube_vip_addresses(svc)
    if asked and any(kube_vip_takes(kv, svc) for kv in (kube_vips(w) if kvs is None else kvs)):
        return asked, "kube-vip"
    if spec.get("loadBalancerClass") is not None:
        return [], "kube-vip"  # not ServiceLB's; kube-vip is the only other load balancer modelled
    if "servicelb" in w.disables():
        return [], "k3s"
    nodes = w.st.get("nodes") or {}
    first = (w.st.get("cluster") or {}).get("init")
    ip = (nodes.get(first) or {}).get("ip") or next(
        (n["ip"] for _, n in sorted(nodes.items()) if n.get("role") == "server" and n.get("ip")), "")
    return ([ip] if ip else []), "k3s"


def lb_status(w, svc, kvs=None):
    """The Service with status.loadBalancer as lb_ingress decides it;
    written (a new resourceVersion) only when it differs."""
    ips, who = lb_ingress(w, svc, kvs)
    want = {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ips]} if ips else {}
    if ((svc.get("status") or {}).get("loadBalancer") or {}) == want:
        return svc
    status = copy.deepcopy(svc.get("status") or {})
    status["loadBalancer"] = want
    return w.set_status(SERVICE, svc, status, who)


def lb_controller(w):
    """ServiceLB and kube-vip, every pass: each Service's load-balancer
    status follows the cluster as it is now (a kube-vip DaemonSet applied
    or changed after the Service, a class, an annotation)."""
    kvs = kube_vips(w)
    for svc in w.list(SERVICE):
        if not svc["metadata"].get("deletionTimestamp"):
            lb_status(w, svc, kvs)


# ---- CustomResourceDefinitions and Argo CD ---------------------------------------------

def crd_controller(w):
    """kube-apiserver's apiextensions controllers: each CRD's names accepted
    and the CRD Established (its status written once, then only when it
    would change), its storage versions recorded; the objects of a stored
    CRD's resource go once that CRD is deleted (the cleanup its finalizer
    does); a CRD that merely stops serving them keeps them."""
    for crd in w.list(CRD):
        spec = crd.get("spec") or {}
        old = crd.get("status") or {}
        when = {c.get("type"): c.get("lastTransitionTime") for c in old.get("conditions") or []
                if isinstance(c, dict)}
        stored = [v for v in old.get("storedVersions") or []]
        for v in spec.get("versions") or []:
            if isinstance(v, dict) and v.get("storage") is True and v.get("name") not in stored:
                stored.append(v.get("name"))
        want = {"acceptedNames": copy.deepcopy(spec.get("names") or {}), "storedVersions": stored,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found", "lastTransitionTime": when.get("NamesAccepted") or ts(w.now)},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted",
                     "lastTransitionTime": when.get("Established") or ts(w.now)}]}
        if old != want:
            w.set_status(CRD, crd, want, "kube-apiserver")
    for r in RESOURCES:
        if r.stored_crd and w.get(CRD, None, r.gr()) is None:
            for o in w.list(r):
                w.remove(r, o)


# ---- the rest of the control plane ---------------------------------------------------

def ensure_namespaces(w):
    """The four namespaces every cluster has."""
    for n in SYSTEM_NAMESPACES:
        if w.get(NS, None, n) is None:
            w.write(NS, {"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}},
                         "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}, None,
                    "kube-apiserver")


def namespace_controller(w):
    """A terminating namespace: its objects deleted (finalizers honoured),
    then the namespace."""
    for n in w.list(NS):
        if not n["metadata"].get("deletionTimestamp"):
            continue
        name = n["metadata"]["name"]
        left = False
        for k, o in list(w.objs.items()):
            if o["metadata"].get("namespace") != name or k.startswith("core/namespaces/"):
                continue
            g, plural = k.split("/")[:2]
            r = BY_PATH.get(("" if g == "core" else g, o["apiVersion"].rsplit("/", 1)[-1], plural))
            if r is None:
                continue
            left = True
            if r is HELMCHART or not o["metadata"].get("deletionTimestamp"):
                w.delete(r, o, "Background")
        if not left:
            w.remove(NS, n)
        rel = w.st.get("releases", {})
        for k in [k for k in rel if k.startswith(name + "/")]:
            if not left:
                del rel[k]


def expire_events(w):
    for e in w.list(EVENT):
        if e.get("lastTimestamp") and e["lastTimestamp"] < ts(w.now - EVENT_TTL_S):
            w.objs.pop(okey(EVENT, e["metadata"]["namespace"], e["metadata"]["name"]), None)


def run_controllers(w):
    """Everything the K3s servers do by themselves between two requests."""
    ensure_namespaces(w)
    namespace_controller(w)
    deploy_controller(w)
    helm_controller(w)
    crd_controller(w)
    argocd.argocd_controller(w)
    monitoring.monitoring_controller(w)
    registry.workload_controller(w)
    lb_controller(w)
    w.collect_garbage()
    expire_events(w)
