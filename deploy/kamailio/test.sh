#!/usr/bin/env bash
# Runs Debian's Kamailio as the P-CSCF and as the I-CSCF around the key-transport agents, with SIPp
# as the UE, on loopback (127.0.77.1), and checks:
#   - every registration succeeds (SIPp: all calls successful);
#   - no message that reaches the UE carries ck= or ik= (SIPp -trace_msg, grepped);
#   - the Kamailio P-CSCF read ck/ik from the restored 401 for every registration, and the keys it
#     read are the UE's (fingerprint in its log = fingerprint of the CK/IK that MILENAGE gives for the
#     RAND in the challenge and the UE's K/OP);
#   - no log (Kamailio, agents, lab) contains the hex of any CK or IK in play.
#
# usage: deploy/kamailio/test.sh [--standin | --no-agents] [MODE] [N]
#   MODE      plain | sealed | grpc | quic (default grpc): the agents' mode
#   N         registrations (default 20)
#   --standin   no agents and no lab: a SIPp stand-in S-CSCF answers with a fixed AKA challenge
#               (ue1 of deploy/sipp/users.csv), and a keyless one for the fail-closed check
#   --no-agents the lab S-CSCF directly behind the Kamailio I-CSCF (3GPP baseline: keys in clear
#               at the I-CSCF, which the test then expects to see)
#
# Chain (full):    SIPp UE -> kamailio P-CSCF -> p-cscf-agent -> kamailio I-CSCF -> s-cscf-agent -> lab S-CSCF
# Chain (standin): SIPp UE -> kamailio P-CSCF -> kamailio I-CSCF -> SIPp stand-in S-CSCF
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sipp_dir=$root/deploy/sipp

standin=0
agents=1
mode=grpc
count=20
for a in "$@"; do
  case $a in
    --standin) standin=1 ;;
    --no-agents) agents=0 ;;
    plain|sealed|grpc|quic) mode=$a ;;
    [0-9]*) count=$a ;;
    *) echo "usage: $0 [--standin] [plain|sealed|grpc|quic] [N]" >&2; exit 2 ;;
  esac
done

ip=127.0.77.1
ue_port=5091
pcscf_access=5060
pcscf_core=5061
pagent_port=5062
icscf_port=5064
sagent_port=5070
scscf_port=5080
keys_port=7710

for tool in kamailio sipp; do
  command -v $tool >/dev/null || { echo "$tool missing (Debian packages kamailio, sip-tester)" >&2; exit 1; }
done
find_bin() {
  local d
  for d in "${BIN_DIR:-}" "$root/target/x86_64-unknown-linux-gnu/release" "$root/target/release" "$root/target/debug"; do
    [ -n "$d" ] && [ -x "$d/$1" ] && { echo "$d/$1"; return; }
  done
  command -v "$1" || { echo "no $1 binary: build it first" >&2; return 1; }
}

