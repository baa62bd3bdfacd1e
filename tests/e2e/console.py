#!/usr/bin/python3
# tests/e2e/console.py SOCKET USER PASSWORD_FILE TIMEOUT CMD... — log in on
# a guest's virtio console (hvc0 on a QEMU chardev socket, scripts/qemu-boot.sh
# --login-socket: a getty with no kernel or service messages mixed in) and
# run each CMD in the guest's shell. Prints, per
# command:
#   === CMD
#   <its output>
#   === rc N
# Exit 0 when the login worked and every command ran (whatever their exit
# codes: the test checks those), 1 otherwise. Used by t-e2e-install.sh to
# look at an installed system from inside (this host cannot mount vfat).
import re
import socket
import sys
import time

sock_path, user, pw_file, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
cmds = sys.argv[5:]
with open(pw_file) as f:
    password = f.read().strip()

deadline = time.monotonic() + timeout
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
while True:
    try:
        s.connect(sock_path)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("console: cannot connect to %s" % sock_path)
        time.sleep(0.5)
s.settimeout(1.0)
buf = ""


def read_until(pattern, poke=None, poke_every=10.0):
    """Read until pattern matches the buffer; returns the match."""
    global buf
    rx = re.compile(pattern, re.S)
    last_poke = time.monotonic()
    while True:
        m = rx.search(buf)
        if m:
            rest = buf[m.end():]
            out = buf[:m.end()]
            buf = rest
            return m, out
        if time.monotonic() > deadline:
            sys.stderr.write("console: timed out waiting for %r; last output:\n%s\n" % (pattern, buf[-2000:]))
            sys.exit(1)
        if poke is not None and time.monotonic() - last_poke > poke_every:
            s.sendall(poke.encode())
            last_poke = time.monotonic()
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            sys.exit("console: the guest closed the console")
        buf += data.decode("utf-8", "replace").replace("\r", "")


def send(text):
    # a few bytes at a time: a guest still busy booting must not lose input
    data = text.encode()
    for i in range(0, len(data), 16):
        s.sendall(data[i:i + 16])
        time.sleep(0.01)


# A getty may have printed its prompt before we connected: poke it.
send("\n")
read_until(r"login: $", poke="\n")
send(user + "\n")
read_until(r"Password: $")
send(password + "\n")
# The shell: give it a prompt we know.
read_until(r"[#$] $", poke="\n")
send("PS1='E2E''# '; export TERM=dumb; stty -echo cols 300 2>/dev/null\n")
read_until(r"E2E# $", poke="\n")
for i, cmd in enumerate(cmds):
    # The markers are split in what is typed, whole only in what is printed.
    send("echo __E2E_B''EGIN_%d__; %s; echo __E2E_E''ND_%d__ $?\n" % (i, cmd, i))
    read_until(r"__E2E_BEGIN_%d__\n" % i)
    m, out = read_until(r"__E2E_END_%d__ (\d+)\n" % i)
    body = out[: out.rfind("__E2E_END_%d__" % i)]
    print("=== %s" % cmd)
    sys.stdout.write(body if body.endswith("\n") or not body else body + "\n")
    print("=== rc %s" % m.group(1))
    sys.stdout.flush()
send("exit\n")
s.close()
