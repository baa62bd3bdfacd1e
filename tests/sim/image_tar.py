#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""image_tar.py — small container image archives for tests and the demo.

  image_tar.py [--docker] OUT REF...

Writes OUT, in a format `ctr images import` takes (both were checked with
skopeo copy, which verifies every digest), with one image per REF
(a name as given: docker.io/library/nginx:1.25, or nginx:1.25 for docker
save's short form), and prints "REF sha256:HEX" per image: the digest
pve_sim_registry.py records for it.

  * default: an OCI image layout (image-spec v1.1 image-layout.md):
    oci-layout, index.json with one manifest descriptor per REF annotated
    io.containerd.image.name = REF and org.opencontainers.image.ref.name =
    its tag (latest when it has none), and blobs/sha256/: the image config
    (amd64, linux, rootfs.diff_ids), one gzip layer and the manifest. The
    digest printed is the manifest's.
  * --docker: docker save's format: manifest.json [{"Config", "RepoTags":
    [REF], "Layers"}], the config (HEX.json) and the layer (ID/layer.tar,
    uncompressed). The digest printed is the config's.

The one layer holds etc/devopslab-test whose text is the REF, so another
REF is another image. Everything is deterministic (fixed times, owners and
order, gzip without a time or name): the same REF gives the same bytes and
digest. An archive of two images is 20 KiB, most of it tar's padding.
"""
import argparse
import gzip
import hashlib
import io
import json
import sys
import tarfile

MTIME = 0


def jbytes(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def hexdigest(b):
    return hashlib.sha256(b).hexdigest()


def tar(entries):
    """A ustar archive of {name: bytes, or None for a directory}, sorted."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in sorted(entries):
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = MTIME, 0, 0, "root", "root"
            data = entries[name]
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def tag_of(ref):
    name = ref.split("@", 1)[0]
    last = name.rpartition("/")[2]
    return last.split(":", 1)[1] if ":" in last else "latest"


def image(ref):
    """(layer tar, config JSON) of REF's image."""
    layer = tar({"etc/": None, "etc/devopslab-test": (ref + "\n").encode()})
    config = jbytes({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hexdigest(layer)]},
                     "history": [{"created_by": "tests/sim/image_tar.py", "comment": ref}]})
    return layer, config


def descriptor(media_type, b):
    return {"mediaType": media_type, "digest": "sha256:" + hexdigest(b), "size": len(b)}


def oci(refs):
    files, manifests, digests = {"blobs/": None, "blobs/sha256/": None}, [], []
    for ref in refs:
        layer, config = image(ref)
        gz = gzip.compress(layer, mtime=MTIME)
        manifest = jbytes({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                           "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", gz)]})
        for b in (config, gz, manifest):
            files["blobs/sha256/" + hexdigest(b)] = b
        d = descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
        d["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag_of(ref)}
        d["platform"] = {"architecture": "amd64", "os": "linux"}
        manifests.append(d)
        digests.append(d["digest"])
    files["oci-layout"] = jbytes({"imageLayoutVersion": "1.0.0"})
    files["index.json"] = jbytes({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                  "manifests": manifests})
    return tar(files), digests


def docker(refs):
    files, entries, digests = {}, [], []
    for ref in refs:
        layer, config = image(ref)
        lid = hexdigest(layer)
        files[lid + "/"] = None
        files[lid + "/layer.tar"] = layer
        files[lid + "/VERSION"] = b"1.0"
        files[hexdigest(config) + ".json"] = config
        entries.append({"Config": hexdigest(config) + ".json", "RepoTags": [ref], "Layers": [lid + "/layer.tar"]})
        digests.append("sha256:" + hexdigest(config))
    files["manifest.json"] = jbytes(entries)
    return tar(files), digests


def main():
    ap = argparse.ArgumentParser(description="write a small container image archive (OCI layout or docker save)")
    ap.add_argument("--docker", action="store_true", help="docker save's format instead of an OCI layout")
    ap.add_argument("out")
    ap.add_argument("refs", nargs="+", metavar="REF")
    a = ap.parse_args()
    data, digests = (docker if a.docker else oci)(a.refs)
    with open(a.out, "wb") as f:
        f.write(data)
    for ref, d in zip(a.refs, digests):
        print(ref, d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
