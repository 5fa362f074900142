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

# One VM for all the work; each step prints "ok NAME" or "FAIL NAME: why".
guest_script='
cd /tmp || exit 1
step() { name=$1; shift; if out=$("$@" 2>&1); then echo "ok $name"; else echo "FAIL $name: $(echo "$out" | tail -n 6 | tr "\n" " ")"; fi; }

git_work() {
	git init -q repo && cd repo &&
	for i in $(seq 1 200); do echo "line $i" > "f$i"; done &&
	git add -A && git -c user.name=runvm -c user.email=runvm@test commit -qm first &&
	sed -i s/line/LINE/ f7 && git -c user.name=runvm -c user.email=runvm@test commit -qam second &&
	git fsck --full && test "$(git log --oneline | wc -l)" = 2 && git gc -q
}
sqlite_work() {
	for mode in delete wal; do
		db=/tmp/$mode.db
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
	for i in 1 2 3 4 5 6 7 8; do
		(head -c 4194304 /dev/urandom > "par$i" && sha256sum "par$i" > "par$i.sum") &
	done
	wait
	for i in 1 2 3 4 5 6 7 8; do (sha256sum -c "par$i.sum" >/dev/null) & done
	fails=0; for j in $(jobs -p); do wait $j || fails=$((fails + 1)); done
	test $fails = 0
}
flock_work() {
	flock lockfile sleep 3 &
	sleep 1
	if flock -n lockfile true; then return 1; fi
	wait
	flock -n lockfile true
}
fio_work() {
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
step git git_work
cd /tmp
step sqlite sqlite_work
step mmap mmap_work
step parallel parallel_work
step flock flock_work
step fio fio_work
'
# ~200 s in a quiet testbed, 240 s beside a compiler. --debug: a stall
# past --timeout logs the queues, interrupts and vCPUs (tests/run-vm-tests.sh
# reads those lines); 400 s, so that a stall leaves time for the retry.
out=$("$runvm" --debug boot --kernel "$kernel" --initrd "$initrd" --cpu-num 1 --total-memory 512M --timeout 400 \
	--rootfs "$root" --readonly --volume "$work:/tmp" -- /bin/sh -c "$guest_script" 2>"$scratch/err")
rc=$?
[ $rc = 0 ] && pass "the work VM ran to the end" || fail "the work VM ran to the end" "rc=$rc" \
	"$(grep -E '^runvm|interrupts raised again|vCPU|triple fault' "$scratch/err" | tail -n 12)"
for name in git sqlite mmap parallel flock fio; do
	line=$(grep -E "^(ok|FAIL) $name" <<<"$out")
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
