#!/bin/bash
# The lab's own container registry against the simulators
# (docs/registry.md): the lab of t-edge.sh (three simulated Proxmox VE
# nodes, K3s with kube-vip, one Technitium DNS VM, the edge) with a
# registry section: the registry's image and two seed archives (an OCI
# layout and a docker save, made by tests/sim/image_tar.py) from the
# assets. The Kubernetes simulator runs the Deployment's and the volume's
# status and answers the Distribution API through its service proxy from
# the directory the Proxmox simulator's guest model pushes into
# (--registry-dir, both); that guest model runs `systemctl restart` of
# systemd-resolved and K3s (K3s reading registries.yaml, validated) and the
# seed script (ctr's import and push; it needs the lab's zone resolved).
# Checked from the outside:
#   - the objects: Namespace, PVC (local-path, 2Gi), Deployment (the
#     bundle's image, the volume), Service, the IngressRoute at the edge;
#   - every K3s VM: the resolver's drop-in, the cluster CA, registries.yaml
#     as K3s parsed it at its restart, one restart each;
#   - the seed: the archives on the servers only, every image in the
#     registry, the ConfigMap's records;
#   - the verification through the edge stand-in and the registry row; the
#     report's console;
#   - a converged re-run writes nothing to the Kubernetes API, restarts no
#     K3s and pushes nothing;
#   - an image gone from the registry: the next run pushes its archive again.
# Under ASan (LABEL=asan) it stops after the converged re-run.
# timeout: 420
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

dns_edge_init
mkdir -p "$A/images" "$A/seed"
printf 'registry image stand-in\n' >"$A/images/registry-2.8.3.tar"
"$PY" "$SIM/image_tar.py" "$A/seed/apps.tar" docker.io/library/nginx:1.27.3 ghcr.io/lab/podinfo:6.7.1 >/dev/null
"$PY" "$SIM/image_tar.py" --docker "$A/seed/tools.tar" busybox:1.36 >/dev/null
"$PY" - "$TESTTMP/cluster.yaml" <<'PYEOF'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("  - {name: kube-vip, file: k3s/kube-vip.tar}",
              "  - {name: kube-vip, file: k3s/kube-vip.tar}\n"
              "  - {name: registry-image, file: images/registry-2.8.3.tar}\n"
              "  - {name: seed-apps, file: seed/apps.tar}\n"
              "  - {name: seed-tools, file: seed/tools.tar}")
