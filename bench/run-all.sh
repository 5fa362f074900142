#!/usr/bin/env bash
# Every benchmark, one after another (boot, lifecycle, exec, vsock, fs, net,
# density): each builds what it needs and goes to the testbed itself when this
# host's KVM cannot boot guests. Each one's whole output goes to
# bench/results/NAME.log; its last line (`NAME: key=value ...`) becomes rows of
# bench/results/latest.md: a Markdown table (bench, metric, value, and for a
# ratio which way is better, as the bench's own header says), under the
# machine it ran on (CPU, cores, memory, host kernel, where the guests ran),
# the date and the commit. bench/results/latest.png (gnuplot) is a bar chart of
# every ratio with a line at 1.0 (parity). The same machine line and table
# replace what README.md holds between <!-- bench:latest --> and
# <!-- /bench:latest --> (not after --only: a subset would drop the others).
#
# usage: bench/run-all.sh [--only NAME,NAME...] [--quick]     (root, as the benches)
#   --only    these benches alone, e.g. --only boot,density
#   --quick   small counts (QUICK=1 does the same): a smoke run of the whole set,
#             minutes on hardware KVM, an hour or more in the testbed
# A bench that fails gets a "failed" row naming its log; the rest still run,
# and the exit status is then 1 (2 for bad usage).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
all=(boot lifecycle exec vsock fs net density)
# The smoke counts, from each bench's header (its env knobs).
declare -A quick_env=(
	[boot]="RUNS=3"
	[lifecycle]="RUNS=3 IDLE_N=3"
	[exec]="RUNS=3"
	[vsock]="RUNS=1 MIB=16 ROUNDS=100"
	[fs]="RUNS=1 SIZE_MIB=64 NFILES=2000 TREE_FILES=2000 GUEST_SIZE_MIB=4 GUEST_NFILES=100 GUEST_TREE_FILES=50"
	[net]="RUNS=1 MIB=32 ROUNDS=200"
	[density]="N=10"
)
# Which way each ratio is better, as its bench defines it.
declare -A better=(
	[boot.ratio]="lower: runvm's boot time / QEMU microvm's"
	[lifecycle.ratio]="lower: runvm's run time / crun's"
	[exec.ratio]="lower: runvm's exec time / runc's"
	[vsock.ratio]="higher: runvm's throughput / vhost-vsock's"
	[vsock.rtt_ratio]="lower: runvm's round trip / vhost-vsock's"
	[fs.seq_read_vs_native]="higher: our FUSE server's read throughput / native"
	[fs.untar_vs_9p]="higher: 9p's untar time / virtio-fs's"
	[fs.untar_vs_bindfs]="higher: bindfs's untar time / ours"
	[net.ratio]="higher: runvm's throughput / a veth's"
)

usage() {
	echo "usage: bench/run-all.sh [--only NAME,NAME...] [--quick]   (NAME: ${all[*]})" >&2
	exit 2
}
only='' quick=${QUICK:-}
while [ $# -gt 0 ]; do
	case $1 in
	--only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
	--only=*) only=${1#--only=}; shift ;;
	--quick) quick=1; shift ;;
	-h | --help) usage ;;
	*) echo "run-all: unknown option '$1'" >&2; usage ;;
	esac
done
[ "$quick" != 0 ] || quick=
selected=("${all[@]}")
if [ -n "$only" ]; then
	IFS=, read -ra selected <<<"$only"
	for name in "${selected[@]}"; do
		[[ " ${all[*]} " == *" $name "* ]] ||
			{ echo "run-all: --only: no bench named '$name' (there are: ${all[*]})" >&2; exit 2; }
	done
fi

# The commit before anything runs; "+changes" when the tree differs from it
# other than in what this script writes.
commit=$(git -C "$top" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] &&
	! git -C "$top" diff --quiet HEAD -- . ':(exclude)bench/results' ':(exclude)README.md' 2>/dev/null; then
	commit+="+changes"
