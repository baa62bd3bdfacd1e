#!/bin/bash
# The guest model of the registry step (tests/sim/pve_sim_registry.py),
# driven through the simulated API's guest agent (agent/exec, exec-status)
# in one VM of one simulated node:
#   - `systemctl restart k3s` before K3s is installed: exit 5, systemd's
#     words; `systemctl restart k3s-agent` on a server: the same;
#   - K3s's install reads registries.yaml (recorded as parsed); a restart
#     reads it again: recorded, "restarts" counted, a new start time;
#     refused (an unknown key, an endpoint that is not a list, a ca_file
#     the guest lacks): exit 1 with systemd's job message, the reason
#     recorded, `systemctl is-active` "failed" (3) until a good restart;
#     the file removed: recorded as absent;
#   - registry-seed.sh HOST CAFILE TARBALL: no script (dash's exit 2), K3s
#     not active (never installed, or failed): ctr's dial error, the
#     archive or the CA file missing, not an archive; the registry's name
#     not in a routing domain of systemd-resolved's (`systemctl restart
#     systemd-resolved` reads the drop-in): ctr's "no such host"; the
#     registry not available (no DIR/ready): the 503 of the first blob's
#     HEAD; available:
#     the "pushed" lines and DIR/pushed.json for an OCI layout and a docker
#     save archive (short names normalised), a push again changing nothing,
#     an image named only by a bare tag skipped; a simulator without
#     --registry-dir: the 503.
# Archives from tests/sim/image_tar.py: the same REF gives the same digest.
# timeout: 180
# (a simulator's own test: nothing of ours runs under ASan)
# sanitizer: skip
. "$TOP/tests/lib.sh"
SIM_TASK_MS=50
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh" # the API client, booted, agent_run, guest_file, sim_edit

for t in curl jq tar; do command -v "$t" >/dev/null || skip "$t is not installed"; done

RDIR=$TESTTMP/registry
mkdir -p "$RDIR"
sim_init 1
sim_start pve1 --guest-boot-ms 200 --exec-ms 200 --registry-dir "$RDIR"
login pve1
task POST pve1 /nodes/pve1/qemu vmid=151 name=k3s-server-01 agent=1 memory=2048 start=1
assert_eq OK "$EXIT" "create and start VM 151"
booted 151
# The payload's CD-ROM, which the K3s install model looks for (its ISO is
# not read here).
sim_edit "s['guest']['vms']['pve1']['151']['conf']['ide3'] = 'local:iso/devopslab-payload-0.iso,media=cdrom'"

run() { agent_run pve1 151 "$@"; }
install_file() { # MODE PATH DATA
	run --input "$3" /usr/bin/install -D -m "$1" /dev/stdin "$2"
	assert_eq 0 "$GCODE" "install $2"
}
k3s_rec() { # KEY: the K3s service record's value, as compact JSON with sorted keys
	sim_query "__import__('json').dumps(s['guest']['vms']['pve1']['151']['k3s'].get('$1'), sort_keys=True, separators=(',', ':'))"
}
job_failed() { # UNIT
	printf 'Job for %s.service failed because the control process exited with error code.\nSee "systemctl status %s.service" and "journalctl -xeu %s.service" for details.' "$1" "$1" "$1"
}
SEED=/usr/local/lib/devopslab/registry-seed.sh
REG=/etc/rancher/k3s/registries.yaml
CA=/etc/rancher/k3s/registry-ca.pem
HOST=registry.home.arpa
IMG=/var/lib/devopslab/images
DIAL='ctr: failed to dial "/run/k3s/containerd/containerd.sock": context deadline exceeded'
seed() { run /bin/sh "$SEED" "$@"; }

# ---- before K3s --------------------------------------------------------------------
run systemctl restart k3s
assert_eq "5|Failed to restart k3s.service: Unit k3s.service not found." "$GCODE|$GERR" "restart before the install"
seed "$HOST" - "$IMG/oci.tar"
assert_eq "2|/bin/sh: 0: cannot open $SEED: No such file" "$GCODE|$GERR" "the seed script missing"
install_file 0755 "$SEED" "$(printf '#!/bin/sh\nset -eu\n: stand-in for the provisioner script\n')"
seed "$HOST" - "$IMG/oci.tar"
assert_eq "1|$DIAL" "$GCODE|$GERR" "the seed script without K3s"

