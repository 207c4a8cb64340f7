#!/usr/bin/env python3
"""Hostile SMC CLC clients for test_hostile.sh.

Each client connects to HOST:PORT (and prints "connected") and misbehaves
in one way (MODE), keeps the connection until the server ends it or HOLD
seconds pass, then prints one line: MODE, what the server sent back (the CLC message types it
recognised, or bytes), and how the connection ended, with the time.

Modes:
  silent     connect and send nothing
  truncated  the first 82 bytes of a Proposal, then nothing
  trickle    a Proposal, 4 bytes every 3 s
  huge       a CLC header announcing 65535 bytes, then a few filler bytes
  random     200 random bytes (no eyecatcher: a plain TCP client)
  badtype    a whole CLC Confirm as the first message
  proposal   a whole valid SMC-Rv2 Proposal (random system id), then
             silence: the server answers with an Accept and waits for a
             Confirm that never comes

The Proposal is the Linux kernel's (tests/vectors/clc/a07-proposal-v2.hex)
with its system id randomised and its EID set to usmc's default UEID, so a
usmc server takes it as it would a real client's.
"""
import argparse
import os
import socket
import sys
import time

EYE = bytes.fromhex("e2d4c3d9")
UEID = b"USMC-DEFAULT-UEID".ljust(32, b" ")


def load_hex(path):
    with open(path) as f:
        return bytes.fromhex("".join(l.strip() for l in f if not l.startswith("#")))


def proposal(vectors):
    p = bytearray(load_hex(os.path.join(vectors, "clc", "a07-proposal-v2.hex")))
    p[8:16] = os.urandom(8)  # sender system id: a peer of its own
    eid = p.find(b"SEEDTEST")
    if eid < 0:
        sys.exit("hostile_clc: the Proposal vector has no EID to replace")
    p[eid : eid + 32] = UEID
    return bytes(p)


def confirm(vectors):
    return load_hex(os.path.join(vectors, "clc", "b17-confirm-v2.hex"))


CLC_TYPES = {1: "proposal", 2: "accept", 3: "confirm", 4: "decline"}


def describe(data):
    """The CLC messages in |data| by type, or a byte count."""
    out, i = [], 0
    while i + 8 <= len(data) and data[i : i + 4] == EYE:
        length = int.from_bytes(data[i + 5 : i + 7], "big")
        name = CLC_TYPES.get(data[i + 4], "type%d" % data[i + 4])
        if name == "decline" and i + 20 <= len(data):
            name += ":%08x" % int.from_bytes(data[i + 16 : i + 20], "big")
        out.append(name)
        if length < 8:
            break
        i += length
    if i < len(data):
        out.append("%d-bytes" % (len(data) - i))
    return "+".join(out) or "nothing"


def run(args):
    s = socket.create_connection((args.host, args.port), timeout=5)
    s.setblocking(False)
    print("connected", flush=True)
    start = time.monotonic()
    got = b""
    todo = b""
    trickle = False
    if args.mode == "truncated":
        todo = proposal(args.vectors)[:82]
    elif args.mode == "trickle":
        todo, trickle = proposal(args.vectors), True
    elif args.mode == "huge":
        todo = EYE + bytes([1]) + (65535).to_bytes(2, "big") + bytes([0x22]) + b"\0" * 64
    elif args.mode == "random":
        todo = os.urandom(200)
        if todo[:1] == EYE[:1]:
            todo = b"x" + todo[1:]
    elif args.mode == "badtype":
        todo = confirm(args.vectors)
    elif args.mode == "proposal":
        todo = proposal(args.vectors)
    elif args.mode != "silent":
        sys.exit("hostile_clc: unknown mode " + args.mode)
    end = "held"
    next_send = start
    while time.monotonic() - start < args.hold:
        now = time.monotonic()
        if todo and now >= next_send:
            n = 4 if trickle else len(todo)
            try:
                sent = s.send(todo[:n])
                todo = todo[sent:]
            except BlockingIOError:
                pass
            except OSError as e:
                end = "send-error:" + (os.strerror(e.errno) if e.errno else str(e))
                break
            next_send = now + 3 if trickle else now
        try:
            d = s.recv(4096)
            if not d:
                end = "closed"
                break
            got += d
        except BlockingIOError:
            time.sleep(0.02)
        except OSError as e:
            end = "reset" if e.errno == 104 else "error:" + os.strerror(e.errno)
            break
    s.close()
    print("%s got=%s end=%s after=%.1fs" % (args.mode, describe(got), end,
                                           time.monotonic() - start), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("mode")
    ap.add_argument("--hold", type=float, default=12.0,
                    help="seconds to keep the connection at most (default 12)")
    ap.add_argument("--vectors", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "vectors"),
        help="the CLC test vectors directory")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
