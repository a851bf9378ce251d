//! `GET /discovery/resources`: the resources that paid to be listed (the `bazaar` extension),
//! in the shape `@x402/extensions`' `listResources` reads, with its filters (`type`,
//! `payTo`, `scheme`, `network`, `extensions`) and paging (`limit`, `offset`). Read from the
//! ledger only; off (404) while the `discovery_enabled` flag is.

use axum::extract::RawQuery;
use serde_json::Map;
use x402_ledger::{Listed, ListingFilter};

use super::settlements::rfc3339;
use super::*;
use x402_protocol::bazaar::{responses, Offer, EXTENSION};

/// Items a page holds when the caller names no `limit`, and at most.
pub const MAX_PAGE: u32 = 100;

/// The largest offset (what the store's signed 64-bit integers hold).
pub const MAX_OFFSET: u64 = i64::MAX as u64;

/// The longest filter value read (an address, a CAIP-2 id, a scheme are far shorter).
pub const MAX_FILTER_CHARS: usize = 256;

/// What the query asks for.
#[derive(Debug, PartialEq, Eq)]
struct Query {
    filter: ListingFilter,
    /// `extensions=` names one we do not list under: nothing matches.
    foreign_extension: bool,
    limit: u32,
    offset: u64,
}

fn bad(field: &str, error: String) -> ClientError {
    client_error(StatusCode::BAD_REQUEST, error, Some(field.into()))
}

