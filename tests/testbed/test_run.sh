#!/usr/bin/env bash
# tests/testbed/run as its users run it: exit statuses, streams, cwd, env, the
# read-only host root with its throwaway layer, the read-write checkout, every
# bad-input path, and that nothing is left behind. Ends with a stress run under
# a CPU hog (RUNVM_TESTBED_STRESS_RUNS, default 5) proving L2 never hangs.
set -u
t_suite=testbed
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/tests/lib.sh"
run=$here/run
cd "$top"

# Only what this suite's runs leave counts: a testbed QEMU or temp dir that was
# there before it started belongs to someone else (another check, a killed run).
testbed_procs() { pgrep -f 'runvm-testbed-[0-9]' | sort; }
testbed_dirs() { compgen -G '/tmp/runvm-testbed.*' | sort; }
procs_before=$(testbed_procs) dirs_before=$(testbed_dirs)
leftovers() {
	local procs dirs
	procs=$(comm -13 <(echo "$procs_before") <(testbed_procs) | tr '\n' ' ')
	dirs=$(comm -13 <(echo "$dirs_before") <(testbed_dirs) | tr '\n' ' ')
	[ -z "${procs// /}${dirs// /}" ] && return 0
	echo "processes: $procs; dirs: $dirs"
	return 1
}

expect_clean() {
	local what
	if what=$(leftovers); then pass "$1 leaves no QEMU or temp dir behind"; else
		fail "$1 leaves no QEMU or temp dir behind" "$what"
	fi
}

# --- the happy paths ----------------------------------------------------------
t0=$(date +%s.%N)
RUNVM_TESTBED_VERBOSE=1 run_capture "$run" -- true
t1=$(date +%s.%N)
expect_rc "run -- true exits 0" 0
echo "        one 'run -- true': $(echo "$t1 - $t0" | bc) s; $(grep -o 'L2 reached init.*' <<<"$err")"

run_capture "$run" -- sh -c 'exit 3'
expect_rc "CMD's exit status comes back" 3

run_capture "$run" -- sh -c 'echo to-stdout; echo to-stderr >&2'
expect_rc "a command printing on both streams exits 0" 0
[ "$out" = to-stdout ] && pass "stdout streams back, alone" || fail "stdout streams back, alone" "got: $out"
expect_in "stderr streams back" "$err" to-stderr

run_capture bash -c "cd '$top/tests' && '$run' -- pwd"
[ "$out" = "$top/tests" ] && pass "CMD runs in the caller's cwd" || fail "CMD runs in the caller's cwd" "got: $out"

RUNVM_PROBE="it's a \"test\" \$HOME" run_capture "$run" -- sh -c 'printf %s "$RUNVM_PROBE"'
[ "$out" = "it's a \"test\" \$HOME" ] && pass "the environment arrives intact" ||
	fail "the environment arrives intact" "got: $out"

run_capture "$run" -- sh -c 'echo layer > /etc/runvm-testbed-probe && cat /etc/runvm-testbed-probe'
[ "$out" = layer ] && pass "the host root is writable through a layer in L2" ||
	fail "the host root is writable through a layer in L2" "rc $rc, out: $out, err: $err"
[ ! -e /etc/runvm-testbed-probe ] && pass "writes to the host root do not reach the host" ||
	{ fail "writes to the host root do not reach the host"; rm -f /etc/runvm-testbed-probe; }

probe=$top/build/testbed-probe.$$
run_capture "$run" -- sh -c "echo shared > '$probe'"
[ "$(cat "$probe" 2>/dev/null)" = shared ] && pass "the checkout is read-write at its own path" ||
	fail "the checkout is read-write at its own path" "rc $rc, err: $err"
rm -f "$probe"

run_capture "$run" -- sh -c 'test -c /dev/kvm && grep -qw svm /proc/cpuinfo'
expect_rc "L2 has /dev/kvm and an SVM CPU" 0

run_capture "$run" --cpus 2 --memory 1G -- sh -c 'nproc; grep MemTotal /proc/meminfo'
expect_in "--cpus reaches L2" "$out" $'2\nMemTotal'
expect_clean "the happy paths"

# --- bad input and failures ---------------------------------------------------
run_capture "$run"
expect_rc "no command: testbed error status" 125 && expect_in "no command: says so" "$err" "no command given"

run_capture "$run" --cpus zero -- true
expect_rc "bad --cpus: testbed error status" 125 && expect_in "bad --cpus: names the flag" "$err" "--cpus 'zero'"

RUNVM_TESTBED_QEMU=/nonexistent/qemu-system-x86_64 run_capture "$run" -- true
expect_rc "missing QEMU: testbed error status" 125
expect_in "missing QEMU: names it and the fix" "$err" "QEMU (/nonexistent/qemu-system-x86_64) not found: install it with scripts/install-deps.sh"

# A QEMU that boots L2 and then never runs again: the freeze watch stops it.
fake_qemu=$(mktemp /tmp/runvm-fake-qemu.XXXXXX)
cat >"$fake_qemu" <<'EOF2'
#!/bin/sh
for a; do case "$a" in file,id=status,path=*) echo "booted 1.0" >"${a#file,id=status,path=}" ;; esac; done
exec sleep 600
EOF2
chmod +x "$fake_qemu"
t0=$SECONDS
RUNVM_TESTBED_QEMU=$fake_qemu RUNVM_TESTBED_FREEZE_SECS=3 run_capture "$run" -- true
expect_rc "L2 frozen (QEMU using no CPU): its own status" 123
expect_in "L2 frozen: says so" "$err" "L2 froze: QEMU used no CPU for 3s"
[ $((SECONDS - t0)) -lt 60 ] && pass "L2 frozen: stopped long before --timeout" ||
	fail "L2 frozen: stopped long before --timeout" "took $((SECONDS - t0)) s"
