#!/bin/bash
# scripts/demo-sim.sh BUNDLE PUBKEY SECRET_KEY SECRETS_ENV WORKDIR — the
# demo's first-boot phase, SIMULATED: Proxmox VE cannot run here, so each
# node of the example is a Proxmox VE API simulator (tests/sim/pve_sim.py:
# every request checked against the official 9.1 schema) on 127.0.0.1, and
# `devopslab firstboot` runs for every node from the signed bundle, exactly
# as the installed nodes run it, with --api pointing at the simulators: the
# cluster forms, then the first node checks the storage, makes the
# templates and VMs, and forms K3s in them through the guest agent, checked
# through a Kubernetes API simulator (tests/sim/k8s_sim.py: it learns from
# the Proxmox simulator which guests run K3s, with what configuration),
# then installs and configures Technitium DNS in the two DNS VMs: each is a
# Technitium API simulator (tests/sim/technitium_sim.py) that starts
# serving HTTPS once the simulated guest ran the install script, with the
# certificate and password the provisioner put there, and whose zones a
# real knotd serves on 127.0.0.1 (the secondary by a TSIG-signed AXFR).
# Then K3s's Traefik becomes the edge: its values pass the chart's schema
# in the simulator, kube-vip gives it edge.ip, the wildcard certificate
# comes from the cluster CA, the routes from the manifest. Traefik cannot
# run here: a loopback HTTPS server (tests/sim/edge_https.py) stands in for
# it with the certificate the provisioner put into the cluster, and the
# verification's HTTPS requests for edge.ip:443 go there. With the demo
# manifest's gitops and monitoring sections, the Kubernetes simulator also
# installs the stand-in charts and models Argo CD's application controller
# (the repository it follows is one of a simulated LAN, whose token is the
# bundle's), the registry's Deployment and Distribution API (the Proxmox
# simulators' guests push the seed into it), Prometheus's targets (every
# node's exporter answers), Grafana and Loki (the streams the agent has
# shipped) behind the API server's service proxy. Every simulator is
# stopped on exit.
set -euo pipefail
bundle=$1 pubkey=$2 secret_key=$3 env=$4 work=$5
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/provisioner/devopslab
nodes=(devops-node-01 devops-node-02 devops-node-03)
ips=(10.0.10.11 10.0.10.12 10.0.10.13)
rm -rf "$work"
mkdir -p "$work/state" "$work/records" "$work/registry"
grep '^root_password=' "$env" | cut -d= -f2- >"$work/root.pw"
chmod 600 "$work/root.pw"

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; true' EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api=()
for i in 0 1 2; do
	n=${nodes[$i]} port=$(free_port)
	PVE_SIM_RECORD_DIR=$work/records /usr/bin/python3 "$top/tests/sim/pve_sim.py" --state "$work/state" \
		--node "$n" --ip "${ips[$i]}" --port "$port" --password-file "$work/root.pw" --task-ms 300 \
		--latency-ms 20 --guest-boot-ms 2000 --technitium-dir "$work/technitium" --registry-dir "$work/registry" \
		>"$work/sim-$n.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$work/state/$n.fp" ] && break; sleep 0.1; done
	[ -s "$work/state/$n.fp" ] || { cat "$work/sim-$n.log" >&2; echo "demo: simulator $n did not start" >&2; exit 1; }
	api+=(--api "$n=https://127.0.0.1:$port")
	echo "SIMULATED Proxmox VE 9.1 node $n: https://127.0.0.1:$port (requests: $work/records/$n.jsonl)"
done
# The Kubernetes API of the K3s servers: the simulator serves it once the
# first server's K3s runs, with the CA the bundle's trust derived.
k8s_port=$(free_port)
# The Git server of the simulated LAN: the repository the demo's Argo CD
# follows, with the bundle's token; the exporters that answer.
/usr/bin/python3 - "$env" "$work/git-repos.json" "$work/scrape-up.json" "${ips[@]}" <<'PY'
import json, sys
env, repos, up = sys.argv[1:4]
token = next(l.split("=", 1)[1].rstrip("\n") for l in open(env) if l.startswith("gitops_token="))
json.dump({"https://git.homelab.local/lab/cluster-config.git": {
    "auth": {"username": "devopslab", "password": token},
    "refs": {"main": "8d3f0f4f0b8e6b1c2d4a5e6f7a8b9c0d1e2f3a4b", "HEAD": "8d3f0f4f0b8e6b1c2d4a5e6f7a8b9c0d1e2f3a4b"},
    "paths": ["clusters/homelab"]}}, open(repos, "w"))
