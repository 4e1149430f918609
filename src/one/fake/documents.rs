//! The fake's generic documents (`one.document.*`), which OneForm uses to store providers and
//! provisions: ids from 0, a NAME taken out of the allocation template (`document-<id>` when
//! there is none, at most 128 characters, as oned's `Document::insert` does), an owner and
//! group, the nine permission bits and a template that `update` replaces or merges. Like every
//! other call, each one is logged, may meet an injected fault and is persisted.

use super::super::template::Template;
use super::super::{Code, Result};
use super::FakeOne;
use super::world::{Outcome, World, missing, take};

/// The XML-RPC method names of the document calls (the fake's call log uses them).
pub mod call {
    pub const ALLOCATE: &str = "one.document.allocate";
    pub const INFO: &str = "one.document.info";
    pub const UPDATE: &str = "one.document.update";
    pub const RENAME: &str = "one.document.rename";
    pub const DELETE: &str = "one.document.delete";
    pub const CHOWN: &str = "one.document.chown";
    pub const CHMOD: &str = "one.document.chmod";
    pub const POOL: &str = "one.documentpool.info";
}

/// `OWNER_U, OWNER_M, OWNER_A, GROUP_U, … OTHER_A`, each 0 or 1, in PERMISSIONS order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Permissions(pub [i64; 9]);

impl Permissions {
    /// What oned's default umask (177) leaves a new object: use and manage for its owner.
    pub const DEFAULT: Permissions = Permissions([1, 1, 0, 0, 0, 0, 0, 0, 0]);
}

/// `<DOCUMENT>`: `doc_type` is OneForm's 103 (provider) or 104 (provision).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: i64,
    pub uid: i64,
    pub gid: i64,
    pub name: String,
    pub doc_type: i64,
    pub permissions: Permissions,
    pub template: Template,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DocumentRec {
    name: String,
    uid: i64,
    gid: i64,
    doc_type: i64,
    permissions: Permissions,
    template: Template,
}

const MAX_NAME: usize = 128;

impl World {
    fn document(&self, id: i64) -> Outcome<Document> {
        let Some(rec) = self.documents.get(&id) else {
            return missing("document", id);
        };
        Ok(Document {
            id,
            uid: rec.uid,
            gid: rec.gid,
            name: rec.name.clone(),
            doc_type: rec.doc_type,
            permissions: rec.permissions,
            template: rec.template.clone(),
        })
    }

    fn document_mut(&mut self, id: i64) -> Outcome<&mut DocumentRec> {
        match self.documents.get_mut(&id) {
            Some(rec) => Ok(rec),
            None => missing("document", id),
        }
    }
}

fn without_name(template: Template) -> (Option<String>, Template) {
    let name = template.single("NAME").map(str::to_string);
    let mut rest = Template::default();
    for (attr, value) in template.attributes() {
        if attr != "NAME" {
            rest.push(attr.clone(), value.clone());
        }
    }
    (name, rest)
}

impl FakeOne {
    /// `one.document.allocate(template, type)` by the user `uid` of group `gid` → the new id.
    pub fn document_allocate(&self, uid: i64, gid: i64, doc_type: i64, template: Template) -> Result<i64> {
        let (name, template) = without_name(template);
        let object = format!("document '{}'", name.as_deref().unwrap_or("?"));
        self.run(call::ALLOCATE, object, |w, n| {
            if name.as_ref().is_some_and(|name| name.chars().count() > MAX_NAME) {
                return Err((Code::Allocate, format!("NAME is too long; max length is {MAX_NAME} chars.")));
            }
            let id = take(&mut n.document);
            let name = name.filter(|name| !name.is_empty()).unwrap_or_else(|| format!("document-{id}"));
            let permissions = Permissions::DEFAULT;
            w.documents.insert(id, DocumentRec { name, uid, gid, doc_type, permissions, template });
            Ok(id)
        })
    }

    pub fn document_info(&self, id: i64) -> Result<Document> {
        self.run(call::INFO, format!("document {id}"), |w, _| w.document(id))
    }

    /// `one.document.update`: `replace` is update type 0, otherwise attributes are merged (1).
    pub fn document_update(&self, id: i64, template: Template, replace: bool) -> Result<()> {
        self.run(call::UPDATE, format!("document {id}"), |w, _| {
            let rec = w.document_mut(id)?;
            if replace {
                rec.template = template;
            } else {
                rec.template.merge(template);
            }
            Ok(())
        })
    }

