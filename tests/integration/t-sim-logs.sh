#!/bin/bash
# The log store in the Kubernetes API simulator (tests/sim/k8s_sim.py,
# k8s_sim_logs.py), through the API with curl and the admin client
# certificate: K3s's helm controller installs the stand-in chart
# tests/data/logs/loki-stack from the static charts as the provisioner has
# it (HelmChart kube-system/logs, release "logs" in namespace monitoring,
# the provisioner's values as JSON), and Loki answers through
# kube-apiserver's service proxy. One K3s server written as the Proxmox
# simulator's state (k3s_one_server), so only the Kubernetes simulator
# runs. Checked:
#   - before the chart the proxy answers 404 (no such Service);
#   - a nodePort out of range: the install fails with helm's schema message
#     (the chart's values.schema.json), nothing rendered; fixed: deployed;
#   - the Services (Loki's, the syslog NodePort 30514 to tcp-syslog) and
#     Promtail's DaemonSet with the journal's hostPath, as the release's;
#   - /ready 503 with Loki's words, then 200 "ready"; the other proxy forms,
#     https: 503, a POST 405, another path 404;
#   - with a --log-streams file: labels, label values (with a query) and
#     series: a syslog, a journal and a Traefik pod stream each match their
#     selectors, repeated match[] is a union, a stream with a label no
#     relabel rule makes is not there, a stream added to the file shows;
#   - bad selectors: 400 with LogQL's words;
#   - the syslog job taken out of the values: its streams vanish, the
#     journal's stay, Loki stays ready; the chart's default client URL
#     (http://logs:3100/...) ships nothing;
#   - the proxy for a Service that does not exist: 404; uninstalled: the
#     Services and the DaemonSet gone, the proxy 404 again.
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
LOKI=$NSP/services/http:logs-loki:3100/proxy
HC=/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts

# --- the fixture: one K3s server with its CA files and the chart as logs.tgz ----
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TOP/tests/data/logs" \
	-czf "$TESTTMP/loki-stack-2.10.2.tgz" loki-stack
k3s_one_server logs.tgz="$TESTTMP/loki-stack-2.10.2.tgz"
k3s_admin_cert

# streams JSON: what the hosts and pods send, written as a new file
streams() { printf '%s\n' "$1" >"$TESTTMP/streams.json.tmp" && mv "$TESTTMP/streams.json.tmp" "$TESTTMP/streams.json"; }
STREAMS='[
 {"job": "syslog", "host": "pve1", "app": "pveproxy"},
 {"job": "syslog", "host": "pve2", "app": "pvedaemon"},
 {"job": "syslog", "host": "pve1", "app": "pveproxy", "facility": "daemon"},
 {"job": "systemd-journal", "host": "k3s-server-01", "unit": "k3s.service"},
 {"namespace": "kube-system", "pod": "traefik-6d5f9c8b7-x2k4q", "container": "traefik", "app": "traefik",
  "job": "kube-system/traefik", "node_name": "k3s-server-01", "stream": "stdout"}
]'
streams "$STREAMS"
k8s_start --helm-ms 200 --loki-ms 3000 --log-streams "$TESTTMP/streams.json"

# --- helpers ----------------------------------------------------------------------
# series SELECTOR...: GET series with one match[] per SELECTOR (and a time
# range, which the model ignores); prints the HTTP status
series() {
	local args=(-G --data-urlencode "start=1700000000000000000" --data-urlencode "end=1800000000000000000") s
	for s in "$@"; do args+=(--data-urlencode "match[]=$s"); done
	k GET "$LOKI/loki/api/v1/series" "" "" "${args[@]}"
}
# streams_are SELECTOR EXPECTED: the series of SELECTOR, each label set as
# k=v,... (sorted), joined by spaces
sets() { jget '[.data[] | to_entries | map("\(.key)=\(.value)") | join(",")] | join(" ")'; }
streams_are() {
	assert_eq 200 "$(series "$1")" "series $1"
	assert_eq "$2" "$(sets)" "the streams of $1"
}
release_revision() { # N: the release's storage Secret of revision N is deployed
	[ "$(k GET "$NSP/secrets/sh.helm.release.v1.logs.v$1")" = 200 ] && [ "$(jget .metadata.labels.status)" = deployed ]
}
helm_log_has() { # TEXT: a run of the helm job printed TEXT
	local p prev
	k GET "/api/v1/namespaces/kube-system/pods?labelSelector=job-name%3Dhelm-install-logs" >/dev/null || return 1
	for p in $(jget '.items[]?.metadata.name'); do
		for prev in true false; do
			[ "$(k GET "/api/v1/namespaces/kube-system/pods/$p/log?previous=$prev")" = 200 ] || continue
			case $(<"$TESTTMP/k.json") in *"$1"*) return 0 ;; esac
		done
	done
	return 1
}

