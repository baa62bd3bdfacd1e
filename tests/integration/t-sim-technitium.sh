#!/bin/bash
# The Technitium DNS Server simulator (tests/sim/technitium_sim.py), a
# primary and a secondary, through its HTTP API with curl and with real DNS
# queries (kdig) to the knotd each one runs on a loopback port:
#   - a wrong password is status "error", no or a bad token "invalid-token",
#     every answer HTTP 200; a missing parameter is an error naming it;
#   - zone homelab.local gets SOA and NS on creation; a wildcard A
#     *.homelab.local → 10.0.10.30 and A records; an exact duplicate add is
#     an error, overwrite=true replaces the set; update and delete;
#   - settings: forwarders over DoH (Https) kept, a bad forwarderProtocol, a
#     plain address with Https and a bad recursion value refused; a TSIG key;
#   - zone options: transfer only with that TSIG key, notify to the secondary;
#   - the secondary's zone comes by a real TSIG-signed AXFR (an unsigned
#     AXFR is refused by the primary); both answer the wildcard for any
#     name and the records; SOA serials equal (DNS and API zone list), and
#     after a change on the primary the secondary catches up (NOTIFY);
#   - state (zones, records, settings) survives a restart; sessions do not;
#     knotd stops with its simulator;
#   - the requests recorded, with no password, token or TSIG secret.
# timeout: 300
# shellcheck disable=SC2119,SC2154 # tn_login's password is optional; TN_*_NAME are set by printf -v
# sanitizer: skip
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

technitium_start dns1
technitium_start dns2
P1=$TN_DNS_PORT_dns1 P2=$TN_DNS_PORT_dns2
status() { jq -r .status <<<"$1"; }

# --- authentication ---------------------------------------------------------
tn_use dns1
out=$(curl -sS -w '\n%{http_code}' "$TN_URL/api/user/login?user=admin&pass=wrong")
assert_eq 200 "$(tail -n1 <<<"$out")" "HTTP status of a bad login"
assert_eq error "$(head -n1 <<<"$out" | jq -r .status)" "bad password"
assert_contains "$(head -n1 <<<"$out" | jq -r .errorMessage)" "Invalid username or password"
out=$(curl -sS -w '\n%{http_code}' "$TN_URL/api/zones/list")
assert_eq 200 "$(tail -n1 <<<"$out")" "HTTP status without a token"
assert_eq invalid-token "$(head -n1 <<<"$out" | jq -r .status)" "no token"
TN_TOKEN=0123456789abcdef
assert_eq invalid-token "$(status "$(tn_api /api/zones/list)")" "a made-up token"
tn_login
tn_use dns2
tn_login
tn_use dns1
# the token also works as a parameter (backward compatible)
assert_eq ok "$(curl -sS "$TN_URL/api/zones/list?token=$TN_TOKEN" | jq -r .status)" "token parameter"

# --- zone and records ---------------------------------------------------------
out=$(tn_api /api/zones/create type=Primary)
assert_eq "Parameter 'zone' missing." "$(jq -r .errorMessage <<<"$out")" "missing zone"
out=$(tn_api /api/zones/create zone=homelab.local type=Bogus)
assert_eq "Requested value 'Bogus' was not found." "$(jq -r .errorMessage <<<"$out")" "bad zone type"
tn_ok /api/zones/create zone=homelab.local type=Primary >/dev/null
out=$(tn_api /api/zones/create zone=homelab.local type=Primary)
assert_eq "Zone already exists: homelab.local" "$(jq -r .errorMessage <<<"$out")" "zone twice"
out=$(tn_ok /api/zones/records/get domain=homelab.local)
assert_eq "NS SOA" "$(jq -r '[.response.records[].type] | sort | join(" ")' <<<"$out")" "records of a new zone"
assert_eq 1 "$(jq -r '.response.records[] | select(.type=="SOA") | .rData.serial' <<<"$out")" "first serial"

