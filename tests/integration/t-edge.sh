#!/bin/bash
# The Traefik edge against the simulators: three simulated Proxmox VE nodes,
# K3s (three servers with kube-vip, two agents) with K3s's packaged Traefik
# (k8s_sim.py --traefik-chart), one Technitium DNS VM; the first node's
# firstboot goes through the edge steps and the verification. Traefik itself
# cannot run here: a loopback HTTPS server (tests/sim/edge_https.py) stands
# in for it, serving the TLS secret the provisioner made, and the
# verification reaches it for edge.ip:443 (--edge-connect). Checked:
#   - the HelmChartConfig passes the chart's own values schema (the helm job
#     completes) and the Service gets edge.ip from kube-vip, not ServiceLB;
#   - the wildcard certificate verifies against the cluster CA (openssl
#     verify) for *.home.arpa; the TLSStore, the routes, the Endpoints of
#     the consoles, the middlewares from the manifest; the dashboard's
#     htpasswd line checks with the password (htpasswd -v, apache2-utils);
#   - no edge server yet: the verification fails on the edge rows; once it
#     serves the provisioner's certificate, a re-run passes with the table
#     all "yes", and sends no write to the Kubernetes API;
#   - a route changed by hand is set back;
#   - K3s upgraded to chart 39.0.7: the values move to v39's form and pass
#     its stricter schema;
#   - a console the manifest drops loses its objects, a hand-made one stays;
#   - the verification fails on another CA's certificate, an expired one,
#     one for another name, and on a name the DNS server does not answer;
#   - certificate: acme-dns01 against Let's Encrypt's test server (pebble,
#     rejecting 30% of nonces, asking the Technitium simulator's knotd); a
#     CA that cannot see the records fails the step in its words:
#     the certificate verifies against pebble's root for both names, the
#     challenge's TXT records are gone again, the account key is kept in
#     its Secret, the verification trusts the ACME CA; a re-run orders
#     nothing; back to internal-ca, the cluster CA's certificate returns.
# Under ASan (LABEL=asan) it stops after the hand change: the steps' main
# paths run there; the rest is the same C code with other inputs.
# timeout: 420
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"
. "$TOP/tests/sim/acme-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"
command -v htpasswd >/dev/null || fail "htpasswd is missing (apache2-utils; scripts/install-deps.sh installs it)"

dns_edge_init
DASH_PW=$(cat "$TESTTMP/dash.pw")
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }

INST=$TESTTMP/tn-installed
mkdir -p "$INST"
FB_PIN=local
SIM_TASK_MS=100 sim_start_all --guest-boot-ms 200 --technitium-dir "$INST"
k8s_start --promote-ms 300 --ready-ms 200 --helm-ms 300 --traefik-chart 34.2.0
technitium_start_installed dns-01 "$INST/dns-01"
EDGE_PORT=$(free_port)
DNSQ=127.0.0.1:$TN_DNS_PORT_dns_01
edge_args() {
	k3s_args
	ARGS=("${K3S[@]}" --k3s-timeout 60
		--dns-password-file "$TESTTMP/dns.pw" --dns-timeout 60
		--dns-connect "dns-01=127.0.0.1:${TN_URL_dns_01##*:}" --dns-query "dns-01=$DNSQ"
		--edge-password-file "$TESTTMP/dash.pw" --edge-timeout 60 --edge-connect "127.0.0.1:$EDGE_PORT")
}
edge_args

# The edge server: edge_https.py with a certificate and key; routes as
# Traefik would answer them (the dashboard asks for credentials).
EDGE_PID=
edge_serve() { # CERT KEY
	[ -z "$EDGE_PID" ] || { kill "$EDGE_PID" 2>/dev/null; wait "$EDGE_PID" 2>/dev/null || true; }
	: >"$TESTTMP/edge.log"
	bg_start "$PY" "$SIM/edge_https.py" --port "$EDGE_PORT" --cert "$1" --key "$2" \
		--route pve.home.arpa=200 --route dns.home.arpa=200 --route traefik.home.arpa=401 \
		--record-dir "$TESTTMP/edge-rec" >>"$TESTTMP/edge.log" 2>&1
	EDGE_PID=$!
	for _ in $(seq 100); do
		curl -sk -o /dev/null "https://127.0.0.1:$EDGE_PORT/" && return 0
		sleep 0.1
	done
	cat "$TESTTMP/edge.log" >&2
	fail "the edge stand-in did not start"
}

