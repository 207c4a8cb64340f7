#!/usr/bin/env python3
"""netdev_features.py IFACE [FEATURE on|off]...

Prints an interface's netdev features (ethtool -k's names), or sets the
ones named, through the SIOCETHTOOL ioctl (ETHTOOL_GFEATURES /
ETHTOOL_SFEATURES), for machines without the ethtool program. Run it in
the interface's network namespace. Exit 1 with a message on any error.
"""
import array
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSSET_INFO = 0x37
ETHTOOL_GFEATURES = 0x3A
ETHTOOL_SFEATURES = 0x3B
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32


def ethtool(sock, ifname, data):
    buf = array.array("B", data)
    addr, _ = buf.buffer_info()
    ifr = struct.pack("16sP", ifname.encode(), addr)
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifr)
    return buf.tobytes()


def feature_names(sock, ifname):
    # struct ethtool_sset_info: cmd, reserved, sset_mask, then the counts
    r = ethtool(sock, ifname, struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0,
                                          1 << ETH_SS_FEATURES, 0))
    n = struct.unpack_from("I", r, 16)[0]
    r = ethtool(sock, ifname, struct.pack("III", ETHTOOL_GSTRINGS,
                                          ETH_SS_FEATURES, n)
                + bytes(ETH_GSTRING_LEN * n))
    return [r[12 + ETH_GSTRING_LEN * i:12 + ETH_GSTRING_LEN * (i + 1)]
            .split(b"\0")[0].decode() for i in range(n)]


def main():
    if len(sys.argv) < 2 or len(sys.argv) % 2:
        sys.exit(__doc__.strip())
    ifname = sys.argv[1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        names = feature_names(sock, ifname)
        blocks = (len(names) + 31) // 32
        # struct ethtool_gfeatures: cmd, size, then {available, requested,
        # active, never_changed} per 32-feature block
        r = ethtool(sock, ifname, struct.pack("II", ETHTOOL_GFEATURES, blocks)
                    + bytes(16 * blocks))
        active = [struct.unpack_from("IIII", r, 8 + 16 * b)[2]
                  for b in range(blocks)]
        if len(sys.argv) == 2:
            for i, name in enumerate(names):
                if name:
                    on = active[i // 32] >> (i % 32) & 1
                    print(name, "on" if on else "off")
            return
        valid = [0] * blocks
        want = [0] * blocks
        for name, val in zip(sys.argv[2::2], sys.argv[3::2]):
            if name not in names or val not in ("on", "off"):
                sys.exit("%s: no feature %r, or %r is not on/off"
                         % (ifname, name, val))
            i = names.index(name)
            valid[i // 32] |= 1 << (i % 32)
            if val == "on":
                want[i // 32] |= 1 << (i % 32)
        ethtool(sock, ifname, struct.pack("II", ETHTOOL_SFEATURES, blocks)
                + b"".join(struct.pack("II", valid[b], want[b])
                           for b in range(blocks)))
    except OSError as e:
        sys.exit("%s: %s" % (ifname, e))


main()
