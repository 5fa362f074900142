#!/usr/bin/env bash
# Exec benchmark: `runvm exec ID /bin/true` into a running busybox container
# (tests/integration/make-bundle.sh's bundle, `sleep 100000`, started with
# `run -d`) beside `runc exec` and `crun exec` into the same bundle's
# containers, interleaved, RUNS times each, all on this machine (in the
# testbed when this host's KVM cannot boot guests; there only the ratios mean
# anything). Each runtime first gets one exec that is not counted (the first
# reads its binary and the container's from disk). Every exec must exit 0: one
# that does not stops the bench with its runtime, status and output. Then the
# three containers are deleted and nothing may be left: no container listed, no
# runvm VMM, no runc or crun container process.
#
# Prints a table of median, p10 and p90 (ms) per runtime and last
#   exec: runvm_ms=… runc_ms=… ratio=… crun_ms=…
# (medians; ratio is runvm/runc). Every sample goes to
# build/bench/exec-samples.txt.
# Target: ratio ≤ 1.0 (runvm's exec no slower than runc's) on hardware KVM.
#
# The bundle keeps its pid namespace for all three: an exec joins the
# container's namespaces (runvm's: in the guest), and delete --force's
# SIGKILL reaches a namespace's PID 1.
#
# usage: bench/exec.sh           (root: runc, crun and mounts need it)
# env (defaults in parentheses): RUNS (50), RUNVM (build/bin/runvm), RUNC
#   (runc), CRUN (crun); in the testbed: TESTBED_CPUS (2), TESTBED_MEMORY (4G),
#   TESTBED_TIMEOUT (7200 s).
# A smoke run: RUNS=5 bench/exec.sh
# Exit status: 0; 1 when an exec failed, a container would not start or was
# left behind; 2 for bad input (RUNS, a runtime not found).
#
# In the testbed runc and crun need a kernel with cgroup BPF: bench/lib.sh
# runs it with the same L2 kernel fragment as bench/lifecycle.sh (built once,
# 10-20 min on 2 cores, kept in build/testbed/kernel-<hash>). And their exec
# needs our root to be our mount namespace's root, which the testbed's chroot
# is not: the bench moves it there in its private namespace (see below).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. "$top/bench/lib.sh"
runs=${RUNS:-50}
runvm=${RUNVM:-$top/build/bin/runvm} runc=${RUNC:-runc} crun=${CRUN:-crun}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "exec bench: RUNS '$runs': give a whole number > 0" >&2; exit 2; }

# need_runtimes: each of RUNVM, RUNC and CRUN is a command we can run.
need_runtimes() {
	local v
	for v in runvm runc crun; do
		command -v "${!v}" >/dev/null ||
			{ echo "exec bench: ${v^^} '${!v}' not found (scripts/install-deps.sh installs runc and crun; make builds runvm)" >&2; exit 2; }
	done
}

if [ "${1:-}" != --here ]; then
	bench_build
	need_runtimes
	bench_reenter exec
fi

[ "$(id -u)" = 0 ] || { echo "exec bench: needs root (runc, crun, a tmpfs mount)" >&2; exit 1; }
# The bundle and every runtime's state live on a private tmpfs: the checkout
# may be the testbed's 9p and its /tmp an overlay; this goes with the namespace.
if [ -z "${RUNVM_EXEC_BENCH_NS:-}" ]; then
	exec env RUNVM_EXEC_BENCH_NS=1 unshare -m --propagation private "$top/bench/exec.sh" --here
fi
# In that namespace our root must be the namespace's own root. An exec's
# setns(2) into the container's mount namespace puts runc's and crun's
# process at that namespace's root (and whatever is mounted on it): on a host
# that is where the container's pivot_root left its rootfs, but the testbed's
# shell runs chrooted into a directory of L2's initramfs (tests/testbed/init.c),
# so there they would land in the initramfs and find no /bin/true. As
# switch_root does: our root moved onto the namespace's root, then chroot
# into it. Where the two are already one (a host), nothing is moved.
if [ "$RUNVM_EXEC_BENCH_NS" = 1 ]; then
	export RUNVM_EXEC_BENCH_NS=2
	exec python3 -c '
import ctypes, os, sys
CLONE_NEWNS, MS_MOVE = 0x00020000, 8192
libc = ctypes.CDLL(None, use_errno=True)
def check(rc, what):
    if rc != 0:
        sys.exit("exec bench: %s: %s" % (what, os.strerror(ctypes.get_errno())))
ours = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
ns = os.open("/proc/self/ns/mnt", os.O_RDONLY)
check(libc.setns(ns, CLONE_NEWNS), "setns into our own mount namespace")
theirs, mine = os.stat("/"), os.fstat(ours)
os.fchdir(ours)
if (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino):
    check(libc.mount(b".", b"/", None, MS_MOVE, None), "move our root onto the mount namespace root")
os.chroot(".")
os.chdir(sys.argv[2])
os.execv(sys.argv[1], sys.argv[1:2] + ["--here"])
' "$top/bench/exec.sh" "$top"
fi
need_runtimes

bench_scratch exec-bench
peers=(runvm runc crun)
declare -A rt=([runvm]=rv [runc]=rc [crun]=cr)

tests/integration/make-bundle.sh "$scratch/sleep" sleep 100000
out=$scratch/out

