//! Unmanaged children (spec §2.3, §2.7 item 6): objects formwork did not create that live in
//! the provision's objects: VMs on its hosts, VMs holding leases on its networks, images in
//! its datastores. They are recorded in each object's `childs` and served as the
//! [`Unmanaged`] map (`GET /provisions/:id/unmanaged`); teardown refuses to run over them
//! unless forced.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::api::OneApi;
use super::event::{Event, report};
use super::objects::{Children, OneObjects};
use super::teardown::Selection;
use super::{ChildKind, Kind, Result, dispatch, public_ips};

/// `{hosts: {<id>: {vm: [...]}}, networks: {...}, datastores: {<id>: {image: [...]}}}`; a
/// type without children is left out, as OneForm leaves it out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<i64, Children>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<i64, Children>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub datastores: BTreeMap<i64, Children>,
}

impl Unmanaged {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.networks.is_empty() && self.datastores.is_empty()
    }

    fn of(&self, kind: Kind) -> Option<&BTreeMap<i64, Children>> {
        match kind {
            Kind::Cluster => None,
            Kind::Datastore => Some(&self.datastores),
            Kind::Network => Some(&self.networks),
            Kind::Host => Some(&self.hosts),
        }
    }

    fn of_mut(&mut self, kind: Kind) -> Option<&mut BTreeMap<i64, Children>> {
        match kind {
            Kind::Cluster => None,
            Kind::Datastore => Some(&mut self.datastores),
            Kind::Network => Some(&mut self.networks),
            Kind::Host => Some(&mut self.hosts),
        }
    }

    /// Records `ids` (when there are any) as the children of one object.
    pub fn insert(&mut self, kind: Kind, id: i64, child: ChildKind, ids: Vec<i64>) {
        if let (false, Some(map)) = (ids.is_empty(), self.of_mut(kind)) {
            map.entry(id).or_default().insert(child.key().to_string(), ids);
        }
    }

    /// The part that concerns the selected objects.
    pub fn only(&self, selection: &Selection) -> Unmanaged {
        let mut kept = Unmanaged::default();
        for kind in [Kind::Host, Kind::Network, Kind::Datastore] {
            let (Some(from), Some(to)) = (self.of(kind), kept.of_mut(kind)) else {
                continue;
            };
            for (id, children) in from {
                if selection.includes(kind, *id) {
                    to.insert(*id, children.clone());
                }
            }
        }
        kept
    }
}

impl fmt::Display for Unmanaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for kind in [Kind::Host, Kind::Network, Kind::Datastore] {
            for (id, children) in self.of(kind).into_iter().flatten() {
                let listed: Vec<String> = children
                    .iter()
                    .map(|(key, ids)| {
                        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                        format!("{key} {}", ids.join(", "))
                    })
                    .collect();
                parts.push(format!("{kind} {id} holds {}", listed.join("; ")));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// Re-reads the children of every registered object, records them in `childs` and returns the
/// whole map.
pub async fn unmanaged<A: OneApi>(api: &A, objects: &mut OneObjects) -> Result<Unmanaged> {
    let mut quiet = |_: &OneObjects, _: &Event| Ok::<(), Infallible>(());
    refresh_children(api, objects, &mut quiet).await
}

/// OneForm's `update_objects`: children, then the elastic network's ARs, then one
/// [`Event::Refreshed`] so the caller checkpoints the result.
pub async fn refresh<A, P, E>(api: &A, objects: &mut OneObjects, progress: &mut P) -> Result<Unmanaged>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let found = refresh_children(api, objects, progress).await?;
    public_ips::refresh_ars(api, objects).await?;
    report(progress, objects, Event::Refreshed)?;
    Ok(found)
}

/// The kinds with children, in OneForm's order, with the context its log lines name.
const CHECKS: [(Kind, ChildKind, &str); 3] = [
    (Kind::Datastore, ChildKind::Image, "provision datastores"),
    (Kind::Network, ChildKind::Vm, "provision networks leases"),
    (Kind::Host, ChildKind::Vm, "provision hosts"),
];

/// Reads and records children, reporting each one found or gone since the last look. An
/// object that no longer exists has none.
pub(crate) async fn refresh_children<A, P, E>(api: &A, objects: &mut OneObjects, progress: &mut P) -> Result<Unmanaged>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut found = Unmanaged::default();
    for (kind, child, context) in CHECKS {
        for index in 0..objects.of(kind).len() {
            let Some(id) = objects.of(kind)[index].id else {
                continue;
            };
            let ids = dispatch::children(api, kind, id).await?.unwrap_or_default();
            let resource = &mut objects.of_mut(kind)[index];
            for event in record(&mut resource.childs, child, &ids, context) {
                report(progress, objects, event)?;
            }
            found.insert(kind, id, child, ids);
        }
    }
    Ok(found)
}

/// Sets `childs` to `ids` (`{}` when there are none) and returns what changed as events.
fn record(childs: &mut Option<Children>, child: ChildKind, ids: &[i64], context: &'static str) -> Vec<Event> {
    let before = childs.as_ref().and_then(|c| c.get(child.key())).cloned().unwrap_or_default();
    let mut now = Children::new();
    if !ids.is_empty() {
        now.insert(child.key().to_string(), ids.to_vec());
    }
    *childs = Some(now);
    let new = ids.iter().filter(|i| !before.contains(i));
    let gone = before.iter().filter(|i| !ids.contains(i));
    new.map(|&id| Event::UnmanagedFound { kind: child, id, context })
        .chain(gone.map(|&id| Event::UnmanagedRemoved { kind: child, id, context }))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_map_is_shaped_like_oneforms_and_filters_by_selection() {
        let mut unmanaged = Unmanaged::default();
        unmanaged.insert(Kind::Host, 21, ChildKind::Vm, vec![30, 33]);
        unmanaged.insert(Kind::Host, 22, ChildKind::Vm, vec![]);
        unmanaged.insert(Kind::Datastore, 136, ChildKind::Image, vec![5]);
        unmanaged.insert(Kind::Cluster, 1, ChildKind::Vm, vec![9]);
        assert_eq!(
            serde_json::to_value(&unmanaged).unwrap(),
            json!({"hosts": {"21": {"vm": [30, 33]}}, "datastores": {"136": {"image": [5]}}})
        );
        assert_eq!(unmanaged.to_string(), "host 21 holds vm 30, 33; datastore 136 holds image 5");
        let hosts = Selection::Only { hosts: vec![21], networks: vec![], datastores: vec![] };
        let only = unmanaged.only(&hosts);
        assert!(only.datastores.is_empty());
        assert_eq!(only.hosts.len(), 1);
        assert_eq!(unmanaged.only(&Selection::All), unmanaged);
        assert!(Unmanaged::default().is_empty());
    }

    #[test]
    fn recording_children_reports_what_came_and_went() {
        let mut childs = None;
        let events = record(&mut childs, ChildKind::Vm, &[3, 4], "provision hosts");
        assert_eq!(events.len(), 2);
        assert_eq!(childs.as_ref().unwrap()["vm"], vec![3, 4]);
        let events = record(&mut childs, ChildKind::Vm, &[4, 5], "provision hosts");
        let context = "provision hosts";
        assert_eq!(
            events,
            [
                Event::UnmanagedFound { kind: ChildKind::Vm, id: 5, context },
                Event::UnmanagedRemoved { kind: ChildKind::Vm, id: 3, context },
            ]
        );
        assert!(record(&mut childs, ChildKind::Vm, &[], context).len() == 2);
        assert_eq!(childs, Some(Children::new()));
    }
}
