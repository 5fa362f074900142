# runvm: `make` builds build/bin/runvm; `make check` runs every test layer
# (DESIGN §10); `make check-sanitize` runs them under ASan+UBSan; `make demo` is
# the first thing to run on a fresh machine.

PREFIX ?= /usr/local
CC ?= cc
SAN ?= 0

ifeq ($(SAN),1)
B := build/san
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B := build
SAN_FLAGS :=
endif

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1.0-dev)
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. $(SAN_FLAGS) -MMD -MP
LDFLAGS += $(SAN_FLAGS)

LIB_SRCS := $(wildcard common/*.c) $(wildcard vmm/*.c) $(wildcard vmm/x86/*.c) \
	$(wildcard devices/*/*.c)
CLI_SRCS := $(wildcard runtime/*.c)
RT_SRCS := $(filter-out runtime/main.c,$(CLI_SRCS))
UNIT_SRCS := $(wildcard tests/unit/*/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(B)/obj/%.o)
RT_OBJS := $(RT_SRCS:%.c=$(B)/obj/%.o)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(B)/obj/%.o)

RUNVM := $(B)/bin/runvm
UNIT := $(B)/tests/unit-tests
SELFCHECK := $(B)/tests/kvm-selfcheck
VCPU_STATE_CHECK := $(B)/tests/kvm-vcpu-state
BOOT_LOOP := $(B)/tests/boot-loop
AGENT_STRESS := $(B)/tests/agent-stress
FS_MOUNT := $(B)/tests/fs-mount
FS_ESCAPE := $(B)/tests/fs-escape
VSOCK_BENCH := $(B)/bench/vsock-bench
NET_BENCH := $(B)/bench/net-bench

GUEST := build/share/runvm
PAYLOAD_INITRD := build/tests/payload-initramfs.cpio
HOSTILE_INITRD := build/tests/hostile-initramfs.cpio
CHROOT_ESCAPE := build/tests/chroot-escape


.PHONY: check-clang
.PHONY: all check check-sanitize demo e2e install clean testbed-tools testbed-kernel guest-kernel
all: $(RUNVM) $(SELFCHECK) $(VCPU_STATE_CHECK) $(BOOT_LOOP) $(AGENT_STRESS) $(FS_MOUNT) $(FS_ESCAPE) $(VSOCK_BENCH) $(NET_BENCH) guest-kernel $(PAYLOAD_INITRD) $(HOSTILE_INITRD) $(CHROOT_ESCAPE)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DRUNVM_VERSION='"$(VERSION)"' -c -o $@ $<

# What lib.a needs at link time (vmm/jail.c: libseccomp).
LIB_LDLIBS := -lseccomp -lpthread

$(B)/lib.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# The runtime (CLI verbs, spec, state) without main: the unit tests link it too.
$(B)/runtime.a: $(RT_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(RUNVM): $(B)/obj/runtime/main.o $(B)/runtime.a $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lyajl -lseccomp -lpthread

$(UNIT): $(UNIT_OBJS) $(B)/runtime.a $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion -lyajl -lseccomp -lpthread

$(SELFCHECK): $(B)/obj/tests/kvm/selfcheck.o $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LDLIBS)

# A template's vCPU saved and restored into a second VM (DESIGN §10, layer 5).
$(VCPU_STATE_CHECK): $(B)/obj/tests/kvm/vcpu_state_check.o $(B)/obj/tests/kvm/state_compare.o $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LDLIBS)

$(BOOT_LOOP): $(B)/obj/tests/integration/boot_loop.o $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LDLIBS)

$(AGENT_STRESS): $(B)/obj/tests/integration/agent_stress.o $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LDLIBS)

# The FUSE server on a host mount through /dev/fuse (DESIGN §10, layer 3).
$(FS_MOUNT): $(B)/obj/tests/fs/fs_mount.o $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LDLIBS)

# The hostile client jails itself inside a mount: static, so it runs with no
# host libraries in sight, and never sanitized (it is not code under test).
$(FS_ESCAPE): tests/fs/fs_escape.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 -static -pthread -o $@ $<

# Static: bench/net.sh copies it into a busybox container; never sanitized.
$(NET_BENCH): bench/net_bench.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 -static -o $@ $<

