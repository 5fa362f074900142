#!/usr/bin/env bash
# Template clones on a real /dev/kvm (vmm/template.h): the first container of
# a shape boots and saves a template at agent ready; the next ones start from
# it. Each clone must be a machine of its own (its own entropy, boot id,
# vsock CID, wall clock) and behave as a booted one (exit statuses, exec); a
# broken template costs a boot, never a failed create; io.runvm.template=false
# turns it off.
# usage: tests/integration/test_template_vm.sh BUILD_DIR
set -u
if [ -z "${RUNVM_LIFECYCLE_NS:-}" ]; then
	exec env RUNVM_LIFECYCLE_NS=1 unshare -m --propagation private "$0" "$@"
fi
t_suite=template-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_template_vm.sh BUILD_DIR}
build=$(cd "$build" && pwd)
. "$top/tests/integration/oci-vm-lib.sh"
oci_vm_setup template-vm
b=$scratch/b
store=$root/.templates

# What a container tells of its machine: boot id, 16 random bytes, the time.
mkbundle "$b/who" sh -c 'cat /proc/sys/kernel/random/boot_id; head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"; echo; date +%s'
# rv with the VMM's debug log in FILE.
rvlog() { local log=$1; shift; "$build/bin/runvm" --root "$root" --debug --log "$log" "$@"; }
templates() { find "$store" -mindepth 1 -maxdepth 1 -name '[0-9a-f]*' 2>/dev/null | wc -l; }

run_capture rvlog "$scratch/c0.log" run --bundle "$b/who" c0
expect_rc "the first container boots" 0
first=$out
n=$(templates)
[ "$n" = 1 ] && [ -s "$(echo "$store"/*/state)" ] && [ -f "$(echo "$store"/*/memory)" ] &&
	pass "and saves a template of its shape" ||
	fail "and saves a template of its shape" "$n templates: $(ls -la "$store" "$store"/* 2>&1)" \
		"$(grep -i template "$scratch/c0.log")"
grep -q 'cloned from template' "$scratch/c0.log" &&
	fail "the first one was not a clone" "$(grep template "$scratch/c0.log")"

declare -A boot rnd cid
for i in 1 2; do
	run_capture rvlog "$scratch/c$i.log" run --bundle "$b/who" "c$i"
	expect_rc "container $i runs" 0 || continue
	boot[$i]=$(sed -n 1p <<<"$out") rnd[$i]=$(sed -n 2p <<<"$out")
	line=$(grep -o 'cloned from template [0-9a-f]*: guest CID [0-9]*, agent ready [0-9]* ms' "$scratch/c$i.log")
	[ -n "$line" ] && pass "container $i started from the template ($line)" ||
		fail "container $i started from the template" "$(grep -i -e template -e warn "$scratch/c$i.log")"
	cid[$i]=$(sed -n 's/.*guest CID \([0-9]*\).*/\1/p' <<<"$line")
	t=$(sed -n 3p <<<"$out")
	now=$(date +%s)
	[ -n "$t" ] && [ $((now - t)) -le 30 ] && [ $((t - now)) -le 30 ] &&
		pass "clone $i's clock is the host's, not the template's" ||
		fail "clone $i's clock is the host's, not the template's" "guest $t, host $now"
done
[ -n "${boot[1]:-}" ] && [ "${boot[1]}" != "${boot[2]:-}" ] && [ "${boot[1]}" != "$(sed -n 1p <<<"$first")" ] &&
	pass "each clone has a boot id of its own" ||
	fail "each clone has a boot id of its own" "${boot[1]:-} ${boot[2]:-} $(sed -n 1p <<<"$first")"
[ -n "${rnd[1]:-}" ] && [ "${rnd[1]}" != "${rnd[2]:-}" ] && [ "${rnd[1]}" != "$(sed -n 2p <<<"$first")" ] &&
	pass "each clone's random bytes are its own" ||
	fail "each clone's random bytes are its own" "${rnd[1]:-} ${rnd[2]:-} $(sed -n 2p <<<"$first")"
[ -n "${cid[1]:-}" ] && [ "${cid[1]}" != "${cid[2]:-}" ] &&
	pass "each clone has a vsock CID of its own (${cid[1]:-}, ${cid[2]:-})" ||
	fail "each clone has a vsock CID of its own" "${cid[1]:-} ${cid[2]:-}"

