//! Operations and stage attempts. An operation is one user request (create, scale, retry, …)
//! worked on by one process; the partial unique index `operations_one_running` makes "one
//! running operation per provision" a database fact shared by every process.

use super::db::{Db, OptionalExtension, Row, params};

use crate::engine::{Event, Params};

use super::rows::{AttemptRow, OperationRow, OperationStatus};
use super::{Error, Store, json_column};

/// The process that owns an operation: its pid and a token unique to that process's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: i64,
    pub token: String,
}

impl Owner {
    /// The owner a process token (`pid:start`) names; none when it names no pid.
    pub fn of_process(token: &str) -> Option<Owner> {
        let pid = token.split(':').next()?.parse().ok()?;
        Some(Owner { pid, token: token.to_string() })
    }
}

/// An operation and the epoch its owner holds. Every transition of an operation is written
/// under its fence: once another process took the operation over (which bumps the epoch), the
/// old owner's writes are refused with [`Error::Fenced`], so a process that was frozen or cut
/// off from the database can never write over the work of the one that took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub operation_id: i64,
    pub epoch: i64,
}

impl Fence {
    /// Refuses the write unless the operation still runs under this epoch.
    pub(super) fn check(self, tx: &Db<'_>) -> Result<(), Error> {
        let current: Option<(String, i64)> = tx
            .prepare_cached("SELECT status, epoch FROM operations WHERE id = ?1")?
            .query_row([self.operation_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match current {
            Some((status, epoch)) if status == "running" && epoch == self.epoch => Ok(()),
            Some((_, current)) => Err(Error::Fenced { operation_id: self.operation_id, epoch: self.epoch, current }),
            None => Err(Error::NotFound { what: "operation", id: self.operation_id }),
        }
    }
}

/// A stage attempt to start.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub operation_id: i64,
    pub stage: String,
    pub log_start: i64,
}

/// Records the start of a stage attempt; returns its id.
pub(super) fn insert_attempt(tx: &Db<'_>, provision_id: i64, a: &NewAttempt, time: i64) -> Result<i64, Error> {
    tx.prepare_cached(
        "INSERT INTO stage_attempts (operation_id, provision_id, stage, started_time, log_start)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    )?
    .query_row(params![a.operation_id, provision_id, a.stage, time, a.log_start], |r| r.get(0))
}

/// How a stage attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    pub attempt_id: i64,
    pub outcome: OperationStatus,
    pub error: Option<String>,
    pub exit_status: Option<i32>,
    pub log_end: i64,
}

/// The `error` of an operation cancelled before any of its stages started: it ran nothing.
pub const NOT_STARTED: &str = "cancelled before it started";

const OPERATION_COLUMNS: &str = "id, provision_id, kind, params, status, owner_pid, owner_token, heartbeat_time, \
                                 cancel_requested, created_time, finished_time, error, queued, event, driver_digest, epoch";

impl Store {
    /// Starts an operation, or refuses with [`Error::Busy`] naming the one already running.
    /// `event` is what begins its work (none for a public-IP change, whose params say it all):
    /// with it and `params` the row is a request any process can start from the beginning.
    pub fn begin_operation(
        &self,
        provision_id: i64,
        kind: &str,
        params: &Params,
        event: Option<Event>,
        owner: &Owner,
        time: i64,
    ) -> Result<i64, Error> {
        self.start_operation(provision_id, kind, params, event, owner, time, false)
    }

    /// Starts an operation that waits in the server's queue: it holds the provision's lock
    /// from now on, and [`Store::dequeue`] marks it started when a slot frees.
    pub fn enqueue_operation(
        &self,
        provision_id: i64,
        kind: &str,
        params: &Params,
        event: Option<Event>,
        owner: &Owner,
        time: i64,
    ) -> Result<i64, Error> {
        self.start_operation(provision_id, kind, params, event, owner, time, true)
    }

    #[allow(clippy::too_many_arguments)] // the row's columns, each distinct
    fn start_operation(
        &self,
        provision_id: i64,
        kind: &str,
        params: &Params,
        event: Option<Event>,
        owner: &Owner,
        time: i64,
        queued: bool,
    ) -> Result<i64, Error> {
        let to_json = |what: &'static str, value: Result<String, serde_json::Error>| {
            value.map_err(|e| Error::Corrupt { what, message: e.to_string() })
        };
        let params = to_json("operation params", serde_json::to_string(params))?;
        let event = event.map(|e| to_json("operation event", serde_json::to_string(&e))).transpose()?;
        let (kind, owner) = (kind.to_string(), owner.clone());
        self.write(move |tx| {
            let id = begin(tx, provision_id, &kind, &params, &owner, time)?;
            tx.prepare_cached("UPDATE operations SET queued = ?2, event = ?3 WHERE id = ?1")?
                .execute_later(params![id, queued, event])?;
            Ok(id)
        })
    }

