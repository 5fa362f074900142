#!/usr/bin/env bash
# The FUSE request server against the host kernel's FUSE client (DESIGN §10,
# layer 3): build/tests/fs-mount serves an export on a host mount through
# /dev/fuse, real programs (tar, git, sqlite3, python's mmap, dd, flock) work
# inside it, and what they did is checked on the host side of the export. A
# read-only export refuses every change with EROFS, and a hostile program
# (fs-escape, jailed inside the mount) never reaches a file outside the export.
# Needs root and /dev/fuse; run as root on the host, no VM.
# usage: tests/integration/test_fs_host.sh [BUILD_DIR]
#   FS_MOUNT, FS_ESCAPE: the tools (default BUILD_DIR/tests/fs-mount, fs-escape)
#   FS_HOST_TREE: what to untar, relative to /usr (default: include share/doc)
#   FS_HOST_BIG_TREE: a tree with more files than fs-mount has fds (default: share/man)
set -u
t_suite=fs-host
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:-$top/build}
fs_mount=${FS_MOUNT:-$build/tests/fs-mount}
fs_escape=${FS_ESCAPE:-$build/tests/fs-escape}
tree=${FS_HOST_TREE:-include share/doc}
big_tree=${FS_HOST_BIG_TREE:-share/man}

if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
	skip "FUSE host tests" "need root and /dev/fuse"
	summary
	exit 0
fi
for f in "$fs_mount" "$fs_escape"; do
	[ -x "$f" ] || { echo "test_fs_host.sh: $f missing: run make"; exit 1; }
done

tmp=$(mktemp -d /tmp/runvm-fs-host.XXXXXX)
mount_pids=() job_pids=()
# Runs on any exit, also after a failure or ^C: no mount, no fs-mount, no
# workload may outlive the suite (rm stays on this file system, so it never
# walks into a mount that is still there).
cleanup() {
	local p m
	for p in "${job_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for m in $(awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	for p in "${mount_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${mount_pids[@]}"; do
		for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_mount NAME ARGS... EXPORT_DIR: fs-mount on $tmp/NAME.mnt in the
# background, logging to $tmp/NAME.log; returns once it is a mount point and
# sets $mnt and $mount_pid.
start_mount() {
	local name=$1; shift
	mnt=$tmp/$name.mnt
	mkdir -p "$mnt"
	"$fs_mount" "$@" "$mnt" 2>"$tmp/$name.log" &
	mount_pid=$!
	mount_pids+=("$mount_pid")
	for _ in $(seq 200); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$mount_pid" 2>/dev/null || break
		sleep 0.05
	done
	fail "fs-mount $name mounts" "$(cat "$tmp/$name.log")"
	return 1
}

# stop_mount NAME PID: umount, and fs-mount must exit 0 by itself.
stop_mount() {
	local name=$1 pid=$2 rc
	umount "$tmp/$name.mnt" || umount -l "$tmp/$name.mnt"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	wait "$pid"
	rc=$?
	[ "$rc" = 0 ] && pass "$name: fs-mount exits 0 once unmounted" ||
		fail "$name: fs-mount exits 0 once unmounted" "exit status $rc" "$(tail -5 "$tmp/$name.log")"
}

# Everything find says about a tree, sorted: type, mode, owner, size, links,
# mtime, link target, path. The same tree seen through the mount and on the
# host must give the same lines.
tree_list() { (cd "$1" && find . -mindepth 1 -printf '%y %m %U:%G %s %n %Ts %l %p\n' | LC_ALL=C sort); }
tree_sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum); }
# A host directory's state down to ctime (chmod, chown, xattrs, links all move it).
snapshot() {
	find "$1" -printf '%p %y %m %U:%G %s %n %T@ %C@ %l\n' | LC_ALL=C sort
	find "$1" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
}
same() { # NAME FILE1 FILE2
	if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$(diff "$2" "$3" | head -8)"; return 1; fi
}