# A clone behaves as a booted VM: exit statuses, signals, exec, kill.
mkbundle "$b/three" sh -c 'exit 3'
run_capture rv run --bundle "$b/three" s3
expect_rc "a clone's exit status reaches the caller (3)" 3
mkbundle "$b/sleep" sleep 1000
run_capture rvlog "$scratch/d.log" run -d --bundle "$b/sleep" d1
expect_rc "run -d of a clone" 0
run_capture rv exec d1 cat /proc/sys/kernel/random/boot_id
expect_rc "exec into a clone" 0
[ "$out" != "${boot[1]:-}" ] && [ -n "$out" ] && pass "the exec'd process sees its clone's boot id" ||
	fail "the exec'd process sees its clone's boot id" "$out"
rv kill d1 KILL
run_capture rv wait d1
expect_in "SIGKILL ends a clone with 137" "$out" '"exitStatus":137'
rv delete --force d1 >/dev/null 2>&1
grep -q 'cloned from template' "$scratch/d.log" && pass "the detached one was a clone too" ||
	fail "the detached one was a clone too" "$(grep -i template "$scratch/d.log")"

# Another shape: its own template; io.runvm.template=false: none at all.
mkbundle "$b/small" true
sed -i 's/"io.runvm.memory": "128M"/"io.runvm.memory": "96M"/' "$b/small/config.json"
run_capture rv run --bundle "$b/small" s1
expect_rc "a container of another shape runs" 0
[ "$(templates)" = 2 ] && pass "and saves a template of its own" || fail "and saves a template of its own" "$(ls "$store")"
mkbundle "$b/off" true
sed -i 's/"io.runvm.memory": "128M"/"io.runvm.memory": "80M", "io.runvm.template": "false"/' "$b/off/config.json"
run_capture rvlog "$scratch/off.log" run --bundle "$b/off" o1
expect_rc "io.runvm.template=false runs" 0
[ "$(templates)" = 2 ] && ! grep -q -e 'cloned from' -e 'saved template' "$scratch/off.log" &&
	pass "and neither clones nor saves" || fail "and neither clones nor saves" "$(ls "$store")"
# The operator's switch, for every container: RUNVM_TEMPLATES=off.
mkbundle "$b/env" true
sed -i 's/"io.runvm.memory": "128M"/"io.runvm.memory": "72M"/' "$b/env/config.json"
run_capture env RUNVM_TEMPLATES=off "$build/bin/runvm" --root "$root" --debug --log "$scratch/env.log" run --bundle "$b/env" e1
expect_rc "RUNVM_TEMPLATES=off runs" 0
[ "$(templates)" = 2 ] && ! grep -q -e 'cloned from' -e 'saved template' "$scratch/env.log" &&
	pass "and neither clones nor saves" || fail "RUNVM_TEMPLATES=off neither clones nor saves" "$(ls "$store")"
run_capture env RUNVM_TEMPLATES=maybe "$build/bin/runvm" --root "$root" run --bundle "$b/env" e2
[ "$rc" != 0 ] && expect_in "a bad RUNVM_TEMPLATES is refused, naming it" "$err" 'RUNVM_TEMPLATES=maybe'
sed -i 's/"io.runvm.template": "false"/"io.runvm.template": "maybe"/' "$b/off/config.json"
run_capture rv run --bundle "$b/off" o2
[ "$rc" != 0 ] && expect_in "a bad io.runvm.template is refused, naming it" "$err" 'io.runvm.template'

# A damaged template costs a boot, not the container, and is replaced.
for f in "$store"/*/state; do head -c 100 "$f" >"$f.cut" && mv "$f.cut" "$f"; done
run_capture rvlog "$scratch/bad.log" run --bundle "$b/who" bad
expect_rc "a container whose template is damaged still runs" 0
grep -q 'booting instead' "$scratch/bad.log" && pass "by booting, and says why" ||
	fail "by booting, and says why" "$(grep -i -e template -e warn "$scratch/bad.log")"
run_capture rvlog "$scratch/again.log" run --bundle "$b/who" again
expect_rc "the next one runs" 0
grep -q 'cloned from template' "$scratch/again.log" && pass "from the template saved in its place" ||
	fail "from the template saved in its place" "$(grep -i -e template -e warn "$scratch/again.log")"

[ -z "$(rv list -q)" ] && [ "$(vmm_processes)" = 0 ] && [ -z "$(ls -A "$store" | grep '^\.tmp')" ] &&
	pass "nothing is left but the templates" ||
	fail "nothing is left but the templates" "$(rv list) $(ls -la "$store")"
summary
