# SPDX-License-Identifier: MIT
"""k8s_sim_registry.py — the lab's container registry in k8s_sim.py: the
workloads a client creates (Deployments and PersistentVolumeClaims) as
kube-controller-manager, kube-scheduler, the kubelet and K3s's local-path
provisioner play them, and the Distribution registry (registry:2.8) that
kube-apiserver's service proxy reaches in Service registry/registry.

  * Decoding and validation of apps/v1 Deployment and v1
    PersistentVolumeClaim (builtin_causes, apply_check; ../shared/reference
    has no schema of the built-in types, so STRUCTS lists their fields, with
    Go's types, as k8s.io/api 1.33 declares them; the structures it marks
    "any" are taken unchecked):
      - create, update, patch: a field of the wrong type is 400 BadRequest
        'Deployment in version "v1" cannot be handled as a Deployment: json:
        cannot unmarshal string into Go struct field
        DeploymentSpec.spec.replicas of type int32' (a quantity that is not
        one: "quantities must match the regular expression ..."); an unknown
        field is dropped with a Warning 'unknown field "spec.foo"', or with
        fieldValidation=Strict 400 '... strict decoding error: unknown field
        "spec.foo"';
      - server-side apply: the applied configuration is converted to the
        type first (structured-merge-diff), and what does not convert fails
        the request with 500 and no reason, as kube-apiserver 1.33 answers
        it (kubernetes#122480): 'failed to create typed patch object
        (registry/registry; apps/v1, Kind=Deployment):
        .spec.template.spec.containers[name="registry"].foo: field not
        declared in schema' (several: "errors:" and one indented line each);
        a wrong type: "expected string, got &value.valueUnstructured{Value:5}"
        (numbers: "expected numeric (int or float), got string"; maps and
        lists in the same form as strings);
      - then 422 Invalid, in ValidateDeployment's words, for what the model
        checks: spec.replicas below 0; no spec.selector; a selector that
        does not match spec.template.metadata.labels; no containers; a
        container without name or image; imagePullPolicy other than Always,
        IfNotPresent, Never; a volumeMount naming no volume; restartPolicy
        other than Always; strategy.type other than Recreate, RollingUpdate;
        strategy.rollingUpdate with Recreate. A PersistentVolumeClaim needs
        spec.accessModes (each one of the four modes) and
        spec.resources.requests.storage. Nothing is defaulted and quantities
        are kept as written.
  * Deployments (workload_controller, every pass and after every request;
    not the ones the helm model renders, annotated meta.helm.sh/release-name,
    which get their status there): the rollout of each generation is kept in
    the object's _sim. Its ReplicaSet NAME-HASH (HASH: a hash of the pod
    template in the alphabet Kubernetes uses, not the real FNV value;
    labels and selector with pod-template-hash) and spec.replicas Pods
    NAME-HASH-XXXXX (owned, so deleting the Deployment deletes them through
    the garbage collector; a ReplicaSet of an older template is deleted,
    where the real one keeps revisionHistoryLimit of them scaled to 0).
    The Pods are scheduled on the first K3s server once every
    PersistentVolumeClaim the template mounts exists (before: Pending,
    PodScheduled False Unschedulable, and once per Pod the scheduler's
    Warning FailedScheduling '0/N nodes are available: persistentvolumeclaim
    "NAME" not found. preemption: 0/N nodes are available: N Preemption is
    not helpful for scheduling.', the first missing claim in volumes' order;
    the real one repeats it at each retry), and Ready --deploy-ms later
    (Pending with PodScheduled True until then, Running and Ready after).
    The Deployment's status as the deployment controller writes it
    (manager kube-controller-manager, status subresource, zero counts left
    out): observedGeneration, replicas and updatedReplicas (the new
    ReplicaSet's Pods exist at once), readyReplicas and availableReplicas,
    unavailableReplicas; conditions Available (True
    MinimumReplicasAvailable "Deployment has minimum availability." once
    replicas - maxUnavailable are ready — Recreate: all of them,
    RollingUpdate: maxUnavailable default 25%, rounded down — else False
    MinimumReplicasUnavailable "Deployment does not have minimum
    availability.") and Progressing (True ReplicaSetUpdated 'ReplicaSet
    "NAME-HASH" is progressing.' until all are ready, then True
    NewReplicaSetAvailable 'ReplicaSet "NAME-HASH" has successfully
    progressed.'), in that order, each with lastUpdateTime and
    lastTransitionTime kept while it does not change. A new generation
    starts the clock again: a new template's Pods are all new (Recreate),
    a change of replicas alone keeps the Pods that were ready. Not
    modelled: progressDeadlineSeconds (ProgressDeadlineExceeded),
    minReadySeconds, readiness probes, rolling updates' surge, paused, the
    controllers' other events (ScalingReplicaSet, SuccessfulCreate,
    Scheduled, Pulled, ...), Endpoints and EndpointSlices.
  * PersistentVolumeClaims: of storageClassName local-path (or none: K3s's
    default class, which the DefaultStorageClass admission would write in —
    not done here) status.phase Pending (WaitForFirstConsumer: once, the
    Normal event WaitForFirstConsumer "waiting for first consumer to be
    created before binding" of persistentvolume-controller) until a
    Deployment whose template mounts it is available, then Bound for good
    (status.accessModes the claim's, status.capacity.storage its request).
    The real claim binds when the Pod is scheduled, a little earlier, and
    gets a PersistentVolume pvc-UID and spec.volumeName; no
    PersistentVolume is made here. Another class stays Pending.
  * DIR/ready (--registry-dir DIR, shared with the Proxmox simulator; publish):
    while Deployment registry/registry is available, {"image": its first
    container's image, "time": when it became available (UNIX seconds)},
    written to DIR/ready.tmp and renamed; removed once the Deployment is
    unavailable, being deleted or gone. Evaluated at every controller pass,
    after every request, and by k8s_sim.py every 200 ms between requests.
  * Service registry/registry through the service proxy (service_proxy;
    other Services: k8s_sim_monitoring.service_proxy): kube-apiserver's
    resolution as for the monitoring stack (the Service: else 404
    'services "registry" not found'; the port by number or name: else 503
    'no service port ...'; a ready endpoint: a Ready Pod modelled here that
    the Service's selector matches and whose container has the targetPort,
    by name or number: else 503 'no endpoints available for service
    "registry"'; https: 503 as the monitoring stack's pods; a target port
    other than 5000, where the registry listens: 503 "error trying to reach
    service: dial tcp POD_IP:PORT: connect: connection refused"); GET and
    HEAD (other methods: 405 from the model — pushes and deletes through
    the proxy are not modelled). What the registry answers (distribution),
    as Distribution v2.8.3 does, each with the header
    Docker-Distribution-Api-Version: registry/2.0:
      - /v2/: 200 {} (Content-Type application/json; charset=utf-8);
      - /v2/_catalog: 200 {"repositories": [...]}, in the order of the
        registry's storage walk (path components compared in turn), n
        entries (default 100; 0: none; above 1000: 400
        PAGINATION_NUMBER_INVALID "invalid number of results requested",
        detail {"n": N}) after last, and Link: </v2/_catalog?last=L&n=N>;
        rel="next" when n were filled (even if none follows, as the real
        one does);
      - /v2/NAME/tags/list: 200 {"name": NAME, "tags": [sorted]}, or 404
        NAME_UNKNOWN "repository name not known to registry" detail
        {"name": NAME};
      - /v2/NAME/manifests/TAG or DIGEST (GET, HEAD): 200 with
        Content-Type application/vnd.oci.image.manifest.v1+json,
        Docker-Content-Digest and Etag "DIGEST", body a small OCI manifest
        (a stand-in: its bytes do not hash to the digest); 304 when
        If-None-Match names the digest; 404 MANIFEST_UNKNOWN "manifest
        unknown" with detail {"Tag": TAG} or {"Name": NAME, "Revision":
        DIGEST}; and, as v2.8 does for an OCI manifest, 404
        MANIFEST_UNKNOWN "OCI manifest found, but accept header does not
        support OCI manifests" (no detail) unless Accept lists
        application/vnd.oci.image.manifest.v1+json;
      - /v2/NAME/blobs/DIGEST: 404 BLOB_UNKNOWN "blob unknown to registry",
        detail the digest (the model has no blobs);
      - GET or HEAD where only GET is routed (catalog, tags): 405 "Method
        not allowed" text/plain with Allow: GET (gorilla's MethodHandler);
      - any other path: the router's 404 "404 page not found" text/plain
        (no route matched: NAME must be Distribution's repository name,
        TAG its tag pattern; /v2 without its slash, which the real router
        redirects, included).
    Errors are {"errors": [{"code", "message", "detail"}]} with
    Content-Type application/json; charset=utf-8, compact JSON and a
    newline, as Go's encoder writes them. HEAD answers carry no body.
    What the registry holds is DIR/pushed.json, written by the Proxmox
    simulator's guest model when it pushes ({"repositories": {NAME: {TAG:
    "sha256:HEX"}}}), read afresh at every request (missing: empty; a
    repository without tags is not there).

State: a Deployment's "_sim" holds "rollout" {"gen", "hash", "replicas",
"kept", "since", "scheduled"}; a Pod's and a claim's "_sim" "told", the
event given.
"""
import copy
import hashlib
import json
import os
import re
from urllib.parse import urlencode

