//! The HTTP surface against the real server: versions, errors, limits, and bad input.

mod support;

use serde_json::{json, Value};
use support::*;
use x402_facilitator::config::VersionSupport;

const BOTH: VersionSupport = VersionSupport { v1: true, v2: true };

#[tokio::test]
async fn health_and_supported_list_both_versions() {
    let h = start(BOTH).await;
    let (status, body) = h.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let (status, supported) = h.get("/supported").await;
    assert_eq!(status, 200);
    let kinds = supported["kinds"].as_array().unwrap();
    assert!(
        kinds.contains(&json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia"}))
    );
    assert!(
        kinds.contains(&json!({"x402Version": 2, "scheme": "exact", "network": "eip155:84532"}))
    );
    assert_eq!(
        supported["signers"]["eip155:*"],
        json!([support::DEV_SIGNER])
    );
    assert_eq!(
        supported["extensions"],
        json!(["payment-identifier", "bazaar", "eip2612GasSponsoring"])
    );
}

#[tokio::test]
async fn answers_in_the_version_of_the_request() {
    let h = start(BOTH).await;
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let (status, v2) = h.post("/verify", &v2_body(payload.clone(), "10000")).await;
    assert_eq!(status, 200);
    assert_eq!(v2, json!({"isValid": true, "payer": PAYER}));
    let (_, v1) = h.post("/verify", &v1_body(payload.clone(), "10000")).await;
    assert_eq!(v1, json!({"isValid": true, "payer": PAYER}));
    // Settle refusals carry the network in the request's own spelling.
    let mut short = v1_body(payload.clone(), "10000");
    short["paymentRequirements"]["payTo"] = json!(DEV_ACCOUNTS_3);
    let (_, refused) = h.post("/settle", &short).await;
    assert_eq!(refused["success"], false);
    assert_eq!(refused["network"], "base-sepolia");
    assert_eq!(
        refused["errorReason"],
        "invalid_exact_evm_recipient_mismatch"
    );
    assert_eq!(refused["transaction"], "");
    assert_eq!(refused["payer"], PAYER);
    let mut short2 = v2_body(payload, "10000");
    short2["paymentRequirements"]["payTo"] = json!(DEV_ACCOUNTS_3);
    let (_, refused2) = h.post("/settle", &short2).await;
    assert_eq!(refused2["network"], "eip155:84532");
}

#[tokio::test]
async fn switched_off_version_gets_a_clear_reason_in_its_own_shape() {
    let h = start(VersionSupport {
        v1: false,
        v2: true,
    })
    .await;
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let (status, v1) = h.post("/settle", &v1_body(payload.clone(), "10000")).await;
    assert_eq!(status, 200);
    assert_eq!(v1["success"], false);
    assert_eq!(v1["errorReason"], "unsupported_version");
    assert_eq!(v1["network"], "base-sepolia");
    assert!(v1["errorMessage"]
        .as_str()
        .unwrap()
        .contains("X402_VERSION_SUPPORT=v2"));
    let (_, supported) = h.get("/supported").await;
    assert!(supported["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["x402Version"] == 2));
    let (_, v2) = h.post("/verify", &v2_body(payload, "10000")).await;
    assert_eq!(v2["isValid"], true);

    let h1 = start(VersionSupport {
        v1: true,
        v2: false,
    })
    .await;
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let (_, v2) = h1.post("/verify", &v2_body(payload, "10000")).await;
    assert_eq!(v2["isValid"], false);
    assert_eq!(v2["invalidReason"], "unsupported_version");
}

#[tokio::test]
async fn malformed_bodies_get_400_with_the_field() {
    let h = start(BOTH).await;
    let (status, body) = h.post_raw("/verify", b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("not valid JSON"));
    let (status, body) = h.post_raw("/verify", b"{}".to_vec()).await;
    assert_eq!((status, body["field"].clone()), (400, json!("x402Version")));

    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let mut bad_caip2 = v2_body(payload.clone(), "10000");
    bad_caip2["paymentRequirements"]["network"] = json!("eip155:0x14a34");
    let (status, body) = h.post("/verify", &bad_caip2).await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "paymentRequirements.network");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("CAIP-2 parsing failed"));

    let mut missing = v2_body(payload.clone(), "10000");
    missing["paymentRequirements"]
        .as_object_mut()
        .unwrap()
        .remove("payTo");
    let (status, body) = h.post("/settle", &missing).await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "paymentRequirements");
    assert!(body["error"].as_str().unwrap().contains("payTo"));

    let mut mismatch = v1_body(payload, "10000");
    mismatch["x402Version"] = json!(2);
    let (status, body) = h.post("/verify", &mismatch).await;
    assert_eq!(
        (status, body["field"].clone()),
        (400, json!("paymentPayload.x402Version"))
    );
}

