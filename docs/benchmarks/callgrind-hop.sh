#!/bin/sh
# Instructions per registration of one SIP hop, noise-free: the hop runs under
# `valgrind --tool=callgrind` while SIPp sends N registrations (REGISTER -> 401 -> REGISTER -> 200)
# through it to a SIPp UAS. Two runs (N1 and N2 registrations) are subtracted so start-up and
# shutdown cancel out: Ir/registration = (Ir(N2) - Ir(N1)) / (N2 - N1).
#
# Usage: docs/benchmarks/callgrind-hop.sh relay|kamailio [N1 N2]
# Needs: valgrind, sipp, kamailio (for `kamailio`), target/release/sip-relay (for `relay`).
# Keeps the callgrind files of the N2 run in $OUT (default /tmp/ikt-callgrind) for
# `callgrind_annotate`.
set -eu
HOP=${1:?relay or kamailio}
N1=${2:-200}
N2=${3:-1200}
RATE=${RATE:-100}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-/tmp/ikt-callgrind}
mkdir -p "$OUT"
UAS_PORT=${UAS_PORT:-25170}
HOP_PORT=${HOP_PORT:-25164}
UAC_PORT=${UAC_PORT:-25180}

sipp -sf "$HERE/sipp-anchor-uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -nostdin -nr >/dev/null 2>&1 &
UAS=$!
trap 'kill $UAS 2>/dev/null || true' EXIT

run() { # $1 = registrations, $2 = tag; prints total Ir of all the hop's processes
  rm -f "$OUT/callgrind.$HOP.$2".*
  case $HOP in
    relay)
      RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$HOP.$2.%p" \
        "$ROOT/target/release/sip-relay" --listen "127.0.0.1:$HOP_PORT" --next "127.0.0.1:$UAS_PORT" \
        >"$OUT/$HOP.$2.log" 2>&1 &
      ;;
    kamailio)
      IKT_ANCHOR_LISTEN="127.0.0.1:$HOP_PORT" IKT_ANCHOR_NEXT="sip:127.0.0.1:$UAS_PORT" \
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$OUT/callgrind.$HOP.$2.%p" \
        kamailio -f "$HERE/kamailio-anchor.cfg" -DD -E -x tlsf -m 64 -M 8 -Y "$OUT" \
        >"$OUT/$HOP.$2.log" 2>&1 &
      ;;
    *) echo "unknown hop $HOP" >&2; exit 2 ;;
  esac
  PID=$!
  sleep 8   # valgrind start-up
  sipp "127.0.0.1:$HOP_PORT" -sf "$HERE/sipp-anchor-uac.xml" -i 127.0.0.1 -p "$UAC_PORT" -nostdin \
    -r "$RATE" -m "$1" -timeout 120s >/dev/null 2>&1 || echo "sipp: some registrations failed" >&2
  kill -TERM "$PID"
  wait "$PID" 2>/dev/null || true
  sleep 1
  cat "$OUT/callgrind.$HOP.$2".* | awk '/^summary:/ { s += $2 } END { print s }'
}

A=$(run "$N1" a)
B=$(run "$N2" b)
echo "$HOP: Ir($N1)=$A Ir($N2)=$B -> $(( (B - A) / (N2 - N1) )) instructions per registration"
