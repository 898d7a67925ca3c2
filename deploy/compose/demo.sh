#!/usr/bin/env bash
# The compose demo: builds the images, starts the IMS core with the agents in mode MODE on three
# private networks, registers SIPp UEs through it, prints the demo report and tears everything down.
#
# usage: deploy/compose/demo.sh MODE [N]
#   MODE  plain | sealed | grpc | quic | baseline (no agents: the 3GPP baseline for comparison)
#   N     registrations (default 30, spread over the subscribers of deploy/sipp/users.csv)
# env: IKT_NO_BUILD=1 reuses the images and binaries already built; IKT_KEEP=1 leaves the stack up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-}
count=${2:-30}
case $mode in plain|sealed|grpc|quic|baseline) ;; *) sed -n '2,9p' "$0"; exit 2 ;; esac
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
report demo
