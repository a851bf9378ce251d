//! Records the commit the binary is built from (`X402_BUILD_COMMIT` overrides it; outside a
//! git checkout it is `unknown`), for `--version`, `/health` and `x402_build_info`.

fn main() {
    println!("cargo:rerun-if-env-changed=X402_BUILD_COMMIT");
    let commit = std::env::var("X402_BUILD_COMMIT").ok().unwrap_or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    });
    for watched in ["../../.git/HEAD", "../../.git/refs/heads"] {
        if std::path::Path::new(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
    println!("cargo:rustc-env=X402_BUILD_COMMIT={commit}");
}