tn_ok /api/zones/records/add 'domain=*.homelab.local' type=A ipAddress=10.0.10.30 ttl=300 >/dev/null
tn_ok /api/zones/records/add domain=pve1.homelab.local type=A ipAddress=10.0.10.11 >/dev/null
tn_ok /api/zones/records/add domain=pve2.homelab.local zone=homelab.local type=A ipAddress=10.0.10.12 >/dev/null
tn_ok /api/zones/records/add domain=pve3.homelab.local type=A ipAddress=10.0.10.99 >/dev/null
tn_ok /api/zones/records/add domain=pve3.homelab.local type=A ipAddress=10.0.10.13 overwrite=true >/dev/null
tn_ok /api/zones/records/add domain=homelab.local type=TXT 'text=v=lab; owner=devopslab' >/dev/null
tn_ok /api/zones/records/add domain=proxmox.homelab.local type=CNAME cname=pve1.homelab.local >/dev/null
tn_ok /api/zones/records/add domain=old.homelab.local type=A ipAddress=10.0.10.77 >/dev/null
out=$(tn_api /api/zones/records/add domain=pve1.homelab.local type=A ipAddress=10.0.10.11)
assert_eq error "$(status "$out")" "duplicate record"
assert_contains "$(jq -r .errorMessage <<<"$out")" "already exists"
out=$(tn_api /api/zones/records/add domain=pve1.homelab.local type=A)
assert_eq "Parameter 'ipAddress' missing." "$(jq -r .errorMessage <<<"$out")" "A without ipAddress"
out=$(tn_api /api/zones/records/add domain=x.example.org type=A ipAddress=10.1.1.1)
assert_eq error "$(status "$out")" "record outside every zone"
out=$(tn_api /api/zones/records/add domain=proxmox.homelab.local type=A ipAddress=10.1.1.1)
assert_eq error "$(status "$out")" "A beside a CNAME"
tn_ok /api/zones/records/update domain=old.homelab.local type=A ipAddress=10.0.10.77 newIpAddress=10.0.10.78 >/dev/null
tn_ok /api/zones/records/delete domain=old.homelab.local type=A ipAddress=10.0.10.78 >/dev/null
out=$(tn_api /api/zones/records/delete domain=old.homelab.local type=A ipAddress=10.0.10.78)
assert_eq error "$(status "$out")" "deleting a record twice"
out=$(tn_ok /api/zones/records/get domain=pve3.homelab.local)
assert_eq 10.0.10.13 "$(jq -r '[.response.records[].rData.ipAddress] | join(",")' <<<"$out")" "overwrite"

# --- settings ---------------------------------------------------------------
out=$(tn_ok /api/settings/set forwarders=https://cloudflare-dns.com/dns-query,https://dns.quad9.net/dns-query \
	forwarderProtocol=Https recursion=AllowOnlyForPrivateNetworks)
assert_eq "Https https://cloudflare-dns.com/dns-query,https://dns.quad9.net/dns-query" \
	"$(jq -r '.response.forwarderProtocol + " " + (.response.forwarders | join(","))' <<<"$out")" "DoH forwarders"
out=$(tn_api /api/settings/set forwarderProtocol=Carrier-Pigeon)
assert_eq "Requested value 'Carrier-Pigeon' was not found." "$(jq -r .errorMessage <<<"$out")" "bad protocol"
out=$(tn_api /api/settings/set forwarders=1.1.1.1 forwarderProtocol=Https)
assert_eq error "$(status "$out")" "a plain address with Https"
out=$(tn_api /api/settings/set recursion=Sometimes)
assert_eq error "$(status "$out")" "bad recursion"
out=$(tn_ok /api/settings/get)
assert_eq "Https AllowOnlyForPrivateNetworks" \
	"$(jq -r '.response.forwarderProtocol + " " + .response.recursion' <<<"$out")" "settings kept after refusals"
KEY=$(openssl rand -base64 32)
for s in dns1 dns2; do
	tn_use "$s"
	tn_ok /api/settings/set "tsigKeys=xfr.homelab.local|$KEY|hmac-sha256" >/dev/null