import k8s_sim_monitoring as monitoring
import k8s_sim_objects as objects

REGISTRY_NS, REGISTRY_NAME, REGISTRY_PORT = "registry", "registry", 5000
MANAGER = "kube-controller-manager"
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand's
LOCAL_PATH = "local-path"
JSON_UTF8 = "application/json; charset=utf-8"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
API_VERSION = ("Docker-Distribution-Api-Version", "registry/2.0")


def d(v):
    return v if isinstance(v, dict) else {}


def lst(v):
    return v if isinstance(v, list) else []


def sha(v):
    return hashlib.sha256(v.encode() if isinstance(v, str) else v).hexdigest()


# ---- the built-in types: decoding, typed patch objects, validation ---------------------
# The Go type of each field: string, int32, int64, bool, IntOrString,
# Quantity, any (not checked), map[string]T, []T, or a struct of STRUCTS.

def _fields(spec):
    return dict(x.split(":") for x in spec.split())


STRUCTS = {
    "Deployment": _fields("apiVersion:string kind:string metadata:ObjectMeta spec:DeploymentSpec status:any"),
    "PersistentVolumeClaim": _fields("apiVersion:string kind:string metadata:ObjectMeta "
                                     "spec:PersistentVolumeClaimSpec status:any"),
    "ObjectMeta": _fields(
        "name:string generateName:string namespace:string selfLink:string uid:string resourceVersion:string "
        "generation:int64 creationTimestamp:any deletionTimestamp:any deletionGracePeriodSeconds:int64 "
        "labels:map[string]string annotations:map[string]string ownerReferences:[]any finalizers:[]string "
        "managedFields:[]any"),
    "DeploymentSpec": _fields(
        "replicas:int32 selector:LabelSelector template:PodTemplateSpec strategy:DeploymentStrategy "
        "minReadySeconds:int32 revisionHistoryLimit:int32 paused:bool progressDeadlineSeconds:int32"),
    "DeploymentStrategy": _fields("type:string rollingUpdate:RollingUpdateDeployment"),
    "RollingUpdateDeployment": _fields("maxUnavailable:IntOrString maxSurge:IntOrString"),
    "LabelSelector": _fields("matchLabels:map[string]string matchExpressions:[]LabelSelectorRequirement"),
    "LabelSelectorRequirement": _fields("key:string operator:string values:[]string"),
    "PodTemplateSpec": _fields("metadata:ObjectMeta spec:PodSpec"),
    "PodSpec": _fields(
        "volumes:[]Volume initContainers:[]Container containers:[]Container ephemeralContainers:[]any "
        "restartPolicy:string terminationGracePeriodSeconds:int64 activeDeadlineSeconds:int64 dnsPolicy:string "
        "nodeSelector:map[string]string serviceAccountName:string serviceAccount:string "
        "automountServiceAccountToken:bool nodeName:string hostNetwork:bool hostPID:bool hostIPC:bool "
        "shareProcessNamespace:bool securityContext:any imagePullSecrets:[]any hostname:string subdomain:string "
        "affinity:any schedulerName:string tolerations:[]any hostAliases:[]any priorityClassName:string "
        "priority:int32 dnsConfig:any readinessGates:[]any runtimeClassName:string enableServiceLinks:bool "
        "preemptionPolicy:string overhead:map[string]Quantity topologySpreadConstraints:[]any "
        "setHostnameAsFQDN:bool os:any hostUsers:bool schedulingGates:[]any resourceClaims:[]any resources:any"),
    "Container": _fields(
        "name:string image:string command:[]string args:[]string workingDir:string ports:[]ContainerPort "
        "envFrom:[]any env:[]EnvVar resources:any resizePolicy:[]any restartPolicy:string "
        "volumeMounts:[]VolumeMount volumeDevices:[]any livenessProbe:Probe readinessProbe:Probe "
        "startupProbe:Probe lifecycle:any terminationMessagePath:string terminationMessagePolicy:string "
        "imagePullPolicy:string securityContext:any stdin:bool stdinOnce:bool tty:bool"),
    "ContainerPort": _fields("name:string hostPort:int32 containerPort:int32 protocol:string hostIP:string"),
    "EnvVar": _fields("name:string value:string valueFrom:any"),
    "VolumeMount": _fields("name:string readOnly:bool recursiveReadOnly:string mountPath:string subPath:string "
                           "mountPropagation:string subPathExpr:string"),
    "Probe": _fields("exec:any httpGet:HTTPGetAction tcpSocket:any grpc:any initialDelaySeconds:int32 "
                     "timeoutSeconds:int32 periodSeconds:int32 successThreshold:int32 failureThreshold:int32 "
                     "terminationGracePeriodSeconds:int64"),
    "HTTPGetAction": _fields("path:string port:IntOrString host:string scheme:string httpHeaders:[]any"),
    "Volume": dict(_fields("name:string persistentVolumeClaim:PersistentVolumeClaimVolumeSource"), **{
        k: "any" for k in ("hostPath emptyDir gcePersistentDisk awsElasticBlockStore gitRepo secret nfs iscsi "
                           "glusterfs rbd flexVolume cinder cephfs flocker downwardAPI fc azureFile configMap "
                           "vsphereVolume quobyte azureDisk photonPersistentDisk projected portworxVolume "
                           "scaleIO storageos csi ephemeral image").split()}),
    "PersistentVolumeClaimVolumeSource": _fields("claimName:string readOnly:bool"),
    "PersistentVolumeClaimSpec": _fields(
        "accessModes:[]string selector:LabelSelector resources:VolumeResourceRequirements volumeName:string "
        "storageClassName:string volumeMode:string dataSource:any dataSourceRef:any "
        "volumeAttributesClassName:string"),
    "VolumeResourceRequirements": _fields("limits:map[string]Quantity requests:map[string]Quantity"),
}
# the associative lists (+listType=map) and their keys, for the paths of
# structured-merge-diff
LIST_KEYS = {("PodSpec", "containers"): ("name",), ("PodSpec", "initContainers"): ("name",),
             ("PodSpec", "volumes"): ("name",), ("Container", "ports"): ("containerPort", "protocol"),
             ("Container", "env"): ("name",), ("Container", "volumeMounts"): ("mountPath",)}
