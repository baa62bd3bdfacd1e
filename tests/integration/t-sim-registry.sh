#!/bin/bash
# The lab's registry in the Kubernetes API simulator (tests/sim/k8s_sim.py,
# k8s_sim_registry.py), through the API with curl: the objects the registry
# step applies with server-side apply (field manager devopslab), the
# Deployment's rollout, the claim's binding, DIR/ready (--registry-dir) and
# the Distribution API behind kube-apiserver's service proxy. The cluster is
# one K3s server written as the Proxmox simulator's state (k3s_one_server),
# so that only the Kubernetes API simulator runs. Checked:
#   - a Deployment with an unknown field: server-side apply 500 "failed to
#     create typed patch object ... field not declared in schema", a create
#     with fieldValidation=Strict 400, a plain create drops it with a
#     Warning; a wrong type 400 (Go's decoding error); a selector that does
#     not match the template's labels 422; none of them made anything;
#   - the Namespace, the claim (Pending, WaitForFirstConsumer), the Service
#     and the seed ConfigMap accepted; the proxy 404 before the Service, 503
#     "no endpoints" before the Deployment;
#   - the Deployment: at first observedGeneration, replicas,
#     unavailableReplicas, Available False and Progressing ReplicaSetUpdated,
#     its Pod Pending; available no sooner than --deploy-ms later
#     (readyReplicas, availableReplicas, updatedReplicas,
#     NewReplicaSetAvailable) with no request in between: DIR/ready appears
#     by itself (image, time); the claim Bound (capacity, accessModes);
#     status written through the main resource ignored;
#   - the Distribution API: /v2/ with its header, the proxy's other forms, a
#     port the Service lacks and https 503; the catalog (with n/last and
#     Link, n above 1000), tags, manifests by tag and digest (GET, HEAD,
#     If-None-Match, the Accept v2.8 wants), NAME_UNKNOWN, MANIFEST_UNKNOWN,
#     BLOB_UNKNOWN, the router's 404, 405s, all from a DIR/pushed.json
#     written here (read afresh: a change shows at once);
#   - a new template (generation 2) restarts the clock: unavailable, no
#     DIR/ready, the proxy 503, then available again with the new image;
#   - a Deployment whose claim does not exist stays unavailable, its Pod
#     Pending with the scheduler's FailedScheduling event; once the claim is
#     made, available and the claim Bound;
#   - the Deployment deleted: DIR/ready gone as the DELETE answers, its
#     ReplicaSet and Pods gone, the proxy 503;
#   - every request recorded (HEAD included).
# timeout: 120
# (a simulator's own test: nothing of ours runs under ASan)
# sanitizer: skip
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/k8s-client-lib.sh"

SCHEMAS=$SHARED/reference/schemas
[ -f "$SCHEMAS/helm.cattle.io/helmchart_v1.json" ] || fail "no HelmChart schema in $SCHEMAS"
TOKEN=t-sim-registry-$RANDOM$RANDOM
DEPLOY_MS=1500
REG=$TESTTMP/registry-dir
NSP=/api/v1/namespaces/registry
DEPS=/apis/apps/v1/namespaces/registry/deployments
PROXY=$NSP/services/http:registry:5000/proxy
OCI=application/vnd.oci.image.manifest.v1+json
D1=sha256:1111111111111111111111111111111111111111111111111111111111111111
D2=sha256:2222222222222222222222222222222222222222222222222222222222222222
D3=sha256:3333333333333333333333333333333333333333333333333333333333333333

mkdir -p "$REG"
k3s_one_server
k8s_start --deploy-ms "$DEPLOY_MS" --registry-dir "$REG" --bearer-token "$TOKEN:t-sim-registry:system:masters"

