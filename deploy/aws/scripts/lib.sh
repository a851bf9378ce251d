#!/usr/bin/env bash
# Shared by shift-traffic.sh and instant-rollback.sh: arguments, the weighted rule behind a
# listener, and its weights. The AWS CLI reads credentials, AWS_REGION and (for an
# emulator) AWS_ENDPOINT_URL from the environment as usual.

# Prints the script's header comment (lines 2 to $1) as its help.
print_header() {
  sed -n "2,${1}p" "$0" | sed 's/^# \{0,1\}//'
}

# Stops with exit 2 and a message naming what to fix.
die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

# Reads X402_LISTENER_ARN, X402_BLUE_TG_ARN, X402_GREEN_TG_ARN (terraform outputs
# listener_arn and target_group_arns) and X402_STABLE_COLOR (blue).
read_settings() {
  listener="${X402_LISTENER_ARN:-}"
  blue="${X402_BLUE_TG_ARN:-}"
  green="${X402_GREEN_TG_ARN:-}"
  stable_color="${X402_STABLE_COLOR:-blue}"
  [ -n "$listener" ] || die "X402_LISTENER_ARN is not set (terraform output listener_arn)"
  [ -n "$blue" ] || die "X402_BLUE_TG_ARN is not set (terraform output target_group_arns)"
  [ -n "$green" ] || die "X402_GREEN_TG_ARN is not set (terraform output target_group_arns)"
  [ "$blue" != "$green" ] || die "X402_BLUE_TG_ARN and X402_GREEN_TG_ARN are the same target group"
  case "$stable_color" in
    blue | green) ;;
    *) die "X402_STABLE_COLOR must be blue or green, not '$stable_color'" ;;
  esac
  command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not installed"
}

# Sets $rule to the one rule of $listener that forwards to both $blue and $green, or to
# X402_RULE_ARN when given (terraform output weighted_rule_arn: one call less).
find_rule() {
  if [ -n "${X402_RULE_ARN:-}" ]; then
    rule="$X402_RULE_ARN"
    return 0
  fi
  local query="Rules[?Actions[?Type=='forward' && ForwardConfig.TargetGroups[?TargetGroupArn=='$blue']"
  query+=" && ForwardConfig.TargetGroups[?TargetGroupArn=='$green']]].RuleArn"
  local found
  if ! found="$(aws elbv2 describe-rules --listener-arn "$listener" --query "$query" --output text 2>/dev/null)"; then
    die "listener not found (or not readable with these credentials): $listener"
  fi
  case "$found" in
    "" | None) die "no rule of the listener forwards to both target groups; check X402_BLUE_TG_ARN and X402_GREEN_TG_ARN" ;;
    *[[:space:]]*) die "more than one rule forwards to both target groups; weights would be ambiguous" ;;
  esac
  rule="$found"
}

# JMESPath over a rules answer: "BLUE<tab>GREEN", the two groups' weights.
weights_query() {
  local groups="Rules[0].Actions[?Type=='forward'].ForwardConfig.TargetGroups[]"
  printf "%s | [[?TargetGroupArn=='%s'].Weight | [0], [?TargetGroupArn=='%s'].Weight | [0]]" \
    "$groups" "$blue" "$green"
}

# Prints the rule's weights, "BLUE GREEN".
current_weights() {
  local got
  got="$(aws elbv2 describe-rules --rule-arns "$rule" --output text --query "$(weights_query)")" ||
    die "rule not found (or not readable with these credentials): $rule"
  echo "$got" | tr '\t' ' '
}

# The rule's forward action with blue at $1 and green at $2 percent (JSON).
actions_json() {
  printf '[{"Type":"forward","ForwardConfig":{"TargetGroups":[{"TargetGroupArn":"%s","Weight":%d},{"TargetGroupArn":"%s","Weight":%d}]}}]' \
    "$blue" "$1" "$green" "$2"
}

# Sets blue to $1 and green to $2 (or prints the call with $dry_run). The change is
# reported only when the load balancer's answer shows the new weights.
apply_weights() {
  local want_blue="$1" want_green="$2"
  if [ "${dry_run:-}" = yes ]; then
    echo "dry run: would call: aws elbv2 modify-rule --rule-arn $rule --actions '$(actions_json "$want_blue" "$want_green")'"
    return 0
  fi
  local got
  got="$(aws elbv2 modify-rule --rule-arn "$rule" --actions "$(actions_json "$want_blue" "$want_green")" \
    --output text --query "$(weights_query)")" || die "the load balancer refused the change (rule $rule)"
  got="$(echo "$got" | tr '\t' ' ')"
  if [ "$got" != "$want_blue $want_green" ]; then
    echo "$(basename "$0"): the rule shows blue/green weights '$got', not '$want_blue $want_green'" >&2
    exit 1
  fi
}
