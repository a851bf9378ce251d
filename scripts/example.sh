#!/usr/bin/env bash
# Runs the example paid API (examples/paid-api) against the facilitator's embedded `dev`
# chain, in one command: a local anvil with the test USDC, the facilitator on it, and the
# paid API in front. Nothing external, nothing real. Ctrl-C stops all of it.
# Settings: PORT (the paid API, default 4021), FACILITATOR_PORT (default 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/x402-facilitator/target}"
api_port="${PORT:-4021}"
facilitator_port="${FACILITATOR_PORT:-8080}"

step() {
  printf '==> %s\n' "$1" >&2
}

if [ ! -x tests/js/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ]; then
  step "installing anvil and the official x402 clients into tests/js (npm ci, about 1 minute)"
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
step "building the facilitator (EVM only) and the paid API (first time: a few minutes)"
cargo build --locked -p x402-facilitator --no-default-features --features evm
cargo build --locked -p paid-api

log="$(mktemp -t x402-example-facilitator.XXXXXX)"
facilitator_pid=""
stop() {
  if [ -n "$facilitator_pid" ]; then
    kill "$facilitator_pid" 2>/dev/null || true
    wait "$facilitator_pid" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap stop EXIT

step "starting the facilitator's dev chain on port $facilitator_port (its log: $log)"
PORT="$facilitator_port" "$CARGO_TARGET_DIR/debug/x402-facilitator" dev >"$log" 2>&1 &
facilitator_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$facilitator_port/health/ready" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$facilitator_pid" 2>/dev/null; then
    cat "$log" >&2
    echo "the facilitator stopped (above: its log)" >&2
    exit 1
  fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$facilitator_port/health/ready" >/dev/null || {
  echo "the facilitator did not become ready in 20 s; its log: $log" >&2
  exit 1
}

step "starting the paid API on port $api_port; pay it from another terminal with:"
echo "    node tests/js/pay-api.mjs v2 http://127.0.0.1:$api_port/weather   # x402 v2 (@x402/fetch)" >&2
echo "    node tests/js/pay-api.mjs v1 http://127.0.0.1:$api_port/weather   # x402 v1 (x402-fetch)" >&2
FACILITATOR_URL="http://127.0.0.1:$facilitator_port" PORT="$api_port" "$CARGO_TARGET_DIR/debug/paid-api"
