#!/usr/bin/env bash
# Validates the example configs with the agents' own `--check-config`, so the examples cannot drift
# from the schema. The examples name files under /etc/ikt; the check makes a throwaway PKI and
# sealing secrets with the same names in a temporary directory and points the paths there.
#
# usage: deploy/config/check.sh            binaries from target/ (static release, else debug) or PATH
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
find_bin() {
  local d
  for d in "${BIN_DIR:-}" "$root/target/x86_64-unknown-linux-gnu/release" "$root/target/release" "$root/target/debug"; do
    [ -n "$d" ] && [ -x "$d/$1" ] && { echo "$d/$1"; return; }
  done
  command -v "$1" || { echo "no $1 binary: build it first (deploy/docker/build.sh)" >&2; return 1; }
}
certs=$(find_bin ikt-certs)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$certs" init --out "$tmp/tls" --agent pcscf-1 --agent scscf-1 >/dev/null
mkdir -p "$tmp/secrets"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/secrets/pcscf-1.seal"
cp "$tmp/secrets/pcscf-1.seal" "$tmp/secrets/scscf-1.seal"
status=0
for agent in s-cscf-agent p-cscf-agent; do
  bin=$(find_bin "$agent")
  sed "s|/etc/ikt/|$tmp/|g" "$here/$agent.toml" >"$tmp/$agent.toml"
  if out=$("$bin" --config "$tmp/$agent.toml" --check-config 2>&1); then
    echo "ok: deploy/config/$agent.toml ($out)"
  else
    echo "FAIL: deploy/config/$agent.toml: $out"; status=1
  fi
  # A negative control: a misspelt key must be refused, or the check above proves nothing.
  { echo 'admin_listen = "127.0.0.1:1"'; cat "$tmp/$agent.toml"; } >"$tmp/typo.toml"
  if "$bin" --config "$tmp/typo.toml" --check-config >/dev/null 2>&1; then
    echo "FAIL: $agent accepted a config with an unknown key"; status=1
  fi
done
exit $status