# --- helpers ----------------------------------------------------------------------
# apply PATH JSON: server-side apply as the registry step sends it; prints the status
apply() {
	jq -c . <<<"$2" >"$TESTTMP/apply.json" || fail "apply $1: not JSON"
	k PATCH "$1?fieldManager=devopslab&force=true" "$TESTTMP/apply.json" application/apply-patch+yaml
}
applied() { # PATH JSON: apply, which must answer 200 or 201
	local code
	code=$(apply "$@")
	case $code in 200 | 201) ;; *) cat "$TESTTMP/k.json" >&2; fail "applying $1 answered $code" ;; esac
}
# deployment NAME IMAGE CLAIM [EXTRA-CONTAINER-JSON]: the registry step's Deployment
deployment() {
	printf '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s","namespace":"registry",
"labels":{"app.kubernetes.io/managed-by":"devopslab"}},"spec":{"replicas":1,"strategy":{"type":"Recreate"},
"selector":{"matchLabels":{"app.kubernetes.io/name":"%s"}},
"template":{"metadata":{"labels":{"app.kubernetes.io/name":"%s"}},"spec":{"containers":[{"name":"registry",
"image":"%s","imagePullPolicy":"IfNotPresent","ports":[{"name":"http","containerPort":5000}],
"env":[{"name":"REGISTRY_STORAGE_DELETE_ENABLED","value":"true"}],
"volumeMounts":[{"name":"data","mountPath":"/var/lib/registry"}],
"readinessProbe":{"httpGet":{"path":"/v2/","port":"http"}}%s}],
"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"%s"}}]}}}}' "$1" "$1" "$1" "$2" "${4:-}" "$3"
}
claim() { # NAME
	printf '{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"%s","namespace":"registry",
"labels":{"app.kubernetes.io/managed-by":"devopslab"}},"spec":{"accessModes":["ReadWriteOnce"],
"storageClassName":"local-path","resources":{"requests":{"storage":"20Gi"}}}}' "$1"
}
condition() { jget ".status.conditions[] | select(.type == \"$1\") | \"\(.status) \(.reason) \(.message)\""; }
available() { # NAME: the Deployment reports Available True
	[ "$(k GET "$DEPS/$1")" = 200 ] && [ "$(condition Available)" = "True MinimumReplicasAvailable Deployment has minimum availability." ]
}
now_ms() { date +%s%3N; }
pushed() { printf '%s\n' "$1" >"$REG/pushed.json.tmp" && mv "$REG/pushed.json.tmp" "$REG/pushed.json"; }

poll 20 "the API" answers 200 /readyz

# --- the API's own checks: nothing made -----------------------------------------------
applied /api/v1/namespaces/registry '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"registry",
	"labels":{"app.kubernetes.io/managed-by":"devopslab"}}}'
assert_eq 500 "$(apply "$DEPS/registry" "$(deployment registry docker.io/library/registry:2.8.3 registry ',"foo":1')")" \
	"server-side apply of an unknown field"
assert_eq 'failed to create typed patch object (registry/registry; apps/v1, Kind=Deployment): .spec.template.spec.containers[name="registry"].foo: field not declared in schema' \
	"$(jget .message)" "its message"
assert_eq "Failure null 500" "$(jget '"\(.status) \(.reason) \(.code)"')" "its status (no reason)"
deployment registry docker.io/library/registry:2.8.3 registry ',"foo":1' >"$TESTTMP/bad.json"
assert_eq 400 "$(k POST "$DEPS?fieldValidation=Strict" "$TESTTMP/bad.json")" "a strict create with an unknown field"
assert_eq 'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.template.spec.containers[0].foo"' \
	"$(jget .message)" "its message"
deployment registry docker.io/library/registry:2.8.3 registry | jq '.spec.replicas = "1"' >"$TESTTMP/bad.json"
assert_eq 400 "$(k POST "$DEPS" "$TESTTMP/bad.json")" "replicas as a string"
assert_eq 'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32' \
	"$(jget .message)" "its message"
assert_eq 500 "$(apply "$DEPS/registry" "$(jq -c . "$TESTTMP/bad.json")")" "replicas as a string, applied"
assert_eq 'failed to create typed patch object (registry/registry; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float), got string' \
	"$(jget .message)" "its message"
deployment registry docker.io/library/registry:2.8.3 registry |
	jq '.spec.selector.matchLabels["app.kubernetes.io/name"] = "other"' >"$TESTTMP/bad.json"
assert_eq 422 "$(k POST "$DEPS" "$TESTTMP/bad.json")" "a selector the template does not match"
assert_eq 'Deployment.apps "registry" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app.kubernetes.io/name":"registry"}: `selector` does not match template `labels`' \
	"$(jget .message)" "its message"
deployment registry docker.io/library/registry:2.8.3 registry |
	jq '.spec.template.spec.containers[0].volumeMounts[0].name = "nodata"' >"$TESTTMP/bad.json"