    /// Marks a queued operation as started (it got a slot). False when it no longer waits:
    /// it was cancelled meanwhile, or another process took it over.
    pub fn dequeue(&self, id: i64) -> Result<bool, Error> {
        self.write(move |tx| {
            let changed = tx
                .prepare_cached("UPDATE operations SET queued = 0 WHERE id = ?1 AND status = 'running' AND queued = 1")?
                .execute([id])?;
            Ok(changed == 1)
        })
    }

    /// Whether any stage of the operation has started: an operation without one has done
    /// nothing yet, whatever its `queued` flag says (its process may have died between taking
    /// its slot and its first checkpoint).
    pub fn has_started_stages(&self, id: i64) -> Result<bool, Error> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM stage_attempts WHERE operation_id = ?1)")?;
            stmt.query_row([id], |r| r.get(0))
        })
    }

    /// How many running operations wait for a slot.
    pub fn queue_length(&self) -> Result<i64, Error> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT count(*) FROM operations WHERE status = 'running' AND queued = 1")?;
            stmt.query_row((), |r| r.get(0))
        })
    }

    pub fn operation(&self, id: i64) -> Result<OperationRow, Error> {
        self.read(|conn| {
            let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ?1");
            let row = conn.prepare_cached(&sql)?.query_row([id], read_operation).optional()?;
            row.ok_or(Error::NotFound { what: "operation", id })?
        })
    }

    /// The running operation of a provision, if any.
    pub fn running_operation(&self, provision_id: i64) -> Result<Option<OperationRow>, Error> {
        self.read(|conn| running(conn, provision_id))
    }

    /// Every running operation, oldest first (for resume).
    pub fn running_operations(&self) -> Result<Vec<OperationRow>, Error> {
        self.read(|conn| {
            let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE status = 'running' ORDER BY id");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map((), read_operation)?;
            rows.map(|r| r?).collect()
        })
    }

    /// Operations of a provision, oldest first.
    pub fn operations(&self, provision_id: i64) -> Result<Vec<OperationRow>, Error> {
        self.read(|conn| {
            let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE provision_id = ?1 ORDER BY id");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([provision_id], read_operation)?;
            rows.map(|r| r?).collect()
        })
    }

    /// Claims a running operation for `owner` if it still belongs to `previous` (compare and
    /// set, so two processes resuming at once cannot both win), in a new epoch: the previous
    /// owner's writes are fenced off from now on.
    pub fn take_over(&self, id: i64, previous: &Owner, owner: &Owner, time: i64) -> Result<bool, Error> {
        let (previous, owner) = (previous.clone(), owner.clone());
        self.write(move |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE operations SET owner_pid = ?4, owner_token = ?5, heartbeat_time = ?6, epoch = epoch + 1
                     WHERE id = ?1 AND status = 'running' AND owner_pid = ?2 AND owner_token = ?3",
                )?
                .execute(params![id, previous.pid, previous.token, owner.pid, owner.token, time])?;
            Ok(changed == 1)
        })
    }

    pub fn heartbeat(&self, id: i64, time: i64) -> Result<(), Error> {
        self.write(move |tx| {
            tx.prepare_cached("UPDATE operations SET heartbeat_time = ?2 WHERE id = ?1")?.execute(params![id, time])?;
            Ok(())
        })
    }

    /// Ends an operation under its fence; the provision is free for the next one. An operation
    /// already ended is left as it is.
    pub fn finish_operation(
        &self,
        fence: Fence,
        status: OperationStatus,
        error: Option<&str>,
        time: i64,
    ) -> Result<(), Error> {
        let error = error.map(str::to_string);
        self.write(move |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE operations SET status = ?2, error = ?3, finished_time = ?4
                     WHERE id = ?1 AND status = 'running' AND epoch = ?5",
                )?
                .execute(params![fence.operation_id, status.as_str(), error, time, fence.epoch])?;
            // Not changed: ended already (a queued operation cancelled meanwhile), or running
            // under another epoch, which refuses this write.
            if changed == 0 && is_running(tx, fence.operation_id)? {
                fence.check(tx)?;
            }
            Ok(())
        })
    }

    /// Asks the running operation of a provision to stop; returns it as it was, or None if none
    /// runs. One still waiting in the queue (`queued`) has run nothing: it is closed as
    /// cancelled here, in the same transaction, so no slot ever starts it.
    pub fn request_cancel(&self, provision_id: i64, time: i64) -> Result<Option<OperationRow>, Error> {
        self.write(move |tx| {
            let Some(op) = running(tx, provision_id)? else { return Ok(None) };
            if op.queued {
                tx.prepare_cached(
                    "UPDATE operations SET status = 'cancelled', cancel_requested = 1, queued = 0, finished_time = ?2,
                            error = ?3 WHERE id = ?1",
                )?
                .execute(params![op.id, time, NOT_STARTED])?;
            } else {
                tx.prepare_cached("UPDATE operations SET cancel_requested = 1 WHERE id = ?1")?.execute([op.id])?;
            }
            Ok(Some(op))
        })
    }

    pub fn is_cancel_requested(&self, id: i64) -> Result<bool, Error> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT cancel_requested FROM operations WHERE id = ?1")?;
            stmt.query_row([id], |r| r.get(0))
        })
    }

    /// Records that a stage started, before any of its effects, under the operation's fence.
    pub fn start_attempt(
        &self,
        fence: Fence,
        provision_id: i64,
        stage: &str,
        log_start: i64,
        time: i64,
    ) -> Result<i64, Error> {
        let start = NewAttempt { operation_id: fence.operation_id, stage: stage.to_string(), log_start };
        self.write(move |tx| {
            fence.check(tx)?;
            insert_attempt(tx, provision_id, &start, time)
        })
    }

    /// Ends an attempt outside a checkpoint (when no state change follows).
    pub fn end_attempt(&self, end: &AttemptEnd, time: i64) -> Result<(), Error> {
        let end = end.clone();
        self.write(move |tx| finish_attempt(tx, &end, time))
    }

    /// Closes the attempts an interrupted operation left open.
    pub fn interrupt_attempts(&self, operation_id: i64, log_end: i64, time: i64) -> Result<(), Error> {
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE stage_attempts SET finished_time = ?2, outcome = 'interrupted', error = 'the process running it stopped', log_end = ?3
                 WHERE operation_id = ?1 AND finished_time IS NULL",
            )?
            .execute(params![operation_id, time, log_end])?;
            Ok(())
        })
    }

    pub fn attempts(&self, provision_id: i64) -> Result<Vec<AttemptRow>, Error> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, operation_id, stage, started_time, finished_time, outcome, error, log_start, log_end, exit_status
                 FROM stage_attempts WHERE provision_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([provision_id], |r| {
                Ok(AttemptRow {
                    id: r.get(0)?,
                    operation_id: r.get(1)?,
                    stage: r.get(2)?,
                    started_time: r.get(3)?,
                    finished_time: r.get(4)?,
                    outcome: r.get(5)?,
                    error: r.get(6)?,
                    log_start: r.get(7)?,
                    log_end: r.get(8)?,
                    exit_status: r.get(9)?,
                })
            })?;
            rows.collect::<Result<_, _>>()
        })
    }
}

