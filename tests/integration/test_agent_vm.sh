#!/usr/bin/env bash
# `runvm boot -- CMD` on a real /dev/kvm: our kernel, the agent as PID 1 and
# busybox for commands (build/tests/agent-busybox.cpio). Stdio and the exit
# status travel over virtio-vsock; everything is checked as a user sees it.
# usage: tests/integration/test_agent_vm.sh BUILD_DIR
set -u
t_suite=agent-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_agent_vm.sh BUILD_DIR}
runvm=$build/bin/runvm
kernel=$top/build/share/runvm/vmlinux
initrd=$top/build/tests/agent-busybox.cpio
# Files go to the checkout: the testbed's /tmp is a throwaway overlay.
scratch=$(mktemp -d "$top/build/agent-vm.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
vm() { "$runvm" boot --kernel "$kernel" --initrd "$initrd" --timeout 300 "$@"; }

# --- stdio --------------------------------------------------------------------
run_capture bash -c 'echo hi | "$@"' _ "$runvm" boot --kernel "$kernel" --initrd "$initrd" \
	--timeout 300 -- cat
expect_rc "echo hi | runvm boot -- cat" 0 && [ "$out" = hi ] && pass "stdin round-trips through the guest" ||
	fail "stdin round-trips through the guest" "got: $out" "stderr: $err"

run_capture vm -- sh -c 'echo to-out; echo to-err >&2'
[ "$out" = to-out ] && [ "$err" = to-err ] && pass "stdout and stderr stay separate" ||
	fail "stdout and stderr stay separate" "stdout: $out" "stderr: $err"

head -c 4M /dev/urandom >"$scratch/bin.in"
vm -- cat <"$scratch/bin.in" >"$scratch/bin.out" 2>"$scratch/bin.err"
rc=$?
[ $rc = 0 ] && cmp -s "$scratch/bin.in" "$scratch/bin.out" && pass "4 MiB of binary data through cat arrive intact" ||
	fail "4 MiB of binary data through cat arrive intact" "rc=$rc" "$(head -c 300 "$scratch/bin.err")"

run_capture vm -- sh -c 'cd /tmp && pwd && echo "$HOME" && id -u'
expect_in "a process starts in / with HOME and runs as root" "$out" $'/tmp\n/root\n0'

# --- exit status ----------------------------------------------------------------
for code in 0 1 255; do
	run_capture vm -- sh -c "exit $code"
	expect_rc "exit code $code comes back exactly" "$code"
done
run_capture bash -c '"$@"; echo "status=$?"' _ "$runvm" boot --kernel "$kernel" --initrd "$initrd" \
	--timeout 300 -- sh -c 'kill -KILL $$'
expect_in "death by SIGKILL is re-raised on the VMM (128+9)" "$out" "status=137"
run_capture bash -c '"$@"; echo "status=$?"' _ "$runvm" boot --kernel "$kernel" --initrd "$initrd" \
	--timeout 300 -- sh -c 'kill -SEGV $$'
expect_in "death by SIGSEGV is re-raised on the VMM (128+11)" "$out" "status=139"
run_capture vm -- /no/such/command
expect_rc "a command that does not exist exits 127" 127 &&
	expect_in "and the error names it" "$err" "/no/such/command"

# --- pipes closed early ---------------------------------------------------------
start=$SECONDS
run_capture bash -c 'yes | "$@"' _ "$runvm" boot --kernel "$kernel" --initrd "$initrd" \
	--timeout 300 -- head -c 10
expect_rc "stdin the guest stops reading (yes | runvm -- head -c 10)" 0 &&
	[ "$out" = "$(yes | head -c 10)" ] && pass "head got its 10 bytes" || fail "head got its 10 bytes" "$out"
run_capture bash -c 'set -o pipefail; "$@" | head -c 10; echo " status=${PIPESTATUS[0]}"' _ \
	"$runvm" boot --kernel "$kernel" --initrd "$initrd" --timeout 300 -- yes
expect_in "stdout closed early: the guest's yes dies of SIGPIPE, like a local one" "$out" "status=141"
[ $((SECONDS - start)) -lt 200 ] && pass "closed pipes end promptly" || fail "closed pipes end promptly" "$((SECONDS - start)) s"

# A reader that stays but stops reading must not hold the VMM up: SIGTERM
# ends it anyway (the output it was writing is dropped).
"$runvm" boot --kernel "$kernel" --initrd "$initrd" --timeout 300 -- yes 2>/dev/null | sleep 120 &
stuck_reader=$!
for _ in $(seq 60); do pgrep -f "boot --kernel .* -- yes$" >/dev/null && break; sleep 1; done
sleep 15                      # booted, and the pipe to the sleeping reader is full
start=$SECONDS
pkill -TERM -f "boot --kernel .* -- yes$"
while pgrep -f "boot --kernel .* -- yes$" >/dev/null && [ $((SECONDS - start)) -lt 60 ]; do sleep 1; done
[ $((SECONDS - start)) -lt 30 ] && pass "SIGTERM stops a VMM whose stdout reader stopped reading" ||
	fail "SIGTERM stops a VMM whose stdout reader stopped reading" "still there after $((SECONDS - start)) s"
pkill -KILL -f "boot --kernel .* -- yes$" 2>/dev/null; kill "$stuck_reader" 2>/dev/null; wait 2>/dev/null

# --- volume: MiB out of the guest, VMM memory bounded -----------------------------
# 128 MiB is ~500 times what the VMM may buffer per connection, so a missing
# bound shows; at 3-6 MiB/s in the testbed's emulation more costs CI minutes.
# check-sanitize streams 32 MiB (RUNVM_AGENT_STREAM_MIB): it is there to run
# the same paths under ASan, which costs the VMM several times the CPU.
mib=${RUNVM_AGENT_STREAM_MIB:-128}
bytes=$((mib * 1048576))
want=$(yes runvm-stream | head -c "$bytes" | sha256sum | cut -d' ' -f1)
"$runvm" --debug boot --kernel "$kernel" --initrd "$initrd" --timeout 400 -- \
	sh -c "yes runvm-stream | head -c $bytes" 2>"$scratch/big.err" |
	tee >(wc -c >"$scratch/big.bytes") | sha256sum | cut -d' ' -f1 >"$scratch/big.sum" &
sink=$!
# Sample the VMM's private (heap) memory while the data flows; guest RAM is
# shared memfd memory and counts apart (RssShmem).
peak=0
while kill -0 "$sink" 2>/dev/null; do
	pid=$(pgrep -n -f "boot --kernel .* runvm-stream" || true)
	a=$(awk '/^RssAnon/ { print $2 }' "/proc/${pid:-0}/status" 2>/dev/null)
	[ "${a:-0}" -gt "$peak" ] && peak=$a
	sleep 0.5
done
wait "$sink"
sleep 0.2   # the byte count's process substitution may finish just after
got=$(cat "$scratch/big.sum" 2>/dev/null)
[ "$got" = "$want" ] && pass "$mib MiB from guest stdout arrive intact (sha256)" ||
	fail "$mib MiB from guest stdout arrive intact (sha256)" \
		"$(cat "$scratch/big.bytes" 2>/dev/null) of $bytes bytes arrived; sha256 $got" \
		"$(grep -E '^runvm|interrupts raised again|queue|vCPU|triple fault' "$scratch/big.err" | tail -n 14)"
[ "$peak" -gt 0 ] && [ "$peak" -lt 65536 ] && pass "VMM heap stays bounded while streaming (peak RssAnon ${peak} KiB)" ||
	fail "VMM heap stays bounded while streaming" "peak RssAnon ${peak} KiB"

# --- many at once ---------------------------------------------------------------
run_capture "$build/tests/agent-stress" --kernel "$kernel" --initrd "$initrd" --cpus 2 --parallel 100
expect_rc "100 concurrent processes in one VM all complete with the right outputs" 0 ||
	echo "        $err"

# --- the container as a whole: pause/resume, ps, stats, signal-all -----------------
run_capture timeout 300 "$build/tests/agent-stress" --kernel "$kernel" --initrd "$initrd" --cpus 2 --pause \
	--timeout 240
expect_rc "pause stops the guest's output and resume restarts it; ps, stats and signal-all work; a VM stopped while paused ends" 0 ||
	echo "        $err"
expect_in "the guest printed nothing while paused" "$out" "without output"

# --- the guest going away mid-stream ----------------------------------------------
# The agent runs as a child of a shell PID 1 here, so a command can kill it; PID 1
# then exits and the guest kernel panics: both must end the command with an error.
start=$SECONDS
run_capture vm --cmdline rdinit=/bin/agent-as-child -- sh -c 'echo before; sleep 2; kill -KILL $PPID; sleep 100'
[ "$rc" != 0 ] && pass "the agent killed mid-stream ends the command with an error (rc=$rc)" ||
	fail "the agent killed mid-stream ends the command with an error" "rc=$rc"
expect_in "the output written before arrived" "$out" "before"
case "$err" in
*"lost the agent connection"*|*"guest kernel panicked"*) pass "the error says what happened" ;;
*) fail "the error says what happened" "stderr: ${err:0:600}" ;;
esac
[ $((SECONDS - start)) -lt 60 ] && pass "and it does not hang" || fail "and it does not hang" "$((SECONDS - start)) s"

