//! Helpers of the shared-ledger tests: batches of payments, settling them at several
//! instances, the admin API, and what a refusal must say.

use super::*;

pub const NETWORK: &str = "eip155:84532";

/// `n` distinct signed v2 payments of `value` each.
pub fn payments(n: usize, value: u64) -> Vec<Value> {
    (0..n)
        .map(|_| {
            v2_body(
                sign_authorization(PAYER_KEY, PAY_TO, value, random_nonce()),
                &value.to_string(),
            )
        })
        .collect()
}

/// Settles `bodies` over `targets` round-robin, `concurrency` at a time; answers in order.
pub async fn settle_all(targets: &[String], bodies: &[Value], concurrency: usize) -> Vec<Value> {
    let http = reqwest::Client::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let url = format!("{}/settle", targets[i % targets.len()]);
        let (http, body, gate) = (http.clone(), body.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let (status, answer) = post_json(&http, &url, &body).await;
            assert_eq!(status, 200, "{answer}");
            answer
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

pub fn nonce_warnings(process: &Process) -> usize {
    process
        .logs()
        .iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["fields"]["message"]
                    .as_str()
                    .or(l["message"].as_str())
                    .is_some_and(|m| m.contains("nonce") || m.contains("refused"))
        })
        .count()
}

/// `PUT /admin/flags` on `instance` with the admin `token`; the change must be accepted.
pub async fn put_admin_flags(http: &reqwest::Client, instance: String, token: &str, body: Value) {
    let response = http
        .put(format!("{instance}/admin/flags"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// `host:port` of a `postgres://user@host:port/db` URL.
pub fn host_port(database_url: &str) -> &str {
    let after_user = database_url
        .rsplit_once('@')
        .map_or(database_url, |(_, r)| r);
    after_user.split('/').next().unwrap_or(after_user)
}

/// Posts `body` to `settle_url` and asserts a retryable refusal with `reason`: a protocol
/// answer (HTTP 200) naming the network and the payer, with nothing broadcast.
pub async fn assert_refused(http: &reqwest::Client, settle_url: &str, body: &Value, reason: &str) {
    let (status, answer) = post_json(http, settle_url, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(answer["errorReason"], reason, "{answer}");
    assert_eq!(answer["transaction"], "", "nothing broadcast: {answer}");
    assert_eq!(answer["network"], NETWORK);
    assert_eq!(answer["payer"], PAYER, "{answer}");
}
