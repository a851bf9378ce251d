//! The real binary on anvil, checked against its own `GET /openapi.json` by schemathesis
//! (PyPI, pinned in `tests/schemathesis/`; a third-party tool, not ours): every check it has,
//! in the states an operator meets (healthy, ledger database gone, draining), and then every
//! status the document lists must have been answered at least once, by schemathesis' own
//! requests or by the few this test sends where a status needs a set-up schemathesis cannot
//! make (a rate limit crossed, a body over 64 KiB).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::*;

/// `(method, path template, status)`: one documented or observed answer.
type Answer = (String, String, u16);

const ADMIN_TOKEN: &str = "openapi-conformance-admin-token-7f3a9c";

/// Where the schemathesis CLI is: `X402_SCHEMATHESIS` (scripts/test.sh sets it) or the venv
/// scripts/test.sh installs. Missing is a failure that names the fix, never a skip.
fn schemathesis_cli() -> PathBuf {
    let path = std::env::var_os("X402_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/x402-facilitator/schemathesis/bin/st")
        });
    assert!(
        path.is_file(),
        "schemathesis not found at {} (run scripts/test.sh, which installs it, or set X402_SCHEMATHESIS)",
        path.display()
    );
    path
}

/// The runs' seed: fixed, so CI runs the same cases each time; `X402_SCHEMATHESIS_SEED`
/// explores others.
fn seed() -> String {
    std::env::var("X402_SCHEMATHESIS_SEED").unwrap_or_else(|_| "402".into())
}

/// Whether a request path matches a documented template (`{name}` is one segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (ours, theirs): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    ours.len() == theirs.len()
        && ours
            .iter()
            .zip(&theirs)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// Every `(method, template, status)` the document lists.
fn documented(document: &Value) -> BTreeSet<Answer> {
    let mut out = BTreeSet::new();
    let paths = document["paths"].as_object().expect("paths");
    for (template, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            for status in operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
            {
                let status = status.parse().expect("numeric status");
                out.insert((method.to_uppercase(), template.clone(), status));
            }
        }
    }
    out
}

/// Runs schemathesis and the facts it gathered.
struct Schemathesis {
    cli: PathBuf,
    dir: TempDir,
    schema: PathBuf,
    templates: Vec<String>,
    url: String,
    /// The header every request carries (the admin token, or a caller key).
    auth: String,
}

impl Schemathesis {
    /// Saves the instance's document once: every run reads the same one, even while the
    /// instance drains.
    async fn new(url: &str, document: &Value, auth: &str) -> Schemathesis {
        let dir = TempDir::new("schemathesis");
        let schema = dir.0.join("openapi.json");
        std::fs::write(&schema, serde_json::to_vec_pretty(document).unwrap()).unwrap();
        let templates = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        Schemathesis {
            cli: schemathesis_cli(),
            dir,
            schema,
            templates,
            url: url.to_owned(),
            auth: auth.to_owned(),
        }
    }