assert_eq 422 "$(k POST "$DEPS" "$TESTTMP/bad.json")" "a mount of no volume"
assert_eq 'spec.template.spec.containers[0].volumeMounts[0].name Not found: "nodata"' \
	"$(jget '.details.causes[0] | "\(.field) \(.message)"')" "its cause"
assert_eq 422 "$(apply "$NSP/persistentvolumeclaims/registry" "$(claim registry | jq -c 'del(.spec.accessModes)')")" \
	"a claim without accessModes"
assert_eq "spec.accessModes: Required value: at least 1 access mode is required" \
	"$(jget '.details.causes[0] | "\(.field): \(.message)"')" "its cause"
assert_eq 404 "$(k GET "$DEPS/registry")" "no Deployment made"
assert_eq 404 "$(k GET "$NSP/persistentvolumeclaims/registry")" "no claim made"
# a plain create drops an unknown field, with a Warning
deployment scratch docker.io/library/registry:2.8.3 scratch ',"foo":1' >"$TESTTMP/warn.json"
assert_eq 201 "$(k POST "$DEPS" "$TESTTMP/warn.json")" "a create with an unknown field"
assert_contains "$(header Warning)" 'unknown field \"spec.template.spec.containers[0].foo\"' "its Warning"
assert_eq null "$(jget '.spec.template.spec.containers[0].foo')" "the field dropped"
kok DELETE "$DEPS/scratch"

# --- the claim, the Service, the seed ConfigMap; the proxy before the Deployment -------
assert_eq 404 "$(k GET "$PROXY/v2/")" "the proxy before the Service"
assert_eq 'services "registry" not found' "$(jget .message)" "its message"
applied "$NSP/persistentvolumeclaims/registry" "$(claim registry)"
kok GET "$NSP/persistentvolumeclaims/registry"
assert_eq Pending "$(jget .status.phase)" "the claim before its consumer"
kok GET "$NSP/events?fieldSelector=involvedObject.kind%3DPersistentVolumeClaim"
assert_eq "Normal WaitForFirstConsumer waiting for first consumer to be created before binding persistentvolume-controller" \
	"$(jget '.items[] | "\(.type) \(.reason) \(.message) \(.source.component)"')" "the claim's event"
applied "$NSP/services/registry" '{"apiVersion":"v1","kind":"Service","metadata":{"name":"registry","namespace":"registry",
	"labels":{"app.kubernetes.io/managed-by":"devopslab"}},"spec":{"selector":{"app.kubernetes.io/name":"registry"},
	"ports":[{"name":"http","port":5000,"targetPort":"http"}]}}'
applied "$NSP/configmaps/devopslab-seed" '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"devopslab-seed",
	"namespace":"registry"},"data":{}}'
assert_eq 503 "$(k GET "$PROXY/v2/")" "the proxy before the Deployment"
assert_eq '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no endpoints available for service \"registry\"","reason":"ServiceUnavailable","code":503}' \
	"$(jq -c . "$TESTTMP/k.json")" "its answer"

# --- the Deployment: unavailable, then available --deploy-ms later -----------------------
t0=$(now_ms)
applied "$DEPS/registry" "$(deployment registry docker.io/library/registry:2.8.3 registry)"
kok GET "$DEPS/registry"
assert_eq "1 1 1 null null" "$(jget '.status | "\(.observedGeneration) \(.replicas) \(.unavailableReplicas) \(.readyReplicas) \(.availableReplicas)"')" \
	"the status at first"
assert_eq "False MinimumReplicasUnavailable Deployment does not have minimum availability." "$(condition Available)" \
	"Available at first"
rs=$(jget '.status.conditions[] | select(.type == "Progressing") | .message' | sed -n 's/^ReplicaSet "\(.*\)" is progressing\.$/\1/p')
[ -n "$rs" ] || fail "Progressing at first: $(condition Progressing)"
assert_eq "True ReplicaSetUpdated" "$(condition Progressing | cut -d' ' -f1-2)" "Progressing at first"
assert_eq "kube-controller-manager status" "$(jget '.metadata.managedFields[] | select(.subresource == "status") |
	"\(.manager) \(.subresource)"')" "the status's manager"