# ---- K3s's install reads registries.yaml --------------------------------------------
install_file 0600 /etc/rancher/k3s/config.yaml "node-name: k3s-server-01"
install_file 0644 "$CA" "$(printf -- '-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n')"
install_file 0600 "$REG" "mirrors:
  $HOST:
    endpoint: [\"https://$HOST\"]
configs:
  $HOST:
    tls: {ca_file: $CA}"
run /usr/bin/env INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_SKIP_SELINUX_RPM=true INSTALL_K3S_EXEC=server \
	/bin/sh /usr/local/lib/devopslab/k3s-install.sh
assert_eq 0 "$GCODE" "K3s's install: $GERR"
assert_eq "{\"configs\":{\"$HOST\":{\"tls\":{\"ca_file\":\"$CA\"}}},\"mirrors\":{\"$HOST\":{\"endpoint\":[\"https://$HOST\"]}}}" \
	"$(k3s_rec registries)" "registries.yaml read by the install's start"
run systemctl is-active k3s
assert_eq "0 active" "$GCODE $GOUT" "is-active after the install"
run systemctl restart k3s-agent
assert_eq "5|Failed to restart k3s-agent.service: Unit k3s-agent.service not found." "$GCODE|$GERR" \
	"restart of the agent unit on a server"

# ---- restarts ---------------------------------------------------------------------------
started0=$(k3s_rec started)
install_file 0600 "$REG" "mirrors:
  docker.io:
    endpoint: [\"https://$HOST\"]
    rewrite: {\"^(.*)\$\": \"mirror/\$1\"}
  $HOST:
    endpoint: [\"https://$HOST\"]
configs:
  $HOST:
    auth: {username: robot, password: \"s3cret\"}
    tls: {ca_file: $CA, insecure_skip_verify: false}"
run systemctl restart k3s
assert_eq "0||" "$GCODE|$GOUT|$GERR" "a restart with a valid registries.yaml"
assert_eq 1 "$(k3s_rec restarts)" "restarts"
assert_eq "{\"configs\":{\"$HOST\":{\"auth\":{\"password\":\"s3cret\",\"username\":\"robot\"},\"tls\":{\"ca_file\":\"$CA\",\"insecure_skip_verify\":false}}},\"mirrors\":{\"docker.io\":{\"endpoint\":[\"https://$HOST\"],\"rewrite\":{\"^(.*)\$\":\"mirror/\$1\"}},\"$HOST\":{\"endpoint\":[\"https://$HOST\"]}}}" \
	"$(k3s_rec registries)" "the restart's registries.yaml recorded"
"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)' "$started0" "$(k3s_rec started)" ||
	fail "the restart did not give K3s a new start time"

refused() { # WHAT REASON-SUBSTRING: the last restart failed, and why
	assert_eq "1|$(job_failed k3s)" "$GCODE|$GERR" "a restart with $1"
	assert_contains "$(k3s_rec failed)" "$2"
	run systemctl is-active k3s
	assert_eq "3 failed" "$GCODE $GOUT" "is-active after a restart with $1"
}
install_file 0600 "$REG" "mirrors:
  $HOST:
    endpoint: [\"https://$HOST\"]
mirorrs: {}"
run systemctl restart k3s
refused "an unknown key" "registries.yaml: unknown key 'mirorrs'"
seed "$HOST" - "$IMG/oci.tar"
assert_eq "1|$DIAL" "$GCODE|$GERR" "the seed script while K3s has failed"
install_file 0600 "$REG" "mirrors:
  $HOST:
    endpoint: https://$HOST"
run systemctl restart k3s
refused "an endpoint that is not a list" "mirrors.$HOST.endpoint: not a list of URLs"
install_file 0600 "$REG" "configs:
  $HOST:
    tls: {ca_file: /etc/rancher/k3s/no-such-ca.pem}"
run systemctl restart k3s
refused "a ca_file the guest lacks" "configs.$HOST.tls.ca_file: '/etc/rancher/k3s/no-such-ca.pem': no such file in the guest"
assert_eq 1 "$(k3s_rec restarts)" "restarts after the failed ones"
install_file 0600 "$REG" "mirrors:
  $HOST:
    endpoint: [\"https://$HOST\"]"
run systemctl restart k3s
assert_eq 0 "$GCODE" "a restart set right: $GERR"
run systemctl is-active k3s
assert_eq "0 active" "$GCODE $GOUT" "is-active after a good restart"
assert_eq "null 2" "$(k3s_rec failed) $(k3s_rec restarts)" "the failure cleared"
run rm -f "$REG"
run systemctl restart k3s
assert_eq "0 null 3" "$GCODE $(k3s_rec registries) $(k3s_rec restarts)" "a restart without registries.yaml"

# ---- the seed script ------------------------------------------------------------------
"$PY" "$SIM/image_tar.py" "$TESTTMP/oci.tar" docker.io/library/nginx:1.25 ghcr.io/a/b:v1 >"$TESTTMP/oci.digests"
"$PY" "$SIM/image_tar.py" "$TESTTMP/oci2.tar" docker.io/library/nginx:1.25 ghcr.io/a/b:v1 >/dev/null
cmp -s "$TESTTMP/oci.tar" "$TESTTMP/oci2.tar" || fail "image_tar.py is not deterministic"
"$PY" "$SIM/image_tar.py" --docker "$TESTTMP/docker.tar" busybox:1.36 user/app:v2 >"$TESTTMP/docker.digests"
for f in oci docker; do
	[ "$(stat -c %s "$TESTTMP/$f.tar")" -lt $((1 << 20)) ] || fail "$f.tar is not under 1 MiB"
done
digest() { awk -v r="$2" '$1 == r { print $2 }' "$TESTTMP/$1.digests"; }
D_NGINX=$(digest oci docker.io/library/nginx:1.25)
D_B=$(digest oci ghcr.io/a/b:v1)
D_BUSYBOX=$(digest docker busybox:1.36)
D_APP=$(digest docker user/app:v2)
[[ $D_NGINX =~ ^sha256:[0-9a-f]{64}$ && $D_BUSYBOX =~ ^sha256:[0-9a-f]{64}$ ]] || fail "image_tar.py's digests: $D_NGINX $D_BUSYBOX"
assert_eq "$D_NGINX" "sha256:$(tar -xOf "$TESTTMP/oci.tar" index.json | jq -r '.manifests[0].digest' | cut -d: -f2)" \
	"the OCI image's digest is its manifest's"
NGINX_CONFIG=$(tar -xOf "$TESTTMP/oci.tar" "blobs/sha256/${D_NGINX#sha256:}" | jq -r .config.digest)

seed "$HOST" - "$IMG/oci.tar"
assert_eq "1|ctr: open $IMG/oci.tar: no such file or directory" "$GCODE|$GERR" "the archive missing"
guest_file pve1 151 "$IMG/oci.tar" "$TESTTMP/oci.tar"
seed "$HOST" /etc/devopslab/registry-ca.pem "$IMG/oci.tar"
assert_eq "1|ctr: open /etc/devopslab/registry-ca.pem: no such file or directory" "$GCODE|$GERR" "the CA file missing"
printf 'not an archive\n' >"$TESTTMP/junk.tar"
guest_file pve1 151 "$IMG/junk.tar" "$TESTTMP/junk.tar"
seed "$HOST" - "$IMG/junk.tar"
assert_eq "1|ctr: unrecognized image format" "$GCODE|$GERR" "not an image archive"
# the LAN's resolvers do not know the lab's zone: systemd-resolved's routing domain for it
seed "$HOST" "$CA" "$IMG/oci.tar"
assert_eq "1|ctr: failed to do request: Head \"https://$HOST/v2/library/nginx/blobs/$NGINX_CONFIG\": dial tcp: lookup ${HOST%%:*} on 127.0.0.53:53: no such host" \
	"$GCODE|$GERR" "a push before the lab's zone resolves"
printf '[Resolve]\nDNS=10.0.0.41\nDomains=~%s\n' "${HOST#*.}" >"$TESTTMP/resolved.conf"
guest_file pve1 151 /etc/systemd/resolved.conf.d/devopslab.conf "$TESTTMP/resolved.conf"
run systemctl restart systemd-resolved
assert_eq 0 "$GCODE" "systemd-resolved restarted"
seed "$HOST" "$CA" "$IMG/oci.tar"
assert_eq "1|ctr: unexpected status from HEAD request to https://$HOST/v2/library/nginx/blobs/$NGINX_CONFIG: 503 Service Unavailable" \
	"$GCODE|$GERR" "a push with the registry unavailable"
[ ! -e "$RDIR/pushed.json" ] || fail "a push recorded while the registry was unavailable"

printf '{"image": "registry:2", "time": %s}\n' "$(date +%s)" >"$RDIR/ready"
seed "$HOST" "$CA" "$IMG/oci.tar"
assert_eq "0|pushed docker.io/library/nginx:1.25 $HOST/library/nginx:1.25
pushed ghcr.io/a/b:v1 $HOST/a/b:v1|" "$GCODE|$GOUT|$GERR" "the OCI archive pushed"
assert_eq "{\"repositories\":{\"a/b\":{\"v1\":\"$D_B\"},\"library/nginx\":{\"1.25\":\"$D_NGINX\"}}}" \
	"$(jq -cS . "$RDIR/pushed.json")" "pushed.json after the OCI archive"
guest_file pve1 151 "$IMG/docker.tar" "$TESTTMP/docker.tar"
seed "$HOST" - "$IMG/docker.tar"
assert_eq "0|pushed docker.io/library/busybox:1.36 $HOST/library/busybox:1.36
pushed docker.io/user/app:v2 $HOST/user/app:v2|" "$GCODE|$GOUT|$GERR" "the docker save archive pushed"
assert_eq "{\"repositories\":{\"a/b\":{\"v1\":\"$D_B\"},\"library/busybox\":{\"1.36\":\"$D_BUSYBOX\"},\"library/nginx\":{\"1.25\":\"$D_NGINX\"},\"user/app\":{\"v2\":\"$D_APP\"}}}" \
	"$(jq -cS . "$RDIR/pushed.json")" "pushed.json after both archives"
assert_eq "$D_BUSYBOX" "sha256:$(tar -xOf "$TESTTMP/docker.tar" manifest.json | jq -r '.[0].Config' | cut -d. -f1)" \
	"the docker save image's digest is its config's"
cp -p "$RDIR/pushed.json" "$TESTTMP/pushed.before"
seed "$HOST" "$CA" "$IMG/oci.tar"
assert_eq "0|pushed docker.io/library/nginx:1.25 $HOST/library/nginx:1.25
pushed ghcr.io/a/b:v1 $HOST/a/b:v1|" "$GCODE|$GOUT|$GERR" "the OCI archive pushed again"
cmp -s "$TESTTMP/pushed.before" "$RDIR/pushed.json" || fail "a push of the same images changed pushed.json"
assert_eq "$(stat -c %Y "$TESTTMP/pushed.before")" "$(stat -c %Y "$RDIR/pushed.json")" "pushed.json's time after the same push"

# An image whose only name is a bare tag (org.opencontainers.image.ref.name
# without io.containerd.image.name) has no name: skipped.
"$PY" - "$TESTTMP/oci.tar" "$TESTTMP/bare.tar" <<'PYEOF'
import io, json, sys, tarfile
with tarfile.open(sys.argv[1]) as src, tarfile.open(sys.argv[2], "w", format=tarfile.USTAR_FORMAT) as dst:
    for m in src.getmembers():
        data = src.extractfile(m).read() if m.isfile() else None
        if m.name == "index.json":
            idx = json.loads(data)
            del idx["manifests"][1]["annotations"]["io.containerd.image.name"]
            data = json.dumps(idx).encode()
            m.size = len(data)
        dst.addfile(m, io.BytesIO(data) if data is not None else None)
PYEOF
guest_file pve1 151 "$IMG/bare.tar" "$TESTTMP/bare.tar"
seed "$HOST" - "$IMG/bare.tar"
assert_eq "0|pushed docker.io/library/nginx:1.25 $HOST/library/nginx:1.25|registry-seed: skipped $D_B: known only by digest" \
	"$GCODE|$GOUT|$GERR" "an image named only by a bare tag"

# ---- a simulator without --registry-dir: the registry is never there -------------------
sim_stop pve1
sim_start pve1 --guest-boot-ms 200 --exec-ms 200
seed "$HOST" - "$IMG/docker.tar"
assert_eq "1|ctr: unexpected status from HEAD request to https://$HOST/v2/library/busybox/blobs/$D_BUSYBOX: 503 Service Unavailable" \
	"$GCODE|$GERR" "a push from a simulator without --registry-dir"

exits() { # ARGV0 ARGV1: the exit codes of those commands in the VM's agent log, in order
	sim_query "' '.join(str(e['exitcode']) for e in s['guest']['vms']['pve1']['151']['agent_log'] if e['command'][:2] == ['$1', '$2'])"
}
assert_eq "2 1 1 1 1 1 1 1 0 0 0 0 1" "$(exits /bin/sh "$SEED")" "the seed runs in the agent's log"
assert_eq "5 5 0 1 1 1 0 0 0" "$(exits systemctl restart)" "the restarts in the agent's log (systemd-resolved's last)"
sim_schema_check || fail "schema check"
echo "ok"
