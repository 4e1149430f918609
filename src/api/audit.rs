//! The audit log: a JSON line for every write request to `/api/v1` (any method but GET, HEAD
//! and OPTIONS), whatever became of it, appended to `audit_log` (mode 0600):
//!
//! ```json
//! {"time":"2026-12-01T19:04:05.123Z","client":"10.0.0.7:51234","user":"alice","uid":3,
//!  "method":"POST","path":"/api/v1/provisions","status":201,"ms":14}
//! ```
//!
//! `user` is who the request was made as: the authenticated caller (with `uid`, and
//! `playbook_of` the provision for a playbook's session), or for a refused login the name it
//! gave (`"authenticated": false`). Nothing else of the request is
//! read: no body, query string or header value, so no secret can reach the log.
//!
//! SIGHUP reopens the file at its path ([`Audit::reopen`]), as log rotation expects (logrotate's
//! `create` with `postrotate kill -HUP`); `copytruncate` works too, the file being opened to
//! append.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::service::{Caller, Error};

/// Who a response was made for, left in its extensions by the authentication layer.
#[derive(Debug, Clone)]
pub enum Who {
    Caller(Caller),
    /// A refused login, by the user name it gave (if it gave one).
    Refused(Option<String>),
}

/// The open audit log.
pub struct Audit {
    file: Mutex<std::fs::File>,
    path: PathBuf,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Audit {
    /// Opens (or creates, 0600, with its folder) the log at `path` for appending.
    pub fn open(path: &Path) -> Result<Audit, Error> {
        Ok(Audit { file: Mutex::new(Audit::open_file(path)?), path: path.to_path_buf() })
    }

    /// Writes from now on to the file at the log's path, created again if a rotation moved it
    /// away. Lines go on to the file already open when the path cannot be opened.
    pub fn reopen(&self) {
        match Audit::open_file(&self.path) {
            Ok(file) => {
                *self.file.lock().unwrap() = file;
                tracing::info!(path = %self.path.display(), "audit log reopened");
            }
            Err(e) => tracing::error!(error = %e, "audit log not reopened; writing on to the file already open"),
        }
    }

    fn open_file(path: &Path) -> Result<std::fs::File, Error> {
        let fail = |e: std::io::Error| {
            Error::invalid(format!(
                "cannot open the audit log {}: {e}; set audit_log (FORMWORK_AUDIT_LOG) to a file formwork may write",
                path.display()
            ))
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(fail)
    }

    /// Appends one line in one write (so lines of concurrent requests never interleave).
    fn append(&self, entry: &Value) {
        let mut line = entry.to_string();
        line.push('\n');
        if let Err(e) = self.file.lock().unwrap().write_all(line.as_bytes()) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit log");
        }
    }
}

/// Whether `method` changes something.
fn writes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware: runs the request and records it if it was a write.
pub async fn record(
    axum::extract::State(audit): axum::extract::State<Arc<Audit>>,
    req: Request,
    next: Next,
) -> Response {
    if !writes(req.method()) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let method = req.method().to_string();
    let path = match req.extensions().get::<axum::extract::OriginalUri>() {
        Some(original) => original.path().to_string(),
        None => req.uri().path().to_string(),
    };
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
    let response = next.run(req).await;
    let mut entry = Map::new();
    entry.insert("time".into(), json!(jiff::Timestamp::now().to_string()));
    entry.insert("client".into(), json!(client));
    match response.extensions().get::<Who>() {
        Some(Who::Caller(caller)) => {
            entry.insert("user".into(), json!(caller.uname));
            entry.insert("uid".into(), json!(caller.uid));
            if let Some(provision) = caller.confined_to {
                // A playbook's session: oneadmin's name, one provision's reach.
                entry.insert("playbook_of".into(), json!(provision));
            }
        }
        Some(Who::Refused(user)) => {
            entry.insert("user".into(), json!(user));
            entry.insert("authenticated".into(), json!(false));
        }
        None => {
            entry.insert("user".into(), Value::Null);
        }
    }
    entry.insert("method".into(), json!(method));
    entry.insert("path".into(), json!(path));
    entry.insert("status".into(), json!(response.status().as_u16()));
    entry.insert("ms".into(), json!(started.elapsed().as_millis() as u64));
    audit.append(&Value::Object(entry));
    response
}
