"""Counts what each CloudWatch metric filter of deploy/aws (metric-filters.json) would
extract from a file of the facilitator's JSON log lines, with LocalStack's implementation
of CloudWatch Logs' JSON filter patterns (aws-json-term-matcher), not ours.

  count_metrics.py LINES.jsonl   prints {"<filter>": {"count": N, "by": {"<dims>": N}}}

Lines that are not JSON objects are skipped, as CloudWatch skips them for JSON patterns.
Dimension values are read from top-level fields ("$.name"), as every filter names them."""

import json
import sys
from pathlib import Path

from aws_json_term_matcher.matcher import FilterEvaluator, parse_filter

TABLE = Path(__file__).resolve().parents[2] / "deploy/aws/modules/facilitator/metric-filters.json"


def filters():
    return json.loads(TABLE.read_text())["filters"]


def matcher(pattern):
    """The library's match(), with the pattern parsed once instead of on every line."""
    tree = parse_filter(pattern)
    return lambda line: FilterEvaluator(line).transform(tree)


def count(lines):
    result = {}
    for name, spec in filters().items():
        total, by = 0, {}
        matches = matcher(spec["pattern"])
        for line in lines:
            if not matches(line):
                continue
            total += 1
            if spec["dimensions"]:
                key = ",".join(f"{d}={line.get(path[2:], '')}" for d, path in sorted(spec["dimensions"].items()))
                by[key] = by.get(key, 0) + 1
        result[name] = {"count": total, "by": by}
    return result


def main():
    lines = []
    for text in Path(sys.argv[1]).read_text().splitlines():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    print(json.dumps(count(lines), sort_keys=True))


if __name__ == "__main__":
    main()