    /// One run with every check, `config` as its schemathesis.toml and `args` added; panics
    /// with schemathesis' own report unless every check passed. Returns what it was answered.
    async fn run(&self, name: &str, config: &str, args: &[&str]) -> BTreeSet<Answer> {
        let config_file = self.dir.0.join(format!("{name}.toml"));
        std::fs::write(&config_file, config).unwrap();
        let har = self.dir.0.join(format!("{name}.har"));
        let output = tokio::process::Command::new(&self.cli)
            .arg("--config-file")
            .arg(&config_file)
            .arg("--no-color")
            .arg("run")
            .arg(&self.schema)
            .args(["--url", &self.url, "--checks", "all", "--seed", &seed()])
            .args(["-H", &self.auth])
            .args(["--report", "har", "--report-har-path"])
            .arg(&har)
            .args(args)
            .kill_on_drop(true)
            .output()
            .await
            .expect("schemathesis runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis run {name} failed:\n{printed}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answers = self.answers_in(&har);
        let last_lines: Vec<&str> = printed.lines().rev().take(12).collect();
        println!(
            "schemathesis run {name}: {} distinct answers\n{}",
            answers.len(),
            last_lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        answers
    }

    /// The `(method, template, status)` of every exchange in a HAR file.
    fn answers_in(&self, har: &Path) -> BTreeSet<Answer> {
        let log: Value =
            serde_json::from_slice(&std::fs::read(har).expect("HAR written")).expect("HAR is JSON");
        let mut out = BTreeSet::new();
        for entry in log["log"]["entries"].as_array().expect("HAR entries") {
            let url = entry["request"]["url"].as_str().unwrap_or_default();
            let path = url
                .strip_prefix(&self.url)
                .unwrap_or(url)
                .split('?')
                .next()
                .unwrap_or_default();
            let method = entry["request"]["method"].as_str().unwrap_or_default();
            let status = entry["response"]["status"].as_u64().unwrap_or_default() as u16;
            if let Some(template) = self.templates.iter().find(|t| matches_template(t, path)) {
                out.insert((method.to_uppercase(), template.clone(), status));
            }
        }
        out
    }
}

/// The schemathesis.toml of a run: each listed operation may answer 503 (a documented state:
/// v2 switched off, a dependency gone, draining); everywhere else a 5xx fails the run.
fn config(may_be_unavailable: &[&str], extra: &str) -> String {
    let mut text = String::from(
        "generation.max-examples = 100\nrequest-timeout = 20.0\n# Runs are seeded; nothing is kept in the clone between them.\ncache.enabled = false\n",
    );
    text.push_str(extra);
    for path in may_be_unavailable {
        text.push_str(&format!(
            "\n[[operations]]\ninclude-path = \"{path}\"\nchecks.not_a_server_error.expected-statuses = [\"2xx\", \"3xx\", \"4xx\", \"503\"]\n"
        ));
    }
    text
}

/// The instance's flags now, as a `PUT /admin/flags` body that puts them back.
async fn flags_now(http: &reqwest::Client, url: &str) -> Value {
    let (_, mut flags) = get_json(http, &format!("{url}/flags")).await;
    flags.as_object_mut().unwrap().remove("disabled_by");
    flags
}

/// Puts back flags that schemathesis changed through the admin API, so that each later run
/// starts from the state it is about.
async fn restore_flags(http: &reqwest::Client, url: &str, flags: &Value) {
    let response = http
        .put(format!("{url}/admin/flags"))
        .bearer_auth(ADMIN_TOKEN)
        .json(flags)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&flags_now(http, url).await, flags);
}

/// A settled payment's settlement id (the header of its settle answer).
async fn settle_for_id(http: &reqwest::Client, url: &str) -> String {
    let response = http
        .post(format!("{url}/settle"))
        .json(&fresh_body(PAYER_KEY, 1_234))
        .send()
        .await
        .expect("settle");
    let id = response
        .headers()
        .get("x402-settlement-id")
        .and_then(|v| v.to_str().ok())
        .expect("settlement id header")
        .to_owned();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["success"], true, "{answer}");
    id
}

/// The answers this test provokes itself, each checked against what the document promises
/// for it (an `Error` body, `Retry-After` where listed): a rate limit crossed on a second
/// instance, the answers that flags decide, and bodies over the 64 KiB limit.
async fn provoked_answers(
    chain: &x402_facilitator::dev::LocalChain,
    url: &str,
) -> BTreeSet<Answer> {
    let http = reqwest::Client::new();
    let mut out = BTreeSet::new();
    let limited = Process::spawn(chain, &[("RATE_LIMIT_PER_PAYER", "1")], &[]).await;
    settle_for_id(&http, &limited.url).await;
    let response = http
        .post(format!("{}/settle", limited.url))
        .json(&fresh_body(PAYER_KEY, 1_235))
        .send()
        .await
        .expect("settle");
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(wait >= 1);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    out.insert(("POST".into(), "/settle".into(), 429));

    out.extend(flag_answers(&http, url).await);
    out.extend(admin_answers(&http, url).await);
    out.extend(oversized_answers(&http, url).await);
    out
}

