#!/usr/bin/env bash
# runvm under containerd, unmodified: Debian's containerd with the runc shim
# (io.containerd.runc.v2) pointed at runvm by `ctr run --runc-binary`, as a
# user or a config's BinaryName does. The daemon runs with its own root,
# state and socket on a private tmpfs, never the system's; the image is
# built from busybox-static and imported, since no registry is reachable.
# Checked as ctr shows it: run and exit codes, logs, exec, task ps and
# metrics, pause and resume, kill and delete, a tty, and that each task is
# a VM (its own kernel) that leaves nothing behind.
# usage: tests/e2e/test_containerd.sh BUILD_DIR
set -u
t_suite=containerd-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
. "$top/tests/e2e/e2e-lib.sh"
build=$(cd "${1:?usage: test_containerd.sh BUILD_DIR}" && pwd)
runvm=$build/bin/runvm

e2e_need "containerd, ctr and containerd-shim-runc-v2" containerd containerd ctr containerd-shim-runc-v2
e2e_scratch containerd-vm
sock=$scratch/containerd.sock
# The runc shim keeps runvm's state under /run/containerd/runc/NAMESPACE,
# outside the tmpfs: whatever a failed run leaves there goes too.
ns=runvm-e2e$$
rvroot=/run/containerd/runc/$ns
cleanup() {
	for id in $(c task ls -q 2>/dev/null); do c task kill -s SIGKILL "$id" >/dev/null 2>&1; done
	sleep 1
	for id in $(c container ls -q 2>/dev/null); do
		c task delete -f "$id" >/dev/null 2>&1
		c container delete "$id" >/dev/null 2>&1
	done
	[ -z "${ctd_pid:-}" ] || { kill "$ctd_pid" 2>/dev/null; wait "$ctd_pid" 2>/dev/null; }
	pkill -f "containerd-shim-runc-v2 -namespace $ns " 2>/dev/null
	for id in $("$runvm" --root "$rvroot" list -q 2>/dev/null); do
		"$runvm" --root "$rvroot" delete --force "$id" >/dev/null 2>&1
	done
	rm -rf "$rvroot"
	e2e_unmount_scratch
}
trap cleanup EXIT
cat >"$scratch/config.toml" <<EOF
version = 2
root = "$scratch/root"
state = "$scratch/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
EOF
containerd --config "$scratch/config.toml" >"$scratch/containerd.log" 2>&1 &
ctd_pid=$!
c() { ctr --address "$sock" --namespace "$ns" "$@"; }
for _ in $(seq 60); do c version >/dev/null 2>&1 && break; sleep 1; done
run_capture c version
expect_rc "containerd ($(containerd --version | awk '{print $3}')) answers on its own socket" 0

image=runvm-test/busybox:latest
"$top/tests/e2e/make-image.sh" "$scratch/image.tar" "$image"
run_capture c image import "$scratch/image.tar"
expect_rc "ctr image import of the busybox image" 0

rvrun() { c run --runtime io.containerd.runc.v2 --runc-binary "$runvm" "$@"; }

# --- run in the foreground: output, exit code, a kernel of its own ------------
run_capture rvrun --rm "$image" fg1 sh -c 'cat /proc/sys/kernel/random/boot_id; echo to-stdout; echo to-stderr >&2; exit 7'
expect_rc "ctr run: the task's exit code is ctr's" 7
expect_in "ctr run: stdout reaches it" "$out" to-stdout
expect_in "ctr run: stderr reaches its stderr" "$err" to-stderr
# A container shares its host's boot; a VM boots a kernel of its own.
guest_boot=$(head -1 <<<"$out")
[ -n "$guest_boot" ] && [ "$guest_boot" != "$(cat /proc/sys/kernel/random/boot_id)" ] &&
	pass "ctr run: the task runs on a kernel of its own (another boot id)" ||
	fail "ctr run: the task runs on a kernel of its own (another boot id)" "task: $guest_boot"
