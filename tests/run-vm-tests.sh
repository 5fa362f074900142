#!/usr/bin/env bash
# Run the whole-VM batch on the host when it has hardware KVM, else inside the
# testbed (one L2 boot per suite, see below). RUNVM_KVM=host|testbed forces either.
# usage: tests/run-vm-tests.sh BUILD_DIR
# env: RUNVM_VM_SUITES (vm-batch.sh's suites, default all), RUNVM_KVM.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: run-vm-tests.sh BUILD_DIR}
features=$("$build/bin/runvm" features)
backend=$(sed -n 's/.*"io.runvm.kvm.backend": "\([^"]*\)".*/\1/p' <<<"$features")

case "${RUNVM_KVM:-auto}" in
host) where=host why="forced by RUNVM_KVM=host" ;;
testbed) where=testbed why="forced by RUNVM_KVM=testbed" ;;
auto)
	if grep -q '"io.runvm.kvm.bootable": "true"' <<<"$features"; then
		where=host why="host KVM is $backend"
	else
		where=testbed why="host KVM is $backend, which cannot boot guests"
	fi ;;
*) echo "run-vm-tests: RUNVM_KVM='$RUNVM_KVM': use host or testbed" >&2; exit 2 ;;
esac

echo "whole-VM tests: running on the $where ($why)"
if [ "$where" = host ]; then
	exec "$top/tests/integration/vm-batch.sh" "$build" ${RUNVM_VM_SUITES:-}
fi
# 4 GiB so that a 2 GiB guest fits beside L2 itself. Two L2 CPUs (QEMU runs one
# thread each): on one, an SMP guest whose vCPUs spin-wait on each other starved
# L2 entirely (seen: 4-vCPU boots hung 1 run in 3, past every timeout inside L2);
# on two, 8 of 8 booted.
#
# One L2 per suite, each with its own time limit, and up to two more tries in a fresh
# L2 after a failure seen only in the testbed (QEMU TCG emulating SVM):
# - L2 froze (tests/testbed/run exits 123; rarer, we expect, since L2 runs with
#   nohz=off, see there): QEMU stopped delivering an idle L2
#   CPU's timer interrupt (L2's RCU says so), then every vCPU halted: the
#   emulation's; or the same CPU alone stuck, which nothing inside L2 reports
#   when no RCU grace period is pending: the suite then runs past its limit
#   (exit 124);
# - a guest triple-faulted with its state already reset (RIP 0xfff0, AMD's
#   reset vector), never brought its agent up within 120 s of boot, or (seen
#   once, in fs-vm's tar) stopped taking interrupts with its vCPU runnable,
#   the device raising the same one 301 times over 5 minutes (the VMM warns
#   after 10 s, with or without --debug, so a suite that prints a failed
#   command's stderr shows it; caught in fs-work-vm with a faster-booting
#   guest kernel, the testbed's own L2 froze 32 s later, QEMU using no CPU:
#   the emulation's interrupt delivery, as in L2's own freezes): each
#   about once in 150-300 testbed boots, cause unknown (ours or the
#   emulation's) until one is caught with --debug. These are open defects (the
#   closing notes of issues 5 and 6), not accepted results. Twice in a row was
#   seen once, in fs-work-vm, whose guests run longest: a stall (vector 48
#   pending in the IRR with interrupts on, never taken), then a triple fault;
#   so a third try follows a second such fault;
# - L2's own kernel panicked (seen once, in lifecycle-vm right after a VMM was
#   SIGKILLed mid-boot: a stack overflow in an L2 interrupt handler, status
#   125 with "L2 crashed before ... Kernel panic" from tests/testbed/run): the
#   testbed's kernel, not ours, though our workload triggered it.
# Every retry is printed. An earlier attempt's closing line is renamed so
# tests/check.sh counts only the attempt that stands; any other failure, or a
# third, is a failure like any other.
summary_re='^([a-z-]+): ([0-9]+ passed, [0-9]+ failed.*)$'
emulation_fault() { # RC OUTPUT_FILE: says why a retry is due, or fails
	if [ "$1" = 123 ]; then
		echo "L2 froze"
	elif [ "$1" = 125 ] && grep -q "^testbed: L2 crashed before .*Kernel panic" "$2"; then
		echo "L2's own kernel panicked (its KVM, nested in QEMU's emulation)"
	elif [ "$1" = 124 ]; then
		echo "the suite ran past its limit (a stuck L2 CPU looks like this when L2 has no RCU grace period to report it by)"
	elif [ "$1" != 0 ] && grep -q 'triple fault (KVM_EXIT_SHUTDOWN) at RIP 0xfff0 ' "$2"; then
		echo "a guest triple-faulted with its state reset (RIP 0xfff0)"
	elif [ "$1" != 0 ] && grep -q 'the agent did not come up within 120 s of boot' "$2"; then
		echo "a guest's agent did not come up within 120 s"
	elif [ "$1" != 0 ] && grep -qE 'isr 0x[1-3], [0-9]{2,} interrupts raised again|left interrupt 0x[1-3] unacknowledged for [0-9]+ s' "$2"; then
		echo "a guest left a device's interrupt unacknowledged for 10 s and more while its vCPU ran"
	else
		return 1
	fi
}
rc=0
# About 2.5 times each suite's time in a quiet testbed (boot ~200 s, agent-vm
# ~200, fs-vm ~290, fs-work-vm ~220, lifecycle-vm ~450, lifecycle-many-vm
# ~200, exec-vm ~250, do-vm ~120, net-vm ~150, hostile-vm ~250): a stuck suite costs its limit and a retry,
# and both must still fit CI's 90 minutes. Inside, each VM has a --timeout of
# its own, well below. The heaviest parts are suites of their own, so that
# a fault there costs a retry of that part only.
declare -A limit=([selfcheck]=300 [boot]=600 [agent-vm]=700 [fs-vm]=750 [fs-work-vm]=600
		  [lifecycle-vm]=1100 [lifecycle-many-vm]=700 [template-vm]=600 [exec-vm]=800 [do-vm]=500 [net-vm]=500
		  [hostile-vm]=700 [pod-vm]=600 [containerd-vm]=700 [cri-vm]=700 [podman-vm]=600 [docker-vm]=600)
