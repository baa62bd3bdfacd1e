#!/bin/bash
# `devopslab install` on the host, with a fabricated sysfs/proc: verify the
# bundle (local file and URL, resumed after a cut-off transfer), identify
# the node by MAC or DMI, refuse unknown and ambiguous machines, take new
# hardware as the node --node names (its own NIC for the network), the
# pre-flight gate with its waivers, the sealed secrets, then the plan's
# install steps: the gate recorded, and disk-select refusing a machine with
# no disk the rules select (nothing written). The whole install, disks to
# boot loader, runs inside the boot image (tests/integration/t-e2e-install.sh).
. "$TOP/tests/lib.sh"
cd "$TESTTMP"

# Placeholder assets, secrets and a signing key (scripts/example-inputs.sh);
# a second key for the "wrong key" case.
"$TOP/scripts/example-inputs.sh" "$TOP/examples/homelab.yaml" . >/dev/null
mv signing.key key.pem
mv signing.pub pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.pem 2>/dev/null
head -c 300000 /dev/urandom >assets/k3s # incompressible: the bundle is > 300 kB
mk_bundle() { # manifest key out
	"$DEVOPSLAB" bundle create --manifest "$1" --assets assets --secrets secrets.env --secret-key secret.key \
		--key "$2" -o "$3" >/dev/null
}
mk_bundle "$TOP/examples/homelab.yaml" key.pem good.tar.zst
mk_bundle "$TOP/examples/homelab.yaml" other.pem wrongkey.tar.zst
cp good.tar.zst corrupt.tar.zst
size=$(stat -c %s corrupt.tar.zst)
printf '\xff\xff\xff\xff' | dd of=corrupt.tar.zst bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null

# A machine: one NIC (MAC of devops-node-02, link up), DMI, /proc with
# virtualization flags and 8 GiB of RAM.
machine() { # dir mac [serial]
	mkdir -p "$1/sys/class/net/eth0" "$1/sys/class/dmi/id" "$1/proc"
	echo "$2" >"$1/sys/class/net/eth0/address"
	echo 1 >"$1/sys/class/net/eth0/carrier"
	echo "${3:-To Be Filled By O.E.M.}" >"$1/sys/class/dmi/id/product_serial"
	printf 'processor\t: 0\nflags\t\t: fpu vme de pse msr svm lm\n\n' >"$1/proc/cpuinfo"
	printf 'MemTotal:        8052000 kB\nMemFree:  100 kB\n' >"$1/proc/meminfo"
	mkdir -p "$1/sys/block"
}
machine m2 52:54:00:0a:00:02
install() { # machine-dir bundle [args]
	local m=$1 b=$2; shift 2
	rm -rf work
	expect_exit "$WANT" "$DEVOPSLAB" install --bundle "$b" --pubkey pub.pem --workdir "$TESTTMP/work" \
		--sysfs "$TESTTMP/$m/sys" --proc "$TESTTMP/$m/proc" --dev "$TESTTMP/$m/dev" \
		--secret-key "$TESTTMP/secret.key" --status-listen 127.0.0.1:0 "$@"
}

# --- the good path: verified, identified, pre-flight passed, secrets opened, the
# plan's gate steps recorded; this fabricated machine has no disk: refused ---------
WANT=3 install m2 good.tar.zst
assert_contains "$OUT" "provisioner started"
assert_contains "$OUT" "bundle verified: 10 members"
assert_contains "$OUT" "identified node devops-node-02 by MAC 52:54:00:0a:00:02 (eth0)"
assert_contains "$OUT" "virtualization pass        cpu      svm (AMD-V) present"
assert_contains "$OUT" "link           pass        eth0     link up"
assert_contains "$OUT" "pre-flight: passed"
assert_contains "$OUT" "secrets: 6 opened"
assert_contains "$OUT" "plan for node devops-node-02: 16 install steps"
assert_contains "$OUT" "[3/16] Running pre-flight checks: already done"
assert_contains "$OUT" "node/devops-node-02/disk/select failed:"
assert_contains "$OUT" "no disk matches the manifest's rules; candidates:"
assert_contains "$OUT" "(no disks at all)"
case $OUT in *"Partitioning"*) fail "went past disk-select" ;; esac
assert_contains "$OUT" "status page: http://127.0.0.1:"

# The same run's live status page (docs/operations.md), asked from outside
# while it lingers after the refusal: the install steps, the pre-flight
# findings, the failed step with its error.
rm -rf work
SPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$DEVOPSLAB" install --bundle good.tar.zst --pubkey pub.pem --workdir "$TESTTMP/work" --sysfs "$TESTTMP/m2/sys" \
	--proc "$TESTTMP/m2/proc" --dev "$TESTTMP/m2/dev" --secret-key "$TESTTMP/secret.key" \
	--status-listen "127.0.0.1:$SPORT" --status-linger 60 >"$TESTTMP/install-live.out" 2>&1 &
