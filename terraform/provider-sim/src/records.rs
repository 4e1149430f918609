//! Hosts and public IPs as the cloud keeps them, and the operations on them. Each operation
//! takes the cloud's lock for its whole read-allocate-write, so two Terraform processes never
//! hand out the same id or address. Synchronous on purpose: nothing awaits while the lock is held.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::cloud::{Cloud, Error, Kind, now_rfc3339};
use crate::faults::Faults;
use crate::net::{Cidr, PUBLIC_BLOCK};

/// Tags as Terraform's `map(string)`; `None` when the configuration gives none.
pub type Tags = Option<BTreeMap<String, String>>;

/// What a host is asked to be: the arguments of `sim_host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub instance_type: String,
    pub zone: Option<String>,
    pub cidr_block: String,
    pub tags: Tags,
}

/// `<root>/hosts/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub id: String,
    pub name: String,
    pub instance_type: String,
    pub zone: Option<String>,
    pub cidr_block: String,
    pub tags: Tags,
    pub ip: String,
    pub created_at: String,
}

/// `<root>/public_ips/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIpRecord {
    pub id: String,
    pub address: String,
    pub host_id: Option<String>,
    pub tags: Tags,
    pub created_at: String,
}

/// The counter in `.counters.json` that `fail_create_host` is compared with.
pub const HOST_CREATES: &str = "host_creates";

/// Parses a `cidr_block` argument, with the message Terraform shows when it is wrong.
pub fn parse_block(text: &str) -> Result<Cidr, Error> {
    text.parse().map_err(|err| Error::Invalid(format!("cidr_block {err}")))
}

fn addresses<'a>(addrs: impl Iterator<Item = &'a str>) -> HashSet<Ipv4Addr> {
    addrs.filter_map(|a| a.parse().ok()).collect()
}

/// Creates a host: counts the attempt, applies injected failures, takes the lowest free
/// address of its block, makes its (empty) machine directory, then writes its record, so a
/// record always has its machine.
pub fn create_host(cloud: &Cloud, faults: &Faults, spec: HostSpec) -> Result<HostRecord, Error> {
    let block = parse_block(&spec.cidr_block)?;
    let lock = cloud.lock()?;
    let attempt = cloud.bump_counter(&lock, HOST_CREATES)?;
    if let Some(err) = faults.create_host_failure(attempt, &spec.name) {
        return Err(err);
    }
    let hosts: Vec<HostRecord> = cloud.list(Kind::Host)?;
    let used = addresses(hosts.iter().map(|h| h.ip.as_str()));
    let ip = block.lowest_free(&used).ok_or_else(|| Error::Exhausted { block: block.to_string() })?;
    let machine = cloud.machine_dir(&ip.to_string());
    // A machine directory without a record is left over from a deletion cut short: start clean.
    if machine.exists() {
        fs::remove_dir_all(&machine).map_err(|source| Error::Io {
            action: "clearing",
            path: machine.clone(),
            source,
        })?;
    }
    fs::create_dir_all(&machine).map_err(|source| Error::Io { action: "creating", path: machine.clone(), source })?;
    let record = HostRecord {
        id: cloud.new_id(&lock, Kind::Host)?,
        name: spec.name,
        instance_type: spec.instance_type,
        zone: spec.zone,
        cidr_block: spec.cidr_block,
        tags: spec.tags,
        ip: ip.to_string(),
        created_at: now_rfc3339(),
    };
    cloud.write(&lock, Kind::Host, &record.id, &record)?;
    Ok(record)
}

/// Changes what a host can change in place: name, instance type and tags.
pub fn update_host(cloud: &Cloud, id: &str, spec: HostSpec) -> Result<HostRecord, Error> {
    let lock = cloud.lock()?;
    let mut record: HostRecord = cloud.read(Kind::Host, id)?.ok_or_else(|| missing(Kind::Host, id))?;
    if record.cidr_block != spec.cidr_block || record.zone != spec.zone {
        return Err(Error::Invalid(format!("host {id}: cidr_block and zone cannot change in place")));
    }
    record.name = spec.name;
    record.instance_type = spec.instance_type;
    record.tags = spec.tags;
    cloud.write(&lock, Kind::Host, id, &record)?;
    Ok(record)
}

/// Deletes a host: its machine directory first, then its record, so a deletion cut short
/// leaves a record that the next destroy finds. A host already gone is not an error.
pub fn delete_host(cloud: &Cloud, faults: &Faults, id: &str) -> Result<(), Error> {
    let lock = cloud.lock()?;
    let Some(record) = cloud.read::<HostRecord>(Kind::Host, id)? else {
        return Ok(());
    };
    if let Some(err) = faults.delete_host_failure(&record.name) {
        return Err(err);
    }
    let machine = cloud.machine_dir(&record.ip);
    match fs::remove_dir_all(&machine) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::Io { action: "removing", path: machine, source: err });
        }
        _ => {}
    }
    cloud.remove(&lock, Kind::Host, id)?;
    Ok(())
}

fn check_host_exists(cloud: &Cloud, host_id: Option<&str>) -> Result<(), Error> {
    match host_id {
        Some(host) if cloud.read::<HostRecord>(Kind::Host, host)?.is_none() => Err(missing(Kind::Host, host)),
        _ => Ok(()),
    }
}

/// Allocates the lowest free address of [`PUBLIC_BLOCK`], attached to `host_id` if given.
pub fn create_public_ip(cloud: &Cloud, host_id: Option<String>, tags: Tags) -> Result<PublicIpRecord, Error> {
    let lock = cloud.lock()?;
    check_host_exists(cloud, host_id.as_deref())?;
    let ips: Vec<PublicIpRecord> = cloud.list(Kind::PublicIp)?;
    let block: Cidr = PUBLIC_BLOCK.parse().expect("the public block is valid");
    let used = addresses(ips.iter().map(|ip| ip.address.as_str()));
    let address = block.lowest_free(&used).ok_or_else(|| Error::Exhausted { block: block.to_string() })?;
    let record = PublicIpRecord {
        id: cloud.new_id(&lock, Kind::PublicIp)?,
        address: address.to_string(),
        host_id,
        tags,
        created_at: now_rfc3339(),
    };
    cloud.write(&lock, Kind::PublicIp, &record.id, &record)?;
    Ok(record)
}

/// Attaches a public IP to another host (or none) and changes its tags.
pub fn update_public_ip(cloud: &Cloud, id: &str, host_id: Option<String>, tags: Tags) -> Result<PublicIpRecord, Error> {
    let lock = cloud.lock()?;
    let mut record: PublicIpRecord = cloud.read(Kind::PublicIp, id)?.ok_or_else(|| missing(Kind::PublicIp, id))?;
    check_host_exists(cloud, host_id.as_deref())?;
    record.host_id = host_id;
    record.tags = tags;
    cloud.write(&lock, Kind::PublicIp, id, &record)?;
    Ok(record)
}

/// Releases a public IP; one already gone is not an error.
pub fn delete_public_ip(cloud: &Cloud, id: &str) -> Result<(), Error> {
    let lock = cloud.lock()?;
    cloud.remove(&lock, Kind::PublicIp, id)?;
    Ok(())
}

/// The error for a record that should exist and does not.
pub fn missing(kind: Kind, id: &str) -> Error {
    Error::Missing { kind: kind.noun(), id: id.to_string() }
}

#[cfg(test)]
#[path = "records/tests.rs"]
mod tests;
