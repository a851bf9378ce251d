"""shift-traffic.sh and instant-rollback.sh against the ELBv2 API of the moto stand-in.

What moto gives: the rule, its weights and the target groups' registered targets as the API
shows them. What it does not: no request is routed, so "90 % of new requests" is the rule's
state, not measured traffic (the haproxy tests in tests/deploy.rs measure that)."""

import unittest

from emulator import Emulator, WeightedListener


def setUpModule():
    global EMULATOR
    EMULATOR = Emulator()


def tearDownModule():
    EMULATOR.stop()


class TrafficScripts(unittest.TestCase):
    def setUp(self):
        self.lb = WeightedListener(EMULATOR, name=f"t{id(self) % 100000}")
        for color, ip in (("blue", "10.20.1.10"), ("green", "10.20.1.11")):
            self.lb.elbv2.register_targets(
                TargetGroupArn=self.lb.tg[color], Targets=[{"Id": ip, "Port": 8080}]
            )

    def run_script(self, script, *args, **env):
        return EMULATOR.run(script, *args, extra_env=self.lb.script_env(**env))

    def test_shift_moves_0_10_50_100_and_rollback_returns_all_to_blue_in_under_5_s(self):
        for percent in (0, 10, 50, 100):
            code, out, err, _ = self.run_script("shift-traffic.sh", str(percent))
            self.assertEqual(code, 0, err)
            self.assertEqual(self.lb.weights(), {"blue": 100 - percent, "green": percent})
            self.assertIn(f"green_weight = {percent}", out)
        for rule_arn in ("", self.lb.rule_arn):
            self.run_script("shift-traffic.sh", "100")
            code, out, err, seconds = self.run_script("instant-rollback.sh", X402_RULE_ARN=rule_arn)
            self.assertEqual(code, 0, err)
            self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})
            self.assertLess(seconds, 5.0, f"rollback took {seconds:.2f} s")
            self.assertIn("all new requests to blue", out)
            print(f"instant-rollback.sh ({'rule given' if rule_arn else 'rule looked up'}): {seconds:.2f} s")

    def test_rollback_to_green_when_green_is_stable(self):
        self.run_script("shift-traffic.sh", "30")
        code, _, err, _ = self.run_script("instant-rollback.sh", X402_STABLE_COLOR="green")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.lb.weights(), {"blue": 0, "green": 100})

    def test_explicit_weights_must_add_up_to_100(self):
        code, _, err, _ = self.run_script("shift-traffic.sh", "60:30")
        self.assertEqual(code, 2)
        self.assertIn("do not add up to 100", err)
        self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})
        code, _, err, _ = self.run_script("shift-traffic.sh", "75:25")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.lb.weights(), {"blue": 75, "green": 25})

    def test_bad_arguments_are_refused_and_change_nothing(self):
        for args, says in (
            ((), "usage"),
            (("101",), "0..100"),
            (("-5",), "unknown option"),
            (("ten",), "whole number"),
            (("10", "20"), "one PERCENT"),
            (("1e2",), "whole number"),
        ):
            code, _, err, _ = self.run_script("shift-traffic.sh", *args)
            self.assertEqual(code, 2, (args, err))
            self.assertIn(says, err, args)
        code, _, err, _ = self.run_script("instant-rollback.sh", "now")
        self.assertEqual(code, 2)
        self.assertIn("unknown argument", err)
        self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})

    def test_unknown_listener_or_target_groups_are_refused(self):
        missing = self.lb.listener_arn[:-4] + "0000"
        for script in ("shift-traffic.sh", "instant-rollback.sh"):
            args = ("10",) if script == "shift-traffic.sh" else ()
            code, _, err, _ = self.run_script(script, *args, X402_LISTENER_ARN=missing)
            self.assertEqual(code, 2, err)
            self.assertIn("listener not found", err)
        vpc = self.lb.elbv2.describe_target_groups(TargetGroupArns=[self.lb.tg["blue"]])["TargetGroups"][0]["VpcId"]
        other = self.lb.elbv2.create_target_group(
            Name=f"o{id(self) % 100000}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        code, _, err, _ = self.run_script("shift-traffic.sh", "10", X402_GREEN_TG_ARN=other)
        self.assertEqual(code, 2)
        self.assertIn("no rule of the listener forwards to both", err)
        code, _, err, _ = self.run_script("shift-traffic.sh", "10", X402_GREEN_TG_ARN="")
        self.assertEqual(code, 2)
        self.assertIn("X402_GREEN_TG_ARN is not set", err)
        code, _, err, _ = self.run_script("instant-rollback.sh", X402_STABLE_COLOR="red")
        self.assertEqual(code, 2)
        self.assertIn("blue or green", err)
        self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})

    def test_a_group_without_healthy_targets_gets_no_traffic_unless_forced(self):
        self.lb.elbv2.deregister_targets(
            TargetGroupArn=self.lb.tg["green"], Targets=[{"Id": "10.20.1.11", "Port": 8080}]
        )
        code, _, err, _ = self.run_script("shift-traffic.sh", "10")
        self.assertEqual(code, 2)
        self.assertIn("green target group has no healthy target", err)
        self.assertEqual(self.lb.weights(), {"blue": 100, "green": 0})
        code, _, err, _ = self.run_script("shift-traffic.sh", "--force", "10")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.lb.weights(), {"blue": 90, "green": 10})

    def test_dry_run_reads_and_prints_but_changes_nothing(self):
        code, out, err, _ = self.run_script("shift-traffic.sh", "--dry-run", "40")
        self.assertEqual(code, 0, err)
        self.assertIn("would call: aws elbv2 modify-rule", out)
        self.assertIn('"Weight":40', out)
        self.run_script("shift-traffic.sh", "40")
        code, out, err, _ = self.run_script("instant-rollback.sh", "--dry-run")
        self.assertEqual(code, 0, err)
        self.assertIn('"Weight":100', out)
        self.assertEqual(self.lb.weights(), {"blue": 60, "green": 40})


if __name__ == "__main__":
    unittest.main()
