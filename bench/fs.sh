#!/usr/bin/env bash
# virtio-fs benchmark (issue 6; targets in DESIGN §9). Two parts:
#
# (b) host: the same workloads on a host directory natively, through our FUSE
#     server on /dev/fuse (build/tests/fs-mount) and through Debian's bindfs
#     (libfuse passthrough, --multithreaded) over the same directory:
#     sequential write (dd bs=1M conv=fsync) and read (dd, page cache dropped
#     first), random 4 KiB reads (fio randread, page cache dropped first),
#     stat of NFILES files (du -s after dropping dentries and inodes), untar of
#     a TREE_FILES-file tree (build/bench/fs-tree.tar: /usr/share files plus
#     generated small ones, made once) and rm -rf of it.
# (a) guest: the same busybox commands in a VM over one host directory, under
#     runvm (virtio-fs, `runvm boot --rootfs`) and under QEMU -M microvm with
#     virtio-9p, same kernel, same KVM, timed inside the guest. In the testbed
#     (tests/testbed/run) when this host's KVM cannot boot guests; there only
#     the ratio means anything. The 9p half prints n/a when the guest kernel
#     has no 9p.
#
# Peers are interleaved RUNS times; medians reported. Every metric has one line
# with all its numbers; the last line is
#   fs: seq_read_vs_native=… untar_vs_9p=… untar_vs_bindfs=…
# where each ratio is theirs/ours in time (ours/theirs in throughput): higher
# is better for runvm. seq_read_vs_native is our FUSE mount against the host
# directory itself (DESIGN §9: VMM-side throughput is measured on the host).
#
# usage: bench/fs.sh [--host-only]      (needs root)
#   --host-only   part (b) only; untar_vs_9p is then n/a
#   --guest       (internal) part (a) only, where guests can boot
# env (defaults in parentheses):
#   RUNS (3), SIZE_MIB (1024), NFILES (100000), TREE_FILES (50000), RAND_SECS
#     (10: fio's runtime);
#   BACKING (tmpfs: the shared directories are tmpfs mounts, so that the disk,
#     a noisy virtual one on our machines, stays out of the ratios; disk:
#     plain directories under build/bench);
#   for the guests, nested in the testbed and far slower there (a 9p untar of
#     300 files took 10 min on a loaded machine): GUEST_SIZE_MIB (16),
#     GUEST_NFILES (500), GUEST_TREE_FILES (200), GUEST_RUNS (RUNS),
#     GUEST_PEERS ("virtio-fs 9p", or one of them), GUEST_9P_OPTS (the 9p
#     mount's options: trans=virtio,version=9p2000.L,msize=512000, so the
#     kernel's cache=none; virtio-fs runs at runvm's default, --fs-cache auto),
#     KERNEL, KERNEL_9P (the guests' kernels: build/share/runvm/vmlinux both),
#     RUNVM (build/bin/runvm).
# A smoke run (host part < 2 min; the guests take longer in a busy testbed):
#   RUNS=1 SIZE_MIB=64 NFILES=2000 TREE_FILES=2000 GUEST_SIZE_MIB=4 \
#     GUEST_NFILES=100 GUEST_TREE_FILES=50 bench/fs.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=all
case "${1:-}" in
"") ;;
--host-only) mode=host ;;
--guest) mode=guest ;;
*) echo "usage: bench/fs.sh [--host-only]" >&2; exit 2 ;;
esac
runs=${RUNS:-3} size_mib=${SIZE_MIB:-1024} nfiles=${NFILES:-100000}
tree_files=${TREE_FILES:-50000} rand_secs=${RAND_SECS:-10} backing=${BACKING:-tmpfs}
g_size_mib=${GUEST_SIZE_MIB:-16} g_nfiles=${GUEST_NFILES:-500} g_tree_files=${GUEST_TREE_FILES:-200}
g_runs=${GUEST_RUNS:-$runs} peers=${GUEST_PEERS:-virtio-fs 9p}
p9_opts=${GUEST_9P_OPTS:-trans=virtio,version=9p2000.L,msize=512000}
case "$backing" in tmpfs|disk) ;; *) echo "fs bench: BACKING=tmpfs or disk" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "fs bench: needs root (mounts, /dev/fuse, drop_caches)" >&2; exit 1; }

