//! Registration of a provision's objects in OpenNebula: the core of CONFIGURING_ONE (spec
//! §2.3, §2.6). Cluster, then datastores, networks and hosts, each named and tagged as OneForm
//! does; an object without an id is adopted by name before anything is allocated, an id that
//! vanished is looked up by name and otherwise re-allocated, a live id is left alone. Then the
//! public IPs on the elastic network, and a refresh of unmanaged children and ARs.
//!
//! Beyond OneForm: a cluster's or host's id is reported (checkpointed) right after its
//! allocation, before the tag update; a cluster or host found without `ONEFORM` tags (an update
//! that failed or never ran) gets them on the next run; two elastic networks are refused before
//! anything is created.

use super::api::OneApi;
use super::dispatch::{self, Live};
use super::event::{Context, Event, report};
use super::objects::{OneObjects, Resource};
use super::{Error, Kind, Result, Wait, children, public_ips, raw};

/// Registers every object of `objects` (which it updates in place) and brings the elastic
/// network to `public_ips` public-IP ARs. `progress` gets the objects after every change and
/// may checkpoint them; an error from it stops registration before the next call.
pub async fn configure<A, P, E>(
    api: &A,
    ctx: &Context,
    objects: &mut OneObjects,
    public_ips: u32,
    wait: Wait,
    progress: &mut P,
) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let elastic = public_ips::elastic_network(objects)?;
    objects.cluster.get_or_insert_with(Resource::default);
    for kind in Kind::CREATION_ORDER {
        for index in 0..objects.of(kind).len() {
            register(api, ctx, objects, kind, index, progress).await?;
        }
    }
    if elastic.is_some() {
        public_ips::sync_public_ips(api, ctx, objects, public_ips, wait, progress).await?;
    }
    children::refresh(api, objects, progress).await?;
    Ok(())
}

/// OneForm's name rule: a missing name is the provision's; every non-host name ends with
/// `(provision_<id>)`, appended once; hosts keep their IP.
pub fn resolve_name(resource: &mut Resource, kind: Kind, ctx: &Context) -> String {
    let suffix = format!("(provision_{})", ctx.provision_id);
    let mut name = resource.name.clone().unwrap_or_else(|| ctx.provision_name.clone());
    let suffixed = match kind {
        Kind::Host => true,
        Kind::Cluster | Kind::Datastore | Kind::Network => name.ends_with(&suffix),
    };
    if !suffixed {
        name = format!("{name} {suffix}");
    }
    resource.name = Some(name.clone());
    name
}

/// Registers the `index`-th object of `kind`: skip, adopt or allocate, then tag.
async fn register<A, P, E>(
    api: &A,
    ctx: &Context,
    objects: &mut OneObjects,
    kind: Kind,
    index: usize,
    progress: &mut P,
) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let resource = &mut objects.of_mut(kind)[index];
    let name = resolve_name(resource, kind, ctx);
    if let Some(id) = resource.id
        && let Some(live) = dispatch::info(api, kind, id).await?
    {
        return ensure_tags(api, ctx, objects, kind, index, Some(&live), progress).await;
    }
    let live = dispatch::find(api, kind, &name).await?;
    let id = match &live {
        Some(live) => live.id,
        None => allocate(api, ctx, objects, kind, index, &name).await?,
    };
    let event = match &live {
        Some(_) => Event::Adopted { kind, id, name },
        None => Event::Created { kind, id, name },
    };
    objects.of_mut(kind)[index].id = Some(id);
    report(progress, objects, event)?;
    ensure_tags(api, ctx, objects, kind, index, live.as_ref(), progress).await
}

/// Allocates the object; datastores and networks carry their tags in the allocate template.
async fn allocate<A: OneApi>(
    api: &A,
    ctx: &Context,
    objects: &OneObjects,
    kind: Kind,
    index: usize,
    name: &str,
) -> Result<i64> {
    let resource = &objects.of(kind)[index];
    let tags = raw::tags(ctx, resource.resource_id.as_ref());
    let template = resource.template.as_ref();
    match kind {
        Kind::Cluster => api.cluster_allocate(name).await,
        Kind::Datastore => {
            let text = raw::datastore_template(template, name, tags);
            api.datastore_allocate(&text, cluster_id(objects)?).await
        }
        Kind::Network => {
            let text = raw::network_template(template, name, tags);
            api.vn_allocate(&text, cluster_id(objects)?).await
        }
        Kind::Host => {
            let im_mad = resource.template_str("im_mad").unwrap_or("kvm");
            let vmm_mad = resource.template_str("vmm_mad").unwrap_or("kvm");
            api.host_allocate(name, im_mad, vmm_mad, cluster_id(objects)?).await
        }
    }
}

fn cluster_id(objects: &OneObjects) -> Result<i64> {
    objects.cluster_id().ok_or_else(|| Error::MissingId {
        kind: Kind::Cluster,
        name: objects.cluster.as_ref().map_or("?", Resource::display_name).to_string(),
    })
}

/// Writes the `ONEFORM` tags of a cluster or host (`update`, append) unless the live object
/// already has them; `live` is `None` for an object allocated just now.
async fn ensure_tags<A, P, E>(
    api: &A,
    ctx: &Context,
    objects: &OneObjects,
    kind: Kind,
    index: usize,
    live: Option<&Live>,
    progress: &mut P,
) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if live.is_some_and(|l| l.template.vector("ONEFORM").is_some()) {
        return Ok(());
    }
    let resource = &objects.of(kind)[index];
    let Some(id) = resource.id else {
        return Ok(());
    };
    let text = raw::to_raw(&raw::tags(ctx, resource.resource_id.as_ref()));
    match kind {
        Kind::Cluster => api.cluster_update(id, &text).await?,
        Kind::Host => api.host_update(id, &text).await?,
        Kind::Datastore | Kind::Network => return Ok(()),
    }
    match live {
        Some(_) => {
            let name = resource.display_name().to_string();
            report(progress, objects, Event::Tagged { kind, id, name })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
