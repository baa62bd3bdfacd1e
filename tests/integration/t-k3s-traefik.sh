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
#     completes; with no kube-vip serving Services the annotation gives
#     nothing and the class-less Service stays ServiceLB's;
#   - a LoadBalancer Service's class may not change (kube-apiserver's
#     validateLoadBalancerClassField): values that give the Service
#     kube-vip's class make the helm pod crash-loop with helm's "UPGRADE
#     FAILED: cannot patch" and the API's "may not change once set", the
#     Service keeps its address; a PATCH of the Service answers 422 Invalid
#     (cause spec.loadBalancerClass), server-side apply is refused too;
#   - load-balancer addresses, Services made through the API beside it:
#     one that names a loadBalancerClass gets no ServiceLB address (kube-vip's
#     class without kube-vip, another class); a class-less one does; a
#     kube-vip DaemonSet with svc_enable "false" changes nothing (and no
#     Service gets a new resourceVersion); once its svc_enable is "true",
#     kube-vip gives the Traefik Service 10.0.0.30 and the Service of
#     kube-vip's class its address, never the Service of another class;
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
kapply() { # PATH FILE: server-side apply of FILE (JSON) to PATH
	curl -sS --fail --cacert "$TESTTMP/kc-ca.pem" --cert "$TESTTMP/kc-cert.pem" --key "$TESTTMP/kc-key.pem" \
		-X PATCH -H "Content-Type: application/apply-patch+yaml" --data-binary "@$2" \
		"$K8S_URL$1?fieldManager=t-k3s-traefik&force=true" >/dev/null
}

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
svc_ip() { # IP [PATH]: the Service's (default Traefik's) first load-balancer address is IP
	[ "$(kjson "${2:-$SVC}" '(o.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip")')" = "$1" ]
}
svc_no_lb() { # PATH: the Service has no load-balancer address (status.loadBalancer empty)
	[ "$(kjson "$1" 'o.get("status", {}).get("loadBalancer") or {}')" = "{}" ] ||
		fail "$1 has a load-balancer address: $(kjson "$1" 'o.get("status")')"
}
svc_rv() { kjson "$1" 'o["metadata"]["resourceVersion"]'; }
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

# Valid values, the v34 redirect form: the job runs again and completes.
# The Service asks kube-vip for 10.0.0.30, but no kube-vip serves Services:
# it names no class, so it stays ServiceLB's.
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
upgraded34() {
	[ "$(config_hash)" != "$hash1" ] && job_complete &&
		[ "$(kjson "$SVC" 'o["metadata"].get("annotations", {}).get("kube-vip.io/loadbalancerIPs")')" = 10.0.0.30 ]
}
poll 60 "the helm job with the new values to complete" upgraded34
svc_ip 10.0.0.31 || fail "the annotation moved the Service with no kube-vip serving Services: $(kjson "$SVC" 'o["status"]')"
hash2=$(config_hash)

# ---- a LoadBalancer Service's class may not change ------------------------------------

# Values that give the existing (class-less) Service kube-vip's class: the
# API refuses helm's patch (validateLoadBalancerClassField), helm prints its
# words and the pod crash-loops; the Service is what the last good release
# made, on its address.
CLASS_MSG='Service "traefik" is invalid: spec.loadBalancerClass: Invalid value: "kube-vip.io/kube-vip-class": may not change once set'
svc_rv_before=$(svc_rv "$SVC")
traefik_config 'service:
  annotations:
    kube-vip.io/loadbalancerIPs: 10.0.0.30
  spec:
    loadBalancerClass: kube-vip.io/kube-vip-class
ports:
  web:
    redirectTo:
      port: websecure
  websecure:
    tls:
      enabled: true'
poll 60 "the helm pod to fail on the Service's class" helm_failed_with \
	"Error: UPGRADE FAILED: cannot patch \"traefik\" with kind Service: $CLASS_MSG"
job_complete && fail "the helm job completed with values that change the Service's class"
svc_ip 10.0.0.31 || fail "a refused upgrade moved the Service: $(kjson "$SVC" 'o["status"]')"
assert_eq None "$(kjson "$SVC" 'o["spec"].get("loadBalancerClass")')" "the Service's class after the refused upgrade"
assert_eq "$svc_rv_before" "$(svc_rv "$SVC")" "the Service's resourceVersion after the refused upgrade"

# The same change straight through the API: a merge patch answers 422 Invalid
# with the cause; server-side apply is refused too.
code=$(curl -sS -o "$TESTTMP/patch.json" -w '%{http_code}' --cacert "$TESTTMP/kc-ca.pem" \
	--cert "$TESTTMP/kc-cert.pem" --key "$TESTTMP/kc-key.pem" -X PATCH \
	-H "Content-Type: application/merge-patch+json" --data '{"spec":{"loadBalancerClass":"kube-vip.io/kube-vip-class"}}' \
	"$K8S_URL$SVC") || fail "PATCH the Service"
assert_eq 422 "$code" "the answer to a PATCH that gives the Service a class"
"$PY" - "$TESTTMP/patch.json" "$CLASS_MSG" <<'PYEOF' || fail "the 422's body: $(cat "$TESTTMP/patch.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert (s["kind"], s["reason"], s["code"], s["message"]) == ("Status", "Invalid", 422, sys.argv[2]), s
assert s["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.loadBalancerClass",
                                   "message": 'Invalid value: "kube-vip.io/kube-vip-class": may not change once set'}], s