# As PID 1 of its pid namespace the task cannot SIGKILL itself (the kernel
# shields a namespace's init from its own namespace, under runc as here):
# the kill comes from outside, as `ctr task kill` sends it.
rvrun --rm "$image" fg2 sh -c 'echo started; exec sleep 1000' </dev/null >"$scratch/fg2.out" 2>&1 &
fg2=$!
for _ in $(seq 120); do grep -q started "$scratch/fg2.out" 2>/dev/null && break; sleep 0.5; done
c task kill -s SIGKILL fg2 >/dev/null 2>&1
wait "$fg2"
rc=$?
out=$(cat "$scratch/fg2.out") err=
expect_rc "ctr run: a task killed by SIGKILL gives 137" 137

# --- logs to a file -------------------------------------------------------------
run_capture rvrun --rm --log-uri "file://$scratch/fg3.log" "$image" fg3 sh -c 'echo logged line'
expect_rc "ctr run --log-uri file://: exit 0" 0
expect_in "ctr run --log-uri: the output lands in the log file" "$(cat "$scratch/fg3.log" 2>&1)" "logged line"

# --- a detached task: exec, ps, metrics, pause, resume, kill, delete -------------
# As pid 1 of its namespace, the task sees SIGTERM only through a handler.
run_capture rvrun -d "$image" d1 sh -c 'trap "exit 42" TERM; echo started; while :; do sleep 1; done'
expect_rc "ctr run -d: a long task starts" 0
run_capture c task ls
expect_in "ctr task ls: the task is RUNNING" "$(grep -w d1 <<<"$out")" RUNNING
run_capture c task exec --exec-id e1 d1 sh -c 'echo in-exec; exit 5'
expect_rc "ctr task exec: the exec's exit code" 5
expect_in "ctr task exec: its output" "$out" in-exec
# The NULs go before the shell sees them: $(...) would drop them.
out=$(c task exec --exec-id e2 d1 cat /proc/1/cmdline 2>&1 | tr '\0' ' ')
expect_in "ctr task exec: runs beside the task's init (pid 1 is the task's sh)" "$out" "sh -c"
run_capture c task ps d1
expect_rc "ctr task ps: answers" 0
[ "$(tail -n +2 <<<"$out" | grep -c .)" -ge 1 ] &&
	pass "ctr task ps: lists the task's processes" ||
	fail "ctr task ps: lists the task's processes" "$out" "$err"
run_capture c task metrics d1
expect_rc "ctr task metrics: answers" 0
expect_in "ctr task metrics: memory figures" "$out" memory
run_capture c task pause d1
expect_rc "ctr task pause" 0
run_capture c task ls
expect_in "ctr task ls: PAUSED after pause" "$(grep -w d1 <<<"$out")" PAUSED
run_capture c task resume d1
expect_rc "ctr task resume" 0
run_capture c task exec --exec-id e3 d1 echo after-resume
expect_in "ctr task exec after resume: the VM runs again" "$out" after-resume
run_capture c task kill -s SIGTERM d1
expect_rc "ctr task kill -s SIGTERM" 0
for _ in $(seq 60); do c task ls | grep -w d1 | grep -q STOPPED && break; sleep 1; done
run_capture c task ls
expect_in "ctr task ls: STOPPED after the kill" "$(grep -w d1 <<<"$out")" STOPPED
run_capture c task delete d1
expect_rc "ctr task delete: the stopped task goes" 0
expect_in "ctr task delete: the status is the task's SIGTERM handler's (42)" "$out$err" "exit code 42"
run_capture c container delete d1
expect_rc "ctr container delete" 0

# --- a tty ---------------------------------------------------------------------
run_capture python3 "$top/tests/integration/pty_run.py" 30 100 \
	ctr --address "$sock" --namespace "$ns" run --runtime io.containerd.runc.v2 \
	--runc-binary "$runvm" --rm -t "$image" tty1 sh -c 'tty; stty size; echo finished; exit 3'
expect_in "ctr run -t: the task has a terminal" "$out" /dev/pts/
expect_in "ctr run -t: with ctr's window size" "$out" "30 100"
expect_in "ctr run -t: the exit code comes back" "$out" "status: exit 3"

# --- nothing left behind --------------------------------------------------------
run_capture c task ls -q
[ -z "$out" ] && pass "no task left" || fail "no task left" "$out"
e2e_no_vmm_left
summary
