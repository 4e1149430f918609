//! The only module with SQL. One SQLite file (bundled SQLite) in WAL mode with a busy timeout
//! and foreign keys on; numbered migrations from `migrations/` applied in order and recorded in
//! the database.
//!
//! Durability: a write that returned `Ok` is on disk. Every write goes through one writer
//! thread per store ([`writer`]) whose connection runs `synchronous = FULL`: each commit
//! fsyncs the WAL before any of its callers is answered, so an acknowledged write survives a
//! crash of the process and a power loss alike. The writer groups the writes of concurrent
//! callers into one transaction (each in its own savepoint, so one refused write fails alone)
//! and one fsync.
//!
//! Reads use their own connections, which WAL lets run beside the writer; a read started after
//! a write returned sees it. An in-memory store (tests, benchmarks) has a single connection,
//! shared by the writer thread and the readers under a mutex, since separate connections could
//! not see one private in-memory database.
//!
//! Several formwork processes share the file: the writer's `BEGIN IMMEDIATE` waits out other
//! processes' writes (the busy timeout), and "one running operation per provision" is a unique
//! partial index every process sees.
//!
//! Sensitive values are sealed in the bodies on disk, each bound to its row, Terraform states are
//! sealed whole, and both are clear in the rows returned ([`secrets`], `crate::secrets`): the
//! store seals on write, inside the write's transaction, and opens on read.
//!
//! Every method blocks until its work is done and holds no connection afterwards, so no
//! database handle lives across an `.await`; async code reaches the store through
//! [`Store::call`].

pub mod copy;
pub mod db;
mod events;
mod inspect;
mod logs;
mod operations;
mod pipeline;
pub mod postgres;
mod postgres_tls;
mod provisions;
mod readers;
mod rows;
mod secrets;
mod servers;
mod snapshots;
mod tool_runs;
mod tools;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use db::{Db, SqlError};

pub use events::EventRow;
pub use inspect::{Inspection, inspect, inspect_database};
pub use logs::{Appended, LOG_CHUNK_BYTES};
pub use operations::{AttemptEnd, Fence, Metrics, NOT_STARTED, NewAttempt, Owner, STAGE_BUCKETS, StageMetrics};
pub use provisions::{Checkpoint, Table, tfstate_serial};
pub use rows::{AttemptRow, HistoricEntry, Mode, OperationRow, OperationStatus, Ownership, ProviderRow, ProvisionRow};
pub use secrets::{Rotation, RotationStep};
pub use servers::{NewServer, ServerRow};
pub use snapshots::SnapshotRow;
pub use tool_runs::{Begun, NewToolRun, ToolRunMark};
pub use tools::ToolGroup;

use crate::secrets::{KEY_FILE, Keyring, Source};

use readers::Readers;
use writer::{Target, Writer};

/// The migrations, in order, each in SQLite's SQL and PostgreSQL's. Shipped files are never
/// edited; new ones are appended (`migrations/` and `migrations/postgres/`).
const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_init"),
    migration!(2, "0002_owners_queue"),
    migration!(3, "0003_sealing"),
    migration!(4, "0004_sealed_tfstates"),
    migration!(5, "0005_durable_requests"),
    migration!(6, "0006_bound_seals"),
    migration!(7, "0007_tool_groups"),
    migration!(8, "0008_progress_events"),
    migration!(9, "0009_driver_snapshots"),
    migration!(10, "0010_servers_leases"),
    migration!(11, "0011_provision_logs"),
    migration!(12, "0012_tool_runs"),
    migration!(13, "0013_operation_ids"),
];

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../../migrations/", $name, ".sql")),
            postgres: include_str!(concat!("../../migrations/postgres/", $name, ".sql")),
        }
    };
}
use migration;

