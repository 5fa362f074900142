#!/usr/bin/env bash
# The runvm binary as a user runs it on this host: flags, help, errors,
# features; then the lifecycle verbs' refusals (test_lifecycle_cli.sh).
# usage: tests/integration/test_cli.sh BUILD_DIR
set -u
t_suite=cli
. "$(dirname "$0")/../lib.sh"
runvm=${1:?usage: test_cli.sh BUILD_DIR}/bin/runvm

expect_same() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got: ${2:0:300}" "expected: ${3:0:300}"; fi
}

run_capture "$runvm" --version
expect_rc "--version exits 0" 0 && expect_in "--version names runvm" "$out" "runvm version"

run_capture "$runvm" features
expect_rc "features exits 0" 0
expect_in "features has the OCI version range" "$out" '"ociVersionMax": "1.2.0"'
expect_in "features says the VMM runs under seccomp filters" "$out" '"io.runvm.vmm.seccomp": "vmm,vcpu,fs-worker: kill-process"'
expect_in "features says the VMM runs in a jail" "$out" '"io.runvm.vmm.jail": "mount,ipc,uts namespaces; pivot_root; file-server capabilities only"'
expect_in "features names the KVM backend" "$out" '"io.runvm.kvm.backend": '
expect_in "features says whether guests can boot" "$out" '"io.runvm.kvm.bootable": '
expect_in "features lists the mount options it understands" "$out" '"mountOptions": ['
expect_in "features lists the namespaces every guest has" "$out" '"namespaces": ['
expect_in "features names the sandbox" "$out" '"io.runvm.sandbox": "kvm-microvm"'
flat=$(tr -d ' \n' <<<"$out")
expect_in "mountOptions has the mount flags runc names" "$flat" '"nodev","nodiratime","noexec"'
expect_in "namespaces are runc's seven" "$flat" \
	'"namespaces":["cgroup","ipc","mount","network","pid","user","uts"]'
if command -v jq >/dev/null; then
	if jq -e . >/dev/null <<<"$out"; then pass "features is valid JSON"; else
		fail "features is valid JSON" "$out"
	fi
else
	skip "features is valid JSON" "no jq here"
fi
# A hook listed is a promise that it runs: the host's kinds, not the guest's.
hooks=$(sed -n '/"hooks": \[/,/\]/p' <<<"$out" | tr -d ' \n')
[ "$hooks" = '"hooks":["prestart","createRuntime","poststart","poststop"],' ] &&
	pass "features lists the hooks that run (on the host)" ||
	fail "features lists the hooks that run (on the host)" "$hooks"

# --- help ------------------------------------------------------------------
run_capture "$runvm" --help
expect_rc "--help exits 0" 0 && expect_in "--help lists the commands" "$out" "  create "
top_help=$out
run_capture "$runvm" help
expect_rc "help alone exits 0" 0 && expect_same "help alone is --help" "$out" "$top_help"
run_capture "$runvm" help create
expect_rc "help create exits 0" 0 && expect_in "help create shows --bundle" "$out" "--bundle DIR"
create_help=$out
for flag in --help -h; do
	run_capture "$runvm" create "$flag"
	expect_rc "create $flag exits 0" 0 && expect_same "create $flag is help create" "$out" "$create_help"
done
for verb in create start run kill delete state list ps events pause resume wait spec features; do
	run_capture "$runvm" "$verb" --help
	expect_in "$verb --help shows its usage" "$out" "usage: runvm $verb"
done
run_capture "$runvm" help kill
expect_in "help kill shows --all" "$out" "--all"
run_capture "$runvm" help list
expect_in "help list shows --format and --quiet" "$out" "--format table|json] [--quiet]"
run_capture "$runvm" help run
expect_in "help run shows -d" "$out" "--detach"
run_capture "$runvm" help nosuchverb
expect_rc "help of an unknown command is an error" 1 &&
	expect_in "it names the command" "$err" "unknown command 'nosuchverb'"

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

# --flag=value, as Go's flag package lets runc's clients write it.
tmp=$(mktemp -d)
touch "$tmp/file"
run_capture "$runvm" --root="$tmp/file" list
expect_rc "--root=DIR is taken" 1 && expect_in "as the state root" "$err" "$tmp/file"
run_capture "$runvm" --root="$tmp/root" list
expect_rc "list under --root=DIR exits 0" 0
run_capture "$runvm" --log="$tmp/log" --log-format=json state nope
expect_rc "--log=FILE --log-format=json are taken" 1
expect_in "the error lands in FILE as JSON" "$(cat "$tmp/log" 2>/dev/null)" '"level":"error","msg":"container '"'"'nope'"'"' does not exist"'
rm -rf "$tmp"

summary
status=$?
# The lifecycle verbs' refusals: a sub-suite whose closing line check.sh adds up.
"$(dirname "$0")/test_lifecycle_cli.sh" "${1}" || status=1
exit $status
