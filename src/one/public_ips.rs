//! Public IPs (spec §2.3, §2.7 items 4–5): size-1 address ranges on the provision's elastic
//! network (the one whose template says `vn_mad: elastic`), each allocated by the driver's IPAM
//! (`IPAM_MAD = <driver>`, `PROVISION_ID = <id>`). The stored network's `template.ar` mirrors the
//! live vnet as `[{ipam, ar_id, ip}]`.
//!
//! The count is taken from the live vnet, not from the stored list, so a crash between
//! `add_ar` and the checkpoint never adds an IP twice; a lower target removes the newest ARs.

use serde_json::{Map, Value, json};

use super::api::{AddressRange, OneApi, Vnet, call};
use super::event::{Context, Event, report};
use super::objects::OneObjects;
use super::{Error, Kind, Result, Wait, dispatch, poll, raw};

/// The index of the elastic network, if any; several are refused.
pub fn elastic_network(objects: &OneObjects) -> Result<Option<usize>> {
    match objects.elastic_networks().as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        several => Err(Error::MultipleElastic {
            names: several.iter().map(|&i| objects.networks[i].display_name().to_string()).collect(),
        }),
    }
}

/// Adds or removes public-IP ARs until the elastic network holds exactly `target`, reporting
/// each change; then mirrors the live ARs into the stored template.
pub async fn sync_public_ips<A, P, E>(
    api: &A,
    ctx: &Context,
    objects: &mut OneObjects,
    target: u32,
    wait: Wait,
    progress: &mut P,
) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let index = elastic_network(objects)?.ok_or(Error::NoElasticNetwork)?;
    let network = network_id(objects, index)?;
    let mut vnet = wait_ready(api, network, wait).await?;
    let target = target as usize;
    while vnet.ars.len() < target {
        let ar;
        (vnet, ar) = add_one(api, ctx, &vnet, wait).await?;
        write_ars(objects, index, &vnet);
        let (ar_id, ipam, ip) = (ar.ar_id, ctx.driver.clone(), ar.external_ip.or(ar.ip));
        report(progress, objects, Event::ArAdded { network, ar_id, ipam, ip })?;
    }
    // The newest first: the highest AR_ID (there is one: more ARs than the target).
    while vnet.ars.len() > target {
        let Some(ar_id) = vnet.ars.iter().map(|ar| ar.ar_id).max() else {
            break;
        };
        vnet = remove_ar(api, network, ar_id).await?;
        write_ars(objects, index, &vnet);
        report(progress, objects, Event::ArRemoved { network, ar_id })?;
    }
    write_ars(objects, index, &vnet);
    Ok(())
}

/// Removes one public IP (`POST /provisions/:id/remove-ip {ar_id}`); the caller lowers
/// `oneform_public_ips`.
pub async fn remove_public_ip<A, P, E>(api: &A, objects: &mut OneObjects, ar_id: i64, progress: &mut P) -> Result<()>
where
    A: OneApi,
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let index = elastic_network(objects)?.ok_or(Error::NoElasticNetwork)?;
    let network = network_id(objects, index)?;
    let vnet = api.vn_info(network).await?;
    if !vnet.ars.iter().any(|ar| ar.ar_id == ar_id) {
        return Err(Error::UnknownAr { network, ar_id });
    }
    let vnet = remove_ar(api, network, ar_id).await?;
    write_ars(objects, index, &vnet);
    report(progress, objects, Event::ArRemoved { network, ar_id })
}

/// OneForm's `update_ars`: the stored elastic network's `template.ar` from the live vnet.
/// Nothing to do without an elastic network or before it has an id.
pub async fn refresh_ars<A: OneApi>(api: &A, objects: &mut OneObjects) -> Result<()> {
    let Some(index) = elastic_network(objects)? else {
        return Ok(());
    };
    let Some(network) = objects.networks[index].id else {
        return Ok(());
    };
    let vnet = api.vn_info(network).await?;
    write_ars(objects, index, &vnet);
    Ok(())
}

fn network_id(objects: &OneObjects, index: usize) -> Result<i64> {
    let network = &objects.networks[index];
    network.id.ok_or_else(|| Error::MissingId { kind: Kind::Network, name: network.display_name().to_string() })
}

fn write_ars(objects: &mut OneObjects, index: usize, vnet: &Vnet) {
    let ars = vnet.ars.iter().map(|ar| json!({"ipam": ar.ipam_mad, "ar_id": ar.ar_id, "ip": ar.external_ip})).collect();
    let template = objects.networks[index].template.get_or_insert_with(Map::new);
    template.insert("ar".into(), Value::Array(ars));
}

async fn wait_ready<A: OneApi>(api: &A, network: i64, wait: Wait) -> Result<Vnet> {
    let ready = poll::until(wait, || async move {
        let vnet = api.vn_info(network).await?;
        Ok(vnet.is_ready().then_some(vnet))
    })
    .await?;
    ready.ok_or_else(|| Error::Timeout {
        call: call::VN_INFO,
        object: dispatch::object(Kind::Network, network),
        message: format!("not READY within {} s", wait.timeout.as_secs_f64()),
    })
}

/// Adds one public-IP AR and waits until it shows up with a new AR_ID.
async fn add_one<A: OneApi>(api: &A, ctx: &Context, vnet: &Vnet, wait: Wait) -> Result<(Vnet, AddressRange)> {
    let network = vnet.id;
    let before: Vec<i64> = vnet.ars.iter().map(|ar| ar.ar_id).collect();
    let template = raw::public_ip_ar(&ctx.driver, ctx.provision_id);
    api.vn_add_ar(network, &template).await?;
    let before = &before;
    let added = poll::until(wait, || async move {
        let vnet = api.vn_info(network).await?;
        let new = vnet.ars.iter().find(|ar| !before.contains(&ar.ar_id)).cloned();
        Ok(new.map(|ar| (vnet, ar)))
    })
    .await?;
    added.ok_or_else(|| Error::Timeout {
        call: call::VN_ADD_AR,
        object: dispatch::object(Kind::Network, network),
        message: format!("no new address range appeared within {} s", wait.timeout.as_secs_f64()),
    })
}

async fn remove_ar<A: OneApi>(api: &A, network: i64, ar_id: i64) -> Result<Vnet> {
    api.vn_rm_ar(network, ar_id).await?;
    api.vn_info(network).await
}

#[cfg(test)]
mod tests;
