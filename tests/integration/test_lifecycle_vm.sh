#!/usr/bin/env bash
# The OCI lifecycle on a real /dev/kvm, driven as containerd's shim, podman
# and a person at a shell drive runc: every verb, every state transition
# (the invalid ones with runc's errors), exit statuses as a parent sees them,
# stdio and crash safety (many containers at once: test_lifecycle_many_vm.sh).
# Checked from outside, through the CLI, the state JSON and the processes
# left behind.
# usage: tests/integration/test_lifecycle_vm.sh BUILD_DIR
set -u
if [ -z "${RUNVM_LIFECYCLE_NS:-}" ]; then
	exec env RUNVM_LIFECYCLE_NS=1 unshare -m --propagation private "$0" "$@"
fi
t_suite=lifecycle-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_lifecycle_vm.sh BUILD_DIR}
build=$(cd "$build" && pwd)
. "$top/tests/integration/oci-vm-lib.sh"
oci_vm_setup lifecycle-vm
# A parent that reaps the VMM as containerd's shim does (a subreaper), and
# prints how it ended: "exit N" or "signal N".
reap_as_shim() {
	python3 - "$@" <<'PY'
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)        # PR_SET_CHILD_SUBREAPER
for cmd in sys.argv[1].split(";"):
    subprocess.run(cmd.split(), check=True)
pid, st = os.wait()
print("signal %d" % os.WTERMSIG(st) if os.WIFSIGNALED(st) else "exit %d" % os.WEXITSTATUS(st))
PY
}

b=$scratch/b
mkbundle "$b/exit3" sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'
mkbundle "$b/sleep" sleep 1000
# The same in the guest's pid namespace (no "pid" in linux.namespaces): not
# its namespace's PID 1, the process dies of a SIGTERM it has no handler
# for, as runc's does in the host's; with its own, the kernel shields it.
mkbundle "$b/sleep-shared" sleep 1000
sed -i 's/{ "type": "pid" }, //' "$b/sleep-shared/config.json"
mkbundle "$b/true" true
mkbundle "$b/cat" cat

# --- create, state, start, wait, delete --------------------------------------------
: > "$scratch/stray-fd"
run_capture rv create --bundle "$b/exit3" --pid-file "$scratch/c1.pid" c1 7<"$scratch/stray-fd"
expect_rc "create boots the VM and exits 0" 0
run_capture rv state c1
expect_in "state after create: created" "$out" '"status": "created"'
pid=$(field "$out" pid)
[ -n "$pid" ] && [ "$pid" = "$(cat "$scratch/c1.pid" 2>/dev/null)" ] && kill -0 "$pid" 2>/dev/null &&
	pass "the pid file and state hold the VMM's pid, and it runs" ||
	fail "the pid file and state hold the VMM's pid, and it runs" "state pid '$pid', file '$(cat "$scratch/c1.pid" 2>&1)'"
expect_in "state names the bundle" "$out" "\"bundle\": \"$b/exit3\""
modes=$(stat -c '%a %U' "$root/c1" "$root/c1/control.sock" | tr '\n' ' ')
[ "$modes" = "700 root 600 root " ] && pass "its state dir is 0700 and its control socket 0600" ||
	fail "its state dir is 0700 and its control socket 0600" "$modes"
grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" && pass "the VMM runs with no_new_privs" ||
	fail "the VMM runs with no_new_privs" "$(grep NoNewPrivs "/proc/$pid/status")"
ram_flags=$(awk '/runvm-guest-ram/ { m = 1 } m && /^VmFlags/ { print; exit }' "/proc/$pid/smaps")
[[ " ${ram_flags#VmFlags:} " == *" dd "* ]] && pass "guest memory is left out of core dumps" ||
	fail "guest memory is left out of core dumps" "${ram_flags:-no runvm-guest-ram mapping}"
# The jail (vmm/jail.h), seen from outside.
jailed=yes
for ns in mnt ipc uts; do
	[ "$(readlink "/proc/$pid/ns/$ns")" != "$(readlink /proc/self/ns/$ns)" ] ||
		jailed="the same $ns namespace as its caller"
