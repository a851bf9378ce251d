//! `/verify` and `/settle`: caller key → body → version → payment → flags and policy → the
//! key's policy → scheme → payment id → discovery offer → rate limits → the scheme's verify
//! or settle (shadow mode: `shadow.rs`). Every step that refuses returns a [`Stop`];
//! [`handle`] is the one place that logs it and answers it.

use super::discovery::list_settled_resource;
use super::shadow::{compare_shadow, start_shadow};
use super::*;
use crate::api_keys;
use x402_protocol::bazaar::Offer;

/// A request answered before the scheme ran.
pub(super) enum Stop {
    /// A protocol refusal (HTTP 200), in the request's shape.
    Refused(Refusal),
    /// Not a request at all, or too many of them: a 4xx. The payer, when known, is logged.
    Client(ClientError, Option<String>),
    /// The caller's API key does not cover the request (403, 429): answered as built.
    Key(Box<Response>),
}

/// A refusal given before any chain code ran.
pub(super) struct Refusal {
    /// The shape of the answer (v2 when the version could not be read).
    version: X402Version,
    reason: Reason,
    message: String,
    /// The network as the request spelled it.
    network_label: String,
    payer: Option<String>,
    /// `invalid` for the payer's fault, `failed` for the facilitator's.
    outcome: Outcome,
}

impl Stop {
    fn refused(payment: &Payment, reason: Reason, message: String, payer: Option<String>) -> Stop {
        Stop::Refused(Refusal {
            version: payment.version,
            reason,
            message,
            network_label: payment.network_label.clone(),
            payer,
            outcome: match reason.class() {
                x402_protocol::ReasonClass::Payer => Outcome::Invalid,
                _ => Outcome::Failed,
            },
        })
    }

    fn client(error: ClientError) -> Stop {
        Stop::Client(error, None)
    }
}

impl Refusal {
    /// The answer in the request's shape.
    fn answer(self, endpoint: Endpoint) -> Value {
        match endpoint {
            Endpoint::Verify => {
                Verdict::invalid(self.reason, self.message, self.payer).to_json(self.version)
            }
            Endpoint::Settle => Settlement::failed(self.reason, self.message, self.payer, "")
                .to_json(self.version, &self.network_label),
        }
    }
}

pub(super) async fn verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, headers, body, Endpoint::Verify).await
}

pub(super) async fn settle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, headers, body, Endpoint::Settle).await
}

