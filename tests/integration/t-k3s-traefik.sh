#!/bin/bash
# K3s's packaged Traefik, as the edge step will configure it, against the
# simulators (k8s_sim.py --traefik-chart; tests/sim/k8s_sim_objects.py):
# a cluster whose manifest does not disable traefik, formed by firstboot,
# then, through the API with the kubeconfig's credentials (curl), acting as
# the product will with a HelmChartConfig kube-system/traefik:
#   - K3s's own HelmCharts kube-system/traefik-crd and kube-system/traefik
#     exist (chart 34.2.0, K3s 1.33's) and install with K3s's values: a
#     LoadBalancer Service kube-system/traefik on the first server's address
#     (ServiceLB), a Deployment;
#   - valid values (kube-vip's address annotation, the v34 redirect form
#     ports.web.redirectTo): the helm job runs again (new config hash) and
#     completes, the Service gets 10.0.0.30 from kube-vip;
#   - values the chart's schema refuses (ports.web.port "eighty"): the
#     helm pod crash-loops with helm's schema message; the Service stays;
#   - K3s upgraded to chart 39.0.7 (the simulator restarted with
#     --traefik-chart 39.0.7): the HelmChart follows; v39's strict schema
#     refuses the v34 keys 34.2.0 accepted (ports.websecure.tls,
#     ports.web.redirectTo) and accepts its own forms (ports.*.http.*);
#   - a cluster with `disable: [traefik]` (k3s_init's default) has no
#     traefik HelmChart and no traefik.io API.
# (not again under ASan: its firstboot is t-k3s's, which runs there too)
# timeout: 420
# sanitizer: skip
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"
[ -f "$SHARED/reference/schemas/traefik-helm-chart-v39.0.7/values.schema.json" ] ||
	fail "no Traefik chart schemas in $SHARED/reference/schemas"

KS=/apis/helm.cattle.io/v1/namespaces/kube-system
SVC=/api/v1/namespaces/kube-system/services/traefik
JOB=/apis/batch/v1/namespaces/kube-system/jobs/helm-install-traefik

# kjson PATH EXPR: EXPR (Python) over o, what GET PATH answers; 1 if the GET fails
kjson() {
	local body
	body=$(kget "$1" 2>/dev/null) || return 1
	"$PY" -c 'import json, sys; o = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$body" "$2"
}

# poll SECONDS WHAT CMD...: run CMD until it succeeds
poll() {
	local end=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || fail "timed out waiting for $what"
		sleep 0.2
	done
}

# traefik_config VALUES: HelmChartConfig kube-system/traefik with these
# values (YAML), by server-side apply
traefik_config() {
	"$PY" -c '
import json, sys
print(json.dumps({"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
                  "metadata": {"name": "traefik", "namespace": "kube-system"},
                  "spec": {"valuesContent": sys.argv[1]}}))' "$1" >"$TESTTMP/hcc.json"
	curl -sS --fail --cacert "$TESTTMP/kc-ca.pem" --cert "$TESTTMP/kc-cert.pem" --key "$TESTTMP/kc-key.pem" \
		-X PATCH -H "Content-Type: application/apply-patch+yaml" --data-binary "@$TESTTMP/hcc.json" \
		"$K8S_URL$KS/helmchartconfigs/traefik?fieldManager=t-k3s-traefik&force=true" >/dev/null ||
		fail "applying the HelmChartConfig"
}

job_complete() {
	[ "$(kjson "$JOB" 'any(c["type"] == "Complete" and c["status"] == "True"
	                       for c in o.get("status", {}).get("conditions", []))')" = True ]
}
svc_ip() { # IP: the Service's first load-balancer address is IP
	[ "$(kjson "$SVC" '(o.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip")')" = "$1" ]
}
config_hash() {
	kjson "$JOB" 'o["spec"]["template"]["metadata"]["annotations"]["helmcharts.helm.cattle.io/configHash"]'
}

# helm_failed_with TEXT...: the last failed run of the traefik helm job's
# pod printed every TEXT (its log, previous=true: it crash-loops)
helm_failed_with() {
	local pods p t
	pods=$(kjson "/api/v1/namespaces/kube-system/pods?labelSelector=job-name%3Dhelm-install-traefik" \
		'" ".join(i["metadata"]["name"] for i in o["items"])') || return 1
	for p in $pods; do
		kget "/api/v1/namespaces/kube-system/pods/$p/log?previous=true" >"$TESTTMP/helm.log" 2>/dev/null || continue
		for t in "$@"; do
			"$PY" -c 'import sys; sys.exit(sys.argv[2] not in open(sys.argv[1]).read())' "$TESTTMP/helm.log" "$t" ||
				continue 2
		done
		HELM_POD=$p
		return 0
	done
	return 1
}

