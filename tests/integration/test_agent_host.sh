#!/usr/bin/env bash
# The agent on the host (DESIGN §10, layer 4): the real runvm-agent serving a
# Unix socket (--unix), driven by the real client (vmm/agent_client.c) through
# build/tests/agent-run. What the user of `runvm exec` would see: output,
# exit statuses, errors, and an agent that survives whatever a connection sends.
# usage: tests/integration/test_agent_host.sh BUILD_DIR
set -u
t_suite=agent
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_agent_host.sh BUILD_DIR}
agent=$build/tests/runvm-agent-host   # SAN=1: the same sources, sanitized
[ -x "$agent" ] || agent=$top/build/bin/runvm-agent
run=$build/tests/agent-run
for f in "$agent" "$run"; do
	[ -x "$f" ] || { echo "test_agent_host.sh: $f missing: run make"; exit 1; }
done

tmp=$(mktemp -d)
sock=$tmp/agent.sock
agent_pids=()
cleanup() {
	local p
	for p in "${agent_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# start_agent SOCK LOG: a background agent; sets $agent_pid once it listens.
start_agent() {
	rm -f "$1"
	"$agent" --unix "$1" 2>"$2" &
	agent_pid=$!
	agent_pids+=("$agent_pid")
	local i
	for i in $(seq 100); do
		[ -S "$1" ] && return 0
		sleep 0.05
	done
	echo "test_agent_host.sh: the agent did not listen on $1" >&2
	return 1
}

ar() { "$run" --unix "$sock" --timeout-ms 5000 "$@"; }
# ar0: the same without our stdin (which may be a terminal).
ar0() { ar "$@" </dev/null; }

start_agent "$sock" "$tmp/agent.log" || { summary; exit 1; }
main_agent=$agent_pid

# --- processes, statuses, streams ------------------------------------------------
run_capture bash -c 'echo hi | "$@"' _ "$run" --unix "$sock" -- cat
expect_rc "echo hi | cat in the guest exits 0" 0 && [ "$out" = hi ] &&
	pass "cat echoes stdin" || fail "cat echoes stdin" "stdout: $out" "stderr: $err"

for code in 0 1 255; do
	run_capture ar0 -- sh -c "exit $code"
	expect_rc "exit status $code comes back exactly" "$code"
done
run_capture ar0 -- sh -c 'kill -KILL $$'
expect_rc "death by SIGKILL is 137" 137
run_capture ar0 -- sh -c 'kill -SEGV $$'
expect_rc "death by SIGSEGV is 139" 139
run_capture ar0 --signal-after 300:15 -- sleep 30
expect_rc "agent_signal delivers SIGTERM (143)" 143

run_capture ar0 -- sh -c 'echo to-stdout; echo to-stderr >&2'
expect_rc "stdout and stderr: exit 0" 0
[ "$out" = to-stdout ] && [ "$err" = to-stderr ] && pass "stderr is separate from stdout" ||
	fail "stderr is separate from stdout" "stdout: $out" "stderr: $err"

head -c 20M /dev/urandom >"$tmp/in"
run_capture bash -c 'r=$1 s=$2 i=$3 o=$4; "$r" --unix "$s" -- cat <"$i" >"$o"' _ "$run" "$sock" "$tmp/in" "$tmp/out"
expect_rc "20 MiB through cat: exit 0" 0
[ "$(sha256sum <"$tmp/in")" = "$(sha256sum <"$tmp/out")" ] &&
	pass "20 MiB through cat arrive with the same sha256" ||
	fail "20 MiB through cat arrive with the same sha256" "got $(stat -c %s "$tmp/out") bytes"

run_capture bash -c 'yes | timeout 10 "$@" -- head -c 10' _ "$run" --unix "$sock"
expect_rc "yes | head -c 10 in the guest: exit 0 promptly (stdin closed early)" 0 &&
	[ "$out" = "$(yes | head -c 10)" ] && pass "head got its 10 bytes" ||
	fail "head got its 10 bytes" "stdout: $out"

run_capture bash -c 'timeout 10 "$@" -- yes | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"' \
	_ "$run" --unix "$sock"
local_status=$(bash -c 'yes | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"')
[ "$out" = 141 ] && [ "$local_status" = 141 ] &&
	pass "yes in the guest | head -c 10: status 141 like a local yes (stdout closed early)" ||
	fail "yes in the guest | head -c 10: status 141 like a local yes (stdout closed early)" \
		"agent-run: $out, local: $local_status" "stderr: $err"

run_capture bash -c 'head -c 8M /dev/zero | timeout 20 "$@" -- sh -c "head -c 5000000 /dev/zero | wc -c"' \
	_ "$run" --unix "$sock"
expect_rc "a process that never reads stdin still gets its output out" 0 &&
	[ "$out" = 5000000 ] && pass "all of its output arrived" || fail "all of its output arrived" "stdout: $out"

# --- the process spec ------------------------------------------------------------
run_capture ar0 -- env
expect_in "no env: the default PATH" "$out" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
expect_in "no env: HOME=/root" "$out" "HOME=/root"
run_capture ar0 --env FOO=bar --env 'SPACE=a b' -- /usr/bin/env
[ "$out" = "FOO=bar
SPACE=a b" ] && pass "the env is exactly what was asked" || fail "the env is exactly what was asked" "$out"
run_capture ar0 --cwd /usr/share -- pwd
[ "$out" = /usr/share ] && pass "cwd is applied" || fail "cwd is applied" "stdout: $out" "stderr: $err"
run_capture ar0 --cwd "$tmp/nonexistent" -- pwd
expect_rc "a missing cwd fails to start: 125" 125 &&
	expect_in "it names the cwd and the reason" "$err" "chdir '$tmp/nonexistent' in the guest: No such file or directory"
if [ "$(id -u)" = 0 ]; then
	run_capture ar0 --user 65534 -- id -u
	[ "$out" = 65534 ] && pass "runs as uid 65534" || fail "runs as uid 65534" "stdout: $out" "stderr: $err"
	run_capture ar0 --user 65534:65533 -- id -G
	[ "$out" = 65533 ] && pass "gid 65533 and no supplementary groups" ||
		fail "gid 65533 and no supplementary groups" "stdout: $out" "stderr: $err"
	# A user namespace (OCI linux.uidMappings): the process sees its ids
	# inside it, the files it makes carry the outside ones.
	run_capture ar0 --userns 0:100000:65536 -- sh -c 'cat /proc/self/uid_map /proc/self/gid_map; id -u; id -G'
	[ "$(echo $out)" = "0 100000 65536 0 100000 65536 0 0" ] &&
		pass "a user namespace: its maps, and root inside it" ||
		fail "a user namespace: its maps, and root inside it" "stdout: $out" "stderr: $err"
	chmod 711 "$tmp" && mkdir -m 1777 "$tmp/shared"
	run_capture ar0 --userns 0:100000:65536 --user 1000:1000 -- sh -c "id -u; touch $tmp/shared/f"
	[ "$out" = 1000 ] && [ "$(stat -c %u:%g "$tmp/shared/f" 2>/dev/null)" = 101000:101000 ] &&
		pass "uid 1000 inside makes files of uid 101000 outside" ||
		fail "uid 1000 inside makes files of uid 101000 outside" "stdout: $out" "stderr: $err" \
			"$(stat -c %u:%g "$tmp/shared/f" 2>&1)"
	a=$(ar0 --userns 0:100000:65536 -- readlink /proc/self/ns/user)
	b=$(ar0 --userns 0:100000:65536 -- readlink /proc/self/ns/user)
	[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$(readlink /proc/self/ns/user)" ] &&
		pass "processes with the same maps share one user namespace, not the agent's" ||
		fail "processes with the same maps share one user namespace, not the agent's" "$a / $b"
	run_capture ar0 --userns 0:100000:65536 --tty --user 7 -- sh -c 'stat -c %u "$(tty)"'
	[ "$(tr -d "\r" <<<"$out")" = 7 ] && pass "in it, the process owns its terminal too" ||
		fail "in it, the process owns its terminal too" "stdout: $out" "stderr: $err"
else
	skip "runs as uid 65534" "not root"
	skip "gid 65533 and no supplementary groups" "not root"
fi

run_capture ar0 -- nosuch-command-xyz
expect_rc "a missing command: agent-run's error status 125" 125 &&
	[ "$err" = "agent-run: exec 'nosuch-command-xyz' in the guest: No such file or directory" ] &&
	pass "one line naming the command and 'No such file'" ||
	fail "one line naming the command and 'No such file'" "stderr: $err"

# EXEC's path (an OCI hook's path and args): the path is what runs, argv[0]
# only the name the process sees, not looked up anywhere.
run_capture ar0 --exec-path /bin/sh -- my-hook-name -c 'echo "$0"; tr "\0" " " </proc/$$/cmdline'
expect_rc "--exec-path /bin/sh: exit 0" 0 &&
	[ "$(head -n 1 <<<"$out")" = my-hook-name ] && [[ "$out" == *$'\n'"my-hook-name -c "* ]] &&
	pass "the path runs, with argv[0] as given" ||
	fail "the path runs, with argv[0] as given" "stdout: $out" "stderr: $err"
run_capture ar0 --exec-path "$tmp/no-such-program" -- sh -c true
expect_rc "a missing path: agent-run's error status 125" 125 &&
	[ "$err" = "agent-run: exec '$tmp/no-such-program' in the guest: No such file or directory" ] &&
	pass "the error names the path, not argv[0]" ||
	fail "the error names the path, not argv[0]" "stderr: $err"

# --- a terminal (OCI process.terminal): the guest's pty, relayed ------------------
# The guest terminal's line discipline is the one in force: it echoes input,
# ends output lines with \r\n (ONLCR) and turns ^C into SIGINT. nocr drops
# the \r for comparing.
nocr() { tr -d '\r' <<<"$1"; }
run_capture ar0 --tty -- sh -c 'tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; echo to-stderr >&2'
expect_rc "on a terminal: exit 0" 0
o=$(nocr "$out")
[[ "$o" == /dev/pts/[0-9]*$'\n'all-tty$'\n'to-stderr ]] && [ -z "$err" ] &&
	pass "on a terminal: tty names a /dev/pts, fds 0-2 are it, stderr shows on stdout" ||
	fail "on a terminal: tty names a /dev/pts, fds 0-2 are it, stderr shows on stdout" \
		"stdout: $o" "stderr: $err"
run_capture ar0 --tty -- sh -c 'ps -o tty=,sid=,pgid= -p $$; echo $$; tty'
read -r ctty sid pgid <<<"$(nocr "$out" | sed -n 1p)"
shpid=$(nocr "$out" | sed -n 2p)
[ "/dev/$ctty" = "$(nocr "$out" | sed -n 3p)" ] && [ "$sid" = "$shpid" ] && [ "$pgid" = "$shpid" ] &&
	pass "the terminal is the controlling one of a session leader" ||
	fail "the terminal is the controlling one of a session leader" "$(nocr "$out")" "stderr: $err"
run_capture ar0 --tty --size 33x111 -- stty size
[ "$rc" = 0 ] && [ "$(nocr "$out")" = "33 111" ] && pass "--size 33x111: stty size says 33 111" ||
	fail "--size 33x111: stty size says 33 111" "rc=$rc" "stdout: $out" "stderr: $err"
run_capture ar0 --tty -- stty size
[ "$rc" = 0 ] && [ "$(nocr "$out")" = "0 0" ] && pass "no size: the kernel's 0 0" ||
	fail "no size: the kernel's 0 0" "rc=$rc" "stdout: $out" "stderr: $err"
run_capture ar0 --tty --size 10x20 --resize-after 300:40x100 -- sh -c 'sleep 1.5; stty size'
[ "$rc" = 0 ] && [ "$(nocr "$out")" = "40 100" ] && pass "a resize: stty size after it says 40 100" ||
	fail "a resize: stty size after it says 40 100" "rc=$rc" "stdout: $out" "stderr: $err"
run_capture timeout 20 "$run" --unix "$sock" --tty --size 10x20 --resize-after 300:41x101 -- sh -c \
	'trap "stty size; exit 3" WINCH; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done' </dev/null
[ "$rc" = 3 ] && [ "$(nocr "$out")" = "41 101" ] && pass "a resize sends SIGWINCH: the trap sees 41 101" ||
	fail "a resize sends SIGWINCH: the trap sees 41 101" "rc=$rc" "stdout: $out" "stderr: $err"
run_capture ar0 --tty --size 10x20 --resize-first 50x132 -- stty size
[ "$rc" = 0 ] && [ "$(nocr "$out")" = "50 132" ] &&
	pass "a resize between EXEC and START: the terminal starts with it" ||
	fail "a resize between EXEC and START: the terminal starts with it" "rc=$rc" "stdout: $out" "stderr: $err"
run_capture ar0 --resize-after 200:10x10 -- sleep 2
expect_rc "agent_resize of a process without a terminal: an error" 125 &&
	expect_in "it says EINVAL: no terminal" "$err" "which has no terminal (in the guest)"

run_capture ar0 --tty -- sh -c 'seq 1 200000'
o=$(nocr "$out")
[ "$rc" = 0 ] && [ "$(wc -l <<<"$o")" = 200000 ] && [ "$(tail -1 <<<"$o")" = 200000 ] &&
	pass "1.3 MB written right before exit all arrive (the master is drained before EXIT)" ||
	fail "1.3 MB written right before exit all arrive (the master is drained before EXIT)" \
		"rc=$rc, $(wc -l <<<"$o") lines, last: $(tail -1 <<<"$o")"
run_capture ar0 --tty -- sh -c 'seq 1 20000 | tail -1; exit 5'
[ "$rc" = 5 ] && [ "$(nocr "$out")" = 20000 ] && pass "the last line and exit status 5 come back" ||
	fail "the last line and exit status 5 come back" "rc=$rc" "stdout: $out"
run_capture bash -c 'head -c 3000000 /dev/zero | tr "\0" x >"$1"; "${@:2}" --tty -- cat "$1" </dev/null | wc -c' \
	_ "$tmp/xs" "$run" --unix "$sock"
[ "$out" = 3000000 ] && pass "3 MB without a newline arrive whole" || fail "3 MB without a newline arrive whole" "$out bytes"

# head closes fds 0-2 before it exits: the terminal must not hang up on it
# then (it did, one run in two, when its EIO closed the master at once).
for i in 1 2 3 4 5; do
	run_capture bash -c 'printf "hello\n" | "$@" --tty -- head -c 5' _ "$run" --unix "$sock"
	[ "$rc" = 0 ] && [ "$(nocr "$out")" = $'hello\nhello' ] || break
done
[ "$rc" = 0 ] && [ "$(nocr "$out")" = $'hello\nhello' ] &&
	pass "stdin reaches the terminal: the guest echoes the line, head reads 5 bytes of it (5 runs)" ||
	fail "stdin reaches the terminal: the guest echoes the line, head reads 5 bytes of it (5 runs)" \
		"run $i: rc=$rc" "stdout: $(od -c <<<"$out" | head -3)"
run_capture ar0 --tty -- sh -c 'exec 0<&- 1>&- 2>&-; sleep 0.5; exit 4'
expect_rc "a process that closed its terminal fds lives on to exit 4 (no SIGHUP)" 4
run_capture timeout 20 bash -c 'printf abcde | "$@" --tty -- sh -c "stty raw -echo; head -c 5"' \
	_ "$run" --unix "$sock"
[ "$rc" = 0 ] && [[ "$out" == *abcde ]] && pass "raw mode: 5 bytes without a newline are read" ||
	fail "raw mode: 5 bytes without a newline are read" "rc=$rc" "stdout: $out"
head -c 600000 /dev/urandom | base64 >"$tmp/in.b64"
run_capture timeout 30 bash -c 'n=$(stat -c %s "$1"); "${@:2}" --tty -- sh -c "stty -echo; head -c $n | md5sum" <"$1"' \
	_ "$tmp/in.b64" "$run" --unix "$sock"
# (what arrives before stty -echo is echoed, up to the md5sum on the same line)
[ "$rc" = 0 ] && [[ "$(nocr "$out")" == *"$(md5sum <"$tmp/in.b64")" ]] &&
	pass "800 KB of lines typed into the terminal arrive intact" ||
	fail "800 KB of lines typed into the terminal arrive intact" "rc=$rc" "stdout: ${out: -200}"
run_capture timeout 10 bash -c 'printf "\003" | "$@" --tty -- sleep 100' _ "$run" --unix "$sock"
expect_rc "^C (0x03) on stdin kills sleep with SIGINT: 130" 130
run_capture timeout 10 bash -c '"$@" --tty -- yes </dev/null | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"' \
	_ "$run" --unix "$sock"
[ "$out" = 129 ] && pass "the host stops reading: the terminal hangs up, SIGHUP (129)" ||
	fail "the host stops reading: the terminal hangs up, SIGHUP (129)" "stdout: $out" "stderr: $err"
if [ "$(id -u)" = 0 ]; then
	run_capture ar0 --tty --user 65534 -- sh -c 'stat -c %u "$(tty)"; id -u'
	[ "$(nocr "$out")" = $'65534\n65534' ] && pass "the process owns its terminal" ||
		fail "the process owns its terminal" "stdout: $out" "stderr: $err"
else
	skip "the process owns its terminal" "not root"
fi

# --- 100 at once ---------------------------------------------------------------
run_capture timeout 60 "$run" --unix "$sock" --parallel 100 -- sh -c 'echo "run $RUNVM_TEST_INDEX"'
expect_rc "100 concurrent processes all exit 0" 0
wrong=0
for i in $(seq 0 99); do grep -qx "$i: run $i" <<<"$out" || wrong=$((wrong + 1)); done
[ "$wrong" = 0 ] && [ "$(wc -l <<<"$out")" = 100 ] && pass "each of the 100 has its own output" ||
	fail "each of the 100 has its own output" "$wrong wrong" "${out:0:300}"

# --- hostile input: answered, and the agent serves the next request --------------
hex() { printf '%s' "$1" | sed 's/../\\x&/g'; }
u32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
str() { printf '%s%s' "$(u32 ${#1})" "$(printf '%s' "$1" | od -An -tx1 | tr -d ' \n')"; }
# frame TYPE ID [PAYLOAD_HEX]: one frame's bytes on stdout
frame() {
	local payload=${3:-}
	printf "$(hex "$(u32 $((${#payload} / 2)))$(printf '%02x00' "$1")0000$(u32 "$2")$payload")"
}
u16() { printf '%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)); }
hello() { frame 1 1 "$(u32 9)"; }
# EXEC's version 5, 6 and 8 tail: umask 022, no oom_score_adj, caps, rlimits,
# hostname, domainname, sysctls, seccomp filter or user namespace maps, and
# PATH ("": argv[0] is what runs)
exec_v5() { printf '%s' "$(u32 18)$(u32 0)$(u32 0)$(u32 0)$(str "")$(str "")$(u32 0)$(u32 0)$(u32 0)$(u32 0)$(u32 0)$(str "${1:-}")"; }
# exec_true REQ_ID [STREAMS [FLAGS [ROWS COLS [PATH]]]]: EXEC of `true` as exec id 77
exec_true() {
	frame 4 "$1" "$(u32 77)$(u32 "${2:-0}")$(u32 0)$(u32 0)$(str "")$(str "")$(u32 1)$(str true)$(u32 0)$(u32 0)$(u32 "${3:-0}")$(u16 "${4:-0}")$(u16 "${5:-0}")$(exec_v5 "${6:-}")"
}
# resize REQ_ID EXEC_ID ROWS COLS
resize() { frame 17 "$1" "$(u32 "$2")$(u16 "$3")$(u16 "$4")"; }

# raw NAME EXPECTED-IN-REPLIES: $tmp/frames goes to the agent as it is
raw() {
	local name=$1 want=$2 replies
	replies=$(timeout 10 "$run" --unix "$sock" --raw <"$tmp/frames")
	expect_in "$name" "$replies" "$want"
	kill -0 "$main_agent" 2>/dev/null && run_capture bash -c 'echo still | "$@" -- cat' _ "$run" --unix "$sock"
	[ "${out:-}" = still ] && pass "$name: the agent serves the next request" ||
		fail "$name: the agent serves the next request" "stdout: ${out:-}" "stderr: ${err:-}"
	out=
}

printf 'GET / HTTP/1.0\r\n\r\n' >"$tmp/frames"
raw "garbage bytes (an HTTP request): ERROR and close" "ERROR id=0"
{ hello; printf 'this is no frame at all'; } >"$tmp/frames"
raw "garbage after HELLO: ERROR and close" "ERROR id=0"
{ hello; printf "$(hex "$(u32 $((1 << 30)))01000000$(u32 3)")"; } >"$tmp/frames"
raw "a frame with an oversized length: ERROR" "ERROR id=0 code=90"
{ hello; frame 99 3; } >"$tmp/frames"
raw "an unknown type: ERROR" "ERROR id=0"
{ hello; frame 6 3 "$(u32 42)"; } >"$tmp/frames"
raw "START before EXEC: ERROR ENOENT" "ERROR id=3 code=2 START of exec 42, which does not exist"
{ frame 6 3 "$(u32 42)"; } >"$tmp/frames"
raw "a request before HELLO: ERROR" "ERROR id=3 code=71 expected HELLO first, got START"
{ frame 1 1 "$(u32 1)"; } >"$tmp/frames"
raw "another protocol version: ERROR" "unsupported protocol version 1, this agent speaks 9"
{ frame 1 1 "$(u32 8)"; } >"$tmp/frames"
raw "version 8 (before RESEED): ERROR" "unsupported protocol version 8, this agent speaks 9"
{ hello; exec_true 5; exec_true 6; } >"$tmp/frames"
raw "a duplicate exec id: ERROR EEXIST" "ERROR id=6 code=17 exec id 77 is already in use"
{ hello; exec_true 5; frame 5 6 "$(u32 77)$(u32 1)"; } >"$tmp/frames"
raw "ATTACH on a control connection: ERROR" "ERROR id=6 code=71 ATTACH on a control connection"
# A control connection holds exec 77 (stdout wanted) and a stream connection
# its stdout; a second ATTACH of that stdout is refused.
# Steps 2 s apart, held 8 s: agent-run --raw prints replies only when its
# input ends, so there is nothing to wait for; under a sanitizer and a parallel
# check, 0.5 s was not always enough for the EXEC to land first.
{ hello; exec_true 5 2; } >"$tmp/frames1"
{ hello; frame 5 6 "$(u32 77)$(u32 1)"; } >"$tmp/frames2"
{ cat "$tmp/frames1"; sleep 8; } | "$run" --unix "$sock" --raw >/dev/null &
holder1=$!
sleep 2
{ cat "$tmp/frames2"; sleep 6; } | "$run" --unix "$sock" --raw >"$tmp/attached" &
holder2=$!
sleep 2
{ hello; frame 5 7 "$(u32 77)$(u32 1)"; } >"$tmp/frames"
raw "ATTACH of a stream already attached: ERROR EBUSY" "ERROR id=7 code=16 stdout of exec 77 is already attached"
wait "$holder1" "$holder2"
expect_in "the first ATTACH got OK" "$(cat "$tmp/attached")" "OK id=6"
{ hello; frame 7 6 "$(u32 1)"; } >"$tmp/frames"
raw "a message only the agent sends: ERROR" "ERROR id=6 code=71 STARTED is not a request"
{ hello; resize 3 4242 24 80; } >"$tmp/frames"
raw "RESIZE of an unknown exec: ERROR ENOENT" "ERROR id=3 code=2 RESIZE of exec 4242, which does not exist"
{ hello; exec_true 5; resize 6 77 24 80; } >"$tmp/frames"
raw "RESIZE of a process without a terminal: ERROR EINVAL" "ERROR id=6 code=22 RESIZE of exec 77, which has no terminal"
{ hello; exec_true 5 2 1 24 80; resize 6 77 65535 65535; } >"$tmp/frames"
raw "RESIZE of a terminal not started yet: OK (its size to start with)" "OK id=5
OK id=6"
{ hello; exec_true 5 2 16; } >"$tmp/frames"
raw "EXEC with an unknown flag: the decoder refuses it" "EXEC frame: flags 0x10 has unknown bits (known: 0xf)"
{ hello; exec_true 5 6 1; } >"$tmp/frames"
raw "EXEC on a terminal with a stderr stream: refused" "EXEC frame: a process on a terminal has no stderr stream"
{ hello; exec_true 5 1 1; } >"$tmp/frames"
raw "EXEC on a terminal without stdout: refused" "EXEC frame: a process on a terminal needs its stdout stream"
{ hello; exec_true 5 2 0 24 80; } >"$tmp/frames"
raw "EXEC with a size but no terminal: refused" "EXEC frame: a terminal size (24x80) without a terminal"
{ hello; exec_true 5 0 0 0 0 bin/true; } >"$tmp/frames"
raw "EXEC with a relative path: the decoder refuses it" \
	"EXEC frame: path 'bin/true' is neither \"\" nor an absolute path"
{ hello; frame 8 7 "$(u32 4242)$(u32 15)"; } >"$tmp/frames"
raw "SIGNAL to nothing: ERROR ESRCH" "ERROR id=7 code=3"
{ hello; printf "$(hex "$(u32 100)0400")"; } >"$tmp/frames"
raw "a frame cut short: the agent does not wait forever" "EOF"

# --- MOUNT and EXEC's root -------------------------------------------------------
# mount_req ID SOURCE TARGET FSTYPE FLAGS DATA [OPTS [PROPAGATION]]: a MOUNT
# frame (MS_BIND 4096, MS_RDONLY 1, MS_REMOUNT 32, MS_REC 16384; opts: ROOT 8)
mount_req() { frame 11 "$1" "$(str "$2")$(str "$3")$(str "$4")$(u32 "$5")$(str "$6")$(u32 "${7:-0}")$(u32 "${8:-0}")"; }
# mount_root ID DIR [PROPAGATION]: DIR bound onto itself as a container's root
mount_root() { mount_req "$1" "$2" "$2" "" $((4096 | 16384)) "" 8 "${3:-0}"; }
# exec_root ID EXEC_ID ROOT CWD SCRIPT: EXEC of sh -c SCRIPT, no streams, then START
exec_root() {
	frame 4 "$1" "$(u32 "$2")$(u32 0)$(u32 0)$(u32 0)$(str "$3")$(str "$4")$(u32 3)$(str sh)$(str -c)$(str "$5")$(u32 0)$(u32 0)$(u32 0)$(u32 0)$(exec_v5)"
	frame 6 $(($1 + 1)) "$(u32 "$2")"
}
# wait_file FILE: up to 5 s for FILE to have content
wait_file() { local i; for i in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

{ hello; mount_req 3 /x relative/target "" 4096 ""; } >"$tmp/frames"
raw "MOUNT on a relative target: the decoder refuses it" \
	"ERROR id=0 code=71 bad frame, closing the connection: MOUNT frame: target 'relative/target' is not an absolute path"
{ hello; mount_req 3 /x "$tmp/a/../../etc" "" 4096 ""; } >"$tmp/frames"
raw "MOUNT on a target with '..': ERROR EINVAL" \
	"ERROR id=3 code=22 mount on '$tmp/a/../../etc': the target must be an absolute path without '..'"
{ hello; mount_req 3 "$tmp/no-such-source" "$tmp/mnt-none" "" 4096 ""; } >"$tmp/frames"
raw "a bind of a missing source: ERROR ENOENT naming both" \
	"ERROR id=3 code=2 bind '$tmp/no-such-source' on $tmp/mnt-none: bind: No such file or directory"
{ hello; mount_req 3 /x /y "" 4096 "" 9; } >"$tmp/frames"
raw "a container's root with another opt: the decoder refuses it" \
	"MOUNT frame: opts 0x9: a container's root (0x8) takes no other opt than PIDNS (0x10)"

# MKNOD (OCI linux.devices): ROOT TARGET KIND MAJOR MINOR MODE UID GID; the
# target is resolved inside ROOT, as the container's lookups go.
mknod_req() { frame 18 "$1" "$(str "$2")$(str "$3")$(u32 "$(printf '%d' "'$4")")$(u32 "$5")$(u32 "$6")$(u32 "$7")$(u32 "$8")$(u32 "$9")"; }
cr=$tmp/ctr
mkdir -p "$cr/dev" "$tmp/outside-root"
: >"$tmp/outside-root/precious"
ln -s /dev "$cr/devlink"
ln -s "$tmp/outside-root" "$cr/escape"
if [ "$(id -u)" = 0 ]; then
	mknod "$cr/dev/old" c 1 5
	{ hello; mknod_req 3 "$cr" /dev/old c 1 3 416 7 8; mknod_req 4 "$cr" /newdir/sub/fifo p 0 0 384 0 0
	  mknod_req 5 "$cr" /devlink/vialink c 1 3 438 0 0; } >"$tmp/frames"
	raw "MKNOD: OK, replacing a node and making the directories above" "OK id=5"
	[ "$(stat -c '%F %t:%T %a %u:%g' "$cr/dev/old" "$cr/newdir/sub/fifo" "$cr/dev/vialink" 2>&1 | tr '\n' ' ')" = \
		"character special file 1:3 640 7:8 fifo 0:0 600 0:0 character special file 1:3 666 0:0 " ] &&
		pass "the nodes have their kind, number, mode (no umask) and owner; a link leads inside the root" ||
		fail "the nodes have their kind, number, mode (no umask) and owner; a link leads inside the root" \
			"$(stat -c '%F %t:%T %a %u:%g' "$cr/dev/old" "$cr/newdir/sub/fifo" "$cr/dev/vialink" 2>&1)"
	{ hello; mknod_req 3 "$cr" /escape/precious c 1 3 416 0 0; } >"$tmp/frames"
	raw "MKNOD through an absolute link: resolved inside the root, where it leads nowhere" \
		"ERROR id=3 code=2 device node /escape/precious (c 1:3): resolve the directories above it"
	[ -f "$tmp/outside-root/precious" ] && pass "the file outside the root is untouched" ||
		fail "the file outside the root is untouched" "$(ls -l "$tmp/outside-root")"
	: >"$cr/dev/afile"
	{ hello; mknod_req 3 "$cr" /dev/afile c 1 3 416 0 0; } >"$tmp/frames"
	raw "MKNOD over a regular file: ERROR EEXIST, the file kept" "ERROR id=3 code=17"
else
	for n in "MKNOD: OK, replacing a node and making the directories above" \
		"the nodes have their kind, number, mode (no umask) and owner; a link leads inside the root" \
		"MKNOD through an absolute link: resolved inside the root, where it leads nowhere" \
		"the file outside the root is untouched" \
		"MKNOD over a regular file: ERROR EEXIST, the file kept"; do skip "$n" "not root"; done
fi
{ hello; mknod_req 3 "$cr" /a/../x c 1 3 416 0 0; } >"$tmp/frames"
raw "MKNOD with '..': ERROR EINVAL" "ERROR id=3 code=22 device node '/a/../x': the path must be absolute"
{ hello; mknod_req 3 "$cr" / c 1 3 416 0 0; } >"$tmp/frames"
raw "MKNOD of the root itself: ERROR EINVAL" "ERROR id=3 code=22 device node '/'"
{ hello; mknod_req 3 "$cr" /x u 1 3 416 0 0; } >"$tmp/frames"
raw "MKNOD of an unknown kind: the decoder refuses it" "MKNOD frame: kind 117 is none of 'c', 'b', 'p'"

# A container's root (MOUNT with the ROOT opt): a mount namespace of its
# own, where the mounts below the root are made, and its processes pivoted
# into it, never chrooted: chroot-escape (tests/payloads/chroot_escape.c)
# climbs out of a chroot to the host's root, but not out of this. The
# host's busybox is the root's only other program.
escape=$top/build/tests/chroot-escape
root_tests=("MOUNT ROOT, a MOUNT below it and an EXEC with that root: each answered, the process started"
	"the process runs in the root, in its cwd there" "its mount namespace is not the agent's"
	"its root is a mount of its own, shared (the propagation asked for, given once pivoted)"
	"a process holding CAP_SYS_CHROOT cannot climb out of its root (chroot-escape)"
	"the mount below the root is in the root's namespace only, not in the agent's"
	"a second EXEC with the root runs there too" "a MOUNT below a root whose processes started: ERROR EBUSY"
	"--tty in the root: one of its own ptys, from the devpts mounted in it")
if [ "$(id -u)" = 0 ] && [ -x "$escape" ]; then
	mkdir -p "$tmp/root/bin" "$tmp/root/work"
	cp /bin/busybox "$tmp/root/bin/busybox" && ln -s busybox "$tmp/root/bin/sh"
	cp "$escape" "$tmp/root/bin/chroot-escape"
	# The payload's own check: a plain chroot, which it must climb out of,
	# or "contained" below would prove nothing.
	mkdir -p "$tmp/chroot-only/work" && cp "$escape" "$tmp/chroot-only/chroot-escape"
	case "$(chroot "$tmp/chroot-only" /chroot-escape /work 2>&1)" in
	escaped:*) pass "chroot-escape climbs out of a plain chroot (so its 'contained' means something)" ;;
	*) fail "chroot-escape climbs out of a plain chroot (so its 'contained' means something)" \
		"$(chroot "$tmp/chroot-only" /chroot-escape /work 2>&1)" ;;
	esac
	mkdir "$tmp/root/dev" && ln -s pts/ptmx "$tmp/root/dev/ptmx"
	# rshared: MS_SHARED | MS_REC, as linux.rootfsPropagation asks for it;
	# devpts: MS_NOSUID | MS_NOEXEC, an instance of the root's own
	{ hello; mount_root 3 "$tmp/root" $((1048576 | 16384)); mount_req 4 proc "$tmp/root/proc" proc 0 ""
	  mount_req 5 devpts "$tmp/root/dev/pts" devpts 10 "newinstance,ptmxmode=0666,mode=0620"
	  exec_root 6 91 "$tmp/root" /work 'echo $(pwd) $(/bin/busybox ls /) >/out
		/bin/busybox readlink /proc/self/ns/mnt >/ns; /bin/busybox grep -E "^([^ ]+ ){4}/ " /proc/self/mountinfo >/mi
		/bin/chroot-escape /work >/escape 2>&1'; } >"$tmp/frames"
	replies=$(timeout 10 "$run" --unix "$sock" --raw <"$tmp/frames")
	[[ "$replies" == *"OK id=3"*"OK id=4"*"OK id=5"*"OK id=6"*"STARTED id=7"* ]] &&
		[[ "$replies" != *ERROR* ]] && pass "${root_tests[0]}" || fail "${root_tests[0]}" "$replies"
	wait_file "$tmp/root/escape"
	[ "$(cat "$tmp/root/out" 2>/dev/null)" = "/work bin dev proc work" ] && pass "${root_tests[1]}" ||
		fail "${root_tests[1]}" "out: $(cat "$tmp/root/out" 2>&1)"
	ns=$(cat "$tmp/root/ns" 2>/dev/null)
	[ -n "$ns" ] && [ "$ns" != "$(readlink "/proc/$main_agent/ns/mnt")" ] && pass "${root_tests[2]}" ||
		fail "${root_tests[2]}" "the process's: $ns" "the agent's: $(readlink "/proc/$main_agent/ns/mnt")"
	expect_in "${root_tests[3]}" "$(cat "$tmp/root/mi" 2>&1)" " shared:"
	[ "$(cat "$tmp/root/escape" 2>&1)" = contained ] && pass "${root_tests[4]}" ||
		fail "${root_tests[4]}" "chroot-escape: $(cat "$tmp/root/escape" 2>&1)"
	! grep -q " $tmp/root" "/proc/$main_agent/mountinfo" && pass "${root_tests[5]}" ||
		fail "${root_tests[5]}" "$(grep " $tmp/root" "/proc/$main_agent/mountinfo")"
	{ hello; exec_root 3 92 "$tmp/root" / 'echo again >/work/again'; } >"$tmp/frames"
	expect_in "${root_tests[6]}" "$(timeout 10 "$run" --unix "$sock" --raw <"$tmp/frames")" "STARTED id=4"
	wait_file "$tmp/root/work/again"
	run_capture ar0 --root "$tmp/root" --tty -- /bin/busybox sh -c \
		'/bin/busybox ls /dev/pts | /bin/busybox tr "\n" " "; [ -c "$(/bin/busybox tty)" ] && echo own-pty'
	[ "$(nocr "$out")" = "0 ptmx own-pty" ] && pass "${root_tests[8]}" ||
		fail "${root_tests[8]}" "rc=$rc" "stdout: $out" "stderr: $err"
	{ hello; mount_req 3 tmpfs "$tmp/root/work/t" tmpfs 0 ""; } >"$tmp/frames"
	raw "${root_tests[7]}" "ERROR id=3 code=16 $tmp/root/work/t is in the container root $tmp/root, whose processes have started"
	{ hello; mount_root 3 "$tmp/root"; } >"$tmp/frames"
	raw "MOUNT ROOT twice: ERROR EBUSY" "ERROR id=3 code=16 a container's root on $tmp/root: $tmp/root is one already"
	{ hello; mount_root 3 "$tmp/root/work"; } >"$tmp/frames"
	raw "MOUNT ROOT below a root: ERROR EBUSY" "ERROR id=3 code=16 a container's root on $tmp/root/work: $tmp/root is one already"
	{ hello; mount_root 3 /; } >"$tmp/frames"
	raw "MOUNT ROOT on /: ERROR EINVAL" "ERROR id=3 code=22 a container's root on /: the guest's own root cannot be one"
	{ hello; mount_req 3 none "$tmp/bad-root" no-such-fs 0 "" 8; exec_root 4 94 "$tmp/bad-root" / true; } >"$tmp/frames"
	raw "a root that cannot be mounted: ERROR naming it, and no root is left" \
		"ERROR id=3 code=19 the container root $tmp/bad-root: no-such-fs 'none' on $tmp/bad-root: mount: No such device
OK id=4
ERROR id=5 code=2 root '$tmp/bad-root' is no container's root"
	{ hello; exec_root 3 93 "$tmp/root" /nowhere true; } >"$tmp/frames"
	raw "a missing cwd below the root: START fails naming both" \
		"ERROR id=4 code=2 chdir '/nowhere' below root '$tmp/root': No such file or directory"
else
	for n in "${root_tests[@]}"; do skip "$n" "needs root and $escape"; done
fi

# A root with a PID namespace of its own (ROOT and PIDNS, as OCI
# linux.namespaces' "pid" asks): its init (--init) is PID 1 there, as
# runc's container process is, and the root's later processes join it.
# The root's proc mount, and the read-only /proc/sys bound on it, wait
# for the init, which makes them: its /proc shows its own namespace.
pidns_tests=("MOUNT ROOT with PIDNS, a proc below it and a read-only bind on its /proc/sys: each answered OK"
	"before its init, a process of the root (a hook) runs, its /proc not mounted yet (held for the init)"
	"the init is PID 1 of its namespace" "an exec joins it: /proc/1 is the init, /proc lists the container's processes only"
	"the mounts held for the init are made in its /proc: /proc/sys is read-only"
	"ps: the init by the agent's pid, the agent its parent"
	"SIGTERM from the agent to an init without a handler does nothing (as to runc's PID 1)"
	"the init's end kills the process that joined its namespace (137), the init's status is its own (0)"
	"an exec once the init has ended: ERROR ESRCH, saying so" "a second init for the root: ERROR EBUSY"
	"SIGTERM to an init with a handler runs it (exit 42)"
	"a held bind from outside the root: ERROR EINVAL, the init sees nothing there"
	"a held mount that fails fails the init's START, naming it"
	"an init for a root without a PID namespace: ERROR EINVAL")
if [ "$(id -u)" = 0 ] && unshare -p -f true 2>/dev/null; then
	mkroot() { mkdir -p "$1/bin" "$1/proc" && cp /bin/busybox "$1/bin/busybox" && ln -s busybox "$1/bin/sh"; }
	# mount_pidns_root ID DIR: DIR a container's root with a PID namespace (opts ROOT 8 | PIDNS 16)
	mount_pidns_root() { mount_req "$1" "$2" "$2" "" $((4096 | 16384)) "" 24; }
	p=$tmp/proot
	mkroot "$p"
	{ hello; mount_pidns_root 3 "$p"; mount_req 4 proc "$p/proc" proc 0 ""
	  mount_req 5 "$p/proc/sys" "$p/proc/sys" "" $((4096 | 16384 | 1)) "" 1; } >"$tmp/frames"
	expect_in "${pidns_tests[0]}" "$(timeout 10 "$run" --unix "$sock" --raw <"$tmp/frames")" \
		$'OK id=3\nOK id=4\nOK id=5'
	run_capture ar0 --root "$p" -- /bin/sh -c '/bin/busybox ls /proc | /bin/busybox wc -l'
	[ "$rc" = 0 ] && [ "$out" = 0 ] && pass "${pidns_tests[1]}" ||
		fail "${pidns_tests[1]}" "rc=$rc" "stdout: $out" "stderr: $err"
	# Its SIGTERM comes 300 ms after its start; it ends when /stop appears.
	{ "$run" --unix "$sock" --root "$p" --init --signal-after 300:15 -- /bin/sh -c \
		'echo $$ >/init.pid; while [ ! -e /stop ]; do /bin/busybox sleep 0.1; done' </dev/null \
		>/dev/null 2>"$tmp/pinit.err"; echo $? >"$tmp/pinit.rc"; } &
	wait_file "$p/init.pid"
	[ "$(cat "$p/init.pid" 2>&1)" = 1 ] && pass "${pidns_tests[2]}" ||
		fail "${pidns_tests[2]}" "\$\$: $(cat "$p/init.pid" 2>&1)" "$(cat "$tmp/pinit.err" 2>&1)"
	run_capture ar0 --root "$p" -- /bin/sh -c '/bin/busybox tr "\0" " " </proc/1/cmdline; echo
		/bin/busybox ls /proc | /bin/busybox grep -c "^[0-9]"; /bin/busybox grep " /proc/sys " /proc/self/mountinfo'
	n=$(sed -n 2p <<<"$out")
	[[ "$(sed -n 1p <<<"$out")" == "/bin/sh -c echo \$\$ >/init.pid;"* ]] && [ "${n:-99}" -le 5 ] &&
		pass "${pidns_tests[3]}" || fail "${pidns_tests[3]}" "rc=$rc" "stdout: $out" "stderr: $err"
	expect_in "${pidns_tests[4]}" "$(sed -n 3p <<<"$out")" " /proc/sys ro,"
	run_capture ar0 --ps
	line=$(grep 'init.pid' <<<"$out")
	[ "$(cut -d' ' -f2 <<<"$line")" = "$main_agent" ] && pass "${pidns_tests[5]}" ||
		fail "${pidns_tests[5]}" "agent: $main_agent" "ps: ${out:0:600}"
	sleep 1
	[ ! -e "$tmp/pinit.rc" ] && pass "${pidns_tests[6]}" ||
		fail "${pidns_tests[6]}" "the init ended: rc $(cat "$tmp/pinit.rc")" "$(cat "$tmp/pinit.err")"
	{ ar0 --root "$p" -- /bin/sh -c 'echo $$ >/exec.pid; exec /bin/busybox sleep 1000'; echo $? >"$tmp/pexec.rc"; } &
	wait_file "$p/exec.pid"
	touch "$p/stop"
	wait_file "$tmp/pinit.rc" && wait_file "$tmp/pexec.rc"
	[ "$(cat "$tmp/pexec.rc" 2>&1) $(cat "$tmp/pinit.rc" 2>&1)" = "137 0" ] && pass "${pidns_tests[7]}" ||
		fail "${pidns_tests[7]}" "exec: $(cat "$tmp/pexec.rc" 2>&1), init: $(cat "$tmp/pinit.rc" 2>&1)"
	run_capture ar0 --root "$p" -- true
	[ "$rc" = 125 ] && [[ "$err" == *"the init of the container root $p (pid "*") has ended: no process joins its PID namespace any more"* ]] &&
		pass "${pidns_tests[8]}" || fail "${pidns_tests[8]}" "rc=$rc" "stderr: $err"
	run_capture ar0 --root "$p" --init -- true
	[ "$rc" = 125 ] && [[ "$err" == *"the container root $p has had its init already"* ]] &&
		pass "${pidns_tests[9]}" || fail "${pidns_tests[9]}" "rc=$rc" "stderr: $err"

	p=$tmp/proot2
	mkroot "$p"
	{ hello; mount_pidns_root 3 "$p"; } >"$tmp/frames"
	timeout 10 "$run" --unix "$sock" --raw <"$tmp/frames" >/dev/null
	run_capture ar0 --root "$p" --init --signal-after 1000:15 -- /bin/sh -c \
		'trap "exit 42" TERM; while :; do /bin/busybox sleep 0.1; done'
	expect_rc "${pidns_tests[10]}" 42

	p=$tmp/proot3
	mkroot "$p"
	mkdir -p "$tmp/outside"
	{ hello; mount_pidns_root 3 "$p"; mount_req 4 proc "$p/proc" proc 0 ""
	  mount_req 5 "$tmp/outside" "$p/proc/driver" "" 4096 ""
	  mount_req 6 "$p/no-such" "$p/proc/cmdline" "" 4096 ""; } >"$tmp/frames"
	expect_in "${pidns_tests[11]}" "$(timeout 10 "$run" --unix "$sock" --raw <"$tmp/frames")" \
		"ERROR id=5 code=22 bind '$tmp/outside' on $p/proc/driver: the init of the container root $p makes the mounts on its /proc, and sees nothing outside the root"
	run_capture ar0 --root "$p" --init -- true
	[ "$rc" = 125 ] && [[ "$err" == *"the init 'true', as PID 1 of its namespace, mounting before its exec: bind '/no-such' on /proc/cmdline: bind in the guest: No such file or directory" ]] &&
		pass "${pidns_tests[12]}" || fail "${pidns_tests[12]}" "rc=$rc" "stderr: $err"

	p=$tmp/proot4
	mkroot "$p"
	{ hello; mount_root 3 "$p"; } >"$tmp/frames"
	timeout 10 "$run" --unix "$sock" --raw <"$tmp/frames" >/dev/null
	run_capture ar0 --root "$p" --init -- true
	[ "$rc" = 125 ] && [[ "$err" == *"an init for the container root $p, which has no PID namespace of its own"* ]] &&
		pass "${pidns_tests[13]}" || fail "${pidns_tests[13]}" "rc=$rc" "stderr: $err"
else
	for n in "${pidns_tests[@]}"; do skip "$n" "needs root and PID namespaces"; done
fi
{ hello; exec_true 5 0 8; } >"$tmp/frames"
raw "EXEC with INIT and no root: the decoder refuses it" "EXEC frame: INIT (flag 0x8) without a root"
{ hello; mount_req 3 /x /y "" 4096 "" 16; } >"$tmp/frames"
raw "MOUNT with PIDNS and no ROOT: the decoder refuses it" "MOUNT frame: opts 0x10: PIDNS (0x10) is a container root's (0x8) opt"
{ hello; exec_root 3 95 "$tmp/no-root" / true; } >"$tmp/frames"
raw "EXEC with a root no MOUNT made: START fails naming it" \
	"ERROR id=4 code=2 root '$tmp/no-root' is no container's root (a MOUNT with the ROOT opt makes one)"

# Mounts that succeed change the agent's mount namespace: a second agent in
# a private one (unshare -m) takes them, and processes it runs see them.
if [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
	msock=$tmp/m.sock
	unshare -m --propagation private "$agent" --unix "$msock" 2>"$tmp/m.log" &
	agent_pids+=("$!")
	for i in $(seq 100); do [ -S "$msock" ] && break; sleep 0.05; done
	mkdir -p "$tmp/src" && echo from-src >"$tmp/src/hello"
	mraw() { timeout 10 "$run" --unix "$msock" --raw <"$tmp/frames"; }
	mar() { "$run" --unix "$msock" --timeout-ms 5000 "$@" </dev/null; }

	{ hello; mount_req 3 "$tmp/src" "$tmp/mnt/deep/rw" "" 4096 ""; } >"$tmp/frames"
	expect_in "a bind MOUNT is answered OK" "$(mraw)" "OK id=3"
	run_capture mar -- cat "$tmp/mnt/deep/rw/hello"
	[ "$out" = from-src ] && pass "the bind shows the source, at a target made for it" ||
		fail "the bind shows the source, at a target made for it" "stdout: $out" "stderr: $err"
	[ -d "$tmp/mnt/deep/rw" ] && [ ! -e "$tmp/mnt/deep/rw/hello" ] &&
		pass "the mount stays in the agent's mount namespace" ||
		fail "the mount stays in the agent's mount namespace"

	{ hello; mount_req 3 "$tmp/src" "$tmp/mnt/ro" "" $((4096 | 1)) ""; } >"$tmp/frames"
	expect_in "a read-only bind MOUNT is answered OK" "$(mraw)" "OK id=3"
	run_capture mar -- sh -c "cat $tmp/mnt/ro/hello && touch $tmp/mnt/ro/new"
	if [ "$out" = from-src ] && [ "$rc" != 0 ] && [ ! -e "$tmp/src/new" ]; then
		expect_in "a read-only bind reads, and refuses writes with EROFS" "$err" "Read-only file system"
	else
		fail "a read-only bind reads, and refuses writes with EROFS" "rc=$rc" "stdout: $out" "stderr: $err"
	fi

	{ hello; mount_req 3 "$tmp/src/hello" "$tmp/mnt/files/hello" "" 4096 ""; } >"$tmp/frames"
	expect_in "a bind of a file is answered OK" "$(mraw)" "OK id=3"
	run_capture mar -- cat "$tmp/mnt/files/hello"
	[ "$out" = from-src ] && [ -f "$tmp/mnt/files/hello" ] &&
		pass "a file bind gets an empty file as its mount point" ||
		fail "a file bind gets an empty file as its mount point" "stdout: $out" "stderr: $err"

	{ hello; mount_req 3 tmpfs "$tmp/mnt/tmp" tmpfs 0 "size=1m,mode=0700"; } >"$tmp/frames"
	expect_in "a tmpfs MOUNT with options is answered OK" "$(mraw)" "OK id=3"
	run_capture mar -- stat -c '%a' "$tmp/mnt/tmp"
	[ "$out" = 700 ] && pass "its data (mode=0700) is applied" ||
		fail "its data (mode=0700) is applied" "stdout: $out" "stderr: $err"

	{ hello; mount_req 3 "" "$tmp/mnt/deep/rw" "" $((4096 | 32 | 1)) ""; } >"$tmp/frames"
	expect_in "remounting a bind read-only is answered OK" "$(mraw)" "OK id=3"
	run_capture mar -- touch "$tmp/mnt/deep/rw/new"
	[ "$rc" != 0 ] && [ ! -e "$tmp/src/new" ] && pass "and it refuses writes from then on" ||
		fail "and it refuses writes from then on" "rc=$rc" "stderr: $err"

	# runvm do's writable layer: an overlay whose upper and work dirs the
	# agent makes on the tmpfs mounted just before.
	mkdir -p "$tmp/lower" && echo from-lower >"$tmp/lower/f"
	{ hello; mount_req 3 overlay "$tmp/mnt/ovl" overlay 0 \
		"lowerdir=$tmp/lower,upperdir=$tmp/mnt/tmp/up/per,workdir=$tmp/mnt/tmp/work"; } >"$tmp/frames"
	expect_in "an overlay MOUNT whose upperdir and workdir are missing is answered OK" "$(mraw)" "OK id=3"
	run_capture mar -- sh -c "cat $tmp/mnt/ovl/f && echo new >$tmp/mnt/ovl/f && cat $tmp/mnt/ovl/f"
	[ "$out" = "from-lower
new" ] && [ "$(cat "$tmp/lower/f")" = from-lower ] &&
		pass "its writes go to the upper layer, the lower one unchanged" ||
		fail "its writes go to the upper layer, the lower one unchanged" "stdout: $out" "stderr: $err"
	{ hello; mount_req 3 overlay "$tmp/mnt/ovl2" overlay 0 "lowerdir=$tmp/lower,upperdir=up,workdir=$tmp/mnt/tmp/w2"; } >"$tmp/frames"
	expect_in "an overlay whose upperdir is relative: ERROR EINVAL" "$(mraw)" \
		"ERROR id=3 code=22 overlay 'overlay' on $tmp/mnt/ovl2: create the overlay's upperdir and workdir: Invalid argument"

	{ hello; mount_req 3 none "$tmp/mnt/bad" no-such-fs 0 ""; } >"$tmp/frames"
	expect_in "an unknown fstype: ERROR ENODEV naming it and the target" "$(mraw)" \
		"ERROR id=3 code=19 no-such-fs 'none' on $tmp/mnt/bad: mount: No such device"
	run_capture mar --shutdown
	log=$(cat "$tmp/m.log")
	[ -z "$log" ] && pass "the mounting agent logged nothing" || fail "the mounting agent logged nothing" "${log:0:2000}"
else
	skip "MOUNT in a private mount namespace" "needs root and unshare -m"
fi

# --- the container as a whole: ps, stats, signal-all --------------------------------
# In --unix mode "the container" is the agent's descendants, never the host's
# other processes: a signal-all must not be kill(-1) here.
# bg_run NAME CMD...: agent-run CMD in the background; NAME.rc gets its status
bg_run() {
	local name=$1; shift
	{ "$run" --unix "$sock" --timeout-ms 5000 -- "$@" </dev/null >/dev/null 2>&1; echo $? >"$tmp/$name.rc"; } &
}
# wait_rc NAME: up to 5 s for NAME.rc; prints it
wait_rc() { wait_file "$tmp/$1.rc"; cat "$tmp/$1.rc" 2>/dev/null; }

bg_run s1 sh -c "echo \$\$ >$tmp/s1.pid; exec sleep 1000 111"
bg_run s2 sh -c "echo \$\$ >$tmp/s2.pid; exec bash -c 'exec -a \$(printf \"evil\\033[2J\") sleep 1000 222'"
sleep 1000 333 &
host_sleep=$!
wait_file "$tmp/s1.pid" && wait_file "$tmp/s2.pid"
s1=$(cat "$tmp/s1.pid") s2=$(cat "$tmp/s2.pid")
for _ in $(seq 100); do tr '\0' ' ' <"/proc/$s2/cmdline" 2>/dev/null | grep -q 'sleep 1000 222' && break; sleep 0.05; done

run_capture ar0 --ps
expect_rc "ps: exit 0" 0
expect_in "ps: the clock line gives the guest's CLK_TCK" "$out" "clock clk_tck=$(getconf CLK_TCK) "
line=$(grep "^$s1 " <<<"$out")
case "$line" in
"$s1 $main_agent $(id -u) S "*" sleep|sleep 1000 111") pass "ps: a started sleep with its pid, parent (the agent), uid, state, comm and args" ;;
*) fail "ps: a started sleep with its pid, parent (the agent), uid, state, comm and args" "line: $line" "ps: ${out:0:600}" ;;
esac
expect_in "ps: control bytes in an argv[0] arrive as '?'" "$(grep "^$s2 " <<<"$out")" "|evil?[2J 1000 222"
grep -q "^$host_sleep \|^$main_agent \|^$$ " <<<"$out" &&
	fail "ps: lists only the agent's descendants" "${out:0:600}" ||
	pass "ps: lists only the agent's descendants (not the agent, the test, or a host sleep)"
expect_in "ps: total and listed agree" "$(head -1 <<<"$out")" "total=2 listed=2"

run_capture ar0 --stats
expect_rc "stats: exit 0" 0
val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$out"; }
host_cpus=$(grep -c '^cpu[0-9]' /proc/stat)
host_mem=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024))
[ "$(val ncpus)" = "$host_cpus" ] && [ -n "$(val cpu$((host_cpus - 1))_ns)" ] &&
	pass "stats: ncpus and a figure for each" || fail "stats: ncpus and a figure for each" "$out"
[ "$(val cpu_total_ns)" -gt 0 ] && [ $(($(val cpu_user_ns) + $(val cpu_kernel_ns))) -le "$(val cpu_total_ns)" ] &&
	[ "$(val cpu0_ns)" -gt 0 ] && pass "stats: cpu time is busy time, user + kernel within the total" ||
	fail "stats: cpu time is busy time, user + kernel within the total" "$out"
[ "$(val mem_total_bytes)" = "$host_mem" ] && [ "$(val mem_used_bytes)" -gt 0 ] &&
	[ "$(val mem_used_bytes)" -lt "$host_mem" ] && pass "stats: memory total is MemTotal, used within it" ||
	fail "stats: memory total is MemTotal, used within it" "$out" "MemTotal: $host_mem"
[ "$(val pids_current)" = 2 ] && pass "stats: pids_current counts the two started processes" ||
	fail "stats: pids_current counts the two started processes" "$out"

run_capture ar0 --signal-all 0
expect_rc "signal-all 0: refused by the client" 125 &&
	expect_in "it says why" "$err" "signal 0 is not one of 1..64"
{ hello; frame 12 3 "$(u32 65)"; } >"$tmp/frames"
raw "SIGNAL_ALL of signal 65: the decoder refuses it" \
	"ERROR id=0 code=71 bad frame, closing the connection: SIGNAL_ALL frame: signal 65 is not one of 1..64"
{ hello; frame 13 3 "$(u32 1)"; } >"$tmp/frames"
raw "PS with a field it does not have: refused" "PS frame: 4 bytes after the last field"

run_capture ar0 --signal-all 15
expect_rc "signal-all SIGTERM: acknowledged" 0
[ "$(wait_rc s1)" = 143 ] && [ "$(wait_rc s2)" = 143 ] &&
	pass "signal-all: both started processes die of SIGTERM (143)" ||
	fail "signal-all: both started processes die of SIGTERM (143)" "s1: $(cat "$tmp/s1.rc" 2>&1)" "s2: $(cat "$tmp/s2.rc" 2>&1)"
kill -0 "$host_sleep" 2>/dev/null && kill -0 "$main_agent" 2>/dev/null &&
	pass "signal-all: a host process and the agent itself live on" ||
	fail "signal-all: a host process and the agent itself live on"
kill "$host_sleep" 2>/dev/null
wait "$host_sleep" 2>/dev/null
run_capture ar0 --ps
expect_in "ps after signal-all: nothing left" "$out" "total=0 listed=0"

# 100 cmdlines of 4 KiB are more than a frame holds: all listed, cut short.
long=$(printf '%04000d' 0)
bg_run many sh -c "for i in \$(seq 100); do sleep 1000 $long & done; echo \$\$ >$tmp/many.pid; wait"
wait_file "$tmp/many.pid"
for _ in $(seq 100); do
	[ "$(pgrep -c -P "$(cat "$tmp/many.pid")" sleep)" = 100 ] && break; sleep 0.05
done
run_capture ar0 --ps
expect_rc "ps of 101 processes with 4 KiB cmdlines: exit 0" 0
head=$(head -1 <<<"$out")
cut=$(grep -c '|sleep 1000 000' <<<"$out")
shortest=$(grep '|sleep 1000 000' <<<"$out" | awk '{ print length($0) }' | sort -n | head -1)
[[ "$head" == *"total=101 listed=101"* ]] && [ "$cut" = 100 ] && [ "${shortest:-0}" -lt 4000 ] &&
	pass "every process is listed, the cmdlines cut short to fit one frame" ||
	fail "every process is listed, the cmdlines cut short to fit one frame" "$head" "$cut sleeps, shortest line $shortest"
run_capture ar0 --signal-all 9
[ "$(wait_rc many)" = 137 ] && [ -z "$(pgrep -f "sleep 1000 $long")" ] &&
	pass "signal-all SIGKILL: the shell and its 100 children are gone" ||
	fail "signal-all SIGKILL: the shell and its 100 children are gone" "status $(cat "$tmp/many.rc" 2>&1)"

# NETCONF: an agent in a network namespace of its own, whose veth end
# stands for the guest's virtio-net interface, found by its MAC.
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
	nsock=$tmp/n.sock
	unshare -n sh -c 'ip link add eth0 address 52:54:00:aa:bb:01 type veth peer name peer0 &&
		ip link set peer0 up && exec "$0" --unix "$1"' "$agent" "$nsock" 2>"$tmp/n.log" &
	agent_pids+=("$!")
	for i in $(seq 100); do [ -S "$nsock" ] && break; sleep 0.05; done
	nraw() { timeout 10 "$run" --unix "$nsock" --raw <"$tmp/frames"; }
	nar() { "$run" --unix "$nsock" --timeout-ms 5000 "$@" </dev/null; }
	netconf() { # ID MAC MTU ADDRS... -- ROUTES...
		local id=$1 mac=$2 mtu=$3 addrs="" routes="" na=0 nr=0 in_routes=
		shift 3
		for x in "$@"; do
			if [ "$x" = -- ]; then in_routes=1; continue; fi
			if [ -n "$in_routes" ]; then routes+=$(str "$x"); nr=$((nr + 1))
			else addrs+=$(str "$x"); na=$((na + 1)); fi
		done
		frame 19 "$id" "$(str "$mac")$(u32 "$mtu")$(u32 $na)$addrs$(u32 $nr)$routes"
	}
	{ hello; netconf 3 52:54:00:aa:bb:01 1400 10.77.0.2/24 fd77::2/64 -- 10.78.0.0/16 "default via 10.77.0.1"; } >"$tmp/frames"
	expect_in "NETCONF of the interface with that MAC is answered OK" "$(nraw)" "OK id=3"
	run_capture nar -- ip -o addr show dev eth0
	expect_in "it has the IPv4 address" "$out" "inet 10.77.0.2/24"
	expect_in "and the IPv6 one" "$out" "inet6 fd77::2/64"
	run_capture nar -- ip link show dev eth0
	expect_in "it is up, with the MTU" "$out" "mtu 1400"
	run_capture nar -- ip route show
	expect_in "the default route goes by the gateway" "$out" "default via 10.77.0.1 dev eth0"
	expect_in "an on-link route is on the interface" "$out" "10.78.0.0/16 dev eth0"
	{ hello; netconf 3 52:54:00:aa:bb:99 0 10.1.0.2/24; } >"$tmp/frames"
	expect_in "NETCONF of a MAC no interface has: ERROR ENODEV naming it" "$(nraw)" \
		"ERROR id=3 code=19 network: no interface with MAC 52:54:00:aa:bb:99"
	{ hello; netconf 3 52:54:00:aa:bb:01 0 10.1.0.2; } >"$tmp/frames"
	expect_in "an address without its prefix: refused by the decoder" "$(nraw)" \
		"addrs[0] '10.1.0.2' is not ADDRESS/PREFIX"
	{ hello; netconf 3 52:54:00:aa:bb:01 0 -- "default via 10.99.0.1 "; } >"$tmp/frames"
	expect_in "a route that does not parse: refused, naming it" "$(nraw)" "routes[0] 'default via 10.99.0.1 '"
	log=$(cat "$tmp/n.log")
	[ -z "$log" ] && pass "the networking agent logged nothing" || fail "the networking agent logged nothing" "${log:0:2000}"
else
	skip "NETCONF in a network namespace" "needs root and unshare -n"
fi

# --- RESEED: in --unix mode only the reply; the host's RNG and clock are not ours ----
run_capture ar0 --reseed
expect_rc "RESEED through agent_reseed: exit 0" 0 && [ "$out" = "cid 0" ] &&
	pass "RESEED gets RESEED_REPLY with cid 0 (the host's /dev/vsock is not the agent's)" ||
	fail "RESEED gets RESEED_REPLY with cid 0 (the host's /dev/vsock is not the agent's)" \
		"stdout: $out" "stderr: $err"
seed=$(printf '%0128d' 0)   # 64 bytes; realtime_ns 0: leave the clock
{ hello; frame 20 3 "$(u32 64)$seed$(u32 0)$(u32 0)"; } >"$tmp/frames"
raw "RESEED by hand: RESEED_REPLY with its id" "RESEED_REPLY id=3 cid=0"
{ hello; frame 20 3 "$(u32 63)${seed:2}$(u32 0)$(u32 0)"; } >"$tmp/frames"
raw "RESEED with a 63-byte seed: the decoder refuses it" \
	"ERROR id=0 code=71 bad frame, closing the connection: RESEED frame: seed is 63 bytes, it must be exactly 64"
# Without CAP_SYS_ADMIN and CAP_SYS_TIME, RNDADDENTROPY and clock_settime
# fail (EPERM): a reply shows the agent tried neither.
if [ "$(id -u)" = 0 ] && setpriv --bounding-set -sys_admin,-sys_time true 2>/dev/null; then
	rm -f "$tmp/r.sock"
	setpriv --bounding-set -sys_admin,-sys_time -- "$agent" --unix "$tmp/r.sock" 2>"$tmp/r.log" &
	agent_pids+=("$!")
	for i in $(seq 100); do [ -S "$tmp/r.sock" ] && break; sleep 0.05; done
	run_capture "$run" --unix "$tmp/r.sock" --timeout-ms 5000 --reseed
	[ "$rc" = 0 ] && [ "$out" = "cid 0" ] &&
		pass "RESEED in --unix mode tries neither RNDADDENTROPY nor clock_settime" ||
		fail "RESEED in --unix mode tries neither RNDADDENTROPY nor clock_settime" \
			"exit status $rc" "stdout: $out" "stderr: $err"
	"$run" --unix "$tmp/r.sock" --shutdown </dev/null
else
	skip "RESEED in --unix mode tries neither RNDADDENTROPY nor clock_settime" \
		"needs root and setpriv"
fi

# --- the agent dies mid-stream: an error, never a hang ---------------------------
start_agent "$tmp/b.sock" "$tmp/b.log" || { summary; exit 1; }
timeout 20 "$run" --unix "$tmp/b.sock" -- sh -c "echo written-before; echo \$\$ >$tmp/guest.pid; exec sleep 30" \
	</dev/null >"$tmp/killed.out" 2>"$tmp/killed.err" &
client=$!
for i in $(seq 100); do [ -s "$tmp/guest.pid" ] && break; sleep 0.05; done
t0=$SECONDS
kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null
wait "$client"
rc=$? err=$(cat "$tmp/killed.err")
[ "$rc" = 125 ] && [ $((SECONDS - t0)) -le 5 ] && pass "agent killed mid-stream: agent-run fails within seconds" ||
	fail "agent killed mid-stream: agent-run fails within seconds" "status $rc after $((SECONDS - t0)) s"
expect_in "what the process wrote before the agent died still arrived" "$(cat "$tmp/killed.out")" "written-before"
expect_in "it says the agent connection was lost" "$err" "lost the agent connection before 'sh' exited"
guest_pid=$(cat "$tmp/guest.pid" 2>/dev/null)
for i in $(seq 40); do kill -0 "$guest_pid" 2>/dev/null || break; sleep 0.05; done
if [ -n "$guest_pid" ] && kill -0 "$guest_pid" 2>/dev/null; then
	kill -KILL "$guest_pid"
	fail "its process died with the test agent" "pid $guest_pid was still running"
else
	pass "its process died with the test agent"
fi

# --- SHUTDOWN: --unix mode exits 0 -------------------------------------------------
run_capture ar0 --shutdown
expect_rc "SHUTDOWN is acknowledged" 0
for i in $(seq 40); do kill -0 "$main_agent" 2>/dev/null || break; sleep 0.05; done
wait "$main_agent"
rc=$?
[ "$rc" = 0 ] && [ ! -e "$sock" ] && pass "the agent exits 0 and removes its socket" ||
	fail "the agent exits 0 and removes its socket" "status $rc"
log=$(cat "$tmp/agent.log")
[ -z "$log" ] && pass "the agent logged nothing (no sanitizer report)" ||
	fail "the agent logged nothing (no sanitizer report)" "${log:0:2000}"

summary
