#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bundletool.py — build and take apart bundle-like archives for the tests,
independently of the C code (Python's tarfile + the zstd CLI).

  bundletool.py unpack BUNDLE DIR
      Write every member into DIR (regular files only) and their names, in
      archive order, into DIR/.order.
  bundletool.py pack [--raw-tar] OUT SPEC...
      Write a tar (zstd-compressed unless --raw-tar) with members in the
      order given. SPEC is one of
        file:NAME=PATH         regular file with PATH's contents
        zeros:NAME=SIZE        regular file of SIZE zero bytes (streamed)
        dir:NAME               directory
        symlink:NAME=TARGET    symbolic link
        hardlink:NAME=TARGET   hard link to member TARGET
        chr:NAME  blk:NAME     device nodes (1,3: /dev/null's numbers)
        fifo:NAME              named pipe
        many:PREFIX=COUNT      COUNT empty regular files PREFIX0, PREFIX1, ...
  bundletool.py flip FILE OFFSET
      Flip the low bit of byte OFFSET (negative: from the end) of FILE.
"""
import io
import subprocess
import sys
import tarfile


class Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def info(name, kind):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = 0o644
    ti.mtime = 0
    ti.uid = ti.gid = 0
    return ti


def add(tar, spec):
    kind, _, rest = spec.partition(":")
    name, _, arg = rest.partition("=")
    if kind == "file":
        with open(arg, "rb") as f:
            data = f.read()
        ti = info(name, tarfile.REGTYPE)
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    elif kind == "zeros":
        ti = info(name, tarfile.REGTYPE)
        ti.size = int(arg)
        tar.addfile(ti, io.BufferedReader(Zeros(ti.size), 1 << 20))
    elif kind == "dir":
        ti = info(name, tarfile.DIRTYPE)
        ti.mode = 0o755
        tar.addfile(ti)
    elif kind in ("symlink", "hardlink"):
        ti = info(name, tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE)
        ti.linkname = arg
        tar.addfile(ti)
    elif kind in ("chr", "blk"):
        ti = info(name, tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE)
        ti.devmajor, ti.devminor = 1, 3
        tar.addfile(ti)
    elif kind == "fifo":
        tar.addfile(info(name, tarfile.FIFOTYPE))
    elif kind == "many":
        for i in range(int(arg)):
            ti = info(f"{name}{i}", tarfile.REGTYPE)
            ti.size = 0
            tar.addfile(ti)
    else:
        sys.exit(f"bundletool: unknown spec {spec!r}")


def pack(args):
    raw = False
    if args and args[0] == "--raw-tar":
        raw = True
        args = args[1:]
    out, specs = args[0], args[1:]
    with open(out, "wb") as f:
        if raw:
            with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for s in specs:
                    add(tar, s)
            return
        z = subprocess.Popen(["zstd", "-q", "-c"], stdin=subprocess.PIPE, stdout=f)
        with tarfile.open(fileobj=z.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for s in specs:
                add(tar, s)
        z.stdin.close()
        if z.wait() != 0:
            sys.exit("bundletool: zstd failed")


def unpack(bundle, outdir):
    import os

    data = subprocess.run(["zstd", "-q", "-d", "-c", bundle], check=True, capture_output=True).stdout
    order = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            if not m.isreg() or m.name.startswith("/") or ".." in m.name.split("/"):
                sys.exit(f"bundletool: unexpected member {m.name!r}")
            path = os.path.join(outdir, m.name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(tar.extractfile(m).read())
            order.append(m.name)
    with open(os.path.join(outdir, ".order"), "w") as f:
        f.write("\n".join(order) + "\n")


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(0, 2)
        size = f.tell()
        off = offset if offset >= 0 else size + offset
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 1]))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "pack":
        pack(args)
    elif cmd == "unpack":
        unpack(args[0], args[1])
    elif cmd == "flip":
        flip(args[0], int(args[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
