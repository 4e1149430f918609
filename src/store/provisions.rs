//! Providers, provisions, their historic and Terraform states (sealed, see [`super::secrets`]),
//! and the checkpoint: the one transaction that moves a provision from one state to the next.

use super::db::{self, Db, OptionalExtension, Row, ToValue, params};
use serde_json::Value;

use super::operations::{AttemptEnd, Fence, NewAttempt, finish_attempt, insert_attempt};
use super::rows::{HistoricEntry, Mode, Ownership, ProviderRow, ProvisionRow};
use super::{Error, Store, json_column};
use crate::engine::{ProvisionBody, State};

/// A state change and everything that must be durable with it.
#[derive(Debug, Clone)]
pub struct Checkpoint<'a> {
    pub provision_id: i64,
    /// The state the caller believes the provision is in; a mismatch is a [`Error::Conflict`].
    pub from: State,
    pub to: State,
    /// A new body, when the stage changed it.
    pub body: Option<&'a ProvisionBody>,
    /// Entries beyond "State changed", which is added when `from != to`.
    pub historic: Vec<HistoricEntry>,
    /// The stage attempt this checkpoint ends, if any.
    pub attempt: Option<AttemptEnd>,
    /// The stage attempt the new state begins, if any (one commit instead of two).
    pub start: Option<NewAttempt>,
    pub time: i64,
    /// The operation writing it and the epoch it holds: refused with [`Error::Fenced`] once
    /// another process took the operation over. None for a write outside an operation.
    pub fence: Option<Fence>,
}

const PROVISION_COLUMNS: &str = "id, name, driver, provider_id, state, body, registration_time, updated_time, uid, gid, uname, gname, mode, revision";

/// Which table's row [`Store::set_ownership`] changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Providers,
    Provisions,
}

impl Store {
    /// A provider of oneadmin's (see [`Store::insert_provider_of`]).
    pub fn insert_provider(&self, name: &str, driver: &str, body: &Value, time: i64) -> Result<i64, Error> {
        self.insert_provider_of(name, driver, body, &Ownership::default(), time)
    }

