#!/usr/bin/env bash
# runvm under podman, unmodified: Debian's podman and conmon with
# `--runtime runvm`, its storage, run root and events on a private tmpfs,
# never the system's; the image built from busybox-static and loaded, since
# no registry is reachable. Checked as podman shows it: run and exit codes,
# logs, exec, stop, a tty, and that each container is a VM that leaves
# nothing behind.
# usage: tests/e2e/test_podman.sh BUILD_DIR
set -u
t_suite=podman-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
. "$top/tests/e2e/e2e-lib.sh"
build=$(cd "${1:?usage: test_podman.sh BUILD_DIR}" && pwd)
runvm=$build/bin/runvm

e2e_need "podman and conmon" podman podman conmon
e2e_scratch podman-vm
# cgroupfs: no systemd here. The file events backend: no journald. The
# ulimit: podman's default NOFILE is above what root may raise to here
# (no CAP_SYS_RESOURCE in this sandbox; runc fails the same way).
p() {
	podman --root "$scratch/storage" --runroot "$scratch/run" --tmpdir "$scratch/tmp" \
		--cgroup-manager cgroupfs --events-backend file --storage-driver overlay \
		--runtime "$runvm" "$@"
}
runopts=(--network none --ulimit nofile=1024:1024)
cleanup() {
	p rm -a -f -t 0 >/dev/null 2>&1
	e2e_unmount_scratch
}
trap cleanup EXIT

image=localhost/runvm-test/busybox:latest
"$top/tests/e2e/make-image.sh" "$scratch/image.tar" runvm-test/busybox:latest
run_capture p load -i "$scratch/image.tar"
expect_rc "podman ($(podman --version | awk '{print $3}')) load of the busybox image" 0

# --- run in the foreground ------------------------------------------------------
run_capture p run --rm "${runopts[@]}" "$image" sh -c 'cat /proc/sys/kernel/random/boot_id; echo to-stdout; echo to-stderr >&2; exit 7'
expect_rc "podman run: the container's exit code is podman's" 7
expect_in "podman run: stdout reaches it" "$out" to-stdout
expect_in "podman run: stderr reaches its stderr" "$err" to-stderr
guest_boot=$(head -1 <<<"$out")
[ -n "$guest_boot" ] && [ "$guest_boot" != "$(cat /proc/sys/kernel/random/boot_id)" ] &&
	pass "podman run: a kernel of its own (another boot id)" ||
	fail "podman run: a kernel of its own (another boot id)" "container: $guest_boot"
run_capture p run --rm "${runopts[@]}" "$image" true
expect_rc "podman run --rm IMAGE true" 0

# --- detached: logs, exec, stop -------------------------------------------------
run_capture p run -d --name d1 "${runopts[@]}" "$image" sh -c 'trap "echo stopping; exit 42" TERM; echo started; while :; do sleep 1; done'
expect_rc "podman run -d" 0
for _ in $(seq 60); do p logs d1 2>/dev/null | grep -q started && break; sleep 1; done
run_capture p logs d1
expect_in "podman logs: the container's output" "$out" started
run_capture p exec d1 sh -c 'echo in-exec; exit 5'
expect_rc "podman exec: the exec's exit code" 5
expect_in "podman exec: its output" "$out" in-exec
run_capture p ps --format '{{.Names}} {{.Status}}'
expect_in "podman ps: d1 is up" "$out" "d1 Up"
run_capture p stop -t 30 d1
expect_rc "podman stop: SIGTERM reaches the container" 0
run_capture p inspect --format '{{.State.ExitCode}}' d1
expect_in "podman inspect: the exit code is the handler's (42)" "$out" 42
run_capture p logs d1
expect_in "podman logs: the handler's last words" "$out" stopping
run_capture p rm d1
expect_rc "podman rm" 0

# --- a tty ---------------------------------------------------------------------
run_capture python3 "$top/tests/integration/pty_run.py" 30 100 \
	podman --root "$scratch/storage" --runroot "$scratch/run" --tmpdir "$scratch/tmp" \
	--cgroup-manager cgroupfs --events-backend file --storage-driver overlay --runtime "$runvm" \
	run --rm -it "${runopts[@]}" "$image" sh -c 'tty; stty size; echo finished; exit 3'
expect_in "podman run -it: the container has a terminal" "$out" /dev/pts/
expect_in "podman run -it: with podman's window size" "$out" "30 100"
expect_in "podman run -it: the exit code comes back" "$out" "status: exit 3"

# --- nothing left behind --------------------------------------------------------
run_capture p ps -a -q
[ -z "$out" ] && pass "no container left" || fail "no container left" "$out"
e2e_no_vmm_left
summary
