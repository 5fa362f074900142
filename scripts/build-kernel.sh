#!/usr/bin/env bash
# Build a Linux kernel from Debian's linux-source-6.12 with a config fragment applied
# on tinyconfig. Used for the guest kernel and the testbed's L2 kernel.
#
#   scripts/build-kernel.sh --fragment FILE --out DIR
#
# DIR gets bzImage, vmlinux and build.log. The build is skipped when the fragment,
# this script and the source package are unchanged since the last successful build.
# Environment: RUNVM_LINUX_SOURCE (tarball, default /usr/src/linux-source-6.12.tar.xz),
# RUNVM_SRC_DIR (where sources are unpacked, default build/src next to this repo).
set -euo pipefail

die() { echo "build-kernel: $*" >&2; exit 1; }

top=$(cd "$(dirname "$0")/.." && pwd)
fragment= out=
while [ $# -gt 0 ]; do
	case "$1" in
	--fragment) fragment=${2:?--fragment needs a file}; shift 2 ;;
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	*) die "unknown argument '$1' (usage: --fragment FILE --out DIR)" ;;
	esac
done
[ -n "$fragment" ] && [ -n "$out" ] || die "usage: build-kernel.sh --fragment FILE --out DIR"
[ -r "$fragment" ] || die "config fragment '$fragment' not found"
tarball=${RUNVM_LINUX_SOURCE:-/usr/src/linux-source-6.12.tar.xz}
[ -r "$tarball" ] || die "kernel source '$tarball' not found: run scripts/install-deps.sh (package linux-source-6.12)"

src_root=${RUNVM_SRC_DIR:-$top/build/src}
mkdir -p "$src_root" "$out"
fragment=$(cd "$(dirname "$fragment")" && pwd)/$(basename "$fragment")
out=$(cd "$out" && pwd)

# One build at a time per output dir, and one unpack at a time per source dir.
exec 8>"$out/.lock"
flock 8
exec 9>"$src_root/.lock"
flock 9

src_key="$(realpath "$tarball") $(stat -c '%s %Y' "$tarball")"
build_key=$( { echo "$src_key"; cat "$fragment" "$0"; } | sha256sum | cut -d' ' -f1)
if [ -f "$out/bzImage" ] && [ -f "$out/vmlinux" ] && [ "$(cat "$out/.key" 2>/dev/null)" = "$build_key" ]; then
	echo "build-kernel: $(basename "$out") is up to date"
	exit 0
fi

srcdir="$src_root/$(basename "$tarball" .tar.xz)"
if [ "$(cat "$srcdir/.runvm-source-key" 2>/dev/null)" != "$src_key" ]; then
	echo "build-kernel: unpacking $(basename "$tarball") ..."
	t0=$SECONDS
	rm -rf "$srcdir" "$srcdir.tmp"
	mkdir -p "$srcdir.tmp"
	tar -xf "$tarball" -C "$srcdir.tmp" --strip-components=1
	echo "$src_key" >"$srcdir.tmp/.runvm-source-key"
	mv "$srcdir.tmp" "$srcdir"
	echo "build-kernel: unpacked in $((SECONDS - t0)) s"
fi
flock -u 9

obj="$out/obj"
log="$out/build.log"
mkdir -p "$obj"
rm -f "$out/.key"
jobs=$(nproc)

echo "build-kernel: configuring $(basename "$out") (tinyconfig + $(basename "$fragment"))"
t0=$SECONDS
{
	make -C "$srcdir" O="$obj" tinyconfig &&
	"$srcdir/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$fragment" &&
	make -C "$srcdir" O="$obj" olddefconfig
} >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "configuring failed (full log: $log)"; }

# merge_config only warns when Kconfig drops an option (a missing dependency);
# a kernel without what we asked for fails much later and obscurely, so stop here.
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		grep -qxF "$line" "$obj/.config" || { echo "build-kernel: $line did not survive olddefconfig" >&2; missing=1; } ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		! grep -q "^$opt=" "$obj/.config" || { echo "build-kernel: $opt should be off but is set" >&2; missing=1; } ;;
	esac
done <"$fragment"
[ "$missing" = 0 ] || die "$(basename "$fragment") asks for options Kconfig refused (missing dependencies?); fix the fragment"

echo "build-kernel: compiling with $jobs jobs (log: $log) ..."
make -C "$srcdir" O="$obj" -j"$jobs" bzImage >>"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null' EXIT
while kill -0 "$pid" 2>/dev/null; do
	for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null && sleep 1; done
	if kill -0 "$pid" 2>/dev/null; then
		echo "build-kernel:   ... $((SECONDS - t0)) s, at: $(grep -E '^ +(CC|LD|AR|AS)' "$log" | tail -n 1 | sed 's/^ *//')"
	fi
done
if ! wait "$pid"; then
	trap - EXIT
	grep -E 'error|Error' "$log" | tail -n 10 >&2 || tail -n 20 "$log" >&2
	die "compiling $(basename "$out") failed (full log: $log)"
fi
trap - EXIT

cp "$obj/arch/x86/boot/bzImage" "$out/bzImage.tmp" && mv "$out/bzImage.tmp" "$out/bzImage"
cp "$obj/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
echo "$build_key" >"$out/.key"
echo "build-kernel: built $(basename "$out") in $((SECONDS - t0)) s ($(stat -c %s "$out/bzImage") bytes bzImage)"
