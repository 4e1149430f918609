//! Reaching PostgreSQL: the connection settings from a `postgres://` URL, and the lock numbers
//! formwork takes in it.

use std::str::FromStr;
use std::time::Duration;

use super::Error;
use super::db::{PgConn, SqlError};

/// The advisory lock every writer transaction takes first (transaction-scoped), so the writes of
/// all servers on one database are serialised as SQLite serialises those of all processes on one
/// file. The number is formwork's alone ("fwrk" in ASCII).
pub(super) const WRITE_LOCK: i64 = 0x6677_726b;

/// The advisory lock class (the first of the two-key form) held by a server for the whole of a
/// stage of a provision, keyed by the provision's id.
pub const STAGE_LOCK: i32 = 0x6677_0001;
/// The class held by the process guarding a tool run (`formwork tool-guard`) for the tool's life
/// and the saving of the state it left, keyed by the provision's id.
pub const TOOL_LOCK: i32 = 0x6677_0002;

/// How long connecting may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes connections to one PostgreSQL database.
#[derive(Clone)]
pub struct Connector {
    /// The async client's settings; the blocking client's are made from them.
    config: std::sync::Arc<tokio_postgres::Config>,
    /// Idle connections for session locks ([`SessionLock`]), shared by the connector's clones.
    locks: std::sync::Arc<std::sync::Mutex<Vec<PgConn>>>,
    /// TLS, when the URL asks for it (`sslmode=require`).
    tls: Option<super::postgres_tls::Rustls>,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Connector {
    /// Reads a `postgres://` (or `postgresql://`) URL or a `key=value` connection string.
    pub fn parse(url: &str) -> Result<Connector, Error> {
        let shown = without_password(url);
        let fail = |message: String| Error::Open { path: shown.clone().into(), message };
        // `sslrootcert` is libpq's; the client library does not know it.
        let (url, ca_file) = take_param(url, "sslrootcert");
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| {
            fail(format!(
                "not a PostgreSQL connection URL ({e}); write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            ))
        })?;
        let tls = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Require => {
                Some(super::postgres_tls::Rustls::new(ca_file.as_deref().map(std::path::Path::new)).map_err(|e| {
                    fail(format!(
                        "sslmode=require: {e}; name the CA that signed the server's certificate with sslrootcert=FILE"
                    ))
                })?)
            }
            // Without require, no TLS: prefer would try it, and a certificate nobody vouches for
            // would then fail the connection rather than fall back.
            _ => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("formwork");
        }
        config.keepalives(true).keepalives_idle(Duration::from_secs(10));
        Ok(Connector { config: std::sync::Arc::new(config), locks: Default::default(), tls, shown })
    }

    /// The URL as shown in messages (no password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn connect(&self) -> Result<PgConn, Error> {
        self.connect_as(None)
    }

    /// A connection `application_name`d `name` (so `pg_stat_activity` says whose it is).
    pub fn connect_as(&self, name: Option<&str>) -> Result<PgConn, Error> {
        let mut config = postgres::Config::from((*self.config).clone());
        if let Some(name) = name {
            config.application_name(name);
        }
        let connected = match &self.tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(postgres::NoTls),
        };
        Ok(PgConn::new(connected.map_err(|e| self.unreachable(e))?))
    }

    /// A connection that pipelines, for the writer thread ([`super::pipeline`]).
    pub(super) fn connect_pipelined(&self) -> Result<super::pipeline::Pipe, Error> {
        use super::pipeline::Pipe;
        let connected = match &self.tls {
            Some(tls) => Pipe::connect(&self.config, tls.clone()),
            None => Pipe::connect(&self.config, tokio_postgres::NoTls),
        };
        connected.map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, e: postgres::Error) -> Error {
        Error::Unreachable { database: self.shown.clone(), message: SqlError::Postgres(e).to_string() }
    }
}

/// `url` without its query parameter `name`, and that parameter's value.
fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((key, v)) if key == name => {
                value = Some(percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned());
                false
            }
            _ => true,
        })
        .collect();
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    (url, value)
}

/// Whether `database` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// `url` with any password replaced by `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Runs `f`, which uses a PostgreSQL connection, where blocking on it is allowed: the blocking
/// client drives each call on a small runtime of its own, which cannot start on a thread that is
/// driving async tasks. On a worker of a multi-thread tokio runtime `f` runs in `block_in_place`
/// (the worker's other tasks move to another thread); on a current-thread runtime's thread it
/// runs on a scoped thread of its own; elsewhere (plain threads, `spawn_blocking`) as it is.
pub(super) fn outside_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        Ok(_) => std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
        Err(_) => f(),
    }
}

