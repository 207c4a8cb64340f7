#!/usr/bin/env python3
"""icrc_check.py - verify the ICRC of every RoCEv2 packet in a capture.

An oracle independent of usmc's C code: its own pcap/pcapng reader, and
the ICRC as Linux rxe computes it (zlib CRC-32 over 8 bytes of 0xFF, the
IP/UDP/BTH headers with the variant fields set to all-ones, and the rest
of the packet; stored little-endian in the last 4 bytes).

usage: icrc_check.py [--port N] [--expect N] [-v] FILE...

  --port N     RoCEv2 UDP destination port (default 4791)
  --expect N   fail unless exactly N packets were checked (per file)
  -v           print one line per RoCE packet
Exit status: 0 every checked ICRC matched and at least one packet was
checked; 1 a mismatch, a malformed packet or no packet checked; 2 usage
error or an unreadable file. Packets cut short by the capture's snap
length cannot be checked; they are counted and reported as such.
"""

import struct
import sys
import zlib

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
VLAN_TYPES = (0x8100, 0x88A8)

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276


class CaptureError(Exception):
    pass


def read_pcap(data):
    """Yields (linktype, caplen, origlen, bytes) from a classic pcap file."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise CaptureError("not a pcap file")
    if len(data) < 24:
        raise CaptureError("pcap file header truncated")
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off < len(data):
        if off + 16 > len(data):
            raise CaptureError("record header truncated at offset %d" % off)
        _, _, caplen, origlen = struct.unpack(e + "IIII", data[off : off + 16])
        off += 16
        if off + caplen > len(data):
            raise CaptureError("record data truncated at offset %d" % off)
        yield linktype, caplen, origlen, data[off : off + caplen]
        off += caplen


def read_pcapng(data):
    """Yields (linktype, caplen, origlen, bytes) from a pcapng file."""
    off = 0
    e = "<"
    ifaces = []
    while off < len(data):
        if off + 12 > len(data):
            raise CaptureError("block header truncated at offset %d" % off)
        btype_raw = data[off : off + 4]
        if btype_raw == b"\x0a\x0d\x0d\x0a":
            bom = data[off + 8 : off + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                e = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                e = ">"
            else:
                raise CaptureError("bad byte-order magic at offset %d" % off)
            ifaces = []
        btype, blen = struct.unpack(e + "II", data[off : off + 8])
        if blen < 12 or blen % 4 or off + blen > len(data):
            raise CaptureError("bad block length %d at offset %d" % (blen, off))
        body = data[off + 8 : off + blen - 4]
        if btype == 1:  # interface description
            if len(body) < 8:
                raise CaptureError("IDB truncated at offset %d" % off)
            linktype, _, snaplen = struct.unpack(e + "HHI", body[:8])
            ifaces.append((linktype, snaplen))
        elif btype == 6:  # enhanced packet
            if len(body) < 20:
                raise CaptureError("EPB truncated at offset %d" % off)
            ifid, _, _, caplen, origlen = struct.unpack(e + "IIIII", body[:20])
            if ifid >= len(ifaces) or 20 + caplen > len(body):
                raise CaptureError("bad EPB at offset %d" % off)
            yield ifaces[ifid][0], caplen, origlen, body[20 : 20 + caplen]
        elif btype == 3:  # simple packet
            if not ifaces or len(body) < 4:
                raise CaptureError("bad SPB at offset %d" % off)
            origlen = struct.unpack(e + "I", body[:4])[0]
            snap = ifaces[0][1] or origlen
            caplen = min(origlen, snap, len(body) - 4)
            yield ifaces[0][0], caplen, origlen, body[4 : 4 + caplen]
        elif btype == 2:  # obsolete packet block
            if len(body) < 20:
                raise CaptureError("PB truncated at offset %d" % off)
            ifid, _, _, _, caplen, origlen = struct.unpack(e + "HHIIII", body[:20])
            if ifid >= len(ifaces) or 20 + caplen > len(body):
                raise CaptureError("bad PB at offset %d" % off)
            yield ifaces[ifid][0], caplen, origlen, body[20 : 20 + caplen]
        off += blen


def read_capture(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(data)
    return read_pcap(data)


def network_layer(linktype, pkt):
    """Returns (ethertype, offset of the IP header) or None."""
    if linktype == LINKTYPE_ETHERNET:
        if len(pkt) < 14:
            return None
        off = 12
        etype = struct.unpack(">H", pkt[off : off + 2])[0]
        while etype in VLAN_TYPES and len(pkt) >= off + 6:
            off += 4
            etype = struct.unpack(">H", pkt[off : off + 2])[0]
        return etype, off + 2
    if linktype == LINKTYPE_LINUX_SLL:
        if len(pkt) < 16:
            return None
        return struct.unpack(">H", pkt[14:16])[0], 16
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(pkt) < 20:
            return None
        return struct.unpack(">H", pkt[0:2])[0], 20
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not pkt:
            return None
        v = pkt[0] >> 4
        return (ETH_P_IP if v == 4 else ETH_P_IPV6 if v == 6 else 0), 0
    return None


def icrc_of(ip_masked, udp, bth, rest):
    """rxe's ICRC over already-masked IP header, UDP header, BTH and rest."""
    udp = bytearray(udp)
    udp[6:8] = b"\xff\xff"
    bth = bytearray(bth)
    bth[4] = 0xFF
    return zlib.crc32(b"\xff" * 8 + bytes(ip_masked) + bytes(udp) + bytes(bth) + rest)