    pub fn insert_provider_of(
        &self,
        name: &str,
        driver: &str,
        body: &Value,
        owner: &Ownership,
        time: i64,
    ) -> Result<i64, Error> {
        let (name, driver, body, o) = (name.to_string(), driver.to_string(), self.seal_provider(body)?, owner.clone());
        self.write(move |tx| {
            // Sealed values are bound to the row's id, taken before the row is written.
            let id = next_id(tx, "providers")?;
            let body = body.text(tx, id)?;
            tx.prepare_cached(
                "INSERT INTO providers (id, name, driver, body, registration_time, uid, gid, uname, gname, mode)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![id, name, driver, body, time, o.uid, o.gid, o.uname, o.gname, o.mode.0])?;
            Ok(id)
        })
    }

    /// Changes the owner, group or bits of a provider or provision (chown, chgrp, chmod).
    pub fn set_ownership(&self, table: Table, id: i64, owner: &Ownership) -> Result<(), Error> {
        let o = owner.clone();
        let (sql, what) = match table {
            Table::Providers => {
                ("UPDATE providers SET uid = ?2, gid = ?3, uname = ?4, gname = ?5, mode = ?6 WHERE id = ?1", "provider")
            }
            Table::Provisions => (
                "UPDATE provisions SET uid = ?2, gid = ?3, uname = ?4, gname = ?5, mode = ?6 WHERE id = ?1",
                "provision",
            ),
        };
        self.write(move |tx| {
            let changed = tx.prepare_cached(sql)?.execute(params![id, o.uid, o.gid, o.uname, o.gname, o.mode.0])?;
            if changed == 0 { Err(Error::NotFound { what, id }) } else { Ok(()) }
        })
    }

    pub fn provider(&self, id: i64) -> Result<ProviderRow, Error> {
        self.providers_where("WHERE id = ?1", vec![id.to_value()])?
            .pop()
            .ok_or(Error::NotFound { what: "provider", id })
    }

    pub fn providers(&self) -> Result<Vec<ProviderRow>, Error> {
        self.providers_where("", Vec::new())
    }

    pub fn providers_of_driver(&self, driver: &str) -> Result<Vec<ProviderRow>, Error> {
        self.providers_where("WHERE driver = ?1", vec![driver.to_value()])
    }

    fn providers_where(&self, filter: &str, args: Vec<db::Value>) -> Result<Vec<ProviderRow>, Error> {
        self.read(|conn| {
            let ids =
                if conn.is_postgres() { "string_agg(v.id::text, ',' ORDER BY v.id)" } else { "group_concat(v.id)" };
            let sql = format!(
                "SELECT p.id, p.name, p.driver, p.body, p.registration_time,
                        (SELECT {ids} FROM provisions v WHERE v.provider_id = p.id AND v.state != {}),
                        p.uid, p.gid, p.uname, p.gname, p.mode
                 FROM providers p {filter} ORDER BY p.id",
                State::Done.number()
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(args, |r| {
                let ids: Option<String> = r.get(5)?;
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<String>(3)?, r.get(4)?, ids, read_owner(r, 6)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, driver, body, registration_time, ids, owner) = row?;
                let provision_ids = ids.unwrap_or_default().split(',').filter_map(|s| s.parse().ok()).collect();
                let mut body = json_column("provider body", &body)?;
                self.open_provider(id, &mut body)?;
                out.push(ProviderRow { id, name, driver, body, registration_time, provision_ids, owner });
            }
            Ok(out)
        })
    }

    pub fn update_provider(&self, id: i64, name: &str, body: &Value) -> Result<(), Error> {
        let (name, body) = (name.to_string(), self.seal_provider(body)?);
        self.write(move |tx| {
            let body = body.text(tx, id)?;
            let changed = tx
                .prepare_cached("UPDATE providers SET name = ?2, body = ?3 WHERE id = ?1")?
                .execute(params![id, name, body])?;
            if changed == 0 { Err(Error::NotFound { what: "provider", id }) } else { Ok(()) }
        })
    }

    /// Deletes a provider no provision uses any more (DONE provisions keep a reference only to
    /// a provider that still exists, so they block it too, as long as they are not deleted).
    pub fn delete_provider(&self, id: i64) -> Result<(), Error> {
        self.write(move |tx| {
            let users: Vec<i64> = {
                let mut stmt = tx.prepare_cached("SELECT id FROM provisions WHERE provider_id = ?1 ORDER BY id")?;
                stmt.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            if !users.is_empty() {
                return Err(Error::InUse { provider_id: id, provisions: users });
            }
            if tx.prepare_cached("DELETE FROM providers WHERE id = ?1")?.execute([id])? == 0 {
                return Err(Error::NotFound { what: "provider", id });
            }
            Ok(())
        })
    }

    /// Creates a provision of oneadmin's in PENDING (see [`Store::insert_provision_of`]).
    pub fn insert_provision(
        &self,
        name: &str,
        driver: &str,
        provider_id: i64,
        body: &ProvisionBody,
        time: i64,
    ) -> Result<i64, Error> {
        self.insert_provision_of(name, driver, provider_id, body, &Ownership::default(), time)
    }

    /// Creates a provision in PENDING, owned by `owner`.
    pub fn insert_provision_of(
        &self,
        name: &str,
        driver: &str,
        provider_id: i64,
        body: &ProvisionBody,
        owner: &Ownership,
        time: i64,
    ) -> Result<i64, Error> {
        let (name, driver, body, o) = (name.to_string(), driver.to_string(), self.seal_provision(body)?, owner.clone());
        self.write(move |tx| {
            // Sealed values are bound to the row's id, taken before the row is written.
            let id = next_id(tx, "provisions")?;
            let body = body.text(tx, id)?;
            tx.prepare_cached(
                "INSERT INTO provisions (id, name, driver, provider_id, state, body, registration_time, updated_time,
                                         uid, gid, uname, gname, mode)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                id,
                name,
                driver,
                provider_id,
                State::Pending.number(),
                body,
                time,
                o.uid,
                o.gid,
                o.uname,
                o.gname,
                o.mode.0
            ])?;
            Ok(id)
        })
    }

    pub fn provision(&self, id: i64) -> Result<ProvisionRow, Error> {
        self.read(|conn| {
            let sql = format!("SELECT {PROVISION_COLUMNS} FROM provisions WHERE id = ?1");
            let row = conn.prepare_cached(&sql)?.query_row([id], read_provision).optional()?;
            row.ok_or(Error::NotFound { what: "provision", id })?
        })
        .and_then(|row| self.opened(row))
    }

    /// Provisions by id; DONE ones only when `include_done`.
    pub fn provisions(&self, include_done: bool) -> Result<Vec<ProvisionRow>, Error> {
        self.provisions_after(include_done, 0, None)
    }

    /// At most `limit` provisions (all with `None`) whose id is above `after`, in id order: a
    /// page of a long listing, read without holding every row at once.
    pub fn provisions_after(
        &self,
        include_done: bool,
        after: i64,
        limit: Option<usize>,
    ) -> Result<Vec<ProvisionRow>, Error> {
        let limit = limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        self.read(|conn| {
            let filter = if include_done { String::new() } else { format!("AND state != {}", State::Done.number()) };
            let sql = format!("SELECT {PROVISION_COLUMNS} FROM provisions WHERE id > ?1 {filter} ORDER BY id LIMIT ?2");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![after, limit], read_provision)?;
            rows.map(|r| r?).collect::<Result<Vec<_>, Error>>()
        })?
        .into_iter()
        .map(|row| self.opened(row))
        .collect()
    }

