//! The `bazaar` discovery extension against the real binary on anvil: an official
//! `@x402/express` server declaring it with `@x402/extensions`, paid by `@x402/fetch`, its
//! resources read back with `@x402/extensions`' discovery client (SQLite, then two
//! instances on one PostgreSQL); and what a payer or a stranger can do to the catalog.

mod support;

use base64::Engine;
use serde_json::{json, Value};
use support::*;
use x402_facilitator::dev::{LocalChain, BASE_SEPOLIA_USDC};

/// Runs `tests/js/discovery.mjs` against the facilitator at `url`; its JSON report.
async fn official_round(url: &str) -> Value {
    node_report("discovery.mjs", &[url, PAY_TO]).await
}

/// The resource URLs of a listing answer, in its order.
fn resources(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["resource"].as_str().expect("resource").to_owned())
        .collect()
}

/// Checks the official round's report: every payment served, the two declared routes
/// listed once each (two cities under one route template), the unlisted one absent, and
/// each filter and page as the official client asked for it.
fn assert_official_listing(report: &Value) {
    for name in ["lisbon", "porto", "search", "unlisted"] {
        assert_eq!(report["paid"][name]["status"], 200, "{name}: {report}");
    }
    let origin = report["origin"].as_str().unwrap();
    let listed = &report["listed"];
    let all = &listed["all"];
    assert_eq!(all["pagination"]["total"], 2, "{all}");
    let mut urls = resources(all);
    urls.sort();
    assert_eq!(
        urls,
        [
            format!("{origin}/search"),
            format!("{origin}/weather/:city")
        ]
    );
    for item in all["items"].as_array().unwrap() {
        assert_eq!(item["type"], "http");
        assert_eq!(item["x402Version"], 2);
        assert_eq!(item["accepts"][0]["payTo"], PAY_TO);
        assert_eq!(item["accepts"][0]["network"], "eip155:84532");
        assert_eq!(item["accepts"][0]["amount"], "1000");
        assert!(item["lastUpdated"].as_str().unwrap().ends_with('Z'));
        let method = &item["extensions"]["bazaar"]["info"]["input"]["method"];
        let expected = if item["resource"].as_str().unwrap().ends_with("/search") {
            "POST"
        } else {
            "GET"
        };
        assert_eq!(method, expected, "{item}");
    }
    assert_eq!(listed["http"]["pagination"]["total"], 2);
    assert_eq!(listed["mcp"]["pagination"]["total"], 0);
    assert_eq!(listed["mcp"]["items"], json!([]));
    let (first, second) = (
        resources(&listed["firstPage"]),
        resources(&listed["secondPage"]),
    );
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first, second, "pages do not overlap");
    assert_eq!(
        listed["secondPage"]["pagination"],
        json!({"limit": 1, "offset": 1, "total": 2})
    );
    assert_eq!(
        listed["byPayTo"]["pagination"]["total"], 2,
        "payTo in another case"
    );
    assert_eq!(listed["otherNetwork"]["pagination"]["total"], 0);
    assert_eq!(listed["byScheme"]["pagination"]["total"], 2);
    assert!(
        report["badLimit"].as_str().unwrap().contains("400"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_list_paid_resources_and_read_the_catalog() {
    let chain = chain_with_token(&[]).await;
    let process = Process::spawn(&chain, &[], &[]).await;
    let (_, supported) = get_at(&process.url, "/supported").await;
    assert_eq!(
        supported["extensions"],
        json!(["payment-identifier", "bazaar", "eip2612GasSponsoring"])
    );
    let payee_before = chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap();
    let report = official_round(&process.url).await;
    assert_official_listing(&report);
    let payee_after = chain.balance_of(BASE_SEPOLIA_USDC, PAY_TO).await.unwrap();
    assert_eq!(
        payee_after - payee_before,
        4 * 1_000,
        "four payments, each once"
    );
    assert!(process.warnings().is_empty(), "{:#?}", process.warnings());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_postgres_list_the_same_catalog() {
    let chain = chain_with_token(&[]).await;
    let (database_url, database) = fresh_postgres("discovery").await;
    let env = [("DATABASE_URL", database_url.as_str())];
    let blue = Process::spawn(&chain, &env, &[]).await;
    let green = Process::spawn(&chain, &env, &[]).await;
    let report = official_round(&blue.url).await;
    assert_official_listing(&report);
    let (status, seen_by_green) = get_at(&green.url, "/discovery/resources").await;
    assert_eq!(status, 200);
    assert_eq!(
        seen_by_green, report["listed"]["all"],
        "one catalog for both instances"
    );
    drop((blue, green));
    drop_postgres(&database).await;
}

async fn get_at(url: &str, path: &str) -> (u16, Value) {
    get_json(&reqwest::Client::new(), &format!("{url}{path}")).await
}

/// A direct settle of a fresh payment of `value` carrying `bazaar`; the answer and the
/// decoded `EXTENSION-RESPONSES` header (`Null` when absent).
async fn settle_with_extension(url: &str, key: &str, value: u64, bazaar: Value) -> (Value, Value) {
    let mut body = fresh_body(key, value);
    body["paymentPayload"]["resource"] = json!({"url": "https://shop.example/item?id=7"});
    body["paymentPayload"]["extensions"] = json!({ "bazaar": bazaar });
    let response = reqwest::Client::new()
        .post(format!("{url}/settle"))
        .json(&body)
        .send()
        .await
        .expect("settle");
    let header = response
        .headers()
        .get("extension-responses")
        .map(|v| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        })
        .unwrap_or(Value::Null);
    (response.json().await.expect("JSON"), header)
}

fn get_extension() -> Value {
    json!({
        "info": {"input": {"type": "http", "method": "GET"}},
        "schema": {"type": "object", "properties": {"input": {"type": "object", "properties": {"method": {"enum": ["GET"]}}}}, "required": ["input"]},
    })
}

async fn listed_total(url: &str) -> Value {
    get_at(url, "/discovery/resources").await.1["pagination"]["total"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_settled_payment_with_a_valid_extension_lists_and_the_switch_turns_it_off() {
    let chain: LocalChain = chain_with_token(&[]).await;
    let process = Process::spawn(
        &chain,
        &[("ADMIN_TOKEN", "discovery-admin-token-0123")],
        &[],
    )
    .await;
    let url = process.url.as_str();

    // A schema its own info does not satisfy: settled (the payment is fine), not listed.
    let mut lying = get_extension();
    lying["info"]["input"]["method"] = json!("DELETE");
    let (answer, header) = settle_with_extension(url, PAYER_KEY, 1_001, lying).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(header["bazaar"]["status"], "rejected", "{header}");
    assert!(header["bazaar"]["rejectedReason"]
        .as_str()
        .unwrap()
        .contains("/input/method"));
    assert_eq!(listed_total(url).await, 0);

    // A payer without the funds: nothing settles, nothing is listed, no gas spent on it.
    let mark = ChainMark::take(&chain).await;
    let (answer, header) =
        settle_with_extension(url, DEV_ACCOUNTS_3_KEY, 1_002, get_extension()).await;
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(header["bazaar"]["status"], "rejected");
    mark.assert_moved(&chain, 0, 0).await;
    assert_eq!(listed_total(url).await, 0);

    // Settled and valid: listed under origin and path, the query dropped; a re-sent settle
    // answers the same and the catalog still holds one row.
    let (answer, header) = settle_with_extension(url, PAYER_KEY, 1_003, get_extension()).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(header, json!({"bazaar": {"status": "success"}}));
    let (_, page) = get_at(url, "/discovery/resources").await;
    assert_eq!(resources(&page), ["https://shop.example/item"]);

    // Switched off at runtime: not advertised, not answered, nothing more listed.
    let switched = reqwest::Client::new()
        .put(format!("{url}/admin/flags"))
        .bearer_auth("discovery-admin-token-0123")
        .json(&json!({"discovery_enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    let (_, supported) = get_at(url, "/supported").await;
    assert_eq!(
        supported["extensions"],
        json!(["payment-identifier", "eip2612GasSponsoring"])
    );
    assert_eq!(get_at(url, "/discovery/resources").await.0, 404);
    let (answer, header) = settle_with_extension(url, PAYER_KEY, 1_004, get_extension()).await;
    assert_eq!(answer["success"], true);
    assert_eq!(
        header,
        Value::Null,
        "the extension is not read while discovery is off"
    );
    for bad in ["?limit=0", "?limit=abc", "?offset=-3"] {
        let (status, _) = get_at(url, &format!("/discovery/resources{bad}")).await;
        assert_eq!(status, 404, "off answers 404 whatever the query");
    }
}