done
[ "$jailed" = yes ] && pass "the VMM runs in its own mount, IPC and UTS namespaces" ||
	fail "the VMM runs in its own mount, IPC and UTS namespaces" "$jailed"
in_root=$(ls -A "/proc/$pid/root/" 2>&1 | tr '\n' ' ')
[ "$in_root" = "exports proc " ] && pass "its root holds nothing but its exports and its own proc entry" ||
	fail "its root holds nothing but its exports and its own proc entry" "$in_root"
# CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID SETGID SETUID MKNOD.
caps=$(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb)/ { printf "%s %s ", $1, $2 }' "/proc/$pid/status")
want="CapInh: 0000000000000000 CapPrm: 00000000080000df CapEff: 00000000080000df "
want+="CapBnd: 00000000080000df CapAmb: 0000000000000000 "
[ "$caps" = "$want" ] && pass "it keeps only the file server's capabilities" ||
	fail "it keeps only the file server's capabilities" "$caps"
core=$(awk '/^Max core file size/ { print $5, $6 }' "/proc/$pid/limits")
[ "$core" = "0 0" ] && pass "it may write no core file" || fail "it may write no core file" "$core"
stray=$(ls -l "/proc/$pid/fd" | grep -c stray-fd)
[ "$stray" = 0 ] && pass "an fd its caller leaked is closed" ||
	fail "an fd its caller leaked is closed" "$(ls -l "/proc/$pid/fd")"
# The 0700 state dir stops another user before the socket's own check
# (SO_PEERCRED, tests/unit/vmm/test_control.c) is reached.
run_capture setpriv --reuid 65534 --regid 65534 --clear-groups "$build/bin/runvm" --root "$root" kill c1 KILL
[ "$rc" = 1 ] && kill -0 "$pid" 2>/dev/null && pass "another user cannot kill it" ||
	fail "another user cannot kill it" "rc $rc" "stderr: $err"
expect_in "and is told why" "$err" "ermission denied"
run_capture rv list
expect_in "list shows it created" "$out" "created"
run_capture rv start c1
expect_rc "start exits 0" 0
run_capture rv start c1
[ "$rc" != 0 ] && pass "start twice fails" || fail "start twice fails" "rc 0"
run_capture rv wait c1
expect_rc "wait exits 0" 0
expect_in "wait prints runsc's JSON with the exit status 3" "$out" '{"id":"c1","exitStatus":3}'
run_capture rv state c1
expect_in "state after the process exited: stopped" "$out" '"status": "stopped"'
run_capture rv kill c1 TERM
[ "$rc" != 0 ] && expect_in "kill of a stopped container fails: not running" "$err" "not running"
run_capture rv start c1
[ "$rc" != 0 ] && expect_in "start of a stopped container fails as runc's does" "$err" "cannot start a container that has stopped"
run_capture rv wait c1
expect_in "wait after the VMM is gone still has the status" "$out" '"exitStatus":3'
run_capture rv delete c1
expect_rc "delete of a stopped container exits 0" 0
[ ! -e "$root/c1" ] && pass "and removes its state dir" || fail "and removes its state dir" "$(ls -la "$root/c1")"

# --- run: statuses and stdio as the caller sees them --------------------------------
rv run --bundle "$b/exit3" r1 >"$scratch/out" 2>"$scratch/err"
rc=$?
[ "$rc" = 3 ] && pass "run exits with the process's status (3)" || fail "run exits with the process's status (3)" "rc $rc"
[ "$(cat "$scratch/out")" = to-stdout ] && [ "$(cat "$scratch/err")" = to-stderr ] &&
	pass "stdout and stderr stay apart" ||
	fail "stdout and stderr stay apart" "out: $(cat "$scratch/out")" "err: $(cat "$scratch/err")"
[ -z "$(rv list -q)" ] && pass "run deletes the container after it exits" || fail "run deletes the container after it exits" "$(rv list)"
run_capture rv run --bundle "$b/true" r2
expect_rc "run of true exits 0" 0
# A mount whose destination is a symlink in the rootfs lands where the
# link leads inside the container, resolved before the VMM is jailed.
mkbundle "$b/link" sh -c 'awk '\''$2 == "/run" && $3 == "tmpfs" { found = 1 } END { exit !found }'\'' /proc/mounts'
mkdir -p "$b/link/rootfs/var" && ln -s ../run "$b/link/rootfs/var/run"
python3 - "$b/link/config.json" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec.setdefault("mounts", []).append({"destination": "/var/run", "type": "tmpfs", "source": "tmpfs",
                                      "options": ["nosuid", "nodev"]})
