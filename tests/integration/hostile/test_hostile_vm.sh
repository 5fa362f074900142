#!/usr/bin/env bash
# The hostile-guest suite (issue 10, SECURITY.md): guest programs that attack
# the VMM the way DESIGN §8 says a guest may. hostile.c, as /init, pokes every
# port and MMIO register, drives the virtio devices with rings no driver would
# publish and floods virtio-vsock with malformed packets; fs-escape tries
# every virtio-fs escape from inside a guest; every vCPU spins. Each run must
# leave the VMM serving (the guest's final status comes back) or ending with
# a clear error, never crashing, and the host unharmed.
# usage: tests/integration/hostile/test_hostile_vm.sh BUILD_DIR
set -u
t_suite=hostile-vm
top=$(cd "$(dirname "$0")/../../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_hostile_vm.sh BUILD_DIR}
build=$(cd "$build" && pwd)
runvm=$build/bin/runvm
kernel=$top/build/share/runvm/vmlinux
initrd=$top/build/tests/hostile-initramfs.cpio
agent_initrd=$top/build/share/runvm/initramfs.img   # named: a sanitizer build has none beside it
scratch=$(mktemp -d /tmp/runvm-hostile.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# 256 MiB of RAM, of which the guest kernel uses 192: the rest is hostile's.
hostile() {
	local mode=$1; shift
	"$runvm" boot --kernel "$kernel" --initrd "$initrd" --console --timeout 200 \
		--total-memory 256M --cmdline "mem=192M runvm_hostile=$mode" "$@"
}

no_vmm_left() {
	local left
	left=$(pgrep -f "$runvm boot" || true)
	[ -z "$left" ] && pass "$1: no VMM left running" || fail "$1: no VMM left running" "pids: $left"
}

# A VMM that crashed, tripped a sanitizer or was killed by its own filter.
unharmed() {
	local bad
	bad=$(grep -E 'AddressSanitizer|runtime error|LeakSanitizer|Segmentation|core dumped|seccomp: a VMM thread' \
		<<<"$err" | head -n 3)
	[ -z "$bad" ] && pass "$1: the VMM neither crashed nor broke a rule" ||
		fail "$1: the VMM neither crashed nor broke a rule" "$bad"
}

show() { grep -E '^hostile: ' <<<"$out" | sed 's/^/        /' | head -n "${1:-8}"; }

# --- ports and MMIO ------------------------------------------------------------------
run_capture hostile ports
expect_rc "ports: every I/O port written at every width, and the VMM still serves" 0
expect_in "ports: the guest got through all 65536 ports" "$out" "ports read and written at every width"
unharmed ports
show

run_capture hostile mmio
expect_rc "mmio: every virtio-mmio register and unmapped MMIO written, and the VMM still serves" 0
for id in 4 19; do
	expect_in "mmio: every register of device $id read and written" "$out" "mmio: device $id at"
done
expect_in "mmio: addresses with no device read and written" "$out" "where no device is: read and written"
unharmed mmio
show

# --- virtqueues ------------------------------------------------------------------------
run_capture hostile virtq
expect_rc "virtq: every queue of every device fed poisoned rings, and the VMM still serves" 0
missing=
for q in "4 queue 0" "19 queue 0" "19 queue 1" "19 queue 2"; do
	for attack in "descriptor outside RAM" "address that wraps" "4 GiB length" "chain loop" \
		"next past the table" "head past the table" "readable after writable" \
		"indirect table outside RAM" "indirect nested and looping" "indirect table of 4 GiB" \
		"avail index jumps 32768" "rings rewritten while read"; do
		grep -qF "hostile: device $q, $attack: " <<<"$out" || missing+="device $q: $attack; "
	done
done
[ -z "${missing:-}" ] && pass "virtq: all 12 attacks ran on the 4 queues of rng and vsock" ||
	fail "virtq: all 12 attacks ran on the 4 queues of rng and vsock" "missing: $missing"
expect_in "virtq: the VMM names the device it gave up on and why" "$err" "the device needs a reset"
unharmed virtq
show 6

# The file service's rings, from a command the agent runs over a rootfs.
fsroot=$scratch/fsroot
mkdir -p "$fsroot/dev" "$fsroot/proc"
cp "$top/build/tests/hostile-init" "$fsroot/hostile"
run_capture "$runvm" boot --kernel "$kernel" --initrd "$agent_initrd" --rootfs "$fsroot" \
	--total-memory 256M --cmdline mem=192M --timeout 200 -- /hostile virtq-fs
expect_rc "virtq-fs: virtio-fs's queues fed poisoned rings, and the VMM still serves" 0
for q in 0 1; do
	expect_in "virtq-fs: queue $q got every attack" "$out" "hostile: device 26 queue $q, rings rewritten while read: "
done
unharmed virtq-fs
show 4

# --- vsock -----------------------------------------------------------------------------
run_capture hostile vsock
expect_rc "vsock: malformed packets and a flood of requests, and the VMM still serves" 0
expect_in "vsock: the flood went out" "$out" "connection and credit requests sent of 3000"
for what in "data with no connection" "a 4 GiB length" "a short header" "a write-only buffer" \
	"the host's CID as source" "an unknown op" "credit that cannot be"; do
	expect_in "vsock: $what" "$out" "vsock: $what: "
done
unharmed vsock
show 20

# --- every vCPU spins ----------------------------------------------------------------
"$runvm" boot --kernel "$kernel" --initrd "$initrd" --console --timeout 200 --total-memory 256M \
	--cmdline "mem=192M runvm_hostile=spin" --cpu-num 2 >"$scratch/spin.out" 2>"$scratch/spin.err" &
vmm=$!
for _ in $(seq 120); do
	grep -q "hostile: spinning" "$scratch/spin.out" && break
	sleep 1
done
if grep -q "hostile: spinning" "$scratch/spin.out"; then
	sleep 3
	t0=$SECONDS
	kill -TERM "$vmm"
	for _ in $(seq 30); do kill -0 "$vmm" 2>/dev/null || break; sleep 1; done
	if kill -0 "$vmm" 2>/dev/null; then
		fail "spin: SIGTERM stops a VM whose every vCPU spins" "still running after 30 s"
		kill -KILL "$vmm"
	else
		pass "spin: SIGTERM stops a VM whose every vCPU spins ($((SECONDS - t0)) s)"
	fi
	wait "$vmm"
	rc=$?
	[ "$rc" = 143 ] && pass "spin: the VMM ends as SIGTERM's, as runc's would" || fail "spin: the VMM ends as SIGTERM's" "status $rc"
else
	fail "spin: the guest started spinning" "$(cat "$scratch/spin.out" "$scratch/spin.err")"
	kill -KILL "$vmm" 2>/dev/null
	wait "$vmm"
fi
out=$(cat "$scratch/spin.out") err=$(cat "$scratch/spin.err")
unharmed spin

# --- virtio-fs escapes from inside a guest -----------------------------------------------
# fs-escape (tests/fs/fs_escape.c) run by the agent over the exported rootfs:
# every escape of DESIGN §5 through the real device, and the host checks that
# nothing next to the secret changed.
snapshot() {
	find "$1" -printf '%P %m %U %G %s %T@ %C@ %n %y\n' | sort
	find "$1" -type f -exec sha256sum {} + | sort
	getfattr -R -d -m - --absolute-names "$1" 2>/dev/null | sort
}
esc=$scratch/esc
mkdir -p "$esc/export/work" "$esc/export/proc" "$esc/export/dev" "$esc/outside/sub"
cp "$build/tests/fs-escape" "$esc/export/fs-escape"
secret=$(head -c 48 /dev/urandom | base64 -w0)
printf '%s' "$secret" >"$esc/outside/secret"
snapshot "$esc/outside" >"$scratch/outside.before"
run_capture "$runvm" boot --kernel "$kernel" --initrd "$agent_initrd" --rootfs "$esc/export" --cpu-num 2 --timeout 240 -- \
	/fs-escape --seconds 4 --secret-text "$secret" / work "$esc/outside/secret"
escape_rc=$rc
while IFS= read -r line; do
	case "$line" in
	PASS\ *) pass "fs escape from a guest: ${line#PASS }" ;;
	FAIL\ *) fail "fs escape from a guest: ${line#FAIL }" ;;
	"") ;;
	*) fail "fs escape from a guest: unexpected output" "$line" ;;
	esac
done <<<"$out"
nfail=$(grep -c '^FAIL' <<<"$out")
npass=$(grep -c '^PASS' <<<"$out")
[ "$escape_rc" = 0 ] && [ "$nfail" = 0 ] && [ "$npass" -gt 10 ] &&
	pass "fs escape from a guest: $npass attempts, all held" ||
	fail "fs escape from a guest: every attempt held" "exit $escape_rc, $npass PASS, $nfail FAIL lines, stderr: $err"
snapshot "$esc/outside" >"$scratch/outside.after"
cmp -s "$scratch/outside.before" "$scratch/outside.after" &&
	pass "fs escape from a guest: nothing outside the export changed" ||
	fail "fs escape from a guest: nothing outside the export changed" \
		"$(diff "$scratch/outside.before" "$scratch/outside.after" | head -n 10)"
unharmed "fs escape"

no_vmm_left "hostile guests"
summary
