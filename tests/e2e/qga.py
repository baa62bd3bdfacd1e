#!/usr/bin/env python3
"""qga.py — talk to a QEMU guest agent over its socket, as Proxmox VE does
for `/nodes/{node}/qemu/{vmid}/agent/*` (QEMU's qemu-ga protocol: one JSON
command, one JSON answer; guest-sync-delimited first, so an answer left
over from an earlier client is skipped).

  qga.py SOCK wait SECONDS       until the agent answers guest-ping
  qga.py SOCK exec SECONDS CMD   run CMD with /bin/sh -c in the guest; print
                                 its output (stdout, then stderr), exit with
                                 its status
  qga.py SOCK replay SECONDS FILE   run each command of FILE (JSON: [{"command":
                                 [PROGRAM, ARG...], "input": TEXT|null,
                                 "exitcode": N}]) as Proxmox VE's agent/exec
                                 passes it (path, arg, input-data); fail
                                 unless each exits with its "exitcode"
  qga.py SOCK call COMMAND [JSON-ARGS]   print the answer's "return" as JSON
  qga.py SOCK shutdown           guest-shutdown (powerdown)
"""
import base64
import json
import os
import random
import socket
import sys
import time


class Agent:
    def __init__(self, path, timeout):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        sync = random.randint(1, 2**31 - 1)
        self.send({"execute": "guest-sync-delimited", "arguments": {"id": sync}})
        # The answer follows a 0xff byte; anything before it is stale.
        while True:
            i = self.buf.find(b"\xff")
            if i >= 0:
                self.buf = self.buf[i + 1:]
                break
            self.buf = b""
            self.fill()
        while True:
            r = self.recv()
            if r.get("return") == sync:
                return

    def send(self, obj):
        self.s.sendall(json.dumps(obj).encode() + b"\n")

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise ConnectionError("the agent's socket closed")
        self.buf += d

    def recv(self):
        while b"\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.strip(b"\xff \r")
        return json.loads(line) if line else self.recv()

    def call(self, cmd, args=None):
        msg = {"execute": cmd}
        if args is not None:
            msg["arguments"] = args
        self.send(msg)
        r = self.recv()
        if "error" in r:
            raise RuntimeError("%s: %s" % (cmd, r["error"].get("desc", r["error"])))
        return r.get("return")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, verb = sys.argv[1], sys.argv[2]
    if verb == "wait":
        deadline = time.monotonic() + float(sys.argv[3])
        while time.monotonic() < deadline:
            try:
                Agent(path, 5).call("guest-ping")
                return 0
            except (OSError, ValueError, RuntimeError, ConnectionError):
                time.sleep(2)
        print("qga: no answer from the guest agent within %s s" % sys.argv[3], file=sys.stderr)
        return 1
    if verb == "exec":
        limit, cmd = float(sys.argv[3]), sys.argv[4]
        a = Agent(path, 30)
        pid = a.call("guest-exec", {"path": "/bin/sh", "arg": ["-c", cmd], "capture-output": True})["pid"]
        deadline = time.monotonic() + limit
        while True:
            st = a.call("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                break
            if time.monotonic() > deadline:
                print("qga: '%s' still running after %s s" % (cmd, sys.argv[3]), file=sys.stderr)
                return 124
            time.sleep(0.5)
        sys.stdout.buffer.write(base64.b64decode(st.get("out-data", "")))
        sys.stdout.buffer.write(base64.b64decode(st.get("err-data", "")))
        sys.stdout.flush()
        if "signal" in st:
            return 128 + st["signal"]
        return st.get("exitcode", 1)
    if verb == "replay":
        limit, cmds = float(sys.argv[3]), json.load(open(sys.argv[4]))
        a = Agent(path, 30)
        bad = 0
        for c in cmds:
            args = {"path": c["command"][0], "arg": c["command"][1:], "capture-output": True}
            if c.get("input") is not None:
                args["input-data"] = base64.b64encode(c["input"].encode()).decode()
            pid = a.call("guest-exec", args)["pid"]
            deadline = time.monotonic() + limit
            while True:
                st = a.call("guest-exec-status", {"pid": pid})
                if st.get("exited"):
                    break
                if time.monotonic() > deadline:
                    print("qga: %s still running after %s s" % (c["command"], limit), file=sys.stderr)
                    return 124
                time.sleep(0.2)
            code = st.get("exitcode", 128 + st.get("signal", 0))
            ok = code == c.get("exitcode", 0)
            bad += not ok
            print("%s exit %d%s: %s" % ("ok  " if ok else "FAIL", code, "" if ok else " (want %d)" % c.get("exitcode", 0),
                                        " ".join(c["command"])[:160]))
            if not ok:
                sys.stdout.buffer.write(base64.b64decode(st.get("out-data", "")))
                sys.stdout.buffer.write(base64.b64decode(st.get("err-data", "")))
        sys.stdout.flush()
        return 1 if bad else 0
    if verb == "call":
        args = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
        print(json.dumps(Agent(path, 30).call(sys.argv[3], args), indent=1, sort_keys=True))
        return 0
    if verb == "shutdown":
        a = Agent(path, 30)
        a.send({"execute": "guest-shutdown"})  # no answer on success
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
