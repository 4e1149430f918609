//! The only module with SQL. One SQLite file (bundled SQLite) in WAL mode with a busy timeout
//! and foreign keys on; numbered migrations from `migrations/` applied in order and recorded in
//! the database. Every method takes the connection lock, does its work and releases it, so no
//! database handle is ever held across an `.await`.
//!
//! Durability: `synchronous = NORMAL` in WAL mode survives any crash of the process (the case
//! the lifecycle is built for); a power loss may drop the last few commits.

mod operations;
mod provisions;
mod rows;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

pub use operations::{AttemptEnd, Owner};
pub use provisions::Checkpoint;
pub use rows::{AttemptRow, HistoricEntry, OperationRow, OperationStatus, ProviderRow, ProvisionRow};

/// The migrations, in order. Shipped files are never edited; new ones are appended.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "0001_init", include_str!("../../migrations/0001_init.sql"))];

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: i64 },
    #[error(
        "provision {provision_id} is busy: operation {} ({}) is running in process {} since {}; wait for it (`formwork provision logs {provision_id} --follow`) or stop it (`formwork provision cancel {provision_id}`)",
        operation.id, operation.kind, operation.owner_pid, operation.created_time
    )]
    Busy { provision_id: i64, operation: Box<OperationRow> },
    #[error(
        "provision {provision_id} changed state under this operation (expected {expected}, found {found}); run the command again"
    )]
    Conflict { provision_id: i64, expected: String, found: String },
    #[error("provider {provider_id} is used by provisions {provisions:?}; deprovision and delete them first")]
    InUse { provider_id: i64, provisions: Vec<i64> },
    #[error("database {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("database: stored {what} is not valid: {message}")]
    Corrupt { what: &'static str, message: String },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The formwork database.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database file, private to its owner, and migrates it.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let fail = |message: String| Error::Open { path: path.to_path_buf(), message };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            restrict(dir, 0o700).map_err(|e| fail(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        restrict(path, 0o600).map_err(|e| fail(e.to_string()))?;
        Store::setup(conn).map_err(|e| fail(e.to_string()))
    }

    /// A private in-memory database, for tests and benchmarks of the lifecycle logic.
    pub fn open_in_memory() -> Result<Store, Error> {
        Store::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<Store, Error> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let store = Store { conn: Mutex::new(conn) };
        store.migrate()?;
        Ok(store)
    }

    /// Applies the migrations not yet recorded, each in its own transaction.
    fn migrate(&self) -> Result<(), Error> {
        let mut conn = self.lock();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_time INTEGER NOT NULL)",
        )?;
        for (version, name, sql) in MIGRATIONS {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let done: Option<i64> = tx
                .query_row("SELECT version FROM schema_migrations WHERE version = ?1", [version], |r| r.get(0))
                .optional()?;
            if done.is_none() {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_time) VALUES (?1, ?2, ?3)",
                    rusqlite::params![version, name, now()],
                )?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// The applied migrations, oldest first.
    pub fn migrations(&self) -> Result<Vec<(i64, String)>, Error> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT version, name FROM schema_migrations ORDER BY version")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Seconds since the Unix epoch, OneForm's time unit.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn json_column<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt { what, message: e.to_string() })
}

#[cfg(test)]
mod tests;
