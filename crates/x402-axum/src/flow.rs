//! One paid request: read the payment, verify it, run the handler, settle, answer.
//!
//! Verify, then the handler, then settle — the order of the reference middleware
//! (`@x402/express`), for the same reasons: a handler that fails (status 400 and above)
//! costs the payer nothing, since nothing was settled; and the handler's answer is held
//! back until the settlement succeeded, so a payment that fails to settle gets no
//! content. Settling first would charge for content that may never come.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use tower::{Service, ServiceExt};
use x402_facilitator_client::{is_pending as client_pending, ClientError, FacilitatorClient};
use x402_protocol::headers::{self, PaymentHeader};
use x402_protocol::{v1, v2, TokenAmount, X402Version};

use crate::answers::{self, Settled, Spoken};
use crate::claims;
use crate::paywall::{v2_requirement, Charge, Paywall, Price, VerifiedPayment};

/// What every request of one paid route shares.
pub(crate) struct Shared {
    pub(crate) paywall: Paywall,
    pub(crate) client: FacilitatorClient,
}

/// A payment matched to one of the route's prices, in the client's version.
enum Matched {
    V1 { request: v1::PaymentRequest },
    V2 { request: v2::PaymentRequest },
}

const FACILITATOR_DOWN: &str =
    "the payment facilitator cannot be reached; nothing was charged, try again later";
/// The 503 message when the facilitator refused for a reason of its own.
fn refused_by_facilitator(reason: &str) -> String {
    format!("the payment facilitator cannot take payments now ({reason}); nothing was charged, try again later")
}

const OUTCOME_UNKNOWN: &str = "the payment facilitator did not confirm the settlement; the content is withheld (the payment header stays valid only if nothing was settled)";

pub(crate) async fn handle<S>(shared: Arc<Shared>, inner: S, mut request: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible> + Send,
    S::Future: Send,
{
    let paywall = &shared.paywall;
    let resource = resource_url(paywall, &request);
    let (payment, spoken) = match read_payment(&request) {
        Ok(None) => {
            let message = "payment required";
            return answers::payment_required(
                paywall,
                &resource,
                StatusCode::PAYMENT_REQUIRED,
                message,
                Spoken::Unknown,
            );
        }
        Ok(Some(payment)) => {
            let spoken = match &payment {
                PaymentHeader::V1(_) => Spoken::V1,
                PaymentHeader::V2(_) => Spoken::V2,
            };
            (payment, spoken)
        }
        Err((error, spoken)) => {
            let message = error.to_string();
            return answers::payment_required(
                paywall,
                &resource,
                StatusCode::BAD_REQUEST,
                &message,
                spoken,
            );
        }
    };
    let refuse = |status: StatusCode, message: &str| {
        answers::payment_required(paywall, &resource, status, message, spoken)
    };
    let Some(_claim) = claims::claim(&payment) else {
        return refuse(
            StatusCode::PAYMENT_REQUIRED,
            "this payment is in use by another request; a payment pays for one request",
        );
    };
    let (price, matched) = match match_price(paywall, payment, &resource) {
        Ok(found) => found,
        Err(message) => return refuse(StatusCode::PAYMENT_REQUIRED, &message),
    };
    let verified = match verify(&shared.client, &matched, price).await {
        Ok(verified) => verified,
        Err(Stop::Refused(reason)) => return refuse(StatusCode::PAYMENT_REQUIRED, &reason),
        Err(Stop::Unreadable(message)) => return refuse(StatusCode::BAD_REQUEST, &message),
        Err(Stop::Down(error)) => {
            tracing::warn!(%error, "verify failed on the facilitator's side");
            return answers::unavailable(FACILITATOR_DOWN);
        }
        Err(Stop::Theirs(reason)) => {
            tracing::warn!(
                reason,
                "the facilitator refused verify for a reason of its own"
            );
            return answers::unavailable(&refused_by_facilitator(&reason));
        }
    };
    request.extensions_mut().insert(verified.clone());
    let paid = Paid {
        verified,
        matched,
        resource,
        spoken,
    };
    run_and_settle(&shared, inner, request, paid).await
}

/// A verified payment on its way to the handler and the settlement.
struct Paid {
    verified: VerifiedPayment,
    matched: Matched,
    resource: String,
    spoken: Spoken,
}

/// Runs the handler, holds its answer back, settles, and answers.
async fn run_and_settle<S>(shared: &Shared, inner: S, request: Request, paid: Paid) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible> + Send,
    S::Future: Send,
{
    let Paid {
        verified,
        matched,
        resource,
        spoken,
    } = paid;
    let paywall = &shared.paywall;
    let refuse = |status: StatusCode, message: &str| {
        answers::payment_required(paywall, &resource, status, message, spoken)
    };
    let response = match inner.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if response.status().as_u16() >= 400 {
        // The handler failed: nothing is settled, its answer goes out as it is.
        return response;
    }
    let (parts, body) = response.into_parts();
    let charge = parts.extensions.get::<Charge>().map(|c| c.0.clone());
    let bytes = match axum::body::to_bytes(body, paywall.max_response_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            tracing::error!(
                limit = paywall.max_response_bytes,
                "paid answer too large to hold back; not settled"
            );
            return answers::server_error("the answer is larger than this server holds back for settlement; nothing was charged");
        }
    };
    let matched = match charged(matched, &verified.price, charge) {
        Ok(Some(matched)) => matched,
        Ok(None) => return Response::from_parts(parts, Body::from(bytes)),
        Err(message) => {
            tracing::error!(
                message,
                "the handler named a charge the payment cannot cover"
            );
            return answers::server_error(message);
        }
    };
    let settled = match settle(&shared.client, &matched).await {
        Ok(settled) => settled,
        Err(Stop::Down(error)) => {
            tracing::warn!(%error, payer = verified.payer.as_deref(), "settle failed on the facilitator's side; content withheld");
            return answers::unavailable(OUTCOME_UNKNOWN);
        }
        Err(Stop::Theirs(reason)) => {
            tracing::warn!(
                reason,
                payer = verified.payer.as_deref(),
                "the facilitator refused settle for a reason of its own; content withheld"
            );
            return answers::unavailable(&refused_by_facilitator(&reason));
        }
        Err(Stop::Refused(reason) | Stop::Unreadable(reason)) => {
            return refuse(StatusCode::PAYMENT_REQUIRED, &reason)
        }
    };
    let (success, reason, transaction) = settled_facts(&settled);
    if success {
        tracing::info!(
            x402_version = verified.version.label(),
            network = %verified.price.network,
            payer = verified.payer.as_deref(),
            transaction,
            "paid request settled"
        );
        return answers::paid(parts, Body::from(bytes), &settled);
    }
    let status = if client_pending(&reason) {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::PAYMENT_REQUIRED
    };
    tracing::warn!(
        reason,
        transaction,
        payer = verified.payer.as_deref(),
        "settlement did not succeed; content withheld"
    );
    answers::not_settled(paywall, &resource, status, &reason, spoken, &settled)
}

