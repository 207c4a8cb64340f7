#!/usr/bin/env python3
"""The LLC exchange of a failover between usmc and the kernel (docs/vm.md).

usage: failover_check.py DECODE_JSON USMC_NET KERNEL_NET
       failover_check.py --vm VM_OUT usmc-client|usmc-server usmc|kernel SUBNET

DECODE_JSON is usmc-decode --json of a capture holding both NICs' wires
(VM 1's eth0 and eth1 merged). USMC_NET and KERNEL_NET are the address
prefixes of each side (e.g. 10.77.0.1 matches 10.77.0.1 and 10.77.0.11).
Fails (exit 1, the reasons on stdout) unless:
- an ADD_LINK request for link 2 is answered by an ADD_LINK response that
  is not a reject, from the other side;
- CONFIRM_LINK for link 2 is requested and answered between the two
  second NICs' addresses (eth1: SUBNET.11 and SUBNET.12), not over eth0;
- DELETE_LINK of one link (not ALL) names a link that was added, and some
  LLC message travels over the other link afterwards (the group lived on).
Prints every LLC message of link management (ADD_LINK, CONFIRM_LINK,
DELETE_LINK, TEST_LINK requests timed out aside) with its frame number,
and whether each DELETE_LINK request was answered.

With --vm, also judges the two VMs' listings in VM_OUT (written by
tests/vm/two_nics.sh): usmc-stat -l --json at SYM time (type SYM, two
ACTIVE links on two devices) and after the NIC went down (one link), the
kernel's usmc-smcctl lgr (type 2 = SMC_LGR_SYMMETRIC with two links in
state 3 = SMC_LNK_ACTIVE, then one), and usmc's log (a link down line,
and a failover line naming the connection).
"""
import json
import re
import sys


def llc_records(path):
    out, bth, seen = [], {}, set()
    for line in open(path):
        if not line.startswith('{"frame"'):
            continue
        r = json.loads(line)
        if r.get("proto") == "RoCE":
            bth[r["frame"]] = (r["src"], r["qpn"], r["psn"])
            continue
        if r.get("proto") != "LLC":
            continue
        # a SEND sent again carries its LLC message again: count it once
        k = bth.get(r["frame"])
        if k in seen:
            continue
        seen.add(k)
        out.append(r)
    return out


def ip(r, key="src"):
    return r[key].rsplit(":", 1)[0]


def side(addr, usmc_net, kern_net):
    a = addr.split(".")[-1]
    for name, net in (("usmc", usmc_net), ("kernel", kern_net)):
        last = net.split(".")[-1]
        if addr.rsplit(".", 1)[0] == net.rsplit(".", 1)[0] and a in (last, "1" + last):
            return name
    return "?" + addr


def check_llc(path, usmc_net, kern_net):
    bad, lines = [], []
    recs = llc_records(path)
    mgmt = [r for r in recs if re.match(r"(ADD_LINK|CONFIRM_LINK|DELETE_LINK)", r["type"])]
    for r in mgmt:
        s = side(ip(r), usmc_net, kern_net)
        extra = []
        for k in ("link", "reject", "all", "orderly", "reason"):
            if k in r:
                extra.append("%s=%s" % (k, r[k]))
        lines.append("frame %d %s %s %s -> %s %s" % (
            r["frame"], s, r["type"] + (" resp" if r.get("resp") else ""),
            ip(r), ip(r, "dst"), " ".join(extra)))
    add_req = [r for r in mgmt if r["type"].startswith("ADD_LINK") and
               not r["type"].startswith("ADD_LINK_CONT") and not r.get("resp")]
    add_ok = [r for r in mgmt if r["type"].startswith("ADD_LINK") and
              not r["type"].startswith("ADD_LINK_CONT") and r.get("resp") and not r.get("reject")]
    if not add_req:
        bad.append("no ADD_LINK request")
    if not add_ok:
        bad.append("no ADD_LINK accepted")
    for a in add_ok:
        if add_req and side(ip(a), usmc_net, kern_net) == side(ip(add_req[0]), usmc_net, kern_net):
            bad.append("frame %d: ADD_LINK answered by its own sender's side" % a["frame"])
    conf2 = [r for r in mgmt if r["type"].startswith("CONFIRM_LINK") and r.get("link") == 2]
    c_req = [r for r in conf2 if not r.get("resp")]
    c_rsp = [r for r in conf2 if r.get("resp")]
    if not c_req or not c_rsp:
        bad.append("CONFIRM_LINK of link 2: %d requests, %d responses" % (len(c_req), len(c_rsp)))
    for r in conf2:
        for k in ("src", "dst"):
            if not ip(r, k).split(".")[-1].startswith("1") or len(ip(r, k).split(".")[-1]) != 2:
                bad.append("frame %d: CONFIRM_LINK of link 2 %s %s is not a second NIC's" % (r["frame"], k, ip(r, k)))
    dels = [r for r in mgmt if r["type"].startswith("DELETE_LINK") and not r.get("all")]
    if not dels:
        bad.append("no DELETE_LINK of one link")
    answered = []
    for d in [r for r in dels if not r.get("resp")]:
        s = side(ip(d), usmc_net, kern_net)
        ans = [r for r in dels if r.get("resp") and r["frame"] > d["frame"] and
               side(ip(r), usmc_net, kern_net) != s]
        answered.append("DELETE_LINK of link %s from %s (frame %d): %s" % (
            d.get("link"), s, d["frame"],
            "answered in frame %d" % ans[0]["frame"] if ans else "never answered"))
        later = [r for r in recs if r["frame"] > d["frame"] and r is not d]
        if not later:
            bad.append("frame %d: no LLC message after the DELETE_LINK" % d["frame"])
    return bad, lines, answered