TYPED = ("Deployment", "PersistentVolumeClaim")
INT_RANGE = {"int32": 2 ** 31, "int64": 2 ** 63}
QUANTITY_RE = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


def typed(r):
    """The root struct of r when this model decodes it, else None."""
    return r.kind if r.kind in TYPED and r.gv in ("apps/v1", "v1") else None


def go_type(t):
    """How Go's encoding/json names the type t."""
    if t.startswith("[]"):
        return "[]" + go_type(t[2:])
    if t.startswith("map[string]"):
        return "map[string]" + go_type(t[11:])
    return {"IntOrString": "intstr.IntOrString", "Quantity": "resource.Quantity"}.get(
        t, t if t in ("string", "int32", "int64", "bool") else "v1." + t)


def json_kind(v):
    """The JSON value as Go's UnmarshalTypeError names it."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number" if isinstance(v, int) or v.is_integer() else "number %s" % json.dumps(v)
    return {str: "string", dict: "object", list: "array"}.get(type(v), "value")


def go_repr(v):
    """Go's %#v of the value as a YAML document decodes it (interface{})."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[]interface {}{%s}" % ", ".join(go_repr(x) for x in v)
    return "map[string]interface {}{%s}" % ", ".join("%s:%s" % (json.dumps(k), go_repr(x))
                                                      for k, x in sorted(v.items()))


def go_kind(v):
    """Go's %T of the decoded value."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "int64" if isinstance(v, int) else "float64"
    return {str: "string", dict: "map[string]interface {}", list: "[]interface {}"}.get(type(v), "<nil>")


def smd_mismatch(t, v):
    """structured-merge-diff's words for v where the schema has t (None: it fits)."""
    scalar = t in ("string", "int32", "int64", "bool")
    if t in ("any", "IntOrString", "Quantity") or (scalar and v is None):
        return None
    if t in ("int32", "int64"):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        return None if ok else "expected numeric (int or float), got %s" % go_kind(v)
    want = {"string": (str, "string"), "bool": (bool, "boolean")}.get(t)
    if want is None:
        want = (list, "list") if t.startswith("[]") else (dict, "map")
    if v is None or isinstance(v, want[0]):
        return None
    return "expected %s, got &value.valueUnstructured{Value:%s}" % (want[1], go_repr(v))


