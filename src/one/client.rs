//! [`Client`]: [`OneApi`](super::OneApi) over oned's XML-RPC endpoint. It owns the session
//! string (never logged, never in an error, hidden from `Debug`), the retry policy (transport
//! failures only, and a write only when it cannot have reached oned) and the reading of
//! OpenNebula's answer array `[ok, result, code, …]` into [`super::Error`]. The calls
//! themselves are in `client/api.rs`, the XML documents they return in `client/document.rs`.

mod api;
mod document;
#[cfg(test)]
pub(crate) mod test_server;
mod transport;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::xmlrpc::{self, Element, Value};
use super::{Code, Error, Result};
use transport::{Repeat, Transport};

const SYSTEM_VERSION: &str = "one.system.version";
const USER_INFO: &str = "one.user.info";
const GROUP_INFO: &str = "one.group.info";

/// Timeouts and retries of the HTTP exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How long establishing a TCP connection to oned may take.
    pub connect_timeout: Duration,
    /// How long one exchange (request sent, whole answer read) may take; pool answers of a
    /// big installation are large, hence generous.
    pub request_timeout: Duration,
    /// Attempts per call, the first included, when the transport fails (or oned answers a read
    /// with its INTERNAL error).
    pub tries: u32,
    /// Wait before the first retry; doubled before each further one.
    pub backoff: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            tries: 3,
            backoff: Duration::from_millis(100),
        }
    }
}

/// Why a [`Client`] could not be made. Never carries the session or the file's content.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid OpenNebula endpoint '{endpoint}': {reason}; use http://host:2633/RPC2")]
    Endpoint { endpoint: String, reason: String },
    #[error("cannot read the one_auth file {}: {source}; create it with `user:password` on its first line", path.display())]
    AuthFileUnreadable { path: PathBuf, source: std::io::Error },
    #[error("the one_auth file {} is empty; write `user:password` on its first line", path.display())]
    AuthFileEmpty { path: PathBuf },
    #[error("the one_auth file {} does not hold `user:password` on its first line (no ':')", path.display())]
    AuthFileNoColon { path: PathBuf },
}

/// `one.user.info`: a user (`-1`: who the session authenticates as).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    /// The primary group (0 is oneadmin).
    pub gid: i64,
    pub gname: String,
    /// Every group the user is in, the primary one included.
    pub groups: Vec<i64>,
}

/// `one.group.info`: a group and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub name: String,
    /// The ids of the users in the group (as primary or secondary group).
    pub users: Vec<i64>,
}

/// oned's XML-RPC endpoint with a session. Cloning shares the connection pool.
#[derive(Clone)]
pub struct Client {
    endpoint: String,
    session: String,
    options: Options,
    transport: Transport,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("session", &"<redacted>")
            .field("options", &self.options)
            .finish()
    }
}

