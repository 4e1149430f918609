//! Users and groups as oned shows them: `one.user.info` (USER), `one.userpool.info`
//! (USER_POOL) and `one.group.info` (GROUP), -1 being the caller's own user or primary group.
//! onesim has oned's two built-in groups, `oneadmin` (0) and `users` (1), oned's bootstrap users
//! oneadmin (0) and serveradmin (1), and the users it was started with, each in one group.
//! A USER shows what oned stores: the password's SHA-256 (`cipher`), the auth driver, and a
//! TEMPLATE with the user's random `TOKEN_PASSWORD`.
//!
//! Who may read what follows oned's default ACLs: the `oneadmin` group (and user 0) reads
//! every user and group; anyone else reads only their own user and the groups they belong to,
//! and gets AUTHORIZATION for the others. As in oned's `basic_authorization`, a missing object
//! is NO_EXISTS before any authorization is checked, so NO_EXISTS tells anyone that an id is
//! free.

use crate::one::Code;

use super::answer::{self, Answer};
use super::methods::Ctx;
use super::params::Params;
use super::sim::{User, group_name};
use super::xml::Xml;

pub const METHODS: &[&str] = &["one.user.info", "one.userpool.info", "one.group.info"];

/// Runs a known method of [`METHODS`].
pub fn call(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    if ctx.method == "one.userpool.info" {
        return pool(ctx);
    }
    let id = p.int(1)?;
    p.opt_boolean(2)?;
    match ctx.method {
        "one.user.info" => user_info(ctx, id),
        _ => group_info(ctx, id),
    }
}

/// Whether `user` is oneadmin or in the oneadmin group, whom oned authorizes for everything.
pub fn is_admin(user: &User) -> bool {
    user.id == 0 || user.gid == User::ONEADMIN_GROUP
}

/// `one.user.info(id[, decrypt])`.
fn user_info(ctx: &Ctx<'_>, id: i64) -> Answer {
    let id = if id == -1 { ctx.user.id } else { id };
    let Some(user) = ctx.users.iter().find(|u| u.id == id) else {
        return Err(ctx.refuse(Code::NoExists, "user", id, ""));
    };
    if !is_admin(ctx.user) && ctx.user.id != id {
        tracing::debug!(caller = %ctx.user.name, id, "onesim refused another user's info");
        return Err(ctx.refuse(Code::Authorization, "user", id, ""));
    }
    let mut x = Xml::default();
    render(&mut x, user);
    answer::xml(x.empty("DEFAULT_USER_QUOTAS").close("USER").finish())
}

/// `one.userpool.info()`: every user for the oneadmin group, only themselves for the others;
/// each USER without quotas (oned's short form) followed by its (empty) QUOTAS, then the
/// default quotas, as oned's `UserPool::dump` joins them.
fn pool(ctx: &Ctx<'_>) -> Answer {
    let mut x = Xml::default();
    x.open("USER_POOL");
    for user in ctx.users.iter().filter(|u| is_admin(ctx.user) || u.id == ctx.user.id) {
        render(&mut x, user);
        x.close("USER").open("QUOTAS").leaf("ID", user.id).close("QUOTAS");
    }
    answer::xml(x.empty("DEFAULT_USER_QUOTAS").close("USER_POOL").finish())
}

/// A USER up to its TEMPLATE, left open for the quotas that follow in `one.user.info`.
fn render(x: &mut Xml, user: &User) {
    x.open("USER").leaf("ID", user.id).leaf("GID", user.gid).ids("GROUPS", &[user.gid]);
    x.leaf("GNAME", user.gname()).leaf("NAME", &user.name).leaf("PASSWORD", &user.password);
    x.leaf("AUTH_DRIVER", user.auth_driver).leaf("ENABLED", 1);
    x.open("TEMPLATE").cdata("TOKEN_PASSWORD", &user.token_password).close("TEMPLATE");
}