# values NODEPORT SCRAPE-CONFIGS [CLIENT-URL]: the provisioner's values (JSON
# text) in $TESTTMP/values.json
JOURNAL_JOB='- job_name: journal
  journal:
    path: /var/log/journal
    max_age: 12h
    labels: {job: systemd-journal}
  relabel_configs:
    - {source_labels: [__journal__hostname], target_label: host}
    - {source_labels: [__journal__systemd_unit], target_label: unit}'
SYSLOG_JOB='- job_name: syslog
  syslog:
    listen_address: "0.0.0.0:1514"
    labels: {job: syslog}
  relabel_configs:
    - {source_labels: [__syslog_message_hostname], target_label: host}
    - {source_labels: [__syslog_message_app_name], target_label: app}'
values() {
	jq -n --argjson np "$1" --arg scrape "$2" --arg url "${3:-http://logs-loki:3100/loki/api/v1/push}" '{
	  loki: {enabled: true, fullnameOverride: "logs-loki", isDefault: false,
	         config: {limits_config: {retention_period: "168h"}, compactor: {retention_enabled: true}}},
	  promtail: {enabled: true, fullnameOverride: "logs-promtail",
	    config: {clients: [{url: $url}], snippets: {extraScrapeConfigs: $scrape}},
	    extraPorts: {syslog: {name: "tcp-syslog", containerPort: 1514, protocol: "TCP",
	                          service: {type: "NodePort", port: 1514, nodePort: $np}}},
	    extraVolumes: [{name: "journal", hostPath: {path: "/var/log/journal"}},
	                   {name: "machine-id", hostPath: {path: "/etc/machine-id"}}],
	    extraVolumeMounts: [{name: "journal", mountPath: "/var/log/journal", readOnly: true},
	                        {name: "machine-id", mountPath: "/etc/machine-id", readOnly: true}]},
	  grafana: {enabled: false, sidecar: {datasources: {enabled: false}}}} | tojson' >"$TESTTMP/values.json"
}
upgrade() { # NODEPORT SCRAPE-CONFIGS [CLIENT-URL]: the HelmChart's valuesContent replaced
	values "$@"
	jq '{spec: {valuesContent: .}}' "$TESTTMP/values.json" >"$TESTTMP/patch.json"
	kok PATCH "$HC/logs" "$TESTTMP/patch.json" application/merge-patch+json
}

# --- before the chart --------------------------------------------------------------
poll 20 "the API" answers 200 /readyz
assert_eq 404 "$(k GET "$LOKI/ready")" "the proxy before the chart"
assert_eq 'services "logs-loki" not found' "$(jget .message)" "its message"

# --- a value the chart's schema refuses, then the install --------------------------
values 99999 "$JOURNAL_JOB
$SYSLOG_JOB"
jq '{apiVersion: "helm.cattle.io/v1", kind: "HelmChart", metadata: {name: "logs", namespace: "kube-system"},
	spec: {chart: "https://%{KUBERNETES_API}%/static/charts/logs.tgz", targetNamespace: "monitoring",
	       createNamespace: true, valuesContent: .}}' "$TESTTMP/values.json" >"$TESTTMP/hc.json"
kok POST "$HC" "$TESTTMP/hc.json"
poll 20 "helm's schema error" helm_log_has "Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the following chart(s):
loki-stack:
- promtail.extraPorts.syslog.service.nodePort: Must be less than or equal to 32767"
assert_eq 404 "$(k GET "$NSP/secrets/sh.helm.release.v1.logs.v1")" "no release after the refused install"
assert_eq 404 "$(k GET "$NSP/services/logs-loki")" "no Service after the refused install"