impl Query {
    /// Reads the query string; unknown parameters are ignored (a newer client's `cursor`).
    fn parse(raw: Option<&str>) -> Result<Query, ClientError> {
        let mut query = Query {
            filter: ListingFilter::default(),
            foreign_extension: false,
            limit: MAX_PAGE,
            offset: 0,
        };
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            // A filter no row can hold (PostgreSQL text holds no NUL) is the caller's mistake.
            if value.chars().count() > MAX_FILTER_CHARS || value.chars().any(char::is_control) {
                let error = format!("{name} must be at most {MAX_FILTER_CHARS} characters of text without control characters");
                return Err(bad(&name, error));
            }
            let text = Some(value.clone().into_owned()).filter(|v| !v.is_empty());
            match name.as_ref() {
                "type" => query.filter.kind = text,
                "payTo" => query.filter.pay_to = text,
                "scheme" => query.filter.scheme = text,
                "network" => query.filter.network = text,
                "extensions" => {
                    query.foreign_extension = text
                        .is_some_and(|names| !names.split(',').any(|name| name.trim() == EXTENSION))
                }
                "limit" => {
                    query.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            bad(
                                "limit",
                                format!("limit must be a whole number from 1 to {MAX_PAGE}"),
                            )
                        })?
                }
                "offset" => {
                    query.offset =
                        value
                            .parse()
                            .ok()
                            .filter(|n| *n <= MAX_OFFSET)
                            .ok_or_else(|| {
                                bad(
                                    "offset",
                                    format!("offset must be a whole number from 0 to {MAX_OFFSET}"),
                                )
                            })?
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

/// One catalog entry as the official client reads it.
fn item(listed: &Listed) -> Value {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let listing = &listed.listing;
    let mut item = Map::new();
    item.insert("resource".into(), json!(listing.resource));
    item.insert("type".into(), json!(listing.kind));
    item.insert("x402Version".into(), json!(listing.x402_version));
    item.insert("accepts".into(), parse(&listing.accepts));
    item.insert("lastUpdated".into(), json!(rfc3339(listed.updated_at)));
    if let Some(description) = &listing.description {
        item.insert("description".into(), json!(description));
    }
    if let Some(mime_type) = &listing.mime_type {
        item.insert("mimeType".into(), json!(mime_type));
    }
    item.insert(
        "extensions".into(),
        json!({ EXTENSION: parse(&listing.extension) }),
    );
    Value::Object(item)
}

/// Lists the resource of a payment that offered it, once the payment settled; the
/// `EXTENSION-RESPONSES` value that says how it went. A catalog write that fails costs the
/// listing, never the settlement (the next settlement for the resource lists it).
pub(super) async fn list_settled_resource(
    state: &AppState,
    (offer, digest): (Offer, &str),
    settlement: &Settlement,
) -> Option<String> {
    let offered = match offer {
        Offer::Absent => return None,
        Offer::Rejected(why) => return Some(responses("rejected", Some(&why))),
        Offer::Listing(listing) => *listing,
    };
    if !settlement.success {
        return Some(responses(
            "rejected",
            Some("not listed: the payment has not settled"),
        ));
    }
    let listing = x402_ledger::Listing {
        key: offered.key,
        resource: offered.resource,
        kind: offered.kind,
        x402_version: 2,
        accepts: offered.accepts,
        extension: offered.extension,
        description: offered.description,
        mime_type: offered.mime_type,
        network: offered.network,
        scheme: offered.scheme,
        pay_to: offered.pay_to,
        digest: digest.to_owned(),
    };
    match state.ledger.list_resource(&listing).await {
        Ok(()) => Some(responses("success", None)),
        Err(error) => {
            tracing::warn!(error = %error, "resource not listed: ledger unavailable");
            let why = "not listed: the facilitator could not write its catalog";
            Some(responses("rejected", Some(why)))
        }
    }
}

pub(super) async fn discovery_resources(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Response {
    if !state.flags.snapshot().discovery_enabled {
        return client_error(
            StatusCode::NOT_FOUND,
            "discovery is switched off on this facilitator (discovery_enabled=false)".into(),
            None,
        )
        .into_response();
    }
    let query = match Query::parse(raw.as_deref()) {
        Ok(query) => query,
        Err(error) => return error.into_response(),
    };
    let page = if query.foreign_extension {
        Ok((Vec::new(), 0))
    } else {
        state
            .ledger
            .listings(&query.filter, query.limit, query.offset)
            .await
    };
    let (listed, total) = match page {
        Ok(page) => page,
        Err(error) => return ledger_down("discovery listing failed", "read", error),
    };
    Json(json!({
        "x402Version": 2,
        "items": listed.iter().map(item).collect::<Vec<_>>(),
        "pagination": {"limit": query.limit, "offset": query.offset, "total": total},
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_reads_filters_and_paging_and_names_a_bad_number() {
        let query = Query::parse(Some("type=http&payTo=0xAb&limit=5&offset=10&cursor=x")).unwrap();
        assert_eq!(query.filter.kind.as_deref(), Some("http"));
        assert_eq!(query.filter.pay_to.as_deref(), Some("0xAb"));
        assert_eq!((query.limit, query.offset), (5, 10));
        assert!(!query.foreign_extension);
        let defaults = Query::parse(None).unwrap();
        assert_eq!((defaults.limit, defaults.offset), (MAX_PAGE, 0));
        assert!(
            Query::parse(Some("extensions=sign-in-with-x"))
                .unwrap()
                .foreign_extension
        );
        assert!(
            !Query::parse(Some("extensions=bazaar"))
                .unwrap()
                .foreign_extension
        );
        for (raw, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=-1", "limit"),
            ("limit=1e3", "limit"),
            ("offset=-1", "offset"),
            ("offset=18446744073709551616", "offset"),
            ("offset=9223372036854775808", "offset"),
        ] {
            let error = Query::parse(Some(raw)).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{raw}");
            assert_eq!(error.field.as_deref(), Some(field), "{raw}");
        }
        for raw in ["network=%00", "payTo=a%0Ab", "whatever=%7F"] {
            let error = Query::parse(Some(raw)).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{raw}");
        }
        let long = format!("scheme={}", "e".repeat(257));
        assert_eq!(
            Query::parse(Some(&long)).unwrap_err().field.as_deref(),
            Some("scheme")
        );
        let odd = Query::parse(Some("type=%ZZ&payTo=")).unwrap();
        assert_eq!(odd.filter.kind.as_deref(), Some("%ZZ"));
        assert_eq!(odd.filter.pay_to, None, "an empty filter matches all");
    }
}
