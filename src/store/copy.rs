//! Moving an installation: every row of a stopped SQLite database copied into an empty
//! PostgreSQL database, with the same ids, byte for byte (`formwork store copy`).
//!
//! Nothing is opened or sealed again: sealed values are bound to their table and row id, which
//! the copy keeps, so the sealed text is copied as it is and no key is needed. Tables and columns
//! are read from SQLite itself (`sqlite_master`, `PRAGMA table_info`), and tables are filled in
//! the order their foreign keys need (`PRAGMA foreign_key_list`), so a table a later migration
//! adds is copied without a change here.
//!
//! The source's write lock (`BEGIN IMMEDIATE`) is held from the first read to the end, so nothing
//! changes under the copy. On the target, the schema (when it has none yet), the rows, the
//! identity sequences and the check of every table's row count and digest are one transaction:
//! any failure, a mismatch included, leaves the target as it was.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use ring::digest::{Context, SHA256};
use rusqlite::{Connection, OpenFlags};

use super::db::{Db, Value};
use super::postgres::{Connector, WRITE_LOCK, outside_runtime};
use super::{MIGRATIONS, Owner, SCHEMA_VERSION};

/// Rows sent in one `INSERT`; fewer when a row has many columns (PostgreSQL takes at most 65535
/// parameters per statement).
const BATCH_ROWS: usize = 500;
/// Bytes of values held before they are sent, whatever the row count: a batch of large bodies
/// stays small in memory.
const BATCH_BYTES: usize = 4 << 20;
/// Rows fetched at once when the target is read back.
const FETCH_ROWS: usize = 1000;

/// Tables a new or once-opened formwork database holds rows in before it holds any data: the
/// applied migrations, the sealing row, `meta`, the id counters (at 0). A target whose only rows
/// are these is empty; they are replaced by the source's.
const BOOKKEEPING: &[&str] = &["schema_migrations", "sealing", "meta", "id_sequence"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The copy cannot start as things are; nothing was changed. The message says why and what
    /// to do.
    #[error("{0}")]
    Refused(String),
    /// A table's rows on the target differ from the source's after the copy (nothing was kept).
    #[error(
        "table {table}: the copy differs from the source ({source_rows} rows, digest {source_digest} in SQLite; {target_rows} rows, digest {target_digest} in PostgreSQL); nothing was kept in the target"
    )]
    Mismatch { table: String, source_rows: u64, source_digest: String, target_rows: u64, target_digest: String },
    #[error("{0}")]
    Store(#[from] super::Error),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Store(e.into())
    }
}

/// One table copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Table {
    pub name: String,
    pub rows: u64,
    /// SHA-256 (hex) over the table's columns and every row's values in primary-key order; the
    /// same on both sides.
    pub digest: String,
}

/// What a finished copy did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Copied {
    /// In the order they were filled.
    pub tables: Vec<Table>,
    /// The key id the sealed values name (the sealing row): every server on the target needs it.
    pub key_id: Option<String>,
}

