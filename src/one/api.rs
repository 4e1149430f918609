//! The OpenNebula calls the lifecycle makes (spec §5.2), as the [`OneApi`] trait, and the
//! domain structs they return. Implementations: the XML-RPC client (which maps oned's XML onto
//! these structs) and [`super::FakeOne`]. Callers take `A: OneApi` generically; every future is
//! `Send`, so a stage can run on any tokio worker.

use std::future::Future;

use super::Result;
use super::template::Template;

/// The XML-RPC method names, used in errors and in the fake's call log.
pub mod call {
    pub const CLUSTER_ALLOCATE: &str = "one.cluster.allocate";
    pub const CLUSTER_UPDATE: &str = "one.cluster.update";
    pub const CLUSTER_INFO: &str = "one.cluster.info";
    pub const CLUSTER_DELETE: &str = "one.cluster.delete";
    pub const CLUSTER_POOL: &str = "one.clusterpool.info";
    pub const HOST_ALLOCATE: &str = "one.host.allocate";
    pub const HOST_UPDATE: &str = "one.host.update";
    pub const HOST_STATUS: &str = "one.host.status";
    pub const HOST_INFO: &str = "one.host.info";
    pub const HOST_DELETE: &str = "one.host.delete";
    pub const HOST_POOL: &str = "one.hostpool.info";
    pub const DATASTORE_ALLOCATE: &str = "one.datastore.allocate";
    pub const DATASTORE_INFO: &str = "one.datastore.info";
    pub const DATASTORE_DELETE: &str = "one.datastore.delete";
    pub const DATASTORE_POOL: &str = "one.datastorepool.info";
    pub const VN_ALLOCATE: &str = "one.vn.allocate";
    pub const VN_INFO: &str = "one.vn.info";
    pub const VN_DELETE: &str = "one.vn.delete";
    pub const VN_ADD_AR: &str = "one.vn.add_ar";
    pub const VN_RM_AR: &str = "one.vn.rm_ar";
    pub const VN_POOL: &str = "one.vnpool.info";
    pub const VM_INFO: &str = "one.vm.info";
    pub const VM_RECOVER: &str = "one.vm.recover";
    pub const IMAGE_INFO: &str = "one.image.info";
    pub const IMAGE_DELETE: &str = "one.image.delete";
}

/// What the lifecycle needs from oned. Templates go in as OpenNebula template text (see
/// [`super::raw`]); `*_update` always appends (merge, update type 1); `*_by_name` reads the
/// pool and returns the first object with exactly that name.
pub trait OneApi: Send + Sync {
    /// `one.cluster.allocate(name)` → the new id.
    fn cluster_allocate(&self, name: &str) -> impl Future<Output = Result<i64>> + Send;
    fn cluster_update(&self, id: i64, template: &str) -> impl Future<Output = Result<()>> + Send;
    fn cluster_info(&self, id: i64) -> impl Future<Output = Result<Cluster>> + Send;
    /// Fails with an ACTION error while the cluster holds hosts, datastores or vnets.
    fn cluster_delete(&self, id: i64) -> impl Future<Output = Result<()>> + Send;
    fn cluster_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Cluster>>> + Send;

    /// `one.host.allocate(hostname, im_mad, vmm_mad, cluster_id)` → the new id.
    fn host_allocate(
        &self,
        name: &str,
        im_mad: &str,
        vmm_mad: &str,
        cluster_id: i64,
    ) -> impl Future<Output = Result<i64>> + Send;
    fn host_update(&self, id: i64, template: &str) -> impl Future<Output = Result<()>> + Send;
    fn host_status(&self, id: i64, status: HostStatus) -> impl Future<Output = Result<()>> + Send;
    fn host_info(&self, id: i64) -> impl Future<Output = Result<Host>> + Send;
    /// Fails with an ACTION error while VMs run on the host.
    fn host_delete(&self, id: i64) -> impl Future<Output = Result<()>> + Send;
    fn host_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Host>>> + Send;

    /// `one.datastore.allocate(template, cluster_id)`; the template carries NAME.
    fn datastore_allocate(&self, template: &str, cluster_id: i64) -> impl Future<Output = Result<i64>> + Send;
    fn datastore_info(&self, id: i64) -> impl Future<Output = Result<Datastore>> + Send;
    fn datastore_delete(&self, id: i64) -> impl Future<Output = Result<()>> + Send;
    fn datastore_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Datastore>>> + Send;

