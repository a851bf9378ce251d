"""What can be checked of deploy/aws without the AWS provider (which cannot be fetched
here, so `terraform validate` and `plan` cannot run): the metric table against the
alarms and the dashboard, and every pattern against LocalStack's filter matcher."""

import itertools
import re
import unittest

from aws_json_term_matcher.matcher import match, parse_filter

from count_metrics import filters, matcher
from emulator import REPO

MODULE = REPO / "deploy" / "aws" / "modules" / "facilitator"
# Fields whose values are bounded (a configured network or "other", a version label, an
# endpoint, an outcome): a dimension on a stranger-controlled field would let anyone
# create metrics (and costs) at will.
BOUNDED_FIELDS = {"$.x402_version", "$.endpoint", "$.outcome", "$.served_network"}


SETTLED = ("success", "failed", "pending")
# What each filter must count, as a plain predicate over one log line.
ORACLE = {
    "caip2-parse-errors": lambda l: l["message"] == "CAIP-2 parsing failed",
    "v2-settlement-failures": lambda l: l.get("facilitator_failure") == "first" and l.get("x402_version") == "2",
    "v2-settlements": lambda l: l.get("endpoint") == "settle" and l.get("x402_version") == "2"
    and l.get("outcome") in SETTLED,
    "v1-requests": lambda l: l.get("x402_version") == "1" and l.get("endpoint") in ("verify", "settle"),
    "requests-by-version": lambda l: l.get("endpoint") in ("verify", "settle")
    and l["message"] != "CAIP-2 parsing failed",
    "settlements-by-network": lambda l: l.get("endpoint") == "settle" and l.get("outcome") in SETTLED,
    "settlement-failures-by-network": lambda l: l.get("facilitator_failure") == "first",
}


def every_line():
    """Request lines with every combination of the fields the filters read, and a CAIP-2 line."""
    for endpoint, version, outcome, failure in itertools.product(
        ("verify", "settle"),
        ("1", "2", "unknown"),
        ("valid", "invalid", "rejected", "success", "pending", "failed"),
        ("first", "repeat", ""),
    ):
        yield {"message": "Settlement failed", "endpoint": endpoint, "x402_version": version,
               "outcome": outcome, "facilitator_failure": failure, "served_network": "eip155:8453"}
    yield {"message": "CAIP-2 parsing failed", "endpoint": "settle", "x402_version": "2"}
    yield {"message": "feature flag changed", "flag": "v2_settle_enabled"}


class ModuleStatic(unittest.TestCase):
    def test_each_pattern_counts_exactly_what_its_oracle_says(self):
        self.assertEqual(set(ORACLE), set(filters()))
        for name, spec in filters().items():
            matches = matcher(spec["pattern"])
            for line in every_line():
                self.assertEqual(matches(line), ORACLE[name](line), (name, line))

    def test_every_pattern_parses_and_matches_only_its_lines(self):
        for name, spec in filters().items():
            parse_filter(spec["pattern"])
        line = {"message": "Settlement failed", "endpoint": "settle", "x402_version": "2",
                "outcome": "failed", "facilitator_failure": "first", "served_network": "eip155:8453"}
        self.assertTrue(match(line, filters()["v2-settlement-failures"]["pattern"]))
        self.assertFalse(match({**line, "facilitator_failure": "repeat"}, filters()["v2-settlement-failures"]["pattern"]))
        self.assertFalse(match({**line, "facilitator_failure": ""}, filters()["v2-settlement-failures"]["pattern"]))
        self.assertFalse(match({**line, "x402_version": "1"}, filters()["v2-settlement-failures"]["pattern"]))

    def test_dimensions_read_bounded_fields_only(self):
        for name, spec in filters().items():
            for dim, path in spec["dimensions"].items():
                self.assertIn(path, BOUNDED_FIELDS, f"{name}: dimension {dim} reads {path}")
            self.assertLessEqual(len(spec["dimensions"]), 3, name)

    def test_alarms_and_dashboard_read_metrics_the_table_defines(self):
        metrics = {spec["metric"] for spec in filters().values()}
        monitoring = (MODULE / "monitoring.tf").read_text()
        dashboard = (MODULE / "dashboard.tf").read_text()
        ours = re.findall(r'namespace\s*=\s*var\.metric_namespace\s*\n\s*metric_name\s*=\s*"(\w+)"', monitoring)
        self.assertGreaterEqual(len(ours), 4)
        for metric in ours + re.findall(r'MetricName=\\"(\w+)\\"', dashboard):
            self.assertIn(metric, metrics)
        for metric in re.findall(r'local\.ns, "(\w+)"', dashboard):
            self.assertIn(metric, metrics)

    def test_the_seeds_alarm_set_is_there(self):
        monitoring = (MODULE / "monitoring.tf").read_text()
        names = re.findall(r'alarm_name\s*=\s*"\$\{var\.name\}-([\w$.{}-]+)"', monitoring)
        for wanted in ("caip2-parsing-errors-high", "v2-settlement-failure-spike",
                       "v2-settlement-failure-rate-high", "x402-v1-traffic-sudden-drop",
                       "5xx-rate-high", "p99-latency-high", "${each.key}-unhealthy-tasks"):
            self.assertIn(wanted, names)
        # The two failure alarms are the ones that roll back.
        for alarm in ("settlement_failure_spike", "settlement_failure_rate"):
            block = monitoring.split(f'"{alarm}" {{', 1)[1].split("\nresource ", 1)[0]
            self.assertIn("alarm_actions       = local.rollback", block)


if __name__ == "__main__":
    unittest.main()
