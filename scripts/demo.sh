#!/usr/bin/env bash
# make demo: from a fresh Debian 12 machine to runvm's main job. For now that is
# booting our own guest kernel with a payload that reports what it sees, then
# running commands in a VM through the agent over vsock (runvm boot -- CMD):
# on hardware KVM directly, else in the testbed (DESIGN §11).
# Every long step says what it does and how long it took; a second run reuses
# what is built.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

step() {
	local what=$1; shift
	echo "==> $what"
	local t0=$SECONDS
	"$@"
	echo "==> $what: done in $((SECONDS - t0)) s"
}

step "dependencies (scripts/install-deps.sh)" scripts/install-deps.sh
step "build runvm and the guest kernel (make; the kernel takes minutes once)" make -s -j"$(nproc)" all
echo "==> this host:"
build/bin/runvm features | sed -n 's/.*"io.runvm.kvm.\([a-z]*\)": \(.*\)/    kvm \1: \2/p' | tr -d '",'

boot_demo='build/bin/runvm boot --cpu-num 2 --total-memory 512M \
	--initrd build/tests/payload-initramfs.cpio --console --timeout 120 | grep runvm-payload'
# The agent as /init with busybox for commands, until virtio-fs brings a rootfs.
agent_demo='echo "hello through vsock" | build/bin/runvm boot --cpu-num 2 --total-memory 512M \
	--initrd build/tests/agent-busybox.cpio --timeout 120 -- \
	sh -c "echo \"guest: \$(uname -sr), \$(nproc) CPUs, pid \$\$\"; cat; exit 3";
	echo "exit status: $? (the command said exit 3)"'
if build/bin/runvm features | grep -q '"io.runvm.kvm.bootable": "true"'; then
	step "KVM self-check on this host" build/tests/kvm-selfcheck
	step "boot our guest (2 vCPUs, 512 MiB): what it reports" sh -c "$boot_demo"
	step "run a command in a VM (runvm boot -- CMD): stdio and status over vsock" sh -c "$agent_demo"
	exit 0
fi
echo "==> this host cannot boot guests: using the testbed (L2 Linux with kvm_amd under QEMU TCG)"
step "testbed kernel (cached in build/testbed/kernel)" make -s testbed-kernel
step "testbed init" make -s testbed-tools
step "KVM self-check, boot our guest (2 vCPUs, 512 MiB), run a command in it, inside the testbed" \
	env RUNVM_TESTBED_VERBOSE=1 tests/testbed/run --cpus 2 -- \
	sh -c "build/tests/kvm-selfcheck && $boot_demo && echo '==> a command in a VM:' && $agent_demo"
