# Shared helpers for the shell test suites. Each suite ends with one line
# "SUITE: N passed, N failed, N skipped" that tests/check.sh adds up.
# shellcheck shell=bash

# Debian's tools first, the ones scripts/install-deps.sh installs: a PATH
# with other interpreters ahead (a pyenv python3 shim: 13 s a start in the
# testbed, against 2 for Debian's) would test against those, slowly.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# A VMM that makes a call its seccomp filter forbids says which (vmm/jail.h)
# instead of dying silently by SIGSYS: a failing test then names it.
export RUNVM_SECCOMP_REPORT=1

t_pass=0 t_fail=0 t_skip=0
t_suite=${t_suite:-tests}

t_last=$SECONDS
# Sets t_took to " (N s)" after a result that took 10 s or more since the
# previous one: where a suite's time goes, e.g. in CI's 90 minutes.
took() {
	local d=$((SECONDS - t_last))
	t_last=$SECONDS t_took=
	[ "$d" -lt 10 ] || t_took=" ($d s)"
}
pass() { t_pass=$((t_pass + 1)); took; echo "  ok    $1$t_took"; }
fail() {
	t_fail=$((t_fail + 1)); took; echo "  FAIL  $1$t_took"
	shift
	for line in "$@"; do printf '        %s\n' "$line"; done
}
skip() { t_skip=$((t_skip + 1)); echo "  SKIP  $1 ($2)"; }

# run_capture CMD...: runs CMD, sets $out, $err and $rc.
run_capture() {
	local o e
	o=$(mktemp) e=$(mktemp)
	"$@" >"$o" 2>"$e"
	rc=$?
	out=$(cat "$o") err=$(cat "$e")
	rm -f "$o" "$e"
}

# check NAME COND-DESCRIPTION: after run_capture, assert with a shell test.
expect_rc() {
	local name=$1 want=$2
	if [ "$rc" = "$want" ]; then pass "$name"; else
		fail "$name" "exit status $rc, expected $want" "stdout: ${out:0:400}" "stderr: ${err:0:600}"
		return 1
	fi
}

expect_in() {
	local name=$1 haystack=$2 needle=$3
	case "$haystack" in
	*"$needle"*) pass "$name" ;;
	*) fail "$name" "expected to find: $needle" "in: ${haystack:0:600}"; return 1 ;;
	esac
}

summary() {
	echo "$t_suite: $t_pass passed, $t_fail failed, $t_skip skipped"
	[ "$t_fail" = 0 ]
}
