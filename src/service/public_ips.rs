//! `add-ip` and `del-ip`: public IPs are address ranges on the provision's elastic network.
//! As in OneForm they change no state, but formwork runs them as operations (so they wait for
//! nobody and nobody waits for them unseen), only on RUNNING provisions of drivers that support
//! them, with the new count checked against the driver's rules first, and every OpenNebula
//! change saved as it happens.

use serde_json::json;

use super::access::{Caller, Kind};
use super::progress::Observer;
use super::provisions::revalidate;
use super::{Error, Service};
use crate::driver::capabilities::{Operation, Way};
use crate::engine::{Fault, Log, Params, ProvisionBody, State, Work};
use crate::one::{self, OneObjects, Wait};
use crate::stages::one_progress;
use crate::store::{self, OperationStatus};

/// What to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add { amount: u64 },
    Remove { ar_id: i64 },
}

/// The operation a change is recorded as: its kind and its parameters (with the target count,
/// so a resumed change finishes the same way).
pub(super) fn params(change: Change, target: u64) -> (&'static str, Params) {
    match change {
        Change::Add { amount } => ("add-ip", Params::AddIps { amount, target: Some(target) }),
        Change::Remove { ar_id } => ("del-ip", Params::RemoveIp { ar_id, target: Some(target) }),
    }
}

impl Service {
    /// Applies the change as a locked operation; returns the new number of public IPs.
    pub async fn change_public_ips(
        &self,
        caller: &Caller,
        id: i64,
        change: Change,
        observer: Box<dyn Observer>,
    ) -> Result<u64, Error> {
        self.may_change(caller, Kind::Provision, id)?;
        let planned = self.plan_public_ips(id, change)?;
        let mut log = self.operation_log(id, observer);
        self.run_public_ips(id, change, planned, &mut log).await
    }

    pub(super) fn plan_public_ips(&self, id: i64, change: Change) -> Result<u64, Error> {
        if let Some(op) = self.store.running_operation(id)? {
            return Err(Error::busy(id, &op));
        }
        let row = self.store.provision(id)?;
        let (op, way) = match change {
            Change::Add { .. } => (Operation::AddIp, Way::Amount),
            Change::Remove { .. } => (Operation::DelIp, Way::Ids),
        };
        super::requests::check_supported(&self.catalog, &row, op, way)?;
        target(&row, change)
    }

    async fn run_public_ips(&self, id: i64, change: Change, target: u64, log: &mut dyn Log) -> Result<u64, Error> {
        let (kind, params) = params(change, target);
        let op = self.store.begin_operation(id, kind, &params, None, &self.me(), store::now())?;
        self.finish_public_ips(id, op, change, target, log).await
    }

    pub(super) async fn finish_public_ips(
        &self,
        id: i64,
        op: i64,
        change: Change,
        target: u64,
        log: &mut dyn Log,
    ) -> Result<u64, Error> {
        // The epoch held from the start: a takeover meanwhile refuses the end written here.
        let fence = self.store.operation(op)?.fence();
        let result = self.apply_public_ips(id, change, target, log).await;
        let (status, error) = match &result {
            Ok(_) => (OperationStatus::Succeeded, None),
            Err(e) => (OperationStatus::Failed, Some(e.to_string())),
        };
        self.store.finish_operation(fence, status, error.as_deref(), store::now())?;
        result.map(|()| target)
    }

    /// Finishes a public-IP change whose process died: the change is made again (adding
    /// syncs to the recorded count; removing an address range that is already gone only
    /// records it), so the ranges and `oneform_public_ips` agree. Without a recorded count
    /// (rows written before it was kept), the ranges as they are become the count.
    pub(super) async fn resume_public_ips(
        &self,
        op: &crate::store::OperationRow,
        log: &mut dyn Log,
    ) -> Result<u64, Error> {
        let id = op.provision_id;
        let (change, target) = match op.params {
            Params::AddIps { amount, target } => (Change::Add { amount }, target),
            Params::RemoveIp { ar_id, target } => (Change::Remove { ar_id }, target),
            _ => return Err(Error::internal(format!("operation {} ({}) is not a public-IP change", op.id, op.kind))),
        };
        log.note(
            crate::exec::Severity::Warning,
            &format!(
                "operation {} ({}) was interrupted: its process {} is gone; finishing it",
                op.id, op.kind, op.owner_pid
            ),
        );
        let target = match target {
            Some(target) => target,
            None => self.live_public_ips(id).await?,
        };
        self.finish_public_ips(id, op.id, change, target, log).await
    }

