//! The last line of defence for secrets: every configured secret (RPC URLs beyond scheme,
//! host and port; the database password; signer keys; the admin token) is known at start,
//! and every log line and every answer text passes through [`scrub`] before it leaves the
//! process. Code is still written never to print them; this catches what a library prints
//! (an HTTP client's error quoting its URL, a debug span with the endpoint).

use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;

use serde_json::Value;

use crate::config::Config;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Path segments and query values shorter than this stay (`/v2`, `?chain=1`); the whole
/// path and query are always redacted.
const MIN_PART: usize = 5;

static FRAGMENTS: OnceLock<Vec<String>> = OnceLock::new();

/// The parts of a URL that may carry a credential: user, password, path, query and
/// fragment, each whole and in pieces.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(parsed) = reqwest::Url::parse(url) else {
        // Not a URL (configuration refuses those): the whole text is the secret.
        out.push(url.to_owned());
        return out;
    };
    let user = parsed.username();
    if !user.is_empty() {
        out.push(user.to_owned());
    }
    if let Some(password) = parsed.password() {
        out.push(password.to_owned());
    }
    let path = parsed.path();
    if path.len() > 1 {
        out.push(path.to_owned());
        out.push(path.trim_matches('/').to_owned());
        out.extend(path.split('/').map(str::to_owned));
    }
    if let Some(query) = parsed.query() {
        out.push(query.to_owned());
        for pair in query.split('&') {
            out.push(pair.to_owned());
            if let Some((_, value)) = pair.split_once('=') {
                out.push(value.to_owned());
            }
        }
    }
    if let Some(fragment) = parsed.fragment() {
        out.push(fragment.to_owned());
    }
    // Percent-decoded spellings too: a library may print either.
    let decoded: Vec<String> = out
        .iter()
        .filter_map(|p| percent_decode(p))
        .filter(|d| !out.contains(d))
        .collect();
    out.extend(decoded);
    out.retain(|p| p.len() >= MIN_PART || (p.len() >= 3 && p == user));
    out
}

/// The percent-decoded spelling of `text`, when it has escapes.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// Every secret of a configuration, longest first.
pub fn secrets_of(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for network in &config.networks {
        for url in &network.rpc_urls {
            out.extend(url_secrets(url.expose()));
        }
        for key in &network.signer_keys {
            let key = key.expose();
            out.push(key.to_owned());
            out.push(key.trim_start_matches("0x").to_owned());
        }
    }
    if let Ok(parsed) = reqwest::Url::parse(config.database_url.expose()) {
        if let Some(password) = parsed.password() {
            out.push(password.to_owned());
        }
    }
    if let Some(token) = &config.admin_token {
        out.push(token.expose().to_owned());
    }
    out.retain(|s| s.len() >= 3);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Installs the secrets of `config` (once per process; later calls are ignored).
pub fn install(config: &Config) {
    let _ = FRAGMENTS.set(secrets_of(config));
}

/// `text` with every installed secret replaced by [`REDACTED`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    match FRAGMENTS.get() {
        Some(fragments) => scrub_with(text, fragments),
        None => Cow::Borrowed(text),
    }
}

fn scrub_with<'a>(text: &'a str, fragments: &[String]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for fragment in fragments {
        if out.contains(fragment.as_str()) {
            out = Cow::Owned(out.replace(fragment.as_str(), REDACTED));
        }
    }
    out
}

/// Every string inside `value`, scrubbed.
pub fn scrub_value(value: Value) -> Value {
    if FRAGMENTS.get().is_none_or(|f| f.is_empty()) {
        return value;
    }
    match value {
        Value::String(text) => Value::String(scrub(&text).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(scrub_value).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, scrub_value(v))).collect())
        }
        other => other,
    }
}

/// A log writer that scrubs each line before it reaches standard output (the formatter
/// writes one event per writer).
#[derive(Default)]
pub struct ScrubbedStdout {
    buffer: Vec<u8>,
}

impl ScrubbedStdout {
    /// A writer for one log event.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Write for ScrubbedStdout {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let result = std::io::stdout().lock().write_all(scrub(&text).as_bytes());
        self.buffer.clear();
        result
    }
}

impl Drop for ScrubbedStdout {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_credential_part_of_a_url_is_a_secret() {
        let parts = url_secrets("https://alice:s3cr3t-pw@rpc.example:8443/v2/KEYKEYKEY123?apikey=QUERYKEY99&x=1#frag-ment");
        for secret in [
            "alice",
            "s3cr3t-pw",
            "KEYKEYKEY123",
            "QUERYKEY99",
            "apikey=QUERYKEY99",
            "frag-ment",
        ] {
            assert!(parts.iter().any(|p| p == secret), "{secret} in {parts:?}");
        }
        let text = "error sending request for url (https://alice:s3cr3t-pw@rpc.example:8443/v2/KEYKEYKEY123?apikey=QUERYKEY99&x=1)";
        let mut sorted = parts.clone();
        sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let scrubbed = scrub_with(text, &sorted);
        for secret in ["alice", "s3cr3t-pw", "KEYKEYKEY123", "QUERYKEY99"] {
            assert!(!scrubbed.contains(secret), "{scrubbed}");
        }
        assert!(
            scrubbed.contains("rpc.example:8443"),
            "host and port stay: {scrubbed}"
        );
        assert!(url_secrets("http://127.0.0.1:8545").is_empty());
        let encoded = url_secrets("https://h/k%2Fey1234");
        assert!(encoded.iter().any(|p| p == "k/ey1234"), "{encoded:?}");
    }
}