/// The payment header, or why it cannot be read (with the version it claimed).
fn read_payment(
    request: &Request,
) -> Result<Option<PaymentHeader>, (headers::HeaderError, Spoken)> {
    let text = |name: &str, part: &'static str, spoken: Spoken| match request.headers().get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            let detail = "it holds bytes that are not visible ASCII".to_owned();
            (headers::HeaderError::NotBase64 { part, detail }, spoken)
        }),
    };
    let v2 = text(headers::PAYMENT_SIGNATURE, "PAYMENT-SIGNATURE", Spoken::V2)?;
    let v1 = text(headers::X_PAYMENT, "X-PAYMENT", Spoken::V1)?;
    let spoken = if v1.is_some() && v2.is_none() {
        Spoken::V1
    } else if v2.is_some() && v1.is_none() {
        Spoken::V2
    } else {
        Spoken::Unknown
    };
    headers::read_payment_header(v2, v1).map_err(|e| (e, spoken))
}

/// The URL payments name: configured, or this server's `Host` and the path.
fn resource_url(paywall: &Paywall, request: &Request) -> String {
    if let Some(url) = &paywall.resource {
        return url.clone();
    }
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    format!("http://{host}{path}")
}

/// The price a payment is for, and the facilitator request built from our copy of it.
fn match_price(
    paywall: &Paywall,
    payment: PaymentHeader,
    resource: &str,
) -> Result<(Price, Matched), String> {
    match payment {
        PaymentHeader::V2(payload) => {
            if !paywall.versions.v2 {
                return Err("this route takes x402 v1 payments (X-PAYMENT)".into());
            }
            let price = paywall.match_v2(&payload.accepted).ok_or_else(|| {
                "no matching payment requirements: the payment's accepted terms are not one of this route's prices".to_owned()
            })?;
            Ok((
                price.clone(),
                Matched::V2 {
                    request: v2::PaymentRequest {
                        x402_version: 2,
                        payment_payload: *payload,
                        payment_requirements: v2_requirement(price),
                    },
                },
            ))
        }
        PaymentHeader::V1(payload) => {
            if !paywall.versions.v1 {
                return Err("this route takes x402 v2 payments (PAYMENT-SIGNATURE)".into());
            }
            let (price, requirement) = paywall
                .match_v1(&payload)
                .and_then(|price| Some((price, paywall.v1_requirement(price, resource)?)))
                .ok_or_else(|| {
                    format!(
                        "no matching payment requirements: this route takes no {} payment on {}",
                        payload.scheme, payload.network
                    )
                })?;
            Ok((
                price.clone(),
                Matched::V1 {
                    request: v1::PaymentRequest {
                        x402_version: 1,
                        payment_payload: payload,
                        payment_requirements: requirement,
                    },
                },
            ))
        }
    }
}

