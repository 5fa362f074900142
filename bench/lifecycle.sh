#!/usr/bin/env bash
# Container lifecycle benchmark (DESIGN §9): `runvm run` of /bin/true in the
# busybox bundle (tests/integration/make-bundle.sh) beside `runc run` and
# `crun run` of the same bundle, interleaved, RUNS times each, all on this
# machine (in the testbed when this host's KVM cannot boot guests; there only
# the ratios mean anything). Then where the time goes: the same lifecycle as
# separate commands, each timed, for all three runtimes:
#   create   CLI, VM boot, agent ready, process prepared (runvm); namespaces,
#            cgroup, process prepared (runc, crun)
#   state    a CLI round trip alone (the created container's state)
#   start    the process starts
#   exit     until the process has exited: `runvm wait`; runc and crun have no
#            wait, so `state` is polled until "stopped" (at least one call)
#   delete   teardown (runvm: the VMM, if still shutting down, and the state dir)
# The sum of the state, start and delete medians is the CLI work outside the
# boot, against runc's. The VMM's "CPU ms before the first KVM_RUN" comes from
# its debug log (create runs with --debug --log: a few lines, the console stays
# off); when a container's VMM does not log it, from up to 5 runs of the
# developer form, `runvm boot --rootfs BUNDLE/rootfs -- /bin/true` (said so in
# its line). Last, host memory per idle sandbox: 1 then IDLE_N
# `runvm run -d` of `sleep 1000` (guest memory IDLE_MEMORY), settled SETTLE_S
# seconds, the sum of each VMM's PSS (/proc/PID/smaps_rollup: the VMM and the
# guest memory it touched, a memfd counted as Pss_Shmem) divided by their count;
# then all are deleted and nothing may be left.
#
# `runvm run` starts from a template of the bundle's shape (vmm/template.h;
# the first run saves it); the same bundle with io.runvm.template=false,
# booted each time, is timed beside it ("cold").
#
# Prints a table of medians (ms), one line per extra figure, and last
#   lifecycle: runvm_ms=… crun_ms=… ratio=… idle_mib=… cold_ms=… clone_ready_ms=…
# (run medians, runvm/crun, MiB per sandbox with IDLE_N of them, the run
# median with templates off, restore start to agent ready in a clone). Every sample
# goes to build/bench/lifecycle-samples.txt.
# Targets (DESIGN §9): ratio ≤ 3 on hardware KVM with the CLI work outside the
# boot no slower than runc's; CPU before the first KVM_RUN < 5 ms; idle < 24 MiB.
#
# usage: bench/lifecycle.sh           (root: runc, crun and mounts need it)
# env (defaults in parentheses): RUNS (20), IDLE_N (20), RUN_MEMORY (128M: the
#   bundle's io.runvm.memory for the /bin/true runs), IDLE_MEMORY (64M, for the
#   idle sandboxes), SETTLE_S (5), RUNVM (build/bin/runvm), RUNC (runc),
#   CRUN (crun); in the testbed: TESTBED_CPUS (2), TESTBED_MEMORY (4G),
#   TESTBED_TIMEOUT (7200 s).
# A smoke run: RUNS=3 IDLE_N=3 bench/lifecycle.sh
#
# In the testbed, runc and crun need a kernel with cgroup BPF: on cgroup v2
# both load their device filter as a BPF program and refuse the container
# when bpf(2) is missing. bench/lib.sh then runs the testbed with a fragment
# of its own, an L2 kernel built once (10-20 min on 2 cores) and kept in
# build/testbed/kernel-<hash>; runvm is measured under the same L2 kernel as
# its peers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
runs=${RUNS:-20} idle_n=${IDLE_N:-20} settle=${SETTLE_S:-5}
run_mem=${RUN_MEMORY:-128M} idle_mem=${IDLE_MEMORY:-64M}
runvm=${RUNVM:-$top/build/bin/runvm} runc=${RUNC:-runc} crun=${CRUN:-crun}
for v in runs idle_n settle; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "lifecycle bench: ${v^^} '${!v}': give a whole number > 0" >&2; exit 2; }
done

. "$top/bench/lib.sh"
if [ "${1:-}" != --here ]; then
	bench_build
	bench_reenter lifecycle
fi

[ "$(id -u)" = 0 ] || { echo "lifecycle bench: needs root (runc, crun, a tmpfs mount)" >&2; exit 1; }
# The bundles and every runtime's state live on a private tmpfs: the checkout
# may be the testbed's 9p and its /tmp an overlay; this goes with the namespace.
if [ -z "${RUNVM_LIFECYCLE_NS:-}" ]; then
	exec env RUNVM_LIFECYCLE_NS=1 unshare -m --propagation private "$0" --here
