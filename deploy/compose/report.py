#!/usr/bin/env python3
"""The demo report of one compose run, from what the UEs received and what the proxies logged.

usage: report.py --mode MODE --ue-dir DIR --pcscf-log FILE --icscf-log FILE --users CSV --lab BIN
                 [--metrics NAME=URL ...] [--json FILE]

- registrations: 200s to the second REGISTER (SIPp message traces, *.msg) and 503s (fail closed);
- keys matched UE <-> P-CSCF: for every challenge that reached a UE, the CK/IK the UE derives
  (MILENAGE f3/f4 of the challenge's RAND with the UE's K/OP, computed with `ims-lab milenage`) has
  the fingerprint the Kamailio P-CSCF logged when it read the restored keys;
- keys seen by UEs: received messages carrying ck= or ik= (must be 0);
- keys in clear between the agents: challenges the I-CSCF logged as carrying ck/ik (0 except in
  plain / baseline);
- registration time: median and p99 of SIPp response time 1 (first REGISTER to 200), -trace_rtt;
- agents' metrics: the ikt_* series from /metrics, when URLs are given.
The key values themselves are used in memory only to compute fingerprints; nothing prints them.
"""

import argparse
import base64
import glob
import hashlib
import json
import re
import statistics
import subprocess
import sys
import urllib.request

CHALLENGE = re.compile(r"^SIP/2\.0 401[^\n]*\n(.*?)(?:\n\s*\n|\Z)", re.S | re.M)
KEYS_PARAM = re.compile(r"(^|[ ,:])(ck|ik)\s*=", re.I | re.M)


def received_blocks(text):
    """SIPp -trace_msg files: keep only the messages received."""
    blocks, current, keep = [], [], False
    for line in text.splitlines():
        if line.startswith("-----------------------------------------------"):
            if keep and current:
                blocks.append("\n".join(current))
            current, keep = [], False
            continue
        if "message received" in line:
            keep = True
            continue
        current.append(line)
    if keep and current:
        blocks.append("\n".join(current))
    return [b.strip() for b in blocks]


def users(path):
    out = {}
    for line in open(path).read().splitlines():
        if line and not line.startswith("#"):
            impi, _realm, k, op, amf = line.split(";")
            out[impi] = tuple(x.encode().hex() for x in (k, op, amf))
    return out


def expected_fingerprint(lab, subs, block):
    to = re.search(r"^To:\s*<sip:([^>]+)>", block, re.M | re.I)
    nonce = re.search(r'nonce="([^"]+)"', block)
    if not to or not nonce or to.group(1) not in subs:
        return None
    rand = base64.b64decode(nonce.group(1))[:16].hex()
    k, op, amf = subs[to.group(1)]
    out = subprocess.run([lab, "milenage", "--k", k, "--op", op, "--rand", rand, "--sqn", "000000000000",
                          "--amf", amf], check=True, capture_output=True, text=True).stdout
    vals = dict(line.split("=", 1) for line in out.split())
    return hashlib.sha256((vals["f3"] + vals["f4"]).encode()).hexdigest()[:8]


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def rtt_ms(ue_dir):
    vals = []
    for f in glob.glob(f"{ue_dir}/*_rtt.csv"):
        lines = open(f).read().splitlines()
        if not lines:
            continue
        head = lines[0].split(";")
        # SIPp: Date_ms;response_time_ms;rtd_no (columns named in the first line)
        col = next((i for i, h in enumerate(head) if "response_time" in h.lower()), 1)
        for line in lines[1:]:
            parts = line.split(";")
            try:
                vals.append(float(parts[col]))
            except (IndexError, ValueError):
                pass
    return vals


def metrics(urls):
    out = {}
    for spec in urls:
        name, url = spec.split("=", 1)
        try:
            text = urllib.request.urlopen(url, timeout=3).read().decode()
        except OSError as e:
            out[name] = [f"unreachable: {e}"]
            continue
        out[name] = [line for line in text.splitlines() if line.startswith("ikt_") and not line.endswith(" 0")]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True)
    ap.add_argument("--ue-dir", required=True)
    ap.add_argument("--pcscf-log", required=True)
    ap.add_argument("--icscf-log", required=True)
    ap.add_argument("--users", required=True)
    ap.add_argument("--lab", required=True)
    ap.add_argument("--metrics", action="append", default=[])
    ap.add_argument("--json")
    a = ap.parse_args()

    subs = users(a.users)
    blocks = []
    for f in sorted(glob.glob(f"{a.ue_dir}/*.msg")):
        blocks += received_blocks(open(f, errors="replace").read())
    ok = sum(1 for b in blocks if re.match(r"SIP/2\.0 200", b) and re.search(r"^CSeq:\s*2 REGISTER", b, re.M))
    closed = sum(1 for b in blocks if re.match(r"SIP/2\.0 503", b))
    challenges = [b for b in blocks if re.match(r"SIP/2\.0 401", b)]
    with_keys = sum(1 for b in blocks if KEYS_PARAM.search("\n".join(b.splitlines()[1:])))
    pcscf = open(a.pcscf_log, errors="replace").read()
    seen_fps = re.findall(r"fp=([0-9a-f]{8})", pcscf)
    expected = [expected_fingerprint(a.lab, subs, b) for b in challenges]
    seen = set(seen_fps)
    matched = sum(1 for fp in expected if fp and fp in seen)
    in_clear = len(re.findall(r"carries ck/ik in clear", open(a.icscf_log, errors="replace").read()))
    failclosed_pcscf = len(re.findall(r"failing closed", pcscf))
    rtts = rtt_ms(a.ue_dir)
    report = {
        "mode": a.mode,
        "registrations": ok,
        "challenges_at_ues": len(challenges),
        "keys_matched_ue_pcscf": matched,
        "keys_seen_by_ues": with_keys,
        "keys_in_clear_between_agents": in_clear,
        "failclosed_503_at_ues": closed,
        "failclosed_by_kamailio_pcscf": failclosed_pcscf,
        "registration_ms_median": statistics.median(rtts) if rtts else None,
        "registration_ms_p99": percentile(rtts, 99),
        "metrics": metrics(a.metrics),
    }
    print(f"== demo report, mode {a.mode}")
    print(f"registrations (200)                 {ok}")
    print(f"challenges that reached UEs          {len(challenges)}")
    print(f"keys matched UE <-> P-CSCF           {matched}/{len(challenges)}")
    print(f"challenges with ck/ik at a UE        {with_keys}")
    print(f"keys in clear between the agents     {in_clear}   (I-CSCF count)")
    print(f"503 (fail closed) at UEs             {closed}")
    if rtts:
        print(f"registration time median / p99       {report['registration_ms_median']:.1f} / "
              f"{report['registration_ms_p99']:.1f} ms   (SIPp, {len(rtts)} samples, ms resolution)")
    for name, lines in report["metrics"].items():
        print(f"-- {name} /metrics (non-zero ikt_* series)")
        for line in lines:
            print(f"   {line}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