    /// A row read from the database with its sealed values opened.
    fn opened(&self, mut row: ProvisionRow) -> Result<ProvisionRow, Error> {
        self.open_provision(row.id, &mut row.body)?;
        Ok(row)
    }

    /// Ids of the provisions in PENDING with no operation at all (creates recorded but never
    /// queued), found without reading any body: the server looks for them at every start.
    pub fn unqueued_creates(&self) -> Result<Vec<i64>, Error> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM provisions p WHERE state = ?1
                   AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.provision_id = p.id) ORDER BY id",
            )?;
            let ids = stmt.query_map([State::Pending.number()], |r| r.get(0))?;
            ids.collect::<Result<_, _>>()
        })
    }

    /// Replaces a provision's name and body without touching its state (update, rename), if the
    /// body is still at `revision` (the one the change was computed from) and no operation runs:
    /// a stage's checkpoint written in between is never overwritten. Refused with
    /// [`Error::Busy`] or [`Error::Stale`] otherwise.
    pub fn update_provision(
        &self,
        id: i64,
        name: &str,
        body: &ProvisionBody,
        revision: i64,
        time: i64,
    ) -> Result<(), Error> {
        let (name, body) = (name.to_string(), self.seal_provision(body)?);
        self.write(move |tx| {
            if let Some(running) = super::operations::running(tx, id)? {
                return Err(Error::Busy { provision_id: id, operation: Box::new(running) });
            }
            let body = body.text(tx, id)?;
            let changed = tx
                .prepare_cached(
                    "UPDATE provisions SET name = ?2, body = ?3, updated_time = ?4 WHERE id = ?1 AND revision = ?5",
                )?
                .execute(params![id, name, body, time, revision])?;
            if changed == 1 {
                return Ok(());
            }
            let exists: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM provisions WHERE id = ?1)")?
                .query_row([id], |r| r.get(0))?;
            Err(if exists { Error::Stale { what: "provision", id } } else { Error::NotFound { what: "provision", id } })
        })
    }

    pub fn delete_provision(&self, id: i64) -> Result<(), Error> {
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM provision_logs WHERE provision_id = ?1")?.execute([id])?;
            if tx.prepare_cached("DELETE FROM provisions WHERE id = ?1")?.execute([id])? == 0 {
                return Err(Error::NotFound { what: "provision", id });
            }
            Ok(())
        })
    }

    pub fn historic(&self, provision_id: i64) -> Result<Vec<HistoricEntry>, Error> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT action, description, time FROM historic WHERE provision_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map([provision_id], |r| {
                Ok(HistoricEntry { action: r.get(0)?, description: r.get(1)?, time: r.get(2)? })
            })?;
            rows.collect::<Result<_, _>>()
        })
    }

    /// Appends historic entries outside a state change (e.g. objects created mid-stage).
    pub fn append_historic(&self, provision_id: i64, entries: &[HistoricEntry]) -> Result<(), Error> {
        let entries = entries.to_vec();
        self.write(move |tx| insert_historic(tx, provision_id, &entries))
    }

    /// Saves a provision's body mid-stage (e.g. after each OpenNebula object is created), so a
    /// crash never loses what was already made.
    pub fn save_body(
        &self,
        provision_id: i64,
        body: &ProvisionBody,
        historic: &[HistoricEntry],
        time: i64,
    ) -> Result<(), Error> {
        let (body, historic) = (self.seal_provision(body)?, historic.to_vec());
        self.write(move |tx| {
            let body = body.text(tx, provision_id)?;
            let changed = tx
                .prepare_cached("UPDATE provisions SET body = ?2, updated_time = ?3 WHERE id = ?1")?
                .execute(params![provision_id, body, time])?;
            if changed == 0 {
                return Err(Error::NotFound { what: "provision", id: provision_id });
            }
            insert_historic(tx, provision_id, &historic)
        })
    }

    /// Moves a provision to a new state, with its body, historic and attempt end, atomically.
    /// Returns the id of the attempt it started, if it started one.
    pub fn checkpoint(&self, c: &Checkpoint<'_>) -> Result<Option<i64>, Error> {
        let (id, from, to, time) = (c.provision_id, c.from, c.to, c.time);
        let body = c.body.map(|b| self.seal_provision(b)).transpose()?;
        let (attempt, start, fence) = (c.attempt.clone(), c.start.clone(), c.fence);
        let mut entries = Vec::with_capacity(c.historic.len() + 1);
        if from != to {
            entries.push(HistoricEntry::state_changed(from, to, time));
        }
        entries.extend(c.historic.iter().cloned());
        self.write(move |tx| {
            let body = body.map(|b| b.text(tx, id)).transpose()?;
            // Changed only from the expected state and under the fence: one statement when
            // all is well; why not, when nothing changed.
            let (operation, epoch) = fence.map(|f| (f.operation_id, f.epoch)).unzip();
            let changed = tx
                .prepare_cached(
                    "UPDATE provisions SET state = ?2, updated_time = ?3, body = coalesce(?4, body)
                     WHERE id = ?1 AND state = ?5 AND (CAST(?6 AS BIGINT) IS NULL OR EXISTS
                       (SELECT 1 FROM operations WHERE id = ?6 AND status = 'running' AND epoch = ?7))",
                )?
                .execute(params![id, to.number(), time, body, from.number(), operation, epoch])?;
            if changed == 0 {
                return Err(refused(tx, id, from, fence));
            }
            insert_historic(tx, id, &entries)?;
            if let Some(end) = &attempt {
                finish_attempt(tx, end, time)?;
            }
            start.as_ref().map(|a| insert_attempt(tx, id, a, time)).transpose()
        })
    }

    /// Records a Terraform state version (after every apply or destroy attempt, failed ones too),
    /// sealed whole: a state holds the sensitive values its resources and outputs use, in clear.
    pub fn save_tfstate(
        &self,
        provision_id: i64,
        attempt_id: Option<i64>,
        state: &str,
        time: i64,
    ) -> Result<(), Error> {
        let serial = tfstate_serial(state);
        let state = self.seal_tfstate(state);
        self.write(move |tx| insert_tfstate(tx, provision_id, attempt_id, serial, state, time))
    }

    /// The newest Terraform state saved for a provision, opened: the one of the highest serial
    /// (Terraform counts every change of a state), the last saved of those. A state saved late
    /// by a run that was fenced off is kept, as a fact about the cloud, but never wins over a
    /// newer one saved meanwhile.
    pub fn latest_tfstate(&self, provision_id: i64) -> Result<Option<String>, Error> {
        let stored: Option<String> = self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT state FROM tfstates WHERE provision_id = ?1 ORDER BY coalesce(serial, -1) DESC, id DESC LIMIT 1",
            )?;
            stmt.query_row([provision_id], |r| r.get(0)).optional()
        })?;
        stored.map(|text| self.open_tfstate(provision_id, &text)).transpose()
    }
}

