#!/usr/bin/env bash
# Boot benchmark (DESIGN §9): the same kernel and trivial initramfs booted by
# runvm and by QEMU -M microvm on the same KVM, interleaved, RUNS times each.
# Prints median wall time from process start to exit, the VMM's own RSS (guest
# RAM excluded: both keep it in a memfd, counted as RssShmem) and runvm's CPU
# time before its first KVM_RUN. Runs in the testbed when this host's KVM cannot
# boot guests. Last line: boot: runvm_ms=… qemu_ms=… ratio=…
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
runs=${RUNS:-20}
runvm=$top/build/bin/runvm
kernel=$top/build/share/runvm/vmlinux
initrd=$top/build/tests/payload-initramfs.cpio
qemu=qemu-system-x86_64

if [ "${1:-}" != --here ]; then
	"$top/scripts/install-deps.sh"
	make -s -C "$top" all >/dev/null
	if "$runvm" features | grep -q '"io.runvm.kvm.bootable": "true"'; then
		echo "boot bench: on this host's hardware KVM"
		exec "$0" --here
	fi
	echo "boot bench: in the testbed (this host's KVM cannot boot guests); times are for ratios only"
	exec "$top/tests/testbed/run" --cpus 2 --memory 4G --timeout 1800 -- "$0" --here
fi

# The cmdline runvm gives its guest (vmm/vm.c), so both boot the same way.
cmdline="console=ttyS0 reboot=k panic=-1 nomodule 8250.nr_uarts=1 i8042.noaux i8042.nomux"
cmdline+=" i8042.dumbkbd io_delay=none tsc=reliable no_timer_check rdinit=/init loglevel=1"

# Global runvm flags (the debug log) come in $rv_global, boot's own in "$@".
rv_global=()
run_runvm() { "$runvm" "${rv_global[@]}" boot --kernel "$kernel" --initrd "$initrd" --total-memory 256M --timeout 120 "$@"; }
# isa-debug-exit on the payload's status port ends QEMU as soon as the guest
# reports, slightly before the reset that ends runvm: the comparison favours QEMU.
qemu_args=(-M microvm,acpi=off,x-option-roms=off -enable-kvm -cpu host -smp 1
	-object memory-backend-memfd,id=ram,size=256M -m 256M -machine memory-backend=ram
	-nodefaults -no-user-config -nographic -no-reboot -serial none
	-device isa-debug-exit,iobase=0x4f0,iosize=4 -kernel "$kernel" -initrd "$initrd")
run_qemu() { timeout 120 "$qemu" "${qemu_args[@]}" -append "$cmdline $*"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

rv_times=() q_times=() cpu=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for i in $(seq "$runs"); do
	s=$(now_ms); rv_global=(--debug --log "$log"); run_runvm || echo "runvm boot $i failed" >&2; rv_global=()
	rv_times+=($(($(now_ms) - s)))
	s=$(now_ms); run_qemu >/dev/null 2>&1 || true; q_times+=($(($(now_ms) - s)))
done
cpu=$(sed -n 's/.*CPU ms before the first KVM_RUN: \([0-9.]*\).*/\1/p' "$log")

# RSS of each VMM with the guest booted and idle: started directly (not through a
# function or timeout(1)), so that $! is the VMM itself.
rss_kib() { awk '/^RssAnon|^RssFile/ {s += $2} END {print s}' "/proc/$1/status"; }
"$runvm" boot --kernel "$kernel" --initrd "$initrd" --total-memory 256M \
	--cmdline runvm_payload=hang & pid=$!
sleep "${RSS_SETTLE_S:-8}"; rv_rss=$(rss_kib "$pid"); kill "$pid"; wait "$pid" 2>/dev/null || true
"$qemu" "${qemu_args[@]}" -append "$cmdline runvm_payload=hang" >/dev/null 2>&1 & pid=$!
sleep "${RSS_SETTLE_S:-8}"; q_rss=$(rss_kib "$pid"); kill "$pid"; wait "$pid" 2>/dev/null || true

rv=$(printf '%s\n' "${rv_times[@]}" | median)
q=$(printf '%s\n' "${q_times[@]}" | median)
echo "runvm: median ${rv} ms over $runs boots (min $(printf '%s\n' "${rv_times[@]}" | sort -n | head -1))," \
	"VMM RSS without guest RAM ${rv_rss} KiB, CPU before first KVM_RUN: median $(echo "$cpu" | median) ms"
echo "qemu microvm: median ${q} ms over $runs boots (min $(printf '%s\n' "${q_times[@]}" | sort -n | head -1))," \
	"VMM RSS without guest RAM ${q_rss} KiB"
echo "boot: runvm_ms=$rv qemu_ms=$q ratio=$(echo "scale=2; $rv / $q" | bc) runvm_rss_kib=$rv_rss qemu_rss_kib=$q_rss"
