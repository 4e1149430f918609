//! The HTTP side of the client: one JSON request to `<url>/api/v1<path>` over hyper-util's
//! pooled keep-alive client (plain or TLS connections from [`tls::Connector`]), with Basic
//! authentication, the connect and request timeouts, and the answer turned into a JSON value or
//! the [`Error`] its status stands for. A server that cannot be reached is one clear error
//! naming the URL and `formwork serve`; a TLS handshake that failed says why in words.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::config::Config;
use super::{answer, tls};
use crate::service::{Error, System};
use crate::units::error_chain;

/// The largest answer read: lists of provisions with their historic stay far below it.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// A pooled HTTP/1.1 client bound to one server and one user.
pub struct Transport {
    http: Pool<tls::Connector, Full<Bytes>>,
    url: String,
    /// `Basic …`, marked sensitive so hyper never shows it.
    auth: HeaderValue,
    request_timeout: Duration,
}

impl Transport {
    pub fn new(config: &Config) -> Result<Transport, Error> {
        let http = Pool::builder(TokioExecutor::new()).build(tls::Connector::new(config)?);
        let mut auth = HeaderValue::from_str(&config.credentials.basic())
            .map_err(|_| Error::invalid("the user name or password holds characters HTTP headers cannot carry"))?;
        auth.set_sensitive(true);
        Ok(Transport { http, url: config.url.clone(), auth, request_timeout: config.request_timeout })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one request under `/api/v1` and returns the JSON answer (`null` for an empty
    /// one, e.g. 204); a non-2xx answer is the [`Error`] its status and body say.
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        let (status, bytes) = self.send(method, &format!("/api/v1{path}"), body).await?;
        if !status.is_success() {
            return Err(answer::error(status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::internal(format!(
                "the formwork server at {} answered {path} with something that is not JSON: {e}",
                self.url
            ))
        })
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(StatusCode, Bytes), Error> {
        let uri = format!("{}{path}", self.url);
        let body = match body {
            Some(value) => Bytes::from(serde_json::to_vec(value)?),
            None => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(&uri)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("formwork/", env!("CARGO_PKG_VERSION"), " (CLI)"))
            .body(Full::new(body))
            .map_err(|e| Error::invalid(format!("'{uri}' cannot be requested: {e}")))?;
        match tokio::time::timeout(self.request_timeout, self.exchange(request)).await {
            Ok(answer) => answer,
            Err(_) => Err(self.failed(format!("no answer within {}", crate::units::duration(self.request_timeout)))),
        }
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), Error> {
        let response = self.http.request(request).await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES);
        let bytes = limited.collect().await.map_err(|e| self.failed(format!("the answer broke off: {e}")))?.to_bytes();
        Ok((status, bytes))
    }

    /// The request could not be sent: a TLS handshake that failed says why (the server runs,
    /// so asking whether it does would mislead); anything else is [`Transport::failed`].
    fn unreachable(&self, error: &hyper_util::client::legacy::Error) -> Error {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(current) = cause {
            if let Some(refused) = current.downcast_ref::<tls::Refused>() {
                return Error::Upstream {
                    system: System::Formwork,
                    source: format!("cannot talk to the formwork server at {}: {refused}", self.url).into(),
                };
            }
            cause = current.source();
        }
        self.failed(error_chain(error))
    }

    /// The server could not be reached or did not answer.
    fn failed(&self, why: String) -> Error {
        Error::Upstream {
            system: System::Formwork,
            source: format!("cannot reach the formwork server at {}: {why}; is `formwork serve` running?", self.url)
                .into(),
        }
    }
}
