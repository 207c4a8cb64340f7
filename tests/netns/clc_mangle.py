#!/usr/bin/env python3
"""A TCP relay that changes one field of one CLC message, for the fault
matrix's decline cases (fault_matrix.py): the end that reads the changed
message declines with the reason that field calls for, both ends fall
back to TCP, and the stream goes on through the relay byte for byte.

clc_mangle.py LISTEN_ADDR LISTEN_PORT SERVER_ADDR SERVER_PORT MANGLE

Serves one connection. Each direction is parsed as CLC messages while it
starts with the CLC eyecatcher, and relayed raw from the first byte that
does not (the application's stream after a fallback). MANGLE:

  accept-release   the Accept's first-contact extension says release 2
                   (> SMC_RELEASE): the client declines RELEASEERR
  accept-maxconns  the Accept's max_conns is 1 (< 16): MAXCONNERR
  accept-maxlinks  the Accept's max_links is 0: MAXLINKERR
  confirm-release  the Confirm's release is 0, not the Accept's 1: the
                   server declines RELEASEERR

Offsets: an SMC-Rv2 first-contact Accept/Confirm has its first-contact
extension at byte 104 (release: low nibble of byte 105, max_conns byte
140, max_links byte 141), RFC 7609 as extended by Linux's smc_clc.h.
Prints one line per message it saw, and "mangled TYPE" for the changed one.
"""
import socket
import sys
import threading

EYE = bytes.fromhex("e2d4c3d9")
NAMES = {1: "proposal", 2: "accept", 3: "confirm", 4: "decline"}
FCE = 104


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            return b
        b += d
    return b


def mangle(kind, typ, msg):
    m = bytearray(msg)
    if len(m) < FCE + 40 or not (m[7] >> 4) >= 2 or not (m[7] & 0x08):
        return None  # not a v2 first-contact message with the extension
    if kind == "accept-release" and typ == 2:
        m[FCE + 1] = (m[FCE + 1] & 0xF0) | 2
    elif kind == "accept-maxconns" and typ == 2:
        m[FCE + 36] = 1
    elif kind == "accept-maxlinks" and typ == 2:
        m[FCE + 37] = 0
    elif kind == "confirm-release" and typ == 3:
        m[FCE + 1] &= 0xF0
    else:
        return None
    return bytes(m)


def pump(src, dst, kind, tag, out):
    clc = True
    try:
        while True:
            if clc:
                head = recv_exact(src, 8)
                if len(head) < 8 or head[:4] != EYE:
                    clc = False
                    if head:
                        dst.sendall(head)
                    if len(head) < 8:
                        break
                    continue
                n = int.from_bytes(head[5:7], "big")
                body = recv_exact(src, max(n - 8, 0))
                msg = head + body
                typ = head[4]
                changed = mangle(kind, typ, msg)
                out.append("%s %s %d bytes%s" % (tag, NAMES.get(typ, typ), len(msg), " mangled" if changed else ""))
                dst.sendall(changed or msg)
                if len(body) < n - 8:
                    break
                continue
            d = src.recv(1 << 18)
            if not d:
                break
            dst.sendall(d)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main():
    laddr, lport, saddr, sport, kind = sys.argv[1:6]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((laddr, int(lport)))
    ls.listen(1)
    print("listening", flush=True)
    c, _ = ls.accept()
    s = socket.create_connection((saddr, int(sport)))
    out = []
    t = threading.Thread(target=pump, args=(s, c, kind, "server->client", out))
    t.start()
    pump(c, s, kind, "client->server", out)
    t.join()
    for line in out:
        print(line)
    c.close()
    s.close()


if __name__ == "__main__":
    main()