/// `one.group.info(id[, decrypt])`: the group with its members' ids, in the element order
/// of oned 7's `Group::to_xml` (which pyone's bindings follow: ADMINS after USERS).
fn group_info(ctx: &Ctx<'_>, id: i64) -> Answer {
    let id = if id == -1 { ctx.user.gid } else { id };
    let Some(name) = group_name(id) else {
        return Err(ctx.refuse(Code::NoExists, "group", id, ""));
    };
    if !is_admin(ctx.user) && ctx.user.gid != id {
        tracing::debug!(caller = %ctx.user.name, id, "onesim refused a foreign group's info");
        return Err(ctx.refuse(Code::Authorization, "group", id, ""));
    }
    let members: Vec<i64> = ctx.users.iter().filter(|u| u.gid == id).map(|u| u.id).collect();
    let mut x = Xml::default();
    x.open("GROUP").leaf("ID", id).leaf("NAME", name).empty("TEMPLATE").ids("USERS", &members).empty("ADMINS");
    answer::xml(x.empty("DEFAULT_GROUP_QUOTAS").close("GROUP").finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::one::FakeOne;
    use crate::one::xmlrpc::Value;
    use crate::onesim::answer::Refusal;

    fn users() -> Vec<User> {
        let user = |id, name: &str, gid| User::core(id, name, &format!("{name}-pw"), gid);
        vec![user(0, "oneadmin", 0), user(1, "alice", 1), user(2, "bob", 1), user(3, "root", 0)]
    }

    /// `method(id)` called by user `caller`: the XML, or the refusal's code.
    fn ask(caller: usize, method: &str, id: i64) -> Result<String, Code> {
        let (one, users) = (FakeOne::new(), users());
        let ctx = Ctx { one: &one, user: &users[caller], users: &users, method, endpoint: "" };
        match call(&ctx, &Params(&[Value::String("session".into()), Value::Int(id)])) {
            Ok(Value::String(xml)) => Ok(xml),
            Ok(other) => panic!("not XML: {other:?}"),
            Err(Refusal::One { code, .. }) => Err(code),
            Err(fault) => panic!("{fault:?}"),
        }
    }

    #[test]
    fn the_oneadmin_group_reads_every_user_others_only_themselves() {
        for caller in [0, 3] {
            let xml = ask(caller, "one.user.info", 2).unwrap();
            assert!(
                xml.starts_with(
                    "<USER><ID>2</ID><GID>1</GID><GROUPS><ID>1</ID></GROUPS><GNAME>users</GNAME><NAME>bob</NAME>"
                ),
                "{xml}"
            );
            assert!(!xml.contains("bob-pw"), "{xml}");
        }
        assert!(ask(1, "one.user.info", -1).unwrap().contains("<NAME>alice</NAME>"));
        assert!(ask(1, "one.user.info", 1).unwrap().contains("<NAME>alice</NAME>"));
        assert_eq!(ask(1, "one.user.info", 2), Err(Code::Authorization));
        assert_eq!(ask(1, "one.user.info", 0), Err(Code::Authorization));
        assert_eq!(ask(1, "one.user.info", 9), Err(Code::NoExists), "a missing user before authorization");
        assert_eq!(ask(0, "one.user.info", 9), Err(Code::NoExists));
    }

    #[test]
    fn users_show_the_stored_digest_their_driver_and_a_token_password() {
        let xml = ask(0, "one.user.info", 2).unwrap();
        let digest = crate::onesim::cipher::sha256_hex("bob-pw");
        let middle = format!(
            "<PASSWORD>{digest}</PASSWORD><AUTH_DRIVER>core</AUTH_DRIVER><ENABLED>1</ENABLED>\
             <TEMPLATE><TOKEN_PASSWORD><![CDATA["
        );
        assert!(xml.contains(&middle), "{xml}");
        let token = xml.split("<TOKEN_PASSWORD><![CDATA[").nth(1).unwrap().split("]]>").next().unwrap();
        assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        assert!(xml.ends_with("]]></TOKEN_PASSWORD></TEMPLATE><DEFAULT_USER_QUOTAS/></USER>"), "{xml}");
    }

    #[test]
    fn the_user_pool_lists_everyone_for_the_oneadmin_group_and_only_themselves_for_others() {
        let names = |xml: &str| -> Vec<String> {
            xml.split("<NAME>").skip(1).map(|rest| rest.split('<').next().unwrap().to_string()).collect()
        };
        let all = ask(3, "one.userpool.info", 0).unwrap();
        assert_eq!(names(&all), ["oneadmin", "alice", "bob", "root"]);
        assert!(all.starts_with("<USER_POOL><USER><ID>0</ID>"), "{all}");
        let alice = ask(1, "one.userpool.info", 0).unwrap();
        assert_eq!(names(&alice), ["alice"]);
        assert!(alice.ends_with("</USER><QUOTAS><ID>1</ID></QUOTAS><DEFAULT_USER_QUOTAS/></USER_POOL>"), "{alice}");
    }

    #[test]
    fn groups_list_their_members_and_are_read_by_members_and_admins() {
        let users_group = "<GROUP><ID>1</ID><NAME>users</NAME><TEMPLATE/><USERS><ID>1</ID><ID>2</ID></USERS>\
                           <ADMINS/><DEFAULT_GROUP_QUOTAS/></GROUP>";
        assert_eq!(ask(0, "one.group.info", 1).unwrap(), users_group);
        assert_eq!(ask(1, "one.group.info", -1).unwrap(), users_group);
        assert_eq!(ask(2, "one.group.info", 1).unwrap(), users_group);
        let oneadmin = ask(3, "one.group.info", -1).unwrap();
        assert!(
            oneadmin
                .starts_with("<GROUP><ID>0</ID><NAME>oneadmin</NAME><TEMPLATE/><USERS><ID>0</ID><ID>3</ID></USERS>"),
            "{oneadmin}"
        );
        assert_eq!(ask(1, "one.group.info", 0), Err(Code::Authorization));
        assert_eq!(ask(1, "one.group.info", 5), Err(Code::NoExists));
        assert_eq!(ask(0, "one.group.info", 5), Err(Code::NoExists));
    }
}