def decode_mismatch(t, v):
    """encoding/json's refusal of v for the Go type t: (the JSON value's
    kind, the Go type), or a message of its own (a quantity), or None."""
    if v is None or t == "any":
        return None
    if t == "Quantity":
        text = v if isinstance(v, str) else json.dumps(v)
        return None if re.fullmatch(QUANTITY_RE, text) else \
            "quantities must match the regular expression '%s'" % QUANTITY_RE
    if t == "IntOrString":
        if isinstance(v, str):
            return None
        t = "int32"  # intstr's UnmarshalJSON decodes anything else as an int32
    if t in ("int32", "int64"):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and \
                -INT_RANGE[t] <= v < INT_RANGE[t]:
            return None
        return json_kind(v), t
    ok = {"string": str, "bool": bool}.get(t) or (list if t.startswith("[]") else dict)
    return None if isinstance(v, ok) else (json_kind(v), go_type(t))


def walk(t, v, jp, sp, gp, parent, out):
    """Check v against the Go type t. jp: the path as decoding errors write
    it (indices, k8s_path); sp: structured-merge-diff's path string; gp: Go's
    field stack (names only); parent: the struct holding the field. out:
    {"unknown": [(jp, sp, holder, key)], "decode": [...], "smd": [...]}."""
    bad = decode_mismatch(t, v)
    if bad is not None:
        out["decode"].append(bad if isinstance(bad, str) else "json: cannot unmarshal %s into Go struct field "
                             "%s.%s of type %s" % (bad[0], parent, ".".join(gp), bad[1]))
    wrong = smd_mismatch(t, v)
    if wrong is not None:
        out["smd"].append("%s: %s" % (sp, wrong))
    if bad is not None or wrong is not None or v is None:
        return
    if t.startswith("[]") and t[2:] in STRUCTS:
        keys = LIST_KEYS.get((parent, gp[-1]))
        for i, x in enumerate(v):
            if keys and isinstance(x, dict):
                el = "[%s]" % ",".join("%s=%s" % (k, json.dumps(x[k])) for k in keys if k in x)
            else:
                el = "[%d]" % i
            walk(t[2:], x, jp + [i], sp + el, gp, parent, out)
    elif t.startswith("[]"):
        for i, x in enumerate(v):
            walk(t[2:], x, jp + [i], sp + "[%d]" % i, gp, parent, out)
    elif t.startswith("map[string]"):
        for k, x in v.items():
            walk(t[11:], x, jp + [k], sp + "." + k, gp, parent, out)
    elif t in STRUCTS:
        for k, x in v.items():
            ft = STRUCTS[t].get(k)
            if ft is None:
                if not (parent is None and k == "_sim"):
                    out["unknown"].append((jp + [k], sp + "." + k, v, k))
                continue
            walk(ft, x, jp + [k], sp + "." + k, gp + [k], t, out)


def check(kind, obj):
    out = {"unknown": [], "decode": [], "smd": []}
    walk(kind, obj, [], "", [], None, out)
    return out


def builtin_causes(w, r, obj, strict):
    """kube-apiserver's decoding of a Deployment or PersistentVolumeClaim
    sent by create, update or patch (400 on a type error; unknown fields
    dropped with a Warning, or 400 with strict), then its validation: the
    422 causes [(field, reason, message)]. Other kinds: []."""
    kind = typed(r)
    if kind is None:
        return []
    out = check(kind, obj)
    prefix = '%s in version "%s" cannot be handled as a %s: ' % (kind, r.version, kind)
    if out["decode"]:
        raise objects.ApiError(400, "BadRequest", prefix + out["decode"][0])
    gone = [objects.k8s_path(jp) for jp, _, _, _ in out["unknown"]]
    if gone and strict:
        raise objects.ApiError(400, "BadRequest", prefix + "strict decoding error: " +
                               ", ".join('unknown field "%s"' % g for g in gone))
    for _, _, holder, k in out["unknown"]:
        holder.pop(k, None)
    w.warnings += ['unknown field "%s"' % g for g in gone]
    return deployment_causes(obj) if kind == "Deployment" else claim_causes(obj)


def apply_check(r, cfg):
    """Server-side apply's conversion of the applied configuration to the
    type (structured-merge-diff): an unknown field or a wrong type is 500,
    as kube-apiserver 1.33 answers it."""
    kind = typed(r)
    if kind is None:
        return
    out = check(kind, cfg)
    errs = sorted(out["smd"] + ["%s: field not declared in schema" % sp for _, sp, _, _ in out["unknown"]])
    if errs:
        md = d(cfg.get("metadata"))
        raise internal_error("failed to create typed patch object (%s/%s; %s, Kind=%s): %s" % (
            md.get("namespace") or "", md.get("name") or "", "/" + r.gv if not r.group else r.gv, kind,
            errs[0] if len(errs) == 1 else "errors:\n  " + "\n  ".join(errs)))


def internal_error(message):
    """500 as kube-apiserver answers an error that is not an API status
    (ErrorToAPIStatus): a Status with no reason."""
    e = objects.ApiError(500, "", message)
    e.status = lambda: {k: v for k, v in objects.ApiError.status(e).items() if k != "reason"}
    return e


def go_map(m):
    return "map[string]string{%s}" % ", ".join("%s:%s" % (json.dumps(k), json.dumps(v)) for k, v in sorted(m.items()))


def unsupported(f, v, allowed):
    return (f, "FieldValueNotSupported", "Unsupported value: %s: supported values: %s"
            % (json.dumps(v), ", ".join(json.dumps(x) for x in allowed)))