done
out=$(tn_api /api/settings/set "tsigKeys=bad|$KEY|hmac-sha3")
assert_eq error "$(status "$out")" "bad TSIG algorithm"
tn_use dns1
out=$(tn_ok /api/settings/getTsigKeyNames)
assert_eq xfr.homelab.local "$(jq -r '.response.tsigKeyNames | join(",")' <<<"$out")" "TSIG key names"

# --- zone transfer to the secondary -----------------------------------------
out=$(tn_api /api/zones/options/set zone=homelab.local zoneTransfer=Sometimes)
assert_eq error "$(status "$out")" "bad zoneTransfer"
tn_ok /api/zones/options/set zone=homelab.local zoneTransfer=Allow zoneTransferTsigKeyNames=xfr.homelab.local \
	notify=SpecifiedNameServers "notifyNameServers=127.0.0.1:$P2" >/dev/null
out=$(tn_ok /api/zones/options/get zone=homelab.local includeAvailableTsigKeyNames=true)
assert_eq "Allow xfr.homelab.local SpecifiedNameServers 127.0.0.1:$P2" \
	"$(jq -r '.response | [.zoneTransfer, (.zoneTransferTsigKeyNames|join(",")), .notify, (.notifyNameServers|join(","))] | join(" ")' <<<"$out")" \
	"zone options"
# a transfer without the key is refused by the primary's DNS server
kdig @127.0.0.1 -p "$P1" +time=2 homelab.local AXFR >"$TESTTMP/axfr-nokey.out" 2>&1 || true
grep -q "10.0.10.11" "$TESTTMP/axfr-nokey.out" && fail "AXFR without TSIG succeeded"
kdig @127.0.0.1 -p "$P1" +time=2 -y "hmac-sha256:xfr.homelab.local:$KEY" homelab.local AXFR >"$TESTTMP/axfr.out"
assert_contains "$TESTTMP/axfr.out" "10.0.10.11"

tn_use dns2
out=$(tn_api /api/zones/create zone=homelab.local type=Secondary)
assert_eq error "$(status "$out")" "secondary without a primary address"
tn_ok /api/zones/create zone=homelab.local type=Secondary "primaryNameServerAddresses=127.0.0.1:$P1" \
	zoneTransferProtocol=Tcp tsigKeyName=xfr.homelab.local >/dev/null
out=$(tn_api /api/zones/records/add domain=x.homelab.local type=A ipAddress=10.1.1.1)
assert_eq error "$(status "$out")" "adding a record to a secondary zone"

serial_dns() { tn_dig "$1" homelab.local SOA | awk '{print $3}'; }
wait_serial() { # PORT SERIAL
	for _ in $(seq 100); do [ "$(serial_dns "$1")" = "$2" ] && return 0; sleep 0.1; done
	fail "serial on port $1: expected $2, got '$(serial_dns "$1")'"
}
S1=$(serial_dns "$P1")
[ -n "$S1" ] || fail "no SOA from the primary"
wait_serial "$P2" "$S1"
for p in "$P1" "$P2"; do
	assert_eq 10.0.10.30 "$(tn_dig "$p" anything.homelab.local A)" "wildcard on port $p"
	assert_eq 10.0.10.30 "$(tn_dig "$p" traefik.homelab.local A)" "wildcard on port $p"
	assert_eq 10.0.10.11 "$(tn_dig "$p" pve1.homelab.local A)" "pve1 on port $p"
	assert_eq 10.0.10.13 "$(tn_dig "$p" pve3.homelab.local A)" "pve3 on port $p"
	assert_contains "$(tn_dig "$p" proxmox.homelab.local A)" "pve1.homelab.local."
	assert_eq '"v=lab; owner=devopslab"' "$(tn_dig "$p" homelab.local TXT)" "TXT on port $p"
	assert_eq "" "$(tn_dig "$p" old.homelab.local A | grep -v 10.0.10.30 || true)" "deleted record on port $p"
