#!/bin/bash
# The monitoring stack in the Kubernetes API simulator (tests/sim/k8s_sim.py,
# k8s_sim_monitoring.py), through the API with curl and the admin client
# certificate: K3s's helm controller installs the stand-in chart
# tests/data/monitoring/kube-prometheus-stack (HelmChart kube-system/monitoring,
# release "monitoring" in namespace monitoring), and Prometheus's and
# Grafana's APIs answer through kube-apiserver's service proxy. The cluster
# is one K3s server written as the Proxmox simulator's state (as in
# t-sim-argocd.sh), so that only the Kubernetes API simulator runs. Checked:
#   - before the chart the proxy answers 404 (no such Service);
#   - the install: its CRDs (ServiceMonitor, PodMonitor) Established, the
#     Services and the node-exporter DaemonSet rendered as the release's;
#   - Prometheus's targets: the stack's own jobs (up), two static jobs up or
#     down as --scrape-up says (Prometheus's dial error), a flip of the file
#     seen; the other proxy forms; 404 for another path, 405 for a POST; a
#     ServiceMonitor of the release gives the addresses of its Service's
#     Endpoints;
#   - duplicate job names (an upgrade): 503 no endpoints; fixed: answers again;
#   - Grafana: 503 until its admin Secret exists, then /api/health 200; the
#     search 401 without and with basic auth (kube-apiserver removes the
#     Authorization header before proxying); with anonymous Admin access
#     (grafana.ini) a dashboard ConfigMap appears in the search and
#     Prometheus is the default data source;
#   - uninstalled: the Services and the DaemonSet gone, the proxy 404 again.
# timeout: 90
# (a simulator's own test: nothing of ours runs under ASan)
# sanitizer: skip
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/k8s-client-lib.sh"

SCHEMAS=$SHARED/reference/schemas
[ -f "$SCHEMAS/helm.cattle.io/helmchart_v1.json" ] || fail "no HelmChart schema in $SCHEMAS"
NSP=/api/v1/namespaces/monitoring
PROM=$NSP/services/http:monitoring-kube-prometheus-prometheus:9090/proxy
GRAF=$NSP/services/http:monitoring-grafana:80/proxy
HC=/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts

# --- the fixture: one K3s server with its CA files and the chart ---------------
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TOP/tests/data/monitoring" \
	-czf "$TESTTMP/kube-prometheus-stack-66.2.1.tgz" kube-prometheus-stack
k3s_one_server kube-prometheus-stack.tgz="$TESTTMP/kube-prometheus-stack-66.2.1.tgz"
# the admin's client certificate (O=system:masters), as K3s issues it
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TESTTMP/admin.key" \
	-out "$TESTTMP/admin.csr" -subj "/O=system:masters/CN=system:admin" 2>/dev/null
openssl x509 -req -in "$TESTTMP/admin.csr" -CA "$TESTTMP/client-ca.crt" -CAkey "$TESTTMP/client-ca.key" \
	-CAcreateserial -days 30 -out "$TESTTMP/admin.crt" -extfile <(echo "extendedKeyUsage=clientAuth") 2>/dev/null ||
	fail "issuing the admin certificate"

# scrape-up FILE CONTENT: the targets that answer, written as a new file
scrape_up() { printf '%s\n' "$1" >"$TESTTMP/up.json.tmp" && mv "$TESTTMP/up.json.tmp" "$TESTTMP/up.json"; }
scrape_up '["10.0.0.11:9221"]'
k8s_start --helm-ms 200 --prometheus-ms 300 --scrape-up "$TESTTMP/up.json"

# --- helpers ----------------------------------------------------------------------
# health POOL INSTANCE: "HEALTH LASTERROR" of that target in the last answer
health() { jget ".data.activeTargets[] | select(.scrapePool == \"$1\" and .labels.instance == \"$2\") |
	\"\(.health) \(.lastError)\""; }
targets_are() { # JQ-TEST over the targets answer
	[ "$(k GET "$PROM/api/v1/targets")" = 200 ] && [ "$(jget "$1")" = true ]
}
# values YAML: the HelmChart's spec.valuesContent, merge-patched (an upgrade)
values() {
	jq -n --arg v "$1" '{spec: {valuesContent: $v}}' >"$TESTTMP/patch.json"
	kok PATCH "$HC/monitoring" "$TESTTMP/patch.json" application/merge-patch+json
}
release_revision() { # N: the release's storage Secret of revision N is deployed
	[ "$(k GET "$NSP/secrets/sh.helm.release.v1.monitoring.v$1")" = 200 ] && [ "$(jget .metadata.labels.status)" = deployed ]
}

JOBS='prometheus:
  prometheusSpec:
    additionalScrapeConfigs:
      - job_name: pve
        static_configs:
          - targets: ["10.0.0.11:9221", "10.0.0.12:9221"]
            labels: {cluster: lab}
      - job_name: dns
        metrics_path: /metrics/dns
        static_configs:
          - targets: ["10.0.0.53:9119"]
grafana:
  admin:
    existingSecret: grafana-admin'