json.dump(spec, open(sys.argv[1], "w"))
PY
run_capture rv run --bundle "$b/link" r-link
expect_rc "a mount at /var/run, a symlink to /run in the rootfs, lands on /run" 0
out=$(echo piped-in | rv run --bundle "$b/cat" r3)
[ "$out" = piped-in ] && pass "stdin given to run reaches the process" || fail "stdin given to run reaches the process" "$out"

for sig in KILL:137:sleep TERM:143:sleep-shared; do
	IFS=: read -r name want bundle <<<"$sig"
	rv run --bundle "$b/$bundle" "k$name" >/dev/null 2>&1 &
	runner=$!
	for _ in $(seq 300); do [ "$(field "$(rv state "k$name" 2>/dev/null)" status)" = running ] && break; sleep 0.2; done
	rv kill "k$name" "$name"
	wait $runner
	rc=$?
	[ "$rc" = "$want" ] && pass "run of a process killed by SIG$name exits $want, as runc's" ||
		fail "run of a process killed by SIG$name exits $want, as runc's" "rc $rc"
done

# --- the VMM's own status, as a subreaping shim sees it --------------------------------
out=$(reap_as_shim "$build/bin/runvm --root $root create --bundle $b/exit3 s1;$build/bin/runvm --root $root start s1" 2>/dev/null | tail -n 1)
[ "$out" = "exit 3" ] && pass "the VMM exits with the process's code (3) for the shim that reaps it" ||
	fail "the VMM exits with the process's code (3) for the shim that reaps it" "$out"
rv delete s1 >/dev/null 2>&1
out=$(reap_as_shim "$build/bin/runvm --root $root run -d --bundle $b/sleep s2;$build/bin/runvm --root $root kill s2 KILL" 2>/dev/null | tail -n 1)
[ "$out" = "signal 9" ] && pass "a container killed by SIGKILL: its VMM dies of SIGKILL too (re-raised)" ||
	fail "a container killed by SIGKILL: its VMM dies of SIGKILL too (re-raised)" "$out"
rv delete s2 >/dev/null 2>&1

# --- start releases the process, as runc's start does; create looks it up ---------------
rv create --bundle "$b/sleep" q1 >/dev/null 2>&1
run_capture rv start q1
expect_rc "start exits 0 once the process is released" 0
run_capture rv exec q1 sh -c 'tr "\0" " " </proc/1/cmdline'
expect_in "an exec right after start joins the process's PID namespace (its PID 1 is sleep)" \
	"$out" "sleep 1000"
rv delete --force q1 >/dev/null 2>&1
mkbundle "$b/nosuch" no-such-program
run_capture rv create --bundle "$b/nosuch" q2
[ "$rc" = 1 ] && pass "create of a missing executable fails (1), as runc's" || fail "create of a missing executable fails (1), as runc's" "rc $rc"
expect_in "in runc's words, naming the field" "$err" \
	'exec: "no-such-program": executable file not found in $PATH (process.args[0])'
[ -z "$(rv list -q)" ] && [ ! -e "$root/q2" ] && pass "and leaves no state" || fail "and leaves no state" "$(rv list)"
# A process that fails in the guest after start: an interpreter that is not there.
mkbundle "$b/badinterp" /badinterp
printf '#!/no-such-interpreter\n' >"$b/badinterp/rootfs/badinterp" && chmod 755 "$b/badinterp/rootfs/badinterp"
run_capture rv run --bundle "$b/badinterp" q3
[ "$rc" = 1 ] && pass "run of a process whose exec fails in the guest exits 1" || fail "run of a process whose exec fails in the guest exits 1" "rc $rc"
expect_in "and says why, though start had returned" "$err" "exec '/badinterp' in the guest: No such file or directory"
rv create --bundle "$b/badinterp" q4 >/dev/null 2>"$scratch/q4-stderr"
run_capture rv start q4
expect_rc "start of it exits 0, as runc's: the exec fails after the release" 0
# While its VMM lives, wait names the failure; once it is gone, the exit
# file has the status its VMM ended with (1).
run_capture rv wait q4
[[ "$rc" != 0 && "$err" == *"exec '/badinterp' in the guest"* ]] ||
	[[ "$rc" = 0 && "$out" == *'"exitStatus":1'* ]] &&
	pass "wait names the failure, or its status 1" || fail "wait names the failure, or its status 1" "rc $rc" "$out" "$err"