# --- the VMM's seccomp filters (vmm/jail.h) ---------------------------------------
mkdir -p "$scratch/root/bin" && cp /bin/busybox "$scratch/root/bin/busybox"
"$runvm" boot --kernel "$kernel" --initrd "$initrd" --timeout 300 --rootfs "$scratch/root" \
	-- /bin/busybox sh -c 'echo up >/up; /bin/busybox sleep 30' >/dev/null 2>&1 &
bg=$!
# Once the command has written through virtio-fs, every thread is there:
# main, the vCPU, the agent's and the file workers.
for _ in $(seq 1200); do [ -e "$scratch/root/up" ] && break; sleep 0.1; done
threads=$(grep -h '^Seccomp:' /proc/$bg/task/*/status 2>/dev/null | sort | uniq -c)
[[ "$threads" == *"Seccomp:"*2 ]] && [ "$(wc -l <<<"$threads")" = 1 ] &&
	pass "every VMM thread runs under a seccomp filter ($(echo $threads | cut -d' ' -f1) threads)" ||
	fail "every VMM thread runs under a seccomp filter" "${threads:-no threads seen}"
kill "$bg" 2>/dev/null; wait "$bg" 2>/dev/null
# As shipped: killed by SIGSYS, without a word (perl reports how it ended).
for role in vmm vcpu fs-worker; do
	run_capture env RUNVM_SECCOMP_REPORT=0 perl -e 'system(@ARGV); print $? & 127' \
		"$runvm" boot --kernel "$kernel" --initrd "$initrd" --timeout 300 --rootfs "$scratch/root" \
		--seccomp-selftest "$role" -- /bin/busybox true
	[ "$out" = 31 ] && pass "a forbidden call on a $role thread kills the VMM by SIGSYS" ||
		fail "a forbidden call on a $role thread kills the VMM by SIGSYS" "ended by signal '$out'" \
			"stderr: ${err:0:300}"
done
# As the tests run it (tests/lib.sh): the call named, the same status.
run_capture vm --rootfs "$scratch/root" --seccomp-selftest vcpu -- /bin/busybox true
expect_rc "RUNVM_SECCOMP_REPORT=1: the VMM ends with 128 + SIGSYS" 159 &&
	expect_in "and names the call (personality, 135)" "$err" "made system call 135, which its filter forbids"
run_capture vm --seccomp-selftest gpu -- true
expect_rc "--seccomp-selftest with no such role" 1 && expect_in "names the roles" "$err" "vmm, vcpu, fs-worker or pod-member"

left=$(pgrep -f "$runvm boot" || true)
[ -z "$left" ] && pass "no VMM left running" || fail "no VMM left running" "pids: $left"
summary
