#!/bin/bash
# K3s workloads from the bundle (docs/k3s.md, "Workloads"), against the
# simulators: a chart archive and its values in the manifest become a
# HelmChart in the first server's auto-deploying manifests, which the
# Kubernetes API simulator deploys and installs as K3s's deploy and helm
# controllers do (chart fetched from the servers' static directory, values
# checked against the chart's values.schema.json). Checked from the
# outside:
#   - the HelmChart file in the guest validates against the official
#     HelmChart schema (../shared/reference/schemas) with jsonschema, and
#     carries the manifest's values; the archive is on every server (from
#     the payload, SHA-256 equal to the asset) and on no agent;
#   - through the API with the kubeconfig's credentials (curl): the
#     HelmChart, its completed helm job, the release's namespace;
#   - a re-run changes nothing;
#   - values the chart's schema refuses: the step fails with helm's own
#     words from the job's log; fixed, a run killed -9 as it writes the new
#     HelmChart, then a re-run converges;
#   - the chart dropped from the manifest: its file goes and its HelmChart
#     is deleted (K3s never deletes what a removed file made), the helm
#     controller uninstalling the release first.
# timeout: 300
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"
SCHEMAS=$TOP/../shared/reference/schemas
[ -f "$SCHEMAS/helm.cattle.io/helmchart_v1.json" ] || fail "no HelmChart schema in $SCHEMAS"

k3s_init
mkdir -p "$A/charts"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TOP/tests/data/k3s/chart" \
	-czf "$A/charts/demo-0.1.0.tgz" demo

# k3s_charts VALUES|-: the manifest's k3s.charts: the demo chart into
# namespace apps with these values (a YAML flow mapping), or none (-).
k3s_charts() {
	"$PY" - "$TESTTMP/cluster.yaml" "$1" <<-'PYEOF'
	import re, sys
	p, values = sys.argv[1], sys.argv[2]
	s = open(p).read()
	if "{name: demo-chart," not in s:
	    s = s.replace("  - {name: k3s-bin,", "  - {name: demo-chart, file: charts/demo-0.1.0.tgz}\n  - {name: k3s-bin,")
	s = re.sub(r"  charts:\n(    .*\n)*", "", s)
	if values != "-":
	    s = s.replace("  airgap: {", "  charts:\n    - name: demo\n      chart: demo-chart\n"
	                  "      namespace: apps\n      values: %s\n  airgap: {" % values)
	open(p, "w").write(s)
	PYEOF
	"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
		{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }
}

k3s_charts '{replicaCount: 2, message: "yes"}'
FB_PIN=local
SIM_TASK_MS=100 sim_start_all --guest-boot-ms 200
k8s_start --promote-ms 300 --ready-ms 200 --helm-ms 300
k3s_args
K3S+=(--k3s-timeout 60)

form_all "${K3S[@]}"
OUT=$(cat "$TESTTMP/fb-pve1.out")
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the first run reported an error"; }
assert_contains "$OUT" "chart demo: handing K3s the HelmChart into namespace apps"
assert_contains "$OUT" "1 chart installed by K3s"

# The kubeconfig's credentials, for curl (kget).
k3s_kubeconfig_pems

