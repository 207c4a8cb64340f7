#!/usr/bin/env python3
"""The fault matrix (docs/fault.md, "The fault matrix"), run by
test_fault_matrix.sh in a lab it has built.

Each case runs usmc-perf --bidi (a checksummed stream of MATRIX_BYTES each
way) between the lab's hosts over fault:softroce, injects one fault
mid-stream, and judges the outcome against the case's expectation: the
stream completes byte-exact on both ends, or it ends with the documented
error within the documented time, or the handshake falls back to TCP with
the documented reason and the stream completes byte-exact over TCP (the
second-connection cases: -P 2, one connection on SMC-R and the other
declined, both byte-exact).

Times come from CLOCK_MONOTONIC on both sides: the runtime's log lines
(USMC_LOG_TIME=1) and the fault's injection (time.monotonic() here).
"time to detect" is from the injection to the first `lgr N link M down:`
line of either end; "time to fail over" from an end's down line to its
`lgr N failover link M -> link K: C connections` line (the larger of the
two ends). Prints a table; exits 1 if any case's observed outcome differs
from the expected one.

Environment (set by test_fault_matrix.sh): MATRIX_LAB, MATRIX_NS1/2,
MATRIX_H1/H2 (the hosts' addresses on link 1), MATRIX_LINKS (the lab's links),
MATRIX_PNET (USMC_PNET for two-link cases), MATRIX_WORK, USMC_BUILD.
Chosen by the user: MATRIX_SEED (default 1), MATRIX_CASES (names, blank
separated; default all), MATRIX_BYTES (default 256M each way),
MATRIX_TRANSPORT (default fault:softroce), MATRIX_BUDGET (default 420 s).
"""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

ENV = os.environ
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = ENV.get("USMC_BUILD", "build")
PERF = os.path.join(BUILD, "tools", "usmc-perf")
LAB = ENV["MATRIX_LAB"]
NS = {"h1": ENV["MATRIX_NS1"], "h2": ENV["MATRIX_NS2"]}
H1 = ENV["MATRIX_H1"]
H2 = ENV["MATRIX_H2"]
LINKS = int(ENV.get("MATRIX_LINKS", "1"))
PNET = ENV.get("MATRIX_PNET", "")
WORK = ENV["MATRIX_WORK"]
CTL = os.path.join(WORK, "ctl")
SEED = int(ENV.get("MATRIX_SEED", "1"))
BYTES = ENV.get("MATRIX_BYTES", "256M")

# The documented bounds (docs/fault.md, "The fault matrix").
DETECT_S = 2.25  # declared dead within 2 s (issue 10), + 0.25 s timer slack
FAILOVER_S = 0.1  # declared dead -> connections moved
FATAL_S = 3.0  # last link dead -> both ends have failed
KILL_S = 1.0  # peer SIGKILL -> the survivor's ECONNRESET
CLC_TIMEOUT_S = 6.0  # CLC_WAIT_TIME: connect() fails with ETIMEDOUT
RUN_S = 120  # any run: usmc-perf -t, a hang past it is a failure
# no case starts after this much of the matrix (MATRIX_BUDGET): the matrix
# ends in its 10 minutes with the table, the rest reported as not run
BUDGET_S = int(ENV.get("MATRIX_BUDGET", "420"))

DECL = {
    "NOSMCRDEV": 0x03030002,
    "PEERNOSMC": 0x03010000,
    "RELEASEERR": 0x03030009,
    "MAXCONNERR": 0x0303000A,
    "MAXLINKERR": 0x0303000B,
    "TIMEOUT_CL": 0x02010000,
    "PEERDECL": 0x05000000,
    "NOSMCDEV": 0x03030000,
    "NOSMCDDEV": 0x03030001,
    "NOISM2SUPP": 0x03030003,
    "NOUEID": 0x03030008,
    "DIFFPREFIX": 0x03070000,
    "VERSMISMAT": 0x030C0000,
    "SYNCERR": 0x04000000,
    "MEM": 0x01010000,
    "MODEUNSUPP": 0x03040000,
    "ERR_RDYLNK": 0x09990002,
    "RMBE_EC": 0x03050000,
    "ERR_REGBUF": 0x09990003,
}

RE_DOWN = re.compile(r"^(\d+\.\d+) usmc\[\d+\]: .*\blgr (\w+) link (\d+) down: (.+)$")
RE_FOVER = re.compile(
    r"^(\d+\.\d+) usmc\[\d+\]: .*\blgr (\w+) failover link (\d+) -> link (\d+): (\d+) connections"
)
RE_FIRSTWR = re.compile(r"^(\d+\.\d+) usmc\[\d+\]: .*\blgr (\w+) link (\d+): first WR after failover")
RE_UP = re.compile(r"^(\d+\.\d+) usmc\[\d+\]: .*\blgr (\w+) link (\d+) up on device (\d+)")


def sh(*cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stdout.strip()))
    return r.stdout


def in_ns(host, *cmd):
    return ["ip", "netns", "exec", NS[host]] + list(cmd)


def listening(port):
    out = sh(*in_ns("h1", "ss", "-Hltn", "sport = :%d" % port), check=False)
    return bool(out.strip())


def wait_for(cond, secs, step=0.01):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def last_json(path):
    obj = None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        pass
    except OSError:
        pass
    return obj or {}