# --- before the chart --------------------------------------------------------------
poll 20 "the API" answers 200 /readyz
assert_eq 404 "$(k GET "$PROM/api/v1/targets")" "the proxy before the chart"
assert_eq 'services "monitoring-kube-prometheus-prometheus" not found' "$(jget .message)" "its message"

# --- the install ---------------------------------------------------------------------
jq -n --arg v "$JOBS" '{apiVersion: "helm.cattle.io/v1", kind: "HelmChart",
	metadata: {name: "monitoring", namespace: "kube-system"},
	spec: {chart: "https://%{KUBERNETES_API}%/static/charts/kube-prometheus-stack.tgz",
	       targetNamespace: "monitoring", createNamespace: true, valuesContent: $v}}' >"$TESTTMP/hc.json"
kok POST "$HC" "$TESTTMP/hc.json"
poll 20 "the release" release_revision 1
for crd in servicemonitors.monitoring.coreos.com podmonitors.monitoring.coreos.com; do
	kok GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$crd"
	assert_eq True "$(jget '.status.conditions[] | select(.type == "Established") | .status')" "$crd Established"
done
kok GET /apis/monitoring.coreos.com/v1
assert_eq "servicemonitors podmonitors" "$(jget '[.resources[].name] | join(" ")')" "monitoring.coreos.com/v1"
kok GET "$NSP/services"
assert_eq "monitoring-grafana:80 monitoring-kube-prometheus-prometheus:9090 monitoring-kube-state-metrics:8080 monitoring-prometheus-node-exporter:9100" \
	"$(jget '[.items[] | "\(.metadata.name):\(.spec.ports[0].port)"] | join(" ")')" "the Services"
assert_eq "monitoring monitoring monitoring monitoring" \
	"$(jget '[.items[].metadata.annotations["meta.helm.sh/release-name"]] | join(" ")')" "their release"
kok GET /apis/apps/v1/namespaces/monitoring/daemonsets/monitoring-prometheus-node-exporter
assert_eq 1 "$(jget .status.numberReady)" "node-exporter on the one node"

# --- Prometheus's targets ------------------------------------------------------------
poll 20 "Prometheus" answers 200 "$PROM/api/v1/targets"
assert_eq success "$(jget .status)" "status"
assert_eq "serviceMonitor/monitoring/monitoring-kube-prometheus-prometheus/0 serviceMonitor/monitoring/monitoring-kube-state-metrics/0 serviceMonitor/monitoring/monitoring-prometheus-node-exporter/0" \
	"$(jget '[.data.activeTargets[] | select(.scrapePool | startswith("serviceMonitor/")) | select(.health == "up") | .scrapePool] | join(" ")')" \
	"the stack's own jobs, up"
assert_eq "up " "$(health serviceMonitor/monitoring/monitoring-prometheus-node-exporter/0 10.0.0.31:9100)" "node-exporter"
assert_eq "up " "$(health pve 10.0.0.11:9221)" "pve 10.0.0.11"
assert_eq 'down Get "http://10.0.0.12:9221/metrics": dial tcp 10.0.0.12:9221: connect: connection refused' \
	"$(health pve 10.0.0.12:9221)" "pve 10.0.0.12"
assert_eq 'down Get "http://10.0.0.53:9119/metrics/dns": dial tcp 10.0.0.53:9119: connect: connection refused' \
	"$(health dns 10.0.0.53:9119)" "dns"
assert_eq "lab pve http://10.0.0.11:9221/metrics 30s" "$(jget '.data.activeTargets[] | select(.labels.instance ==
	"10.0.0.11:9221") | "\(.labels.cluster) \(.labels.job) \(.scrapeUrl) \(.scrapeInterval)"')" "a static target"
assert_eq 0 "$(jget '.data.droppedTargets | length')" "droppedTargets"
scrape_up '["10.0.0.11:9221", "10.0.0.12:9221", "10.0.0.53:9119"]'
poll 10 "the flip" targets_are '[.data.activeTargets[] | select(.health != "up")] | length == 0'
for form in monitoring-kube-prometheus-prometheus:9090 monitoring-kube-prometheus-prometheus:http-web \
	http:monitoring-kube-prometheus-prometheus:http-web; do
	assert_eq 200 "$(k GET "$NSP/services/$form/proxy/api/v1/targets")" "the proxy as $form"
done
assert_eq 404 "$(k GET "$PROM/api/v1/nothing")" "another path"
assert_eq "404 page not found" "$(cat "$TESTTMP/k.json")" "Prometheus's 404"
assert_eq 405 "$(k POST "$PROM/api/v1/targets" /dev/null)" "a POST"
assert_eq 503 "$(k GET "$NSP/services/http:monitoring-kube-prometheus-prometheus:9999/proxy/api/v1/targets")" \
	"a port the Service does not have"

# a ServiceMonitor of the release: its Service's Endpoints are scraped
cat >"$TESTTMP/svc.json" <<'EOF'
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "demo", "namespace": "monitoring",
 "labels": {"app": "demo"}}, "spec": {"selector": {"app": "demo"}, "ports": [{"name": "metrics", "port": 8000}]}}