expect_in "the container's stderr has it, where runc's init writes its own (docker logs)" \
	"$(cat "$scratch/q4-stderr")" "exec '/badinterp' in the guest: No such file or directory"
rv delete --force q4 >/dev/null 2>&1

# --- a running container: ps, events, pause, resume, kill, delete ------------------------
run_capture rv run -d --bundle "$b/sleep-shared" d1
expect_rc "run -d exits 0 once the process runs" 0
run_capture rv state d1
expect_in "state: running" "$out" '"status": "running"'
run_capture rv ps d1
expect_in "ps shows the process in a ps -ef table" "$out" "sleep 1000"
expect_in "with a PID column (containerd parses it)" "$out" "PID"
run_capture rv ps --format json d1
[[ "$out" =~ ^\[[0-9]+\]$ ]] && pass "ps --format json: the pids" || fail "ps --format json: the pids" "$out"
run_capture rv events --stats d1
expect_in "events --stats: one stats object" "$out" '{"type":"stats","id":"d1","data":{"cpu":'
expect_in "with the guest's pids" "$out" '"pids":{"current":1}'
run_capture timeout 5 "$build/bin/runvm" --root "$root" events --interval 1s d1
n=$(grep -c '"type":"stats"' <<<"$out")
[ "$n" -ge 2 ] && pass "events --interval streams stats ($n in 5 s)" || fail "events --interval streams stats" "$out"
run_capture rv pause d1
expect_rc "pause exits 0" 0
expect_in "state: paused" "$(rv state d1)" '"status": "paused"'
run_capture rv pause d1
[ "$rc" != 0 ] && pass "pause twice fails" || fail "pause twice fails" "rc 0"
run_capture rv resume d1
expect_rc "resume exits 0" 0
expect_in "state: running again" "$(rv state d1)" '"status": "running"'
run_capture rv delete d1
[ "$rc" != 0 ] && expect_in "delete of a running container fails without --force" "$err" "not stopped"
run_capture rv kill d1 TERM
expect_rc "kill TERM exits 0" 0
run_capture rv wait d1
expect_in "and the process died of it (143)" "$out" '"exitStatus":143'
rv delete d1

mkbundle "$b/family" sh -c 'sleep 1000 & sleep 1000 & wait'
rv run -d --bundle "$b/family" f1
run_capture rv kill --all f1 KILL
expect_rc "kill --all exits 0" 0
run_capture rv wait f1
expect_in "kill --all KILL ends every process: the container stops" "$out" '"exitStatus":137'
rv delete f1

run_capture rv run -d --bundle "$b/sleep" d2
run_capture rv delete --force d2
expect_rc "delete --force of a running container exits 0" 0
[ ! -e "$root/d2" ] && [ "$(vmm_processes)" = 0 ] && pass "and leaves no state dir and no VMM" ||
	fail "and leaves no state dir and no VMM" "$(ls "$root" 2>&1) $(pgrep -af "runvm --log $root/")"

# --- a terminal: the pty master goes to --console-socket ----------------------------------
mkbundle "$b/tty" sh -c 'read line; echo "got=$line"; tty; stty size; [ -t 0 ] && [ -t 2 ] && echo all-ttys'
sed -i 's|"terminal": false,|"terminal": true, "consoleSize": { "height": 33, "width": 101 },|' "$b/tty/config.json"
out=$(console_client "$scratch/console.sock" $'typed-in\n' "" "$build/bin/runvm" --root "$root" run -d \
	--console-socket "$scratch/console.sock" --bundle "$b/tty" t1 2>&1 | tr -d '\r')
