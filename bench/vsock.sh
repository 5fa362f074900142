#!/usr/bin/env bash
# vsock benchmark: guest->host and host->guest throughput and the median round
# trip of a 64-byte message, through runvm's userspace vsock muxer and through
# QEMU's in-kernel vhost-vsock (-M microvm -device vhost-vsock-device), with the
# same kernel, the same agent and the same client code (bench/vsock_bench.c):
# only the transport differs. Interleaved RUNS times; medians reported. Runs in
# the testbed when this host's KVM cannot boot guests.
# Last line: vsock: runvm_mibs=… vhost_mibs=… ratio=… rtt_ratio=…
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
runs=${RUNS:-3} mib=${MIB:-64} rounds=${ROUNDS:-500}

if [ "${1:-}" != --here ]; then
	"$top/scripts/install-deps.sh"
	make -s -C "$top" all >/dev/null
	if build/bin/runvm features | grep -q '"io.runvm.kvm.bootable": "true"'; then
		echo "vsock bench: on this host's hardware KVM"
		exec "$0" --here
	fi
	echo "vsock bench: in the testbed (this host's KVM cannot boot guests); numbers are for ratios only"
	exec "$top/tests/testbed/run" --cpus 2 --memory 4G --timeout 3000 -- "$0" --here
fi

bench=$top/build/bench/vsock-bench
kernel=$top/build/share/runvm/vmlinux
initrd=$top/build/tests/agent-busybox.cpio
cid=42
# The cmdline runvm gives its guest (vmm/vm.c); QEMU's microvm announces its
# own virtio-mmio windows on top of it.
cmdline="console=ttyS0 reboot=k panic=-1 nomodule 8250.nr_uarts=1 i8042.noaux i8042.nomux"
cmdline+=" i8042.dumbkbd io_delay=none tsc=reliable no_timer_check rdinit=/init loglevel=1"
qemu_args=(-M microvm,acpi=off,x-option-roms=off -enable-kvm -cpu host -smp 2
	-object memory-backend-memfd,id=ram,size=512M -m 512M -machine memory-backend=ram
	-nodefaults -no-user-config -nographic -no-reboot -serial none
	-device vhost-vsock-device,guest-cid=$cid -kernel "$kernel" -initrd "$initrd" -append "$cmdline")

run_vhost() {
	timeout 600 qemu-system-x86_64 "${qemu_args[@]}" >/dev/null 2>&1 & local q=$!
	"$bench" --vhost-cid "$cid" --mib "$mib" --rounds "$rounds" || { kill "$q" 2>/dev/null; return 1; }
	wait "$q" || true
}

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

rv=() vh=()
for i in $(seq "$runs"); do
	rv+=("$("$bench" --runvm --kernel "$kernel" --initrd "$initrd" --mib "$mib" --rounds "$rounds")")
	echo "run $i: ${rv[-1]}"
	vh+=("$(run_vhost)")
	echo "run $i: ${vh[-1]}"
done
m() { local -n lines=$1; printf '%s\n' "${lines[@]}" | field "$2" | median; }
rv_g2h=$(m rv g2h_mibs) rv_h2g=$(m rv h2g_mibs) rv_rtt=$(m rv rtt_us)
vh_g2h=$(m vh g2h_mibs) vh_h2g=$(m vh h2g_mibs) vh_rtt=$(m vh rtt_us)
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "runvm muxer:  guest->host ${rv_g2h} MiB/s, host->guest ${rv_h2g} MiB/s, 64-byte round trip ${rv_rtt} us (median of $runs runs, $mib MiB, $rounds round trips)"
echo "vhost-vsock:  guest->host ${vh_g2h} MiB/s, host->guest ${vh_h2g} MiB/s, 64-byte round trip ${vh_rtt} us"
echo "per direction: g2h_ratio=$(ratio "$rv_g2h" "$vh_g2h") h2g_ratio=$(ratio "$rv_h2g" "$vh_h2g")"
rv_mibs=$(echo "scale=1; ($rv_g2h + $rv_h2g) / 2" | bc)
vh_mibs=$(echo "scale=1; ($vh_g2h + $vh_h2g) / 2" | bc)
echo "vsock: runvm_mibs=$rv_mibs vhost_mibs=$vh_mibs ratio=$(ratio "$rv_mibs" "$vh_mibs") rtt_ratio=$(ratio "$rv_rtt" "$vh_rtt")"
