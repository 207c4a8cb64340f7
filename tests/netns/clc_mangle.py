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
  accept-nofc      the Accept re-encoded without first contact (108 bytes,
                   no extension): it names a link group the client lacks,
                   SYNCERR
  accept-smcd      the Accept re-encoded as an SMC-Dv1 Accept (48 bytes,
                   typev1 D): not the mode offered, MODEUNSUPP
  confirm-v1       the Confirm re-encoded as a v1 Confirm (68 bytes): not
                   the version agreed, the server declines VERSMISMAT
  prop-maxconns    the Proposal's v2 extension says max_conns 1: the
                   server declines MAXCONNERR
  prop-maxlinks    ... max_links 0: MAXLINKERR
  prop-noueid      the Proposal offers v2 only (typev1 N, no IP prefix
                   area) with no user EID: NOUEID
  prop-nosmcdev    v2 only with an EID the server does not have: NOSMCDEV
  prop-diffprefix  the IPv4 subnet's first byte flipped and the EID
                   changed (so v2 cannot be had either): DIFFPREFIX
  prop-nosmcddev   typev1 SMC-D (with its area) and the EID changed:
                   NOSMCDDEV
  prop-noism2supp  typev1 N, typev2 SMC-D with an (empty) SMC-Dv2
                   extension: NOISM2SUPP

A re-encoded message keeps every offset and length consistent (header
length, v2_ext_offset, smcd_v2_ext_offset), so it decodes and the decline
comes from the receiver's checks, not from its decoder.

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


def set_len(m):
    m[5:7] = len(m).to_bytes(2, "big")
    return bytes(m)


def other_eid(m, at):
    m[at] = ord("Q") if m[at] != ord("Q") else ord("R")


def mangle_proposal(kind, msg):
    """Layout as decode_proposal: 40-byte base, the 40-byte SMC-D area
    (v2_ext_offset at 50, counted from byte 52), the IP prefix area when
    typev1 is not N, the 40-byte v2 extension, the user EIDs."""
    m = bytearray(msg)
    if (m[7] >> 4) < 2 or (m[7] & 0x3) == 2 or ((m[7] >> 2) & 0x3) != 0:
        return None  # not a v2 SMC-R proposal that also offers v1
    ext = 52 + int.from_bytes(m[50:52], "big")
    neid = m[ext]
    eids = ext + 40
    if kind == "prop-maxconns":
        m[ext + 24] = 1
        return bytes(m)
    if kind == "prop-maxlinks":
        m[ext + 25] = 0
        return bytes(m)
    if kind == "prop-diffprefix":
        m[80] ^= 0x80
        other_eid(m, eids)
        return bytes(m)
    if kind == "prop-nosmcddev":
        m[7] = (m[7] & 0xFC) | 1
        other_eid(m, eids)
        return bytes(m)
    # the rest offer v2 only: typev1 N, so no IP prefix area
    hdr, tail = m[:80], m[ext : len(m) - 4]
    hdr[7] = (hdr[7] & 0xFC) | 2
    hdr[50:52] = (80 - 52).to_bytes(2, "big")
    if kind == "prop-noueid":
        tail = tail[:40]
        tail[0] = 0
    elif kind == "prop-nosmcdev":
        other_eid(tail, 40)
    elif kind == "prop-noism2supp":
        hdr[7] = (hdr[7] & 0xF3) | (1 << 2)
        tail[6:8] = (40 - 8 + 32 * neid).to_bytes(2, "big")
        tail += bytes(48)  # SMC-Dv2 extension: system EID, reserved; no GIDs
    else:
        return None
    return set_len(hdr + tail + m[-4:])


def mangle(kind, typ, msg):
    m = bytearray(msg)
    if kind.startswith("prop-"):
        return mangle_proposal(kind, msg) if typ == 1 else None
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
    elif kind == "accept-nofc" and typ == 2:
        m = m[:FCE] + m[-4:]
        m[7] &= ~0x08 & 0xFF
        return set_len(m)
    elif kind == "accept-smcd" and typ == 2:
        # header, GID 8, token 8, DMBE index and size, 2 reserved, link id
        # 4, 12 reserved (smc_clc_msg_accept_confirm's SMC-D part)
        m = m[:8] + bytes(7) + b"\x01" + bytes(7) + b"\x02\x01\x01" + bytes(18) + m[-4:]
        m[7] = 0x10 | (m[7] & 0x08) | 1
        return set_len(m)
    elif kind == "confirm-v1" and typ == 3:
        m = m[:64] + m[-4:]
        m[7] = 0x10 | (m[7] & 0x0F)
        return set_len(m)
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
                out.append("%s %s %d bytes%s" % (tag, NAMES.get(typ, typ), len(msg), " mangled to %d bytes" % len(changed) if changed else ""))
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