def deployment_causes(obj):
    """ValidateDeployment, the part the model checks."""
    spec = d(obj.get("spec"))
    out = []
    n = spec.get("replicas")
    if isinstance(n, int) and n < 0:
        out.append(("spec.replicas", "FieldValueInvalid", "Invalid value: %d: must be greater than or equal to 0"
                    % n))
    tpl = d(spec.get("template"))
    labels = d(d(tpl.get("metadata")).get("labels"))
    if not spec.get("selector"):
        out.append(("spec.selector", "FieldValueRequired", "Required value"))
    elif not objects.labels_match(monitoring.selector_reqs(spec["selector"]), labels):
        out.append(("spec.template.metadata.labels", "FieldValueInvalid", "Invalid value: %s: `selector` does "
                    "not match template `labels`" % go_map(labels)))
    ps = d(tpl.get("spec"))
    vols = {v.get("name") for v in lst(ps.get("volumes")) if isinstance(v, dict)}
    if not ps.get("containers"):
        out.append(("spec.template.spec.containers", "FieldValueRequired", "Required value"))
    for i, c in enumerate(lst(ps.get("containers"))):
        f = "spec.template.spec.containers[%d]" % i
        c = d(c)
        for k in ("name", "image"):
            if not c.get(k):
                out.append(("%s.%s" % (f, k), "FieldValueRequired", "Required value"))
        for j, m in enumerate(lst(c.get("volumeMounts"))):
            if d(m).get("name") not in vols:
                out.append(("%s.volumeMounts[%d].name" % (f, j), "FieldValueNotFound", "Not found: %s"
                            % json.dumps(d(m).get("name") or "")))
        if c.get("imagePullPolicy") not in (None, "", "Always", "IfNotPresent", "Never"):
            out.append(unsupported(f + ".imagePullPolicy", c["imagePullPolicy"], ("Always", "IfNotPresent", "Never")))
    if ps.get("restartPolicy") not in (None, "", "Always"):
        out.append(unsupported("spec.template.spec.restartPolicy", ps["restartPolicy"], ("Always",)))
    strat = d(spec.get("strategy"))
    if strat.get("type") not in (None, "", "Recreate", "RollingUpdate"):
        out.append(unsupported("spec.strategy.type", strat["type"], ("Recreate", "RollingUpdate")))
    elif strat.get("type") == "Recreate" and strat.get("rollingUpdate") is not None:
        out.append(("spec.strategy.rollingUpdate", "FieldValueForbidden",
                    "Forbidden: may not be specified when strategy `type` is 'Recreate'"))
    return out


def claim_causes(obj):
    """ValidatePersistentVolumeClaim, the part the model checks."""
    spec = d(obj.get("spec"))
    out = []
    modes = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
    if not spec.get("accessModes"):
        out.append(("spec.accessModes", "FieldValueRequired", "Required value: at least 1 access mode is required"))
    for m in lst(spec.get("accessModes")):
        if m not in modes:
            out.append(unsupported("spec.accessModes", m, modes))
    if d(d(spec.get("resources")).get("requests")).get("storage") is None:
        out.append(("spec.resources[storage]", "FieldValueRequired", "Required value"))
    return out


# ---- Deployments, their ReplicaSets and Pods, and claims --------------------------------

def deploy_s(w):
    return getattr(w.a, "deploy_ms", 1500) / 1000.0


def replicas_of(dep):
    n = d(dep.get("spec")).get("replicas", 1)
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 1


def template_hash(tpl):
    h = int(sha(json.dumps(tpl, sort_keys=True))[:8], 16)
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in str(h))


def claims(tpl):
    return [str(d(v.get("persistentVolumeClaim")).get("claimName")) for v in lst(d(tpl.get("spec")).get("volumes"))
            if isinstance(v, dict) and d(v.get("persistentVolumeClaim")).get("claimName")]


def modelled(dep):
    """A Deployment this model plays: not one the helm model renders, not being deleted."""
    md = dep["metadata"]
    return objects.RELEASE_NAME not in (md.get("annotations") or {}) and not md.get("deletionTimestamp")


def server_node(w):
    return next((n for n, x in sorted(w.st.get("nodes", {}).items()) if x.get("role") == "server"), None)


def ready_now(w, ro):
    """How many of the rollout's Pods are Ready now."""
    if ro["kept"] >= ro["replicas"] or (ro["scheduled"] is not None and w.now >= ro["scheduled"] + deploy_s(w)):
        return ro["replicas"]
    return ro["kept"]


def available_since(w, ro):
    """When the rollout's Pods were all Ready (None: not yet)."""
    if ro["kept"] >= ro["replicas"]:
        return ro["since"]
    if ro["scheduled"] is not None and w.now >= ro["scheduled"] + deploy_s(w):
        return ro["scheduled"] + deploy_s(w)
    return None


def min_available(dep, n):
    """replicas - maxUnavailable (Recreate: 0; RollingUpdate: default 25%, rounded down)."""
    strat = d(d(dep.get("spec")).get("strategy"))
    if strat.get("type") == "Recreate":
        return n
    mu = d(strat.get("rollingUpdate")).get("maxUnavailable", "25%")
    if isinstance(mu, str) and mu.endswith("%") and mu[:-1].isdigit():
        mu = n * int(mu[:-1]) // 100
    return n - mu if isinstance(mu, int) and 0 <= mu <= n else n


def rollout(w, dep, missing):
    """The rollout of dep's generation (its _sim "rollout", updated): a new
    generation starts it again; its Pods are scheduled once no claim is
    missing and a server runs."""
    md = dep["metadata"]
    gen, n = md.get("generation", 1), replicas_of(dep)
    h = template_hash(d(d(dep.get("spec")).get("template")))
    sim = dep.setdefault("_sim", {})
    ro = sim.get("rollout")
    if ro is None or ro["gen"] != gen:
        kept = min(ready_now(w, ro), n) if ro is not None and ro["hash"] == h else 0
        ro = sim["rollout"] = {"gen": gen, "hash": h, "replicas": n, "kept": kept, "since": w.now, "scheduled": None}
    if ro["scheduled"] is None and not missing and server_node(w) is not None:
        ro["scheduled"] = w.now
    return ro


def current_rollout(dep):
    """The rollout dep's generation has, when the controller has seen it."""
    ro = (dep.get("_sim") or {}).get("rollout")
    return ro if ro is not None and ro["gen"] == dep["metadata"].get("generation", 1) else None


def conditions(old, new, now):
    """new's conditions with the times of old's where they did not change."""
    was = {c.get("type"): c for c in lst(old) if isinstance(c, dict)}
    out = []
    for c in new:
        o = was.get(c["type"]) or {}
        same = o.get("status") == c["status"]
        t = objects.ts(now)
        out.append(dict(c, lastUpdateTime=(o.get("lastUpdateTime") or t) if same and o.get("reason") == c["reason"]
                        else t, lastTransitionTime=(o.get("lastTransitionTime") or t) if same else t))
    return out


