#!/usr/bin/env bash
# Regenerates the LLC and CDC golden vectors from the kernel captures:
# every RoCE SEND (BTH opcode 4) payload minus the 12-byte BTH and the 4-byte
# ICRC, one "frame hex source-ip" line per message, one file per capture and
# kind.
# Usage: tests/vectors/llc/extract.sh [CONFORMANCE_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
conf=${1:-$here/../../conformance}/kernel-6.1
for cap in smcr-a-session smcr-b-lgr-reuse smcr-d-linkfail-eth0; do
  tshark -r "$conf/$cap.pcapng" -Y 'infiniband.bth.opcode == 4' \
         -T fields -e frame.number -e udp.payload -e ip.src 2>/dev/null |
    awk '{ p = $2; print $1, substr(p, 25, length(p) - 24 - 8), $3 }' > /tmp/usmc-vec.$$
  grep -v ' fe' /tmp/usmc-vec.$$ > "$here/$cap.txt" || true
  grep ' fe' /tmp/usmc-vec.$$ > "$here/../cdc/$cap.txt" || true
  rm -f /tmp/usmc-vec.$$
done