def all_json(path):
    """Every JSON object in |path| (a server prints one per connection)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def fmt_bytes(n):
    if n is None:
        return "-"
    if n >= 1 << 20:
        return "%d MiB" % (n >> 20)
    return "%d B" % n


def fmt_s(t):
    return "-" if t is None else "%.3f s" % t


def fmt_ms(t):
    return "-" if t is None else "%.2f ms" % (t * 1000)


def link_ifname(k):
    return "eth%d" % (k - 1)


def link_set(k, state, hosts=("h1", "h2")):
    for h in hosts:
        sh("ip", "-n", NS[h], "link", "set", link_ifname(k), state)
    if state == "up":
        for h in hosts:
            wait_for(
                lambda: "LOWER_UP"
                in sh("ip", "-n", NS[h], "-o", "link", "show", link_ifname(k), check=False),
                5,
            )


def lab_link_fault(k, *what):
    """usmc-lab fault link K WHAT... on this lab (netns/lib.sh's
    usmc_lab_link_fault: iptables and tc in both hosts)."""
    sh(
        "bash",
        "-c",
        '. "$1/netns/lib.sh" && usmc_lab_link_fault "$2" "$3" "${@:4}"',
        "-",
        SRC,
        LAB,
        str(k),
        *what,
    )


def ctl_send(pid, sched, dev=None):
    """SCHEDULE to the fault control socket(s) of |pid| (device |dev|, or
    all); returns the answers."""
    pat = "usmc-fault.%d.%s.sock" % (pid, "*" if dev is None else dev)
    socks = sorted(glob.glob(os.path.join(CTL, pat)))
    if not socks:
        raise RuntimeError("no fault control socket %s" % pat)
    tmp = tempfile.mkdtemp(prefix="matrix-ctl.", dir=WORK)
    me = os.path.join(tmp, "c")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    c.bind(me)
    c.settimeout(3)
    out = []
    try:
        for s in socks:
            c.sendto(sched.encode(), s)
            out.append(c.recv(4096).decode(errors="replace"))
    finally:
        c.close()
        os.unlink(me)
        os.rmdir(tmp)
    bad = [a for a in out if a != "ok" and not a.startswith("pkts=")]
    if bad:
        raise RuntimeError("schedule '%s' refused: %s" % (sched, bad))
    return out


class Run:
    """One usmc-perf pair: server in h1, client in h2."""

    port = 7400

    def __init__(self, case, senv, cenv, cargs, mangle=None):
        Run.port += 1
        self.port = Run.port
        self.case = case
        base = os.path.join(WORK, case)
        self.out = {r: "%s.%s" % (base, r) for r in ("server", "client", "relay")}
        env = dict(ENV)
        env.update(
            USMC_TRANSPORT=ENV.get("MATRIX_TRANSPORT", "fault:softroce"),
            # strict: every corrupted packet fails the ICRC (docs/fault.md)
            USMC_TRANSPORT_OPTIONS="icrc=strict",
            USMC_FAULT_CTL_DIR=CTL,
            USMC_LOG_TIME="1",
            USMC_DEBUG="1",
        )
        env.pop("USMC_FAULT", None)
        env.pop("USMC_PNET", None)
        self.procs = {}
        self.files = []
        se = dict(env, **senv)
        ce = dict(env, **cenv)
        self.procs["server"] = self._start(
            "server", se, [PERF, "-s", "-1", "-p", str(self.port), "--verify", "--json", "--timeout", str(RUN_S)], "h1"
        )
        if not wait_for(lambda: listening(self.port) or self.procs["server"].poll() is not None, 10):
            raise RuntimeError("the server did not listen on %d" % self.port)
        cport = self.port
        if mangle:
            # the client goes through the relay, whose port is its SMC port
            cport = self.port + 500
            self.procs["relay"] = self._start(
                "relay",
                env,
                [
                    "python3",
                    os.path.join(os.path.dirname(os.path.abspath(__file__)), "clc_mangle.py"),
                    H1,
                    str(cport),
                    H1,
                    str(self.port),
                    mangle,
                ],
                "h1",
            )
            if not wait_for(lambda: listening(cport) or self.procs["relay"].poll() is not None, 10):
                raise RuntimeError("the relay did not listen on %d" % cport)
        self.t0 = time.monotonic()
        self.procs["client"] = self._start(
            "client",
            ce,
            [PERF, "-c", H1, "-p", str(cport), "--bidi", "-n", BYTES, "--verify", "--json", "--timeout", str(RUN_S)]
            + cargs,
            "h2",
        )
        self.end = {}

    def _start(self, role, env, cmd, host):
        o = open(self.out[role], "w")
        e = open(self.out[role] + ".err", "w")
        self.files += [o, e]
        # ip netns exec execs the command: the pid is usmc-perf's
        return subprocess.Popen(in_ns(host, *cmd), env=env, stdout=o, stderr=e)

    def pid(self, role):
        return self.procs[role].pid

    def ctl_ready(self, roles=("server", "client")):
        return all(glob.glob(os.path.join(CTL, "usmc-fault.%d.*.sock" % self.pid(r))) for r in roles)

    def wait(self, secs, tick=None):
        """Waits for both to exit; kills what is left after |secs|. Calls
        |tick| every 0.5 s meanwhile."""
        end = time.monotonic() + secs
        next_tick = time.monotonic()
        left = dict(self.procs)
        while left and time.monotonic() < end:
            for role, p in list(left.items()):
                if p.poll() is not None:
                    self.end[role] = time.monotonic()  # within 10 ms
                    del left[role]
            if tick and left and time.monotonic() >= next_tick:
                tick()
                next_tick = time.monotonic() + 0.5
            time.sleep(0.01)
        for role, p in left.items():
            p.kill()
            p.wait()
            self.end[role] = None  # hung
        for f in self.files:
            f.close()

    def result(self, role):
        j = last_json(self.out[role])
        j["exit"] = self.procs[role].returncode
        return j

    def log(self, role):
        try:
            with open(self.out[role] + ".err", errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []


def link_times(run, t_inj):
    """(detect, failover, connections moved, notes) from both ends' logs:
    each end's first link down, the first failover after it, and the first
    WR the moved connections handed out on the new link (the data moving
    again, its validation CDC first): "time to fail over" is from the down
    to that WR, the slower end's."""
    downs, fovers, notes = [], [], []
    for role in ("server", "client"):
        first_down, moved, nconns = None, False, 0
        for line in run.log(role):
            m = RE_UP.match(line)
            if m:
                notes.append("%s: link %s up on device %s" % (role, m.group(3), m.group(4)))
            m = RE_DOWN.match(line)
            if m and first_down is None:
                first_down = float(m.group(1))
                downs.append(first_down)
                notes.append("%s: link %s down: %s" % (role, m.group(3), m.group(4).strip()))
            m = RE_FOVER.match(line)
            if m and first_down is not None and not moved and int(m.group(5)):
                moved, nconns = True, int(m.group(5))
                notes.append("%s: failover %s->%s, %s conns" % (role, m.group(3), m.group(4), m.group(5)))
            m = RE_FIRSTWR.match(line)
            if m and moved and nconns:
                fovers.append((float(m.group(1)) - first_down, nconns))
                notes.append("%s: first WR on link %s %.3f ms after the down" % (role, m.group(3), (float(m.group(1)) - first_down) * 1e3))
                nconns = 0
    detect = min(downs) - t_inj if downs and t_inj is not None else None
    fo = max(f for f, _ in fovers) if fovers else None
    moved = sum(n for _, n in fovers)
    return detect, fo, moved, notes


