#!/usr/bin/env bash
# The README's first command: install what the demo needs (ci/setup.sh --demo), build
# it into build/ (ci/build.sh), then run "netns/usmc-lab demo": an SMC-R
# transfer between two network namespaces over softroce, checked byte for
# byte, with a tshark capture showing that the payload crossed as RDMA
# WRITEs inside RoCEv2 and that TCP carried only the CLC handshake.
# Needs root (packages, namespaces). Extra arguments go to usmc-lab demo
# (e.g. --bytes 256M, --keep DIR); see netns/usmc-lab --help.
set -euo pipefail
case ${1:-} in
-h | --help)
	sed -n '2,8s/^# \{0,1\}//p' "$0"
	echo "Usage: ci/demo.sh [usmc-lab demo options]"
	exit 0
	;;
esac
src=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "demo: must run as root (it installs packages and creates network namespaces)" >&2
	exit 1
fi
echo "== packages (ci/setup.sh --demo: only what the demo needs)"
bash "$src/ci/setup.sh" --demo
echo "== build (a line per target; about 2 min on 2 cores)"
USMC_BUILD_PROGRESS=1 bash "$src/ci/build.sh" "$src/build"
[ -x "$src/build/tools/usmc-perf" ] || {
	echo "demo: the build did not produce build/tools/usmc-perf" >&2
	exit 1
}
echo "== demo"
exec "$src/netns/usmc-lab" demo --perf "$src/build/tools/usmc-perf" "$@"
