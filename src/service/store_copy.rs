//! Moving an installation to PostgreSQL: `formwork store copy --to URL` copies this machine's
//! stopped SQLite database, row for row with the same ids, into an empty PostgreSQL database
//! (`store::copy`). It works on the settings alone, outside any running service: the source is
//! opened as it is (never migrated, no key needed, nothing unsealed).

use super::Error;
use crate::engine::owner;
use crate::settings::{Database, Settings};
use crate::store::copy::{self, Copied};
use crate::store::postgres::{Connector, is_url, without_password};

pub use crate::store::copy::Table as CopiedTable;

/// What a finished copy did, and what every server on the target needs to know.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreCopy {
    /// The source file.
    pub source: String,
    /// The target, without its password.
    pub target: String,
    pub tables: Vec<CopiedTable>,
    /// The key id the copied sealed values name.
    pub key_id: Option<String>,
    /// Where this installation's keys come from (the key file, or FORMWORK_SECRET_KEY): every
    /// server on the target must be given the same key.
    pub keys: String,
}

/// Copies the SQLite database `settings` name into the empty PostgreSQL database `to`.
/// `progress` hears each table's rows as they go (table, rows so far, whether it is done).
pub fn copy_store(
    settings: &Settings,
    to: &str,
    progress: &mut (dyn FnMut(&str, u64, bool) + Send),
) -> Result<StoreCopy, Error> {
    let source = match &settings.database {
        Database::Sqlite(path) => path,
        postgres @ Database::Postgres(_) => {
            return Err(Error::invalid(format!(
                "the database is already PostgreSQL ({}): store copy moves a SQLite installation; name its file with --database FILE (or FORMWORK_DATABASE)",
                postgres.shown()
            )));
        }
    };
    if !is_url(to) {
        return Err(Error::invalid(format!(
            "--to must name a PostgreSQL database as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, not {}",
            without_password(to)
        )));
    }
    let target = Connector::parse(to)?;
    let alive = |o: &crate::store::Owner| owner::is_alive(o);
    let Copied { tables, key_id } = copy::copy(source, &target, &alive, progress)?;
    Ok(StoreCopy {
        source: source.display().to_string(),
        target: target.shown().to_string(),
        tables,
        key_id,
        keys: settings.secret_keys.describe(),
    })
}

impl From<copy::Error> for Error {
    fn from(e: copy::Error) -> Error {
        match e {
            copy::Error::Refused(message) => Error::not_allowed(message),
            copy::Error::Mismatch { .. } => Error::internal(e),
            copy::Error::Store(e) => e.into(),
        }
    }
}