def errno_name(err):
    for name, text in (
        ("ECONNRESET", "Connection reset"),
        ("ECONNABORTED", "Software caused connection abort"),
        ("EPROTO", "Protocol error"),
        ("EPIPE", "Broken pipe"),
        ("ETIMEDOUT", "timed out"),
        ("timeout", "timeout"),
    ):
        if err and text in err:
            return name
    return err or "-"


class Case:
    second = False

    def __init__(self, name, expect, what, links=1, senv=None, cenv=None, cargs=None, nbytes=None, min_s=None):
        self.name, self.expect, self.what = name, expect, what
        self.min_s = min_s  # the client cannot be done sooner (a timer)
        self.links = links
        self.senv, self.cenv, self.cargs = senv or {}, cenv or {}, cargs or []
        self.nbytes = nbytes

    # the fault; returns its CLOCK_MONOTONIC time (None: none injected)
    def inject(self, run):
        return None

    def after(self, run):
        """Undoes the fault (links up) once both ends are done."""


def sched_seed(case_idx, host):
    # one seed per case and host, all from MATRIX_SEED
    return SEED * 1000 + case_idx * 2 + (1 if host == "h1" else 2)


def second_link_up(run):
    """Both ends have logged two links up (`lgr N link M up on device D`)."""

    def links_up(role):
        return {m.group(2, 3) for m in map(RE_UP.match, run.log(role)) if m}

    return all(len(links_up(r)) >= 2 for r in ("server", "client"))


def started(run, at=0.3, links=1):
    """Mid-stream: both fault control sockets are up (each end's device is
    open), with two links the second one up too (at most 5 s), then |at|
    seconds more of stream (a fixed offset into the stream, not a
    synchronisation). Returns whether the second link came up."""
    ended = lambda: any(p.poll() is not None for p in run.procs.values())
    if not wait_for(lambda: run.ctl_ready() or ended(), 10):
        raise RuntimeError("no fault control sockets after 10 s")
    second = links > 1 and wait_for(lambda: second_link_up(run) or ended(), 5) and second_link_up(run)
    time.sleep(at)
    return second


class Sched(Case):
    """A fault transport schedule on HOSTS (device DEV, or all)."""

    def __init__(self, name, expect, what, sched, hosts=("h1", "h2"), dev=None, counter=None, refuse=False, **kw):
        super().__init__(name, expect, what, **kw)
        self.sched, self.hosts, self.dev, self.counter = sched, hosts, dev, counter
        self.refuse = refuse
        self.refused = None
        self.idx = 0
        self.stats = ""

    def inject(self, run):
        self.second = started(run, links=self.links)
        if self.refuse:
            # a schedule that does not parse is refused whole, with the
            # position of the error (docs/fault.md, "Errors")
            bad = "drop:rate=0.01;drop:rate=2"
            try:
                ctl_send(run.pid("server"), bad, self.dev)
                self.refused = "a bad schedule was taken"
            except RuntimeError as e:
                want = "error: position 26: expected a rate from 0 to 1"
                self.refused = None if want in str(e) else "refusal without the position: %s" % e
        t = time.monotonic()
        self.sent = []
        for h in self.hosts:
            s = self.sched
            if "seed=%" in s:
                s = s % sched_seed(self.idx, h)
            ctl_send(run.pid("server" if h == "h1" else "client"), s, self.dev)
            self.sent.append("%s: %s" % (h, s))
        return t

    def tick(self, run):
        """h1's fault counters, the last answer before it exits."""
        if not self.counter or run.procs["server"].poll() is not None:
            return
        try:
            self.stats = ctl_send(run.pid("server"), "stats", self.dev)[0]
        except (RuntimeError, OSError):
            pass

    def counted(self):
        if not self.counter:
            return True, ""
        m = re.search(r"\b%s=(\d+)" % self.counter, self.stats)
        n = int(m.group(1)) if m else 0
        return n > 0, "%s=%d" % (self.counter, n)


class LinkDown(Case):
    def __init__(self, name, expect, what, link=1, flap=None, **kw):
        super().__init__(name, expect, what, **kw)
        self.link, self.flap = link, flap

    def inject(self, run):
        self.second = started(run, links=self.links)
        t = time.monotonic()
        link_set(self.link, "down")
        if self.flap:
            # down and up every second for |flap| seconds
            for i in range(self.flap):
                time.sleep(1)
                if any(p.poll() is not None for p in run.procs.values()):
                    break
                link_set(self.link, "up" if i % 2 == 0 else "down")
            link_set(self.link, "up")
        return t

    def after(self, run):
        link_set(self.link, "up")


