#!/usr/bin/env bash
# Network benchmark: TCP stream throughput (host -> guest, MIB MiB) and the
# median 1-byte request/response time, between this host and a runvm
# container in a pod's network namespace (virtio-net over a tap joined to the
# pod's veth), next to the same between this host and a plain network
# namespace over a veth: the path a runc container in that pod would have.
# Same tool both ends (bench/net_bench.c), interleaved RUNS times, medians.
# Runs in the testbed when this host's KVM cannot boot guests.
# Last line: net: runvm_mbps=… veth_mbps=… ratio=… rr_us=… veth_rr_us=…
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
runs=${RUNS:-3} mib=${MIB:-256} rounds=${ROUNDS:-2000}

if [ "${1:-}" != --here ]; then
	"$top/scripts/install-deps.sh"
	make -s -C "$top" all >/dev/null
	if build/bin/runvm features | grep -q '"io.runvm.kvm.bootable": "true"'; then
		echo "net bench: on this host's hardware KVM"
		exec "$0" --here
	fi
	echo "net bench: in the testbed (this host's KVM cannot boot guests); numbers are for ratios only"
	exec "$top/tests/testbed/run" --cpus 2 --memory 4G --timeout 2400 -- "$0" --here
fi

nb=$top/build/bench/net-bench
scratch=$(mktemp -d /tmp/runvm-net-bench.XXXXXX)
pod=rvbpod$$ peer=rvbpeer$$ port=5201
rv() { "$top/build/bin/runvm" --root "$scratch/state" "$@"; }
cleanup() {
	rv delete --force netbench >/dev/null 2>&1 || true
	[ -z "${peer_pid:-}" ] || kill "$peer_pid" 2>/dev/null || true
	ip netns del "$pod" 2>/dev/null || true
	ip netns del "$peer" 2>/dev/null || true
	rm -rf "$scratch"
}
trap cleanup EXIT

# NS HOST-IF NET: a namespace with a veth from here, NET.1 here, NET.2 there.
make_ns() {
	ip netns add "$1"
	ip link add "$2" type veth peer name eth0 netns "$1"
	ip addr add "$3.1/24" dev "$2"
	ip link set "$2" up
	ip -n "$1" addr add "$3.2/24" dev eth0
	ip -n "$1" link set eth0 up
	ip -n "$1" link set lo up
	ip -n "$1" route add default via "$3.1"
}
make_ns "$pod" rvbh$$ 10.78.0
make_ns "$peer" rvbp$$ 10.79.0

# The guest: a busybox container in the pod's namespace, serving.
"$top/tests/integration/make-bundle.sh" "$scratch/b" /bin/net-bench server "$port" >/dev/null
cp "$nb" "$scratch/b/rootfs/bin/net-bench"
python3 - "$scratch/b/config.json" "/run/netns/$pod" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["linux"]["namespaces"].append({"type": "network", "path": sys.argv[2]})
c["annotations"]["io.runvm.memory"] = "512M"
c["annotations"]["io.runvm.cpus"] = "1"
json.dump(c, open(sys.argv[1], "w"))
PY
rv run -d -b "$scratch/b" netbench
# The baseline: the same server in the peer namespace, on this kernel.
ip netns exec "$peer" "$nb" server "$port" &
peer_pid=$!

ready() { for _ in $(seq 180); do "$nb" rr "$1" "$port" 1 >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
ready 10.78.0.2 || { echo "net bench: the guest's server did not answer within 180 s" >&2; exit 1; }
ready 10.79.0.2 || { echo "net bench: the veth peer's server did not answer" >&2; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
val() { sed -n "s/^$1=//p"; }
rv_mbps=() veth_mbps=() rv_rr=() veth_rr=()
for i in $(seq "$runs"); do
	rv_mbps+=("$("$nb" stream 10.78.0.2 "$port" "$mib" | val mbps)")
	veth_mbps+=("$("$nb" stream 10.79.0.2 "$port" "$mib" | val mbps)")
	rv_rr+=("$("$nb" rr 10.78.0.2 "$port" "$rounds" | val rr_us)")
	veth_rr+=("$("$nb" rr 10.79.0.2 "$port" "$rounds" | val rr_us)")
	echo "run $i: runvm ${rv_mbps[-1]} Mbit/s ${rv_rr[-1]} us, veth ${veth_mbps[-1]} Mbit/s ${veth_rr[-1]} us"
done
r=$(printf '%s\n' "${rv_mbps[@]}" | median)
v=$(printf '%s\n' "${veth_mbps[@]}" | median)
rr=$(printf '%s\n' "${rv_rr[@]}" | median)
vrr=$(printf '%s\n' "${veth_rr[@]}" | median)
ratio=$(awk -v a="$r" -v b="$v" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
echo "net: runvm_mbps=$r veth_mbps=$v ratio=$ratio rr_us=$rr veth_rr_us=$vrr"