kok GET "$NSP/pods?labelSelector=app.kubernetes.io%2Fname%3Dregistry"
assert_eq "Pending $rs" "$(jget '.items[] | "\(.status.phase) \(.metadata.ownerReferences[0].name)"')" "the Pod at first"
[ ! -e "$REG/ready" ] || fail "DIR/ready before the Deployment is available"
# no request from here on: DIR/ready appears by itself
poll 10 "DIR/ready" test -e "$REG/ready"
t1=$(now_ms)
[ $((t1 - t0)) -ge "$DEPLOY_MS" ] || fail "available after $((t1 - t0)) ms, before --deploy-ms ($DEPLOY_MS)"
assert_eq "docker.io/library/registry:2.8.3 number" "$(jq -r '"\(.image) \(.time | type)"' "$REG/ready")" "DIR/ready"
kok GET "$DEPS/registry"
assert_eq "1 1 1 1 1 null" "$(jget '.status | "\(.observedGeneration) \(.replicas) \(.updatedReplicas) \(.readyReplicas) \(.availableReplicas) \(.unavailableReplicas)"')" \
	"the status once available"
assert_eq "True MinimumReplicasAvailable Deployment has minimum availability." "$(condition Available)" "Available"
assert_eq "True NewReplicaSetAvailable ReplicaSet \"$rs\" has successfully progressed." "$(condition Progressing)" \
	"Progressing once available"
kok GET "$NSP/persistentvolumeclaims/registry"
assert_eq 'Bound 20Gi ["ReadWriteOnce"]' "$(jget '"\(.status.phase) \(.status.capacity.storage) \(.status.accessModes | tojson)"')" \
	"the claim once its consumer is available"
kok GET "$NSP/pods?labelSelector=app.kubernetes.io%2Fname%3Dregistry"
assert_eq "Running True k3s-server-01" "$(jget '.items[] | "\(.status.phase) \(.status.conditions[] | select(.type == "Ready") |
	.status) \(.spec.nodeName)"')" "the Pod once available"
# status is a subresource: written through the main resource, ignored
echo '{"status":{"readyReplicas":7}}' >"$TESTTMP/patch.json"
kok PATCH "$DEPS/registry" "$TESTTMP/patch.json" application/merge-patch+json
assert_eq 1 "$(jget .status.readyReplicas)" "status written through the main resource"

# --- the Distribution API ----------------------------------------------------------------
assert_eq 200 "$(k GET "$PROXY/v2/")" "/v2/"
assert_eq "{}" "$(cat "$TESTTMP/k.json")" "/v2/'s body"
assert_eq "registry/2.0" "$(header Docker-Distribution-Api-Version)" "the API version header"
assert_eq "application/json; charset=utf-8" "$(header Content-Type)" "/v2/'s type"
for form in registry:5000 registry:http http:registry:http registry; do
	assert_eq 200 "$(k GET "$NSP/services/$form/proxy/v2/")" "the proxy as $form"
done
assert_eq 503 "$(k GET "$NSP/services/registry:5001/proxy/v2/")" "a port the Service lacks"
assert_eq 'no service port "5001" found for service "registry"' "$(jget .message)" "its message"
assert_eq 503 "$(k GET "$NSP/services/https:registry:5000/proxy/v2/")" "https"
assert_eq 200 "$(k GET "$PROXY/v2/_catalog")" "the catalog of an empty registry"
assert_eq '{"repositories":[]}' "$(cat "$TESTTMP/k.json")" "its body"
pushed "{\"repositories\": {\"library/nginx\": {\"1.25\": \"$D1\", \"latest\": \"$D1\"},
	\"library/alpine\": {\"3.20\": \"$D2\"}, \"tools/busybox\": {\"1.36\": \"$D3\"}, \"empty/repo\": {}}}"
assert_eq 200 "$(k GET "$PROXY/v2/_catalog")" "the catalog"
assert_eq '{"repositories":["library/alpine","library/nginx","tools/busybox"]}' "$(cat "$TESTTMP/k.json")" "its body"
assert_eq "" "$(header Link)" "no Link when the page is not full"
assert_eq 200 "$(k GET "$PROXY/v2/_catalog?n=2")" "the catalog's first page"
assert_eq '["library/alpine","library/nginx"] </v2/_catalog?last=library%2Fnginx&n=2>; rel="next"' \
	"$(jget '.repositories | tojson') $(header Link)" "the first page and its Link"
assert_eq 200 "$(k GET "$PROXY/v2/_catalog?n=2&last=library/nginx")" "the catalog's second page"
assert_eq '["tools/busybox"]' "$(jget '.repositories | tojson')$(header Link)" "the second page, no Link"
assert_eq 400 "$(k GET "$PROXY/v2/_catalog?n=1001")" "n above 1000"
assert_eq '{"errors":[{"code":"PAGINATION_NUMBER_INVALID","message":"invalid number of results requested","detail":{"n":1001}}]}' \
	"$(cat "$TESTTMP/k.json")" "its body"