out_file=$(mktemp /tmp/runvm-vm-tests.XXXXXX)
err_file=$(mktemp /tmp/runvm-vm-tests-err.XXXXXX)
trap 'rm -f "$out_file" "$err_file"' EXIT
for name in ${RUNVM_VM_SUITES:-selfcheck boot agent-vm fs-vm fs-work-vm lifecycle-vm lifecycle-many-vm template-vm pod-vm exec-vm do-vm net-vm hostile-vm cri-vm}; do
	[ -n "${limit[$name]:-}" ] || { echo "run-vm-tests: RUNVM_VM_SUITES: no suite '$name'" >&2; exit 2; }
	for attempt in 1 2 3; do
		t0=$SECONDS
		"$top/tests/testbed/run" --cpus 2 --memory 4G --timeout "${RUNVM_VM_TESTS_TIMEOUT:-${limit[$name]}}" -- \
			"$top/tests/integration/vm-batch.sh" "$build" "$name" 2>"$err_file" |
			tee "$out_file" | sed -u -E "s/$summary_re/\\1 (attempt $attempt): \\2/"
		src=${PIPESTATUS[0]}
		cat "$err_file" >&2        # the testbed's own words (an L2 panic's console lines)
		cat "$err_file" >>"$out_file"
		echo "whole-VM tests: $name took $((SECONDS - t0)) s in the testbed (attempt $attempt, status $src)"
		if [ "$attempt" -lt 3 ] && why=$(emulation_fault "$src" "$out_file"); then
			echo "whole-VM tests: $why during $name, in the testbed's emulation; once more in a fresh L2"
			continue
		fi
		grep -E "$summary_re" "$out_file"   # the closing lines that count
		break
	done
	[ "$src" = 0 ] || rc=1
done
exit $rc
