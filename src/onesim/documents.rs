//! The calls onesim answers beyond infrastructure objects, users and groups: generic documents
//! (where OneForm keeps providers and provisions: `one.document.*` and `one.documentpool.info`)
//! and `one.system.version`, with the XML of DOCUMENT and DOCUMENT_POOL.
//!
//! The pool lists only what the caller may use, by the filters (-3 mine, -1 mine and my
//! group's, …) and the permission bits, as oned does ([`Selection`]); the other calls let every
//! authenticated user do everything, as oneadmin may.

use crate::one::fake::Document;
use crate::one::{Code, Template};

use super::answer::{self, Answer};
use super::methods::{Ctx, Owned, Selection};
use super::params::Params;
use super::sim::{User, group_name};
use super::xml::{Xml, parse_template};

/// The version oned 7.2 reports.
pub const VERSION: &str = "7.2.0";

pub const METHODS: &[&str] = &[
    "one.document.allocate",
    "one.document.info",
    "one.document.update",
    "one.document.rename",
    "one.document.delete",
    "one.document.chown",
    "one.document.chmod",
    "one.documentpool.info",
    "one.system.version",
];

/// Runs a known method of [`METHODS`].
pub async fn call(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    let one = ctx.one;
    match ctx.method {
        "one.system.version" => Ok(crate::one::xmlrpc::Value::String(VERSION.to_string())),
        "one.documentpool.info" => pool(ctx, p),
        "one.document.allocate" => {
            let (template, doc_type) = (template(ctx, p.string(1)?, -1)?, p.int(2)?);
            let id = one.document_allocate(ctx.user.id, ctx.user.gid, doc_type, template);
            answer::id(id.map_err(ctx.fail("document", -1))?)
        }
        "one.document.info" => {
            let id = p.int(1)?;
            p.opt_boolean(2)?;
            let document = one.document_info(id).map_err(ctx.fail("document", id))?;
            let mut x = Xml::default();
            render(&mut x, &document, ctx.users);
            answer::xml(x.finish())
        }
        "one.document.update" => {
            let (id, text) = (p.int(1)?, p.string(2)?);
            let replace = match p.opt_int(3)?.unwrap_or(0) {
                0 => true,
                1 => false,
                other => {
                    let detail = format!("Wrong update type {other}: use 0 or 1");
                    return Err(ctx.refuse(Code::XmlRpcApi, "", id, &detail));
                }
            };
            let template = template(ctx, text, id)?;
            one.document_update(id, template, replace).map_err(ctx.fail("document", id))?;
            answer::id(id)
        }
        "one.document.rename" => {
            let id = p.int(1)?;
            one.document_rename(id, p.string(2)?).map_err(ctx.fail("document", id))?;
            answer::id(id)
        }
        "one.document.delete" => {
            let id = p.int(1)?;
            one.document_delete(id).map_err(ctx.fail("document", id))?;
            answer::id(id)
        }
        "one.document.chown" => chown(ctx, p),
        _ => {
            let id = p.int(1)?;
            let mut bits = [0; 9];
            for (at, bit) in bits.iter_mut().enumerate() {
                *bit = p.int(at + 2)?;
            }
            one.document_chmod(id, bits).map_err(ctx.fail("document", id))?;
            answer::id(id)
        }
    }
}

fn template(ctx: &Ctx<'_>, text: &str, id: i64) -> Result<Template, super::answer::Refusal> {
    parse_template(text).map_err(|e| ctx.refuse(Code::Internal, "", id, &format!("Parse error: {e}")))
}

/// `one.document.chown(id, uid, gid)`: -1 keeps; a new owner or group must exist.
fn chown(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    ctx.one.document_info(id).map_err(ctx.fail("document", id))?;
    if uid != -1 && !ctx.users.iter().any(|u| u.id == uid) {
        return Err(ctx.refuse(Code::NoExists, "user", uid, ""));
    }
    if gid != -1 && group_name(gid).is_none() {
        return Err(ctx.refuse(Code::NoExists, "group", gid, ""));
    }
    let keep = |n: i64| (n != -1).then_some(n);
    ctx.one.document_chown(id, keep(uid), keep(gid)).map_err(ctx.fail("document", id))?;
    answer::id(id)
}

/// `one.documentpool.info(filter, start, end, type)`: the documents of that type.
fn pool(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    let selection = Selection::read(ctx, p)?;
    let doc_type = p.int(4)?;
    let documents = ctx.one.document_pool().map_err(ctx.fail("document", -1))?;
    let documents: Vec<Document> = documents.into_iter().filter(|d| d.doc_type == doc_type).collect();
    let mut x = Xml::default();
    x.open("DOCUMENT_POOL");
    let owned = |d: &Document| Owned { id: d.id, uid: d.uid, gid: d.gid, permissions: d.permissions };
    for document in selection.apply(ctx.user, documents, owned) {
        render(&mut x, &document, ctx.users);
    }
    answer::xml(x.close("DOCUMENT_POOL").finish())
}

/// `<DOCUMENT>`; owner and group names come from the users.
pub fn render(x: &mut Xml, d: &Document, users: &[User]) {
    let uname = users.iter().find(|u| u.id == d.uid).map(|u| u.name.as_str()).unwrap_or("");
    x.open("DOCUMENT").leaf("ID", d.id).leaf("UID", d.uid).leaf("GID", d.gid).leaf("UNAME", uname);
    x.leaf("GNAME", group_name(d.gid).unwrap_or("")).leaf("NAME", &d.name).leaf("TYPE", d.doc_type);
    x.permissions(d.permissions).template("TEMPLATE", &d.template).close("DOCUMENT");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::one::fake::Permissions;

    #[test]
    fn documents_render_owner_names_type_and_template() {
        let users = [User::core(0, "oneadmin", "x", 0)];
        let template = Template::parse("BODY = \"{\\\"a\\\": 1}\"").unwrap();
        let d = Document {
            id: 3,
            uid: 0,
            gid: 0,
            name: "p".into(),
            doc_type: 104,
            permissions: Permissions::DEFAULT,
            template,
        };
        let mut x = Xml::default();
        render(&mut x, &d, &users);
        let xml = x.finish();
        assert!(
            xml.starts_with(
                "<DOCUMENT><ID>3</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>"
            ),
            "{xml}"
        );
        assert!(xml.contains("<TYPE>104</TYPE><PERMISSIONS><OWNER_U>1</OWNER_U>"), "{xml}");
        assert!(xml.ends_with("<TEMPLATE><BODY><![CDATA[{\"a\": 1}]]></BODY></TEMPLATE></DOCUMENT>"), "{xml}");
    }
}
