//! Teardown of a provision's objects: the core of DEPROVISIONING_ONE (spec §2.6, §2.7 item 6),
//! and the host "force update" of the RUNNING stage.
//!
//! Order is the reverse of creation (hosts, networks, datastores, cluster); hosts to delete are
//! disabled first; an object already gone is skipped and its id nulled; each deletion waits
//! until OpenNebula no longer knows the object, then nulls the id and reports. Unmanaged
//! children stop the teardown unless it is forced, in which case they are deleted first.
//!
//! Beyond OneForm: ids that are not the provision's are refused instead of silently ignored,
//! a host already gone does not fail the disable step, and children that appear between the
//! check and the deletion stop an unforced teardown instead of being deleted.

use serde_json::{Map, Value};

use super::api::{HostStatus, OneApi};
use super::children::{self, Unmanaged};
use super::event::{Event, report};
use super::objects::{Children, OneObjects};
use super::{ChildKind, Error, Kind, Result, Wait, dispatch};

/// What to delete: everything (the cluster included), or only the given hosts, networks and
/// datastores (by OpenNebula id), the cluster staying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    #[default]
    All,
    Only {
        hosts: Vec<i64>,
        networks: Vec<i64>,
        datastores: Vec<i64>,
    },
}

impl Selection {
    /// From a deprovision request's `resources` (`{hosts: [ids], …}`; empty means all). Keys
    /// other than hosts, networks and datastores are refused.
    pub fn from_resources(resources: &Map<String, Value>) -> Result<Selection> {
        let allowed = ["hosts", "networks", "datastores"];
        let invalid: Vec<String> = resources.keys().filter(|k| !allowed.contains(&k.as_str())).cloned().collect();
        if !invalid.is_empty() {
            return Err(Error::InvalidResourceTypes { types: invalid });
        }
        if resources.is_empty() {
            return Ok(Selection::All);
        }
        Ok(Selection::Only {
            hosts: ids(resources, "hosts")?,
            networks: ids(resources, "networks")?,
            datastores: ids(resources, "datastores")?,
        })
    }

    /// Only these hosts (a scale-down).
    pub fn hosts(ids: Vec<i64>) -> Selection {
        Selection::Only { hosts: ids, networks: Vec::new(), datastores: Vec::new() }
    }

    pub fn includes(&self, kind: Kind, id: i64) -> bool {
        match (self, kind) {
            (Selection::All, _) => true,
            (Selection::Only { .. }, Kind::Cluster) => false,
            (Selection::Only { hosts, .. }, Kind::Host) => hosts.contains(&id),
            (Selection::Only { networks, .. }, Kind::Network) => networks.contains(&id),
            (Selection::Only { datastores, .. }, Kind::Datastore) => datastores.contains(&id),
        }
    }

    /// Refuses ids that are not recorded in `objects`.
    fn check(&self, objects: &OneObjects) -> Result<()> {
        let Selection::Only { hosts, networks, datastores } = self else {
            return Ok(());
        };
        for (kind, wanted) in [(Kind::Host, hosts), (Kind::Network, networks), (Kind::Datastore, datastores)] {
            let known: Vec<i64> = objects.of(kind).iter().filter_map(|r| r.id).collect();
            if let Some(id) = wanted.iter().find(|id| !known.contains(id)) {
                let known: Vec<String> = known.iter().map(i64::to_string).collect();
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                return Err(Error::NotInProvision { kind, id: *id, known });
            }
        }
        Ok(())
    }
}

fn ids(resources: &Map<String, Value>, key: &str) -> Result<Vec<i64>> {
    let invalid = |reason: String| Error::InvalidSelection { kind: key.to_string(), reason };
    match resources.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_i64().ok_or_else(|| invalid(format!("{n} is not an id"))),
                Value::String(s) => s.trim().parse().map_err(|_| invalid(format!("\"{s}\" is not an id"))),
                Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                    Err(invalid(format!("{v} is not an id")))
                }
            })
            .collect(),
        Some(other) => Err(invalid(format!("expected a list of ids, got {other}"))),
    }
}

