#!/usr/bin/env bash
# The compose test (for CI where a Docker engine is present): for each out-of-band mode, on the
# three-network compose stack (SIPp UEs, Kamailio P-CSCF and I-CSCF, the agents, the lab S-CSCF):
#   1. registrations succeed, keys match UE <-> P-CSCF, no ck/ik reaches a UE or crosses the I-CSCF;
#   2. the key-transport link is cut (p-cscf-agent disconnected from the keys network): every
#      registration gets 503 (fail closed), no 401 reaches a UE, and the agent never hands a keyless
#      401 to the P-CSCF (Kamailio's own fail-closed count stays 0);
#   3. the link is restored: registrations resume (probed once a second, up to 60 s), then succeed;
#   4. the link is cut and restored while a registration load runs: every registration ends in 200
#      or 503, none fails otherwise, and no ck/ik reaches a UE.
# Without a Docker engine it says so and exits 0 (nothing to test here).
#
# usage: deploy/compose/test.sh [MODE...]      (default: grpc quic)
# env: IKT_NO_BUILD=1 reuses images and binaries already built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(grpc quic)

if ! docker info >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
  echo "compose test: no Docker engine or docker-compose here; nothing run"
  exit 0
fi
mode=${modes[0]}
project=ikt-test
# shellcheck source=lib.sh
. "$here/lib.sh"
if [ "${IKT_NO_BUILD:-0}" != 1 ]; then
  "$root/deploy/docker/build.sh" kamailio sipp ims-lab p-cscf-agent s-cscf-agent
fi