def vm_checks(out, kind, down, subnet):
    bad, lines = [], []

    def load(name):
        try:
            return json.load(open(out + "/" + name))
        except (OSError, ValueError) as e:
            bad.append("%s: %s" % (name, e))
            return []

    for name, nlinks in (("stat-sym.json", 2), ("stat-after.json", 1)):
        lgrs = load(name)
        if len(lgrs) != 1:
            bad.append("%s: %d link groups, expected 1" % (name, len(lgrs)))
            continue
        g = lgrs[0]
        act = [l for l in g.get("links", []) if l.get("state") == "ACTIVE"]
        devs = sorted(set(l.get("device") for l in act))
        want = "SYM" if nlinks == 2 else None
        if len(act) != nlinks or (want and g.get("type") != want) or len(devs) != nlinks:
            bad.append("%s: type %s, %d ACTIVE links on %s, expected %s%d" % (
                name, g.get("type"), len(act), devs, (want + " with ") if want else "", nlinks))
        lines.append("usmc %s: lgr %s type %s, ACTIVE links %s on %s" % (
            name.split(".")[0], g.get("lgr_id"), g.get("type"),
            [l.get("link_id") for l in act], devs))
    for name, nlinks in (("lgr-sym.txt", 2), ("lgr-after.txt", 1)):
        try:
            txt = open(out + "/" + name).read()
        except OSError as e:
            bad.append("%s: %s" % (name, e))
            continue
        types = re.findall(r"^lgr .* type=(\d+)", txt, re.M)
        act = re.findall(r"^  link id=(\d+) dev=(\S+) .* state=3$", txt, re.M)
        if len(types) != 1 or len(act) != nlinks or (nlinks == 2 and types[0] != "2"):
            bad.append("kernel %s: types %s, ACTIVE links %s, expected one group%s with %d" % (
                name, types, act, " of type 2 (SYMMETRIC)" if nlinks == 2 else "", nlinks))
        lines.append("kernel %s: lgr type %s, ACTIVE links %s" % (
            name.split(".")[0], types, ["%s on %s" % a for a in act]))
    try:
        log = open(out + "/fo.srv.err").read()
    except OSError:
        log = ""
    dl = re.findall(r"lgr \d+ link \d+ down: [a-z_ ]+", log)
    fo = re.findall(r"lgr \d+ failover link \d+ -> link \d+: \d+ connections", log)
    if not dl:
        bad.append("usmc's log has no 'link down' line")
    if not [f for f in fo if not f.endswith(" 0 connections")]:
        bad.append("usmc's log has no failover that moved a connection: %s" % fo)
    lines.append("usmc log: %s; %s" % ("; ".join(dl), "; ".join(fo)))
    return bad, lines


def main():
    if sys.argv[1] == "--vm":
        out, kind, down, subnet = sys.argv[2:6]
        bad, lines = vm_checks(out, kind, down, subnet)
        b2, l2, ans = check_llc(out + "/decode.json", subnet + ".1", subnet + ".2")
    else:
        path, usmc_net, kern_net = sys.argv[1:4]
        bad, lines = [], []
        b2, l2, ans = check_llc(path, usmc_net, kern_net)
    bad += b2
    for l in lines + l2 + ans:
        print(l)
    if bad:
        print("FAILED: " + "; ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