assert_eq 200 "$(k GET "$PROXY/v2/library/nginx/tags/list")" "tags"
assert_eq '{"name":"library/nginx","tags":["1.25","latest"]}' "$(cat "$TESTTMP/k.json")" "the tags"
for name in library/nope empty/repo; do
	assert_eq 404 "$(k GET "$PROXY/v2/$name/tags/list")" "the tags of $name"
	assert_eq "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository name not known to registry\",\"detail\":{\"name\":\"$name\"}}]}" \
		"$(cat "$TESTTMP/k.json")" "its body"
done
assert_eq 200 "$(k HEAD "$PROXY/v2/library/nginx/manifests/1.25" "" "" -H "Accept: $OCI")" "HEAD a manifest"
assert_eq "$D1 $OCI \"$D1\"" "$(header Docker-Content-Digest) $(header Content-Type) $(header Etag)" "its headers"
# no body after HEAD's headers: the next answer on the same connection starts right after them
"$PY" - "$K8S_URL" "$TESTTMP/server-ca.crt" "$TOKEN" "$PROXY" "$OCI" <<'PYEOF' || fail "HEAD answered with a body"
import http.client, ssl, sys, urllib.parse
url, ca, token, proxy, oci = sys.argv[1:]
u = urllib.parse.urlsplit(url)
c = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca))
h = {"Authorization": "Bearer " + token, "Accept": oci}
c.request("HEAD", proxy + "/v2/library/nginx/manifests/1.25", headers=h)
r = c.getresponse()
assert r.status == 200 and r.read() == b"" and int(r.getheader("Content-Length")) > 0, r.status
c.request("GET", proxy + "/v2/", headers=h)
r = c.getresponse()
assert (r.status, r.read()) == (200, b"{}"), r.status
PYEOF
assert_eq 200 "$(k GET "$PROXY/v2/library/nginx/manifests/latest" "" "" -H "Accept: application/json, $OCI;q=0.9")" \
	"GET a manifest"
assert_eq "2 $OCI $D1" "$(jget '"\(.schemaVersion) \(.mediaType)"') $(header Docker-Content-Digest)" "its body and digest"
[ "$(header Content-Length)" = "$(stat -c %s "$TESTTMP/k.json")" ] || fail "Content-Length"
assert_eq 200 "$(k GET "$PROXY/v2/library/alpine/manifests/$D2" "" "" -H "Accept: $OCI")" "a manifest by digest"
assert_eq 304 "$(k GET "$PROXY/v2/library/alpine/manifests/3.20" "" "" -H "Accept: $OCI" -H "If-None-Match: \"$D2\"")" \
	"If-None-Match"
assert_eq 404 "$(k GET "$PROXY/v2/library/nginx/manifests/1.25")" "a manifest without Accept"
assert_eq '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"OCI manifest found, but accept header does not support OCI manifests"}]}' \
	"$(cat "$TESTTMP/k.json")" "its body"
assert_eq 404 "$(k GET "$PROXY/v2/library/nginx/manifests/9.9" "" "" -H "Accept: $OCI")" "an unknown tag"
assert_eq '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"9.9"}}]}' \
	"$(cat "$TESTTMP/k.json")" "its body"
assert_eq 404 "$(k HEAD "$PROXY/v2/library/nginx/manifests/9.9" "" "" -H "Accept: $OCI")" "HEAD an unknown tag"
assert_eq 404 "$(k GET "$PROXY/v2/library/nginx/manifests/$D2" "" "" -H "Accept: $OCI")" "another repository's digest"
assert_eq "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{\"Name\":\"library/nginx\",\"Revision\":\"$D2\"}}]}" \
	"$(cat "$TESTTMP/k.json")" "its body"
assert_eq 404 "$(k GET "$PROXY/v2/library/nginx/blobs/$D1")" "a blob"
assert_eq "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown to registry\",\"detail\":\"$D1\"}]}" \
	"$(cat "$TESTTMP/k.json")" "its body"
