//! The release material in `deploy/` against real programs: haproxy in front of two
//! facilitator instances (blue, green) on one PostgreSQL ledger and anvil, moved by
//! `deploy/bin/x402-deploy` while clients keep paying; the alert rules under `promtool`
//! and a real Prometheus scraping a facilitator; the systemd unit under `systemd-analyze`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use support::*;

mod deploy_stage;
use deploy_stage::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_then_promote_through_haproxy_loses_no_settlement() {
    let Stage {
        chain,
        database_url,
        database,
        green_port,
        mut blue,
        lb,
        http,
        mark,
        load,
    } = Stage::set("deploy_promote").await;

    // The new release starts beside the old one and passes the gate.
    let green = spawn(&chain, &instance_env(&database_url, green_port)).await;
    let verified = lb.deploy(&["verify", &green.url]).await;
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("deep health ok"),
        "{}",
        text(&verified)
    );
    lb.wait_health("green", "UP").await;
    assert_eq!(
        settlements(&http, &green.url).await,
        0.0,
        "no traffic before the canary"
    );

    // Canary: green takes a share, and a short watch finds it healthy.
    let canary = lb.deploy(&["canary", "green", "30"]).await;
    assert!(canary.status.success(), "{}", text(&canary));
    assert_eq!(lb.slot("green").await.1, "30");
    assert_eq!(lb.slot("blue").await.1, "70");
    wait_settlements(&http, &green.url, 5.0, "green taking canary traffic").await;
    let watch = lb.deploy(&["watch", "green", &green.url, "2", "0"]).await;
    assert!(watch.status.success(), "{}", text(&watch));

    // Promote: every new request goes to green; blue only finishes what it holds.
    let promote = lb.deploy(&["promote", "green"]).await;
    assert!(promote.status.success(), "{}", text(&promote));
    let blue_at_promote = settlements(&http, &blue.url).await;
    let green_at_promote = settlements(&http, &green.url).await;
    wait_settlements(
        &http,
        &green.url,
        green_at_promote + 30.0,
        "green carrying everything",
    )
    .await;
    let blue_after = settlements(&http, &blue.url).await;
    assert!(
        blue_after - blue_at_promote <= 3.0,
        "blue got new requests after the promote: {blue_at_promote} -> {blue_after}"
    );
    let (_, _, state) = lb.slot("green").await;
    assert_eq!(state, "stable=green previous=blue");

    // The old release drains and exits cleanly while green serves.
    blue.signal("TERM");
    let exit = blue.wait_exit(60).await;
    assert!(exit.success(), "blue exit {exit}");
    lb.wait_health("blue", "DOWN").await;
    wait_settlements(
        &http,
        &green.url,
        settlements(&http, &green.url).await + 10.0,
        "green after blue stopped",
    )
    .await;

    let answers = load.finish().await;
    let settled = assert_all_settled(&answers, &[("blue", &blue), ("green", &green)]);
    mark.assert_moved(&chain, settled, VALUE).await;
    println!("canary 30% then promote: {settled} settlements through haproxy, 0 failed");
    drop(green);
    drop_postgres(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_is_refused_by_the_gate_and_rolled_back_by_the_watch() {
    let Stage {
        chain,
        database_url,
        database,
        green_port,
        blue,
        lb,
        http,
        mark,
        load,
    } = Stage::set("deploy_rollback").await;

    // A bad release: its chain endpoint does not answer. Ready, but deep health fails.
    let mut env = instance_env(&database_url, green_port);
    env.push((
        "RPC_URL_BASE_SEPOLIA",
        format!("http://127.0.0.1:{}", free_port()),
    ));
    // Its first failure trips its breaker, so the watch sees the trip (not only a count).
    env.push(("BREAKER_THRESHOLD", "1".to_owned()));
    // The load pays from one payer; the default asks for failures from two.
    env.push(("BREAKER_MIN_PAYERS", "1".to_owned()));
    let green = spawn(&chain, &env).await;
    let verified = lb.deploy(&["verify", &green.url]).await;
    assert_eq!(verified.status.code(), Some(1), "{}", text(&verified));
    assert!(
        String::from_utf8_lossy(&verified.stderr).contains("/health/deep answered 503"),
        "{}",
        text(&verified)
    );

    // Pushed anyway: its settlements fail, its breaker trips, the watch moves traffic back.
    lb.wait_health("green", "UP").await;
    let canary = lb.deploy(&["canary", "green", "50"]).await;
    assert!(canary.status.success(), "{}", text(&canary));
    let watch = lb.deploy(&["watch", "green", &green.url, "60", "2"]).await;
    assert_eq!(watch.status.code(), Some(3), "{}", text(&watch));
    let said = String::from_utf8_lossy(&watch.stderr).into_owned();
    assert!(said.contains("rolling back"), "{}", text(&watch));
    let (health, weight, state) = lb.slot("green").await;
    assert_eq!((health.as_str(), weight.as_str()), ("UP", "0"));
    assert_eq!(lb.slot("blue").await.1, "100");
    assert_eq!(state, "stable=blue previous=none");
    let green_before = requests(&http, &green.url).await;

    // The trip is shared through the PostgreSQL ledger: blue refuses v2 settles too until
    // an operator turns them back on, which the watch said how to do.
    assert!(said.contains("breaker tripped"), "{said}");
    assert!(said.contains("enable-v2-settle"), "{said}");
    until(10, "the shared trip to reach blue", || async {
        (v2_settle_flag(&http, &blue.url).await == 0.0).then_some(())
    })
    .await;
    // After the rollback green gets nothing new; blue answers the load (refusing v2
    // settles while the trip holds).
    let blue_requests = requests(&http, &blue.url).await;
    until(60, "blue answering the load after the rollback", || async {
        (requests(&http, &blue.url).await >= blue_requests + 20.0).then_some(())
    })
    .await;
    let green_after = requests(&http, &green.url).await;
    assert!(
        green_after - green_before <= 3.0,
        "green got new requests after the rollback: {green_before} -> {green_after}"
    );
    // What green counted is final now (it gets nothing new): read it before it stops.
    let green_metrics = get_text(&http, &format!("{}/metrics", green.url)).await.1;
    // The rolled-back release is taken out of service before v2 settle is turned back on:
    // a request reaching it after the shared flag came back would trip the fleet again.
    let mut green = green;
    green.signal("TERM");
    assert!(green.wait_exit(30).await.success());
    let enable = lb.deploy(&["enable-v2-settle", &blue.url]).await;
    assert!(enable.status.success(), "{}", text(&enable));
    assert_eq!(v2_settle_flag(&http, &blue.url).await, 1.0);
    settles_again(&http, &blue).await;
    // Nothing left to undo.
    let again = lb.deploy(&["rollback"]).await;
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));

    let answers = load.finish().await;
    let (succeeded, unavailable, refused) = canary_failures_were_ours(&answers, &green_metrics);
    mark.assert_moved(&chain, succeeded, VALUE).await;
    println!(
        "bad canary: {unavailable} refused rpc_unavailable, {} feature_disabled after the trip, nothing sent; {succeeded} settled",
        refused - unavailable
    );
    drop(blue);
    drop_postgres(&database).await;
}

