#!/usr/bin/env python3
"""How the link groups of a usmc<->kernel capture ended (docs/vm.md).

usage: llc_check.py DECODE_JSON USMC_IP KERNEL_IP server|client [reuse]

DECODE_JSON is usmc-decode --json of the capture; server|client is usmc's
role. Fails (exit 1, the reasons on stdout) unless:
- every LLC request (resp flag clear) either side sent is answered by a
  response of its type from the other side, in order; DELETE_LINK ALL is
  not a request, but the kernel ends its link group on it with a
  DELETE_LINK ALL of its own (smc_lgr_cleanup, either role), for which usmc
  waits: usmc's DELETE_LINK ALL must be followed by the kernel's;
- usmc itself ended each link group: one DELETE_LINK ALL from usmc per
  CONFIRM_LINK request (one per link group);
- the kernel sent no RoCE request packet twice (same QPN, PSN, opcode)
  from usmc's first DELETE_LINK on: nothing left unacknowledged that its
  QP would retransmit;
- with "reuse": CONFIRM_RKEY requested by each side (a second connection's
  RMB on an existing link group) and answered.
On success prints one line of counts.
"""
import json
import sys


def main():
    path, usmc, kern, role = sys.argv[1:5]
    reuse = len(sys.argv) > 5 and sys.argv[5] == "reuse"
    recs = []
    for line in open(path):
        if not line.startswith('{"frame"'):
            continue
        recs.append(json.loads(line))
    bad = []
    pending = {}  # (sender, type) -> [frames]
    counts = {}
    first_del = None
    usmc_del_all = []
    kern_del_all = []
    # link group of a message: by its destination QP, learnt from each
    # CONFIRM_LINK request (its qpn and sender_qpn); QPNs are reused by
    # later link groups, so the newest CONFIRM_LINK wins
    qp_lgr = {}
    nlgr = 0
    # a SEND the RNIC retransmitted carries its LLC message again: count
    # it once (the RoCE record of a frame comes before its LLC record)
    frame_psn = {}
    for r in recs:
        if r.get("proto") == "RoCE":
            frame_psn[r["frame"]] = (r["src"], r["qpn"], r["psn"])
    seen_llc = set()
    for r in recs:
        if r.get("proto") != "LLC":
            continue
        k = frame_psn.get(r["frame"])
        if k is not None:
            if k in seen_llc:
                continue
            seen_llc.add(k)
        src = r["src"].split(":")[0]
        if src not in (usmc, kern):
            continue
        other = kern if src == usmc else usmc
        t = r["type"].replace("_V2", "")
        if t == "CONFIRM_LINK" and not r.get("resp"):
            nlgr += 1
            qp_lgr[(other, r["qpn"])] = nlgr
            qp_lgr[(src, r.get("sender_qpn"))] = nlgr
        lg = qp_lgr.get((other, r["qpn"]), 0)
        who = "usmc" if src == usmc else "kernel"
        key = "%s %s%s" % (who, t, " resp" if r.get("resp") else "")
        counts[key] = counts.get(key, 0) + 1
        if t == "DELETE_LINK" and src == usmc and first_del is None:
            first_del = r["frame"]
        if t == "DELETE_LINK" and r.get("all"):
            (usmc_del_all if src == usmc else kern_del_all).append(r["frame"])
            continue
        if not r.get("resp"):
            pending.setdefault((lg, src, t), []).append(r["frame"])
            continue
        q = pending.get((lg, other, t), [])
        if not q:
            bad.append("frame %d: %s response with no request" % (r["frame"], key))
        else:
            q.pop(0)
    for (lg, src, t), q in sorted(pending.items()):
        for f in q:
            bad.append("frame %d: %s %s request never answered" % (
                f, "usmc" if src == usmc else "kernel", t))
    lgrs = counts.get("usmc CONFIRM_LINK", 0) + counts.get("kernel CONFIRM_LINK", 0)
    if lgrs == 0:
        bad.append("no CONFIRM_LINK request: no link group in the capture")
    if len(usmc_del_all) != lgrs:
        bad.append("%d link groups, but usmc sent %d DELETE_LINK ALL" % (lgrs, len(usmc_del_all)))
    for f in usmc_del_all:
        if not any(k > f for k in kern_del_all):
            bad.append("frame %d: usmc's DELETE_LINK ALL not answered by the kernel's" % f)
    # the kernel's RoCE requests: each must be acknowledged by usmc (an
    # ACK on that QP with a PSN at or past it), and none may be sent
    # again after usmc's last packet (a peer left retransmitting). A
    # retransmission while usmc still answers is RC working, only counted.
    seen = {}
    dup_all = 0
    dup_late = []
    last_usmc = max((r["frame"] for r in recs if r.get("proto") == "RoCE" and
                     r["src"].split(":")[0] == usmc), default=0)
    reqs = []
    acks = {}  # kernel QPN -> [(frame, psn)] of usmc's ACKs
    for r in recs:
        if r.get("proto") != "RoCE":
            continue
        src = r["src"].split(":")[0]
        if "ACKNOWLEDGE" in r["type"]:
            if src == usmc:
                acks.setdefault(r["qpn"], []).append((r["frame"], r["psn"]))
            continue
        if src != kern:
            continue
        k = (r["dst"], r["qpn"], r["psn"], r["type"])
        if k in seen:
            dup_all += 1
            if r["frame"] > last_usmc:
                dup_late.append(r["frame"])
        seen[k] = r["frame"]
        reqs.append(r)
    # usmc's ACK for it: one after it whose PSN is at or a little past
    # its PSN (ACKs coalesce; PSNs start at random 24-bit values, so a
    # window of 4096 does not meet another QP's by chance)
    all_acks = sorted(f_a for l in acks.values() for f_a in l)
    unacked = []
    for r in reqs:
        if not r.get("ackreq"):
            continue
        if not any(f > r["frame"] and (a - r["psn"]) % (1 << 24) < 4096 for f, a in all_acks):
            unacked.append(r["frame"])
    if unacked:
        bad.append("%d RoCE requests of the kernel never acknowledged by usmc, e.g. frames %s" % (
            len(unacked), unacked[:5]))
    if first_del is None:
        bad.append("usmc sent no DELETE_LINK")
    if dup_late:
        bad.append("the kernel sent %d packets again after usmc's last packet (frame %d), e.g. frames %s" % (
            len(dup_late), last_usmc, sorted(dup_late)[:5]))
    if reuse:
        for who in ("usmc", "kernel"):
            if counts.get(who + " CONFIRM_RKEY", 0) < 1:
                bad.append("no CONFIRM_RKEY from %s: no connection reused a link group" % who)
    summary = "%d link groups; usmc DELETE_LINK ALL %d, kernel DELETE_LINK ALL %d; kernel retransmissions %d (%d after usmc's last packet), unacknowledged %d; %s" % (
        lgrs, len(usmc_del_all), len(kern_del_all), dup_all, len(dup_late), len(unacked),
        ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    if bad:
        print("; ".join(bad) + " [" + summary + "]")
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
