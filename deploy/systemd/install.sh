#!/usr/bin/env bash
# Installs the agents as systemd services on a host: binaries, units, the "ikt" system user, and the
# example configs (only where no config exists yet). Run as root from a checkout after
# `deploy/docker/build.sh` (or any release build); set DESTDIR to stage into a directory instead.
#
# usage: deploy/systemd/install.sh [s-cscf-agent] [p-cscf-agent]     (default: both)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=${DESTDIR:-}
bins=${BIN_DIR:-$root/target/x86_64-unknown-linux-gnu/release}
agents=("$@")
[ ${#agents[@]} -gt 0 ] || agents=(s-cscf-agent p-cscf-agent)

install -d -m 0755 "$dest/usr/local/bin" "$dest/etc/systemd/system" "$dest/usr/lib/sysusers.d"
install -m 0644 "$here/ikt.sysusers.conf" "$dest/usr/lib/sysusers.d/ikt.conf"
if [ -z "$dest" ]; then
  systemd-sysusers /usr/lib/sysusers.d/ikt.conf
fi
# /etc/ikt: root-owned, group ikt may read. Private keys and sealing secrets: 0640 root:ikt.
group=ikt; [ -n "$dest" ] && group=0
install -d -m 0750 -o 0 -g "$group" "$dest/etc/ikt" "$dest/etc/ikt/tls" "$dest/etc/ikt/secrets"
for a in "${agents[@]}"; do
  case $a in s-cscf-agent|p-cscf-agent) ;; *) echo "unknown agent $a" >&2; exit 2 ;; esac
  [ -x "$bins/$a" ] || { echo "missing $bins/$a: run deploy/docker/build.sh first" >&2; exit 1; }
  install -m 0755 "$bins/$a" "$dest/usr/local/bin/$a"
  install -m 0644 "$here/$a.service" "$dest/etc/systemd/system/$a.service"
  if [ ! -e "$dest/etc/ikt/$a.toml" ]; then
    install -m 0640 -o 0 -g "$group" "$root/deploy/config/$a.toml" "$dest/etc/ikt/$a.toml"
    echo "installed example /etc/ikt/$a.toml: edit it (id, addresses, peers, TLS files)"
  fi
done
cat <<MSG
next steps:
  1. certificates: ikt-certs init --out /etc/ikt/tls --agent <this agent id> ... (or your own CA);
     then: chgrp ikt /etc/ikt/tls/*.key && chmod 0640 /etc/ikt/tls/*.key
  2. sealing secret (modes sealed / sealed fallback): openssl rand -hex 32 >/etc/ikt/secrets/<peer>.seal
     (same content on both agents of the pair); chgrp ikt and chmod 0640 it
  3. systemctl daemon-reload && systemctl enable --now ${agents[*]}
MSG