def without_times(status):
    s = dict(status)
    s["conditions"] = [{k: v for k, v in c.items() if not k.endswith("Time")} for c in lst(s.get("conditions"))]
    return s


def set_status(w, r, o, status, manager=MANAGER):
    """status written when it differs from o's but for the conditions' times."""
    if without_times(status) != without_times(d(o.get("status"))) or "status" not in o:
        return w.set_status(r, o, status, manager)
    return o


def deployment_status(w, dep, ro, rs_name):
    n, ready = ro["replicas"], ready_now(w, ro)
    st = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": n, "updatedReplicas": n,
          "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": n - ready}
    st = {k: v for k, v in st.items() if v}
    avail = ready >= min_available(dep, n)
    st["conditions"] = conditions(d(dep.get("status")).get("conditions"), [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
         "message": "Deployment has minimum availability."} if avail else
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
         "message": "Deployment does not have minimum availability."},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
         "message": 'ReplicaSet "%s" has successfully progressed.' % rs_name} if ready >= n else
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
         "message": 'ReplicaSet "%s" is progressing.' % rs_name}], w.now)
    return st


def owned(o, owner):
    return any(x.get("uid") == owner["metadata"]["uid"] for x in o["metadata"].get("ownerReferences") or [])


def replica_set(w, dep, ro):
    """The ReplicaSet of the rollout's template, made or scaled; those of
    older templates deleted."""
    RS = objects.res("apps", "replicasets")
    md = dep["metadata"]
    ns, name = md["namespace"], "%s-%s" % (md["name"], ro["hash"])
    for old in w.list(RS, ns):
        if owned(old, dep) and old["metadata"]["name"] != name:
            w.delete(RS, old, "Background")
    tpl = d(d(dep.get("spec")).get("template"))
    labels = dict(d(d(tpl.get("metadata")).get("labels")), **{"pod-template-hash": ro["hash"]})
    sel = d(d(dep.get("spec")).get("selector"))
    want = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "annotations": {"deployment.kubernetes.io/desired-replicas": str(ro["replicas"])},
                         "ownerReferences": [objects.owner_ref(objects.DEPLOYMENT, dep)]},
            "spec": {"replicas": ro["replicas"],
                     "selector": dict(sel, matchLabels=dict(d(sel.get("matchLabels")),
                                                            **{"pod-template-hash": ro["hash"]})),
                     "template": dict(tpl, metadata=dict(d(tpl.get("metadata")), labels=labels))}}
    have = w.get(RS, ns, name)
    if have is None or objects.spec_of(have) != objects.spec_of(want):
        have = w.upsert(RS, want, MANAGER)
    return have


def scheduling_message(w, missing):
    nodes = len(w.st.get("nodes", {}))
    if not nodes:
        return "no nodes available to schedule pods"
    return ('0/%d nodes are available: persistentvolumeclaim "%s" not found. preemption: 0/%d nodes are '
            'available: %d Preemption is not helpful for scheduling.' % (nodes, missing[0], nodes, nodes))


def tell_once(w, r, o, etype, reason, message, component):
    """An event given once for o (kept in its _sim "told")."""
    sim = o.setdefault("_sim", {})
    if sim.get("told") != message:
        w.event(r, o, etype, reason, message, component)
        sim["told"] = message


def pod_status(w, pod, ready, scheduled, missing):
    ip = monitoring.pod_ip(pod["metadata"]["namespace"], pod["metadata"]["name"])
    node = pod["spec"].get("nodeName")
    host = (w.st.get("nodes", {}).get(node) or {}).get("ip", "")
    cname = [str(d(c).get("name")) for c in lst(pod["spec"].get("containers"))]
    images = [str(d(c).get("image")) for c in lst(pod["spec"].get("containers"))]
    since = objects.ts(w.now)
    if not scheduled:
        return {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": scheduling_message(w, missing)}]}
    cond = "True" if ready else "False"
    st = {"phase": "Running" if ready else "Pending", "qosClass": "BestEffort", "hostIP": host, "podIP": ip,
          "podIPs": [{"ip": ip}], "startTime": since,
          "conditions": [{"type": t, "status": cond if t in ("Ready", "ContainersReady") else "True"}
                         for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
          "containerStatuses": [
              {"name": n, "image": i, "ready": ready, "restartCount": 0, "started": ready,
               "state": {"running": {"startedAt": since}} if ready else
               {"waiting": {"reason": "ContainerCreating"}}} for n, i in zip(cname, images)]}
    old = d(pod.get("status"))
    if old.get("startTime"):  # times as first written
        st["startTime"] = old["startTime"]
        for c, o in zip(st["containerStatuses"], lst(old.get("containerStatuses"))):
            if "running" in c["state"] and "running" in d(d(o).get("state")):
                c["state"] = o["state"]
    return st


def pods(w, dep, ro, rs, missing):
    """The ReplicaSet's Pods: as many as it wants, scheduled and Ready as
    the rollout says; its status."""
    POD = objects.POD
    RS = objects.res("apps", "replicasets")
    ns = rs["metadata"]["namespace"]
    mine = sorted((p for p in w.list(POD, ns) if owned(p, rs)), key=lambda p: p["metadata"]["name"])
    for p in mine[ro["replicas"]:]:
        w.remove(POD, p)
    mine = mine[:ro["replicas"]]
    tpl = d(rs["spec"].get("template"))
    i = 0
    while len(mine) < ro["replicas"]:
        h = int(sha("%s/%d/%d" % (rs["metadata"]["uid"], w.st["rv"], i)), 16)
        i += 1
        pn = rs["metadata"]["name"] + "-" + "".join(ALPHANUMS[(h >> (5 * k)) % 27] for k in range(5))
        if w.get(POD, ns, pn) is not None:
            continue
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pn, "namespace": ns, "generateName": rs["metadata"]["name"] + "-",
                            "labels": dict(d(d(tpl.get("metadata")).get("labels"))),
                            "ownerReferences": [objects.owner_ref(RS, rs)]},
               "spec": dict(d(tpl.get("spec")))}
        if d(d(tpl.get("metadata")).get("annotations")):
            pod["metadata"]["annotations"] = dict(tpl["metadata"]["annotations"])
        mine.append(w.write(POD, pod, None, MANAGER))
    ready = ready_now(w, ro)
    node = server_node(w) if ro["scheduled"] is not None else None
    for k, p in enumerate(mine):
        if node and p["spec"].get("nodeName") != node:
            bound = copy.deepcopy(p)
            bound["spec"]["nodeName"] = node
            p = w.write(POD, bound, p, "kube-scheduler")
        p = set_status(w, POD, p, pod_status(w, p, k < ready, node is not None, missing), "kubelet")
        if node is None:
            tell_once(w, POD, w.get(POD, ns, p["metadata"]["name"]), "Warning", "FailedScheduling",
                      scheduling_message(w, missing), "default-scheduler")
    n = ro["replicas"]
    st = {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": ready, "availableReplicas": ready,
          "observedGeneration": rs["metadata"].get("generation", 1)}
    set_status(w, RS, rs, {k: v for k, v in st.items() if v})