# One container per runtime, and the pid its state names (runvm: the VMM;
# runc and crun: the container's init), to see it gone after delete.
declare -A pid
state_pid() { "${rt[$1]}" state "$1-c" | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p'; }
for p in "${peers[@]}"; do
	if ! "${rt[$p]}" run -d --bundle "$scratch/sleep" "$p-c" </dev/null >"$out" 2>&1; then
		echo "exec bench: $p run -d of sleep 100000 failed: $(tr '\n' ' ' <"$out")" >&2
		exit 1
	fi
	pid[$p]=$(state_pid "$p")
	[ -n "${pid[$p]}" ] && [ -d "/proc/${pid[$p]}" ] ||
		{ echo "exec bench: $p-c: no live pid in its state ($("${rt[$p]}" state "$p-c" 2>&1 | tr '\n' ' '))" >&2; exit 1; }
done

# Times in microseconds from bash's clock: no fork per sample (a fork costs
# ~0.1 s in the testbed).
declare -A samples   # peer -> space-separated microseconds, in run order
# exec_true PEER RUN: PEER's exec of /bin/true; RUN is the sample's number
# (0: the warm-up, not counted). A failed exec ends the bench.
exec_true() {
	local p=$1 i=$2 t0 t1 st=0
	t0=${EPOCHREALTIME/./}
	"${rt[$p]}" exec "$p-c" /bin/true </dev/null >"$out" 2>&1 || st=$?
	t1=${EPOCHREALTIME/./}
	if [ "$st" != 0 ]; then
		[ "$i" = 0 ] && i="the warm-up" || i="run $i of $runs"
		echo "exec bench: $p exec $p-c /bin/true ($i) exited $st: $(tr '\n' ' ' <"$out")" >&2
		echo "exec bench: $p-c is now: $("${rt[$p]}" state "$p-c" 2>&1 | tr -s '\n ' ' ')" >&2
		exit 1
	fi
	[ "$i" = 0 ] || samples[$p]+="$((t1 - t0)) "
}

echo "exec bench: $runs execs of /bin/true per runtime into a running sleep, interleaved"
for p in "${peers[@]}"; do exec_true "$p" 0; done
for i in $(seq "$runs"); do
	for p in "${peers[@]}"; do exec_true "$p" "$i"; done
done

# --- teardown: nothing may be left ---------------------------------------------------
failures=0
for p in "${peers[@]}"; do
	"${rt[$p]}" delete --force "$p-c" </dev/null >"$out" 2>&1 ||
		{ echo "exec bench: $p delete --force $p-c failed: $(tr '\n' ' ' <"$out")" >&2; failures=$((failures + 1)); }
done
# alive PID: a process that has not exited (a zombie has; its reaper is not us).
alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null; }
for _ in $(seq 50); do
	left=no
	for p in "${peers[@]}"; do alive "${pid[$p]}" && left=yes; done
	[ "$left" = no ] && break
	sleep 0.1
done
listed="$(rv list -q 2>&1 || true) $(rc list -q 2>&1 || true) $(cr list -q 2>&1 || true)"
listed=${listed// /}
live=
for p in "${peers[@]}"; do alive "${pid[$p]}" && live+="$p pid ${pid[$p]} "; done
procs=$(ps -eo pid=,args= | grep -F "$scratch/" | grep -v grep || true)
if [ -n "$listed" ] || [ -n "$live" ] || [ -n "$procs" ]; then
	echo "exec bench: left behind after delete --force: containers [$listed], processes [$live$procs]" >&2
	failures=$((failures + 1))
else
	echo "exec bench: all 3 containers deleted; none listed, no VMM or container process left"
fi

# --- report --------------------------------------------------------------------------
# stats PEER: median, p10 and p90 of PEER's samples in ms, one decimal each
# (percentiles by nearest rank).
stats() {
	printf '%s' "${samples[$1]:-}" | tr ' ' '\n' | grep . | sort -g | awk '
		{ a[NR] = $1 }
		function rank(q) { r = int(q * NR); if (r < q * NR) r++; if (r < 1) r = 1; return a[r] }
		END {
			if (NR == 0) { print "n/a n/a n/a"; exit }
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf "%.1f %.1f %.1f\n", m / 1000, rank(0.1) / 1000, rank(0.9) / 1000
		}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b}'; }
declare -A med lo hi
for p in "${peers[@]}"; do read -r "med[$p]" "lo[$p]" "hi[$p]" <<<"$(stats "$p")"; done
echo
echo "| exec /bin/true, ms ($runs runs) | median | p10 | p90 | median / runc's |"
echo "|---|---|---|---|---|"
for p in "${peers[@]}"; do
	echo "| $p | ${med[$p]} | ${lo[$p]} | ${hi[$p]} | $(ratio "${med[$p]}" "${med[runc]}") |"
done
echo
[ "$failures" = 0 ] || echo "failures: $failures (see the messages above)"
samples_file=$top/build/bench/exec-samples.txt
mkdir -p "$top/build/bench"
for p in "${peers[@]}"; do
	echo "$p.exec (ms): $(printf '%s' "${samples[$p]:-}" | awk '{for (i = 1; i <= NF; i++) printf "%.1f ", $i / 1000}')"
done >"$samples_file"
echo "every sample: $samples_file"
echo "exec: runvm_ms=${med[runvm]} runc_ms=${med[runc]} ratio=$(ratio "${med[runvm]}" "${med[runc]}") crun_ms=${med[crun]}"
[ "$failures" = 0 ]
