//! [`OneApi`] for [`FakeOne`]: each call is logged, may meet an injected fault, and is then
//! applied to the fake's world at once (deletions included, so teardown's waits end on their
//! first look).

use super::super::Result;
use super::super::api::{Cluster, Datastore, Host, HostStatus, Image, OneApi, Vm, Vnet, call};
use super::FakeOne;

fn named(kind: &str, name: &str) -> String {
    format!("{kind} '{name}'")
}

fn id(kind: &str, id: i64) -> String {
    format!("{kind} {id}")
}

/// The name a template gives (NAME), for the call log, before the fake parses it for real.
fn template_name(kind: &str, template: &str) -> String {
    let name = super::super::Template::parse(template).ok().and_then(|t| t.single("NAME").map(str::to_string));
    named(kind, name.as_deref().unwrap_or("?"))
}

impl OneApi for FakeOne {
    async fn cluster_allocate(&self, name: &str) -> Result<i64> {
        self.run(call::CLUSTER_ALLOCATE, named("cluster", name), |w, n| w.cluster_allocate(&mut n.cluster, name))
    }

    async fn cluster_update(&self, cluster: i64, template: &str) -> Result<()> {
        self.run(call::CLUSTER_UPDATE, id("cluster", cluster), |w, _| w.cluster_update(cluster, template))
    }

    async fn cluster_info(&self, cluster: i64) -> Result<Cluster> {
        self.run(call::CLUSTER_INFO, id("cluster", cluster), |w, _| w.cluster(cluster))
    }

    async fn cluster_delete(&self, cluster: i64) -> Result<()> {
        self.run(call::CLUSTER_DELETE, id("cluster", cluster), |w, _| w.cluster_delete(cluster))
    }

    async fn cluster_by_name(&self, name: &str) -> Result<Option<Cluster>> {
        self.run(call::CLUSTER_POOL, named("cluster", name), |w, _| {
            let found = w.clusters.iter().find(|(_, r)| r.name == name);
            found.map(|(id, _)| w.cluster(*id)).transpose()
        })
    }

    async fn host_allocate(&self, name: &str, im_mad: &str, vmm_mad: &str, cluster_id: i64) -> Result<i64> {
        self.run(call::HOST_ALLOCATE, named("host", name), |w, n| {
            w.host_allocate(&mut n.host, name, im_mad, vmm_mad, cluster_id)
        })
    }

    async fn host_update(&self, host: i64, template: &str) -> Result<()> {
        self.run(call::HOST_UPDATE, id("host", host), |w, _| w.host_update(host, template))
    }

    async fn host_status(&self, host: i64, status: HostStatus) -> Result<()> {
        self.run(call::HOST_STATUS, id("host", host), |w, _| w.host_status(host, status))
    }

    async fn host_info(&self, host: i64) -> Result<Host> {
        self.run(call::HOST_INFO, id("host", host), |w, _| w.host(host))
    }

    async fn host_delete(&self, host: i64) -> Result<()> {
        self.run(call::HOST_DELETE, id("host", host), |w, _| w.host_delete(host))
    }

    async fn host_by_name(&self, name: &str) -> Result<Option<Host>> {
        self.run(call::HOST_POOL, named("host", name), |w, _| {
            let found = w.hosts.iter().find(|(_, r)| r.name == name);
            found.map(|(id, _)| w.host(*id)).transpose()
        })
    }

    async fn datastore_allocate(&self, template: &str, cluster_id: i64) -> Result<i64> {
        let object = template_name("datastore", template);
        self.run(call::DATASTORE_ALLOCATE, object, |w, n| w.datastore_allocate(&mut n.datastore, template, cluster_id))
    }

    async fn datastore_info(&self, ds: i64) -> Result<Datastore> {
        self.run(call::DATASTORE_INFO, id("datastore", ds), |w, _| w.datastore(ds))
    }

    async fn datastore_delete(&self, ds: i64) -> Result<()> {
        self.run(call::DATASTORE_DELETE, id("datastore", ds), |w, _| w.datastore_delete(ds))
    }

    async fn datastore_by_name(&self, name: &str) -> Result<Option<Datastore>> {
        self.run(call::DATASTORE_POOL, named("datastore", name), |w, _| {
            let found = w.datastores.iter().find(|(_, r)| r.name == name);
            found.map(|(id, _)| w.datastore(*id)).transpose()
        })
    }

    async fn vn_allocate(&self, template: &str, cluster_id: i64) -> Result<i64> {
        let object = template_name("network", template);
        self.run(call::VN_ALLOCATE, object, |w, n| w.vn_allocate(&mut n.vnet, template, cluster_id))
    }

    async fn vn_info(&self, vnet: i64) -> Result<Vnet> {
        self.run(call::VN_INFO, id("network", vnet), |w, _| w.vnet(vnet))
    }

    async fn vn_delete(&self, vnet: i64) -> Result<()> {
        self.run(call::VN_DELETE, id("network", vnet), |w, _| w.vn_delete(vnet))
    }

    async fn vn_add_ar(&self, vnet: i64, template: &str) -> Result<()> {
        self.run(call::VN_ADD_AR, id("network", vnet), |w, _| w.vn_add_ar(vnet, template))
    }

    async fn vn_rm_ar(&self, vnet: i64, ar_id: i64) -> Result<()> {
        let object = format!("network {vnet} AR {ar_id}");
        self.run(call::VN_RM_AR, object, |w, _| w.vn_rm_ar(vnet, ar_id))
    }

    async fn vn_by_name(&self, name: &str) -> Result<Option<Vnet>> {
        self.run(call::VN_POOL, named("network", name), |w, _| {
            let found = w.vnets.iter().find(|(_, r)| r.name == name);
            found.map(|(id, _)| w.vnet(*id)).transpose()
        })
    }

    async fn vm_info(&self, vm: i64) -> Result<Vm> {
        self.run(call::VM_INFO, id("vm", vm), |w, _| w.vm(vm))
    }

    async fn vm_delete(&self, vm: i64) -> Result<()> {
        self.run(call::VM_RECOVER, id("vm", vm), |w, _| w.vm_delete(vm))
    }

    async fn image_info(&self, image: i64) -> Result<Image> {
        self.run(call::IMAGE_INFO, id("image", image), |w, _| w.image(image))
    }

    async fn image_delete(&self, image: i64) -> Result<()> {
        self.run(call::IMAGE_DELETE, id("image", image), |w, _| w.image_delete(image))
    }

    /// The model is of OpenNebula 7.2, OneForm's first release; not a recorded call.
    async fn system_version(&self) -> Result<String> {
        Ok(MODEL_VERSION.to_owned())
    }
}

/// The OpenNebula version the model answers `one.system.version` with.
pub const MODEL_VERSION: &str = "7.2.0";
