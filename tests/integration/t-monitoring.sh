#!/bin/bash
# The lab's metrics against the simulators (docs/monitoring.md): the lab of
# t-edge.sh (three simulated Proxmox VE nodes, K3s with kube-vip, one
# Technitium DNS VM, the edge) with a monitoring section: the stack's chart
# (a stand-in of ours, tests/data/monitoring/kube-prometheus-stack) and an
# image tarball from the assets, Grafana's password, an extra scrape job,
# both UIs at the edge. The Kubernetes simulator installs the chart as K3s's
# helm controller does, renders the stack's Services from its values, and
# answers Prometheus's /api/v1/targets and Grafana's /api/health through
# its service proxy, each target up or down as --scrape-up FILE says.
# Checked from the outside:
#   - the HelmChart kube-system/monitoring with the plan's values: the
#     nodes' exporters, Traefik by service discovery, the manifest's job,
#     the retention, Grafana's admin from a Secret; the chart on every
#     server and the image on every K3s VM;
#   - Secret monitoring/devopslab-grafana-admin with the password (never in
#     the output or the report), the three dashboards' ConfigMaps with the
#     sidecar's label;
#   - Prometheus's targets through the API server as the step and the
#     verification read them: one row per job, all up;
#   - the UIs at the edge: IngressRoutes in namespace monitoring, verified
#     through the edge stand-in; the report's consoles and credential;
#   - a converged re-run writes nothing to the Kubernetes API;
#   - a node's exporter down: the step fails naming it with Prometheus's
#     lastError; up again, a re-run passes.
# Under ASan (LABEL=asan) it stops after the converged re-run.
# timeout: 420
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

dns_edge_init
GRAFANA_PW='grafana s3cret pw'
printf '%s\n' "$GRAFANA_PW" >"$TESTTMP/grafana.pw"
mkdir -p "$A/charts" "$A/images"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TOP/tests/data/monitoring" \
	-czf "$A/charts/kube-prometheus-stack-66.2.1.tgz" kube-prometheus-stack
printf 'prometheus image stand-in\n' >"$A/images/prometheus-v2.55.1.tar"
"$PY" - "$TESTTMP/cluster.yaml" <<'PYEOF'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("  - {name: kube-vip, file: k3s/kube-vip.tar}",
              "  - {name: kube-vip, file: k3s/kube-vip.tar}\n"
              "  - {name: monitoring-chart, file: charts/kube-prometheus-stack-66.2.1.tgz}\n"
              "  - {name: prometheus-image, file: images/prometheus-v2.55.1.tar}")
