//! The AWS deployment (deploy/aws) against stand-ins, since AWS cannot run here:
//! - the CloudWatch metric filters (deploy/aws/modules/facilitator/metric-filters.json) are
//!   applied to the JSON lines the real binary logs through v1 and v2 verify and settle
//!   traffic on anvil (successes, payer refusals, facilitator-side failures, re-sent
//!   settlements, CAIP-2 parse errors) by LocalStack's CloudWatch Logs JSON pattern
//!   matcher, and each metric counts those events and nothing else, the same numbers the
//!   binary's own Prometheus counters give;
//! - the traffic scripts, build-and-push.sh and the rollback function run against the moto
//!   emulator (ELBv2, ECR, Secrets Manager) and, for the admin API, this real binary
//!   (tests/aws/*.py, Python unittest).
//!
//! What the stand-ins do not model is listed in docs/deployment.md.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::BASE_SEPOLIA_USDC;

const ADMIN_TOKEN: &str = "aws-stand-in-7c1e4b9a2f608d35";

/// The Python of the AWS test tools: `X402_AWS_PYTHON` (scripts/test.sh installs them).
fn aws_python() -> String {
    let python = std::env::var("X402_AWS_PYTHON").unwrap_or_default();
    assert!(
        !python.is_empty() && std::path::Path::new(&python).exists(),
        "X402_AWS_PYTHON is not set to the venv of tests/aws/requirements.txt \
         (run scripts/test.sh, which installs it)"
    );
    python
}

/// Every sample of metric `name` as (labels, value), from Prometheus text.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let inner = series.strip_prefix(name)?.trim_matches(['{', '}']);
            let labels = inner
                .split("\",")
                .filter_map(|pair| {
                    let (k, v) = pair.split_once("=\"")?;
                    Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                })
                .collect();
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