passed=0
failed=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then
    echo "  ok: $what"; passed=$((passed + 1))
  else
    echo "  FAIL: $what"; failed=$((failed + 1))
  fi
}
# outcome TAG FIELD: one number from the outcomes of phase TAG
outcome() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$run_dir/ue/$1/outcomes.json" "$2"; }
analyse() { # TAG: classify the phase's registrations (writes outcomes.json; prints the summary)
  compose logs --no-color pcscf >"$run_dir/pcscf.log" 2>&1
  python3 "$sipp_dir/outcomes.py" --users "$sipp_dir/users.csv" --lab "$(find_bin ims-lab)" \
    --pcscf-log "$run_dir/pcscf.log" --json "$run_dir/ue/$1/outcomes.json" "$run_dir/ue/$1"/*.msg || true
}
kamailio_failclosed() { compose logs --no-color pcscf 2>&1 | grep -c 'failing closed' || true; }
icscf_in_clear() { compose logs --no-color icscf 2>&1 | grep -c 'carries ck/ik in clear' || true; }
healthz() { # URL -> HTTP status (000 when unreachable)
  python3 -c "import urllib.request,urllib.error,sys
try: print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e: print(e.code)
except Exception: print('000')" "$1"
}
# wait_resume SECONDS: one registration (ue1, 200 or 503 accepted) per second until one succeeds.
# Sets resumed_after (seconds).
wait_resume() {
  local i
  rm -rf "$run_dir/ue/probe"; mkdir -p "$run_dir/ue/probe"; chmod 0777 "$run_dir/ue/probe"
  "$sipp_dir/render.sh" "$sipp_dir/ue_register_mixed.xml" "$run_dir/ue/probe" >/dev/null
  for i in $(seq "$1"); do
    rm -f "$run_dir/ue/probe/ue1.msg"
    compose run --rm -T -w /work/probe ue -sf /work/probe/ue1.xml "$access_pcscf" -m 1 \
      -cid_str "%u-%p-probe$i-$RANDOM@%s" -timeout 10s -timeout_error -nostdin -trace_msg \
      -message_file /work/probe/ue1.msg >/dev/null 2>&1 || true
    if grep -q '^SIP/2.0 200' "$run_dir/ue/probe/ue1.msg" 2>/dev/null; then
      resumed_after=$i
      return 0
    fi
    sleep 1
  done
  return 1
}
metric() { # URL NAME-PREFIX: sum of the series
  python3 -c "import urllib.request,sys
t = urllib.request.urlopen(sys.argv[1], timeout=2).read().decode()
print(int(sum(float(l.rsplit(' ', 1)[1]) for l in t.splitlines() if l.startswith(sys.argv[2]))))" "$1" "$2" 2>/dev/null || echo 0
}

for mode in "${modes[@]}"; do
  case $mode in grpc|quic) ;; *) echo "compose test: $mode is not an out-of-band mode" >&2; exit 2 ;; esac
  echo "== mode $mode"
  compose --profile ue down -v --remove-orphans >/dev/null 2>&1 || true
  make_pki
  compose up -d >/dev/null 2>&1
  if ! wait_ready; then
    echo "  FAIL: the stack did not come up"; failed=$((failed + 1))
    compose --profile ue down -v --remove-orphans >/dev/null 2>&1 || true
    continue
  fi
  keys_net=${project}_keys
  agent=$(compose ps -q pcscf-agent)

  echo "-- 1. registrations with the link up"
  run_ues "$sipp_dir/ue_register.xml" "$mode-up" 3 >/dev/null
  analyse "$mode-up"
  check "every registration succeeded (SIPp's zero-byte-RES refusals aside)" \
    test "$(outcome "$mode-up" failed)" = 0 -a "$(( $(outcome "$mode-up" registered) + $(outcome "$mode-up" sipp-zero-res) ))" = 9
  check "no ck/ik reached a UE" test "$(outcome "$mode-up" keys_at_ue)" = 0
  check "the P-CSCF's keys are the UE's for every challenge" test "$(outcome "$mode-up" keys_matched)" = "$(outcome "$mode-up" challenges)"
  check "no ck/ik crossed the I-CSCF" test "$(icscf_in_clear)" = 0

  echo "-- 2. key transport cut (p-cscf-agent off the keys network)"
  docker network disconnect "$keys_net" "$agent"
  fc_before=$(metric "$pcscf_agent_admin/metrics" ikt_failclosed_total)
  s_health_cut=$(healthz "$scscf_agent_admin/readyz")
  run_ues "$sipp_dir/ue_register_failclosed.xml" "$mode-cut" 2 >/dev/null
  analyse "$mode-cut"
  check "every registration failed closed with 503" \
    test "$(outcome "$mode-cut" failclosed)" = "$(outcome "$mode-cut" calls)" -a "$(outcome "$mode-cut" calls)" = 6
  check "no 401 reached a UE during the cut" test "$(outcome "$mode-cut" challenges)" = 0
  check "no ck/ik reached a UE" test "$(outcome "$mode-cut" keys_at_ue)" = 0
  check "the agent never handed a keyless 401 to the P-CSCF" test "$(kamailio_failclosed)" = 0
  fc_after=$(metric "$pcscf_agent_admin/metrics" ikt_failclosed_total)
  sfc=$(metric "$scscf_agent_admin/metrics" ikt_failclosed_total)
  check "the agents counted the fail-closed answers (p-side +$((fc_after - fc_before)), s-side $sfc)" \
    test $((fc_after - fc_before + sfc)) -ge 6

  echo "-- 3. link restored"
  docker network connect --ip 10.231.3.21 --alias pcscf-1-keys "$keys_net" "$agent"
  resumed_after=none
  check "registrations resume within 60 s of the restore" wait_resume 60
  echo "     first registration after the restore: attempt $resumed_after (one per second);" \
    "s-cscf-agent /readyz during the cut said $s_health_cut"
  run_ues "$sipp_dir/ue_register.xml" "$mode-restored" 3 >/dev/null
  analyse "$mode-restored"
  check "registrations succeed again" \
    test "$(outcome "$mode-restored" failed)" = 0 -a "$(( $(outcome "$mode-restored" registered) + $(outcome "$mode-restored" sipp-zero-res) ))" = 9
  check "no ck/ik reached a UE" test "$(outcome "$mode-restored" keys_at_ue)" = 0

  echo "-- 4. cut and restore during a registration load"
  load_dir=$run_dir/ue/$mode-load
  rm -rf "$load_dir"; mkdir -p "$load_dir"; chmod 0777 "$load_dir"
  "$sipp_dir/render.sh" "$sipp_dir/ue_register_mixed.xml" "$load_dir" >/dev/null
  compose run --rm -T -w "/work/$mode-load" ue -sf "/work/$mode-load/ue1.xml" "$access_pcscf" -m 60 -r 5 -l 1 \
    -cid_str "%u-%p-load-$RANDOM@%s" -timeout 90s -timeout_error -nostdin -trace_msg -trace_err \
    -message_file "/work/$mode-load/ue1.msg" -error_file "/work/$mode-load/ue1_errors.log" >"$load_dir/ue1.out" 2>&1 &
  load=$!
  sleep 3
  docker network disconnect "$keys_net" "$agent"
  sleep 4
  docker network connect --ip 10.231.3.21 --alias pcscf-1-keys "$keys_net" "$agent"
  wait "$load" || true
  analyse "$mode-load"
  check "every registration under load ended in 200 or 503 ($(outcome "$mode-load" registered) registered, $(outcome "$mode-load" failclosed) fail-closed, $(outcome "$mode-load" sipp-zero-res) SIPp zero-RES)" \
    test "$(outcome "$mode-load" failed)" = 0 -a "$(outcome "$mode-load" calls)" = 60
  check "the cut showed as 503s and the rest registered" \
    test "$(outcome "$mode-load" failclosed)" -gt 0 -a "$(outcome "$mode-load" registered)" -gt 0
  check "no ck/ik reached a UE" test "$(outcome "$mode-load" keys_at_ue)" = 0
  check "the agent never handed a keyless 401 to the P-CSCF" test "$(kamailio_failclosed)" = 0

  if [ "$failed" != 0 ]; then
    compose logs --no-color --tail 30 pcscf-agent scscf-agent >"$run_dir/agents-$mode.log" 2>&1 || true
    echo "  agent logs: $run_dir/agents-$mode.log"
  fi
  compose --profile ue down -v --remove-orphans >/dev/null 2>&1 || true
done

echo "compose: $passed passed, $failed failed"
[ "$failed" = 0 ]
