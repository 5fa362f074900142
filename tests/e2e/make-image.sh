#!/usr/bin/env bash
# Makes an image archive of Debian's busybox-static that every engine loads:
# an OCI image layout (`ctr image import`, `podman load`) with a Docker
# archive's manifest.json beside it (`docker load` before Docker 25, which
# reads no OCI layout), both naming the same blobs, since the engine tests
# reach no registry: one layer with /bin/busybox and a link per applet, an
# /etc/passwd, and `sh` as the command, or CMD (as test_cri.sh's pause image
# has a long-lived one).
# usage: tests/e2e/make-image.sh OUT.tar [NAME [CMD...]]
#   (default NAME: runvm-test/busybox:latest; default CMD: sh)
set -euo pipefail
out=${1:?usage: make-image.sh OUT.tar [NAME [CMD...]]}
name=${2:-runvm-test/busybox:latest}
shift $(($# < 2 ? $# : 2))
[ $# -gt 0 ] || set -- sh
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/runvm-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$top/tests/integration/make-bundle.sh" "$work/bundle" >/dev/null
# Owned by root, no timestamps to vary: the same input gives the same digest.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	-C "$work/bundle/rootfs" -cf "$work/layer.tar" .
python3 - "$work" "$name" "$@" <<'PY'
import hashlib, json, os, sys
work, name, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
blobs = os.path.join(work, "oci", "blobs", "sha256")
os.makedirs(blobs)

def put(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

layer = put(open(os.path.join(work, "layer.tar"), "rb").read(),
            "application/vnd.oci.image.layer.v1.tar")
config = put(json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": cmd, "WorkingDir": "/",
               "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
}, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
manifest = put(json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config, "layers": [layer],
}, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
repo, _, tag = name.rpartition(":")
manifest["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}
with open(os.path.join(work, "oci", "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
with open(os.path.join(work, "oci", "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
blob = lambda d: "blobs/sha256/" + d["digest"].split(":")[1]
with open(os.path.join(work, "oci", "manifest.json"), "w") as f:
    json.dump([{"Config": blob(config), "RepoTags": [name], "Layers": [blob(layer)]}], f)
PY
tar --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$out" oci-layout index.json manifest.json blobs
