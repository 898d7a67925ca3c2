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
  start scscf env RUST_LOG=info "$lab" serve --subscribers "$sipp_dir/subscribers.toml" \
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

# --- the UEs: one SIPp per subscriber (rendered scenario), count split between them
mapfile -t scenarios < <("$sipp_dir/render.sh" "$sipp_dir/ue_register.xml" "$work/scenarios" "$users")
per_ue=$(( (count + ${#scenarios[@]} - 1) / ${#scenarios[@]} ))
count=$(( per_ue * ${#scenarios[@]} ))
if [ $standin = 1 ]; then chain="Kamailio I-CSCF -> SIPp stand-in S-CSCF"
elif [ $agents = 0 ]; then chain="Kamailio I-CSCF -> lab S-CSCF (no agents)"
else chain="p-cscf-agent -> Kamailio I-CSCF -> s-cscf-agent ($mode) -> lab S-CSCF"; fi
echo "== $count registrations ($per_ue x ${#scenarios[@]} subscribers): SIPp UE -> Kamailio P-CSCF -> $chain"
success=0; failed=0; ue_rc=0
: >"$work/ue_messages.log"
for sc in "${scenarios[@]}"; do
  name=$(basename "$sc" .xml)
  set +e
  (cd "$work" && sipp -sf "$sc" -i $ip -p $ue_port "$ip:$pcscf_access" -m "$per_ue" -r 10 -l 5 \
    -timeout 60s -timeout_error -nostdin -trace_msg -message_file "$work/ue_$name.msg" \
    -trace_stat -stf "$work/ue_$name.csv" -trace_err -error_file "$work/ue_${name}_errors.log" >"$work/ue_$name.out" 2>&1)
  rc=$?
  set -e
  [ $rc = 0 ] || ue_rc=$rc
  cat "$work/ue_$name.msg" >>"$work/ue_messages.log"
  s=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++) if($i=="SuccessfulCall(C)") c=i; next} {v=$c} END{print v+0}' "$work/ue_$name.csv")
  f=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++) if($i=="FailedCall(C)") c=i; next} {v=$c} END{print v+0}' "$work/ue_$name.csv")
  success=$((success + s)); failed=$((failed + f))
done

# --- checks
echo "registrations: $success ok, $failed failed (sipp exit $ue_rc)"
[ "$ue_rc" = 0 ] && [ "$success" = "$count" ] || fail "not every registration succeeded (see $work/ue_*_errors.log)"

# Messages that reached the UE: keep the received ones only (SIPp logs "received" blocks).
awk '/^-+ .*$/{recv=0} /message received/{recv=1} recv' "$work/ue_messages.log" >"$work/ue_received.log"
challenges=$(grep -c '^SIP/2.0 401' "$work/ue_received.log" || true)
[ "$challenges" -ge "$count" ] || fail "the UE saw $challenges 401s for $count registrations"
if grep -Eiq '[ ,:](ck|ik)[ ]*=' "$work/ue_received.log"; then
  grep -Ei -m3 '[ ,:](ck|ik)[ ]*=' "$work/ue_received.log"
  fail "a message with ck/ik reached the UE"
fi
echo "ok: $challenges challenges reached the UE, none with ck/ik"

# The P-CSCF read keys for every challenge, and they are the UE's keys.
read_lines=$(grep -c 'ck/ik read and stripped toward the UE' "$work/pcscf.log" || true)
[ "$read_lines" -ge "$count" ] || fail "Kamailio P-CSCF read keys in $read_lines of $count challenges"
grep -q 'failing closed' "$work/pcscf.log" && fail "Kamailio P-CSCF failed a challenge closed"
# Expected fingerprints: MILENAGE f3/f4 for each challenge's RAND with the UE's K/OP.
lab=${lab:-$(find_bin ims-lab 2>/dev/null || true)}
[ -n "$lab" ] || fail "ims-lab (milenage) needed to compute the expected keys"
python3 - "$work" "$users" "$lab" <<'PY' || fail "key fingerprints or key leak check failed"
import base64, hashlib, re, subprocess, sys
work, users, lab = sys.argv[1:4]
subs = {}
for line in open(users).read().splitlines():
    if not line or line.startswith("#"):
        continue
    impi, _realm, k, op, amf = line.split(";")
    subs[impi] = (k, op, amf)
msgs = open(f"{work}/ue_received.log", errors="replace").read()
expected, secrets = set(), set()
for m in re.finditer(r"^SIP/2.0 401.*?(?=\n\s*\n)", msgs, re.S | re.M):
    block = m.group(0)
    impi = re.search(r"^To:\s*<sip:([^>]+)>", block, re.M | re.I).group(1)
    nonce = re.search(r'nonce="([^"]+)"', block).group(1)
    rand = base64.b64decode(nonce)[:16].hex()
    # SIPp takes K/OP/AMF as raw strings; MILENAGE gets their bytes as hex.
    k, op, amf = (x.encode().hex() for x in subs[impi])
    out = subprocess.run([lab, "milenage", "--k", k, "--op", op, "--rand", rand, "--sqn", "000000000000",
                          "--amf", amf], check=True, capture_output=True, text=True).stdout
    vals = dict(l.split("=", 1) for l in out.split())
    ck, ik = vals["f3"], vals["f4"]
    expected.add(hashlib.sha256((ck + ik).encode()).hexdigest()[:8])
    secrets.update({ck, ik})
seen = set(re.findall(r"fp=([0-9a-f]{8})", open(f"{work}/pcscf.log").read()))
if not seen or not seen <= expected:
    print(f"P-CSCF fingerprints {sorted(seen)} are not the UE's {sorted(expected)}")
    sys.exit(1)
print(f"ok: the P-CSCF's key fingerprints {sorted(seen)} equal the UE's")
import glob
logs = [l for l in glob.glob(f"{work}/*.log") if not l.endswith(("ue_messages.log", "ue_received.log"))]
for log in logs:  # SIP traces are checked for ck=/ik= above (and hold the UE's own RES)
    text = open(log, errors="replace").read().lower()
    for s in secrets:
        if s in text:
            print(f"key material found in {log}")
            sys.exit(1)
print(f"ok: no CK/IK hex in any of {len(logs)} logs ({', '.join(sorted(l.rsplit('/', 1)[1] for l in logs))})")
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
