#!/usr/bin/env bash
# Runs the facilitator on its embedded default: a local anvil with the EIP-3009 test token
# and a funded demo payer. Nothing external is needed; nothing real is touched.
# The demo is built in the dev profile with the EVM chain only: the first build takes a few
# minutes on 2 cores (measured cold: 5 min 15 s to the first answer; a release build of
# everything takes about 20), later ones seconds.
# Settings the demo takes: PORT, HOST, ADMIN_TOKEN, LOG_FORMAT (docs/configuration.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/x402-facilitator/target}"
started=$SECONDS

step() {
  printf '==> %s\n' "$1" >&2
}

anvil=tests/js/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
if [ ! -x "$anvil" ]; then
  step "installing anvil and the official x402 clients into tests/js (npm ci, about 1 minute)"
  t=$SECONDS
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
  step "npm ci done in $((SECONDS - t)) s"
fi
binary="$CARGO_TARGET_DIR/debug/x402-facilitator"
if [ ! -x "$binary" ]; then
  step "building the facilitator for the demo (first time: about 5 minutes on 2 cores; cargo prints each crate)"
fi
t=$SECONDS
cargo build --locked -p x402-facilitator --no-default-features --features evm
step "build ready in $((SECONDS - t)) s; starting the demo ($((SECONDS - started)) s since the start)"
exec "$binary" dev "$@"
