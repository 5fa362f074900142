#!/usr/bin/env bash
# The lifecycle verbs as a user meets them on a host that cannot boot a guest:
# every refusal is one line on stderr naming the culprit, a non-zero status,
# and nothing left behind (no state dir under --root, no process). Run by
# test_cli.sh as part of the cli suite; whole-VM runs are tests/run-vm-tests.sh.
# usage: tests/integration/test_lifecycle_cli.sh BUILD_DIR
set -u
t_suite=cli-lifecycle
. "$(dirname "$0")/../lib.sh"
build=$(cd "${1:?usage: test_lifecycle_cli.sh BUILD_DIR}" && pwd)
runvm=$build/bin/runvm
top=$(cd "$(dirname "$0")/../.." && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
have_runc=$(command -v runc >/dev/null && echo 1)

rv() { run_capture "$runvm" --root "$root" "$@"; }

expect_eq() {
	local name=$1 got=$2 want=$3
	if [ "$got" = "$want" ]; then pass "$name"; else
		fail "$name" "expected: ${want:0:300}" "got: ${got:0:300}"
	fi
}

# bundle NAME: $tmp/NAME with rootfs/ and runvm spec's config.json, terminal
# off (create needs a console socket for one); prints its path. The cases below
# edit that file with sed, relying on runc's layout that spec writes: one
# member a line, tab-indented (python or jq would be easier to read, but
# python3 alone costs seconds on a loaded CI machine).
bundle() {
	local b=$tmp/$1
	mkdir -p "$b/rootfs"
	"$runvm" spec -b "$b" && sed -i 's/"terminal": true/"terminal": false/' "$b/config.json"
	echo "$b"
}

# What a refusal must not leave: a state dir, or a process started from $tmp.
leftovers() {
	local dirs procs
	dirs=$(shopt -s nullglob dotglob; echo "$root"/*)
	procs=$(pgrep -af -- "$tmp")
	[ -z "$dirs" ] || echo "left under --root: $dirs"
	[ -z "$procs" ] || echo "left running: $procs"
}

# refused NAME NEEDLE...: after rv, the verb failed with one stderr line that
# contains every NEEDLE, and left nothing behind. One result per case.
refused() {
	local name=$1 why=() left n
	shift
	[ "$rc" != 0 ] || why+=("exit status 0")
	[ -n "$err" ] && [[ "$err" != *$'\n'* ]] || why+=("stderr is not one line")
	[[ "$err" == "runvm: "* ]] || why+=("stderr does not start with 'runvm: '")
	for n in "$@"; do
		[[ "$err" == *"$n"* ]] || why+=("does not name: $n")
	done
	left=$(leftovers)
	[ -z "$left" ] || why+=("$left")
	if [ ${#why[@]} = 0 ]; then pass "$name"; else
		fail "$name" "${why[@]}" "stderr: ${err:0:600}"
	fi
	[ ! -e "$root" ] || rm -rf "$root"
}

# like_runc NAME PHRASE RUNC-ARGS...: runc words the same refusal with PHRASE
# too, so that our message reads as a runc user expects.
like_runc() {
	local name=$1 phrase=$2 e
	shift 2
	if [ -z "$have_runc" ]; then skip "$name" "no runc on this host"; return; fi
	e=$(runc --root "$tmp/runc" "$@" 2>&1 >/dev/null)
	expect_in "$name" "$e" "$phrase"
	rm -rf "$tmp/runc"
}

ok=$(bundle ok)

# --- the bundle and its config.json ----------------------------------------
rv create -b "$tmp/nope" c1
refused "create: a missing bundle dir is named" "$tmp/nope"

mkdir -p "$tmp/empty"
rv create -b "$tmp/empty" c1
refused "create: a bundle without config.json says so" "config.json" "$tmp/empty"

b=$(bundle badjson)
printf '{\n "ociVersion": "1.0.2",\n "process": {,\n}\n' >"$b/config.json"
rv create -b "$b" c1
refused "create: invalid JSON is named by line and column" "config.json" "line 3, column"

b=$(bundle oldver)
sed -i 's/"ociVersion": "[^"]*"/"ociVersion": "0.9.0"/' "$b/config.json"
rv create -b "$b" c1
refused "create: ociVersion 0.9.0 is unsupported" "ociVersion" "0.9.0"

b=$(bundle noargs)
sed -i '/"args": \[/,/\],/d' "$b/config.json"
rv create -b "$b" c1
refused "create: missing process.args is named" "process.args"

b=$(bundle emptyargs)
sed -i '/"args": \[/,/\],/c\\t\t"args": [],' "$b/config.json"
rv create -b "$b" c1
refused "create: empty process.args is named" "process.args"

b=$(bundle devices)
sed -i 's|^\t"linux": {|&\n\t\t"devices": [{"path": "/dev/fuse", "type": "x", "major": 10, "minor": 229}],|' \
	"$b/config.json"
rv create -b "$b" c1
refused "create: a device of an unknown type is named, with the types" "linux.devices[0].type" \
	"use c or u (character), b (block) or p (FIFO)"

b=$(bundle hook-relative)
sed -i 's|^\t"linux": {|\t"hooks": {"prestart": [{"path": "bin/x"}]},\n&|' "$b/config.json"
rv create -b "$b" c1
refused "create: a relative hook path is named" "hooks.prestart[0].path" "absolute"

b=$(bundle noroot)
rmdir "$b/rootfs"
rv create -b "$b" c1
refused "create: a missing root.path is named" "root.path" "$b/rootfs"

# --- terminal, console socket, pid file ------------------------------------
tty=$(bundle tty)
sed -i 's/"terminal": false/"terminal": true/' "$tty/config.json"
rv create -b "$tty" c1
refused "create: terminal without --console-socket asks for one" "process.terminal" "--console-socket"
rv run -d -b "$tty" c1
refused "run -d: terminal without --console-socket is refused as runc refuses it" \
	"cannot allocate tty if runvm will detach without setting console socket" "--console-socket"
like_runc "runc words it the same ('cannot allocate tty if runc will detach')" \
	"cannot allocate tty if runc will detach without setting console socket" run -d -b "$tty" c1

touch "$tmp/not-a-socket"
rv create -b "$ok" --console-socket "$tmp/not-a-socket" c1
refused "create: a --console-socket that is not a socket is named" "--console-socket" "$tmp/not-a-socket"
rv create -b "$tty" --console-socket "$tmp/not-a-socket" c1
refused "create: with terminal on too, a --console-socket that is not a socket is named" \
	"--console-socket" "$tmp/not-a-socket"

rv create -b "$ok" --pid-file "$tmp/nodir/pid" c1
refused "create: a --pid-file in a missing directory is named" "--pid-file" "$tmp/nodir"

# --- container ids ---------------------------------------------------------
long=$(printf 'a%.0s' $(seq 1025))
rv create -b "$ok" ""
refused "create: an empty id is refused" "container id is empty"
rv state ""
refused "state: an empty id is refused" "container id is empty"
for id in a/b ..; do
	rv create -b "$ok" "$id"
	refused "create: id '$id' is refused, naming it" "'$id'"
	rv state "$id"
	refused "state: id '$id' is refused, naming it" "'$id'"
done
rv create -b "$ok" "$long"
refused "create: a 1025-byte id is refused" "1025 bytes" "at most 1024"
rv delete "$long"
refused "delete: a 1025-byte id is refused" "1025 bytes"
rv create -b "$ok" -- -x
refused "create: id '-x' is refused, naming it" "'-x'"
rv state -x
refused "state: '-x' is not taken for an id" "'-x'"
like_runc "runc refuses a bad id too ('invalid container ID')" "invalid container ID" state a/b

# --- verbs on a container that does not exist ------------------------------
for verb in state start kill delete pause resume ps events wait exec; do
	rv "$verb" nope
	refused "$verb: an unknown id does not exist" "'nope'" "does not exist"
done
rv exec nope true
expect_rc "exec of an unknown id exits 255, as runc's" 255
rv exec --preserve-fds 3 nope true
refused "exec --preserve-fds: refused, naming the flag" "--preserve-fds 3"
rv exec --bogus nope true
refused "exec: an unknown flag is named" "'--bogus'"
rv exec
refused "exec: no id" "container id"
like_runc "runc says 'does not exist' as well" "container does not exist" state nope

rv delete --force nope
expect_rc "delete --force of an unknown id succeeds, as runc's" 0 &&
	expect_eq "and says nothing" "$out$err" ""
if [ -n "$have_runc" ]; then
	runc --root "$tmp/runc" delete --force nope 2>/dev/null
	expect_eq "runc's delete --force of an unknown id succeeds too" "$?" 0
fi

rv kill nope FOO
refused "kill: an unknown signal is named" "unknown signal 'FOO'"
rv kill --bad nope
refused "kill: an unknown flag is named" "'--bad'"
rv kill
refused "kill: no id asks for one" "container id"

# --- list ------------------------------------------------------------------
header="ID          PID         STATUS      BUNDLE      CREATED     OWNER"
rv list
expect_rc "list on an empty root exits 0" 0 && expect_eq "and prints the header only" "$out" "$header"
expect_eq "list creates nothing under --root" "$(leftovers)" ""
if [ -n "$have_runc" ]; then
	expect_eq "runc's empty list has the same header" "$(runc --root "$tmp/runc" list)" "$header"
	rm -rf "$tmp/runc"
fi
rv list --format json
expect_rc "list --format json exits 0" 0 && expect_eq "and prints null, as runc's" "$out" "null"
rv list -q
expect_rc "list -q exits 0" 0 && expect_eq "and prints nothing" "$out" ""
rv list --format xml
refused "list --format xml is refused, naming it" "'xml'"

# --- spec, and create up to the KVM check ----------------------------------
mkdir -p "$tmp/spec/rootfs"
run_capture "$runvm" spec -b "$tmp/spec"
expect_rc "spec writes a config.json" 0
run_capture "$runvm" spec -b "$tmp/spec"
refused "spec refuses to write it twice, naming config.json" "config.json"
like_runc "runc words it the same ('File config.json exists')" "File config.json exists" \
	spec -b "$tmp/spec"

features=$("$runvm" features)
if grep -q '"io.runvm.kvm.bootable": "false"' <<<"$features"; then
	sed -i 's/"terminal": true/"terminal": false/' "$tmp/spec/config.json"
	rv create -b "$tmp/spec" --pid-file "$tmp/pid" c1
	refused "create of spec's bundle passes every check up to KVM, then points at the testbed" \
		"create c1" "tests/testbed/run"
	if grep -q '"io.runvm.kvm.backend": "kvm_pvm"' <<<"$features"; then
		expect_in "the KVM refusal names kvm_pvm" "$err" "kvm_pvm"
	fi
	expect_eq "the refused create writes no pid file" "$(ls "$tmp/pid" 2>/dev/null)" ""
else
	echo "  note: this host can boot guests; the KVM refusal is not tested here"
	skip "create stops at the KVM check" "this host can boot guests"
fi

# --- runc's outcomes of the conformance scenarios -----------------------------------------
# Recorded here, on the host, where runc runs; lifecycle-vm runs the same
# scenarios against runvm in a VM and compares line by line.
if command -v runc >/dev/null; then
	mkdir -p "$tmp/conformance"
	run_capture timeout 300 "$top/tests/integration/conformance.sh" runc "$tmp/conformance"
	if [ "$rc" = 0 ] && [ "$(grep -c ': ' <<<"$out")" -ge 25 ]; then
		printf '%s\n' "$out" >"$build/conformance-runc.txt"
		pass "runc's outcomes of the conformance scenarios are recorded"
	else
		rm -f "$build/conformance-runc.txt"
		fail "runc's outcomes of the conformance scenarios are recorded" "rc $rc" "$out" "$err"
	fi
	for id in $(runc --root "$tmp/conformance/root" list -q 2>/dev/null); do
		runc --root "$tmp/conformance/root" delete --force "$id" >/dev/null 2>&1
	done
else
	rm -f "$build/conformance-runc.txt"
	skip "runc's outcomes of the conformance scenarios" "runc is not installed"
fi

summary
