//! The stage of the release tests: haproxy with `deploy/haproxy/haproxy.cfg` in front of
//! two facilitator instances on one PostgreSQL ledger and anvil, and clients paying through it.

use super::*;

pub const VALUE: u64 = 600;
/// The instances' `ADMIN_TOKEN`, given to `x402-deploy enable-v2-settle`.
pub const ADMIN_TOKEN: &str = "deploy-test-4f1c9a7e2b6d0835";

pub fn deploy_dir() -> PathBuf {
    repo_dir().join("deploy")
}

/// haproxy with `deploy/haproxy/haproxy.cfg`, and the deploy tool pointed at it.
pub struct Balancer {
    _child: tokio::process::Child,
    pub url: String,
    pub admin: String,
    pub state: TempDir,
}

impl Balancer {
    pub async fn start(blue_port: u16, green_port: u16) -> Balancer {
        let (port, admin_port) = (free_port(), free_port());
        let admin = format!("127.0.0.1:{admin_port}");
        let child = tokio::process::Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(deploy_dir().join("haproxy/haproxy.cfg"))
            .env("X402_LB_BIND", format!("127.0.0.1:{port}"))
            .env("X402_LB_ADMIN", &admin)
            .env("X402_BLUE_ADDR", format!("127.0.0.1:{blue_port}"))
            .env("X402_GREEN_ADDR", format!("127.0.0.1:{green_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy runs (scripts/test.sh installs it)");
        let balancer = Balancer {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
            admin,
            state: TempDir::new("deploy-state"),
        };
        balancer.wait_health("blue", "UP").await;
        balancer
    }

    /// Runs `x402-deploy ARGS` against this balancer.
    pub async fn deploy(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(deploy_dir().join("bin/x402-deploy"))
            .args(args)
            .env("X402_LB_ADMIN", &self.admin)
            .env("X402_DEPLOY_STATE", self.state.0.join("state"))
            .env("X402_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .await
            .expect("x402-deploy runs")
    }

    /// `x402-deploy status` as (health, weight) of one slot, and the state line.
    pub async fn slot(&self, color: &str) -> (String, String, String) {
        let out = self.deploy(&["status"]).await;
        assert!(out.status.success(), "status: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let state = stdout.lines().next().unwrap_or_default().to_owned();
        let line = stdout
            .lines()
            .find(|l| l.starts_with(color))
            .unwrap_or_default()
            .to_owned();
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")).map(str::to_owned))
                .unwrap_or_default()
        };
        (field("health"), field("weight"), state)
    }

    pub async fn wait_health(&self, color: &str, health: &str) {
        until(30, &format!("{color} {health} in haproxy"), || async {
            let out = self.deploy(&["status"]).await;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            stdout
                .lines()
                .any(|l| l.starts_with(color) && l.contains(&format!("health={health}")))
                .then_some(())
        })
        .await;
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Clients paying through the balancer until stopped; every answer is kept.
pub struct Load {
    pub stop: Arc<AtomicBool>,
    pub clients: Vec<tokio::task::JoinHandle<Vec<Value>>>,
}

impl Load {
    pub fn start(url: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::new();
        let clients = (0..clients)
            .map(|_| {
                let (stop, http, url) = (stop.clone(), http.clone(), format!("{url}/settle"));
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        answers.push(pay_once(&http, &url, VALUE).await);
                    }
                    answers
                })
            })
            .collect();
        Load { stop, clients }
    }

    pub async fn finish(self) -> Vec<Value> {
        self.stop.store(true, Ordering::SeqCst);
        let mut answers = Vec::new();
        for client in self.clients {
            answers.extend(client.await.expect("client task"));
        }
        answers
    }
}

pub async fn settlements(http: &reqwest::Client, instance: &str) -> f64 {
    let (_, metrics) = get_text(http, &format!("{instance}/metrics")).await;
    metric(&metrics, "x402_settlements_total", &[])
}

pub async fn successes(http: &reqwest::Client, instance: &str) -> f64 {
    let (_, metrics) = get_text(http, &format!("{instance}/metrics")).await;
    metric(&metrics, "x402_settlements_total", &[("result", "success")])
}

pub async fn requests(http: &reqwest::Client, instance: &str) -> f64 {
    let (_, metrics) = get_text(http, &format!("{instance}/metrics")).await;
    metric(&metrics, "x402_requests_total", &[])
}

pub async fn v2_settle_flag(http: &reqwest::Client, instance: &str) -> f64 {
    let (_, metrics) = get_text(http, &format!("{instance}/metrics")).await;
    metric(
        &metrics,
        "x402_feature_flag_enabled",
        &[("flag", "v2_settle_enabled")],
    )
}

pub async fn wait_settlements(http: &reqwest::Client, instance: &str, at_least: f64, what: &str) {
    until(60, what, || async {
        (settlements(http, instance).await >= at_least).then_some(())
    })
    .await;
}

pub fn instance_env(database_url: &str, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("PORT", port.to_string()),
        ("SHUTDOWN_GRACE_SECONDS", "2".to_owned()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
    ]
}

pub async fn spawn(
    chain: &x402_facilitator::dev::LocalChain,
    env: &[(&'static str, String)],
) -> Process {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Process::spawn(chain, &pairs, &[]).await
}

/// Blue serving behind haproxy on a fresh PostgreSQL ledger, clients paying through it;
/// green's port is reserved for the release.
pub struct Stage {
    pub chain: x402_facilitator::dev::LocalChain,
    pub database_url: String,
    pub database: String,
    pub green_port: u16,
    pub blue: Process,
    pub lb: Balancer,
    pub http: reqwest::Client,
    pub mark: ChainMark,
    pub load: Load,
}

impl Stage {
    pub async fn set(tag: &str) -> Stage {
        let chain = chain_with_token(&[]).await;
        let (database_url, database) = fresh_postgres(tag).await;
        let (blue_port, green_port) = (free_port(), free_port());
        let blue = spawn(&chain, &instance_env(&database_url, blue_port)).await;
        let lb = Balancer::start(blue_port, green_port).await;
        let http = reqwest::Client::new();
        let mark = ChainMark::take(&chain).await;
        let load = Load::start(&lb.url, 3);
        wait_settlements(&http, &blue.url, 10.0, "blue serving through haproxy").await;
        Stage {
            chain,
            database_url,
            database,
            green_port,
            blue,
            lb,
            http,
            mark,
            load,
        }
    }
}
