#!/usr/bin/env bash
# `runvm boot --rootfs DIR [--volume SRC:DST[:ro]]... -- CMD` on a real /dev/kvm:
# our kernel and the agent (build/share/runvm/initramfs.img, no busybox of its
# own), a container root and volumes served by the VMM's virtio-fs, mounted by
# the agent, CMD pivoted into the root. What the guest does is checked from
# the host side, on the files themselves, as a user would.
# usage: tests/integration/test_fs_vm.sh BUILD_DIR
set -u
if [ -z "${RUNVM_FS_VM_NS:-}" ]; then
	exec env RUNVM_FS_VM_NS=1 unshare -m --propagation private "$0" "$@"
fi
t_suite=fs-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_fs_vm.sh BUILD_DIR}
runvm=$build/bin/runvm
kernel=$top/build/share/runvm/vmlinux
initrd=$top/build/share/runvm/initramfs.img
# Everything the VMM exports lives on a private tmpfs. The checkout may be the
# testbed's 9p, where every FUSE request would become several 9p round trips
# through emulation, and whose fids do not pin a file across a rename; the
# testbed's /tmp is an overlay. A tmpfs is neither, and goes with the namespace.
scratch=$(mktemp -d "$top/build/fs-vm.XXXXXX")
trap 'umount -l "$scratch" 2>/dev/null; rm -rf --one-file-system "$scratch"' EXIT
mount -t tmpfs -o size=1g runvm-fs-vm "$scratch" ||
	{ fail "a private tmpfs for the rootfs and volumes" "mount failed"; summary; exit 1; }
root=$scratch/root
# Each of these VMs takes 5-20 s in the testbed: a stalled one (see
# tests/run-vm-tests.sh) costs 3 minutes, leaving time for the retry.
vm() { "$runvm" boot --kernel "$kernel" --initrd "$initrd" --timeout 180 --rootfs "$root" "$@"; }

# The container: busybox-static and one /bin link per applet, the usual
# empty places for the kernel's filesystems, and a link like Debian's
# /var/run -> /run.
mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc,var}
cp /bin/busybox "$root/bin/busybox"
# One process for ~270 links: in the testbed a fork costs ~0.1 s (a loop of
# ln took 40 s there).
/bin/busybox --list | python3 -c '
import os, sys
for a in sys.stdin.read().split():
    p = os.path.join(sys.argv[1], a)
    if not os.path.lexists(p):
        os.symlink("busybox", p)' "$root/bin"
ln -s /run "$root/var/run"
echo "hello from the host" >"$root/etc/greeting"

# --- reading, /proc, /dev, the exit status ------------------------------------------
run_capture vm -- sh -c 'cat /etc/greeting; head -n 1 /proc/self/status;
	echo x >/dev/null && echo dev-null-ok; ls /sys/kernel >/dev/null && echo sys-ok;
	[ -e /init ] && echo initramfs-visible; pwd; exit 7'
expect_rc "the command's exit status comes back (7)" 7
expect_in "a file the host wrote is read in the guest" "$out" "hello from the host"
expect_in "/proc works in the container (cat /proc/self/status)" "$out" "Name:	head"
expect_in "/dev works in the container" "$out" "dev-null-ok"
expect_in "/sys works in the container" "$out" "sys-ok"
case "$out" in
*initramfs-visible*|"") fail "the process sees the rootfs as /, not the initramfs" "stdout: $out" ;;
*) pass "the process sees the rootfs as /, not the initramfs" ;;
esac
[ "$(tail -n 1 <<<"$out")" = / ] && pass "and starts in its /" || fail "and starts in its /" "$out"

run_capture vm -- /no/such/command
expect_rc "a command missing from the rootfs exits 127" 127 &&
	expect_in "and the error names it" "$err" "/no/such/command"

# --- writing: contents, owners, names ------------------------------------------------
run_capture vm -- sh -c 'cd /tmp && echo guest-data >out.txt && chmod 640 out.txt &&
	mkdir -p d/e && echo moved >d/e/f && mv d/e/f d/g && ln -s g d/link &&
	echo gone >gone && rm gone && mkdir rmd && rmdir rmd &&
	echo owned >owned && chown 1234:5678 owned'
expect_rc "file operations in the guest: exit 0" 0
[ "$(cat "$root/tmp/out.txt" 2>&1)" = guest-data ] && pass "a file the guest wrote is on the host with its content" ||
	fail "a file the guest wrote is on the host with its content" "$(cat "$root/tmp/out.txt" 2>&1)"