/// A session-level advisory lock on a connection of its own: held until released or until the
/// connection ends (the process died, or the database lost it), whatever the process does
/// meanwhile. Dropped, it is released and its connection goes back to the connector's pool of
/// lock connections (a connection costs PostgreSQL a process; a stage should not).
pub struct SessionLock {
    conn: Option<PgConn>,
    pool: std::sync::Arc<std::sync::Mutex<Vec<PgConn>>>,
    class: i32,
    key: i32,
    held: bool,
    /// What its session is named in `pg_stat_activity` (set with the first try).
    name: String,
}

/// Idle lock connections kept per connector. A server holds one per running stage, so as many
/// as it runs stages at once (its operation slots) are wanted again soon; fewer kept than that,
/// each stage beyond them connects anew (60 stages at once with 16 kept: 211 connections opened
/// for 4,000 transitions, against 34 with 16 at once). Idle, each costs PostgreSQL a process.
const IDLE_LOCKS: usize = 64;

impl SessionLock {
    /// A lock connection, named `name` (in `pg_stat_activity`): an idle one of the pool, else a
    /// new one.
    pub fn open(connector: &Connector, name: &str, class: i32, key: i64) -> Result<SessionLock, Error> {
        let key = i32::try_from(key).map_err(|_| Error::Corrupt {
            what: "lock key",
            message: format!("{key} does not fit an advisory lock key"),
        })?;
        let pool = std::sync::Arc::clone(&connector.locks);
        let idle = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => outside_runtime(|| connector.connect_as(Some(name)))?,
        };
        Ok(SessionLock { conn: Some(conn), pool, class, key, held: false, name: name.to_string() })
    }

    fn client(&mut self) -> &mut postgres::Client {
        self.conn.as_mut().expect("a lock has its connection until dropped").client()
    }

    /// Takes the lock if it is free; false when another session holds it.
    pub fn try_lock(&mut self) -> Result<bool, Error> {
        let (class, key, name) = (self.class, self.key, self.name.clone());
        let client = self.client();
        // Named and tried in one round trip.
        let row = outside_runtime(|| {
            client.query_one(
                "SELECT pg_try_advisory_lock($2, $3), set_config('application_name', $1, false)",
                &[&name, &class, &key],
            )
        })?;
        self.held = row.get(0);
        Ok(self.held)
    }

    /// Takes the lock, trying again every `retry` while another session holds it; `waiting`
    /// hears, once, who holds it. Returns whether it had to wait, or None when `stop` came
    /// first.
    pub async fn acquire(
        &mut self,
        retry: Duration,
        mut waiting: impl FnMut(&str),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Option<bool>, Error> {
        tokio::pin!(stop);
        let mut waited = false;
        while !self.try_lock()? {
            if !waited {
                waiting(&self.holders().unwrap_or_default().join(", "));
                waited = true;
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                () = &mut stop => return Ok(None),
            }
        }
        Ok(Some(waited))
    }

    /// Who holds the lock now, as their sessions name themselves.
    pub fn holders(&mut self) -> Result<Vec<String>, Error> {
        let (class, key) = (self.class, self.key);
        let client = self.client();
        let rows = outside_runtime(|| {
            client.query(
                "SELECT coalesce(a.application_name, '') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid AND l.objid = $2::int::oid
                   AND l.objsubid = 2 AND l.pid <> pg_backend_pid()",
                &[&class, &key],
            )
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

impl Drop for SessionLock {
    /// Releases the lock and keeps the connection for the next one; a connection that cannot
    /// release it is closed, which releases it too.
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        let (class, key, held) = (self.class, self.key, self.held);
        let client = conn.client();
        let released = outside_runtime(|| {
            !held
                || client
                    .query_one("SELECT pg_advisory_unlock($1, $2)", &[&class, &key])
                    .is_ok_and(|r| r.get::<_, bool>(0))
        });
        let mut idle = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if released && !conn.is_closed() && idle.len() < IDLE_LOCKS {
            idle.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(without_password("postgres://fw:s3cret@db:5432/fw?x=1"), "postgres://fw:***@db:5432/fw?x=1");
        assert_eq!(without_password("postgres://fw@db/fw"), "postgres://fw@db/fw");
        let err = Connector::parse("postgres://fw:s3cret@db:notaport/fw").unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("postgres://USER"), "{err}");
    }
}