def claim_controller(w, consumed):
    """Each claim's phase: local-path (WaitForFirstConsumer) Pending until
    a Deployment mounting it is available, then Bound. consumed: the
    NS/NAME of the claims of available Deployments."""
    PVC = objects.res("", "persistentvolumeclaims")
    for c in w.list(PVC):
        md, spec = c["metadata"], d(c.get("spec"))
        if md.get("deletionTimestamp") or d(c.get("status")).get("phase") == "Bound":
            continue
        local = spec.get("storageClassName") in (None, LOCAL_PATH)
        if local and "%s/%s" % (md["namespace"], md["name"]) in consumed:
            status = {"phase": "Bound", "accessModes": list(lst(spec.get("accessModes"))),
                      "capacity": {"storage": d(d(spec.get("resources")).get("requests")).get("storage")}}
        else:
            status = {"phase": "Pending"}
        set_status(w, PVC, c, status, MANAGER)
        if local and status["phase"] == "Pending":
            tell_once(w, PVC, w.get(PVC, md["namespace"], md["name"]), "Normal", "WaitForFirstConsumer",
                      "waiting for first consumer to be created before binding", "persistentvolume-controller")


def workload_controller(w):
    """Every Deployment this model plays: rollout, ReplicaSet, Pods, status;
    then the claims, then DIR/ready."""
    PVC = objects.res("", "persistentvolumeclaims")
    consumed = set()
    for dep in w.list(objects.DEPLOYMENT):
        if not modelled(dep):
            continue
        ns = dep["metadata"]["namespace"]
        tpl = d(d(dep.get("spec")).get("template"))
        missing = [c for c in claims(tpl) if w.get(PVC, ns, c) is None]
        ro = rollout(w, dep, missing)
        rs = replica_set(w, dep, ro)
        pods(w, dep, ro, rs, missing)
        dep = w.get(objects.DEPLOYMENT, ns, dep["metadata"]["name"])
        set_status(w, objects.DEPLOYMENT, dep, deployment_status(w, dep, ro, rs["metadata"]["name"]))
        if available_since(w, ro) is not None:
            consumed.update("%s/%s" % (ns, c) for c in claims(tpl))
    claim_controller(w, consumed)
    publish(w)


# ---- DIR/ready ------------------------------------------------------------------------

def registry_ready(w):
    """{"image", "time"} while Deployment registry/registry is available, else None."""
    dep = w.get(objects.DEPLOYMENT, REGISTRY_NS, REGISTRY_NAME)
    ro = current_rollout(dep) if dep is not None and modelled(dep) else None
    if ro is None or ready_now(w, ro) < min_available(dep, ro["replicas"]) or ro["replicas"] == 0:
        return None
    c = d((lst(d(d(d(dep.get("spec")).get("template")).get("spec")).get("containers")) or [{}])[0])
    return {"image": str(c.get("image") or ""), "time": round(available_since(w, ro) or ro["since"], 3)}


def publish(w):
    """DIR/ready as registry_ready says (--registry-dir; nothing without it)."""
    top = getattr(w.a, "registry_dir", None)
    if not top:
        return
    path = os.path.join(top, "ready")
    want = registry_ready(w)
    try:
        with open(path, encoding="utf-8") as f:
            have = json.load(f)
    except (OSError, ValueError):
        have = None
    if want is None:
        if os.path.lexists(path):
            os.remove(path)
    elif have != want:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(want, f)
        os.rename(path + ".tmp", path)


def after_request(w):
    """What the controllers make of a request at once (k8s_sim.py calls it
    after each API request): a rollout's clock starts at the write, and
    DIR/ready goes with the Deployment's deletion."""
    workload_controller(w)


# ---- the service proxy and the Distribution registry ------------------------------------

def endpoint(w, ns, svc, sport):
    """(pod IP, port) of the first Ready Pod the Service selects and whose
    container has the target port; None when there is none."""
    sel = d(d(svc.get("spec")).get("selector"))
    if not sel or sport is None:
        return None
    target = sport.get("targetPort", sport.get("port"))
    for p in w.list(objects.POD, ns):
        st = d(p.get("status"))
        labels = p["metadata"].get("labels") or {}
        if not all(labels.get(k) == v for k, v in sel.items()) or \
                not any(c.get("type") == "Ready" and c.get("status") == "True" for c in lst(st.get("conditions"))):
            continue
        for c in lst(p["spec"].get("containers")):
            for cp in lst(d(c).get("ports")):
                if (isinstance(target, str) and d(cp).get("name") == target) or \
                        (not isinstance(target, str) and d(cp).get("containerPort") == target):
                    return st.get("podIP"), d(cp).get("containerPort")
        if isinstance(target, int):
            return st.get("podIP"), target  # a port by number needs no declaration
    return None


