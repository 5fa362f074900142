#!/usr/bin/env bash
# Real work over virtio-fs (issue 6, item 5): git, SQLite with fsync (rollback
# journal and WAL), mmap'd writes, parallel writers and readers, flock between
# two processes, and fio's own --verify, all run INSIDE the guest by the host's
# binaries, on a volume the host then checks with its own tools.
#
# The container root is built from the host's /usr and /etc, bind-mounted
# read-only into a scratch rootfs inside a private mount namespace (nothing is
# left mounted, and the guest never sees the host's /proc or /sys: it gets its
# own). The work volume is a private tmpfs (see below).
# usage: tests/integration/test_fs_work_vm.sh BUILD_DIR
set -u
if [ -z "${RUNVM_FS_WORK_NS:-}" ]; then
	exec env RUNVM_FS_WORK_NS=1 unshare -m --propagation private "$0" "$@"
fi
t_suite=fs-work-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_fs_work_vm.sh BUILD_DIR}
runvm=$build/bin/runvm
kernel=$top/build/share/runvm/vmlinux
initrd=$top/build/share/runvm/initramfs.img
scratch=$(mktemp -d "$top/build/fs-work.XXXXXX")
root=$scratch/root work=$scratch/work
# Unmount before removing, and never cross into another filesystem: the
# rootfs holds the host's /usr and /etc.
cleanup() {
	umount -l "$root/usr" "$root/etc" "$work" 2>/dev/null
	rm -rf --one-file-system "$scratch"
}
trap cleanup EXIT
mkdir -p "$root"/{usr,etc,proc,sys,dev,tmp,root} "$work"
for d in bin sbin lib lib64; do
	[ -L "/$d" ] && ln -s "$(readlink "/$d")" "$root/$d"
done
# The work volume is a tmpfs: the server needs a backing filesystem on which
# an O_PATH fd keeps its file reachable across renames, and the checkout may be
# on 9p (the testbed's), whose fids are path names on the 9p server's side.
mount --bind -o ro /usr "$root/usr" && mount --bind -o ro /etc "$root/etc" &&
	mount -t tmpfs -o size=1g runvm-fs-work "$work" ||
	{ fail "bind the host's /usr and /etc into the rootfs, a tmpfs for work" "mount failed"; summary; exit 1; }

# One VM for the work; each step prints "ok NAME" or "FAIL NAME: why". A step
# starts by removing what an earlier, interrupted try of it left.
guest_script='
cd /tmp || exit 1
step() { name=$1; shift; if out=$("$@" 2>&1); then echo "ok $name"; else echo "FAIL $name: $(echo "$out" | tail -n 6 | tr "\n" " ")"; fi; cd /tmp; }