[ "$(stat -c '%u:%g %a' "$root/tmp/out.txt" 2>&1)" = "0:0 640" ] &&
	pass "owned by the guest's root, mode 640" ||
	fail "owned by the guest's root, mode 640" "$(stat -c '%u:%g %a' "$root/tmp/out.txt" 2>&1)"
[ "$(stat -c '%u:%g' "$root/tmp/owned" 2>&1)" = 1234:5678 ] && pass "chown in the guest is the owner on the host" ||
	fail "chown in the guest is the owner on the host" "$(stat -c '%u:%g' "$root/tmp/owned" 2>&1)"
[ -d "$root/tmp/d/e" ] && [ ! -e "$root/tmp/d/e/f" ] && [ "$(cat "$root/tmp/d/g" 2>&1)" = moved ] &&
	pass "mkdir -p and rename are on the host" || fail "mkdir -p and rename are on the host" "$(ls -lR "$root/tmp/d" 2>&1)"
[ "$(readlink "$root/tmp/d/link")" = g ] && pass "a symlink is on the host" ||
	fail "a symlink is on the host" "$(ls -l "$root/tmp/d" 2>&1)"
[ ! -e "$root/tmp/gone" ] && [ ! -e "$root/tmp/rmd" ] && pass "unlink and rmdir are on the host" ||
	fail "unlink and rmdir are on the host" "$(ls -l "$root/tmp" 2>&1)"

# --- volumes -----------------------------------------------------------------------
mkdir -p "$scratch/vol" "$scratch/vol2" "$scratch/rovol"
echo in-volume >"$scratch/vol/v.txt"
echo second >"$scratch/vol2/w.txt"
echo read-only >"$scratch/rovol/r.txt"
run_capture vm --volume "$scratch/vol:/data" --volume "$scratch/vol2:/var/run/app" -- \
	sh -c 'cat /data/v.txt && echo from-guest >/data/new.txt && cat /run/app/w.txt'
expect_rc "two volumes: exit 0" 0
expect_in "--volume SRC:/data is visible at /data" "$out" "in-volume"
[ "$(cat "$scratch/vol/new.txt" 2>&1)" = from-guest ] && pass "what the guest writes there lands in SRC" ||
	fail "what the guest writes there lands in SRC" "$(ls -l "$scratch/vol" 2>&1)"
expect_in "a DST through a rootfs symlink (/var/run -> /run) lands inside the rootfs" "$out" "second"
[ -d "$root/run/app" ] && pass "its mount point was made in the rootfs" ||
	fail "its mount point was made in the rootfs" "$(ls -la "$root" 2>&1)"

run_capture vm --volume "$scratch/rovol:/ro:ro" -- \
	sh -c 'cat /ro/r.txt; echo bad >/ro/r.txt; touch /ro/new; mkdir /ro/dir; exit 3'
expect_rc "an :ro volume: the command still runs (exit 3)" 3
expect_in "it is readable" "$out" "read-only"
expect_in "writes are refused with EROFS" "$err" "Read-only file system"
[ "$(cat "$scratch/rovol/r.txt")" = read-only ] && [ "$(ls "$scratch/rovol")" = r.txt ] &&
	pass "the host dir is unchanged" || fail "the host dir is unchanged" "$(ls -l "$scratch/rovol")"

run_capture vm --volume "$scratch/none:/y" -- true
expect_rc "--volume of a missing dir: an error before boot" 1 &&
	expect_in "naming the flag and the reason" "$err" "--volume $scratch/none:/y: $scratch/none: No such file or directory"

# --- a read-only rootfs ------------------------------------------------------------------
run_capture vm --readonly -- sh -c 'cat /etc/greeting; touch /tmp/ro-test; echo x >/etc/greeting; mkdir /newdir'
expect_in "--readonly: the rootfs reads" "$out" "hello from the host"
expect_in "--readonly: writes are refused with EROFS" "$err" "Read-only file system"
[ ! -e "$root/tmp/ro-test" ] && [ ! -e "$root/newdir" ] && [ "$(cat "$root/etc/greeting")" = "hello from the host" ] &&
	pass "--readonly: nothing changed on the host" || fail "--readonly: nothing changed on the host"

# --- cache modes ---------------------------------------------------------------------------
# With the writeback cache the guest's page cache holds the writes: they must
# reach the host before the VM is gone (the agent syncs on power-off).
run_capture vm --fs-cache always --fs-writeback -- \
	sh -c 'dd if=/dev/urandom of=/tmp/big bs=1M count=8 2>/dev/null && sha256sum /tmp/big'