class Silent(LinkDown):
    """Every RoCEv2 packet of link |link| dropped on both hosts by the
    lab's iptables rule (usmc-lab fault link K drop 100): the interface
    stays up, the peer just goes silent on that link. The senders' QPs
    give up after softroce's retry_time (1.5 s) or TEST_LINK does (1 + 1
    s): dead within 2 s, then the failover."""

    def inject(self, run):
        self.second = started(run, links=self.links)
        t = time.monotonic()
        lab_link_fault(self.link, "drop", "100")
        return t

    def after(self, run):
        lab_link_fault(self.link, "clear")


class Restore(LinkDown):
    """Link 1 down; once the connections have moved, up again: a link is
    added again on the device that went down, on both ends (both log
    `link N up on device D`, D the first link's device: symmetric again),
    and the stream goes on byte-exact."""

    def inject(self, run):
        t = super().inject(run)
        wait_for(lambda: link_times(run, t)[1] is not None or any(p.poll() is not None for p in run.procs.values()), 5)
        self.t_up = time.monotonic()
        link_set(self.link, "up")
        return t

    def readded(self, run):
        """Both ends log a link up again after the restore, on the device
        the first link was on (the one that went down): the group is
        symmetric again, not an asymmetric link on the surviving device."""
        for role in ("server", "client"):
            ups = [m for l in run.log(role) if (m := RE_UP.match(l))]
            if not ups:
                return False
            first_dev = ups[0].group(4)
            if not any(float(m.group(1)) > self.t_up and m.group(4) == first_dev for m in ups):
                return False
        return True


class Signal(Case):
    def __init__(self, name, expect, what, sig, hold=None, **kw):
        super().__init__(name, expect, what, **kw)
        self.sig, self.hold = sig, hold

    def inject(self, run):
        self.second = started(run, links=self.links)
        t = time.monotonic()
        os.kill(run.pid("server"), self.sig)
        if self.hold:
            time.sleep(self.hold)
            self.t_cont = time.monotonic()
            os.kill(run.pid("server"), signal.SIGCONT)
        return t


class Mangle(Case):
    """The client connects through clc_mangle.py in h1, which changes one
    field of the Accept or the Confirm (MANGLE)."""

    def __init__(self, name, expect, what, mangle, **kw):
        super().__init__(name, expect, what, **kw)
        self.mangle = mangle


class ClcTimeout(Case):
    """The server is stopped before the client connects: the Proposal is
    never answered, and the client's connect() fails after CLC_WAIT_TIME
    (run_clc_timeout)."""


