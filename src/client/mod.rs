//! The formwork REST API as a typed client: what `formwork --server URL` runs every command
//! through. Each method answers what the matching [`Service`](crate::service::Service) or
//! [`Drivers`](crate::service::Drivers) method answers locally — served bodies unwrapped from
//! OneForm's `DOCUMENT` wrapper, [`Ran`](crate::service::Ran), [`Started`], [`Shown`] — and
//! every refusal comes back as the [`Error`] variant the server answered from (its HTTP
//! status), so the command layer prints and exits as it does locally.
//!
//! Map: [`config`] (URL and credentials: `--server`/`ONEFORM_URL`, `ONEFORM_USER`/
//! `ONEFORM_PASSWORD`, the `ONE_AUTH` file; `ONEFORM_CA_FILE` for `https://`) → [`transport`]
//! (hyper, Basic auth, timeouts, the server being down) over [`tls`] (plain or TLS connections,
//! which certificates are trusted, handshake failures in words) → [`answer`] (error bodies to [`Error`], operation rows) → `drivers`,
//! `providers`, `provisions` (one method per route) → [`follow`] (a long operation the server
//! runs, followed to its end through its log and its operation record).
//!
//! [`Started`]: crate::service::Started
//! [`Shown`]: crate::service::Shown

pub mod answer;
pub mod config;
mod drivers;
pub mod follow;
mod providers;
mod provisions;
mod servers;
pub mod tls;
pub mod transport;

#[cfg(test)]
mod tests;

use std::time::Duration;

use hyper::Method;
use serde_json::Value;

pub use config::{CaFile, CaSource, Config, Credentials};
pub use follow::LogLine;

use crate::service::Error;
use transport::Transport;

/// A client of one formwork server, with one user's credentials.
pub struct Client {
    transport: Transport,
    /// How often a followed operation's log and record are read again.
    poll: Duration,
}

impl Client {
    pub fn new(config: &Config) -> Result<Client, Error> {
        Ok(Client { transport: Transport::new(config)?, poll: config.poll })
    }

    /// The server's base URL, as given (for messages).
    pub fn url(&self) -> &str {
        self.transport.url()
    }

    async fn get(&self, path: &str) -> Result<Value, Error> {
        self.transport.json(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.transport.json(Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.transport.json(Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Result<Value, Error> {
        self.transport.json(Method::DELETE, path, None).await
    }
}

/// One path segment, percent-encoded (driver names, deployment names).
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A served body unwrapped from OneForm's document (`DOCUMENT.TEMPLATE.<key>`); a bare body
/// (no `DOCUMENT`) is taken as it is.
fn unwrap_document(mut doc: Value, key: &str) -> Result<Value, Error> {
    let Some(document) = doc.get_mut("DOCUMENT") else { return Ok(doc) };
    match document.get_mut("TEMPLATE").and_then(|t| t.get_mut(key)) {
        Some(body) => Ok(body.take()),
        None => Err(Error::internal(format!("the formwork server answered a document without TEMPLATE.{key}"))),
    }
}

/// Every document of a list answer, unwrapped.
fn unwrap_documents(list: Value, key: &str) -> Result<Vec<Value>, Error> {
    match list {
        Value::Array(docs) => docs.into_iter().map(|d| unwrap_document(d, key)).collect(),
        other => {
            Err(Error::internal(format!("the formwork server answered {} where a list was expected", kind(&other))))
        }
    }
}

/// What kind of JSON value this is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
