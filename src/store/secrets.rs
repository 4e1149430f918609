//! Secrets in the store: the sensitive values of provider and provision bodies, and Terraform
//! states whole, are sealed when they are written and opened when they are read
//! (`crate::secrets`), so the database file never holds them in clear and the layers above see
//! clear values, in memory only. A body's value is bound to its row (`provider:<id>:<input>`),
//! a state to its provision: copied into another row, it does not open there.
//!
//! A write seals inside its transaction ([`Sealed::text`]): that is where an insert learns its
//! row's id, and where the `sealing` row names the key new values are sealed with. Once a
//! rotation has switched that row, no value under the old key can be written any more, so the
//! old key can be retired when the pass that re-seals every row ends.
//!
//! Opening checks the keys before anything is written: a database whose row names a key this
//! process lacks is refused. Values written before sealing existed are sealed by the step that
//! follows the SQL migrations. A rotation left half done (the row not marked re-sealed, or a key
//! file still holding a retired key) is finished by the next open; migrations 0004 and 0006 mark
//! the row so, which is how Terraform states saved before they were sealed get sealed, and how
//! values sealed before they were bound to their row (`v1`) get bound. That pass, the migration
//! step, is the only one that takes clear values and `v1` seals (`sealing.bound` is 0 until it
//! ends); every later pass leaves them, and reads refuse them, naming the row.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::db::{Db, OptionalExtension, params};
use serde_json::Value;

use super::{Error, Store, json_column};
use crate::engine::ProvisionBody;
use crate::secrets::{self, Key, Keyring, Older, Row};

/// Rows re-sealed per transaction during a rotation: short transactions, so the writes of
/// running operations pass in between.
const BATCH: i64 = 100;
/// The same for Terraform states, which are larger than bodies (tens of kilobytes each).
const STATE_BATCH: i64 = 20;

/// The two tables whose bodies hold sensitive values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bodies {
    Providers,
    Provisions,
}

impl Bodies {
    fn table(self) -> &'static str {
        match self {
            Bodies::Providers => "providers",
            Bodies::Provisions => "provisions",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Bodies::Providers => "provider body",
            Bodies::Provisions => "provision body",
        }
    }

    /// The row of id `id` in this table.
    fn row(self, id: i64) -> Row {
        match self {
            Bodies::Providers => Row::Provider(id),
            Bodies::Provisions => Row::Provision(id),
        }
    }

    /// The body's map of values, whose sensitive entries are sealed.
    fn values(self) -> &'static str {
        match self {
            Bodies::Providers => "connection",
            Bodies::Provisions => "user_inputs_values",
        }
    }
}

/// Every kind of row that holds sealed values, in the order a rotation re-seals them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    Bodies(Bodies),
    Tfstates,
}

const ROWS: [Rows; 3] = [Rows::Bodies(Bodies::Providers), Rows::Bodies(Bodies::Provisions), Rows::Tfstates];

/// A row's text as it is to be stored: ready, or holding clear values to seal inside the
/// write's transaction, once the row's id is known (an insert learns it there) and with the
/// key the `sealing` row names then.
pub(super) struct Sealed {
    content: Content,
    keys: Arc<Keyring>,
}

enum Content {
    /// A body with no sensitive value: stored as it is.
    Ready(String),
    /// A body whose sensitive values are still clear.
    Body { bodies: Bodies, body: Value },
    /// A Terraform state, in clear.
    Tfstate(String),
}

impl Sealed {
    /// The text to store in the row of provider or provision `id` (for a Terraform state: of
    /// its provision), sealed with the database's sealing key and bound to that row.
    pub(super) fn text(self, tx: &Db<'_>, id: i64) -> Result<String, Error> {
        match self.content {
            Content::Ready(text) => Ok(text),
            Content::Body { bodies, mut body } => {
                let key = self.keys.get(&sealing_key(tx)?)?;
                let inputs = body.get("user_inputs").cloned().unwrap_or_default();
                if let Some(values) = body.get_mut(bodies.values()).and_then(Value::as_object_mut) {
                    secrets::seal_values(&key, bodies.row(id), &inputs, values)?;
                }
                Ok(body.to_string())
            }
            Content::Tfstate(state) => {
                let key = self.keys.get(&sealing_key(tx)?)?;
                Ok(secrets::seal_document(&key, &state_name(id), state.as_bytes())?)
            }
        }
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key every value is now sealed with.
    pub key_id: String,
    /// Provider, provision and Terraform state rows sealed again.
    pub rows: usize,
    /// The keys no value uses any more: gone from the key file, or to drop from
    /// `FORMWORK_SECRET_KEY` by hand when `by_hand`.
    pub retired: Vec<String>,
    pub by_hand: bool,
}

/// The steps of a rotation, reported as they are done (for the crash tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    /// The new key is written beside the old ones; both open values.
    KeyAdded,
    /// The database seals new values with the new key.
    Switched,
    /// This many batches of rows are re-sealed.
    Batch(usize),
    /// Every value is under the new key; the old ones are not retired yet.
    Resealed,
}

