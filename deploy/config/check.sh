#!/usr/bin/env bash
# Validates every agent config under deploy/ with the agents' own `--check-config`, so none can drift
# from the schema: the annotated examples here, the Kubernetes base's and the compose demo's. They
# name files under /etc/ikt; the check makes a throwaway PKI and sealing secrets in a temporary
# directory and points the paths there.
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
# check_file AGENT FILE SED-SCRIPT: one more config, with its paths rewritten into $tmp.
check_file() {
  local agent=$1 file=$2 bin out
  bin=$(find_bin "$agent")
  sed "$3" "$file" >"$tmp/other.toml"
  if out=$("$bin" --config "$tmp/other.toml" --check-config 2>&1); then
    echo "ok: ${file#"$root"/} ($out)"
  else
    echo "FAIL: ${file#"$root"/}: $out"; status=1
  fi
}
k8s=$root/deploy/kubernetes/base/config
check_file s-cscf-agent "$k8s/s-cscf-agent.toml" "s|/etc/ikt/tls/ca.crt|$tmp/tls/ca.pem|; s|/etc/ikt/tls/tls.crt|$tmp/tls/scscf-1.pem|; s|/etc/ikt/tls/tls.key|$tmp/tls/scscf-1.key|; s|/etc/ikt/sealing/secret.hex|$tmp/secrets/pcscf-1.seal|"
check_file p-cscf-agent "$k8s/p-cscf-agent.toml" "s|/etc/ikt/tls/ca.crt|$tmp/tls/ca.pem|; s|/etc/ikt/tls/tls.crt|$tmp/tls/pcscf-1.pem|; s|/etc/ikt/tls/tls.key|$tmp/tls/pcscf-1.key|; s|/etc/ikt/sealing/secret.hex|$tmp/secrets/pcscf-1.seal|"
for f in "$root"/deploy/compose/config/*.toml; do
  agent=s-cscf-agent; case $(basename "$f") in p-cscf-agent*) agent=p-cscf-agent ;; esac
  check_file "$agent" "$f" "s|/etc/ikt/tls/sealing.hex|$tmp/secrets/pcscf-1.seal|; s|/etc/ikt/tls/|$tmp/tls/|"
done
exit $status
