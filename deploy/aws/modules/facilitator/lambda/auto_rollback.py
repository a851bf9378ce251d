"""Alarm-triggered rollback of an x402 facilitator release on AWS.

On a failure alarm (delivered by SNS, or by CloudWatch's Lambda alarm action) the
weighted listener rule gives the stable target group all new requests and, when
ADMIN_URL is set, v2 settle is switched off through the facilitator's admin API (with a
shared PostgreSQL ledger the flag reaches every instance). Both steps are idempotent: a
second alarm finds the rule on the stable group and the flag off, and changes nothing.

Environment:
  ENABLED                  "false" turns the function into a no-op (planned work)
  LISTENER_RULE_ARN        the weighted forward rule
  STABLE_TARGET_GROUP_ARN  the group that gets everything
  ADMIN_URL                base URL of one instance's admin API, or empty
  ADMIN_TOKEN_SECRET_ARN   Secrets Manager ARN of ADMIN_TOKEN (ARN:json-key:: names a key)

Nothing secret is logged: not the token, not the admin URL.
"""

import json
import os
import urllib.error
import urllib.request

import boto3


def log(**fields):
    """One JSON line per event, which CloudWatch Logs keeps with the invocation."""
    print(json.dumps({"logger": "x402-auto-rollback", **fields}, sort_keys=True))


def alarm_of(event):
    """(alarm name, state) from an SNS-delivered alarm or a direct CloudWatch alarm action."""
    records = event.get("Records") or []
    if records and "Sns" in records[0]:
        message = json.loads(records[0]["Sns"].get("Message") or "{}")
        return message.get("AlarmName", ""), message.get("NewStateValue", "")
    data = event.get("alarmData") or {}
    return data.get("alarmName", ""), (data.get("state") or {}).get("value", "")


def enabled():
    return os.environ.get("ENABLED", "true").strip().lower() not in ("false", "0", "no", "off")


def shift_to_stable(elbv2, rule_arn, stable_arn):
    """All weight to the stable group; returns the weights before and whether it changed."""
    rules = elbv2.describe_rules(RuleArns=[rule_arn])["Rules"]
    forward = next(
        (a for a in rules[0]["Actions"] if a["Type"] == "forward" and "ForwardConfig" in a),
        None,
    )
    if forward is None:
        raise RuntimeError("the rule has no weighted forward action")
    groups = forward["ForwardConfig"]["TargetGroups"]
    if stable_arn not in [g["TargetGroupArn"] for g in groups]:
        raise RuntimeError("the stable target group is not in the rule")
    before = {g["TargetGroupArn"]: g.get("Weight", 0) for g in groups}
    wanted = {arn: (100 if arn == stable_arn else 0) for arn in before}
    if before == wanted:
        return before, False
    action = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in wanted.items()],
        },
    }
    if "TargetGroupStickinessConfig" in forward["ForwardConfig"]:
        action["ForwardConfig"]["TargetGroupStickinessConfig"] = forward["ForwardConfig"][
            "TargetGroupStickinessConfig"
        ]
    elbv2.modify_rule(RuleArn=rule_arn, Actions=[action])
    return before, True


def admin_token(secrets, secret_ref):
    """The token, from a whole secret or from one JSON key of it (ARN:json-key::)."""
    parts = secret_ref.split(":")
    arn, key = ":".join(parts[:7]), (parts[7] if len(parts) > 7 else "")
    value = secrets.get_secret_value(SecretId=arn)["SecretString"]
    return json.loads(value)[key] if key else value.strip()


def switch_off_v2_settle(base_url, token):
    """PUT /admin/flags {"v2_settle_enabled": false}; returns whether the flag changed."""
    request = urllib.request.Request(
        base_url.rstrip("/") + "/admin/flags",
        data=json.dumps({"v2_settle_enabled": False}).encode(),
        method="PUT",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"admin API answered HTTP {e.code}") from None
    if body.get("flags", {}).get("v2_settle_enabled") is not False:
        raise RuntimeError("admin API did not switch v2 settle off")
    return bool(body.get("changed"))


def handler(event, context):
    """Lambda's entry point (SNS or CloudWatch alarm action event)."""
    alarm, state = alarm_of(event)
    if not enabled():
        log(alarm=alarm, state=state, action="none", why="ENABLED=false")
        return {"action": "none", "why": "disabled"}
    if state != "ALARM":
        log(alarm=alarm, state=state, action="none", why="not an ALARM state")
        return {"action": "none", "why": "not an alarm"}
    rule_arn = os.environ["LISTENER_RULE_ARN"]
    stable_arn = os.environ["STABLE_TARGET_GROUP_ARN"]
    elbv2 = boto3.client("elbv2")
    before, shifted = shift_to_stable(elbv2, rule_arn, stable_arn)
    result = {
        "action": "rollback",
        "traffic": "shifted to stable" if shifted else "already on stable",
        "weights_before": before,
    }
    log(alarm=alarm, state=state, **result)
    admin_url = os.environ.get("ADMIN_URL", "")
    if admin_url:
        secrets = boto3.client("secretsmanager")
        token = admin_token(secrets, os.environ["ADMIN_TOKEN_SECRET_ARN"])
        changed = switch_off_v2_settle(admin_url, token)
        result["v2_settle"] = "switched off" if changed else "already off"
        log(alarm=alarm, state=state, action="v2 settle off", v2_settle=result["v2_settle"])
    return result
