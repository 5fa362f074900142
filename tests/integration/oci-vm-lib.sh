# Shared by the whole-VM suites that drive runvm as an OCI runtime
# (test_lifecycle_vm.sh, test_exec_vm.sh). Source after tests/lib.sh with
# $build and $top set; call oci_vm_setup NAME first.
# shellcheck shell=bash

# A scratch dir on a private tmpfs (the checkout may be the testbed's 9p,
# where every FUSE request would become emulated 9p round trips), the
# state root in it, and a trap that deletes every container left and the
# tmpfs. Sets $scratch and $root.
oci_vm_setup() { # NAME
	scratch=$(mktemp -d "/tmp/$1.XXXXXX")
	root=$scratch/state
	trap oci_vm_cleanup EXIT
	mount -t tmpfs -o size=512m "runvm-$1" "$scratch" ||
		{ fail "a private tmpfs for the bundles" "mount failed"; summary; exit 1; }
}
oci_vm_cleanup() {
	for id in $(rv list -q 2>/dev/null); do rv delete --force "$id" >/dev/null 2>&1; done
	umount -l "$scratch" 2>/dev/null
	rm -rf --one-file-system "$scratch"
}
rv() { "$build/bin/runvm" --root "$root" "$@"; }
# JSON field of `runvm state` (flat string or number fields only).
field() { sed -n "s/^  \"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" <<<"$1"; }
# A VMM's command line: runvm --log ROOT/ID/vmm.log ... boot ... ID
vmm_processes() { pgrep -f "runvm --log $root/" | wc -l; }

mkbundle() { "$top/tests/integration/make-bundle.sh" "$@" >/dev/null; }

# The client's side of a console socket, as containerd's or podman's: takes
# the pty master, optionally resizes it as a shim does on a client's resize
# (SIZE "ROWSxCOLS", "" for none), types INPUT, reads what comes back until
# the process has gone (EIO) and prints it, after "pty-name=/dev/pts/N".
console_client() { # SOCKET INPUT SIZE RUNVM-ARGS...
	python3 - "$@" <<'PY'
import fcntl, os, socket, struct, subprocess, sys, termios, time
path, typed, size, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
runvm = subprocess.Popen(args)
conn, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
master = fds[0]
if runvm.wait() != 0:
    sys.exit("runvm exited %d" % runvm.returncode)
print("pty-name=" + msg.decode())
if size:
    rows, cols = (int(v) for v in size.split("x"))
    time.sleep(1)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    time.sleep(2)                  # the resize reaches the guest first
os.write(master, typed.encode())
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.unlink(path)
sys.stdout.write(out.decode(errors="replace"))
PY
}
