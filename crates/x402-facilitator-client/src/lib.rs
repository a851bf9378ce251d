//! A typed client of any x402 facilitator, for resource servers.
//!
//! `/verify`, `/settle` and `/supported` in both protocol versions, each call bounded by a
//! timeout. Retries are made only where they cannot cost the payer twice:
//! - `/verify` and `/supported` read and change nothing: retried on transport trouble,
//!   HTTP 429 and 5xx.
//! - `/settle` is retried when the request never left (connection refused), and, with
//!   [`SettleResend::IdempotentFacilitator`] (the default), also when it may have arrived:
//!   an x402 authorization is single-use on chain, and a facilitator that answers a
//!   repeated settle with its first outcome (as this project's does) turns the retry into
//!   a lookup. An answer `settlement_pending` (broadcast, not final yet) is asked again
//!   until it is final or [`ClientOptions::pending_budget`] is spent.
//!
//! Errors never quote the facilitator's URL (it may carry an API key).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod call;
mod error;

use std::time::Duration;

use x402_protocol::{v1, v2};

pub use error::ClientError;

/// The reason code of a settlement broadcast but not final yet.
pub const SETTLEMENT_PENDING: &str = "settlement_pending";
/// The reason code of a payment another request is settling right now.
pub const SETTLEMENT_IN_PROGRESS: &str = "settlement_in_progress";

/// Whether a settle refusal only means "not final yet": asking again gives the outcome.
pub fn is_pending(reason: &str) -> bool {
    reason == SETTLEMENT_PENDING || reason == SETTLEMENT_IN_PROGRESS
}

/// When a `/settle` that may have reached the facilitator is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleResend {
    /// The facilitator answers a repeated settle with its first outcome (this project's
    /// does): resend after timeouts, resets and 5xx too.
    IdempotentFacilitator,
    /// Resend only what surely never arrived (the connection was refused): for a
    /// facilitator that would answer a repeat with "already used".
    UnsentOnly,
}

/// Timeouts and retry budget.
#[derive(Clone)]
pub struct ClientOptions {
    /// Bound on one `/verify` or `/supported` call.
    pub timeout: Duration,
    /// Bound on one `/settle` call (it waits for the chain).
    pub settle_timeout: Duration,
    /// Calls made at most for one answer (first try included).
    pub attempts: u32,
    /// The first pause between attempts; doubled each time, at most 2 s.
    pub retry_delay: Duration,
    /// How long a `settlement_pending` answer is asked again.
    pub pending_budget: Duration,
    /// When a settle is sent again.
    pub settle_resend: SettleResend,
    /// Sent as `Authorization: Bearer` when the facilitator wants a key.
    pub api_key: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
            settle_timeout: Duration::from_secs(40),
            attempts: 3,
            retry_delay: Duration::from_millis(250),
            pending_budget: Duration::from_secs(60),
            settle_resend: SettleResend::IdempotentFacilitator,
            api_key: None,
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("timeout", &self.timeout)
            .field("settle_timeout", &self.settle_timeout)
            .field("attempts", &self.attempts)
            .field("retry_delay", &self.retry_delay)
            .field("pending_budget", &self.pending_budget)
            .field("settle_resend", &self.settle_resend)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A facilitator at one base URL.
#[derive(Clone)]
pub struct FacilitatorClient {
    base: String,
    http: reqwest::Client,
    options: ClientOptions,
}

impl std::fmt::Debug for FacilitatorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacilitatorClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How a call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Reads nothing changes (`/verify`, `/supported`).
    Read,
    /// `/settle`.
    Settle,
}

/// What a settle answer says about finality.
trait SettleAnswer {
    fn pending(&self) -> bool;
}

impl SettleAnswer for v2::SettleResponse {
    fn pending(&self) -> bool {
        !self.success && self.error_reason.as_deref().is_some_and(is_pending)
    }
}

impl SettleAnswer for v1::SettleResponse {
    fn pending(&self) -> bool {
        !self.success && self.error_reason.as_deref().is_some_and(is_pending)
    }
}

impl FacilitatorClient {
    /// A client of the facilitator at `base_url` (`http://` or `https://`).
    pub fn new(base_url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Url(
                "the facilitator URL must start with http:// or https://".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(options.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| ClientError::Url(e.without_url().to_string()))?;
        Ok(FacilitatorClient {
            base,
            http,
            options,
        })
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// `POST /verify` with a v2 request.
    pub async fn verify_v2(
        &self,
        request: &v2::VerifyRequest,
    ) -> Result<v2::VerifyResponse, ClientError> {
        self.post("/verify", request, Kind::Read).await
    }

    /// `POST /verify` with a v1 request.
    pub async fn verify_v1(
        &self,
        request: &v1::PaymentRequest,
    ) -> Result<v1::VerifyResponse, ClientError> {
        self.post("/verify", request, Kind::Read).await
    }

    /// `POST /settle` with a v2 request, asked again while it is `settlement_pending`.
    pub async fn settle_v2(
        &self,
        request: &v2::SettleRequest,
    ) -> Result<v2::SettleResponse, ClientError> {
        self.settle(request).await
    }

    /// `POST /settle` with a v1 request, asked again while it is `settlement_pending`.
    pub async fn settle_v1(
        &self,
        request: &v1::PaymentRequest,
    ) -> Result<v1::SettleResponse, ClientError> {
        self.settle(request).await
    }

    /// `GET /supported`.
    pub async fn supported(&self) -> Result<v2::SupportedResponse, ClientError> {
        self.get("/supported").await
    }

    async fn settle<Req, Resp>(&self, request: &Req) -> Result<Resp, ClientError>
    where
        Req: serde::Serialize + Sync,
        Resp: serde::de::DeserializeOwned + SettleAnswer,
    {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(500);
        loop {
            let answer: Resp = self.post("/settle", request, Kind::Settle).await?;
            if !answer.pending() || started.elapsed() + pause > self.options.pending_budget {
                return Ok(answer);
            }
            tracing::debug!(
                waited_ms = started.elapsed().as_millis() as u64,
                "settlement pending; asking again"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}