/// Sums `name`'s samples by the labels `keys` (as "Dim=value" joined with ','), keeping
/// those `keep` accepts; the shape count_metrics.py gives for a filter's dimensions.
fn by_labels(
    text: &str,
    name: &str,
    keys: &[(&str, &str)],
    keep: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for (labels, value) in samples(text, name) {
        if value == 0.0 || !keep(&labels) {
            continue;
        }
        let mut dims: Vec<(&str, &str)> = keys.to_vec();
        dims.sort();
        let key = dims
            .iter()
            .map(|(dim, label)| {
                format!("{dim}={}", labels.get(*label).cloned().unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join(",");
        *sums.entry(key).or_insert(0.0) += value;
    }
    sums
}

fn settled(result: &str) -> bool {
    matches!(result, "success" | "failed" | "pending")
}

/// Sends the traffic: what each metric must count is in the test's asserts.
async fn traffic(process: &Process, chain: &x402_facilitator::dev::LocalChain) {
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", process.url);
    // v2: two settled payments, one re-sent (answered from the ledger), two payer refusals.
    let paid = fresh_body(PAYER_KEY, 10_000);
    for body in [&paid, &fresh_body(PAYER_KEY, 10_000), &paid] {
        assert_eq!(settle(&http, &process.url, body).await["success"], true);
    }
    for _ in 0..2 {
        let mut payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
        payload["authorization"]["value"] = json!("10001");
        let answer = settle(&http, &process.url, &v2_body(payload, "10001")).await;
        assert_eq!(
            answer["errorReason"], "invalid_exact_evm_signature",
            "{answer}"
        );
    }
    let (_, verified) = post_json(&http, &url("/verify"), &fresh_body(PAYER_KEY, 10_000)).await;
    assert_eq!(verified["isValid"], true);
    // v1: a verify and a settlement.
    let v1 = v1_body(
        sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
        "10000",
    );
    assert_eq!(
        post_json(&http, &url("/verify"), &v1).await.1["isValid"],
        true
    );
    assert_eq!(settle(&http, &process.url, &v1).await["success"], true);
    // Two network ids that are not CAIP-2.
    for endpoint in ["/verify", "/settle"] {
        let mut broken = fresh_body(PAYER_KEY, 10_000);
        broken["paymentRequirements"]["network"] = json!("eip155:");
        assert_eq!(post_json(&http, &url(endpoint), &broken).await.0, 400);
    }
    // Facilitator-side failures: the signer has no gas. Two v2 settlements (one re-sent:
    // counted once) and one v1.
    chain
        .mint(BASE_SEPOLIA_USDC, DEV_ACCOUNTS_3, 1_000_000)
        .await
        .unwrap();
    let balance = drain_signer_gas(chain).await;
    let failing = fresh_body(PAYER_KEY, 10_000);
    let other = fresh_body(DEV_ACCOUNTS_3_KEY, 10_000);
    for body in [&failing, &other, &failing] {
        let answer = settle(&http, &process.url, body).await;
        assert_eq!(
            answer["errorReason"], "facilitator_insufficient_gas",
            "{answer}"
        );
    }
    let v1 = v1_body(
        sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce()),
        "10000",
    );
    let answer = settle(&http, &process.url, &v1).await;
    assert_eq!(
        answer["errorReason"], "facilitator_insufficient_gas",
        "{answer}"
    );
    restore_signer_gas(chain, balance).await;
    // The last line: every earlier one has been read once this one is.
    let marker = http
        .post(url("/verify"))
        .header("x-request-id", "last-of-the-traffic")
        .json(&fresh_body(PAYER_KEY, 10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(marker.status(), 200);
    process
        .wait_log(|l| l["request_id"] == "last-of-the-traffic")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_in_cloudwatch_metric_filters_count_what_the_binary_emits() {
    let python = aws_python();
    let chain = chain_with_token(&[]).await;
    let process = Process::spawn(&chain, &[("BREAKER_THRESHOLD", "0")], &[]).await;
    traffic(&process, &chain).await;

    let dir = TempDir::new("aws-metrics");
    let lines = dir.0.join("lines.jsonl");
    let text: String = process.logs().iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&lines, text).unwrap();
    let script = repo_dir().join("tests/aws/count_metrics.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&lines)
        .output()
        .await
        .expect("count_metrics.py runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = |filter: &str| count_of(&counts, filter);
    let by = |filter: &str| by_dimensions(&counts, filter);
    let (_, prom) = get_text(&reqwest::Client::new(), &format!("{}/metrics", process.url)).await;

    // What the traffic was, counted by hand.
    assert_eq!(count("caip2-parse-errors"), 2.0, "{counts}");
    assert_eq!(
        count("v2-settlement-failures"),
        2.0,
        "re-sent failure counted once: {counts}"
    );
    assert_eq!(
        count("v2-settlements"),
        6.0,
        "3 successes (one re-sent) and 3 failures: {counts}"
    );
    assert_eq!(count("v1-requests"), 3.0, "{counts}");
    let failures = by("settlement-failures-by-network");
    assert_eq!(
        failures.get("Network=eip155:84532,Version=1"),
        Some(&1.0),
        "{counts}"
    );
    assert_eq!(
        failures.get("Network=eip155:84532,Version=2"),
        Some(&2.0),
        "{counts}"
    );
    assert_eq!(failures.len(), 2, "{counts}");

    assert_same_as_the_counters(&counts, &prom);
}

/// A filter's total in count_metrics.py's answer.
fn count_of(counts: &Value, filter: &str) -> f64 {
    counts[filter]["count"].as_f64().unwrap()
}

/// A filter's counts by its dimensions ("Dim=value,...") in count_metrics.py's answer.
fn by_dimensions(counts: &Value, filter: &str) -> BTreeMap<String, f64> {
    serde_json::from_value(counts[filter]["by"].clone()).unwrap()
}

/// Every filter's count (with its dimensions) equals what the binary's Prometheus counters
/// say of the same traffic.
fn assert_same_as_the_counters(counts: &Value, prom: &str) {
    let count = |filter: &str| count_of(counts, filter);
    let by = |filter: &str| by_dimensions(counts, filter);
    assert_eq!(
        count("caip2-parse-errors"),
        metric(prom, "x402_caip2_parse_errors_total", &[])
    );
    assert_eq!(
        count("v2-settlement-failures"),
        metric(
            prom,
            "x402_settlement_failures_total",
            &[("x402_version", "2")]
        )
    );
    let v2_settled: f64 = samples(prom, "x402_settlements_total")
        .iter()
        .filter(|(l, _)| l["x402_version"] == "2" && settled(&l["result"]))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(count("v2-settlements"), v2_settled);
    assert_eq!(
        count("v1-requests"),
        metric(prom, "x402_requests_total", &[("x402_version", "1")])
    );
    let version_endpoint_outcome = [
        ("Endpoint", "endpoint"),
        ("Outcome", "outcome"),
        ("Version", "x402_version"),
    ];
    assert_eq!(
        by("requests-by-version"),
        by_labels(
            prom,
            "x402_requests_total",
            &version_endpoint_outcome,
            |_| true
        )
    );
    let network_outcome = [
        ("Network", "network"),
        ("Outcome", "result"),
        ("Version", "x402_version"),
    ];
    assert_eq!(
        by("settlements-by-network"),
        by_labels(prom, "x402_settlements_total", &network_outcome, |l| {
            settled(&l["result"])
        })
    );
    let network = [("Network", "network"), ("Version", "x402_version")];
    assert_eq!(
        by("settlement-failures-by-network"),
        by_labels(prom, "x402_settlement_failures_total", &network, |_| true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_in_aws_emulator_runs_the_scripts_and_the_rollback_function() {
    let python = aws_python();
    let chain = chain_with_token(&[]).await;
    let admin_addr = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().to_string()
    };
    let process = Process::spawn(
        &chain,
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("ADMIN_ADDR", &admin_addr)],
        &[],
    )
    .await;
    let out = tokio::process::Command::new(&python)
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "tests/aws",
            "-p",
            "test_*.py",
            "-v",
        ])
        .current_dir(repo_dir())
        .env("X402_TEST_FACILITATOR_URL", &process.url)
        .env("X402_TEST_ADMIN_URL", format!("http://{admin_addr}"))
        .env("X402_TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .expect("python runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "tests/aws failed:\n{report}");
    assert!(report.contains("OK"), "{report}");
    // The function's admin call reached this binary: its log says who changed the flag.
    process
        .wait_log(|l| {
            l["message"] == "feature flag changed"
                && l["flag"] == "v2_settle_enabled"
                && l["new"] == "false"
                && l["source"] == "admin"
        })
        .await;
}
