#!/usr/bin/env bash
# Moves a share of new requests to the green target group (the rest to blue) on the
# weighted listener rule, and shows the weights the load balancer then has.
#   shift-traffic.sh [--dry-run] [--force] PERCENT      green gets PERCENT (0..100)
#   shift-traffic.sh [--dry-run] [--force] BLUE:GREEN   explicit weights adding up to 100
# Settings: X402_LISTENER_ARN, X402_BLUE_TG_ARN, X402_GREEN_TG_ARN, optionally X402_RULE_ARN
# (terraform outputs). A group about to receive traffic needs a healthy target, or --force.
set -euo pipefail
# shellcheck source=deploy/aws/scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dry_run=""
force=""
spec=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=yes ;;
    --force) force=yes ;;
    -h | --help)
      print_header 7
      exit 0
      ;;
    -*) die "unknown option $arg" ;;
    *)
      [ -z "$spec" ] || die "one PERCENT (or BLUE:GREEN) only"
      spec="$arg"
      ;;
  esac
done
[ -n "$spec" ] || die "usage: shift-traffic.sh [--dry-run] [--force] PERCENT (0..100, green's share) | BLUE:GREEN"
if [[ "$spec" =~ ^[0-9]{1,3}$ ]]; then
  want_green=$((10#$spec))
  [ "$want_green" -le 100 ] || die "PERCENT must be 0..100, not $spec"
  want_blue=$((100 - want_green))
elif [[ "$spec" =~ ^([0-9]{1,3}):([0-9]{1,3})$ ]]; then
  want_blue=$((10#${BASH_REMATCH[1]}))
  want_green=$((10#${BASH_REMATCH[2]}))
  [ $((want_blue + want_green)) -eq 100 ] ||
    die "weights $spec do not add up to 100 (blue $want_blue + green $want_green = $((want_blue + want_green)))"
else
  die "PERCENT must be a whole number 0..100 (or BLUE:GREEN), not '$spec'"
fi

read_settings
find_rule
read -r before_blue before_green <<<"$(current_weights)"

# A group about to receive traffic with nothing healthy behind it would fail those requests.
# $1 color, $2 target group, $3 the share it is to receive.
require_healthy() {
  [ "$3" -gt 0 ] && [ -z "$force" ] || return 0
  local healthy
  healthy="$(aws elbv2 describe-target-health --target-group-arn "$2" --output text \
    --query "length(TargetHealthDescriptions[?TargetHealth.State=='healthy'])")"
  [ "$healthy" != 0 ] ||
    die "the $1 target group has no healthy target; refusing to send it $3 % (--force to do it anyway)"
}
require_healthy blue "$blue" "$want_blue"
require_healthy green "$green" "$want_green"

apply_weights "$want_blue" "$want_green"
if [ -z "$dry_run" ]; then
  echo "weights: blue $before_blue -> $want_blue, green $before_green -> $want_green"
  echo "terraform: set blue_weight = $want_blue and green_weight = $want_green before the next apply"
fi