done
grep -q "AXFR, incoming, remote 127.0.0.1@$P1, finished" "$TESTTMP/technitium-dns2/knot/knotd.log" || {
	cat "$TESTTMP/technitium-dns2/knot/knotd.log" >&2; fail "the secondary's knotd logged no AXFR from the primary"; }
out=$(tn_ok /api/zones/list)
assert_eq "Secondary $S1" "$(jq -r '.response.zones[] | select(.name=="homelab.local") | "\(.type) \(.soaSerial)"' <<<"$out")" \
	"secondary in the zone list"

# a change on the primary reaches the secondary (NOTIFY, then IXFR/AXFR)
tn_use dns1
tn_ok /api/zones/records/add domain=k3s.homelab.local type=A ipAddress=10.0.10.40 >/dev/null
S1b=$(jq -r '.response.zones[] | select(.name=="homelab.local") | .soaSerial' <<<"$(tn_ok /api/zones/list)")
assert_eq "$S1b" "$(serial_dns "$P1")" "primary's API and DNS serial"
[ "$S1b" -gt "$S1" ] || fail "serial did not grow: $S1 -> $S1b"
wait_serial "$P2" "$S1b"
assert_eq 10.0.10.40 "$(tn_dig "$P2" k3s.homelab.local A)" "new record on the secondary"
tn_use dns2
assert_eq "$S1b" "$(jq -r '.response.zones[] | select(.name=="homelab.local") | .soaSerial' <<<"$(tn_ok /api/zones/list)")" \
	"secondary's serial in the API after the change"
tn_ok /api/zones/resync zone=homelab.local >/dev/null
wait_serial "$P2" "$S1b"

# knotd listens on loopback only
ss -Hlnu "sport = :$P1" | grep -qv '127.0.0.1' && fail "knotd listens beyond loopback"

# the state survives a restart: dns1 again (new ports), zone and records kept
kill "$TN_PID_dns1"
wait "$TN_PID_dns1" 2>/dev/null || true
for _ in $(seq 50); do kdig @127.0.0.1 -p "$P1" +time=1 +retry=0 homelab.local SOA >/dev/null 2>&1 || break; sleep 0.1; done
kdig @127.0.0.1 -p "$P1" +time=1 +retry=0 homelab.local SOA >/dev/null 2>&1 && fail "knotd outlived its simulator"
technitium_start dns1
tn_use dns1
assert_eq invalid-token "$(status "$(tn_api /api/zones/list)")" "a session of the stopped server"
tn_login
assert_eq "$S1b" "$(serial_dns "$TN_DNS_PORT_dns1")" "serial after a restart"
assert_eq 10.0.10.40 "$(tn_dig "$TN_DNS_PORT_dns1" k3s.homelab.local A)" "record after a restart"
assert_eq "Https" "$(tn_ok /api/settings/get | jq -r .response.forwarderProtocol)" "settings after a restart"

# --- recorded requests --------------------------------------------------------
R=$TECHNITIUM_SIM_RECORD_DIR/dns1.jsonl
[ -s "$R" ] || fail "no records for dns1"
grep -q "tn-admin-secret\|$TN_TOKEN_dns1\|$KEY" "$R" "$TECHNITIUM_SIM_RECORD_DIR/dns2.jsonl" &&
	fail "a secret in the records"
assert_eq 3 "$(tn_requests dns1 'select(.path=="/api/user/login" and .login=="password")' | wc -l)" "logins recorded"
assert_eq '["pass"]' "$(tn_requests dns1 'select(.path=="/api/user/login") | .redacted' | head -n1)" "login redacted"
assert_eq 0 "$(tn_requests dns1 'select(.status != 200)' | wc -l)" "every answer HTTP 200"
n=$(tn_requests dns1 'select(.path=="/api/zones/records/add" and .auth=="session:admin")' | wc -l)
[ "$n" -ge 8 ] || fail "record adds recorded: $n"
assert_eq "[]" "$(tn_requests dns1 'select(.path=="/api/zones/list" and .auth=="none") | .redacted' | head -n1)" \
	"unauthenticated list recorded"
echo "ok"
