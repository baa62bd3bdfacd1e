# SPDX-License-Identifier: MIT
"""sim_record.py — where a simulator writes its request records, shared by
every simulator in tests/sim/ (pve_sim.py today; the Kubernetes and
Technitium simulators are to use it too).

A simulator makes one Recorder at start-up and calls record() once per
request it received, whatever its answer was (and save() for a whole file
it wants outside tools to see, such as a guest's cloud-init seed):

    rec = sim_record.Recorder("pve", node, local_dir=os.environ.get("PVE_SIM_RECORD_DIR"))
    rec.record({"node": node, "method": "GET", ...})

Each record becomes one JSON line (keys sorted) appended to

  * LOCAL_DIR/NODE.jsonl when the simulator's own variable is set (the test
    reads those back: cluster-lib.sh's requests(), test-pve-client.c), and
  * $SIM_RECORD_DIR/TESTDIR/SIMULATOR-NODE.jsonl when SIM_RECORD_DIR is set
    (the whole suite's traffic for outside checks, tests/README.md).
    TESTDIR is $TEST_NAME (tests/run.sh exports it; tests/lib.sh falls back
    to the script's name; "unnamed" otherwise), prefixed with "$LABEL-"
    when LABEL is set to something other than "plain" (e.g.
    asan-t-cluster-form for the ASan+UBSan pass of make check).

Several processes may append to one file (a node's simulator restarted, or
two worlds of one test sharing node names). Each line goes out in a single
write(2) on a descriptor opened with O_APPEND: Linux moves the offset to the
end and writes under the inode lock, so whole lines never interleave. The
descriptor is closed after the line, so nothing waits in a buffer when the
simulator is killed.
"""
import json
import os
import re

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
LINE_MAX = 1 << 20  # a record is a few hundred bytes; a megabyte is a bug


def _name(what, value):
    if not NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError("sim_record: %s %r is not a plain file name" % (what, value))
    return value


def test_dir(env=None):
    """The directory name for the running test, below $SIM_RECORD_DIR."""
    env = os.environ if env is None else env
    name = _name("TEST_NAME", env.get("TEST_NAME") or "unnamed")
    label = env.get("LABEL") or "plain"
    return name if label == "plain" else "%s-%s" % (_name("LABEL", label), name)


def suite_path(simulator, node, env=None):
    """$SIM_RECORD_DIR/TESTDIR/SIMULATOR-NODE.jsonl, or None when unset."""
    env = os.environ if env is None else env
    top = env.get("SIM_RECORD_DIR")
    if not top:
        return None
    return os.path.join(os.path.abspath(top), test_dir(env),
                        "%s-%s.jsonl" % (_name("simulator", simulator), _name("node", node)))


def append_line(path, line):
    """Append one line (bytes ending in a newline) in one write(2)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        n = os.write(fd, line)
        if n != len(line):  # a full disk; never expected for a few hundred bytes
            raise OSError("sim_record: short write to %s (%d of %d bytes)" % (path, n, len(line)))
    finally:
        os.close(fd)


class Recorder:
    def __init__(self, simulator, node, local_dir=None, env=None):
        self.paths = []
        if local_dir:
            self.paths.append(os.path.join(local_dir, "%s.jsonl" % _name("node", node)))
        p = suite_path(simulator, node, env)
        if p:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            self.paths.append(p)

    def save(self, name, data):
        """Write a whole file NAME (bytes) next to the record files, in every
        record directory (a guest's cloud-init seed: pve_sim_guests.py).
        Written to a temporary name and renamed, so a reader never sees half
        of it; an existing file is replaced."""
        _name("file name", name)
        for d in {os.path.dirname(p) for p in self.paths}:
            tmp = os.path.join(d, ".%s.%d.tmp" % (name, os.getpid()))
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(d, name))

    def record(self, obj):
        """Append obj as one JSON line to every record file (none: a no-op)."""
        if not self.paths:
            return
        line = (json.dumps(obj, sort_keys=True) + "\n").encode("utf-8")
        if len(line) > LINE_MAX:
            raise ValueError("sim_record: a record of %d bytes" % len(line))
        for p in self.paths:
            append_line(p, line)
