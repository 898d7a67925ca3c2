#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and writes a machine-readable summary.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Seeds come from fuzz/corpus/<target>/ (committed, read-only here); what the fuzzer finds is
# kept in target/fuzz-work/<target>/ and crashes in target/fuzz-artifacts/<target>/.
# Summary: target/fuzz-summary.txt, one line per target: `target<TAB>executions<TAB>status<TAB>seconds`
# (status ok | crash | error). Exit status is non-zero if any target crashed or failed to run.
# Only a stable toolchain exists here: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
# FUZZ_SEED=N fixes libFuzzer's random seed (0, the default, draws one): CI uses a fixed seed so
# a run explores the same inputs as the last local run of the same code instead of a lottery.
set -euo pipefail

secs="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz (once, a few minutes)"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cd fuzz
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "fuzz: building ${#targets[@]} targets"
cargo fuzz build 2>&1 | tail -n 3

summary="$root/target/fuzz-summary.txt"
mkdir -p "$root/target/fuzz-logs"
: > "$summary.tmp"
failed=0
for t in "${targets[@]}"; do
    work="$root/target/fuzz-work/$t"
    artifacts="$root/target/fuzz-artifacts/$t/"
    log="$root/target/fuzz-logs/$t.log"
    mkdir -p "$work" "$artifacts" "corpus/$t"
    start=$(date +%s)
    status=ok
    if ! cargo fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -seed="${FUZZ_SEED:-0}" \
        -artifact_prefix="$artifacts" >"$log" 2>&1; then
        if grep -qE "^(==[0-9]+==ERROR|SUMMARY: libFuzzer|thread .* panicked)" "$log"; then
            status=crash
        else
            status=error
        fi
        failed=1
    fi
    took=$(( $(date +%s) - start ))
    execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | tail -n 1 | grep -oE "[0-9]+$" || true)
    if [ -z "$execs" ]; then
        execs=$(grep -oE "^#[0-9]+" "$log" | tail -n 1 | tr -d '#' || true)
    fi
    execs="${execs:-0}"
    printf '%s\t%s\t%s\t%s\n' "$t" "$execs" "$status" "$took" | tee -a "$summary.tmp"
    if [ "$status" != ok ]; then
        echo "fuzz: $t: $status, see $log and $artifacts" >&2
        tail -n 30 "$log" >&2
    fi
done
mv "$summary.tmp" "$summary"
echo "fuzz: summary in $summary"
exit "$failed"