work=$(mktemp -d /tmp/ikt-kamailio.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${keep:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; keep=1; exit 1; }

start() { # name, command...: starts in the background with its log in $work/name.log
  local name=$1; shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
wait_udp() { # port: until something listens on ip:port/udp (5 s)
  local i
  for i in $(seq 50); do
    ss -Hlun "src $ip:$1" | grep -q . && return 0
    sleep 0.1
  done
  fail "nothing listens on udp $ip:$1"
}

kamailio_run() { # name cfg: foreground kamailio, logs to stderr, runtime dir in $work
  local name=$1 cfg=$2
  mkdir -p "$work/$name.run"
  start "$name" kamailio -f "$cfg" -DD -E -Y "$work/$name.run" -P "$work/$name.pid" -m 64 -M 8 -x tlsf
}

# --- the S-CSCF side
if [ $standin = 1 ]; then
  next_of_pcscf=sip:$ip:$icscf_port
  next_of_icscf=sip:$ip:$scscf_port
  users=$work/users.csv
  grep '^ue1@' "$sipp_dir/users.csv" >"$users"   # ue1 only: the stand-in's fixed challenge
  start scscf sipp -sf "$sipp_dir/scscf_standin.xml" -i $ip -p $scscf_port -nostdin -trace_err \
    -error_file "$work/scscf_errors.log"
  wait_udp $scscf_port
else
  next_of_pcscf=sip:$ip:$pagent_port
  next_of_icscf=sip:$ip:$sagent_port
  if [ $agents = 0 ]; then
    next_of_pcscf=sip:$ip:$icscf_port
    next_of_icscf=sip:$ip:$scscf_port
  fi
  users=$sipp_dir/users.csv
  lab=$(find_bin ims-lab)
  # Lab S-CSCF (with its HSS). `ims-lab serve` always starts its own P-CSCF and I-CSCF too; they get
  # addresses of their own here and stay idle: the chain uses only its S-CSCF.
  # A high failed-attempt limit: SIPp's zero-byte-RES failures must not trigger the lab's policy.
  # --sipp-compat: RANDs whose RES has no zero byte, which SIPp would cut off.
  start scscf env RUST_LOG=info "$lab" serve --sipp-compat --subscribers "$sipp_dir/subscribers.toml" --max-failed-attempts 1000 \
    --scscf "$ip:$scscf_port" --pcscf "$ip:5181" --icscf "$ip:5182" --admin "$ip:5199"
  wait_udp $scscf_port
fi
if [ $standin = 0 ] && [ $agents = 1 ]; then
  certs=$(find_bin ikt-certs)
  sagent=$(find_bin s-cscf-agent)
  pagent=$(find_bin p-cscf-agent)
  "$certs" init --out "$work/tls" --agent pcscf-1 --agent scscf-1 >/dev/null
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$work/seal.hex"
  sealing_s="" ; sealing_p=""
  if [ "$mode" = sealed ]; then
    sealing_s=$'[peer.sealing]\nkid = "t1"\nsecret_file = "'$work/seal.hex$'"'
    sealing_p=$'[[peer.sealing]]\nkid = "t1"\nsecret_file = "'$work/seal.hex$'"'
  fi
  transport_addr=""
  case $mode in
    grpc) transport_addr="grpc = \"$ip:$keys_port\"" ;;
    quic) transport_addr="quic = \"$ip:$keys_port\"" ;;
  esac
  cat >"$work/s-cscf-agent.toml" <<EOF
id = "scscf-1"
[sip]
listen = "$ip:$sagent_port"
scscf = "$ip:$scscf_port"
[policy]
fallback = "reject"
[tls]
ca = "$work/tls/ca.pem"
cert = "$work/tls/scscf-1.pem"
key = "$work/tls/scscf-1.key"
[admin]
listen = "$ip:9101"
[[peer]]
id = "pcscf-1"
mode = "$mode"
$transport_addr
$sealing_s
EOF
  cat >"$work/p-cscf-agent.toml" <<EOF
id = "pcscf-1"
[sip]
listen = "$ip:$pagent_port"
core = "$ip:$icscf_port"
[keys]
accept_plain = $([ "$mode" = plain ] && echo true || echo false)
[transport]
grpc_listen = "$ip:$keys_port"
quic_listen = "$ip:$keys_port"
ca = "$work/tls/ca.pem"
cert = "$work/tls/pcscf-1.pem"
key = "$work/tls/pcscf-1.key"
[admin]
listen = "$ip:9102"
[[peer]]
id = "scscf-1"
$sealing_p
EOF
  "$pagent" --config "$work/p-cscf-agent.toml" --check-config >/dev/null || fail "p-cscf-agent config refused"
  "$sagent" --config "$work/s-cscf-agent.toml" --check-config >/dev/null || fail "s-cscf-agent config refused"
  start p-cscf-agent env RUST_LOG=debug "$pagent" --config "$work/p-cscf-agent.toml"
  wait_udp $pagent_port
  start s-cscf-agent env RUST_LOG=debug "$sagent" --config "$work/s-cscf-agent.toml"
  wait_udp $sagent_port