def service_proxy(w, method, ns, ref, rest, query):
    """kube-apiserver's service proxy: Service registry/registry here, the
    others in k8s_sim_monitoring. (code, body, content type); extra
    headers in w.reply_headers."""
    scheme, name, port = monitoring.parse_ref(ref)
    if (ns, name) != (REGISTRY_NS, REGISTRY_NAME):
        return monitoring.service_proxy(w, method, ns, ref, rest, query)
    svc, sport = monitoring.proxy_target(w, ns, name, port)
    if method not in ("GET", "HEAD"):
        raise monitoring.method_not_modelled()
    ep = endpoint(w, ns, svc, sport)
    if ep is None:
        raise monitoring.no_endpoints(name)
    monitoring.plain_http(scheme)
    if ep[1] != REGISTRY_PORT:
        raise objects.ApiError(503, "ServiceUnavailable", "error trying to reach service: dial tcp %s:%s: connect: "
                               "connection refused" % ep)
    code, body, ctype, headers = distribution(w, method, "/" + "/".join(rest), query)
    if getattr(w, "reply_headers", None) is not None:
        w.reply_headers += headers
    return code, body, ctype


def pushed(w):
    """DIR/pushed.json's repositories with tags: {NAME: {TAG: DIGEST}}."""
    top = getattr(w.a, "registry_dir", None)
    if not top:
        return {}
    try:
        with open(os.path.join(top, "pushed.json"), encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    return {str(k): {str(t): str(g) for t, g in d(v).items()}
            for k, v in d(d(doc).get("repositories")).items() if d(v)}


def compact(v):
    return (json.dumps(v, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def errors(code, message, detail=None):
    e = {"code": code, "message": message}
    if detail is not None:
        e["detail"] = detail
    return compact({"errors": [e]})


COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*" \
         r"[a-zA-Z0-9]))*(?::[0-9]+)?"
NAME = r"(?:%s/)?%s(?:/%s)*" % (DOMAIN, COMPONENT, COMPONENT)
TAG = r"[\w][\w.-]{0,127}"
DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"


def request_header(w, k):
    h = getattr(w, "request_headers", None)
    return h.get_all(k) or [] if h is not None else []


def method_not_allowed(allowed):
    return 405, b"Method not allowed\n", "text/plain; charset=utf-8", [
        API_VERSION, ("Allow", ", ".join(allowed)), ("X-Content-Type-Options", "nosniff")]


def stand_in_manifest(name, digest):
    cfg = "sha256:" + sha("%s@%s config" % (name, digest))
    return compact({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
                    "layers": []})[:-1]


def catalog(repos, query):
    """(code, body, headers) of GET /v2/_catalog."""
    n = 100
    if query.get("n"):
        try:
            asked = int(query["n"])
        except ValueError:
            asked = None
        if asked is not None and asked > 1000:
            return 400, errors("PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": asked}), []
        if asked is not None and asked >= 0:
            n = asked
    last = query.get("last") or ""
    names = sorted((k for k in repos if k.replace("/", "\0") > last.replace("/", "\0")),
                   key=lambda k: k.replace("/", "\0"))
    page = names[:n]
    headers = []
    if n and len(page) == n:
        headers.append(("Link", '</v2/_catalog?%s>; rel="next"' % urlencode([("last", page[-1]), ("n", str(n))])))
    return 200, compact({"repositories": page}), headers


def distribution(w, method, path, query):
    """What registry:2.8 answers to METHOD PATH: (code, body, content type,
    headers); HEAD's body is dropped by the HTTP layer."""
    repos = pushed(w)
    if path == "/v2/":
        return 200, b"{}", JSON_UTF8, [API_VERSION]
    m = re.fullmatch(r"/v2/(%s)/tags/list" % NAME, path)
    if m:
        if method != "GET":
            return method_not_allowed(["GET"])
        name = m.group(1)
        if name not in repos:
            return 404, errors("NAME_UNKNOWN", "repository name not known to registry", {"name": name}), \
                JSON_UTF8, [API_VERSION]
        return 200, compact({"name": name, "tags": sorted(repos[name])}), JSON_UTF8, [API_VERSION]
    m = re.fullmatch(r"/v2/(%s)/manifests/(%s|%s)" % (NAME, TAG, DIGEST), path)
    if m:
        return manifest(w, repos, m.group(1), m.group(2))
    m = re.fullmatch(r"/v2/(%s)/blobs/(%s)" % (NAME, DIGEST), path)
    if m:
        return 404, errors("BLOB_UNKNOWN", "blob unknown to registry", m.group(2)), JSON_UTF8, [API_VERSION]
    if path == "/v2/_catalog":
        if method != "GET":
            return method_not_allowed(["GET"])
        code, body, headers = catalog(repos, query)
        return code, body, JSON_UTF8, [API_VERSION] + headers
    return 404, b"404 page not found\n", "text/plain; charset=utf-8", [API_VERSION,
                                                                       ("X-Content-Type-Options", "nosniff")]


def manifest(w, repos, name, ref):
    """GET or HEAD /v2/NAME/manifests/REF, as v2.8's GetManifest."""
    tags = repos.get(name) or {}
    if re.fullmatch(r"sha256:[0-9a-f]{64}", ref):
        digest = ref if ref in tags.values() else None
        detail = {"Name": name, "Revision": ref}
    else:
        digest, detail = tags.get(ref), {"Tag": ref}
    if digest is None:
        return 404, errors("MANIFEST_UNKNOWN", "manifest unknown", detail), JSON_UTF8, [API_VERSION]
    if any(h in (digest, '"%s"' % digest) for h in request_header(w, "If-None-Match")):
        return 304, b"", JSON_UTF8, [API_VERSION]
    accepts = {x.split(";")[0].strip() for h in request_header(w, "Accept") for x in h.split(",")}
    if OCI_MANIFEST not in accepts:
        return 404, errors("MANIFEST_UNKNOWN", "OCI manifest found, but accept header does not support OCI "
                           "manifests"), JSON_UTF8, [API_VERSION]
    return 200, stand_in_manifest(name, digest), OCI_MANIFEST, [
        API_VERSION, ("Docker-Content-Digest", digest), ("Etag", '"%s"' % digest)]
