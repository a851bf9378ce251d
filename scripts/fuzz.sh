#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer via cargo-fuzz) of the parsers that read what payers and
# resource servers send: request bodies, x402 HTTP headers, CAIP-2 ids, SVM payment transactions,
# ledger records, the bazaar discovery extension, EVM exact and upto payloads, NEAR delegate
# actions.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
# Builds on the stable toolchain without a sanitizer (the code is safe Rust: a panic or a
# failed assertion is the finding), with optimisations plus debug assertions and overflow
# checks. The corpus grows under the cache outside the clone; fuzz/seeds/ holds committed
# starting points. A finding stops the script with exit 1 and the input under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
cache="${X402_FUZZ_CACHE:-$HOME/.cache/x402-facilitator}"
export CARGO_TARGET_DIR="$cache/fuzz-target"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  if [ ! -x "$cache/cargo-fuzz/bin/cargo-fuzz" ]; then
    cargo install --quiet --locked --root "$cache/cargo-fuzz" cargo-fuzz@0.13.2
  fi
  export PATH="$cache/cargo-fuzz/bin:$PATH"
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build --sanitizer none --release --debug-assertions
seeds_for() {
  case "$1" in
    request_body) echo crates/x402-protocol/tests/fixtures ;;
    *) [ -d "fuzz/seeds/$1" ] && echo "fuzz/seeds/$1" ;;
  esac
}
passed=0
for target in "${targets[@]}"; do
  corpus="$cache/fuzz-corpus/$target"
  mkdir -p "$corpus"
  read -r -a seeds <<<"$(seeds_for "$target" || true)"
  # The log stays in the cache, not in /tmp, and goes once the target passed.
  log="$cache/fuzz-$target.log"
  if cargo fuzz run --sanitizer none --release --debug-assertions "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    echo "fuzz $target: ${runs:-?} inputs in ${seconds} s, no finding"
    passed=$((passed + 1))
    rm -f "$log"
  else
    tail -n 60 "$log"
    echo "fuzz $target: FINDING (input saved under fuzz/artifacts/$target/)"
    rm -f "$log"
    exit 1
  fi
done
echo "fuzz: $passed targets, no finding"
