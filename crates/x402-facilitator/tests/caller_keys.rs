//! Caller API keys (`API_KEYS=required`) against the real binary on anvil: each answer a
//! caller can get (401, 403 with the protocol refusal, 429 with `Retry-After`), keys kept
//! hashed, a key revoked through the admin API and through a reloaded keys file, and two
//! instances on one PostgreSQL agreeing on a revocation and on a rate limit.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::*;

const ADMIN: &str = "caller-keys-admin-token-5b7e";

fn minute_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

/// `/verify` of a fresh payment to `pay_to` with `key` in `header` (`None`: no key).
async fn verify_with(url: &str, key: Option<(&str, &str)>, pay_to: &str) -> reqwest::Response {
    let body = v2_body(
        sign_authorization(PAYER_KEY, pay_to, 1_000, random_nonce()),
        "1000",
    );
    let mut body = body;
    body["paymentRequirements"]["payTo"] = json!(pay_to);
    body["paymentPayload"]["accepted"]["payTo"] = json!(pay_to);
    let mut request = reqwest::Client::new()
        .post(format!("{url}/verify"))
        .json(&body);
    if let Some((name, value)) = key {
        request = request.header(name, value);
    }
    request.send().await.expect("verify")
}

async fn bearer(url: &str, key: &str) -> reqwest::Response {
    verify_with(
        url,
        Some(("authorization", &format!("Bearer {key}"))),
        PAY_TO,
    )
    .await
}

/// `POST /admin/api-keys`: the new key.
async fn create_key(url: &str, policy: Value) -> String {
    let response = reqwest::Client::new()
        .post(format!("{url}/admin/api-keys"))
        .bearer_auth(ADMIN)
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    answer["key"].as_str().expect("the key, once").to_owned()
}

