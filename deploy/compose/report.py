#!/usr/bin/env python3
"""The demo report of one compose run, from what the UEs received and what the proxies logged.
Outcomes per registration come from deploy/sipp/outcomes.py.

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
import glob
import json
import re
import statistics
import sys
import os
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sipp"))
import outcomes  # noqa: E402



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
        out[name] = [line for line in text.splitlines()
                     if line.startswith("ikt_") and not line.endswith(" 0") and "_bucket{" not in line]
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

    files = sorted(glob.glob(f"{a.ue_dir}/*.msg"))
    r = outcomes.analyse(files, outcomes.users(a.users), a.lab, a.pcscf_log)
    in_clear = len(re.findall(r"carries ck/ik in clear", open(a.icscf_log, errors="replace").read()))
    rtts = rtt_ms(a.ue_dir)
    report = {
        "mode": a.mode,
        "calls": r["calls"],
        "registrations": r["registered"],
        "sipp_zero_res": r["sipp-zero-res"],
        "failed": r["failed"],
        "challenges_at_ues": r["challenges"],
        "keys_matched_ue_pcscf": r["keys_matched"],
        "keys_seen_by_ues": r["keys_at_ue"],
        "keys_in_clear_between_agents": in_clear,
        "failclosed_503_at_ues": r["failclosed"],
        "registration_ms_median": statistics.median(rtts) if rtts else None,
        "registration_ms_p99": percentile(rtts, 99),
        "metrics": metrics(a.metrics),
    }
    print(f"== demo report, mode {a.mode}")
    print(f"registrations                        {r['registered']} of {r['calls']}"
          + (f"   (+{r['sipp-zero-res']} refused: SIPp cuts RES at a 0x00 byte)" if r["sipp-zero-res"] else ""))
    print(f"failed registrations                 {r['failed']}")
    print(f"challenges that reached UEs          {r['challenges']}")
    print(f"keys matched UE <-> P-CSCF           {r['keys_matched']}/{r['challenges']}")
    print(f"challenges with ck/ik at a UE        {r['keys_at_ue']}")
    print(f"keys in clear between the agents     {in_clear}   (counted at the I-CSCF)")
    print(f"503 (fail closed) at UEs             {r['failclosed']}")
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
    return 1 if r["failed"] or r["keys_at_ue"] else 0


if __name__ == "__main__":
    sys.exit(main())