# ---- first run: everything made; nothing serves the edge yet -----------------------

form_fail_ok() { # the members' runs; the first node's ends in the verification
	fb_bg pve2 "${ARGS[@]}"; fb_bg pve3 "${ARGS[@]}"; fb_bg pve1 "${ARGS[@]}" --verify-timeout 2
	fb_wait pve2; fb_formed pve2
	fb_wait pve3; fb_formed pve3
	fb_wait pve1
}
form_fail_ok
[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "the verification passed with nothing serving the edge"; }
grep -q "error: cluster/verify: .*checks did not answer as planned" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the first run did not fail in the verification"; }
grep -q "^edge .*https://pve.home.arpa/ .*NO" <<<"$OUT" || { echo "$OUT" >&2; fail "no failing edge row"; }
for t in "Deploying the Traefik edge on 10.0.0.30" "Issuing the edge certificates" \
	"Routing the web consoles through the edge"; do
	grep -q "$t: done" <<<"$OUT" || { echo "$OUT" >&2; fail "step '$t' not done"; }
done
k3s_kubeconfig_pems

ES=/apis/traefik.io/v1alpha1/namespaces/devopslab-edge
kget /apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs/traefik >"$TESTTMP/hcc.json" ||
	fail "no HelmChartConfig"
kget /api/v1/namespaces/kube-system/services/traefik >"$TESTTMP/svc.json" || fail "no Service traefik"
kget /api/v1/namespaces/kube-system/secrets/devopslab-edge-tls >"$TESTTMP/tls.json" || fail "no TLS secret"
kget /apis/traefik.io/v1alpha1/namespaces/kube-system/tlsstores/default >"$TESTTMP/store.json" || fail "no TLSStore"
for o in ingressroutes/proxmox ingressroutes/technitium ingressroutes/dashboard middlewares/allow \
	middlewares/ratelimit middlewares/dashboard-auth serverstransports/cluster-ca; do
	kget "$ES/$o" >"$TESTTMP/${o//\//-}.json" || fail "no $o"