/// Deletes the selected objects (updating `objects` in place), reporting after each deletion.
/// Without `force`, unmanaged children anywhere in the selection stop it before anything is
/// touched, with the [`Unmanaged`] map.
pub async fn deprovision<A, P, E>(
    api: &A,
    objects: &mut OneObjects,
    selection: &Selection,
    force: bool,
    wait: Wait,
    progress: &mut P,
) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    selection.check(objects)?;
    let found = children::refresh_children(api, objects, progress).await?;
    let found = found.only(selection);
    if !force && !found.is_empty() {
        return Err(Error::Unmanaged { unmanaged: found });
    }
    for id in selected(objects, selection, Kind::Host) {
        match api.host_status(id, HostStatus::Disabled).await {
            Err(e) if !e.is_no_exists() => return Err(e),
            Ok(()) | Err(_) => {}
        }
    }
    for kind in Kind::CREATION_ORDER.into_iter().rev() {
        for index in 0..objects.of(kind).len() {
            let resource = &objects.of(kind)[index];
            if resource.id.is_some_and(|id| selection.includes(kind, id)) {
                remove(api, objects, kind, index, force, wait, progress).await?;
            }
        }
    }
    Ok(())
}

fn selected(objects: &OneObjects, selection: &Selection, kind: Kind) -> Vec<i64> {
    let ids = objects.of(kind).iter().filter_map(|r| r.id);
    ids.filter(|id| selection.includes(kind, *id)).collect()
}

/// Deletes one object: children first when forced, then the object, then nulls its id.
async fn remove<A, P, E>(
    api: &A,
    objects: &mut OneObjects,
    kind: Kind,
    index: usize,
    force: bool,
    wait: Wait,
    progress: &mut P,
) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let resource = &objects.of(kind)[index];
    let (Some(id), name) = (resource.id, resource.display_name().to_string()) else {
        return Ok(());
    };
    let Some(ids) = dispatch::children(api, kind, id).await? else {
        objects.of_mut(kind)[index].id = None;
        return report(progress, objects, Event::Vanished { kind, id, name });
    };
    if let (false, Some(child)) = (ids.is_empty(), dispatch::child_kind(kind)) {
        if !force {
            let mut unmanaged = Unmanaged::default();
            unmanaged.insert(kind, id, child, ids);
            return Err(Error::Unmanaged { unmanaged });
        }
        delete_children(api, objects, (kind, id), (child, ids), wait, progress).await?;
        objects.of_mut(kind)[index].childs = Some(Children::new());
    }
    dispatch::delete(api, kind, id, wait).await?;
    objects.of_mut(kind)[index].id = None;
    report(progress, objects, Event::Deleted { kind, id, name })
}

/// Deletes the unmanaged children of one object, reporting each.
async fn delete_children<A, P, E>(
    api: &A,
    objects: &OneObjects,
    (parent, parent_id): (Kind, i64),
    (kind, ids): (ChildKind, Vec<i64>),
    wait: Wait,
    progress: &mut P,
) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    for id in ids {
        dispatch::delete_child(api, kind, id, wait).await?;
        let event = Event::ChildDeleted { kind, id, parent, parent_id };
        report(progress, objects, event)?;
    }
    Ok(())
}

/// OneForm's host "forceupdate" after CONFIGURING_PROVISION: every registered host goes
/// OFFLINE, then ENABLED, so oned monitors it again at once.
pub async fn force_update_hosts<A, P, E>(api: &A, objects: &OneObjects, progress: &mut P) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    for id in objects.hosts.iter().filter_map(|h| h.id) {
        report(progress, objects, Event::HostActivating { id })?;
        api.host_status(id, HostStatus::Offline).await?;
        api.host_status(id, HostStatus::Enabled).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