    /// `one.vn.allocate(template, cluster_id)`; the template carries NAME and the ARs.
    fn vn_allocate(&self, template: &str, cluster_id: i64) -> impl Future<Output = Result<i64>> + Send;
    fn vn_info(&self, id: i64) -> impl Future<Output = Result<Vnet>> + Send;
    /// Fails with an ACTION error while leases are in use.
    fn vn_delete(&self, id: i64) -> impl Future<Output = Result<()>> + Send;
    /// `one.vn.add_ar(id, "AR = [ ... ]")`; the AR appears in [`Vnet::ars`] with a new AR_ID.
    fn vn_add_ar(&self, id: i64, template: &str) -> impl Future<Output = Result<()>> + Send;
    fn vn_rm_ar(&self, id: i64, ar_id: i64) -> impl Future<Output = Result<()>> + Send;
    fn vn_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Vnet>>> + Send;

    fn vm_info(&self, id: i64) -> impl Future<Output = Result<Vm>> + Send;
    /// `one.vm.recover(id, 3)`: delete the VM whatever its state; it ends in DONE.
    fn vm_delete(&self, id: i64) -> impl Future<Output = Result<()>> + Send;

    fn image_info(&self, id: i64) -> impl Future<Output = Result<Image>> + Send;
    fn image_delete(&self, id: i64) -> impl Future<Output = Result<()>> + Send;

    /// `one.system.version`: what templates and playbooks see as OpenNebula's version.
    fn system_version(&self) -> impl Future<Output = Result<String>> + Send;
}

/// `one.host.status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    Enabled,
    Disabled,
    Offline,
}

impl HostStatus {
    pub fn number(self) -> i64 {
        match self {
            HostStatus::Enabled => 0,
            HostStatus::Disabled => 1,
            HostStatus::Offline => 2,
        }
    }
}

/// `<CLUSTER>`: its member ids are what keeps `one.cluster.delete` from succeeding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub id: i64,
    pub name: String,
    pub hosts: Vec<i64>,
    pub datastores: Vec<i64>,
    pub vnets: Vec<i64>,
    pub template: Template,
}

impl Cluster {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.datastores.is_empty() && self.vnets.is_empty()
    }
}

/// `<HOST>`. `state` is host.xsd's STATE (0 INIT … 4 DISABLED … 8 OFFLINE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub id: i64,
    pub name: String,
    pub state: i64,
    pub im_mad: String,
    pub vm_mad: String,
    pub cluster_id: i64,
    /// `HOST/VMS/ID`: the VMs on the host (unmanaged children of a provision host).
    pub vms: Vec<i64>,
    pub template: Template,
}

impl Host {
    pub const INIT: i64 = 0;
    pub const MONITORED: i64 = 2;
    pub const DISABLED: i64 = 4;
    pub const OFFLINE: i64 = 8;
}

/// `<DATASTORE>`. `ds_type` is TYPE: 0 image, 1 system, 2 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datastore {
    pub id: i64,
    pub name: String,
    pub ds_type: i64,
    pub state: i64,
    pub clusters: Vec<i64>,
    /// `DATASTORE/IMAGES/ID`: unmanaged children of a provision datastore.
    pub images: Vec<i64>,
    pub template: Template,
}

/// `<VNET>`. `state` is 1 when READY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vnet {
    pub id: i64,
    pub name: String,
    pub state: i64,
    pub vn_mad: String,
    pub clusters: Vec<i64>,
    pub used_leases: i64,
    pub ars: Vec<AddressRange>,
    pub template: Template,
}

impl Vnet {
    pub const READY: i64 = 1;

    pub fn is_ready(&self) -> bool {
        self.state == Vnet::READY
    }

    /// The VMs holding leases, each once, in AR order (unmanaged children of a provision vnet).
    pub fn leased_vms(&self) -> Vec<i64> {
        let mut vms = Vec::new();
        for vm in self.ars.iter().flat_map(|ar| &ar.leases) {
            if !vms.contains(vm) {
                vms.push(*vm);
            }
        }
        vms
    }
}

/// `AR_POOL/AR`. `ipam_mad` and `external_ip` are set by IPAM drivers (public IPs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddressRange {
    pub ar_id: i64,
    pub ip: Option<String>,
    pub size: i64,
    pub ipam_mad: Option<String>,
    pub external_ip: Option<String>,
    /// `LEASES/LEASE/VM` of leases held by VMs (held leases, VM = -1, are left out).
    pub leases: Vec<i64>,
}

/// `<VM>`: only what teardown needs. `state` 6 is DONE, where a deleted VM ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub id: i64,
    pub name: String,
    pub state: i64,
}

impl Vm {
    pub const DONE: i64 = 6;

    pub fn is_done(&self) -> bool {
        self.state == Vm::DONE
    }
}

/// `<IMAGE>`: only what teardown needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: i64,
    pub name: String,
    pub state: i64,
    pub datastore_id: i64,
}