# One that keeps using CPU while its kernel reports an RCU stall: the same.
cat >"$fake_qemu" <<'EOF2'
#!/bin/sh
for a; do case "$a" in
file,id=status,path=*) echo "booted 1.0" >"${a#file,id=status,path=}" ;;
file:*) console=${a#file:} ;;
esac; done
sleep 1
echo "[  194.174333] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:" >>"$console"
while :; do :; done
EOF2
RUNVM_TESTBED_QEMU=$fake_qemu run_capture "$run" --timeout 60 -- true
expect_rc "L2 stalled (its RCU says so): its own status" 123
expect_in "L2 stalled: says so" "$err" "L2 froze: its kernel reports a CPU stalled (RCU)"
rm -f "$fake_qemu"

bad_fragment=$(mktemp /tmp/runvm-bad-fragment.XXXXXX)
printf 'CONFIG_RUNVM_NO_SUCH_OPTION=y\n' >"$bad_fragment"
RUNVM_TESTBED_FRAGMENT=$bad_fragment run_capture "$run" -- true
expect_rc "kernel build failure: testbed error status" 125
expect_in "kernel build failure: names the option" "$err" "CONFIG_RUNVM_NO_SUCH_OPTION=y did not survive"
expect_in "kernel build failure: one clear last line" "$(tail -n 1 <<<"$err")" "testbed: building the L2 kernel failed"
rm -rf "$bad_fragment" "$top/build/testbed/kernel-$(realpath -m "$bad_fragment" | sha256sum | cut -c1-12)"

run_capture "$run" --boot-timeout 0.3 -- true
expect_rc "L2 missing its boot timeout: testbed error status" 125
expect_in "L2 missing its boot timeout: says so" "$err" "L2 did not reach its init within 0.3s (--boot-timeout)"

run_capture "$run" -- sh -c 'kill -KILL $$'
expect_rc "CMD killed by SIGKILL: 128+9" 137
expect_in "CMD killed by a signal: says which" "$err" "was killed by signal 9 (SIGKILL)"

run_capture "$run" --timeout 2 -- sleep 600
expect_rc "CMD over --timeout: 124" 124
expect_in "CMD over --timeout: says so" "$err" "did not finish within 2s (--timeout)"

run_capture "$run" -- sh -c 'echo c > /proc/sysrq-trigger; sleep 600'
expect_rc "L2 panicking under CMD: testbed error status" 125
expect_in "L2 panicking under CMD: says so, with the panic" "$err" "L2 crashed before 'sh -c echo c > /proc/sysrq-trigger; sleep 600' finished: Kernel panic - not syncing: sysrq triggered crash"
expect_in "L2 panicking under CMD: shows the console" "$err" "last L2 console lines:"

run_capture "$run" -- /nonexistent/command
expect_rc "a missing CMD: 127 like a shell" 127

"$run" -- sleep 600 >/dev/null 2>&1 &
victim=$!
for _ in $(seq 300); do pgrep -f "runvm-testbed-$victim" >/dev/null && break; sleep 0.1; done
sleep 1
kill -TERM "$victim"
wait "$victim"
rc=$?
[ "$rc" = 143 ] && pass "SIGTERM to run ends it with 143" || fail "SIGTERM to run ends it with 143" "got $rc"
expect_clean "every failure path"

# --- stress: never hang under a CPU hog ---------------------------------------
runs=${RUNVM_TESTBED_STRESS_RUNS:-5}
hogs=()
for _ in $(seq "$(nproc)"); do (while :; do :; done) & hogs+=($!); done
times=() hung=0 bad=0
for i in $(seq "$runs"); do
	s=$(date +%s.%N)
	"$run" --timeout 120 -- true >/dev/null 2>"$top/build/testbed-stress.err"
	rc=$?
	times+=("$(echo "$(date +%s.%N) - $s" | bc)")
	if [ "$rc" = 124 ]; then hung=$((hung + 1)); elif [ "$rc" != 0 ]; then
		bad=$((bad + 1)); sed "s/^/        run $i: /" "$top/build/testbed-stress.err" | tail -n 5
	fi
done
kill "${hogs[@]}" 2>/dev/null; wait "${hogs[@]}" 2>/dev/null
rm -f "$top/build/testbed-stress.err"
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "        $runs runs of 'run -- true' under $(nproc) CPU hogs: min $(head -n1 <<<"$sorted") s," \
	"median $(sed -n "$(((runs + 1) / 2))p" <<<"$sorted") s, max $(tail -n1 <<<"$sorted") s"
[ "$hung" = 0 ] && pass "$runs runs under a CPU hog: none hung" || fail "$runs runs under a CPU hog: none hung" "$hung hung"
[ "$bad" = 0 ] && pass "$runs runs under a CPU hog: all exited 0" || fail "$runs runs under a CPU hog: all exited 0" "$bad failed"
expect_clean "the stress runs"

summary