/// A refusal that is the facilitator's own trouble (its RPC, gas, ledger, a switch that is
/// off, shutdown): the payer is not at fault and is not answered as if it were.
fn theirs(reason: &str) -> bool {
    x402_protocol::Reason::from_code(reason)
        .is_some_and(|r| r.class() == x402_protocol::ReasonClass::Facilitator)
}

/// Why a paid request stops before the content.
enum Stop {
    /// The facilitator refused for a reason of its own (reason code).
    Theirs(String),
    /// The facilitator refused the payment (reason code).
    Refused(String),
    /// The facilitator could not read the payment.
    Unreadable(String),
    /// The facilitator is down or misconfigured.
    Down(ClientError),
}

fn stop(error: ClientError) -> Stop {
    if error.is_request_fault() {
        Stop::Unreadable(error.to_string())
    } else {
        Stop::Down(error)
    }
}

async fn verify(
    client: &FacilitatorClient,
    matched: &Matched,
    price: Price,
) -> Result<VerifiedPayment, Stop> {
    let (valid, reason, payer, version) = match matched {
        Matched::V1 { request } => {
            let answer = client.verify_v1(request).await.map_err(stop)?;
            (
                answer.is_valid,
                answer.invalid_reason,
                answer.payer,
                X402Version::V1,
            )
        }
        Matched::V2 { request } => {
            let answer = client.verify_v2(request).await.map_err(stop)?;
            (
                answer.is_valid,
                answer.invalid_reason,
                answer.payer,
                X402Version::V2,
            )
        }
    };
    if !valid {
        let reason = reason.unwrap_or_else(|| "invalid_payment".into());
        return Err(if theirs(&reason) {
            Stop::Theirs(reason)
        } else {
            Stop::Refused(reason)
        });
    }
    Ok(VerifiedPayment {
        version,
        payer,
        price,
    })
}

/// The settlement answer; a refusal the facilitator gave for a reason of its own before
/// sending anything is its trouble ([`Stop::Theirs`]), as in [`verify`].
async fn settle(client: &FacilitatorClient, matched: &Matched) -> Result<Settled, Stop> {
    let settled = match matched {
        Matched::V1 { request } => client.settle_v1(request).await.map(Settled::V1),
        Matched::V2 { request } => client.settle_v2(request).await.map(Settled::V2),
    }
    .map_err(stop)?;
    let (success, reason, transaction) = settled_facts(&settled);
    if !success && transaction.is_empty() && theirs(&reason) {
        return Err(Stop::Theirs(reason));
    }
    Ok(settled)
}

fn settled_facts(settled: &Settled) -> (bool, String, &str) {
    match settled {
        Settled::V1(a) => (
            a.success,
            a.error_reason.clone().unwrap_or_default(),
            a.transaction.as_str(),
        ),
        Settled::V2(a) => (
            a.success,
            a.error_reason.clone().unwrap_or_default(),
            a.transaction.as_str(),
        ),
    }
}

/// The settle request for the amount the handler charged: the price when it named none;
/// `None` when it charged nothing (an `upto` request that used nothing).
fn charged(
    matched: Matched,
    price: &Price,
    charge: Option<TokenAmount>,
) -> Result<Option<Matched>, &'static str> {
    let Some(charge) = charge else {
        return Ok(Some(matched));
    };
    let (Some(wanted), Some(most)) = (charge.as_u128(), price.amount.as_u128()) else {
        return Err("the charge or the price is not a number this server can compare");
    };
    if wanted > most {
        return Err("the handler charged more than the payment authorizes; nothing was charged");
    }
    if wanted != most && price.scheme == "exact" {
        return Err("an exact payment settles its price; the handler named another amount");
    }
    if wanted == 0 {
        return Ok(None);
    }
    Ok(Some(match matched {
        Matched::V1 { mut request } => {
            request.payment_requirements.max_amount_required = charge;
            Matched::V1 { request }
        }
        Matched::V2 { mut request } => {
            request.payment_requirements.amount = charge;
            Matched::V2 { request }
        }
    }))
}