upgrade 30514 "$JOURNAL_JOB
$SYSLOG_JOB"
poll 20 "the release" release_revision 1
kok GET "$NSP/services"
assert_eq "logs-loki ClusterIP http-metrics:3100->http-metrics logs-promtail-syslog NodePort tcp-syslog:1514->tcp-syslog/30514" \
	"$(jget '[.items[] | "\(.metadata.name) \(.spec.type) " + (.spec.ports[0] |
		"\(.name):\(.port)->\(.targetPort)" + (if .nodePort then "/\(.nodePort)" else "" end))] | join(" ")')" \
	"the Services"
assert_eq "logs logs" "$(jget '[.items[].metadata.annotations["meta.helm.sh/release-name"]] | join(" ")')" \
	"their release"
kok GET /apis/apps/v1/namespaces/monitoring/daemonsets/logs-promtail
assert_eq 1 "$(jget .status.numberReady)" "Promtail on the one node"
assert_eq "/var/log/journal /var/log/journal true" "$(jget '.spec.template.spec |
	(.volumes[] | select(.name == "journal") | .hostPath.path) + " " +
	(.containers[0].volumeMounts[] | select(.name == "journal") | "\(.mountPath) \(.readOnly)")')" \
	"the journal's volume"
assert_eq "http-metrics:3101 tcp-syslog:1514" \
	"$(jget '[.spec.template.spec.containers[0].ports[] | "\(.name):\(.containerPort)"] | join(" ")')" \
	"Promtail's ports"

# --- Loki's readiness, and the proxy -----------------------------------------------
assert_eq 503 "$(k GET "$LOKI/ready")" "/ready right after the install"
assert_eq "Ingester not ready: waiting for 15s after being ready" "$(cat "$TESTTMP/k.json")" "Loki's 503"
assert_eq 200 "$(series '{job="syslog"}')" "series before Loki is ready"
assert_eq "" "$(sets)" "no stream before Loki is ready"
poll 20 "Loki ready" answers 200 "$LOKI/ready"
assert_eq ready "$(cat "$TESTTMP/k.json")" "Loki's /ready"
for form in logs-loki:3100 logs-loki:http-metrics http:logs-loki:http-metrics logs-loki; do
	assert_eq 200 "$(k GET "$NSP/services/$form/proxy/ready")" "the proxy as $form"
done
assert_eq 503 "$(k GET "$NSP/services/https:logs-loki:3100/proxy/ready")" "https:"
assert_eq 503 "$(k GET "$NSP/services/logs-loki:9999/proxy/ready")" "a port the Service does not have"
assert_eq 405 "$(k POST "$LOKI/loki/api/v1/push" /dev/null)" "a POST"
assert_eq 404 "$(k GET "$LOKI/loki/api/v1/nothing")" "another path"
assert_eq "404 page not found" "$(cat "$TESTTMP/k.json")" "Loki's 404"
assert_eq 404 "$(k GET "$NSP/services/http:nothing:3100/proxy/ready")" "a Service that does not exist"
assert_eq 'services "nothing" not found' "$(jget .message)" "its message"

# --- labels and series ------------------------------------------------------------------
kok GET "$LOKI/loki/api/v1/labels"
assert_eq "success app,container,host,job,namespace,node_name,pod,stream,unit" "$(jget '"\(.status) \(.data | join(","))"')" \
	"the label names"
kok GET "$LOKI/loki/api/v1/label/job/values"
assert_eq "kube-system/traefik syslog systemd-journal" "$(jget '.data | join(" ")')" "the jobs"
assert_eq 200 "$(k GET "$LOKI/loki/api/v1/label/host/values" "" "" -G --data-urlencode 'query={job="syslog"}')" \
	"host values of the syslog streams"