/// Why a checkpoint changed nothing: its operation was fenced off, or the provision is gone or
/// not in the state the checkpoint leaves.
fn refused(tx: &Db<'_>, id: i64, from: State, fence: Option<Fence>) -> Error {
    let why = || -> Result<Error, Error> {
        if let Some(fence) = fence {
            fence.check(tx)?;
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT state FROM provisions WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let found = found.ok_or(Error::NotFound { what: "provision", id })?;
        let found = State::from_number(found).map_or_else(|| found.to_string(), |s| s.to_string());
        Ok(Error::Conflict { provision_id: id, expected: from.to_string(), found })
    };
    why().unwrap_or_else(|e| e)
}

/// A Terraform state's serial (Terraform counts every change of a state): which of two states
/// is the newer; none when the text holds none.
pub fn tfstate_serial(state: &str) -> Option<i64> {
    serde_json::from_str::<Value>(state).ok().and_then(|v| v["serial"].as_i64())
}

/// Stores a Terraform state of provision `provision_id`, sealed for its row.
pub(super) fn insert_tfstate(
    tx: &Db<'_>,
    provision_id: i64,
    attempt_id: Option<i64>,
    serial: Option<i64>,
    state: super::secrets::Sealed,
    time: i64,
) -> Result<(), Error> {
    let state = state.text(tx, provision_id)?;
    tx.prepare_cached(
        "INSERT INTO tfstates (provision_id, attempt_id, serial, state, saved_time) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![provision_id, attempt_id, serial, state, time])?;
    Ok(())
}

fn insert_historic(tx: &Db<'_>, provision_id: i64, entries: &[HistoricEntry]) -> Result<(), Error> {
    let mut stmt =
        tx.prepare_cached("INSERT INTO historic (provision_id, action, description, time) VALUES (?1, ?2, ?3, ?4)")?;
    for e in entries {
        stmt.execute_later(params![provision_id, e.action, e.description, e.time])?;
    }
    Ok(())
}

fn read_provision(r: &Row) -> Result<Result<ProvisionRow, Error>, Error> {
    let state: i64 = r.get(4)?;
    let body: String = r.get(5)?;
    let build = || -> Result<ProvisionRow, Error> {
        Ok(ProvisionRow {
            id: r.get(0)?,
            name: r.get(1)?,
            driver: r.get(2)?,
            provider_id: r.get(3)?,
            state: State::from_number(state)
                .ok_or(Error::Corrupt { what: "provision state", message: state.to_string() })?,
            body: json_column("provision body", &body)?,
            registration_time: r.get(6)?,
            updated_time: r.get(7)?,
            owner: read_owner(r, 8)?,
            revision: r.get(13)?,
        })
    };
    Ok(build())
}

/// The five ownership columns starting at `first` (uid, gid, uname, gname, mode).
fn read_owner(r: &Row, first: usize) -> Result<Ownership, Error> {
    Ok(Ownership {
        uid: r.get(first)?,
        gid: r.get(first + 1)?,
        uname: r.get(first + 2)?,
        gname: r.get(first + 3)?,
        mode: Mode(r.get(first + 4)?),
    })
}

/// The id a new row of `table` (providers, provisions or operations) gets: one above every id
/// the table ever gave, so an id names one object for ever (`id_sequence`, kept by triggers on
/// insert; see migrations 0005 and 0013).
pub(super) fn next_id(tx: &Db<'_>, table: &str) -> Result<i64, Error> {
    let mut stmt = tx.prepare_cached("SELECT last_id + 1 FROM id_sequence WHERE tbl = ?1")?;
    stmt.query_row([table], |r| r.get(0))
}