/// The write of [`Store::begin_operation`]: refused with [`Error::Busy`] while another operation
/// of the provision runs (the writer's IMMEDIATE transaction keeps the check and the insert
/// together; the unique index backs it).
pub(super) fn begin(
    tx: &Db<'_>,
    provision_id: i64,
    kind: &str,
    params: &str,
    owner: &Owner,
    time: i64,
) -> Result<i64, Error> {
    if let Some(running) = running(tx, provision_id)? {
        return Err(Error::Busy { provision_id, operation: Box::new(running) });
    }
    let id = super::provisions::next_id(tx, "operations")?;
    tx.prepare_cached(
        "INSERT INTO operations (id, provision_id, kind, params, status, owner_pid, owner_token, heartbeat_time, created_time)
         VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?7)",
    )?
    .execute(params![id, provision_id, kind, params, owner.pid, owner.token, time])?;
    Ok(id)
}

fn is_running(tx: &Db<'_>, operation_id: i64) -> Result<bool, Error> {
    tx.prepare_cached("SELECT 1 FROM operations WHERE id = ?1 AND status = 'running'")?.exists([operation_id])
}

pub(super) fn running(conn: &Db<'_>, provision_id: i64) -> Result<Option<OperationRow>, Error> {
    let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE provision_id = ?1 AND status = 'running'");
    conn.prepare_cached(&sql)?.query_row([provision_id], read_operation).optional()?.transpose()
}

