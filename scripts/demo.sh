#!/usr/bin/env bash
# README's demo command: builds every binary (release) and runs `ims-lab demo`, which starts the
# reference IMS network on loopback, registers UEs through it and prints what happened.
# Extra arguments go to `ims-lab demo` (see `ims-lab demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins
exec target/release/ims-lab demo "$@"