SCHEMA_MSG="values don't meet the specifications of the schema(s) in the following chart(s):
traefik:
- "

# ---- a cluster with K3s's Traefik (chart 34.2.0) --------------------------------

K3S_DISABLE='' k3s_init
grep -q "disable:" "$TESTTMP/cluster.yaml" && fail "K3S_DISABLE='' left a disable list in the manifest"
FB_PIN=local
SIM_TASK_MS=100 sim_start_all --guest-boot-ms 200
k8s_start --promote-ms 300 --ready-ms 200 --helm-ms 300 --traefik-chart 34.2.0
k3s_args
K3S+=(--k3s-timeout 60)
form_all "${K3S[@]}"
OUT=$(cat "$TESTTMP/fb-pve1.out")
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the first run reported an error"; }
k3s_kubeconfig_pems

# K3s's packaged HelmCharts, from the traefik.yaml it writes itself.
kget "$KS/helmcharts" >"$TESTTMP/charts.json" || fail "GET helmcharts"
"$PY" - "$TESTTMP/charts.json" <<'PYEOF' || fail "the packaged HelmCharts"
import json, sys, yaml
items = {i["metadata"]["name"]: i for i in json.load(open(sys.argv[1]))["items"]}
assert sorted(items) == ["traefik", "traefik-crd"], sorted(items)
base = "https://%{KUBERNETES_API}%/static/charts/"
assert items["traefik-crd"]["spec"]["chart"] == base + "traefik-crd-34.2.1+up34.2.0.tgz", items["traefik-crd"]["spec"]
spec = items["traefik"]["spec"]
assert spec["chart"] == base + "traefik-34.2.1+up34.2.0.tgz", spec
v = yaml.safe_load(spec["valuesContent"])
assert v["priorityClassName"] == "system-cluster-critical", v
assert v["providers"]["kubernetesIngress"]["publishedService"]["enabled"] is True, v
assert v["image"]["repository"] == "rancher/mirrored-library-traefik", v
assert v["service"]["ipFamilyPolicy"] == "PreferDualStack", v
assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in v["tolerations"], v
assert v["deployment"]["podAnnotations"]["prometheus.io/scrape"] == "true", v
a = items["traefik"]["metadata"]["annotations"]
assert a["objectset.rio.cattle.io/owner-name"] == "traefik", a  # the Addon of manifests/traefik.yaml
PYEOF
kget /apis/traefik.io/v1alpha1 >/dev/null || fail "the traefik.io API is not served"

# Installed with K3s's values: ServiceLB gives the Service the first
# server's address.
poll 60 "the traefik helm job to complete" job_complete
poll 30 "the Service on the first server's address" svc_ip 10.0.0.31
kget /apis/apps/v1/namespaces/kube-system/deployments/traefik >"$TESTTMP/dep.json" || fail "no Deployment traefik"
"$PY" - "$TESTTMP/dep.json" <<'PYEOF' || fail "the Deployment"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["spec"]["template"]["spec"]["containers"][0]
assert c["image"].split("/", 1)[1].startswith("rancher/mirrored-library-traefik:"), c
assert d["spec"]["template"]["spec"]["priorityClassName"] == "system-cluster-critical", d["spec"]
assert d["status"]["availableReplicas"] == 1, d["status"]
PYEOF
hash1=$(config_hash) || fail "no config hash on the helm job"

# Valid values, the v34 redirect form: the job runs again and completes,
# kube-vip gives the Service the address asked for.
VALID34='service:
  annotations:
    kube-vip.io/loadbalancerIPs: 10.0.0.30
ports:
  web:
    redirectTo:
      port: websecure
  websecure:
    tls:
      enabled: true'
traefik_config "$VALID34"
poll 60 "the Service on 10.0.0.30" svc_ip 10.0.0.30
job_complete || fail "the Service changed but the helm job is not complete"
hash2=$(config_hash)
[ "$hash1" != "$hash2" ] || fail "the helm job's config hash did not change with the HelmChartConfig"
kget "$SVC" >"$TESTTMP/svc.json" || fail "GET the Service"
"$PY" - "$TESTTMP/svc.json" <<'PYEOF' || fail "the Service"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["spec"]["type"] == "LoadBalancer", s["spec"]
assert s["metadata"]["annotations"]["kube-vip.io/loadbalancerIPs"] == "10.0.0.30", s["metadata"]
assert [(p["name"], p["port"]) for p in s["spec"]["ports"]] == [("web", 80), ("websecure", 443)], s["spec"]["ports"]
assert s["status"]["loadBalancer"]["ingress"] == [{"ip": "10.0.0.30", "ipMode": "VIP"}], s["status"]
PYEOF
kget /api/v1/namespaces/kube-system/secrets/chart-values-traefik >"$TESTTMP/values.json" ||
	fail "no values secret for the helm job"