bench_dir=$top/build/bench
declare -A res   # metric.peer -> median
mkdir -p "$bench_dir"

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "n/a"; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# ratio A B: A/B to 2 places, n/a when either is missing or B is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "n/a" || b == "n/a" || a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b}'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f\n", b - a}'; }
mibs() { awk -v m="$1" -v s="$2" 'BEGIN {if (s + 0 == 0) print "n/a"; else printf "%.1f\n", m / s}'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# make_tree N OUT: a tar of N files, half regular files from /usr/share (real
# names, sizes and depths), half generated small files (0..8 KiB, 100 a
# directory). Deterministic; made once per N.
make_tree() {
	local n=$1 out=$2
	[ -s "$out" ] && return 0
	echo "fs bench: making the $n-file tree $out (once)" >&2
	python3 - "$n" "$out.tmp" <<-'EOF'
	import io, os, sys, tarfile
	n, out = int(sys.argv[1]), sys.argv[2]
	real = []
	for d, dirs, files in os.walk("/usr/share"):
	    dirs.sort()
	    for f in sorted(files):
	        p = os.path.join(d, f)
	        try:
	            st = os.lstat(p)
	        except OSError:
	            continue
	        if os.path.isfile(p) and not os.path.islink(p) and st.st_size < (1 << 20):
	            real.append(p)
	        if len(real) >= n // 2:
	            break
	    if len(real) >= n // 2:
	        break
	with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
	    def norm(ti):
	        ti.uid = ti.gid = 0
	        ti.uname = ti.gname = "root"
	        ti.mtime = 1700000000
	        return ti
	    for p in real:
	        t.add(p, arcname="tree" + p, recursive=False, filter=norm)
	    for i in range(n - len(real)):
	        data = (b"%07d " % i) * ((i * 2654435761) % 1024)
	        ti = tarfile.TarInfo("tree/gen/d%03d/f%05d.txt" % (i // 100, i))
	        ti.size = len(data)
	        t.addfile(norm(ti), io.BytesIO(data))
	EOF
	mv "$out.tmp" "$out"
}
tree_tar() { [ "$1" = 50000 ] && echo "$bench_dir/fs-tree.tar" || echo "$bench_dir/fs-tree-$1.tar"; }

# --- (b) the host part ------------------------------------------------------------
host_part() {
	work=$bench_dir/fs-work
	data=$work/data mnt_ours=$work/mnt-runvm mnt_bindfs=$work/mnt-bindfs
	local tar
	pids=()
	tar=$(tree_tar "$tree_files")
	make -s -C "$top" build/tests/fs-mount
	command -v bindfs >/dev/null || { echo "fs bench: bindfs missing (scripts/install-deps.sh)" >&2; return 1; }
	command -v fio >/dev/null || { echo "fs bench: fio missing (scripts/install-deps.sh)" >&2; return 1; }
	make_tree "$tree_files" "$tar"

	# Every mount goes and every server exits on any way out.
	host_cleanup() {
		local m p
		for m in "$mnt_ours" "$mnt_bindfs"; do
			if mountpoint -q "$m" 2>/dev/null; then umount "$m" 2>/dev/null || umount -l "$m" || true; fi
		done
		for p in "${pids[@]}"; do
			kill "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		done
		pids=()
		if mountpoint -q "$work" 2>/dev/null; then umount "$work" 2>/dev/null || umount -l "$work" || true; fi
	}
	trap host_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	host_cleanup
	rm -rf "$work"
	mkdir -p "$work"
	[ "$backing" = tmpfs ] && mount -t tmpfs -o mode=0755 fs-bench "$work"
	mkdir -p "$data" "$mnt_ours" "$mnt_bindfs"
	# The stat set: made natively once, walked by each peer.
	mkdir "$data/many"
	(cd "$data/many" && seq -f 'f%06.0f' 1 "$nfiles" | xargs touch)

	wait_mounted() {   # MNT PID LOG
		for _ in $(seq 100); do
			mountpoint -q "$1" && return 0
			kill -0 "$2" 2>/dev/null || break
			sleep 0.05
		done
		echo "fs bench: mount on $1 failed:" >&2
		cat "$3" >&2
		return 1
	}
	# mount PEER: sets dir to where the workload runs.
	mount_peer() {
		case "$1" in
		native) dir=$data ;;
		runvm)
			"$top/build/tests/fs-mount" "$data" "$mnt_ours" >"$work/fs-mount.log" 2>&1 &
			pids+=($!)
			wait_mounted "$mnt_ours" "$!" "$work/fs-mount.log"
			dir=$mnt_ours/rootfs ;;
		bindfs)
			bindfs -f --no-allow-other --multithreaded "$data" "$mnt_bindfs" >"$work/bindfs.log" 2>&1 &
			pids+=($!)
			wait_mounted "$mnt_bindfs" "$!" "$work/bindfs.log"
			dir=$mnt_bindfs ;;
		esac
	}
	unmount_peer() {
		case "$1" in
		runvm) umount "$mnt_ours" ;;
		bindfs) fusermount -u "$mnt_bindfs" 2>/dev/null || umount "$mnt_bindfs" ;;
		esac
		local p
		for p in "${pids[@]}"; do wait "$p" || echo "fs bench: $1's server exited with $?" >&2; done
		pids=()
	}

	# checked CMD...: CMD, its errors cut to three lines.
	checked() {
		"$@" 2>"$work/err" && return 0
		local rc=$?
		head -n 3 "$work/err" >&2
		echo "fs bench: '$*' failed with status $rc ($(wc -l <"$work/err") lines of errors)" >&2
		return "$rc"
	}

	# One run of every workload on PEER; prints "PEER key=value...".
	workload() {
		local peer=$1 dir t w r rand stat untar rm_s
		mount_peer "$peer"
		drop_caches
		t=$(now)
		dd if=/dev/zero of="$dir/big" bs=1M count="$size_mib" conv=fsync status=none
		w=$(since "$t")
		drop_caches
		t=$(now)
		dd if="$dir/big" of=/dev/null bs=1M status=none
		r=$(since "$t")
		drop_caches
		rand=$(fio --name=rand --filename="$dir/big" --rw=randread --bs=4k --ioengine=psync \
			--size="${size_mib}M" --runtime="$rand_secs" --time_based --output-format=json |
			python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["jobs"][0]["read"]["iops"])')
		rm -f "$dir/big"
		drop_caches
		t=$(now)
		checked du -s "$dir/many" >/dev/null
		stat=$(since "$t")
		drop_caches             # the stat set's inodes are forgotten
		cat "$tar" >/dev/null   # the tarball itself is read from the page cache
		mkdir "$dir/untar"
		t=$(now)
		checked tar -xf "$tar" -C "$dir/untar"
		untar=$(since "$t")
		sync
		t=$(now)
		rm -rf "$dir/untar"
		rm_s=$(since "$t")
		unmount_peer "$peer"
		echo "$peer write_mibs=$(mibs "$size_mib" "$w") read_mibs=$(mibs "$size_mib" "$r")" \
			"rand_iops=$rand stat_s=$stat untar_s=$untar rm_s=$rm_s"
	}

	local out=$bench_dir/fs-host-results.txt i peer
	: >"$out"
	echo "fs bench (host): $runs runs; ${size_mib} MiB file, $nfiles files to stat," \
		"$tree_files-file tree, on $backing ($work)"
	for i in $(seq "$runs"); do
		for peer in native runvm bindfs; do
			workload "$peer" >"$work/line"   # not in a pipe: the traps must see its mounts
			cat "$work/line" >>"$out"
			sed "s/^/run $i: /" "$work/line"
		done
	done
	host_cleanup
	trap - EXIT INT TERM
	rm -rf "$work"

	m() { awk -v p="$1" '$1 == p' "$out" | tr ' ' '\n' | sed -n "s/^$2=//p" | median; }
	local k n_v o_v b_v unit label r1 r2
	for k in write_mibs read_mibs rand_iops stat_s untar_s rm_s; do
		n_v=$(m native "$k") o_v=$(m runvm "$k") b_v=$(m bindfs "$k")
		case "$k" in
		*_mibs) unit="MiB/s"; r1=$(ratio "$o_v" "$n_v") r2=$(ratio "$o_v" "$b_v") ;;
		*_iops) unit="IOPS"; r1=$(ratio "$o_v" "$n_v") r2=$(ratio "$o_v" "$b_v") ;;
		*) unit="s"; r1=$(ratio "$n_v" "$o_v") r2=$(ratio "$b_v" "$o_v") ;;
		esac
		case "$k" in
		write_mibs) label=seq_write ;; read_mibs) label=seq_read ;; rand_iops) label=randread_4k ;;
		*) label=${k%_s} ;;
		esac
		printf 'host %-12s native=%s runvm=%s bindfs=%s %s  (runvm vs native %s, vs bindfs %s)\n' \
			"$label:" "$n_v" "$o_v" "$b_v" "$unit" "$r1" "$r2"
		res[$k.native]=$n_v res[$k.runvm]=$o_v res[$k.bindfs]=$b_v
	done
}

