//! `GET /settlements/{id}`: what the ledger recorded about one settlement, for a resource
//! server whose `/settle` answer was lost (a timeout, a reset connection) or that wants to
//! know whether a pending settlement landed.
//!
//! The id is the request's settlement id (the digest of the request, sent in the
//! `X402-Settlement-Id` header of every `/verify` and `/settle` answer) or the v2
//! `payment-identifier` the client chose. The answer is read from the ledger only: asking
//! never sends a transaction and never asks a node, so a stranger polling it costs one
//! indexed read.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use x402_ledger::{Entry, EntryState};

use super::*;

/// The response header naming a request's settlement id.
pub const SETTLEMENT_ID_HEADER: &str = "x402-settlement-id";

/// How a caller names a settlement.
#[derive(Debug, PartialEq, Eq)]
enum SettlementRef {
    /// The request's digest ([`Payment::request_digest`]).
    Digest(String),
    /// A v2 payment id, bound to the digest of the request that settled under it.
    PaymentId(String),
}

impl SettlementRef {
    /// Reads the path's id; `None` for anything neither a digest nor a payment id.
    fn parse(id: &str) -> Option<SettlementRef> {
        if x402_protocol::is_request_digest(id) {
            return Some(SettlementRef::Digest(id.to_owned()));
        }
        payment_ids::well_formed(id).then(|| SettlementRef::PaymentId(id.to_owned()))
    }
}

/// The status vocabulary of the answer: `pending` (recorded and sent or about to be, no
/// outcome yet), `success` and `failed` (final).
fn status_of(state: EntryState) -> &'static str {
    match state {
        EntryState::Submitted => "pending",
        EntryState::Confirmed => "success",
        EntryState::Failed => "failed",
    }
}

pub(super) fn rfc3339(millis: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// The answer for one recorded entry, asked for as `id`.
fn describe(id: &str, entry: &Entry) -> Value {
    let mut answer = json!({
        "id": id,
        "settlementId": entry.digest,
        "status": status_of(entry.state),
        "network": entry.network,
        "x402Version": entry.x402_version,
        "payer": entry.payer,
        "transaction": entry.tx_hash,
        "transactions": entry.tx_hashes,
        "createdAt": rfc3339(entry.created_at),
        "updatedAt": rfc3339(entry.updated_at),
    });
    if let Some(terms) = &entry.terms {
        answer["scheme"] = json!(terms.scheme);
        answer["asset"] = json!(terms.asset);
        answer["payTo"] = json!(terms.pay_to);
        answer["amount"] = json!(terms.amount);
        if !terms.resource.is_empty() {
            answer["resource"] = json!(terms.resource);
        }
    }
    let recorded = entry
        .outcome
        .as_deref()
        .and_then(x402_settlement::record::from_record);
    if entry.state == EntryState::Failed {
        if let Some(reason) = recorded.as_ref().and_then(|s| s.reason) {
            answer["errorReason"] = json!(reason.as_str());
        }
        if let Some(message) = recorded.and_then(|s| s.message) {
            answer["errorMessage"] = json!(message);
        }
    }
    answer
}

fn not_found(what: &str) -> Response {
    client_error(
        StatusCode::NOT_FOUND,
        format!("no settlement is recorded under this {what}"),
        None,
    )
    .into_response()
}

pub(super) async fn settlement(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let wanted = path.ok().and_then(|Path(id)| {
        let parsed = SettlementRef::parse(&id)?;
        Some((id, parsed))
    });
    let Some((id, wanted)) = wanted else {
        return client_error(
            StatusCode::BAD_REQUEST,
            "the id is neither a settlement id (r2:<64 hex>:<64 hex>, from the x402-settlement-id header) nor a payment id (16 to 128 of A-Z a-z 0-9 _ -)".into(),
            Some("id".into()),
        )
        .into_response();
    };
    let digest = match wanted {
        SettlementRef::Digest(digest) => digest,
        SettlementRef::PaymentId(payment_id) => match state.ledger.payment_id(&payment_id).await {
            Ok(Some(digest)) => digest,
            Ok(None) => return not_found("payment id"),
            Err(e) => return ledger_down("settlement lookup failed", "read", e),
        },
    };
    match state.ledger.entry_by_digest(&digest).await {
        Ok(Some(entry)) => Json(describe(&id, &entry)).into_response(),
        Ok(None) => not_found("id"),
        Err(e) => ledger_down("settlement lookup failed", "read", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digests_or_payment_ids_and_nothing_else() {
        let digest = format!("r2:{}:{}", "a".repeat(64), "0".repeat(64));
        assert_eq!(
            SettlementRef::parse(&digest),
            Some(SettlementRef::Digest(digest.clone()))
        );
        assert_eq!(
            SettlementRef::parse("order-2026-12-02-0001"),
            Some(SettlementRef::PaymentId("order-2026-12-02-0001".into()))
        );
        for bad in [
            "",
            "short",
            "r2:abc:def",
            &format!("r2:{}:{}", "A".repeat(64), "0".repeat(64)),
            &format!("r2:{}", "a".repeat(129)),
            &"a".repeat(129),
            "has space in it, sixteen",
            "../../../etc/passwd-long-enough",
        ] {
            assert_eq!(SettlementRef::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_662_400_123), "2025-12-02T08:00:00.123Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
    }
}
