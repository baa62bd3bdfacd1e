#!/bin/bash
# A Proxmox Backup Server storage from the manifest (docs/operations.md,
# "Backups"): backup.pbs makes the step cluster/backup-storage/NAME, run
# before the templates; from a signed bundle, whose sealed secrets hold the
# PBS password, it adds the storage (POST /storage, type pbs, the password
# redacted in every record and never in storage.cfg), the backup job goes
# to it; a re-run writes nothing; a storage changed by hand is set back; a
# storage of that name of another type is refused (exit 3) untouched; a
# draft manifest without the secret fails with what is missing; validate
# names each bad field at its line.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

guests_init
FP="AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
cp "$TESTTMP/cluster.yaml" "$TESTTMP/cluster-base.yaml"
cat >>"$TESTTMP/cluster.yaml" <<YAML
backup:
  storage: pbs-lab
  keep: {daily: 7}
  pbs:
    server: 10.0.0.50
    datastore: lab
    username: backup@pbs!devopslab
    password: {secret: pbs_secret}
    fingerprint: "$FP"
    namespace: homelab
YAML
sed -i 's/names: \[pw\]/names: [pw, pbs_secret]/' "$TESTTMP/cluster.yaml"
grep -q "pbs_secret\]" "$TESTTMP/cluster.yaml" || fail "the secrets list edit did not take"
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }
"$DEVOPSLAB" plan --manifest "$TESTTMP/cluster.yaml" --json >"$TESTTMP/plan.json" 2>/dev/null || fail "plan"
assert_eq '["cluster/storage/local-lvm","cluster/backup-storage/pbs-lab","cluster/template/tpl/pve1"]' \
	"$(jq -c '[.steps[] | select(.node == null) | .id][0:3]' "$TESTTMP/plan.json")" "the storage before the templates"
assert_eq '{"storage":"pbs-lab","type":"pbs","server":"10.0.0.50","datastore":"lab","username":"backup@pbs!devopslab","password":{"secret":"pbs_secret"},"fingerprint":"'"$FP"'","namespace":"homelab","content":"backup"}' \
	"$(jq -c '.steps[] | select(.id == "cluster/backup-storage/pbs-lab") | .params' "$TESTTMP/plan.json")" \
	"the step's parameters (the password only by name)"

sim_start_all --guest-boot-ms 200
GUESTS=(--assets "$A" --boot-timeout 60)

# A draft manifest has no sealed secrets: the step says what it needs.
fb_bg pve2; fb_bg pve3
fb pve1 "${GUESTS[@]}"
rc1=$RC out1=$OUT
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
[ "$rc1" != 0 ] || { echo "$out1" >&2; fail "the PBS storage was added without its password"; }
assert_contains "$out1" "the Proxmox Backup Server password (secret 'pbs_secret') is needed"
assert_eq 0 "$(requests 'r["method"] == "POST" and r["path"] == "/api2/json/storage"')" "storages added without a password"

# From the bundle: added, then the job on it.
PBS_PW='pbs t0ken-secret value'
mkdir -p "$TESTTMP/in/assets"
cp -r "$A"/. "$TESTTMP/in/assets/"
sim_bundle "pbs_secret=$PBS_PW"
GUESTS=(--boot-timeout 60) # the bundle brings its assets
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_contains "$OUT" "Adding the Proxmox Backup Server storage pbs-lab (datastore lab on 10.0.0.50): done"
assert_contains "$OUT" "Scheduling the VMs' backups (02:30, on pbs-lab): done"
assert_eq 1 "$(requests 'r["method"] == "POST" and r["path"] == "/api2/json/storage" and r["params"] == {
	"storage": "pbs-lab", "type": "pbs", "server": "10.0.0.50", "datastore": "lab",
	"username": "backup@pbs!devopslab", "fingerprint": "'"$FP"'", "namespace": "homelab", "content": "backup",
	"password": "<redacted>"} and r["redacted"] == ["password"]')" "the storage as added (password redacted)"
