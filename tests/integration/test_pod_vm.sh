#!/usr/bin/env bash
# Pods (issue 11): containers whose annotations name a pod's sandbox join
# that sandbox's VM instead of booting their own, as containerd's CRI plugin
# and CRI-O mark them. Driven through runvm's CLI as a shim drives it: the
# sandbox (pause) container first, then two members with their own rootfs
# and a volume, each with a host process of its own that stands for it. Checked:
# one kernel for all, each member its own root and PID namespace, localhost
# between them, exec, kill and exit statuses per member with the rest of
# the pod untouched, delete --force of a running member ends its processes
# in the guest, the sandbox's end ends every member (137), and the errors
# a wrong annotation gets. Nothing is left.
# usage: tests/integration/test_pod_vm.sh BUILD_DIR
set -u
if [ -z "${RUNVM_POD_NS:-}" ]; then
	exec env RUNVM_POD_NS=1 unshare -m --propagation private "$0" "$@"
fi
t_suite=pod-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_pod_vm.sh BUILD_DIR}
build=$(cd "$build" && pwd)
. "$top/tests/integration/oci-vm-lib.sh"
oci_vm_setup pod-vm
b=$scratch/b

# annotate DIR KEY=VALUE...: sets annotations (and root.readonly=true for
# the key "readonly", a volume for "volume=SRC:DST") in DIR/config.json.
annotate() {
	python3 - "$@" <<'PY'
import json, sys
path = sys.argv[1] + "/config.json"
spec = json.load(open(path))
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    if k == "readonly":
        spec["root"]["readonly"] = True
    elif k == "volume":
        src, dst = v.split(":")
        spec["mounts"].append({"destination": dst, "type": "bind", "source": src,
                               "options": ["rbind", "rw"]})
    else:
        spec["annotations"][k] = v
json.dump(spec, open(path, "w"), indent=1)
PY
}
member() { # DIR SANDBOX-ID ARGS...
	local dir=$1 sid=$2
	shift 2
	mkbundle "$dir" "$@"
	annotate "$dir" io.kubernetes.cri.container-type=container io.kubernetes.cri.sandbox-id="$sid"
}
guest() { rv exec "$@" </dev/null; }
host_boot=$(cat /proc/sys/kernel/random/boot_id)

# --- the pod's sandbox ----------------------------------------------------------------------
mkbundle "$b/pause" sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
annotate "$b/pause" io.kubernetes.cri.container-type=sandbox io.kubernetes.cri.sandbox-id=pod1
run_capture rv run -d --bundle "$b/pause" pod1
expect_rc "the pod's sandbox runs (a VM)" 0
vmm=$(field "$(rv state pod1)" pid)
vmm_fds() { ls "/proc/$vmm/fd" 2>/dev/null | wc -l; }
fds0=$(vmm_fds)

# --- two members, each with files of its own --------------------------------------------------
mkdir -p "$scratch/vol"
echo from-the-host >"$scratch/vol/note"
member "$b/a" pod1 sh -c 'trap "exit 42" TERM; httpd -f -p 127.0.0.1:8080 -h /www & wait'
mkdir -p "$b/a/rootfs/www"
echo hello-from-a >"$b/a/rootfs/www/index.html"
echo a >"$b/a/rootfs/whoami"
annotate "$b/a" "volume=$scratch/vol:/data"
member "$b/b" pod1 sleep 1000
echo b >"$b/b/rootfs/whoami"
annotate "$b/b" readonly
run_capture rv run -d --bundle "$b/a" ctr-a
expect_rc "member a joins the pod (run -d)" 0
run_capture rv create --bundle "$b/b" ctr-b
expect_rc "member b is created in the pod" 0
expect_in "member b is created, not started" "$(rv state ctr-b)" '"status": "created"'
run_capture rv start ctr-b
expect_rc "member b starts" 0

a_pid=$(field "$(rv state ctr-a)" pid)
[ -n "$a_pid" ] && [ "$a_pid" != "$vmm" ] && [ "$a_pid" != 0 ] &&
	! ls -l "/proc/$a_pid/fd" 2>/dev/null | grep -q /dev/kvm &&
	pass "a member's host process is its own and holds no /dev/kvm (no VM of its own)" ||
	fail "a member's host process is its own and holds no /dev/kvm (no VM of its own)" \
		"member pid $a_pid, pod VMM $vmm"
