//! The same operation on any kind of provision object (look up by id or name, delete and wait
//! until gone, list unmanaged children), dispatched to the per-type [`OneApi`] calls, so that
//! registration and teardown are written once for all four kinds.

use super::api::{OneApi, call};
use super::poll;
use super::template::Template;
use super::{ChildKind, Error, Kind, Result, Wait};

/// What registration needs of a live object: its id and template (for the `ONEFORM` tags).
pub(crate) struct Live {
    pub id: i64,
    pub template: Template,
}

/// How errors and logs name an object: `host 3`.
pub(crate) fn object(kind: Kind, id: i64) -> String {
    format!("{kind} {id}")
}

/// The object with this id, or `None` if OpenNebula says it does not exist.
pub(crate) async fn info<A: OneApi>(api: &A, kind: Kind, id: i64) -> Result<Option<Live>> {
    let live = match kind {
        Kind::Cluster => api.cluster_info(id).await.map(|o| (o.id, o.template)),
        Kind::Datastore => api.datastore_info(id).await.map(|o| (o.id, o.template)),
        Kind::Network => api.vn_info(id).await.map(|o| (o.id, o.template)),
        Kind::Host => api.host_info(id).await.map(|o| (o.id, o.template)),
    };
    match live {
        Ok((id, template)) => Ok(Some(Live { id, template })),
        Err(e) if e.is_no_exists() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first object of this kind called `name` (pool info).
pub(crate) async fn find<A: OneApi>(api: &A, kind: Kind, name: &str) -> Result<Option<Live>> {
    let found = match kind {
        Kind::Cluster => api.cluster_by_name(name).await?.map(|o| (o.id, o.template)),
        Kind::Datastore => api.datastore_by_name(name).await?.map(|o| (o.id, o.template)),
        Kind::Network => api.vn_by_name(name).await?.map(|o| (o.id, o.template)),
        Kind::Host => api.host_by_name(name).await?.map(|o| (o.id, o.template)),
    };
    Ok(found.map(|(id, template)| Live { id, template }))
}

/// The type of unmanaged child an object of this kind can hold.
pub(crate) fn child_kind(kind: Kind) -> Option<ChildKind> {
    match kind {
        Kind::Cluster => None,
        Kind::Datastore => Some(ChildKind::Image),
        Kind::Network | Kind::Host => Some(ChildKind::Vm),
    }
}

/// The unmanaged children of an object (host → VMs, vnet → VMs holding leases, datastore →
/// images; a cluster has none of its own), or `None` if the object is gone.
pub(crate) async fn children<A: OneApi>(api: &A, kind: Kind, id: i64) -> Result<Option<Vec<i64>>> {
    let ids = match kind {
        Kind::Cluster => api.cluster_info(id).await.map(|_| Vec::new()),
        Kind::Datastore => api.datastore_info(id).await.map(|d| d.images),
        Kind::Network => api.vn_info(id).await.map(|v| v.leased_vms()),
        Kind::Host => api.host_info(id).await.map(|h| h.vms),
    };
    match ids {
        Ok(ids) => Ok(Some(ids)),
        Err(e) if e.is_no_exists() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes the object and waits until OpenNebula no longer knows it.
pub(crate) async fn delete<A: OneApi>(api: &A, kind: Kind, id: i64, wait: Wait) -> Result<()> {
    let (result, delete_call) = match kind {
        Kind::Cluster => (api.cluster_delete(id).await, call::CLUSTER_DELETE),
        Kind::Datastore => (api.datastore_delete(id).await, call::DATASTORE_DELETE),
        Kind::Network => (api.vn_delete(id).await, call::VN_DELETE),
        Kind::Host => (api.host_delete(id).await, call::HOST_DELETE),
    };
    result?;
    let gone = poll::until(wait, || async move { Ok(info(api, kind, id).await?.is_none().then_some(())) }).await?;
    gone.ok_or_else(|| still_there(delete_call, object(kind, id), wait))
}

/// Deletes an unmanaged child (a VM through `one.vm.recover(id, 3)`) and waits until it is
/// DONE or gone.
pub(crate) async fn delete_child<A: OneApi>(api: &A, kind: ChildKind, id: i64, wait: Wait) -> Result<()> {
    let (delete_call, object) = match kind {
        ChildKind::Vm => (call::VM_RECOVER, format!("vm {id}")),
        ChildKind::Image => (call::IMAGE_DELETE, format!("image {id}")),
    };
    match kind {
        ChildKind::Vm => api.vm_delete(id).await?,
        ChildKind::Image => api.image_delete(id).await?,
    }
    let gone = poll::until(wait, || async move {
        let present = match kind {
            ChildKind::Vm => api.vm_info(id).await.map(|vm| !vm.is_done()),
            ChildKind::Image => api.image_info(id).await.map(|_| true),
        };
        match present {
            Ok(present) => Ok((!present).then_some(())),
            Err(e) if e.is_no_exists() => Ok(Some(())),
            Err(e) => Err(e),
        }
    })
    .await?;
    gone.ok_or_else(|| still_there(delete_call, object, wait))
}

fn still_there(call: &'static str, object: String, wait: Wait) -> Error {
    Error::Timeout {
        call,
        object,
        message: format!("still present {} s after it was deleted", wait.timeout.as_secs_f64()),
    }
}