/// The rotation lock, held while this lives: an advisory lock on `<database>.secrets-lock`
/// (nothing for an in-memory store).
pub(super) struct RotationLock(#[allow(dead_code)] Option<fs::File>);

impl Store {
    /// A provider body to store: its sensitive connection values are sealed by [`Sealed::text`].
    pub(super) fn seal_provider(&self, body: &Value) -> Result<Sealed, Error> {
        let inputs = body.get("user_inputs").unwrap_or(&Value::Null);
        let content = match body.get("connection").and_then(Value::as_object) {
            Some(values) if secrets::holds_sensitive(inputs, values) => {
                Content::Body { bodies: Bodies::Providers, body: body.clone() }
            }
            _ => Content::Ready(body.to_string()),
        };
        Ok(self.sealed(content))
    }

    /// A provision body to store: its sensitive input values are sealed by [`Sealed::text`].
    pub(super) fn seal_provision(&self, body: &ProvisionBody) -> Result<Sealed, Error> {
        let corrupt = |e: serde_json::Error| Error::Corrupt { what: "provision body", message: e.to_string() };
        let content = if secrets::holds_sensitive(&body.user_inputs, &body.user_inputs_values) {
            Content::Body { bodies: Bodies::Provisions, body: serde_json::to_value(body).map_err(corrupt)? }
        } else {
            Content::Ready(serde_json::to_string(body).map_err(corrupt)?)
        };
        Ok(self.sealed(content))
    }

    /// A Terraform state to store: sealed whole by [`Sealed::text`].
    pub(super) fn seal_tfstate(&self, state: &str) -> Sealed {
        self.sealed(Content::Tfstate(state.to_string()))
    }

    /// The clear text of a Terraform state of provision `provision_id` read from the database.
    pub(super) fn open_tfstate(&self, provision_id: i64, stored: &str) -> Result<String, Error> {
        Ok(secrets::open_document(&self.keys, &state_name(provision_id), stored)?)
    }

    fn sealed(&self, content: Content) -> Sealed {
        Sealed { content, keys: Arc::clone(&self.keys) }
    }

    /// A saved Terraform plan of provision `provision_id` sealed for the disk, where it waits
    /// between PLANNING and APPLYING: a plan holds the variables' values in clear. Bound to the
    /// provision, and not re-sealed by a rotation: a plan whose key was retired does not open,
    /// and APPLYING plans again.
    pub fn seal_plan(&self, provision_id: i64, plan: &[u8]) -> Result<String, Error> {
        let key = self.keys.sealing()?;
        Ok(secrets::seal_document(&key, &plan_name(provision_id), plan)?)
    }

    /// The clear plan [`Store::seal_plan`] sealed.
    pub fn open_plan(&self, provision_id: i64, sealed: &str) -> Result<Vec<u8>, Error> {
        Ok(secrets::open_sealed_document(&self.keys, &plan_name(provision_id), sealed)?.1)
    }

    /// A Terraform state of provision `provision_id` sealed for the disk of the machine whose tool
    /// left it, where its guard keeps it until it reaches the database
    /// (`crate::service::guard`).
    pub fn seal_left_state(&self, provision_id: i64, state: &str) -> Result<String, Error> {
        let key = self.keys.sealing()?;
        Ok(secrets::seal_document(&key, &left_state_name(provision_id), state.as_bytes())?)
    }

    /// The clear state [`Store::seal_left_state`] sealed.
    pub fn open_left_state(&self, provision_id: i64, sealed: &str) -> Result<String, Error> {
        let bytes = secrets::open_sealed_document(&self.keys, &left_state_name(provision_id), sealed)?.1;
        String::from_utf8(bytes).map_err(|e| Error::Corrupt { what: "left Terraform state", message: e.to_string() })
    }

    /// Opens the sealed values of the body of provider `id` read from the database.
    pub(super) fn open_provider(&self, id: i64, body: &mut Value) -> Result<(), Error> {
        let Some(inputs) = body.get("user_inputs").cloned() else { return Ok(()) };
        if let Some(values) = body.get_mut("connection").and_then(Value::as_object_mut) {
            secrets::open_values(&self.keys, Row::Provider(id), &inputs, values)?;
        }
        Ok(())
    }

    /// Opens the sealed values of the body of provision `id` read from the database.
    pub(super) fn open_provision(&self, id: i64, body: &mut ProvisionBody) -> Result<(), Error> {
        let row = Row::Provision(id);
        Ok(secrets::open_values(&self.keys, row, &body.user_inputs, &mut body.user_inputs_values)?)
    }

    /// The id of the key new values are sealed with, and whether every value is under it.
    pub fn sealing(&self) -> Result<(String, bool), Error> {
        self.read(|conn| {
            let row = conn
                .prepare_cached("SELECT key_id, resealed FROM sealing WHERE \"only\" = 1")?
                .query_row((), |r| Ok((r.get(0)?, r.get::<i64>(1)? == 1)))?;
            Ok(row)
        })
    }

    /// Seals every value with a new key: the new key is written beside the old ones (both open
    /// values meanwhile), the database switches to it, every row is sealed again in short
    /// transactions, and only then are the old keys retired. Killed half way, the next open
    /// finishes it. `step` hears of each step as it is done.
    pub fn rotate_secrets(&self, step: &mut dyn FnMut(RotationStep)) -> Result<Rotation, Error> {
        let _lock = self.lock_rotation()?.ok_or_else(|| self.rotation_busy())?;
        self.keys.load(false)?;
        self.keys.add_key()?;
        step(RotationStep::KeyAdded);
        self.finish_rotation(step)
    }

    /// Finishes a rotation left half done (or the sealing of rows a migration left clear), unless
    /// another process is rotating right now.
    pub(super) fn finish_pending_rotation(&self) -> Result<(), Error> {
        let Some(_lock) = self.lock_rotation()? else { return Ok(()) };
        self.keys.load(false)?;
        let (id, resealed) = self.sealing()?;
        let ids = self.keys.ids();
        let retirable = self.keys.can_retire() && ids.len() > 1;
        if resealed && !retirable && ids.first() == Some(&id) {
            return Ok(());
        }
        let done = self.finish_rotation(&mut |_| {})?;
        tracing::info!(
            key = %done.key_id,
            rows = done.rows,
            "a pending re-seal was finished: every secret value is under the sealing key"
        );
        Ok(())
    }

    /// Switches the database to the keyring's sealing key, seals every row again with it, then
    /// retires the other keys.
    fn finish_rotation(&self, step: &mut dyn FnMut(RotationStep)) -> Result<Rotation, Error> {
        let key = self.keys.sealing()?;
        let id = key.id().to_string();
        let older = self.write(move |tx| {
            tx.execute("UPDATE sealing SET key_id = ?1, resealed = 0 WHERE \"only\" = 1 AND key_id != ?1", [&id])?;
            let bound: i64 = tx.query_row("SELECT bound FROM sealing WHERE \"only\" = 1", (), |r| r.get(0))?;
            Ok(if bound == 1 { Older::Leave } else { Older::Adopt })
        })?;
        step(RotationStep::Switched);
        let (mut rows, mut batches) = (0, 0);
        for kind in ROWS {
            let mut after = 0;
            loop {
                let (keys, key) = (Arc::clone(&self.keys), Arc::clone(&key));
                let (last, changed) = self.write(move |tx| reseal_batch(tx, &keys, (&key, older), kind, after))?;
                let Some(last) = last else { break };
                (after, rows, batches) = (last, rows + changed, batches + 1);
                step(RotationStep::Batch(batches));
            }
        }
        let id = key.id().to_string();
        self.write(move |tx| {
            tx.execute("UPDATE sealing SET resealed = 1, bound = 1 WHERE \"only\" = 1 AND key_id = ?1", [&id])?;
            Ok(())
        })?;
        step(RotationStep::Resealed);
        let retired = self.keys.retire_others()?;
        Ok(Rotation { key_id: key.id().to_string(), rows, retired, by_hand: !self.keys.can_retire() })
    }

    /// Takes the rotation lock if no other process holds it.
    fn lock_rotation(&self) -> Result<Option<RotationLock>, Error> {
        let Some(path) = &self.rotation_lock else { return Ok(Some(RotationLock(None))) };
        let fail = |e: std::io::Error| Error::Open { path: path.clone(), message: e.to_string() };
        let file =
            fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(path).map_err(fail)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RotationLock(Some(file)))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(fail(e)),
        }
    }

    fn rotation_busy(&self) -> Error {
        Error::Open {
            path: self.rotation_lock.clone().unwrap_or_else(|| PathBuf::from(":memory:")),
            message: "another formwork process is rotating the secret keys; wait for it to finish".into(),
        }
    }
}

