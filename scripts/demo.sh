#!/usr/bin/env bash
# README's demo command: builds every binary (release) and runs `ims-lab demo --mode all`: the
# reference IMS network on loopback with both agents in the chain (as separate processes), once per
# key transport mode, then a comparison table. Extra arguments go to `ims-lab demo`, e.g.
# `scripts/demo.sh --mode grpc --ues 50` (see `ims-lab demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins
if [ $# -eq 0 ]; then set -- --mode all; fi
exec target/release/ims-lab demo "$@"
