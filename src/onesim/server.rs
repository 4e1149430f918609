//! The HTTP side of onesim: [`serve`] accepts connections until `shutdown` completes (the
//! mini-redis shape), serves each with hyper's HTTP/1.1 (keep-alive, as oned's xmlrpc-c does)
//! through an axum router with one route, `POST /RPC2`, then lets the connections in flight
//! finish their requests before it returns.
//!
//! The accept loop is ours rather than `axum::serve` so that an injected fault can drop a
//! connection outright: the handler marks its response, and the connection's task closes the
//! socket without writing a byte, which is what a client sees when oned dies mid-call.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, Response, header};
use axum::response::IntoResponse;
use axum::routing::post;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::one::xmlrpc;

use super::answer::Reply;
use super::sim::Sim;

/// Documents (provisions with their whole history) can be large; oned takes them.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Marks a response whose connection must be dropped unanswered.
#[derive(Clone, Copy)]
struct DropConnection;

/// Serves `sim` on `listener` until `shutdown` completes, then waits for the requests in flight.
/// Accept errors (out of file descriptors, a connection reset before it was accepted) are
/// logged and retried after a pause rather than ending the server. A sim still answering for
/// oned's default endpoint answers for the listener's address (`http://ADDR/RPC2`) instead.
pub async fn serve(listener: TcpListener, sim: Sim, shutdown: impl Future) -> io::Result<()> {
    let sim = match (sim.endpoint() == Sim::DEFAULT_ENDPOINT, listener.local_addr()) {
        (true, Ok(addr)) => sim.with_endpoint(&format!("http://{addr}/RPC2")),
        _ => sim,
    };
    let router = Router::new().route("/RPC2", post(rpc2)).layer(DefaultBodyLimit::max(BODY_LIMIT)).with_state(sim);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, router.clone(), stopped.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "onesim could not accept a connection; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = async { (&mut shutdown).await; } => break,
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One client connection: requests in order until the client closes, the server stops
/// (after the request in flight) or a handler asks for the connection to be dropped.
async fn connection(stream: TcpStream, router: Router, mut stopped: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let dropped = Arc::new(Notify::new());
    let tower = TowerToHyperService::new(router);
    let signal = dropped.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let answer = tower.call(request);
        let signal = signal.clone();
        async move {
            let response: Response<axum::body::Body> = answer.await?;
            if response.extensions().get::<DropConnection>().is_some() {
                signal.notify_one();
                // The connection's task drops this future with the connection.
                std::future::pending::<()>().await;
            }
            Ok::<_, Infallible>(response)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut stopping = *stopped.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "onesim connection ended with an error");
                }
                return;
            }
            () = dropped.notified() => return,
            changed = stopped.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// `POST /RPC2`: the body is an XML-RPC call; the answer is oned's, or a fault.
async fn rpc2(State(sim): State<Sim>, body: axum::body::Bytes) -> axum::response::Response {
    // Bytes, not String: a body that is not UTF-8 is a malformed call (a fault), not an HTTP 400.
    let reply = sim.handle(&String::from_utf8_lossy(&body)).await;
    let latency = sim.faults().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let xml = match reply {
        Reply::Answer(value) => xmlrpc::encode_response(&value),
        Reply::Fault { code, message } => xmlrpc::encode_fault(code, &message),
        Reply::Drop => {
            let mut response = ().into_response();
            response.extensions_mut().insert(DropConnection);
            return response;
        }
    };
    ([(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}
