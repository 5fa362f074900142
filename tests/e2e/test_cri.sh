#!/usr/bin/env bash
# runvm under Kubernetes' CRI, as a kubelet drives it: Debian's containerd
# with its CRI plugin, a runtime handler `runvm` (the runc shim,
# io.containerd.runc.v2, with runvm as its BinaryName, the default runtime),
# called by our own CRI client (tests/e2e/cri_client.py) instead of a kubelet
# or crictl. The daemon runs with its own root, state, socket and runtime
# root on a private tmpfs, never the system's; the pod's pause image and the
# busybox image are built from busybox-static and imported, since no
# registry is reachable. One host-network pod (no CNI here) with two
# containers: A serves on 127.0.0.1, B reaches it by ExecSync; exit codes,
# states, logs, stop and removal as the CRI reports them, and nothing left.
# usage: tests/e2e/test_cri.sh BUILD_DIR
#   CRI_RUNTIME_BINARY=PATH: that runtime instead of BUILD_DIR/bin/runvm
#     (e.g. $(command -v runc), to prove the harness where no VM boots)
#   CRI_SPEC_DIR=DIR: keep there the OCI specs containerd handed the runtime,
#     sandbox-config.json and container-config.json (container A's)
set -u
t_suite=cri-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
. "$top/tests/e2e/e2e-lib.sh"
build=$(cd "${1:?usage: test_cri.sh BUILD_DIR}" && pwd)
runtime=${CRI_RUNTIME_BINARY:-$build/bin/runvm}
# The checks that tell a VM from a container apply to runvm only.
is_runvm=false
[ "$(basename "$runtime")" = runvm ] && is_runvm=true

e2e_need "containerd with its CRI plugin, ctr and containerd-shim-runc-v2" containerd containerd ctr containerd-shim-runc-v2
e2e_need "the CRI client's protoc" protobuf-compiler protoc
python3 -c 'import grpc, google.protobuf' 2>/dev/null || {
	fail "the CRI client's python3-grpcio and python3-protobuf installed" "run scripts/install-deps.sh"
	summary
	exit 1
}
[ -x "$runtime" ] || { fail "the runtime $runtime is there" "not an executable"; summary; exit 1; }
e2e_scratch cri-vm
sock=$scratch/containerd.sock
ns=k8s.io
state=$scratch/state
bundles=$state/io.containerd.runtime.v2.task/$ns
# The runc shim runs its binary with --root OPTIONS.Root/NAMESPACE: set below
# to the tmpfs, not /run/containerd/runc.
rtroot=$scratch/runtime/$ns
# The shims' sockets go to /run/containerd/s whatever the config says: what
# this run made there goes too.
had_run_containerd=false
[ -e /run/containerd ] && had_run_containerd=true
# Kubelet gives every pod a parent cgroup; this one is the suite's own.
cgparent=/runvm-cri-e2e.$$
port=$((20000 + $$ % 20000))

export CRI_CLIENT_PB_CACHE=$scratch/pb
cri() { python3 "$top/tests/e2e/cri_client.py" --endpoint "unix://$sock" "$@"; }
c() { ctr --address "$sock" --namespace "$ns" "$@"; }

# The shims this daemon started (they outlive it by design), one a pod, named
# by its sandbox's id.
our_shims() { pgrep "$@" -f "^[^ ]*containerd-shim-runc-v2 -namespace $ns -id [0-9a-f]* -address $sock\$"; }

