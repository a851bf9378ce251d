//! The listener: HTTP/1.1 connections with a header-read timeout (which also ends idle
//! keep-alive connections: its clock runs whenever a connection waits for a request), a
//! request timeout, and a cap on open connections. Graceful shutdown stops accepting,
//! lets each connection finish the request it is on, and waits for all of them.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::Service;

use crate::config::ServerLimits;
use crate::telemetry;

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then waits
/// for every open connection to finish its request.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: the listener itself is fine.
                tracing::warn!(error = %error, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!(telemetry::CONNECTIONS_REFUSED).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            router.clone(),
            limits.clone(),
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it is closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let request_timeout = limits.request_timeout;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut router = router.clone();
        async move {
            match tokio::time::timeout(request_timeout, router.call(request)).await {
                Ok(answered) => answered,
                Err(_) => Ok::<Response, Infallible>(timed_out(request_timeout)),
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stop.wait_for(|stopping| *stopping) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// A request that took longer than the request timeout (a slow body, most likely). A
/// settlement it started keeps running in its own task.
fn timed_out(limit: std::time::Duration) -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        Json(json!({
            "error": format!("the request took longer than {}s; a settlement it started goes on: retry the same request for its outcome", limit.as_secs()),
            "field": null,
        })),
    )
        .into_response()
}
