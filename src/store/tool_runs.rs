//! Tool runs whose Terraform state may not be in the database yet (`tool_runs`, migration 0012).
//!
//! On a database several servers share, a tool guard marks its run before the tool starts
//! ([`Store::begin_tool_run`]) and removes the mark in the transaction that saves the state the
//! tool left ([`Store::end_tool_run`]). While a mark stands, no other run starts for the
//! provision: a server cut off from the database stops its Terraform, which writes the state of
//! what it created on that server's disk, and a run from the older stored state would create it
//! all again. The mark goes when its guard reaches the database again, when a server on the same
//! machine finds the guard gone and saves the state file it left, or when an admin forgets the
//! server for good (`formwork servers forget`).

use super::db::{Db, OptionalExtension, Row, params};
use super::{Error, Fence, Store};

/// A run's mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRunMark {
    pub provision_id: i64,
    pub operation_id: i64,
    /// The owner token of the operation when the run began: the server that ran it.
    pub server: String,
    pub host: String,
    /// The guard process on `host`, as `pid:start`.
    pub guard: String,
    /// The absolute path of the state file the tool leaves, on `host`.
    pub state_path: String,
    /// Where on `host` the guard keeps that state, sealed ([`Store::seal_left_state`]), from the
    /// tool's end until the run's end is recorded.
    pub left_path: String,
    pub started_time: i64,
}

/// What [`Store::begin_tool_run`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The run may start (marked when it leaves a state).
    Started,
    /// An earlier run's mark stands: its state may not be saved yet.
    Waiting(ToolRunMark),
}

/// Where a run that leaves a Terraform state runs, to mark it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToolRun {
    pub host: String,
    pub guard: String,
    pub state_path: String,
    pub left_path: String,
}

const COLUMNS: &str = "provision_id, operation_id, server, host, guard, state_path, left_path, started_time";

fn read_mark(r: &Row) -> Result<ToolRunMark, Error> {
    Ok(ToolRunMark {
        provision_id: r.get(0)?,
        operation_id: r.get(1)?,
        server: r.get(2)?,
        host: r.get(3)?,
        guard: r.get(4)?,
        state_path: r.get(5)?,
        left_path: r.get(6)?,
        started_time: r.get(7)?,
    })
}

fn mark_of(tx: &Db<'_>, provision_id: i64) -> Result<Option<ToolRunMark>, Error> {
    tx.prepare_cached(&format!("SELECT {COLUMNS} FROM tool_runs WHERE provision_id = ?1"))?
        .query_row([provision_id], read_mark)
        .optional()
}

impl Store {
    /// Begins a tool run of `fence`'s operation for `provision_id`: refused with
    /// [`Error::Fenced`] when the operation was taken over; [`Begun::Waiting`] while an earlier
    /// run's mark stands; otherwise started, and marked when `run` is given (a run that leaves a
    /// Terraform state).
    pub fn begin_tool_run(
        &self,
        provision_id: i64,
        fence: Fence,
        run: Option<NewToolRun>,
        time: i64,
    ) -> Result<Begun, Error> {
        self.write(move |tx| {
            fence.check(tx)?;
            if let Some(mark) = mark_of(tx, provision_id)? {
                return Ok(Begun::Waiting(mark));
            }
            if let Some(run) = &run {
                tx.prepare_cached(&format!(
                    "INSERT INTO tool_runs ({COLUMNS})
                     SELECT ?1, id, owner_token, ?2, ?3, ?4, ?5, ?6 FROM operations WHERE id = ?7"
                ))?
                .execute(params![
                    provision_id,
                    run.host,
                    run.guard,
                    run.state_path,
                    run.left_path,
                    time,
                    fence.operation_id
                ])?;
            }
            Ok(Begun::Started)
        })
    }

    /// Ends the run of `guard` for `provision_id`: saves `state` (what the tool left, if any)
    /// when its serial is higher than the newest stored one, and removes the run's mark, in one
    /// transaction. Returns whether the state was saved. A mark that is no longer this guard's
    /// (forgotten by an admin, then another run's) is left alone.
    pub fn end_tool_run(&self, provision_id: i64, guard: &str, state: Option<&str>, time: i64) -> Result<bool, Error> {
        let serial = state.and_then(super::tfstate_serial);
        let sealed = state.filter(|_| serial.is_some()).map(|s| self.seal_tfstate(s));
        let guard = guard.to_string();
        self.write(move |tx| {
            let mut saved = false;
            if let (Some(sealed), Some(serial)) = (sealed, serial) {
                let newest: Option<i64> = tx
                    .prepare_cached("SELECT max(serial) FROM tfstates WHERE provision_id = ?1")?
                    .query_row([provision_id], |r| r.get(0))?;
                if newest.is_none_or(|newest| serial > newest) {
                    super::provisions::insert_tfstate(tx, provision_id, None, Some(serial), sealed, time)?;
                    saved = true;
                }
            }
            tx.prepare_cached("DELETE FROM tool_runs WHERE provision_id = ?1 AND guard = ?2")?
                .execute(params![provision_id, guard])?;
            Ok(saved)
        })
    }

    /// Every standing mark, by provision.
    pub fn tool_runs(&self) -> Result<Vec<ToolRunMark>, Error> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM tool_runs ORDER BY provision_id"))?
                .query_map((), read_mark)?
                .collect()
        })
    }

    /// Removes the marks of `server`'s runs (an admin gave up on it); returns them.
    pub fn forget_tool_runs(&self, server: &str) -> Result<Vec<ToolRunMark>, Error> {
        let server = server.to_string();
        self.write(move |tx| {
            let marks: Vec<ToolRunMark> = tx
                .prepare_cached(&format!("SELECT {COLUMNS} FROM tool_runs WHERE server = ?1 ORDER BY provision_id"))?
                .query_map([&server], read_mark)?
                .collect::<Result<_, _>>()?;
            tx.prepare_cached("DELETE FROM tool_runs WHERE server = ?1")?.execute([&server])?;
            Ok(marks)
        })
    }
}
