#!/usr/bin/env bash
# Every deploy check in one command (for CI): systemd units, example configs, Kubernetes manifests,
# the Kamailio chain in every mode, and the compose test when a Docker engine is present.
#
# usage: deploy/test.sh [--no-compose]
# Installs what it needs from Debian (kamailio, sip-tester) and PyPI (kubernetes-validate, PyYAML)
# when running as root; builds the binaries it needs (debug) when none are built.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
compose=1
[ "${1:-}" = --no-compose ] && compose=0

if [ "$(id -u)" = 0 ]; then
  need=()
  command -v kamailio >/dev/null 2>&1 || need+=(kamailio)
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  fi
  python3 -c 'import yaml' 2>/dev/null || pip install -q pyyaml >/dev/null 2>&1
  command -v kubernetes-validate >/dev/null 2>&1 || pip install -q kubernetes-validate >/dev/null 2>&1
fi

have_bins=1
for b in ikt-certs ims-lab s-cscf-agent p-cscf-agent; do
  found=0
  for d in "$root/target/x86_64-unknown-linux-gnu/release" "$root/target/release" "$root/target/debug"; do
    [ -x "$d/$b" ] && found=1
  done
  [ $found = 1 ] || have_bins=0
done
if [ $have_bins = 0 ]; then
  (cd "$root" && cargo build --bins -p ikt-certs -p ikt-lab -p s-cscf-agent -p p-cscf-agent) || exit 1
fi

passed=0
failed=0
step() { # name, command...
  local name=$1; shift
  echo "== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "FAILED: $name"
    failed=$((failed + 1))
  fi
}
step "systemd units" "$here/systemd/verify.sh"
step "example configs (--check-config)" "$here/config/check.sh"
step "kubernetes manifests" "$here/kubernetes/validate.sh"
step "kamailio configs with a stand-in S-CSCF" "$here/kamailio/test.sh" --standin 6
step "kamailio chain, no agents (baseline)" "$here/kamailio/test.sh" --no-agents 12
for mode in plain sealed grpc quic; do
  step "kamailio chain with the agents, mode $mode" "$here/kamailio/test.sh" "$mode" 12
done
if [ $compose = 1 ]; then
  if docker info >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1; then
    step "compose: key-transport cut and restore (grpc, quic)" "$here/compose/test.sh" grpc quic
  else
    echo "== compose: no Docker engine here, not run"
  fi
fi
echo "deploy: $passed passed, $failed failed"
[ $failed = 0 ]
