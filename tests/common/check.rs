//! Exact checks of a provision against every other place that holds a copy of it: the
//! OpenNebula objects (formwork's model file `one-sim.json` or onesim's `--state` file), the
//! fake cloud and the Terraform state of tests/fakes/terraform, and the calls the fake tools
//! recorded. They compare ids and counts, so an object made twice, one left behind, a lost id
//! or a tool run once too often fails them; names alone would not (OpenNebula refuses a second
//! object of one name).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::Home;

/// A provision's OpenNebula objects as (id, name), sorted, and its public IPs as AR ids.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Objects {
    pub clusters: Vec<(i64, String)>,
    pub hosts: Vec<(i64, String)>,
    pub datastores: Vec<(i64, String)>,
    pub networks: Vec<(i64, String)>,
    /// The address ranges of the elastic (public IP) networks.
    pub public_ips: Vec<i64>,
}

/// How many objects of each kind a provision should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub hosts: usize,
    pub datastores: usize,
    pub networks: usize,
    pub public_ips: usize,
}

impl Want {
    /// What the built-in `sim` driver registers: a cluster, 2 datastores, a private and an
    /// elastic network.
    pub fn sim(hosts: usize, public_ips: usize) -> Want {
        Want { hosts, datastores: 2, networks: 2, public_ips }
    }

    /// What the built-in `onprem` driver registers: a cluster, 2 datastores, one network.
    pub fn onprem(hosts: usize) -> Want {
        Want { hosts, datastores: 2, networks: 1, public_ips: 0 }
    }
}

/// Whether an OpenNebula record belongs to provision `id`: tagged `ONEFORM/PROVISION_ID`, or
/// named with the provision's suffix (an object whose tags were never written still counts).
fn belongs(record: &Value, id: i64) -> bool {
    let suffix = format!("(provision_{id})");
    let tagged = record["template"]["attributes"].as_array().into_iter().flatten().any(|attribute| {
        attribute[0] == "ONEFORM"
            && attribute[1]["Vector"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|pair| pair[0] == "PROVISION_ID" && pair[1] == id.to_string().as_str())
    });
    tagged || record["name"].as_str().is_some_and(|n| n.ends_with(&suffix))
}

/// Every OpenNebula object of provision `id` in a saved model (`one-sim.json` or onesim's
/// state file): the provision's own, and whatever sits in its cluster (a host is allocated
/// before its tags are written).
pub fn in_opennebula(model: &Path, id: i64) -> Objects {
    let saved: Value = serde_json::from_slice(&std::fs::read(model).unwrap()).unwrap();
    let world = &saved["world"];
    let records =
        |kind: &str| world[kind].as_object().unwrap_or_else(|| panic!("{} has no {kind}", model.display())).clone();
    let clusters: Vec<i64> =
        records("clusters").iter().filter(|(_, r)| belongs(r, id)).map(|(k, _)| k.parse().unwrap()).collect();
    let ours =
        |record: &Value| belongs(record, id) || record["cluster_id"].as_i64().is_some_and(|c| clusters.contains(&c));
    let of = |kind: &str| -> Vec<(i64, String)> {
        let mut found: Vec<(i64, String)> = records(kind)
            .iter()
            .filter(|(_, record)| ours(record))
            .map(|(key, record)| (key.parse().unwrap(), record["name"].as_str().unwrap().to_owned()))
            .collect();
        found.sort();
        found
    };
    let mut public_ips: Vec<i64> = records("vnets")
        .values()
        .filter(|v| ours(v) && v["vn_mad"] == "elastic")
        .flat_map(|v| v["ars"].as_array().cloned().unwrap_or_default())
        .map(|ar| ar["ar_id"].as_i64().unwrap())
        .collect();
    public_ips.sort();
    Objects {
        clusters: of("clusters"),
        hosts: of("hosts"),
        datastores: of("datastores"),
        networks: of("vnets"),
        public_ips,
    }
}