fi
date=$(date -u '+%Y-%m-%d %H:%M UTC')
"$top/scripts/install-deps.sh"   # gnuplot, for the plot
results=$top/bench/results
mkdir -p "$results"
rm -f "$results"/*.testbed-fault.log

# --- run them --------------------------------------------------------------------------
declare -A status line where retried
failed=0
for name in "${selected[@]}"; do
	log=$results/$name.log
	qenv=()
	[ -z "$quick" ] || read -ra qenv <<<"${quick_env[$name]}"
	echo "run-all: $name${qenv[*]:+ ${qenv[*]}} (output: bench/results/$name.log)"
	t0=$SECONDS st=0
	env "${qenv[@]}" "$top/bench/$name.sh" </dev/null >"$log" 2>&1 || st=$?
	# The testbed's own L2 froze (123) or its kernel panicked (125): QEMU's
	# emulation under our load, not the bench (tests/run-vm-tests.sh retries
	# the same). Once more, said in the log kept and in the table.
	if [ "$st" = 123 ] || { [ "$st" = 125 ] && grep -q '^testbed: L2 crashed' "$log"; }; then
		mv "$log" "$results/$name.testbed-fault.log"
		echo "run-all: $name: the testbed's L2 failed (exit $st, bench/results/$name.testbed-fault.log); once more"
		retried[$name]=1 st=0
		env "${qenv[@]}" "$top/bench/$name.sh" </dev/null >"$log" 2>&1 || st=$?
	fi
	line[$name]=$(grep -E "^$name: [A-Za-z0-9_]+=" "$log" | tail -n 1 || true)
	if [ "$st" != 0 ]; then st="exit $st"; elif [ -z "${line[$name]}" ]; then st="no '$name:' line"; fi
	status[$name]=$st
	# Each bench says where its guests run (bench/lib.sh, boot.sh, fs.sh...).
	if grep -Eq "^$name bench: (the guest part )?in the testbed" "$log"; then where[$name]=testbed
	elif grep -Eq "^$name bench: (the guest part )?on this host's hardware KVM" "$log"; then where[$name]=kvm
	else where[$name]=unknown; fi
	if [ "$st" = 0 ]; then
		echo "run-all: $name done in $((SECONDS - t0)) s: ${line[$name]}"
	else
		echo "run-all: $name FAILED ($st) after $((SECONDS - t0)) s; the end of bench/results/$name.log:" >&2
		tail -n 5 "$log" | sed 's/^/  /' >&2
		failed=$((failed + 1))
	fi
done

# --- the report ------------------------------------------------------------------------
# list WHERE: the benches whose guests ran there, comma-separated.
list() {
	local n out=
	for n in "${selected[@]}"; do [ "${where[$n]}" != "$1" ] || out+="${out:+, }$n"; done
	echo "$out"
}
# machine: the lines above the table.
machine() {
	local cpu cores mem ran='' l
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	cores=$(grep -c '^processor' /proc/cpuinfo)
	mem=$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
	l=$(list testbed)
	[ -z "$l" ] || ran+="in the testbed, an L2 Linux under QEMU TCG emulation with nested KVM, where times are for ratios only ($l)"
	l=$(list kvm)
	[ -z "$l" ] || ran+="${ran:+; }on this host's hardware KVM ($l)"
	l=$(list unknown)
	[ -z "$l" ] || ran+="${ran:+; }where the log does not say ($l)"
	echo "Machine: ${cpu:-unknown CPU}, $cores cores, $mem GiB, Linux $(uname -r); guests ran $ran."
	echo
	echo "Run: started $date, commit $commit${quick:+, quick (bench/run-all.sh --quick: small counts)}."
}
# metric NAME KEY: a value from a bench's last line, "" when it has none.
metric() {
	local kv
	for kv in ${line[$1]#"$1:"}; do [ "${kv%%=*}" != "$2" ] || { echo "${kv#*=}"; return; }; done
}
# The fast-start target (DESIGN §9) spans two benches: runvm run of
# /bin/true (lifecycle, from a template) over QEMU microvm's boot of the
# same kernel (boot), both in this run; ≤ 0.5 is the target.
better[start.run_vs_qemu_boot]="lower: runvm run /bin/true (lifecycle) / QEMU microvm's boot (boot); target ≤ 0.5"
derived() {
	local a b
	[ "${status[lifecycle]:-}" = 0 ] && [ "${status[boot]:-}" = 0 ] || return 0
	a=$(metric lifecycle runvm_ms) b=$(metric boot qemu_ms)
	[[ "$a" =~ ^[0-9.]+$ && "$b" =~ ^[0-9.]+$ ]] || return 0
	echo "start run_vs_qemu_boot $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')"
}
# table: one row per metric; a failed bench's row names its log.
table() {
	local name kvs kv k v note
	echo "| bench | metric | value | better |"
	echo "|---|---|---|---|"
	for name in "${selected[@]}"; do
		[ "${status[$name]}" = 0 ] ||
			echo "| $name | | failed (${status[$name]}; bench/results/$name.log) | |"
		[ -z "${retried[$name]:-}" ] ||
			echo "| $name | | run twice: the testbed's L2 failed the first time ($name.testbed-fault.log) | |"
		read -ra kvs <<<"${line[$name]#"$name:"}"
		for kv in "${kvs[@]}"; do
			k=${kv%%=*} v=${kv#*=} note=${better[$name.$k]:-}
			[ -n "$note" ] || [[ "$k" != *ratio* && "$k" != *_vs_* ]] || note="see bench/$name.sh"
			echo "| $name | $k | $v | $note |"
		done
	done
	derived | while read -r name k v; do echo "| $name | $k | $v | ${better[$name.$k]} |"; done
}
block=$results/.block.md
{ machine; echo; table; } >"$block"
{ echo "# runvm benchmarks: the latest run of bench/run-all.sh"; echo; cat "$block"; } >"$results/latest.md"

# The plot: every ratio with a number and a known direction, coloured by it.
dat=$results/.ratios.dat
: >"$dat"
for name in "${selected[@]}"; do
	read -ra kvs <<<"${line[$name]#"$name:"}"
	for kv in "${kvs[@]}"; do
		k=${kv%%=*} v=${kv#*=}
		{ [ -n "${better[$name.$k]:-}" ] && [[ "$v" =~ ^[0-9]*\.?[0-9]+$ ]]; } || continue
		case ${better[$name.$k]} in higher*) c=0x3a7dc9 ;; *) c=0xe0803c ;; esac
		printf '"%s" %s %d\n' "$name.$k" "$v" "$c" >>"$dat"
	done
done
derived | while read -r name k v; do printf '"%s" %s %d\n' "$name.$k" "$v" 0xe0803c; done >>"$dat"
plot_rc=0 made=bench/results/latest.md
if [ ! -s "$dat" ]; then
	echo "run-all: no ratio to plot; bench/results/latest.png removed"
	rm -f "$results/latest.png"
elif ! gnuplot >"$results/.gnuplot.log" 2>&1 <<EOF; then
set terminal pngcairo size 960,540 font ",10" noenhanced
set output "$results/latest.png"
set title "runvm against its peers: ratios ($date, $commit${quick:+, quick})"
set style fill solid 0.85 border -1
set boxwidth 0.6
set yrange [0:*]
set offsets 0.6, 0.6, graph 0.1, 0
set xtics rotate by 30 right nomirror
set ylabel "ratio (1.0: parity)"
set grid ytics
set key above
plot "$dat" using 0:2:3:xtic(1) with boxes lc rgb variable notitle, \
	"" using 0:2:(sprintf("%.2f", \$2)) with labels offset 0,0.8 notitle, \
	NaN with boxes lc rgb "#3a7dc9" title "higher is better", \
	NaN with boxes lc rgb "#e0803c" title "lower is better", \
	1 with lines dt 2 lw 2 lc rgb "black" title "1.0"
EOF
	echo "run-all: gnuplot failed: $(tr '\n' ' ' <"$results/.gnuplot.log")" >&2
	plot_rc=1
else
	made+=", latest.png"
fi
rm -f "$dat" "$results/.gnuplot.log"

# README.md: the block between the markers, when every bench ran.
readme=$top/README.md readme_rc=0
if [ -n "$only" ]; then
	echo "run-all: README.md left as it was (--only ran a subset)"
elif ! grep -qx '<!-- bench:latest -->' "$readme" || ! grep -qx '<!-- /bench:latest -->' "$readme"; then
	echo "run-all: README.md has no '<!-- bench:latest -->' ... '<!-- /bench:latest -->' lines; not updated" >&2
	readme_rc=1
else
	awk -v f="$block" '
		$0 == "<!-- bench:latest -->" { print; print ""; while ((getline l < f) > 0) print l; print ""; skip = 1; next }
		$0 == "<!-- /bench:latest -->" { skip = 0 }
		!skip' "$readme" >"$readme.tmp"
	mv "$readme.tmp" "$readme"
	echo "run-all: README.md's table updated"
fi
rm -f "$block"

echo
cat "$results/latest.md"
echo
echo "run-all: $made; $failed of ${#selected[@]} benches failed"
[ "$failed" = 0 ] && [ "$plot_rc" = 0 ] && [ "$readme_rc" = 0 ]