/// The step after the SQL migrations, in their transaction: loads the keys (creating a key file
/// only for a database that names no key yet), refuses a database sealed with a key the keyring
/// lacks, seals the values written before sealing existed, and records the sealing key. Returns
/// whether a rotation is left to finish.
pub(super) fn check_keys(tx: &Db<'_>, keys: &Keyring) -> Result<bool, Error> {
    let recorded: Option<(String, bool)> = tx
        .query_row("SELECT key_id, resealed FROM sealing WHERE \"only\" = 1", (), |r| {
            Ok((r.get(0)?, r.get::<i64>(1)? == 1))
        })
        .optional()?;
    let Some((id, resealed)) = recorded else {
        keys.load(true)?;
        let key = keys.sealing()?;
        for bodies in [Bodies::Providers, Bodies::Provisions] {
            reseal_rows(tx, keys, (&key, Older::Adopt), bodies, 0, i64::MAX)?;
        }
        reseal_tfstates(tx, keys, (&key, Older::Adopt), 0, i64::MAX)?;
        tx.execute("INSERT INTO sealing (\"only\", key_id, resealed) VALUES (1, ?1, 1)", [key.id()])?;
        return Ok(keys.can_retire() && keys.ids().len() > 1);
    };
    keys.load(false)?;
    keys.get(&id)?;
    let sealing = keys.sealing()?;
    Ok(sealing.id() != id || !resealed || (keys.can_retire() && keys.ids().len() > 1))
}

