//! The OpenNebula a command talks to, chosen once from settings: oned (or onesim) over
//! XML-RPC when an endpoint is configured, otherwise the OpenNebula model of [`FakeOne`]
//! persisted in formwork's data directory. Both answer through the same [`OneApi`].

use super::api::{Cluster, Datastore, Host, HostStatus, Image, OneApi, Vm, Vnet};
use super::{Client, FakeOne, Result};

#[derive(Clone)]
pub enum Endpoint {
    Xmlrpc(Box<Client>),
    Model(FakeOne),
}

/// Forwards one `OneApi` method to whichever endpoint this is.
macro_rules! forward {
    ($( $name:ident ( $( $arg:ident : $ty:ty ),* ) -> $out:ty; )*) => {
        impl OneApi for Endpoint {
            $(
                async fn $name(&self, $( $arg: $ty ),*) -> Result<$out> {
                    match self {
                        Endpoint::Xmlrpc(c) => c.$name($( $arg ),*).await,
                        Endpoint::Model(f) => f.$name($( $arg ),*).await,
                    }
                }
            )*
        }
    };
}

forward! {
    cluster_allocate(name: &str) -> i64;
    cluster_update(id: i64, template: &str) -> ();
    cluster_info(id: i64) -> Cluster;
    cluster_delete(id: i64) -> ();
    cluster_by_name(name: &str) -> Option<Cluster>;
    host_allocate(name: &str, im_mad: &str, vmm_mad: &str, cluster_id: i64) -> i64;
    host_update(id: i64, template: &str) -> ();
    host_status(id: i64, status: HostStatus) -> ();
    host_info(id: i64) -> Host;
    host_delete(id: i64) -> ();
    host_by_name(name: &str) -> Option<Host>;
    datastore_allocate(template: &str, cluster_id: i64) -> i64;
    datastore_info(id: i64) -> Datastore;
    datastore_delete(id: i64) -> ();
    datastore_by_name(name: &str) -> Option<Datastore>;
    vn_allocate(template: &str, cluster_id: i64) -> i64;
    vn_info(id: i64) -> Vnet;
    vn_delete(id: i64) -> ();
    vn_add_ar(id: i64, template: &str) -> ();
    vn_rm_ar(id: i64, ar_id: i64) -> ();
    vn_by_name(name: &str) -> Option<Vnet>;
    vm_info(id: i64) -> Vm;
    vm_delete(id: i64) -> ();
    image_info(id: i64) -> Image;
    image_delete(id: i64) -> ();
    system_version() -> String;
}
