//! The fake's calls beyond [`super::super::OneApi`] that a whole oned answers: the pools
//! (`one.*pool.info`, every object by id), `rename` with its unique-name rule, and `update`
//! with both of oned's modes (replace or merge), for clusters, hosts, datastores and vnets; plus
//! name look-ups that log no call, for answers that name a related object.

use super::super::api::{Cluster, Datastore, Host, Image, Vm, Vnet, call};
use super::super::template::{Attribute, Template};
use super::super::{Code, Kind, Result};
use super::FakeOne;
use super::world::{Outcome, World, missing};

/// Rename and update call names per type (the pool and info ones are in `api::call`).
fn rename_call(kind: Kind) -> &'static str {
    match kind {
        Kind::Cluster => "one.cluster.rename",
        Kind::Host => "one.host.rename",
        Kind::Datastore => "one.datastore.rename",
        Kind::Network => "one.vn.rename",
    }
}

fn update_call(kind: Kind) -> &'static str {
    match kind {
        Kind::Cluster => call::CLUSTER_UPDATE,
        Kind::Host => call::HOST_UPDATE,
        Kind::Datastore => "one.datastore.update",
        Kind::Network => "one.vn.update",
    }
}

/// The names of every object of `kind` (mutable), and what oned calls the type in messages.
fn names(world: &mut World, kind: Kind) -> (&'static str, Vec<(i64, &mut String)>) {
    match kind {
        Kind::Cluster => ("cluster", world.clusters.iter_mut().map(|(i, r)| (*i, &mut r.name)).collect()),
        Kind::Host => ("host", world.hosts.iter_mut().map(|(i, r)| (*i, &mut r.name)).collect()),
        Kind::Datastore => ("datastore", world.datastores.iter_mut().map(|(i, r)| (*i, &mut r.name)).collect()),
        Kind::Network => ("virtual network", world.vnets.iter_mut().map(|(i, r)| (*i, &mut r.name)).collect()),
    }
}

impl World {
    /// oned's order: the object must exist, then the name must be free (ACTION otherwise).
    fn rename(&mut self, kind: Kind, id: i64, name: &str) -> Outcome<()> {
        let (what, mut names) = names(self, kind);
        if !names.iter().any(|(i, _)| *i == id) {
            return missing(what, id);
        }
        if name.is_empty() {
            return Err((Code::Action, "Invalid NAME, it cannot be empty.".to_string()));
        }
        if let Some((other, _)) = names.iter().find(|(i, n)| *i != id && n.as_str() == name) {
            return Err((
                Code::Action,
                format!("{what} cannot be renamed to {name} because it collides with {what} {other}"),
            ));
        }
        for (i, slot) in &mut names {
            if *i == id {
                **slot = name.to_string();
            }
        }
        Ok(())
    }

    /// A vnet's address ranges are not template attributes: `AR` vectors are left out of an
    /// update, as oned manages them through `add_ar`/`rm_ar` only.
    fn update(&mut self, kind: Kind, id: i64, update: Template, replace: bool) -> Outcome<()> {
        let (what, slot) = match kind {
            Kind::Cluster => ("cluster", self.clusters.get_mut(&id).map(|r| &mut r.template)),
            Kind::Host => ("host", self.hosts.get_mut(&id).map(|r| &mut r.template)),
            Kind::Datastore => ("datastore", self.datastores.get_mut(&id).map(|r| &mut r.template)),
            Kind::Network => ("virtual network", self.vnets.get_mut(&id).map(|r| &mut r.template)),
        };
        let Some(template) = slot else {
            return missing(what, id);
        };
        let update = match kind {
            Kind::Network => without_ars(update),
            Kind::Cluster | Kind::Host | Kind::Datastore => update,
        };
        if replace {
            *template = update;
        } else {
            template.merge(update);
        }
        Ok(())
    }
}

fn without_ars(template: Template) -> Template {
    let mut kept = Template::default();
    for (name, value) in template.attributes() {
        if !(name == "AR" && matches!(value, Attribute::Vector(_))) {
            kept.push(name.clone(), value.clone());
        }
    }
    kept
}

impl FakeOne {
    pub fn cluster_pool(&self) -> Result<Vec<Cluster>> {
        self.run(call::CLUSTER_POOL, "pool".into(), |w, _| w.clusters.keys().map(|id| w.cluster(*id)).collect())
    }

