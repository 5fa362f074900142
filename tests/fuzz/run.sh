#!/usr/bin/env bash
# Run libFuzzer targets for a while each; one test per target.
# usage: tests/fuzz/run.sh [--seconds N] [NAME...]
#   NAME is the <name> of tests/fuzz/fuzz_<name>.c (default: every target).
# Each target, built as build/fuzz/fuzz_<name> (make fuzz-build), runs on
# build/fuzz/corpus/<name>: a working corpus that starts as a copy of the
# committed seeds in tests/fuzz/corpus/<name>/ and keeps what the fuzzer finds
# between runs (rm -rf build/fuzz/corpus to start over). The seeds are never
# written. A crash, leak, sanitizer report or failed check leaves its input in
# build/fuzz/artifacts/ and fails the target. Ends with the closing line
# "fuzz: N passed, M failed, 0 skipped" that tests/check.sh adds up.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
t_suite=fuzz
# shellcheck source=tests/lib.sh
. tests/lib.sh

seconds=60
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift 2 ;;
	-*) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
	*) break ;;
	esac
done
names=("$@")
if [ ${#names[@]} = 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		[ -e "$f" ] || continue
		n=${f#tests/fuzz/fuzz_}
		names+=("${n%.c}")
	done
fi

# fuzz_stat NAME LOG: a libFuzzer final statistic (-print_final_stats=1).
fuzz_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

run_one() {
	local name=$1 bin=build/fuzz/fuzz_$1 seeds=tests/fuzz/corpus/$1
	local corpus=build/fuzz/corpus/$1 log=build/fuzz/$1.log rc
	if [ ! -x "$bin" ]; then
		fail "$name" "$bin is not built: run make fuzz-build"
		return
	fi
	mkdir -p "$corpus" build/fuzz/artifacts
	[ -d "$seeds" ] && cp -f "$seeds"/* "$corpus"/ 2>/dev/null
	"$bin" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="build/fuzz/artifacts/$name-" "$corpus" >"$log" 2>&1
	rc=$?
	local runs rate size
	runs=$(fuzz_stat number_of_executed_units "$log")
	rate=$(fuzz_stat average_exec_per_sec "$log")
	size=$(find "$corpus" -type f | wc -l)
	if [ "$rc" = 0 ]; then
		pass "$name: ${runs:-?} runs in ${seconds} s (${rate:-?}/s), corpus of $size inputs"
	else
		mapfile -t tail_lines < <(grep -E 'ERROR|SUMMARY|Test unit written|fuzz_' "$log" | tail -n 8)
		fail "$name" "exit status $rc after ${runs:-?} runs; full log: $log" "${tail_lines[@]}"
	fi
}

[ ${#names[@]} -gt 0 ] || echo "  (no fuzz targets in tests/fuzz/)"
for name in "${names[@]}"; do
	run_one "$name"
done
summary