def cases():
    two = dict(links=2)
    L = [
        LinkDown("link-down-1", "reset", "eth0 down on both hosts, one link", link=1),
        LinkDown("link-down-2", "failover", "eth0 (link 1) down on both hosts, two links", link=1, **two),
        Sched("device-kill-1", "reset", "device-fatal on h1, one link", "device-fatal", hosts=("h1",)),
        Sched("device-kill-2", "failover", "device-fatal on h1's device 0, two links", "device-fatal", hosts=("h1",), dev=0, **two),
        Sched("qp-error-1", "reset", "qp-error on h2, one link", "qp-error", hosts=("h2",)),
        Sched("qp-error-2", "failover", "qp-error on h2's device 0, two links", "qp-error", hosts=("h2",), dev=0, **two),
        Sched("qp-error-1-srv", "reset", "qp-error on h1, one link", "qp-error", hosts=("h1",)),
        Sched("port-down-1", "reset", "port-down:for=5s on h2, one link", "port-down:for=5s", hosts=("h2",)),
        Sched("fail-post-1", "reset", "fail-post:op=WRITE,nth=100 on h2", "fail-post:op=WRITE,nth=100", hosts=("h2",)),
        Sched("loss-1pct", "exact", "drop:rate=0.01 on both (a bad schedule refused first)", "seed=%d;drop:rate=0.01", counter="dropped", refuse=True),
        Sched("loss-10pct", "exact", "drop:rate=0.1,for=3s on both", "seed=%d;drop:rate=0.1,for=3s", counter="dropped"),
        Sched("corrupt", "exact", "corrupt:rate=0.001 on both (ICRC)", "seed=%d;corrupt:rate=0.001", counter="corrupted"),
        # the checker's own test: with the ICRC check off a damaged byte
        # reaches memory, and the ends must say so
        Sched("corrupt-unchecked", "detected", "corrupt:in=payload,rate=0.0005 on both, softroce icrc=off", "seed=%d;corrupt:in=payload,rate=0.0005", counter="corrupted", senv={"USMC_TRANSPORT_OPTIONS": "icrc=off"}, cenv={"USMC_TRANSPORT_OPTIONS": "icrc=off"}),
        Sched("reorder", "exact", "reorder:rate=0.01 on both", "seed=%d;reorder:rate=0.01", counter="reordered"),
        Sched("duplicate", "exact", "duplicate:rate=0.01 on both", "seed=%d;duplicate:rate=0.01", counter="duplicated"),
        Sched("delay", "exact", "delay:rate=0.01,by=2ms on both", "seed=%d;delay:rate=0.01,by=2ms", counter="delayed"),
        LinkDown("flap", "exact", "eth0 down/up every 1 s for 10 s, two links", link=1, flap=10, nbytes="1G", **two),
        Silent("silent-2", "failover", "link 1's RoCEv2 all dropped (iptables) on both hosts, two links", link=1, **two),
        Restore("restore", "restored", "eth0 down, up again after the failover, two links", link=1, **two),
        Signal("peer-sigkill", "killed", "SIGKILL to the server", signal.SIGKILL),
        Signal("peer-sigstop", "stopped", "SIGSTOP to the server for 10 s", signal.SIGSTOP, hold=10),
        Case("decline-nosmcrdev-srv", "fallback:server:NOSMCRDEV", "server's device cannot open (bad USMC_FAULT)", senv={"USMC_FAULT": "drop:rate=2"}),
        Case("decline-peernosmc", "fallback:server:PEERNOSMC", "a server rule says tcp for the client (USMC_RULES)", senv={"USMC_RULES": "tcp remote " + H2}),
        Case("decline-nosmcrdev-cli", "fallback:client:NOSMCRDEV", "client's device cannot open (bad USMC_FAULT)", cenv={"USMC_FAULT": "drop:rate=2"}),
        Case("decline-timeout-cl", "fallback:server:TIMEOUT_CL", "every RoCE packet dropped: CONFIRM_LINK never arrives", senv={"USMC_FAULT": "drop:rate=1"}, cenv={"USMC_FAULT": "drop:rate=1"}, min_s=2.5),
        Case("decline-cl-post", "fallback:server:TIMEOUT_CL", "the server's first SEND (CONFIRM_LINK) fails to post: the link dies in the wait", senv={"USMC_FAULT": "fail-post:op=SEND,nth=1"}),
        Mangle("decline-releaseerr-cli", "fallback:client:RELEASEERR", "Accept says release 2 (relay)", "accept-release"),
        Mangle("decline-maxconnerr", "fallback:client:MAXCONNERR", "Accept says max_conns 1 (relay)", "accept-maxconns"),
        Mangle("decline-maxlinkerr", "fallback:client:MAXLINKERR", "Accept says max_links 0 (relay)", "accept-maxlinks"),
        Mangle("decline-releaseerr-srv", "fallback:server:RELEASEERR", "Confirm says release 0 (relay)", "confirm-release"),
        Case("decline-mem-srv", "fallback:server:MEM", "the server's first MR registration fails (fail-reg-mr)", senv={"USMC_FAULT": "fail-reg-mr:nth=1"}),
        Case("decline-mem-cli", "fallback:client:MEM", "the client's first MR registration fails (fail-reg-mr)", cenv={"USMC_FAULT": "fail-reg-mr:nth=1"}),
        Case("decline-rdylnk-srv", "fallback:server:ERR_RDYLNK", "the server's QP cannot reach RTR (fail-modify-qp)", senv={"USMC_FAULT": "fail-modify-qp:nth=1"}),
        Case("decline-rdylnk-cli", "fallback:client:ERR_RDYLNK", "the client's QP cannot reach RTR (fail-modify-qp)", cenv={"USMC_FAULT": "fail-modify-qp:nth=1"}),
        Mangle("decline-syncerr", "fallback:client:SYNCERR", "Accept without first contact: an lgr the client lacks (relay)", "accept-nofc"),
        Mangle("decline-modeunsupp", "fallback:client:MODEUNSUPP", "Accept re-encoded as SMC-Dv1 (relay)", "accept-smcd"),
        Mangle("decline-versmismat", "fallback:server:VERSMISMAT", "Confirm re-encoded as v1 after a v2 Accept (relay)", "confirm-v1"),
        Mangle("decline-maxconnerr-srv", "fallback:server:MAXCONNERR", "Proposal says max_conns 1 (relay)", "prop-maxconns"),
        Mangle("decline-maxlinkerr-srv", "fallback:server:MAXLINKERR", "Proposal says max_links 0 (relay)", "prop-maxlinks"),
        Mangle("decline-noueid", "fallback:server:NOUEID", "Proposal v2 only, no UEID (relay)", "prop-noueid"),
        Mangle("decline-nosmcdev", "fallback:server:NOSMCDEV", "Proposal v2 only, an EID the server lacks (relay)", "prop-nosmcdev"),
        Mangle("decline-diffprefix", "fallback:server:DIFFPREFIX", "Proposal from another subnet, EID changed (relay)", "prop-diffprefix"),
        Mangle("decline-nosmcddev", "fallback:server:NOSMCDDEV", "Proposal v1 SMC-D, EID changed (relay)", "prop-nosmcddev"),
        Mangle("decline-noism2supp", "fallback:server:NOISM2SUPP", "Proposal SMC-Dv2 only (relay)", "prop-noism2supp"),
        # a peer's LLC message changed on its way out (rewrite-llc)
        Case("decline-rmbe-ec", "fallback:client:RMBE_EC", "the server's first CONFIRM_LINK without NO_RMBE_EYEC (rewrite-llc)", senv={"USMC_FAULT": "rewrite-llc:type=CONFIRM_LINK,dir=req,clear=0x03,nth=1"}),
        Case("decline-rmbe-ec-srv", "fallback:server:RMBE_EC", "the client's CONFIRM_LINK response without NO_RMBE_EYEC (rewrite-llc)", cenv={"USMC_FAULT": "rewrite-llc:type=CONFIRM_LINK,dir=resp,clear=0x03,nth=1"}),
        # -P 2: the second connection joins the first one's link group and
        # each end announces its new RMB with CONFIRM_RKEY
        Case("decline-err-regbuf", "second:client:ERR_REGBUF", "2 connections; the server answers the 2nd's CONFIRM_RKEY with RKEY_NEG (rewrite-llc)", senv={"USMC_FAULT": "rewrite-llc:type=CONFIRM_RKEY,dir=resp,set=0x20,nth=1"}, cargs=["-P", "2"]),
        Case("decline-err-regbuf-srv", "second:server:ERR_REGBUF", "2 connections; the client answers the 2nd's CONFIRM_RKEY with RKEY_NEG (rewrite-llc)", cenv={"USMC_FAULT": "rewrite-llc:type=CONFIRM_RKEY,dir=resp,set=0x20,nth=1"}, cargs=["-P", "2"]),
        ClcTimeout("clc-timeout", "clc-timeout", "server stopped before the client connects: no Accept"),
    ]
    for i, c in enumerate(L):
        c.idx = i
    return L


