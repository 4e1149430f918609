//! VMs and images, the unmanaged children that keep hosts, networks and datastores from being
//! deleted: what teardown needs (info, `one.vm.recover(id, 3)`, `one.image.delete`), their
//! pools, and what makes them (`one.vm.allocate` + `one.vm.deploy`, `one.image.allocate`).

use crate::one::{Code, OneApi};

use super::answer::{self, Answer};
use super::methods::{Ctx, Owned, Selection, parse_error};
use super::params::Params;
use super::render;
use super::xml::{Xml, parse_template};

/// VMs and images: only what teardown needs (info, delete) and their pools.
pub async fn call(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    let mut x = Xml::default();
    match ctx.method {
        "one.vmpool.info" | "one.imagepool.info" => return child_pool(ctx, p).await,
        "one.vm.allocate" | "one.vm.deploy" | "one.image.allocate" => return place(ctx, p),
        "one.vm.info" => {
            let id = p.int(1)?;
            p.opt_boolean(2)?;
            render::vm(&mut x, &ctx.one.vm_info(id).await.map_err(ctx.fail("virtual machine", id))?);
        }
        "one.image.info" => {
            let id = p.int(1)?;
            p.opt_boolean(2)?;
            let image = ctx.one.image_info(id).await.map_err(ctx.fail("image", id))?;
            render::image(&mut x, &image, &ctx.one.datastore_name(image.datastore_id).unwrap_or_default());
        }
        "one.vm.recover" => {
            let (id, operation) = (p.int(1)?, p.int(2)?);
            if operation != 3 {
                let detail = format!("Recover operation {operation} is not simulated: onesim deletes VMs (3) only.");
                return Err(ctx.refuse(Code::Action, "", id, &detail));
            }
            ctx.one.vm_delete(id).await.map_err(ctx.fail("virtual machine", id))?;
            return answer::id(id);
        }
        _ => {
            let id = p.int(1)?;
            p.opt_boolean(2)?;
            ctx.one.image_delete(id).await.map_err(ctx.fail("image", id))?;
            return answer::id(id);
        }
    }
    answer::xml(x.finish())
}

/// `one.vm.allocate(template, hold)` (NICs name their NETWORK_ID), `one.vm.deploy(id, host_id,
/// …)` and `one.image.allocate(template, datastore_id, …)`: how clients make the unmanaged
/// children that keep hosts, networks and datastores from being deleted.
fn place(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    if ctx.method == "one.vm.deploy" {
        let (id, host) = (p.int(1)?, p.int(2)?);
        ctx.one.vm_deploy(id, host).map_err(ctx.fail("virtual machine", id))?;
        return answer::id(id);
    }
    let template = parse_template(p.string(1)?).map_err(|e| ctx.refuse(Code::Internal, "", -1, &parse_error(&e)))?;
    if ctx.method == "one.image.allocate" {
        let datastore = p.int(2)?;
        let Some(name) = template.single("NAME").filter(|n| !n.is_empty()) else {
            return Err(ctx.refuse(Code::Allocate, "image", -1, "No NAME in template."));
        };
        return answer::id(ctx.one.image_allocate(name, datastore).map_err(ctx.fail("image", -1))?);
    }
    let hold = p.opt_boolean(2)?.unwrap_or(false);
    let mut vnets = Vec::new();
    for nic in template.vectors("NIC") {
        let network = crate::one::template::field(nic, "NETWORK_ID").and_then(|n| n.trim().parse().ok());
        let Some(network) = network else {
            return Err(ctx.refuse(Code::Allocate, "virtual machine", -1, "A NIC needs NETWORK_ID in onesim."));
        };
        vnets.push(network);
    }
    let name = template.single("NAME").filter(|n| !n.is_empty());
    answer::id(ctx.one.vm_allocate(name, &vnets, hold).map_err(ctx.fail("virtual machine", -1))?)
}

/// `one.vmpool.info(filter, start, end, state)` (state -2 any, -1 any but DONE) and
/// `one.imagepool.info(filter, start, end)`.
async fn child_pool(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    let selection = Selection::read(ctx, p)?;
    let mut x = Xml::default();
    if ctx.method == "one.vmpool.info" {
        let state = p.int(4)?;
        if !(-2..=12).contains(&state) {
            return Err(ctx.refuse(Code::XmlRpcApi, "", -1, "Incorrect filter_flag, state"));
        }
        let vms = ctx.one.vm_pool().map_err(ctx.fail("virtual machine", -1))?;
        let vms = vms.into_iter().filter(|vm| state == -2 || (state == -1 && !vm.is_done()) || vm.state == state);
        x.open("VM_POOL");
        selection
            .apply(ctx.user, vms.collect(), |vm| Owned::listed_to_all(vm.id))
            .iter()
            .for_each(|vm| render::vm(&mut x, vm));
        x.close("VM_POOL");
    } else {
        let images = ctx.one.image_pool().map_err(ctx.fail("image", -1))?;
        x.open("IMAGE_POOL");
        for image in selection.apply(ctx.user, images, |i| Owned::listed_to_all(i.id)) {
            render::image(&mut x, &image, &ctx.one.datastore_name(image.datastore_id).unwrap_or_default());
        }
        x.close("IMAGE_POOL");
    }
    answer::xml(x.finish())
}
