#!/usr/bin/env bash
# Checks the unit files: `systemd-analyze verify` (syntax, directives, the ExecStart binary) and the
# offline `systemd-analyze security` exposure score. The units name /usr/local/bin/<agent>; for the
# check a copy points at the release build when it exists, else at /bin/true, so the check also
# runs before the binaries are built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bins=${BIN_DIR:-$root/target/x86_64-unknown-linux-gnu/release}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (Debian package systemd)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
for a in s-cscf-agent p-cscf-agent; do
  bin=/bin/true; [ -x "$bins/$a" ] && bin=$bins/$a
  sed "s|/usr/local/bin/$a|$bin|g" "$here/$a.service" >"$tmp/$a.service"
  echo "== systemd-analyze verify $a.service (ExecStart -> $bin)"
  # verify exits 0 on unknown or misspelt directives and only prints them: any output is a failure.
  if ! out=$(systemd-analyze verify "$tmp/$a.service" 2>&1) || [ -n "$out" ]; then
    echo "$out"; status=1
  else
    echo "ok"
  fi
  echo "== systemd-analyze security --offline=true $a.service"
  systemd-analyze security --offline=true --threshold=25 "$tmp/$a.service" | tail -1 || status=1
done
exit $status
