#!/usr/bin/env bash
# All new requests to the stable target group (X402_STABLE_COLOR, blue by default) at once,
# read back from the load balancer; prints how long it took. Requests already at the other
# group finish there.
#   instant-rollback.sh [--dry-run]
# Settings: X402_LISTENER_ARN, X402_BLUE_TG_ARN, X402_GREEN_TG_ARN (terraform outputs);
# with X402_RULE_ARN (output weighted_rule_arn) it makes one AWS call instead of two.
set -euo pipefail
# shellcheck source=deploy/aws/scripts/lib.sh
. "$(dirname "$0")/lib.sh"

started_ns="$(date +%s%N)"
dry_run=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=yes ;;
    -h | --help)
      print_header 7
      exit 0
      ;;
    *) die "unknown argument $arg (usage: instant-rollback.sh [--dry-run])" ;;
  esac
done
read_settings
find_rule
if [ "$stable_color" = blue ]; then
  apply_weights 100 0
else
  apply_weights 0 100
fi
elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
if [ -z "$dry_run" ]; then
  echo "rolled back: all new requests to $stable_color in ${elapsed_ms} ms"
fi
