//! An example paid API: a weather report behind an x402 paywall.
//!
//! `/weather` costs 0.001 test USDC and `/premium/report` 0.005, each paid in x402 v1
//! (`X-PAYMENT`) or v2 (`PAYMENT-SIGNATURE`); `/` and `/free` are free (the latter is the
//! baseline the benchmark compares a paid route with). `scripts/example.sh` runs it
//! against the facilitator's `dev` chain.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use x402_axum::{PaymentLayer, Paywall, Price};
use x402_facilitator_client::FacilitatorClient;
use x402_protocol::{ChainId, TokenAmount};

/// The test USDC of the `dev` chain: Base Sepolia's USDC address on a local anvil.
pub const DEV_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
/// The anvil development account the `dev` chain pays to.
pub const DEV_PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// Where the payments go and in what.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Network, by CAIP-2 id.
    pub network: ChainId,
    /// Token address.
    pub asset: String,
    /// The token's EIP-712 domain name and version (the client signs over them).
    pub token_domain: (String, String),
    /// Recipient of the payments.
    pub pay_to: String,
}

impl Settings {
    /// The `dev` chain's: eip155:84532 (a local anvil), the test USDC, a development
    /// account.
    pub fn dev() -> Self {
        Settings {
            network: ChainId::eip155(84532),
            asset: DEV_USDC.to_owned(),
            token_domain: ("USDC".to_owned(), "2".to_owned()),
            pay_to: DEV_PAY_TO.to_owned(),
        }
    }

    /// A price of `amount` atomic units on this network, exact scheme.
    pub fn price(&self, amount: u64) -> Price {
        let mut extra = Map::new();
        extra.insert("name".into(), Value::from(self.token_domain.0.clone()));
        extra.insert("version".into(), Value::from(self.token_domain.1.clone()));
        Price {
            scheme: "exact".to_owned(),
            network: self.network.clone(),
            asset: self.asset.clone(),
            amount: TokenAmount::from(amount),
            pay_to: self.pay_to.clone(),
            max_timeout_seconds: 60,
            extra: Some(extra),
        }
    }
}

/// What `/weather` costs, in atomic units (6 decimals: 0.001 USDC).
pub const WEATHER_PRICE: u64 = 1_000;
/// What `/premium/report` costs.
pub const REPORT_PRICE: u64 = 5_000;

/// The API, with its paid routes checked by `facilitator`.
pub fn app(facilitator: FacilitatorClient, settings: &Settings) -> Router {
    let mut weather = Paywall::new(settings.price(WEATHER_PRICE), "today's weather");
    weather.mime_type = Some("application/json".into());
    let mut report = Paywall::new(settings.price(REPORT_PRICE), "the premium weather report");
    report.mime_type = Some("application/json".into());
    Router::new()
        .route("/", get(index))
        .route("/free", get(|| async { Json(json!({ "free": true })) }))
        .route(
            "/weather",
            get(weather_report).layer(PaymentLayer::new(facilitator.clone(), weather)),
        )
        .route(
            "/premium/report",
            get(premium_report).layer(PaymentLayer::new(facilitator, report)),
        )
}

async fn index() -> Json<Value> {
    Json(json!({
        "routes": {
            "/weather": format!("{WEATHER_PRICE} atomic units (x402 v1 or v2)"),
            "/premium/report": format!("{REPORT_PRICE} atomic units (x402 v1 or v2)"),
            "/free": "free",
        }
    }))
}

async fn weather_report() -> Json<Value> {
    Json(json!({ "weather": "sunny", "temperature_c": 21 }))
}

async fn premium_report() -> Json<Value> {
    Json(json!({ "report": "sunny all week", "days": 7 }))
}
