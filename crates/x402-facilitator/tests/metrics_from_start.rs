//! A fresh instance exports every metric family of the catalogue, at zero where nothing
//! happened yet: an alert on a failure counter reads 0, not "no data", before the first
//! failure. One test in its own binary, so that no other test's traffic is in the process.

mod support;

use x402_facilitator::config::VersionSupport;
use x402_facilitator::telemetry::{Kind, CATALOGUE};

/// The value of the first exported series of `name` whose labels contain every one of
/// `labels` (`key="value"`).
fn series(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn every_metric_family_is_exported_at_zero_before_any_traffic() {
    let h = support::start(VersionSupport { v1: true, v2: true }).await;
    let text = h
        .http
        .get(format!("{}/metrics", h.url))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
    for (name, kind, _) in CATALOGUE {
        let exported = match kind {
            Kind::Histogram => format!("{name}_count"),
            _ => (*name).to_owned(),
        };
        assert!(
            series(&text, &exported, &[]).is_some(),
            "{exported} is not exported on a fresh instance:\n{text}"
        );
    }
    let network = "network=\"eip155:84532\"";
    for (name, labels) in [
        (
            "x402_settlement_failures_total",
            vec![network, "x402_version=\"2\"", "reason=\"rpc_unavailable\""],
        ),
        (
            "x402_settlement_failures_total",
            vec![
                network,
                "x402_version=\"1\"",
                "reason=\"facilitator_insufficient_gas\"",
            ],
        ),
        (
            "x402_settlements_total",
            vec![network, "x402_version=\"2\"", "result=\"failed\""],
        ),
        (
            "x402_requests_total",
            vec![network, "endpoint=\"settle\"", "outcome=\"success\""],
        ),
        (
            "x402_request_duration_seconds_count",
            vec![network, "endpoint=\"verify\"", "x402_version=\"1\""],
        ),
        ("x402_nonce_mismatches_total", vec![network]),
        ("x402_caip2_parse_errors_total", vec!["endpoint=\"settle\""]),
        ("x402_settlements_in_flight", vec![]),
        ("x402_breaker_trips_total", vec![]),
    ] {
        assert_eq!(
            series(&text, name, &labels),
            Some(0.0),
            "{name} {labels:?} at zero:\n{text}"
        );
    }
}
