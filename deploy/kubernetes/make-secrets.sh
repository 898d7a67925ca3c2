#!/usr/bin/env bash
# Writes the files the kustomize base turns into Secrets: a development CA with certificates for
# pcscf-1 and scscf-1 (ikt-certs init) and the pair's sealing secret, into base/secrets/ (gitignored).
# For production use your own CA or cert-manager and create Secrets with the same keys
# (ca.crt, tls.crt, tls.key) instead.
#
# usage: deploy/kubernetes/make-secrets.sh [--force]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$here/base/secrets
certs=""
for d in "${BIN_DIR:-}" "$root/target/x86_64-unknown-linux-gnu/release" "$root/target/release" "$root/target/debug"; do
  [ -n "$d" ] && [ -x "$d/ikt-certs" ] && { certs=$d/ikt-certs; break; }
done
[ -n "$certs" ] || certs=$(command -v ikt-certs) || {
  echo "ikt-certs not built: cargo build -p ikt-certs (or deploy/docker/build.sh)" >&2; exit 1; }
force=(); [ "${1:-}" = --force ] && force=(--force)
if [ -e "$out/ca.pem" ] && [ ${#force[@]} -eq 0 ]; then
  echo "$out already has a PKI (use --force to replace it)"
  exit 0
fi
"$certs" init --out "$out" --agent pcscf-1 --agent scscf-1 "${force[@]}" >/dev/null
# The CA key is only needed to issue more certificates: keep it out of the cluster.
umask 077
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$out/sealing-pcscf-1-scscf-1.hex"
echo "wrote $(ls "$out" | tr '\n' ' ')"