assert_eq "pve1 pve2" "$(jget '.data | join(" ")')" "the syslog hosts"
streams_are '{job="syslog"}' "app=pvedaemon,host=pve2,job=syslog app=pveproxy,host=pve1,job=syslog"
streams_are '{job="systemd-journal", unit=~"k3s.*"}' "host=k3s-server-01,job=systemd-journal,unit=k3s.service"
streams_are '{namespace="kube-system", container="traefik"}' \
	"app=traefik,container=traefik,job=kube-system/traefik,namespace=kube-system,node_name=k3s-server-01,pod=traefik-6d5f9c8b7-x2k4q,stream=stdout"
streams_are '{job=~"sys.+", host!="pve2"}' \
	"app=pveproxy,host=pve1,job=syslog host=k3s-server-01,job=systemd-journal,unit=k3s.service"
assert_eq 200 "$(series '{job="syslog", app="pvedaemon"}' '{unit="k3s.service"}')" "two match[]"
assert_eq "app=pvedaemon,host=pve2,job=syslog host=k3s-server-01,job=systemd-journal,unit=k3s.service" "$(sets)" \
	"their union"
streams_are '{facility="daemon"}' ""
streams "${STREAMS%]}, {\"job\": \"syslog\", \"host\": \"pve3\", \"app\": \"pveproxy\"}]"
streams_are '{job="syslog", host="pve3"}' "app=pveproxy,host=pve3,job=syslog"

# --- selectors Loki refuses ---------------------------------------------------------------
assert_eq 400 "$(series '{job=syslog}')" "a value without quotes"
assert_eq "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING" \
	"$(cat "$TESTTMP/k.json")" "its message"
assert_eq 400 "$(series 'job="syslog"')" "no braces"
assert_eq "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER" "$(cat "$TESTTMP/k.json")" "its message"
assert_eq 400 "$(series '{job=~".*"}')" "only an empty-compatible matcher"
assert_contains "$(cat "$TESTTMP/k.json")" "queries require at least one regexp or equality matcher" "its message"
assert_eq 400 "$(series '{job="syslog"} |= "error"')" "a line filter"
assert_eq "only label matchers are supported" "$(cat "$TESTTMP/k.json")" "its message"
assert_eq 400 "$(series '{job="syslog"}' '{}')" "one bad selector of two"
assert_eq 400 "$(k GET "$LOKI/loki/api/v1/series")" "no match[]"

# --- the syslog job taken out; the chart's default client URL -------------------------
upgrade 30514 "$JOURNAL_JOB"
poll 20 "revision 2" release_revision 2
assert_eq 200 "$(k GET "$LOKI/ready")" "Loki stays ready (loki.* unchanged)"
streams_are '{job="syslog"}' ""
streams_are '{unit="k3s.service"}' "host=k3s-server-01,job=systemd-journal,unit=k3s.service"
kok GET "$LOKI/loki/api/v1/label/job/values"
assert_eq "kube-system/traefik systemd-journal" "$(jget '.data | join(" ")')" "the jobs without syslog"
upgrade 30514 "$JOURNAL_JOB
$SYSLOG_JOB" 'http://{{ .Release.Name }}:3100/loki/api/v1/push'
poll 20 "revision 3" release_revision 3
kok GET "$LOKI/loki/api/v1/labels"
assert_eq "" "$(jget '.data | join(",")')" "nothing shipped to http://logs:3100"
upgrade 30514 "$JOURNAL_JOB
$SYSLOG_JOB" 'http://logs-loki.monitoring.svc.cluster.local:3100/loki/api/v1/push'
poll 20 "revision 4" release_revision 4
streams_are '{job="syslog", host="pve1"}' "app=pveproxy,host=pve1,job=syslog"

# --- uninstalled ---------------------------------------------------------------------------
kok DELETE "$HC/logs"
poll 20 "the HelmChart's removal" answers 404 "$HC/logs"
kok GET "$NSP/services"
assert_eq "" "$(jget '[.items[].metadata.name] | join(" ")')" "the Services left after the uninstall"
assert_eq 404 "$(k GET /apis/apps/v1/namespaces/monitoring/daemonsets/logs-promtail)" "the DaemonSet after the uninstall"
assert_eq 404 "$(k GET "$LOKI/ready")" "the proxy after the uninstall"
echo "ok"
