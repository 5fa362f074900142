#!/usr/bin/env bash
# runvm exec on a real /dev/kvm, as kubectl/ctr exec and a person at a shell
# use it: each result checked from inside the container (what the process
# printed) and from outside (exit statuses, what a subreaping shim reaps,
# what is left running in the guest and on the host).
# usage: tests/integration/test_exec_vm.sh BUILD_DIR
# env: RUNVM_EXEC_MANY (concurrent execs into one sandbox, default 50)
set -u
if [ -z "${RUNVM_EXEC_NS:-}" ]; then
	exec env RUNVM_EXEC_NS=1 unshare -m --propagation private "$0" "$@"
fi
t_suite=exec-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=$(cd "${1:?usage: test_exec_vm.sh BUILD_DIR}" && pwd)
many=${RUNVM_EXEC_MANY:-50}
. "$top/tests/integration/oci-vm-lib.sh"
oci_vm_setup exec-vm
b=$scratch/bundles
mkbundle "$b/sleep" sleep 100000
# Single files bound in, as engines bind /etc/hosts and /etc/resolv.conf
# (the root is read-only, so their mount points are there already).
echo "10.0.0.7 box-7" >"$scratch/hosts"
echo "nameserver 10.0.0.1" >"$scratch/resolv.conf"
touch "$b/sleep/rootfs/etc/hosts" "$b/sleep/rootfs/etc/resolv.conf"
# The process spec the guest must enforce, on the init and on every exec
# that takes the container's process as its template.
python3 - "$b/sleep/config.json" "$scratch" <<'PY'
import json, sys
path, scratch = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": scratch + "/hosts",
                    "options": ["rbind", "ro"]})
c["mounts"].append({"destination": "/etc/resolv.conf", "type": "bind",
                    "source": scratch + "/resolv.conf", "options": ["rbind", "rw"]})
p = c["process"]
p["env"] += ["SPEC_ONLY=kept", "OVER=spec"]
p["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]
p["noNewPrivileges"] = True
p["oomScoreAdj"] = 123
p["user"]["umask"] = 0o27
p["capabilities"] = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN", "CAP_SETUID",
                                  "CAP_SETGID"],
                     "effective": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_CHOWN"],
                     "inheritable": [], "ambient": []}
c["hostname"] = "box-7"
c["domainname"] = "example.org"
c["root"]["readonly"] = True
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1777"]})
c["mounts"].append({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                    "options": ["nosuid", "noexec", "nodev"]})
c["mounts"].append({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]})
c["linux"]["rootfsPropagation"] = "rshared"
# /proc/kcore is missing in runvm's guest kernel: skipped, as a missing path is.
c["linux"]["maskedPaths"] = ["/proc/cmdline", "/sys/firmware", "/proc/kcore", "/no/such/path"]
c["linux"]["readonlyPaths"] = ["/proc/sys", "/proc/no-such"]
c["linux"]["sysctl"] = {"kernel.msgmax": "12345"}
# The guest's own devices of these numbers: its FUSE, and a null of uid 1000's.
c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
                         {"path": "/dev/extra/mynull", "type": "c", "major": 1, "minor": 3,
                          "fileMode": 0o600, "uid": 1000, "gid": 1000}]
c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                         "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                       "errnoRet": 95}]}
json.dump(c, open(path, "w"), indent=1)
PY
guest_procs() { rv ps --format json c1 2>/dev/null; }
expect_eq() { [ "$2" = "$3" ] && pass "$1" || fail "$1" "expected: $3" "got: $2"; }

run_capture rv run -d --bundle "$b/sleep" c1
expect_rc "a sandbox to exec into: run -d exits 0" 0 || { summary; exit 1; }

# --- the process, its stdio and status ------------------------------------------------
run_capture rv exec c1 sh -c 'echo to-stdout; echo to-stderr >&2; exit 7'
expect_rc "exec: the process's exit code is ours" 7
expect_eq "its stdout reaches our stdout" "$out" "to-stdout"
expect_eq "its stderr reaches our stderr" "$err" "to-stderr"
run_capture rv exec -e OVER=flag -e NEW=1 c1 sh -c 'echo "$SPEC_ONLY $OVER $NEW $HOME"'
expect_eq "env: the spec's, with --env over it (later wins)" "$out" "kept flag 1 /root"
run_capture rv exec -u 1000:100 -g 7 -g 8 --cwd /tmp c1 sh -c 'id -u; id -g; id -G; pwd'
expect_eq "--user, --additional-gids and --cwd, as id and pwd see them" "$(echo $out)" \
	"1000 100 100 7 8 /tmp"