s += """registry:
  image: registry-image
  ref: "docker.io/library/registry:2.8.3"
  host: registry.home.arpa
  size: 2G
  seed: [seed-apps, seed-tools]
"""
open(p, "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }

RDIR=$TESTTMP/registry
mkdir -p "$RDIR"
LAB_PVE_ARGS=(--registry-dir "$RDIR")
lab_start --registry-dir "$RDIR" --deploy-ms 300
lab_args
# The seed runs and K3s's restarts in every VM's agent log: "VM COUNT" lines.
agent_count() { # ARGV0 ARGV1
	sim_query "' '.join('%s=%d' % (vm['conf']['name'], sum(1 for e in vm.get('agent_log', []) if e['command'][:2] == ['$1', '$2'])) for d in s['guest']['vms'].values() for vm in sorted(d.values(), key=lambda v: v['conf']['name']))"
}
pushed_tags() { jq -cS '.repositories | map_values(keys)' "$RDIR/pushed.json"; }

# ---- first run: the registry runs, the nodes pull through it, the seed is in ------------

lab_form
grep -q "Running the lab's container registry: done" <<<"$OUT" || { echo "$OUT" >&2; fail "the registry step is not done"; }
k3s_kubeconfig_pems
for o in api/v1/namespaces/registry/persistentvolumeclaims/registry apis/apps/v1/namespaces/registry/deployments/registry \
	api/v1/namespaces/registry/services/registry api/v1/namespaces/registry/configmaps/devopslab-seed \
	apis/traefik.io/v1alpha1/namespaces/registry/ingressroutes/devopslab-registry; do
	kget "/$o" >"$TESTTMP/$(basename "$o").json" || fail "no $o"
done
kget /api/v1/namespaces/registry/services/http:registry:5000/proxy/v2/_catalog >"$TESTTMP/catalog.json" ||
	fail "the registry's catalog through the API server"
"$PY" - "$TESTTMP" <<'PYEOF' || fail "the registry's objects"
import json, sys
d = sys.argv[1]
def j(n): return json.load(open("%s/%s.json" % (d, n)))
cm = j("devopslab-seed")["data"]
assert cm == {"seed-apps": "registry.home.arpa/library/nginx:1.27.3\nregistry.home.arpa/lab/podinfo:6.7.1\n",
              "seed-tools": "registry.home.arpa/library/busybox:1.36\n"}, cm
r = j("devopslab-registry")["spec"]["routes"][0]
assert r["match"] == "Host(`registry.home.arpa`)" and r["services"] == [{"name": "registry", "port": 5000}], r
cat = j("catalog")["repositories"]
assert cat == ["lab/podinfo", "library/busybox", "library/nginx"], cat
PYEOF
# the objects by kind (the PVC, the Deployment and the Service share a name)
kget /api/v1/namespaces/registry/persistentvolumeclaims/registry >"$TESTTMP/pvc.json"
kget /apis/apps/v1/namespaces/registry/deployments/registry >"$TESTTMP/deploy.json"
"$PY" - "$TESTTMP" <<'PYEOF' || fail "the registry's volume and Deployment"
import json, sys
d = sys.argv[1]
pvc = json.load(open(d + "/pvc.json"))
assert pvc["spec"]["storageClassName"] == "local-path" and pvc["spec"]["resources"]["requests"]["storage"] == "2Gi", pvc["spec"]
assert pvc["status"]["phase"] == "Bound", pvc["status"]
dep = json.load(open(d + "/deploy.json"))
c = dep["spec"]["template"]["spec"]["containers"][0]
assert c["image"] == "docker.io/library/registry:2.8.3" and c["imagePullPolicy"] == "IfNotPresent", c
assert dep["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "registry"}}]
assert dep["status"]["availableReplicas"] == 1, dep["status"]
PYEOF

# every K3s VM: its resolver, the cluster CA, registries.yaml as K3s read it, one restart
k3s_guest_files "$TESTTMP/guestfs"
for vm in k3s-server-01 k3s-server-02 k3s-server-03 k3s-worker-01 k3s-worker-02; do
	[ -d "$TESTTMP/guestfs/$vm" ] || continue
	cmp -s "$TESTTMP/ca.pem" "$TESTTMP/guestfs/$vm/etc/rancher/k3s/devopslab-registry-ca.pem" ||
		fail "$vm: the registry's CA is not the cluster CA"
	grep -qx 'Domains=~home.arpa' "$TESTTMP/guestfs/$vm/etc/systemd/resolved.conf.d/devopslab.conf" ||
		fail "$vm: the lab's zone is not a routing domain of its resolver"
	grep -qx 'DNS=10.0.0.41' "$TESTTMP/guestfs/$vm/etc/systemd/resolved.conf.d/devopslab.conf" ||
		fail "$vm: the lab's DNS server is not its resolver's"
done
assert_eq "1" "$(sim_query "sorted({json.dumps(vm['k3s']['registries'], sort_keys=True) for d in s['guest']['vms'].values() for vm in d.values() if vm.get('k3s')}).__len__()")" \
	"every K3s VM read one and the same registries.yaml"
sim_query "[vm['k3s']['registries'] for d in s['guest']['vms'].values() for vm in d.values() if vm.get('k3s')][0]" \
	>"$TESTTMP/registries.txt"
grep -q "'\\*': {'endpoint': \\['https://registry.home.arpa'\\]}" "$TESTTMP/registries.txt" ||
	fail "K3s's mirror for every registry is not the lab's: $(cat "$TESTTMP/registries.txt")"
grep -q "'ca_file': '/etc/rancher/k3s/devopslab-registry-ca.pem'" "$TESTTMP/registries.txt" ||
	fail "K3s does not trust the cluster CA for the registry: $(cat "$TESTTMP/registries.txt")"
restarts=$(agent_count systemctl restart)
grep -q "k3s-server-02=2" <<<"$restarts" || fail "k3s-server-02: not one resolver and one K3s restart: $restarts"
# the seed archives on the servers only, pushed from the first
[ -f "$TESTTMP/guestfs/k3s-server-02/var/lib/devopslab/registry-seed/apps.tar" ] || fail "no seed archive on k3s-server-02"
[ ! -e "$TESTTMP/guestfs/k3s-worker-01/var/lib/devopslab/registry-seed/apps.tar" ] || fail "a seed archive on a worker"
cmp -s "$A/images/registry-2.8.3.tar" "$TESTTMP/guestfs/k3s-worker-01/var/lib/rancher/k3s/agent/images/registry-2.8.3.tar" ||
	fail "the registry's image is not on k3s-worker-01"
seeds=$(agent_count /bin/sh /usr/local/lib/devopslab/registry-seed.sh)
grep -q "k3s-server-01=2" <<<"$seeds" || fail "the first server did not push each archive once: $seeds"

# ---- the edge serves: everything answers; a re-run writes nothing -------------------------

lab_edge_serve registry.home.arpa=200
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run with the edge served exited $RC"; }
grep -q "^edge .*https://registry.home.arpa/v2/ .*yes .*certificate by the cluster CA" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the registry not verified through the edge"; }
grep -q "^registry .*registry/registry .*yes .*3 of 3 seeded images listed" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "no passing registry row"; }
"$PY" - "$TESTTMP/report/report.json" "$TOP/docs/report.schema.json" <<'PYEOF' || fail "the report"
import json, sys, jsonschema
r = json.load(open(sys.argv[1]))
jsonschema.validate(r, json.load(open(sys.argv[2])))
assert "https://registry.home.arpa/v2/" in {c["url"] for c in r["consoles"]}, r["consoles"]
PYEOF
w0=$(k8s_mutations) r0=$(agent_count systemctl restart) s0=$(agent_count /bin/sh /usr/local/lib/devopslab/registry-seed.sh)
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the converged re-run exited $RC"; }
[ "$(k8s_mutations)" = "$w0" ] || fail "the converged re-run wrote to the Kubernetes API ($w0 -> $(k8s_mutations))"
assert_eq "$r0" "$(agent_count systemctl restart)" "restarts in the converged re-run"
assert_eq "$s0" "$(agent_count /bin/sh /usr/local/lib/devopslab/registry-seed.sh)" "pushes in the converged re-run"
[ "${LABEL:-}" = asan ] && exit 0

# ---- an image gone from the registry: its archive is pushed again ------------------------

jq 'del(.repositories["lab/podinfo"])' "$RDIR/pushed.json" >"$RDIR/pushed.json.new" && mv "$RDIR/pushed.json.new" "$RDIR/pushed.json"
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run after an image was lost exited $RC"; }
grep -q "pushing the images of /var/lib/devopslab/registry-seed/apps.tar" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the archive of the lost image was not pushed again"; }
assert_eq '{"lab/podinfo":["6.7.1"],"library/busybox":["1.36"],"library/nginx":["1.27.3"]}' "$(pushed_tags)" \
	"the registry after the push again"
exit 0
