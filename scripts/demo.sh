#!/bin/bash
# scripts/demo.sh — what `make demo` runs: the example cluster's first node,
# end to end as far as this build goes: validate the manifest, make a signed
# bundle with encrypted secrets around the Debian-only root file system
# (`make rootfs`: Proxmox's repository is not reachable here, see
# docs/install.md), verify it, print the plan every node will execute, build
# the boot image and boot it under QEMU (UEFI, Secure Boot on, a blank NVMe,
# the NIC of devops-node-01): the image installs the node and reboots; then
# the installed NVMe boots alone, Secure Boot still on, to its login prompt
# (root's password is root_password in out/demo/secrets.env). Before that,
# the first-boot phase of all three nodes runs SIMULATED (scripts/demo-sim.sh:
# Proxmox VE API simulators, the real program): the cluster forms and the
# first node makes the storage checks, templates and VMs. On a terminal
# the installed system's console is interactive (Ctrl-A X quits QEMU).
# The demo manifest is examples/homelab.yaml with cluster.unattended: true
# (no keyboard: the image writes the disk by itself), and the layers run
# in K3s only against the simulators: a gitops section (Argo CD following
# a repository of the simulated LAN), a registry section (the lab's own
# registry, seeded with two images) and a monitoring section (Prometheus,
# Grafana and the logs), their charts our stand-ins from tests/data (the Kubernetes
# simulator installs and models them; not the real charts). DEMO_MODE=bios-cd|
# uefi-cd picks another firmware; DEMO_BOOT=0 stops after the plan.
# Work files go to out/demo/ (the cloud image and K3s assets are
# placeholders; keys generated there on first run).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/provisioner/devopslab
out=out/demo
manifest=$out/homelab.yaml
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

mkdir -p "$out/assets"
/usr/bin/python3 - examples/homelab.yaml "$manifest" <<'PY'
import sys
text = open(sys.argv[1]).read()
# the example, unattended: the boot image writes the selected disk by itself
out = text.replace("  keyboard: us\n", "  keyboard: us\n  unattended: true\n", 1)
assert out != text
# GitOps and metrics (docs/gitops.md, docs/monitoring.md): stand-in charts
out = out.replace("  - {name: aspnetcore-runtime, file: aspnetcore-runtime-8.0-linux-x64.tar.gz}\n",
                  "  - {name: aspnetcore-runtime, file: aspnetcore-runtime-8.0-linux-x64.tar.gz}\n"
                  "  - {name: argocd-chart, file: charts/argo-cd-7.7.0.tgz}\n"
                  "  - {name: monitoring-chart, file: charts/kube-prometheus-stack-66.2.1.tgz}\n"
                  "  - {name: logs-chart, file: charts/loki-stack-2.10.2.tgz}\n"
                  "  - {name: registry-image, file: images/registry-2.8.3.tar}\n"
                  "  - {name: seed-apps, file: images/seed-apps.tar}\n", 1)
out = out.replace("cluster_ca_key, cluster_ca_cert]", "cluster_ca_key, cluster_ca_cert, gitops_token, grafana_password]", 1)
out = out.replace("\nsecrets:\n", """
gitops:
  repo: https://git.homelab.local/lab/cluster-config.git
  revision: main
  path: clusters/homelab
  credentials: {username: devopslab, password: {secret: gitops_token}}
  chart: argocd-chart
  host: argocd.homelab.local
monitoring:
  grafana_password: {secret: grafana_password}
  chart: monitoring-chart
  hosts: {grafana: grafana.homelab.local, prometheus: prometheus.homelab.local}
  logs: {chart: logs-chart}
registry:
  image: registry-image
  ref: "docker.io/library/registry:2.8.3"
  host: registry.homelab.local
  seed: [seed-apps]

secrets:
""", 1)
assert "gitops_token" in out and "\ngitops:\n" in out and "monitoring-chart" in out and "\nregistry:\n" in out
open(sys.argv[2], "w").write(out)
PY
# the stand-in charts (tests/data: ours, not Argo CD's or the Prometheus
# community's), as archives the way a bundle carries a chart
mkdir -p "$out/assets/charts"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C tests/data/gitops -czf "$out/assets/charts/argo-cd-7.7.0.tgz" argo-cd
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C tests/data/monitoring \
	-czf "$out/assets/charts/kube-prometheus-stack-66.2.1.tgz" kube-prometheus-stack
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C tests/data/logs \
	-czf "$out/assets/charts/loki-stack-2.10.2.tgz" loki-stack
# the registry's image (a placeholder: K3s's import is simulated) and an
# archive of two small real images (OCI layout) to seed it with
mkdir -p "$out/assets/images"
printf 'registry image placeholder\n' >"$out/assets/images/registry-2.8.3.tar"
/usr/bin/python3 tests/sim/image_tar.py "$out/assets/images/seed-apps.tar" docker.io/library/nginx:1.27.3 \
	ghcr.io/stefanprodan/podinfo:6.7.1 >/dev/null
say "1. Validate the manifest ($manifest: examples/homelab.yaml, unattended)"
"$bin" validate "$manifest"

