#!/bin/bash
# The lab's logs against the simulators (docs/monitoring.md, "The logs"):
# the lab of t-monitoring.sh with monitoring.logs: the log store's chart (a
# stand-in of ours laid out as Grafana's loki-stack,
# tests/data/logs/loki-stack) beside the metrics stack's. The Kubernetes
# simulator installs both as K3s's helm controller does, holds the logs'
# values to the stand-in's schema, renders Loki's and the agent's Services
# from them, and answers Loki's /ready and series API through its service
# proxy with the streams --log-streams FILE says the agent has shipped —
# only those the values' Promtail configuration would produce.
# Checked from the outside:
#   - HelmChart kube-system/logs: Loki with the retention, the journal and
#     syslog jobs, the receiver on NodePort 30514; the chart on every
#     server; the metrics chart's Grafana loading labelled data sources;
#   - the data source ConfigMap the monitoring step writes;
#   - the step done only once Loki has every source (each node's syslog,
#     each K3s VM's journal, Traefik's access log), one verification row
#     per source;
#   - a converged re-run writes nothing to the Kubernetes API;
#   - a node whose logs do not arrive: the step fails naming it; arriving,
#     a re-run passes.
# Under ASan (LABEL=asan) it stops after the converged re-run.
# timeout: 420
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

