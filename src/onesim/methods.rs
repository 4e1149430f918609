//! The XML-RPC methods onesim answers and their signatures (oned's `RequestManager*`): each
//! reads its parameters as oned does, asks [`FakeOne`] (whose rules are OpenNebula's) and
//! answers with the new id, the object's XML or oned's failure. VMs and images are in
//! `children.rs`; users and groups in `users.rs`; documents and the system calls in
//! `documents.rs`.

use crate::one::{Code, FakeOne, Kind, OneApi};

use super::answer::{self, Answer, Refusal};
use super::params::Params;
use super::render;
use super::sim::User;
use super::xml::{Xml, parse_template, template_text};
use super::{children, documents, users};

/// Who is calling what, for a method.
pub struct Ctx<'a> {
    pub one: &'a FakeOne,
    pub user: &'a User,
    pub users: &'a [User],
    pub method: &'a str,
}

impl Ctx<'_> {
    /// Maps a fake's error to oned's failure for an `object` (oned's type name) of id `id`.
    pub fn fail(&self, object: &'static str, id: i64) -> impl Fn(crate::one::Error) -> Refusal + '_ {
        move |e| Refusal::from_error(self.method, object, id, &e)
    }

    pub fn refuse(&self, code: Code, object: &str, id: i64, detail: &str) -> Refusal {
        Refusal::one(self.method, code, object, id, detail)
    }
}

const OBJECT_METHODS: &[&str] = &[
    "one.cluster.allocate",
    "one.cluster.update",
    "one.cluster.rename",
    "one.cluster.info",
    "one.cluster.delete",
    "one.clusterpool.info",
    "one.host.allocate",
    "one.host.update",
    "one.host.rename",
    "one.host.status",
    "one.host.info",
    "one.host.delete",
    "one.hostpool.info",
    "one.datastore.allocate",
    "one.datastore.update",
    "one.datastore.rename",
    "one.datastore.info",
    "one.datastore.delete",
    "one.datastorepool.info",
    "one.vn.allocate",
    "one.vn.update",
    "one.vn.rename",
    "one.vn.info",
    "one.vn.delete",
    "one.vn.add_ar",
    "one.vn.rm_ar",
    "one.vnpool.info",
    "one.vm.allocate",
    "one.vm.deploy",
    "one.vm.info",
    "one.vm.recover",
    "one.vmpool.info",
    "one.image.allocate",
    "one.image.info",
    "one.image.delete",
    "one.imagepool.info",
];

pub fn is_known(method: &str) -> bool {
    OBJECT_METHODS.contains(&method) || documents::METHODS.contains(&method) || users::METHODS.contains(&method)
}

/// Runs a known method.
pub async fn call(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    let (object, verb) = ctx.method.strip_prefix("one.").and_then(|m| m.split_once('.')).unwrap_or(("", ""));
    let kind = match object {
        "cluster" | "clusterpool" => Kind::Cluster,
        "host" | "hostpool" => Kind::Host,
        "datastore" | "datastorepool" => Kind::Datastore,
        "vn" | "vnpool" => Kind::Network,
        "vm" | "vmpool" | "image" | "imagepool" => return children::call(ctx, p).await,
        "user" | "group" => return users::call(ctx, p),
        _ => return documents::call(ctx, p).await,
    };
    match (object.ends_with("pool"), verb) {
        (true, _) => pool(ctx, p, kind).await,
        (false, "allocate") => allocate(ctx, p, kind).await,
        (false, "update") => update(ctx, p, kind),
        (false, "rename") => {
            let id = p.int(1)?;
            ctx.one.rename(kind, id, p.string(2)?).map_err(ctx.fail(what(kind), id))?;
            answer::id(id)
        }
        (false, "info") => info(ctx, p, kind).await,
        (false, "delete") => delete(ctx, p, kind).await,
        (false, _) => vnet_or_host_action(ctx, p).await,
    }
}

/// oned's name for each type, in messages.
pub fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Cluster => "cluster",
        Kind::Host => "host",
        Kind::Datastore => "datastore",
        Kind::Network => "virtual network",
    }
}

