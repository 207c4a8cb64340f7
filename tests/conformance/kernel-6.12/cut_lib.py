"""What cut.sh and cut-failover.sh share: the frames usmc-decode finds in
a capture, which of them belong to the TCP/CLC handshake, and writing the
kept frames of a classic pcap (editcap and tshark take a few hundred frame
numbers at most, so the filtering is done here)."""
import json
import struct
import subprocess


def records(dec, pcap):
    """(frame, proto, type, record) of every frame usmc-decode --json
    reports in |pcap|."""
    out = subprocess.run([dec, "--json", pcap], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        if not line.startswith("{\"frame\""):
            continue
        r = json.loads(line)
        yield r["frame"], r["proto"], r.get("type", ""), r


def handshake(proto, typ):
    """A CLC message or a TCP SYN (kept by both cuts)."""
    return proto == "CLC" or (proto == "TCP" and "SYN" in typ)


def write_pcap(src, keep, dst):
    """The frames of classic pcap |src| numbered in |keep| (from 1) to |dst|."""
    data = open(src, "rb").read()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, off, n = [data[:24]], 24, 0
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        n += 1
        if n in keep:
            out.append(data[off:off + 16 + incl])
        off += 16 + incl
    open(dst, "wb").write(b"".join(out))
