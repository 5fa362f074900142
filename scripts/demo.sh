#!/usr/bin/env bash
# make demo: from a fresh Debian 12 machine to the first thing a new user runs,
# `runvm do -- CMD`: a command in a VM of its own over this machine's root,
# whose writes never reach the host. On hardware KVM directly, else in the
# testbed (DESIGN §11).
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

if build/bin/runvm features | grep -q '"io.runvm.kvm.bootable": "true"'; then
	step "KVM self-check on this host" build/tests/kvm-selfcheck
	step "runvm do: a command in a VM over this machine's root" scripts/demo-do.sh build/bin/runvm
	exit 0
fi
echo "==> this host cannot boot guests: using the testbed (L2 Linux with kvm_amd under QEMU TCG)"
step "testbed kernel (cached in build/testbed/kernel)" make -s testbed-kernel
step "testbed init" make -s testbed-tools
step "KVM self-check and runvm do, inside the testbed" \
	env RUNVM_TESTBED_VERBOSE=1 tests/testbed/run --cpus 2 -- \
	sh -c "build/tests/kvm-selfcheck && scripts/demo-do.sh build/bin/runvm"
