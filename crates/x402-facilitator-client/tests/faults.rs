//! The client against a misbehaving facilitator stand-in (a local HTTP server that answers
//! from a script): which failures are retried, which are not, and what the errors say.
//! The real facilitator is exercised by the resource-server tests (`x402-axum`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{json, Value};
use x402_facilitator_client::{ClientError, ClientOptions, FacilitatorClient, SettleResend};
use x402_protocol::v2;

/// One scripted answer: status, body, and a delay before it.
type Answer = (u16, String, Duration);

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }
}

async fn answer(script: Script, path: &str) -> (StatusCode, String) {
    script.calls.lock().expect("lock").push(path.to_owned());
    let next = script.answers.lock().expect("lock").pop_front();
    let (status, body, delay) = next.unwrap_or((500, "script exhausted".into(), Duration::ZERO));
    tokio::time::sleep(delay).await;
    (StatusCode::from_u16(status).expect("status"), body)
}

/// Starts the stand-in under the base path `/k3y-secret` and returns the client's base URL
/// (with a query-like secret in the path, which no error may quote).
async fn stand_in(answers: Vec<Answer>) -> (String, Script) {
    let script = Script {
        answers: Arc::new(Mutex::new(answers.into())),
        ..Script::default()
    };
    let (s1, s2, s3) = (script.clone(), script.clone(), script.clone());
    let app = axum::Router::new()
        .route(
            "/k3y-secret/verify",
            post(move || answer(s1.clone(), "verify")),
        )
        .route(
            "/k3y-secret/settle",
            post(move || answer(s2.clone(), "settle")),
        )
        .route(
            "/k3y-secret/supported",
            get(move || answer(s3.clone(), "supported")),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/k3y-secret"), script)
}

fn quick(resend: SettleResend) -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(400),
        settle_timeout: Duration::from_millis(400),
        retry_delay: Duration::from_millis(10),
        pending_budget: Duration::from_secs(5),
        settle_resend: resend,
        ..ClientOptions::default()
    }
}

fn request() -> v2::SettleRequest {
    let accepted = json!({
        "scheme": "exact", "network": "eip155:84532", "amount": "1000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60
    });
    serde_json::from_value(json!({
        "x402Version": 2,
        "paymentPayload": {"x402Version": 2, "accepted": accepted, "payload": {"signature": "0x"}},
        "paymentRequirements": accepted
    }))
    .expect("request")
}

fn ok(body: Value) -> Answer {
    (200, body.to_string(), Duration::ZERO)
}

fn settled(success: bool, reason: Option<&str>) -> Value {
    json!({"success": success, "errorReason": reason, "transaction": "0xabc", "network": "eip155:84532"})
}

#[tokio::test]
async fn verify_is_retried_through_5xx_and_429() {
    let (url, script) = stand_in(vec![
        (503, "draining".into(), Duration::ZERO),
        (429, "slow down".into(), Duration::ZERO),
        ok(json!({"isValid": true, "payer": "0x1"})),
    ])
    .await;
    let client = FacilitatorClient::new(&url, quick(SettleResend::UnsentOnly)).expect("client");
    let answer = client.verify_v2(&request()).await.expect("third time");
    assert!(answer.is_valid);
    assert_eq!(script.calls(), ["verify", "verify", "verify"]);
}

#[tokio::test]
async fn a_settle_that_may_have_arrived_is_resent_only_to_an_idempotent_facilitator() {
    let (url, script) = stand_in(vec![
        (502, "bad gateway".into(), Duration::ZERO),
        ok(settled(true, None)),
    ])
    .await;
    let careful = FacilitatorClient::new(&url, quick(SettleResend::UnsentOnly)).expect("client");
    let err = careful.settle_v2(&request()).await.expect_err("not resent");
    assert!(
        matches!(err, ClientError::Unavailable { status: 502, .. }),
        "{err}"
    );
    assert_eq!(script.calls(), ["settle"]);

    let trusting =
        FacilitatorClient::new(&url, quick(SettleResend::IdempotentFacilitator)).expect("client");
    let answer = trusting.settle_v2(&request()).await.expect("resent");
    assert!(answer.success);
    assert_eq!(script.calls(), ["settle", "settle"]);
}

