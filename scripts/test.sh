#!/usr/bin/env bash
# Runs every test: unit, HTTP, and end to end on a real anvil with the official x402 clients.
# Installs the JavaScript test dependencies (anvil, solc, official SDKs) itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/x402-facilitator/target}"
if ! command -v node >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi
# The release tooling tests (deploy/) run haproxy, Prometheus with promtool, and
# systemd-analyze: Debian packages, installed when missing.
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
# The official Python SDK in a virtualenv outside the clone; the conformance test runs it.
venv="${X402_PYTHON_VENV:-$HOME/.cache/x402-facilitator/python}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt -c tests/python/constraints.txt
export X402_PYTHON="$venv/bin/python"
# The local Solana node for the SVM tests (surfpool-core, tools/surfnode): built once per
# version of its sources into the cache outside the clone (about 10 minutes on 2 cores).
surf_cache="${X402_SURFNODE_CACHE:-$HOME/.cache/x402-facilitator/surfnode}"
surf_key="$(cat tools/surfnode/Cargo.toml tools/surfnode/Cargo.lock tools/surfnode/src/main.rs | sha256sum | cut -c1-16)"
surf_bin="$surf_cache/x402-surfnode-$surf_key"
if [ ! -x "$surf_bin" ]; then
  echo "building the local Solana node (tools/surfnode) once into $surf_cache"
  CARGO_TARGET_DIR="$surf_cache/target" cargo build --release --locked --manifest-path tools/surfnode/Cargo.toml
  mkdir -p "$surf_cache"
  cp "$surf_cache/target/release/x402-surfnode" "$surf_bin"
fi
export X402_SURFNODE="$surf_bin"
# Coverage-guided fuzzing of the parsers, a bounded time per target (scripts/fuzz.sh runs
# longer sessions); a finding fails the run.
./scripts/fuzz.sh "${X402_FUZZ_SECONDS:-20}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