EXPECT_TEXT = {
    "exact": "byte-exact",
    "failover": "byte-exact, failover",
    "restored": "byte-exact, failover, link re-added symmetric",
    "reset": "ECONNRESET both <=%gs" % FATAL_S,
    "killed": "client ECONNRESET <=%gs" % KILL_S,
    "stopped": "client ECONNRESET <=%gs, server after SIGCONT <=%gs" % (FATAL_S, FATAL_S),
    "detected": "a wrong byte found, no hang",
    "clc-timeout": "connect ETIMEDOUT ~%gs" % CLC_TIMEOUT_S,
}


def expect_text(e):
    if e.startswith("fallback:"):
        _, side, reason = e.split(":")
        return "TCP, %s %s" % (side, reason)
    if e.startswith("second:"):
        _, side, reason = e.split(":")
        return "one SMC-R, one TCP, %s %s" % (side, reason)
    return EXPECT_TEXT[e]


def judge(case, run, t_inj, nbytes):
    """(ok, observed, detect, failover, bytes checked, notes)"""
    s, c = run.result("server"), run.result("client")
    detect, fo, moved, notes = link_times(run, t_inj)
    want = 2 * nbytes
    exact = all(
        r.get("exit") == 0
        and r.get("verify") == "ok"
        and r.get("bytes") == want
        and r.get("tx", {}).get("verify") == "ok"
        and r.get("rx", {}).get("verify") == "ok"
        for r in (s, c)
    )
    path = "/".join(r.get("path") or "?" for r in (s, c))
    # what the receivers verified: a prefix of the stream when it broke off
    checked = sum(
        r.get("rx", {}).get("bytes") or 0 for r in (s, c) if r.get("rx", {}).get("verify") == "ok"
    )
    # a sanitizer's report fails any case (the ASan+UBSan build runs it too)
    for role in ("server", "client"):
        for l in run.log(role):
            if "ERROR: AddressSanitizer" in l or "ERROR: LeakSanitizer" in l or "runtime error:" in l:
                return False, "%s: %s" % (role, l.strip()[:120]), detect, fo, checked, notes
    hung = [r for r in ("server", "client") if run.end.get(r) is None]
    if hung:
        return False, "hung: %s killed after %d s" % (",".join(hung), case.limit), detect, fo, checked, notes

    def errs():
        out = []
        for role, r in (("server", s), ("client", c)):
            if r.get("exit") == 0:
                out.append("%s ok" % role)
                continue
            e = errno_name(r.get("error"))
            at = r.get("error_mono")
            dt = " %.2fs" % (at - t_inj) if at and t_inj else ""
            out.append("%s %s%s" % (role, e, dt))
        return ", ".join(out)

    e = case.expect
    if case.links > 1 and not getattr(case, "second", False):
        # said first: whatever followed, the case did not test failover
        return (
            False,
            "no second link came up within 5 s (the runtime's USMC_PNET); then %s" % errs(),
            detect,
            fo,
            checked,
            notes,
        )
    if e in ("exact", "failover", "restored"):
        if not exact:
            return False, "not exact: %s (%s)" % (errs(), path), detect, fo, checked, notes
        if path != "smcr/smcr":
            return False, "byte-exact but path %s" % path, detect, fo, checked, notes
        obs = "byte-exact"
        ok = True
        if isinstance(case, Sched) and case.counter:
            fired, what = case.counted()
            obs += ", h1 %s" % what
            ok &= fired
            if case.refused:
                obs += ", " + case.refused
                ok = False
            if case.counter == "corrupted":
                icrc = s.get("icrc_dropped", 0)
                obs += ", icrc_dropped %s" % icrc
                ok &= bool(icrc)
        if e in ("failover", "restored"):
            if detect is None or fo is None:
                return False, obs + ", no failover logged", detect, fo, checked, notes
            obs += ", failover (%d conns moved, both ends)" % moved
            ok &= detect <= DETECT_S and fo <= FAILOVER_S and moved > 0
        if e == "restored":
            back = case.readded(run)
            obs += ", link re-added on its device (symmetric)" if back else ", link not re-added on its device"
            ok &= back
        return ok, obs, detect, fo, checked, notes
    if e == "reset":
        ok = True
        for r in (s, c):
            at = r.get("error_mono")
            ok &= (
                r.get("exit") != 0
                and errno_name(r.get("error")) == "ECONNRESET"
                and at is not None
                and t_inj is not None
                and at - t_inj <= FATAL_S
                and r.get("rx", {}).get("verify") != "failed"
            )
        return ok, errs(), detect, fo, checked, notes
    if e == "killed":
        at = c.get("error_mono")
        ok = (
            c.get("exit") != 0
            and errno_name(c.get("error")) == "ECONNRESET"
            and at is not None
            and at - t_inj <= KILL_S
            and c.get("rx", {}).get("verify") != "failed"
        )
        return ok, errs().split(", ")[-1], at - t_inj if at else None, None, checked, notes
    if e == "detected":
        # in=payload damages only WRITE payload, which only the checker
        # can find: a CDC or a WRITE's header stays whole
        bad = [role for role, r in (("server", s), ("client", c)) if r.get("rx", {}).get("verify") == "failed"]
        obs = "wrong byte found by %s" % (" and ".join(bad) if bad else "nobody")
        obs += ": %s" % "; ".join((r.get("error") or "-")[:60] for r in (s, c))
        return bool(bad) and not exact, obs, detect, fo, checked, notes
    if e == "stopped":
        # a stopped peer is a silent one (docs/runtime.md): the client
        # declares the link dead and resets; the server, once it runs
        # again, finds its peer gone
        ca, sa = c.get("error_mono"), s.get("error_mono")
        ok = (
            errno_name(c.get("error")) == "ECONNRESET"
            and ca is not None
            and ca - t_inj <= FATAL_S
            and errno_name(s.get("error")) == "ECONNRESET"
            and sa is not None
            and 0 <= sa - case.t_cont <= FATAL_S
            and all(r.get("rx", {}).get("verify") != "failed" for r in (s, c))
        )
        obs = "client %s %s, server %s %s after SIGCONT" % (
            errno_name(c.get("error")),
            fmt_s(ca - t_inj if ca else None),
            errno_name(s.get("error")),
            fmt_s(sa - case.t_cont if sa else None),
        )
        return ok, obs, detect, fo, checked, notes
    if e.startswith("fallback:"):
        _, side, reason = e.split(":")
        decl = s if side == "server" else c
        peer = c if side == "server" else s
        code = DECL[reason]
        obs = "%s, %s %s, %s %s (diag %s)" % (
            "byte-exact" if exact else "not exact: " + errs(),
            side,
            decl.get("fallback_reason"),
            "client" if side == "server" else "server",
            peer.get("fallback_reason"),
            "0x%08x" % peer["peer_diagnosis"] if peer.get("peer_diagnosis") else "-",
        )
        # the reason in the declining end's log too
        logged = any("0x%08x" % code in l.lower() or reason in l for l in run.log("server" if side == "server" else "client"))
        ok = (
            exact
            and path == "tcp/tcp"
            and decl.get("fallback_code") == code
            and peer.get("fallback_code") == DECL["PEERDECL"]
            and peer.get("peer_diagnosis") == code
            and logged
        )
        if not logged:
            obs += ", reason not in the log"
        took = run.end["client"] - run.t0
        if case.min_s and took < case.min_s:
            obs += ", client done after %.2f s, before the %g s the timer takes" % (took, case.min_s)
            ok = False
        if isinstance(case, Mangle):
            try:
                relay = open(run.out["relay"]).read()
            except OSError:
                relay = ""
            if " mangled" not in relay:
                obs += ", the relay changed nothing"
                ok = False
        return ok, obs, None, None, checked, notes
    if e.startswith("second:"):
        return judge_second(case, run, nbytes)
    raise ValueError(e)