head -c 1048576 /dev/urandom >"$scratch/blob"
run_capture sh -c "rv() { \"$build/bin/runvm\" --root \"$root\" \"\$@\"; }; rv exec c1 sha256sum <'$scratch/blob'"
expect_eq "1 MiB on stdin arrives intact" "${out%% *}" "$(sha256sum <"$scratch/blob" | cut -d' ' -f1)"
cat >"$scratch/process.json" <<'JSON'
{ "args": ["sh", "-c", "echo $ONLY_HERE; pwd; id -u"], "cwd": "/etc", "env": ["ONLY_HERE=yes"],
  "user": { "uid": 33, "gid": 33 } }
JSON
run_capture rv exec --process "$scratch/process.json" c1
expect_eq "--process: the file's process, whole" "$(echo $out)" "yes /etc 33"

# --- the process spec, enforced by the guest kernel ----------------------------------------
status_of() { # PID: the capability and no_new_privs lines of /proc/PID/status, one line
	rv exec c1 sh -c "grep -E '^(CapPrm|CapBnd|NoNewPrivs)' /proc/$1/status" | tr -s '\t\n' '  '
}
# Bounding: CHOWN(0) KILL(5) SETGID(6) SETUID(7) NET_ADMIN(12). Permitted:
# CHOWN and KILL; root's exec cannot widen it under no_new_privs. runc on the
# same spec shows the same three lines.
want_caps="CapPrm: 0000000000000021 CapBnd: 00000000000010e1 NoNewPrivs: 1 "
expect_eq "the init: capabilities and noNewPrivileges of the spec" \
	"$(status_of "$(rv exec c1 pidof sleep)")" "$want_caps"
expect_eq "an exec: the same, from the container's process" "$(status_of self)" "$want_caps"
run_capture rv exec c1 sh -c 'ulimit -n; ulimit -Hn; umask; hostname; cat /proc/self/oom_score_adj'
expect_eq "rlimits, umask, hostname and oomScoreAdj of the spec" "$(echo $out)" "321 654 0027 box-7 123"
run_capture rv exec c1 sh -c 'cat /proc/sys/kernel/domainname /proc/sys/kernel/msgmax;
	wc -c </proc/cmdline; ls -A /sys/firmware | wc -l'
expect_eq "domainname and linux.sysctl set; maskedPaths read empty (a file, a dir)" "$(echo $out)" \
	"example.org 12345 0 0"
run_capture rv exec c1 sh -c 'grep Seccomp: /proc/$(pidof sleep)/status /proc/self/status | tr -d "\t"; mkdir /tmp/d'
expect_in "seccomp: the init and an exec run under the spec's filter (mode 2)" "$out" \
	"status:Seccomp:2"$'\n'"/proc/self/status:Seccomp:2"
expect_in "a denied syscall returns the profile's errno (mkdir: 95, EOPNOTSUPP)" "$err" \
	"Operation not supported"
run_capture rv exec c1 sh -c 'echo 1 >/proc/sys/kernel/msgmax'
expect_in "readonlyPaths: /proc/sys refuses writes" "$err" "Read-only file system"
run_capture rv exec c1 sh -c 'touch /new-file'
expect_in "root.readonly: the root refuses writes" "$err" "Read-only file system"
run_capture rv exec c1 sh -c 'grep " /tmp " /proc/self/mountinfo'
expect_in "a tmpfs mount has its options in mountinfo" "$out" "nosuid,nodev,noexec"
mountinfo=$(rv exec c1 cat /proc/self/mountinfo 2>&1)
mount_of() { grep " $1 " <<<"$mountinfo" | head -n 1; }
expect_in "devpts: its flags" "$(mount_of /dev/pts)" "nosuid,noexec"
expect_in "devpts: newinstance with ptmxmode and mode" "$(mount_of /dev/pts)" "mode=620,ptmxmode=666"
expect_in "sysfs: read-only with its flags" "$(mount_of /sys)" "ro,nosuid,nodev,noexec"
expect_in "mqueue: mounted with its flags" "$(mount_of /dev/mqueue)" "nosuid,nodev,noexec"
expect_in "/dev/shm: a tmpfs with its flags" "$(mount_of /dev/shm)" "nosuid,nodev,noexec"
expect_in "propagation: an rshared mount is shared in the guest" "$(mount_of /run)" " shared:"
expect_in "rootfsPropagation: the container's root is shared (rshared)" \
	"$(awk '$5 == "/"' <<<"$mountinfo" | tail -n 1)" " shared:"