fi
command -v "$runc" >/dev/null && command -v "$crun" >/dev/null ||
	{ echo "lifecycle bench: runc or crun missing (scripts/install-deps.sh)" >&2; exit 1; }

bench_scratch lifecycle

# set_memory BUNDLE SIZE: the bundle's io.runvm.memory annotation.
set_memory() { sed -i "s/\"io.runvm.memory\": \"[^\"]*\"/\"io.runvm.memory\": \"$2\"/" "$1/config.json"; }
tests/integration/make-bundle.sh "$scratch/true" /bin/true
set_memory "$scratch/true" "$run_mem"
# The same, booted every time: templates off (vmm/template.h).
cp -a "$scratch/true" "$scratch/true-cold"
sed -i 's/"io.runvm.memory"/"io.runvm.template": "false", "io.runvm.memory"/' "$scratch/true-cold/config.json"
tests/integration/make-bundle.sh "$scratch/idle" sleep 1000
set_memory "$scratch/idle" "$idle_mem"

# Times in microseconds from bash's clock: no fork per sample (a fork costs
# ~0.1 s in the testbed).
declare -A samples   # "peer.phase" -> space-separated microseconds
add() { samples[$1]+="$2 "; }
failures=0 err=$scratch/err

# timed KEY CMD...: runs CMD with its output to $err, adds its time to KEY;
# on failure says so, counts it and returns 1.
timed() {
	local key=$1 t0 t1
	shift
	t0=${EPOCHREALTIME/./}
	if "$@" </dev/null >"$err" 2>&1; then
		t1=${EPOCHREALTIME/./}
		add "$key" $((t1 - t0))
		return 0
	fi
	echo "lifecycle bench: $key failed: $* ($(tr '\n' ' ' <"$err"))" >&2
	# What the VMMs logged last as errors and warnings (rvd's debug log).
	[[ "$key" != runvm.* ]] || [ ! -s "$dbg" ] ||
		grep -E 'level=(error|warning)|vCPU [0-9]+ stopped' "$dbg" | tail -n 6 >&2
	failures=$((failures + 1))
	return 1
}