# One python process per syscall that the shell has no command for. Prints
# results on stdout; on an OSError prints its errno name and exits 1.
cat >"$tmp/op.py" <<'EOF'
import ctypes, errno, fcntl, mmap, os, sys, time
def run(op, *a):
    if op == "rename": os.rename(a[0], a[1])
    elif op == "link": os.link(a[0], a[1])
    elif op == "setxattr": os.setxattr(a[0], a[1], a[2].encode())
    elif op == "getxattr": print(os.getxattr(a[0], a[1]).decode())
    elif op == "listxattr": print(" ".join(sorted(x for x in os.listxattr(a[0]) if x.startswith("user."))))
    elif op == "removexattr": os.removexattr(a[0], a[1])
    elif op == "excl": os.close(os.open(a[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    elif op == "tmpfile":   # DIR NAME TEXT: an unnamed file, written, then linked in
        fd = os.open(a[0], os.O_TMPFILE | os.O_RDWR, 0o600)
        os.write(fd, a[2].encode())
        # linkat(fd, "", AT_EMPTY_PATH): os.link has no way to say it
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.linkat(fd, b"", -100, os.path.join(a[0], a[1]).encode(), 0x1000) < 0:
            raise OSError(ctypes.get_errno(), "linkat")
    elif op == "seek":      # FILE data|hole OFFSET
        fd = os.open(a[0], os.O_RDONLY)
        print(os.lseek(fd, int(a[2]), os.SEEK_DATA if a[1] == "data" else os.SEEK_HOLE))
    elif op == "copy":      # SRC DST: copy_file_range all of it
        i, o = os.open(a[0], os.O_RDONLY), os.open(a[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        n = os.fstat(i).st_size
        while n > 0:
            k = os.copy_file_range(i, o, n)
            if k == 0: raise OSError(errno.EIO, "copy_file_range returned 0")
            n -= k
    elif op == "mmapwrite": # FILE PAGES: a shared mapping, page i says "page i"
        fd = os.open(a[0], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, int(a[1]) * 4096)
        m = mmap.mmap(fd, int(a[1]) * 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        for p in range(int(a[1])):
            m[p * 4096:p * 4096 + 16] = b"page %-11d" % p
        m.flush(); m.close(); os.close(fd)
    elif op == "mmapcheck": # FILE PAGES: read(2) sees what mmapwrite wrote
        d = open(a[0], "rb").read()
        bad = [p for p in range(int(a[1])) if d[p * 4096:p * 4096 + 16] != b"page %-11d" % p]
        if len(d) != int(a[1]) * 4096 or bad: print("wrong pages:", bad[:5], "size", len(d)); sys.exit(2)
    elif op == "lockf":     # FILE SECONDS READY: hold a POSIX lock, touch READY
        fd = os.open(a[0], os.O_RDWR | os.O_CREAT, 0o644); fcntl.lockf(fd, fcntl.LOCK_EX)
        open(a[2], "w").close(); time.sleep(float(a[1]))
    elif op == "trylockf": fcntl.lockf(os.open(a[0], os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB)
    elif op == "statvfs": s = os.statvfs(a[0]); print(s.f_blocks * s.f_frsize)
    else: sys.exit("op.py: unknown op " + op)
try:
    run(*sys.argv[1:])
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno))); sys.exit(1)
EOF
# Debian's python3 when there is one: a pyenv shim takes most of a second to start.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
op() { "$py" "$tmp/op.py" "$@"; }
# expect_errno NAME ERRNO OP ARGS...: op.py must fail with ERRNO (or one of "A|B").
expect_errno() {
	local name=$1 want=$2; shift 2
	run_capture op "$@"
	if [ "$rc" = 1 ] && [[ "|$want|" == *"|$out|"* ]]; then pass "$name"; else
		fail "$name" "exit status $rc, got '$out', expected $want" "stderr: ${err:0:300}"
	fi
}

# --- fs-mount itself ----------------------------------------------------------------------
mkdir -p "$tmp/empty.mnt"
run_capture "$fs_mount" "$tmp/no-such-dir" "$tmp/empty.mnt"
expect_rc "fs-mount with a missing export fails: exit 1" 1 &&
	expect_in "it says fs-mount: and names the directory" "$err" "fs-mount: "
expect_in "it names the directory" "$err" "$tmp/no-such-dir"
run_capture "$fs_mount" --cache sometimes "$tmp" "$tmp/empty.mnt"
expect_rc "a bad --cache is a usage error: exit 2" 2 && expect_in "it names the fix" "$err" "use auto, none or always"
! mountpoint -q "$tmp/empty.mnt" && pass "a failed fs-mount leaves no mount" || fail "a failed fs-mount leaves no mount"

exp=$tmp/export ro=$tmp/ro
mkdir -p "$exp" "$ro/dir"
echo "read-only content" >"$ro/file"
op setxattr "$ro/file" user.kept yes
ln -s file "$ro/link"
snapshot "$ro" >"$tmp/ro.before"

start_mount main --export "ro=$ro:ro" "$exp" || { summary; exit 1; }
main_pid=$mount_pid
R=$mnt/rootfs

# --- the synthetic root ----------------------------------------------------------
[ "$(ls "$mnt" | tr '\n' ' ')" = "ro rootfs " ] && pass "the root lists exactly the exports" ||
	fail "the root lists exactly the exports" "$(ls -la "$mnt")"
run_capture touch "$mnt/new"
[ "$rc" != 0 ] && [ ! -e "$mnt/new" ] && pass "no file can be made in the synthetic root" ||
	fail "no file can be made in the synthetic root" "touch: $rc $err"
run_capture mkdir "$mnt/newdir"
[ "$rc" != 0 ] && pass "no directory can be made in the synthetic root" || fail "no directory can be made in the synthetic root"
expect_errno "an export cannot be renamed" "EROFS|EPERM|EACCES|EBUSY" rename "$R" "$mnt/other"
run_capture rmdir "$mnt/ro"
[ "$rc" != 0 ] && [ -d "$mnt/ro" ] && pass "an export cannot be removed" || fail "an export cannot be removed" "$err"

# --- (a) a large tree through tar ---------------------------------------------------
# The archive holds the trees' parent directories too, so that every
# directory's mtime comes from the archive, not from when it was extracted.
# Each parent goes right before its tree (tar sets a directory's times once
# it has moved on from it).
members=() seen=" "
for p in $tree; do
	d=$(dirname "$p") up=()
	while [ "$d" != . ]; do up=("$d" "${up[@]}"); d=$(dirname "$d"); done
	for d in "${up[@]}"; do
		[[ "$seen" == *" $d "* ]] || members+=(--no-recursion "$d" --recursion)
		seen+="$d "
	done
	members+=("$p")
done
tar -C /usr -cf "$tmp/tree.tar" "${members[@]}" 2>/dev/null
mkdir -p "$tmp/native" "$R/tree"
tar -C "$tmp/native" -xf "$tmp/tree.tar"
files=$(find "$tmp/native" -type f | wc -l)
t0=$SECONDS
run_capture tar -C "$R/tree" -xf "$tmp/tree.tar"
expect_rc "tar extracts $files files ($(du -sm "$tmp/tree.tar" | cut -f1) MiB) inside the mount, exit 0" 0
echo "        (untar: $((SECONDS - t0)) s)"
tree_list "$tmp/native" >"$tmp/tree.native"
tree_list "$R/tree" >"$tmp/tree.mount" 2>"$tmp/tree.err"
tree_list "$exp/tree" >"$tmp/tree.host"
same "the tree through the mount is the tar's: types, modes, owners, sizes, links, mtimes" \
	"$tmp/tree.native" "$tmp/tree.mount" || head -3 "$tmp/tree.err" | sed 's/^/        /'
same "the host side of the export holds the same tree" "$tmp/tree.native" "$tmp/tree.host"
tree_sums "$tmp/native" >"$tmp/sums.native"
tree_sums "$R/tree" >"$tmp/sums.mount" 2>"$tmp/sums.err"
tree_sums "$exp/tree" >"$tmp/sums.host"
same "every file's sha256 through the mount is the source's" "$tmp/sums.native" "$tmp/sums.mount" ||
	head -3 "$tmp/sums.err" | sed 's/^/        /'
same "every file's sha256 on the host side is the source's" "$tmp/sums.native" "$tmp/sums.host"
rm -rf "$tmp/native"
run_capture rm -rf "$R/tree"
expect_rc "rm -rf of the whole tree inside the mount" 0 && [ -z "$(ls -A "$exp")" ] &&
	pass "and it is gone on the host" || fail "and it is gone on the host" "$(ls -A "$exp" | head)"

# --- (b) git ------------------------------------------------------------------------
g=$R/repo
mkdir -p "$g"
run_capture bash -c 'cd "$1" && git init -q && for i in $(seq 50); do echo "line $i" >"f$i.txt"; done &&
	mkdir -p sub && cp /etc/services sub/ && git add -A &&
	git -c user.name=t -c user.email=t@t commit -q -m first && echo more >>f1.txt &&
	git -c user.name=t -c user.email=t@t commit -q -am second && git gc -q && git fsck --strict 2>&1 &&
	git log --format=%H%x20%s' _ "$g"
expect_rc "git init, add, commit, gc, fsck inside the mount" 0
head_mount=$(git -C "$g" rev-parse HEAD 2>&1)
head_host=$(git -c safe.directory='*' -C "$exp/repo" rev-parse HEAD 2>&1)
[ -n "$head_mount" ] && [ "$head_mount" = "$head_host" ] && pass "the host sees the same HEAD" ||
	fail "the host sees the same HEAD" "mount: $head_mount" "host: $head_host"
run_capture git -c safe.directory='*' -C "$exp/repo" log --format=%s
[ "$out" = "second
first" ] && pass "git log on the host shows both commits" || fail "git log on the host shows both commits" "$out" "$err"
run_capture git -C "$g" status --porcelain
[ "$rc" = 0 ] && [ -z "$out" ] && pass "git status inside the mount is clean" || fail "git status inside the mount is clean" "$out" "$err"

# --- (c) SQLite ------------------------------------------------------------------------
db=$R/test.db
{
	echo "PRAGMA synchronous=FULL; CREATE TABLE t(i INTEGER PRIMARY KEY, v TEXT);"
	for b in $(seq 0 9); do
		echo "BEGIN;"
		for i in $(seq $((b * 100 + 1)) $((b * 100 + 100))); do echo "INSERT INTO t(v) VALUES('row $i $(printf '%0200d' "$i")');"; done
		echo "COMMIT;"
	done
	echo "SELECT count(*) FROM t; PRAGMA integrity_check;"
} >"$tmp/db.sql"
run_capture sqlite3 "$db" <"$tmp/db.sql"
[ "$rc" = 0 ] && [ "$out" = "1000
ok" ] && pass "sqlite3: 1000 inserts in 10 transactions, synchronous=FULL, integrity_check ok" ||
	fail "sqlite3: 1000 inserts in 10 transactions, synchronous=FULL, integrity_check ok" "$out" "$err"
run_capture sqlite3 "$exp/test.db" "PRAGMA integrity_check; SELECT count(*), sum(i) FROM t;"
[ "$out" = "ok
1000|500500" ] && pass "the database is intact on the host" || fail "the database is intact on the host" "$out" "$err"
run_capture sqlite3 "$R/wal.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES(1),(2),(3);
	PRAGMA wal_checkpoint(TRUNCATE); SELECT sum(x) FROM t; PRAGMA integrity_check;"
[ "$rc" = 0 ] && [ "$(tail -2 <<<"$out")" = "6
ok" ] && pass "sqlite3 in WAL mode (a shared mmap of the -shm file) works" ||
	fail "sqlite3 in WAL mode (a shared mmap of the -shm file) works" "$out" "$err"

# --- (d) mmap ------------------------------------------------------------------------------
run_capture op mmapwrite "$R/mapped" 256
expect_rc "writes through a shared mapping of 256 pages" 0
run_capture op mmapcheck "$exp/mapped" 256
expect_rc "the host reads every page as written through the mapping" 0
run_capture op mmapcheck "$R/mapped" 256
expect_rc "read(2) through the mount agrees" 0

# --- (e) parallel readers and writers ------------------------------------------------
mkdir -p "$R/par"
head -c 32M /dev/urandom >"$tmp/shared"
cp "$tmp/shared" "$R/par/shared"
want=$(sha256sum <"$tmp/shared")
for i in 1 2 3 4; do head -c 16M /dev/urandom >"$tmp/src$i"; done
job_pids=()
for i in 1 2 3 4; do
	dd if="$tmp/src$i" of="$R/par/w$i" bs=256k status=none &
	job_pids+=($!)
	sha256sum <"$R/par/shared" >"$tmp/read$i" &
	job_pids+=($!)
	(for n in $(seq 300); do echo "writer $i line $n $(printf '%080d' "$n")"; done >>"$R/par/appended") &
	job_pids+=($!)
done
bad=0
for p in "${job_pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
job_pids=()
[ "$bad" = 0 ] && pass "12 concurrent jobs (4 dd writers, 4 readers, 4 appenders) exit 0" ||
	fail "12 concurrent jobs (4 dd writers, 4 readers, 4 appenders) exit 0" "$bad failed"
bad=
for i in 1 2 3 4; do
	cmp -s "$tmp/src$i" "$exp/par/w$i" || bad+=" w$i"
	[ "$(cat "$tmp/read$i")" = "$want" ] || bad+=" read$i"
done
[ -z "$bad" ] && pass "every written file is intact on the host and every reader read the whole file" ||
	fail "every written file is intact on the host and every reader read the whole file" "wrong:$bad"
lines=$(grep -c -E '^writer [1-4] line [0-9]+ [0-9]{80}$' "$exp/par/appended")
[ "$lines" = 1200 ] && [ "$(wc -l <"$exp/par/appended")" = 1200 ] &&
	pass "O_APPEND writers: all 1200 lines whole" || fail "O_APPEND writers: all 1200 lines whole" "$lines well-formed lines"
dd if=/dev/urandom of="$R/par/big" bs=1M count=96 status=none
cmp -s "$R/par/big" "$exp/par/big" && pass "96 MiB written in 1 MiB blocks reads back the same on both sides" ||
	fail "96 MiB written in 1 MiB blocks reads back the same on both sides"

# --- (f) locks --------------------------------------------------------------------------
: >"$R/lockfile"
rm -f "$tmp/locked"
flock -x "$R/lockfile" -c "touch $tmp/locked; sleep 2" &
holder=$!
job_pids=("$holder")
for _ in $(seq 100); do [ -e "$tmp/locked" ] && break; sleep 0.05; done
run_capture flock -n "$R/lockfile" true
expect_rc "flock -n fails while another process holds the lock" 1
run_capture flock -n "$exp/lockfile" true
expect_rc "the lock is on the host: flock -n on the export dir itself fails too" 1
t0=$(date +%s%N)
run_capture flock -w 20 "$R/lockfile" true
waited=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 0 ] && [ "$waited" -ge 800 ] && pass "a second flock waits until the holder lets go (${waited} ms)" ||
	fail "a second flock waits until the holder lets go" "exit $rc after $waited ms"
wait "$holder"
rm -f "$tmp/locked"
"$py" "$tmp/op.py" lockf "$R/lockfile" 60 "$tmp/locked" &   # not through op(): $! must be python
holder=$!
job_pids=("$holder")
for _ in $(seq 100); do [ -e "$tmp/locked" ] && break; sleep 0.05; done
expect_errno "a POSIX lock held by one process: another's F_SETLK fails" "EAGAIN|EACCES" trylockf "$R/lockfile"
expect_errno "the host sees it: F_SETLK on the export dir itself fails" "EAGAIN|EACCES" trylockf "$exp/lockfile"
kill "$holder"
wait "$holder" 2>/dev/null
run_capture op trylockf "$R/lockfile"
expect_rc "once the holder is gone, F_SETLK succeeds" 0
# And the other way: a host process's lock holds off the mount's users.
rm -f "$tmp/locked"
"$py" "$tmp/op.py" lockf "$exp/lockfile" 2 "$tmp/locked" &
holder=$!
job_pids=("$holder")
for _ in $(seq 100); do [ -e "$tmp/locked" ] && break; sleep 0.05; done
expect_errno "a host process's POSIX lock: F_SETLK through the mount fails" "EAGAIN|EACCES" trylockf "$R/lockfile"
t0=$(date +%s%N)
run_capture "$py" -c 'import fcntl, os, sys; fcntl.lockf(os.open(sys.argv[1], os.O_RDWR), fcntl.LOCK_EX)' "$R/lockfile"
waited=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 0 ] && [ "$waited" -ge 800 ] && pass "F_SETLKW through the mount waits for the host's lock (${waited} ms)" ||
	fail "F_SETLKW through the mount waits for the host's lock" "exit $rc after $waited ms" "$err"
wait "$holder" 2>/dev/null
job_pids=()

# --- (g) the read-only export ------------------------------------------------------
erofs() { # NAME CMD...: must fail with "Read-only file system"
	local name=$1; shift
	run_capture "$@"
	[ "$rc" != 0 ] && [[ "$err" == *"Read-only file system"* ]] && pass "$name" ||
		fail "$name" "exit status $rc" "stderr: ${err:0:300}"
}
[ "$(cat "$mnt/ro/file")" = "read-only content" ] && pass "ro: reads work" || fail "ro: reads work"
erofs "ro: overwriting a file fails with EROFS" sh -c 'echo x >"$1"' _ "$mnt/ro/file"
erofs "ro: creating a file fails with EROFS" sh -c 'echo x >"$1"' _ "$mnt/ro/new"
erofs "ro: mkdir fails with EROFS" mkdir "$mnt/ro/newdir"
erofs "ro: chmod fails with EROFS" chmod 777 "$mnt/ro/file"
erofs "ro: chown fails with EROFS" chown 65534 "$mnt/ro/file"
erofs "ro: touch fails with EROFS" touch "$mnt/ro/file"
erofs "ro: truncate fails with EROFS" truncate -s 0 "$mnt/ro/file"
erofs "ro: rm fails with EROFS" rm -f "$mnt/ro/file"
erofs "ro: rmdir fails with EROFS" rmdir "$mnt/ro/dir"
erofs "ro: rename fails with EROFS" mv "$mnt/ro/file" "$mnt/ro/renamed"
erofs "ro: symlink fails with EROFS" ln -s x "$mnt/ro/newlink"
erofs "ro: hard link fails with EROFS" ln "$mnt/ro/file" "$mnt/ro/hardlink"
erofs "ro: mkfifo fails with EROFS" mkfifo "$mnt/ro/fifo"
expect_errno "ro: setxattr fails with EROFS" EROFS setxattr "$mnt/ro/file" user.new x
expect_errno "ro: removexattr fails with EROFS" EROFS removexattr "$mnt/ro/file" user.kept
run_capture op getxattr "$mnt/ro/file" user.kept
[ "$out" = yes ] && pass "ro: getxattr works" || fail "ro: getxattr works" "$out"
# Across exports: a rename or a hard link out of the read-only export would
# let rootfs change its files.
echo victim >"$R/victim"
expect_errno "ro: a hard link from the ro export into rootfs is refused" "EXDEV|EROFS|EPERM" \
	link "$mnt/ro/file" "$R/from-ro"
expect_errno "ro: a rename from the ro export into rootfs is refused" "EXDEV|EROFS" \
	rename "$mnt/ro/file" "$R/stolen"
expect_errno "ro: a rename from rootfs into the ro export is refused" "EXDEV|EROFS" \
	rename "$R/victim" "$mnt/ro/planted"
[ ! -e "$exp/from-ro" ] && [ ! -e "$exp/stolen" ] && [ -e "$exp/victim" ] &&
	pass "ro: rootfs is as it was after the cross-export attempts" ||
	fail "ro: rootfs is as it was after the cross-export attempts" "$(ls "$exp")"
snapshot "$ro" >"$tmp/ro.after"
same "ro: the host directory is unchanged (names, modes, owners, times, content)" "$tmp/ro.before" "$tmp/ro.after"

# --- (h) the rest of the op set ------------------------------------------------------------
m=$R/misc h=$exp/misc
mkdir -p "$m"
echo one >"$m/a"
mv "$m/a" "$m/b"
[ ! -e "$h/a" ] && [ "$(cat "$h/b")" = one ] && pass "rename" || fail "rename" "$(ls -la "$h")"
echo two >"$m/c"
mv "$m/c" "$m/b"
[ ! -e "$h/c" ] && [ "$(cat "$h/b")" = two ] && pass "rename over an existing file replaces it" ||
	fail "rename over an existing file replaces it"
mkdir -p "$m/d1/sub" && mv "$m/d1" "$m/d2"
[ -d "$h/d2/sub" ] && [ ! -e "$h/d1" ] && pass "rename of a directory" || fail "rename of a directory"
ln "$m/b" "$m/hl"
[ "$(stat -c %h "$m/b")" = 2 ] && [ "$(stat -c %i "$h/b")" = "$(stat -c %i "$h/hl")" ] &&
	pass "hard link: two names, one host inode" || fail "hard link: two names, one host inode" \
	"mount nlink $(stat -c %h "$m/b"), host inodes $(stat -c %i "$h/b") $(stat -c %i "$h/hl")"
ln -s some/target "$m/sl"
[ "$(readlink "$m/sl")" = some/target ] && [ -L "$h/sl" ] && [ "$(readlink "$h/sl")" = some/target ] &&
	pass "symlink and readlink" || fail "symlink and readlink" "$(ls -la "$h/sl")"
chmod 640 "$m/b"
[ "$(stat -c %a "$h/b")" = 640 ] && pass "chmod" || fail "chmod" "$(stat -c %a "$h/b")"
chown 65534:65533 "$m/b"
[ "$(stat -c %u:%g "$h/b")" = 65534:65533 ] && pass "chown" || fail "chown" "$(stat -c %u:%g "$h/b")"
chown -h 65534:65533 "$m/sl"
[ "$(stat -c %u:%g "$h/sl")" = 65534:65533 ] && [ "$(stat -c %u "$h/b")" = 65534 ] &&
	pass "chown -h changes the link itself" || fail "chown -h changes the link itself" "$(stat -c %u:%g "$h/sl")"
touch -d @1000000000 "$m/b"
touch -h -d @1000000001 "$m/sl"
[ "$(stat -c %Y "$h/b")" = 1000000000 ] && [ "$(stat -c %Y "$h/sl")" = 1000000001 ] &&
	pass "utimes, also on a symlink (touch -h)" || fail "utimes, also on a symlink (touch -h)" \
	"$(stat -c %Y "$h/b") $(stat -c %Y "$h/sl")"
truncate -s 100000 "$m/b"
sz=$(stat -c %s "$h/b")
truncate -s 3 "$m/b"
[ "$sz" = 100000 ] && [ "$(cat "$h/b")" = two ] && pass "truncate up and down" || fail "truncate up and down" "size $sz"
if command -v setfattr >/dev/null && command -v getfattr >/dev/null; then
	setfattr -n user.color -v blue "$m/b"
	got=$(getfattr --only-values -n user.color "$m/b" 2>/dev/null)
else
	op setxattr "$m/b" user.color blue
	got=$(op getxattr "$m/b" user.color)
fi
[ "$got" = blue ] && [ "$(op getxattr "$h/b" user.color)" = blue ] && pass "setxattr/getxattr (user.*), seen on the host" ||
	fail "setxattr/getxattr (user.*), seen on the host" "mount: $got, host: $(op getxattr "$h/b" user.color)"
op setxattr "$h/b" user.size "$(printf '%04000d' 0)"
[ "$(op listxattr "$m/b")" = "user.color user.size" ] && [ "$(op getxattr "$m/b" user.size | wc -c)" = 4001 ] &&
	pass "listxattr and a 4000-byte value" || fail "listxattr and a 4000-byte value" "$(op listxattr "$m/b")"
op removexattr "$m/b" user.color
[ "$(op listxattr "$h/b")" = user.size ] && pass "removexattr" || fail "removexattr" "$(op listxattr "$h/b")"
expect_errno "getxattr of a missing name: ENODATA" ENODATA getxattr "$m/b" user.missing
run_capture df -P "$R"
[ "$rc" = 0 ] && [ "$(op statvfs "$R")" = "$(op statvfs "$exp")" ] && pass "statfs (df) reports the host file system's size" ||
	fail "statfs (df) reports the host file system's size" "mount $(op statvfs "$R"), host $(op statvfs "$exp")" "$err"
run_capture fallocate -l 1M "$m/fa"
[ "$rc" = 0 ] && [ "$(stat -c %s "$h/fa")" = 1048576 ] && [ "$(stat -c %b "$h/fa")" -ge 2048 ] &&
	pass "fallocate allocates on the host" || fail "fallocate allocates on the host" "$err" "$(stat -c '%s %b' "$h/fa")"
run_capture fallocate -n -o 1M -l 1M "$m/fa"
[ "$rc" = 0 ] && [ "$(stat -c %s "$h/fa")" = 1048576 ] && pass "fallocate --keep-size keeps the size" ||
	fail "fallocate --keep-size keeps the size" "$err"
blocks=$(stat -c %b "$h/fa")
run_capture fallocate -p -o 0 -l 64K "$m/fa"
[ "$rc" = 0 ] && [ "$(stat -c %b "$h/fa")" -lt "$blocks" ] && [ "$(stat -c %s "$h/fa")" = 1048576 ] &&
	pass "fallocate --punch-hole frees blocks on the host" ||
	fail "fallocate --punch-hole frees blocks on the host" "$err" "blocks $blocks -> $(stat -c %b "$h/fa")"
head -c 4096 /dev/urandom >"$m/sparse"
dd if=/dev/urandom of="$m/sparse" bs=4k seek=256 count=1 conv=notrunc status=none
for q in "hole 0" "data 4096" "hole 1048576" "data 0"; do
	# shellcheck disable=SC2086
	a=$(op seek "$m/sparse" $q) b=$(op seek "$h/sparse" $q)
	[ "$a" = "$b" ] && pass "lseek SEEK_${q%% *} from ${q#* }: $a, as on the host" ||
		fail "lseek SEEK_${q%% *} from ${q#* } agrees with the host" "mount $a, host $b"
done
run_capture op copy "$m/sparse" "$m/copy"
[ "$rc" = 0 ] && cmp -s "$h/sparse" "$h/copy" && pass "copy_file_range" || fail "copy_file_range" "$out" "$err"
run_capture op tmpfile "$m" from-tmpfile hidden
if [ "$rc" = 1 ] && [[ "$out" =~ ^(EOPNOTSUPP|ENOTSUP|ENOSYS)$ ]]; then
	skip "O_TMPFILE" "$out from this kernel's FUSE client"
else
	[ "$rc" = 0 ] && [ "$(cat "$h/from-tmpfile")" = hidden ] && pass "O_TMPFILE, then linked in" ||
		fail "O_TMPFILE, then linked in" "$out" "$err"
fi
run_capture op excl "$m/excl"
expect_rc "O_EXCL creates a new file" 0
expect_errno "O_EXCL on an existing file: EEXIST" EEXIST excl "$m/excl"
run_capture rmdir "$m/d2"
[ "$rc" != 0 ] && [[ "$err" == *"Directory not empty"* ]] && pass "rmdir of a non-empty directory: ENOTEMPTY" ||
	fail "rmdir of a non-empty directory: ENOTEMPTY" "$err"
mkfifo "$m/fifo" && [ -p "$h/fifo" ] && pass "mkfifo" || fail "mkfifo"
mkdir "$m/many"
(cd "$m/many" && seq -f 'file-with-a-longish-name-%05g' 2000 | xargs touch)
(cd "$m/many" && ls -f | LC_ALL=C sort) >"$tmp/many.mount"
(cd "$h/many" && ls -f | LC_ALL=C sort) >"$tmp/many.host"
[ "$(wc -l <"$tmp/many.mount")" = 2002 ] && cmp -s "$tmp/many.mount" "$tmp/many.host" &&
	pass "readdir of 2000 entries lists each once" || fail "readdir of 2000 entries lists each once" \
	"$(wc -l <"$tmp/many.mount") names through the mount"
# The client leaves set-ID clearing to the server (HANDLE_KILLPRIV_V2, which
# spares it a GETXATTR before every write): a write by a user without
# CAP_FSETID must still drop set-user-ID and set-group-ID.
echo suid >"$m/suid" && chmod 6777 "$m/suid"
# (root opens it, so that nobody needs search permission on the test's dirs)
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all sh -c 'echo more >&3' 3>>"$m/suid"
[ "$(stat -c %a "$h/suid")" = 777 ] && [ "$(tail -n 1 "$h/suid")" = more ] &&
	pass "an unprivileged write clears set-user-ID and set-group-ID" ||
	fail "an unprivileged write clears set-user-ID and set-group-ID" "host mode $(stat -c %a "$h/suid")"
chmod 6777 "$m/suid"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all fallocate -l 64K /proc/self/fd/3 3>>"$m/suid"
[ "$(stat -c %a "$h/suid")" = 777 ] && [ "$(stat -c %s "$h/suid")" = 65536 ] &&
	pass "an unprivileged fallocate clears them too" ||
	fail "an unprivileged fallocate clears them too" "host mode $(stat -c %a "$h/suid"), size $(stat -c %s "$h/suid")"
chmod 6777 "$m/suid" && echo root >>"$m/suid"
[ "$(stat -c %a "$h/suid")" = 6777 ] && pass "root's write keeps them (CAP_FSETID)" ||
	fail "root's write keeps them (CAP_FSETID)" "host mode $(stat -c %a "$h/suid")"
echo still-here >"$m/open-unlinked"
exec 3<"$m/open-unlinked"
rm "$m/open-unlinked"
[ "$(cat <&3)" = still-here ] && [ ! -e "$h/open-unlinked" ] && pass "an unlinked file stays readable through an open fd" ||
	fail "an unlinked file stays readable through an open fd"
exec 3<&-

# --- (a2) more files than the server has fds ------------------------------------------
# A directory of 18,000 files in a tree of 24,000: the kernel keeps every
# inode it has seen while it has memory, and each pins an fd in the server.
# On a mount of its own, so that running out cannot spoil the other tests.
mkdir -p "$tmp/big.export"
if start_mount big "$tmp/big.export"; then
	# shellcheck disable=SC2086
	big_files=$(cd /usr && find $big_tree -type f | wc -l)
	t0=$SECONDS
	# shellcheck disable=SC2086
	run_capture bash -c 'tar -C /usr -cf - $1 | tar -C "$2" -xf -' _ "$big_tree" "$mnt/rootfs"
	expect_rc "tar extracts $big_files files of /usr/$big_tree, more than fs-mount's $(ulimit -Hn) fds, exit 0" 0
	echo "        (untar: $((SECONDS - t0)) s)"
	# shellcheck disable=SC2086
	(cd /usr && find $big_tree -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) >"$tmp/big.src"
	# shellcheck disable=SC2086
	(cd "$mnt/rootfs" && find $big_tree -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) \
		>"$tmp/big.mount" 2>"$tmp/big.err"
	same "all of them read back with the source's sha256" "$tmp/big.src" "$tmp/big.mount" ||
		head -3 "$tmp/big.err" | sed 's/^/        /'
	stop_mount big "$mount_pid"
fi

# --- other cache modes, and a stop by SIGTERM -------------------------------------------
for mode in "none" "always --writeback"; do
	name=cache-${mode%% *}
	mkdir -p "$tmp/$name.export"
	# shellcheck disable=SC2086
	start_mount "$name" --cache $mode "$tmp/$name.export" || continue
	r=$mnt/rootfs
	tar -C /usr/include -cf - linux | tar -C "$r" -xf -
	tree_sums "$r/linux" >"$tmp/$name.mount"
	tree_sums "$tmp/$name.export/linux" >"$tmp/$name.host"
	(cd /usr/include && tree_sums linux) >"$tmp/$name.src"
	cmp -s "$tmp/$name.src" "$tmp/$name.mount" && cmp -s "$tmp/$name.src" "$tmp/$name.host" &&
		pass "--cache $mode: untar of /usr/include/linux, same sha256 everywhere" ||
		fail "--cache $mode: untar of /usr/include/linux, same sha256 everywhere"
	run_capture op mmapwrite "$r/mapped" 64
	expect_rc "--cache $mode: a shared writable mapping works" 0 &&
		run_capture op mmapcheck "$tmp/$name.export/mapped" 64 &&
		expect_rc "--cache $mode: writes through it reach the host" 0
	run_capture sqlite3 "$r/t.db" "PRAGMA synchronous=FULL; CREATE TABLE t(x); INSERT INTO t VALUES(1),(2); SELECT sum(x) FROM t; PRAGMA integrity_check;"
	[ "$out" = "3
ok" ] && pass "--cache $mode: sqlite3 works" || fail "--cache $mode: sqlite3 works" "$out" "$err"
	dd if=/dev/urandom of="$tmp/$name.src.bin" bs=1M count=8 status=none
	dd if="$tmp/$name.src.bin" of="$r/bin" bs=64k status=none
	cmp -s "$tmp/$name.src.bin" "$tmp/$name.export/bin" && pass "--cache $mode: written data is on the host after close" ||
		fail "--cache $mode: written data is on the host after close"
	if [ "$name" = cache-none ]; then
		stop_mount "$name" "$mount_pid"
	else
		exec 3<"$r/bin"   # a busy mount still goes away
		kill -TERM "$mount_pid"
		for _ in $(seq 100); do kill -0 "$mount_pid" 2>/dev/null || break; sleep 0.05; done
		wait "$mount_pid"
		rc=$?
		! mountpoint -q "$mnt" && [ "$rc" = 0 ] && pass "SIGTERM: fs-mount detaches a busy mount and exits 0" ||
			fail "SIGTERM: fs-mount detaches a busy mount and exits 0" "exit status $rc"
		run_capture bash -c 'cat <&3'
		[ "$rc" != 0 ] && pass "a file still open on it then fails instead of hanging" ||
			fail "a file still open on it then fails instead of hanging"
		exec 3<&-
	fi
done

# --- the hostile client -------------------------------------------------------------------
# fs-escape jails itself in the export (see tests/fs/fs_escape.c), so what
# it reaches outside can only come through the server; the host side checks
# that nothing next to the secret changed.
esc=$tmp/esc
mkdir -p "$esc/export/work" "$esc/export/proc" "$esc/outside/sub"
head -c 48 /dev/urandom | base64 >"$esc/outside/secret"
op setxattr "$esc/outside/secret" user.keep yes
mknod "$esc/export/work/zero" c 1 5
mknod "$esc/export/work/full" c 1 7
snapshot "$esc/outside" >"$tmp/outside.before"
if start_mount escape "$esc/export"; then
	run_capture timeout 180 "$fs_escape" --seconds 4 "$mnt/rootfs" work "$esc/outside/secret"
	escape_rc=$rc
	while IFS= read -r line; do
		case "$line" in
		PASS\ *) pass "escape: ${line#PASS }" ;;
		FAIL\ *) fail "escape: ${line#FAIL }" ;;
		*) fail "escape: unexpected output" "$line" ;;
		esac
	done <<<"$out"
	printf '        %s\n' "${err//$'\n'/$'\n'        }"
	nfail=$(grep -c '^FAIL' <<<"$out")
	{ [ "$escape_rc" = 0 ] && [ "$nfail" = 0 ]; } || { [ "$escape_rc" = 1 ] && [ "$nfail" != 0 ]; } &&
		pass "escape: fs-escape's exit status says what its lines say" ||
		fail "escape: fs-escape's exit status says what its lines say" "exit $escape_rc, $nfail FAIL lines"
	snapshot "$esc/outside" >"$tmp/outside.after"
	same "escape: nothing outside the export changed (names, modes, owners, times, links, xattrs, content)" \
		"$tmp/outside.before" "$tmp/outside.after"
	[ -L "$esc/export/work/abs" ] && [ "$(readlink "$esc/export/work/abs")" = "$esc/outside/secret" ] &&
		pass "escape: the client's symlinks are symlinks on the host, target kept verbatim" ||
		fail "escape: the client's symlinks are symlinks on the host, target kept verbatim"
	stop_mount escape "$mount_pid"
fi

# --- (i) nothing left behind ------------------------------------------------------------------
stop_mount main "$main_pid"
left=$(awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts)
[ -z "$left" ] && pass "no mount is left under $tmp" || fail "no mount is left under $tmp" "$left"
alive=
for p in "${mount_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=" $p"; done
[ -z "$alive" ] && pass "every fs-mount has exited" || fail "every fs-mount has exited" "still running:$alive"
reports=$(grep -l -E 'Sanitizer|runtime error:' "$tmp"/*.log 2>/dev/null)
[ -z "$reports" ] && pass "no sanitizer report in any fs-mount log" ||
	fail "no sanitizer report in any fs-mount log" "$(head -40 $reports)"

summary