done
kget /api/v1/namespaces/devopslab-edge/endpoints/proxmox >"$TESTTMP/ep.json" || fail "no Endpoints proxmox"
kget /api/v1/namespaces/devopslab-edge/secrets/dashboard-auth >"$TESTTMP/auth.json" || fail "no dashboard-auth"
"$PY" - "$TESTTMP" <<'PYEOF' || fail "the edge's objects"
import base64, json, sys, yaml
d = sys.argv[1]
def j(n): return json.load(open("%s/%s.json" % (d, n)))
v = yaml.safe_load(j("hcc")["spec"]["valuesContent"])
assert v["deployment"]["kind"] == "DaemonSet", v
assert v["service"]["spec"]["externalTrafficPolicy"] == "Local", v
# Prometheus's metrics with a Service of their own; access logs as JSON
assert v["metrics"]["prometheus"] == {"entryPoint": "metrics", "addRoutersLabels": True, "service": {"enabled": True}}, v
assert v["logs"]["access"] == {"enabled": True, "format": "json"}, v
assert v["ports"]["web"]["redirections"]["entryPoint"] == {"to": "websecure", "scheme": "https", "permanent": True}, v
svc = j("svc")
assert "loadBalancerClass" not in svc["spec"], svc["spec"]
assert svc["spec"]["externalTrafficPolicy"] == "Local", svc["spec"]
assert svc["metadata"]["annotations"]["kube-vip.io/loadbalancerIPs"] == "10.0.0.30", svc["metadata"]
assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == "10.0.0.30", svc["status"]
tls = j("tls")
assert tls["type"] == "kubernetes.io/tls", tls["type"]
open(d + "/edge.crt", "wb").write(base64.b64decode(tls["data"]["tls.crt"]))
open(d + "/edge.key", "wb").write(base64.b64decode(tls["data"]["tls.key"]))
assert j("store")["spec"]["defaultCertificate"]["secretName"] == "devopslab-edge-tls"
r = j("ingressroutes-proxmox")["spec"]
assert r["entryPoints"] == ["websecure"] and r["routes"][0]["match"] == "Host(`pve.home.arpa`)", r
s = r["routes"][0]["services"][0]
assert (s["name"], s["port"], s["scheme"], s["serversTransport"]) == ("proxmox", 8006, "https", "cluster-ca"), s
assert s["sticky"]["cookie"]["name"] == "devopslab_proxmox", s  # three nodes: a session stays on one
assert [m["name"] for m in r["routes"][0]["middlewares"]] == ["allow", "ratelimit"], r
r = j("ingressroutes-technitium")["spec"]
assert r["routes"][0]["match"] == "Host(`dns.home.arpa`)" and r["routes"][0]["services"][0]["port"] == 53443, r
r = j("ingressroutes-dashboard")["spec"]["routes"][0]
assert r["match"].startswith("Host(`traefik.home.arpa`)"), r
assert r["services"] == [{"name": "api@internal", "kind": "TraefikService"}], r
assert [m["name"] for m in r["middlewares"]] == ["allow", "ratelimit", "dashboard-auth"], r
assert j("middlewares-allow")["spec"]["ipAllowList"]["sourceRange"] == ["10.0.0.0/24", "192.168.50.0/24"]
assert j("middlewares-ratelimit")["spec"]["rateLimit"] == {"average": 50, "burst": 100}
assert j("middlewares-dashboard-auth")["spec"]["basicAuth"]["secret"] == "dashboard-auth"
assert j("serverstransports-cluster-ca")["spec"]["rootCAs"] == [{"secret": "cluster-ca"}]
ep = j("ep")["subsets"][0]
assert sorted(a["ip"] for a in ep["addresses"]) == ["10.0.0.11", "10.0.0.12", "10.0.0.13"], ep
assert ep["ports"] == [{"name": "https", "port": 8006, "protocol": "TCP"}], ep
users = base64.b64decode(j("auth")["data"]["users"]).decode()
assert users.startswith("admin:$2y$"), users[:10]
open(d + "/htpasswd", "w").write(users + "\n")
PYEOF
htpasswd -vb "$TESTTMP/htpasswd" admin "$DASH_PW" >/dev/null 2>&1 || fail "the dashboard's hash does not check"
htpasswd -vb "$TESTTMP/htpasswd" admin "wrong" >/dev/null 2>&1 && fail "the dashboard's hash takes any password"
openssl verify -CAfile "$TESTTMP/ca.pem" "$TESTTMP/edge.crt" >/dev/null || fail "the edge certificate is not the CA's"
openssl x509 -in "$TESTTMP/edge.crt" -noout -ext subjectAltName | grep -q "DNS:\*.home.arpa, DNS:home.arpa" ||
	fail "the edge certificate does not name *.home.arpa and home.arpa"
grep -q "dashboard s3cret\|$(base64 -w0 "$TESTTMP/dash.pw")" "$TESTTMP"/fb-*.out && fail "a secret in the output"

# ---- the edge serves the provisioner's certificate: the verification passes -----------

edge_serve "$TESTTMP/edge.crt" "$TESTTMP/edge.key"
w0=$(k8s_mutations)
fb_bg pve1 "${ARGS[@]}" --verify-timeout 10
fb_wait pve1
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the re-run with the edge served exited $RC"; }
for h in pve dns; do
	grep -q "^edge .*https://$h.home.arpa/ .*yes .*HTTP 200, certificate by the cluster CA" <<<"$OUT" ||
		{ echo "$OUT" >&2; fail "no passing edge row for $h"; }