expect_in "terminal: the master reaches the console socket, with the pty's name" "$out" "pty-name=/dev/pts/"
expect_in "what the client types reaches the process" "$out" "got=typed-in"
expect_in "the process's stdio is a guest terminal" "$out" "all-ttys"
expect_in "of the spec's consoleSize" "$out" "33 101"
run_capture rv wait t1
expect_in "and its status comes back (0)" "$out" '"exitStatus":0'
rv delete t1 >/dev/null 2>&1

# --- a terminal without --console-socket: runc's two ways ----------------------------------
# In the foreground runvm keeps the pty's master itself and stands between it
# and its own stdio (python's pty stands for the user's terminal): the
# process gets a terminal of the user's size, runvm exits with its status,
# and the user's terminal (raw meanwhile) is given back as it was.
mkbundle "$b/fgtty" sh -c 'tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; exit 3'
sed -i 's|"terminal": false,|"terminal": true,|' "$b/fgtty/config.json"
run_capture python3 "$top/tests/integration/pty_run.py" 27 91 sh -c \
	'stty -g >"$1/stty.before"; "$2" --root "$3" run --bundle "$4" t2; rc=$?; stty -g >"$1/stty.after"; exit $rc' \
	_ "$scratch" "$build/bin/runvm" "$root" "$b/fgtty"
expect_in "run, terminal, no --console-socket: the process's stdio is a terminal" "$out" "all-ttys"
expect_in "one of the guest's ptys" "$out" "/dev/pts/"
expect_in "of the user's terminal's size" "$out" "27 91"
expect_in "runvm run exits with the process's status (3)" "$out" "status: exit 3"
[ -s "$scratch/stty.before" ] && [ "$(cat "$scratch/stty.before")" = "$(cat "$scratch/stty.after" 2>&1)" ] &&
	pass "the user's terminal is given back as it was" ||
	fail "the user's terminal is given back as it was" "before: $(cat "$scratch/stty.before" 2>&1)" \
		"after: $(cat "$scratch/stty.after" 2>&1)"
[ ! -e "$root/t2" ] && pass "and the container is deleted" || fail "and the container is deleted" "$(ls "$root")"
# Raw, the user's Ctrl-C is a byte for the guest's terminal, which makes it
# SIGINT for the process: 128 + 2.
# In the guest's pid namespace: as its own namespace's PID 1, sleep would
# ignore the SIGINT (runc's too).
mkbundle "$b/fgint" sh -c 'echo ready; exec sleep 300'
sed -i 's|"terminal": false,|"terminal": true,|; s/{ "type": "pid" }, //' "$b/fgint/config.json"
run_capture python3 "$top/tests/integration/pty_run.py" 24 80 "$build/bin/runvm" --root "$root" run \
	--bundle "$b/fgint" t3
expect_in "Ctrl-C ends the process with SIGINT, and runvm run with 130" "$out" "status: exit 130"
# stdin no terminal (nor stdout): no raw mode, the input still reaches the
# guest's terminal, whose size is the spec's consoleSize then.
printf 'typed-in\n' | timeout 300 "$build/bin/runvm" --root "$root" run --bundle "$b/tty" t4 \
	>"$scratch/t4.out" 2>&1
rc=$?
out=$(tr -d '\r' <"$scratch/t4.out")
[ "$rc" = 0 ] && pass "stdin a pipe: runvm run exits 0 with the process" ||
	fail "stdin a pipe: runvm run exits 0 with the process" "exit status $rc" "${out:0:600}"
expect_in "what comes on stdin reaches the process" "$out" "got=typed-in"
expect_in "its stdio is a guest terminal" "$out" "all-ttys"
expect_in "of the spec's consoleSize then" "$out" "33 101"
# Detached (run -d, create) there is nobody to hold the master: refused
# before anything is made, with runc's words.
run_capture rv run -d --bundle "$b/tty" t5
[ "$rc" != 0 ] && [[ "$err" == *"cannot allocate tty if runvm will detach without setting console socket"* ]] &&
	pass "run -d with a terminal and no --console-socket is refused as runc refuses it" ||
	fail "run -d with a terminal and no --console-socket is refused as runc refuses it" "rc $rc" "$err"