git_work() {
	rm -rf repo && git init -q repo && cd repo &&
	for i in $(seq 1 200); do echo "line $i" > "f$i"; done &&
	git add -A && git -c user.name=runvm -c user.email=runvm@test commit -qm first &&
	sed -i s/line/LINE/ f7 && git -c user.name=runvm -c user.email=runvm@test commit -qam second &&
	git fsck --full && test "$(git log --oneline | wc -l)" = 2 && git gc -q
}
sqlite_work() {
	for mode in delete wal; do
		db=/tmp/$mode.db
		rm -f "$db" "$db-journal" "$db-wal" "$db-shm"
		sqlite3 "$db" "PRAGMA journal_mode=$mode; PRAGMA synchronous=FULL; CREATE TABLE t(i INTEGER, s TEXT);" >/dev/null &&
		for b in $(seq 1 10); do
			sqlite3 "$db" "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<100) INSERT INTO t SELECT x, hex(randomblob(32)) FROM c; COMMIT;" || return 1
		done
		test "$(sqlite3 "$db" "PRAGMA integrity_check;")" = ok || return 1
		test "$(sqlite3 "$db" "SELECT count(*) FROM t;")" = 1000 || return 1
		sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null || return 1
	done
}
mmap_work() {
	rm -f /tmp/mapped
	python3 -c "
import mmap, os
fd = os.open(\"/tmp/mapped\", os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 1 << 20)
m = mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED)
for i in range(0, 1 << 20, 4096):
    m[i:i + 8] = (i // 4096).to_bytes(8, \"little\")
m.flush(); m.close(); os.close(fd)
"
}
parallel_work() {
	rm -f par*
	for i in 1 2 3 4 5 6 7 8; do
		(head -c 4194304 /dev/urandom > "par$i" && sha256sum "par$i" > "par$i.sum") &
	done
	wait
	for i in 1 2 3 4 5 6 7 8; do (sha256sum -c "par$i.sum" >/dev/null) & done
	fails=0; for j in $(jobs -p); do wait $j || fails=$((fails + 1)); done
	test $fails = 0
}
flock_work() {
	rm -f lockfile
	flock lockfile sleep 3 &
	sleep 1
	if flock -n lockfile true; then return 1; fi
	wait
	flock -n lockfile true
}
fio_work() {
	rm -f verify.* fio.out fio.err
	# --thread: fio keeps job state in SysV shared memory otherwise, which
	# our guest kernel does not build in.
	fio --name=verify --directory=/tmp --size=16m --bs=4k --rw=randwrite --ioengine=psync \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --numjobs=2 --fallocate=none --thread \
		--output=fio.out 2>fio.err
	rc=$?
	# Both jobs clean, and nothing on stderr: fio reports a syscall the guest
	# lacks (posix_fadvise once was) there and carries on with rc 0.
	[ $rc = 0 ] && [ "$(grep -c "err= 0" fio.out)" = 2 ] && [ ! -s fio.err ] && return 0
	echo "rc=$rc"; cat fio.err; grep -i "err\|fail" fio.out | head -n 3
	return 1
}
for name in "$@"; do step "$name" "${name}_work"; done
'
# What the testbed's emulation (QEMU TCG under nested SVM) does to a guest now
# and then, never hardware KVM: the guest stops taking interrupts (the VMM
# warns after 10 s), or it triple-faults with its state reset to AMD's reset
# vector. This VM runs longest of all, so it meets these most: CI saw it in 3
# tries of 3 on 2026-11-28. The steps such a fault cut short run again in a
# fresh VM (printed, up to two more times); a step that failed on its own
# counts as failed.
emulation_fault() { # ERR_FILE
	grep -qE 'stopped taking interrupts|triple fault \(KVM_EXIT_SHUTDOWN\) at RIP 0xfff0 ' "$1"
}
# STEPS...: runs them in one VM (out, err), stopped at once on such a fault.
run_work() {
	# ~200 s in a quiet testbed, 240 s beside a compiler. --debug: a stall
	# logs the queues, interrupts and vCPUs when the VM stops. The files are
	# emptied first: the watch below must not read the last try's words.
	: >"$scratch/out"
	: >"$scratch/err"
	"$runvm" --debug boot --kernel "$kernel" --initrd "$initrd" --cpu-num 1 --total-memory 512M --timeout 400 \
		--rootfs "$root" --readonly --volume "$work:/tmp" -- /bin/sh -c "$guest_script" sh "$@" \
		>"$scratch/out" 2>"$scratch/err" &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		emulation_fault "$scratch/err" && { kill -TERM "$pid" 2>/dev/null; break; }
		sleep 1
	done
	wait "$pid"
}
steps="git sqlite mmap parallel flock fio" todo=$steps results=
for try in 1 2 3; do
	run_work $todo
	rc=$?
	results+=$(grep -E '^(ok|FAIL) ' "$scratch/out")$'\n'
	left=
	for name in $todo; do grep -qE "^(ok|FAIL) $name( |:|$)" "$scratch/out" || left+=" $name"; done
	# A fault after every step reported (the VM stopping) cut nothing short.
	[ -z "$left" ] && emulation_fault "$scratch/err" && rc=0
	[ -n "$left" ] && [ $try -lt 3 ] && emulation_fault "$scratch/err" || break
	echo "  (the testbed's emulation stalled or reset the work VM: once more for$left; its words:"
	grep -E 'stopped taking interrupts|triple fault|vCPU [0-9]+ stopped' "$scratch/err" | tail -n 3 | sed 's/^/    /'
	echo "  )"
	todo=$left
done
[ $rc = 0 ] && pass "the work VM ran to the end" || fail "the work VM ran to the end" "rc=$rc" \
	"$(grep -E '^runvm|interrupts raised again|vCPU|triple fault' "$scratch/err" | tail -n 12)"
for name in $steps; do
	line=$(grep -E "^(ok|FAIL) $name( |:|$)" <<<"$results" | tail -n 1)
	[ "${line%% *}" = ok ] && pass "in the guest: $name" || fail "in the guest: $name" "${line:-no result}"
done

# The host reads what the guest wrote with its own tools.
git -C "$work/repo" fsck --full >/dev/null 2>&1 && [ "$(git -C "$work/repo" log --oneline | wc -l)" = 2 ] &&
	[ "$(head -c 4 "$work/repo/f7")" = LINE ] && pass "the host's git sees both commits, fsck clean" ||
	fail "the host's git sees both commits, fsck clean" "$(git -C "$work/repo" log --oneline 2>&1 | head -3)"
for mode in delete wal; do
	n=$(sqlite3 "$work/$mode.db" "PRAGMA integrity_check; SELECT count(*) FROM t;" 2>&1 | tr '\n' ' ')
	[ "$n" = "ok 1000 " ] && pass "the host's sqlite3 reads the $mode-journal database intact" ||
		fail "the host's sqlite3 reads the $mode-journal database intact" "$n"
done
python3 - "$work/mapped" <<'EOF' && pass "mmap'd writes reached the host file" || fail "mmap'd writes reached the host file" "mismatch"
import sys
data = open(sys.argv[1], "rb").read()
assert len(data) == 1 << 20
for i in range(0, 1 << 20, 4096):
    assert int.from_bytes(data[i:i + 8], "little") == i // 4096, i
EOF
ok=1
for i in 1 2 3 4 5 6 7 8; do (cd "$work" && sha256sum -c "par$i.sum" >/dev/null 2>&1) || ok=0; done
[ $ok = 1 ] && pass "the host verifies all 8 parallel files" || fail "the host verifies all 8 parallel files" "sha256 mismatch"
summary
