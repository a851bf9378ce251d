#!/usr/bin/env bash
# Runs every test: unit, HTTP, and end to end on a real anvil and a local Solana node with the
# official x402 clients, on the local NEAR node stand-in (tools/nearnode, built by cargo test
# as a workspace member) with near-api-js and on the local Stellar node stand-in
# (tools/stellarnode, the real Soroban host, also a workspace member) with the official
# @x402/stellar client, the AWS deployment's checks and emulator tests, after
# fuzzing every parser for a bounded time. Installs what it needs
# into ~/.cache/x402-facilitator (outside the clone); each phase says what it does and how long
# it took. A preflight stops in seconds, naming the fix, when something cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="$HOME/.cache/x402-facilitator"
mkdir -p "$cache"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
started=$SECONDS
phase_name=""
phase_start=$SECONDS
timings=()

# Closes the running phase (its duration is printed and kept for the summary) and opens the next.
phase() {
  if [ -n "$phase_name" ]; then
    local took=$((SECONDS - phase_start))
    printf '    done in %d s\n' "$took" >&2
    timings+=("$(printf '%5d s  %s' "$took" "$phase_name")")
  fi
  phase_name="${1:-}"
  phase_start=$SECONDS
  if [ -n "$phase_name" ]; then
    printf '==> %s\n' "$phase_name" >&2
  fi
}

policy_created=""
cleanup() {
  if [ -n "$policy_created" ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
}
trap cleanup EXIT

phase "preflight: Node.js, Python venv, haproxy, Prometheus, systemd-analyze, PostgreSQL"
packages=()
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
command -v haproxy >/dev/null 2>&1 || packages+=(haproxy)
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${packages[*]}" >&2
    echo "install them first: sudo apt-get install --no-install-recommends ${packages[*]}" >&2
    exit 2
  fi
  echo "    installing ${packages[*]} (the services they ship are not started)" >&2
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Debian's convention for "do not start services from package scripts".
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_created=yes
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  cleanup
  policy_created=""
fi
pg_url="${X402_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
pg_address="${pg_url#*://}"
pg_address="${pg_address#*@}"
pg_address="${pg_address%%/*}"
pg_host="${pg_address%%:*}"
pg_port="${pg_address##*:}"
[ "$pg_port" = "$pg_address" ] && pg_port=5432
if ! timeout 3 bash -c "exec 3<>/dev/tcp/$pg_host/$pg_port" 2>/dev/null; then
  echo "PostgreSQL does not answer at $pg_host:$pg_port; the multi-instance ledger tests need one that" >&2
  echo "lets them create databases: start it, or set X402_TEST_POSTGRES_URL (postgres://user@host:port/db)" >&2
  exit 2
fi

# `npm ci` in tests/$1 when its package-lock.json changed since the last install.
npm_ci_in() {
  local dir="tests/$1" lock_sum stamp
  lock_sum="$(sha256sum "$dir/package-lock.json" | cut -c1-64)"
  stamp="$dir/node_modules/.x402-package-lock.sha256"
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock_sum" ]; then
    echo "    npm ci in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >"$stamp"
  else
    echo "    $dir up to date" >&2
  fi
}

phase "JavaScript test tools (anvil, solc, official x402 clients; @x402/stellar apart): npm ci when a package-lock.json changed"
npm_ci_in js
npm_ci_in js-stellar

# A virtualenv at $1 holding tests/$2's requirements.txt under its constraints.txt;
# pip runs only when those two files changed since the last install.
venv_with() {
  local venv="$1" dir="tests/$2"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  local sum
  sum="$(cat "$dir/requirements.txt" "$dir/constraints.txt" | sha256sum | cut -c1-64)"
  if [ "$(cat "$venv/.x402-requirements.sha256" 2>/dev/null || true)" != "$sum" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$dir/requirements.txt" -c "$dir/constraints.txt"
    echo "$sum" >"$venv/.x402-requirements.sha256"
  else
    echo "    up to date" >&2
  fi
}

phase "official Python SDK in $cache/python (pip when the requirements changed)"
venv="${X402_PYTHON_VENV:-$cache/python}"
venv_with "$venv" python
export X402_PYTHON="$venv/bin/python"

phase "schemathesis in $cache/schemathesis (pip when the requirements changed)"
st_venv="${X402_SCHEMATHESIS_VENV:-$cache/schemathesis}"
venv_with "$st_venv" schemathesis
export X402_SCHEMATHESIS="$st_venv/bin/st"

phase "second NEAR encoder (uvd-x402-sdk, PyNaCl) in $cache/near-python (pip when the requirements changed)"
near_venv="${X402_NEAR_PYTHON_VENV:-$cache/near-python}"
venv_with "$near_venv" near-python
export X402_NEAR_PYTHON="$near_venv/bin/python"

phase "AWS stand-ins (moto, AWS CLI, LocalStack's filter matcher) in $cache/aws (pip when the requirements changed)"
aws_venv="${X402_AWS_VENV:-$cache/aws}"
venv_with "$aws_venv" aws
export X402_AWS_PYTHON="$aws_venv/bin/python"

phase "Terraform under deploy/aws: terraform fmt -check, checkov (in $cache/checkov)"
if ! command -v terraform >/dev/null 2>&1; then
  echo "terraform is not installed: no reachable registry ships it; install Terraform >= 1.5 for 'terraform fmt'" >&2
  exit 2
fi
terraform fmt -check -recursive -diff deploy/aws
checkov_venv="${X402_CHECKOV_VENV:-$cache/checkov}"
venv_with "$checkov_venv" checkov
# --skip-download: no policy updates from the network; the checks that ship with checkov run.
"$checkov_venv/bin/checkov" -d deploy/aws --framework terraform --quiet --compact --skip-download

# The local Solana node for the SVM tests (surfpool-core, tools/surfnode): built once per
# version of its sources into the cache outside the clone.
surf_cache="${X402_SURFNODE_CACHE:-$cache/surfnode}"
surf_key="$(cat tools/surfnode/Cargo.toml tools/surfnode/Cargo.lock tools/surfnode/src/main.rs | sha256sum | cut -c1-16)"
surf_bin="$surf_cache/x402-surfnode-$surf_key"
phase "local Solana node (tools/surfnode)"
if [ ! -x "$surf_bin" ]; then
  echo "    building it once into $surf_cache (about 6 minutes on 2 cores)" >&2
  # openssl-sys builds OpenSSL from source (over 2 minutes of one core here) unless told to
  # use the system's, when there is one ("0" keeps the vendored build).
  no_vendor=0
  if pkg-config --exists openssl 2>/dev/null; then
    no_vendor=1
  fi
  OPENSSL_NO_VENDOR="$no_vendor" CARGO_TARGET_DIR="$surf_cache/target" \
    cargo build --release --locked --manifest-path tools/surfnode/Cargo.toml
  cp "$surf_cache/target/release/x402-surfnode" "$surf_bin"
else
  echo "    built already: $surf_bin" >&2
fi
export X402_SURFNODE="$surf_bin"

fuzz_seconds="${X402_FUZZ_SECONDS:-20}"
phase "fuzzing each parser for $fuzz_seconds s (first time: cargo-fuzz and an instrumented build, about 5 minutes)"
./scripts/fuzz.sh "$fuzz_seconds"

phase "cargo test --workspace (first time: about 6 minutes of building)"
log="$cache/last-test.log"
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
phase ""
echo "phases:" >&2
printf '%s\n' "${timings[@]}" >&2
printf '%5d s  total\n' $((SECONDS - started)) >&2
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
