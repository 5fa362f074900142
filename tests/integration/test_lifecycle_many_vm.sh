#!/usr/bin/env bash
# Many containers at once on a real /dev/kvm (issue 7): RUNVM_LIFECYCLE_MANY
# small busybox containers started with `run -d`, all running together,
# listed, then deleted with nothing left. A suite of its own so that a
# testbed fault here costs a retry of this part only. 20, in the testbed
# too: there, 20 cold boots at once on its 2 emulated CPUs failed 6 attempts
# of 7 (a guest triple-faulted, or an agent missed its 120 s while the others
# booted), but all but the first now start from its template (vmm/template.h).
# RUNVM_LIFECYCLE_MANY sets another count.
# usage: tests/integration/test_lifecycle_many_vm.sh BUILD_DIR
set -u
if [ -z "${RUNVM_LIFECYCLE_NS:-}" ]; then
	exec env RUNVM_LIFECYCLE_NS=1 unshare -m --propagation private "$0" "$@"
fi
t_suite=lifecycle-many-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=${1:?usage: test_lifecycle_many_vm.sh BUILD_DIR}
build=$(cd "$build" && pwd)
many=${RUNVM_LIFECYCLE_MANY:-20}
. "$top/tests/integration/oci-vm-lib.sh"
oci_vm_setup lifecycle-many-vm
b=$scratch/b

# --- many at once -----------------------------------------------------------------------
mkbundle "$b/small" sleep 1000
sed -i 's/"io.runvm.memory": "128M"/"io.runvm.memory": "64M"/' "$b/small/config.json"
# Started 2 at a time: in the testbed every guest boot costs seconds of
# emulated CPU; 20 at once on its 2 CPUs outlast the agent's 120 s, and so,
# now and then, did 4 at once beside 16 running guests (seen twice: one
# agent not up within 120 s). They all run at once at the end.
for i in $(seq "$many"); do
	rv run -d --bundle "$b/small" "m$i" >"$scratch/m$i.log" 2>&1 &
	[ $((i % 2)) != 0 ] || wait
done
wait
n=$(rv list | grep -c ' running ')
# What a container that is not running left: its state and the VMM's logs,
# or, when its create failed (and cleaned up), what create said, which
# carries the VMM's reason (a testbed fault there gets the suite its retry).
not_running() {
	local i id
	for i in $(seq "$many"); do
		id=m$i
		if ! rv state "$id" >/dev/null 2>&1; then
			echo "$id: create failed: $(tail -n 5 "$scratch/$id.log" 2>/dev/null)"
			continue
		fi
		[ "$(field "$(rv state "$id")" status)" = running ] && continue
		echo "$id: $(rv state "$id" | tr -d '\n ')"
		tail -n 5 "$root/$id/boot.log" "$root/$id/vmm.log" "$scratch/$id.log" 2>/dev/null
	done
}
[ "$n" = "$many" ] && pass "$many containers run at once" ||
	fail "$many containers run at once" "$n running" "$(not_running)"
run_capture rv list --format json
n=$(grep -o '"status":"running"' <<<"$out" | wc -l)
[ "$n" = "$many" ] && pass "list --format json shows them" || fail "list --format json shows them" "$n"
for i in $(seq "$many"); do rv delete --force "m$i" & done
wait
[ -z "$(rv list -q)" ] && [ "$(vmm_processes)" = 0 ] && pass "delete --force of all of them leaves nothing" ||
	fail "delete --force of all of them leaves nothing" "$(rv list)"

summary