run_capture rv exec c1 sh -c 'for d in null zero full random urandom tty ptmx; do [ -c /dev/$d ] && printf "%s " $d; done;
	head -c 4 /dev/urandom | wc -c; echo x >/dev/full'
expect_eq "the standard devices are there (urandom gives bytes)" "$(echo $out)" \
	"null zero full random urandom tty ptmx 4"
expect_in "and /dev/full is full" "$err" "No space left on device"
expect_in "/dev: the spec's tmpfs, the container's own" "$(mount_of /dev)" " - tmpfs "
run_capture rv exec c1 sh -c 'ls -l /dev/null /dev/urandom | cut -c1-10; readlink /dev/ptmx; readlink /dev/fd;
	ls /dev/kmsg /dev/mem /dev/vsock /dev/ttyS0 2>/dev/null | wc -l'
expect_eq "its nodes are 0666, ptmx leads to its devpts, fd to /proc; none of the guest's own devices" \
	"$(echo $out)" "crw-rw-rw- crw-rw-rw- pts/ptmx /proc/self/fd 0"
run_capture rv exec c1 stat -c '%A %t:%T %u:%g' /dev/fuse /dev/extra/mynull
expect_eq "linux.devices: the nodes with their mode, number and owner, in a new directory too" \
	"$(echo $out)" "crw-rw-rw- a:e5 0:0 crw------- 1:3 1000:1000"
run_capture rv exec -u 1000 c1 sh -c 'echo x >/dev/extra/mynull && echo written'
expect_eq "the owner uses its device" "$out" written
run_capture rv exec -u 1001 c1 sh -c 'echo x >/dev/extra/mynull'
expect_in "another uid may not" "$err" "Permission denied"
expect_in "cgroup: the unified hierarchy (cgroup2), read-only with the spec's flags" \
	"$(mount_of /sys/fs/cgroup)" "ro,nosuid,nodev,noexec"
expect_in "and it is cgroup2" "$(mount_of /sys/fs/cgroup)" " - cgroup2 "
run_capture rv exec c1 sh -c 'cat /etc/hosts; echo "nameserver 10.0.0.2" >/etc/resolv.conf; echo x >/etc/hosts'
expect_eq "a bind of a host file (ro): the guest reads it" "$out" "10.0.0.7 box-7"
expect_in "and cannot write it" "$err" "Read-only file system"
expect_eq "a bind of a host file (rw): the guest's write reaches the host's file" \
	"$(cat "$scratch/resolv.conf")" "nameserver 10.0.0.2"
run_capture rv exec --cap CAP_SYS_ADMIN c1 sh -c 'grep CapBnd /proc/self/status'
expect_in "--cap adds to the bounding set (CAP_SYS_ADMIN, bit 21)" "$out" "00000000002010e1"
run_capture rv exec -u 1000 c1 sh -c 'grep CapEff /proc/self/status'
expect_in "a non-root exec has no effective capabilities" "$out" "0000000000000000"
run_capture rv exec c1 sh -c 'ulimit -n 700'
[ "$rc" != 0 ] && pass "raising NOFILE over the spec's hard limit fails in the guest" ||
	fail "raising NOFILE over the spec's hard limit fails in the guest" "rc 0"

# --- refusals: named, status 255 as runc's, the sandbox unharmed ------------------------
refused() { # NAME NEEDLE
	if [ "$rc" = 255 ] && [[ "$err" == *"$2"* ]]; then pass "$1"; else
		fail "$1" "rc $rc (want 255)" "stderr: $err (want: $2)"; fi
}
run_capture rv exec c1 no-such-program
refused "a missing executable: runc's error" 'exec: "no-such-program": executable file not found in $PATH'
run_capture rv exec c1 /bin/no-such
refused "a missing path: named" '/bin/no-such'
run_capture rv exec -u root c1 true
refused "--user root: a number is wanted" "--user: uid 'root'"
run_capture rv exec --cap CAP_FLYING c1 true
refused "an unknown capability is named" "CAP_FLYING"
echo '{"args": [], "cwd": "/"}' >"$scratch/bad.json"
run_capture rv exec --process "$scratch/bad.json" c1
refused "an invalid process file: the field is named" "args: must be a non-empty array"
run_capture rv exec c1 echo still-here
expect_eq "after every refusal the sandbox still runs execs" "$out" "still-here"