EOF
cat >"$TESTTMP/ep.json" <<'EOF'
{"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "demo", "namespace": "monitoring"},
 "subsets": [{"addresses": [{"ip": "10.42.0.7"}, {"ip": "10.42.0.8"}], "ports": [{"name": "metrics", "port": 8000}]}]}
EOF
cat >"$TESTTMP/sm.json" <<'EOF'
{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "demo",
 "namespace": "monitoring", "labels": {"release": "monitoring"}},
 "spec": {"selector": {"matchLabels": {"app": "demo"}}, "endpoints": [{"port": "metrics"}]}}
EOF
kok POST "$NSP/services" "$TESTTMP/svc.json"
kok POST "$NSP/endpoints" "$TESTTMP/ep.json"
kok POST /apis/monitoring.coreos.com/v1/namespaces/monitoring/servicemonitors "$TESTTMP/sm.json"
kok GET "$PROM/api/v1/targets"
assert_eq "demo 10.42.0.7:8000 down,demo 10.42.0.8:8000 down" "$(jget '[.data.activeTargets[] |
	select(.scrapePool == "serviceMonitor/monitoring/demo/0") | "\(.labels.job) \(.labels.instance) \(.health)"] |
	join(",")')" "the ServiceMonitor's targets"

# --- Grafana -------------------------------------------------------------------------
assert_eq 503 "$(k GET "$GRAF/api/health")" "Grafana without its admin Secret"
assert_eq 'no endpoints available for service "monitoring-grafana"' "$(jget .message)" "its message"
cat >"$TESTTMP/secret.json" <<EOF
{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "grafana-admin", "namespace": "monitoring"},
 "data": {"admin-user": "$(printf admin | base64)", "admin-password": "$(printf s3cret | base64)"}}
EOF
kok POST "$NSP/secrets" "$TESTTMP/secret.json"
poll 10 "Grafana" answers 200 "$GRAF/api/health"
assert_eq "ok 11.3.0" "$(jget '"\(.database) \(.version)"')" "Grafana's health"
assert_eq 401 "$(k GET "$GRAF/api/search?type=dash-db")" "the search without credentials"
assert_eq Unauthorized "$(jget .message)" "Grafana's 401"
assert_eq 401 "$(k GET "$GRAF/api/search?type=dash-db" "" "" -u admin:s3cret)" \
	"the search with basic auth (removed by kube-apiserver)"
assert_eq 401 "$(k GET "$GRAF/api/search?type=dash-db" "" "" -u admin:wrong)" "the search with a wrong password"

# anonymous Admin access (grafana.ini), and a dashboard
values "$JOBS
  grafana.ini:
    auth.anonymous: {enabled: true, org_role: Admin}"
poll 20 "revision 2" release_revision 2
cat >"$TESTTMP/dash.json" <<'EOF'
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lab-dash", "namespace": "monitoring",
 "labels": {"grafana_dashboard": "1"}},
 "data": {"lab.json": "{\"title\": \"Lab overview\", \"uid\": \"lab-overview\"}", "broken.json": "{not json",
          "notes.txt": "{\"title\": \"not a dashboard file\"}"}}
EOF
kok POST "$NSP/configmaps" "$TESTTMP/dash.json"
poll 10 "Grafana after the upgrade" answers 200 "$GRAF/api/search?type=dash-db"
assert_eq "Lab overview lab-overview dash-db" "$(jget '[.[] | "\(.title) \(.uid) \(.type)"] | join(",")')" \
	"the dashboards"
kok GET "$GRAF/api/datasources"
assert_eq "Prometheus prometheus http://monitoring-kube-prometheus-prometheus.monitoring:9090/ true" \
	"$(jget '.[] | "\(.name) \(.type) \(.url) \(.isDefault)"')" "the data source"

# --- a scrape configuration Prometheus refuses ----------------------------------------
values 'prometheus:
  prometheusSpec:
    additionalScrapeConfigs:
      - job_name: pve
        static_configs: [{targets: ["10.0.0.11:9221"]}]
      - job_name: pve
        static_configs: [{targets: ["10.0.0.12:9221"]}]'
poll 20 "revision 3" release_revision 3
assert_eq 503 "$(k GET "$PROM/api/v1/targets")" "duplicate job names"
assert_eq 'no endpoints available for service "monitoring-kube-prometheus-prometheus"' "$(jget .message)" \
	"its message"
values "$JOBS"
poll 20 "revision 4" release_revision 4
poll 10 "Prometheus again" answers 200 "$PROM/api/v1/targets"

# --- uninstalled -----------------------------------------------------------------------
kok DELETE "$HC/monitoring"
poll 20 "the HelmChart's removal" answers 404 "$HC/monitoring"
kok GET "$NSP/services"
assert_eq demo "$(jget '[.items[].metadata.name] | join(" ")')" "the Services left after the uninstall"
assert_eq 404 "$(k GET /apis/apps/v1/namespaces/monitoring/daemonsets/monitoring-prometheus-node-exporter)" \
	"the DaemonSet after the uninstall"
assert_eq 404 "$(k GET "$PROM/api/v1/targets")" "the proxy after the uninstall"
kok GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/servicemonitors.monitoring.coreos.com
echo "ok"