expect_rc "--fs-cache always --fs-writeback: 8 MiB written, exit 0" 0
guest_sum=${out%% *}
host_sum=$(sha256sum "$root/tmp/big" 2>/dev/null | cut -d' ' -f1)
[ -n "$guest_sum" ] && [ "$guest_sum" = "$host_sum" ] && pass "the file is whole on the host once the VM is gone" ||
	fail "the file is whole on the host once the VM is gone" "guest $guest_sum host $host_sum"
echo changed-by-host >"$root/etc/greeting"
run_capture vm --fs-cache none -- cat /etc/greeting
[ "$out" = changed-by-host ] && pass "--fs-cache none: the guest reads what the host wrote" ||
	fail "--fs-cache none: the guest reads what the host wrote" "stdout: $out" "stderr: $err"

# --- a few thousand files: tar in, checksums out -------------------------------------------
# The first TAR_ENTRIES entries of /usr/share/doc in C order (a prefix keeps
# every entry's parents), files under 64 KiB: every create, write and setattr
# is a FUSE round trip, and in nested emulation each costs ~15 ms: 2500
# entries took 250 s of CI's 90 minutes, 1200 take half that.
TAR_ENTRIES=1200
(cd /usr/share && find doc \( -type f -size +63k \) -prune -o -print | LC_ALL=C sort |
	head -n "$TAR_ENTRIES") >"$scratch/doc.list"
tar -C /usr/share --no-recursion -cf "$root/doc.tar" -T "$scratch/doc.list"
# Regular files of the list, NUL-separated: their sums and their count.
(cd /usr/share && while IFS= read -r p; do [ -f "$p" ] && [ ! -L "$p" ] && printf '%s\0' "$p"; done \
	<"$scratch/doc.list") >"$scratch/doc.files"
nfiles=$(tr -cd '\0' <"$scratch/doc.files" | wc -c)
(cd /usr/share && xargs -0 sha256sum <"$scratch/doc.files" | LC_ALL=C sort) >"$scratch/doc.want"
start=$SECONDS
# --debug: if it stalls, --timeout logs the queues, the busy workers and the vCPUs.
"$runvm" --debug boot --kernel "$kernel" --initrd "$initrd" --timeout 360 --rootfs "$root" -- \
	sh -c 'cd /tmp && tar -xf /doc.tar && find doc -type f -exec sha256sum {} + >/tmp/doc.sums' \
	>"$scratch/tar.out" 2>"$scratch/tar.err"
rc=$?
[ $rc = 0 ] && pass "tar -xf of $(wc -l <"$scratch/doc.list") entries ($nfiles files) in the guest: exit 0 ($((SECONDS - start)) s)" ||
	fail "tar -xf of $(wc -l <"$scratch/doc.list") entries in the guest" "rc=$rc" \
		"$(grep -E 'runvm|virtio|vsock|vCPU' "$scratch/tar.err" | tail -n 40)"
LC_ALL=C sort "$root/tmp/doc.sums" 2>/dev/null | cmp -s - "$scratch/doc.want" &&
	pass "the guest's sha256 of every file matches the host's" ||
	fail "the guest's sha256 of every file matches the host's" \
		"$(LC_ALL=C sort "$root/tmp/doc.sums" 2>&1 | diff - "$scratch/doc.want" | head -n 6)"
(cd "$root/tmp" && find doc | LC_ALL=C sort) | cmp -s - "$scratch/doc.list" &&
	pass "every file, dir and link is on the host" ||
	fail "every file, dir and link is on the host" \
		"$( (cd "$root/tmp" && find doc | LC_ALL=C sort) | diff - "$scratch/doc.list" | head -n 6)"
links_want=$(cd /usr/share && while IFS= read -r p; do [ -L "$p" ] && echo "$p $(readlink "$p")"; done \
	<"$scratch/doc.list" | LC_ALL=C sort)
links_got=$(cd "$root/tmp" && find doc -type l -printf '%p %l\n' | LC_ALL=C sort)
[ "$links_got" = "$links_want" ] && pass "symlinks keep their targets" ||
	fail "symlinks keep their targets" "$(diff <(echo "$links_got") <(echo "$links_want") | head -n 6)"

left=$(pgrep -f "$runvm boot" || true)
[ -z "$left" ] && pass "no VMM left running" || fail "no VMM left running" "pids: $left"
summary