# --- signals ----------------------------------------------------------------------------
# runvm itself in the background (not a shell function's subshell), so that
# the signal reaches it; the process says when its trap is set.
until_in() { # FILE TEXT: waits up to 60 s
	for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
	return 1
}
"$build/bin/runvm" --root "$root" exec c1 sh -c 'trap "echo got-term; exit 9" TERM; echo ready;
	while :; do sleep 0.2; done' >"$scratch/sig" 2>&1 &
execer=$!
until_in "$scratch/sig" ready
kill -TERM "$execer"
wait "$execer"
rc=$?
expect_eq "SIGTERM to runvm exec reaches the process (its trap runs, exit 9)" \
	"$rc $(grep -v ready "$scratch/sig")" "9 got-term"

# --- detached, as containerd's shim runs it: a subreaper reaps the relay ----------------
shim() { # ARGS...: prints "exec-rc R pid P" then how the relay ended
	python3 - "$build/bin/runvm" "$root" "$scratch" "$@" <<'PY'
import ctypes, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER, as the shim
rv, root, scratch, mode, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
pidf = scratch + "/exec.pid"
r = subprocess.run([rv, "--root", root, "exec", "--detach", "--pid-file", pidf, "c1"] + args)
pid = int(open(pidf).read())
print("exec-rc %d" % r.returncode)
if mode == "kill":
    os.kill(pid, 9)
_, st = os.waitpid(pid, 0)
print("exit %d" % os.WEXITSTATUS(st) if os.WIFEXITED(st) else "signal %d" % os.WTERMSIG(st))
PY
}
out=$(shim wait sh -c 'sleep 1; exit 5')
expect_eq "--detach: returns at once, the relay in --pid-file exits with the status" "$(echo $out)" \
	"exec-rc 0 exit 5"
out=$(shim wait sh -c 'kill -USR1 $$')
expect_eq "a process killed by a signal: the relay's status says so (128 + 10)" "$(echo $out)" \
	"exec-rc 0 exit 138"
out=$(shim kill sleep 4242)
gone=no
for _ in $(seq 50); do grep -q 'sleep 4242' <<<"$(guest_procs)" || { gone=yes; break; }; sleep 0.2; done
expect_eq "SIGKILL to the relay (as a shim ends an exec) ends the process in the guest" "$gone" yes

