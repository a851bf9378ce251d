//! What can go wrong talking to a facilitator, sorted by who is at fault.

use std::time::Duration;

/// Why a facilitator call gave no typed answer. None of the messages quotes the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The configured URL is unusable.
    #[error("invalid facilitator URL: {0}")]
    Url(String),
    /// No connection, or it broke before an answer.
    #[error("the facilitator could not be reached on {path}: {detail}")]
    Unreachable {
        /// The route called.
        path: &'static str,
        /// The transport's description, without the URL.
        detail: String,
    },
    /// No answer in time.
    #[error("the facilitator did not answer {path} within {limit:?}")]
    Timeout {
        /// The route called.
        path: &'static str,
        /// The bound that ran out.
        limit: Duration,
    },
    /// HTTP 429 or 5xx: the facilitator's own trouble, after the retries.
    #[error("the facilitator answered {path} with HTTP {status}: {detail}")]
    Unavailable {
        /// The route called.
        path: &'static str,
        /// The status.
        status: u16,
        /// The facilitator's message.
        detail: String,
    },
    /// HTTP 401/403: this server's key is missing or refused (its operator's to fix).
    #[error("the facilitator refused this server's credentials on {path} (HTTP {status})")]
    Unauthorized {
        /// The route called.
        path: &'static str,
        /// The status.
        status: u16,
    },
    /// Another 4xx: the facilitator could not read the request (usually the payment a
    /// client sent).
    #[error("the facilitator refused the request on {path} (HTTP {status}): {detail}")]
    Refused {
        /// The route called.
        path: &'static str,
        /// The status.
        status: u16,
        /// The facilitator's message.
        detail: String,
    },
    /// HTTP 200 with something that is not the expected answer.
    #[error("the facilitator's answer on {path} is not readable: {detail}")]
    Decode {
        /// The route called.
        path: &'static str,
        /// What the JSON reader said.
        detail: String,
    },
}

impl ClientError {
    /// True when the fault lies with the request's content (a resource server answers
    /// its client 402 or 400), false when the facilitator or this server's configuration
    /// is at fault (a resource server answers 503).
    pub fn is_request_fault(&self) -> bool {
        matches!(self, ClientError::Refused { .. })
    }
}
