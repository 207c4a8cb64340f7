#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The client of tests/preload/test_spawn.sh, run under usmc-run.

    spawn_peer.py HOST PORT WAY[,WAY...]

Connects to `preload_peer server PORT spawn`, then per round makes a
child in one WAY while the SMC-R connection is open, checks that its own
moves 1 MiB each way (every byte checked, preload_peer's pattern), then
checks that the data did not cross the TCP connection (the connection is
still SMC-R) and that its own SIGUSR1 handler still runs. Ways:
  run          subprocess.run, close_fds=True (vfork, close_range in the child)
  run-noclose  subprocess.run, close_fds=False (glibc's posix_spawn)
  posix_spawn  os.posix_spawn
  system       os.system (glibc's system)
  popen        glibc's popen through ctypes (os.popen is subprocess)
  fork-exec    os.fork, the child closes the socket and execs
Exit 0 and "spawn: ok ..." when every check passed.
"""
import ctypes
import os
import signal
import socket
import subprocess
import sys

MIB = 1 << 20
TRUE = "/bin/true"


def pattern(n, seed):
    # preload_peer's pat(): ((i * 131 + seed) ^ (i >> 9) ^ (i >> 17)) & 0xff
    a = bytes((i * 131) & 0xFF for i in range(256)) * (n // 256)
    a = a.translate(bytes((x + seed) & 0xFF for x in range(256)))
    b = bytes(((i >> 9) ^ (i >> 17)) & 0xFF for i in range(n))
    x = int.from_bytes(a, "little") ^ int.from_bytes(b, "little")
    return x.to_bytes(n, "little")


def fail(msg):
    print("spawn: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check_status(how, st):
    if os.waitstatus_to_exitcode(st) != 0:
        fail("%s: child status 0x%x" % (how, st))


def spawn(how, sock):
    if how == "run":
        r = subprocess.run([TRUE], close_fds=True)
        rc = r.returncode
    elif how == "run-noclose":
        r = subprocess.run([TRUE], close_fds=False)
        rc = r.returncode
    elif how == "posix_spawn":
        pid = os.posix_spawn(TRUE, [TRUE], os.environ)
        _, st = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(st)
    elif how == "system":
        rc = os.waitstatus_to_exitcode(os.system("exec " + TRUE))
    elif how == "popen":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.popen.restype = ctypes.c_void_p
        libc.popen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.pclose.argtypes = [ctypes.c_void_p]
        f = libc.popen(("exec " + TRUE).encode(), b"r")
        if not f:
            fail("popen: errno %d" % ctypes.get_errno())
        rc = os.waitstatus_to_exitcode(libc.pclose(f))
    elif how == "fork-exec":
        pid = os.fork()
        if pid == 0:
            try:
                os.close(sock.fileno())
                os.execv(TRUE, [TRUE])
            finally:
                os._exit(127)
        _, st = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(st)
    else:
        fail("unknown way " + how)
    if rc != 0:
        fail("%s: /bin/true exited %d" % (how, rc))


def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k <= 0:
            fail("read at %d of %d: EOF" % (got, n))
        got += k
    return bytes(buf)


def check_smcr(sock, how):
    # The TCP connection under an SMC-R one carries only the CLC
    # handshake. Had a child's close ended the SMC-R connection, usmc
    # would have dropped the socket and the data would cross over TCP,
    # byte-exact: struct tcp_info's tcpi_bytes_acked (offset 120) and
    # tcpi_bytes_received (128) tell.
    ti = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(ti) < 136:
        fail("TCP_INFO: %d bytes" % len(ti))
    acked = int.from_bytes(ti[120:128], sys.byteorder)
    received = int.from_bytes(ti[128:136], sys.byteorder)
    if acked >= 16384 or received >= 16384:
        fail("%s: the data went over TCP (%d bytes sent, %d received)"
             % (how, acked, received))


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port, ways = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    seen = []
    signal.signal(signal.SIGUSR1, lambda s, f: seen.append(s))
    sock = socket.create_connection((host, port), timeout=60)
    for rnd, how in enumerate(ways):
        spawn(how, sock)
        try:
            sock.sendall(pattern(MIB, (60 + rnd) & 0xFF))
            got = recv_exact(sock, MIB)
        except OSError as e:
            fail("%s: after the child: %s" % (how, e))
        want = pattern(MIB, (160 + rnd) & 0xFF)
        if got != want:
            i = next(i for i in range(MIB) if got[i] != want[i])
            fail("%s: byte %d is 0x%02x, want 0x%02x" % (how, i, got[i], want[i]))
        check_smcr(sock, how)
        before = len(seen)
        signal.raise_signal(signal.SIGUSR1)
        if len(seen) != before + 1:
            fail("%s: the parent's SIGUSR1 handler did not run" % how)
    sock.close()
    print("spawn: ok, %d rounds (%s), 1 MiB each way after each"
          % (len(ways), ",".join(ways)))


if __name__ == "__main__":
    main()