#[tokio::test]
async fn unknown_version_network_and_scheme_are_protocol_answers() {
    let h = start(BOTH).await;
    let (status, body) = h.post("/verify", &json!({"x402Version": 3})).await;
    assert_eq!(status, 200);
    assert_eq!(body["invalidReason"], "invalid_x402_version");

    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let mut other_chain = v2_body(payload.clone(), "10000");
    other_chain["paymentRequirements"]["network"] = json!("eip155:8453");
    other_chain["paymentPayload"]["accepted"]["network"] = json!("eip155:8453");
    let (status, body) = h.post("/verify", &other_chain).await;
    assert_eq!(
        (status, body["invalidReason"].clone()),
        (200, json!("invalid_network"))
    );

    let mut unknown_v1 = v1_body(payload.clone(), "10000");
    unknown_v1["paymentRequirements"]["network"] = json!("atlantis");
    let (status, body) = h.post("/settle", &unknown_v1).await;
    assert_eq!(
        (status, body["errorReason"].clone()),
        (200, json!("invalid_network"))
    );
    assert_eq!(body["network"], "atlantis");

    let mut other_scheme = v2_body(payload, "10000");
    other_scheme["paymentRequirements"]["scheme"] = json!("upto");
    let (_, body) = h.post("/verify", &other_scheme).await;
    assert_eq!(body["invalidReason"], "unsupported_scheme");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let h = start(BOTH).await;
    let big = format!(
        "{{\"x402Version\":2,\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let (status, body) = h.post_raw("/verify", big.into_bytes()).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("65536"));
}

#[tokio::test]
async fn garbage_never_gets_a_5xx() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let h = start(BOTH).await;
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let template = v2_body(payload, "10000").to_string().into_bytes();
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let cases = std::cell::RefCell::new(Vec::new());
    runner
        .run(
            &(
                prop::collection::vec(any::<u8>(), 0..400),
                0..template.len(),
                any::<u8>(),
            ),
            |(noise, at, byte)| {
                let mut mutated = template.clone();
                mutated[at] = byte;
                cases.borrow_mut().push(mutated);
                cases.borrow_mut().push(noise);
                Ok(())
            },
        )
        .unwrap();
    for body in cases.into_inner() {
        for path in ["/verify", "/settle"] {
            let res = h
                .http
                .post(format!("{}{path}", h.url))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(
                res.status().as_u16() < 500,
                "{path} answered {} to {:?}",
                res.status(),
                String::from_utf8_lossy(&body)
            );
            let _: Value = res.json().await.expect("every answer is JSON");
        }
    }
    // The server is still up and correct after the barrage.
    assert_eq!(h.get("/health").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_hex_fields_are_refused_not_crashed() {
    let h = start(BOTH).await;
    for field in ["signature", "nonce"] {
        let mut payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
        let target = if field == "signature" {
            &mut payload["signature"]
        } else {
            &mut payload["authorization"]["nonce"]
        };
        *target = serde_json::json!("0xaé1aé1aé1");
        for path in ["/verify", "/settle"] {
            let (status, answer) = h.post(path, &v2_body(payload.clone(), "10000")).await;
            assert_eq!(status, 200, "{field} {path}: {answer}");
            let refused = answer["isValid"] == false || answer["success"] == false;
            assert!(refused, "{field} {path}: {answer}");
        }
    }
    let (status, _) = h.get("/health").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn v1_answers_carry_the_retirement_timeline_and_v2_answers_do_not() {
    let h = start_custom(
        &[],
        |config| {
            config.v1_deprecation = x402_facilitator::deprecation::V1Deprecation::new(
                Some("2026-12-01T00:00:00Z"),
                Some("2027-06-30T00:00:00Z"),
                Some("https://example.com/x402-v2"),
            )
            .unwrap();
        },
        |_| {},
    )
    .await;
    let payload = sign_authorization(PAYER_KEY, PAY_TO, 10_000, random_nonce());
    let send = |body: Value, path: &'static str| {
        let (http, url) = (h.http.clone(), format!("{}{path}", h.url));
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    for path in ["/verify", "/settle"] {
        let mut body = v1_body(payload.clone(), "10000");
        // A refusal (wrong payee) is a v1 answer too; nothing is settled.
        body["paymentRequirements"]["payTo"] = json!(DEV_ACCOUNTS_3);
        let v1 = send(body, path).await;
        assert_eq!(v1.status(), 200);
        let header = |name: &str| {
            v1.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("deprecation").as_deref(), Some("@1796083200"));
        assert_eq!(
            header("sunset").as_deref(),
            Some("Wed, 30 Jun 2027 00:00:00 GMT")
        );
        assert_eq!(
            header("link").as_deref(),
            Some("<https://example.com/x402-v2>; rel=\"deprecation\"")
        );
        let v2 = send(v2_body(payload.clone(), "10000"), "/verify").await;
        assert_eq!(v2.status(), 200);
        assert!(v2.headers().get("deprecation").is_none());
        assert!(v2.headers().get("sunset").is_none());
    }
}