async fn allocate(ctx: &Ctx<'_>, p: &Params<'_>, kind: Kind) -> Answer {
    let fail = ctx.fail(what(kind), -1);
    let id = match kind {
        Kind::Cluster => ctx.one.cluster_allocate(p.string(1)?).await,
        Kind::Host => {
            let (name, im, vmm, cluster) = (p.string(1)?, p.string(2)?, p.string(3)?, p.int(4)?);
            ctx.one.host_allocate(name, im, vmm, cluster).await
        }
        Kind::Datastore | Kind::Network => {
            let (text, cluster) = (p.string(1)?, p.int(2)?);
            let template = parse_template(text).map_err(|e| ctx.refuse(Code::Internal, "", -1, &parse_error(&e)))?;
            let text = template_text(&template);
            match kind {
                Kind::Datastore => ctx.one.datastore_allocate(&text, cluster).await,
                Kind::Cluster | Kind::Host | Kind::Network => ctx.one.vn_allocate(&text, cluster).await,
            }
        }
    };
    answer::id(id.map_err(fail)?)
}

pub fn parse_error(detail: &str) -> String {
    format!("Parse error: {detail}")
}

/// `update(id, template, type)`: type 0 replaces the template (oned's default), 1 merges.
fn update(ctx: &Ctx<'_>, p: &Params<'_>, kind: Kind) -> Answer {
    let (id, text) = (p.int(1)?, p.string(2)?);
    let replace = match p.opt_int(3)?.unwrap_or(0) {
        0 => true,
        1 => false,
        other => return Err(ctx.refuse(Code::XmlRpcApi, "", id, &format!("Wrong update type {other}: use 0 or 1"))),
    };
    let template = parse_template(text).map_err(|e| ctx.refuse(Code::Internal, "", id, &parse_error(&e)))?;
    ctx.one.update(kind, id, template, replace).map_err(ctx.fail(what(kind), id))?;
    answer::id(id)
}

async fn info(ctx: &Ctx<'_>, p: &Params<'_>, kind: Kind) -> Answer {
    let id = p.int(1)?;
    p.opt_boolean(2)?;
    let (one, fail, mut x) = (ctx.one, ctx.fail(what(kind), id), Xml::default());
    match kind {
        Kind::Cluster => render::cluster(&mut x, &one.cluster_info(id).await.map_err(fail)?),
        Kind::Host => {
            let host = one.host_info(id).await.map_err(fail)?;
            render::host(&mut x, &host, &one.cluster_name(host.cluster_id).unwrap_or_default());
        }
        Kind::Datastore => render::datastore(&mut x, &one.datastore_info(id).await.map_err(fail)?),
        Kind::Network => render::vnet(&mut x, &one.vn_info(id).await.map_err(fail)?, true),
    }
    answer::xml(x.finish())
}

async fn delete(ctx: &Ctx<'_>, p: &Params<'_>, kind: Kind) -> Answer {
    let id = p.int(1)?;
    let deleted = match kind {
        Kind::Cluster => ctx.one.cluster_delete(id).await,
        Kind::Host => ctx.one.host_delete(id).await,
        Kind::Datastore => ctx.one.datastore_delete(id).await,
        Kind::Network => ctx.one.vn_delete(id).await,
    };
    deleted.map_err(ctx.fail(what(kind), id))?;
    answer::id(id)
}

/// `one.clusterpool.info()`, `one.hostpool.info()`, `one.datastorepool.info()` take no more
/// parameters; `one.vnpool.info(filter, start, end)` filters like every owned pool.
async fn pool(ctx: &Ctx<'_>, p: &Params<'_>, kind: Kind) -> Answer {
    let fail = ctx.fail(what(kind), -1);
    let mut x = Xml::default();
    match kind {
        Kind::Cluster => {
            x.open("CLUSTER_POOL");
            ctx.one.cluster_pool().map_err(fail)?.iter().for_each(|c| render::cluster(&mut x, c));
            x.close("CLUSTER_POOL");
        }
        Kind::Host => {
            x.open("HOST_POOL");
            for host in ctx.one.host_pool().map_err(fail)? {
                render::host(&mut x, &host, &ctx.one.cluster_name(host.cluster_id).unwrap_or_default());
            }
            x.close("HOST_POOL");
        }
        Kind::Datastore => {
            x.open("DATASTORE_POOL");
            ctx.one.datastore_pool().map_err(fail)?.iter().for_each(|d| render::datastore(&mut x, d));
            x.close("DATASTORE_POOL");
        }
        Kind::Network => {
            let selection = Selection::read(ctx, p)?;
            let vnets = ctx.one.vn_pool().map_err(fail)?;
            x.open("VNET_POOL");
            selection.apply(ctx.user, vnets, |v| (v.id, 0, 0)).iter().for_each(|v| render::vnet(&mut x, v, false));
            x.close("VNET_POOL");
        }
    }
    answer::xml(x.finish())
}

