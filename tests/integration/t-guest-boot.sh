#!/bin/bash
# What a VM receives, inside a real cloud-init guest: the first node's
# firstboot makes a template and a VM on a simulated Proxmox VE node (with a
# user, an SSH key and three payload files); the seed and payload ISOs it
# uploaded are taken from the simulator's storage, byte for byte, and booted
# under QEMU (TCG) the way Proxmox VE attaches them (ide2, ide3) with the
# VM's MAC, in a Debian 13 cloud guest with its stock cloud-init
# (image/guest.sh). Through the guest agent, as Proxmox VE reads it:
# cloud-init finished with no error and no warning, from our NoCloud seed,
# with our instance id; the host name and FQDN; the static address on the
# NIC with the planned MAC, named eth0, and the default route; the user with
# the key, passwordless sudo and a locked password; every payload file in
# place with its checksum and mode, logged once, the ISO unmounted.
# Then K3s's install path with the bundle's files: the VM is the manifest's
# (single) K3s server, its binary and install script stand-ins
# (tests/data/k3s/: they record what a real K3s reads); every command
# firstboot sent through the Proxmox guest agent to the simulated VM is
# replayed, byte for byte, through the real guest's agent, each must exit
# as the simulator said, and the guest then holds what K3s reads: the
# service started with "server", config.yaml (0600) with the full token
# whose hash is the SHA-256 of the server CA placed there, the eleven CA
# files (keys 0600), the images, the kube-vip manifest.
# sanitizer: skip
# alone: boots a QEMU guest (TCG: one busy host thread)
# needs: guest-image
# timeout: 1500
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
G=$TOP/out/guest/debian-13-guest
if [ ! -s "$G.ext4" ]; then
	# Debian packages only (mmdebstrap from the Debian archive).
	echo "guest-boot: building the cloud guest (make guest-image)"
	make -C "$TOP" guest-image >"$TESTTMP/guest-image.log" 2>&1 ||
		{ tail -20 "$TESTTMP/guest-image.log" >&2; fail "make guest-image failed"; }
fi