    pub fn host_pool(&self) -> Result<Vec<Host>> {
        self.run(call::HOST_POOL, "pool".into(), |w, _| w.hosts.keys().map(|id| w.host(*id)).collect())
    }

    pub fn datastore_pool(&self) -> Result<Vec<Datastore>> {
        self.run(call::DATASTORE_POOL, "pool".into(), |w, _| w.datastores.keys().map(|id| w.datastore(*id)).collect())
    }

    pub fn vn_pool(&self) -> Result<Vec<Vnet>> {
        self.run(call::VN_POOL, "pool".into(), |w, _| w.vnets.keys().map(|id| w.vnet(*id)).collect())
    }

    pub fn vm_pool(&self) -> Result<Vec<Vm>> {
        self.run("one.vmpool.info", "pool".into(), |w, _| w.vms.keys().map(|id| w.vm(*id)).collect())
    }

    pub fn image_pool(&self) -> Result<Vec<Image>> {
        self.run("one.imagepool.info", "pool".into(), |w, _| w.images.keys().map(|id| w.image(*id)).collect())
    }

    /// `one.<type>.rename(id, name)`: names stay unique per type, as at allocation.
    pub fn rename(&self, kind: Kind, id: i64, name: &str) -> Result<()> {
        self.run(rename_call(kind), format!("{kind} {id}"), |w, _| w.rename(kind, id, name))
    }

    /// `one.<type>.update(id, template, type)`: `replace` is type 0, merge is type 1 (what
    /// [`super::super::OneApi`]'s `*_update` always does).
    pub fn update(&self, kind: Kind, id: i64, template: Template, replace: bool) -> Result<()> {
        self.run(update_call(kind), format!("{kind} {id}"), |w, _| w.update(kind, id, template, replace))
    }

    /// A cluster's name, without logging a call (a host's answer names its cluster).
    pub fn cluster_name(&self, id: i64) -> Option<String> {
        self.lock().world.clusters.get(&id).map(|r| r.name.clone())
    }

    /// A datastore's name, without logging a call (an image's answer names its datastore).
    pub fn datastore_name(&self, id: i64) -> Option<String> {
        self.lock().world.datastores.get(&id).map(|r| r.name.clone())
    }

    /// A host's name, without logging a call.
    pub fn host_name(&self, id: i64) -> Option<String> {
        self.lock().world.hosts.get(&id).map(|r| r.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::OneApi;
    use super::*;

    #[tokio::test]
    async fn pools_list_by_id_and_rename_keeps_names_unique() {
        let one = FakeOne::new();
        let a = one.cluster_allocate("a").await.unwrap();
        let b = one.cluster_allocate("b").await.unwrap();
        let names: Vec<String> = one.cluster_pool().unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["default", "a", "b"]);
        assert_eq!(one.rename(Kind::Cluster, b, "a").unwrap_err().code(), Some(Code::Action));
        one.rename(Kind::Cluster, a, "a").unwrap();
        one.rename(Kind::Cluster, b, "c").unwrap();
        assert_eq!(one.cluster_name(b).as_deref(), Some("c"));
        assert!(one.rename(Kind::Host, 7, "h").unwrap_err().is_no_exists());
        assert_eq!(one.rename(Kind::Cluster, a, "").unwrap_err().code(), Some(Code::Action));
    }

    #[tokio::test]
    async fn update_replaces_or_merges_and_never_touches_address_ranges() {
        let one = FakeOne::new();
        let vnet = one.vn_allocate("NAME = n\nVN_MAD = bridge\nA = 1\nAR = [SIZE = 2]", -1).await.unwrap();
        let t = |text: &str| Template::parse(text).unwrap();
        one.update(Kind::Network, vnet, t("B = 2\nAR = [SIZE = 9]"), false).unwrap();
        let info = one.vn_info(vnet).await.unwrap();
        assert_eq!((info.template.single("A"), info.template.single("B"), info.ars.len()), (Some("1"), Some("2"), 1));
        one.update(Kind::Network, vnet, t("C = 3"), true).unwrap();
        assert_eq!(one.vn_info(vnet).await.unwrap().template, t("C = 3"));
        assert!(one.update(Kind::Datastore, 99, t("C = 3"), true).unwrap_err().is_no_exists());
    }
}
