//! `add-ip` and `del-ip`: public IPs are address ranges on the provision's elastic network.
//! As in OneForm they change no state, but formwork runs them as operations (so they wait for
//! nobody and nobody waits for them unseen), only on RUNNING provisions, with the new count
//! checked against the driver's rules first, and every OpenNebula change saved as it happens.

use serde_json::json;

use super::progress::Observer;
use super::provisions::revalidate;
use super::{Error, Service};
use crate::engine::{Log, Params, ProvisionBody, State, owner};
use crate::one::{self, OneObjects, Wait};
use crate::stages::one_progress;
use crate::store::{self, OperationStatus};

/// What to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add { amount: u64 },
    Remove { ar_id: i64 },
}

impl Service {
    /// Applies the change as a locked operation; returns the new number of public IPs.
    pub async fn change_public_ips(&self, id: i64, change: Change, observer: Box<dyn Observer>) -> Result<u64, Error> {
        let planned = self.plan_public_ips(id, change)?;
        let mut log = self.operation_log(id, observer);
        self.run_public_ips(id, change, planned, &mut log).await
    }

    fn plan_public_ips(&self, id: i64, change: Change) -> Result<u64, Error> {
        if let Some(op) = self.store.running_operation(id)? {
            return Err(Error::Busy { provision_id: id, operation: Box::new(op) });
        }
        target(&self.store.provision(id)?, change)
    }

    async fn run_public_ips(&self, id: i64, change: Change, target: u64, log: &mut dyn Log) -> Result<u64, Error> {
        let (kind, params) = match change {
            Change::Add { amount } => ("add-ip", Params::AddIps { amount }),
            Change::Remove { ar_id } => ("del-ip", Params::RemoveIp { ar_id }),
        };
        let op = self.store.begin_operation(id, kind, &params, &owner::current(), store::now())?;
        let result = self.apply_public_ips(id, change, target, log).await;
        let (status, error) = match &result {
            Ok(_) => (OperationStatus::Succeeded, None),
            Err(e) => (OperationStatus::Failed, Some(e.to_string())),
        };
        self.store.finish_operation(op, status, error.as_deref(), store::now())?;
        result.map(|()| target)
    }

    async fn apply_public_ips(&self, id: i64, change: Change, target: u64, log: &mut dyn Log) -> Result<(), Error> {
        let row = self.store.provision(id)?;
        let mut body = row.body.clone();
        let mut objects = OneObjects::from_value(body.one_objects.clone())
            .map_err(|e| Error::internal(format!("the provision's one_objects are not valid: {e}")))?;
        let ctx = one_progress::context(&row);
        let store = &self.store;
        let mut progress = |objects: &OneObjects, event: &one::Event| {
            one_progress::save(store, log, id, &mut body, objects, event, store::now())
        };
        let done = match change {
            Change::Add { .. } => {
                one::sync_public_ips(&self.one, &ctx, &mut objects, target as u32, Wait::default(), &mut progress).await
            }
            Change::Remove { ar_id } => one::remove_public_ip(&self.one, &mut objects, ar_id, &mut progress).await,
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
        Change::Add { amount: 0 } => return Err(Error::invalid("--amount must be at least 1")),
        Change::Add { amount } => current + amount,
        Change::Remove { .. } => current.saturating_sub(1),
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
