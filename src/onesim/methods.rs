//! The XML-RPC methods onesim answers and their signatures (oned's `RequestManager*`): each
//! reads its parameters as oned does, asks [`FakeOne`] (whose rules are OpenNebula's) and
//! answers with the new id, the object's XML or oned's failure. VMs and images are in
//! `children.rs`; users and groups in `users.rs`; documents and the system calls in
//! `documents.rs`.

use crate::one::fake::Permissions;
use crate::one::{Code, FakeOne, Kind, OneApi};

use super::answer::{self, Answer, Refusal};
use super::params::Params;
use super::render;
use super::sim::User;
use super::xml::{Xml, parse_template, template_text};
use super::{children, documents, users, zones};

/// Who is calling what, for a method.
pub struct Ctx<'a> {
    pub one: &'a FakeOne,
    pub user: &'a User,
    pub users: &'a [User],
    pub method: &'a str,
    /// This endpoint's URL (zone 0's ENDPOINT).
    pub endpoint: &'a str,
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
    [OBJECT_METHODS, documents::METHODS, users::METHODS, zones::METHODS].iter().any(|known| known.contains(&method))
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
        "user" | "userpool" | "group" => return users::call(ctx, p),
        "zone" | "zonepool" => return zones::call(ctx, p),
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
            let owned = |v: &crate::one::Vnet| Owned::listed_to_all(v.id);
            selection.apply(ctx.user, vnets, owned).iter().for_each(|v| render::vnet(&mut x, v, false));
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

/// A pool's `filter, start, end` (oned's `PoolSharedAPI::where_filter`): filter -2 all, -3 the
/// caller's, -1 the caller's and their group's, -4 their group's, ≥ 0 that user's; `start`
/// and `end` an id range (-1 open), or, when `end` < -1, an offset and a page of `-end`.
///
/// Of those, a caller outside the oneadmin group gets only what it may USE (oned's
/// `PoolSQL::usr_filter` under the default ACLs, which grant USE of no document): what it owns
/// whatever the owner bits say, what its group may use (GROUP_U), what others may use (OTHER_U);
/// filter -3 and its own uid keep everything it owns.
pub struct Selection {
    filter: i64,
    start: i64,
    end: i64,
}

/// Who owns an object and who may use it, as a pool filters by.
pub struct Owned {
    pub id: i64,
    pub uid: i64,
    pub gid: i64,
    pub permissions: Permissions,
}

impl Owned {
    /// oneadmin's object that every user may USE: onesim's networks, VMs and images, which
    /// carry no permissions of their own in [`FakeOne`], are listed to everyone.
    pub fn listed_to_all(id: i64) -> Owned {
        Owned { id, uid: 0, gid: 0, permissions: Permissions([1, 1, 0, 1, 0, 0, 1, 0, 0]) }
    }
}

impl Selection {
    pub fn read(ctx: &Ctx<'_>, p: &Params<'_>) -> Result<Selection, Refusal> {
        let selection = Selection { filter: p.int(1)?, start: p.int(2)?, end: p.int(3)? };
        if selection.filter < -4 {
            return Err(ctx.refuse(Code::XmlRpcApi, "", -1, "Incorrect filter_flag"));
        }
        Ok(selection)
    }

    /// The objects the caller asked for and may see.
    pub fn apply<T>(&self, caller: &User, objects: Vec<T>, owner: impl Fn(&T) -> Owned) -> Vec<T> {
        let kept = objects.into_iter().filter(|o| {
            let o = owner(o);
            let in_range =
                self.end < -1 || ((self.start < 0 || o.id >= self.start) && (self.end < 0 || o.id <= self.end));
            self.keeps(caller, &o) && in_range
        });
        match self.end < -1 {
            true => kept.skip(self.start.max(0) as usize).take((-self.end) as usize).collect(),
            false => kept.collect(),
        }
    }