assert_eq "$PBS_PW" "$(sim_query 's["guest"]["storage_pw"]["pbs-lab"]')" "the password the node keeps (priv/storage)"
assert_eq None "$(sim_query 's["guest"]["storage"]["pbs-lab"].get("password")')" "a password in storage.cfg"
assert_eq pbs-lab "$(sim_query 's["guest"]["jobs"]["devopslab"]["storage"]')" "the backup job's storage"
if grep -rqF "$PBS_PW" "$PVE_SIM_RECORD_DIR" "$TESTTMP"/fb-*.log "$TESTTMP"/report-pve1 2>/dev/null; then
	fail "the PBS password is in a record, log or report"
fi

# Converged, then set back, then refused.
before=$(mutations)
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_contains "$OUT" "Adding the Proxmox Backup Server storage pbs-lab (datastore lab on 10.0.0.50): already done"
assert_eq "$before" "$(mutations)" "mutating requests of a converged run"
sim_edit 's["guest"]["storage"]["pbs-lab"].update(server="10.0.0.51", namespace="other")'
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_contains "$OUT" "storage pbs-lab differs from the manifest (server, namespace): setting it back"
assert_eq 1 "$(requests 'r["method"] == "PUT" and r["path"] == "/api2/json/storage/pbs-lab" and r["params"].get("server") == "10.0.0.50" and "datastore" not in r["params"] and r["params"].get("password") == "<redacted>"')" \
	"the storage set back (the password again, the fixed datastore not)"
assert_eq "10.0.0.50 homelab" "$(sim_query '" ".join(s["guest"]["storage"]["pbs-lab"][k] for k in ("server", "namespace"))')" \
	"server and namespace after the run"
# a datastore cannot change in place: refused, untouched
sim_edit 's["guest"]["storage"]["pbs-lab"]["datastore"] = "other"'
before=$(mutations)
fb pve1 "${GUESTS[@]}"
assert_eq 3 "$RC" "exit status for a storage on another datastore"
assert_contains "$OUT" "storage 'pbs-lab' is datastore 'other', the manifest's is 'lab'"
assert_eq "$before" "$(mutations)" "mutating requests of the refused run"
sim_edit 's["guest"]["storage"]["pbs-lab"] = {"type": "dir", "path": "/srv/x", "content": ["backup"]}'
before=$(mutations)
fb pve1 "${GUESTS[@]}"
assert_eq 3 "$RC" "exit status for a storage of that name of another type"
assert_contains "$OUT" "storage 'pbs-lab' exists as type 'dir', not a Proxmox Backup Server: not replacing it"
assert_eq "$before" "$(mutations)" "mutating requests of the refused run"

# validate names each bad field at its line.
cp "$TESTTMP/cluster-base.yaml" "$TESTTMP/bad.yaml"
sed -i 's/names: \[pw\]/names: [pw, pbs_secret]/' "$TESTTMP/bad.yaml"
cat >>"$TESTTMP/bad.yaml" <<'YAML'
backup:
  storage: local
  pbs:
    server: "not a host!"
    datastore: lab
    username: backup
    password: {secret: nosuch}
    fingerprint: "AB:CD"
YAML
expect_exit 2 "$DEVOPSLAB" validate "$TESTTMP/bad.yaml"
for want in "backup.storage: 'local' is the installer's own storage" \
	"backup.pbs.server: 'not a host!' is neither an IPv4 address nor a DNS name" \
	"backup.pbs.username: 'backup' is not user@realm or user@realm!token" \
	"backup.pbs.fingerprint: 'AB:CD' is not a SHA-256 fingerprint" "backup.pbs.password"; do
	assert_contains "$OUT" "$want"
done
assert_contains "$OUT" "bad.yaml:$(grep -n 'fingerprint: "AB:CD"' "$TESTTMP/bad.yaml" | cut -d: -f1):"
sed -i '/    datastore: lab/d' "$TESTTMP/bad.yaml"
expect_exit 2 "$DEVOPSLAB" validate "$TESTTMP/bad.yaml"
assert_contains "$OUT" "datastore"

sim_schema_check || fail "schema check"