async fn handle(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Response {
    let _in_flight = InFlight::request(&state);
    let mut log = RequestLog {
        request_id: request_id(&headers, &state),
        endpoint,
        started: Instant::now(),
        version: None,
        network: String::new(),
        network_metric: String::new(),
        scheme: String::new(),
        user_agent: user_agent(&headers),
        settlement_id: None,
        extension_responses: None,
        failure: FailureSighting::None,
    };
    let caller = match caller_keys::authenticate(&state, &headers) {
        Ok(caller) => caller,
        Err(refused) => {
            log.finish(Outcome::Rejected, None, None, None);
            return with_request_id(*refused, &log.request_id);
        }
    };
    let processed = match json_content_type(&headers) {
        Ok(()) => process(&state, (body, caller.as_deref()), endpoint, &mut log).await,
        Err(refused) => Err(Stop::client(refused)),
    };
    let mut response = match processed {
        // Answer texts can quote a node or a library: nothing secret leaves in them.
        Ok(value) => Json(redact::scrub_value(value)).into_response(),
        Err(Stop::Refused(refusal)) => {
            let payer = refusal.payer.clone();
            log.finish(
                refusal.outcome,
                Some(refusal.reason),
                payer.as_deref(),
                None,
            );
            Json(redact::scrub_value(refusal.answer(endpoint))).into_response()
        }
        Err(Stop::Client(error, payer)) => {
            log.finish(Outcome::Rejected, None, payer.as_deref(), None);
            error.into_response()
        }
        Err(Stop::Key(response)) => {
            log.finish(Outcome::Rejected, None, None, None);
            *response
        }
    };
    // Where the caller can ask after this payment's settlement (`GET /settlements/{id}`),
    // also when the answer itself is lost.
    if let Some(value) = log
        .settlement_id
        .as_deref()
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        response.headers_mut().insert(SETTLEMENT_ID_HEADER, value);
    }
    if let Some(value) = log
        .extension_responses
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        let name = x402_protocol::bazaar::RESPONSES_HEADER;
        response.headers_mut().insert(name, value);
    }
    if log.version == Some(X402Version::V1) {
        for (name, value) in state.v1_deprecation.headers() {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    with_request_id(response, &log.request_id)
}

/// The outcome a settlement is logged and counted under.
fn settle_outcome(settlement: &Settlement) -> Outcome {
    match (settlement.success, settlement.reason) {
        (true, _) => Outcome::Success,
        (false, Some(Reason::SettlementPending)) => Outcome::Pending,
        (false, _) if !settlement.transaction.is_empty() => Outcome::Failed,
        (false, Some(r)) if r.class() == x402_protocol::ReasonClass::Facilitator => Outcome::Failed,
        _ => Outcome::Invalid,
    }
}

/// The request in the body, or why it is not one.
fn read_request(
    bytes: &[u8],
    endpoint: Endpoint,
    log: &RequestLog,
) -> Result<VersionedRequest, Stop> {
    match parse_request(bytes) {
        Ok(request) => Ok(request),
        Err(EnvelopeError::UnknownVersion(n)) => Err(Stop::Refused(Refusal {
            version: X402Version::V2,
            reason: Reason::InvalidX402Version,
            message: format!("x402Version {n} is not supported; this facilitator speaks 1 and 2"),
            network_label: String::new(),
            payer: None,
            outcome: Outcome::Invalid,
        })),
        Err(err) => {
            if err.is_caip2() {
                metrics::counter!(telemetry::CAIP2_PARSE_ERRORS, "endpoint" => endpoint.name())
                    .increment(1);
                tracing::error!(
                    request_id = %log.request_id,
                    endpoint = endpoint.name(),
                    x402_version = "2",
                    field = err.field().unwrap_or_default(),
                    error = %err,
                    "CAIP-2 parsing failed"
                );
            }
            Err(Stop::client(client_error(
                StatusCode::BAD_REQUEST,
                err.to_string(),
                err.field(),
            )))
        }
    }
}

/// Flags, then the payment policy (`accepted` as required, assets, amounts, payee): the
/// refusal a new payment gets. Flags and policies gate new settlements only: a payment the
/// ledger knows gets its recorded outcome (a breaker trip must not hide payments made).
async fn gate(
    state: &AppState,
    flags: &Flags,
    request: &VersionedRequest,
    payment: &Payment,
    endpoint: Endpoint,
) -> Result<(), Stop> {
    let refusal = flags
        .admit(
            payment.version,
            endpoint == Endpoint::Settle,
            &payment.network,
        )
        .map_err(|refusal| match refusal {
            FlagRefusal::VersionOff(m) => (Reason::UnsupportedVersion, m),
            FlagRefusal::V2Off(m) => (Reason::FeatureDisabled, m),
        })
        .and_then(|()| {
            guard::accepted_matches(request)
                .and_then(|()| state.policy.check(payment))
                .map_err(|r| (r.reason, r.message))
        });
    let Err((reason, message)) = refusal else {
        return Ok(());
    };
    let served = state.scheme_for(payment).ok();
    if let Some(scheme) = served {
        if scheme.is_recorded(payment).await {
            return Ok(());
        }
    }
    // Who the payload says pays; read only for a refusal, off the hot path.
    let payer = served.and_then(|s| s.claimed_payer(payment));
    let mut stop = Stop::refused(payment, reason, message, payer);
    if let Stop::Refused(refusal) = &mut stop {
        // A flag or policy refusal is an answer, not a failure, whatever its class.
        refusal.outcome = Outcome::Invalid;
    }
    Err(stop)
}

/// The scheme for the payment, or the refusal naming what is not served.
fn scheme_of(state: &AppState, payment: &Payment) -> Result<Arc<dyn Scheme>, Stop> {
    let reason = match state.scheme_for(payment) {
        Ok(scheme) if payment.version == X402Version::V1 && !scheme.serves_v1() => {
            let message = format!(
                "{} {} is served in x402 v2 only (its scheme specification is v2 only): send x402Version 2 with network {}",
                payment.network_label, payment.scheme, payment.network
            );
            return Err(Stop::refused(
                payment,
                Reason::InvalidX402Version,
                message,
                None,
            ));
        }
        Ok(scheme) => return Ok(scheme.clone()),
        Err(reason) => reason,
    };
    let message = match reason {
        Reason::UnsupportedScheme => format!(
            "scheme {:?} is not served on {}",
            payment.scheme, payment.network
        ),
        _ => match networks::by_retired_caip2(payment.network.as_str()) {
            // The seeds' guessed spelling: say which id the network really has.
            Some(known) => format!(
                "{} is not a network id; {} is {} (CAIP-2 from its genesis hash)",
                payment.network, known.v1_name, known.caip2
            ),
            None => format!(
                "network {} is not served by this facilitator",
                payment.network
            ),
        },
    };
    Err(Stop::refused(payment, reason, message, None))
}

/// The v2 payment-identifier extension: an id already bound to another payment is refused.
/// Settle binds the id (released again when nothing was broadcast); verify only reads it.
async fn check_payment_id(
    state: &AppState,
    payment: &Payment,
    scheme: &Arc<dyn Scheme>,
    endpoint: Endpoint,
    (digest, log): (&str, &RequestLog),
) -> Result<Option<(String, String)>, Stop> {
    let Some(id) = payment_ids::payment_id(payment).filter(|_| payment.version == X402Version::V2)
    else {
        return Ok(None);
    };
    let bound = match endpoint {
        Endpoint::Verify => state.ledger.payment_id(&id).await,
        Endpoint::Settle => state.ledger.bind_payment_id(&id, digest).await.map(Some),
    };
    let conflict = match bound {
        Ok(bound) => bound.is_some_and(|b| !x402_protocol::digest_matches(&b, digest)),
        Err(e) if endpoint == Endpoint::Verify => {
            // Verify moves nothing: answer it, without the id check.
            tracing::warn!(request_id = %log.request_id, error = %e, "payment id not checked: ledger unavailable");
            false
        }
        Err(e) => {
            tracing::error!(request_id = %log.request_id, error = %e, "settlement refused: ledger unavailable");
            let message = "the facilitator cannot record settlements right now; nothing was sent; retry later";
            let payer = scheme.claimed_payer(payment);
            return Err(Stop::refused(
                payment,
                Reason::LedgerUnavailable,
                message.into(),
                payer,
            ));
        }
    };
    if conflict {
        let message = format!("payment id {id:?} was already used for a different payment");
        let payer = scheme.claimed_payer(payment);
        return Err(Stop::refused(
            payment,
            Reason::PaymentIdentifierConflict,
            message,
            payer,
        ));
    }
    Ok(Some((id, digest.to_owned())))
}

/// The per-payer and per-`payTo` limits, for a settlement the ledger does not know yet
/// (asked only when a limit is on); 429 with `Retry-After` past them.
async fn within_rate_limits(
    state: &AppState,
    scheme: &Arc<dyn Scheme>,
    payment: &Payment,
) -> Result<(), Stop> {
    if !state.policy.limits_rates() || scheme.is_recorded(payment).await {
        return Ok(());
    }
    let payer = scheme.claimed_payer(payment);
    let Err(wait) = state
        .policy
        .admit_settlement(payer.as_deref(), &payment.requirements.pay_to)
    else {
        return Ok(());
    };
    let error = ClientError {
        status: StatusCode::TOO_MANY_REQUESTS,
        error: format!(
            "too many settlements for this payer or payTo; retry after {}s",
            wait.as_secs()
        ),
        field: None,
        retry_after: Some(wait.as_secs().max(1)),
    };
    Err(Stop::Client(error, payer))
}

async fn process(
    state: &Arc<AppState>,
    (body, caller): (Result<Bytes, BytesRejection>, Option<&api_keys::CallerKey>),
    endpoint: Endpoint,
    log: &mut RequestLog,
) -> Result<Value, Stop> {
    let bytes = body_or_error(body).map_err(Stop::client)?;
    let request = read_request(&bytes, endpoint, log)?;
    let version = request.version();
    log.version = Some(version);
    let payment = Payment::from_request(&request).map_err(|refusal| {
        log.network = refusal.network_label.clone();
        Stop::Refused(Refusal {
            version,
            reason: refusal.reason,
            message: refusal.message,
            network_label: refusal.network_label,
            payer: None,
            outcome: Outcome::Invalid,
        })
    })?;
    log.network = payment.network.to_string();
    log.network_metric = state.network_label(&payment.network);
    log.scheme = payment.scheme.clone();
    let digest = payment.request_digest();
    log.settlement_id = Some(digest.clone());
    let flags = state.flags.snapshot();
    gate(state, &flags, &request, &payment, endpoint).await?;
    if let Some(key) = caller {
        caller_keys::admit(state, key, &payment, endpoint)
            .await
            .map_err(Stop::Key)?;
    }
    let scheme = scheme_of(state, &payment)?;
    let identified = check_payment_id(state, &payment, &scheme, endpoint, (&digest, log)).await?;
    let offer = match flags.discovery_enabled {
        true => Offer::of(&request),
        false => Offer::Absent,
    };
    match endpoint {
        Endpoint::Verify => {
            log.extension_responses = offer.verify_response();
            let shadow = flags.shadow_v2_enabled && version == X402Version::V1;
            Ok(verify_payment(state, &request, scheme, payment, shadow, log).await)
        }
        Endpoint::Settle => {
            within_rate_limits(state, &scheme, &payment).await?;
            let (answer, responses) =
                settle_payment(state, scheme, (payment, offer), identified, log).await;
            log.extension_responses = responses;
            Ok(answer)
        }
    }
}

/// The scheme's verdict; in shadow mode the v2 path checks the same payment concurrently.
async fn verify_payment(
    state: &Arc<AppState>,
    request: &VersionedRequest,
    scheme: Arc<dyn Scheme>,
    payment: Payment,
    shadow: bool,
    log: &RequestLog,
) -> Value {
    let shadow = shadow.then(|| start_shadow(state, request)).flatten();
    let verdict = scheme.verify(&payment).await;
    let outcome = if verdict.is_valid {
        Outcome::Valid
    } else {
        Outcome::Invalid
    };
    log.finish(outcome, verdict.reason, verdict.payer.as_deref(), None);
    let answer = verdict.to_json(payment.version);
    if let Some(shadow) = shadow {
        let request_id = log.request_id.clone();
        tokio::spawn(compare_shadow(shadow, verdict, answer.clone(), request_id));
    }
    answer
}

/// The scheme's settlement, in a task of its own: a client that hangs up does not cancel a
/// broadcast half way (nor the listing of its resource), and shutdown waits for it. The
/// answer, and the `EXTENSION-RESPONSES` value when the payment offered a listing.
async fn settle_payment(
    state: &Arc<AppState>,
    scheme: Arc<dyn Scheme>,
    (payment, offer): (Payment, Offer),
    identified: Option<(String, String)>,
    log: &RequestLog,
) -> (Value, Option<String>) {
    let version = payment.version;
    let guard = InFlight::settlement(state);
    let task_state = state.clone();
    let mut task_log = log.clone();
    let task = tokio::spawn(async move {
        let settlement = scheme.settle(&payment).await;
        let digest = task_log
            .settlement_id
            .clone()
            .unwrap_or_else(|| payment.request_digest());
        let sighting = Sightings::key(&settlement, || digest.clone());
        if let Some((id, digest)) = &identified {
            // Nothing broadcast: the id is free for another attempt.
            if settlement.transaction.is_empty() {
                if let Err(e) = task_state.ledger.release_payment_id(id, digest).await {
                    tracing::warn!(error = %e, "payment id not released: ledger unavailable");
                }
            }
        }
        // A re-sent request (answered from the ledger, or pending again) counts once.
        let first = task_state.sightings.first(&sighting);
        task_log.failure = FailureSighting::of(&settlement, first);
        if first {
            task_log.count_facilitator_failure(&settlement);
            if version == X402Version::V2 {
                task_state.watch_v2_settlement(&settlement, &payment.network);
            }
        }
        task_log.finish(
            settle_outcome(&settlement),
            settlement.reason,
            settlement.payer.as_deref(),
            Some(&settlement.transaction),
        );
        let responses = list_settled_resource(&task_state, (offer, &digest), &settlement).await;
        drop(guard);
        (
            settlement.to_json(version, &payment.network_label),
            responses,
        )
    });
    match task.await {
        Ok(answered) => answered,
        Err(e) => {
            tracing::error!(request_id = %log.request_id, error = %e, "settlement task failed");
            let failed = Settlement::failed(
                Reason::UnexpectedSettleError,
                "settlement task failed; retry the same request for its outcome",
                None,
                "",
            );
            log.finish(Outcome::Failed, failed.reason, None, None);
            (failed.to_json(version, &log.network), None)
        }
    }
}
