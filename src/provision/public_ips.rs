//! `add-ip` and `del-ip`: public IPs are address ranges on the provision's elastic network.
//! As in OneForm they change no state, but formwork runs them as operations (so they wait for
//! nobody and nobody waits for them unseen), only on RUNNING provisions, with the new count
//! checked against the driver's rules first, and every OpenNebula change saved as it happens.

use serde_json::{Value, json};

use super::{Error, Runtime};
use crate::engine::{Log, State, owner};
use crate::one::{self, OneObjects, Wait};
use crate::stages::one_progress;
use crate::store::{self, OperationStatus};

/// What to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add { amount: u64 },
    Remove { ar_id: i64 },
}

/// Applies the change; returns the new number of public IPs.
pub async fn change(rt: &Runtime, id: i64, change: Change, log: &mut dyn Log) -> Result<u64, Error> {
    let row = rt.store.provision(id)?;
    if row.state != State::Running {
        return Err(Error::Refused(format!(
            "provision {id} is {}; public IPs change only while it is RUNNING",
            row.state
        )));
    }
    let current = row.body["user_inputs_values"]["oneform_public_ips"].as_u64().unwrap_or(0);
    let target = match change {
        Change::Add { amount: 0 } => return Err(Error::Refused("--amount must be at least 1".into())),
        Change::Add { amount } => current + amount,
        Change::Remove { .. } => current.saturating_sub(1),
    };
    check_target(&row.body, target)?;
    let (kind, params) = match change {
        Change::Add { amount } => ("add-ip", json!({"amount": amount})),
        Change::Remove { ar_id } => ("del-ip", json!({"ar_id": ar_id})),
    };
    let op = rt.store.begin_operation(id, kind, &params, &owner::current(), store::now())?;
    let result = apply(rt, id, change, target, log).await;
    let (status, error) = match &result {
        Ok(_) => (OperationStatus::Succeeded, None),
        Err(e) => (OperationStatus::Failed, Some(e.to_string())),
    };
    rt.store.finish_operation(op, status, error.as_deref(), store::now())?;
    result.map(|()| target)
}

async fn apply(rt: &Runtime, id: i64, change: Change, target: u64, log: &mut dyn Log) -> Result<(), Error> {
    let row = rt.store.provision(id)?;
    let mut body = row.body.clone();
    let mut objects = OneObjects::from_value(body["one_objects"].clone())
        .map_err(|e| Error::Refused(format!("the provision's one_objects are not valid: {e}")))?;
    let ctx = one_progress::context(&row);
    let mut progress =
        |objects: &OneObjects, event: &one::Event| one_progress::save(&rt.store, log, id, &mut body, objects, event);
    let done = match change {
        Change::Add { .. } => {
            one::sync_public_ips(&rt.one, &ctx, &mut objects, target as u32, Wait::default(), &mut progress).await
        }
        Change::Remove { ar_id } => one::remove_public_ip(&rt.one, &mut objects, ar_id, &mut progress).await,
    };
    done.map_err(|e| Error::Refused(e.to_string()))?;
    body["one_objects"] = objects.to_value();
    body["user_inputs_values"]["oneform_public_ips"] = json!(target);
    rt.store.save_body(id, &body, &[], store::now())?;
    Ok(())
}

/// The new count must satisfy the deployment's rule for `oneform_public_ips` (e.g. 0–5).
fn check_target(body: &Value, target: u64) -> Result<(), Error> {
    let declared = body["user_inputs"].as_array().into_iter().flatten().any(|i| i["name"] == "oneform_public_ips");
    if !declared {
        return Err(Error::Refused(
            "this provision's deployment has no `oneform_public_ips` input: it takes no public IPs".into(),
        ));
    }
    super::revalidate(body, "oneform_public_ips", json!(target))
        .map_err(|errors| Error::Refused(format!("{target} public IPs would be invalid:\n{errors}")))
}