impl Client {
    /// A client for `endpoint` (`http://host:port/RPC2`) with `session` (`user:password`).
    /// No connection is made until the first call.
    pub fn new(endpoint: &str, session: String, options: Options) -> Result<Client, SetupError> {
        let invalid = |reason: &str| SetupError::Endpoint { endpoint: endpoint.to_owned(), reason: reason.to_owned() };
        let uri: hyper::Uri = endpoint.parse().map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(invalid("only http:// is supported")),
            None => return Err(invalid("it lacks http://")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("it lacks a host"));
        }
        let transport = Transport::new(uri, options.connect_timeout, options.request_timeout);
        Ok(Client { endpoint: endpoint.to_owned(), session, options, transport })
    }

    /// The same endpoint, options and connection pool with another session: what a server
    /// uses to ask oned on behalf of each of its callers (the session travels in each call's
    /// body, so sharing the keep-alive connections shares nothing of the callers').
    pub fn with_session(&self, session: String) -> Client {
        Client { session, ..self.clone() }
    }

    /// A client whose session is the first line of a one_auth file (`user:password`).
    pub fn from_auth_file(endpoint: &str, path: &Path, options: Options) -> Result<Client, SetupError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SetupError::AuthFileUnreadable { path: path.to_owned(), source })?;
        let session = text.lines().next().unwrap_or_default().trim();
        if session.is_empty() {
            return Err(SetupError::AuthFileEmpty { path: path.to_owned() });
        }
        if !session.contains(':') {
            return Err(SetupError::AuthFileNoColon { path: path.to_owned() });
        }
        Client::new(endpoint, session.to_owned(), options)
    }

    /// `one.system.version`: oned's version, e.g. `7.0.0`.
    pub async fn system_version(&self) -> Result<String> {
        let value = self.call(SYSTEM_VERSION, "oned", &[], Repeat::Safe).await?;
        match value {
            Value::String(version) => Ok(version),
            other => Err(unexpected(SYSTEM_VERSION, "oned", &format!("a version string, not {other:?}"))),
        }
    }

    /// `one.user.info(-1)`: the user the session authenticates as.
    pub async fn user_info(&self) -> Result<User> {
        self.info(USER_INFO, "user -1", &[Value::Int(-1)], document::user).await
    }

    /// `one.user.info(id)`: another user, e.g. the new owner of a chown. An unknown id is
    /// [`Error::NoExists`]; a session outside the `oneadmin` group may read only its own user
    /// ([`Error::Authorization`] for the others).
    pub async fn user_by_id(&self, id: i64) -> Result<User> {
        self.info(USER_INFO, &format!("user {id}"), &[Value::Int(id)], document::user).await
    }

    /// `one.group.info(id)` (`-1`: the session's primary group), e.g. the new group of a
    /// chgrp. An unknown id is [`Error::NoExists`]; a session outside the `oneadmin` group may
    /// read only its own groups ([`Error::Authorization`] for the others).
    pub async fn group_by_id(&self, id: i64) -> Result<Group> {
        self.info(GROUP_INFO, &format!("group {id}"), &[Value::Int(id)], document::group).await
    }

    /// Sends `method(session, params…)` and returns the result of a successful answer. One
    /// attempt budget (`tries`, doubling backoff) covers both reasons to send again: a transport
    /// failure that [`transport::Failure::is_retryable`] allows, and a read answered with oned's
    /// INTERNAL error (a busy database, a failing driver): reading twice changes nothing. A
    /// write is never repeated after oned may have received it.
    async fn call(&self, method: &'static str, object: &str, params: &[Value], repeat: Repeat) -> Result<Value> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::String(self.session.clone()));
        all.extend_from_slice(params);
        let body = xmlrpc::encode_call(method, &all);
        let mut backoff = self.options.backoff;
        let mut attempt = 1;
        loop {
            tracing::debug!(call = method, object, attempt, "calling OpenNebula");
            let (result, retryable) = match self.transport.post(&body).await {
                Ok(answer) => {
                    let result = self.decode(method, object, &answer);
                    let internal = matches!(result, Err(Error::Internal { .. }));
                    (result, internal && repeat == Repeat::Safe)
                }
                Err(failure) => {
                    let code = match failure {
                        transport::Failure::TimedOut(_) => Code::Timeout,
                        _ => Code::Transport,
                    };
                    let tries = if attempt == 1 { "1 attempt".to_owned() } else { format!("{attempt} attempts") };
                    let error = code.error(method, object, format!("{failure} ({tries} to {})", self.endpoint));
                    (Err(error), failure.is_retryable(repeat))
                }
            };
            match result {
                Err(error) if retryable && attempt < self.options.tries => {
                    tracing::debug!(call = method, object, attempt, %error, "retrying OpenNebula call");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// An answer's body: an XML-RPC fault, or OpenNebula's `[ok, result, code]`.
    fn decode(&self, method: &'static str, object: &str, answer: &str) -> Result<Value> {
        let value = xmlrpc::decode_response(answer).map_err(|e| match e {
            xmlrpc::Error::Fault { code, message } => {
                Code::XmlRpcApi.error(method, object, format!("XML-RPC fault {code}: {}", self.scrub(&message)))
            }
            xmlrpc::Error::Malformed(what) => unexpected(method, object, &what),
        })?;
        self.outcome(method, object, value)
    }

    /// OpenNebula's answer array: `[true, result, …]` or `[false, message, code, (object id)]`.
    fn outcome(&self, method: &'static str, object: &str, value: Value) -> Result<Value> {
        let Value::Array(items) = value else {
            return Err(unexpected(method, object, &format!("the answer is {value:?}, not an array")));
        };
        let mut items = items.into_iter();
        match (items.next(), items.next(), items.next()) {
            (Some(Value::Bool(true)), Some(result), _) => Ok(result),
            (Some(Value::Bool(false)), Some(Value::String(message)), Some(Value::Int(number))) => {
                let message = self.scrub(&message);
                match Code::from_number(number) {
                    Some(code) => Err(code.error(method, object, message)),
                    None => Err(Code::Internal.error(method, object, format!("{message} (error code {number:#x})"))),
                }
            }
            _ => Err(unexpected(method, object, "the answer is not [ok, result, code]")),
        }
    }

    /// An info call: its result is an XML document, read by `parse`.
    async fn info<T>(
        &self,
        method: &'static str,
        object: &str,
        params: &[Value],
        parse: fn(&Element) -> Result<T, String>,
    ) -> Result<T> {
        let root = self.document(method, object, params).await?;
        parse(&root).map_err(|what| unexpected(method, object, &what))
    }

    async fn document(&self, method: &'static str, object: &str, params: &[Value]) -> Result<Element> {
        match self.call(method, object, params, Repeat::Safe).await? {
            Value::String(xml) => Element::parse(&xml).map_err(|what| unexpected(method, object, &what)),
            other => Err(unexpected(method, object, &format!("an XML document, not {other:?}"))),
        }
    }

    /// Removes the session from text oned sent back, should it ever echo it.
    fn scrub(&self, text: &str) -> String {
        if self.session.is_empty() { text.to_owned() } else { text.replace(&self.session, "<redacted>") }
    }
}

/// An answer formwork cannot read: OCA files these under its XML-RPC call failure too.
fn unexpected(method: &'static str, object: &str, what: &str) -> Error {
    Code::Transport.error(method, object, format!("unreadable answer: {what}"))
}

#[cfg(test)]
mod tests;