/// Copies the SQLite database at `source` into the PostgreSQL database `target`. `is_alive`
/// says whether the owner of a running operation is a live process (a formwork working on the
/// source: refused); `progress` hears each table's rows as they are copied (table, rows so far,
/// whether the table is done).
pub fn copy(
    source: &Path,
    target: &Connector,
    is_alive: &(dyn Fn(&Owner) -> bool + Sync),
    progress: &mut (dyn FnMut(&str, u64, bool) + Send),
) -> Result<Copied, Error> {
    let conn = open_source(source)?;
    // SQLite's write lock, held until `conn` is dropped: no formwork can change the source.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => Error::Refused(format!(
            "the source is in use: another process kept writing to it for {}s; stop formwork serve (and any formwork command working on it) first, then copy",
            super::BUSY_TIMEOUT.as_secs()
        )),
        _ => e.into(),
    })?;
    check_version(&conn)?;
    check_idle(&conn, is_alive)?;
    let tables = tables(&conn)?;
    let key_id = key_id(&conn)?;
    let sequences = sqlite_sequences(&conn)?;
    outside_runtime(move || {
        let mut pg = target.connect()?;
        let db = Db::postgres(&mut pg);
        db.execute_batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"))?;
        let copied = fill(&conn, &db, target.shown(), &tables, &sequences, progress);
        match copied {
            Ok(tables) => {
                db.execute_batch("COMMIT")?;
                Ok(Copied { tables, key_id })
            }
            Err(e) => {
                // Best effort: dropping the connection rolls back too.
                let _ = db.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    })
}

/// The source, opened as it is: never created, never migrated.
fn open_source(path: &Path) -> Result<Connection, Error> {
    if !path.is_file() {
        return Err(Error::Refused(format!(
            "there is no SQLite database at {}; name the installation's database with --database FILE",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    Ok(conn)
}

/// The source's schema must be this formwork's.
fn check_version(conn: &Connection) -> Result<(), Error> {
    let has = |name: &str| -> Result<bool, Error> {
        Ok(conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?.exists([name])?)
    };
    if !has("schema_migrations")? {
        return Err(Error::Refused("the source is not a formwork database (it has no schema_migrations)".into()));
    }
    let version: i64 = conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        return Err(Error::Refused(format!(
            "the source's schema is version {version}, older than this formwork's ({SCHEMA_VERSION}): run this formwork once on it first (e.g. `formwork provision list`), which migrates it, then copy"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(Error::Refused(format!(
            "the source's schema is version {version}, newer than this formwork's ({SCHEMA_VERSION}): copy it with the formwork that made it"
        )));
    }
    Ok(())
}

/// No formwork may be working on the source: a registered server (`formwork serve`, idle or
/// not) whose process lives, or a running operation whose owner is alive, says one is. An
/// operation whose owner is dead (queued, or interrupted) is copied as it is.
fn check_idle(conn: &Connection, is_alive: &(dyn Fn(&Owner) -> bool + Sync)) -> Result<(), Error> {
    // A server's id is its process, `pid:start` (on PostgreSQL `host/pid:start/n`).
    let mut stmt = conn.prepare("SELECT id, role, address FROM servers WHERE role <> 'cli' ORDER BY id")?;
    let servers =
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    for row in servers {
        let (id, role, address) = row?;
        let Some(owner) = Owner::of_process(id.split('/').nth(1).unwrap_or(&id)) else { continue };
        if is_alive(&owner) {
            let at = if address.is_empty() { String::new() } else { format!(" on {address}") };
            return Err(Error::Refused(format!(
                "the source is in use: formwork serve (role {role}, process {}{at}) works on it; stop it (and any formwork command working on it) first, then copy",
                owner.pid
            )));
        }
    }
    drop(stmt);
    let mut stmt = conn.prepare(
        "SELECT id, provision_id, kind, owner_pid, owner_token FROM operations WHERE status = 'running' ORDER BY id",
    )?;
    let running = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            Owner { pid: r.get(3)?, token: r.get(4)? },
        ))
    })?;
    for row in running {
        let (id, provision_id, kind, owner) = row?;
        if is_alive(&owner) {
            return Err(Error::Refused(format!(
                "the source is in use: operation {id} ({kind}) of provision {provision_id} is running in process {}; stop formwork serve (and any formwork command working on it) first, then copy",
                owner.pid
            )));
        }
    }
    Ok(())
}

/// One table of the source: its columns and primary key.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    name: String,
    columns: Vec<String>,
    /// The primary key's columns, in key order (every column when there is none).
    key: Vec<String>,
    /// The tables its foreign keys name.
    references: BTreeSet<String>,
}

/// Processes working on a database, not data: the source's (all stopped, [`check_idle`]) are
/// none of the target's, and a row of one would hold back the takeover of the operations it
/// owned until its lease ran out.
const NOT_COPIED: &[&str] = &["servers"];

/// Every table of the source to copy (SQLite's own and [`NOT_COPIED`] aside), in the order their
/// foreign keys need.
fn tables(conn: &Connection) -> Result<Vec<Source>, Error> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut tables = Vec::new();
    for name in names.into_iter().filter(|n| !NOT_COPIED.contains(&n.as_str())) {
        let mut columns = Vec::new();
        let mut key = Vec::new();
        let mut stmt = conn.prepare("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")?;
        for row in stmt.query_map([&name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (column, pk) = row?;
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            columns.push(column);
        }
        key.sort();
        let mut key: Vec<String> = key.into_iter().map(|(_, c)| c).collect();
        if key.is_empty() {
            key = columns.clone();
        }
        let references = conn
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")?
            .query_map([&name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tables.push(Source { name, columns, key, references });
    }
    in_reference_order(tables)
}

/// `tables` ordered so each comes after the tables it references (ties by name); a table's
/// references to itself are ignored. A cycle is refused.
fn in_reference_order(tables: Vec<Source>) -> Result<Vec<Source>, Error> {
    let mut waiting: BTreeMap<String, Source> = tables.into_iter().map(|t| (t.name.clone(), t)).collect();
    let mut ordered: Vec<Source> = Vec::new();
    while !waiting.is_empty() {
        let done: BTreeSet<&str> = ordered.iter().map(|t| t.name.as_str()).collect();
        let ready = waiting.values().find(|t| t.references.iter().all(|r| *r == t.name || done.contains(r.as_str())));
        let Some(name) = ready.map(|t| t.name.clone()) else {
            let left: Vec<&str> = waiting.keys().map(String::as_str).collect();
            return Err(Error::Refused(format!(
                "the source's foreign keys form a cycle or name a missing table among {}; this formwork cannot order the copy",
                left.join(", ")
            )));
        };
        ordered.extend(waiting.remove(&name));
    }
    Ok(ordered)
}

/// The key id the sealed values name, if the source has a sealing row.
fn key_id(conn: &Connection) -> Result<Option<String>, Error> {
    use rusqlite::OptionalExtension;
    let exists = conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sealing'")?.exists([])?;
    if !exists {
        return Ok(None);
    }
    Ok(conn.query_row("SELECT key_id FROM sealing", [], |r| r.get(0)).optional()?)
}

/// AUTOINCREMENT's highest ids given (`sqlite_sequence`), which may be above a table's highest
/// row: the target's sequences start past them, so no id is handed out twice.
fn sqlite_sequences(conn: &Connection) -> Result<HashMap<String, i64>, Error> {
    let exists =
        conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")?.exists([])?;
    if !exists {
        return Ok(HashMap::new());
    }
    let mut stmt = conn.prepare("SELECT name, seq FROM sqlite_sequence")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A table of the target: its columns' types and its identity column.
struct Target {
    types: HashMap<String, String>,
    identity: Option<String>,
}

/// Everything done on the target, inside its transaction: the schema if it has none, the
/// emptiness check, the rows, the sequences, the check. Returns the tables as copied.
fn fill(
    conn: &Connection,
    db: &Db<'_>,
    shown: &str,
    tables: &[Source],
    sequences: &HashMap<String, i64>,
    progress: &mut (dyn FnMut(&str, u64, bool) + Send),
) -> Result<Vec<Table>, Error> {
    prepare_schema(db, shown, tables)?;
    let targets = target_tables(db)?;
    for table in tables {
        let Some(target) = targets.get(&table.name) else {
            return Err(Error::Refused(format!(
                "the source's table {} is not in the target {shown}: its schema is not this formwork's; copy into a new, empty database",
                table.name
            )));
        };
        if let Some(missing) = table.columns.iter().find(|c| !target.types.contains_key(*c)) {
            return Err(Error::Refused(format!(
                "the target's table {} has no column {missing}: its schema is not this formwork's; copy into a new, empty database",
                table.name
            )));
        }
    }
    check_empty(db, shown, tables, &targets)?;
    for name in BOOKKEEPING {
        if targets.contains_key(*name) {
            db.execute(&format!("DELETE FROM {}", quoted(name)), ())?;
        }
    }
    let mut copied = Vec::new();
    for table in tables {
        let (rows, digest) = copy_table(conn, db, table, progress)?;
        copied.push(Table { name: table.name.clone(), rows, digest });
    }
    for table in tables {
        if let Some(identity) = &targets[&table.name].identity {
            advance_identity(db, &table.name, identity, sequences.get(&table.name).copied().unwrap_or(0))?;
        }
    }
    for (i, (table, want)) in tables.iter().zip(&copied).enumerate() {
        let (rows, digest) = target_digest(db, table, &targets[&table.name], i)?;
        if rows != want.rows || digest != want.digest {
            return Err(Error::Mismatch {
                table: table.name.clone(),
                source_rows: want.rows,
                source_digest: want.digest.clone(),
                target_rows: rows,
                target_digest: digest,
            });
        }
    }
    Ok(copied)
}

/// A target without formwork's tables gets this formwork's schema, every migration at once (the
/// source's `schema_migrations` rows follow with the copy). One with them must be at this
/// formwork's version.
fn prepare_schema(db: &Db<'_>, shown: &str, tables: &[Source]) -> Result<(), Error> {
    let present = target_tables(db)?;
    if !present.contains_key("schema_migrations") {
        if let Some(clash) = tables.iter().find(|t| present.contains_key(&t.name)) {
            return Err(Error::Refused(format!(
                "the target {shown} already has a table {} but no formwork schema; copy into a new, empty database",
                clash.name
            )));
        }
        db.execute_batch(
            "CREATE TABLE schema_migrations (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_time BIGINT NOT NULL)",
        )?;
        for m in MIGRATIONS {
            db.execute_batch(m.postgres)?;
        }
        return Ok(());
    }
    let version: i64 =
        db.query_row("SELECT coalesce(max(version), 0)::bigint FROM schema_migrations", (), |r| r.get(0))?;
    if version != SCHEMA_VERSION {
        return Err(Error::Refused(format!(
            "the target {shown} holds a formwork schema of version {version}, not this formwork's ({SCHEMA_VERSION}); copy into a new, empty database"
        )));
    }
    Ok(())
}

/// The target's tables (in its current schema), with column types and identity columns.
fn target_tables(db: &Db<'_>) -> Result<HashMap<String, Target>, Error> {
    let mut tables: HashMap<String, Target> = HashMap::new();
    let rows = db
        .prepare_cached(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_identity::text
             FROM information_schema.columns c
             JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
        )?
        .query_map((), |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?, r.get::<String>(3)?)))?;
    for row in rows {
        let (table, column, ty, identity) = row?;
        let entry = tables.entry(table).or_insert_with(|| Target { types: HashMap::new(), identity: None });
        if identity == "YES" {
            entry.identity = Some(column.clone());
        }
        entry.types.insert(column, ty);
    }
    Ok(tables)
}

/// Refuses a target holding any row but a fresh database's bookkeeping (and ids given out there
/// count as rows).
fn check_empty(db: &Db<'_>, shown: &str, tables: &[Source], targets: &HashMap<String, Target>) -> Result<(), Error> {
    let mut held = Vec::new();
    for table in tables.iter().filter(|t| !BOOKKEEPING.contains(&t.name.as_str())) {
        let rows: i64 =
            db.query_row(&format!("SELECT count(*)::bigint FROM {}", quoted(&table.name)), (), |r| r.get(0))?;
        if rows > 0 {
            held.push(format!("{rows} {}", table.name));
        }
    }
    if targets.contains_key("id_sequence") {
        let ids: i64 = db.query_row("SELECT coalesce(max(last_id), 0)::bigint FROM id_sequence", (), |r| r.get(0))?;
        if ids > 0 {
            held.push(format!("ids up to {ids} already given"));
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "the target {shown} is not empty: it holds {}; copy into a new, empty database (CREATE DATABASE …), nothing was changed",
        held.join(", ")
    )))
}

/// Copies one table in pages, hashing the source's rows as they go; returns its rows and digest.
fn copy_table(
    conn: &Connection,
    db: &Db<'_>,
    table: &Source,
    progress: &mut (dyn FnMut(&str, u64, bool) + Send),
) -> Result<(u64, String), Error> {
    let columns = table.columns.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ");
    let order = table.key.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ");
    let select = format!("SELECT {columns} FROM {} ORDER BY {order}", quoted(&table.name));
    let per_batch = BATCH_ROWS.min(60_000 / table.columns.len().max(1)).max(1);
    let mut digest = Digest::new(&table.columns);
    let mut stmt = conn.prepare(&select)?;
    let mut rows = stmt.query([])?;
    let (mut batch, mut batch_rows, mut batch_bytes, mut count) = (Vec::new(), 0, 0, 0u64);
    while let Some(row) = rows.next()? {
        for i in 0..table.columns.len() {
            let value = source_value(row.get_ref(i)?, &table.name, &table.columns[i])?;
            digest.value(&value);
            batch_bytes += size(&value);
            batch.push(value);
        }
        batch_rows += 1;
        count += 1;
        if batch_rows == per_batch || batch_bytes >= BATCH_BYTES {
            insert(db, table, &columns, std::mem::take(&mut batch), batch_rows)?;
            (batch_rows, batch_bytes) = (0, 0);
            progress(&table.name, count, false);
        }
    }
    if batch_rows > 0 {
        insert(db, table, &columns, batch, batch_rows)?;
    }
    progress(&table.name, count, true);
    Ok((count, digest.finish()))
}

fn insert(db: &Db<'_>, table: &Source, columns: &str, values: Vec<Value>, rows: usize) -> Result<(), Error> {
    let width = table.columns.len();
    let tuples: Vec<String> = (0..rows)
        .map(|r| format!("({})", (1..=width).map(|c| format!("?{}", r * width + c)).collect::<Vec<_>>().join(", ")))
        .collect();
    let sql = format!("INSERT INTO {} ({columns}) VALUES {}", quoted(&table.name), tuples.join(", "));
    db.execute(&sql, values)?;
    Ok(())
}

/// Sets an identity column's sequence past the highest id copied (and past SQLite's
/// AUTOINCREMENT counter), so the target's next insert takes a new id.
fn advance_identity(db: &Db<'_>, table: &str, column: &str, counter: i64) -> Result<(), Error> {
    let highest: i64 = db.query_row(
        &format!("SELECT coalesce(max({}), 0)::bigint FROM {}", quoted(column), quoted(table)),
        (),
        |r| r.get(0),
    )?;
    let last = highest.max(counter);
    if last > 0 {
        db.query_row(
            "SELECT setval(pg_get_serial_sequence(?1, ?2), ?3)::bigint",
            super::db::params![quoted(table), column.to_string(), last],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// The target's rows and digest for `table`, read through a cursor in pages, in the source's
/// order (text keys compared byte by byte, as SQLite does).
fn target_digest(db: &Db<'_>, table: &Source, target: &Target, n: usize) -> Result<(u64, String), Error> {
    // A cursor name of its own per table: the FETCH statement is prepared (and kept) per SQL
    // text, with the row shape of the cursor it was first prepared on.
    let cursor = format!("formwork_copy_check_{n}");
    let columns = table.columns.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ");
    let order = table
        .key
        .iter()
        .map(|c| match target.types.get(c).map(String::as_str) {
            Some("text" | "character varying" | "character") => format!("{} COLLATE \"C\"", quoted(c)),
            _ => quoted(c),
        })
        .collect::<Vec<_>>()
        .join(", ");
    db.execute_batch(&format!(
        "DECLARE {cursor} NO SCROLL CURSOR FOR SELECT {columns} FROM {} ORDER BY {order}",
        quoted(&table.name)
    ))?;
    let mut digest = Digest::new(&table.columns);
    let mut count = 0u64;
    loop {
        let page = db
            .prepare_cached(&format!("FETCH FORWARD {FETCH_ROWS} FROM {cursor}"))?
            .query_map((), |r| (0..r.len()).map(|i| r.get::<Value>(i)).collect::<Result<Vec<_>, _>>())?;
        let mut fetched = 0;
        for row in page {
            for value in row? {
                digest.value(&value);
            }
            fetched += 1;
        }
        count += fetched;
        if fetched < FETCH_ROWS as u64 {
            break;
        }
    }
    db.execute_batch(&format!("CLOSE {cursor}"))?;
    Ok((count, digest.finish()))
}

/// A SQLite value as it is sent: text must be UTF-8 (PostgreSQL's text is), nothing is
/// replaced.
fn source_value(value: rusqlite::types::ValueRef<'_>, table: &str, column: &str) -> Result<Value, Error> {
    use rusqlite::types::ValueRef;
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8(t.to_vec()).map_err(|_| {
            Error::Refused(format!(
                "table {table}, column {column}: a value is not UTF-8 text, which PostgreSQL cannot hold; the source needs repair"
            ))
        })?),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

fn size(value: &Value) -> usize {
    match value {
        Value::Text(s) => s.len(),
        Value::Blob(b) => b.len(),
        _ => 8,
    }
}

/// An identifier quoted for both SQL dialects (`only` is a keyword in PostgreSQL).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// SHA-256 over a table's column names and then every value, each encoded unambiguously: a type
/// tag, then the integer's or float's 8 bytes, or the text's or bytes' length (8 bytes) and
/// bytes. Rows have the column count's values, so no separator is needed.
struct Digest(Context);

impl Digest {
    fn new(columns: &[String]) -> Digest {
        let mut digest = Digest(Context::new(&SHA256));
        digest.0.update(&(columns.len() as u64).to_be_bytes());
        for column in columns {
            digest.value(&Value::Text(column.clone()));
        }
        digest
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.0.update(b"N"),
            Value::Int(i) => {
                self.0.update(b"I");
                self.0.update(&i.to_be_bytes());
            }
            Value::Real(f) => {
                self.0.update(b"R");
                self.0.update(&f.to_bits().to_be_bytes());
            }
            Value::Text(s) => self.bytes(b"T", s.as_bytes()),
            Value::Blob(b) => self.bytes(b"B", b),
        }
    }

    fn bytes(&mut self, tag: &[u8], bytes: &[u8]) {
        self.0.update(tag);
        self.0.update(&(bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    fn finish(self) -> String {
        self.0.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, references: &[&str]) -> Source {
        Source {
            name: name.into(),
            columns: vec!["id".into()],
            key: vec!["id".into()],
            references: references.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn names(tables: &[Source]) -> Vec<&str> {
        tables.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn tables_come_after_the_tables_they_reference() {
        let tables = vec![
            table("tfstates", &["provisions", "stage_attempts"]),
            table("stage_attempts", &["operations", "provisions"]),
            table("operations", &["provisions", "driver_snapshots"]),
            table("provisions", &["providers"]),
            table("providers", &[]),
            table("driver_snapshots", &[]),
            table("tree", &["tree"]),
        ];
        let ordered = in_reference_order(tables).unwrap();
        assert_eq!(
            names(&ordered),
            ["driver_snapshots", "providers", "provisions", "operations", "stage_attempts", "tfstates", "tree"]
        );
        let cycle = in_reference_order(vec![table("a", &["b"]), table("b", &["a"])]).unwrap_err();
        assert!(cycle.to_string().contains("cycle"), "{cycle}");
    }

    #[test]
    fn the_real_schema_is_ordered_by_its_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("formwork.db");
        drop(crate::store::Store::open_with_keys(&path, crate::secrets::Source::Ephemeral).unwrap());
        let conn = Connection::open(&path).unwrap();
        let ordered = tables(&conn).unwrap();
        let position = |name: &str| ordered.iter().position(|t| t.name == name).unwrap();
        for t in &ordered {
            for r in t.references.iter().filter(|r| **r != t.name) {
                assert!(position(r) < position(&t.name), "{} before {r}", t.name);
            }
        }
        assert!(position("providers") < position("provisions") && position("operations") < position("tool_groups"));
        assert!(ordered.iter().all(|t| !t.name.starts_with("sqlite_")));
        let sealing = &ordered[position("sealing")];
        assert_eq!(sealing.key, ["only"]);
    }

    #[test]
    fn a_changed_byte_changes_the_digest() {
        let columns = vec!["id".to_string(), "body".to_string()];
        let digest = |rows: &[(i64, &str)]| {
            let mut d = Digest::new(&columns);
            for (id, body) in rows {
                d.value(&Value::Int(*id));
                d.value(&Value::Text(body.to_string()));
            }
            d.finish()
        };
        let base = digest(&[(1, "{\"a\":1}"), (2, "{\"b\":2}")]);
        assert_eq!(base, digest(&[(1, "{\"a\":1}"), (2, "{\"b\":2}")]));
        assert_ne!(base, digest(&[(1, "{\"a\":1}"), (2, "{\"b\":3}")]), "one changed byte");
        assert_ne!(base, digest(&[(1, "{\"a\":1}"), (3, "{\"b\":2}")]), "one changed id");
        // Values move between neighbours without the encoding confusing them.
        assert_ne!(digest(&[(1, "ab"), (2, "c")]), digest(&[(1, "a"), (2, "bc")]));
        let mut null = Digest::new(&columns);
        null.value(&Value::Int(1));
        null.value(&Value::Null);
        let mut empty = Digest::new(&columns);
        empty.value(&Value::Int(1));
        empty.value(&Value::Text(String::new()));
        assert_ne!(null.finish(), empty.finish(), "NULL is not the empty text");
    }
}
