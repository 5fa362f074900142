#!/usr/bin/env bash
# A pod's network in the guest, on a real /dev/kvm: runvm as an OCI runtime
# whose spec names a network namespace set up as CNI's ptp plugin does (a
# veth, its address, a default route via the host's end). Checked from both
# sides: the guest's interface has the veth's MAC, MTU, address and routes;
# ping and TCP both ways; an HTTP server in the guest reached from the host;
# 100 MB carried intact; nothing left in the namespace afterwards; and the
# bad cases (a namespace that is not there, two interfaces) refused by name.
# usage: tests/integration/test_net_vm.sh BUILD_DIR
set -u
if [ -z "${RUNVM_NET_NS:-}" ]; then
	exec env RUNVM_NET_NS=1 unshare -m --propagation private "$0" "$@"
fi
t_suite=net-vm
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib.sh"
build=$(cd "${1:?usage: test_net_vm.sh BUILD_DIR}" && pwd)
. "$top/tests/integration/oci-vm-lib.sh"
oci_vm_setup net-vm
ns=rvnet$$ host_if=rvh$$ host_ip=10.77.0.1 guest_ip=10.77.0.2
ns2=rvnet2$$ dohost=rvdohost$$ up=rvup$$
cleanup() {
	oci_vm_cleanup
	[ -z "${do_pid:-}" ] || kill -9 "$do_pid" 2>/dev/null
	for n in "$ns" "$ns2" "$dohost" "$up"; do ip netns del "$n" 2>/dev/null; done
	ip link del "$host_if" 2>/dev/null
	for p in ${up_httpd:-} ${recv_pid:-}; do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT
bb=/bin/busybox
# Host-side clients: Debian's static busybox wget segfaults before it
# connects (on this host as in the testbed), so HTTP is python's.
fetch() { # URL TIMEOUT: the body on stdout
	python3 -c 'import sys, urllib.request
sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=int(sys.argv[2])).read())' "$@"
}
send_file() { # HOST PORT FILE: connect (retrying up to 120 s), send, close
	python3 - "$@" <<'PY'
import socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
end = time.time() + 120
while True:
    try:
        s = socket.create_connection((host, port), timeout=10)
        break
    except OSError:
        if time.time() > end:
            sys.exit("nothing listening on %s:%d" % (host, port))
        time.sleep(1)
s.settimeout(120)
with open(path, "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        s.sendall(b)
s.close()
PY
}
# Every wait is bounded: a stalled guest costs this, not the suite's limit.
wait_for() { # SECONDS CMD...: until CMD succeeds
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 1
	done
}

# --- the pod: a namespace with a veth, as CNI leaves it ---------------------------
ip netns add "$ns" && ip link add "$host_if" mtu 1400 type veth peer name eth0 mtu 1400 netns "$ns" &&
	ip addr add "$host_ip/24" dev "$host_if" && ip link set "$host_if" up &&
	ip -n "$ns" addr add "$guest_ip/24" dev eth0 && ip -n "$ns" link set eth0 up &&
	ip -n "$ns" link set lo up && ip -n "$ns" route add default via "$host_ip" ||
	{ fail "a network namespace with a veth (iproute2)" "setup failed"; summary; exit 1; }
pod_mac=$(ip -n "$ns" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')

b=$scratch/bundles
# BUNDLE NETNS-PATH: the spec joins that namespace, and the process may
# ping (CAP_NET_RAW) and serve on low ports, as a pod's container may.
with_net() {
	python3 - "$1/config.json" "$2" <<'PY'
import json, sys
path, netns = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["linux"]["namespaces"].append({"type": "network", "path": netns})
caps = ["CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]
c["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
c["annotations"]["io.runvm.memory"] = "256M"
json.dump(c, open(path, "w"))
PY
}

# --- the guest's interface is the veth's ---------------------------------------------
mkbundle "$b/show" sh -c "ip -o link; ip -o -4 addr show; ip route; ping -c 2 -W 10 $host_ip >/dev/null && echo ping-ok"
with_net "$b/show" "/run/netns/$ns"
run_capture timeout -k 10 300 "$build/bin/runvm" --root "$root" run -b "$b/show" show
expect_rc "runvm run in a pod's namespace: exit 0" 0
expect_in "the guest's interface has the veth's address" "$out" "$guest_ip/24"
expect_in "and its MAC ($pod_mac)" "$out" "link/ether $pod_mac"
expect_in "and its MTU (1400)" "$out" "mtu 1400"
expect_in "the default route goes via the host's end" "$out" "default via $host_ip"
expect_in "the guest pings the host" "$out" "ping-ok"
qdisc=$(tc -n "$ns" qdisc show dev eth0)
[[ "$qdisc" != *ingress* ]] && [ "$(ip -n "$ns" -o link | grep -c runvm)" = 0 ] &&
	pass "the container gone, the veth has no redirect and no tap is left" ||
	fail "the container gone, the veth has no redirect and no tap is left" "$qdisc" "$(ip -n "$ns" -o link)"

# --- a server in the guest, reached from the host; 100 MB both ways ------------------
mkbundle "$b/srv" sh -c "mkdir -p /www && echo hello-from-the-guest >/www/hello.txt &&
	head -c 20971520 /dev/urandom >/www/blob && md5sum </www/blob >/www/blob.md5 &&
	exec httpd -f -p 80 -h /www"
with_net "$b/srv" "/run/netns/$ns"
# The host's side of the pod's DNS, as an engine binds it.
echo "nameserver $host_ip" >"$scratch/resolv.conf"
touch "$b/srv/rootfs/etc/resolv.conf"
python3 - "$b/srv/config.json" "$scratch/resolv.conf" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["mounts"].append({"destination": "/etc/resolv.conf", "type": "bind", "source": sys.argv[2],
                    "options": ["rbind", "ro"]})
json.dump(c, open(sys.argv[1], "w"))
PY
run_capture rv run -d -b "$b/srv" srv
expect_rc "a server in the pod starts (run -d)" 0
if wait_for 180 fetch "http://$guest_ip/blob.md5" 5; then
	got=$(fetch "http://$guest_ip/hello.txt" 10 2>&1)
	[ "$got" = hello-from-the-guest ] && pass "the host fetches a page from the guest's HTTP server" ||
		fail "the host fetches a page from the guest's HTTP server" "got: $got"
	run_capture $bb ping -c 2 -W 10 "$guest_ip"
	expect_rc "the host pings the guest" 0
	sum=$(fetch "http://$guest_ip/blob" 120 | md5sum | cut -d' ' -f1)
	want=$(fetch "http://$guest_ip/blob.md5" 10 | cut -d' ' -f1)
	[ -n "$want" ] && [ "$sum" = "$want" ] && pass "20 MB from the guest arrive intact (md5 $want)" ||
		fail "20 MB from the guest arrive intact" "host: $sum" "guest: $want"
else
	fail "the host fetches a page from the guest's HTTP server" "nothing on $guest_ip:80 within 180 s"
fi
# The guest's receive path (mergeable buffers, the tap's offloads): 100 MB
# from the host into nc in the guest.
head -c 104857600 /dev/urandom >"$scratch/big"
want=$(md5sum <"$scratch/big" | cut -d' ' -f1)
timeout -k 10 300 "$build/bin/runvm" --root "$root" exec srv sh -c \
	"nc -l -p 9000 | md5sum; cat /etc/resolv.conf" >"$scratch/recv.out" 2>&1 &
recv_pid=$!
run_capture send_file "$guest_ip" 9000 "$scratch/big"
expect_rc "the host sends 100 MB to nc in the guest" 0
wait "$recv_pid"
out=$(cat "$scratch/recv.out")
expect_in "100 MB from the host arrive intact (md5 $want)" "$out" "$want"
expect_in "the bundle's resolv.conf is the container's" "$out" "nameserver $host_ip"
rm -f "$scratch/big"
run_capture rv create -b "$b/show" second
[ "$rc" != 0 ] && pass "a second sandbox in a pod's namespace in use: create fails" ||
	fail "a second sandbox in a pod's namespace in use: create fails" "rc $rc"
expect_in "saying whose it is" "$err" "already another runvm sandbox's"
fetch "http://$guest_ip/hello.txt" 30 >/dev/null && pass "and the first keeps its network" ||
	fail "and the first keeps its network" "no answer from $guest_ip"
rv delete --force srv >/dev/null 2>&1
qdisc=$(tc -n "$ns" qdisc show dev eth0)
[[ "$qdisc" != *ingress* ]] && pass "delete --force leaves no redirect on the veth" ||
	fail "delete --force leaves no redirect on the veth" "$qdisc"

# --- no namespace path: loopback only ---------------------------------------------------
mkbundle "$b/lo" sh -c "ip -o link | cut -d: -f2"
run_capture rv run -b "$b/lo" lo
expect_rc "without a network namespace path: exit 0" 0
# sit0, the guest kernel's own IPv6-in-IPv4 device, is no interface to a network.
[ "$(echo $out | tr ' ' '\n' | grep -v '^sit0' | tr '\n' ' ')" = "lo " ] &&
	pass "the guest has its loopback only" ||
	fail "the guest has its loopback only" "links: $out"

# --- bad input ------------------------------------------------------------------------
mkbundle "$b/missing" true
with_net "$b/missing" "/run/netns/no-such-pod"
run_capture rv create -b "$b/missing" missing
[ "$rc" != 0 ] && pass "a network namespace that is not there: create fails" ||
	fail "a network namespace that is not there: create fails" "rc $rc"
expect_in "and names it" "$err" "/run/netns/no-such-pod"
[ -z "$(rv list -q)" ] && [ "$(vmm_processes)" = 0 ] &&
	pass "and leaves no container and no VMM" || fail "and leaves no container and no VMM" "$(rv list)"

# A pod's other container's /proc/PID/ns/net, which for a runvm VMM is the
# host's own namespace: never taken.
mkbundle "$b/ours" true
with_net "$b/ours" "/proc/$$/ns/net"
run_capture rv create -b "$b/ours" ours
[ "$rc" != 0 ] && pass "runvm's own network namespace (the host's): create fails" ||
	fail "runvm's own network namespace (the host's): create fails" "rc $rc"
expect_in "and says why" "$err" "is runvm's own (the host's)"
[ -z "$(rv list -q)" ] && [ "$(vmm_processes)" = 0 ] && [ -z "$(ip -o link | grep runvm)" ] &&
	pass "and leaves no container, VMM or tap" || fail "and leaves no container, VMM or tap" "$(rv list; ip -o link)"

if ip netns add "$ns2" && ip -n "$ns2" link add a0 type veth peer name a1; then
	mkbundle "$b/two" true
	with_net "$b/two" "/run/netns/$ns2"
	run_capture rv create -b "$b/two" two
	[ "$rc" != 0 ] && pass "a namespace with two interfaces: create fails" ||
		fail "a namespace with two interfaces: create fails" "rc $rc"
	expect_in "and names both (a0)" "$err" "a0" && expect_in "and names both (a1)" "$err" "a1"
	[ -z "$(ip -n "$ns2" -o link | grep runvm)" ] && [[ "$(tc -n "$ns2" qdisc show)" != *ingress* ]] &&
		pass "and leaves no tap or redirect there" || fail "and leaves no tap or redirect there" "$(ip -n "$ns2" -o link)"
else
	fail "a namespace with two interfaces" "setup failed"
fi

# --- runvm do --ip: a network of the VM's own, NAT out ----------------------------
# In a namespace standing for the host, whose default route leads to an
# "upstream" namespace with no route back to the VM's /24: a reply reaches
# the VM only through do's masquerade. Everything do makes lives in the
# first; nothing of it may be left there afterwards.
ip netns add "$dohost" && ip netns add "$up" &&
	ip -n "$dohost" link add uplink type veth peer name eth0 netns "$up" &&
	ip -n "$dohost" addr add 10.88.0.1/24 dev uplink && ip -n "$dohost" link set uplink up &&
	ip -n "$dohost" link set lo up && ip -n "$dohost" route add default via 10.88.0.2 &&
	ip -n "$up" addr add 10.88.0.2/24 dev eth0 && ip -n "$up" link set eth0 up &&
	ip -n "$up" link set lo up ||
	fail "namespaces for runvm do --ip" "setup failed"
mkdir -p "$scratch/upwww"
echo from-upstream >"$scratch/upwww/up.txt"
ip netns exec "$up" $bb httpd -f -p 10.88.0.2:80 -h "$scratch/upwww" &
up_httpd=$!
left_behind() { # what do --ip may not leave: a veth, a rule, forwarding on
	{ ip -n "$dohost" -o link | grep rvdo; ip netns exec "$dohost" iptables -w -S | grep -- -A;
	  ip netns exec "$dohost" iptables -w -t nat -S | grep -- -A
	  ip netns exec "$dohost" sysctl -n net.ipv4.ip_forward | grep -v '^0$'; } 2>&1
}
nothing_left() { [ -z "$(left_behind)" ]; }
rvdo_in() { timeout -k 10 240 ip netns exec "$dohost" "$build/bin/runvm" do "$@"; }
# The VM runs this host's root: its busybox and python.
run_capture rvdo_in --ip 192.168.77.2 -- sh -c 'ip -o -4 addr show
	busybox ping -c 2 -W 10 192.168.77.3 >/dev/null && echo ping-host-ok
	busybox ping -c 2 -W 10 10.88.0.2 >/dev/null && echo ping-upstream-ok
	/usr/bin/python3 -c "import urllib.request as u; print(u.urlopen(\"http://10.88.0.2/up.txt\", timeout=30).read().decode())"
	exit 3'
expect_rc "runvm do --ip: the command's status comes back (3)" 3
expect_in "the VM has --ip/24" "$out" "192.168.77.2/24"
expect_in "it pings this host's end (192.168.77.3)" "$out" "ping-host-ok"
expect_in "it pings beyond this host, through NAT" "$out" "ping-upstream-ok"
expect_in "TCP beyond this host, through NAT (HTTP)" "$out" "from-upstream"
left=$(left_behind)
[ -z "$left" ] && pass "runvm do --ip leaves no veth and no iptables rule" ||
	fail "runvm do --ip leaves no veth and no iptables rule" "$left"
kill "$up_httpd" 2>/dev/null

ip netns exec "$dohost" "$build/bin/runvm" do --ip 192.168.77.2 -- sleep 600 &
do_pid=$!
if wait_for 180 ip netns exec "$dohost" $bb ping -c 1 -W 2 192.168.77.2; then
	kill -INT "$do_pid"
	wait "$do_pid"
	rc=$?
	[ "$rc" = 130 ] && pass "SIGINT ends runvm do --ip as it ends its command (130)" ||
		fail "SIGINT ends runvm do --ip as it ends its command (130)" "status $rc"
	left=$(left_behind)
	[ -z "$left" ] && pass "and leaves no veth and no iptables rule" ||
		fail "and leaves no veth and no iptables rule" "$left"
else
	fail "runvm do --ip -- sleep: the VM answers ping within 180 s" "no answer"
	kill -9 "$do_pid" 2>/dev/null
fi
do_pid=

# SIGKILL: runvm do cannot clean up, its keeper (forked before the jail) does.
ip netns exec "$dohost" "$build/bin/runvm" do --ip 192.168.77.2 -- sleep 600 &
do_pid=$!
if wait_for 180 ip netns exec "$dohost" $bb ping -c 1 -W 2 192.168.77.2; then
	kill -KILL "$do_pid"
	wait "$do_pid"
	wait_for 20 nothing_left &&
		pass "SIGKILL to runvm do --ip: its keeper removes the veth and the iptables rules" ||
		fail "SIGKILL to runvm do --ip: its keeper removes the veth and the iptables rules" \
			"$(left_behind)"
else
	fail "runvm do --ip -- sleep (to be killed): the VM answers ping within 180 s" "no answer"
	kill -9 "$do_pid" 2>/dev/null
fi
do_pid=

ip -n "$dohost" addr add 192.168.78.3/32 dev lo
run_capture rvdo_in --ip 192.168.78.2 -- true
[ "$rc" != 0 ] && pass "an --ip whose peer address is taken: refused" ||
	fail "an --ip whose peer address is taken: refused" "rc $rc"
expect_in "naming the address and link in its /24" "$err" "already has 192.168.78.3 on lo"
run_capture rvdo_in --ip 192.168.78 -- true
expect_rc "a malformed --ip: exit 1" 1 && expect_in "naming the flag" "$err" "--ip '192.168.78'"
left=$(left_behind)
[ -z "$left" ] && pass "refusals leave nothing either" || fail "refusals leave nothing either" "$left"

summary