done
grep -q "^edge .*https://traefik.home.arpa/dashboard/ .*yes .*HTTP 401" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the dashboard did not refuse without credentials"; }
grep -q "answered as planned" <<<"$OUT" && ! grep -q " NO " <<<"$OUT" || { echo "$OUT" >&2; fail "a row is not yes"; }
[ "$(k8s_mutations)" = "$w0" ] || fail "the converged re-run wrote to the Kubernetes API ($w0 -> $(k8s_mutations))"
"$PY" -c '
import json, sys
seen = {json.loads(l)["host"] for l in open(sys.argv[1])}
assert {"pve.home.arpa", "dns.home.arpa", "traefik.home.arpa"} <= seen, seen' "$TESTTMP/edge-rec/edge-https.jsonl" ||
	fail "the verification did not reach every route through the edge"

# The report of that run (docs/operations.md): the consoles at the edge, the
# verification table as it was printed, the DNS servers to hand out, the
# kubeconfig; Ansible reads its inventory with the seed's kubernetes_nodes.
"$PY" - "$TESTTMP/report/report.json" "$TOP/docs/report.schema.json" <<'PYEOF' || fail "the report"
import json, sys, jsonschema
r = json.load(open(sys.argv[1]))
jsonschema.validate(r, json.load(open(sys.argv[2])))
assert r["node"] == "pve1" and r["outcome"] == "complete" and r["stopped_at"] is None, r["outcome"]
urls = {c["url"] for c in r["consoles"]}
for u in ("https://pve.home.arpa/", "https://dns.home.arpa/", "https://traefik.home.arpa/dashboard/",
          "https://10.0.0.11:8006/", "https://10.0.0.41:53443/"):
    assert u in urls, (u, urls)
assert r["kubeconfig"]["file"].endswith("/report/kubeconfig") and r["kubeconfig"]["api"].startswith("https://"), r
assert r["dns"] == {"zone": "home.arpa", "dhcp_servers": ["10.0.0.41"]}, r["dns"]
secrets = {c["secret"] for c in r["credentials"]}
assert {"dns_pw", "dash_pw", "k3s_token"} <= secrets, secrets
v = r["verification"]
assert v and all(x["ok"] for x in v) and {x["check"] for x in v} == {"quorum", "vm", "k3s node", "dns", "edge"}, v
assert r["totals"]["done"] == r["totals"]["steps"], r["totals"]
PYEOF
ansible-inventory -i "$TESTTMP/report/inventory.yml" --list >"$TESTTMP/inv.json" || fail "ansible-inventory refused"
"$PY" - "$TESTTMP/inv.json" <<'PYEOF' || fail "the inventory as Ansible reads it"
import json, sys
inv = json.load(open(sys.argv[1]))
assert sorted(inv["kubernetes_nodes"]["children"]) == ["srv", "wrk"], inv["kubernetes_nodes"]
assert len(inv["srv"]["hosts"]) == 3 and len(inv["wrk"]["hosts"]) == 2 and list(inv["dns"]["hosts"]) == ["dns-01"], inv
hv = inv["_meta"]["hostvars"]
assert all(hv[h]["proxmox_vmid"] >= 100 and hv[h]["proxmox_node"].startswith("pve") for h in inv["srv"]["hosts"])
PYEOF
grep -rqF -e "$DASH_PW" -e "$(cat "$TESTTMP/dns.pw")" "$TESTTMP/report" && fail "a secret value in the report"

# A route changed by hand is set back.
curl -sS --fail --cacert "$TESTTMP/kc-ca.pem" --cert "$TESTTMP/kc-cert.pem" --key "$TESTTMP/kc-key.pem" \
	-X PATCH -H "Content-Type: application/merge-patch+json" \
	--data '{"spec":{"routes":[{"kind":"Rule","match":"Host(`evil.example`)","services":[{"name":"proxmox","port":8006}]}]}}' \
	"$K8S_URL$ES/ingressroutes/proxmox" >/dev/null || fail "changing the route by hand"
fb_bg pve1 "${ARGS[@]}" --verify-timeout 10
fb_wait pve1
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run after a hand change exited $RC"; }
grep -q "ingressroutes/proxmox differs from ours: setting it back" <<<"$OUT" || { echo "$OUT" >&2; fail "not reported"; }
kget "$ES/ingressroutes/proxmox" | grep -q 'Host(`pve.home.arpa`)' || fail "the route was not set back"