    /// `one.document.rename`: document names need not be unique, only present and short.
    pub fn document_rename(&self, id: i64, name: &str) -> Result<()> {
        self.run(call::RENAME, format!("document {id}"), |w, _| {
            let rec = w.document_mut(id)?;
            if name.is_empty() {
                return Err((Code::Action, "New name cannot be empty".to_string()));
            }
            if name.chars().count() > MAX_NAME {
                return Err((Code::Action, format!("NAME is too long; max length is {MAX_NAME} chars.")));
            }
            rec.name = name.to_string();
            Ok(())
        })
    }

    pub fn document_delete(&self, id: i64) -> Result<()> {
        self.run(call::DELETE, format!("document {id}"), |w, _| match w.documents.remove(&id) {
            Some(_) => Ok(()),
            None => missing("document", id),
        })
    }

    /// `one.document.chown`: `None` keeps the owner or group (oned's -1).
    pub fn document_chown(&self, id: i64, uid: Option<i64>, gid: Option<i64>) -> Result<()> {
        self.run(call::CHOWN, format!("document {id}"), |w, _| {
            let rec = w.document_mut(id)?;
            rec.uid = uid.unwrap_or(rec.uid);
            rec.gid = gid.unwrap_or(rec.gid);
            Ok(())
        })
    }

    /// `one.document.chmod`: each of the nine values is 0, 1, or -1 to keep the bit.
    pub fn document_chmod(&self, id: i64, bits: [i64; 9]) -> Result<()> {
        self.run(call::CHMOD, format!("document {id}"), |w, _| {
            if let Some(bad) = bits.iter().find(|b| !(-1..=1).contains(*b)) {
                return Err((Code::Action, format!("Wrong permission value {bad}: use 0, 1 or -1.")));
            }
            let rec = w.document_mut(id)?;
            for (bit, new) in rec.permissions.0.iter_mut().zip(bits) {
                if new != -1 {
                    *bit = new;
                }
            }
            Ok(())
        })
    }

    /// `one.documentpool.info`: every document, by id (the caller filters by owner and type).
    pub fn document_pool(&self) -> Result<Vec<Document>> {
        self.run(call::POOL, "pool".to_string(), |w, _| w.documents.keys().map(|id| w.document(*id)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Template {
        Template::parse(text).unwrap()
    }

    #[test]
    fn documents_take_their_name_out_of_the_template_and_keep_the_rest() {
        let one = FakeOne::new();
        let id = one.document_allocate(0, 0, 104, template("NAME = p\nBODY = \"{}\"")).unwrap();
        let unnamed = one.document_allocate(0, 0, 104, template("BODY = 1")).unwrap();
        assert_eq!((id, unnamed), (0, 1));
        let doc = one.document_info(id).unwrap();
        assert_eq!((doc.name.as_str(), doc.doc_type, doc.permissions), ("p", 104, Permissions::DEFAULT));
        assert_eq!(doc.template.single("NAME"), None);
        assert_eq!(doc.template.single("BODY"), Some("{}"));
        assert_eq!(one.document_info(unnamed).unwrap().name, "document-1");
        let long = format!("NAME = {}", "x".repeat(129));
        assert_eq!(one.document_allocate(0, 0, 104, template(&long)).unwrap_err().code(), Some(Code::Allocate));
    }

    #[test]
    fn update_rename_chown_chmod_and_delete() {
        let one = FakeOne::new();
        let id = one.document_allocate(0, 0, 103, template("A = 1\nB = 2")).unwrap();
        one.document_update(id, template("B = 3"), false).unwrap();
        assert_eq!(one.document_info(id).unwrap().template, template("A = 1\nB = 3"));
        one.document_update(id, template("C = 4"), true).unwrap();
        assert_eq!(one.document_info(id).unwrap().template, template("C = 4"));
        one.document_rename(id, "renamed").unwrap();
        one.document_chown(id, Some(5), None).unwrap();
        one.document_chmod(id, [-1, -1, 1, 1, -1, -1, -1, -1, -1]).unwrap();
        let doc = one.document_info(id).unwrap();
        assert_eq!((doc.name.as_str(), doc.uid, doc.gid), ("renamed", 5, 0));
        assert_eq!(doc.permissions, Permissions([1, 1, 1, 1, 0, 0, 0, 0, 0]));
        assert_eq!(one.document_rename(id, "").unwrap_err().code(), Some(Code::Action));
        assert_eq!(one.document_pool().unwrap().len(), 1);
        one.document_delete(id).unwrap();
        assert!(one.document_info(id).unwrap_err().is_no_exists());
        assert!(one.document_delete(id).unwrap_err().is_no_exists());
    }
}
