//! Where reads run: a bounded pool of read connections for a database file or a PostgreSQL
//! database, or the writer's own connection for an in-memory database.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::db::{Db, PgConn};
use super::postgres::{Connector, outside_runtime};
use super::{BUSY_TIMEOUT, Error, STATEMENT_CACHE, lock};

/// Read connections per file store. Reads are short and never wait for the writer while they
/// hold a connection, so a few serve any number of threads; a thread finding all of them busy
/// waits for one rather than opening (and throwing away) another.
const READERS: usize = 8;

pub(super) enum Readers {
    /// A file database: connections of their own, which WAL lets read beside the writer; or a
    /// PostgreSQL database.
    Pool(Pool),
    /// An in-memory database: the writer's one connection (another connection could not see
    /// the private database), so reads wait while a group is being written.
    Shared(Arc<Mutex<Connection>>),
}

pub(super) struct Pool {
    source: Source,
    idle: Mutex<Idle>,
    returned: Condvar,
}

/// Where a pool's connections come from.
enum Source {
    Sqlite(PathBuf),
    Postgres(Connector),
}

enum Conn {
    Sqlite(Connection),
    Postgres(Box<PgConn>),
}

struct Idle {
    conns: Vec<Conn>,
    /// Connections open, idle or lent.
    open: usize,
}

impl Readers {
    pub(super) fn pool(path: &Path) -> Readers {
        let idle = Mutex::new(Idle { conns: Vec::new(), open: 0 });
        Readers::Pool(Pool { source: Source::Sqlite(path.to_path_buf()), idle, returned: Condvar::new() })
    }

    pub(super) fn postgres(connector: Connector) -> Readers {
        let idle = Mutex::new(Idle { conns: Vec::new(), open: 0 });
        Readers::Pool(Pool { source: Source::Postgres(connector), idle, returned: Condvar::new() })
    }

    /// Runs `f` on a read connection. Statements must be finished (collected, or dropped)
    /// before `f` returns: a statement left open would pin its connection to an old snapshot.
    pub(super) fn read<T: Send>(&self, f: impl FnOnce(&Db<'_>) -> Result<T, Error> + Send) -> Result<T, Error> {
        match self {
            Readers::Shared(conn) => f(&Db::sqlite(&lock(conn))),
            Readers::Pool(pool) => {
                let mut lease = pool.take()?;
                match lease.conn.as_mut().expect("a lease holds its connection until dropped") {
                    Conn::Sqlite(conn) => f(&Db::sqlite(conn)),
                    Conn::Postgres(conn) => outside_runtime(|| f(&Db::postgres(conn))),
                }
            }
        }
    }
}

/// A connection lent out of the pool; it goes back on drop, a panicking read included.
struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Pool {
    fn take(&self) -> Result<Lease<'_>, Error> {
        let mut idle = lock(&self.idle);
        loop {
            if let Some(conn) = idle.conns.pop() {
                return Ok(Lease { pool: self, conn: Some(conn) });
            }
            if idle.open < READERS {
                idle.open += 1;
                drop(idle);
                let opened = match &self.source {
                    Source::Sqlite(path) => open_reader(path).map(Conn::Sqlite),
                    Source::Postgres(connector) => {
                        outside_runtime(|| connector.connect()).map(|c| Conn::Postgres(Box::new(c)))
                    }
                };
                return match opened {
                    Ok(conn) => Ok(Lease { pool: self, conn: Some(conn) }),
                    Err(e) => {
                        lock(&self.idle).open -= 1;
                        Err(e)
                    }
                };
            }
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = lock(&self.pool.idle);
            match conn {
                // A lost connection is not lent again: the next read opens another.
                Conn::Postgres(pg) if pg.is_closed() => idle.open -= 1,
                conn => idle.conns.push(conn),
            }
            self.pool.returned.notify_one();
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, Error> {
    let fail = |e: rusqlite::Error| Error::Open { path: path.to_path_buf(), message: e.to_string() };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    // Writing is the writer thread's job alone; a write slipping in here would bypass its
    // durability and grouping.
    conn.pragma_update(None, "query_only", "ON").map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}