def judge_second(case, run, nbytes):
    """-P 2: one connection on SMC-R, the other declined with the reason
    by |side| (PEERDECL with it as the diagnosis at the other end), both
    byte-exact: the client's conns and the server's two results."""
    _, side, reason = case.expect.split(":")
    code = DECL[reason]
    c = run.result("client")
    srv = all_json(run.out["server"])
    conns = c.get("conns") or []
    exact = (
        c.get("exit") == 0
        and c.get("verify") == "ok"
        and c.get("bytes") == 2 * 2 * nbytes
        and c.get("tx", {}).get("verify") == "ok"
        and c.get("rx", {}).get("verify") == "ok"
        and run.procs["server"].returncode == 0
        and len(srv) == 2
        and all(
            r.get("ok") is True
            and r.get("verify") == "ok"
            and r.get("bytes") == 2 * nbytes
            and r.get("tx", {}).get("verify") == "ok"
            and r.get("rx", {}).get("verify") == "ok"
            for r in srv
        )
    )

    def one_of_each(rs, declining):
        smcr = [r for r in rs if r.get("path") == "smcr"]
        tcp = [r for r in rs if r.get("path") == "tcp"]
        if len(smcr) != 1 or len(tcp) != 1:
            return False
        t = tcp[0]
        if declining:
            return t.get("fallback_code") == code
        return t.get("fallback_code") == DECL["PEERDECL"] and t.get("peer_diagnosis") == code

    def paths(rs):
        return ", ".join(
            "%s%s" % (r.get("path"), " %s (diag %s)" % (r.get("fallback_reason"), "0x%08x" % r["peer_diagnosis"] if r.get("peer_diagnosis") else "-") if r.get("path") == "tcp" else "")
            for r in rs
        )

    # what the receivers verified: the client's both connections, each of
    # the server's
    checked = sum(r.get("rx", {}).get("bytes") or 0 for r in [c] + srv if r.get("rx", {}).get("verify") == "ok")
    ok_c = one_of_each(conns, side == "client")
    ok_s = one_of_each(srv, side == "server")
    logged = any("0x%08x" % code in l.lower() or reason in l for l in run.log(side))
    obs = "%s; client: %s; server: %s" % ("byte-exact" if exact else "not exact", paths(conns), paths(srv))
    if not logged:
        obs += ", reason not in the log"
    return exact and ok_c and ok_s and logged, obs, None, None, checked, []


