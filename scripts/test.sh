#!/usr/bin/env bash
# Runs every test: unit, HTTP, and end to end on a real anvil with the official x402 clients.
# Installs the JavaScript test dependencies (anvil, solc, official SDKs) itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/x402-facilitator/target}"
if ! command -v node >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
cargo test --workspace --locked
