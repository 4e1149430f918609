//! One SQL interface over the two backends, SQLite and PostgreSQL, so each store method is
//! written once. Statements are written with SQLite's numbered parameters (`?1`, `?2`), which
//! are rewritten to PostgreSQL's (`$1`, `$2`) for PostgreSQL, in SQL both understand: `RETURNING`
//! rather than `last_insert_rowid()`, `ON CONFLICT DO NOTHING` rather than `INSERT OR IGNORE`,
//! integers (`0`/`1`) rather than booleans, casts where PostgreSQL would widen an aggregate to
//! `numeric`.
//!
//! Values cross as [`Value`]s: a row is read into values and each column converted with
//! [`FromValue`], parameters are converted from values to the type PostgreSQL inferred for them.
//! Both sides keep prepared statements per connection.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{IsNull, ToSql, Type};

use super::Error;
use super::pipeline::Pipe;

/// One SQL value, as both backends hold them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What a statement's failure is, whichever backend ran it.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("the query returned no row")]
    NoRow,
    /// The failure of a group of writes, copied to each of them.
    #[error("{message}")]
    Group { message: String, connection_lost: bool },
    #[error("column {column}: {message}")]
    Type { column: usize, message: String },
}

impl SqlError {
    /// Whether the database refused the statement because another row already holds a unique
    /// value (SQLite's and PostgreSQL's unique constraint violation).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            SqlError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    /// Whether the connection to the database is gone (PostgreSQL: closed, refused, reset).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            // Closed, never reached, or ended by the server: connection exceptions (08…) and
            // operator intervention (57P…: shutdown, restart, not accepting connections yet).
            SqlError::Postgres(e) => {
                e.is_closed()
                    || e.as_db_error().is_none()
                    || e.code().is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57P"))
            }
            SqlError::Group { connection_lost, .. } => *connection_lost,
            _ => false,
        }
    }
}

/// PostgreSQL's errors say only "db error" in their `Display`; the server's message and detail
/// are what a reader needs.
fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        // The client's own errors say what failed ("error performing TLS handshake"); why is in
        // their sources (an unknown certificate issuer, a refused connection).
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

/// A Rust value that can be a statement's parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

/// A Rust value a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: Value) -> Result<Self, String>;
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, String> {
                match value {
                    Value::Int(i) => <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t))),
                    other => Err(format!("expected an integer, found {other:?}")),
                }
            }
        }
    )*};
}
int_values!(i64, i32, u32, u16, u8);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Int(i) => Ok(i != 0),
            other => Err(format!("expected 0 or 1, found {other:?}")),
        }
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self, String> {
        Ok(value)
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A statement's parameters: `params![a, b]`, `[id]` or `()`.
pub trait Params {
    fn values(&self) -> Vec<Value>;
}

impl Params for () {
    fn values(&self) -> Vec<Value> {
        Vec::new()
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<Value> {
        self.iter().map(ToValue::to_value).collect()
    }
}

impl Params for &[&dyn ToValue] {
    fn values(&self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

impl Params for Vec<Value> {
    fn values(&self) -> Vec<Value> {
        self.clone()
    }
}

/// Parameters of mixed types: `params![id, name, time]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::ToValue),*] as &[&dyn $crate::store::db::ToValue]
    };
}
pub(crate) use params;

/// One row read.
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// Column `i` (from 0) as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, Error> {
        let value =
            self.values.get(i).cloned().ok_or(SqlError::Type { column: i, message: "no such column".into() })?;
        T::from_value(value).map_err(|message| Error::Sql(SqlError::Type { column: i, message }))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// `.optional()` on a single-row query: no row is `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>, Error>;
}

impl<T> OptionalExtension<T> for Result<T, Error> {
    fn optional(self) -> Result<Option<T>, Error> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::Sql(SqlError::NoRow)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A PostgreSQL connection with its prepared statements.
pub struct PgConn {
    /// `None` only while dropping.
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

impl Drop for PgConn {
    /// Closing a blocking client blocks on its runtime, which cannot happen on a thread driving
    /// async tasks (a store dropped in async code).
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            super::postgres::outside_runtime(move || drop(client));
        }
    }
}

/// Statements kept per PostgreSQL connection; the store runs fewer distinct ones than this.
const PG_STATEMENTS: usize = 256;

impl PgConn {
    pub fn new(client: postgres::Client) -> PgConn {
        PgConn { client: Some(client), statements: HashMap::new() }
    }

    pub fn client(&mut self) -> &mut postgres::Client {
        self.client.as_mut().expect("a connection has its client until dropped")
    }

    pub fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(postgres::Client::is_closed)
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, SqlError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client().prepare(&numbered_parameters(sql))?;
        if self.statements.len() >= PG_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<postgres::Row>, SqlError> {
        let statement = self.statement(sql)?;
        Ok(self.client().query(&statement, &as_params(values).iter().map(|p| p as _).collect::<Vec<_>>())?)
    }

    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, SqlError> {
        let statement = self.statement(sql)?;
        Ok(self.client().execute(&statement, &as_params(values).iter().map(|p| p as _).collect::<Vec<_>>())?)
    }
}

/// `values` as parameters of a PostgreSQL statement.
fn as_params(values: &[Value]) -> Vec<PgParam<'_>> {
    values.iter().map(PgParam).collect()
}

