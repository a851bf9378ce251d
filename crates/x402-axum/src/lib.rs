//! x402 for resource servers on axum and tower: put a price on a route.
//!
//! ```no_run
//! # use x402_axum::{PaymentLayer, Paywall, Price};
//! # use x402_facilitator_client::{ClientOptions, FacilitatorClient};
//! # fn build(price: Price) -> Result<axum::Router, Box<dyn std::error::Error>> {
//! let facilitator = FacilitatorClient::new("http://127.0.0.1:8080", ClientOptions::default())?;
//! let paid = PaymentLayer::new(facilitator, Paywall::new(price, "today's weather"));
//! let app = axum::Router::new().route(
//!     "/weather",
//!     axum::routing::get(|| async { "sunny" }).layer(paid),
//! );
//! # Ok(app) }
//! ```
//!
//! A request without payment gets 402 that both protocol versions understand: the v2
//! `PAYMENT-REQUIRED` header and the v1 JSON body. A paid request (v2 `PAYMENT-SIGNATURE`
//! or v1 `X-PAYMENT`) is matched to one of the route's prices, verified by the
//! facilitator, handed to the handler, settled, and answered with the handler's content
//! and the settlement header of the client's version (`PAYMENT-RESPONSE` /
//! `X-PAYMENT-RESPONSE`). Every refusal after a payment header is answered in the
//! version of that header. docs/resource-server.md gives the order (verify, handler,
//! settle) and why.
//!
//! | what happened | status |
//! | --- | --- |
//! | no payment header | 402 |
//! | a payment header that cannot be read, or that the facilitator cannot read | 400 |
//! | a payment for another price, refused by verify, or failed to settle | 402, `error` = reason |
//! | the facilitator cannot be reached, or refuses for a reason of its own | 503, `Retry-After`, no content |
//! | settled but not final within the client's pending budget | 504, settlement header with the transaction |
//! | the handler answered 400 or more | the handler's answer, nothing settled |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod answers;
mod claims;
mod flow;
mod paywall;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use x402_facilitator_client::FacilitatorClient;

pub use paywall::{Charge, Paywall, Price, VerifiedPayment, Versions};

/// The tower layer of one paid route.
#[derive(Clone)]
pub struct PaymentLayer {
    shared: Arc<flow::Shared>,
}

impl PaymentLayer {
    /// The route costs what `paywall` says; payments are checked by `facilitator`.
    pub fn new(facilitator: FacilitatorClient, paywall: Paywall) -> Self {
        PaymentLayer {
            shared: Arc::new(flow::Shared {
                paywall,
                client: facilitator,
            }),
        }
    }
}

impl<S> tower::Layer<S> for PaymentLayer {
    type Service = PaymentService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PaymentService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`PaymentLayer`] wraps a handler in.
#[derive(Clone)]
pub struct PaymentService<S> {
    inner: S,
    shared: Arc<flow::Shared>,
}

impl<S> tower::Service<Request> for PaymentService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner service is made ready when it is called (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        Box::pin(async move { Ok(flow::handle(shared, inner, request).await) })
    }
}
