#!/bin/bash
# Argo CD in the Kubernetes API simulator (tests/sim/k8s_sim.py,
# k8s_sim_objects.py), through the API with curl: K3s's helm controller
# installs the stand-in chart tests/data/gitops/argo-cd (its crds/ first, as
# helm v3 does), and the simulated Argo CD reports on Applications from the
# Git repositories of --git-repos. The cluster is one K3s server as the
# Proxmox simulator's state records it once firstboot has installed K3s
# (t-k3s.sh covers getting there): written here, so that only the
# Kubernetes API simulator runs. Checked:
#   - applications.argoproj.io is not served before the chart: 404 "the
#     server could not find the requested resource", argoproj.io in no
#     discovery document;
#   - a HelmChart for the chart (archive in the servers' static directory):
#     its helm job completes, the release is deployed in argocd, the two
#     CRDs exist and are Established, the API serves both kinds (no status
#     subresource), the AppProject default is made;
#   - an Application without spec.project is 422 (cause spec.project),
#     an unknown field pruned with a Warning (refused with
#     fieldValidation=Strict), a status sent with the object kept;
#   - each outcome with Argo CD's exact words: repository not found;
#     authentication required (https) and the SSH handshake failure (a
#     wrong key); a revision that does not resolve; a missing path; a
#     project that does not exist (InvalidSpecError); Synced and Healthy at
#     the commit of the branch, with the sync operation (automated) or
#     OutOfSync (manual); a repository Secret with the right credentials
#     turns "authentication required" into Synced, a repo-creds Secret
#     serves a repository under its prefix, the right key the SSH one;
#   - converged: over three seconds of requests no resourceVersion changes;
#     a refresh asked for (annotation argocd.argoproj.io/refresh) is done
#     and the annotation removed;
#   - the release uninstalled (HelmChart deleted): the CRDs and the
#     Applications stay, and no Application gets a status any more.
# timeout: 120
# (a simulator's own test: nothing of ours runs under ASan)
# sanitizer: skip
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/k8s-client-lib.sh"

SCHEMAS=$SHARED/reference/schemas
[ -f "$SCHEMAS/helm.cattle.io/helmchart_v1.json" ] || fail "no HelmChart schema in $SCHEMAS"
TOKEN=t-sim-argocd-$RANDOM$RANDOM
AP=/apis/argoproj.io/v1alpha1/namespaces/argocd
SHA_PRIVATE=1111111111111111111111111111111111111111
SHA_MAIN=2222222222222222222222222222222222222222
SHA_TAG=3333333333333333333333333333333333333333
PRIVATE=https://git.example.org/lab/cluster-config.git
OTHER=https://git.example.org/lab/other-config.git
PUBLIC=https://git.example.org/lab/public.git
SSH=ssh://git@git.example.org/lab/ssh-config.git

# --- the fixture: one K3s server with its CA files and the chart ---------------
openssl genpkey -algorithm ed25519 -out "$TESTTMP/deploy-key" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$TESTTMP/other-key" 2>/dev/null
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TOP/tests/data/gitops" \
	-czf "$TESTTMP/argo-cd-7.7.0.tgz" argo-cd
k3s_one_server argo-cd.tgz="$TESTTMP/argo-cd-7.7.0.tgz"

# The Git repositories the simulated network reaches.
"$PY" - "$TESTTMP/git-repos.json" "$(sha256sum <"$TESTTMP/deploy-key" | cut -d' ' -f1)" <<PYEOF
import json, sys
p, key = sys.argv[1], sys.argv[2]
private = {"username": "devopslab", "password": "s3cret-token"}
json.dump({
    "$PRIVATE": {"auth": private, "refs": {"main": "$SHA_PRIVATE", "HEAD": "$SHA_PRIVATE"},
                 "paths": ["clusters/lab", "."]},
    "$OTHER/": {"auth": private, "refs": {"main": "$SHA_PRIVATE", "HEAD": "$SHA_PRIVATE"}, "paths": ["."]},
    "$PUBLIC": {"auth": None, "refs": {"main": "$SHA_MAIN", "HEAD": "$SHA_MAIN", "v1.0": "$SHA_TAG"},
                "paths": ["apps", "."]},
    "$SSH": {"auth": {"ssh_private_key_sha256": key}, "refs": {"main": "$SHA_PRIVATE"}, "paths": ["clusters/lab"]},
}, open(p, "w"))
PYEOF