#[tokio::test]
async fn a_pending_settlement_is_asked_again_until_final() {
    let (url, script) = stand_in(vec![
        ok(settled(false, Some("settlement_pending"))),
        ok(settled(false, Some("settlement_pending"))),
        ok(settled(true, None)),
    ])
    .await;
    let client = FacilitatorClient::new(&url, quick(SettleResend::UnsentOnly)).expect("client");
    let answer = client.settle_v2(&request()).await.expect("final");
    assert!(answer.success);
    assert_eq!(answer.transaction, "0xabc");
    assert_eq!(script.calls().len(), 3);
}

#[tokio::test]
async fn a_pending_settlement_past_the_budget_is_answered_pending_with_its_hash() {
    let pending: Vec<Answer> = (0..10)
        .map(|_| ok(settled(false, Some("settlement_pending"))))
        .collect();
    let (url, script) = stand_in(pending).await;
    let options = ClientOptions {
        pending_budget: Duration::from_millis(600),
        ..quick(SettleResend::UnsentOnly)
    };
    let client = FacilitatorClient::new(&url, options).expect("client");
    let answer = client.settle_v2(&request()).await.expect("an answer");
    assert_eq!(answer.error_reason.as_deref(), Some("settlement_pending"));
    assert_eq!(answer.transaction, "0xabc");
    assert!(script.calls().len() < 10, "{:?}", script.calls());
}

#[tokio::test]
async fn the_callers_fault_is_not_retried_and_is_told_apart() {
    let (url, script) = stand_in(vec![
        (
            400,
            json!({"error": "paymentPayload.accepted: missing field `amount`"}).to_string(),
            Duration::ZERO,
        ),
        (401, "{}".into(), Duration::ZERO),
        ok(json!({"unexpected": true})),
    ])
    .await;
    let client = FacilitatorClient::new(&url, quick(SettleResend::UnsentOnly)).expect("client");
    let refused = client.verify_v2(&request()).await.expect_err("400");
    assert!(refused.is_request_fault());
    assert!(
        refused.to_string().contains("missing field `amount`"),
        "{refused}"
    );
    let unauthorized = client.verify_v2(&request()).await.expect_err("401");
    assert!(matches!(
        unauthorized,
        ClientError::Unauthorized { status: 401, .. }
    ));
    assert!(!unauthorized.is_request_fault());
    let garbage = client
        .verify_v2(&request())
        .await
        .expect_err("not a verify answer");
    assert!(matches!(garbage, ClientError::Decode { .. }), "{garbage}");
    assert_eq!(script.calls().len(), 3, "none of them retried");
}

#[tokio::test]
async fn a_slow_facilitator_times_out_and_no_error_quotes_the_url() {
    let (url, script) = stand_in(vec![
        (200, "{}".into(), Duration::from_secs(3)),
        (200, "{}".into(), Duration::from_secs(3)),
        (200, "{}".into(), Duration::from_secs(3)),
    ])
    .await;
    let options = ClientOptions {
        attempts: 2,
        ..quick(SettleResend::UnsentOnly)
    };
    let client = FacilitatorClient::new(&url, options).expect("client");
    let err = client.supported().await.expect_err("too slow");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert_eq!(script.calls().len(), 2);

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{closed}/k3y-secret?apikey=hunter2");
    let client = FacilitatorClient::new(&url, quick(SettleResend::UnsentOnly)).expect("client");
    let err = client
        .settle_v2(&request())
        .await
        .expect_err("nobody listens");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ClientError::Unreachable { .. }), "{text}");
    for secret in ["k3y-secret", "hunter2", &closed.to_string()] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn a_url_without_a_scheme_is_refused_and_the_key_is_never_printed() {
    let err = FacilitatorClient::new("facilitator.example", ClientOptions::default());
    assert!(matches!(err, Err(ClientError::Url(_))));
    let options = ClientOptions {
        api_key: Some("sk-live-123".into()),
        ..ClientOptions::default()
    };
    assert!(!format!("{options:?}").contains("sk-live-123"));
}
