#!/usr/bin/env bash
# runvm under Docker, unmodified: Debian's dockerd (docker.io) with
# `--add-runtime runvm=…`, started here with its own data root, exec root
# and socket on a private tmpfs (it starts its own containerd there), never
# the system's; no bridge or iptables (the containers run with --network
# none); the image built from busybox-static and loaded. Checked as docker
# shows it: run and exit codes, logs, exec, stop, a tty, a VM per container
# and nothing left behind.
# usage: tests/e2e/test_docker.sh BUILD_DIR
set -u
t_suite=docker-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
. "$top/tests/e2e/e2e-lib.sh"
build=$(cd "${1:?usage: test_docker.sh BUILD_DIR}" && pwd)
runvm=$build/bin/runvm
# Debian's client, the daemon's own version, ahead of any other on PATH.
docker_bin=/usr/bin/docker

e2e_need "dockerd and docker" docker.io /usr/sbin/dockerd "$docker_bin"
e2e_scratch docker-vm
sock=$scratch/docker.sock
d() { "$docker_bin" -H "unix://$sock" "$@"; }
cleanup() {
	d rm -f $(d ps -aq 2>/dev/null) >/dev/null 2>&1
	[ -z "${dockerd_pid:-}" ] || { kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null; }
	pkill -f "containerd --config $scratch/" 2>/dev/null
	e2e_unmount_scratch
}
trap cleanup EXIT
/usr/sbin/dockerd --data-root "$scratch/data" --exec-root "$scratch/exec" \
	--pidfile "$scratch/dockerd.pid" -H "unix://$sock" --iptables=false --ip6tables=false \
	--bridge=none --ip-masq=false --storage-driver overlay2 \
	--exec-opt native.cgroupdriver=cgroupfs --add-runtime "runvm=$runvm" \
	>"$scratch/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 120); do d version >/dev/null 2>&1 && break; sleep 1; done
run_capture d version --format '{{.Server.Version}}'
expect_rc "dockerd ($out) answers on its own socket" 0 || { tail -20 "$scratch/dockerd.log"; summary; exit 1; }

image=runvm-test/busybox:latest
"$top/tests/e2e/make-image.sh" "$scratch/image.tar" "$image"
run_capture d load -i "$scratch/image.tar"
expect_rc "docker load of the busybox image" 0
runopts=(--runtime runvm --network none)

# --- run in the foreground ------------------------------------------------------
run_capture d run --rm "${runopts[@]}" "$image" sh -c 'cat /proc/sys/kernel/random/boot_id; echo to-stdout; echo to-stderr >&2; exit 7'
expect_rc "docker run: the container's exit code is docker's" 7
expect_in "docker run: stdout reaches it" "$out" to-stdout
expect_in "docker run: stderr reaches its stderr" "$err" to-stderr
guest_boot=$(head -1 <<<"$out")
[ -n "$guest_boot" ] && [ "$guest_boot" != "$(cat /proc/sys/kernel/random/boot_id)" ] &&
	pass "docker run: a kernel of its own (another boot id)" ||
	fail "docker run: a kernel of its own (another boot id)" "container: $guest_boot"

# --- detached: logs, exec, stop -------------------------------------------------
run_capture d run -d --name d1 "${runopts[@]}" "$image" sh -c 'trap "echo stopping; exit 42" TERM; echo started; while :; do sleep 1; done'
expect_rc "docker run -d" 0
for _ in $(seq 60); do d logs d1 2>/dev/null | grep -q started && break; sleep 1; done
run_capture d logs d1
expect_in "docker logs: the container's output" "$out" started
run_capture d exec d1 sh -c 'echo in-exec; exit 5'
expect_rc "docker exec: the exec's exit code" 5
expect_in "docker exec: its output" "$out" in-exec
run_capture d ps --format '{{.Names}} {{.Status}}'
expect_in "docker ps: d1 is up" "$out" "d1 Up"
run_capture d stop -t 30 d1
expect_rc "docker stop: SIGTERM reaches the container" 0
run_capture d inspect --format '{{.State.ExitCode}}' d1
expect_in "docker inspect: the exit code is the handler's (42)" "$out" 42
run_capture d logs d1
expect_in "docker logs: the handler's last words" "$out" stopping
run_capture d rm d1
expect_rc "docker rm" 0

# --- a tty ---------------------------------------------------------------------
run_capture python3 "$top/tests/integration/pty_run.py" 30 100 "$docker_bin" -H "unix://$sock" \
	run --rm -it "${runopts[@]}" "$image" sh -c 'tty; for _ in $(seq 30); do s=$(stty size 2>/dev/null) && break; sleep 1; done; echo "size $s"; exit 3'
expect_in "docker run -it: the container has a terminal" "$out" /dev/pts/
# Docker 20.10 sizes the terminal only after the start, so a quick enough
# process reads 0x0 first (busybox's stty fails on it), with runc as here.
expect_in "docker run -it: with docker's window size, once docker has set it" "$out" "size 30 100"
expect_in "docker run -it: the exit code comes back" "$out" "status: exit 3"

# --- nothing left behind --------------------------------------------------------
run_capture d ps -aq
[ -z "$out" ] && pass "no container left" || fail "no container left" "$out"
e2e_no_vmm_left
summary