# --- a terminal ---------------------------------------------------------------------
# The console socket's client resizes the master as a shim does on a
# client's resize, then types; the process reports its terminal's size.
out=$(console_client "$scratch/console.sock" $'typed\n' 41x123 "$build/bin/runvm" --root "$root" exec -t -d \
	--console-socket "$scratch/console.sock" c1 sh -c 'read l; echo "got=$l"; [ -t 0 ] && [ -t 1 ] && echo ttys;
	t=$(tty); [ -c "$t" ] && echo "own-pty=${t%[0-9]*}"; stty size' 2>&1 | tr -d '\r')
expect_in "--tty: what the client types reaches the process" "$out" "got=typed"
expect_in "its stdio is a terminal in the guest" "$out" "ttys"
expect_in "one of the container's own ptys: tty names it and it is in its /dev/pts" "$out" "own-pty=/dev/pts/"
expect_in "a resize of the console reaches it" "$out" "41 123"

# --- many at once ---------------------------------------------------------------------
for i in $(seq "$many"); do
	rv exec c1 sh -c "echo n=$i; exit $((i % 7))" >"$scratch/many.$i" 2>&1 &
	pids[i]=$!
done
bad=()
for i in $(seq "$many"); do
	wait "${pids[i]}"
	r=$?
	[ "$r" = $((i % 7)) ] && [ "$(cat "$scratch/many.$i")" = "n=$i" ] || bad+=("$i: rc $r $(head -c 200 "$scratch/many.$i")")
done
[ ${#bad[@]} = 0 ] && pass "$many execs at once: each its own output and status" ||
	fail "$many execs at once: each its own output and status" "${bad[@]:0:5}"

# --- a user namespace (linux.uidMappings), made in the guest ----------------------------
# The guest's ids stand for the host's: virtio-fs carries them unchanged, so
# uid 0 inside, mapped to 100000, writes files of uid 100000 on the host.
mkbundle "$b/userns" sleep 100000
mkdir -m 1777 "$scratch/shared"
python3 - "$b/userns/config.json" "$scratch/shared" <<'PY'
import json, sys
path, shared = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["linux"]["namespaces"].append({"type": "user"})
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
c["mounts"].append({"destination": "/shared", "type": "bind", "source": shared, "options": ["rbind"]})
json.dump(c, open(path, "w"), indent=1)
PY
run_capture rv run -d --bundle "$b/userns" u1
expect_rc "a container with a user namespace: run -d exits 0" 0
run_capture rv exec u1 sh -c 'cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /shared/by-root;
	[ "$(readlink /proc/self/ns/user)" = "$(readlink /proc/$(pidof sleep)/ns/user)" ] && echo same-ns;
	stat -c %u /dev /dev/shm; touch /dev/shm/x && echo shm-writable'
expect_eq "its maps, root inside, an exec joins the init's namespace, its tmpfs mounts are root's" \
	"$(echo $out)" "0 100000 65536 0 100000 65536 0 same-ns 0 0 shm-writable"
expect_eq "a file root makes inside belongs to uid 100000 on the host" \
	"$(stat -c %u:%g "$scratch/shared/by-root" 2>&1)" "100000:100000"
rv exec -u 1000 u1 touch /shared/by-1000
expect_eq "uid 1000 inside: uid 101000 on the host" "$(stat -c %u "$scratch/shared/by-1000" 2>&1)" 101000
run_capture rv exec u1 touch /etc/by-root
expect_in "root inside cannot write the rootfs's files of the host's root" "$err" "Permission denied"
rv delete --force u1

# --- the root: a mount namespace of the container's own, pivoted into ---------------
# A read-only root (root.readonly) whose rootfs lacks the mount points of two
# binds and a tmpfs: the export is read-only to the guest too, so runvm makes
# them in the rootfs on the host before boot, as runc makes them there; a
# bind below that tmpfs is the guest's to make, in the tmpfs. The process
# holds every capability, CAP_SYS_CHROOT among them, and tries the classic
# way out of a chroot (tests/payloads/chroot_escape.c), which a chroot into
# the rootfs would let it take to the guest's own root.
mkbundle "$b/ro" sleep 100000
cp "$top/build/tests/chroot-escape" "$b/ro/rootfs/bin/chroot-escape"
mkdir -p "$scratch/bind-dir"
echo in-bind-dir >"$scratch/bind-dir/marker"
echo in-bind-file >"$scratch/bind-file"
python3 - "$b/ro/config.json" "$scratch" <<'PY'
import json, sys
path, scratch = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["root"]["readonly"] = True
c["mounts"] += [
    {"destination": "/made/for/bind", "type": "bind", "source": scratch + "/bind-dir",
     "options": ["rbind", "ro"]},
    {"destination": "/etc/made.conf", "type": "bind", "source": scratch + "/bind-file",
     "options": ["rbind", "ro"]},
    {"destination": "/work/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
    {"destination": "/work/tmp/inner", "type": "bind", "source": scratch + "/bind-dir",
     "options": ["rbind", "ro"]}]
c["linux"]["maskedPaths"] = ["/proc/cmdline"]
c["linux"]["readonlyPaths"] = ["/proc/sys"]
# No pid namespace: the container shares the guest's, where /proc/1 is the
# agent, whose mount namespace is compared below.
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
json.dump(c, open(path, "w"), indent=1)
PY
run_capture rv run -d --bundle "$b/ro" r1
expect_rc "root.readonly with binds and a tmpfs where the rootfs has no mount point: run -d exits 0" 0
run_capture rv exec r1 cat /made/for/bind/marker /etc/made.conf /work/tmp/inner/marker
expect_eq "the binds (of a directory, of a file, one below the tmpfs) are there" "$(echo $out)" \
	"in-bind-dir in-bind-file in-bind-dir"
run_capture rv exec r1 touch /new-file
expect_in "the root is read-only all the same (EROFS)" "$err" "Read-only file system"
run_capture rv exec r1 sh -c 'wc -c </proc/cmdline; echo 1 >/proc/sys/kernel/msgmax'
expect_eq "maskedPaths: /proc/cmdline reads empty" "$out" 0
expect_in "readonlyPaths: /proc/sys refuses writes" "$err" "Read-only file system"
[ -d "$b/ro/rootfs/made/for/bind" ] && [ -f "$b/ro/rootfs/etc/made.conf" ] &&
	[ ! -s "$b/ro/rootfs/etc/made.conf" ] && [ -d "$b/ro/rootfs/work/tmp" ] &&
	[ ! -e "$b/ro/rootfs/work/tmp/inner" ] &&
	pass "the mount points were made in the rootfs on the host, the one below the tmpfs in the guest" ||
	fail "the mount points were made in the rootfs on the host, the one below the tmpfs in the guest" \
		"$(cd "$b/ro/rootfs" && ls -ld made/for/bind etc/made.conf work/tmp work/tmp/inner 2>&1)"
run_capture rv exec r1 sh -c 'own=$(readlink /proc/self/ns/mnt); agent=$(readlink /proc/1/ns/mnt)
	[ -n "$own" ] && [ -n "$agent" ] && [ "$own" != "$agent" ] && echo not-the-agents
	[ "$(readlink /proc/$(pidof sleep)/ns/mnt)" = "$own" ] && echo the-inits'
expect_eq "the container has a mount namespace of its own, not the agent's, and an exec joins the init's" \
	"$(echo $out)" "not-the-agents the-inits"
pid1=$(rv exec r1 cat /proc/1/cmdline 2>&1 | tr '\0' ' ')
[[ "$pid1" == "/init "* ]] && pass "without a pid namespace in its spec, the container shares the guest's: /proc/1 is the agent" ||
	fail "without a pid namespace in its spec, the container shares the guest's: /proc/1 is the agent" "$pid1"
run_capture rv exec r1 chroot-escape /work/tmp
expect_eq "a process holding CAP_SYS_CHROOT cannot climb out of its root (chroot-escape)" "$out" contained
rv delete --force r1

# --- a pid namespace of the container's own (linux.namespaces "pid", as runc spec has it) --
# The init is its PID 1, as runc makes it: /proc (the init's own mount) shows
# only the container's processes, an exec joins the namespace, SIGTERM from
# outside does nothing to an init without a handler (`runc kill` neither),
# runs its trap when it has one, and the init's end kills the rest.
mkdir -p "$scratch/pid-out"
mkbundle "$b/pid" sh -c 'tr "\0" " " </proc/1/cmdline >/out/init-saw; echo >>/out/init-saw; ls /proc | grep -c "^[0-9]" >>/out/init-saw; while :; do sleep 1; done'
mkbundle "$b/trap" sh -c 'trap "exit 42" TERM; touch /out/trap-ready; while :; do sleep 1; done'
for bundle in pid trap; do
	python3 - "$b/$bundle/config.json" "$scratch/pid-out" <<'PY'
import json, sys
path, out = sys.argv[1], sys.argv[2]
c = json.load(open(path))
assert {"type": "pid"} in c["linux"]["namespaces"], "make-bundle.sh's spec has a pid namespace"
c["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind"]})
json.dump(c, open(path, "w"), indent=1)
PY
done
run_capture rv run -d --bundle "$b/pid" p1
expect_rc "a container with a pid namespace: run -d exits 0" 0
until_in "$scratch/pid-out/init-saw" '^[0-9][0-9]*$'
saw=$(cat "$scratch/pid-out/init-saw" 2>&1)
[[ "$(head -n 1 <<<"$saw")" == "sh -c tr "* ]] && pass "the init reads its own command line in /proc/1/cmdline" ||
	fail "the init reads its own command line in /proc/1/cmdline" "$saw"
n=$(tail -n 1 <<<"$saw")
[ -n "$n" ] && [ "$n" -le 5 ] && pass "the init's /proc lists its namespace's processes only ($n)" ||
	fail "the init's /proc lists its namespace's processes only" "$saw"
# (NULs translated before the shell sees them: $(...) drops them.)
out=$(rv exec p1 cat /proc/1/cmdline 2>&1 | tr '\0' ' ')
[[ "$out" == "sh -c tr "* ]] && pass "an exec reads the container's init in /proc/1/cmdline" ||
	fail "an exec reads the container's init in /proc/1/cmdline" "$out"
run_capture rv exec p1 sh -c 'ls /proc | grep -c "^[0-9]"; [ "$(readlink /proc/self/ns/pid)" = "$(readlink /proc/1/ns/pid)" ] &&
	[ "$$" != 1 ] && echo joined'
n=$(head -n 1 <<<"$out")
[ -n "$n" ] && [ "$n" -le 8 ] && [ "$(sed -n 2p <<<"$out")" = joined ] &&
	pass "an exec joins the init's pid namespace, where /proc lists few processes ($n)" ||
	fail "an exec joins the init's pid namespace, where /proc lists few processes" "rc $rc" "stdout: $out" "stderr: $err"
run_capture rv ps p1
expect_in "ps lists the init (by the guest's pids)" "$out" "do sleep 1; done"
run_capture rv kill p1 TERM
expect_rc "kill TERM to an init without a handler exits 0" 0
sleep 3
expect_eq "and leaves it running, as the kernel shields a namespace's PID 1 (runc's too)" \
	"$(field "$(rv state p1)" status)" running
run_capture rv exec p1 echo still-serving
expect_eq "an exec after it runs as before" "$out" still-serving
# A detached exec, as a shim runs it (the relay reaped by a subreaper); then
# SIGKILL to the init, which takes the exec's process with it.
out=$(python3 - "$build/bin/runvm" "$root" "$scratch" <<'PY'
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER, as the shim
rv, root, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
pidf = scratch + "/pid-exec.pid"
subprocess.run([rv, "--root", root, "exec", "--detach", "--pid-file", pidf, "p1", "sleep", "4244"], check=True)
pid = int(open(pidf).read())
subprocess.run([rv, "--root", root, "kill", "p1", "KILL"], check=True)
_, st = os.waitpid(pid, 0)
print("exit %d" % os.WEXITSTATUS(st) if os.WIFEXITED(st) else "signal %d" % os.WTERMSIG(st))
PY
)
expect_eq "SIGKILL to the init ends a detached exec's process too (its relay: 137)" "$out" "exit 137"
run_capture rv wait p1
expect_in "and the container's status is the init's SIGKILL (137)" "$out" '"exitStatus":137'
rv delete --force p1 >/dev/null 2>&1
run_capture rv run -d --bundle "$b/trap" p2
expect_rc "an init with a TERM trap: run -d exits 0" 0
for _ in $(seq 300); do [ -e "$scratch/pid-out/trap-ready" ] && break; sleep 0.2; done
rv kill p2 TERM
run_capture rv wait p2
expect_in "kill TERM to an init with a trap runs it: the container exits 42" "$out" '"exitStatus":42'
rv delete --force p2 >/dev/null 2>&1

# --- the container's status decides ------------------------------------------------------
rv pause c1
run_capture rv exec c1 true
refused "exec into a paused container is refused" "paused"
rv resume c1
"$build/bin/runvm" --root "$root" exec c1 sh -c 'echo ready; exec sleep 100000' >"$scratch/long" 2>&1 &
execer=$!
until_in "$scratch/long" ready
rv kill c1 KILL
wait "$execer"
rc=$?
expect_eq "the init's end takes exec'd processes with it (runvm exec: 137)" "$rc" 137
for _ in $(seq 100); do [ "$(rv state c1 | grep -c '"stopped"')" = 1 ] && break; sleep 0.2; done
run_capture rv exec c1 true
refused "exec into a stopped container is refused" "stopped"
rv delete c1
[ -z "$(pgrep -f "runvm --root $root exec")" ] && pass "no runvm exec is left on the host" ||
	fail "no runvm exec is left on the host" "$(pgrep -af "runvm --root $root exec")"

# --- hooks: on the host and in the guest; order, the state on stdin, failures ------------
# createContainer and startContainer run in the container: their /bin/sh is
# the rootfs's, and they see it (/in-rootfs) and the bind of the log dir.
# Each hook's args[0] is not its path: execve(path, args) runs the path with
# args[0] as the name it sees ($0), on the host and in the guest alike (the
# guest's /bin/sh is busybox, which goes by the base name: sh).
mkbundle "$b/hooked" sleep 100000
touch "$b/hooked/rootfs/in-rootfs"
python3 - "$b/hooked/config.json" "$scratch/hooks" <<'PY'
import json, sys
path, log = sys.argv[1], sys.argv[2]
c = json.load(open(path))
def hook(name, fail=False, guest=False):
    d = "/hooks" if guest else log
    where = '; [ -e /in-rootfs ] && ! pidof sleep >/dev/null && echo in-container-before-init >"%s/%s.where"' % (d, name) if guest else ""
    script = 'cat >"%s/%s.json"; echo %s >>"%s/order"; echo "$0" >"%s/%s.argv0"%s%s' % (
        d, name, name, d, d, name, where, "; exit 4" if fail else "")
    return [{"path": "/bin/sh", "args": ["/argv0-from-args/sh", "-c", script], "timeout": 30}]
c["hooks"] = {"prestart": hook("prestart"), "createRuntime": hook("createRuntime"),
              "createContainer": hook("createContainer", guest=True),
              "startContainer": hook("startContainer", guest=True),
              "poststart": hook("poststart"), "poststop": hook("poststop", fail=True)}
c["mounts"].append({"destination": "/hooks", "type": "bind", "source": log, "options": ["rbind"]})
json.dump(c, open(path, "w"), indent=1)
PY
mkdir -p "$scratch/hooks"
rv create --bundle "$b/hooked" h1 >/dev/null 2>&1
expect_eq "create runs prestart, createRuntime, then createContainer" \
	"$(cat "$scratch/hooks/order" 2>&1 | tr '\n' ' ')" "prestart createRuntime createContainer "
expect_in "each gets the state on stdin (status creating)" \
	"$(cat "$scratch/hooks/createRuntime.json" 2>&1)" '"status": "creating"'
expect_in "createContainer too, in the guest" "$(cat "$scratch/hooks/createContainer.json" 2>&1)" \
	'"status": "creating"'
expect_eq "createContainer runs in the container, before its process" \
	"$(cat "$scratch/hooks/createContainer.where" 2>&1)" "in-container-before-init"
expect_eq "a hook's path runs with its args[0] as argv[0], on the host and in the guest" \
	"$(cat "$scratch/hooks/createRuntime.argv0" "$scratch/hooks/createContainer.argv0" 2>&1 | tr '\n' ' ')" \
	"/argv0-from-args/sh /argv0-from-args/sh "
rv start h1 >/dev/null 2>&1
expect_eq "start runs startContainer in the container, before its process, then poststart" \
	"$(cat "$scratch/hooks/startContainer.where" 2>&1; tail -n 2 "$scratch/hooks/order" | tr '\n' ' ')" \
	"in-container-before-init
startContainer poststart "
expect_in "startContainer gets the state (created)" \
	"$(cat "$scratch/hooks/startContainer.json" 2>&1)" '"status": "created"'
expect_in "start runs poststart with the state (running)" \
	"$(cat "$scratch/hooks/poststart.json" 2>&1)" '"status": "running"'
run_capture rv delete --force h1
expect_rc "a failing poststop hook does not fail delete" 0 &&
	expect_in "it is a warning naming the hook" "$err" "hooks.poststop[0] /bin/sh: exit status 4"
expect_in "poststop got the state (stopped)" "$(cat "$scratch/hooks/poststop.json" 2>&1)" \
	'"status": "stopped"'
sed -i 's|echo createRuntime >>|exit 5; echo never >>|' "$b/hooked/config.json"
run_capture rv create --bundle "$b/hooked" h2
[ "$rc" != 0 ] && [[ "$err" == *"hooks.createRuntime[0] /bin/sh: exit status 5"* ]] &&
	pass "a failing createRuntime hook fails create, naming it" ||
	fail "a failing createRuntime hook fails create, naming it" "rc $rc" "$err"
[ ! -e "$root/h2" ] && [ -z "$(pgrep -f "runvm --log $root/h2/")" ] &&
	pass "and create leaves no state dir and no VMM" ||
	fail "and create leaves no state dir and no VMM" "$(ls "$root")"
# A startContainer hook past its timeout: killed, start fails, the container stops.
python3 - "$b/hooked/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo waiting >&2; sleep 1000"],
                                  "timeout": 3}]}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
rv create --bundle "$b/hooked" h3 >/dev/null 2>&1
run_capture rv start h3
[ "$rc" != 0 ] && [[ "$err" == *"hooks.startContainer[0] /bin/sh: did not finish within its timeout of 3 s (killed): waiting"* ]] &&
	pass "a startContainer hook past its timeout fails start, naming it, with its output" ||
	fail "a startContainer hook past its timeout fails start, naming it, with its output" "rc $rc" "$err"
expect_in "and the container is stopped" "$(rv state h3 2>&1)" '"status": "stopped"'
run_capture rv delete h3
expect_rc "delete cleans it up" 0

summary