# --- (a) the guest part -----------------------------------------------------------
# The workload both guests run, chrooted in the shared directory, with the
# same busybox: timed inside the guest from /proc/uptime (10 ms steps; busybox
# date has no %N). Prints one "guest-fs: ..." line.
guest_workload() {
	cat <<-'EOF'
	#!/bin/sh
	# Made by bench/fs.sh: the guest workload. usage: /bench.sh SIZE_MIB
	set -eu
	size=$1 step=start
	trap '[ "$step" = done ] || { echo "bench.sh: failed at $step" >&2; cat /tmp/dd.err >&2; }' EXIT
	now() { read -r up _ </proc/uptime; echo "$up"; }
	at() { step=$1; echo "bench.sh: $1 at $(now)" >&2; }   # progress, for a run that hangs
	since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
	drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
	# The tarball in guest memory, so untar times only the writes; where
	# tmpfs cannot be mounted, both peers read it through the file system.
	tar_src=/tree.tar
	if mount -t tmpfs tmpfs /tmp 2>/dev/null; then cp /tree.tar /tmp/tree.tar; tar_src=/tmp/tree.tar; fi
	rm -rf /work/big /work/untar
	at drop; drop
	at write; t=$(now); dd if=/dev/zero of=/work/big bs=1M count="$size" conv=fsync 2>/tmp/dd.err; w=$(since "$t")
	drop
	at read; t=$(now); dd if=/work/big of=/dev/null bs=1M 2>/tmp/dd.err; r=$(since "$t")
	rm /work/big
	drop
	at stat; t=$(now); du -s /work/many >/dev/null; st=$(since "$t")
	drop
	mkdir /work/untar
	at untar; t=$(now); tar -xf "$tar_src" -C /work/untar; u=$(since "$t")
	sync
	at rm; t=$(now); rm -rf /work/untar; rm_s=$(since "$t")
	[ "$tar_src" = /tree.tar ] || umount /tmp
	step=done
	echo "guest-fs: write_s=$w read_s=$r stat_s=$st untar_s=$u rm_s=$rm_s tar_from=${tar_src%/tree.tar}"
	EOF
}

