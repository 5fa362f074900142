# Shared by the engine suites (tests/e2e/test_*.sh). Source after tests/lib.sh.
# shellcheck shell=bash

# e2e_need WHAT PACKAGE CMD...: every CMD on PATH (or an executable path), or
# the suite fails at once naming the package: an engine missing is a
# failure, never a skip.
e2e_need() {
	local what=$1 package=$2 c
	shift 2
	for c in "$@"; do
		command -v "$c" >/dev/null && continue
		fail "$what installed" "missing $c: run scripts/install-deps.sh (Debian's $package)"
		summary
		exit 1
	done
}

# e2e_scratch NAME: $scratch, a private tmpfs, where the engine keeps its
# root, state and socket (overlay snapshots need a filesystem overlayfs
# takes as upper, which the testbed's root is not).
e2e_scratch() {
	scratch=$(mktemp -d "/tmp/$1.XXXXXX")
	mount -t tmpfs -o size=1g "runvm-$1" "$scratch" && return 0
	fail "a private tmpfs for $1" "mount failed"
	summary
	exit 1
}

# e2e_unmount_scratch: what the engine mounted there, then the tmpfs.
e2e_unmount_scratch() {
	grep -o " $scratch/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
	umount -l "$scratch" 2>/dev/null
	rm -rf --one-file-system "$scratch"
}

# e2e_no_vmm_left: none of this suite's VMMs (their bundles are in $scratch).
e2e_no_vmm_left() {
	local left
	left=$(pgrep -fc "runvm .*boot --bundle $scratch/" || true)
	[ "$left" = 0 ] && pass "no VMM left running" ||
		fail "no VMM left running" "$(pgrep -af "runvm .*boot --bundle $scratch/")"
}
