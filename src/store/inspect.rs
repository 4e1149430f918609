//! A look at a database file that changes nothing, for `formwork doctor`: which migration it
//! is at against the newest this formwork knows, and which key its sealed values name. Opened
//! read-only, with no migration and no key check ([`Store::open`](super::Store::open) does both,
//! and writes); WAL lets it read beside a running `formwork serve`.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{BUSY_TIMEOUT, Error, MIGRATIONS};

/// What [`inspect`] found in a database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The newest migration applied to it (0: none).
    pub schema: i64,
    /// The newest migration this formwork knows, which its next open brings it to.
    pub known: i64,
    /// The key its sealed values are sealed with (the `sealing` row), once it names one: a
    /// process without that key is refused at open.
    pub sealing_key: Option<String>,
}

/// Reads the database `database` names without writing to it; `None` when there is no file (or
/// no formwork table in the PostgreSQL database) yet.
pub fn inspect_database(database: &crate::settings::Database) -> Result<Option<Inspection>, Error> {
    match database {
        crate::settings::Database::Sqlite(path) => inspect(path),
        crate::settings::Database::Postgres(url) => inspect_postgres(url),
    }
}

fn inspect_postgres(url: &str) -> Result<Option<Inspection>, Error> {
    let connector = super::postgres::Connector::parse(url)?;
    super::postgres::outside_runtime(|| {
        let mut conn = connector.connect()?;
        let client = conn.client();
        let mut tx = client.build_transaction().read_only(true).start()?;
        let table = |tx: &mut ::postgres::Transaction<'_>, name: &str| -> Result<bool, Error> {
            Ok(tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])?.get(0))
        };
        if !table(&mut tx, "schema_migrations")? {
            return Ok(None);
        }
        let schema: i64 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?.get(0);
        let sealing_key = if table(&mut tx, "sealing")? {
            tx.query_opt("SELECT key_id FROM sealing WHERE \"only\" = 1", &[])?.map(|r| r.get(0))
        } else {
            None
        };
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        Ok(Some(Inspection { schema, known, sealing_key }))
    })
}

/// Reads the database at `path` without writing to it; `None` when there is no file yet.
pub fn inspect(path: &Path) -> Result<Option<Inspection>, Error> {
    let fail = |e: rusqlite::Error| Error::Open { path: path.to_path_buf(), message: e.to_string() };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Open { path: path.to_path_buf(), message: e.to_string() }),
        Ok(_) => {}
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(uri(path), flags).map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    let schema = if has_table(&conn, "schema_migrations").map_err(fail)? {
        conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(fail)?
    } else {
        0
    };
    let sealing_key = if has_table(&conn, "sealing").map_err(fail)? {
        conn.query_row("SELECT key_id FROM sealing WHERE only = 1", [], |r| r.get(0)).optional().map_err(fail)?
    } else {
        None
    };
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    Ok(Some(Inspection { schema, known, sealing_key }))
}

/// The database's URI. A read-only connection to a WAL database creates its `-wal` and `-shm`
/// files when they are missing, and leaves them behind; they are missing only when no process
/// has the database open (the last to close removes them), so the file then holds everything
/// and is opened `immutable` (no locks, no side files). A process opening it meanwhile could
/// make the read fail, never change what the file holds. With the side files present (a server
/// runs), the connection shares them as any reader does.
fn uri(path: &Path) -> String {
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    let name = path.display().to_string();
    let encoded = percent_encoding::utf8_percent_encode(&name, PATH);
    let side = |suffix: &str| Path::new(&format!("{name}{suffix}")).exists();
    if side("-wal") || side("-shm") { format!("file:{encoded}") } else { format!("file:{encoded}?immutable=1") }
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| {
        r.get::<_, i64>(0).map(|n| n > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{KEY_FILE, Source};

    #[test]
    fn a_migrated_database_is_read_without_a_write_and_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("formwork.db");
        assert_eq!(inspect(&path).unwrap(), None, "no file: nothing to inspect, and none made");
        assert!(!path.exists());
        let store = super::super::Store::open_with_keys(&path, Source::File(dir.path().join(KEY_FILE))).unwrap();
        let (key, _) = store.sealing().unwrap();
        drop(store);
        let files = || {
            let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort();
            names
        };
        let (before, names) = (std::fs::read(&path).unwrap(), files());
        let found = inspect(&path).unwrap().unwrap();
        assert_eq!(
            found,
            Inspection { schema: found.known, known: super::super::SCHEMA_VERSION, sealing_key: Some(key) }
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file is unchanged");
        assert_eq!(files(), names, "no -wal or -shm file is left beside it");

        // Beside an open store (a running server), it reads through the WAL.
        let store = super::super::Store::open_with_keys(&path, Source::File(dir.path().join(KEY_FILE))).unwrap();
        assert_eq!(inspect(&path).unwrap().unwrap().schema, found.known);
        drop(store);
    }

    #[test]
    fn an_empty_file_is_at_schema_zero_and_junk_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(inspect(&empty).unwrap().unwrap().schema, 0);
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
        let err = inspect(&junk).unwrap_err().to_string();
        assert!(err.contains("junk.db") && err.contains("not a database"), "{err}");
    }
}