json.dump(["%s:9100" % ip for ip in sys.argv[4:]], open(up, "w"))
PY
# What the log agent has shipped to Loki: every node's syslog, every K3s
# VM's journal, Traefik's access log.
/usr/bin/python3 - "$work/log-streams.json" "${nodes[@]}" <<'PY'
import json, sys
out = [{"job": "syslog", "host": n, "app": "devopslab"} for n in sys.argv[2:]]
out += [{"job": "systemd-journal", "host": v, "unit": "k3s.service"} for v in
        ("devops-k3s-server-01", "devops-k3s-server-02", "devops-k3s-server-03",
         "devops-k3s-worker-01", "devops-k3s-worker-02")]
out.append({"namespace": "kube-system", "pod": "traefik-demo", "container": "traefik"})
json.dump(out, open(sys.argv[1], "w"))
PY
K8S_SIM_RECORD_DIR=$work/records /usr/bin/python3 "$top/tests/sim/k8s_sim.py" --port "$k8s_port" \
	--pve-state "$work/state" --latency-ms 20 --git-repos "$work/git-repos.json" --scrape-up "$work/scrape-up.json" \
	--registry-dir "$work/registry" --log-streams "$work/log-streams.json" \
	>"$work/sim-k8s.log" 2>&1 &
pids+=($!)
echo "SIMULATED Kubernetes API (K3s): https://127.0.0.1:$k8s_port (requests: $work/records/)"

# Technitium DNS in devops-dns-01 (primary) and devops-dns-02 (secondary):
# nothing listens until the provisioner has installed it in the guest.
dns_vms=(devops-dns-01 devops-dns-02)
dns_ips=(10.0.10.41 10.0.10.42)
dns_connect=() dns_ports=()
: >"$work/technitium-map"
for i in 0 1; do
	v=${dns_vms[$i]} port=$(free_port) dport=$(free_port)
	TECHNITIUM_SIM_RECORD_DIR=$work/records /usr/bin/python3 "$top/tests/sim/technitium_sim.py" --name "$v" \
		--port "$port" --dns-port "$dport" --state "$work/technitium-state-$v" \
		--install-dir "$work/technitium/$v" --address-map-file "$work/technitium-map" --latency-ms 20 \
		>"$work/sim-$v.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do grep -q "bound on 127.0.0.1:$port " "$work/sim-$v.log" && break; sleep 0.1; done
	grep -q "bound on 127.0.0.1:$port " "$work/sim-$v.log" || { cat "$work/sim-$v.log" >&2; echo "demo: $v's simulator did not start" >&2; exit 1; }
	printf '%s=127.0.0.1:%s\n' "${dns_ips[$i]}" "$dport" >>"$work/technitium-map"
	dns_connect+=(--dns-connect "$v=127.0.0.1:$port" --dns-query "$v=127.0.0.1:$dport")
	dns_ports+=("$dport")
	echo "SIMULATED Technitium DNS in $v: https://${dns_ips[$i]}:53443 here 127.0.0.1:$port, DNS 127.0.0.1:$dport (knotd)"
done

# The edge's stand-in: serves the provisioner's TLS secret once the
# edge-certs step has made it (read from the simulated cluster's state).
edge_port=$(free_port)
mkdir -p "$work/edge"
/usr/bin/python3 "$top/tests/sim/edge_https.py" --port "$edge_port" --cert "$work/edge/tls.crt" \
	--key "$work/edge/tls.key" --reload --route pve.homelab.local=200 --route dns.homelab.local=200 \
	--route traefik.homelab.local=401 --route argocd.homelab.local=200 --route grafana.homelab.local=302 \
	--route prometheus.homelab.local=200 --route registry.homelab.local=200 --record-dir "$work/records" >"$work/sim-edge.log" 2>&1 &
