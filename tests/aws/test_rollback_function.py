"""The rollback function (deploy/aws/modules/facilitator/lambda/auto_rollback.py), run on
alarm events against the moto stand-in (ELBv2, Secrets Manager) and a real facilitator's
admin API. Run by crates/x402-facilitator/tests/aws_stand_in.rs, which starts the
facilitator and gives X402_TEST_FACILITATOR_URL, X402_TEST_ADMIN_URL, X402_TEST_ADMIN_TOKEN.

Not modelled: Lambda itself (the handler is called in this process with the event shapes
SNS and CloudWatch deliver), SNS delivery and retries, the alarm's evaluation."""

import contextlib
import io
import json
import os
import sys
import unittest
import urllib.request

from emulator import REPO, Emulator, WeightedListener

sys.path.insert(0, str(REPO / "deploy" / "aws" / "modules" / "facilitator" / "lambda"))
import auto_rollback  # noqa: E402


def required(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run this through cargo test --test aws_stand_in")
    return value


def setUpModule():
    global EMULATOR, FACILITATOR, ADMIN_URL, TOKEN
    FACILITATOR = required("X402_TEST_FACILITATOR_URL")
    ADMIN_URL = required("X402_TEST_ADMIN_URL")
    TOKEN = required("X402_TEST_ADMIN_TOKEN")
    EMULATOR = Emulator()
    # boto3 in this process (the handler's clients) talks to the emulator.
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        os.environ[key] = EMULATOR.env[key]


def tearDownModule():
    EMULATOR.stop()


def sns_event(alarm, state="ALARM"):
    message = {"AlarmName": alarm, "NewStateValue": state, "OldStateValue": "OK"}
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message)}}]}


def alarm_action_event(alarm, state="ALARM"):
    return {"source": "aws.cloudwatch", "alarmData": {"alarmName": alarm, "state": {"value": state}}}


def flags():
    with urllib.request.urlopen(FACILITATOR + "/flags", timeout=10) as answer:
        return json.loads(answer.read())


def set_v2_settle(on):
    request = urllib.request.Request(
        ADMIN_URL + "/admin/flags",
        data=json.dumps({"v2_settle_enabled": on}).encode(),
        method="PUT",
        headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


class RollbackFunction(unittest.TestCase):
    def setUp(self):
        self.lb = WeightedListener(EMULATOR, name=f"r{id(self) % 100000}")
        self.lb.elbv2.modify_rule(RuleArn=self.lb.rule_arn, Actions=[self.lb.forward(50, 50)])
        secrets = EMULATOR.client("secretsmanager")
        name = f"x402/test/admin-token-{id(self)}"
        self.token_arn = secrets.create_secret(Name=name, SecretString=TOKEN)["ARN"]
        self.json_arn = secrets.create_secret(
            Name=name + "-json", SecretString=json.dumps({"ADMIN_TOKEN": TOKEN})
        )["ARN"]
        self.wrong_arn = secrets.create_secret(Name=name + "-wrong", SecretString="w" * 8 + TOKEN[8:])["ARN"]
        set_v2_settle(True)
        self.env = {
            "ENABLED": "true",
            "LISTENER_RULE_ARN": self.lb.rule_arn,
            "STABLE_TARGET_GROUP_ARN": self.lb.tg["blue"],
            "ADMIN_URL": ADMIN_URL,
            "ADMIN_TOKEN_SECRET_ARN": self.token_arn,
        }

    def call(self, event, **env):
        """Runs the handler with the function's environment; (result, JSON log lines)."""
        saved = dict(os.environ)
        os.environ.update({**self.env, **env})
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                result = auto_rollback.handler(event, None)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return result, [json.loads(line) for line in out.getvalue().splitlines()]

    def test_alarm_shifts_all_traffic_to_stable_and_switches_v2_settle_off_once(self):
        result, lines = self.call(sns_event("facilitator-v2-settlement-failure-spike"))
        self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})
        self.assertEqual(result["traffic"], "shifted to stable")
        self.assertEqual(result["v2_settle"], "switched off")
        self.assertIs(flags()["v2_settle_enabled"], False)
        self.assertEqual(lines[0]["alarm"], "facilitator-v2-settlement-failure-spike")
        self.assertEqual(lines[0]["action"], "rollback")
        self.assertEqual(lines[1]["action"], "v2 settle off")
        self.assertNotIn(TOKEN, json.dumps(lines))
        self.assertNotIn(ADMIN_URL, json.dumps(lines))
        # The alarm fires again: nothing left to change.
        again, lines = self.call(sns_event("facilitator-v2-settlement-failure-spike"))
        self.assertEqual(again["traffic"], "already on stable")
        self.assertEqual(again["v2_settle"], "already off")
        self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})
        self.assertIs(flags()["v2_settle_enabled"], False)

    def test_disabled_function_changes_nothing(self):
        for enabled in ("false", "FALSE", "0", "off"):
            result, lines = self.call(sns_event("facilitator-v2-settlement-failure-spike"), ENABLED=enabled)
            self.assertEqual(result["action"], "none")
            self.assertEqual(lines[0]["why"], "ENABLED=false")
        self.assertEqual(self.lb.weights(), {"blue": 50, "green": 50})
        self.assertIs(flags()["v2_settle_enabled"], True)

    def test_ok_and_insufficient_data_states_change_nothing(self):
        for state in ("OK", "INSUFFICIENT_DATA"):
            result, _ = self.call(sns_event("facilitator-v2-settlement-failure-rate-high", state))
            self.assertEqual(result["action"], "none")
        self.assertEqual(self.lb.weights(), {"blue": 50, "green": 50})
        self.assertIs(flags()["v2_settle_enabled"], True)

    def test_direct_alarm_action_to_a_green_stable_with_a_json_key_secret(self):
        result, lines = self.call(
            alarm_action_event("facilitator-v2-settlement-failure-rate-high"),
            STABLE_TARGET_GROUP_ARN=self.lb.tg["green"],
            ADMIN_TOKEN_SECRET_ARN=self.json_arn + ":ADMIN_TOKEN::",
        )
        self.assertEqual(self.lb.weights(), {"blue": 0, "green": 100})
        self.assertEqual(result["v2_settle"], "switched off")
        self.assertEqual(lines[0]["alarm"], "facilitator-v2-settlement-failure-rate-high")
        self.assertIs(flags()["v2_settle_enabled"], False)

    def test_without_admin_url_only_traffic_moves(self):
        result, _ = self.call(sns_event("facilitator-v2-settlement-failure-spike"), ADMIN_URL="")
        self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})
        self.assertNotIn("v2_settle", result)
        self.assertIs(flags()["v2_settle_enabled"], True)

    def test_a_refused_admin_call_fails_the_run_after_traffic_moved(self):
        with self.assertRaisesRegex(RuntimeError, "HTTP 401"):
            self.call(sns_event("facilitator-v2-settlement-failure-spike"), ADMIN_TOKEN_SECRET_ARN=self.wrong_arn)
        self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})
        self.assertIs(flags()["v2_settle_enabled"], True)

    def test_a_stable_group_outside_the_rule_is_refused_and_nothing_moves(self):
        with self.assertRaisesRegex(RuntimeError, "not in the rule"):
            self.call(
                sns_event("facilitator-v2-settlement-failure-spike"),
                STABLE_TARGET_GROUP_ARN=self.lb.tg["blue"] + "0",
            )
        self.assertEqual(self.lb.weights(), {"blue": 50, "green": 50})
        self.assertIs(flags()["v2_settle_enabled"], True)


if __name__ == "__main__":
    unittest.main()