/// `one.host.status(id, status)`, `one.vn.add_ar(id, template)`, `one.vn.rm_ar(id, ar_id[, force])`.
async fn vnet_or_host_action(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    use crate::one::HostStatus;
    let id = p.int(1)?;
    let done = match ctx.method {
        "one.host.status" => {
            let status = match p.int(2)? {
                0 => HostStatus::Enabled,
                1 => HostStatus::Disabled,
                2 => HostStatus::Offline,
                other => return Err(ctx.refuse(Code::Action, "", id, &format!("Wrong status code {other}."))),
            };
            ctx.one.host_status(id, status).await.map_err(ctx.fail("host", id))
        }
        "one.vn.add_ar" => {
            let template =
                parse_template(p.string(2)?).map_err(|e| ctx.refuse(Code::Internal, "", id, &parse_error(&e)))?;
            ctx.one.vn_add_ar(id, &template_text(&template)).await.map_err(ctx.fail("virtual network", id))
        }
        _ => {
            let ar_id = p.int(2)?;
            p.opt_boolean(3)?;
            ctx.one.vn_rm_ar(id, ar_id).await.map_err(ctx.fail("virtual network", id))
        }
    };
    done?;
    answer::id(id)
}

/// A pool's `filter, start, end` (oned's `RequestManagerPoolInfoFilter`): filter -2 all, -3
/// the caller's, -1 the caller's and their group's, -4 their group's, ≥ 0 that user's; `start`
/// and `end` an id range (-1 open), or, when `end` < -1, an offset and a page of `-end`.
pub struct Selection {
    filter: i64,
    start: i64,
    end: i64,
}

impl Selection {
    pub fn read(ctx: &Ctx<'_>, p: &Params<'_>) -> Result<Selection, Refusal> {
        let selection = Selection { filter: p.int(1)?, start: p.int(2)?, end: p.int(3)? };
        if selection.filter < -4 {
            return Err(ctx.refuse(Code::XmlRpcApi, "", -1, "Incorrect filter_flag"));
        }
        Ok(selection)
    }

    /// The objects the caller asked for; `owner` gives an object's (id, uid, gid).
    pub fn apply<T>(&self, caller: &User, objects: Vec<T>, owner: impl Fn(&T) -> (i64, i64, i64)) -> Vec<T> {
        let kept = objects.into_iter().filter(|o| {
            let (id, uid, gid) = owner(o);
            let mine = uid == caller.id;
            let theirs = match self.filter {
                -2 => true,
                -3 => mine,
                -1 => mine || gid == caller.gid,
                -4 => gid == caller.gid,
                user => uid == user,
            };
            let in_range = self.end < -1 || ((self.start < 0 || id >= self.start) && (self.end < 0 || id <= self.end));
            theirs && in_range
        });
        match self.end < -1 {
            true => kept.skip(self.start.max(0) as usize).take((-self.end) as usize).collect(),
            false => kept.collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_filter_by_owner_then_by_range_or_page() {
        let caller = User { id: 2, name: "u".into(), password: "p".into(), gid: 1 };
        let objects: Vec<(i64, i64, i64)> = vec![(0, 0, 0), (1, 2, 1), (2, 3, 1), (3, 2, 1), (4, 0, 0)];
        let ids = |filter, start, end| -> Vec<i64> {
            Selection { filter, start, end }.apply(&caller, objects.clone(), |o| *o).iter().map(|o| o.0).collect()
        };
        assert_eq!(ids(-2, -1, -1), [0, 1, 2, 3, 4]);
        assert_eq!(ids(-3, -1, -1), [1, 3]);
        assert_eq!(ids(-1, -1, -1), [1, 2, 3]);
        assert_eq!(ids(-4, -1, -1), [1, 2, 3]);
        assert_eq!(ids(0, -1, -1), [0, 4]);
        assert_eq!(ids(-2, 1, 3), [1, 2, 3]);
        assert_eq!(ids(-2, 2, -1), [2, 3, 4]);
        assert_eq!(ids(-2, 1, -2), [1, 2]);
    }
}