/// The schema version this formwork migrates a database to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// How long a connection waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: every statement the store runs fits.
const STATEMENT_CACHE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: i64 },
    #[error(
        "provision {provision_id} is busy: operation {} ({}) is running in process {} since {}; wait for it to end, or cancel it",
        operation.id, operation.kind, operation.owner_pid, operation.created_time
    )]
    Busy { provision_id: i64, operation: Box<OperationRow> },
    #[error(
        "provision {provision_id} changed state under this operation (expected {expected}, found {found}); run the command again"
    )]
    Conflict { provision_id: i64, expected: String, found: String },
    #[error(
        "operation {operation_id} was taken over by another server (epoch {current}; this one held {epoch}): this one stops and writes nothing more"
    )]
    Fenced { operation_id: i64, epoch: i64, current: i64 },
    #[error("{what} {id} changed while this change was being made; make it again on what it is now")]
    Stale { what: &'static str, id: i64 },
    #[error("provider {provider_id} is used by provisions {provisions:?}; deprovision and delete them first")]
    InUse { provider_id: i64, provisions: Vec<i64> },
    #[error("database {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("database {database} cannot be reached: {message}")]
    Unreachable { database: String, message: String },
    #[error("database: stored {what} is not valid: {message}")]
    Corrupt { what: &'static str, message: String },
    #[error("database: {0}")]
    Sql(#[from] SqlError),
    #[error("{0}")]
    Secrets(#[from] crate::secrets::Error),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Sql(SqlError::Sqlite(e))
    }
}

impl From<::postgres::Error> for Error {
    fn from(e: ::postgres::Error) -> Error {
        Error::Sql(SqlError::Postgres(e))
    }
}

/// The formwork database. Share it as `Arc<Store>`; dropping the last handle stops its writer
/// thread (after answering the writes in hand).
pub struct Store {
    writer: Writer,
    readers: Readers,
    /// Bounds the blocking threads [`Store::call`] occupies at once: a thousand provisions
    /// waiting for their checkpoints wait here, as tasks, rather than each holding an OS
    /// thread (and its stack and allocator arena). More threads than this would not commit
    /// faster: the writer groups whatever is pending.
    calls: tokio::sync::Semaphore,
    /// The keys that seal and open sensitive values.
    keys: Arc<Keyring>,
    /// `<database>.secrets-lock`, held by a key rotation (none for an in-memory store).
    rotation_lock: Option<PathBuf>,
    /// The PostgreSQL database, when the store is one: its URL and how to connect.
    postgres: Option<(String, postgres::Connector)>,
}

/// How many [`Store::call`]s run on blocking threads at once.
const CALL_THREADS: usize = 32;

impl Store {
    /// Opens (creating if needed) the database file, private to its owner, and migrates it, with
    /// the key file beside it (`secret.key`, created with the database).
    pub fn open(path: &Path) -> Result<Store, Error> {
        Store::open_with_keys(path, Source::File(path.with_file_name(KEY_FILE)))
    }

    /// Opens the database with keys from `keys`. A database whose sealed values name a key the
    /// source lacks is refused before anything is written.
    pub fn open_with_keys(path: &Path, keys: Source) -> Result<Store, Error> {
        let fail = |message: String| Error::Open { path: path.to_path_buf(), message };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            restrict(dir, 0o700).map_err(|e| fail(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        restrict(path, 0o600).map_err(|e| fail(e.to_string()))?;
        let lock = path.with_file_name(format!("{}.secrets-lock", file_name(path)));
        Store::setup(conn, path, |_| Readers::pool(path), Keyring::new(keys), Some(lock)).map_err(|e| match e {
            // The key's own message says where keys were looked for and what to do.
            err @ Error::Secrets(_) => err,
            other => fail(other.to_string()),
        })
    }

    /// A private in-memory database, for tests and benchmarks of the lifecycle logic; its
    /// sealing key lives as long as the process.
    pub fn open_in_memory() -> Result<Store, Error> {
        let keys = Keyring::new(Source::Ephemeral);
        Store::setup(Connection::open_in_memory()?, Path::new(":memory:"), Readers::Shared, keys, None)
    }

    /// Opens the database `settings` name, SQLite or PostgreSQL, with keys from `keys`.
    pub fn open_database(database: &crate::settings::Database, keys: Source) -> Result<Store, Error> {
        match database {
            crate::settings::Database::Sqlite(path) => Store::open_with_keys(path, keys),
            crate::settings::Database::Postgres(url) => Store::open_postgres(url, keys),
        }
    }

    /// Opens the PostgreSQL database `url` names (it must exist; formwork makes its tables) with
    /// keys from `keys`, and migrates it.
    pub fn open_postgres(url: &str, keys: Source) -> Result<Store, Error> {
        let connector = postgres::Connector::parse(url)?;
        // Fail here, naming the database, rather than in the first write.
        postgres::outside_runtime(|| connector.connect().map(drop))?;
        let shown = connector.shown().to_string();
        let writer = Writer::spawn(Target::Postgres(connector.clone())).map_err(|e| Error::Open {
            path: shown.clone().into(),
            message: format!("starting its writer thread: {e}"),
        })?;
        let place = Some((url.to_string(), connector.clone()));
        Store::finish_setup(writer, Readers::postgres(connector), Keyring::new(keys), None, place).map_err(
            |e| match e {
                err @ (Error::Secrets(_) | Error::Open { .. }) => err,
                other => Error::Open { path: shown.into(), message: other.to_string() },
            },
        )
    }

    fn setup(
        conn: Connection,
        path: &Path,
        readers: impl FnOnce(Arc<Mutex<Connection>>) -> Readers,
        keys: Keyring,
        rotation_lock: Option<PathBuf>,
    ) -> Result<Store, Error> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Content a write replaces or deletes is overwritten with zeros, so a value sealed in
        // place (a migration, a rotation) leaves no clear copy in the file's free space.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let conn = Arc::new(Mutex::new(conn));
        let writer = Writer::spawn(Target::Sqlite(Arc::clone(&conn))).map_err(|e| Error::Open {
            path: path.to_path_buf(),
            message: format!("starting its writer thread: {e}"),
        })?;
        Store::finish_setup(writer, readers(conn), keys, rotation_lock, None)
    }

    fn finish_setup(
        writer: Writer,
        readers: Readers,
        keys: Keyring,
        rotation_lock: Option<PathBuf>,
        postgres: Option<(String, postgres::Connector)>,
    ) -> Result<Store, Error> {
        let store = Store {
            writer,
            readers,
            calls: tokio::sync::Semaphore::new(CALL_THREADS),
            keys: Arc::new(keys),
            rotation_lock,
            postgres,
        };
        if store.migrate()? {
            store.finish_pending_rotation()?;
        }
        Ok(store)
    }

    fn postgres_connector(&self) -> Option<postgres::Connector> {
        self.postgres.as_ref().map(|(_, connector)| connector.clone())
    }

    /// Whether several servers may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.postgres.is_some()
    }

    /// What a `formwork tool-guard` needs to reach this database with this store's keys, as
    /// environment variables; none for SQLite (a lone machine needs no guard).
    pub fn guard_env(&self) -> Option<Vec<(String, String)>> {
        let (url, _) = self.postgres.as_ref()?;
        let mut env = vec![("FORMWORK_DATABASE".to_string(), url.clone())];
        match self.keys.source() {
            Source::File(path) => env.push(("FORMWORK_SECRET_KEY_FILE".into(), path.display().to_string())),
            Source::Given(text) => env.push(("FORMWORK_SECRET_KEY".into(), text.expose().to_string())),
            Source::Ephemeral => {}
        }
        Some(env)
    }

    /// A session lock of `class` on `key` (see [`postgres::SessionLock`]), not yet taken, on a
    /// connection named `name`; none for SQLite, where one machine's processes coordinate
    /// through the database file and their process ids.
    pub fn session_lock(&self, name: &str, class: i32, key: i64) -> Result<Option<postgres::SessionLock>, Error> {
        match &self.postgres {
            Some((_, connector)) => postgres::SessionLock::open(connector, name, class, key).map(Some),
            None => Ok(None),
        }
    }

    /// Runs blocking store work from async code on tokio's blocking pool, so no runtime worker
    /// waits for SQLite or an fsync. This is the way async code reaches the store:
    /// `store.call(move |s| s.provision(id)).await`. Several calls in flight at once have their
    /// writes grouped into shared commits.
    pub async fn call<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.calls.acquire().await.ok();
        let store = Arc::clone(self);
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(result) => result,
            Err(e) => match e.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                // Only a runtime shutting down cancels a blocking task, and then nobody awaits this.
                Err(e) => panic!("store call did not finish: {e}"),
            },
        }
    }

    /// Applies the migrations not yet recorded and checks the secret keys against the database
    /// ([`secrets::check_keys`]), in one transaction; returns whether a key rotation is left to
    /// finish.
    fn migrate(&self) -> Result<bool, Error> {
        let keys = Arc::clone(&self.keys);
        self.write(move |tx| {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_time BIGINT NOT NULL)",
            )?;
            for m in MIGRATIONS {
                let done = tx
                    .prepare_cached("SELECT version FROM schema_migrations WHERE version = ?1")?
                    .exists([m.version])?;
                if !done {
                    tx.execute_batch(if tx.is_postgres() { m.postgres } else { m.sqlite })?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, name, applied_time) VALUES (?1, ?2, ?3)",
                        db::params![m.version, m.name, now()],
                    )?;
                }
            }
            secrets::check_keys(tx, &keys)
        })
    }

    /// The applied migrations, oldest first.
    pub fn migrations(&self) -> Result<Vec<(i64, String)>, Error> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT version, name FROM schema_migrations ORDER BY version")?;
            stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// Runs `f` in the writer thread within the next group commit and returns its result once
    /// the group is durable. An `Err` from `f` rolls back `f`'s own changes only.
    fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> Result<T, Error> + Send + 'static,
    {
        self.writer.submit(f).wait()
    }

    fn read<T: Send>(&self, f: impl FnOnce(&Db<'_>) -> Result<T, Error> + Send) -> Result<T, Error> {
        self.readers.read(f)
    }
}

/// Locks a mutex of the store. A panic while holding one cannot leave SQLite inconsistent
/// (transactions roll back on drop), so a poisoned lock is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Seconds since the Unix epoch, OneForm's time unit.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn json_column<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt { what, message: e.to_string() })
}

#[cfg(test)]
mod secrets_tests;
#[cfg(test)]
mod tests;
