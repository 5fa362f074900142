#!/usr/bin/env bash
# `runvm do -- CMD` on a real /dev/kvm, as a new user runs it: CMD in a VM
# over this machine's root, read-only below a writable layer. Checked from
# the host side: the status, what reached the host (nothing), the directory,
# the environment, stdio, a terminal, signals, and that nothing is left.
# usage: tests/integration/test_do_vm.sh BUILD_DIR
set -u
t_suite=do-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=$(cd "${1:?usage: test_do_vm.sh BUILD_DIR}" && pwd)
runvm=$build/bin/runvm
# A guest that stalls (tests/run-vm-tests.sh: the testbed's emulation) costs
# 4 minutes, not the suite's limit; SIGTERM first, which the command gets.
rvdo() { timeout -k 10 240 "$runvm" do "$@"; }
scratch=$(mktemp -d /tmp/runvm-do-vm.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mounts_before=$(wc -l </proc/self/mountinfo)

# --- another kernel, of the shape asked for -----------------------------------------
run_capture rvdo --cpus 2 --memory 256M -- sh -c 'uname -sr; nproc;
	sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo; cat /proc/version'
expect_rc "runvm do -- CMD: exit 0" 0
lines=()
mapfile -t lines <<<"$out"
[ "${lines[1]:-}" = 2 ] && pass "--cpus 2: the command sees 2 CPUs" ||
	fail "--cpus 2: the command sees 2 CPUs" "stdout: $out" "stderr: $err"
[ -n "${lines[2]:-}" ] && [ "${lines[2]}" -gt $((128 * 1024)) ] && [ "${lines[2]}" -le $((256 * 1024)) ] &&
	pass "--memory 256M: MemTotal is at most 256 MiB" || fail "--memory 256M: MemTotal is at most 256 MiB" "stdout: $out"
# Both kernels may be one version; their builds are not one.
[ -n "${lines[3]:-}" ] && [ "${lines[3]}" != "$(cat /proc/version)" ] &&
	pass "its /proc/version is another kernel's (/proc is the guest's, not the host's)" ||
	fail "its /proc/version is another kernel's (/proc is the guest's, not the host's)" \
		"guest: ${lines[3]:-}" "host: $(cat /proc/version)"

run_capture rvdo -- sh -c 'exit 7'
expect_rc "the command's exit status comes back (7)" 7
run_capture rvdo -- /no/such/command
expect_rc "a command missing from the root exits 127" 127 &&
	expect_in "and the error names it" "$err" "/no/such/command"

# --- writes stay in the VM ----------------------------------------------------------
echo original >"$scratch/existing"
echo keep >"$scratch/keep"
run_capture rvdo -- sh -c "echo guest-wrote >$scratch/new && echo appended >>$scratch/existing &&
	rm $scratch/keep && mkdir -p /usr/runvm-do-test && cat $scratch/new $scratch/existing &&
	[ ! -e $scratch/keep ] && echo removed"
expect_rc "writes anywhere in the root succeed in the VM" 0
expect_in "and the VM reads back what it wrote" "$out" "guest-wrote
original
appended
removed"
[ ! -e "$scratch/new" ] && [ "$(cat "$scratch/existing")" = original ] && [ -e "$scratch/keep" ] &&
	[ ! -e /usr/runvm-do-test ] && pass "none of it reached the host" ||
	fail "none of it reached the host" "$(ls -la "$scratch" /usr/runvm-do-test 2>&1)"

# --- directory, environment, stdio --------------------------------------------------
mkdir -p "$scratch/sub/dir"
run_capture sh -c "cd '$scratch/sub' && timeout -k 10 240 '$runvm' do -- pwd"
[ "$out" = "$scratch/sub" ] && pass "it starts in the current directory" ||
	fail "it starts in the current directory" "stdout: $out" "stderr: $err"
run_capture sh -c "cd '$scratch/sub' && timeout -k 10 240 '$runvm' do --cwd dir -- pwd"
[ "$out" = "$scratch/sub/dir" ] && pass "--cwd DIR, relative to the current one" ||
	fail "--cwd DIR, relative to the current one" "stdout: $out" "stderr: $err"
run_capture env RUNVM_DO_TEST='two  words' timeout -k 10 240 "$runvm" do -- sh -c 'printf "%s\n" "$RUNVM_DO_TEST"'
[ "$out" = "two  words" ] && pass "the caller's environment arrives intact" ||
	fail "the caller's environment arrives intact" "stdout: $out" "stderr: $err"
run_capture sh -c "printf 'line one\nline two\n' | timeout -k 10 240 '$runvm' do -- sh -c 'cat; echo to-stderr >&2'"
[ "$out" = "line one
line two" ] && [ "$err" = to-stderr ] && pass "stdin in, stdout and stderr out, apart" ||
	fail "stdin in, stdout and stderr out, apart" "stdout: $out" "stderr: $err"

# --- another root -------------------------------------------------------------------
mkdir -p "$scratch/root/bin" "$scratch/root/etc"
cp /bin/busybox "$scratch/root/bin/busybox"
for a in sh cat pwd; do ln -s busybox "$scratch/root/bin/$a"; done
echo "from the other root" >"$scratch/root/etc/greeting"
run_capture rvdo --root "$scratch/root" -- sh -c 'cat /etc/greeting; pwd; echo x >/etc/greeting'
expect_rc "--root DIR: exit 0" 0
expect_in "--root DIR: the command sees DIR as /" "$out" "from the other root"
[ "$(tail -n 1 <<<"$out")" = / ] && pass "--root DIR: outside DIR, it starts in its /" ||
	fail "--root DIR: outside DIR, it starts in its /" "stdout: $out"
[ "$(cat "$scratch/root/etc/greeting")" = "from the other root" ] &&
	pass "--root DIR: DIR is unchanged" || fail "--root DIR: DIR is unchanged"

# --- signals and a terminal ---------------------------------------------------------
"$runvm" do -- sh -c 'trap "echo got-TERM; exit 5" TERM; echo ready; while :; do sleep 1; done' \
	>"$scratch/sig.out" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q ready "$scratch/sig.out" && break; sleep 0.2; done
# Its VMM is in its jail and under its filter, as `runvm boot`'s.
grep -Eq '^Seccomp:[[:space:]]+2' "/proc/$pid/status" &&
	pass "runvm do's VMM runs under its seccomp filter" ||
	fail "runvm do's VMM runs under its seccomp filter" "$(grep Seccomp "/proc/$pid/status")"
[ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
	[ -d "/proc/$pid/root/exports" ] && ! [ -e "/proc/$pid/root/usr" ] &&
	pass "runvm do's VMM is in its jail: a mount namespace of its own, its exports at its root, not the host's tree" ||
	fail "runvm do's VMM is in its jail: a mount namespace of its own, its exports at its root, not the host's tree" \
		"$(ls "/proc/$pid/root/" 2>&1 | head -5)"
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" = 5 ] && grep -q got-TERM "$scratch/sig.out" && pass "SIGTERM to runvm do reaches the command" ||
	fail "SIGTERM to runvm do reaches the command" "exit $rc" "$(cat "$scratch/sig.out")"

# A terminal: python's pty stands for the user's. Ctrl-C is a byte on it,
# which the guest's terminal turns into SIGINT for the command.
run_capture python3 "$top/tests/integration/pty_run.py" 24 100 "$runvm" do -- \
	sh -c 'tty; stty size; echo ready; exec sleep 300'
expect_in "stdin a terminal: the command gets one" "$out" "/dev/pts/"
expect_in "of the terminal's size" "$out" "24 100"
expect_in "Ctrl-C ends the command with SIGINT, and runvm do with it" "$out" "status: signal 2"

# --- bad input ----------------------------------------------------------------------
run_capture "$runvm" do
expect_rc "no command: exit 1" 1 && expect_in "no command: says how to give one" "$err" "no command given"
run_capture rvdo --network host -- true
expect_rc "--network host: refused" 1 && expect_in "--network: names the flag and what is there" "$err" "--network 'host'"
run_capture rvdo --network none --ip 10.0.0.2 -- true
expect_rc "--network none with --ip: refused" 1 && expect_in "naming both" "$err" "--ip 10.0.0.2 with --network none"
run_capture rvdo --cwd /no/such/dir -- true
expect_rc "--cwd of a missing dir: exit 1" 1 && expect_in "--cwd: names it" "$err" "--cwd /no/such/dir"
run_capture rvdo --root /no/such/root -- true
expect_rc "--root of a missing dir: exit 1" 1 && expect_in "--root: names it" "$err" "--root /no/such/root"
run_capture rvdo --memory 1M -- true
expect_rc "--memory 1M: exit 1" 1 && expect_in "--memory: names the flag" "$err" "--memory '1M'"
run_capture rvdo --cwd /etc --root "$scratch/root" -- true
expect_rc "--cwd outside --root: exit 1" 1 && expect_in "--cwd outside --root: says so" "$err" "not inside --root"

# --- nothing left behind ------------------------------------------------------------
[ "$(wc -l </proc/self/mountinfo)" = "$mounts_before" ] && pass "no mount left behind" ||
	fail "no mount left behind" "$(tail -n 3 /proc/self/mountinfo)"
pgrep -f "$runvm do" >/dev/null && fail "no runvm do process left behind" "$(pgrep -af "$runvm do")" ||
	pass "no runvm do process left behind"
summary
