#!/usr/bin/env bash
# The whole-VM tests, run where a real /dev/kvm is: on a hardware-KVM host, or
# inside the testbed (tests/run-vm-tests.sh decides). Here a missing /dev/kvm is
# a failure, never a skip.
# usage: tests/integration/vm-batch.sh BUILD_DIR
set -u
t_suite=vm
. "$(dirname "$0")/../lib.sh"
build=${1:?usage: vm-batch.sh BUILD_DIR}

run_capture "$build/tests/kvm-selfcheck"
expect_rc "KVM self-check: port I/O, MMIO and HLT exits on a real /dev/kvm" 0
echo "        $out"

run_capture "$build/bin/runvm" features
expect_in "runvm features sees a bootable KVM here" "$out" '"io.runvm.kvm.bootable": "true"'

summary
vm_rc=$?
# Each suite prints its own closing line; tests/check.sh adds them all up.
"$(dirname "$0")/test_boot.sh" "$build" || vm_rc=1
"$(dirname "$0")/test_agent_vm.sh" "$build" || vm_rc=1
"$(dirname "$0")/test_fs_vm.sh" "$build" || vm_rc=1
"$(dirname "$0")/test_fs_work_vm.sh" "$build" || vm_rc=1
exit $vm_rc