k8s_start --helm-ms 200 --argocd-ms 300 --git-repos "$TESTTMP/git-repos.json" \
	--bearer-token "$TOKEN:t-sim-argocd:system:masters"

# --- helpers ----------------------------------------------------------------------
# apply PATH JSON: server-side apply, as the provisioner applies
apply() {
	jq -c . <<<"$2" >"$TESTTMP/apply.json" || fail "not JSON: $2"
	kok PATCH "$1?fieldManager=t-sim-argocd&force=true" "$TESTTMP/apply.json" application/apply-patch+yaml
}
# app NAME SPEC-JSON: Application argocd/NAME with that spec
app() {
	apply "$AP/applications/$1" "{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":\"Application\",
		\"metadata\":{\"name\":\"$1\",\"namespace\":\"argocd\"},\"spec\":$2}"
}
# src URL REVISION PATH [AUTOMATED]: an Application spec
src() {
	local sync=""
	[ -z "${4:-}" ] || sync=',"syncPolicy":{"automated":{"prune":true,"selfHeal":true}}'
	printf '{"project":"default","source":{"repoURL":"%s","targetRevision":"%s","path":"%s"},%s%s}' \
		"$1" "$2" "$3" '"destination":{"server":"https://kubernetes.default.svc","namespace":"lab"}' "$sync"
}
# reported NAME JQ-TEST: Application NAME's status passes the jq test
reported() {
	[ "$(k GET "$AP/applications/$1")" = 200 ] && [ "$(jq -r "$2" "$TESTTMP/k.json")" = true ]
}
# condition_is NAME TYPE MESSAGE: Argo CD reports exactly that condition
condition_is() {
	local want
	want=$(jq -cn --arg t "$2" --arg m "$3" '[{type: $t, message: $m}]')
	poll 20 "$1's condition" reported "$1" "[.status.conditions[]? | {type, message}] == $want"
	[ "$(jget .status.sync.status)" = Unknown ] || fail "$1: sync $(jget .status.sync.status), not Unknown"
}
synced_at() { # NAME SHA SYNC-STATUS
	poll 20 "$1 $3 at $2" reported "$1" ".status.sync.status == \"$3\" and .status.sync.revision == \"$2\" and
		.status.health.status == \"Healthy\" and (.status.conditions // []) == []"
	assert_eq Directory "$(jget .status.sourceType)" "$1's source type"
	assert_eq true "$(jget '.status.sync.comparedTo.source == .spec.source')" "$1 compared against its source"
}
# repo_secret NAME TYPE URL KEY=VALUE|KEY=@FILE...: an Argo CD repository
# Secret of that secret-type (data, base64)
repo_secret() {
	local name=$1 type=$2 url=$3 data kv v
	shift 3
	data=$(printf '"url":"%s","type":"%s"' "$(printf %s "$url" | base64 -w0)" "$(printf git | base64 -w0)")
	for kv in "$@"; do
		v=${kv#*=}
		case $v in @*) v=$(base64 -w0 <"${v#@}") ;; *) v=$(printf %s "$v" | base64 -w0) ;; esac
		data+=$(printf ',"%s":"%s"' "${kv%%=*}" "$v")
	done
	apply "/api/v1/namespaces/argocd/secrets/$name" "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"Opaque\",
		\"metadata\":{\"name\":\"$name\",\"namespace\":\"argocd\",
		\"labels\":{\"argocd.argoproj.io/secret-type\":\"$type\"}},\"data\":{$data}}"
}
WORDS="Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc ="

# --- before the chart: Argo CD's kinds are not served ---------------------------
poll 20 "the API" answers 200 /readyz
assert_eq 404 "$(k GET "$AP/applications")" "GET applications before the chart"
assert_eq "the server could not find the requested resource" "$(jget .message)" "404's message"
assert_eq NotFound "$(jget .reason)" "404's reason"
assert_eq 404 "$(k GET /apis/argoproj.io/v1alpha1)" "argoproj.io/v1alpha1 discovery before the chart"
kok GET /apis
assert_eq false "$(jget '[.groups[].name] | index("argoproj.io") != null')" "argoproj.io in /apis before the chart"