# exit_runvm ID / exit_oci RT ID: until the container's process has exited.
# runc and crun have no wait: their state is polled until "stopped".
exit_runvm() { rv wait "$1" | grep -q '"exitStatus":0'; }
exit_oci() {
	local st
	for _ in $(seq 100000); do
		st=$("$1" state "$2") || return 1
		[[ "$st" =~ \"status\":\ *\"stopped\" ]] && return 0
	done
	return 1
}

# split PEER RT-FUNCTION ID: create, state, start, exit, delete, each timed;
# their sum too when all went well.
split() {
	local peer=$1 f=$2 id=$3 t0
	t0=${EPOCHREALTIME/./}
	timed "$peer.create" "$f" create --bundle "$scratch/true" "$id" &&
		timed "$peer.state" "$f" state "$id" &&
		timed "$peer.start" "$f" start "$id" &&
		if [ "$peer" = runvm ]; then timed "$peer.exit" exit_runvm "$id"; else timed "$peer.exit" exit_oci "$f" "$id"; fi &&
		timed "$peer.delete" "$f" delete "$id" &&
		add "$peer.split" $((${EPOCHREALTIME/./} - t0)) ||
		"$f" delete --force "$id" >/dev/null 2>&1 || true
}

# rvd: runvm with the VMM's debug log, for its CPU time before the first KVM_RUN.
dbg=$scratch/runvm-debug.log
rvd() {
	local a=()
	[ "${1:-}" = create ] && a=(--debug --log "$dbg")
	rv "${a[@]}" "$@"
}

echo "lifecycle bench: $runs runs of /bin/true each (guest memory $run_mem), interleaved"
for i in $(seq "$runs"); do
	timed runvm.run rv run --bundle "$scratch/true" "rv-run-$i" || rv delete --force "rv-run-$i" >/dev/null 2>&1 || true
	timed runvm.cold rv run --bundle "$scratch/true-cold" "rv-cold-$i" || rv delete --force "rv-cold-$i" >/dev/null 2>&1 || true
	timed runc.run rc run --bundle "$scratch/true" "rc-run-$i" || rc delete --force "rc-run-$i" >/dev/null 2>&1 || true
	timed crun.run cr run --bundle "$scratch/true" "cr-run-$i" || cr delete --force "cr-run-$i" >/dev/null 2>&1 || true
	split runvm rvd "rv-split-$i"
	split runc rc "rc-split-$i"
	split crun cr "cr-split-$i"
done
cpu_line() { sed -n 's/.*CPU ms before the first KVM_RUN: \([0-9.]*\).*/\1/p' "$1" 2>/dev/null || true; }
boot_cpu=$(cpu_line "$dbg") boot_cpu_from="the containers' VMMs"
if [ -z "$boot_cpu" ]; then
	# A container's VMM may not log the line; `runvm boot` (the developer
	# form: same kernel, initramfs and devices, over the same rootfs) does.
	boot_cpu_from="runvm boot --rootfs (the containers' VMMs do not log it)"
	for i in $(seq $((runs < 5 ? runs : 5))); do
		"$runvm" --debug --log "$scratch/boot-debug.log" boot --total-memory "$run_mem" \
			--rootfs "$scratch/true/rootfs" -- /bin/true </dev/null >"$err" 2>&1 ||
			echo "lifecycle bench: runvm boot -- /bin/true failed: $(tr '\n' ' ' <"$err")" >&2
	done
	boot_cpu=$(cpu_line "$scratch/boot-debug.log")
fi

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "n/a"; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# ms KEY: the median of KEY in ms, one decimal.
ms() { local m; m=$(printf '%s' "${samples[$1]:-}" | median); [ "$m" = n/a ] && echo n/a || awk -v u="$m" 'BEGIN {printf "%.1f\n", u / 1000}'; }
count() { printf '%s' "${samples[$1]:-}" | wc -w; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "n/a" || b == "n/a" || a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b}'; }

# --- idle memory ---------------------------------------------------------------------
# pss_kib PID... : bench_vmm_pss of the VMMs with their children (there
# should be none).
pss_kib() {
	local p pids=() kids
	for p in "$@"; do
		pids+=("$p")
		kids=$(cat /proc/"$p"/task/*/children 2>/dev/null || true)
		for k in $kids; do pids+=("$k"); done
	done
	bench_vmm_pss "${pids[@]}"
}
vmm_pid() { rv state "$1" | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p'; }
mib() { awk -v k="$1" -v n="$2" 'BEGIN {printf "%.1f\n", k / 1024 / n}'; }

echo "lifecycle bench: idle memory, 1 then $idle_n sandboxes of sleep 1000 (guest memory $idle_mem)"
idle_pids=() idle1=n/a idle1_vmm=n/a idlen=n/a idlen_vmm=n/a
start_idle() {
	local id=idle-$1 p
	timed runvm.run-d rv run -d --bundle "$scratch/idle" "$id" || return 1
	p=$(vmm_pid "$id")
	[ -n "$p" ] && [ -d "/proc/$p" ] || { echo "lifecycle bench: no VMM pid for $id" >&2; return 1; }
	idle_pids+=("$p")
}
# vmms_alive N: every idle VMM is still there (its memory must count), or the
# bench stops with what their logs say.
vmms_alive() {
	local i ok=yes
	for i in $(seq "$1"); do
		[ -r "/proc/${idle_pids[i - 1]}/smaps_rollup" ] && continue
		ok=no
		echo "lifecycle bench: the VMM of idle-$i (pid ${idle_pids[i - 1]}) is gone; its logs:" >&2
		cat "$rv_root/idle-$i/"*.log >&2 2>/dev/null || true
	done
	[ "$ok" = yes ] || { rv list >&2 || true; exit 1; }
}
if start_idle 1; then
	sleep "$settle"
	vmms_alive 1
	# No process substitution: the testbed's L2 has no /dev/fd.
	read -r pss shm <<<"$(pss_kib "${idle_pids[@]}")"
	idle1=$(mib "$pss" 1) idle1_vmm=$(mib $((pss - shm)) 1)
	for i in $(seq 2 "$idle_n"); do start_idle "$i" || break; done
	if [ ${#idle_pids[@]} = "$idle_n" ]; then
		sleep "$settle"
		vmms_alive "$idle_n"
		read -r pss shm <<<"$(pss_kib "${idle_pids[@]}")"
		idlen=$(mib "$pss" "$idle_n") idlen_vmm=$(mib $((pss - shm)) "$idle_n")
	fi
fi
for id in $(rv list -q); do timed runvm.delete-force rv delete --force "$id" || true; done
left=$(rv list -q)
procs=$(ps -eo pid=,args= | grep -F "$scratch/" | grep -v grep || true)
gone=yes
for p in "${idle_pids[@]}"; do [ -d "/proc/$p" ] && gone=no; done
if [ -n "$left" ] || [ -n "$procs" ] || [ "$gone" = no ]; then
	echo "lifecycle bench: left behind after delete --force: containers [$left], processes [$procs], VMMs gone: $gone" >&2
	failures=$((failures + 1))
else
	echo "lifecycle bench: all $idle_n sandboxes deleted; no container listed, no VMM left"
fi

# --- report --------------------------------------------------------------------------
echo
echo "| median ms ($runs runs) | runvm | runc | crun | runvm/runc | runvm/crun |"
echo "|---|---|---|---|---|---|"
row() {
	local label=$1 key=$2 a b c
	a=$(ms "runvm.$key") b=$(ms "runc.$key") c=$(ms "crun.$key")
	echo "| $label | $a | $b | $c | $(ratio "$a" "$b") | $(ratio "$a" "$c") |"
}
row "run /bin/true" run
row "run, templates off (a boot)" cold
row "create" create
row "state (CLI round trip)" state
row "start" start
row "exit (wait; state polled)" exit
row "delete" delete
row "create..delete, total" split
echo
n_cpu=$(printf '%s\n' "$boot_cpu" | grep -c . || true)
echo "runvm VMM CPU ms before the first KVM_RUN: median $(printf '%s\n' "$boot_cpu" | median) over $n_cpu boots" \
	"of $boot_cpu_from (target < 5)"
# Template clones (vmm/template.h): the split runs' VMMs log, at debug
# level, how long from the start of a restore to the agent's answer.
clone_ms=$(sed -n 's/.*agent ready \([0-9]*\) ms after the restore started.*/\1/p' "$dbg" 2>/dev/null || true)
restore_ms=$(sed -n 's/.*restored template [0-9a-f]* in \([0-9]*\) ms.*/\1/p' "$dbg" 2>/dev/null || true)
echo "runvm template clones: restore start to agent ready median $(printf '%s\n' "$clone_ms" | median) ms" \
	"over $(printf '%s\n' "$clone_ms" | grep -c . || true) clones (the machine put back: median" \
	"$(printf '%s\n' "$restore_ms" | median) ms; target < 10 on hardware KVM)"
cli_sum() { awk -v a="$(ms "$1.state")" -v b="$(ms "$1.start")" -v c="$(ms "$1.delete")" \
	'BEGIN {if (a == "n/a" || b == "n/a" || c == "n/a") print "n/a"; else printf "%.1f\n", a + b + c}'; }
rv_cli=$(cli_sum runvm) rc_cli=$(cli_sum runc) cr_cli=$(cli_sum crun)
echo "commands outside the boot (state + start + delete medians): runvm $rv_cli ms, runc $rc_cli ms," \
	"crun $cr_cli ms; runvm/runc $(ratio "$rv_cli" "$rc_cli") (target ≤ 1)"
echo "runvm run -d of an idle sandbox: median $(ms runvm.run-d) ms; delete --force: median $(ms runvm.delete-force) ms"
echo "idle memory per sandbox (VMM PSS incl. touched guest memory, guest $idle_mem): 1: $idle1 MiB" \
	"(VMM alone $idle1_vmm); $idle_n: $idlen MiB (VMM alone $idlen_vmm) (targets < 24, VMM < 5)"
for k in runvm.run runvm.cold runc.run crun.run runvm.split runc.split crun.split; do
	[ "$(count "$k")" = "$runs" ] || echo "$k: $(count "$k") of $runs runs succeeded"
done
[ "$failures" = 0 ] || echo "failures: $failures (see the messages above)"
# Every sample, for a look at the spread (the testbed is noisy).
samples_file=$top/build/bench/lifecycle-samples.txt
mkdir -p "$top/build/bench"
for k in $(printf '%s\n' "${!samples[@]}" | sort); do
	echo "$k (ms): $(printf '%s' "${samples[$k]}" | awk '{for (i = 1; i <= NF; i++) printf "%.1f ", $i / 1000}')"
done >"$samples_file"
echo "every sample: $samples_file"
rvm=$(ms runvm.run) crm=$(ms crun.run)
echo "lifecycle: runvm_ms=$rvm crun_ms=$crm ratio=$(ratio "$rvm" "$crm") idle_mib=$idlen" \
	"cold_ms=$(ms runvm.cold) clone_ready_ms=$(printf '%s\n' "$clone_ms" | median)"
[ "$failures" = 0 ]
