#!/usr/bin/env bash
# Install every Debian package that building and testing runvm needs. Idempotent:
# quiet when everything is there; otherwise one apt-get run, with its time.
set -euo pipefail

packages=(
	# build
	gcc make libc6-dev pkg-config clang
	libseccomp-dev libyajl-dev libfdt-dev libcriterion-dev
	# guest and testbed kernels
	linux-source-6.12 flex bison bc libelf-dev cpio xz-utils
	# testbed and QEMU peer; tools the test scripts use
	qemu-system-x86 procps
	# engines runvm must work under (make e2e): containerd and its runc shim,
	# podman with conmon, Docker's daemon
	containerd podman docker.io
	# the CRI test's own client (tests/e2e/cri_client.py): gRPC, protobuf, and
	# protoc to compile its schema
	python3-grpcio python3-protobuf protobuf-compiler
	# peers and test bundles
	runc crun busybox-static
	# virtio-fs: real workloads in the file-service tests (git, SQLite, fio's
	# verify, xattrs), and bindfs, the libfuse passthrough bench/fs.sh compares with
	git sqlite3 fio attr python3 bindfs
	# networking: ip and tc in the network tests; iptables for runvm do's NAT,
	# as runsc do uses it
	iproute2 iptables
	# bench/run-all.sh's bar chart of the ratios (PNG, no X libraries)
	gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[ "${status:0:2}" = ii ] || missing+=("$p")
done
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run this script as root (or: sudo $0)" >&2
	exit 1
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
t0=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || { echo "install-deps: apt-get update failed" >&2; exit 1; }
# -q keeps the package list readable; apt's own progress lines still show.
apt-get install -y -q --no-install-recommends "${missing[@]}" |
	grep -E '^(Setting up|Unpacking) ' | sed 's/^/install-deps:   /'
[ "${PIPESTATUS[0]}" = 0 ] || { echo "install-deps: apt-get install failed" >&2; exit 1; }
echo "install-deps: done in $((SECONDS - t0)) s"