# --- the chart, installed by K3s's helm controller -------------------------------
cat >"$TESTTMP/hc.json" <<'EOF'
{"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
 "metadata": {"name": "argo-cd", "namespace": "kube-system"},
 "spec": {"chart": "https://%{KUBERNETES_API}%/static/charts/argo-cd.tgz", "targetNamespace": "argocd",
          "createNamespace": true, "valuesContent": "configs:\n  params:\n    server.insecure: true\n"}}
EOF
kok POST /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts "$TESTTMP/hc.json"
job_complete() {
	[ "$(k GET /apis/batch/v1/namespaces/kube-system/jobs/helm-install-argo-cd)" = 200 ] &&
		[ "$(jget '[.status.conditions[]? | select(.type == "Complete" and .status == "True")] | length')" = 1 ]
}
poll 20 "the argo-cd helm job" job_complete
# helm's record of the release: its storage Secret in the release's namespace
kok GET "/api/v1/namespaces/argocd/secrets?labelSelector=owner%3Dhelm%2Cname%3Dargo-cd"
assert_eq "sh.helm.release.v1.argo-cd.v1 deployed argo-cd 7.7.0" \
	"$(jget '.items[] | "\(.metadata.name) \(.metadata.labels.status) " + (.data.release | @base64d | fromjson |
		"\(.chart) \(.version)")')" "the release"
for crd in applications.argoproj.io appprojects.argoproj.io; do
	kok GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$crd"
	assert_eq True "$(jget '.status.conditions[] | select(.type == "Established") | .status')" "$crd Established"
	assert_eq helm "$(jget '.metadata.managedFields[0].manager')" "$crd's manager"
done
kok GET /apis/argoproj.io/v1alpha1
assert_eq "applications appprojects" "$(jget '[.resources[].name] | join(" ")')" "argoproj.io/v1alpha1's resources"
assert_eq 404 "$(k GET "$AP/applications/none/status")" "the status subresource of an Application"
poll 20 "AppProject argocd/default" answers 200 "$AP/appprojects/default"
assert_eq '["*"] [{"server":"*","namespace":"*"}] [{"group":"*","kind":"*"}]' \
	"$(jget '[.spec.sourceRepos, .spec.destinations, .spec.clusterResourceWhitelist] | map(tojson) | join(" ")')" \
	"AppProject default's spec"

# --- the API's own checks ---------------------------------------------------------
cat >"$TESTTMP/noproject.json" <<'EOF'
{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "noproject"},
 "spec": {"source": {"repoURL": "https://git.example.org/lab/public.git", "path": "."},
          "destination": {"server": "https://kubernetes.default.svc"}}}
EOF
assert_eq 422 "$(k POST "$AP/applications" "$TESTTMP/noproject.json")" "an Application without spec.project"
assert_eq 'Application.argoproj.io "noproject" is invalid: spec.project: Required value' "$(jget .message)" \
	"422's message"
assert_eq spec.project "$(jget '.details.causes[0].field')" "422's cause"
jq '.metadata.name = "extra" | .spec.project = "default" | .spec.bogus = 1 | .status = {"sync": {"status": "Synced"}}' \
	"$TESTTMP/noproject.json" >"$TESTTMP/extra.json"
assert_eq 400 "$(k POST "$AP/applications?fieldValidation=Strict" "$TESTTMP/extra.json")" "an unknown field, Strict"
assert_contains "$(jget .message)" 'strict decoding error: unknown field "spec.bogus"'
assert_eq 201 "$(k POST "$AP/applications" "$TESTTMP/extra.json")" "an unknown field, Warn"
assert_contains "$(cat "$TESTTMP/k.head")" 'Warning: 299 - "unknown field \"spec.bogus\""'
assert_eq "null Synced" "$(jget '"\(.spec.bogus) \(.status.sync.status)"')" "pruned field, status kept on create"

# --- Argo CD's outcomes ------------------------------------------------------------
app not-found "$(src https://git.example.org/lab/missing.git HEAD .)"
app private "$(src "$PRIVATE" main clusters/lab yes)"
app other "$(src "$OTHER" HEAD . yes)"
app ssh "$(src "$SSH" main clusters/lab yes)"
app bad-revision "$(src "$PUBLIC" no-such-branch apps)"
app bad-path "$(src "$PUBLIC" main clusters/missing)"
app manual "$(src "$PUBLIC" v1.0 apps)"
app auto "$(src "$PUBLIC" main apps yes)"
app no-project "$(src "$PUBLIC" main apps | jq -c '.project = "nope"')"
repo_secret wrong-key repository "$SSH" "sshPrivateKey=@$TESTTMP/other-key"

