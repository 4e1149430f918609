//! The fake's objects and the OpenNebula rules it enforces on clusters, hosts, datastores and
//! images: ids from the next free one, unique names per type, members placed in a cluster at
//! allocation, refusal to delete a cluster with members, a host with VMs or a datastore with
//! images. Relations (cluster members, host VMs, datastore images, leases) are derived from the
//! records on every read, so they can never disagree. Vnets and VMs are in `vnets.rs`.

use std::collections::BTreeMap;

use super::super::Code;
use super::super::api::{AddressRange, Cluster, Datastore, Host, HostStatus, Image, Vm};
use super::super::template::Template;

pub(super) type Outcome<T> = Result<T, (Code, String)>;

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct World {
    pub clusters: BTreeMap<i64, ClusterRec>,
    pub hosts: BTreeMap<i64, HostRec>,
    pub datastores: BTreeMap<i64, DatastoreRec>,
    pub vnets: BTreeMap<i64, VnetRec>,
    pub vms: BTreeMap<i64, VmRec>,
    pub images: BTreeMap<i64, ImageRec>,
    /// Generic documents (OneForm's providers and provisions); absent from states saved before
    /// documents existed.
    #[serde(default)]
    pub documents: BTreeMap<i64, super::documents::DocumentRec>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct ClusterRec {
    pub name: String,
    pub template: Template,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct HostRec {
    pub name: String,
    pub im_mad: String,
    pub vm_mad: String,
    pub cluster_id: i64,
    pub state: i64,
    pub template: Template,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct DatastoreRec {
    pub name: String,
    pub ds_type: i64,
    pub cluster_id: i64,
    pub template: Template,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct VnetRec {
    pub name: String,
    pub vn_mad: String,
    pub cluster_id: i64,
    pub template: Template,
    pub ars: Vec<AddressRange>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct VmRec {
    pub name: String,
    pub state: i64,
    pub host: Option<i64>,
    /// (vnet id, AR id) of each lease.
    pub leases: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct ImageRec {
    pub name: String,
    pub datastore: i64,
}

pub(super) fn missing<T>(what: &str, id: i64) -> Outcome<T> {
    Err((Code::NoExists, format!("Error getting {what} [{id}].")))
}

pub(super) fn parse(text: &str) -> Outcome<Template> {
    Template::parse(text).map_err(|e| (Code::Internal, format!("Parse error: {e}")))
}

pub(super) fn taken<'a, R: 'a>(
    records: impl IntoIterator<Item = (&'a i64, &'a R)>,
    name_of: impl Fn(&R) -> &str,
    name: &str,
    what: &str,
) -> Outcome<()> {
    match records.into_iter().find(|(_, r)| name_of(r) == name) {
        Some((id, _)) => Err((Code::Allocate, format!("NAME is already taken by {what} {id}."))),
        None => Ok(()),
    }
}

impl World {
    /// What a fresh oned holds: cluster 0 "default" with datastores 0 "system", 1 "default",
    /// 2 "files".
    pub fn bootstrap() -> World {
        let mut world = World::default();
        world.clusters.insert(0, ClusterRec { name: "default".into(), template: Template::default() });
        for (id, name, ds_type) in [(0, "system", 1), (1, "default", 0), (2, "files", 2)] {
            let template = Template::default();
            let rec = DatastoreRec { name: name.into(), ds_type, cluster_id: 0, template };
            world.datastores.insert(id, rec);
        }
        world
    }

    pub(super) fn cluster_for(&self, cluster_id: i64) -> Outcome<i64> {
        let id = if cluster_id == -1 { 0 } else { cluster_id };
        match self.clusters.contains_key(&id) {
            true => Ok(id),
            false => missing("cluster", id),
        }
    }

    pub fn cluster_allocate(&mut self, next: &mut i64, name: &str) -> Outcome<i64> {
        taken(&self.clusters, |r| &r.name, name, "CLUSTER")?;
        let id = take(next);
        self.clusters.insert(id, ClusterRec { name: name.into(), template: Template::default() });
        Ok(id)
    }

    pub fn cluster_update(&mut self, id: i64, text: &str) -> Outcome<()> {
        let update = parse(text)?;
        match self.clusters.get_mut(&id) {
            Some(rec) => {
                rec.template.merge(update);
                Ok(())
            }
            None => missing("cluster", id),
        }
    }

    pub fn cluster(&self, id: i64) -> Outcome<Cluster> {
        let Some(rec) = self.clusters.get(&id) else {
            return missing("cluster", id);
        };
        Ok(Cluster {
            id,
            name: rec.name.clone(),
            hosts: ids_where(&self.hosts, |h| h.cluster_id == id),
            datastores: ids_where(&self.datastores, |d| d.cluster_id == id),
            vnets: ids_where(&self.vnets, |v| v.cluster_id == id),
            template: rec.template.clone(),
        })
    }

    pub fn cluster_delete(&mut self, id: i64) -> Outcome<()> {
        let cluster = self.cluster(id)?;
        if !cluster.is_empty() {
            return Err((
                Code::Action,
                format!(
                    "Cannot delete cluster {id}: it still holds hosts {:?}, datastores {:?}, vnets {:?}.",
                    cluster.hosts, cluster.datastores, cluster.vnets
                ),
            ));
        }
        self.clusters.remove(&id);
        Ok(())
    }

    pub fn host_allocate(&mut self, next: &mut i64, name: &str, im: &str, vmm: &str, cluster: i64) -> Outcome<i64> {
        taken(&self.hosts, |r| &r.name, name, "HOST")?;
        let cluster_id = self.cluster_for(cluster)?;
        let id = take(next);
        let rec = HostRec {
            name: name.into(),
            im_mad: im.into(),
            vm_mad: vmm.into(),
            cluster_id,
            state: Host::MONITORED,
            template: Template::default(),
        };
        self.hosts.insert(id, rec);
        Ok(id)
    }

    pub fn host_update(&mut self, id: i64, text: &str) -> Outcome<()> {
        let update = parse(text)?;
        match self.hosts.get_mut(&id) {
            Some(rec) => {
                rec.template.merge(update);
                Ok(())
            }
            None => missing("host", id),
        }
    }

    pub fn host_status(&mut self, id: i64, status: HostStatus) -> Outcome<()> {
        let Some(rec) = self.hosts.get_mut(&id) else {
            return missing("host", id);
        };
        rec.state = match status {
            HostStatus::Enabled => Host::MONITORED,
            HostStatus::Disabled => Host::DISABLED,
            HostStatus::Offline => Host::OFFLINE,
        };
        Ok(())
    }

    pub(super) fn live_vms(&self) -> impl Iterator<Item = (&i64, &VmRec)> {
        self.vms.iter().filter(|(_, vm)| vm.state != Vm::DONE)
    }

    pub fn host(&self, id: i64) -> Outcome<Host> {
        let Some(rec) = self.hosts.get(&id) else {
            return missing("host", id);
        };
        Ok(Host {
            id,
            name: rec.name.clone(),
            state: rec.state,
            im_mad: rec.im_mad.clone(),
            vm_mad: rec.vm_mad.clone(),
            cluster_id: rec.cluster_id,
            vms: self.live_vms().filter(|(_, vm)| vm.host == Some(id)).map(|(i, _)| *i).collect(),
            template: rec.template.clone(),
        })
    }

    pub fn host_delete(&mut self, id: i64) -> Outcome<()> {
        let host = self.host(id)?;
        if !host.vms.is_empty() {
            return Err((Code::Action, format!("Cannot delete host {id}: it has VMs {:?}.", host.vms)));
        }
        self.hosts.remove(&id);
        Ok(())
    }

    pub fn datastore_allocate(&mut self, next: &mut i64, text: &str, cluster: i64) -> Outcome<i64> {
        let template = parse(text)?;
        let name = required(&template, "NAME")?;
        taken(&self.datastores, |r| &r.name, &name, "DATASTORE")?;
        let cluster_id = self.cluster_for(cluster)?;
        let ds_type = match template.single("TYPE") {
            Some("SYSTEM_DS") => 1,
            Some("FILE_DS") => 2,
            Some(_) | None => 0,
        };
        let id = take(next);
        self.datastores.insert(id, DatastoreRec { name, ds_type, cluster_id, template });
        Ok(id)
    }

    pub fn datastore(&self, id: i64) -> Outcome<Datastore> {
        let Some(rec) = self.datastores.get(&id) else {
            return missing("datastore", id);
        };
        Ok(Datastore {
            id,
            name: rec.name.clone(),
            ds_type: rec.ds_type,
            state: 0,
            clusters: vec![rec.cluster_id],
            images: ids_where(&self.images, |i| i.datastore == id),
            template: rec.template.clone(),
        })
    }

    pub fn datastore_delete(&mut self, id: i64) -> Outcome<()> {
        let ds = self.datastore(id)?;
        if !ds.images.is_empty() {
            return Err((Code::Action, format!("Cannot delete datastore {id}: it has images {:?}.", ds.images)));
        }
        self.datastores.remove(&id);
        Ok(())
    }

    pub fn image(&self, id: i64) -> Outcome<Image> {
        let Some(rec) = self.images.get(&id) else {
            return missing("image", id);
        };
        Ok(Image { id, name: rec.name.clone(), state: 1, datastore_id: rec.datastore })
    }

    pub fn image_delete(&mut self, id: i64) -> Outcome<()> {
        match self.images.remove(&id) {
            Some(_) => Ok(()),
            None => missing("image", id),
        }
    }

    pub fn image_place(&mut self, next: &mut i64, name: &str, datastore: i64) -> Outcome<i64> {
        let ds = self.datastore(datastore)?;
        if ds.ds_type == 1 {
            return Err((Code::Action, format!("Datastore {datastore} is a system datastore: it holds no images.")));
        }
        taken(&self.images, |r| &r.name, name, "IMAGE")?;
        let id = take(next);
        self.images.insert(id, ImageRec { name: name.into(), datastore });
        Ok(id)
    }
}

pub(super) fn ids_where<R>(records: &BTreeMap<i64, R>, keep: impl Fn(&R) -> bool) -> Vec<i64> {
    records.iter().filter(|(_, r)| keep(r)).map(|(id, _)| *id).collect()
}

pub(super) fn take(next: &mut i64) -> i64 {
    let id = *next;
    *next += 1;
    id
}

pub(super) fn required(template: &Template, name: &str) -> Outcome<String> {
    match template.single(name) {
        Some(value) if !value.is_empty() => Ok(value.to_string()),
        Some(_) | None => Err((Code::Allocate, format!("No {name} in template."))),
    }
}