/// A connection (or the writer's transaction) of either backend: what store methods take.
pub struct Db<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(RefCell<&'a mut PgConn>),
    /// The writer's PostgreSQL connection, which holds back what `execute_later` gives it.
    Pipelined(RefCell<&'a mut Pipe>),
}

impl<'a> Db<'a> {
    pub fn sqlite(conn: &'a rusqlite::Connection) -> Db<'a> {
        Db { inner: Inner::Sqlite(conn) }
    }

    pub fn postgres(conn: &'a mut PgConn) -> Db<'a> {
        Db { inner: Inner::Postgres(RefCell::new(conn)) }
    }

    pub fn pipelined(pipe: &'a mut Pipe) -> Db<'a> {
        Db { inner: Inner::Pipelined(RefCell::new(pipe)) }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, Inner::Postgres(_) | Inner::Pipelined(_))
    }

    /// A statement to run; the name follows rusqlite's (both backends cache prepared statements).
    pub fn prepare_cached<'s>(&'s self, sql: &'s str) -> Result<Statement<'s, 'a>, Error> {
        Ok(Statement { db: self, sql })
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize, Error> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Runs several statements with no parameters (migrations, savepoints).
    pub fn execute_batch(&self, sql: &str) -> Result<(), Error> {
        match &self.inner {
            Inner::Sqlite(conn) => conn.execute_batch(sql).map_err(SqlError::from)?,
            Inner::Postgres(conn) => conn.borrow_mut().client().batch_execute(sql).map_err(SqlError::from)?,
            Inner::Pipelined(pipe) => pipe.borrow_mut().batch(sql)?,
        }
        Ok(())
    }

    /// [`Db::execute_batch`], held back on the writer's PostgreSQL connection until its next
    /// statement that waits (its failure is that statement's); run at once elsewhere.
    pub fn execute_batch_later(&self, sql: &str) -> Result<(), Error> {
        match &self.inner {
            Inner::Pipelined(pipe) => {
                pipe.borrow_mut().batch_later(sql);
                Ok(())
            }
            Inner::Sqlite(_) | Inner::Postgres(_) => self.execute_batch(sql),
        }
    }

    /// Sends whatever statements are held back and waits for them; the first failure among
    /// them is the answer. Nothing to do but on the writer's PostgreSQL connection.
    pub fn flush(&self) -> Result<(), Error> {
        match &self.inner {
            Inner::Pipelined(pipe) => Ok(pipe.borrow_mut().flush()?),
            Inner::Sqlite(_) | Inner::Postgres(_) => Ok(()),
        }
    }

    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn rows(&self, sql: &str, values: &[Value]) -> Result<Vec<Row>, Error> {
        match &self.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql).map_err(SqlError::from)?;
                let columns = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter())).map_err(SqlError::from)?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(SqlError::from)? {
                    let values = (0..columns).map(|i| row.get_ref(i).map(sqlite_value)).collect::<Result<_, _>>();
                    out.push(Row { values: values.map_err(SqlError::from)? });
                }
                Ok(out)
            }
            Inner::Postgres(conn) => {
                let rows = conn.borrow_mut().query(sql, values)?;
                rows.iter().map(|row| Ok(Row { values: pg_values(row)? })).collect()
            }
            Inner::Pipelined(pipe) => {
                let rows = pipe.borrow_mut().query(sql, values.to_vec())?;
                rows.iter().map(|row| Ok(Row { values: pg_values(row)? })).collect()
            }
        }
    }
}

/// A statement bound to its connection: `db.prepare_cached(sql)?.execute(params)`.
pub struct Statement<'s, 'a> {
    db: &'s Db<'a>,
    sql: &'s str,
}

