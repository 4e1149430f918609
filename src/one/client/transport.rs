//! The HTTP side of the client: one POST of an XML-RPC body over hyper-util's pooled
//! keep-alive client, bounded by the connect and request timeouts, and the classification of
//! what went wrong, which decides whether sending the call again is safe.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::units::error_chain;

/// Whether a call may be sent again after the request may already have reached oned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads (`*.info`, `one.system.version`): sending them twice changes nothing.
    Safe,
    /// Writes (`*.allocate`, `*.delete`, `*.update`, `add_ar`, …): sent again only when the
    /// connection failed before the request went out, so nothing is ever done twice.
    OnlyUnsent,
}

/// Why an exchange produced no answer.
#[derive(Debug)]
pub enum Failure {
    /// The connection could not be made, so the request was never written.
    NotSent(String),
    /// The connection broke after the request may have been written.
    Lost(String),
    /// No complete answer within the request timeout.
    TimedOut(Duration),
    /// An HTTP answer other than 200 OK (a proxy, or not oned at all).
    Status(StatusCode),
}

impl Failure {
    pub fn is_retryable(&self, repeat: Repeat) -> bool {
        match self {
            Failure::NotSent(_) => true,
            Failure::Lost(_) | Failure::TimedOut(_) => repeat == Repeat::Safe,
            Failure::Status(_) => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotSent(why) => write!(f, "could not connect: {why}"),
            Failure::Lost(why) => write!(f, "the connection broke before the answer: {why}"),
            Failure::TimedOut(limit) => write!(f, "no answer within {limit:?}"),
            Failure::Status(status) => write!(f, "the endpoint answered HTTP {status} instead of an XML-RPC answer"),
        }
    }
}

/// A pooled HTTP/1.1 client bound to one endpoint. Cloning shares the connection pool.
#[derive(Clone)]
pub struct Transport {
    http: Pool<HttpConnector, Full<Bytes>>,
    endpoint: Uri,
    request_timeout: Duration,
}

impl Transport {
    pub fn new(endpoint: Uri, connect_timeout: Duration, request_timeout: Duration) -> Transport {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        // hyper-util re-sends on its own only requests it never started to write, which is
        // safe for every call; everything else is decided by `Failure::is_retryable`.
        let http = Pool::builder(TokioExecutor::new()).build(connector);
        Transport { http, endpoint, request_timeout }
    }

    /// POSTs `body` as `text/xml` and returns the answer's body.
    pub async fn post(&self, body: &str) -> Result<String, Failure> {
        let request = Request::post(self.endpoint.clone())
            .header(CONTENT_TYPE, "text/xml")
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| Failure::NotSent(error_chain(&e)))?;
        match tokio::time::timeout(self.request_timeout, self.exchange(request)).await {
            Ok(answer) => answer,
            Err(_) => Err(Failure::TimedOut(self.request_timeout)),
        }
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<String, Failure> {
        let response = self.http.request(request).await.map_err(|e| {
            if e.is_connect() { Failure::NotSent(error_chain(&e)) } else { Failure::Lost(error_chain(&e)) }
        })?;
        if response.status() != StatusCode::OK {
            return Err(Failure::Status(response.status()));
        }
        let body = response.into_body().collect().await.map_err(|e| Failure::Lost(error_chain(&e)))?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unsent_requests_are_retried_for_writes() {
        let lost = Failure::Lost("reset".to_owned());
        let timed_out = Failure::TimedOut(Duration::from_secs(1));
        let unsent = Failure::NotSent("refused".to_owned());
        let status = Failure::Status(StatusCode::BAD_GATEWAY);
        assert!(unsent.is_retryable(Repeat::Safe) && unsent.is_retryable(Repeat::OnlyUnsent));
        assert!(lost.is_retryable(Repeat::Safe) && !lost.is_retryable(Repeat::OnlyUnsent));
        assert!(timed_out.is_retryable(Repeat::Safe) && !timed_out.is_retryable(Repeat::OnlyUnsent));
        assert!(!status.is_retryable(Repeat::Safe) && !status.is_retryable(Repeat::OnlyUnsent));
    }
}
