#!/bin/bash
# DNS against the simulators: three simulated Proxmox VE nodes, two DNS VMs
# (primary on pve2, secondary on pve3); the first node's firstboot forms the
# cluster, makes the VMs, installs Technitium in both through the guest
# agent and configures it through its API. Each Technitium is
# tests/sim/technitium_sim.py: it serves nothing until the simulated guest
# ran the install script, then HTTPS with the PKCS#12 certificate and the
# admin password the provisioner wrote into the guest; a real knotd serves
# its zones on loopback. The first node's run is killed -9 three times on
# its way through the DNS steps, and resumes. Checked from the outside:
#   - every name resolves (kdig) from the primary and from the secondary,
#     whose zone came by a real TSIG-signed AXFR; an unsigned AXFR is refused;
#   - the web certificate verifies against the cluster CA for the VM's
#     address (curl), and not against another CA;
#   - the servers' settings (recursion for the LAN, forwarders, TSIG key);
#   - a re-run changes nothing (no set/add/create request); a record changed
#     by hand is reported and set back; one the manifest drops is removed,
#     one made by hand stays; a wrong admin password fails with
#     Technitium's own message; no secret reaches the output or the records.
# timeout: 300
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

SIM_SECRETS="pw, dns_pw, cluster_ca_key" sim_init 3
A=$TESTTMP/assets
mkdir -p "$A"
qemu-img create -q -f qcow2 "$A/cloud.qcow2" 2G
tn_assets "$A"
(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-keyout "$TESTTMP/ca.key" -out "$TESTTMP/ca.pem" -subj "/O=DevOpsLab/CN=test cluster CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null)
(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-keyout "$TESTTMP/other.key" -out "$TESTTMP/other.pem" -subj "/CN=another CA" 2>/dev/null)
DNS_PW='dns admin p@ss'
printf '%s\n' "$DNS_PW" >"$TESTTMP/dns.pw"
"$PY" - "$TESTTMP/cluster.yaml" <<'PYEOF'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("assets: [{name: rootfs, file: rootfs.tar.zst}]",
              "assets:\n"
              "  - {name: rootfs, file: rootfs.tar.zst}\n"
              "  - {name: cloud, file: cloud.qcow2}\n"
              "  - {name: technitium, file: dns/DnsServerPortable.tar.gz}\n"
              "  - {name: aspnet, file: dns/aspnetcore-runtime-8.0-linux-x64.tar.gz}")
s += """templates:
  - {name: tpl, vmid: 9000, image: cloud, target_node: [pve1, pve2, pve3]}
vms:
  - id: dns
    name: "dns-{n:02}"
    count: 2
    vmid: 501
    target_node: [pve2, pve3]
    clone: tpl
    full_clone: false
    memory: 1024
    agent: 1
    disk: {size: 4G}
    ipconfig0: "ip=10.0.0.41/24,gw=10.0.0.1"
dns:
  primary: dns-01
  secondary: dns-02
  wildcard: 10.0.0.30
  records:
    - {name: git, type: A, value: 10.0.0.70}
    - {name: www, type: CNAME, value: git.home.arpa}
    - {name: "@", type: TXT, value: "lab=devopslab"}
  forwarders:
    - {address: 1.1.1.1, protocol: https, name: "https://cloudflare-dns.com/dns-query"}
    - {address: 9.9.9.9, protocol: https, name: "https://dns.quad9.net/dns-query"}
  admin_password: {secret: dns_pw}
  airgap: {package: technitium, runtime: aspnet}
"""
open(p, "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }

# The simulated world: the Proxmox nodes publish what the install script
# received; each Technitium starts serving once its guest has it.
INST=$TESTTMP/tn-installed
mkdir -p "$INST"
FB_PIN=local
sim_start_all --guest-boot-ms 200 --technitium-dir "$INST"
MAP=$TESTTMP/tn-address-map
: >"$MAP"
technitium_start_installed dns-01 "$INST/dns-01" --address-map-file "$MAP"
technitium_start_installed dns-02 "$INST/dns-02" --address-map-file "$MAP"
# The VMs' addresses, as the other server's knotd reaches them here.
printf '10.0.0.41=127.0.0.1:%s\n10.0.0.42=127.0.0.1:%s\n' "$TN_DNS_PORT_dns_01" "$TN_DNS_PORT_dns_02" >"$MAP"
TN_PORT1=${TN_URL_dns_01##*:} TN_PORT2=${TN_URL_dns_02##*:}
DNSARGS=(--assets "$A" --boot-timeout 60 --ca "$TESTTMP/ca.pem" --ca-key "$TESTTMP/ca.key"
	--dns-password-file "$TESTTMP/dns.pw" --dns-timeout 60
	--dns-connect "dns-01=127.0.0.1:$TN_PORT1" --dns-connect "dns-02=127.0.0.1:$TN_PORT2"
	--dns-query "dns-01=127.0.0.1:$TN_DNS_PORT_dns_01" --dns-query "dns-02=127.0.0.1:$TN_DNS_PORT_dns_02"
	--verify-timeout 30)

# The members join; the first node's run is killed (-9) three times on its
# way through the DNS steps: as it installs Technitium in the primary, as
# it creates the zone, as it makes the secondary. Each next run resumes.
kill_at() { # PATTERN
	local i f=$TESTTMP/fb-pve1.out
	for i in $(seq 1200); do
		grep -q -- "$1" "$f" 2>/dev/null && break
		kill -0 "${FB_PID[pve1]}" 2>/dev/null || break
		sleep 0.05
	done
	grep -q -- "$1" "$f" || { cat "$f" >&2; fail "the run never reached '$1'"; }
	kill -9 "${FB_PID[pve1]}" 2>/dev/null || true
	wait "${FB_PID[pve1]}" 2>/dev/null || true
	cat "$f" >>"$TESTTMP/fb-pve1-killed.log"
}
fb_bg pve2 "${DNSARGS[@]}"; fb_bg pve3 "${DNSARGS[@]}"; fb_bg pve1 "${DNSARGS[@]}"
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
kill_at "dns-01: installing Technitium DNS Server from the bundle"
for p in "Creating DNS zone home.arpa" "Making dns-02 a secondary for home.arpa"; do
	fb_bg pve1 "${DNSARGS[@]}"
	kill_at "$p"
done
fb_bg pve1 "${DNSARGS[@]}"
fb_wait pve1
OUT=$(cat "$TESTTMP/fb-pve1.out")
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the run after the kills reported an error"; }
# The last step asked everything again from the outside; its table.
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "firstboot pve1 exited $RC, not 0 (the plan has no edge)"; }
grep -q "Verifying the cluster end to end: \(already \)\?done" <<<"$OUT" || { echo "$OUT" >&2; fail "no verification"; }
for want in "quorum  *lab  *yes  *quorate, 3 of 3 nodes online" "vm  *dns-02  *yes  *running on pve3" \
	"dns  *devopslab-verify.home.arpa A @dns-02  *yes  *10.0.0.30" "dns  *www.home.arpa CNAME @dns-01  *yes  *git.home.arpa" \
	"dns  *home.arpa TXT @dns-02  *yes  *lab=devopslab" "^21 of 21 answered as planned"; do
	grep -q "$want" <<<"$OUT" || { echo "$OUT" >&2; fail "the verification table lacks '$want'"; }
done
for title in "Installing Technitium DNS on dns-01" "Installing Technitium DNS on dns-02" \
	"Creating DNS zone home.arpa" "Adding DNS record git.home.arpa A 10.0.0.70" "Setting the DNS forwarders" \
	"Making dns-02 a secondary for home.arpa"; do
	grep -q "\] $title: \\(already \\)\\?done" <<<"$OUT" || { echo "$OUT" >&2; fail "step '$title' not done"; }
done

# Real DNS: the primary's knotd, then the secondary's (its zone by AXFR).
for port in "$TN_DNS_PORT_dns_01" "$TN_DNS_PORT_dns_02"; do
	assert_eq "10.0.0.70" "$(tn_dig "$port" git.home.arpa A)" "git A from :$port"
	assert_eq "git.home.arpa." "$(tn_dig "$port" www.home.arpa CNAME)" "www CNAME from :$port"
	assert_eq '"lab=devopslab"' "$(tn_dig "$port" home.arpa TXT)" "TXT from :$port"
	assert_eq "10.0.0.30" "$(tn_dig "$port" anything.home.arpa A)" "the wildcard from :$port"
	assert_eq "10.0.0.11" "$(tn_dig "$port" pve1.home.arpa A)" "node record from :$port"
	assert_eq "10.0.0.42" "$(tn_dig "$port" dns-02.home.arpa A)" "VM record from :$port"
done
serial1=$(tn_dig "$TN_DNS_PORT_dns_01" home.arpa SOA | awk '{print $3}')
assert_eq "$serial1" "$(tn_dig "$TN_DNS_PORT_dns_02" home.arpa SOA | awk '{print $3}')" "the secondary's serial"
# Only then were the nodes' resolvers handed over: the lab's two servers,
# then none (the test manifest has no network.dns), the zone as search.
for n in pve1 pve2 pve3; do
	assert_eq "{'search': 'home.arpa', 'dns1': '10.0.0.41', 'dns2': '10.0.0.42'}" \
		"$(sim_query "s['nodes']['$n'].get('dns')")" "$n's resolver"
done
grep -q "Handing the nodes' DNS over to the lab's DNS servers: done" <<<"$OUT" || { echo "$OUT" >&2; fail "no hand-over"; }

# The transfer: only with the TSIG key (as both servers hold it).
tn_vm dns-01 10.0.0.41
tn_login "$DNS_PW"
SET1=$(tn_ok /api/settings/get)
KEY=$(jq -r '.response.tsigKeys[] | select(.keyName == "devopslab-xfr") | .sharedSecret' <<<"$SET1")
[ -n "$KEY" ] || { echo "$SET1" >&2; fail "no TSIG key devopslab-xfr on the primary"; }
tn_vm dns-02 10.0.0.42
tn_login "$DNS_PW"
SET2=$(tn_ok /api/settings/get)
assert_eq "$KEY" "$(jq -r '.response.tsigKeys[] | select(.keyName == "devopslab-xfr") | .sharedSecret' <<<"$SET2")" \
	"the secondary's TSIG secret"
kdig @127.0.0.1 -p "$TN_DNS_PORT_dns_01" +time=2 +retry=1 -y "hmac-sha256:devopslab-xfr:$KEY" home.arpa AXFR \
	>"$TESTTMP/axfr" 2>&1 || true
grep -q "git.home.arpa.*10.0.0.70" "$TESTTMP/axfr" || { cat "$TESTTMP/axfr" >&2; fail "a signed AXFR failed"; }
kdig @127.0.0.1 -p "$TN_DNS_PORT_dns_01" +time=2 +retry=1 home.arpa AXFR >"$TESTTMP/axfr-plain" 2>&1 || true
grep -q "10.0.0.70" "$TESTTMP/axfr-plain" && { cat "$TESTTMP/axfr-plain" >&2; fail "an unsigned AXFR was answered"; }
# The servers' settings.
for set in "$SET1" "$SET2"; do
	assert_eq "UseSpecifiedNetworkACL ['10.0.0.0/24']" \
		"$(jq -r '"\(.response.recursion) [\(.response.recursionNetworkACL | map("'"'"'" + . + "'"'"'") | join(", "))]"' <<<"$set")" \
		"recursion"
	assert_eq "Https https://cloudflare-dns.com/dns-query (1.1.1.1),https://dns.quad9.net/dns-query (9.9.9.9)" \
		"$(jq -r '"\(.response.forwarderProtocol) \(.response.forwarders | join(","))"' <<<"$set")" "forwarders"
done
assert_eq "dns-01.home.arpa" "$(jq -r .response.dnsServerDomain <<<"$SET1")" "the primary's name"
tn_vm dns-01 10.0.0.41
OPTS=$(tn_ok /api/zones/options/get zone=home.arpa)
assert_eq "UseSpecifiedNetworkACL 10.0.0.42 devopslab-xfr SpecifiedNameServers 10.0.0.42" \
	"$(jq -r '.response | "\(.zoneTransfer) \(.zoneTransferNetworkACL | join(",")) \(.zoneTransferTsigKeyNames | join(",")) \(.notify) \(.notifyNameServers | join(","))"' <<<"$OPTS")" \
	"the zone's transfer and notify options"

# The web console's certificate: the cluster CA's, for the VM's address.
curl -sS --max-time 10 --cacert "$TESTTMP/ca.pem" --connect-to "10.0.0.41:53443:127.0.0.1:$TN_PORT1" \
	https://10.0.0.41:53443/api/user/session/get -o /dev/null || fail "the primary's certificate does not verify"
curl -sS --max-time 10 --cacert "$TESTTMP/other.pem" --connect-to "10.0.0.41:53443:127.0.0.1:$TN_PORT1" \
	https://10.0.0.41:53443/ -o /dev/null 2>/dev/null && fail "another CA's trust was accepted"
curl -sS --max-time 10 --cacert "$TESTTMP/ca.pem" --connect-to "10.0.0.42:53443:127.0.0.1:$TN_PORT1" \
	https://10.0.0.42:53443/ -o /dev/null 2>/dev/null && fail "dns-01's certificate passed for dns-02's address"
# What the guests received (the simulated install published it).
assert_eq "$DNS_PW" "$(cat "$INST/dns-01/admin.pw")" "the admin password file"
grep -q '^DNS_SERVER_WEB_SERVICE_HTTPS_PORT=53443$' "$INST/dns-02/technitium.env" || fail "env: HTTPS port"
assert_eq "0600" "$(sim_query "s['guest']['vms']['pve2']['501']['guestfs']['/etc/devopslab/technitium/admin.pw']['mode']")" \
	"mode of admin.pw"

# A re-run converges: no request that changes anything, to any API.
count_changes() {
	cat "$TECHNITIUM_SIM_RECORD_DIR"/dns-0[12].jsonl |
		jq -s '[.[] | select(.path | test("/(set|add|create|update|delete|resync)$"))] | length'
}
before=$(count_changes)
pve_before=$(mutations)
fb pve1 "${DNSARGS[@]}"
fb_formed pve1
assert_eq "$before" "$(count_changes)" "Technitium changes in a converged re-run"
assert_eq "$pve_before" "$(mutations)" "Proxmox changes in a converged re-run"

# A record changed by hand is reported and set back.
tn_vm dns-01 10.0.0.41
tn_ok /api/zones/records/add domain=git.home.arpa zone=home.arpa type=A ipAddress=10.0.0.99 overwrite=true >/dev/null
assert_eq "10.0.0.99" "$(tn_dig "$TN_DNS_PORT_dns_01" git.home.arpa A)" "the hand-made change"
fb pve1 "${DNSARGS[@]}"
fb_formed pve1
grep -q "git.home.arpa A was 10.0.0.99: setting it back to 10.0.0.70" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the change by hand was not reported"; }
assert_eq "10.0.0.70" "$(tn_dig "$TN_DNS_PORT_dns_01" git.home.arpa A)" "git A set back"

# A record the manifest drops is removed (it carries our comment); one made
# by hand (no comment of ours) stays.
tn_vm dns-01 10.0.0.41
tn_ok /api/zones/records/add domain=hand.home.arpa zone=home.arpa type=A ipAddress=10.0.0.55 >/dev/null
sed -i '/{name: git, type: A, value: 10.0.0.70}/d' "$TESTTMP/cluster.yaml"
fb pve1 "${DNSARGS[@]}"
fb_formed pve1
grep -q "dns-01: removing git.home.arpa A 10.0.0.70 (no longer in the manifest)" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the dropped record was not removed"; }
for port in "$TN_DNS_PORT_dns_01" "$TN_DNS_PORT_dns_02"; do
	assert_eq "10.0.0.30" "$(tn_dig "$port" git.home.arpa A)" "git.home.arpa falls to the wildcard from :$port"
	assert_eq "10.0.0.55" "$(tn_dig "$port" hand.home.arpa A)" "the hand-made record from :$port"
done

# The verification fails, and says where, when a server does not answer
# (its queries sent to a port where nothing listens).
dead=$(free_port)
V=("${DNSARGS[@]/#dns-02=127.0.0.1:$TN_DNS_PORT_dns_02/dns-02=127.0.0.1:$dead}")
V+=(--verify-timeout 2)
fb pve1 "${V[@]}"
[ "$RC" = 1 ] || { echo "$OUT" >&2; fail "a DNS server not answering: exit $RC"; }
grep -q "dns  *www.home.arpa CNAME @dns-02  *NO  *no answer" <<<"$OUT" || { echo "$OUT" >&2; fail "no failed row for dns-02"; }
grep -q "dns  *www.home.arpa CNAME @dns-01  *yes" <<<"$OUT" || { echo "$OUT" >&2; fail "dns-01's row"; }
grep -q "error: cluster/verify: 8 of 19 checks did not answer as planned; the first: dns " <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the verification's error"; }
grep -q "Handing the nodes' DNS" <<<"$OUT" && { echo "$OUT" >&2; fail "a hand-over after a failed verification"; }

# A wrong admin password: Technitium's own words, and a failed run.
printf 'not the password\n' >"$TESTTMP/wrong.pw"
W=("${DNSARGS[@]/#$TESTTMP\/dns.pw/$TESTTMP/wrong.pw}")
fb pve1 "${W[@]}"
[ "$RC" = 1 ] || { echo "$OUT" >&2; fail "a wrong DNS password: exit $RC"; }
grep -q "Invalid username or password" <<<"$OUT" || { echo "$OUT" >&2; fail "Technitium's message was not passed on"; }

# Secrets: never in the output, never in a simulator's record.
for f in "$TESTTMP"/fb-*.log "$TESTTMP"/fb-*.out "$TECHNITIUM_SIM_RECORD_DIR"/*.jsonl "$PVE_SIM_RECORD_DIR"/*.jsonl; do
	[ -f "$f" ] || continue
	grep -qF "$DNS_PW" "$f" && fail "the DNS admin password is in $f"
	grep -qF "$KEY" "$f" && fail "the TSIG secret is in $f"
done
sim_schema_check || fail "schema check"
echo "requests: $(requests) Proxmox, $(cat "$TECHNITIUM_SIM_RECORD_DIR"/dns-0[12].jsonl | wc -l) Technitium"