/// The answers that flags decide, each met for sure.
async fn flag_answers(http: &reqwest::Client, url: &str) -> BTreeSet<Answer> {
    let mut out = BTreeSet::new();
    // Flags decide two answers: v2's health (200, then 503 with v2 off) and discovery
    // (404 while off). Schemathesis changes flags at random; these are sure to be met.
    let set_flag = |name: &str, on: bool| {
        http.put(format!("{url}/admin/flags"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ name: on }))
            .send()
    };
    for (flag, path, status) in [
        (None, "/health/v2", 200),
        (Some("v2_enabled"), "/health/v2", 503),
        (Some("discovery_enabled"), "/discovery/resources", 404),
    ] {
        if let Some(flag) = flag {
            assert_eq!(set_flag(flag, false).await.unwrap().status(), 200);
        }
        let response = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        let shape = if status == 404 { "error" } else { "checks" };
        assert!(!body[shape].is_null(), "{path}: {body}");
        out.insert(("GET".into(), path.into(), status));
        if let Some(flag) = flag {
            assert_eq!(set_flag(flag, true).await.unwrap().status(), 200);
        }
    }

    out
}

/// A caller key made and revoked, and an admin call with two Authorization headers.
async fn admin_answers(http: &reqwest::Client, url: &str) -> BTreeSet<Answer> {
    let mut out = BTreeSet::new();
    // A caller key made and revoked (schemathesis' own ids are random: it rarely revokes one).
    let made = http
        .post(format!("{url}/admin/api-keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"id": "conformance-key", "rate_limit_per_minute": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    assert!(
        made["key"].as_str().is_some_and(|k| k.starts_with("x402_")),
        "{made}"
    );
    let revoked = http
        .delete(format!("{url}/admin/api-keys/conformance-key"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    out.insert(("POST".into(), "/admin/api-keys".into(), 201));
    out.insert(("DELETE".into(), "/admin/api-keys/{id}".into(), 200));

    // Two Authorization headers on an admin route: 400, whatever they say.
    let response = http
        .get(format!("{url}/admin/api-keys"))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("authorization", "Bearer other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    out.insert(("GET".into(), "/admin/api-keys".into(), 400));

    out
}

/// Bodies over the 64 KiB limit: 413 on every route that reads one.
async fn oversized_answers(http: &reqwest::Client, url: &str) -> BTreeSet<Answer> {
    let mut out = BTreeSet::new();
    let oversized = vec![b' '; 65 * 1024];
    let oversized_at = [
        ("POST", "/verify"),
        ("POST", "/settle"),
        ("PUT", "/admin/flags"),
        ("POST", "/admin/api-keys"),
    ];
    for (method, path) in oversized_at {
        let request = match (method, path.starts_with("/admin")) {
            ("PUT", _) => http.put(format!("{url}{path}")).bearer_auth(ADMIN_TOKEN),
            (_, true) => http.post(format!("{url}{path}")).bearer_auth(ADMIN_TOKEN),
            _ => http.post(format!("{url}{path}")),
        };
        let response = request
            .header("content-type", "application/json")
            .body(oversized.clone())
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON error");
        assert_eq!(status, 413, "{method} {path}: {body}");
        assert!(body["error"].is_string(), "{body}");
        out.insert((method.into(), path.into(), status));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_answer_outside_the_document_and_every_documented_status_is_reached()
{
    let chain = chain_with_token(&[]).await;
    let (database_url, database) = fresh_postgres("openapi").await;
    let env = [
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("DATABASE_URL", database_url.as_str()),
        ("SHUTDOWN_GRACE_SECONDS", "60"),
    ];
    let mut process = Process::spawn(&chain, &env, &[]).await;
    let http = reqwest::Client::new();
    let (_, document) = get_json(&http, &format!("{}/openapi.json", process.url)).await;
    let admin = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let st = Schemathesis::new(&process.url, &document, &admin).await;
    let settled = settle_for_id(&http, &process.url).await;
    let initial_flags = flags_now(&http, &process.url).await;
    let mut seen = BTreeSet::new();

    // Healthy. Schemathesis changes flags through the admin API as it goes, so v2's own
    // health may rightly answer 503; nothing else may.
    seen.extend(st.run("healthy", &config(&["/health/v2"], ""), &[]).await);
    restore_flags(&http, &process.url, &initial_flags).await;
    // A settlement that exists, so the Settlement answer itself is checked.
    let known = config(&[], &format!("[parameters]\n\"path.id\" = \"{settled}\"\n"));
    let include = ["--include-path", "/settlements/{id}"];
    seen.extend(st.run("known-settlement", &known, &include).await);
    // The ledger's database gone: lookups and the deep check answer 503, never a 500.
    let provoked = provoked_answers(&chain, &process.url).await;
    drop_postgres(&database).await;
    let ledger_down = [
        "/settlements/{id}",
        "/discovery/resources",
        "/health/deep",
        "/admin/api-keys",
        "/admin/api-keys/{id}",
    ];
    let args: Vec<&str> = ledger_down
        .iter()
        .flat_map(|path| ["--include-path", path])
        .collect();
    seen.extend(
        st.run("ledger-down", &config(&ledger_down, ""), &args)
            .await,
    );
    // Draining: readiness answers 503 while the listener still serves.
    process.signal("TERM");
    process
        .wait_log(|l| l["message"] == "received shutdown signal")
        .await;
    let args = ["--include-path", "/health/ready"];
    seen.extend(
        st.run("draining", &config(&["/health/ready"], ""), &args)
            .await,
    );
    process.kill().await;

    let expected = documented(&document);
    let outside: Vec<&Answer> = provoked.difference(&expected).collect();
    assert!(
        outside.is_empty(),
        "provoked answers the document does not list: {outside:?}"
    );
    seen.extend(provoked);
    let missing: Vec<&Answer> = expected.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented but never answered: {missing:?}\nanswered: {seen:?}"
    );
}

/// A v2 verify body of a fresh payment of 1,000 to `pay_to`.
fn fresh_body_to(pay_to: &str) -> Value {
    let mut body = fresh_body(PAYER_KEY, 1_000);
    let authorization = sign_authorization(PAYER_KEY, pay_to, 1_000, random_nonce());
    body["paymentPayload"]["payload"] = authorization;
    body["paymentPayload"]["accepted"]["payTo"] = serde_json::json!(pay_to);
    body["paymentRequirements"]["payTo"] = serde_json::json!(pay_to);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_caller_keys_required_the_key_answers_are_documented_and_met() {
    let chain = chain_with_token(&[]).await;
    let env = [("API_KEYS", "required"), ("ADMIN_TOKEN", ADMIN_TOKEN)];
    let process = Process::spawn(&chain, &env, &[]).await;
    let http = reqwest::Client::new();
    // A key for one payee only, and 20 requests a minute.
    let made: Value = http
        .post(format!("{}/admin/api-keys", process.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"id": "conformance", "pay_to": [PAY_TO], "rate_limit_per_minute": 20}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = made["key"].as_str().expect("a key");
    let (_, document) = get_json(&http, &format!("{}/openapi.json", process.url)).await;
    assert_eq!(
        document["paths"]["/settle"]["post"]["security"][1],
        serde_json::json!({"apiKey": []})
    );
    let st = Schemathesis::new(&process.url, &document, &format!("X-API-Key: {key}")).await;
    let args = ["--include-path", "/verify", "--include-path", "/settle"];
    let mut seen = st.run("keyed", &config(&[], ""), &args).await;
    // Schemathesis' payments are refused before the key's policy is asked (no network we
    // serve); real ones meet it: another payee (403), then past the rate (429).
    let keyed = |body: Value, path: &str| {
        http.post(format!("{}{path}", process.url))
            .header("x-api-key", key)
            .json(&body)
            .send()
    };
    let stranger = keyed(fresh_body_to(DEV_ACCOUNTS_3), "/verify")
        .await
        .unwrap();
    assert_eq!(stranger.status(), 403);
    let refusal: Value = stranger.json().await.unwrap();
    assert_eq!(
        refusal["invalidReason"], "invalid_payment_requirements",
        "{refusal}"
    );
    seen.insert(("POST".into(), "/verify".into(), 403));
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let response = keyed(fresh_body_to(PAY_TO), "/verify").await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    seen.insert(("POST".into(), "/verify".into(), 429));
    // A body over the limit and one not sent as JSON, with the key.
    for (content_type, body, status) in [
        ("application/json", vec![b' '; 65 * 1024], 413),
        ("text/plain", b"{}".to_vec(), 415),
    ] {
        let response = http
            .post(format!("{}/verify", process.url))
            .header("x-api-key", key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        seen.insert(("POST".into(), "/verify".into(), status));
    }
    let keyed_answers: BTreeSet<Answer> = documented(&document)
        .into_iter()
        .filter(|(_, path, _)| path == "/verify")
        .collect();
    let missing: Vec<&Answer> = keyed_answers.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented but never answered: {missing:?}"
    );
}
