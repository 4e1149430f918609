//! Requests on an existing provision, checked against OneForm's gating and the driver's
//! capabilities (what its driver.conf says it supports) and turned into the operation the
//! engine runs: its kind, its parameters (everything a stage needs, computed now so re-running
//! a stage after a crash does the same thing) and the event that starts it.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::Error;
use super::provisions::revalidate;
use crate::driver::capabilities::{Operation, Way};
use crate::driver::{self, Capabilities, Catalog, Loaded};
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

/// Checks a request against the provision and its driver, and returns what to run.
pub fn plan(store: &Store, catalog: &Catalog, row: &ProvisionRow, request: &Request) -> Result<Planned, Error> {
    let (kind, params, event) = match request {
        Request::ScaleUp { amount } => scale_up(catalog, row, *amount)?,
        Request::AddHosts { ips } => add_hosts(catalog, row, ips)?,
        Request::ScaleDown { ids, amount, force } => scale_down(catalog, row, ids, *amount, *force)?,
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

/// What the provision's driver supports, from its driver.conf as it is now.
fn capabilities(catalog: &Catalog, row: &ProvisionRow) -> Result<Capabilities, Error> {
    match catalog.load(&row.driver)? {
        Loaded::Ready(d) => Ok(d.capabilities),
        Loaded::Broken(b) => {
            Err(driver::Error::Broken { name: b.name, reason: b.error_msg.unwrap_or_default() }.into())
        }
    }
}

/// Refuses `op` taken in `way` when the provision's driver does not support it, naming the
/// driver and what it supports.
pub(super) fn check_supported(catalog: &Catalog, row: &ProvisionRow, op: Operation, way: Way) -> Result<(), Error> {
    let caps = capabilities(catalog, row)?;
    if caps.allows(op, way) {
        return Ok(());
    }
    let asked = match caps.ways(op) {
        [] => op.key().to_string(),
        _ => format!("{} by {}", op.key(), way.as_str()),
    };
    Err(Error::not_allowed(format!(
        "driver '{}' does not support {asked} (provision {}): it supports {}",
        row.driver,
        row.id,
        caps.describe()
    )))
}

/// The OpenNebula ids of the provision's hosts now (what a scale-up records as before).
fn host_ids(row: &ProvisionRow) -> Vec<i64> {
    row.body.hosts().iter().filter_map(|h| h["id"].as_i64()).collect()
}

fn scale_up(catalog: &Catalog, row: &ProvisionRow, amount: u64) -> Result<Planned, Error> {
    if row.body.is_onprem() {
        return Err(Error::invalid("on-prem provisions grow by address: give the addresses of the hosts to add"));
    }
    check_supported(catalog, row, Operation::AddHost, Way::Amount)?;
    if amount == 0 {
        return Err(Error::invalid("the amount of hosts to add must be at least 1"));
    }
    let target = row.body.hosts().len() as u64 + amount;
    check_values(row, "oneform_hosts", json!(target))?;
    let set = ScaleTarget { oneform_hosts: Some(target), oneform_onprem_hosts: None };
    Ok(("scale-up", Params::Scale { set, hosts_before: Some(host_ids(row)) }, Event::ScaleUpRequested))
}

fn add_hosts(catalog: &Catalog, row: &ProvisionRow, ips: &[String]) -> Result<Planned, Error> {
    if !row.body.is_onprem() {
        return Err(Error::invalid("cloud provisions grow by count: give an amount of hosts to add"));
    }
    check_supported(catalog, row, Operation::AddHost, Way::Ips)?;
    if ips.is_empty() {
        return Err(Error::invalid("give at least one address of a host to add"));
    }
    let current = row.body.user_inputs_values.get("oneform_onprem_hosts").and_then(Value::as_array);
    let mut list: Vec<String> = current.into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
    list.extend(ips.iter().cloned());
    check_values(row, "oneform_onprem_hosts", json!(list))?;
    let set = ScaleTarget { oneform_hosts: None, oneform_onprem_hosts: Some(list) };
    Ok(("scale-up", Params::Scale { set, hosts_before: Some(host_ids(row)) }, Event::ScaleUpRequested))
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

fn scale_down(
    catalog: &Catalog,
    row: &ProvisionRow,
    ids: &[i64],
    amount: Option<u64>,
    force: bool,
) -> Result<Planned, Error> {
    let hosts = host_ids(row);
    if hosts.is_empty() {
        return Err(Error::not_allowed(format!("provision {} has no hosts to remove", row.id)));
    }
    let way = if amount.is_some() { Way::Amount } else { Way::Ids };
    check_supported(catalog, row, Operation::DelHost, way)?;
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
                "the amount {n} must be between 1 and the {} hosts the provision has",
                hosts.len()
            )));
        }
        _ => return Err(Error::invalid("give either the ids of the hosts to remove or an amount")),
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
    use std::path::Path;

    use super::*;
    use crate::engine::ProvisionBody;

    /// A catalogue with the built-in `sim`, `strict` (sim with restrictive capabilities) and
    /// `broken` (sim whose capabilities are malformed).
    fn catalog(tmp: &Path) -> Catalog {
        let sim = Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers/sim");
        let builtin = tmp.join("builtin");
        for name in ["sim", "strict", "broken"] {
            crate::stages::work::fresh_copy(&sim, &builtin.join(name)).unwrap();
        }
        let strict = "name: Strict\ndescription: d\nversion: 1\nfireedge:\n  operations: { add-host: amount }\n\
                      formwork:\n  scale-down-by-amount: false\n  public-ips: false\n";
        std::fs::write(builtin.join("strict/driver.conf"), strict).unwrap();
        let broken = "name: B\ndescription: d\nversion: 1\nfireedge: {}\nformwork: {scale-up-configures: some}\n";
        std::fs::write(builtin.join("broken/driver.conf"), broken).unwrap();
        Catalog::open(&builtin, &[], tmp.join("states")).unwrap()
    }

    fn row(state: State, body: ProvisionBody) -> ProvisionRow {
        driven(state, body, "sim")
    }

    fn driven(state: State, body: ProvisionBody, driver: &str) -> ProvisionRow {
        ProvisionRow {
            id: 1,
            name: "p".into(),
            driver: driver.into(),
            provider_id: 1,
            state,
            body,
            registration_time: 0,
            updated_time: 0,
            owner: Default::default(),
            revision: 0,
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
        let (store, tmp) = (Store::open_in_memory().unwrap(), tempfile::tempdir().unwrap());
        let catalog = catalog(tmp.path());
        let plan = |row: &ProvisionRow, request: &Request| plan(&store, &catalog, row, request);
        let running = row(State::Running, cloud(&[4, 5]));
        let (kind, params, _) = plan(&running, &Request::ScaleUp { amount: 1 }).unwrap();
        assert_eq!(kind, "scale-up");
        assert_eq!(
            serde_json::to_value(params).unwrap(),
            json!({"set": {"oneform_hosts": 3}, "hosts_before": [4, 5]}),
            "the hosts it had are recorded, so the new ones are known"
        );
        let err = plan(&running, &Request::ScaleUp { amount: 2 }).unwrap_err().to_string();
        assert!(err.contains("should be ≤ 3"), "{err}");
        let err = plan(&running, &Request::AddHosts { ips: vec!["10.1.1.1".into()] }).unwrap_err().to_string();
        assert!(err.contains("give an amount of hosts"), "{err}");

        let (_, params, event) =
            plan(&running, &Request::ScaleDown { ids: vec![], amount: Some(1), force: false }).unwrap();
        assert_eq!(serde_json::to_value(params).unwrap(), json!({"force": false, "resources": {"hosts": [5]}}));
        assert_eq!(event, Event::ScaleDownRequested);
        let err = plan(&running, &Request::ScaleDown { ids: vec![9], amount: None, force: false }).unwrap_err();
        assert!(err.to_string().contains("host ids 9 are not hosts of provision 1"), "{err}");

        let applying = row(State::ApplyingFailure, cloud(&[4]));
        let err = plan(&applying, &Request::ScaleUp { amount: 1 }).unwrap_err().to_string();
        assert!(err.contains("scaling needs RUNNING or SCALING_FAILURE"), "{err}");
    }

    #[test]
    fn a_driver_refuses_what_it_does_not_support_naming_what_it_does() {
        let (store, tmp) = (Store::open_in_memory().unwrap(), tempfile::tempdir().unwrap());
        let catalog = catalog(tmp.path());
        let strict = driven(State::Running, cloud(&[4, 5]), "strict");
        let by_amount = Request::ScaleDown { ids: vec![], amount: Some(1), force: false };
        let err = plan(&store, &catalog, &strict, &by_amount).unwrap_err();
        assert!(matches!(err, Error::NotAllowed { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "driver 'strict' does not support del-host by amount (provision 1): it supports add-host by amount; \
             del-host by ids; a scale-up configures every host"
        );
        let by_ids = Request::ScaleDown { ids: vec![5], amount: None, force: false };
        assert!(plan(&store, &catalog, &strict, &by_ids).is_ok(), "ids are supported");
        assert!(plan(&store, &catalog, &strict, &Request::ScaleUp { amount: 1 }).is_ok());
        let sim = row(State::Running, cloud(&[4, 5]));
        assert!(plan(&store, &catalog, &sim, &by_amount).is_ok(), "sim keeps OneForm's scale-down by amount");

        let err = check_supported(&catalog, &strict, Operation::AddIp, Way::Amount).unwrap_err().to_string();
        assert!(
            err.starts_with("driver 'strict' does not support add-ip (provision 1): it supports add-host"),
            "{err}"
        );
        assert!(check_supported(&catalog, &sim, Operation::DelIp, Way::Ids).is_ok());

        let mut onprem = cloud(&[4]);
        onprem.user_inputs_values.insert("oneform_onprem_hosts".into(), json!(["10.0.0.4"]));
        let strict_onprem = driven(State::Running, onprem, "strict");
        let grow = Request::AddHosts { ips: vec!["10.0.0.9".into()] };
        let err = plan(&store, &catalog, &strict_onprem, &grow).unwrap_err().to_string();
        assert!(err.contains("driver 'strict' does not support add-host by ips"), "{err}");

        let broken = driven(State::Running, cloud(&[4]), "broken");
        let err = plan(&store, &catalog, &broken, &Request::ScaleUp { amount: 1 }).unwrap_err();
        assert!(matches!(err, Error::NotAllowed { .. }), "{err:?}");
        assert!(err.to_string().contains("driver 'broken' is in ERROR state: driver.conf `formwork`"), "{err}");
        let teardown = Request::Deprovision { force: false, hosts: vec![], networks: vec![], datastores: vec![] };
        assert!(plan(&store, &catalog, &broken, &teardown).is_ok(), "a deprovision needs no capability");
    }

    #[test]
    fn a_teardown_selects_only_objects_of_the_provision() {
        let (store, tmp) = (Store::open_in_memory().unwrap(), tempfile::tempdir().unwrap());
        let catalog = catalog(tmp.path());
        let plan = |row: &ProvisionRow, request: &Request| plan(&store, &catalog, row, request);
        let running = row(State::Running, cloud(&[4, 5]));
        let request = Request::Deprovision { force: false, hosts: vec![5, 9], networks: vec![], datastores: vec![] };
        let err = plan(&running, &request).unwrap_err().to_string();
        assert_eq!(err, "host ids 9 are not hosts of provision 1 (its hosts: 4, 5)");
        let request = Request::Deprovision { force: false, hosts: vec![5], networks: vec![1], datastores: vec![] };
        let err = plan(&running, &request).unwrap_err().to_string();
        assert!(err.contains("network ids 1 are not networks of provision 1 (its networks: none)"), "{err}");
        let request = Request::Deprovision { force: true, hosts: vec![5], networks: vec![], datastores: vec![] };
        assert!(plan(&running, &request).is_ok());
    }

    #[test]
    fn recover_only_to_the_failed_stage() {
        let (store, tmp) = (Store::open_in_memory().unwrap(), tempfile::tempdir().unwrap());
        let catalog = catalog(tmp.path());
        let plan = |row: &ProvisionRow, request: &Request| plan(&store, &catalog, row, request);
        let failed = row(State::ConfiguringOneFailure, cloud(&[]));
        assert!(plan(&failed, &Request::Recover { target: State::ConfiguringOne }).is_ok());
        let err = plan(&failed, &Request::Recover { target: State::Running }).unwrap_err().to_string();
        assert!(err.contains("it can only be recovered to CONFIGURING_ONE"), "{err}");
        let err = plan(&row(State::Running, cloud(&[])), &Request::Retry).unwrap_err().to_string();
        assert!(err.contains("only a *_FAILURE state can be retried"), "{err}");
    }
}