IPID=$!
on_exit "kill $IPID 2>/dev/null"
poll_json "http://127.0.0.1:$SPORT/status.json" "$TESTTMP/install-status.json" 'd["state"] == "failed"' ||
	{ cat "$TESTTMP/install-live.out" >&2; fail "the install's status never said failed"; }
"$PY" - "$TESTTMP/install-status.json" "$TOP/docs/status.schema.json" <<'PYEOF' || fail "the install's status"
import json, sys, jsonschema
d = json.load(open(sys.argv[1]))
jsonschema.validate(d, json.load(open(sys.argv[2])))
assert (d["phase"], d["node"], d["cluster"], d["total"]) == ("install", "devops-node-02", "devopslab", 16), d
st = {s["id"]: s["state"] for s in d["steps"]}
n = "node/devops-node-02/"
assert [st[n + x] for x in ("bundle/verify", "identify", "preflight", "disk/select", "disk/partition")] == \
    ["done", "done", "done", "failed", "pending"], st
assert d["stopped_at"]["step"] == n + "disk/select" and "no disk matches" in d["stopped_at"]["message"], d
pf = {(f["check"], f["status"]) for f in d["preflight"]}
assert ("virtualization", "pass") in pf and ("link", "pass") in pf, pf
PYEOF
# into a file first: grep -q on a pipe may close it before curl is done
curl -sf -o "$TESTTMP/install-page.html" "http://127.0.0.1:$SPORT/" || fail "the install's page"
grep -q '<table id="preflight">' "$TESTTMP/install-page.html" || fail "the install's page shows no pre-flight"
kill "$IPID" 2>/dev/null || true
wait "$IPID" 2>/dev/null || true
# without the secret key: bad input, named
rm -rf work
expect_exit 2 "$DEVOPSLAB" install --bundle good.tar.zst --pubkey pub.pem --workdir "$TESTTMP/work" \
	--sysfs "$TESTTMP/m2/sys" --proc "$TESTTMP/m2/proc" --dev "$TESTTMP/m2/dev" --secret-key "$TESTTMP/nosuch.key"
assert_contains "$OUT" "cannot get the secret key (--secret-key)"
assert_contains work/preflight.json '"check": "link", "status": "pass", "subject": "eth0"'

# --- the bundle: wrong key, corrupt, missing --------------------------------------
WANT=4 install m2 wrongkey.tar.zst
assert_contains "$OUT" "bundle verification failed"
WANT=4 install m2 corrupt.tar.zst
assert_contains "$OUT" "bundle verification failed"
case $OUT in *"identified node"*) fail "an unverified bundle was used" ;; esac
WANT=2 install m2 missing.tar.zst

# --- identity: unknown, by DMI, ambiguous, contradictory, --node ---------------------
machine mx 52:54:00:99:99:99
WANT=3 install mx good.tar.zst
assert_contains "$OUT" "unknown machine: no manifest node matches this machine (MACs 52:54:00:99:99:99 (eth0); DMI serial (none); product UUID (none)); refusing to guess"
sed 's/^    mac: "52:54:00:0a:00:03"/    serial: "SN-0003"/' "$TOP/examples/homelab.yaml" >dmi.yaml
grep -q 'serial: "SN-0003"' dmi.yaml || fail "dmi.yaml not derived"
sed -i 's/^    nic: "52:54:00:0a:00:03"/    nic: eth0/' dmi.yaml
mk_bundle dmi.yaml key.pem dmi.tar.zst
machine m3 52:54:00:99:99:03 SN-0003
WANT=3 install m3 dmi.tar.zst
assert_contains "$OUT" "identified node devops-node-03 by DMI serial SN-0003"
machine both 52:54:00:0a:00:01
mkdir -p both/sys/class/net/eth1
echo 52:54:00:0a:00:02 >both/sys/class/net/eth1/address
WANT=3 install both good.tar.zst
assert_contains "$OUT" "matches both node 'devops-node-01' and node 'devops-node-02'; refusing to choose"
WANT=3 install m2 good.tar.zst --node devops-node-01
assert_contains "$OUT" "this machine is node 'devops-node-02' by its MAC or DMI identity, not 'devops-node-01'; refusing to take it as 'devops-node-01'"
WANT=3 install m2 good.tar.zst --node nosuch
assert_contains "$OUT" "the manifest has no node 'nosuch'"

