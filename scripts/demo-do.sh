#!/usr/bin/env bash
# The part of `make demo` that runs in a VM: what a new user tries first with
# runvm do: another kernel, this machine's files, writes that stay in the VM,
# and the command's status. Runs where /dev/kvm can boot guests (the host, or
# the testbed's L2).
# usage: scripts/demo-do.sh RUNVM
set -u
runvm=${1:?usage: demo-do.sh RUNVM}

show() { echo "==> $*"; "$@"; }

show "$runvm" do -- uname -a || exit 1
echo "==> this machine runs $(uname -srv): the VM ran a kernel of its own"
script='echo "in the VM: $(nproc) CPUs, $(cat /etc/hostname) in /etc/hostname";
echo changed-in-the-vm >/etc/hostname; rm -f /usr/bin/ls;
echo "in the VM after writing: $(cat /etc/hostname); ls is $(command -v ls || echo gone)"'
show "$runvm" do --cpus 2 -- sh -c "$script" || exit 1
echo "==> on this machine: /etc/hostname says $(cat /etc/hostname); ls is $(command -v ls)"
show "$runvm" do -- sh -c 'exit 3'
echo "==> exit status $? (the command said exit 3)"