/// `instance` settles 20 more payments of the load within 60 s (v2 settle is back on).
async fn settles_again(http: &reqwest::Client, instance: &Process) {
    let now = successes(http, &instance.url).await;
    let settling = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while successes(http, &instance.url).await < now + 20.0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    if settling.is_err() {
        // What it answered last (pending, refused, nothing at all) says where to look.
        let logs = instance.logs();
        let answered: Vec<&Value> = logs
            .iter()
            .filter(|l| l["endpoint"] == "settle")
            .rev()
            .take(10)
            .collect();
        panic!(
            "no 20 more settled within 60 s after v2 settle was enabled again (v2_settle_enabled={}); its warnings: {:#?}; its last settle lines: {answered:#?}",
            v2_settle_flag(http, &instance.url).await,
            instance.warnings()
        );
    }
}

/// What the load met during the bad canary: every failure ours and said as ours before any
/// broadcast (`rpc_unavailable` at green, `feature_disabled` once the trip was shared), each
/// counted by green by reason. Returns (settled, `rpc_unavailable`, all refused).
fn canary_failures_were_ours(answers: &[Value], green_metrics: &str) -> (u64, usize, usize) {
    let succeeded = answers.iter().filter(|a| a["success"] == true).count() as u64;
    let failed: Vec<&Value> = answers.iter().filter(|a| a["success"] != true).collect();
    let unavailable = failed
        .iter()
        .filter(|a| a["errorReason"] == "rpc_unavailable")
        .count();
    assert!(unavailable >= 1, "the canary failed some payments");
    assert_eq!(
        metric(
            green_metrics,
            "x402_settlement_failures_total",
            &[("reason", "rpc_unavailable"), ("x402_version", "2")]
        ),
        unavailable as f64
    );
    for answer in &failed {
        assert!(
            answer["errorReason"] == "rpc_unavailable"
                || answer["errorReason"] == "feature_disabled",
            "{answer}"
        );
        assert_eq!(answer["transaction"], "", "{answer}");
    }
    (succeeded, unavailable, failed.len())
}

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (scripts/test.sh installs it): {e}"))
}

