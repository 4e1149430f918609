//! oned's info documents (`<CLUSTER>`, `<HOST>`, `<VNET>`, … as the XSDs in
//! `share/doc/xsd` shape them) read into the domain structs of [`crate::one::api`]. Elements
//! formwork does not need are ignored; a missing or unreadable required one is an error naming
//! the element and the object's ID.

use super::{Group, User};
use crate::one::api::{AddressRange, Cluster, Datastore, Host, Image, Vm, Vnet};
use crate::one::template::{Attribute, Template};
use crate::one::xmlrpc::Element;

type Parsed<T> = Result<T, String>;

pub fn cluster(e: &Element) -> Parsed<Cluster> {
    expect(e, "CLUSTER")?;
    Ok(Cluster {
        id: int(e, "ID")?,
        name: text(e, "NAME")?,
        hosts: ids(e, "HOSTS")?,
        datastores: ids(e, "DATASTORES")?,
        vnets: ids(e, "VNETS")?,
        template: template(e)?,
    })
}

pub fn host(e: &Element) -> Parsed<Host> {
    expect(e, "HOST")?;
    Ok(Host {
        id: int(e, "ID")?,
        name: text(e, "NAME")?,
        state: int(e, "STATE")?,
        im_mad: text(e, "IM_MAD")?,
        vm_mad: text(e, "VM_MAD")?,
        cluster_id: int(e, "CLUSTER_ID")?,
        vms: ids(e, "VMS")?,
        template: template(e)?,
    })
}

pub fn datastore(e: &Element) -> Parsed<Datastore> {
    expect(e, "DATASTORE")?;
    Ok(Datastore {
        id: int(e, "ID")?,
        name: text(e, "NAME")?,
        ds_type: int(e, "TYPE")?,
        state: int(e, "STATE")?,
        clusters: ids(e, "CLUSTERS")?,
        images: ids(e, "IMAGES")?,
        template: template(e)?,
    })
}

/// A `<VNET>`; in the pool form its ARs carry no LEASES, so `leases` is empty there.
pub fn vnet(e: &Element) -> Parsed<Vnet> {
    expect(e, "VNET")?;
    let ars = required(e, "AR_POOL")?.children_named("AR").map(|ar| address_range(e, ar)).collect::<Parsed<_>>()?;
    Ok(Vnet {
        id: int(e, "ID")?,
        name: text(e, "NAME")?,
        state: int(e, "STATE")?,
        vn_mad: text(e, "VN_MAD")?,
        clusters: ids(e, "CLUSTERS")?,
        used_leases: int(e, "USED_LEASES")?,
        ars,
        template: template(e)?,
    })
}

/// `AR_POOL/AR` of `vnet`; IPAM_MAD and EXTERNAL_IP are the AR's own attributes, present when
/// an IPAM driver made it.
fn address_range(vnet: &Element, ar: &Element) -> Parsed<AddressRange> {
    let in_vnet = |what: String| format!("{what} (in {})", describe(vnet));
    let mut leases = Vec::new();
    for lease in ar.child("LEASES").into_iter().flat_map(|l| l.children_named("LEASE")) {
        // Held leases (VM -1) and leases of virtual routers or child networks are no VMs.
        if lease.child("VM").is_some() {
            let vm = int(lease, "VM").map_err(in_vnet)?;
            if vm >= 0 && !leases.contains(&vm) {
                leases.push(vm);
            }
        }
    }
    Ok(AddressRange {
        ar_id: int(ar, "AR_ID").map_err(in_vnet)?,
        ip: optional(ar, "IP"),
        size: int(ar, "SIZE").map_err(in_vnet)?,
        ipam_mad: optional(ar, "IPAM_MAD"),
        external_ip: optional(ar, "EXTERNAL_IP"),
        leases,
    })
}

pub fn vm(e: &Element) -> Parsed<Vm> {
    expect(e, "VM")?;
    Ok(Vm { id: int(e, "ID")?, name: text(e, "NAME")?, state: int(e, "STATE")? })
}

pub fn image(e: &Element) -> Parsed<Image> {
    expect(e, "IMAGE")?;
    Ok(Image {
        id: int(e, "ID")?,
        name: text(e, "NAME")?,
        state: int(e, "STATE")?,
        datastore_id: int(e, "DATASTORE_ID")?,
    })
}

pub fn user(e: &Element) -> Parsed<User> {
    expect(e, "USER")?;
    Ok(User {
        id: int(e, "ID")?,
        name: text(e, "NAME")?,
        gid: int(e, "GID")?,
        gname: text(e, "GNAME")?,
        groups: ids(e, "GROUPS")?,
    })
}

pub fn group(e: &Element) -> Parsed<Group> {
    expect(e, "GROUP")?;
    Ok(Group { id: int(e, "ID")?, name: text(e, "NAME")?, users: ids(e, "USERS")? })
}

/// The object called `name` in a `<pool>` of `<item>`s; the others are not read at all.
pub fn find_named<'a>(pool: &'a Element, pool_name: &str, item: &str, name: &str) -> Parsed<Option<&'a Element>> {
    expect(pool, pool_name)?;
    for candidate in pool.children.iter().filter(|child| child.name == item) {
        if text(candidate, "NAME")? == name {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

fn expect(e: &Element, name: &str) -> Parsed<()> {
    if e.name == name { Ok(()) } else { Err(format!("expected a <{name}> document, found <{}>", e.name)) }
}

/// `<HOST>` or, when it has an id, `<HOST> 3` (`<AR> 0`), for error messages.
fn describe(e: &Element) -> String {
    match e.child("ID").or_else(|| e.child("AR_ID")) {
        Some(id) => format!("<{}> {}", e.name, id.text.trim()),
        None => format!("<{}>", e.name),
    }
}

fn required<'a>(e: &'a Element, name: &str) -> Parsed<&'a Element> {
    e.child(name).ok_or_else(|| format!("{} lacks <{name}>", describe(e)))
}

fn text(e: &Element, name: &str) -> Parsed<String> {
    Ok(required(e, name)?.text.clone())
}

fn optional(e: &Element, name: &str) -> Option<String> {
    e.child(name).map(|c| c.text.trim().to_owned()).filter(|t| !t.is_empty())
}

fn int(e: &Element, name: &str) -> Parsed<i64> {
    let value = required(e, name)?.text.trim();
    value.parse().map_err(|_| format!("<{name}> of {} holds '{value}', not an integer", describe(e)))
}

/// An `IDS` list (`<HOSTS><ID>1</ID><ID>4</ID></HOSTS>`).
fn ids(e: &Element, name: &str) -> Parsed<Vec<i64>> {
    let list = required(e, name)?;
    list.children_named("ID")
        .map(|id| id.text.trim().parse().map_err(|_| format!("<{name}> of {} holds a bad <ID>", describe(e))))
        .collect()
}

/// `<TEMPLATE>`: a leaf child is a single attribute, a child with children a vector one.
fn template(e: &Element) -> Parsed<Template> {
    let mut template = Template::default();
    for attribute in &required(e, "TEMPLATE")?.children {
        let value = if attribute.children.is_empty() {
            Attribute::Single(attribute.text.clone())
        } else {
            Attribute::Vector(attribute.children.iter().map(|f| (f.name.clone(), f.text.clone())).collect())
        };
        template.push(attribute.name.clone(), value);
    }
    Ok(template)
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