pub(super) fn finish_attempt(tx: &Db<'_>, end: &AttemptEnd, time: i64) -> Result<(), Error> {
    tx.prepare_cached(
        "UPDATE stage_attempts SET finished_time = ?2, outcome = ?3, error = ?4, log_end = ?5, exit_status = ?6 WHERE id = ?1",
    )?
    .execute_later(params![end.attempt_id, time, end.outcome.as_str(), end.error, end.log_end, end.exit_status])
}

fn read_operation(r: &Row) -> Result<Result<OperationRow, Error>, Error> {
    let params_text: String = r.get(3)?;
    let status_text: String = r.get(4)?;
    let event_text: Option<String> = r.get(13)?;
    let build = || -> Result<OperationRow, Error> {
        Ok(OperationRow {
            id: r.get(0)?,
            provision_id: r.get(1)?,
            kind: r.get(2)?,
            params: json_column("operation params", &params_text)?,
            status: OperationStatus::parse(&status_text)
                .ok_or(Error::Corrupt { what: "operation status", message: status_text.clone() })?,
            owner_pid: r.get(5)?,
            owner_token: r.get(6)?,
            heartbeat_time: r.get(7)?,
            cancel_requested: r.get(8)?,
            created_time: r.get(9)?,
            finished_time: r.get(10)?,
            error: r.get(11)?,
            queued: r.get(12)?,
            event: event_text.as_deref().map(|text| json_column("operation event", text)).transpose()?,
            driver_digest: r.get(14)?,
            epoch: r.get(15)?,
        })
    };
    Ok(build())
}

/// The upper bounds (seconds) of the stage duration histogram's buckets.
pub const STAGE_BUCKETS: [i64; 7] = [1, 5, 15, 60, 300, 900, 3600];

/// Counts for `/metrics`, read in one pass over the tables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// (kind, status, count) of every operation ever recorded.
    pub operations: Vec<(String, String, i64)>,
    /// (state number, count).
    pub provisions: Vec<(i64, i64)>,
    /// Running operations waiting for a slot, and those holding one.
    pub queued: i64,
    pub running: i64,
    pub stages: Vec<StageMetrics>,
}

/// Finished attempts of one stage: cumulative counts per [`STAGE_BUCKETS`] bound, sum, count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageMetrics {
    pub stage: String,
    pub buckets: Vec<(i64, i64)>,
    pub sum: i64,
    pub count: i64,
}

impl Store {
    pub fn metrics(&self) -> Result<Metrics, Error> {
        self.read(|conn| {
            let mut m = Metrics::default();
            let mut stmt = conn.prepare_cached("SELECT kind, status, count(*) FROM operations GROUP BY kind, status ORDER BY kind, status")?;
            m.operations = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
            let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM provisions GROUP BY state ORDER BY state")?;
            m.provisions = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
            let mut stmt = conn.prepare_cached(
                "SELECT CAST(coalesce(sum(queued), 0) AS BIGINT), CAST(coalesce(sum(1 - queued), 0) AS BIGINT)
                 FROM operations WHERE status = 'running'",
            )?;
            (m.queued, m.running) = stmt.query_row((), |r| Ok((r.get(0)?, r.get(1)?)))?;
            let bounds: String = STAGE_BUCKETS.iter().map(|b| format!(", sum(CASE WHEN d <= {b} THEN 1 ELSE 0 END)")).collect();
            let sql = format!(
                "SELECT stage, count(*), CAST(sum(d) AS BIGINT){bounds} FROM
                     (SELECT stage, finished_time - started_time AS d FROM stage_attempts WHERE finished_time IS NOT NULL) AS a
                 GROUP BY stage ORDER BY stage"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            m.stages = stmt
                .query_map((), |r| {
                    let mut buckets = Vec::new();
                    for (i, bound) in STAGE_BUCKETS.iter().enumerate() {
                        buckets.push((*bound, r.get(3 + i)?));
                    }
                    Ok(StageMetrics { stage: r.get(0)?, count: r.get(1)?, sum: r.get(2)?, buckets })
                })?
                .collect::<Result<_, _>>()?;
            Ok(m)
        })
    }
}
