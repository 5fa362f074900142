#!/usr/bin/env bash
# The runvm binary as a user runs it on this host: flags, errors, features.
# usage: tests/integration/test_cli.sh BUILD_DIR
set -u
t_suite=cli
. "$(dirname "$0")/../lib.sh"
runvm=${1:?usage: test_cli.sh BUILD_DIR}/bin/runvm

run_capture "$runvm" --version
expect_rc "--version exits 0" 0 && expect_in "--version names runvm" "$out" "runvm version"

run_capture "$runvm" features
expect_rc "features exits 0" 0
expect_in "features has the OCI version range" "$out" '"ociVersionMax": "1.2.0"'
expect_in "features names the KVM backend" "$out" '"io.runvm.kvm.backend": '
expect_in "features says whether guests can boot" "$out" '"io.runvm.kvm.bootable": '
features=$out

if grep -q '"io.runvm.kvm.bootable": "false"' <<<"$features"; then
	run_capture "$runvm" create demo
	expect_rc "create refuses on a host that cannot boot guests" 1
	expect_in "the refusal is one line naming runvm and the testbed" "$err" "tests/testbed/run"
	[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && pass "the refusal is a single line" ||
		fail "the refusal is a single line" "$err"
	if grep -q '"io.runvm.kvm.backend": "kvm_pvm"' <<<"$features"; then
		expect_in "the refusal names kvm_pvm" "$err" "kvm_pvm"
	fi
else
	skip "create refusal" "this host can boot guests"
fi

run_capture "$runvm" --log-format yaml features
expect_rc "bad --log-format is an error" 1 && expect_in "it names the flag and the fix" "$err" "--log-format 'yaml': use text or json"

run_capture "$runvm" frobnicate
expect_rc "unknown command is an error" 1 && expect_in "it names the command" "$err" "unknown command 'frobnicate'"

run_capture "$runvm" --bogus features
expect_rc "unknown global flag is an error" 1 && expect_in "it names the flag" "$err" "'--bogus'"

run_capture "$runvm"
expect_rc "no command is an error" 1 && expect_in "it says so" "$err" "no command given"

log=$(mktemp)
run_capture "$runvm" --log "$log" --log-format json frobnicate
expect_rc "errors still exit 1 with --log" 1
expect_in "errors land in the JSON log for the shim" "$(cat "$log")" '{"level":"error","msg":"unknown command '"'"'frobnicate'"'"' (see runvm --help)"'
expect_in "and on stderr once" "$err" "runvm: unknown command"
rm -f "$log"

run_capture "$runvm" --log /nonexistent/dir/x.log features
expect_rc "unopenable --log is an error" 1 && expect_in "it names the file" "$err" "/nonexistent/dir/x.log"

run_capture "$runvm" --root /tmp/x --debug --systemd-cgroup features
expect_rc "runc's global flags are accepted" 0

summary