fi

# --- the two Kamailio hops
IKT_ICSCF_LISTEN=$ip:$icscf_port IKT_ICSCF_NEXT=$next_of_icscf kamailio_run icscf "$here/icscf.cfg"
IKT_PCSCF_ACCESS=$ip:$pcscf_access IKT_PCSCF_CORE=$ip:$pcscf_core IKT_PCSCF_NEXT=$next_of_pcscf \
  kamailio_run pcscf "$here/pcscf.cfg"
wait_udp $icscf_port
wait_udp $pcscf_access
sleep 0.5   # workers up

# --- the UEs: one SIPp per subscriber (rendered scenario), count split between them. One
# registration at a time per subscriber (-l 1): the S-CSCF keeps one pending challenge per IMPI, so
# concurrent registrations of one IMPI would re-challenge each other.
mapfile -t scenarios < <("$sipp_dir/render.sh" "$sipp_dir/ue_register.xml" "$work/scenarios" "$users")
per_ue=$(( (count + ${#scenarios[@]} - 1) / ${#scenarios[@]} ))
count=$(( per_ue * ${#scenarios[@]} ))
if [ $standin = 1 ]; then chain="Kamailio I-CSCF -> SIPp stand-in S-CSCF"
elif [ $agents = 0 ]; then chain="Kamailio I-CSCF -> lab S-CSCF (no agents)"
else chain="p-cscf-agent -> Kamailio I-CSCF -> s-cscf-agent ($mode) -> lab S-CSCF"; fi
echo "== $count registrations ($per_ue x ${#scenarios[@]} subscribers): SIPp UE -> Kamailio P-CSCF -> $chain"
for sc in "${scenarios[@]}"; do
  name=$(basename "$sc" .xml)
  (cd "$work" && sipp -sf "$sc" -i $ip -p $ue_port "$ip:$pcscf_access" -m "$per_ue" -r 10 -l 1 -cid_str "%u-%p-$name@%s" \
    -timeout 60s -timeout_error -nostdin -trace_msg -message_file "$work/ue_$name.msg" \
    -trace_err -error_file "$work/ue_${name}_errors.log" >"$work/ue_$name.out" 2>&1) || true
done

# --- checks
# Per registration: registered, fail-closed 503, SIPp's own zero-byte-RES limitation, or failed;
# no ck/ik in anything the UE received; the P-CSCF's key fingerprint = the UE's for every challenge.
lab=${lab:-$(find_bin ims-lab 2>/dev/null || true)}
[ -n "$lab" ] || fail "ims-lab (milenage) needed to compute the expected keys"
python3 "$sipp_dir/outcomes.py" --users "$users" --lab "$lab" --pcscf-log "$work/pcscf.log" \
  --json "$work/outcomes.json" "$work"/ue_ue*.msg || fail "a registration failed or keys reached the UE (see $work)"
read -r registered zero failclosed challenges matched < <(python3 -c "
import json; r = json.load(open('$work/outcomes.json'))
print(r['registered'], r['sipp-zero-res'], r['failclosed'], r['challenges'], r['keys_matched'])")
[ $((registered + zero)) = "$count" ] || fail "$registered registered + $zero SIPp zero-RES of $count"
[ "$failclosed" = 0 ] || fail "$failclosed registrations failed closed with the chain intact"
[ "$matched" = "$challenges" ] || fail "the P-CSCF's keys match the UE's for $matched of $challenges challenges"
echo "ok: $registered registered ($zero more refused for SIPp's zero byte in RES), $challenges challenges at the UE without ck/ik, P-CSCF keys = UE keys for all $challenges"
grep -q 'failing closed' "$work/pcscf.log" && fail "Kamailio P-CSCF failed a challenge closed"
# No CK/IK of any challenge in any log (SIP traces excluded: checked for ck=/ik= above).
python3 - "$work" "$users" "$lab" "$sipp_dir" <<'PY' || fail "key material in a log"
import glob, sys
work, users_csv, lab, sipp_dir = sys.argv[1:5]
sys.path.insert(0, sipp_dir)
import outcomes
subs = outcomes.users(users_csv)
mil = outcomes.Milenage(lab, subs)
secrets = set()
for f in glob.glob(f"{work}/ue_ue*.msg"):
    for d, msg in outcomes.messages(open(f, errors="replace").read()):
        if d == "in" and msg.startswith("SIP/2.0 401"):
            import re
            to = re.search(r"<sip:([^>]+)>", outcomes.header(msg, "To")).group(1)
            v = mil.vector(to, re.search(r'nonce="([^"]+)"', msg).group(1))
            secrets.update({v["f3"], v["f4"]})
logs = glob.glob(f"{work}/*.log")
for log in logs:
    text = open(log, errors="replace").read().lower()
    if any(s in text for s in secrets):
        print(f"key material found in {log}")
        sys.exit(1)
print(f"ok: none of the {len(secrets)} CK/IK values in any of {len(logs)} logs ({', '.join(sorted(l.rsplit('/', 1)[1] for l in logs))})")
PY
# Keys in clear on the SIP path between the agents: the I-CSCF counts 401s that carry ck/ik.
in_clear=$(grep -c 'carries ck/ik in clear' "$work/icscf.log" || true)
echo "challenges with ck/ik in clear at the I-CSCF: $in_clear"
if [ $standin = 1 ] || [ $agents = 0 ] || [ "$mode" = plain ]; then
  [ "$in_clear" -ge "$count" ] || fail "expected the baseline's keys in clear at the I-CSCF, counted $in_clear"
else
  [ "$in_clear" = 0 ] || fail "mode $mode: $in_clear challenges crossed the I-CSCF with ck/ik in clear"
fi

if [ $standin = 1 ]; then
  # Fail closed: an AKA challenge that arrives without ck/ik must become 503 at the UE, never a 401.
  kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
  sed -e 's/, ck="[0-9a-f]*"//' -e 's/, ik="[0-9a-f]*"//' "$sipp_dir/scscf_standin.xml" >"$work/standin_nokeys.xml"
  grep -q 'ck=' "$work/standin_nokeys.xml" && fail "could not make the keyless stand-in"
  start scscf_nokeys sipp -sf "$work/standin_nokeys.xml" -i $ip -p $scscf_port -nostdin
  wait_udp $scscf_port
  "$sipp_dir/render.sh" "$sipp_dir/ue_register_failclosed.xml" "$work/failclosed" "$users" >/dev/null
  set +e
  (cd "$work" && sipp -sf "$work/failclosed/ue1.xml" -i $ip -p $ue_port "$ip:$pcscf_access" -m 3 -r 10 \
    -timeout 30s -timeout_error -nostdin -trace_msg -message_file "$work/ue_failclosed.msg" >"$work/ue_failclosed.out" 2>&1)
  rc=$?
  set -e
  [ $rc = 0 ] || fail "a keyless challenge did not become 503 at the UE (see $work/ue_failclosed.msg)"
  grep -q '^SIP/2.0 401' "$work/ue_failclosed.msg" && fail "a keyless 401 reached the UE"
  n503=$(grep -c '^SIP/2.0 503' "$work/ue_failclosed.msg" || true)
  closed=$(grep -c 'failing closed' "$work/pcscf.log" || true)
  echo "ok: keyless challenges: $n503 x 503 at the UE, no 401; P-CSCF logged $closed fail-closed"
fi
echo "PASS: kamailio chain ($([ $standin = 1 ] && echo standin || { [ $agents = 0 ] && echo no-agents || echo "$mode"; })), $count registrations"