#[test]
fn alert_rules_pass_promtool_checks_and_unit_tests() {
    let dir = deploy_dir().join("monitoring");
    let check = run("promtool", &["check", "rules", "alerts.yml"], &dir);
    assert!(check.status.success(), "{}", text(&check));
    let tests = run("promtool", &["test", "rules", "alerts.test.yml"], &dir);
    assert!(tests.status.success(), "{}", text(&tests));
}

/// Every `x402_*` name in the monitoring files, without histogram suffixes.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("x402_") {
        let start = i + at;
        let preceded = start > 0 && (bytes[start - 1].is_ascii_alphanumeric());
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| start + n);
        let name = &text[start..end];
        if !preceded && !name.starts_with("x402_version") {
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
            names.push(name.to_owned());
        }
        i = end;
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn monitoring_reads_only_documented_metrics() {
    let operations = std::fs::read_to_string(repo_dir().join("docs/operations.md")).unwrap();
    let documented: Vec<String> = operations
        .lines()
        .filter(|l| l.starts_with("| `x402_"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect();
    assert!(documented.len() >= 10, "{documented:?}");
    for file in ["monitoring/alerts.yml", "monitoring/dashboard.json"] {
        let content = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
        let used = metric_names(&content);
        assert!(!used.is_empty(), "{file}");
        for name in used {
            assert!(
                documented.contains(&name),
                "{file} reads {name}, which docs/operations.md does not list"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_facilitator_and_accepts_every_dashboard_and_alert_query() {
    let chain = chain_with_token(&[]).await;
    let facilitator = Process::spawn(&chain, &[], &[]).await;
    let http = reqwest::Client::new();
    // One settlement, so the counters the panels read exist.
    let (status, settled) = post_json(
        &http,
        &format!("{}/settle", facilitator.url),
        &v2_body(
            sign_authorization(PAYER_KEY, PAY_TO, VALUE, random_nonce()),
            &VALUE.to_string(),
        ),
    )
    .await;
    assert_eq!((status, settled["success"].clone()), (200, json!(true)));

    let dir = TempDir::new("deploy-prometheus");
    let target = facilitator.url.trim_start_matches("http://");
    std::fs::write(
        dir.0.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: x402-facilitator\n    static_configs:\n      - targets: ['{target}']\n",
            deploy_dir().join("monitoring/alerts.yml").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = tokio::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.0.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus runs (scripts/test.sh installs it)");
    let api = format!("http://127.0.0.1:{port}/api/v1");
    let query = |expr: String| {
        let (http, api) = (http.clone(), api.clone());
        async move {
            let url = reqwest::Url::parse_with_params(&format!("{api}/query"), [("query", &expr)])
                .ok()?;
            let response = http.get(url).send().await.ok()?;
            response.json::<Value>().await.ok()
        }
    };
    // The scrape reached the facilitator and its settlement counter is stored.
    until(60, "prometheus to scrape the facilitator", || async {
        let answer = query(r#"sum(x402_settlements_total{result="success"})"#.to_owned()).await?;
        (answer["data"]["result"][0]["value"][1] == "1").then_some(())
    })
    .await;
    // The rules loaded.
    let (_, rules) = get_text(&http, &format!("{api}/rules")).await;
    let rules: Value = serde_json::from_str(&rules).unwrap();
    assert_eq!(
        rules["data"]["groups"][0]["rules"].as_array().map(Vec::len),
        Some(11),
        "{rules}"
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("monitoring/dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(exprs.len() >= 12);
    for expr in exprs {
        let answer = query(expr.clone()).await.expect("prometheus answers");
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze() {
    let dir = TempDir::new("deploy-systemd");
    let unit =
        std::fs::read_to_string(deploy_dir().join("systemd/x402-facilitator@.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/x402/%i/x402-facilitator serve"));
    // The binary path of the slot must exist for the check; point it at one that does.
    let unit = unit.replace(
        "/opt/x402/%i/x402-facilitator",
        env!("CARGO_BIN_EXE_x402-facilitator"),
    );
    let path = dir.0.join("x402-facilitator@blue.service");
    std::fs::write(&path, unit).unwrap();
    let out = run(
        "systemd-analyze",
        &["verify", "--man=no", &path.display().to_string()],
        &dir.0,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze complained: {}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_command_serves_with_its_ledger_on_the_volume_and_logs_callers() {
    // The image is not built here (no registry for its base images); what it runs is.
    let dockerfile = std::fs::read_to_string(deploy_dir().join("container/Dockerfile")).unwrap();
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/x402-facilitator", "serve"]"#));
    assert!(dockerfile.contains("cargo build --release --locked -p x402-facilitator"));
    assert!(dockerfile.contains(r#"curl -fsS "http://127.0.0.1:${PORT}/health/ready""#));
    let database_url = dockerfile
        .split_whitespace()
        .find_map(|w| w.strip_prefix("DATABASE_URL="))
        .expect("DATABASE_URL in the image")
        .to_owned();
    let volume = "/var/lib/x402/";
    assert!(
        database_url.starts_with(&format!("sqlite://{volume}")),
        "{database_url}"
    );
    // The same URL with the volume moved to a temporary directory.
    let dir = TempDir::new("deploy-image");
    let here = database_url.replace(volume, &format!("{}/", dir.0.display()));
    let chain = chain_with_token(&[]).await;
    let facilitator = Process::spawn(&chain, &[("DATABASE_URL", &here)], &["serve"]).await;
    let http = reqwest::Client::new();
    let (status, _) = get_text(&http, &format!("{}/health/ready", facilitator.url)).await;
    assert_eq!(status, 200);
    assert!(
        dir.0.join("x402-ledger.db").exists(),
        "the ledger is created on the volume"
    );
    // Request log lines name the caller, so v1 holdouts can be found for the migration.
    let body = v1_body(
        sign_authorization(PAYER_KEY, PAY_TO, VALUE, random_nonce()),
        &VALUE.to_string(),
    );
    let answer = http
        .post(format!("{}/verify", facilitator.url))
        .header("user-agent", "resource-server/1.2 (shop)")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let line = facilitator
        .wait_log(|l| l["message"] == "Verification succeeded")
        .await;
    assert_eq!(line["user_agent"], "resource-server/1.2 (shop)");
    assert_eq!(line["x402_version"], "1");
}

#[test]
fn the_deploy_tool_refuses_clearly_without_touching_anything() {
    let state = TempDir::new("deploy-refusals");
    let tool = |args: &[&str]| {
        std::process::Command::new(deploy_dir().join("bin/x402-deploy"))
            .args(args)
            .env("X402_LB_ADMIN", format!("127.0.0.1:{}", free_port()))
            .env("X402_DEPLOY_STATE", state.0.join("state"))
            .env_remove("X402_ADMIN_TOKEN")
            .output()
            .expect("x402-deploy runs")
    };
    for (args, code, says) in [
        (&["status"][..], 1, "runtime API not reachable"),
        (&["promote", "green"][..], 1, "runtime API not reachable"),
        (
            &["canary", "purple", "10"][..],
            1,
            "slot must be blue or green",
        ),
        (&["canary", "green", "101"][..], 1, "percent must be 0-100"),
        (
            &["enable-v2-settle", "http://127.0.0.1:1"][..],
            1,
            "X402_ADMIN_TOKEN",
        ),
        (&[][..], 2, "x402-deploy status"),
        (&["watch", "green"][..], 2, "x402-deploy watch"),
    ] {
        let out = tool(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(!state.0.join("state").exists(), "no state written");
}