$(VSOCK_BENCH): $(B)/obj/bench/vsock_bench.o $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LDLIBS)

# --- guest artifacts: our kernel (vmlinux for PVH, bzImage) -------------------
guest-kernel:
	@scripts/build-kernel.sh --fragment guest/kernel/config-x86_64 --out build/guest-kernel \
		| grep -v 'is up to date' || true
	@test -f build/guest-kernel/.key
	@mkdir -p $(GUEST)
	@# Replaced by rename: a VM booting meanwhile reads the old file or the new, whole.
	@for f in vmlinux bzImage; do \
		[ $(GUEST)/$$f -nt build/guest-kernel/$$f ] || \
		{ cp build/guest-kernel/$$f $(GUEST)/$$f.tmp && mv $(GUEST)/$$f.tmp $(GUEST)/$$f; } || exit 1; \
	done

# A static test payload as /init (tests/payloads/report.c): never sanitized.
build/tests/payload-init: tests/payloads/report.c tests/payloads/init_world.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -static -o $@ $<

$(PAYLOAD_INITRD): build/tests/payload-init
	@rm -rf $@.d && mkdir -p $(addprefix $@.d/,proc dev)
	@cp $< $@.d/init
	@cd $@.d && find . | cpio --quiet -o -H newc -R 0:0 >$(abspath $@).tmp
	@rm -rf $@.d && mv $@.tmp $@

# A container's process trying the classic chroot escape (tests/payloads/
# chroot_escape.c): static, for a busybox rootfs; never sanitized.
$(CHROOT_ESCAPE): tests/payloads/chroot_escape.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 -static -o $@ $<

