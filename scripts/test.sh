#!/usr/bin/env bash
# Runs the whole test suite: unit, property, integration, SIPp and end-to-end tests.
# It is README's test command and what CI (.ci/run) calls.
set -euo pipefail
cd "$(dirname "$0")/.."

# SIPp (Debian package sip-tester) drives real-UE tests; install it when missing and we may.
if ! command -v sipp >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q sip-tester
  elif command -v sudo >/dev/null 2>&1; then
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q sip-tester
  else
    echo "sipp is missing: install the Debian package sip-tester" >&2
    exit 1
  fi
fi

# Tests that run the agents as separate processes (ims-lab serve/demo --mode) find their binaries
# next to ims-lab in target/debug: build every binary first.
cargo build --workspace --bins --locked

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
# nextest does not run doctests.
cargo test --workspace --locked --doc