    /// How many public IPs the provision's elastic network holds now.
    async fn live_public_ips(&self, id: i64) -> Result<u64, Error> {
        let row = self.store.provision(id)?;
        let mut objects = one_objects(&row.body)?;
        one::refresh_ars(self.one()?, &mut objects).await?;
        Ok(ars(&objects).len() as u64)
    }

    async fn apply_public_ips(&self, id: i64, change: Change, target: u64, log: &mut dyn Log) -> Result<(), Error> {
        let row = self.store.provision(id)?;
        let mut body = row.body.clone();
        let mut objects = one_objects(&body)?;
        let ctx = one_progress::context(&row);
        let store = &self.store;
        let (fault, mut saves) = (self.fault(), 0);
        let mut progress = |objects: &OneObjects, event: &one::Event| {
            one_progress::save(store, log, id, &mut body, objects, event, store::now())?;
            saves += 1;
            Fault::strike_after_save(fault, Work::PublicIps, saves);
            Ok::<(), crate::store::Error>(())
        };
        let done = match change {
            Change::Add { .. } => {
                one::sync_public_ips(self.one()?, &ctx, &mut objects, target as u32, Wait::default(), &mut progress)
                    .await
            }
            Change::Remove { ar_id } => {
                match one::remove_public_ip(self.one()?, &mut objects, ar_id, &mut progress).await {
                    // Gone already (an interrupted attempt removed it): record the ranges as they are.
                    Err(one::Error::UnknownAr { .. }) if !ars(&objects).contains(&ar_id) => Ok(()),
                    Err(one::Error::UnknownAr { .. }) => one::refresh_ars(self.one()?, &mut objects).await,
                    other => other,
                }
            }
        };
        done?;
        body.one_objects = objects.to_value();
        body.user_inputs_values.insert("oneform_public_ips".into(), json!(target));
        self.store.save_body(id, &body, &[], store::now())?;
        Ok(())
    }
}

/// The number of public IPs the change leads to, checked before anything is written.
fn target(row: &crate::store::ProvisionRow, change: Change) -> Result<u64, Error> {
    let id = row.id;
    if row.state != State::Running {
        return Err(Error::not_allowed(format!(
            "provision {id} is {}; public IPs change only while it is RUNNING",
            row.state
        )));
    }
    let current = row.body.count("oneform_public_ips").unwrap_or(0);
    let target = match change {
        Change::Add { amount: 0 } => return Err(Error::invalid("the amount of public IPs to add must be at least 1")),
        Change::Add { amount } => current + amount,
        Change::Remove { ar_id } => {
            let objects = one_objects(&row.body)?;
            let known = ars(&objects);
            if !known.contains(&ar_id) {
                let known: Vec<String> = known.iter().map(i64::to_string).collect();
                return Err(Error::invalid(format!(
                    "address range {ar_id} is not a public IP of provision {id}; its public IPs are the address ranges {}",
                    if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                )));
            }
            current.saturating_sub(1)
        }
    };
    check_target(&row.body, target)?;
    Ok(target)
}

/// The new count must satisfy the deployment's rule for `oneform_public_ips` (e.g. 0–5).
fn check_target(body: &ProvisionBody, target: u64) -> Result<(), Error> {
    let declared = body.inputs().iter().any(|i| i.name == "oneform_public_ips");
    if !declared {
        return Err(Error::not_allowed(
            "this provision's deployment has no `oneform_public_ips` input: it takes no public IPs",
        ));
    }
    revalidate(body, "oneform_public_ips", json!(target))
        .map_err(|errors| Error::values(format!("{target} public IPs would be invalid"), &errors))
}

/// The address-range ids recorded on the provision's elastic network.
fn ars(objects: &OneObjects) -> Vec<i64> {
    let elastic = one::public_ips::elastic_network(objects).ok().flatten();
    let template = elastic.and_then(|i| objects.networks[i].template.as_ref());
    let ars = template.and_then(|t| t.get("ar")).and_then(serde_json::Value::as_array);
    ars.into_iter().flatten().filter_map(|ar| ar["ar_id"].as_i64()).collect()
}

/// The provision's OpenNebula objects, as the `one` module works on them.
pub(super) fn one_objects(body: &ProvisionBody) -> Result<OneObjects, Error> {
    OneObjects::from_value(body.one_objects.clone())
        .map_err(|e| Error::internal(format!("the provision's one_objects are not valid: {e}")))
}
