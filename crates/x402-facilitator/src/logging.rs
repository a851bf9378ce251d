//! Structured logs: JSON lines in production, readable lines on a terminal.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// HTTP client and RPC transport crates print their endpoint URL (and so an API key) in
/// debug spans and events: they are held at `warn` whatever `RUST_LOG` says.
const QUIET_TARGETS: &[&str] = &[
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
    "alloy_transport_http",
    "alloy_transport",
    "alloy_rpc_client",
    "alloy_provider",
];

/// Installs the global subscriber; `RUST_LOG` filters (default `info`). Every line goes
/// through [`crate::redact`] on its way to standard output.
pub fn init(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for target in QUIET_TARGETS {
        if let Ok(directive) = format!("{target}=warn").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::ScrubbedStdout::new)
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
