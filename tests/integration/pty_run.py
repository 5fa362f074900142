#!/usr/bin/env python3
"""Runs a command on a new pty of ROWS x COLS (sized before the command
starts), as a user at a terminal would: prints what it shows; once it has
shown "ready", types Ctrl-C; then prints "status: exit N" or "status: signal N".
usage: pty_run.py ROWS COLS CMD [ARG...]"""
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

TIMEOUT_S = 300


def main():
    rows, cols, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    size = struct.pack("HHHH", rows, cols, 0, 0)
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, size)    # its size before CMD reads it
        os.execvp(argv[0], argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, size)
    shown, typed, deadline = b"", False, time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break       # EIO: the terminal's last user is gone
        if not chunk:
            break
        shown += chunk
        if not typed and b"ready" in shown:
            os.write(fd, b"\x03")
            typed = True
    sys.stdout.write(shown.decode(errors="replace").replace("\r\n", "\n"))
    done, status = os.waitpid(pid, os.WNOHANG)
    if not done:
        print(f"pty_run: still running after {TIMEOUT_S} s: killed")
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        print(f"status: signal {os.WTERMSIG(status)}")
    else:
        print(f"status: exit {os.WEXITSTATUS(status)}")


if __name__ == "__main__":
    main()
