#!/bin/bash
# The seed documents of lib/guests/cloudinit.c, as build/tests/harness/
# guest-seed writes them and as tests/data/guests/ holds them, read by the
# real consumers (Debian 12's cloud-init 22.4 and netplan 0.106,
# scripts/install-deps.sh):
# - user-data: `cloud-init schema --config-file` accepts each (a VM with a
#   user, keys and a payload; one with none; hostile keys); a copy broken
#   on purpose is refused, so the check can fail;
# - meta-data: a YAML mapping of the two strings cloud-init's NoCloud reads;
# - network-config: cloud-init 22.4's `schema` has no network schema, so it
#   is run through cloud-init's own renderers (`cloud-init devel
#   net-convert`): ifupdown's ENI as on Debian (address, default route,
#   resolvers, the udev rule naming the NIC eth0 by its MAC), and netplan as
#   on Ubuntu, whose YAML netplan's own generator then turns into
#   systemd-networkd files (and refuses a copy with a misspelt key).
# Not checked here: a guest booting the seed (the QEMU tests' business once
# the guests are created), ifupdown parsing the ENI file (ifupdown is not
# installed on a build machine: it would take over its networking).
. "$TOP/tests/lib.sh"
cd "$TESTTMP"

command -v cloud-init >/dev/null || skip "no cloud-init (scripts/install-deps.sh)"
GENERATE=/usr/libexec/netplan/generate
[ -x "$GENERATE" ] || GENERATE=/lib/netplan/generate
[ -x "$GENERATE" ] || skip "no netplan generator (netplan.io, scripts/install-deps.sh)"
case $DEVOPSLAB in
"$TOP"/provisioner/*) build=$TOP/build ;;
*) build=$(dirname "$DEVOPSLAB") ;;
esac
SEED=$build/tests/harness/guest-seed
[ -x "$SEED" ] || fail "no $SEED (make tests)"
SHA=9d2f0c1b3a4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8

mkdir full plain hostile
"$SEED" docs full --user ops --key "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBsYWNlaG9sZGVy ops@lab" \
	--key "ssh-rsa AAAAB3NzaC1yc2E second" \
	--file "k3s:/usr/local/bin/k3s:$SHA:755" \
	--file "k3s-airgap-images-amd64.tar.zst:/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst:$SHA:644"
"$SEED" docs plain --no-gateway --no-dns
"$SEED" docs hostile --user ops --key 'ssh-ed25519 AAAA a: b "c" #d' --key 'yes' --key '- [x]: {y}'
cp "$TOP"/tests/data/guests/* .

# ---- user-data -------------------------------------------------------------
for f in full/user-data plain/user-data hostile/user-data full.user-data plain.user-data; do
	expect_exit 0 cloud-init schema --config-file "$f"
	assert_contains "$OUT" "Valid" # 22.4: "Valid cloud-config: FILE"; later: "Valid schema FILE"
done
sed 's/lock_passwd: true/lock_passwd: "maybe"/' full/user-data >broken-user-data
! cmp -s full/user-data broken-user-data || fail "the broken copy is not broken"
expect_exit 1 cloud-init schema --config-file broken-user-data
assert_contains "$OUT" "users.0"
sed 's/^runcmd:$/runcmd: "not a list"\nx:/' full/user-data >broken-user-data
expect_exit 1 cloud-init schema --config-file broken-user-data
assert_contains "$OUT" "runcmd"

# ---- meta-data, and what PyYAML (cloud-init's reader) makes of all three ------
"$PY" - full plain hostile <<'PYEOF'
import sys, yaml
for d in sys.argv[1:]:
    md = yaml.safe_load(open(d + "/meta-data"))
    assert md == {"instance-id": "devopslab-101", "local-hostname": "vm1"}, md
    ud = yaml.safe_load(open(d + "/user-data"))
    assert ud["hostname"] == "vm1" and ud["fqdn"] == "vm1.lab.example", ud
    assert ud["manage_etc_hosts"] is True and ud["package_update"] is False, ud
    nc = yaml.safe_load(open(d + "/network-config"))
    eth = nc["ethernets"]["eth0"]
    assert nc["version"] == 2 and eth["match"]["macaddress"] == "02:00:00:00:01:01", nc
    assert eth["set-name"] == "eth0" and eth["addresses"] == ["10.0.10.21/24"], nc
hostile = yaml.safe_load(open("hostile/user-data"))
keys = hostile["users"][0]["ssh_authorized_keys"]
assert keys == ['ssh-ed25519 AAAA a: b "c" #d', "yes", "- [x]: {y}"], keys
full = yaml.safe_load(open("full/user-data"))
assert full["runcmd"] == [["/bin/sh", "/usr/local/lib/devopslab/payload.sh", "DEVOPSLAB",
                           "/usr/local/lib/devopslab/payload.list"]], full["runcmd"]
assert [f["path"] for f in full["write_files"]] == ["/usr/local/lib/devopslab/payload.sh",
                                                    "/usr/local/lib/devopslab/payload.list"]
assert full["write_files"][0]["content"].startswith("#!/bin/sh\n")
print("PyYAML reads what was meant")
PYEOF

# ---- network-config: cloud-init's ENI renderer (Debian) ------------------------
eni() { # DIR -> the rendered interfaces file
	cloud-init devel net-convert -p "$1/network-config" -k yaml -D debian -O eni -d "$1/eni" >"$1/eni.out" 2>&1 ||
		{ cat "$1/eni.out"; fail "net-convert (eni) refused $1/network-config"; }
	echo "$1/eni/etc/network/interfaces.d/50-cloud-init"
}
f=$(eni full)
assert_contains "$f" "auto eth0"
assert_contains "$f" "iface eth0 inet static"
assert_contains "$f" "address 10.0.10.21/24"
assert_contains "$f" "post-up route add default gw 10.0.10.1 || true"
assert_contains "$f" "dns-nameservers 10.0.10.2"
assert_contains "$f" "dns-search lab.example"
assert_contains full/eni/etc/udev/rules.d/70-persistent-net.rules 'ATTR{address}=="02:00:00:00:01:01", NAME="eth0"'
f=$(eni plain)
assert_contains "$f" "address 10.0.10.21/24"
if grep -q "route\|dns-" "$f"; then cat "$f"; fail "a route or resolver without one given"; fi

# ---- network-config: netplan (Ubuntu), then netplan's own generator ---------
netplan_check() { # DIR
	cloud-init devel net-convert -p "$1/network-config" -k yaml -D ubuntu -O netplan -d "$1/np" >"$1/np.out" 2>&1 ||
		{ cat "$1/np.out"; fail "net-convert (netplan) refused $1/network-config"; }
	chmod 600 "$1"/np/etc/netplan/*.yaml
	"$GENERATE" --root-dir "$1/np" 2>"$1/generate.err" || { cat "$1/generate.err"; fail "netplan generate: $1"; }
}
netplan_check full
net=full/np/run/systemd/network/10-netplan-eth0.network
assert_contains "$net" "PermanentMACAddress=02:00:00:00:01:01"
assert_contains "$net" "Address=10.0.10.21/24"
assert_contains "$net" "Gateway=10.0.10.1"
assert_contains "$net" "DNS=10.0.10.2"
assert_contains "$net" "Domains=lab.example"
assert_contains full/np/run/systemd/network/10-netplan-eth0.link "Name=eth0"
netplan_check plain
if grep -q "Gateway=\|DNS=" plain/np/run/systemd/network/10-netplan-eth0.network; then
	fail "plain: a gateway or resolver without one given"
fi
# netplan refuses what it does not know: the same check on a misspelt copy
mkdir -p broken/np/etc/netplan
sed 's/addresses:$/adresses:/' full/np/etc/netplan/50-cloud-init.yaml \
	>broken/np/etc/netplan/50-cloud-init.yaml
chmod 600 broken/np/etc/netplan/50-cloud-init.yaml
expect_exit 1 "$GENERATE" --root-dir broken/np
assert_contains "$OUT" "unknown key 'adresses'"

# ---- what the harness refuses (the library's checks) -----------------------------
expect_exit 1 "$SEED" docs plain --hostname "vm#1"
expect_exit 1 "$SEED" docs plain --file "k3s:/usr/local/../bin/k3s:$SHA:755"
expect_exit 1 "$SEED" docs plain --key "$(printf 'a\nb')"
echo "ok: cloud-init schema, its ENI and netplan renderers and netplan's generator accept the seed documents"
