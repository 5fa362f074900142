#!/usr/bin/env bash
# The whole-VM tests, run where a real /dev/kvm is: on a hardware-KVM host, or
# inside the testbed (tests/run-vm-tests.sh decides). Here a missing /dev/kvm is
# a failure, never a skip.
# usage: tests/integration/vm-batch.sh BUILD_DIR [SUITE...]
#   SUITE: selfcheck boot agent-vm fs-vm fs-work-vm lifecycle-vm lifecycle-many-vm template-vm pod-vm exec-vm do-vm net-vm hostile-vm containerd-vm cri-vm podman-vm docker-vm (default: all, in that order)
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: vm-batch.sh BUILD_DIR [SUITE...]}
shift
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(selfcheck boot agent-vm fs-vm fs-work-vm lifecycle-vm lifecycle-many-vm template-vm pod-vm exec-vm do-vm net-vm hostile-vm containerd-vm cri-vm podman-vm docker-vm)

selfcheck() {
	t_suite=vm
	. "$here/../lib.sh"
	run_capture "$build/tests/kvm-selfcheck"
	expect_rc "KVM self-check: port I/O, MMIO and HLT exits on a real /dev/kvm" 0
	echo "        $out"
	run_capture "$build/bin/runvm" features
	expect_in "runvm features sees a bootable KVM here" "$out" '"io.runvm.kvm.bootable": "true"'
	summary
}

# Each suite prints its own closing line; tests/check.sh adds them all up.
vm_rc=0
for s in "${suites[@]}"; do
	case "$s" in
	selfcheck) (selfcheck) ;;
	boot) "$here/test_boot.sh" "$build" ;;
	agent-vm) "$here/test_agent_vm.sh" "$build" ;;
	fs-vm) "$here/test_fs_vm.sh" "$build" ;;
	fs-work-vm) "$here/test_fs_work_vm.sh" "$build" ;;
	lifecycle-vm) "$here/test_lifecycle_vm.sh" "$build" ;;
	lifecycle-many-vm) "$here/test_lifecycle_many_vm.sh" "$build" ;;
	template-vm) "$here/test_template_vm.sh" "$build" ;;
	pod-vm) "$here/test_pod_vm.sh" "$build" ;;
	exec-vm) "$here/test_exec_vm.sh" "$build" ;;
	do-vm) "$here/test_do_vm.sh" "$build" ;;
	net-vm) "$here/test_net_vm.sh" "$build" ;;
	hostile-vm) "$here/hostile/test_hostile_vm.sh" "$build" ;;
	containerd-vm) "$here/../e2e/test_containerd.sh" "$build" ;;
	cri-vm) "$here/../e2e/test_cri.sh" "$build" ;;
	podman-vm) "$here/../e2e/test_podman.sh" "$build" ;;
	docker-vm) "$here/../e2e/test_docker.sh" "$build" ;;
	*) echo "vm-batch: no suite '$s' (selfcheck boot agent-vm fs-vm fs-work-vm lifecycle-vm lifecycle-many-vm template-vm pod-vm exec-vm do-vm net-vm hostile-vm containerd-vm cri-vm podman-vm docker-vm)" >&2; exit 2 ;;
	esac || vm_rc=1
done
exit $vm_rc