# It reads what the guest's agent sends: jailed and filtered as a VMM is.
grep -q '^Seccomp:[[:space:]]*2' "/proc/$a_pid/status" && [ ! -e "/proc/$a_pid/root/usr" ] &&
	[ "$(readlink "/proc/$a_pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
	pass "a member's host process is jailed (its own mount namespace, no host root) and filtered" ||
	fail "a member's host process is jailed (its own mount namespace, no host root) and filtered" \
		"$(grep Seccomp "/proc/$a_pid/status"; ls "/proc/$a_pid/root/" | head)"
[ "$(pgrep -fc "runvm --log $root/.* boot .*--spec-fd")" = 3 ] &&
	pass "three containers, three host processes" ||
	fail "three containers, three host processes" "$(pgrep -af "runvm --log $root/")"

boots=$(for id in pod1 ctr-a ctr-b; do guest "$id" cat /proc/sys/kernel/random/boot_id; done | sort -u)
[ "$(wc -l <<<"$boots")" = 1 ] && [ -n "$boots" ] && [ "$boots" != "$host_boot" ] &&
	pass "one kernel for the whole pod, not the host's (one boot id)" ||
	fail "one kernel for the whole pod, not the host's (one boot id)" "$boots / host $host_boot"
run_capture guest ctr-a cat /whoami
[ "$out" = a ] && pass "member a sees its own rootfs" || fail "member a sees its own rootfs" "$out $err"
run_capture guest ctr-b cat /whoami
[ "$out" = b ] && pass "member b sees its own rootfs" || fail "member b sees its own rootfs" "$out $err"
run_capture guest ctr-a cat /data/note
[ "$out" = from-the-host ] && pass "member a's volume is there" ||
	fail "member a's volume is there" "$out $err"
run_capture guest ctr-b sh -c 'echo x >/whoami'
[ "$rc" != 0 ] && pass "member b's read-only root refuses a write" ||
	fail "member b's read-only root refuses a write" "rc $rc"
run_capture guest ctr-a sh -c "tr '\\0' ' ' </proc/1/cmdline"
expect_in "member a's init is PID 1 of its own namespace" "$out" "trap"
run_capture guest ctr-b wget -qO- http://127.0.0.1:8080/
[ "$out" = hello-from-a ] && pass "member b reaches member a over localhost (one network)" ||
	fail "member b reaches member a over localhost (one network)" "$out $err"
run_capture guest ctr-b sh -c 'exit 3'
expect_rc "exec in a member: its exit status" 3
expect_in "list shows the members running" "$(rv list)" "ctr-b"
# A member's exports live as long as the connection it asked for them on:
# any other caller's hanging up takes nothing away, the sandbox's own
# files least of all (a member reads what the guest sends: it is not
# trusted with more than its own).
run_capture python3 - "$root/pod1/control.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(b"pod-unexport rootfs")
print(s.recv(4096).decode())
s.send(b"wait")
s.close()
PY
expect_in "pod-unexport is no verb" "$out" "unknown control request"
sleep 1
run_capture guest pod1 ls /bin/sh
expect_rc "a stranger's watch hung up: the sandbox's files are still served" 0
run_capture guest ctr-b cat /whoami
[ "$out" = b ] && pass "and member b's" || fail "and member b's" "$out $err"
run_capture rv pause ctr-a
[ "$rc" != 0 ] && expect_in "pause of a member is refused, naming the pod" "$err" "pod" ||
	fail "pause of a member is refused" "rc $rc"

# --- a member ends; the pod runs on ----------------------------------------------------------
# As PID 1 of its namespace, member a's init takes a TERM only through
# its trap, as under runc.
run_capture rv kill ctr-a TERM
expect_rc "kill TERM to member a" 0
for _ in $(seq 60); do [ "$(field "$(rv state ctr-a)" status)" = stopped ] && break; sleep 1; done
expect_in "member a is stopped" "$(rv state ctr-a)" '"status": "stopped"'
[ "$(cat "$root/ctr-a/exit" 2>/dev/null)" = 42 ] && pass "member a's status is its trap's 42" ||
	fail "member a's status is its trap's 42" "$(cat "$root/ctr-a/exit" 2>/dev/null)"
run_capture guest ctr-b echo still-here
expect_in "member b runs on" "$out" still-here
expect_in "the sandbox runs on" "$(rv state pod1)" '"status": "running"'
run_capture rv delete ctr-a
expect_rc "delete member a" 0

# delete --force of a running member: its host process is SIGKILLed, and
# its init in the guest goes with it (its agent connection is lost).
rv ps pod1 | grep -q 'sleep 1000' && pass "the pod's ps shows member b's process" ||
	fail "the pod's ps shows member b's process" "$(rv ps pod1)"
run_capture rv delete --force ctr-b
expect_rc "delete --force of running member b" 0
# `runvm ps` asks the agent, which sees the whole guest (each container
# sees its own PID namespace only).
gone=
for _ in $(seq 20); do
	rv ps pod1 | grep -q 'sleep 1000' || { gone=1; break; }
	sleep 1
done
[ -n "$gone" ] && pass "member b's processes are gone from the guest" ||
	fail "member b's processes are gone from the guest" "$(rv ps pod1)"

# --- members come and go: what they gave the pod's VM goes with them ------------------------
# A member's exports live as long as its host process: 17 members of 4
# exports each, one after another, outnumber the file service's 64 slots.
settled() { # want: the pod's VMM holds no more fds than before its members
	for _ in $(seq 20); do [ "$(vmm_fds)" -le $((fds0 + 4)) ] && return 0; sleep 0.5; done
	return 1
}
settled && pass "the ended members' files are let go in the pod's VMM (its fds: $(vmm_fds), $fds0 before)" ||
	fail "the ended members' files are let go in the pod's VMM" "$(vmm_fds) fds, $fds0 before"
member "$b/brief" pod1 true
annotate "$b/brief" "volume=$scratch/vol:/v1" "volume=$scratch/vol:/v2" "volume=$scratch/vol:/v3"
bad=
for i in $(seq 17); do
	rv run --bundle "$b/brief" "brief$i" </dev/null >/dev/null 2>"$scratch/brief.err" ||
		{ bad="brief$i: $(cat "$scratch/brief.err") $(tail -n 8 "$root/pod1/"*.log 2>/dev/null)"; break; }
done
[ -z "$bad" ] && pass "17 members of 4 exports each, one after another (68 exports over the 64 slots)" ||
	fail "17 members of 4 exports each, one after another" "$bad"
settled && pass "and the pod's VMM holds nothing of theirs" ||
	fail "and the pod's VMM holds nothing of theirs" "$(vmm_fds) fds, $fds0 before"

# --- the sandbox's end ends its members ------------------------------------------------------
member "$b/c" pod1 sleep 1000
run_capture rv run -d --bundle "$b/c" ctr-c
expect_rc "member c joins" 0
run_capture rv kill pod1 KILL
expect_rc "kill KILL to the sandbox" 0
for _ in $(seq 60); do [ "$(field "$(rv state ctr-c)" status)" = stopped ] && break; sleep 1; done
expect_in "the sandbox's end stops member c" "$(rv state ctr-c)" '"status": "stopped"'
[ "$(cat "$root/ctr-c/exit" 2>/dev/null)" = 137 ] && pass "member c's status is 137" ||
	fail "member c's status is 137" "$(cat "$root/ctr-c/exit" 2>/dev/null)"
rv delete --force ctr-c >/dev/null 2>&1
rv delete --force pod1 >/dev/null 2>&1

# --- bad annotations ------------------------------------------------------------------------
member "$b/orphan" no-such-pod true
run_capture rv create --bundle "$b/orphan" orphan
[ "$rc" != 0 ] && expect_in "a member of a missing pod: the error names it" "$err" "no-such-pod" ||
	fail "a member of a missing pod fails" "rc $rc"
mkbundle "$b/plain" sleep 1000
run_capture rv run -d --bundle "$b/plain" plain
member "$b/stray" plain true
run_capture rv create --bundle "$b/stray" stray
[ "$rc" != 0 ] && expect_in "a member of a container that is not a pod's sandbox is refused" "$err" \
	"not a pod's sandbox" || fail "a member of a plain container is refused" "rc $rc"
mkbundle "$b/typo" true
annotate "$b/typo" io.kubernetes.cri.container-type=sidecar
run_capture rv create --bundle "$b/typo" typo
[ "$rc" != 0 ] && expect_in "an unknown container-type names the annotation" "$err" \
	"io.kubernetes.cri.container-type" || fail "an unknown container-type fails" "rc $rc"
rv delete --force plain >/dev/null 2>&1
[ -z "$(rv list -q)" ] && [ "$(vmm_processes)" = 0 ] && pass "nothing is left" ||
	fail "nothing is left" "$(rv list)" "$(pgrep -af "runvm --log $root/")"
summary