"$PY" -c '
import json, sys
assert "values-10_HelmChartConfig.yaml" in json.load(open(sys.argv[1]))["data"]' "$TESTTMP/values.json" ||
	fail "the HelmChartConfig's values are not in the job's values secret"

# Values the chart's schema refuses: helm's words, the pod crash-loops; the
# Service is what the last good release made.
traefik_config 'ports: {web: {port: "eighty"}}'
poll 60 "the helm pod to fail on the schema" helm_failed_with \
	"${SCHEMA_MSG}ports.web.port: Invalid type. Expected: integer, given: string"
job_complete && fail "the helm job completed with values the schema refuses"
restarts=$(kjson "/api/v1/namespaces/kube-system/pods/$HELM_POD" 'o["status"]["containerStatuses"][0]["restartCount"]')
[ "${restarts:-0}" -ge 1 ] || fail "the helm pod did not restart ($restarts)"
svc_ip 10.0.0.30 || fail "a failed upgrade changed the Service"

# ---- K3s upgraded: chart 39.0.7 ------------------------------------------------------

kill "$K8S_PID"
wait "$K8S_PID" 2>/dev/null || true
k8s_start --promote-ms 300 --ready-ms 200 --helm-ms 300 --traefik-chart 39.0.7
chart39() {
	[ "$(kjson "$KS/helmcharts/traefik" 'o["spec"]["chart"]')" = \
		"https://%{KUBERNETES_API}%/static/charts/traefik-39.0.701+up39.0.7.tgz" ]
}
poll 30 "the packaged HelmChart of chart 39.0.7" chart39

# What 34.2.0 accepted, v39 refuses: unknown keys.
traefik_config "$VALID34"
poll 60 "the helm pod to fail on v39's strict schema" helm_failed_with "$SCHEMA_MSG" \
	"- ports.web: Additional property redirectTo is not allowed" \
	"- ports.websecure: Additional property tls is not allowed"
job_complete && fail "the helm job completed with keys v39 refuses"

# v39's own forms.
traefik_config 'service:
  annotations:
    kube-vip.io/loadbalancerIPs: 10.0.0.30
    devopslab.test/values: v39
ports:
  web:
    http:
      redirections:
        entryPoint: {to: websecure, scheme: https, permanent: true}
  websecure:
    http:
      tls:
        enabled: true'
v39_applied() {
	[ "$(kjson "$SVC" 'o["metadata"]["annotations"].get("devopslab.test/values")')" = v39 ]
}
poll 60 "the Service made by chart 39.0.7" v39_applied
job_complete || fail "the v39 helm job is not complete"
svc_ip 10.0.0.30 || fail "the Service is not on 10.0.0.30 after the v39 upgrade"
[ "$(kjson /apis/apps/v1/namespaces/kube-system/deployments/traefik 'o["metadata"]["labels"]["helm.sh/chart"]')" = \
	traefik-39.0.701_up39.0.7 ] || fail "the Deployment is not chart 39.0.7's"

# ---- a cluster with `disable: [traefik]`: no Traefik ---------------------------------

kill "$K8S_PID"
wait "$K8S_PID" 2>/dev/null || true
sim_fresh off
rm -rf "$TESTTMP/report"
k3s_init
grep -q "disable: \[traefik\]" "$TESTTMP/cluster.yaml" || fail "k3s_init's manifest does not disable traefik"
SIM_TASK_MS=100 sim_start_all --guest-boot-ms 200
k8s_start --promote-ms 300 --ready-ms 200 --helm-ms 300
k3s_args
K3S+=(--k3s-timeout 60)
form_all "${K3S[@]}"
OUT=$(cat "$TESTTMP/fb-pve1.out")
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the run with traefik disabled reported an error"; }
k3s_kubeconfig_pems
charts=$(kjson "$KS/helmcharts" '[i["metadata"]["name"] for i in o["items"]]') || fail "GET helmcharts"
[ "$charts" = "[]" ] || fail "HelmCharts in a cluster with traefik disabled: $charts"
kget "$KS/helmcharts/traefik" >/dev/null 2>&1 && fail "a traefik HelmChart with traefik disabled"
kget /apis/traefik.io/v1alpha1 >/dev/null 2>&1 && fail "the traefik.io API is served with traefik disabled"
kget "$SVC" >/dev/null 2>&1 && fail "a Service traefik with traefik disabled"

sim_schema_check || fail "schema check"
echo "requests: $(requests) Proxmox, $(k8s_requests) Kubernetes"