# --- the VM, made by firstboot against one simulated node ---------------------
. "$TOP/tests/sim/k3s-lib.sh"
SIM_SECRETS="pw, k3s_token, cluster_ca_key" sim_init 1
FB_PIN=local # the cluster CA signs the node's certificate
A=$TESTTMP/assets
mkdir -p "$A/guest" "$A/k3s"
cp "$TOP/tests/data/k3s/k3s-standin" "$A/k3s/k3s"
cp "$TOP/tests/data/k3s/install-standin.sh" "$A/k3s/install.sh"
head -c 200000 /dev/urandom >"$A/k3s/k3s-airgap-images-amd64.tar.zst"
head -c 100000 /dev/urandom >"$A/k3s/kube-vip.tar"
(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-keyout "$TESTTMP/ca.key" -out "$TESTTMP/ca.pem" -subj "/O=DevOpsLab/CN=test cluster CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null)
printf 'k3s-secret-token\n' >"$TESTTMP/k3s.token"
qemu-img create -q -f qcow2 "$A/cloud.qcow2" 2G
printf 'Welcome to the lab.\n' >"$A/guest/motd"
printf '#!/bin/sh\necho agent\n' >"$A/guest/agent.sh"
head -c 3000000 /dev/urandom >"$A/guest/blob.bin"
ssh-keygen -q -t ed25519 -N '' -C ops@devopslab -f "$TESTTMP/id_ops"
KEY=$(cat "$TESTTMP/id_ops.pub")
"$PY" - "$TESTTMP/cluster.yaml" "$KEY" <<'PYEOF'
import sys
p, key = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("assets: [{name: rootfs, file: rootfs.tar.zst}]",
              "assets:\n"
              "  - {name: rootfs, file: rootfs.tar.zst}\n"
              "  - {name: cloud, file: cloud.qcow2}\n"
              "  - {name: motd, file: guest/motd}\n"
              "  - {name: agent, file: guest/agent.sh}\n"
              "  - {name: blob, file: guest/blob.bin}\n"
              "  - {name: k3s-bin, file: k3s/k3s}\n"
              "  - {name: k3s-install, file: k3s/install.sh}\n"
              "  - {name: k3s-images, file: k3s/k3s-airgap-images-amd64.tar.zst}\n"
              "  - {name: kube-vip, file: k3s/kube-vip.tar}")
s += """templates:
  - {name: tpl, vmid: 9000, image: cloud, target_node: [pve1]}
vms:
  - id: web
    name: web
    vmid: 300
    target_node: pve1
    clone: tpl
    cores: 1
    memory: 1024
    agent: 1
    disk: {size: 4G}
    ipconfig0: "ip=10.0.0.51/24"
    ciuser: ops
    sshkeys: ["%s"]
    files:
      - {asset: motd, path: /etc/motd}
      - {asset: agent, path: /usr/local/bin/agent.sh, mode: "0755"}
      - {asset: blob, path: /var/lib/lab/blob.bin, mode: "0600"}
k3s:
  token: {secret: k3s_token}
  servers: [web]
  ha: false
  airgap: {binary: k3s-bin, images: k3s-images, install_script: k3s-install}
  api_vip: 10.0.0.5
  kube_vip: {image: kube-vip, ref: "ghcr.io/kube-vip/kube-vip:v0.9.2"}
""" % key
open(p, "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >/dev/null 2>&1 || fail "the test manifest does not validate"
sim_start_all --guest-boot-ms 100
k8s_start --promote-ms 100 --ready-ms 100
fb pve1 --assets "$A" --boot-timeout 60 --ca "$TESTTMP/ca.pem" --ca-key "$TESTTMP/ca.key" \
	--k3s-token-file "$TESTTMP/k3s.token" --k3s-api "$K8S_URL" --k3s-timeout 60 --report-dir "$TESTTMP/report"
[ "$RC" = 0 ] || [ "$RC" = 5 ] || { echo "$OUT" >&2; fail "firstboot exited $RC"; }
assert_contains "$OUT" "Creating VM web: done"
assert_contains "$OUT" "Initialising K3s server web: done"
# What firstboot had the guest agent run in the VM, in order, as the
# simulated guest answered it.
sim_query "__import__('json').dumps(s['guest']['vms']['pve1']['300']['agent_log'])" >"$TESTTMP/agent-log.json"

# The ISOs as the node stored them, and the NIC as the VM has it.
conf() { sim_query "dict(s['guest']['vms']['pve1']['300']['conf'], **s['guest']['vms']['pve1']['300']['pending']).get('$1')"; }
iso_of() { # ide2|ide3 -> the file in the simulated node's storage
	local vol
	vol=$(conf "$1" | sed -n 's/^local:iso\/\([^,]*\),media=cdrom.*$/\1/p')
	[ -n "$vol" ] || fail "$1 is not an ISO on local: $(conf "$1")"
	echo "$SIM_STATE/volumes/pve1/local/template/iso/$vol"
}
SEED=$(iso_of ide2) PAYLOAD=$(iso_of ide3)
[ -s "$SEED" ] && [ -s "$PAYLOAD" ] || fail "the simulator has no uploaded ISO ($SEED, $PAYLOAD)"
MAC=$(conf net0 | sed -n 's/^virtio=\([0-9A-Fa-f:]*\),.*$/\1/p')
[ -n "$MAC" ] || fail "no MAC in net0: $(conf net0)"
sim_stop pve1

# --- the guest ------------------------------------------------------------------
cd "$TESTTMP"
qemu-img create -q -f qcow2 -F raw -b "$G.ext4" disk.qcow2
QGA=$TESTTMP/qga.sock
boot() { # console-log-name
	bg_start qemu-system-x86_64 -machine pc,accel=tcg -cpu max -smp 1 -m 1024 \
		-display none -no-reboot -monitor none -serial "file:$TESTTMP/$1" \
		-kernel "$G.vmlinuz" -initrd "$G.initrd" \
		-append "root=LABEL=guest-root rw console=ttyS0,115200 no_timer_check" \
		-drive file=disk.qcow2,format=qcow2,if=none,id=root,cache=unsafe -device virtio-blk-pci,drive=root \
		-drive file="$SEED",format=raw,if=ide,index=2,media=cdrom,readonly=on \
		-drive file="$PAYLOAD",format=raw,if=ide,index=3,media=cdrom,readonly=on \
		-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,mac="$MAC" \
		-chardev socket,id=qga,path="$QGA",server=on,wait=off \
		-device virtio-serial-pci -device virtserialport,chardev=qga,name=org.qemu.guest_agent.0
	QEMU_PID=${_test_pids[-1]}
}
ga() { "$PY" "$TOP/tests/e2e/qga.py" "$QGA" "$@"; }
gexec() { # CMD -> $GOUT, $GRC
	set +e; GOUT=$(ga exec 300 "$1" 2>&1); GRC=$?; set -e
}
gcheck() { # CMD: must exit 0
	gexec "$1"
	[ "$GRC" = 0 ] || { echo "$GOUT" >&2; fail "in the guest: '$1' exited $GRC"; }
}
wait_agent() { # console
	ga wait 900 || { tail -40 "$TESTTMP/$1" >&2; fail "the guest agent never answered"; }
}
stop_guest() {
	ga shutdown || true
	local i
	for i in $(seq 120); do kill -0 "$QEMU_PID" 2>/dev/null || return 0; sleep 1; done
	kill "$QEMU_PID" 2>/dev/null || true
	fail "the guest did not power off"
}

start=$(date +%s)
boot console-1.log
wait_agent console-1.log
# cloud-init's own verdict, once all its stages are done.
gexec "cloud-init status --wait --format json"
echo "$GOUT" >cloud-init-status.json
echo "guest-boot: cloud-init done $(($(date +%s) - start)) s after power-on"
"$PY" - cloud-init-status.json <<'PYEOF' || { cat cloud-init-status.json >&2; fail "cloud-init's status"; }
import json, sys
st = json.load(open(sys.argv[1]))
bad = []
if st.get("status") != "done":
    bad.append("status %r" % st.get("status"))
if st.get("errors"):
    bad.append("errors %r" % st["errors"])
# deprecations and schema warnings: what cloud-init disliked in our seed
rec = st.get("recoverable_errors") or {}
if any(rec.values()):
    bad.append("recoverable errors %r" % rec)
if "NoCloud" not in (st.get("datasource") or "") and "nocloud" not in (st.get("datasource") or ""):
    bad.append("datasource %r" % st.get("datasource"))
if bad:
    sys.exit("cloud-init: " + "; ".join(bad))
PYEOF
gcheck "cloud-init query instance_id"; assert_eq devopslab-300 "$GOUT" "instance id"
gcheck "hostname"; assert_eq web "$GOUT" "host name"
gcheck "hostname -f"; assert_eq web.home.arpa "$GOUT" "FQDN"

# The NIC: the planned address on the NIC with the planned MAC, as the agent
# reports it to Proxmox VE (agent/network-get-interfaces).
ga call guest-network-get-interfaces >ifaces.json
"$PY" - ifaces.json "$MAC" <<'PYEOF' || { cat ifaces.json >&2; fail "the guest's interfaces"; }
import json, sys
ifs = json.load(open(sys.argv[1]))
mine = [i for i in ifs if (i.get("hardware-address") or "").lower() == sys.argv[2].lower()]
if len(mine) != 1:
    sys.exit("no single interface with MAC %s" % sys.argv[2])
i = mine[0]
if i["name"] != "eth0":
    sys.exit("the NIC is %r, not eth0" % i["name"])
v4 = [(a["ip-address"], a["prefix"]) for a in i.get("ip-addresses", []) if a["ip-address-type"] == "ipv4"]
if v4 != [("10.0.0.51", 24)]:
    sys.exit("IPv4 addresses %r, not 10.0.0.51/24" % v4)
PYEOF
gcheck "ip -4 route show default"; assert_contains "$GOUT" "default via 10.0.0.1 dev eth0"

# The user.
gcheck "cat /home/ops/.ssh/authorized_keys"; assert_contains "$GOUT" "$KEY"
gcheck "sudo -l -U ops"; assert_contains "$GOUT" "NOPASSWD: ALL"
gcheck "passwd -S ops"; assert_contains "$GOUT" "ops L"
gcheck "systemctl is-active ssh"

# The payload: each file, its checksum, its mode; nothing left mounted.
for f in "motd:/etc/motd:644" "agent.sh:/usr/local/bin/agent.sh:755" "blob.bin:/var/lib/lab/blob.bin:600"; do
	IFS=: read -r src path mode <<<"$f"
	want=$(sha256sum <"$A/guest/$src" | cut -d' ' -f1)
	gcheck "sha256sum $path && stat -c %a $path"
	assert_eq "$want  $path
$mode" "$GOUT" "$path in the guest"
done
gcheck "! grep -q DEVOPSLAB /proc/mounts"
gcheck "grep -c 'devopslab-payload: .*: installed as' /var/log/cloud-init-output.log"
assert_eq 7 "$GOUT" "payload files installed (cloud-init-output.log: 3 of the VM's, 4 of K3s's)"

# K3s's install path: firstboot's guest-agent commands, replayed.
ga replay 300 "$TESTTMP/agent-log.json" >replay.log 2>&1 || { cat replay.log >&2; fail "a command of the K3s step behaved otherwise in the real guest"; }
echo "guest-boot: replayed $(grep -c . replay.log) guest-agent commands of the K3s step"
gcheck "systemctl is-active k3s"
gcheck "cat /var/lib/devopslab-standin/args"; assert_eq server "$GOUT" "K3s's arguments"
gcheck "stat -c %a /etc/rancher/k3s/config.yaml"; assert_eq 600 "$GOUT" "config.yaml mode"
gcheck "cmp /etc/rancher/k3s/config.yaml /var/lib/devopslab-standin/config.yaml"
gcheck "sha256sum </var/lib/rancher/k3s/server/tls/server-ca.crt | cut -d' ' -f1"; ca_hash=$GOUT
gcheck "grep '^token:' /etc/rancher/k3s/config.yaml"
assert_eq "token: \"K10$ca_hash::server:k3s-secret-token\"" "$GOUT" "the token's CA hash is the placed server CA's"
gcheck "cat /var/lib/devopslab-standin/tls"
assert_eq "client-ca.crt 644
client-ca.key 600
etcd/peer-ca.crt 644
etcd/peer-ca.key 600
etcd/server-ca.crt 644
etcd/server-ca.key 600
request-header-ca.crt 644
request-header-ca.key 600
server-ca.crt 644
server-ca.key 600
service.key 600" "$GOUT" "the CA files K3s found at its start"
gcheck "openssl verify -CAfile /var/lib/rancher/k3s/server/tls/server-ca.crt /var/lib/rancher/k3s/server/tls/server-ca.crt"
gcheck "cat /var/lib/devopslab-standin/images"
assert_eq "k3s-airgap-images-amd64.tar.zst
kube-vip.tar" "$GOUT" "the images K3s imports"
gcheck "sha256sum </usr/local/bin/k3s | cut -d' ' -f1"
assert_eq "$(sha256sum <"$A/k3s/k3s" | cut -d' ' -f1)" "$GOUT" "/usr/local/bin/k3s"
gcheck "stat -c %a /var/lib/rancher/k3s/server/manifests/devopslab-kube-vip.yaml && grep -c 'value: \"10.0.0.5\"' /var/lib/rancher/k3s/server/manifests/devopslab-kube-vip.yaml"
assert_eq "600
1" "$GOUT" "the kube-vip manifest"
stop_guest

echo "guest-boot: powered off $(($(date +%s) - start)) s after power-on"