    /// oned's `usr_filter` for one object; `all` is the oneadmin group's "no USE check".
    fn keeps(&self, caller: &User, o: &Owned) -> bool {
        let all = users::is_admin(caller);
        let mine = o.uid == caller.id;
        let [_, _, _, group_u, _, _, other_u, _, _] = o.permissions.0;
        let usable = all || other_u == 1 || (o.gid == caller.gid && group_u == 1);
        match self.filter {
            -2 => mine || usable,
            -3 => mine,
            -1 => mine || (o.gid == caller.gid && usable),
            -4 => o.gid == caller.gid && (mine || usable),
            user => o.uid == user && (user == caller.id || usable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, uid, gid, GROUP_U, OTHER_U) → the ids `caller` gets for each selection.
    fn select(caller: &User, objects: &[(i64, i64, i64, i64, i64)], filter: i64, start: i64, end: i64) -> Vec<i64> {
        let owned = |&(id, uid, gid, group_u, other_u): &(i64, i64, i64, i64, i64)| Owned {
            id,
            uid,
            gid,
            permissions: Permissions([1, 1, 0, group_u, 0, 0, other_u, 0, 0]),
        };
        Selection { filter, start, end }.apply(caller, objects.to_vec(), owned).iter().map(|o| o.0).collect()
    }

    #[test]
    fn selections_filter_by_owner_then_by_range_or_page() {
        let caller = User::core(2, "u", "p", 1);
        let objects = [(0, 0, 0, 1, 1), (1, 2, 1, 1, 1), (2, 3, 1, 1, 1), (3, 2, 1, 1, 1), (4, 0, 0, 1, 1)];
        let ids = |filter, start, end| select(&caller, &objects, filter, start, end);
        assert_eq!(ids(-2, -1, -1), [0, 1, 2, 3, 4]);
        assert_eq!(ids(-3, -1, -1), [1, 3]);
        assert_eq!(ids(-1, -1, -1), [1, 2, 3]);
        assert_eq!(ids(-4, -1, -1), [1, 2, 3]);
        assert_eq!(ids(0, -1, -1), [0, 4]);
        assert_eq!(ids(-2, 1, 3), [1, 2, 3]);
        assert_eq!(ids(-2, 2, -1), [2, 3, 4]);
        assert_eq!(ids(-2, 1, -2), [1, 2]);
    }

    #[test]
    fn a_plain_user_gets_only_what_it_owns_or_may_use_and_the_oneadmin_group_everything() {
        // 10: alice's own with no USE bit for anyone else; 11: bob's, private; 12: bob's, group
        // USE (group users); 13: oneadmin's, group USE (group oneadmin); 14: oneadmin's, other USE;
        // 15: bob's in group oneadmin, group USE.
        let objects = [
            (10, 2, 1, 0, 0),
            (11, 3, 1, 0, 0),
            (12, 3, 1, 1, 0),
            (13, 0, 0, 1, 0),
            (14, 0, 0, 0, 1),
            (15, 3, 0, 1, 0),
        ];
        let alice = User::core(2, "alice", "p", User::USERS_GROUP);
        let ids = |filter| select(&alice, &objects, filter, -1, -1);
        assert_eq!(ids(-2), [10, 12, 14]);
        assert_eq!(ids(-3), [10]);
        assert_eq!(ids(-1), [10, 12]);
        assert_eq!(ids(-4), [10, 12]);
        assert_eq!(ids(2), [10]);
        assert_eq!(ids(3), [12]);
        assert_eq!(ids(0), [14]);
        let root = User::core(4, "root", "p", User::ONEADMIN_GROUP);
        let ids = |filter| select(&root, &objects, filter, -1, -1);
        assert_eq!(ids(-2), [10, 11, 12, 13, 14, 15]);
        assert_eq!(ids(-3), Vec::<i64>::new());
        assert_eq!(ids(-1), [13, 14, 15]);
        assert_eq!(ids(3), [11, 12, 15]);
    }
}