/// The objects a provision body at rest records in `one_objects`. Every object must have an
/// id: one without was never registered or was deleted, and a finished stage leaves neither.
pub fn in_body(body: &Value) -> Objects {
    body_objects(body, false)
}

/// The objects a body saved in the middle of a stage records as existing: those with an id.
pub fn in_body_so_far(body: &Value) -> Objects {
    body_objects(body, true)
}

fn body_objects(body: &Value, skip_missing: bool) -> Objects {
    let objects = &body["one_objects"];
    let pair = |o: &Value| -> Option<(i64, String)> {
        match o["id"].as_i64() {
            Some(id) => Some((id, o["name"].as_str().unwrap().to_owned())),
            None if skip_missing => None,
            None => panic!("an object without an id in the body: {o}"),
        }
    };
    let list = |key: &str| -> Vec<(i64, String)> {
        let mut found: Vec<(i64, String)> = objects[key].as_array().into_iter().flatten().filter_map(pair).collect();
        found.sort();
        found
    };
    let clusters = if objects["cluster"].is_null() { vec![] } else { pair(&objects["cluster"]).into_iter().collect() };
    let mut public_ips: Vec<i64> = objects["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["template"]["vn_mad"] == "elastic" && (n["id"].is_i64() || !skip_missing))
        .flat_map(|n| n["template"]["ar"].as_array().cloned().unwrap_or_default())
        .map(|ar| ar["ar_id"].as_i64().unwrap())
        .collect();
    public_ips.sort();
    Objects { clusters, hosts: list("hosts"), datastores: list("datastores"), networks: list("networks"), public_ips }
}

/// Asserts that OpenNebula holds exactly the objects the body records (same ids, same names,
/// nothing more) and that there are as many of each kind as wanted; returns them.
pub fn assert_registered(label: &str, body: &Value, model: &Path, want: Want) -> Objects {
    let id = body["id"].as_i64().expect("the body has an id");
    let recorded = in_body(body);
    let held = in_opennebula(model, id);
    assert_eq!(held, recorded, "{label}: OpenNebula and the provision body disagree");
    let counts =
        (held.clusters.len(), held.hosts.len(), held.datastores.len(), held.networks.len(), held.public_ips.len());
    assert_eq!(
        counts,
        (1, want.hosts, want.datastores, want.networks, want.public_ips),
        "{label}: (clusters, hosts, datastores, networks, public IPs) in {held:?}"
    );
    let inputs = &body["user_inputs_values"];
    if let Some(count) = inputs["oneform_hosts"].as_u64() {
        assert_eq!(count as usize, want.hosts, "{label}: oneform_hosts");
    }
    if let Some(list) = inputs["oneform_onprem_hosts"].as_array() {
        assert_eq!(list.len(), want.hosts, "{label}: oneform_onprem_hosts");
    }
    assert_eq!(inputs["oneform_public_ips"].as_u64().unwrap_or(0) as usize, want.public_ips, "{label}");
    held
}

/// Asserts that nothing of provision `id` is left in OpenNebula.
pub fn assert_unregistered(label: &str, model: &Path, id: i64) {
    assert_eq!(in_opennebula(model, id), Objects::default(), "{label}: left behind in OpenNebula");
}

/// The hosts of the fake cloud, as (id, address), sorted.
pub fn cloud_hosts(home: &Home) -> Vec<(String, String)> {
    hosts_in_cloud(&home.tmp.path().join("fake-cloud"))
}

/// The host records (`hosts/<id>.json`) of a cloud folder, the `sim` provider's or the fake
/// Terraform's, as (id, address), sorted.
pub fn hosts_in_cloud(cloud: &Path) -> Vec<(String, String)> {
    let mut hosts: Vec<(String, String)> = std::fs::read_dir(cloud.join("hosts"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let record: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            (record["id"].as_str().unwrap().to_owned(), record["ip"].as_str().unwrap().to_owned())
        })
        .collect();
    hosts.sort();
    hosts
}

/// Sets the `sim` provider's faults (`faults.json`) in a cloud folder.
pub fn set_faults(cloud: &Path, faults: &Value) {
    std::fs::create_dir_all(cloud).unwrap();
    std::fs::write(cloud.join("faults.json"), faults.to_string()).unwrap();
}

/// The latest Terraform state of provision `id`, as the store keeps it (sealed; opened with the
/// data directory's key file): the working directory holds none between stages.
pub fn latest_state(home: &Home, id: i64) -> Value {
    let store = formwork::store::Store::open(&home.data_dir().join("formwork.db")).unwrap();
    let text = store.latest_tfstate(id).unwrap().unwrap_or_else(|| panic!("provision {id} has no saved state"));
    serde_json::from_str(&text).unwrap()
}

/// The host resources in provision `id`'s latest Terraform state, as (address, id, address of
/// the host), sorted by address.
pub fn state_hosts(home: &Home, id: i64) -> Vec<(String, String, String)> {
    let state = latest_state(home, id);
    let mut hosts = Vec::new();
    for resource in state["resources"].as_array().unwrap() {
        for instance in resource["instances"].as_array().unwrap() {
            let address = format!(
                "{}.{}[{}]",
                resource["type"].as_str().unwrap(),
                resource["name"].as_str().unwrap(),
                instance["index_key"]
            );
            let attributes = &instance["attributes"];
            hosts.push((
                address,
                attributes["id"].as_str().unwrap().to_owned(),
                attributes["ip"].as_str().unwrap().to_owned(),
            ));
        }
    }
    hosts.sort();
    hosts
}

/// Asserts that the fake cloud, the Terraform state and the body's hosts are the same hosts,
/// `hosts` of them, at the addresses `sim_host.host[0..hosts)` (no hole left by a scale-down);
/// returns them as (resource id, address).
pub fn assert_provisioned(label: &str, home: &Home, body: &Value, hosts: usize) -> Vec<(String, String)> {
    assert_provisioned_in(label, cloud_hosts(home), home, body, hosts)
}

/// [`assert_provisioned`] against the hosts of another cloud (the `sim` provider's records), as
/// (id, address).
pub fn assert_provisioned_in(
    label: &str,
    cloud: Vec<(String, String)>,
    home: &Home,
    body: &Value,
    hosts: usize,
) -> Vec<(String, String)> {
    let id = body["id"].as_i64().unwrap();
    let state = state_hosts(home, id);
    let addresses: Vec<String> = state.iter().map(|(a, _, _)| a.clone()).collect();
    let want: Vec<String> = (0..hosts).map(|i| format!("sim_host.host[{i}]")).collect();
    assert_eq!(addresses, want, "{label}: Terraform state addresses");
    let mut in_state: Vec<(String, String)> = state.into_iter().map(|(_, id, ip)| (id, ip)).collect();
    in_state.sort();
    assert_eq!(in_state, cloud, "{label}: the cloud holds exactly the hosts in the Terraform state");
    let mut in_body: Vec<(String, String)> = body["one_objects"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["resource_id"].as_str().unwrap().to_owned(), h["name"].as_str().unwrap().to_owned()))
        .collect();
    in_body.sort();
    assert_eq!(in_body, cloud, "{label}: the body's hosts are the cloud's");
    cloud
}

/// How many times each tool ran since the calls were last forgotten, by
/// `terraform <subcommand>` (`terraform apply -refresh-only` apart) and `ansible-playbook`.
pub fn tool_counts(home: &Home) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for call in home.calls() {
        let argv: Vec<&str> = call["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let key = match call["tool"].as_str().unwrap() {
            "terraform" if argv.contains(&"-refresh-only") => "terraform apply -refresh-only".to_owned(),
            "terraform" => format!("terraform {}", argv[0]),
            tool => tool.to_owned(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// A map of tool counts from literal pairs.
pub fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().filter(|(_, n)| *n > 0).map(|(k, n)| (k.to_string(), *n)).collect()
}
