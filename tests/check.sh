#!/usr/bin/env bash
# Run test suites and add their results up into one closing line.
# usage: tests/check.sh --build DIR --suites unit,cli,kvm-host,agent,fs-host,vm,testbed,fuzz
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=build suites=unit,cli,kvm-host,agent,fs-host,vm,testbed,fuzz
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--suites) suites=$2; shift 2 ;;
	*) echo "check.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

passed=0 failed=0 skipped=0 broken=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Adds up every closing line a suite printed (a suite may run sub-suites). A
# suite that dies without one counts as a failure, so a crash never looks green.
tally() {
	local name=$1 rc=$2 line found=0 bad=0
	while IFS= read -r line; do
		if [[ "$line" =~ Passing:\ ([0-9]+)\ \|\ Failing:\ ([0-9]+)\ \|\ Crashing:\ ([0-9]+) ]]; then
			passed=$((passed + BASH_REMATCH[1]))
			bad=$((bad + BASH_REMATCH[2] + BASH_REMATCH[3]))
		elif [[ "$line" =~ ^[a-z-]+:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
			passed=$((passed + BASH_REMATCH[1]))
			bad=$((bad + BASH_REMATCH[2]))
			skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
		else
			continue
		fi
		found=1
	done < <(grep -E 'Synthesis: Tested|^[a-z-]+: [0-9]+ passed, [0-9]+ failed' "$log")
	[ "$found" = 1 ] || bad=$((bad + 1))
	failed=$((failed + bad))
	if [ "$rc" != 0 ] || [ "$bad" != 0 ]; then
		broken+=("$name")
	fi
}

suite() {
	local name=$1; shift
	echo "=== $name"
	local t0=$SECONDS
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	tally "$name" "$rc"
	echo "=== $name: $((SECONDS - t0)) s"
}

# Tiny guest payloads on this machine's /dev/kvm (DESIGN §10, layer 5): the
# self-check, then a template's vCPU saved and restored into a second VM.
# Exit 77 is "not run", its reason printed by the program.
selfcheck_on_host() {
	local t pass=0 fail=0 skip=0
	for t in kvm-selfcheck kvm-vcpu-state; do
		"$build/tests/$t"
		case $? in
		0) pass=$((pass + 1)) ;;
		77) skip=$((skip + 1)) ;;
		*) fail=$((fail + 1)) ;;
		esac
	done
	echo "kvm-host: $pass passed, $fail failed, $skip skipped"
	[ "$fail" = 0 ]
}

IFS=, read -ra wanted <<<"$suites"
for s in "${wanted[@]}"; do
	case "$s" in
	unit) LSAN_OPTIONS="suppressions=$PWD/tests/unit/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
		suite unit "$build/tests/unit-tests" ;;
	cli) suite cli tests/integration/test_cli.sh "$build" ;;
	kvm-host) suite kvm-host selfcheck_on_host ;;
	agent) suite agent tests/integration/test_agent_host.sh "$build" ;;
	fs-host) suite fs-host tests/integration/test_fs_host.sh "$build" ;;   # FUSE server on /dev/fuse
	vm) suite vm tests/run-vm-tests.sh "$build" ;;
	testbed) suite testbed tests/testbed/test_run.sh ;;
	fuzz) suite fuzz tests/fuzz/run.sh --seconds 10 ;;   # built by make fuzz-build
	*) echo "check.sh: unknown suite '$s'" >&2; exit 2 ;;
	esac
done

[ ${#broken[@]} = 0 ] || echo "failing suites: ${broken[*]}"
echo "check: $passed passed, $failed failed, $skipped skipped"
[ ${#broken[@]} = 0 ]