dns_edge_init
printf 'grafana s3cret pw\n' >"$TESTTMP/grafana.pw"
mkdir -p "$A/charts" "$A/images"
for c in monitoring/kube-prometheus-stack:kube-prometheus-stack-66.2.1 logs/loki-stack:loki-stack-2.10.2; do
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TOP/tests/data/${c%%/*}" \
		-czf "$A/charts/${c#*:}.tgz" "$(basename "${c%%:*}")"
done
printf 'loki image stand-in\n' >"$A/images/loki-2.9.3.tar"
"$PY" - "$TESTTMP/cluster.yaml" <<'PYEOF'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("  - {name: kube-vip, file: k3s/kube-vip.tar}",
              "  - {name: kube-vip, file: k3s/kube-vip.tar}\n"
              "  - {name: monitoring-chart, file: charts/kube-prometheus-stack-66.2.1.tgz}\n"
              "  - {name: loki-chart, file: charts/loki-stack-2.10.2.tgz}\n"
              "  - {name: loki-image, file: images/loki-2.9.3.tar}")
s = s.replace("dash_pw]", "dash_pw, grafana_pw]")
s += """monitoring:
  grafana_password: {secret: grafana_pw}
  chart: monitoring-chart
  logs: {retention: 1w2d, chart: loki-chart, images: [loki-image]}
"""
open(p, "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }
printf '["10.0.0.11:9100", "10.0.0.12:9100", "10.0.0.13:9100"]\n' >"$TESTTMP/scrape-up.json"
# What the agent has shipped: each node's syslog (rsyslog), each K3s VM's
# journal, Traefik's pods' output.
streams() { # NODE... (the nodes whose syslog arrives)
	"$PY" - "$TESTTMP/streams.json" "$@" <<'PYEOF'
import json, os, sys
out = [{"job": "syslog", "host": n, "app": "devopslab"} for n in sys.argv[2:]]
out += [{"job": "systemd-journal", "host": v, "unit": "k3s.service"}
        for v in ("k3s-server-01", "k3s-server-02", "k3s-server-03", "k3s-worker-01", "k3s-worker-02")]
out.append({"namespace": "kube-system", "pod": "traefik-x7k2p", "container": "traefik"})
json.dump(out, open(sys.argv[1] + ".new", "w"))
os.rename(sys.argv[1] + ".new", sys.argv[1])
PYEOF
}
streams pve1 pve2 pve3

lab_start --scrape-up "$TESTTMP/scrape-up.json" --prometheus-ms 300 --log-streams "$TESTTMP/streams.json" --loki-ms 300
log_args() { lab_args "${1:-60}" --grafana-password-file "$TESTTMP/grafana.pw"; }
log_args

# ---- first run: both stacks installed, every source's logs in Loki ------------------------

lab_form
grep -q "Loki has the logs of all 9 sources of the plan" <<<"$OUT" || { echo "$OUT" >&2; fail "the logs are not reported"; }
for src in "node pve2" "journal of k3s-worker-01" "Traefik's access log"; do
	grep -q "^logs .*$src .*yes .*1 stream" <<<"$OUT" || { echo "$OUT" >&2; fail "no passing logs row for $src"; }
done
k3s_kubeconfig_pems
kget /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/logs >"$TESTTMP/hc.json" || fail "no HelmChart logs"
kget /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/monitoring >"$TESTTMP/hc-mon.json" || fail "no HelmChart monitoring"
kget /api/v1/namespaces/monitoring/configmaps/devopslab-datasource-loki >"$TESTTMP/ds.json" || fail "no data source"
kget /api/v1/namespaces/monitoring/services/logs-promtail-syslog >"$TESTTMP/syslog-svc.json" || fail "no syslog receiver"
"$PY" - "$TESTTMP" <<'PYEOF' || fail "the log store's objects"
import json, sys, yaml
d = sys.argv[1]
def j(n): return json.load(open("%s/%s.json" % (d, n)))
hc = j("hc")["spec"]
assert hc["chart"].endswith("/static/charts/logs.tgz") and hc["targetNamespace"] == "monitoring", hc
v = yaml.safe_load(hc["valuesContent"])
assert v["loki"]["fullnameOverride"] == "logs-loki", v["loki"]
assert v["loki"]["config"]["limits_config"]["retention_period"] == "1w2d", v["loki"]["config"]
jobs = {x["job_name"]: x for x in yaml.safe_load(v["promtail"]["config"]["snippets"]["extraScrapeConfigs"])}
assert jobs["journal"]["journal"]["path"] == "/var/log/journal" and jobs["syslog"]["syslog"]["listen_address"] == "0.0.0.0:1514", jobs
mon = yaml.safe_load(j("hc-mon")["spec"]["valuesContent"])
assert mon["grafana"]["sidecar"]["datasources"] == {"enabled": True, "label": "grafana_datasource", "labelValue": "1"}, mon["grafana"]
ds = j("ds")
assert ds["metadata"]["labels"]["grafana_datasource"] == "1", ds["metadata"]
src = yaml.safe_load(ds["data"]["loki.yaml"])["datasources"][0]
assert src["type"] == "loki" and src["url"] == "http://logs-loki.monitoring.svc:3100", src
port = j("syslog-svc")["spec"]["ports"][0]
assert j("syslog-svc")["spec"]["type"] == "NodePort" and port["nodePort"] == 30514, port
PYEOF
k3s_guest_files "$TESTTMP/guestfs"
cmp -s "$A/charts/loki-stack-2.10.2.tgz" "$TESTTMP/guestfs/k3s-server-03/var/lib/rancher/k3s/server/static/charts/logs.tgz" ||
	fail "the log store's chart is not on k3s-server-03"
cmp -s "$A/images/loki-2.9.3.tar" "$TESTTMP/guestfs/k3s-worker-02/var/lib/rancher/k3s/agent/images/loki-2.9.3.tar" ||
	fail "the log store's image is not on k3s-worker-02"

# ---- a converged re-run writes nothing ----------------------------------------------------

lab_edge_serve
w0=$(k8s_mutations)
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the converged re-run exited $RC"; }
[ "$(k8s_mutations)" = "$w0" ] || fail "the converged re-run wrote to the Kubernetes API ($w0 -> $(k8s_mutations))"
lab_secret_absent "grafana s3cret pw" "Grafana's password"
[ "${LABEL:-}" = asan ] && exit 0

# ---- a node whose logs do not arrive: named; arriving, a re-run passes ------------------

streams pve1 pve2
log_args 6
lab_run1 --verify-timeout 2
[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "a node without logs passed"; }
grep -q "error: cluster/monitoring: the metrics and logs are not all there after 6 s: 3 of 3 targets up; no logs of node pve3 in Loki yet ({job=\"syslog\",host=\"pve3\"})" \
	<<<"$OUT" || { echo "$OUT" >&2; fail "the node without logs is not named"; }
streams pve1 pve2 pve3
log_args
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run with every node's logs again exited $RC"; }
exit 0