# What the guests hold: the HelmChart file (schema-valid, our values) on
# the first server, the archive on every server.
G=$TESTTMP/guestfs
k3s_guest_files "$G"
hc=/var/lib/rancher/k3s/server/manifests/devopslab-chart-demo.yaml
assert_eq "0600" "$(k3s_guest_mode k3s-server-01 "$hc")" "mode of the HelmChart file"
"$PY" - "$G/k3s-server-01$hc" "$SCHEMAS/helm.cattle.io/helmchart_v1.json" <<'PYEOF' || fail "the HelmChart file"
import json, sys, jsonschema, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
assert len(docs) == 1, docs
o = docs[0]
jsonschema.validate(o, json.load(open(sys.argv[2])))
assert (o["apiVersion"], o["kind"]) == ("helm.cattle.io/v1", "HelmChart"), o
assert o["metadata"]["name"] == "demo" and o["metadata"]["namespace"] == "kube-system", o["metadata"]
assert o["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "devopslab"}, o["metadata"]
assert o["spec"]["chart"] == "https://%{KUBERNETES_API}%/static/charts/demo.tgz", o["spec"]
assert o["spec"]["targetNamespace"] == "apps" and o["spec"]["createNamespace"] is True, o["spec"]
assert yaml.safe_load(o["spec"]["valuesContent"]) == {"replicaCount": 2, "message": "yes"}, o["spec"]
PYEOF
want=$(sha256sum <"$A/charts/demo-0.1.0.tgz" | cut -d' ' -f1)
for v in k3s-server-01 k3s-server-02 k3s-server-03; do
	assert_eq "$want" "$(sim_query "[vm['guestfs']['/var/lib/rancher/k3s/server/static/charts/demo.tgz']['sha256'] for d in s['guest']['vms'].values() for vm in d.values() if vm['conf'].get('name') == '$v'][0]")" \
		"the chart archive on $v"
done
[ ! -e "$G/k3s-worker-01/var/lib/rancher/k3s/server/static/charts/demo.tgz" ] || fail "an agent received the chart"

# Through the API.
kget "/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts?labelSelector=app.kubernetes.io%2Fmanaged-by%3Ddevopslab" \
	>"$TESTTMP/charts.json" || fail "GET helmcharts"
job=$("$PY" -c '
import json, sys
l = json.load(open(sys.argv[1]))
assert [i["metadata"]["name"] for i in l["items"]] == ["demo"], l
print(l["items"][0]["status"]["jobName"])' "$TESTTMP/charts.json") || fail "the HelmChart list"
kget "/apis/batch/v1/namespaces/kube-system/jobs/$job" >"$TESTTMP/job.json" || fail "GET job $job"
"$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert any(c["type"] == "Complete" and c["status"] == "True" for c in j["status"]["conditions"]), j["status"]' \
	"$TESTTMP/job.json" || fail "the helm job did not complete"
kget /api/v1/namespaces/apps >/dev/null || fail "no namespace apps: the release's namespace was not made"

# Converged: a re-run changes nothing.
k3s_rerun_converged

# Values the chart's schema refuses: helm's words, from the log of the
# job's crash-looping pod.
k3s_charts '{replicaCount: 9}'
fb pve1 "${K3S[@]}" --k3s-timeout 20
[ "$RC" = 1 ] || { echo "$OUT" >&2; fail "firstboot exited $RC, not 1, with values the chart refuses"; }
assert_contains "$OUT" "chart demo: updating the HelmChart into namespace apps"
assert_contains "$OUT" "error: cluster/k3s/charts: chart demo: its helm job "
assert_contains "$OUT" "values don't meet the specifications of the schema"
# Fixed, and the run killed -9 as it hands K3s the new HelmChart: the next
# run converges.
k3s_charts '{replicaCount: 3}'
fb_bg pve1 "${K3S[@]}"
for _ in $(seq 1200); do
	grep -q "chart demo: updating the HelmChart" "$TESTTMP/fb-pve1.out" 2>/dev/null && break
	kill -0 "${FB_PID[pve1]}" 2>/dev/null || break
	sleep 0.05
done
kill -9 "${FB_PID[pve1]}" 2>/dev/null || true
wait "${FB_PID[pve1]}" 2>/dev/null || true
assert_contains "$(cat "$TESTTMP/fb-pve1.out")" "chart demo: updating the HelmChart"
fb pve1 "${K3S[@]}"
fb_formed pve1
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the run with fixed values reported an error"; }
kget /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/demo >"$TESTTMP/demo.json" || fail "GET demo"
assert_eq "{'replicaCount': 3}" "$("$PY" -c 'import json, sys, yaml; print(yaml.safe_load(json.load(open(sys.argv[1]))["spec"]["valuesContent"]))' "$TESTTMP/demo.json")" \
	"the HelmChart's values after the fix"

# Dropped from the manifest: the file goes, and the HelmChart.
k3s_charts -
fb pve1 "${K3S[@]}"
fb_formed pve1
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the run without the chart reported an error"; }
assert_contains "$OUT" "chart demo is no longer in the manifest: removing it"
rm -rf "$G" && k3s_guest_files "$G"
[ ! -e "$G/k3s-server-01$hc" ] || fail "the HelmChart file is still in the first server"
kget /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/demo >/dev/null 2>&1 &&
	fail "the HelmChart is still in the cluster"

sim_schema_check || fail "schema check"
echo "requests: $(requests) Proxmox, $(k8s_requests) Kubernetes"