# ---- certificate: acme-dns01, ordered from pebble --------------------------------------

cp "$TESTTMP/cluster.yaml" "$TESTTMP/cluster-internal.yaml"
acme_manifest() { # the manifest with certificate acme-dns01 at the running pebble
	cp "$TESTTMP/cluster-internal.yaml" "$TESTTMP/cluster.yaml"
	"$PY" - "$TESTTMP/cluster.yaml" "$ACME_URL" <<'PYEOF'
import sys
p, url = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("edge:\n", "edge:\n  certificate: acme-dns01\n  acme: {email: ops@example.org, server: '%s'}\n" % url, 1)
open(p, "w").write(s)
PYEOF
}
# A CA that cannot see the records (its DNS server answers nothing): the
# step fails with the CA's words, and the TXT records go again.
acme_start "$(free_port)"
acme_manifest
orders() { grep -c "Added order" "$ACME_LOG" || true; }
fb_bg pve1 "${ARGS[@]}" --acme-ca-file "$ACME_TRUST" --verify-timeout 1
fb_wait pve1
[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "edge-certs passed with a CA that cannot validate"; }
grep -q "error: cluster/edge/certificates: ACME: the ACME server did not validate .*home.arpa" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the failed validation is not reported with the CA's words"; }
[ -z "$(tn_dig "$TN_DNS_PORT_dns_01" _acme-challenge.home.arpa TXT)" ] || fail "TXT records left after a failed order"
acme_stop
acme_start "$TN_DNS_PORT_dns_01"
acme_manifest
# The stand-in still serves the cluster CA's certificate: trusting the ACME
# CA only, the verification refuses it.
fb_bg pve1 "${ARGS[@]}" --acme-ca-file "$ACME_TRUST" --verify-timeout 1
fb_wait pve1
[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "the verification trusted the cluster CA in acme-dns01 mode"; }
grep -q "the edge certificate is issued again: the certificate is not the trusted CA's" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the cluster CA's certificate was kept in acme-dns01 mode"; }
grep -q "ACME: \*.home.arpa validated" <<<"$OUT" && grep -q "ACME: home.arpa validated" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "pebble did not validate both names"; }
grep -q "Issuing the edge certificates: done" <<<"$OUT" || { echo "$OUT" >&2; fail "edge-certs not done"; }
grep -q "^edge .*https://pve.home.arpa/ .*NO .*not trusted" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the verification did not refuse the cluster CA's certificate"; }
kget /api/v1/namespaces/kube-system/secrets/devopslab-edge-tls >"$TESTTMP/tls.json" || fail "no TLS secret"
kget /api/v1/namespaces/kube-system/secrets/devopslab-acme-account >"$TESTTMP/acct.json" || fail "no ACME account secret"
"$PY" - "$TESTTMP" <<'PYEOF' || fail "the ACME secrets"
import base64, json, sys
d = sys.argv[1]
tls = json.load(open(d + "/tls.json"))["data"]
chain = base64.b64decode(tls["tls.crt"]).decode()
assert chain.count("BEGIN CERTIFICATE") >= 2, chain  # the leaf and pebble's intermediate
leaf, rest = chain.split("-----END CERTIFICATE-----", 1)
open(d + "/acme-leaf.pem", "w").write(leaf + "-----END CERTIFICATE-----\n")
open(d + "/acme-chain.pem", "w").write(rest.strip() + "\n")
open(d + "/acme.crt", "w").write(chain)
open(d + "/acme.key", "wb").write(base64.b64decode(tls["tls.key"]))
key = base64.b64decode(json.load(open(d + "/acct.json"))["data"]["key.pem"]).decode()
assert "PRIVATE KEY" in key, key[:40]
PYEOF
openssl verify -CAfile "$ACME_ROOT" -untrusted "$TESTTMP/acme-chain.pem" "$TESTTMP/acme-leaf.pem" >/dev/null ||
	fail "the ACME certificate does not verify against pebble's root"