impl Statement<'_, '_> {
    pub fn execute(&mut self, params: impl Params) -> Result<usize, Error> {
        let values = params.values();
        match &self.db.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(self.sql).map_err(SqlError::from)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter())).map_err(SqlError::from)?)
            }
            Inner::Postgres(conn) => Ok(conn.borrow_mut().execute(self.sql, &values)? as usize),
            Inner::Pipelined(pipe) => Ok(pipe.borrow_mut().execute(self.sql, values)? as usize),
        }
    }

    /// Runs the statement when its changed rows do not matter: on the writer's PostgreSQL
    /// connection it is held back and sent with the write's next statement that waits for an
    /// answer (or at the write's end), and a failure is reported there; elsewhere it runs now.
    /// Only for statements whose failure the write passes on rather than handles.
    pub fn execute_later(&mut self, params: impl Params) -> Result<(), Error> {
        match &self.db.inner {
            Inner::Pipelined(pipe) => Ok(pipe.borrow_mut().execute_later(self.sql, params.values())?),
            Inner::Sqlite(_) | Inner::Postgres(_) => self.execute(params).map(drop),
        }
    }

    /// The first row, mapped by `f`; `Error::Sql(SqlError::NoRow)` when there is none
    /// ([`OptionalExtension::optional`] makes that `None`).
    pub fn query_row<T>(&mut self, params: impl Params, f: impl FnOnce(&Row) -> Result<T, Error>) -> Result<T, Error> {
        let rows = self.db.rows(self.sql, &params.values())?;
        match rows.first() {
            Some(row) => f(row),
            None => Err(Error::Sql(SqlError::NoRow)),
        }
    }

    /// Every row, each mapped by `f`. The rows are read in full before this returns, so the
    /// statement holds nothing afterwards.
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        f: impl FnMut(&Row) -> Result<T, Error>,
    ) -> Result<std::vec::IntoIter<Result<T, Error>>, Error> {
        let rows = self.db.rows(self.sql, &params.values())?;
        Ok(rows.iter().map(f).collect::<Vec<_>>().into_iter())
    }

    pub fn exists(&mut self, params: impl Params) -> Result<bool, Error> {
        Ok(!self.db.rows(self.sql, &params.values())?.is_empty())
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_value(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn pg_values(row: &postgres::Row) -> Result<Vec<Value>, Error> {
    let fail = |column: usize, e: &dyn std::fmt::Display| Error::Sql(SqlError::Type { column, message: e.to_string() });
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int))
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i).map(|v| v.map(|v| Value::Int(v.into())))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i).map(|v| v.map(|v| Value::Int(v.into())))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i).map(|v| v.map(|v| Value::Int(v.into())))
        } else if *ty == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real))
        } else if *ty == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i).map(|v| v.map(|v| Value::Real(v.into())))
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map(Value::Blob))
        } else if [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR].contains(ty) {
            row.try_get::<_, Option<String>>(i).map(|v| v.map(Value::Text))
        } else {
            return Err(fail(i, &format!("type {ty} is not one the store reads (cast it to bigint or text)")));
        };
        values.push(value.map_err(|e| fail(i, &e))?.unwrap_or(Value::Null));
    }
    Ok(values)
}

/// A [`Value`] as the parameter type PostgreSQL inferred for it.
#[derive(Debug)]
pub(super) struct PgParam<'v>(pub(super) &'v Value);

impl ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mismatch = || format!("{:?} cannot be sent as {ty}", self.0).into();
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) if *ty == Type::INT8 => i.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(*i).map_err(|_| mismatch())?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT2 => i16::try_from(*i).map_err(|_| mismatch())?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::BOOL => (*i != 0).to_sql(ty, out),
            Value::Int(i) if *ty == Type::FLOAT8 => (*i as f64).to_sql(ty, out),
            Value::Int(i) if is_text(ty) => i.to_string().to_sql(&Type::TEXT, out),
            Value::Real(f) if *ty == Type::FLOAT8 => f.to_sql(ty, out),
            Value::Real(f) if *ty == Type::FLOAT4 => (*f as f32).to_sql(ty, out),
            Value::Text(s) if is_text(ty) => s.as_str().to_sql(&Type::TEXT, out),
            Value::Blob(b) if *ty == Type::BYTEA => b.as_slice().to_sql(ty, out),
            _ => Err(mismatch()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn is_text(ty: &Type) -> bool {
    [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR, Type::UNKNOWN].contains(ty)
}

/// `?N` parameters as PostgreSQL's `$N`, outside quoted strings and identifiers.
pub fn numbered_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote = None;
    for c in sql.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '?') => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_for_postgres_outside_quotes() {
        assert_eq!(
            numbered_parameters("SELECT '?1', \"a?\" FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', \"a?\" FROM t WHERE a = $1 AND b = $12"
        );
        assert_eq!(numbered_parameters("x = 'it''s ?' AND y = ?2"), "x = 'it''s ?' AND y = $2");
    }
}