say "2. The inputs of a bundle: the Debian-only rootfs, secrets, keys (in $out)"
rootfs=out/rootfs/debian-13-rootfs.tar.zst
[ -s "$rootfs" ] || image/rootfs.sh --variant debian --out out/rootfs
cp "$rootfs" "$out/assets/debian-13-rootfs.tar.zst"
scripts/example-inputs.sh "$manifest" "$out"
ls -l "$out" "$out/assets"

say "3. Create the signed bundle (secrets sealed with AES-256-GCM)"
rm -f "$out/homelab.bundle"
"$bin" bundle create --manifest "$manifest" --assets "$out/assets" --key "$out/signing.key" \
	--secrets "$out/secrets.env" --secret-key "$out/secret.key" -o "$out/homelab.bundle"

say "4. Verify it with the public key (mbedtls), as the image does"
"$bin" bundle verify --pubkey "$out/signing.pub" "$out/homelab.bundle"

say "5. The plan: the ordered steps install and firstboot will execute"
"$bin" plan --bundle "$out/homelab.bundle" --pubkey "$out/signing.pub"

# The first-boot phase needs Proxmox VE, which cannot run here: the three
# nodes are API simulators (labelled SIMULATED), the program is the real one.
simulated_firstboot() {
	say "$1. SIMULATED first boot of all three nodes: cluster, storage, templates, VMs, K3s, DNS, edge, Argo CD, metrics, verification (scripts/demo-sim.sh)"
	scripts/demo-sim.sh "$out/homelab.bundle" "$out/signing.pub" "$out/secret.key" "$out/secrets.env" "$out/sim"
}

[ "${DEMO_BOOT:-1}" = 0 ] && {
	simulated_firstboot 6
	say "Done. The bundle is $out/homelab.bundle; try:"
	echo "  $bin plan --bundle $out/homelab.bundle --pubkey $out/signing.pub --node devops-node-02 --json"
	exit 0
}

say "6. Build the boot image around the bundle (Debian's signed kernel, initramfs, ISO, netboot)"
# The secrets' key on the kernel command line (secrets.key_source: cmdline).
image/build.sh --pubkey "$out/signing.pub" --bundle "$out/homelab.bundle" --timeout 2 \
	--cmdline "devopslab.secret_key=$(cat "$out/secret.key") devopslab.reboot_delay=5 --- no_timer_check"
cat out/image-info.txt

mode=${DEMO_MODE:-uefi-sb-cd}
case $mode in
uefi-sb-cd) disk_mode=uefi-sb-disk ;;
uefi-cd) disk_mode=uefi-disk ;;
bios-cd | bios-usb) disk_mode=bios-disk ;;
*) echo "demo: DEMO_MODE is uefi-sb-cd, uefi-cd, bios-cd or bios-usb" >&2; exit 2 ;;
esac
rm -rf "$out/vm" "$out/vm2"
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; true' EXIT
show() { # LOG PID UNTIL-REGEX
	local tailpid
	tail -n +1 -f "$1" --pid "$2" | LC_ALL=C sed -u 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/[^[:print:]\t]//g' &
	tailpid=$!
	for _ in $(seq 1800); do
		grep -aqE "$3" "$1" && break
		kill -0 "$2" 2>/dev/null || break
		sleep 1
	done
	sleep 1
	kill "$tailpid" 2>/dev/null || true
	echo
}

say "7. Boot out/devopslab.iso under QEMU ($mode): NVMe serial DEMO-NVME-0001, MAC 52:54:00:0a:00:01"
log=$out/console.log
: >"$log"
pid=$(scripts/qemu-boot.sh --mode "$mode" --mac 52:54:00:0a:00:01 --nvme-serial DEMO-NVME-0001 --memory 2048 \
	--workdir "$out/vm" --log "$log" --background)
show "$log" "$pid" 'reboot: Restarting system|\(devopslab rescue\)'
if grep -aq '(devopslab rescue)' "$log"; then
	say "The install stopped in the image's rescue shell (console log: $log)"
	exit 1
fi
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
pid=

simulated_firstboot 8

say "9. Boot the installed NVMe alone ($disk_mode)"
args=(--mode "$disk_mode" --nvme "$out/vm/nvme.img" --mac 52:54:00:0a:00:01 --nvme-serial DEMO-NVME-0001
	--memory 2048 --workdir "$out/vm2")
if [ -t 0 ] && [ -t 1 ]; then
	echo "(log in as root with root_password from $out/secrets.env; Ctrl-A X quits QEMU)"
	exec scripts/qemu-boot.sh "${args[@]}" --interactive
fi
log=$out/installed.log
: >"$log"
pid=$(scripts/qemu-boot.sh "${args[@]}" --log "$log" --background)
show "$log" "$pid" 'login: '
grep -aq 'login: ' "$log" || { say "The installed system did not reach its login prompt (log: $log)"; exit 1; }
say "Done: devops-node-01 is installed and boots from its NVMe (console logs: $out/console.log, $log)"
