//! One facilitator call: attempts, the pause between them, and which failures allow
//! another attempt.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{ClientError, FacilitatorClient, Kind, SettleResend};

/// One failed attempt, and whether the request surely never reached the facilitator.
struct Failed {
    error: ClientError,
    unsent: bool,
    retryable: bool,
}

impl FacilitatorClient {
    pub(crate) async fn post<Req, Resp>(
        &self,
        path: &'static str,
        body: &Req,
        kind: Kind,
    ) -> Result<Resp, ClientError>
    where
        Req: Serialize + Sync,
        Resp: DeserializeOwned,
    {
        let limit = match kind {
            Kind::Read => self.options.timeout,
            Kind::Settle => self.options.settle_timeout,
        };
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode {
            path,
            detail: format!("the request could not be written: {e}"),
        })?;
        self.repeat(path, kind, || {
            let request = self
                .http
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            self.once(path, limit, request)
        })
        .await
    }

    pub(crate) async fn get<Resp: DeserializeOwned>(
        &self,
        path: &'static str,
    ) -> Result<Resp, ClientError> {
        self.repeat(path, Kind::Read, || {
            let request = self.http.get(format!("{}{path}", self.base));
            self.once(path, self.options.timeout, request)
        })
        .await
    }

    async fn repeat<Resp, F, Fut>(
        &self,
        path: &'static str,
        kind: Kind,
        attempt: F,
    ) -> Result<Resp, ClientError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Resp, Failed>>,
    {
        let attempts = self.options.attempts.max(1);
        let mut pause = self.options.retry_delay;
        let mut made = 0;
        loop {
            made += 1;
            let failed = match attempt().await {
                Ok(answer) => return Ok(answer),
                Err(failed) => failed,
            };
            let again = failed.retryable
                && made < attempts
                && (kind == Kind::Read
                    || failed.unsent
                    || self.options.settle_resend == SettleResend::IdempotentFacilitator);
            if !again {
                return Err(failed.error);
            }
            tracing::debug!(path, attempt = made, error = %failed.error, "facilitator call failed; trying again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    async fn once<Resp: DeserializeOwned>(
        &self,
        path: &'static str,
        limit: Duration,
        mut request: reqwest::RequestBuilder,
    ) -> Result<Resp, Failed> {
        if let Some(key) = &self.options.api_key {
            request = request.bearer_auth(key);
        }
        let exchange = async {
            let response = request
                .send()
                .await
                .map_err(|e| transport(path, limit, e))?;
            let status = response.status().as_u16();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport(path, limit, e))?;
            Ok::<_, Failed>((status, bytes))
        };
        let (status, bytes) = match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Failed {
                    error: ClientError::Timeout { path, limit },
                    unsent: false,
                    retryable: true,
                })
            }
        };
        if status == 200 {
            return serde_json::from_slice(&bytes).map_err(|e| Failed {
                error: ClientError::Decode {
                    path,
                    detail: e.to_string(),
                },
                unsent: false,
                retryable: false,
            });
        }
        Err(by_status(path, status, &bytes))
    }
}

fn transport(path: &'static str, limit: Duration, error: reqwest::Error) -> Failed {
    let unsent = error.is_connect();
    let error_kind = if error.is_timeout() {
        ClientError::Timeout { path, limit }
    } else {
        ClientError::Unreachable {
            path,
            detail: describe(&error),
        }
    };
    Failed {
        error: error_kind,
        unsent,
        retryable: true,
    }
}

/// The transport failure by kind, with its causes but never the URL.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "the exchange failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.contains("://") && !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({})", causes.join(": "))
    }
}

fn by_status(path: &'static str, status: u16, body: &[u8]) -> Failed {
    let detail = message(body);
    let (error, retryable) = match status {
        401 | 403 => (ClientError::Unauthorized { path, status }, false),
        429 | 500..=599 => (
            ClientError::Unavailable {
                path,
                status,
                detail,
            },
            true,
        ),
        400..=499 => (
            ClientError::Refused {
                path,
                status,
                detail,
            },
            false,
        ),
        _ => (
            ClientError::Unavailable {
                path,
                status,
                detail,
            },
            false,
        ),
    };
    Failed {
        error,
        unsent: false,
        retryable,
    }
}

/// The facilitator's own words: an `error` field of a JSON body, else the start of the text.
fn message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let mut short: String = text.chars().take(300).collect();
    if short.is_empty() {
        short.push_str("(no message)");
    }
    short
}
