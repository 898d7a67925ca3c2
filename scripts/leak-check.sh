#!/usr/bin/env bash
# Key-leak check for CI: runs the end-to-end tests, the reliability tests and the lab demo with
# trace logging, collects everything they print into target/leak-logs/, then scans every file
# there for the hex (both cases) and base64 forms of every key in play: K/OP/OPc of the shared
# MILENAGE sets and CK/IK/RES recomputed for every RAND the logs mention. Any hit fails.
#
#   scripts/leak-check.sh            run everything, then scan
#   scripts/leak-check.sh --scan     only scan what is already in target/leak-logs/
#
# Failing tests in the collection runs are reported but do not fail this check (the test step
# owns them); a failed demo does, since its logs are then missing. Only the scan decides.
# Components log nonce prefixes only, so in these files CK/IK can be recomputed just for RANDs
# that do appear; every `ck`/`ik` param holding 32 hex digits counts as a leak whatever its
# value, and the per-registration CK/IK check with full nonces runs in-process in
# `leaks::no_key_in_logs_or_toward_the_ue`.
#
# The scanner is the Rust test `leaks::no_key_in_collected_logs` (tests/reliability/leaks.rs);
# `leaks::planted_leak_is_found` proves it finds a planted key. The reliability binary also
# scans, in-process, every message toward the UE in the lab chain (`no_key_in_or_toward_the_ue`).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
logs="$root/target/leak-logs"
status=0

if [ "${1:-}" != "--scan" ]; then
    rm -rf "$logs"
    mkdir -p "$logs"
    # The demo and the process-kill tests run the agent binaries: build every binary first.
    cargo build --locked -q -p ikt-lab -p s-cscf-agent -p p-cscf-agent --bins
    echo "leak-check: e2e tests (RUST_LOG=trace)"
    RUST_LOG=trace cargo test --locked --test e2e -- --nocapture >"$logs/e2e.log" 2>&1 || {
        echo "leak-check: warning: e2e tests failed (see $logs/e2e.log); scanning their logs anyway" >&2
    }
    echo "leak-check: reliability tests (trace logs to $logs/reliability-trace-PID.log)"
    IKT_LEAK_LOG_DIR="$logs" cargo test --locked --test reliability -- --nocapture >"$logs/reliability.log" 2>&1 || {
        echo "leak-check: warning: reliability tests failed (see $logs/reliability.log); scanning their logs anyway" >&2
    }
    echo "leak-check: ims-lab demo, every mode with both agents (RUST_LOG=trace)"
    RUST_LOG=trace target/debug/ims-lab demo --mode all --agent-log trace >"$logs/demo.log" 2>&1 || {
        echo "leak-check: ims-lab demo failed (see $logs/demo.log)" >&2
        status=1
    }
fi

echo "leak-check: scanning $(find "$logs" -type f | wc -l) files, $(du -sh "$logs" | cut -f1)"
# The scan's own trace log goes elsewhere so the scan does not read a file it is writing.
if IKT_LEAK_DIR="$logs" IKT_LEAK_LOG_DIR="$root/target/leak-scan-self" \
    cargo test --locked -q --test reliability -- --exact \
    leaks::no_key_in_collected_logs leaks::planted_leak_is_found; then
    echo "leak-check: no key found"
else
    echo "leak-check: KEYS FOUND or scanner failed (see the LEAK: lines above)" >&2
    status=1
fi
exit "$status"
