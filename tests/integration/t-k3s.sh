#!/bin/bash
# K3s against the simulators: three simulated Proxmox VE nodes with a
# template each, three K3s server VMs and two agents; the first node's
# firstboot forms the Proxmox cluster, makes the guests, then K3s through
# the guest agent. Checked from the outside:
#   - the Kubernetes API simulator (tests/sim/k8s_sim.py), which refuses a
#     wrong join order, a wrong token or mismatched flags as K3s does,
#     reports 5 nodes Ready with their roles and 3 voting etcd members;
#   - what each guest received (the simulator's guest file system): the
#     first server's eleven CA files (openssl: each CA self-signed, keys
#     matching), config.yaml with the full token whose hash is sha256sum of
#     the server CA, the same critical flags on every server;
#   - the kubeconfig (mode 0600) works with curl against the API: server
#     CA, admin client certificate (openssl verify against the client CA);
#   - a re-run changes nothing (no mutating request to either API), and a
#     dry run neither; a worker re-created with its old name has its stale
#     node and node password removed, and joins again.
# timeout: 300
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

k3s_init
# The cluster CA signs each node's certificate (cluster-certs): each node trusts its own
# certificate file and the others by the CA, as on the installed nodes.
FB_PIN=local
SIM_TASK_MS=100 sim_start_all --guest-boot-ms 200
k8s_start --promote-ms 400 --ready-ms 300
k3s_args
K3S+=(--k3s-timeout 60)

form_all "${K3S[@]}"
OUT=$(cat "$TESTTMP/fb-pve1.out")
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the first run reported an error"; }
for v in k3s-server-01 k3s-server-02 k3s-server-03; do
	grep -q "cluster/k3s/server/$v.*done\|$v: Ready" <<<"$OUT" || { echo "$OUT" >&2; fail "no K3s step done for $v"; }
done

# The cluster as the Kubernetes API simulator sees it.
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03', 'k3s-worker-01', 'k3s-worker-02']" \
	"$(k8s_ready_nodes)" "Ready nodes"
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03']" "$(k8s_voting)" "voting etcd members"
assert_eq "{}" "$(k8s_join_errors)" "join errors"

# What the guests received.
G=$TESTTMP/guestfs
k3s_guest_files "$G"
tls=$G/k3s-server-01/var/lib/rancher/k3s/server/tls
for ca in server-ca client-ca request-header-ca etcd/server-ca etcd/peer-ca; do
	openssl verify -CAfile "$tls/$ca.crt" "$tls/$ca.crt" >/dev/null || fail "$ca.crt is not a self-signed CA"
	assert_eq "$(openssl x509 -in "$tls/$ca.crt" -noout -pubkey)" "$(openssl pkey -in "$tls/$ca.key" -pubout)" "$ca key"
	openssl x509 -in "$tls/$ca.crt" -noout -ext basicConstraints | grep -q "CA:TRUE" || fail "$ca.crt: not a CA"
done
openssl pkey -in "$tls/service.key" -noout || fail "service.key is not a key"
assert_eq "0600" "$(k3s_guest_mode k3s-server-01 /var/lib/rancher/k3s/server/tls/server-ca.key)" "mode of a CA key"
assert_eq "0600" "$(k3s_guest_mode k3s-worker-01 /etc/rancher/k3s/config.yaml)" "mode of config.yaml"
# only the first server gets the CAs (the others from the cluster's datastore)
[ ! -e "$G/k3s-server-02/var/lib/rancher/k3s/server/tls" ] || fail "a joining server received the CA files"
hash=$(sha256sum <"$tls/server-ca.crt" | cut -d' ' -f1)
"$PY" - "$G" "$hash" <<'PYEOF' || fail "config.yaml"
import os, sys, yaml
g, h = sys.argv[1], sys.argv[2]
cfg = {v: yaml.safe_load(open(os.path.join(g, v, "etc/rancher/k3s/config.yaml")))
       for v in sorted(os.listdir(g))}
want_token = "K10%s::server:k3s-secret-token" % h
for v, c in cfg.items():
    assert c["token"] == want_token, (v, c["token"][:20])
    assert c["node-name"] == v, v
servers = [v for v in cfg if "server" in v]
assert cfg["k3s-server-01"].get("cluster-init") is True
for v in servers[1:]:
    assert cfg[v]["server"] == "https://10.0.0.31:6443", cfg[v]
    assert "cluster-init" not in cfg[v]
for k in ("cluster-cidr", "service-cidr", "disable"):
    assert len({repr(cfg[v].get(k)) for v in servers}) == 1, k
assert cfg["k3s-server-01"]["disable"] == ["traefik"]
assert cfg["k3s-server-02"]["tls-san"] == ["10.0.0.32"]
for v in cfg:
    if "worker" in v:
        assert set(cfg[v]) == {"server", "token", "node-name", "node-ip"}, cfg[v]
PYEOF

# The kubeconfig: 0600, and it works with an independent client.
kc=$TESTTMP/report/kubeconfig
assert_eq 600 "$(stat -c %a "$kc")" "kubeconfig mode"
"$PY" -c 'import sys, yaml; k = yaml.safe_load(open(sys.argv[1])); print(k["clusters"][0]["cluster"]["server"])' \
	"$kc" >"$TESTTMP/kc-server" || fail "kubeconfig"
assert_eq "https://10.0.0.31:6443" "$(cat "$TESTTMP/kc-server")" "the kubeconfig's server"
k3s_kubeconfig_pems
cmp "$TESTTMP/kc-ca.pem" "$tls/server-ca.crt" || fail "the kubeconfig's CA is not the server CA the guest received"
openssl verify -CAfile "$tls/client-ca.crt" "$TESTTMP/kc-cert.pem" >/dev/null || fail "admin certificate not from the client CA"
openssl x509 -in "$TESTTMP/kc-cert.pem" -noout -subject | grep -q "O = system:masters" || fail "admin certificate group"
kget /api/v1/nodes >"$TESTTMP/nodes.json" || fail "curl with the kubeconfig's credentials"
assert_eq 5 "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$TESTTMP/nodes.json")" "nodes via curl"

# Order: each server's install started only after the one before it was a
# voting member (the simulator refuses a second learner, so this holds
# already; the install requests say it again), agents last.
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03', 'k3s-worker-01', 'k3s-worker-02']" \
	"$(k3s_install_order)" "K3s install order"

# Converged: a re-run and a dry run change nothing.
k3s_rerun_converged
before=$(mutations)
fb pve1 "${K3S[@]}" --dry-run
fb_formed pve1
assert_eq "$before" "$(mutations)" "mutating Proxmox requests of the dry run"

# A worker re-created with its old name: the stale node and node password
# go, the new VM joins, and the run says so.
k3s_recreate_vm k3s-worker-02
fb pve1 "${K3S[@]}"
fb_formed pve1
assert_contains "$OUT" "k3s-worker-02: the cluster still has a node of this name from an earlier VM"
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03', 'k3s-worker-01', 'k3s-worker-02']" \
	"$(k8s_ready_nodes)" "Ready nodes after the re-created worker joined"
assert_eq "{}" "$(k8s_join_errors)" "join errors after the re-created worker joined"

# Quorum in the simulator's model: one server down keeps it, and the API
# still answers; the cluster's nodes show the lost one NotReady.
k3s_stop_vm k3s-server-03
sleep 1
kget /readyz >/dev/null || fail "the API lost its quorum with one server of three down"

sim_schema_check || fail "schema check"
echo "requests: $(requests) Proxmox, $(k8s_requests) Kubernetes"