openssl verify -CAfile "$TESTTMP/ca.pem" "$TESTTMP/acme-leaf.pem" >/dev/null 2>&1 &&
	fail "the ACME certificate verifies against the cluster CA"
openssl x509 -in "$TESTTMP/acme-leaf.pem" -noout -ext subjectAltName | grep -q "DNS:\*.home.arpa" &&
	openssl x509 -in "$TESTTMP/acme-leaf.pem" -noout -ext subjectAltName | grep -q "DNS:home.arpa" ||
	fail "the ACME certificate does not name *.home.arpa and home.arpa"
[ "$(orders)" = 1 ] || fail "$(orders) orders at pebble, want 1"
[ -z "$(tn_dig "$TN_DNS_PORT_dns_01" _acme-challenge.home.arpa TXT)" ] || fail "the challenge's TXT records are still there"
assert_eq 4 "$(tn_requests dns-01 'select(.path == "/api/zones/records/add" and .params.type == "TXT")' | wc -l)" \
	"TXT records written (one per authorization, for each of the two orders)"

# The stand-in serves it: the verification passes trusting the ACME CA; a
# re-run orders nothing and writes nothing.
edge_serve "$TESTTMP/acme.crt" "$TESTTMP/acme.key"
w0=$(k8s_mutations)
fb_bg pve1 "${ARGS[@]}" --acme-ca-file "$ACME_TRUST" --verify-timeout 10
fb_wait pve1
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run with the ACME certificate served exited $RC"; }
grep -q "^edge .*https://pve.home.arpa/ .*yes .*HTTP 200, certificate by the ACME CA" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "no passing edge row with the ACME certificate"; }
[ "$(orders)" = 1 ] || fail "the converged re-run ordered again"
[ "$(k8s_mutations)" = "$w0" ] || fail "the converged re-run wrote to the Kubernetes API"
grep -q "$(sed -n 2p "$TESTTMP/acme.key")" "$TESTTMP"/fb-*.out && fail "the certificate's key in the output"
acme_stop

# Back to the cluster CA: its certificate is issued again.
cp "$TESTTMP/cluster-internal.yaml" "$TESTTMP/cluster.yaml"
edge_serve "$TESTTMP/edge.crt" "$TESTTMP/edge.key"
fb_bg pve1 "${ARGS[@]}" --verify-timeout 10
fb_wait pve1
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run back on internal-ca exited $RC"; }
grep -q "issued the edge certificate for \*.home.arpa from the cluster CA" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the cluster CA's certificate was not issued again"; }

if [ "${LABEL:-}" = asan ]; then
	echo "ok (the main path; the rest runs without the sanitizers)"
	exit 0
fi

# ---- K3s upgraded: chart 39.0.7 and its form of the values ---------------------------

kill "$K8S_PID"
wait "$K8S_PID" 2>/dev/null || true
k8s_start --promote-ms 300 --ready-ms 200 --helm-ms 300 --traefik-chart 39.0.7
edge_args
fb_bg pve1 "${ARGS[@]}" --verify-timeout 10
fb_wait pve1
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run on chart 39.0.7 exited $RC"; }
kget /apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs/traefik >"$TESTTMP/hcc.json"
"$PY" -c '
import json, sys, yaml
v = yaml.safe_load(json.load(open(sys.argv[1]))["spec"]["valuesContent"])
assert "redirections" not in v["ports"]["web"], v
assert v["ports"]["web"]["http"]["redirections"]["entryPoint"]["to"] == "websecure", v' "$TESTTMP/hcc.json" ||
	fail "the values are not in chart 39's form"

# ---- a console the manifest drops: its objects go, hand-made ones stay ---------------

curl -sS --fail --cacert "$TESTTMP/kc-ca.pem" --cert "$TESTTMP/kc-cert.pem" --key "$TESTTMP/kc-key.pem" \
	-X POST -H "Content-Type: application/json" \
	--data '{"apiVersion":"traefik.io/v1alpha1","kind":"Middleware","metadata":{"name":"mine","namespace":"devopslab-edge"},"spec":{"stripPrefix":{"prefixes":["/x"]}}}' \
	"$K8S_URL$ES/middlewares" >/dev/null || fail "making a middleware by hand"
