#!/usr/bin/env bash
# Run the whole-VM batch on the host when it has hardware KVM, else inside the
# testbed (one L2 boot for the whole batch). RUNVM_KVM=host|testbed forces either.
# usage: tests/run-vm-tests.sh BUILD_DIR
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
	exec "$top/tests/integration/vm-batch.sh" "$build"
fi
# 4 GiB so that a 2 GiB guest fits beside L2 itself. Two L2 CPUs (QEMU runs one
# thread each): on one, an SMP guest whose vCPUs spin-wait on each other starved
# L2 entirely (seen: 4-vCPU boots hung 1 run in 3, past every timeout inside L2);
# on two, 8 of 8 booted.
exec "$top/tests/testbed/run" --cpus 2 --memory 4G --timeout "${RUNVM_VM_TESTS_TIMEOUT:-3600}" -- "$top/tests/integration/vm-batch.sh" "$build"