condition_is not-found ComparisonError "$WORDS failed to list refs: repository not found"
condition_is private ComparisonError "$WORDS failed to list refs: authentication required"
condition_is other ComparisonError "$WORDS failed to list refs: authentication required"
condition_is ssh ComparisonError "$WORDS failed to list refs: ssh: handshake failed: ssh: unable to authenticate,\
 attempted methods [none publickey], no supported methods remain"
condition_is bad-revision ComparisonError "$WORDS unable to resolve 'no-such-branch' to a commit SHA"
condition_is bad-path ComparisonError "$WORDS clusters/missing: app path does not exist"
condition_is no-project InvalidSpecError "Application referencing project nope which does not exist"
assert_eq Unknown "$(jget .status.health.status)" "health of an Application with an invalid spec"
synced_at manual "$SHA_TAG" OutOfSync
assert_eq null "$(jget .status.operationState)" "a manual Application's sync operation"
synced_at auto "$SHA_MAIN" Synced
assert_eq "Succeeded|successfully synced (all tasks run)|$SHA_MAIN" \
	"$(jget '.status.operationState | "\(.phase)|\(.message)|\(.syncResult.revision)"')" \
	"the automated sync"
# the status the Application was created with is Argo CD's now
synced_at extra "$SHA_MAIN" OutOfSync

# The credentials, fixed: "authentication required" becomes Synced.
repo_secret devopslab-repo repository "$PRIVATE" username=devopslab password=s3cret-token
repo_secret lab-creds repo-creds https://git.example.org/lab/ username=devopslab password=s3cret-token
repo_secret wrong-key repository "$SSH" "sshPrivateKey=@$TESTTMP/deploy-key"
synced_at private "$SHA_PRIVATE" Synced
synced_at other "$SHA_PRIVATE" Synced
synced_at ssh "$SHA_PRIVATE" Synced

# --- converged: nothing is written again ---------------------------------------------
# the list's resourceVersion is the cluster's (etcd's revision): nothing at
# all is written, and each Application keeps its own
rvs() {
	kok GET "$AP/applications" &&
		jget '.metadata.resourceVersion + " " + ([.items[].metadata.resourceVersion] | join(","))'
}
before=$(rvs)
end=$((SECONDS + 3))
while [ "$SECONDS" -le "$end" ]; do
	assert_eq "$before" "$(rvs)" "resourceVersions of a converged cluster"
	sleep 0.2
done

# A refresh asked for (the annotation Argo CD's CLI sets): reported on
# anew, with a new reconciledAt, and the annotation gone.
kok GET "$AP/applications/auto"
rv=$(jget .metadata.resourceVersion)
printf '{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}}}\n' >"$TESTTMP/refresh.json"
kok PATCH "$AP/applications/auto" "$TESTTMP/refresh.json" application/merge-patch+json
poll 20 "the refresh" reported auto '(.metadata.annotations // {}) | has("argocd.argoproj.io/refresh") | not'
[ "$(jget .metadata.resourceVersion)" -gt "$((rv + 1))" ] || fail "the refresh wrote no status"
assert_eq "Synced $SHA_MAIN" "$(jget '"\(.status.sync.status) \(.status.sync.revision)"')" "auto after the refresh"

# --- uninstalled: the CRDs stay (helm never deletes crds/), Argo CD is gone ----------
kok DELETE /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/argo-cd
poll 20 "the HelmChart's removal" answers 404 /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/argo-cd
kok GET "/api/v1/namespaces/argocd/secrets?labelSelector=owner%3Dhelm"
assert_eq 0 "$(jget '.items | length')" "helm's release Secrets after the uninstall"
for crd in applications.argoproj.io appprojects.argoproj.io; do
	assert_eq 200 "$(k GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$crd")" "$crd after the uninstall"
done
assert_eq 200 "$(k GET "$AP/applications/auto")" "an Application after the uninstall"
app late "$(src "$PUBLIC" main apps yes)"
end=$((SECONDS + 2))
while [ "$SECONDS" -le "$end" ]; do
	kok GET "$AP/applications/late"
	assert_eq null "$(jget .status)" "the status of an Application made after the uninstall"
	sleep 0.2
done
echo "requests: $(k8s_requests) Kubernetes"
