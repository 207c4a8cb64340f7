#!/usr/bin/env bash
# usmc-bench works: --help, --version and usage errors; a --quick
# softroce/stream pass writes report.md, report.json and the chart, with
# every run SMC-R; the shm path's probe either carries a connection over
# shm or says, with the runtime's reason, that shm is not available (no
# program workload runs on shm here: iperf3, sockperf and redis over shm
# are not all reliable yet, docs/testing.md; memcpy, the two-core pipe
# and the pipe as a fraction of memcpy are its rows);
# a --quick fallback/excluded pass on both hosts (lab, loopback) has every
# usmc run excluded by its rule (never SMC, never marked) and the client's
# CPU per request beside the rates, with its ratio per round.
# Performance is never judged here: only the shape and honesty of the
# report.
set -u
USMC_SRC=${USMC_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
USMC_BUILD=${USMC_BUILD:-$USMC_SRC/build}
B=$USMC_BUILD/tools/usmc-bench
T=test_usmc_bench
fail() { echo "$T: FAIL: $*"; exit 1; }
skip() { echo "$T: SKIP: $*"; exit 77; }

[ -x "$B" ] || fail "$B is not built"
command -v python3 >/dev/null || skip "python3 is not installed"
out=$(timeout 20 "$B" --help) || fail "--help exited $?"
for w in NAME SYNOPSIS DESCRIPTION OPTIONS OUTPUT "EXIT STATUS" --quick --only --out --fallback-host excluded; do
	grep -q -- "$w" <<<"$out" || fail "--help has no '$w'"
done
v=$(timeout 20 "$B" --version) || fail "--version exited $?"
[[ $v =~ ^usmc-bench\ \(usmc\)\ [0-9]+\.[0-9]+\.[0-9]+( \(git [0-9a-f]+(-dirty)?\))?$ ]] || fail "--version printed '$v'"
for bad in "--bogus" "--runs 2" "--only nowhere" "--only softroce/memcpy" "-n 0" \
	"--only softroce/excluded" "--fallback-host nowhere"; do
	# shellcheck disable=SC2086
	timeout 20 "$B" $bad >/dev/null 2>&1
	rc=$?
	[ $rc = 2 ] || fail "'$bad' exited $rc, not 2 (usage error)"
done

[ "$(id -u)" = 0 ] || skip "not root: the lab needs network namespaces"
for c in redis-server redis-benchmark sockperf iperf3; do
	command -v $c >/dev/null || skip "$c is not installed (ci/setup.sh installs it)"
done
work=$(mktemp -d /tmp/$T.XXXXXX) || fail "mktemp"
trap 'rm -rf "$work"' EXIT

timeout 240 "$B" --quick --only softroce/stream,shm/memcpy --out "$work/r" 2>"$work/progress"
rc=$?
[ $rc = 77 ] && skip "usmc-bench cannot run the lab here: $(tail -1 "$work/progress")"
[ $rc = 0 ] || fail "usmc-bench exited $rc: $(tail -5 "$work/progress")"
grep -q 'softroce/stream 64 KiB round 3/3' "$work/progress" || fail "no progress lines: $(cat "$work/progress")"
[ -s "$work/r/report.md" ] || fail "no report.md"
[ -s "$work/r/report.json" ] || fail "no report.json"

python3 - "$work/r" <<'PY' || fail "the report is not well-formed (above)"
import json, os, sys
d = sys.argv[1]
j = json.load(open(os.path.join(d, "report.json")))
md = open(os.path.join(d, "report.md")).read()
def bad(msg):
    print("test_usmc_bench:", msg); sys.exit(1)
rows = [r for r in j["results"] if r["path"] == "softroce"]
if len(rows) != 1 or rows[0]["workload"] != "stream":
    bad("softroce: want the one stream row, got %r" % rows)
r = rows[0]
if len(r["tcp"]["runs"]) != 3 or len(r["usmc"]["runs"]) != 3 or r["marked"]:
    bad("softroce stream: want 3 TCP and 3 SMC-R runs, none marked: %r" % r)
if len(r["ratio"]["runs"]) != 3:
    bad("softroce stream: want a ratio per round: %r" % r["ratio"])
for i in range(3):
    t, u, q = r["tcp"]["runs"][i], r["usmc"]["runs"][i], r["ratio"]["runs"][i]
    if not (t > 0 and u > 0):
        bad("softroce stream: a run without throughput: %r" % r)
    if abs(q - u / t) > 1e-9 * q:
        bad("softroce stream round %d: ratio %r is not usmc/TCP %r/%r" % (i + 1, q, u, t))
rr = sorted(r["ratio"]["runs"])
if abs(r["ratio"]["median"] - rr[1]) > 1e-9 or r["ratio"]["min"] != rr[0] or r["ratio"]["max"] != rr[2]:
    bad("ratio median/min/max do not match its runs: %r" % r["ratio"])
if r["target"] != {"op": ">=", "value": 0.5, "on": "ratio"} or r["met"] != (r["ratio"]["median"] >= 0.5):
    bad("softroce stream target or met? wrong: %r" % r)
shm = j["paths"].get("shm")
if shm is None:
    bad("no shm path in the report")
line = [l for l in md.splitlines() if l.startswith("| stream 64 KiB writes")]
head = "| metric | TCP | usmc | ratio | target | met? |"
if head not in md or len(line) != 1:
    bad("report.md: no table or not the stream rows: %r" % line)
if "%.2f" % r["ratio"]["median"] not in line[0]:
    bad("report.md's ratio is not report.json's: %s" % line[0])
shm_rows = [x for x in j["results"] if x["path"] == "shm"]
want = ["one core, 64 KiB blocks (reference)",
        "two-core pipe, 64 KiB blocks through a 1 MiB ring (reference)",
        "two-core pipe as a fraction of memcpy"]
if [(x["workload"], x["metric"]) for x in shm_rows] != [("memcpy", w) for w in want]:
    bad("shm: want the memcpy, pipe and pipe/memcpy rows alone: %r" % shm_rows)
mc, pp, fr = (x["usmc"] for x in shm_rows)
if len(mc["runs"]) != 3 or len(pp["runs"]) != 3 or not all(v > 0 for v in mc["runs"] + pp["runs"]):
    bad("shm: want 3 memcpy and 3 pipe runs: %r %r" % (mc, pp))
if [round(v, 9) for v in fr["runs"]] != [round(v / mc["median"], 9) for v in pp["runs"]]:
    bad("shm: the pipe's fraction is not pipe / median memcpy: %r" % fr)
if not shm["why"]:
    bad("shm: the probe's outcome is not said: %r" % shm)
if not shm["available"] and "**Not available**: " + shm["why"] not in md:
    bad("report.md does not say shm is not available")
ch = j["chart"]
png = os.path.join(d, "chart.png")
if r["cpu"] is not None:
    bad("softroce stream has client CPU per request: %r" % r["cpu"])
if ch["made"]:
    if open(png, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
        bad("chart.png is not a PNG")
    if "![usmc speed relative to TCP](chart.png)" not in md:
        bad("report.md does not show the chart")
elif os.path.exists(png) or "No chart: " + ch["why"] not in md:
    bad("no chart, but report.md does not say why: %r" % ch)
print("test_usmc_bench: report ok: softroce stream ratio %.2f over 3 rounds; shm %s; chart %s" % (
    r["ratio"]["median"], "available" if shm["available"] else "not available (" + shm["why"] + ")",
    "made" if ch["made"] else "not made: " + ch["why"]))
PY

# the fallback path's rule-excluded case on both hosts, with the client's
# CPU per request (-n 2000: short, the shape is what counts)
timeout 240 "$B" --quick --only fallback/excluded --fallback-host both -n 2000 --out "$work/f" 2>"$work/fprogress"
rc=$?
[ $rc = 0 ] || fail "usmc-bench fallback/excluded exited $rc: $(tail -5 "$work/fprogress")"
grep -q 'fallback/excluded -P 16 -d 16 on loopback round 3/3 .*client CPU [0-9.]* us/request' "$work/fprogress" ||
	fail "no loopback progress line with the client CPU: $(tail -3 "$work/fprogress")"
python3 - "$work/f" <<'PY' || fail "the fallback report is not well-formed (above)"
import json, os, sys
d = sys.argv[1]
j = json.load(open(os.path.join(d, "report.json")))
md = open(os.path.join(d, "report.md")).read()
def bad(msg):
    print("test_usmc_bench:", msg); sys.exit(1)
if j["options"]["fallback_host"] != "both" or j["paths"]["fallback"].get("hosts") != ["lab", "loopback"]:
    bad("fallback hosts not in report.json: %r %r" % (j["options"], j["paths"]))
rows = {x["metric"]: x for x in j["results"]}
want = ["%s -P %d -d 16%s" % (t, p, h) for h in ("", " on loopback") for p in (1, 16) for t in ("GET", "SET")]
if sorted(rows) != sorted(want) or any(x["path"] != "fallback" or x["workload"] != "excluded" for x in rows.values()):
    bad("want the rows %r, got %r" % (want, [(x["path"], x["workload"], x["metric"]) for x in j["results"]]))
head = "| metric | TCP | usmc | ratio | CPU/req TCP | CPU/req usmc | CPU ratio | target | met? |"
if head not in md:
    bad("report.md has no CPU columns")
def fmt(v):  # usmc-bench's
    return "%.0f" % v if abs(v) >= 1000 else "%.1f" % v if abs(v) >= 10 else "%.2f" % v
def check3(what, v, name):
    rr = sorted(v["runs"])
    if len(rr) != 3 or abs(v["median"] - rr[1]) > 1e-9 or v["min"] != rr[0] or v["max"] != rr[2]:
        bad("%s %s: median/min/max do not match its 3 runs: %r" % (name, what, v))
for name in want:
    r = rows[name]
    # a rule-excluded connection is a fallback in USMC_STATS, never SMC
    if r["marked"] or len(r["usmc"]["runs"]) != 3:
        bad("%s: want 3 usmc runs excluded by the rule, none marked: %r" % (name, r))
    c = r["cpu"]
    if not c or c["unit"] != "client CPU us/request":
        bad("%s: no client CPU per request: %r" % (name, c))
    for f in ("tcp", "usmc", "ratio"):
        check3("cpu " + f, c[f], name)
    check3("ratio", r["ratio"], name)
    for i in range(3):
        t, u, q = c["tcp"]["runs"][i], c["usmc"]["runs"][i], c["ratio"]["runs"][i]
        if not (t > 0 and u > 0) or abs(q - u / t) > 1e-9 * q:
            bad("%s round %d: CPU ratio %r is not usmc/TCP %r/%r" % (name, i + 1, q, u, t))
    # GET and SET come from one run: the same CPU per request
    other = rows[name.replace("GET", "SET") if name.startswith("GET") else name.replace("SET", "GET")]
    if other["cpu"]["tcp"]["runs"] != c["tcp"]["runs"]:
        bad("%s: GET and SET of one run differ in CPU: %r" % (name, c))
    line = [l for l in md.splitlines() if l.startswith("| excluded %s (req/s) |" % name)]
    if len(line) != 1 or line[0].split(" | ")[6].split(" ")[0] != fmt(c["ratio"]["median"]):
        bad("report.md's CPU ratio is not report.json's: %r" % line)
print("test_usmc_bench: fallback report ok: 8 excluded rows on lab and loopback, CPU ratio GET -P 1 %.2f / %.2f" % (
    rows[want[0]]["cpu"]["ratio"]["median"], rows[want[4]]["cpu"]["ratio"]["median"]))
PY
echo "$T: PASS"