async fn revoke(url: &str, id: &str) -> u16 {
    let response = reqwest::Client::new()
        .delete(format!("{url}/admin/api-keys/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Calls `call` until it answers 429 and checks that happened after exactly `limit`
/// accepted calls in one minute (a run that crossed a minute boundary is run again).
async fn assert_rate_limited_after<F, Fut>(limit: usize, mut call: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    for _ in 0..3 {
        let minute = minute_now();
        let mut statuses = Vec::new();
        let mut limited = None;
        for i in 0..=limit {
            let response = call(i).await;
            statuses.push(response.status().as_u16());
            if response.status() == 429 {
                limited = Some(response);
                break;
            }
        }
        if minute_now() != minute {
            continue;
        }
        assert_eq!(statuses[..limit], vec![200; limit][..], "{statuses:?}");
        let limited = limited.expect("the call past the limit is refused");
        let wait: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        let body: Value = limited.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("requests a minute"),
            "{body}"
        );
        return;
    }
    panic!("three runs crossed a minute boundary");
}

/// The ledger holds each key's hash, never the key, and no log line holds a key.
async fn assert_kept_hashed(
    chain: &x402_facilitator::dev::LocalChain,
    process: &Process,
    keys: &[&str],
) {
    let url = format!("sqlite://{}?mode=rwc", chain.ledger_path.display());
    let ledger = x402_ledger::Ledger::connect(&url).await.unwrap();
    let stored = ledger.api_keys().await.unwrap();
    assert_eq!(stored.len(), keys.len());
    let logged = serde_json::to_string(&process.logs()).unwrap();
    for key in keys {
        let hash = x402_facilitator::api_keys::hash_key(key);
        assert!(stored.iter().any(|s| s.key_hash == hash));
        assert!(stored
            .iter()
            .all(|s| !s.policy.contains(key) && s.key_hash != *key));
        assert!(!logged.contains(key), "a key was logged");
    }
}

/// Per-key metrics count by id, never by key.
async fn assert_key_metrics(url: &str, file_key: &str) {
    let (_, metrics) = get_text(&reqwest::Client::new(), &format!("{url}/metrics")).await;
    let accepted = [("key", "shop"), ("result", "accepted")];
    assert!(
        metric(&metrics, "x402_api_key_requests_total", &accepted) >= 2.0,
        "{metrics}"
    );
    let forbidden = [("key", "shop"), ("result", "forbidden")];
    assert_eq!(
        metric(&metrics, "x402_api_key_requests_total", &forbidden),
        1.0
    );
    let missing = [("key", "none"), ("result", "missing")];
    assert!(metric(&metrics, "x402_api_key_requests_total", &missing) >= 1.0);
    assert!(
        metrics.contains(
            "x402_api_key_requests_total{key=\"mainnet-only\",result=\"rate_limited\"} 0"
        ),
        "a known key's series at zero:\n{metrics}"
    );
    assert!(!metrics.contains(file_key), "a key in a metric");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_admits_its_own_payments_only_and_is_revoked_by_the_admin_api_and_the_file() {
    let chain = chain_with_token(&[]).await;
    let dir = TempDir::new("keys");
    let file = dir.0.join("keys.toml");
    let file_key = "file-key-for-the-shop-0123456789abcdef";
    let entry = format!(
        "[[keys]]\nid = \"shop\"\nsha256 = \"{}\"\nnetworks = [\"base-sepolia\"]\npay_to = [\"{}\"]\n",
        x402_facilitator::api_keys::hash_key(file_key),
        PAY_TO.to_lowercase()
    );
    std::fs::write(&file, &entry).unwrap();
    let env = [
        ("API_KEYS", "required"),
        ("API_KEYS_FILE", file.to_str().unwrap()),
        ("ADMIN_TOKEN", ADMIN),
    ];
    let process = Process::spawn(&chain, &env, &[]).await;
    let url = process.url.as_str();

    // No key, an unknown key, two different keys: 401 with a challenge.
    let none = verify_with(url, None, PAY_TO).await;
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(bearer(url, "x402_not-a-key").await.status(), 401);
    let both = reqwest::Client::new()
        .post(format!("{url}/verify"))
        .header("authorization", format!("Bearer {file_key}"))
        .header("x-api-key", "another")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 401);

    // The file's key, either header: the payment is verified as before.
    let answer: Value = bearer(url, file_key).await.json().await.unwrap();
    assert_eq!(answer["isValid"], true, "{answer}");
    let by_header = verify_with(url, Some(("x-api-key", file_key)), PAY_TO).await;
    assert_eq!(by_header.status(), 200);
    // Outside its payTo list: 403 with the protocol refusal.
    let other = verify_with(url, Some(("x-api-key", file_key)), DEV_ACCOUNTS_3).await;
    assert_eq!(other.status(), 403);
    let refusal: Value = other.json().await.unwrap();
    assert_eq!(refusal["isValid"], false);
    assert_eq!(
        refusal["invalidReason"], "invalid_payment_requirements",
        "{refusal}"
    );
    assert!(refusal["error"].as_str().unwrap().contains("shop"));

    // An admin key limited to mainnet: 403 invalid_network here; one with a rate: 429.
    let mainnet = create_key(
        url,
        json!({"id": "mainnet-only", "networks": ["eip155:8453"]}),
    )
    .await;
    let refusal: Value = bearer(url, &mainnet).await.json().await.unwrap();
    assert_eq!(refusal["invalidReason"], "invalid_network", "{refusal}");
    let limited = create_key(url, json!({"id": "limited", "rate_limit_per_minute": 3})).await;
    assert_rate_limited_after(3, |_| bearer(url, &limited)).await;

    assert_kept_hashed(&chain, &process, &[&mainnet, &limited, file_key]).await;

    // Revoked through the admin API: refused at once, and a second revoke finds nothing.
    assert_eq!(revoke(url, "limited").await, 200);
    assert_eq!(bearer(url, &limited).await.status(), 401);
    assert_eq!(revoke(url, "limited").await, 404);
    // Revoked by the file: gone after one reload; the admin key stays.
    std::fs::write(&file, "").unwrap();
    process.signal("HUP");
    process
        .wait_log(|l| l["message"] == "API keys file loaded" && l["revoked"] == 1)
        .await;
    assert_eq!(bearer(url, file_key).await.status(), 401);
    assert_eq!(
        bearer(url, &mainnet).await.status(),
        403,
        "the admin key is still known"
    );

    assert_key_metrics(url, file_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_agree_on_a_revocation_and_a_rate_limit() {
    let chain = chain_with_token(&[]).await;
    let (database_url, database) = fresh_postgres("keys").await;
    let env = [
        ("API_KEYS", "required"),
        ("ADMIN_TOKEN", ADMIN),
        ("DATABASE_URL", database_url.as_str()),
    ];
    let blue = Process::spawn(&chain, &env, &[]).await;
    let green = Process::spawn(&chain, &env, &[]).await;

    let policy = json!({"id": "fleet", "pay_to": [PAY_TO], "rate_limit_per_minute": 4});
    let key = create_key(&blue.url, policy).await;
    // Green knows the key once it refuses a payment outside its policy (403: a refusal by
    // policy is not counted against the rate).
    until(10, "green to know the key blue made", || async {
        let answer = verify_with(&green.url, Some(("x-api-key", &key)), DEV_ACCOUNTS_3).await;
        (answer.status() == 403).then_some(())
    })
    .await;
    // One limit for the fleet: calls alternate between the instances.
    let urls = [blue.url.clone(), green.url.clone()];
    assert_rate_limited_after(4, |i| {
        let (url, key) = (urls[i % 2].clone(), key.clone());
        async move { bearer(&url, &key).await }
    })
    .await;

    let revoked_at = Instant::now();
    assert_eq!(revoke(&blue.url, "fleet").await, 200);
    assert_eq!(
        bearer(&blue.url, &key).await.status(),
        401,
        "at once where it was revoked"
    );
    until(10, "green to refuse the revoked key", || async {
        (bearer(&green.url, &key).await.status() == 401).then_some(())
    })
    .await;
    assert!(
        revoked_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        revoked_at.elapsed()
    );
    drop((blue, green));
    drop_postgres(&database).await;
}

/// `tests/js/keyed-client.mjs`: the official facilitator client with `key` (or none).
async fn official_client(url: &str, key: Option<&str>) -> Value {
    let args: Vec<&str> = std::iter::once(url).chain(key).collect();
    node_report("keyed-client.mjs", &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_pays_with_its_key_in_create_auth_headers() {
    let chain = chain_with_token(&[]).await;
    let env = [("API_KEYS", "required"), ("ADMIN_TOKEN", ADMIN)];
    let process = Process::spawn(&chain, &env, &[]).await;
    let key = create_key(&process.url, json!({"id": "official", "pay_to": [PAY_TO]})).await;
    let mark = ChainMark::take(&chain).await;

    let refused = official_client(&process.url, None).await;
    for call in ["verify", "settle"] {
        let error = refused[call]["error"].as_str().unwrap_or_default();
        assert!(error.contains("401"), "{call} without a key: {refused}");
    }
    mark.assert_moved(&chain, 0, 0).await;

    let paid = official_client(&process.url, Some(&key)).await;
    assert_eq!(paid["verify"]["answer"]["isValid"], true, "{paid}");
    assert_eq!(paid["settle"]["answer"]["success"], true, "{paid}");
    mark.assert_moved(&chain, 1, 2_000).await;
}
