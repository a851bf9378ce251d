#!/usr/bin/env bash
# Runs the facilitator on its embedded default: a local anvil with the EIP-3009 test token
# and a funded demo payer. Nothing external is needed; nothing real is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/x402-facilitator/target}"
if [ ! -x tests/js/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ]; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
exec cargo run --release --locked -p x402-facilitator -- dev "$@"
