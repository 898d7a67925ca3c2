# Shared by demo.sh and test.sh (sourced): the compose project, its PKI, the UEs and the report.
# Expects: $here (deploy/compose), $root (repo), $project (compose project name), $mode.

sipp_dir=$root/deploy/sipp
run_dir=$here/.run
access_pcscf=10.231.1.20:5060
pcscf_agent_admin=http://10.231.2.21:9102
scscf_agent_admin=http://10.231.2.40:9101

find_bin() {
  local d
  for d in "${BIN_DIR:-}" "$root/target/x86_64-unknown-linux-gnu/release" "$root/target/release" "$root/target/debug"; do
    [ -n "$d" ] && [ -x "$d/$1" ] && { echo "$d/$1"; return; }
  done
  command -v "$1" || { echo "no $1 binary: run deploy/docker/build.sh" >&2; return 1; }
}

compose() {
  local files=(-f "$here/compose.yaml" -f "$here/modes/$mode.yaml") profiles=()
  [ "$mode" = baseline ] || profiles=(--profile agents)
  docker-compose -p "$project" "${files[@]}" "${profiles[@]}" "$@"
}

need_images() {
  local want=(kamailio sipp ims-lab) i missing=()
  [ "$mode" = baseline ] || want+=(p-cscf-agent s-cscf-agent)
  for i in "${want[@]}"; do
    docker image inspect "ikt/$i:dev" >/dev/null 2>&1 || missing+=("$i")
  done
  echo "${missing[*]}"
}

# The development PKI (ikt-certs init) and the pair's sealing secret, readable by the containers'
# user (uid 65532) only.
make_pki() {
  local certs
  certs=$(find_bin ikt-certs)
  rm -rf "$run_dir/pki"
  mkdir -p "$run_dir/pki" "$run_dir/ue"
  "$certs" init --out "$run_dir/pki" --agent pcscf-1 --agent scscf-1 >/dev/null
  rm -f "$run_dir/pki/ca.key"   # only needed to issue more certificates
  (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$run_dir/pki/sealing.hex")
  if [ "$(id -u)" = 0 ]; then
    chown 65532:65532 "$run_dir/pki"/*.key "$run_dir/pki/sealing.hex"
  else
    # Without root the files cannot be given to uid 65532; a throwaway dev PKI may be world-readable.
    chmod 0644 "$run_dir/pki"/*.key "$run_dir/pki/sealing.hex"
  fi
  chmod 0777 "$run_dir/ue"
}

# Waits until the Kamailio hops listen and the agents answer /readyz.
wait_ready() {
  local i ok
  for i in $(seq 100); do
    ok=1
    for s in pcscf icscf; do
      compose logs "$s" 2>/dev/null | grep -q 'Listening on' || ok=0
    done
    compose logs scscf 2>/dev/null | grep -q 'scscf=' || ok=0
    # /readyz answers 200 once the agent is up and, on the s-side, its peer connected (in
    # out-of-band modes); 503 with the reason otherwise. (/healthz is liveness: 200 while serving.)
    if [ "$mode" != baseline ]; then
      python3 -c "import urllib.request,sys; [urllib.request.urlopen(u, timeout=1) for u in sys.argv[1:]]" \
        "$pcscf_agent_admin/readyz" "$scscf_agent_admin/readyz" 2>/dev/null || ok=0
    fi
    [ $ok = 1 ] && { sleep 0.5; return 0; }
    sleep 0.2
  done
  echo "the stack did not come up; /readyz and logs:" >&2
  for u in "$pcscf_agent_admin/readyz" "$scscf_agent_admin/readyz"; do
    python3 -c "import urllib.request,sys
try: print(urllib.request.urlopen(sys.argv[1], timeout=1).read().decode())
except Exception as e: print(sys.argv[1], e, getattr(e, 'read', lambda: b'')().decode())" "$u" >&2
  done
  compose logs --no-color --tail 20 >&2
  return 1
}

# run_ues TEMPLATE TAG PER_UE [RATE] : one SIPp container per subscriber, sequentially, one
# registration at a time (the S-CSCF keeps one pending challenge per IMPI); traces in
# .run/ue/TAG-*. Echoes "ok failed" (SIPp's call counts).
run_ues() {
  local template=$1 tag=$2 per_ue=$3 rate=${4:-10} sc name ok=0 failed=0 s f
  rm -rf "$run_dir/ue/$tag"
  mkdir -p "$run_dir/ue/$tag"
  chmod 0777 "$run_dir/ue/$tag"
  "$sipp_dir/render.sh" "$template" "$run_dir/ue/$tag" >/dev/null
  for sc in "$run_dir/ue/$tag"/*.xml; do
    name=$(basename "$sc" .xml)
    compose run --rm -T -w "/work/$tag" ue -sf "/work/$tag/$name.xml" "$access_pcscf" -m "$per_ue" -r "$rate" -l 1 \
      -cid_str "%u-%p-$name-$RANDOM@%s" \
      -timeout 60s -timeout_error -nostdin -trace_msg -message_file "/work/$tag/$name.msg" \
      -trace_stat -stf "/work/$tag/$name.csv" -trace_rtt -rtt_freq 1 -trace_err \
      -error_file "/work/$tag/${name}_errors.log" >"$run_dir/ue/$tag/$name.out" 2>&1 || true
    s=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++) if($i=="SuccessfulCall(C)") c=i; next} {v=$c} END{print v+0}' "$run_dir/ue/$tag/$name.csv" 2>/dev/null || echo 0)
    f=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++) if($i=="FailedCall(C)") c=i; next} {v=$c} END{print v+0}' "$run_dir/ue/$tag/$name.csv" 2>/dev/null || echo 0)
    ok=$((ok + s)); failed=$((failed + f))
  done
  echo "$ok $failed"
}

report() { # TAG [--json FILE]
  local tag=$1; shift
  compose logs --no-color pcscf >"$run_dir/pcscf.log" 2>&1
  compose logs --no-color icscf >"$run_dir/icscf.log" 2>&1
  local m=()
  [ "$mode" = baseline ] || m=(--metrics "p-cscf-agent=$pcscf_agent_admin/metrics" --metrics "s-cscf-agent=$scscf_agent_admin/metrics")
  python3 "$here/report.py" --mode "$mode" --ue-dir "$run_dir/ue/$tag" --pcscf-log "$run_dir/pcscf.log" \
    --icscf-log "$run_dir/icscf.log" --users "$sipp_dir/users.csv" --lab "$(find_bin ims-lab)" "${m[@]}" "$@"
}