cp "$TESTTMP/cluster.yaml" "$TESTTMP/cluster-with-dashboard.yaml"
sed -i '/^  dashboard_host:/d; /^  dashboard_password:/d' "$TESTTMP/cluster.yaml"
fb_bg pve1 "${ARGS[@]}" --verify-timeout 10
fb_wait pve1
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run without the dashboard exited $RC"; }
for o in ingressroutes/dashboard middlewares/dashboard-auth; do
	grep -q "removing .*$o: the manifest no longer has it" <<<"$OUT" || { echo "$OUT" >&2; fail "$o not removed"; }
	kget "$ES/$o" >/dev/null 2>&1 && fail "$o is still there"
done
kget /api/v1/namespaces/devopslab-edge/secrets/dashboard-auth >/dev/null 2>&1 && fail "the dashboard's secret is still there"
kget "$ES/middlewares/mine" >/dev/null || fail "a middleware made by hand was removed"
grep -q "traefik.home.arpa/dashboard" <<<"$OUT" && fail "the verification still asks for the dashboard"
cp "$TESTTMP/cluster-with-dashboard.yaml" "$TESTTMP/cluster.yaml"

# ---- the verification must fail on a bad certificate or a missing record -------------

bad_run() { # WHAT PATTERN [extra firstboot args]
	local what=$1 pat=$2
	shift 2
	fb_bg pve1 "${ARGS[@]}" --verify-timeout 1 "$@"
	fb_wait pve1
	[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "the verification passed with $what"; }
	grep -q "$pat" <<<"$OUT" || { echo "$OUT" >&2; fail "no '$pat' with $what"; }
}
"$PY" "$SIM/edge_certs.py" --new-ca --out-cert "$TESTTMP/other-ca.pem" --out-key "$TESTTMP/other-ca.key"
"$PY" "$SIM/edge_certs.py" --ca-cert "$TESTTMP/other-ca.pem" --ca-key "$TESTTMP/other-ca.key" \
	--name '*.home.arpa' --name home.arpa --out-cert "$TESTTMP/o.crt" --out-key "$TESTTMP/o.key"
edge_serve "$TESTTMP/o.crt" "$TESTTMP/o.key"
bad_run "another CA's certificate" "^edge .*https://pve.home.arpa/ .*NO .*not trusted (not signed by the trusted CA"
"$PY" "$SIM/edge_certs.py" --ca-cert "$TESTTMP/ca.pem" --ca-key "$TESTTMP/ca.key" --expired \
	--name '*.home.arpa' --name home.arpa --out-cert "$TESTTMP/x.crt" --out-key "$TESTTMP/x.key"
edge_serve "$TESTTMP/x.crt" "$TESTTMP/x.key"
bad_run "an expired certificate" "^edge .*https://pve.home.arpa/ .*NO .*not trusted (certificate has expired"
"$PY" "$SIM/edge_certs.py" --ca-cert "$TESTTMP/ca.pem" --ca-key "$TESTTMP/ca.key" \
	--name '*.example.org' --out-cert "$TESTTMP/n.crt" --out-key "$TESTTMP/n.key"
edge_serve "$TESTTMP/n.crt" "$TESTTMP/n.key"
bad_run "a certificate for another name" "^edge .*https://pve.home.arpa/ .*NO .*not trusted (it does not name the host"

# A DNS server that does not know the consoles' names (an empty zone):
# the names do not resolve, and the verification says so.
edge_serve "$TESTTMP/edge.crt" "$TESTTMP/edge.key"
technitium_start bare
tn_use bare
tn_login
tn_ok /api/zones/create zone=home.arpa type=Primary >/dev/null
DNSQ=127.0.0.1:$TN_DNS_PORT_bare
edge_args
bad_run "a missing record" "^edge .*https://pve.home.arpa/ .*NO .*pve.home.arpa does not resolve"
echo "ok"
