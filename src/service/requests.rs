//! Requests on an existing provision, checked against OneForm's gating and turned into the
//! operation the engine runs: its kind, its parameters (everything a stage needs, computed now
//! so re-running a stage after a crash does the same thing) and the event that starts it.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::Error;
use super::provisions::revalidate;
use crate::engine::{Event, Params, Resources, ScaleTarget, State, next};
use crate::store::{ProvisionRow, Store};

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Add `amount` cloud hosts.
    ScaleUp {
        amount: u64,
    },
    /// Add on-prem hosts by address.
    AddHosts {
        ips: Vec<String>,
    },
    /// Remove hosts by OpenNebula id, or the newest `amount` of them.
    ScaleDown {
        ids: Vec<i64>,
        amount: Option<u64>,
        force: bool,
    },
    Deprovision {
        force: bool,
        hosts: Vec<i64>,
        networks: Vec<i64>,
        datastores: Vec<i64>,
    },
    Retry,
    /// OneForm's recover: the target must be the failed stage's own state.
    Recover {
        target: State,
    },
}

/// What a request becomes: the operation's kind, its parameters and the event that starts it.
pub type Planned = (&'static str, Params, Event);

/// Checks a request against the provision and returns what to run.
pub fn plan(store: &Store, row: &ProvisionRow, request: &Request) -> Result<Planned, Error> {
    let (kind, params, event) = match request {
        Request::ScaleUp { amount } => scale_up(row, *amount)?,
        Request::AddHosts { ips } => add_hosts(row, ips)?,
        Request::ScaleDown { ids, amount, force } => scale_down(row, ids, *amount, *force)?,
        Request::Deprovision { force, hosts, networks, datastores } => {
            for (kind, ids) in [("host", hosts), ("network", networks), ("datastore", datastores)] {
                check_recorded(row, kind, ids)?;
            }
            let resources =
                Resources { hosts: hosts.clone(), networks: networks.clone(), datastores: datastores.clone() };
            (
                "deprovision",
                Params::Teardown { force: *force, resources },
                Event::DeprovisionRequested { force: *force },
            )
        }
        Request::Retry => ("retry", retry_params(store, row)?, Event::RetryRequested),
        Request::Recover { target } => {
            if row.state.retry_state() != Some(*target) {
                return Err(Error::not_allowed(format!(
                    "provision {} is {}: it can only be recovered to {}",
                    row.id,
                    row.state,
                    row.state.retry_state().map_or("nothing (it has not failed)".into(), |s| s.to_string())
                )));
            }
            ("recover", retry_params(store, row)?, Event::RetryRequested)
        }
    };
    // Refuse now, before any lock or write, what the lifecycle would refuse.
    next(row.state, event).map_err(|e| Error::not_allowed(format!("provision {}: {e}", row.id)))?;
    Ok((kind, params, event))
}

fn scale_up(row: &ProvisionRow, amount: u64) -> Result<Planned, Error> {
    if row.body.is_onprem() {
        return Err(Error::invalid("on-prem provisions grow by address: use --ips"));
    }
    if amount == 0 {
        return Err(Error::invalid("--amount must be at least 1"));
    }
    let target = row.body.hosts().len() as u64 + amount;
    check_values(row, "oneform_hosts", json!(target))?;
    let set = ScaleTarget { oneform_hosts: Some(target), oneform_onprem_hosts: None };
    Ok(("scale-up", Params::Scale { set }, Event::ScaleUpRequested))
}

fn add_hosts(row: &ProvisionRow, ips: &[String]) -> Result<Planned, Error> {
    if !row.body.is_onprem() {
        return Err(Error::invalid("cloud provisions grow by count: use --amount"));
    }
    if ips.is_empty() {
        return Err(Error::invalid("--ips needs at least one address"));
    }
    let current = row.body.user_inputs_values.get("oneform_onprem_hosts").and_then(Value::as_array);
    let mut list: Vec<String> = current.into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
    list.extend(ips.iter().cloned());
    check_values(row, "oneform_onprem_hosts", json!(list))?;
    let set = ScaleTarget { oneform_hosts: None, oneform_onprem_hosts: Some(list) };
    Ok(("scale-up", Params::Scale { set }, Event::ScaleUpRequested))
}

/// The values a scale-up leads to must pass the driver's rules too (e.g. `oneform_hosts` ≤ 10).
fn check_values(row: &ProvisionRow, key: &str, value: Value) -> Result<(), Error> {
    revalidate(&row.body, key, value)
        .map_err(|errors| Error::values("the scaled provision would be invalid".into(), &errors))
}

/// Every selected id must be an object of the provision (with an OpenNebula id); `kind` is
/// `host`, `network` or `datastore`.
fn check_recorded(row: &ProvisionRow, kind: &str, ids: &[i64]) -> Result<(), Error> {
    let objects = row.body.one_objects[format!("{kind}s")].as_array();
    let known: Vec<i64> = objects.into_iter().flatten().filter_map(|o| o["id"].as_i64()).collect();
    let unknown: Vec<String> = ids.iter().filter(|i| !known.contains(i)).map(i64::to_string).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = known.iter().map(i64::to_string).collect();
    Err(Error::invalid(format!(
        "{kind} ids {} are not {kind}s of provision {} (its {kind}s: {})",
        unknown.join(", "),
        row.id,
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )))
}

fn scale_down(row: &ProvisionRow, ids: &[i64], amount: Option<u64>, force: bool) -> Result<Planned, Error> {
    let hosts: Vec<i64> = row.body.hosts().iter().filter_map(|h| h["id"].as_i64()).collect();
    if hosts.is_empty() {
        return Err(Error::not_allowed(format!("provision {} has no hosts to remove", row.id)));
    }
    let chosen: Vec<i64> = match (ids.is_empty(), amount) {
        (false, None) => {
            check_recorded(row, "host", ids)?;
            ids.iter().copied().collect::<HashSet<_>>().into_iter().collect()
        }
        (true, Some(n)) if n >= 1 && n as usize <= hosts.len() => {
            hosts.iter().rev().take(n as usize).copied().collect()
        }
        (true, Some(n)) => {
            return Err(Error::invalid(format!(
                "--amount {n} must be between 1 and the {} hosts the provision has",
                hosts.len()
            )));
        }
        _ => return Err(Error::invalid("give either --ids or --amount")),
    };
    let mut chosen = chosen;
    chosen.sort_unstable();
    let resources = Resources { hosts: chosen, ..Resources::default() };
    Ok(("scale-down", Params::Teardown { force, resources }, Event::ScaleDownRequested))
}

/// A retry repeats the parameters of the operation that failed (OneForm makes the caller send
/// a failed scale's `direction` and `nodes` again).
fn retry_params(store: &Store, row: &ProvisionRow) -> Result<Params, Error> {
    let last = store.operations(row.id)?.into_iter().rev().find(|op| op.kind != "cancel");
    Ok(last.map(|op| op.params).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ProvisionBody;

    fn row(state: State, body: ProvisionBody) -> ProvisionRow {
        ProvisionRow {
            id: 1,
            name: "p".into(),
            driver: "sim".into(),
            provider_id: 1,
            state,
            body,
            registration_time: 0,
            updated_time: 0,
            owner: Default::default(),
        }
    }

    fn cloud(hosts: &[i64]) -> ProvisionBody {
        let hosts: Vec<Value> = hosts.iter().map(|id| json!({"id": id, "name": format!("10.0.0.{id}")})).collect();
        serde_json::from_value(json!({
            "user_inputs": [{"name": "oneform_hosts", "type": "number", "match": {"type": "number", "values": {"max": 3}}}],
            "user_inputs_values": {"oneform_hosts": hosts.len()},
            "one_objects": {"hosts": hosts}
        }))
        .unwrap()
    }

    #[test]
    fn scale_requests_are_gated_and_computed_up_front() {
        let store = Store::open_in_memory().unwrap();
        let running = row(State::Running, cloud(&[4, 5]));
        let (kind, params, _) = plan(&store, &running, &Request::ScaleUp { amount: 1 }).unwrap();
        assert_eq!(kind, "scale-up");
        assert_eq!(serde_json::to_value(params).unwrap(), json!({"set": {"oneform_hosts": 3}}));
        let err = plan(&store, &running, &Request::ScaleUp { amount: 2 }).unwrap_err().to_string();
        assert!(err.contains("should be ≤ 3"), "{err}");
        let err = plan(&store, &running, &Request::AddHosts { ips: vec!["10.1.1.1".into()] }).unwrap_err().to_string();
        assert!(err.contains("use --amount"), "{err}");

        let (_, params, event) =
            plan(&store, &running, &Request::ScaleDown { ids: vec![], amount: Some(1), force: false }).unwrap();
        assert_eq!(serde_json::to_value(params).unwrap(), json!({"force": false, "resources": {"hosts": [5]}}));
        assert_eq!(event, Event::ScaleDownRequested);
        let err = plan(&store, &running, &Request::ScaleDown { ids: vec![9], amount: None, force: false }).unwrap_err();
        assert!(err.to_string().contains("host ids 9 are not hosts of provision 1"), "{err}");

        let applying = row(State::ApplyingFailure, cloud(&[4]));
        let err = plan(&store, &applying, &Request::ScaleUp { amount: 1 }).unwrap_err().to_string();
        assert!(err.contains("scaling needs RUNNING or SCALING_FAILURE"), "{err}");
    }

    #[test]
    fn a_teardown_selects_only_objects_of_the_provision() {
        let store = Store::open_in_memory().unwrap();
        let running = row(State::Running, cloud(&[4, 5]));
        let request = Request::Deprovision { force: false, hosts: vec![5, 9], networks: vec![], datastores: vec![] };
        let err = plan(&store, &running, &request).unwrap_err().to_string();
        assert_eq!(err, "host ids 9 are not hosts of provision 1 (its hosts: 4, 5)");
        let request = Request::Deprovision { force: false, hosts: vec![5], networks: vec![1], datastores: vec![] };
        let err = plan(&store, &running, &request).unwrap_err().to_string();
        assert!(err.contains("network ids 1 are not networks of provision 1 (its networks: none)"), "{err}");
        let request = Request::Deprovision { force: true, hosts: vec![5], networks: vec![], datastores: vec![] };
        assert!(plan(&store, &running, &request).is_ok());
    }

    #[test]
    fn recover_only_to_the_failed_stage() {
        let store = Store::open_in_memory().unwrap();
        let failed = row(State::ConfiguringOneFailure, cloud(&[]));
        assert!(plan(&store, &failed, &Request::Recover { target: State::ConfiguringOne }).is_ok());
        let err = plan(&store, &failed, &Request::Recover { target: State::Running }).unwrap_err().to_string();
        assert!(err.contains("it can only be recovered to CONFIGURING_ONE"), "{err}");
        let err = plan(&store, &row(State::Running, cloud(&[])), &Request::Retry).unwrap_err().to_string();
        assert!(err.contains("only a *_FAILURE state can be retried"), "{err}");
    }
}