fn sealing_key(tx: &Db<'_>) -> Result<String, Error> {
    tx.prepare_cached("SELECT key_id FROM sealing WHERE \"only\" = 1")?.query_row((), |r| r.get(0))
}

/// A re-seal pass: the key every value is to be sealed with, and what it does with values no
/// formwork writes any more.
type Pass<'a> = (&'a Key, Older);

/// Seals again, as `pass` does, one batch of rows of `kind` after id `after`; returns the last
/// id seen (`None`: no row left) and how many rows changed.
fn reseal_batch(
    tx: &Db<'_>,
    keys: &Keyring,
    pass: Pass<'_>,
    kind: Rows,
    after: i64,
) -> Result<(Option<i64>, usize), Error> {
    match kind {
        Rows::Bodies(bodies) => reseal_rows(tx, keys, pass, bodies, after, BATCH),
        Rows::Tfstates => reseal_tfstates(tx, keys, pass, after, STATE_BATCH),
    }
}

/// Seals again, as `pass` does, the values of up to `limit` rows (all with `i64::MAX`) of `bodies` after
/// id `after`, each bound to its row; returns the last id seen (`None`: no row left) and how
/// many rows changed.
fn reseal_rows(
    tx: &Db<'_>,
    keys: &Keyring,
    pass: Pass<'_>,
    bodies: Bodies,
    after: i64,
    limit: i64,
) -> Result<(Option<i64>, usize), Error> {
    let rows: Vec<(i64, String)> = {
        let sql = format!("SELECT id, body FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2", bodies.table());
        let mut stmt = tx.prepare_cached(&sql)?;
        stmt.query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    };
    let mut changed = 0;
    for (id, text) in &rows {
        let mut body: Value = json_column(bodies.what(), text)?;
        if reseal_body(keys, pass, bodies.row(*id), bodies, &mut body)? {
            let sql = format!("UPDATE {} SET body = ?2 WHERE id = ?1", bodies.table());
            tx.prepare_cached(&sql)?.execute(params![id, body.to_string()])?;
            changed += 1;
        }
    }
    Ok((rows.last().map(|(id, _)| *id), changed))
}

/// Seals again, as `pass` does, up to `limit` Terraform states (all with `i64::MAX`) after id `after`;
/// returns the last id seen and how many rows changed.
fn reseal_tfstates(
    tx: &Db<'_>,
    keys: &Keyring,
    pass: Pass<'_>,
    after: i64,
    limit: i64,
) -> Result<(Option<i64>, usize), Error> {
    let rows: Vec<(i64, i64, String)> = {
        let mut stmt =
            tx.prepare_cached("SELECT id, provision_id, state FROM tfstates WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        stmt.query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?
    };
    let mut changed = 0;
    for (id, provision_id, stored) in &rows {
        if let Some(sealed) = secrets::reseal_document(keys, pass, &state_name(*provision_id), stored)? {
            tx.prepare_cached("UPDATE tfstates SET state = ?2 WHERE id = ?1")?.execute(params![id, sealed])?;
            changed += 1;
        }
    }
    Ok((rows.last().map(|(id, _, _)| *id), changed))
}

/// What a provision's Terraform states are sealed for: a state copied onto another provision's
/// row does not open.
fn state_name(provision_id: i64) -> String {
    format!("terraform state of provision {provision_id}")
}

fn left_state_name(provision_id: i64) -> String {
    format!("terraform state of provision {provision_id} left on its machine")
}

fn plan_name(provision_id: i64) -> String {
    format!("terraform plan of provision {provision_id}")
}

fn reseal_body(keys: &Keyring, pass: Pass<'_>, row: Row, bodies: Bodies, body: &mut Value) -> Result<bool, Error> {
    let Some(inputs) = body.get("user_inputs").cloned() else { return Ok(false) };
    let Some(values) = body.get_mut(bodies.values()).and_then(Value::as_object_mut) else { return Ok(false) };
    Ok(secrets::reseal_values(keys, pass, row, &inputs, values)?)
}
