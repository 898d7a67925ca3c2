#!/usr/bin/env bash
# Checks that a static binary in a `FROM scratch` image resolves names on a Docker network (the
# engine's embedded DNS: container names and network aliases), as the agents do for peer addresses
# such as pcscf-agent:7710. Builds dnscheck/resolve.rs with rustc alone (std only, crt-static, like
# the agents), runs one named container and resolves it from a second one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
net=ikt-dnscheck-$$
cleanup() {
  docker rm -f "$net-peer" >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
  docker rmi ikt/dnscheck:tmp >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
rustc --edition 2021 -O -C target-feature=+crt-static --target x86_64-unknown-linux-gnu \
  "$here/dnscheck/resolve.rs" -o "$tmp/resolve"
mkdir -p "$tmp/etc"
printf 'FROM scratch\nCOPY resolve /resolve\nUSER 65532:65532\nENTRYPOINT ["/resolve"]\n' >"$tmp/Dockerfile"
docker build -q -t ikt/dnscheck:tmp "$tmp" >/dev/null
docker network create "$net" >/dev/null
docker run -d --name "$net-peer" --network "$net" --network-alias peer-alias ikt/dnscheck:tmp --idle 60 >/dev/null
docker run --rm --network "$net" ikt/dnscheck:tmp "$net-peer" peer-alias:7710 localhost
echo "ok: names resolve inside a scratch image on a Docker network (no nsswitch.conf needed)"