# --- new hardware: a box that matches no entry is the node --node names
# (devopslab.node= on the kernel command line); its NIC with a link is the
# management NIC, which the installed system knows by its MAC --------------
WANT=3 install mx good.tar.zst --node devops-node-02
assert_contains "$OUT" "new hardware: this machine matches no manifest node (MACs 52:54:00:99:99:99 (eth0); DMI serial (none); product UUID (none)); it is node devops-node-02, as the command line says"
assert_contains "$OUT" "management NIC: eth0 (MAC 52:54:00:99:99:99), the only one with a link; the installed system knows it by this MAC"
assert_contains "$OUT" "link           pass        eth0     link up"
assert_contains "$OUT" "pre-flight: passed"
assert_contains "$OUT" "node/devops-node-02/disk/select failed:"
case $OUT in *"identified node"*) fail "new hardware taken as identified" ;; esac
# two NICs with a link: which one is not guessed; --nic (devopslab.nic=) says
mkdir -p mx/sys/class/net/eth1
echo 52:54:00:99:99:98 >mx/sys/class/net/eth1/address
echo 1 >mx/sys/class/net/eth1/carrier
WANT=3 install mx good.tar.zst --node devops-node-02
assert_contains "$OUT" "cannot tell this machine's management NIC: 2 NICs have a link (eth0, eth1); name it with devopslab.nic=NAME|MAC"
case $OUT in *"pre-flight"*) fail "went past an unknown management NIC" ;; esac
WANT=3 install mx good.tar.zst --node devops-node-02 --nic 52:54:00:99:99:98
assert_contains "$OUT" "management NIC: eth1 (MAC 52:54:00:99:99:98), named by --nic"
assert_contains "$OUT" "link           pass        eth1     link up"
WANT=3 install mx good.tar.zst --node devops-node-02 --nic eth9
assert_contains "$OUT" "cannot tell this machine's management NIC: this machine has no NIC 'eth9'"
rm -r mx/sys/class/net/eth1

# --- pre-flight: failures are errors unless waived ----------------------------------------
printf 'processor\t: 0\nflags\t\t: fpu vme de pse msr lm\n\n' >m2/proc/cpuinfo
echo 0 >m2/sys/class/net/eth0/carrier
WANT=3 install m2 good.tar.zst
assert_contains "$OUT" "virtualization fail"
assert_contains "$OUT" "no link: is the cable plugged in?"
assert_contains "$OUT" "pre-flight: 2 checks failed; nothing was written to any disk"
assert_contains work/preflight.json '"check": "virtualization", "status": "fail"'
awk '{print} /^    mac: "52:54:00:0a:00:02"/ {print "    min_memory: 16G"; print "    preflight: {waive: [virtualization, link]}"}' \
	"$TOP/examples/homelab.yaml" >waive.yaml
mk_bundle waive.yaml key.pem waive.tar.zst
WANT=3 install m2 waive.tar.zst
assert_contains "$OUT" "virtualization waived"
assert_contains "$OUT" "link           waived"
assert_contains "$OUT" "memory         fail        ram      7863 MiB usable, the manifest asks for 16384 MiB"
printf 'MemTotal:        16000000 kB\n' >m2/proc/meminfo # 15625 MiB: within 1/16 of 16 GiB
WANT=3 install m2 waive.tar.zst
assert_contains "$OUT" "pre-flight: passed (2 waived, 0 unavailable)"

# --- by URL: a transfer cut off after 100 kB is resumed, then verified -------------------
mkdir www && cp good.tar.zst corrupt.tar.zst www/
bg_start "$PY" "$TOP/tests/e2e/httpd.py" www --cut 100000 >port 2>httpd.log
for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
port=$(head -1 port)
printf 'processor\t: 0\nflags\t\t: svm\n\n' >m2/proc/cpuinfo
echo 1 >m2/sys/class/net/eth0/carrier
WANT=3 install m2 "http://127.0.0.1:$port/good.tar.zst"
assert_contains "$OUT" "fetched $(stat -c %s good.tar.zst) bytes in 2 attempts (resumed)"
assert_contains "$OUT" "bundle verified"
assert_contains httpd.log '"GET /good.tar.zst HTTP/1.1" 206'
cmp work/bundle.tar.zst good.tar.zst
WANT=4 install m2 "http://127.0.0.1:$port/corrupt.tar.zst"
assert_contains "$OUT" "bundle verification failed"
WANT=2 install m2 "http://127.0.0.1:$port/nosuch.tar.zst"
assert_contains "$OUT" "HTTP 404"
WANT=2 install m2 "ftp://127.0.0.1/x" # not a URL we fetch: a (missing) path
echo "install: all checks passed"