cleanup() {
	local id f
	if [ -n "${ctd_pid:-}" ] && kill -0 "$ctd_pid" 2>/dev/null; then
		for id in $(cri --timeout 60 pods -q 2>/dev/null); do
			cri --timeout 60 stopp "$id" >/dev/null 2>&1
			cri --timeout 60 rmp "$id" >/dev/null 2>&1
		done
		kill "$ctd_pid" 2>/dev/null
		wait "$ctd_pid" 2>/dev/null
	fi
	# The shims left, then what they ran, by the runtime's own state.
	for id in $(our_shims); do kill -9 "$id" 2>/dev/null; done
	if [ -x "$runtime" ]; then
		for id in $("$runtime" --root "$rtroot" list -q 2>/dev/null); do
			"$runtime" --root "$rtroot" delete --force "$id" >/dev/null 2>&1
		done
	fi
	for f in "$bundles"/*/address; do
		[ -f "$f" ] && rm -f "$(sed 's|^unix://||' "$f")"
	done
	$had_run_containerd || rmdir /run/containerd/s /run/containerd 2>/dev/null
	find /sys/fs/cgroup -depth -type d -path "*$cgparent*" -exec rmdir {} + 2>/dev/null
	e2e_unmount_scratch
}
trap cleanup EXIT

# The CRI plugin enabled; no AppArmor profile (the testbed loads none); the
# sandbox's oom_score_adj bounded by ours (no CAP_SYS_RESOURCE here); CNI
# looked for on the tmpfs only (host-network pods need none); the streaming
# server on a port of the kernel's choosing.
mkdir -p "$scratch/cni/net.d" "$scratch/cni/bin"
cat >"$scratch/config.toml" <<EOF
version = 2
root = "$scratch/root"
state = "$state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$scratch/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/runvm-test/pause:latest"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$scratch/cni/bin"
    conf_dir = "$scratch/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runvm"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runvm]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runvm.options]
        BinaryName = "$runtime"
        Root = "$scratch/runtime"
EOF
containerd --config "$scratch/config.toml" >"$scratch/containerd.log" 2>&1 &
ctd_pid=$!
for _ in $(seq 60); do c version >/dev/null 2>&1 && break; sleep 1; done
run_capture cri version
expect_rc "containerd ($(containerd --version | awk '{print $3}')) answers CRI Version on its own socket" 0 &&
	expect_in "CRI Version: the runtime.v1 API" "$out" '"runtime_api_version": "v1"'
# What containerd said, when a check fails: its last errors and warnings.
ctd_log() {
	grep -E 'level=(error|warning)' "$scratch/containerd.log" | tail -n 15 | cut -c 1-400 |
		sed 's/^/        containerd: /'
}

# --- the images: imported, never pulled ---------------------------------------
image=localhost/runvm-test/busybox:latest
pause=localhost/runvm-test/pause:latest
"$top/tests/e2e/make-image.sh" "$scratch/image.tar" "$image"
# The pause process: long-lived, and gone with 0 at SIGTERM (as PID 1 of its
# namespace it sees the signal only through a handler).
"$top/tests/e2e/make-image.sh" "$scratch/pause.tar" "$pause" \
	sh -c 'trap "exit 0" TERM; while :; do sleep 3600 & wait; done'
run_capture c image import "$scratch/image.tar"
expect_rc "ctr -n $ns image import of the busybox image" 0
run_capture c image import "$scratch/pause.tar"
expect_rc "ctr -n $ns image import of the pause image" 0
# The CRI plugin learns of them from containerd's events.
for _ in $(seq 20); do cri inspecti "$pause" >/dev/null 2>&1 && break; sleep 0.5; done
run_capture cri images
expect_in "CRI ListImages: the busybox image" "$out" "$image"
expect_in "CRI ListImages: the pause image (the sandbox image)" "$out" "$pause"

# --- a host-network pod -------------------------------------------------------
# As a kubelet sends it: the network the node's (NODE, no CNI), a pid
# namespace per container (CONTAINER), IPC the pod's (POD); each container
# repeats the pod's namespace options.
nsopts='"namespace_options": { "network": "NODE", "pid": "CONTAINER", "ipc": "POD" }'
logdir=$scratch/pods/cri-vm-pod
mkdir -p "$logdir"
cat >"$scratch/pod.json" <<EOF
{
	"metadata": { "name": "cri-vm-pod", "namespace": "runvm-e2e", "uid": "runvm-e2e-$$", "attempt": 0 },
	"log_directory": "$logdir",
	"labels": { "io.runvm.e2e": "cri-vm" },
	"linux": {
		"cgroup_parent": "$cgparent",
		"security_context": { $nsopts },
		"resources": { "cpu_period": 100000, "cpu_quota": 200000,
			       "memory_limit_in_bytes": 536870912 }
	}
}
EOF
# A: a web server on the pod's loopback; its TERM handler exits 42.
cat >"$scratch/a.json" <<EOF
{
	"metadata": { "name": "a" },
	"image": { "image": "$image" },
	"command": [ "sh", "-c", "mkdir -p /www; echo hello-from-a >/www/index.html; httpd -f -p 127.0.0.1:$port -h /www & trap 'exit 42' TERM; echo a-started; wait" ],
	"log_path": "a.log",
	"linux": { "security_context": { $nsopts } }
}
EOF
cat >"$scratch/b.json" <<EOF
{
	"metadata": { "name": "b" },
	"image": { "image": "$image" },
	"command": [ "sleep", "3600" ],
	"log_path": "b.log",
	"linux": { "security_context": { $nsopts } }
}
EOF

# No runtime handler named, as a kubelet sends a pod without a RuntimeClass:
# the default runtime's, runvm's.
run_capture cri runp "$scratch/pod.json"
expect_rc "RunPodSandbox: a host-network pod, on the default runtime (runvm's handler)" 0 || ctd_log
pod=$out
run_capture cri inspectp "$pod"
expect_in "PodSandboxStatus: SANDBOX_READY" "$out" '"state": "SANDBOX_READY"'
expect_in "PodSandboxStatus: the node's network" "$out" '"network": "NODE"'

run_capture cri create "$pod" "$scratch/a.json" "$scratch/pod.json"
expect_rc "CreateContainer A (a server on 127.0.0.1:$port)" 0 || ctd_log
ctr_a=$out
run_capture cri start "$ctr_a"
expect_rc "StartContainer A" 0 || ctd_log
run_capture cri create "$pod" "$scratch/b.json" "$scratch/pod.json"
expect_rc "CreateContainer B (sleep)" 0 || ctd_log
ctr_b=$out
run_capture cri start "$ctr_b"
expect_rc "StartContainer B" 0 || ctd_log

# The runtime named in the handler runs the pod: its own state, under the
# runtime root given in the handler's options, has the sandbox and both.
run_capture "$runtime" --root "$rtroot" list -q
[ -n "$pod" ] && [ -n "$ctr_a" ] && [ -n "$ctr_b" ] &&
	grep -qx "$pod" <<<"$out" && grep -qx "$ctr_a" <<<"$out" && grep -qx "$ctr_b" <<<"$out" &&
	pass "$(basename "$runtime") --root <handler's Root>/$ns list: the sandbox and both containers" ||
	fail "$(basename "$runtime") --root <handler's Root>/$ns list: the sandbox and both containers" "$out" "$err"
if [ -n "${CRI_SPEC_DIR:-}" ]; then
	mkdir -p "$CRI_SPEC_DIR"
	cp "$bundles/$pod/config.json" "$CRI_SPEC_DIR/sandbox-config.json"
	cp "$bundles/$ctr_a/config.json" "$CRI_SPEC_DIR/container-config.json"
fi

run_capture cri inspect "$ctr_a"
expect_in "ContainerStatus A: CONTAINER_RUNNING" "$out" '"state": "CONTAINER_RUNNING"'
run_capture cri inspect "$ctr_b"
expect_in "ContainerStatus B: CONTAINER_RUNNING" "$out" '"state": "CONTAINER_RUNNING"'

# --- the pod's containers together --------------------------------------------
# A's server may take a moment to listen.
for _ in $(seq 15); do
	run_capture cri exec "$ctr_b" 30 -- wget -q -O - "http://127.0.0.1:$port/"
	[ "$rc" = 0 ] && break
	sleep 1
done
expect_rc "ExecSync in B: wget from A's server on 127.0.0.1:$port" 0 &&
	expect_in "ExecSync in B: A's answer" "$out" hello-from-a
run_capture cri exec "$ctr_b" 30 -- sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'
expect_rc "ExecSync: the command's exit code (3) comes back" 3
expect_in "ExecSync: its stdout" "$out" to-stdout
expect_in "ExecSync: its stderr" "$err" to-stderr
run_capture cri exec "$ctr_a" 30 -- sh -c 'tr "\0" " " </proc/1/cmdline'
expect_in "ExecSync in A: beside A's own process (pid 1 is its sh)" "$out" "hello-from-a"

# A pod is one machine: its containers share one kernel, whose boot id they
# all read. Under runvm that kernel is the pod VM's, not the host's; under
# another runtime (runc) it is the host's own.
host_boot=$(cat /proc/sys/kernel/random/boot_id)
boot_a=$(cri exec "$ctr_a" 30 -- cat /proc/sys/kernel/random/boot_id 2>&1)
boot_b=$(cri exec "$ctr_b" 30 -- cat /proc/sys/kernel/random/boot_id 2>&1)
uuid='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
[[ $boot_a =~ $uuid ]] && [ "$boot_a" = "$boot_b" ] &&
	pass "A and B run on one kernel (the same boot id)" ||
	fail "A and B run on one kernel (the same boot id)" "A: $boot_a" "B: $boot_b"
if $is_runvm; then
	[[ $boot_a =~ $uuid ]] && [ "$boot_a" != "$host_boot" ] &&
		pass "the pod's kernel is not the host's (another boot id)" ||
		fail "the pod's kernel is not the host's (another boot id)" "pod: $boot_a" "host: $host_boot"
	# The pod's resources (the sums of its containers' limits, as a kubelet
	# sends them: 2 CPUs, 512 MiB) shape its VM: 2 vCPUs, 512 MiB (of which
	# the guest's kernel keeps a little).
	run_capture cri exec "$ctr_b" 30 -- sh -c 'nproc; sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo'
	cpus=$(sed -n 1p <<<"$out") mem_kb=$(sed -n 2p <<<"$out")
	[ "$cpus" = 2 ] && [ "${mem_kb:-0}" -gt $((448 * 1024)) ] && [ "${mem_kb:-0}" -le $((512 * 1024)) ] &&
		pass "the pod's resources shape its VM: 2 vCPUs, 512 MiB" ||
		fail "the pod's resources shape its VM: 2 vCPUs, 512 MiB" "nproc $cpus, MemTotal $mem_kb kB" "$err"
else
	[ "$boot_a" = "$host_boot" ] &&
		pass "$(basename "$runtime"): the pod's kernel is the host's (the same boot id)" ||
		fail "$(basename "$runtime"): the pod's kernel is the host's (the same boot id)" "pod: $boot_a" "host: $host_boot"
fi

run_capture cri ps --pod "$pod"
[ "$(grep -c . <<<"$out")" = 2 ] && grep -q "^$ctr_a.*CONTAINER_RUNNING" <<<"$out" &&
	grep -q "^$ctr_b.*CONTAINER_RUNNING" <<<"$out" &&
	pass "ListContainers: A and B in the pod, running" ||
	fail "ListContainers: A and B in the pod, running" "$out" "$err"
# The CRI's log format: TIME STREAM TAG LINE.
expect_in "A's log (the pod's log directory): its output, as the CRI writes it" \
	"$(cat "$logdir/a.log" 2>&1)" " stdout F a-started"

# --- stop and remove ----------------------------------------------------------
run_capture cri stop --timeout 10 "$ctr_a"
expect_rc "StopContainer A (SIGTERM, 10 s grace)" 0 || ctd_log
run_capture cri inspect "$ctr_a"
expect_in "ContainerStatus A: CONTAINER_EXITED" "$out" '"state": "CONTAINER_EXITED"'
expect_in "ContainerStatus A: the exit code of its TERM handler (42)" "$out" '"exit_code": 42'
run_capture cri ps --pod "$pod"
grep -q "^$ctr_a.*CONTAINER_EXITED" <<<"$out" && grep -q "^$ctr_b.*CONTAINER_RUNNING" <<<"$out" &&
	pass "ListContainers: A exited, B still running" ||
	fail "ListContainers: A exited, B still running" "$out" "$err"

run_capture cri stopp "$pod"
expect_rc "StopPodSandbox" 0 || ctd_log
run_capture cri inspectp "$pod"
expect_in "PodSandboxStatus: SANDBOX_NOTREADY after the stop" "$out" '"state": "SANDBOX_NOTREADY"'
run_capture cri inspect "$ctr_b"
expect_in "ContainerStatus B: CONTAINER_EXITED with its pod" "$out" '"state": "CONTAINER_EXITED"'
run_capture cri rmp "$pod"
expect_rc "RemovePodSandbox" 0 || ctd_log
run_capture cri ps
[ "$rc" = 0 ] && [ -z "$out" ] && pass "ListContainers: none left" ||
	fail "ListContainers: none left" "$out" "$err"
run_capture cri pods
[ "$rc" = 0 ] && [ -z "$out" ] && pass "ListPodSandbox: none left" ||
	fail "ListPodSandbox: none left" "$out" "$err"

# --- nothing left behind --------------------------------------------------------
e2e_no_vmm_left
run_capture "$runtime" --root "$rtroot" list -q
# The template store (vmm/template.h) stays by design, for the next start.
[ -z "$out" ] && [ -z "$(ls -A "$rtroot" 2>/dev/null | grep -vx .templates)" ] &&
	pass "no runtime state left (under <handler's Root>/$ns; its template store aside)" ||
	fail "no runtime state left (under <handler's Root>/$ns)" "$out" "$(ls -A "$rtroot" 2>&1)"
left=$(ls -A "$bundles" 2>/dev/null; our_shims -a)
[ -z "$left" ] && pass "no bundle or shim left" || fail "no bundle or shim left" "$left"
summary