# The hostile-guest suite's /init (tests/integration/hostile/): static, never
# sanitized (it is the attacker, not code under test).
HOSTILE_SRCS := $(wildcard tests/integration/hostile/*.c)
build/tests/hostile-init: $(HOSTILE_SRCS) tests/integration/hostile/hostile.h tests/payloads/init_world.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -O2 -static -pthread -o $@ $(HOSTILE_SRCS)

$(HOSTILE_INITRD): build/tests/hostile-init
	@rm -rf $@.d && mkdir -p $(addprefix $@.d/,proc dev)
	@cp $< $@.d/init
	@cd $@.d && find . | cpio --quiet -o -H newc -R 0:0 >$(abspath $@).tmp
	@rm -rf $@.d && mv $@.tmp $@

# --- the agent: the guest's static /init, its initramfs images, host tests -----
# build/bin/runvm-agent goes into the initramfs and is never sanitized. The
# host-mode tests (DESIGN §10, layer 4) run it with --unix, or under SAN=1 a
# sanitized dynamic build of the same sources, $(B)/tests/runvm-agent-host.
AGENT := build/bin/runvm-agent
AGENT_SRCS := $(wildcard guest/agent/*.c) common/proto.c common/proto_check.c common/err.c \
	common/netaddr.c common/netlink.c
AGENT_HOST := $(B)/tests/runvm-agent-host
AGENT_RUN := $(B)/tests/agent-run
AGENT_INITRD := $(GUEST)/initramfs.img
AGENT_BUSYBOX_CPIO := build/tests/agent-busybox.cpio
AGENT_ROOT_DIRS := dev proc sys tmp run

all: $(AGENT) $(AGENT_INITRD) $(AGENT_BUSYBOX_CPIO) $(AGENT_RUN)
ifeq ($(SAN),1)
all: $(AGENT_HOST)
endif
# The agent's objects live outside $(B) whatever B is: their header
# dependencies too (a protocol change must rebuild every agent file).
ifneq ($(B),build)
-include $(shell find build/obj/static -name '*.d' 2>/dev/null)
endif

build/obj/static/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -Os -ffunction-sections \
		-fdata-sections -MMD -MP -c -o $@ $<

$(AGENT): $(AGENT_SRCS:%.c=build/obj/static/%.o)
	@mkdir -p $(dir $@)
	$(CC) -static -s -Wl,--gc-sections -o $@ $^

$(AGENT_HOST): $(AGENT_SRCS:%.c=$(B)/obj/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

$(AGENT_RUN): $(B)/obj/tests/agent/agent_run.o $(B)/lib.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread

# newc, uncompressed, owned by root, the agent as /init.
$(AGENT_INITRD): $(AGENT)
	@rm -rf $@.d && mkdir -p $(addprefix $@.d/,$(AGENT_ROOT_DIRS))
	@cp $< $@.d/init
	@cd $@.d && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 >$(abspath $@).tmp
	@rm -rf $@.d && mv $@.tmp $@

# The same plus Debian's busybox-static and one /bin symlink per applet: the
# commands whole-VM tests need before virtio-fs exists; and a PID 1 that runs
# the agent as its child, for tests that kill the agent.
$(AGENT_BUSYBOX_CPIO): $(AGENT) /bin/busybox tests/payloads/agent-as-child
	@rm -rf $@.d && mkdir -p $(addprefix $@.d/,$(AGENT_ROOT_DIRS) bin)
	@cp $< $@.d/init && cp /bin/busybox $@.d/bin/busybox
	@cp tests/payloads/agent-as-child $@.d/bin/agent-as-child
	@for a in $$(/bin/busybox --list); do \
		[ -e $@.d/bin/$$a ] || ln -s busybox $@.d/bin/$$a || exit 1; done
	@cd $@.d && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 >$(abspath $@).tmp
	@rm -rf $@.d && mv $@.tmp $@

# --- testbed: L2 kernel, its static init, initramfs (never sanitized) ---------
TB := build/testbed

testbed-tools: $(TB)/initramfs.cpio $(TB)/tsc-khz

testbed-kernel:
	@scripts/build-kernel.sh --fragment tests/testbed/config-x86_64 --out $(TB)/kernel

$(TB)/init: tests/testbed/init.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -static -o $@ $<

$(TB)/tsc-khz: tests/testbed/tsc_khz.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -o $@ $<

$(TB)/initramfs.cpio: $(TB)/init
	@rm -rf $(TB)/initramfs && mkdir -p $(addprefix $(TB)/initramfs/,proc sys dev lower rw newroot)
	@cp $< $(TB)/initramfs/init
	@cd $(TB)/initramfs && find . | cpio --quiet -o -H newc -R 0:0 >../initramfs.cpio.tmp
	@mv $@.tmp $@

# --- tests --------------------------------------------------------------------
# Every C file must also build warning-free under clang (STYLE: gcc and clang).
CLANG_SRCS := $(LIB_SRCS) $(CLI_SRCS) $(UNIT_SRCS) $(wildcard tests/*/*.c) $(HOSTILE_SRCS) $(wildcard guest/agent/*.c) $(wildcard bench/*.c)
check-clang:
	@command -v clang >/dev/null || { echo "clang missing: run scripts/install-deps.sh"; exit 1; }
	@for f in $(CLANG_SRCS); do clang -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. \
		-fsyntax-only $$f || exit 1; done
	@echo "clang: $(words $(CLANG_SRCS)) files build without warnings"

check: all $(UNIT) check-clang fuzz-build
	@tests/check.sh --build $(B) --suites unit,cli,kvm-host,agent,fs-host,vm,testbed,fuzz

# Under ASan+UBSan, of the whole-VM suites, agent-vm (guest-supplied bytes
# through the virtio core, vsock and the agent protocol) and hostile-vm
# (guests attacking every device and the file service). The file server is
# sanitized through /dev/fuse (fs-host) and in its unit tests and fuzzer;
# boot's loaders in the unit tests and fuzzers. Every emulated nested VM
# twice over would not fit CI's 90 minutes. Its stream is 32 MiB, not 128:
# the same code paths, at a quarter of the emulated minutes under ASan.
check-sanitize:
	@$(MAKE) --no-print-directory SAN=1 all build/san/tests/unit-tests
	@RUNVM_VM_SUITES="agent-vm hostile-vm" RUNVM_AGENT_STREAM_MIB=32 \
		tests/check.sh --build build/san --suites unit,cli,kvm-host,agent,fs-host,vm

demo:
	@scripts/demo.sh

# The engines (containerd's runc shim, containerd's CRI plugin driven as a
# kubelet would, podman, Docker), each started by its test with its own root,
# state and socket, in the testbed where KVM cannot boot guests. `make check`
# runs the CRI one there (a pod, through containerd's CRI plugin and runc
# shim, as Kubernetes drives runvm): CI's 90 minutes do not hold the others.
e2e: all
	@RUNVM_VM_SUITES="containerd-vm cri-vm podman-vm docker-vm" tests/check.sh --build $(B) --suites vm

install: all
	install -D -m 0755 $(RUNVM) $(DESTDIR)$(PREFIX)/bin/runvm
	install -D -m 0644 $(GUEST)/vmlinux $(DESTDIR)$(PREFIX)/share/runvm/vmlinux
	install -D -m 0644 $(GUEST)/bzImage $(DESTDIR)$(PREFIX)/share/runvm/bzImage
	install -D -m 0644 $(AGENT_INITRD) $(DESTDIR)$(PREFIX)/share/runvm/initramfs.img

clean:
	rm -rf build/bin build/obj build/tests build/lib.a build/runtime.a build/san build/fuzz

# --- fuzzing (libFuzzer) -------------------------------------------------------
# Every parser of untrusted bytes has a target (DESIGN §8). To add one:
#   tests/fuzz/fuzz_<name>.c     LLVMFuzzerTestOneInput()
#   FUZZ_SRCS_<name> := ...      the sources it links (below)
#   tests/fuzz/corpus/<name>/    a few small valid inputs as seeds
# Targets are built by clang straight from the sources, never from lib.a (gcc,
# uninstrumented). `make fuzz FUZZ_SECONDS=N` runs each for N seconds on a
# working copy of its seeds in build/fuzz/corpus/<name> (tests/fuzz/run.sh).
FUZZ_CC ?= clang
FUZZ_CFLAGS := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -g -O1 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I.
FUZZ_SECONDS ?= 60
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)

# FUZZ_LIBS_<name> := -l...   libraries a target links, when it needs any.
FUZZ_SRCS_proto := common/proto.c common/proto_check.c common/netaddr.c common/err.c
FUZZ_SRCS_fuse := $(wildcard devices/fs/server.c devices/fs/inode.c devices/fs/locks.c devices/fs/ops_*.c) common/err.c common/log.c common/jsonw.c
FUZZ_SRCS_virtq := devices/virtio/queue.c vmm/guest_mem.c common/err.c
FUZZ_SRCS_spec := runtime/spec.c runtime/spec_process.c runtime/spec_hooks.c runtime/spec_userns.c runtime/spec_devices.c runtime/hooks.c runtime/caps.c runtime/json.c common/jsonw.c common/err.c
FUZZ_LIBS_spec := -lyajl
FUZZ_SRCS_process := $(FUZZ_SRCS_spec)
FUZZ_LIBS_process := -lyajl
FUZZ_SRCS_seccomp := $(FUZZ_SRCS_spec) runtime/seccomp.c
FUZZ_LIBS_seccomp := -lyajl -lseccomp
FUZZ_SRCS_net := tests/unit/devices/vdriver.c devices/net/net.c devices/virtio/mmio.c \
	devices/virtio/virtio.c devices/virtio/queue.c common/evloop.c common/log.c common/jsonw.c \
	common/err.c vmm/guest_mem.c
FUZZ_SRCS_template := common/snapbuf.c devices/virtio/persist.c devices/rng/rng.c \
	devices/virtio/virtio.c devices/virtio/queue.c common/log.c common/jsonw.c common/err.c \
	vmm/guest_mem.c
FUZZ_SRCS_vsock := tests/unit/devices/vdriver.c devices/vsock/vsock.c devices/vsock/conn.c \
	devices/vsock/packet.c devices/virtio/mmio.c devices/virtio/virtio.c devices/virtio/queue.c \
	common/evloop.c common/log.c common/jsonw.c common/err.c vmm/guest_mem.c

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@tests/fuzz/run.sh --seconds $(FUZZ_SECONDS) $(FUZZ_NAMES)

# FUZZ_SRCS_<name> is looked up when the rule runs, so it may be set anywhere.
.SECONDEXPANSION:
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRCS_$$*) $$(wildcard */*.h */*/*.h */*/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS_$*) $(FUZZ_LIBS_$*)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