s = s.replace("dash_pw]", "dash_pw, grafana_pw]")
s += """monitoring:
  retention: 30d
  grafana_password: {secret: grafana_pw}
  chart: monitoring-chart
  images: [prometheus-image]
  scrape_targets:
    - {name: pbs, targets: ["10.0.0.60:8007"], metrics_path: /api2/prometheus/metrics, scheme: https}
  hosts: {grafana: grafana.home.arpa, prometheus: prometheus.home.arpa}
"""
open(p, "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }
# What answers on the simulated LAN: every node's exporter and the PBS.
scrape_up() { # HOST:PORT...
	"$PY" -c 'import json, sys; json.dump(sys.argv[2:], open(sys.argv[1] + ".new", "w"))' "$TESTTMP/scrape-up.json" "$@"
	mv "$TESTTMP/scrape-up.json.new" "$TESTTMP/scrape-up.json"
}
scrape_up 10.0.0.11:9100 10.0.0.12:9100 10.0.0.13:9100 10.0.0.60:8007

lab_start --scrape-up "$TESTTMP/scrape-up.json" --prometheus-ms 300
mon_args() { lab_args "${1:-60}" --grafana-password-file "$TESTTMP/grafana.pw"; }
mon_args
no_secret_out() { lab_secret_absent "$GRAFANA_PW" "Grafana's password"; }

# ---- first run: the stack installed, every target up; nothing serves the edge yet ---------

lab_form
grep -q "Checking the lab's metrics: done" <<<"$OUT" || { echo "$OUT" >&2; fail "the monitoring step is not done"; }
grep -q "Prometheus scrapes all 4 targets of the plan; Grafana answers with 3 dashboards" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the targets and dashboards are not reported"; }
for j in proxmox-hosts pbs; do
	grep -q "^metrics .*Prometheus job $j .*yes" <<<"$OUT" || { echo "$OUT" >&2; fail "no passing metrics row for $j"; }
done
grep -q "^metrics .*Prometheus job proxmox-hosts .*3 of 3 targets up" <<<"$OUT" || { echo "$OUT" >&2; fail "3 hosts"; }
no_secret_out
k3s_kubeconfig_pems

kget /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/monitoring >"$TESTTMP/hc.json" || fail "no HelmChart"
kget /api/v1/namespaces/monitoring/secrets/devopslab-grafana-admin >"$TESTTMP/admin.json" || fail "no Grafana admin"
for d in hosts k3s traefik; do
	kget "/api/v1/namespaces/monitoring/configmaps/devopslab-dashboard-$d" >"$TESTTMP/dash-$d.json" ||
		fail "no dashboard $d"
done
for o in ingressroutes/devopslab-grafana ingressroutes/devopslab-prometheus middlewares/devopslab-allow; do
	kget "/apis/traefik.io/v1alpha1/namespaces/monitoring/$o" >"$TESTTMP/${o//\//-}.json" || fail "no $o"
done
kget /api/v1/namespaces/monitoring/services/http:monitoring-prometheus:9090/proxy/api/v1/targets \
	>"$TESTTMP/targets.json" || fail "Prometheus's targets through the API server"
"$PY" - "$TESTTMP" "$GRAFANA_PW" <<'PYEOF' || fail "the stack's objects"
import base64, json, sys, yaml
d, pw = sys.argv[1:]
def j(n): return json.load(open("%s/%s.json" % (d, n)))
hc = j("hc")["spec"]
assert hc["chart"].endswith("/static/charts/monitoring.tgz") and hc["targetNamespace"] == "monitoring", hc
v = yaml.safe_load(hc["valuesContent"])
assert v["fullnameOverride"] == "monitoring" and v["alertmanager"] == {"enabled": False}, v
spec = v["prometheus"]["prometheusSpec"]
assert spec["retention"] == "30d", spec
jobs = {x["job_name"]: x for x in spec["additionalScrapeConfigs"]}
assert list(jobs) == ["proxmox-hosts", "traefik", "pbs"], list(jobs)
assert jobs["proxmox-hosts"]["static_configs"] == [{"targets": ["10.0.0.11:9100", "10.0.0.12:9100", "10.0.0.13:9100"]}]
assert jobs["traefik"]["kubernetes_sd_configs"] == [{"role": "endpoints", "namespaces": {"names": ["kube-system"]}}]
assert jobs["pbs"]["scheme"] == "https" and jobs["pbs"]["metrics_path"] == "/api2/prometheus/metrics", jobs["pbs"]
assert v["grafana"]["admin"] == {"existingSecret": "devopslab-grafana-admin", "userKey": "admin-user",
                                 "passwordKey": "admin-password"}, v["grafana"]
data = {k: base64.b64decode(x).decode() for k, x in j("admin")["data"].items()}
assert data == {"admin-user": "admin", "admin-password": pw}, sorted(data)
for n in ("hosts", "k3s", "traefik"):
    cm = j("dash-" + n)
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1", cm["metadata"]
    dash = json.loads(cm["data"][n + ".json"])
    assert dash["uid"] == "devopslab-" + n and dash["panels"], dash["uid"]
r = j("ingressroutes-devopslab-grafana")["spec"]["routes"][0]
assert r["match"] == "Host(`grafana.home.arpa`)" and r["services"] == [{"name": "monitoring-grafana", "port": 80}], r
r = j("ingressroutes-devopslab-prometheus")["spec"]["routes"][0]
assert r["services"] == [{"name": "monitoring-prometheus", "port": 9090}], r
t = j("targets")
assert t["status"] == "success", t
up = {(x["labels"]["job"], x["labels"]["instance"]) for x in t["data"]["activeTargets"] if x["health"] == "up"}
assert {("proxmox-hosts", "10.0.0.13:9100"), ("pbs", "10.0.0.60:8007")} <= up, up
PYEOF
k3s_guest_files "$TESTTMP/guestfs"
cmp -s "$A/charts/kube-prometheus-stack-66.2.1.tgz" \
	"$TESTTMP/guestfs/k3s-server-02/var/lib/rancher/k3s/server/static/charts/monitoring.tgz" ||
	fail "the stack's chart is not on k3s-server-02"
cmp -s "$A/images/prometheus-v2.55.1.tar" \
	"$TESTTMP/guestfs/k3s-worker-02/var/lib/rancher/k3s/agent/images/prometheus-v2.55.1.tar" ||
	fail "the stack's image is not on k3s-worker-02"

# ---- the edge serves: everything answers; a re-run writes nothing ----------------------

lab_edge_serve grafana.home.arpa=302 prometheus.home.arpa=200
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run with the edge served exited $RC"; }
for h in grafana prometheus; do
	grep -q "^edge .*https://$h.home.arpa/ .*yes .*certificate by the cluster CA" <<<"$OUT" ||
		{ echo "$OUT" >&2; fail "$h's UI not verified through the edge"; }
done
"$PY" - "$TESTTMP/report/report.json" "$TOP/docs/report.schema.json" <<'PYEOF' || fail "the report"
import json, sys, jsonschema
r = json.load(open(sys.argv[1]))
jsonschema.validate(r, json.load(open(sys.argv[2])))
urls = {c["url"] for c in r["consoles"]}
assert {"https://grafana.home.arpa/", "https://prometheus.home.arpa/"} <= urls, urls
assert {"what": "Grafana", "user": "admin", "secret": "grafana_pw", "file": None, "kubernetes_secret": None,
        "key": None} in r["credentials"], r["credentials"]
assert sum(1 for x in r["verification"] if x["check"] == "metrics" and x["ok"]) == 2, r["verification"]
PYEOF
w0=$(k8s_mutations)
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the converged re-run exited $RC"; }
[ "$(k8s_mutations)" = "$w0" ] || fail "the converged re-run wrote to the Kubernetes API ($w0 -> $(k8s_mutations))"
no_secret_out
[ "${LABEL:-}" = asan ] && exit 0

# ---- a node's exporter down: Prometheus's words; up again, a re-run passes -------------

scrape_up 10.0.0.11:9100 10.0.0.12:9100 10.0.0.60:8007
mon_args 6
lab_run1 --verify-timeout 2
[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "a target down passed"; }
grep -q "error: cluster/monitoring: the metrics are not all there after 6 s: 3 of 4 targets up; proxmox-hosts 10.0.0.13:9100: down, .*connection refused" \
	<<<"$OUT" || { echo "$OUT" >&2; fail "the target down is not reported with Prometheus's error"; }
scrape_up 10.0.0.11:9100 10.0.0.12:9100 10.0.0.13:9100 10.0.0.60:8007
mon_args
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run with every target up again exited $RC"; }
no_secret_out
exit 0