run_capture rv create --bundle "$b/tty" t6
[ "$rc" != 0 ] && [[ "$err" == *"cannot allocate tty if runvm will detach"* ]] &&
	pass "so is create" || fail "so is create" "rc $rc" "$err"
[ ! -e "$root/t5" ] && [ ! -e "$root/t6" ] && [ -z "$(pgrep -f "runvm --log $root/t[56]/")" ] &&
	pass "neither leaves a state dir or a VMM" ||
	fail "neither leaves a state dir or a VMM" "$(ls "$root")" "$(pgrep -af "runvm --log $root/")"

# --- the VMM's host cgroup -----------------------------------------------------------------
mkbundle "$b/cg" sleep 1000
sed -i 's|"linux": {|"linux": {\n\t\t"cgroupsPath": "/runvm-lc-test/cg1",|' "$b/cg/config.json"
# A testbed L2 may mount no cgroup at all: this test's own mount namespace
# gets a cgroup2 then.
grep -q ' - cgroup2\? ' /proc/self/mountinfo || mount -t cgroup2 none /sys/fs/cgroup
run_capture rv run -d --bundle "$b/cg" cg1
expect_rc "run -d with linux.cgroupsPath exits 0" 0
pid=$(field "$(rv state cg1)" pid)
grep -q ':/runvm-lc-test/cg1$' "/proc/$pid/cgroup" 2>/dev/null &&
	pass "the VMM runs in the spec's cgroup" ||
	fail "the VMM runs in the spec's cgroup" "$(cat "/proc/$pid/cgroup" 2>&1)"
rv delete --force cg1
left=$(find /sys/fs/cgroup -maxdepth 3 -path '*runvm-lc-test/cg1' 2>/dev/null)
[ -z "$left" ] && pass "delete removes that cgroup" ||
	fail "delete removes that cgroup" "$left: tasks $(cat "$left"/cgroup.procs 2>&1 | tr '\n' ' ')" \
		"$(ls -l "$left" 2>&1 | head -3)"

# --- crash safety ----------------------------------------------------------------------
rv run -d --bundle "$b/sleep" x1
kill -KILL "$(field "$(rv state x1)" pid)"
sleep 0.5
expect_in "SIGKILL to the VMM: state says stopped" "$(rv state x1)" '"status": "stopped"'
run_capture rv delete x1
expect_rc "and delete cleans up" 0
[ ! -e "$root/x1" ] && pass "no state dir left" || fail "no state dir left" "$(ls "$root")"

rv create --bundle "$b/sleep" x2 >/dev/null 2>&1 &
creator=$!
for _ in $(seq 100); do [ -n "$(pgrep -f "runvm --log $root/x2/")" ] && break; sleep 0.1; done
kill -KILL $creator
wait $creator 2>/dev/null
run_capture rv delete --force x2
expect_rc "SIGKILL to create mid-boot, then delete --force exits 0" 0
sleep 0.5
[ ! -e "$root/x2" ] && [ "$(vmm_processes)" = 0 ] && pass "and leaves no VMM and no state dir behind" ||
	fail "and leaves no VMM and no state dir behind" "$(ls "$root" 2>&1) $(pgrep -af "runvm --log $root/")"

# --- conformance: the same scenarios as runc, the same outcomes ----------------------------
if [ -s "$build/conformance-runc.txt" ]; then
	mkdir -p "$scratch/conformance"
	"$top/tests/integration/conformance.sh" "$build/bin/runvm" "$scratch/conformance" \
		>"$scratch/conformance.txt" 2>&1
	d=$(diff "$build/conformance-runc.txt" "$scratch/conformance.txt")
	[ -z "$d" ] && pass "conformance: $(wc -l <"$scratch/conformance.txt") scenarios, the same outcomes as runc's" ||
		fail "conformance: the same outcomes as runc's (< runc, > runvm)" "$d"
	for id in $("$build/bin/runvm" --root "$scratch/conformance/root" list -q 2>/dev/null); do
		"$build/bin/runvm" --root "$scratch/conformance/root" delete --force "$id" >/dev/null 2>&1
	done
else
	skip "conformance with runc" "no $build/conformance-runc.txt: the cli suite records runc's outcomes on the host when runc is installed"
fi

summary