PYEOF
printf '%s' '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "traefik", "namespace": "kube-system"},
 "spec": {"loadBalancerClass": "kube-vip.io/kube-vip-class"}}' >"$TESTTMP/svc-class.json"
kapply "$SVC" "$TESTTMP/svc-class.json" 2>/dev/null && fail "server-side apply gave the Service a class"
assert_eq None "$(kjson "$SVC" 'o["spec"].get("loadBalancerClass")')" "the Service's class after the refused patches"

# Back to the valid values: the job runs them again and completes.
traefik_config "$VALID34"
recovered34() { [ "$(config_hash)" = "$hash2" ] && job_complete; }
poll 60 "the helm job with the valid values again" recovered34
svc_ip 10.0.0.31 || fail "the Service left ServiceLB's address"

# ---- load-balancer addresses: ServiceLB, the class, kube-vip's svc_enable ------------

# lb_service NAME CLASS ADDRESS: Service default/NAME, type LoadBalancer,
# port 8081 (not Traefik's: ServiceLB's host ports), by server-side apply;
# CLASS and ADDRESS (kube-vip's annotation) may be empty
lb_service() {
	"$PY" -c '
import json, sys
name, cls, addr = sys.argv[1:4]
spec = {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"name": "http", "port": 8081, "protocol": "TCP"}]}
if cls:
    spec["loadBalancerClass"] = cls
md = {"name": name, "namespace": "default"}
if addr:
    md["annotations"] = {"kube-vip.io/loadbalancerIPs": addr}
print(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": spec}))' "$1" "$2" "$3" >"$TESTTMP/svc-$1.json"
	kapply "/api/v1/namespaces/default/services/$1" "$TESTTMP/svc-$1.json" || fail "applying Service $1"
}
# kube_vip_ds SVC_ENABLE: a kube-vip DaemonSet kube-system/kube-vip-ds as
# kube-vip's manifest makes one (the manifest has no k3s.kube_vip), svc_enable
# as given
kube_vip_ds() {
	"$PY" -c '
import json, sys
env = [{"name": k, "value": v} for k, v in (("vip_arp", "true"), ("port", "6443"), ("vip_interface", "eth0"),
                                             ("cp_enable", "true"), ("svc_enable", sys.argv[1]))]
print(json.dumps({"apiVersion": "apps/v1", "kind": "DaemonSet",
                  "metadata": {"name": "kube-vip-ds", "namespace": "kube-system"},
                  "spec": {"selector": {"matchLabels": {"name": "kube-vip-ds"}},
                           "template": {"metadata": {"labels": {"name": "kube-vip-ds"}},
                                        "spec": {"hostNetwork": True, "serviceAccountName": "kube-vip",
                                                 "containers": [{"name": "kube-vip", "args": ["manager"],
                                                                 "image": "ghcr.io/kube-vip/kube-vip:v0.9.2",
                                                                 "env": env}]}}}}))' "$1" >"$TESTTMP/kube-vip-ds.json"
	kapply /apis/apps/v1/namespaces/kube-system/daemonsets/kube-vip-ds "$TESTTMP/kube-vip-ds.json" ||
		fail "applying the kube-vip DaemonSet"
}
SVCS=/api/v1/namespaces/default/services
lb_service lb-plain "" ""
lb_service lb-kube-vip kube-vip.io/kube-vip-class 10.0.0.41
lb_service lb-other example.com/other-lb 10.0.0.42
poll 30 "ServiceLB's address on the class-less Service" svc_ip 10.0.0.31 "$SVCS/lb-plain"
svc_no_lb "$SVCS/lb-kube-vip"
svc_no_lb "$SVCS/lb-other"
svc_ip 10.0.0.31 || fail "the Traefik Service left ServiceLB's address"

# kube-vip with services off (svc_enable "false", the provisioner's setting
# before the edge): nothing changes, nothing is written.
kube_vip_ds false
rvs() { for p in "$SVC" "$SVCS/lb-plain" "$SVCS/lb-kube-vip" "$SVCS/lb-other"; do svc_rv "$p"; done | paste -sd' '; }
rv1=$(rvs)
sleep 0.5
svc_ip 10.0.0.31 || fail "kube-vip with services off took the Traefik Service"
svc_no_lb "$SVCS/lb-kube-vip"
svc_no_lb "$SVCS/lb-other"
svc_ip 10.0.0.31 "$SVCS/lb-plain" || fail "lb-plain left ServiceLB's address"
assert_eq "$rv1" "$(rvs)" "the Services' resourceVersions with nothing changed"

# kube-vip with services on: the Services that ask it for an address and
# whose class it takes (none: legacy handling; its own) get that address.
kube_vip_ds true
poll 30 "the Traefik Service on 10.0.0.30 from kube-vip" svc_ip 10.0.0.30
poll 30 "the kube-vip-class Service on 10.0.0.41" svc_ip 10.0.0.41 "$SVCS/lb-kube-vip"
svc_no_lb "$SVCS/lb-other"
svc_ip 10.0.0.31 "$SVCS/lb-plain" || fail "lb-plain (no address asked for) left ServiceLB's address"
rv2=$(rvs)
sleep 0.5
assert_eq "$rv2" "$(rvs)" "the Services' resourceVersions once settled"
kjson "$SVC" 'sorted(e["manager"] for e in o["metadata"]["managedFields"] if e.get("subresource") == "status")' \
	>"$TESTTMP/status-managers" || fail "GET the Service"
assert_contains "$TESTTMP/status-managers" "kube-vip"

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
