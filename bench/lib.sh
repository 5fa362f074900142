# Shared by the benchmarks that set runvm beside runc and crun (lifecycle.sh,
# exec.sh): getting to a machine whose KVM boots guests. Sourced; uses the
# caller's $top (the checkout) and $runvm (the binary under test).
# shellcheck shell=bash

# bench_build: the packages and the build, before anything else.
bench_build() {
	"$top/scripts/install-deps.sh"
	make -s -C "$top" all >/dev/null
}

# bench_reenter NAME: never returns. Runs "$top/bench/SCRIPT --here" (SCRIPT
# is $0's name: a relative $0 would not survive the caller's cd "$top") on
# this host's hardware KVM when runvm can boot guests on it, otherwise in the
# testbed (TESTBED_CPUS (2), TESTBED_MEMORY (4G), TESTBED_TIMEOUT (7200 s)),
# saying which with NAME. A caller that needs other defaults sets them before
# the call (density.sh: TESTBED_MEMORY=${TESTBED_MEMORY:-16G}); the user's
# environment still wins.
#
# In the testbed, runc and crun need a kernel with cgroup BPF: on cgroup v2
# both load their device filter as a BPF program and refuse the container
# when bpf(2) is missing (runc always adds "m" rules, so it cannot skip it).
# When tests/testbed/config-x86_64 lacks CONFIG_CGROUP_BPF, the testbed gets a
# fragment of ours (that file plus CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF,
# written to build/bench/), an L2 kernel built once (10-20 min on 2 cores) and
# kept in build/testbed/kernel-<hash>; runvm is measured under the same L2
# kernel as its peers. Every bench shares that one fragment, file name and
# text as lifecycle.sh first wrote them: tests/testbed/run keys the kernel's
# directory by the fragment's path and scripts/build-kernel.sh the build by
# its text, so another name or another comment line would build the kernel
# again.
bench_reenter() {
	local name=$1 frag self=$top/bench/${0##*/}
	if "$runvm" features | grep -q '"io.runvm.kvm.bootable": "true"'; then
		echo "$name bench: on this host's hardware KVM"
		exec "$self" --here
	fi
	echo "$name bench: in the testbed (this host's KVM cannot boot guests); times are for ratios only"
	if [ -z "${RUNVM_TESTBED_FRAGMENT:-}" ] && ! grep -qx 'CONFIG_CGROUP_BPF=y' "$top/tests/testbed/config-x86_64"; then
		frag=$top/build/bench/testbed-lifecycle.config
		mkdir -p "$top/build/bench"
		{
			cat "$top/tests/testbed/config-x86_64"
			echo "# bench/lifecycle.sh: runc and crun load their device cgroup filter as a cgroup BPF program."
			echo CONFIG_BPF_SYSCALL=y
			echo CONFIG_CGROUP_BPF=y
		} >"$frag.tmp"
		if cmp -s "$frag.tmp" "$frag"; then rm -f "$frag.tmp"; else mv "$frag.tmp" "$frag"; fi
		export RUNVM_TESTBED_FRAGMENT=$frag
	fi
	exec "$top/tests/testbed/run" --cpus "${TESTBED_CPUS:-2}" --memory "${TESTBED_MEMORY:-4G}" \
		--timeout "${TESTBED_TIMEOUT:-7200}" -- "$self" --here
}

# bench_scratch NAME: a private tmpfs for the bundles and every runtime's
# state (the checkout may be the testbed's 9p and its /tmp an overlay), the
# state roots, rv/rc/cr for the three runtimes, and a trap that deletes every
# container left and the tmpfs. Sets $scratch, $rv_root, $rc_root, $cr_root.
bench_scratch() {
	scratch=$(mktemp -d "/tmp/runvm-$1.XXXXXX")
	mount -t tmpfs -o size=512m,mode=0700 "runvm-$1" "$scratch"
	rv_root=$scratch/state-runvm rc_root=$scratch/state-runc cr_root=$scratch/state-crun
	mkdir -p "$rv_root" "$rc_root" "$cr_root"
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}
# bench_vmm_pss PID...: the VMMs' PSS and the guest memory's share of it (the
# memfd, vmm/guest_mem.c: Pss_Shmem), summed, in KiB, in one awk (a fork per
# VMM costs seconds in the testbed).
bench_vmm_pss() {
	local p files=()
	for p in "$@"; do files+=("/proc/$p/smaps_rollup"); done
	awk '/^Pss:/ {p += $2} /^Pss_Shmem:/ {s += $2} END {print p + 0, s + 0}' "${files[@]}"
}
rv() { "$runvm" --root "$rv_root" "$@"; }
rc() { "$runc" --root "$rc_root" "$@"; }
cr() { "$crun" --root "$cr_root" "$@"; }
bench_cleanup() {
	local id
	for id in $(rv list -q 2>/dev/null); do rv delete --force "$id" >/dev/null 2>&1 || true; done
	# density.sh has neither: unset, each would print "unbound variable" (set -u).
	[ -z "${runc:-}" ] || for id in $(rc list -q 2>/dev/null); do rc delete --force "$id" >/dev/null 2>&1 || true; done
	[ -z "${crun:-}" ] || for id in $(cr list -q 2>/dev/null); do cr delete --force "$id" >/dev/null 2>&1 || true; done
	umount -l "$scratch" 2>/dev/null || true
	rmdir "$scratch" 2>/dev/null || true
}