for path in v2/library/Nginx/tags/list v2/nothing v2; do
	assert_eq 404 "$(k GET "$PROXY/$path")" "/$path"
	assert_eq "404 page not found" "$(cat "$TESTTMP/k.json")" "/$path: the router's 404"
	assert_eq "registry/2.0" "$(header Docker-Distribution-Api-Version)" "/$path: the API version header"
done
assert_eq 405 "$(k HEAD "$PROXY/v2/_catalog")" "HEAD the catalog"
assert_eq GET "$(header Allow)" "its Allow"
assert_eq 405 "$(k POST "$PROXY/v2/_catalog" /dev/null)" "a POST through the proxy (not modelled)"
pushed "{\"repositories\": {\"library/nginx\": {\"1.26\": \"$D2\"}}}"
assert_eq 200 "$(k GET "$PROXY/v2/_catalog")" "the catalog after a push"
assert_eq '{"repositories":["library/nginx"]}' "$(cat "$TESTTMP/k.json")" "DIR/pushed.json read afresh"

# --- a new template restarts the clock -------------------------------------------------
applied "$DEPS/registry" "$(deployment registry docker.io/library/registry:2.8.2 registry)"
kok GET "$DEPS/registry"
assert_eq "2 False" "$(jget '"\(.status.observedGeneration) \(.status.conditions[] | select(.type == "Available") | .status)"')" \
	"generation 2 at first"
[ ! -e "$REG/ready" ] || fail "DIR/ready while generation 2 rolls out"
assert_eq 503 "$(k GET "$PROXY/v2/")" "the proxy while generation 2 rolls out"
poll 10 "generation 2" available registry
assert_eq docker.io/library/registry:2.8.2 "$(jq -r .image "$REG/ready")" "DIR/ready's image"
kok GET "/apis/apps/v1/namespaces/registry/replicasets"
assert_eq 1 "$(jget '.items | length')" "one ReplicaSet: the old template's deleted"
assert_eq 200 "$(k GET "$PROXY/v2/")" "the registry again"

# --- a Deployment without its claim ------------------------------------------------------
applied "$DEPS/orphan" "$(deployment orphan docker.io/library/registry:2.8.3 orphan-data)"
sleep "$((DEPLOY_MS * 2 / 1000))"
kok GET "$DEPS/orphan"
assert_eq "False 1" "$(jget '"\(.status.conditions[] | select(.type == "Available") | .status) \(.status.unavailableReplicas)"')" \
	"without its claim, after twice --deploy-ms"
kok GET "$NSP/pods?labelSelector=app.kubernetes.io%2Fname%3Dorphan"
assert_eq "Pending False Unschedulable" "$(jget '.items[] | "\(.status.phase) \(.status.conditions[0].status) \(.status.conditions[0].reason)"')" \
	"its Pod"
pod=$(jget '.items[0].metadata.name')
kok GET "$NSP/events?fieldSelector=involvedObject.name%3D$pod"
assert_eq 'Warning FailedScheduling default-scheduler 0/1 nodes are available: persistentvolumeclaim "orphan-data" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.' \
	"$(jget '.items[] | "\(.type) \(.reason) \(.source.component) \(.message)"')" "the scheduler's event"
applied "$NSP/persistentvolumeclaims/orphan-data" "$(claim orphan-data)"
poll 10 "orphan, once its claim exists" available orphan
kok GET "$NSP/persistentvolumeclaims/orphan-data"
assert_eq Bound "$(jget .status.phase)" "its claim"

# --- deleted ----------------------------------------------------------------------------
kok DELETE "$DEPS/registry"
[ ! -e "$REG/ready" ] || fail "DIR/ready after the Deployment's deletion"
kok GET "$NSP/pods?labelSelector=app.kubernetes.io%2Fname%3Dregistry"
assert_eq 0 "$(jget '.items | length')" "the registry's Pods after the deletion"
kok GET "/apis/apps/v1/namespaces/registry/replicasets"
assert_eq 1 "$(jget '.items | length')" "the ReplicaSets after the deletion (orphan's)"
assert_eq 503 "$(k GET "$PROXY/v2/")" "the proxy after the deletion"
sleep 0.5
[ ! -e "$REG/ready" ] || fail "DIR/ready came back"

# --- recorded ---------------------------------------------------------------------------
assert_eq 3 "$(k8s_requests 'r["method"] == "HEAD" and "/proxy/v2/library/nginx/manifests/" in r["path"]')" \
	"the HEAD requests recorded"
echo "ok"