# has_9p KERNEL: a vmlinux with the 9p client and its virtio transport; for
# a compressed bzImage, the .config kept next to it by build-kernel.sh says.
has_9p() {
	local config
	config=$(dirname "$1")/obj/.config
	if [ -f "$config" ]; then
		grep -qx CONFIG_NET_9P_VIRTIO=y "$config" && grep -qx CONFIG_9P_FS=y "$config"
	else
		grep -qaF 9p2000.L "$1"
	fi
}

guest_part() {
	g=$bench_dir/fs-guest share=$bench_dir/fs-guest/share   # the EXIT trap's too
	local kernel=${KERNEL:-$top/build/share/runvm/vmlinux}
	local initrd=$top/build/share/runvm/initramfs.img
	local kernel_9p=${KERNEL_9P:-$kernel} initrd_9p=$g/initramfs-9p.cpio
	local rootfs=$share/rootfs tar have_9p=1 a
	tar=$(tree_tar "$g_tree_files")
	make_tree "$g_tree_files" "$tar"
	if ! has_9p "$kernel_9p"; then
		echo "fs bench (guest): $kernel_9p has no 9p (CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS): the 9p half is n/a"
		have_9p=0
	elif [ "$kernel_9p" != "$kernel" ]; then
		echo "fs bench (guest): WARNING: 9p runs on $kernel_9p, not $kernel: the untar ratio compares kernels too"
	fi

	vm_pid=
	guest_cleanup() {
		if [ -n "$vm_pid" ]; then kill "$vm_pid" 2>/dev/null || true; wait "$vm_pid" 2>/dev/null || true; fi
		if mountpoint -q "$share" 2>/dev/null; then umount "$share" 2>/dev/null || umount -l "$share" || true; fi
	}
	trap guest_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	guest_cleanup
	rm -rf "$g"
	mkdir -p "$share"
	[ "$backing" = tmpfs ] && mount -t tmpfs -o mode=0755 fs-bench-guest "$share"

	# The shared directory: a busybox rootfs holding the workload, the
	# tarball and the files to stat.
	mkdir -p "$rootfs"/{bin,proc,dev,sys,tmp,work/many}
	cp /bin/busybox "$rootfs/bin/busybox"
	for a in $("$rootfs/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"
	done
	guest_workload >"$rootfs/bench.sh"
	cp "$tar" "$rootfs/tree.tar"
	(cd "$rootfs/work/many" && seq -f 'f%06.0f' 1 "$g_nfiles" | xargs touch)

	# The 9p guest's initramfs: mount the tag, then the chroot runvm's agent
	# makes (/proc, the guest's /dev).
	if [ "$have_9p" = 1 ]; then
		local ir=$g/initramfs-9p
		mkdir -p "$ir"/{bin,dev,proc,mnt}
		cp /bin/busybox "$ir/bin/busybox"
		# No /dev/console in the archive (no mknod on the testbed's 9p
		# checkout): the kernel's devtmpfs gives one.
		cat >"$ir/bench-init" <<-EOF
		#!/bin/busybox sh
		export PATH=/bin
		/bin/busybox mount -t devtmpfs dev /dev
		exec </dev/console >/dev/console 2>&1
		/bin/busybox mount -t 9p -o $p9_opts bench /mnt &&
		/bin/busybox mount -t proc proc /mnt/proc &&
		/bin/busybox mount -o bind /dev /mnt/dev &&
		/bin/busybox chroot /mnt /bin/sh /bench.sh $g_size_mib
		echo "bench-init: exit \$?"
		/bin/busybox reboot -f   # microvm,acpi=off cannot power off; -no-reboot quits
		EOF
		chmod +x "$ir/bench-init"
		(cd "$ir" && find . | cpio --quiet -o -H newc -R 0:0 >"$initrd_9p")
	fi

	# runvm's cmdline (vmm/vm.c) but reboot=t: QEMU's microvm has no 8042 to
	# reset it, and the kernel's next try, the BIOS, boots qboot again.
	local cmdline="console=ttyS0 reboot=t panic=-1 nomodule 8250.nr_uarts=1 i8042.noaux i8042.nomux"
	cmdline+=" i8042.dumbkbd io_delay=none tsc=reliable no_timer_check loglevel=1 rdinit=/bench-init"
	# run_vm NAME CMD...: boots, sets line to the guest's "guest-fs:" line.
	# Not in a pipe or $(...): the EXIT trap must know the VMM's pid. A
	# guest that printed nothing (in a busy testbed, runvm's agent has missed
	# its 120 s to come up) gets one more try, said on stderr.
	run_vm() {
		local name=$1 try
		shift
		for try in 1 2; do
			timeout 1500 "$@" </dev/null >"$g/$name.out" 2>&1 &
			vm_pid=$!
			wait "$vm_pid" || true
			vm_pid=
			line=$(grep -a '^guest-fs:' "$g/$name.out" | tr -d '\r') && return 0
			echo "fs bench (guest): the $name guest printed no result (try $try of 2):" >&2
			tail -20 "$g/$name.out" >&2
		done
		return 1
	}
	local runvm_cmd=("${RUNVM:-$top/build/bin/runvm}" boot --kernel "$kernel" --initrd "$initrd"
		--total-memory 256M --rootfs "$rootfs" -- /bin/sh /bench.sh "$g_size_mib")
	local qemu_cmd=(qemu-system-x86_64 -M "microvm,acpi=off,x-option-roms=off" -enable-kvm -cpu host
		-smp 1 -m 256M -nodefaults -no-user-config -display none -monitor none -serial stdio
		-no-reboot -kernel "$kernel_9p" -initrd "$initrd_9p" -append "$cmdline"
		-fsdev "local,id=fs0,path=$rootfs,security_model=passthrough"
		-device "virtio-9p-device,fsdev=fs0,mount_tag=bench")

	local out=$bench_dir/fs-guest-results.txt i line
	: >"$out"
	echo "fs bench (guest): $g_runs runs; ${g_size_mib} MiB file, $g_nfiles files to stat," \
		"$g_tree_files-file tree, shared directory on $backing; 1 vCPU, 256 MiB each; 9p: $p9_opts"
	for i in $(seq "$g_runs"); do
		if [[ " $peers " == *" virtio-fs "* ]]; then
			drop_caches
			run_vm virtio-fs "${runvm_cmd[@]}"
			echo "virtio-fs ${line#guest-fs: }" >>"$out"
			echo "run $i: virtio-fs ${line#guest-fs: }"
		fi
		if [ "$have_9p" = 1 ] && [[ " $peers " == *" 9p "* ]]; then
			drop_caches
			run_vm 9p "${qemu_cmd[@]}"
			echo "9p ${line#guest-fs: }" >>"$out"
			echo "run $i: 9p ${line#guest-fs: }"
		fi
	done
	guest_cleanup
	trap - EXIT INT TERM
	rm -rf "$g"

	m() { awk -v p="$1" '$1 == p' "$out" | tr ' ' '\n' | sed -n "s/^$2=//p" | median; }
	local k v n
	for k in write_s read_s stat_s untar_s rm_s; do
		v=$(m virtio-fs "$k") n=$(m 9p "$k")
		case "$k" in
		write_s|read_s)
			printf 'guest %-10s virtio-fs=%s 9p=%s MiB/s  (virtio-fs vs 9p %s)\n' "seq_${k%_s}:" \
				"$(mibs "$g_size_mib" "$v")" "$(mibs "$g_size_mib" "$n")" "$(ratio "$n" "$v")" ;;
		*)
			printf 'guest %-10s virtio-fs=%s 9p=%s s  (virtio-fs vs 9p %s)\n' "${k%_s}:" "$v" "$n" \
				"$(ratio "$n" "$v")" ;;
		esac
	done
	echo "guest-fs: untar_vs_9p=$(ratio "$(m 9p untar_s)" "$(m virtio-fs untar_s)")"
}

