#!/usr/bin/env bash
# Makes an OCI bundle for the lifecycle tests and benchmarks: a rootfs of
# Debian's busybox-static (one /bin link per applet) and a config.json as
# `runc spec` writes it, with no terminal and ARGS as the process.
# usage: tests/integration/make-bundle.sh DIR [ARG...]   (default ARG: sh)
set -eu
dir=${1:?usage: make-bundle.sh DIR [ARG...]}
shift
[ $# -gt 0 ] || set -- sh
mkdir -p "$dir/rootfs"/{bin,proc,sys,dev,tmp,etc,root,run}
cp /bin/busybox "$dir/rootfs/bin/busybox"
echo "root:x:0:0:root:/root:/bin/sh" >"$dir/rootfs/etc/passwd"
echo "root:x:0:" >"$dir/rootfs/etc/group"
# One python for ~270 links and the args as JSON: in the testbed every fork
# costs ~0.1 s and every python start 2 s.
args=$(/bin/busybox --list | python3 -c '
import json, os, sys
for a in sys.stdin.read().split():
    p = os.path.join(sys.argv[1], a)
    if not os.path.lexists(p):
        os.symlink("busybox", p)
print(json.dumps(sys.argv[2:]))' "$dir/rootfs/bin" "$@")
cat >"$dir/config.json" <<JSON
{
	"ociVersion": "1.0.2",
	"process": {
		"terminal": false,
		"user": { "uid": 0, "gid": 0 },
		"args": $args,
		"env": [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root" ],
		"cwd": "/",
		"noNewPrivileges": true
	},
	"root": { "path": "rootfs", "readonly": false },
	"hostname": "runvm",
	"annotations": { "io.runvm.memory": "128M" },
	"mounts": [
		{ "destination": "/proc", "type": "proc", "source": "proc" },
		{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
		  "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
		{ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
		  "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" ] },
		{ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
		  "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
		{ "destination": "/sys", "type": "sysfs", "source": "sysfs",
		  "options": [ "nosuid", "noexec", "nodev", "ro" ] },
		{ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
		  "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
	],
	"linux": {
		"resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
		"namespaces": [ { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ]
	}
}
JSON