def size(s):
    m = re.match(r"^(\d+)([KMG]?)$", s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def run_case(case):
    nb = case.nbytes if case.nbytes and size(case.nbytes) > size(BYTES) else BYTES
    senv, cenv = dict(case.senv), dict(case.cenv)
    if case.links > 1:
        if LINKS < case.links:
            return False, "the lab has %d link(s): needs usmc-lab --links %d" % (LINKS, case.links), None, None, 0, []
        senv["USMC_PNET"] = cenv["USMC_PNET"] = PNET
    for f in glob.glob(os.path.join(CTL, "*.sock")):
        os.unlink(f)
    if isinstance(case, ClcTimeout):
        return run_clc_timeout(case)
    cargs = list(case.cargs)
    if nb != BYTES:
        cargs += ["-n", nb]
    run = Run(case.name, senv, cenv, cargs, getattr(case, "mangle", None))
    t_inj = None
    try:
        t_inj = case.inject(run)
    except (RuntimeError, OSError) as e:
        run.wait(0)
        case.after(run)
        return False, "injection failed: %s" % e, None, None, 0, []
    # a case that must fail fast is not waited for past its bound (and a
    # margin): what is still running then has hung, as far as it goes
    limit = {"reset": FATAL_S + 12, "killed": KILL_S + 9, "stopped": FATAL_S + 12, "detected": 30, "failover": 60, "restored": 60}.get(case.expect, RUN_S + 30)
    run.wait(limit, tick=(lambda: case.tick(run)) if isinstance(case, Sched) else None)
    case.limit = limit
    case.after(run)
    return judge(case, run, t_inj, size(nb))


def run_clc_timeout(case):
    Run.port += 1
    port = Run.port
    env = dict(ENV, USMC_TRANSPORT="fault:softroce", USMC_FAULT_CTL_DIR=CTL, USMC_LOG_TIME="1", USMC_DEBUG="1")
    base = os.path.join(WORK, case.name)
    with open(base + ".server", "w") as so, open(base + ".server.err", "w") as se:
        srv = subprocess.Popen(
            in_ns("h1", PERF, "-s", "-1", "-p", str(port), "--json", "--timeout", "60"), env=env, stdout=so, stderr=se
        )
    try:
        if not wait_for(lambda: listening(port), 10):
            return False, "the server did not listen", None, None, 0, []
        os.kill(srv.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with open(base + ".client", "w") as co, open(base + ".client.err", "w") as ce:
            cli = subprocess.run(
                in_ns("h2", PERF, "-c", H1, "-p", str(port), "-n", "1M", "--verify", "--json", "--timeout", "30"),
                env=env,
                stdout=co,
                stderr=ce,
                timeout=40,
            )
        c = last_json(base + ".client")
        at = c.get("error_mono")
        dt = at - t0 if at else None
        ok = (
            cli.returncode != 0
            and errno_name(c.get("error")) == "ETIMEDOUT"
            and dt is not None
            and CLC_TIMEOUT_S - 0.5 <= dt <= CLC_TIMEOUT_S + 2
        )
        return ok, "client %s after %s (%s)" % (errno_name(c.get("error")), fmt_s(dt), c.get("error")), dt, None, 0, []
    except subprocess.TimeoutExpired:
        return False, "client hung (killed after 40 s)", None, None, 0, []
    finally:
        try:
            os.kill(srv.pid, signal.SIGKILL)
            os.kill(srv.pid, signal.SIGCONT)
        except OSError:
            pass
        srv.wait()


def main():
    want = ENV.get("MATRIX_CASES", "").split()
    all_cases = cases()
    names = [c.name for c in all_cases]
    bad = [w for w in want if w not in names]
    if bad:
        print("fault_matrix: no such case: %s (cases: %s)" % (" ".join(bad), " ".join(names)))
        return 2
    todo = [c for c in all_cases if not want or c.name in want]
    os.makedirs(CTL, exist_ok=True)
    print("fault_matrix: MATRIX_SEED=%d MATRIX_BYTES=%s (each way), lab %s with %d link(s)" % (SEED, BYTES, LAB, LINKS))
    print("fault_matrix: replay: MATRIX_SEED=%d MATRIX_CASES='%s' ctest -R netns_test_fault_matrix" % (SEED, " ".join(c.name for c in todo)))
    rows, fails = [], 0
    t_all = time.monotonic()
    for c in todo:
        t = time.monotonic()
        if t - t_all > BUDGET_S:
            rows.append((c.name, expect_text(c.expect), "not run: the %d s budget is spent" % BUDGET_S, "-", "-", "-", False, 0))
            fails += 1
            continue
        try:
            ok, obs, det, fo, checked, notes = run_case(c)
        except (RuntimeError, OSError) as e:
            ok, obs, det, fo, checked, notes = False, "error: %s" % e, None, None, 0, []
        except Exception as e:  # a bug here must still leave the table
            traceback.print_exc()
            ok, obs, det, fo, checked, notes = False, "runner error: %r" % e, None, None, 0, []
        secs = time.monotonic() - t
        fails += not ok
        rows.append((c.name, expect_text(c.expect), obs, fmt_s(det), fmt_ms(fo), fmt_bytes(checked), ok, secs))
        if getattr(c, "sent", None):
            notes = ["schedule " + x for x in c.sent] + notes
        print(
            "fault_matrix: %s %s: %s (expected %s; %.1f s)%s"
            % ("ok" if ok else "FAIL", c.name, obs, expect_text(c.expect), secs, "".join("\n    " + n for n in notes[:6])),
            flush=True,
        )
        if not ok:
            for role in ("server", "client"):
                p = os.path.join(WORK, "%s.%s" % (c.name, role))
                for f in (p, p + ".err"):
                    try:
                        lines = open(f, errors="replace").read().splitlines()
                    except OSError:
                        continue
                    for l in lines[-6:]:
                        print("    %s%s: %s" % (role, ".err" if f.endswith(".err") else "", l[:300]))
    hdr = ("case", "expected outcome", "observed outcome", "time to detect", "time to fail over", "bytes checked", "result")
    table = [hdr] + [r[:6] + ("pass" if r[6] else "FAIL",) for r in rows]
    w = [max(len(str(r[i])) for r in table) for i in range(len(hdr))]
    print()
    for i, r in enumerate(table):
        print("| " + " | ".join(str(v).ljust(w[k]) for k, v in enumerate(r)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    print()
    print("fault_matrix: %d case(s), %d failed, %.1f s, MATRIX_SEED=%d" % (len(rows), fails, time.monotonic() - t_all, SEED))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