if [ "$mode" = guest ]; then
	guest_part
	exit
fi

"$top/scripts/install-deps.sh"
host_part
seq_read_vs_native=$(ratio "${res[read_mibs.runvm]}" "${res[read_mibs.native]}")
untar_vs_bindfs=$(ratio "${res[untar_s.bindfs]}" "${res[untar_s.runvm]}")
untar_vs_9p=n/a guest_rc=0
if [ "$mode" = all ]; then
	make -s -C "$top" build/bin/runvm guest-kernel build/share/runvm/initramfs.img
	if build/bin/runvm features | grep -q '"io.runvm.kvm.bootable": "true"'; then
		echo "fs bench: the guest part on this host's hardware KVM"
		guest_cmd=("$0" --guest)
	else
		echo "fs bench: the guest part in the testbed (this host's KVM cannot boot guests); its numbers are for ratios only"
		guest_cmd=("$top/tests/testbed/run" --cpus 2 --memory 4G --timeout 4800 -- "$0" --guest)
	fi
	"${guest_cmd[@]}" 2>&1 | tee "$bench_dir/fs-guest.log" || guest_rc=$?
	untar_vs_9p=$(sed -n 's/^guest-fs: untar_vs_9p=//p' "$bench_dir/fs-guest.log" | tail -n 1)
	[ -n "$untar_vs_9p" ] || untar_vs_9p=n/a
	[ "$guest_rc" = 0 ] || echo "fs bench: the guest part failed (exit status $guest_rc)" >&2
fi
echo "fs: seq_read_vs_native=$seq_read_vs_native untar_vs_9p=$untar_vs_9p untar_vs_bindfs=$untar_vs_bindfs"
exit "$guest_rc"
