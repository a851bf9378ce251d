//! What a new user meets first, against the real binary: the README's examples run against
//! the demo (every `curl -s localhost:8080/...` line is sent, and the answer must have the
//! shape the README shows under it: the same keys, and the same values where the README
//! does not abbreviate them with `...`), the command line, the demo's settings, and
//! configuration errors that name the fix before anything is written to disk.

mod support;

use serde_json::Value;
use support::{get_json, repo_dir};

/// One example: method and path, the body file, and the answer the README shows.
struct Example {
    path: String,
    body: Option<String>,
    shown: Value,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let lines: Vec<&str> = readme.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("curl -s localhost:8080") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let path = words.next().unwrap_or_default().to_owned();
        let body = rest
            .split_whitespace()
            .find_map(|w| w.strip_prefix('@'))
            .map(str::to_owned);
        let shown: String = lines[i + 1..]
            .iter()
            .take_while(|l| l.starts_with("# ") || l.starts_with("#  "))
            .map(|l| l.trim_start_matches('#').trim())
            .collect();
        let shown = serde_json::from_str(&shown)
            .unwrap_or_else(|e| panic!("README answer under {path} is not JSON: {e}: {shown}"));
        out.push(Example { path, body, shown });
    }
    out
}

/// `actual` has the shape of `shown`: objects with the same keys, arrays of the same
/// length, and equal scalars unless the README abbreviates a string with `...` (then the
/// part before it must match), or the value is the build's own (`build`, `version`).
fn same_shape(shown: &Value, actual: &Value, at: &str) {
    match (shown, actual) {
        (Value::Object(a), Value::Object(b)) => {
            let mut left: Vec<_> = a.keys().collect();
            let mut right: Vec<_> = b.keys().collect();
            left.sort();
            right.sort();
            assert_eq!(left, right, "keys at {at}: README {shown} vs {actual}");
            for (key, value) in a {
                same_shape(value, &b[key], &format!("{at}.{key}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "length at {at}: {shown} vs {actual}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_shape(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::String(a), Value::String(b)) if a.contains("...") => {
            let prefix = a.split("...").next().unwrap_or_default();
            assert!(
                b.starts_with(prefix),
                "{at}: {b:?} does not start {prefix:?}"
            );
        }
        (Value::String(_), Value::String(_))
            if at.ends_with(".build") || at.ends_with(".version") => {}
        _ => assert_eq!(shown, actual, "value at {at}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_answer_as_shown() {
    use tokio::io::AsyncBufReadExt;
    let root = repo_dir();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 4, "the README shows its examples");

    let scratch = support::TempDir::new("readme");
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402-facilitator"))
        .args(["dev", "--port", "0"])
        .current_dir(&scratch.0)
        .env(
            "ANVIL_BIN",
            x402_facilitator::dev::find_anvil().expect("anvil installed"),
        )
        .env_remove("ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo starts");
    let mut lines = tokio::io::BufReader::new(demo.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.trim().strip_prefix("facilitator : ") {
                return url.to_owned();
            }
        }
        panic!("the demo printed no URL");
    })
    .await
    .expect("the demo prints its URL");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let http = reqwest::Client::new();
    for example in &examples {
        let target = format!("{url}{}", example.path);
        let request = match &example.body {
            Some(file) => http
                .post(&target)
                .header("content-type", "application/json")
                .body(std::fs::read(root.join(file)).unwrap()),
            None => http.get(&target),
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        same_shape(&example.shown, &answer, &example.path);
    }
    println!("{} README examples answered as shown", examples.len());
    stop(demo).await;
}

/// Stops the demo as a user does (SIGTERM): it shuts down and removes its ledger file.
async fn stop(mut demo: tokio::process::Child) {
    let pid = demo.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-s", "TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exited = tokio::time::timeout(std::time::Duration::from_secs(30), demo.wait())
        .await
        .expect("the demo stops on SIGTERM")
        .expect("exit status");
    assert!(exited.success(), "{exited}");
}

fn binary() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402-facilitator"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_and_version_answer_on_stdout_with_success() {
    let help = binary().arg("--help").output().await.unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("docs/configuration.md"), "{text}");
    assert!(text.contains("dev"), "{text}");
    let version = binary().arg("--version").output().await.unwrap();
    assert_eq!(version.status.code(), Some(0));
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(
        text.starts_with(&format!("x402-facilitator {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let wrong = binary().arg("--frobnicate").output().await.unwrap();
    assert_eq!(
        wrong.status.code(),
        Some(2),
        "an unknown argument is still an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_name_the_fix_before_anything_is_written() {
    let dead = support::free_port();
    let cases = [
        (
            vec![("RPC_URL_BASE_SEPOLIA", "http://127.0.0.1:1".to_owned()), ("EVM_PRIVATE_KEY", "0x1234".to_owned())],
            "invalid configuration: EVM_PRIVATE_KEY: key #1 for eip155:84532 is not a valid".to_owned(),
            vec!["0x1234"],
        ),
        (
            vec![("RPC_URL_NEAR", "http://127.0.0.1:1".to_owned())],
            "invalid configuration: RPC_URL_NEAR: no signer key: set EVM_PRIVATE_KEY (EVM), SVM_PRIVATE_KEY (SVM), NEAR_PRIVATE_KEY (NEAR)".to_owned(),
            vec![],
        ),
        (
            vec![("RPC_URL_NEAR", "http://127.0.0.1:1".to_owned()), ("NEAR_PRIVATE_KEY", "ed25519:3xNotAKey".to_owned())],
            "invalid configuration: NEAR_PRIVATE_KEY: key #1 for near:mainnet is not a valid Near signer key".to_owned(),
            vec!["3xNotAKey"],
        ),
        (
            vec![("RPC_URL_STELLAR_TESTNET", "http://127.0.0.1:1".to_owned()), ("STELLAR_PRIVATE_KEY", "SNOTASECRETSEEDATALL".to_owned())],
            "invalid configuration: STELLAR_PRIVATE_KEY: key #1 for stellar:testnet is not a valid Stellar signer key".to_owned(),
            vec!["SNOTASECRETSEEDATALL"],
        ),
        (
            vec![
                ("RPC_URL_BASE_SEPOLIA", "http://127.0.0.1:1".to_owned()),
                ("EVM_PRIVATE_KEY", x402_facilitator::dev::DEV_ACCOUNTS[0].1.to_owned()),
                ("DATABASE_URL", format!("postgres://x402:hunter2secret@127.0.0.1:{dead}/ledger")),
            ],
            format!("PostgreSQL at 127.0.0.1:{dead}/ledger"),
            vec!["hunter2secret"],
        ),
    ];
    for (env, said, secrets) in cases {
        let dir = support::TempDir::new("first-hour-config");
        let mut command = binary();
        command.current_dir(&dir.0);
        for (key, value) in &env {
            command.env(key, value);
        }
        let output = command.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(&said), "{env:?}: {stderr}");
        for secret in secrets {
            assert!(!stderr.contains(secret), "{stderr}");
        }
        let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
        assert!(left.is_empty(), "{env:?} left {left:?} behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_takes_port_host_admin_token_and_log_format_like_production() {
    use tokio::io::AsyncBufReadExt;
    const TOKEN: &str = "demo-4f1c9a7e2b6d08355e9c";
    let port = support::free_port();
    let scratch = support::TempDir::new("first-hour-demo");
    let mut demo = binary()
        .arg("dev")
        .current_dir(&scratch.0)
        .env(
            "ANVIL_BIN",
            x402_facilitator::dev::find_anvil().expect("anvil installed"),
        )
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("ADMIN_TOKEN", TOKEN)
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("\"network ready\"");
            printed.push(line);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(ready.is_ok(), "{printed:#?}");
    let all = printed.join("\n");
    assert!(
        all.contains(&format!("facilitator : http://127.0.0.1:{port}")),
        "{all}"
    );
    assert!(
        all.contains("/admin/flags"),
        "the demo says how to try the admin API: {all}"
    );
    let json_lines = printed.iter().filter(|l| l.starts_with('{')).count();
    assert!(json_lines >= 2, "log lines are JSON: {all}");
    let http = reqwest::Client::new();
    let admin = format!("http://127.0.0.1:{port}/admin/flags");
    let changed = http
        .put(&admin)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"shadow_v2_enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let (_, health) = get_json(&http, &format!("http://127.0.0.1:{port}/health")).await;
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["build"].as_str().is_some_and(|b| !b.is_empty()));
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("# HELP x402_build_info"), "{metrics}");
    assert!(
        metrics.contains("# HELP x402_feature_flag_enabled"),
        "{metrics}"
    );
    let families = metrics.lines().filter(|l| l.starts_with("# TYPE")).count();
    let helped = metrics.lines().filter(|l| l.starts_with("# HELP")).count();
    assert_eq!(
        families, helped,
        "every metric family has its HELP line: {metrics}"
    );
    // The port is taken now: a second demo says how to get another.
    let second = binary()
        .arg("dev")
        .current_dir(&scratch.0)
        .env("ANVIL_BIN", x402_facilitator::dev::find_anvil().unwrap())
        .env("PORT", port.to_string())
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_ne!(second.status.code(), Some(0));
    assert!(said.contains("choose another with PORT"), "{said}");
    stop(demo).await;
}
