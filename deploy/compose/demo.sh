#!/usr/bin/env bash
# The compose demo: builds the images, starts the IMS core with the agents in mode MODE on three
# private networks, registers SIPp UEs through it, prints the demo report and tears everything down.
#
# usage: deploy/compose/demo.sh MODE [N]
#   MODE  plain | sealed | grpc | quic | baseline (no agents: the 3GPP baseline for comparison)
#         | all (each of them in turn, then a table)
#   N     registrations (default 30, spread over the subscribers of deploy/sipp/users.csv)
# env: IKT_NO_BUILD=1 reuses the images and binaries already built; IKT_KEEP=1 leaves the stack up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-}
count=${2:-30}
case $mode in plain|sealed|grpc|quic|baseline) ;;
  all)
    [ "${IKT_NO_BUILD:-0}" = 1 ] || "$root/deploy/docker/build.sh" kamailio sipp ims-lab p-cscf-agent s-cscf-agent
    for m in baseline plain sealed grpc quic; do
      IKT_NO_BUILD=1 IKT_JSON="$here/.run/report-$m.json" "$0" "$m" "$count" || exit 1
    done
    python3 - "$here/.run" <<'PY'
import json, sys
rows = [json.load(open(f"{sys.argv[1]}/report-{m}.json")) for m in ("baseline", "plain", "sealed", "grpc", "quic")]
for r in rows:
    r["registered"] = f'{r["registrations"]}/{r["calls"]}' + (f' (+{r["sipp_zero_res"]} SIPp zero-RES)' if r["sipp_zero_res"] else "")
    r["matched"] = f'{r["keys_matched_ue_pcscf"]}/{r["challenges_at_ues"]}'
cols = [("mode", "mode"), ("registered", "registered"), ("keys matched UE=P-CSCF", "matched"),
        ("keys at UEs", "keys_seen_by_ues"), ("clear between agents", "keys_in_clear_between_agents"),
        ("503", "failclosed_503_at_ues"), ("median ms", "registration_ms_median"), ("p99 ms", "registration_ms_p99")]
print("\n== all modes (compose, SIPp UEs, Kamailio P-/I-CSCF, lab S-CSCF)")
print(" | ".join(c for c, _ in cols))
for r in rows:
    print(" | ".join(str(r.get(k)) for _, k in cols))
PY
    exit 0 ;;
  *) sed -n '2,11p' "$0"; exit 2 ;;
esac
project=ikt-demo
# shellcheck source=lib.sh
. "$here/lib.sh"

if [ "${IKT_NO_BUILD:-0}" != 1 ]; then
  imgs=(kamailio sipp ims-lab)
  [ "$mode" = baseline ] || imgs+=(p-cscf-agent s-cscf-agent)
  "$root/deploy/docker/build.sh" "${imgs[@]}"
fi
missing=$(need_images)
[ -z "$missing" ] || { echo "missing images: $missing (run deploy/docker/build.sh)" >&2; exit 1; }

down() {
  if [ "${IKT_KEEP:-0}" = 1 ]; then
    echo "stack left up: docker-compose -p $project -f $here/compose.yaml -f $here/modes/$mode.yaml down"
  else
    compose --profile ue down -v --remove-orphans >/dev/null 2>&1 || true
  fi
}
trap down EXIT
compose --profile ue down -v --remove-orphans >/dev/null 2>&1 || true
make_pki
echo "== starting mode $mode"
compose up -d
wait_ready

subs=$(grep -cv '^#' "$sipp_dir/users.csv")
per_ue=$(( (count + subs - 1) / subs ))
echo "== $((per_ue * subs)) registrations ($per_ue per UE, $subs UEs) through $access_pcscf"
read -r ok failed < <(run_ues "$sipp_dir/ue_register.xml" demo "$per_ue")
echo "SIPp: $ok registrations completed, $failed failed"
json=()
[ -n "${IKT_JSON:-}" ] && json=(--json "$IKT_JSON")
report demo "${json[@]}"
