#!/usr/bin/env python3
"""What happened to each registration of SIPp UEs, from their -trace_msg files.

usage: outcomes.py --users CSV --lab IMS_LAB [--pcscf-log FILE] [--json FILE] MSG_FILE...

Per Call-ID, the outcome is one of
  registered      200 to the authenticated REGISTER
  failclosed      503 to a REGISTER (the chain refused to challenge without keys)
  sipp-zero-res   the S-CSCF refused SIPp's digest because RES has a 0x00 byte: SIPp 3.6 uses RES as
                  a C string and cuts it there (about 3% of random challenges). A limitation of the
                  test UE, not of the chain; recognised by recomputing RES with `ims-lab milenage`.
  failed          anything else (timeout, other error, unexpected message)
and, over all received messages:
  keys_at_ue      received messages with a ck= or ik= parameter (must be 0)
  keys_matched    challenges whose UE-side CK/IK fingerprint (MILENAGE f3/f4 of the challenge's RAND
                  with the UE's K/OP; first 8 hex of SHA-256 over the lowercase hex of CK then IK)
                  is among those the Kamailio P-CSCF logged (fp=...), when --pcscf-log is given.
Exit status 1 when a call failed or keys reached a UE. Key values are computed in memory for the
fingerprints only and never printed.
"""

import argparse
import base64
import hashlib
import json
import re
import subprocess
import sys
from collections import OrderedDict

SEPARATOR = "-----------------------------------------------"
KEYS_PARAM = re.compile(r"(^|[ ,:])(ck|ik)\s*=", re.I)


def messages(text):
    """(direction, message) pairs of a SIPp -trace_msg file, in order."""
    out, current, direction = [], [], None
    for line in text.splitlines():
        if line.startswith(SEPARATOR):
            if direction and current:
                out.append((direction, "\n".join(current).strip()))
            current, direction = [], None
            continue
        if direction is None and "message received" in line:
            direction = "in"
            continue
        if direction is None and "message sent" in line:
            direction = "out"
            continue
        current.append(line)
    if direction and current:
        out.append((direction, "\n".join(current).strip()))
    return out


def header(msg, name):
    m = re.search(rf"^{name}\s*:\s*(.*)$", msg, re.M | re.I)
    return m.group(1).strip() if m else ""


def users(path):
    out = {}
    for line in open(path).read().splitlines():
        if line and not line.startswith("#"):
            impi, _realm, k, op, amf = line.split(";")
            # SIPp takes K/OP/AMF as raw strings; MILENAGE gets their bytes.
            out[impi] = tuple(x.encode().hex() for x in (k, op, amf))
    return out


class Milenage:
    def __init__(self, lab, subs):
        self.lab, self.subs, self.cache = lab, subs, {}

    def vector(self, impi, nonce):
        key = (impi, nonce)
        if key not in self.cache:
            k, op, amf = self.subs[impi]
            rand = base64.b64decode(nonce)[:16].hex()
            out = subprocess.run([self.lab, "milenage", "--k", k, "--op", op, "--rand", rand, "--sqn",
                                  "000000000000", "--amf", amf], check=True, capture_output=True,
                                 text=True).stdout
            self.cache[key] = dict(line.split("=", 1) for line in out.split())
        return self.cache[key]

    def fingerprint(self, impi, nonce):
        v = self.vector(impi, nonce)
        return hashlib.sha256((v["f3"] + v["f4"]).encode()).hexdigest()[:8]

    def res_has_zero_byte(self, impi, nonce):
        return b"\x00" in bytes.fromhex(self.vector(impi, nonce)["f2"])


def analyse(files, subs, lab, pcscf_log=None):
    mil = Milenage(lab, subs)
    calls = OrderedDict()
    keys_at_ue = 0
    for f in files:
        for direction, msg in messages(open(f, errors="replace").read()):
            cid = header(msg, "Call-ID")
            c = calls.setdefault((f, cid), {"in": [], "out": []})
            c[direction].append(msg)
            if direction == "in" and KEYS_PARAM.search("\n".join(msg.splitlines()[1:])):
                keys_at_ue += 1
    seen_fps = set(re.findall(r"fp=([0-9a-f]{8})", open(pcscf_log, errors="replace").read())) if pcscf_log else None
    counts = {"registered": 0, "failclosed": 0, "sipp-zero-res": 0, "failed": 0}
    challenges = matched = 0
    failed_ids = []
    for (_f, cid), c in calls.items():
        outcome = "failed"
        first_nonce = None
        impi = None
        for msg in c["in"]:
            status = msg.split(" ", 2)[1] if msg.startswith("SIP/2.0 ") else ""
            cseq = header(msg, "CSeq")
            if status == "401":
                challenges += 1
                m = re.search(r'nonce="([^"]+)"', msg)
                to = re.search(r"<sip:([^>]+)>", header(msg, "To"))
                if m and to and to.group(1) in subs:
                    impi = to.group(1)
                    if first_nonce is None:
                        first_nonce = m.group(1)
                    if seen_fps is not None and mil.fingerprint(impi, m.group(1)) in seen_fps:
                        matched += 1
            if status == "200" and cseq.startswith("2 "):
                outcome = "registered"
            elif status == "503":
                outcome = "failclosed"
        if outcome == "failed" and impi and first_nonce and any(
                m.startswith("SIP/2.0 401") and header(m, "CSeq").startswith("2 ") for m in c["in"]):
            if mil.res_has_zero_byte(impi, first_nonce):
                outcome = "sipp-zero-res"
        counts[outcome] += 1
        if outcome == "failed":
            failed_ids.append(cid)
    result = {"calls": len(calls), **counts, "challenges": challenges, "keys_at_ue": keys_at_ue,
              "failed_call_ids": failed_ids[:10]}
    if seen_fps is not None:
        result["keys_matched"] = matched
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", required=True)
    ap.add_argument("--lab", required=True)
    ap.add_argument("--pcscf-log")
    ap.add_argument("--json")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    r = analyse(a.files, users(a.users), a.lab, a.pcscf_log)
    print(" ".join(f"{k}={v}" for k, v in r.items() if k != "failed_call_ids"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f)
    return 1 if r["failed"] or r["keys_at_ue"] else 0


if __name__ == "__main__":
    sys.exit(main())