def check_packet(linktype, caplen, origlen, pkt, port):
    """Returns None (not RoCE), ("short", why), ("bad", why) or ("ok", why)."""
    nl = network_layer(linktype, pkt)
    if nl is None:
        return None
    etype, off = nl
    if etype == ETH_P_IP:
        if len(pkt) < off + 20:
            return None
        ihl = (pkt[off] & 0x0F) * 4
        if pkt[off + 9] != 17 or ihl < 20:
            return None
        frag = struct.unpack(">H", pkt[off + 6 : off + 8])[0]
        if frag & 0x3FFF:  # a fragment: rxe never sends one
            return None
        iplen = struct.unpack(">H", pkt[off + 2 : off + 4])[0]
        ip = bytearray(pkt[off : off + ihl])
        ip[1] = 0xFF  # TOS
        ip[8] = 0xFF  # TTL
        ip[10:12] = b"\xff\xff"  # header checksum
        l4 = off + ihl
        ip_total = iplen
    elif etype == ETH_P_IPV6:
        if len(pkt) < off + 40:
            return None
        if pkt[off + 6] != 17:  # extension headers: not RoCEv2 as rxe sends it
            return None
        plen = struct.unpack(">H", pkt[off + 4 : off + 6])[0]
        ip = bytearray(pkt[off : off + 40])
        ip[0] |= 0x0F  # traffic class (low nibble of byte 0, high of byte 1)
        ip[1] = 0xFF  # rest of traffic class and flow label
        ip[2] = 0xFF
        ip[3] = 0xFF
        ip[7] = 0xFF  # hop limit
        l4 = off + 40
        ip_total = 40 + plen
    else:
        return None
    if len(pkt) < l4 + 8:
        return None
    sport, dport, ulen = struct.unpack(">HHH", pkt[l4 : l4 + 6])
    if dport != port:
        return None
    if ulen < 8 + 12 + 4:
        return ("bad", "UDP length %d is too short for BTH and ICRC" % ulen)
    end = l4 + ulen
    if caplen < origlen or len(pkt) < end:
        return ("short", "captured %d of %d bytes" % (caplen, origlen))
    if off + ip_total < end:
        return ("bad", "UDP length %d runs past the IP packet" % ulen)
    udp = pkt[l4 : l4 + 8]
    bth = pkt[l4 + 8 : l4 + 20]
    rest = pkt[l4 + 20 : end - 4]
    want = struct.unpack("<I", pkt[end - 4 : end])[0]
    got = icrc_of(ip, udp, bth, rest)
    opcode = bth[0]
    psn = struct.unpack(">I", bth[8:12])[0] & 0xFFFFFF
    qpn = struct.unpack(">I", bth[4:8])[0] & 0xFFFFFF
    what = "opcode 0x%02x qpn 0x%06x psn %d" % (opcode, qpn, psn)
    if got != want:
        return ("bad", "%s: ICRC on wire 0x%08x, computed 0x%08x" % (what, want, got))
    return ("ok", "%s: ICRC 0x%08x" % (what, got))


def check_file(path, port, expect, verbose):
    ok = bad = short = 0
    try:
        for frame, (lt, caplen, origlen, pkt) in enumerate(read_capture(path), 1):
            r = check_packet(lt, caplen, origlen, pkt, port)
            if r is None:
                continue
            kind, why = r
            if kind == "ok":
                ok += 1
            elif kind == "short":
                short += 1
            else:
                bad += 1
            if verbose or kind == "bad":
                print("%s: frame %d: %s %s" % (path, frame, kind.upper(), why))
    except (OSError, CaptureError) as e:
        print("%s: cannot read capture: %s" % (path, e), file=sys.stderr)
        return 2
    status = 0
    if bad:
        status = 1
    if ok + bad == 0:
        print("%s: no complete RoCEv2 packet (UDP port %d) to check" % (path, port))
        status = 1
    if expect is not None and ok + bad != expect:
        print("%s: checked %d packets, expected %d" % (path, ok + bad, expect))
        status = 1
    print("%s: %d RoCEv2 packets: %d ICRC ok, %d bad, %d cut short by the snap length"
          % (path, ok + bad + short, ok, bad, short))
    return status


def main(argv):
    port, expect, verbose, files = 4791, None, False, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if a in ("--port", "--expect"):
            if i + 1 >= len(argv) or not argv[i + 1].isdigit():
                print("icrc_check.py: %s needs a number" % a, file=sys.stderr)
                return 2
            if a == "--port":
                port = int(argv[i + 1])
            else:
                expect = int(argv[i + 1])
            i += 2
            continue
        if a == "-v":
            verbose = True
        elif a.startswith("-"):
            print("icrc_check.py: unknown option %s (see --help)" % a, file=sys.stderr)
            return 2
        else:
            files.append(a)
        i += 1
    if not files:
        print("icrc_check.py: no capture file given (see --help)", file=sys.stderr)
        return 2
    status = 0
    for f in files:
        status = max(status, check_file(f, port, expect, verbose))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
