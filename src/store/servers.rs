//! The processes working on one database (`servers`) and their leases, in the database's clock:
//! a process renews its lease while it lives, and the operations of a process whose lease
//! expired are taken over by another, in a new epoch ([`super::Fence`]).

use std::time::Duration;

use super::db::{Db, params};
use super::operations::Owner;
use super::{Error, Store};

/// One process working on the database, as it registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServer {
    /// Its owner token.
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub role: String,
    pub version: String,
    pub address: String,
    pub started_time: i64,
}

/// A registered process and its lease, read with the database's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRow {
    pub server: NewServer,
    /// The database's clock when it last renewed its lease, in milliseconds.
    pub heartbeat_ms: i64,
    pub lease_expires_ms: i64,
    /// The database's clock when this row was read.
    pub now_ms: i64,
    /// Operations it owns: (operation, provision) of each running one.
    pub operations: Vec<(i64, i64)>,
}

impl ServerRow {
    pub fn alive(&self) -> bool {
        self.lease_expires_ms > self.now_ms
    }
}

/// The database's clock in milliseconds since the Unix epoch, as SQL.
fn now_ms(db: &Db<'_>) -> &'static str {
    if db.is_postgres() {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    } else {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Rows whose lease ended this long ago are dropped when a process registers.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Store {
    /// Registers a process with a lease of `lease` from now (the database's now).
    pub fn register_server(&self, server: &NewServer, lease: Duration) -> Result<(), Error> {
        let s = server.clone();
        self.write(move |tx| {
            let now = now_ms(tx);
            tx.execute(&format!("DELETE FROM servers WHERE lease_expires < {now} - ?1"), [millis(FORGET_AFTER)])?;
            tx.execute(
                &format!(
                    "INSERT INTO servers (id, host, pid, role, version, address, started_time, heartbeat_time, lease_expires)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {now}, {now} + ?8)
                     ON CONFLICT (id) DO UPDATE SET role = excluded.role, address = excluded.address,
                         heartbeat_time = excluded.heartbeat_time, lease_expires = excluded.lease_expires"
                ),
                params![s.id, s.host, s.pid, s.role, s.version, s.address, s.started_time, millis(lease)],
            )?;
            Ok(())
        })
    }

    /// Renews a process's lease to `lease` from now. False when it had already expired (or the
    /// row is gone): the process lost its operations to whoever takes them over, and must stop
    /// its tools and register again under a new id.
    pub fn renew_lease(&self, id: &str, lease: Duration) -> Result<bool, Error> {
        let id = id.to_string();
        self.write(move |tx| {
            let now = now_ms(tx);
            let changed = tx.execute(
                &format!(
                    "UPDATE servers SET heartbeat_time = {now}, lease_expires = {now} + ?2
                     WHERE id = ?1 AND lease_expires > {now}"
                ),
                params![id, millis(lease)],
            )?;
            Ok(changed == 1)
        })
    }

    /// Whether the process registered as `id` holds a live lease.
    pub fn lease_alive(&self, id: &str) -> Result<bool, Error> {
        let id = id.to_string();
        self.read(move |conn| {
            let sql = format!("SELECT 1 FROM servers WHERE id = ?1 AND lease_expires > {}", now_ms(conn));
            conn.prepare_cached(&sql)?.exists([id])
        })
    }

    /// Removes a process that stops; its operations are taken over at once, not after its
    /// lease.
    pub fn deregister_server(&self, id: &str) -> Result<(), Error> {
        let id = id.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM servers WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Every registered process (live ones first, then by start), with what it runs.
    pub fn servers(&self) -> Result<Vec<ServerRow>, Error> {
        self.read(|conn| {
            let sql = format!(
                "SELECT id, host, pid, role, version, address, started_time, heartbeat_time, lease_expires, {}
                 FROM servers ORDER BY lease_expires DESC, started_time, id",
                now_ms(conn)
            );
            let mut rows: Vec<ServerRow> = conn
                .prepare_cached(&sql)?
                .query_map((), |r| {
                    Ok(ServerRow {
                        server: NewServer {
                            id: r.get(0)?,
                            host: r.get(1)?,
                            pid: r.get(2)?,
                            role: r.get(3)?,
                            version: r.get(4)?,
                            address: r.get(5)?,
                            started_time: r.get(6)?,
                        },
                        heartbeat_ms: r.get(7)?,
                        lease_expires_ms: r.get(8)?,
                        now_ms: r.get(9)?,
                        operations: Vec::new(),
                    })
                })?
                .collect::<Result<_, _>>()?;
            let owned: Vec<(String, i64, i64)> = conn
                .prepare_cached(
                    "SELECT owner_token, id, provision_id FROM operations WHERE status = 'running' ORDER BY id",
                )?
                .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            for (token, op, provision) in owned {
                if let Some(row) = rows.iter_mut().find(|s| s.server.id == token) {
                    row.operations.push((op, provision));
                }
            }
            rows.sort_by_key(|s| (!s.alive(), s.server.started_time));
            Ok(rows)
        })
    }

    /// Takes over, for `owner`, every running operation that is not waiting in a queue and whose
    /// owner holds no live lease, each in a new epoch; returns their ids. One statement, so two
    /// processes taking over at once never both win one.
    pub fn take_over_expired(&self, owner: &Owner, time: i64) -> Result<Vec<i64>, Error> {
        let owner = owner.clone();
        self.write(move |tx| {
            let sql = format!(
                "UPDATE operations SET owner_pid = ?1, owner_token = ?2, heartbeat_time = ?3, epoch = epoch + 1
                 WHERE status = 'running' AND owner_token <> ?2 AND owner_token <> ''
                   AND NOT EXISTS (SELECT 1 FROM servers s WHERE s.id = operations.owner_token AND s.lease_expires > {})
                 RETURNING id",
                now_ms(tx)
            );
            let mut ids: Vec<i64> = tx
                .prepare_cached(&sql)?
                .query_map(params![owner.pid, owner.token, time], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.sort_unstable();
            Ok(ids)
        })
    }

    /// Wakes the servers listening for work ([`Store::listen_for_work`]); nothing on SQLite.
    pub fn notify_work(&self) -> Result<(), Error> {
        if !self.is_shared() {
            return Ok(());
        }
        self.read(|conn| conn.execute(&format!("SELECT pg_notify('{WORK_CHANNEL}', '')"), ()).map(|_| ()))
    }

    /// A `Notify` woken whenever a server queues work nobody owns yet (PostgreSQL's
    /// `LISTEN/NOTIFY`, on a connection of its own, made again when lost); never woken on SQLite.
    pub fn listen_for_work(&self) -> std::sync::Arc<tokio::sync::Notify> {
        let woken = std::sync::Arc::new(tokio::sync::Notify::new());
        if let Some(connector) = self.postgres_connector() {
            let notify = std::sync::Arc::clone(&woken);
            let spawned = std::thread::Builder::new().name("listen".into()).spawn(move || listen(&connector, &notify));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start listening for work; the once-a-second look finds it");
            }
        }
        woken
    }

    /// Claims, for `owner`, up to `limit` queued operations nobody owns yet (queued by a server
    /// that runs no operations, `--role api`), oldest first, each in a new epoch; returns their
    /// ids.
    pub fn claim_queued(&self, owner: &Owner, limit: usize, time: i64) -> Result<Vec<i64>, Error> {
        let owner = owner.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |tx| {
            let mut ids: Vec<i64> = tx
                .prepare_cached(
                    "UPDATE operations SET owner_pid = ?1, owner_token = ?2, heartbeat_time = ?3, epoch = epoch + 1
                     WHERE id IN (SELECT id FROM operations
                                  WHERE status = 'running' AND queued = 1 AND owner_token = ''
                                  ORDER BY id LIMIT ?4)
                     RETURNING id",
                )?
                .query_map(params![owner.pid, owner.token, time, limit], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.sort_unstable();
            Ok(ids)
        })
    }
}

/// The channel servers are woken on.
const WORK_CHANNEL: &str = "formwork_work";

fn listen(connector: &super::postgres::Connector, woken: &tokio::sync::Notify) {
    use ::postgres::fallible_iterator::FallibleIterator;
    loop {
        match connector.connect_as(Some("formwork listen")) {
            Ok(mut conn) => {
                let client = conn.client();
                if client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")).is_ok() {
                    let mut notifications = client.notifications();
                    let mut iter = notifications.blocking_iter();
                    while let Ok(Some(_)) = iter.next() {
                        woken.notify_one();
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot listen for work yet"),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
