#!/usr/bin/env bash
# The same lifecycle scenarios against any runc-compatible runtime, printed as
# one "scenario: outcome" line each (exit statuses, statuses, outputs; never
# messages, which differ in wording), so that runc's and runvm's lists can be
# compared line by line (tests/integration/test_lifecycle_vm.sh does).
# usage: tests/integration/conformance.sh RUNTIME SCRATCH_DIR
#   RUNTIME: the runtime binary (runc, build/bin/runvm); SCRATCH_DIR: an empty
#   directory on a local filesystem for bundles and the runtime's --root.
set -u
rt=${1:?usage: conformance.sh RUNTIME SCRATCH_DIR}
dir=${2:?usage: conformance.sh RUNTIME SCRATCH_DIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
root=$dir/root
r() { "$rt" --root "$root" "$@"; }
say() { echo "$1: $2"; }
status() { r state "$1" 2>/dev/null | sed -n 's/^  "status": "\(.*\)",$/\1/p'; }
mk() { "$top/tests/integration/make-bundle.sh" "$@" >/dev/null; }
wait_status() { # ID STATUS: up to 60 s
	for _ in $(seq 600); do [ "$(status "$1")" = "$2" ] && return 0; sleep 0.1; done
	return 1
}

mk "$dir/exit3" sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'
mk "$dir/true" true
mk "$dir/sleep" sleep 1000
mk "$dir/nosuch" no-such-program
# The pid namespace dropped: with one, the process would be its PID 1, in
# runc's container and in runvm's guest alike, which the kernel shields from
# signals it has no handler for (SIGTERM to a sleep would do nothing, and
# `run` would wait for ever).
for b in exit3 true sleep nosuch; do
	sed -i 's/{ "type": "pid" }, //' "$dir/$b/config.json"
done

r run --bundle "$dir/true" c-true >/dev/null 2>&1
say "run true" "exit $?"
r run --bundle "$dir/exit3" c-exit3 >"$dir/out" 2>"$dir/err"
say "run exit 3" "exit $? out=$(cat "$dir/out") err=$(cat "$dir/err")"
say "list after run" "[$(r list -q 2>/dev/null | tr '\n' ' ')]"
for sig in KILL TERM INT; do
	r run --bundle "$dir/sleep" "c-$sig" >/dev/null 2>&1 &
	runner=$!
	wait_status "c-$sig" running
	r kill "c-$sig" "$sig" >/dev/null 2>&1
	wait $runner
	say "run killed by SIG$sig" "exit $?"
done

r create --bundle "$dir/sleep" --pid-file "$dir/pid" c1 >/dev/null 2>&1
say "create" "exit $? status=$(status c1)"
pid=$(r state c1 2>/dev/null | sed -n 's/^  "pid": \([0-9]*\),$/\1/p')
say "pid file" "$([ -n "$pid" ] && [ "$pid" = "$(cat "$dir/pid" 2>/dev/null)" ] && echo "matches state" || echo "differs")"
r create --bundle "$dir/sleep" c1 >/dev/null 2>&1
say "create a duplicate id" "exit $?"
say "list -q" "[$(r list -q 2>/dev/null | tr '\n' ' ')]"
r start c1 >/dev/null 2>&1
say "start" "exit $? status=$(status c1)"
r start c1 >/dev/null 2>&1
say "start twice" "exit $?"
r delete c1 >/dev/null 2>&1
say "delete running" "exit $? status=$(status c1)"
# exec into the running container: statuses, output, env, user and cwd
# over the spec's, a missing executable, stdin.
r exec c1 true >/dev/null 2>&1
say "exec true" "exit $?"
r exec c1 sh -c 'echo out; echo err >&2; exit 7' >"$dir/out" 2>"$dir/err"
say "exec exit 7" "exit $? out=$(cat "$dir/out") err=$(cat "$dir/err")"
say "exec env" "$(r exec -e FOO=bar -e HOME=/tmp c1 sh -c 'echo $FOO $HOME $PATH' 2>&1)"
say "exec user and cwd" "$(r exec -u 1000:100 -g 7 --cwd /tmp c1 sh -c 'id -u; id -g; id -G; pwd' 2>&1 | tr '\n' ' ')"
r exec c1 nope >/dev/null 2>&1
say "exec a missing executable" "exit $?"
say "exec stdin" "$(echo piped | r exec c1 cat 2>&1)"
r exec -d --pid-file "$dir/xpid" c1 sleep 1 >/dev/null 2>&1
say "exec -d" "exit $? pid-file=$([ -s "$dir/xpid" ] && echo written || echo missing)"
r pause c1 >/dev/null 2>&1
say "pause" "exit $? status=$(status c1)"
r exec c1 true >/dev/null 2>&1
say "exec paused" "exit $?"
r resume c1 >/dev/null 2>&1
say "resume" "exit $? status=$(status c1)"
r kill c1 FOO >/dev/null 2>&1
say "kill unknown signal" "exit $?"
r kill c1 TERM >/dev/null 2>&1
say "kill TERM" "exit $?"
wait_status c1 stopped
say "after kill" "status=$(status c1)"
r kill c1 TERM >/dev/null 2>&1
say "kill stopped" "exit $?"
r exec c1 true >/dev/null 2>&1
say "exec stopped" "exit $?"
r start c1 >/dev/null 2>&1
say "start stopped" "exit $?"
r delete c1 >/dev/null 2>&1
say "delete stopped" "exit $? gone=$([ -z "$(r list -q 2>/dev/null)" ] && echo yes || echo no)"

r create --bundle "$dir/sleep" c2 >/dev/null 2>&1
r delete c2 >/dev/null 2>&1
say "delete created" "exit $? gone=$([ -z "$(r list -q 2>/dev/null)" ] && echo yes || echo no)"
r run -d --bundle "$dir/sleep" c3 >/dev/null 2>&1
say "run -d" "exit $? status=$(status c3)"
r delete --force c3 >/dev/null 2>&1
say "delete --force running" "exit $? gone=$([ -z "$(r list -q 2>/dev/null)" ] && echo yes || echo no)"
# start returns once the process is released, as runc's does; a signal
# sent right after it still reaches the process.
r create --bundle "$dir/sleep" c5 >/dev/null 2>&1
r start c5 >/dev/null 2>&1
r kill c5 TERM >/dev/null 2>&1
say "kill right after start" "exit $? stopped=$(wait_status c5 stopped && echo yes || echo no)"
r delete c5 >/dev/null 2>&1
# runc's init looks the executable up before it waits for start: create fails.
r create --bundle "$dir/nosuch" c6 >/dev/null 2>&1
say "create of a missing executable" "exit $? left=[$(r list -q 2>/dev/null | tr '\n' ' ')]"

r state nope >/dev/null 2>&1
say "state unknown id" "exit $?"
r delete nope >/dev/null 2>&1
say "delete unknown id" "exit $?"
r delete --force nope >/dev/null 2>&1
say "delete --force unknown id" "exit $?"
r create --bundle "$dir/missing" c4 >/dev/null 2>&1
say "create missing bundle" "exit $? left=[$(r list -q 2>/dev/null | tr '\n' ' ')]"
r create --bundle "$dir/sleep" 'bad/id' >/dev/null 2>&1
say "create bad id" "exit $?"
say "list json empty" "$(r list --format json 2>/dev/null)"
