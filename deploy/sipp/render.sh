#!/usr/bin/env bash
# Renders a UE scenario template for each subscriber of a users file (IMPI;realm;K;OP;AMF per line;
# default users.csv beside this script: the public TS 35.208 test sets 2, 3 and 5).
# SIPp does not expand [fieldN] inside [authentication], so the values are written into the file.
#
# Each rendering also gets a unique tag in its Via branch (@UETAG@): SIPp's own branch is built from
# its pid, which is 1 in every container, and a proxy would take two UEs' REGISTERs for one
# transaction. Run SIPp with -cid_str '%u-%p-TAG@%s' for the same reason (TAG = file name + run).
#
# usage: deploy/sipp/render.sh TEMPLATE OUTDIR [USERS]   -> OUTDIR/<impi user part>.xml, one per line
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
template=$1 out=$2 users=${3:-$here/users.csv}
mkdir -p "$out"
while IFS=';' read -r impi realm k op amf; do
  [ -n "$impi" ] || continue
  case $impi in \#*) continue ;; esac
  tag=${impi%%@*}-$(od -An -tx1 -N3 /dev/urandom | tr -d ' \n')
  sed -e "s|@UETAG@|$tag|g" -e "s|@IMPI@|$impi|g" -e "s|@REALM@|$realm|g" -e "s|@K@|$k|g" -e "s|@OP@|$op|g" -e "s|@AMF@|$amf|g" \
    "$template" >"$out/${impi%%@*}.xml"
  echo "$out/${impi%%@*}.xml"
done <"$users"
