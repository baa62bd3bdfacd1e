#!/bin/bash
# `devopslab install` with the manifest's network.syslog: a UDP receiver on
# 127.0.0.1 gets RFC 5424 messages: first the replayed boot log, then the
# provisioner's lines (the identification among them), hostname
# devopslab-<node>. Nothing is sent without network.syslog, nor when the
# kernel command line has devopslab.syslog= (the init forwards then).
. "$TOP/tests/lib.sh"
cd "$TESTTMP"

# The receiver: one datagram per line in got.log; its port in port.
cat >udp.py <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % s.getsockname()[1])
out = open(sys.argv[2], "a")
while True:
    data = s.recv(65536)
    out.write(data.decode("utf-8", "replace").replace("\n", "\\n") + "\n")
    out.flush()
PYEOF
: >got.log
bg_start "$PY" udp.py port got.log
for _ in $(seq 50); do [ -s port ] && break; sleep 0.1; done
port=$(head -1 port)
[ -n "$port" ] || fail "the UDP receiver did not start"

# Waits until got.log has a line containing $1 (the receiver is asynchronous).
wait_for() {
	for _ in $(seq 50); do grep -qF -- "$1" got.log && return 0; sleep 0.1; done
	fail "no datagram with '$1' arrived: $(cat got.log)"
}
# Nothing arrived since got.log was emptied: a marker sent now is the only line.
assert_nothing_sent() {
	"$PY" -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"MARKER", ("127.0.0.1", int(sys.argv[1])))' "$port"
	wait_for MARKER
	[ "$(cat got.log)" = MARKER ] || fail "$1: datagrams were sent: $(cat got.log)"
}

"$TOP/scripts/example-inputs.sh" "$TOP/examples/homelab.yaml" . >/dev/null
mk_bundle() { # manifest out
	"$DEVOPSLAB" bundle create --manifest "$1" --assets assets --secrets secrets.env --secret-key secret.key \
		--key signing.key -o "$2" >/dev/null
}
sed "s/^  subnet: 10.0.10.0\/24\$/&\n  syslog: \"127.0.0.1:$port\"/" "$TOP/examples/homelab.yaml" >syslog.yaml
grep -q "syslog: \"127.0.0.1:$port\"" syslog.yaml || fail "syslog.yaml not derived"
mk_bundle syslog.yaml syslog.tar.zst
mk_bundle "$TOP/examples/homelab.yaml" plain.tar.zst

# A machine (devops-node-02's MAC, link up) and the init's boot log.
mkdir -p m/sys/class/net/eth0 m/sys/class/dmi/id m/proc m/sys/block
echo 52:54:00:0a:00:02 >m/sys/class/net/eth0/address
echo 1 >m/sys/class/net/eth0/carrier
printf 'processor\t: 0\nflags\t\t: fpu svm lm\n\n' >m/proc/cpuinfo
printf 'MemTotal:        8052000 kB\n' >m/proc/meminfo
echo "console=ttyS0 devopslab.net=dhcp" >m/proc/cmdline
printf 'devopslab: boot-log-first-line\ndevopslab: network: eth0 52:54:00:0a:00:02 10.0.10.12/24\n' >boot.log
install() { # bundle [args]
	local b=$1; shift
	rm -rf work
	# this machine has no disk: disk-select refuses (exit 3), the last line an error
	expect_exit 3 "$DEVOPSLAB" install --bundle "$b" --pubkey signing.pub --workdir "$TESTTMP/work" \
		--sysfs "$TESTTMP/m/sys" --proc "$TESTTMP/m/proc" --dev "$TESTTMP/m/dev" \
		--secret-key "$TESTTMP/secret.key" --status-listen 127.0.0.1:0 "$@"
}

# --- network.syslog set: boot log replayed first, then every line --------------------
install syslog.tar.zst --boot-log "$TESTTMP/boot.log"
assert_contains "$OUT" "identified node devops-node-02 by MAC"
assert_contains "$OUT" "logging to syslog at 127.0.0.1:$port (UDP)"
wait_for "(no disks at all)" # the last line
"$PY" - got.log <<'PYEOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
rfc5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)) "
    r"(?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
    r"(?P<sd>-|(\[[^]]*\])+)( (?P<msg>.*))?$")
msgs = []
for l in lines:
    m = rfc5424.match(l)
    assert m, "not RFC 5424: %r" % l
    assert int(m["pri"]) <= 191 and int(m["pri"]) // 8 == 16, l  # local0
    assert m["host"] == "devopslab-devops-node-02" and m["app"] == "devopslab", l
    msgs.append((m["msgid"], int(m["pri"]) % 8, m["msg"]))
assert msgs[0] == ("boot", 6, "devopslab: boot-log-first-line"), msgs[0]
assert msgs[1][0] == "boot" and msgs[1][2].startswith("devopslab: network: eth0"), msgs[1]
assert msgs[2] == ("install", 6, "provisioner started: devopslab install"), msgs[2]
texts = [m[2] for m in msgs]
ident = [m for m in msgs if m[2].startswith("identified node devops-node-02 by MAC 52:54:00:0a:00:02")]
assert len(ident) == 1 and ident[0][:2] == ("install", 6), msgs
assert any(t.startswith("pre-flight: passed") for t in texts), texts  # after the receiver was opened
last = msgs[-1]
assert last[1] == 3 and "(no disks at all)" in last[2], last  # an error: severity 3
assert len([t for t in texts if "boot-log-first-line" in t]) == 1, texts
PYEOF

# $DEVOPSLAB_BOOT_LOG instead of --boot-log; a missing boot log is no failure.
: >got.log
DEVOPSLAB_BOOT_LOG="$TESTTMP/boot.log" install syslog.tar.zst
wait_for "(no disks at all)"
head -1 got.log | grep -q ' boot - devopslab: boot-log-first-line$' || fail "env boot log not replayed first: $(head -1 got.log)"
: >got.log
install syslog.tar.zst --boot-log "$TESTTMP/nosuch.log"
wait_for "(no disks at all)"
head -1 got.log | grep -q ' install - provisioner started' || fail "unexpected first line: $(head -1 got.log)"

# --- nothing sent: network.syslog unset; devopslab.syslog= on the command line --------
: >got.log
install plain.tar.zst --boot-log "$TESTTMP/boot.log"
assert_contains "$OUT" "identified node devops-node-02"
case $OUT in *"logging to syslog"*) fail "syslog without network.syslog" ;; esac
assert_nothing_sent "network.syslog unset"
: >got.log
echo "console=ttyS0 devopslab.syslog=10.0.10.5" >m/proc/cmdline
install syslog.tar.zst --boot-log "$TESTTMP/boot.log"
assert_contains "$OUT" "the kernel command line's devopslab.syslog= is used instead"
assert_nothing_sent "devopslab.syslog= on the command line"
echo "remotelog: all checks passed"