pids+=($!)
/usr/bin/python3 "$top/tests/sim/edge_secret_watch.py" "$work/state/k8s.json" "$work/edge" &
pids+=($!)
echo "SIMULATED Traefik at the edge (10.0.10.30:443): a stand-in on https://127.0.0.1:$edge_port"

# Trust as on the installed nodes: each node its own API by its certificate
# file (here the simulator's), the others by the cluster CA from the
# bundle's secrets; never on first use.
fb() { "$bin" firstboot --bundle "$bundle" --pubkey "$pubkey" --secret-key "$secret_key" --node "$1" \
	--journal "$work/journal-$1" "${api[@]}" --local-cert "$work/state/$1.pem" --poll-ms 500 \
	--boot-timeout 120 --k3s-api "https://127.0.0.1:$k8s_port" --k3s-timeout 120 --report-dir "$work/report-$1" --status-listen 127.0.0.1:0 \
	"${dns_connect[@]}" --dns-timeout 120 --edge-timeout 120 --edge-connect "127.0.0.1:$edge_port"; }

# The members wait for the first node's cluster and join in manifest order.
fb devops-node-02 >"$work/firstboot-devops-node-02.log" 2>&1 & m2=$!
fb devops-node-03 >"$work/firstboot-devops-node-03.log" 2>&1 & m3=$!
set +e
fb devops-node-01 2>&1 | sed -u 's/^/[SIMULATED] /'
rc=${PIPESTATUS[0]}
wait $m2; rc2=$?
wait $m3; rc3=$?
set -e
echo "[SIMULATED] firstboot exit status: devops-node-01 $rc, devops-node-02 $rc2, devops-node-03 $rc3" \
	"(0: every step done and verified)"
echo "[SIMULATED] the guests' cloud-init seeds as the simulated nodes received them:"
ls "$work/records"/*.user-data 2>/dev/null | sed 's/^/  /' || true
if [ -s "$work/technitium/devops-dns-01/installed" ] && command -v kdig >/dev/null; then
	echo "[SIMULATED] the lab's names, asked of the primary's and the secondary's DNS (kdig; real DNS from knotd):"
	for name in devops-node-01.homelab.local devops-k3s-server-01.homelab.local anything.homelab.local; do
		echo "  $name: $(kdig @127.0.0.1 -p "${dns_ports[0]}" +short +time=2 "$name" A) /" \
			"$(kdig @127.0.0.1 -p "${dns_ports[1]}" +short +time=2 "$name" A)"
	done
fi
if [ -s "$work/report-devops-node-01/kubeconfig" ]; then
	echo "[SIMULATED] the K3s administrator's kubeconfig: $work/report-devops-node-01/kubeconfig" \
		"(mode $(stat -c %a "$work/report-devops-node-01/kubeconfig"))"
fi
if [ -s "$work/report-devops-node-01/report.json" ]; then
	echo "[SIMULATED] the lab's report (above, at the end of devops-node-01's run) again, with the plan as executed:"
	echo "  $bin report --report-dir $work/report-devops-node-01"
	echo "[SIMULATED] the Ansible inventory as Ansible reads it (ansible-inventory --graph):"
	if command -v ansible-inventory >/dev/null; then
		ansible-inventory -i "$work/report-devops-node-01/inventory.yml" --graph | sed 's/^/  /'
	fi
fi
if [ -s "$work/edge/tls.crt" ]; then
	grep '^cluster_ca_cert=' "$env" | cut -d= -f2- | base64 -d >"$work/cluster-ca.pem"
	echo "[SIMULATED] the web consoles through the edge (curl, trusting only the cluster CA):"
	for url in https://pve.homelab.local/ https://dns.homelab.local/ https://traefik.homelab.local/dashboard/ \
		https://argocd.homelab.local/ https://grafana.homelab.local/ https://prometheus.homelab.local/; do
		h=${url#https://} h=${h%%/*}
		echo "  $url: HTTP $(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/cluster-ca.pem" \
			--connect-to "$h:443:127.0.0.1:$edge_port" "$url")"
	done
fi
[ "$rc" = 0 ] || exit 1
[ "$rc2" = 0 ] && [ "$rc3" = 0 ] || { cat "$work"/firstboot-devops-node-0[23].log >&2; exit 1; }
