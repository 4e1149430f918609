//! Provisions as users handle them: building the OneForm body of a new provision from a
//! driver, a deployment, a provider and values (spec §2.12), serving it (state names, `tags`,
//! `historic`, sensitive values redacted), and turning each request (scale, deprovision, retry,
//! …) into the operation the engine runs, with OneForm's gating checked first so a refused
//! request changes nothing.

use serde_json::{Map, Value, json};

use super::access::{Caller, Kind};
use super::documents::{Document, Include};
use super::{Error, Operation, Service};
use crate::driver::input::REDACTED;
use crate::driver::{self, Catalog, deployment, validate};
use crate::engine::{ProvisionBody, State};
use crate::exec::LogLine;
use crate::store::{self, HistoricEntry, ProvisionRow, Store};

/// Every field error of a provision's values, naming the driver and deployment.
pub(super) fn invalid(driver: &str, deployment: &str, errors: &validate::Errors) -> Error {
    Error::values(format!("values for {driver} / {deployment} are wrong"), errors)
}

/// What `provision create` is given.
#[derive(Debug, Clone, Default)]
pub struct NewProvision {
    pub driver: String,
    pub deployment: Option<String>,
    pub provider_id: Option<i64>,
    pub values: Value,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Validates a new provision and returns `(name, driver id, provider id, body)`.
pub fn build(
    catalog: &Catalog,
    store: &Store,
    new: &NewProvision,
    time: i64,
) -> Result<(String, String, i64, ProvisionBody), Error> {
    let driver = catalog.usable(&new.driver)?;
    super::names::check_provision(new.name.as_deref().unwrap_or(&driver.name))?;
    let deployment = driver.deployment(new.deployment.as_deref())?;
    let provider_id = pick_provider(store, &driver.id, new.provider_id)?;
    let inputs = driver.provision_inputs(deployment);
    let values = validate::validate(&inputs, &new.values)
        .map_err(|errors| invalid(&driver.id, &deployment.inventory, &errors))?;
    let one_objects = deployment::one_objects(&deployment.source, Some(&values)).map_err(Error::invalid)?;
    let name = new.name.clone().unwrap_or_else(|| driver.name.clone());
    let body = ProvisionBody {
        name: name.clone(),
        description: new.description.clone().unwrap_or_else(|| driver.description.clone()),
        deployment_file: deployment.inventory.clone(),
        provider_id,
        fireedge: driver.fireedge.clone(),
        user_inputs: json!(inputs),
        user_inputs_values: values,
        one_objects: json!(one_objects),
        registration_time: time,
        onedeploy_tags: deployment.onedeploy_tags.clone(),
        cloud_provider: Some(driver.id.clone()),
        version: driver.version.clone(),
        other: Map::new(),
    };
    Ok((name, driver.id.clone(), provider_id, body))
}

/// The provider a provision uses: the given one (which must be of the same driver), else the
/// only provider of that driver.
fn pick_provider(store: &Store, driver: &str, given: Option<i64>) -> Result<i64, Error> {
    if let Some(id) = given {
        let provider = store.provider(id)?;
        if provider.driver != driver {
            return Err(Error::invalid(format!(
                "provider {id} is for driver '{}', not '{driver}'; pick a provider of driver '{driver}'",
                provider.driver
            )));
        }
        return Ok(id);
    }
    match store.providers_of_driver(driver)?.as_slice() {
        [only] => Ok(only.id),
        [] => Err(Error::not_found(format!("no provider of driver '{driver}' exists; create one first"))),
        many => Err(Error::invalid(format!(
            "several providers of driver '{driver}' exist ({}); choose one with --provider",
            many.iter().map(|p| p.id.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A provision as served: OneForm's body with `id`, `driver`, `state` as its name, `tags`,
/// `historic`; sensitive values are `__redacted__` unless `include_sensitive`.
pub fn serve(row: &ProvisionRow, historic: &[HistoricEntry], include_sensitive: bool) -> Value {
    let body = if include_sensitive { row.body.to_value() } else { row.body.to_redacted_value() };
    let mut out = Map::new();
    out.insert("id".into(), json!(row.id));
    out.insert("driver".into(), json!(row.driver));
    if let Value::Object(fields) = body {
        out.extend(fields);
    }
    out.insert("state".into(), json!(row.state.name()));
    let tags = out.get("user_inputs_values").and_then(|v| v.get("oneform_tags")).cloned();
    out.insert("tags".into(), tags.unwrap_or_else(|| json!({})));
    out.insert("historic".into(), json!(historic));
    Value::Object(out)
}

/// Checks the input `key` of the provision changed to `value` (and inputs grouped by it),
/// against its stored inputs: what a scale-up or a public-IP change leads to must pass the
/// driver's rule for what it changes. Other values are not checked again (see
/// [`validate::validate_changed`]).
pub(super) fn revalidate(body: &ProvisionBody, key: &str, value: Value) -> Result<(), validate::Errors> {
    let inputs = driver::input::prepared(&body.user_inputs);
    let mut values = body.user_inputs_values.clone();
    values.insert(key.to_string(), value);
    validate::validate_changed(&inputs, &values, &[key])
}

/// What `provision update` may change (OneForm's `UPDATE_ATTRS` that users edit).
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Merged into `user_inputs_values`; `__redacted__` values are ignored.
    pub values: Option<Value>,
    pub onedeploy_tags: Option<String>,
}

/// Applies an update to a provision no operation is running on; the merged values must still
/// be valid. It changes the record only: nothing is re-run until the next operation.
pub fn update(store: &Store, id: i64, update: &Update, time: i64) -> Result<ProvisionRow, Error> {
    // The write is refused when the body changed since it was read (an operation began and
    // checkpointed in between): the change is then merged again into what the body is now.
    for _ in 0..UPDATE_TRIES - 1 {
        match merge_and_write(store, id, update, time) {
            Err(Error::Conflict { .. }) => continue,
            other => return other,
        }
    }
    merge_and_write(store, id, update, time)
}

/// How many times an update is merged again into a body that changed under it.
const UPDATE_TRIES: usize = 3;

fn merge_and_write(store: &Store, id: i64, update: &Update, time: i64) -> Result<ProvisionRow, Error> {
    if let Some(op) = store.running_operation(id)? {
        return Err(Error::busy(id, &op));
    }
    let row = store.provision(id)?;
    update.name.as_deref().map(super::names::check_provision).transpose()?;
    let mut body = row.body.clone();
    if let Some(patch) = &update.values {
        let patch =
            patch.as_object().ok_or_else(|| Error::invalid("values must be a mapping of input name to value"))?;
        for (key, value) in patch.iter().filter(|(_, v)| v.as_str() != Some(REDACTED)) {
            revalidate(&body, key, value.clone())
                .map_err(|errors| invalid(&row.driver, &body.deployment_file, &errors))?;
            body.user_inputs_values.insert(key.clone(), value.clone());
        }
    }
    if let Some(name) = &update.name {
        body.name = name.clone();
    }
    if let Some(description) = &update.description {
        body.description = description.clone();
    }
    if let Some(tags) = &update.onedeploy_tags {
        body.onedeploy_tags = Some(tags.clone());
    }
    let name = update.name.clone().unwrap_or(row.name.clone());
    store.update_provision(id, &name, &body, row.revision, time)?;
    Ok(store.provision(id)?)
}

/// Deletes a provision's record: only DONE ones unless forced (which orphans whatever it still
/// has in the cloud and OpenNebula, as OneForm's `DELETE ?force=true` does).
pub fn check_delete(row: &ProvisionRow, force: bool) -> Result<(), Error> {
    if row.state == State::Done || force {
        return Ok(());
    }
    Err(Error::not_allowed(format!(
        "provision {} is {}, not DONE: deprovision it first, or delete the record anyway with force, which leaves its cloud and OpenNebula resources behind",
        row.id, row.state
    )))
}

/// A provision as `show` presents it: the served body and the operation running on it, if any.
#[derive(Debug, Clone)]
pub struct Shown {
    pub provision: Value,
    pub running: Option<Operation>,
}

/// Provision records as the front ends reach them (no stage runs here), each checked against
/// the caller.
impl Service {
    /// Provisions the caller may use, DONE ones only with `all`, served without their
    /// historic (a list's rows need none; `show` has it).
    pub fn provisions(&self, caller: &Caller, all: bool) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        self.each_provision_for(caller, all, Include::default(), |mut doc| {
            if let Some(historic) = doc.body.get_mut("historic") {
                *historic = Value::Array(Vec::new());
            }
            out.push(doc.body);
            Ok(())
        })?;
        Ok(out)
    }

    /// A provision as `show` presents it, with the operation running on it.
    pub fn provision(&self, caller: &Caller, id: i64, include_sensitive: bool) -> Result<Shown, Error> {
        let include = Include { sensitive: include_sensitive, ..Include::default() };
        let provision = self.provision_for(caller, id, include)?.body;
        let running = self.store.running_operation(id)?.map(|row| Operation::from_row(&row, None));
        Ok(Shown { provision, running })
    }

    /// Served with its historic, sensitive values redacted.
    pub(super) fn served(&self, id: i64) -> Result<Value, Error> {
        Ok(serve(&self.store.provision(id)?, &self.store.historic(id)?, false))
    }

    /// Renames, re-describes or changes the values of a provision at rest (the oneadmin group
    /// and MANAGE on it); an operation that is only closing is waited for first
    /// ([`Service::settle`]). Answers the provision as the caller now sees it.
    pub async fn update_provision(&self, caller: &Caller, id: i64, change: &Update) -> Result<Document, Error> {
        self.may_change(caller, Kind::Provision, id)?;
        self.settle(id).await;
        update(&self.store, id, change, store::now())?;
        self.provision_for(caller, id, Include::default())
    }

    /// Deletes a provision's record and its working directory (the oneadmin group and MANAGE
    /// on it); an operation that is only closing is waited for first ([`Service::settle`]).
    pub async fn delete_provision(&self, caller: &Caller, id: i64, force: bool) -> Result<(), Error> {
        self.may_change(caller, Kind::Provision, id)?;
        self.settle(id).await;
        let row = self.store.provision(id)?;
        check_delete(&row, force)?;
        if let Some(op) = self.store.running_operation(id)? {
            return Err(Error::busy(id, &op));
        }
        self.store.delete_provision(id)?;
        let dir = crate::stages::work::provision_dir(&self.settings.work_root(), id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        // The id is never given again; its log goes with it (its stored chunks went with the
        // record).
        match std::fs::remove_file(self.settings.log_path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// A provision's log lines: the last `last` of them (all with `None`), and the offset to
    /// follow on from with [`Service::log_after`].
    pub fn log_tail(&self, caller: &Caller, id: i64, last: Option<usize>) -> Result<(Vec<LogLine>, u64), Error> {
        self.may_use(caller, Kind::Provision, id)?;
        let path = self.settings.log_path(id);
        if super::logs::import(&self.store, id, &path)? == 0 {
            return Err(Error::not_found(format!("provision {id} has no log yet")));
        }
        match last {
            Some(n) => super::logs::tail(&self.store, id, &path, n),
            None => super::logs::read(&self.store, id, &path, 0),
        }
    }

    /// The complete lines written after offset `pos`, the new offset, and whether an operation
    /// is still running (so more may come).
    pub fn log_after(&self, caller: &Caller, id: i64, pos: u64) -> Result<(Vec<LogLine>, u64, bool), Error> {
        self.may_use(caller, Kind::Provision, id)?;
        let running = self.store.running_operation(id)?.is_some();
        let (lines, next) = super::logs::read(&self.store, id, &self.settings.log_path(id), pos)?;
        Ok((lines, next, running))
    }
}
