//! OneForm's `DOCUMENT` wrapper (§2.11): OpenNebula's document fields with every id as a
//! string, the owner and group by id and name, the permission bits as "0"/"1", and the body
//! under `TEMPLATE.PROVIDER_BODY` or `TEMPLATE.PROVISION_BODY`.

use serde_json::{Value, json};

use crate::service::{Document, Kind};

pub fn wrap(doc: &Document) -> Value {
    let tag = match doc.kind {
        Kind::Provider => "PROVIDER_BODY",
        Kind::Provision => "PROVISION_BODY",
    };
    json!({
        "DOCUMENT": {
            "ID": doc.id.to_string(),
            "UID": doc.owner.uid.to_string(),
            "GID": doc.owner.gid.to_string(),
            "UNAME": doc.owner.uname,
            "GNAME": doc.owner.gname,
            "NAME": doc.name,
            "TYPE": doc.kind.document_type().to_string(),
            "PERMISSIONS": doc.owner.mode.permissions(),
            "TEMPLATE": { tag: doc.body },
        }
    })
}

pub fn wrap_all(docs: &[Document]) -> Value {
    Value::Array(docs.iter().map(wrap).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Mode, Ownership};

    #[test]
    fn ids_are_strings_and_the_body_sits_under_its_tag() {
        let owner = Ownership { uid: 3, uname: "ann".into(), gid: 1, gname: "users".into(), mode: Mode(0o640) };
        let doc = Document { kind: Kind::Provision, id: 7, name: "p".into(), owner, body: json!({"state": "RUNNING"}) };
        let v = wrap(&doc);
        let d = &v["DOCUMENT"];
        assert_eq!((d["ID"].as_str(), d["UID"].as_str(), d["GID"].as_str()), (Some("7"), Some("3"), Some("1")));
        assert_eq!(
            (d["UNAME"].as_str(), d["GNAME"].as_str(), d["TYPE"].as_str()),
            (Some("ann"), Some("users"), Some("104"))
        );
        assert_eq!(d["PERMISSIONS"]["OWNER_M"], "1");
        assert_eq!(d["PERMISSIONS"]["GROUP_M"], "0");
        assert_eq!(d["TEMPLATE"]["PROVISION_BODY"]["state"], "RUNNING");
    }
}

/// The schemas of `/api/v1/openapi.json`: what [`wrap`] and the error body look like. They
/// describe the JSON the handlers build; they are not used to build it.
pub mod schema {
    use serde::Serialize;
    use serde_json::{Map, Value};
    use utoipa::ToSchema;

    /// One provider or provision, as OneForm wraps it.
    #[derive(Serialize, ToSchema)]
    pub struct Envelope {
        #[serde(rename = "DOCUMENT")]
        pub document: DocumentFields,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "UPPERCASE")]
    pub struct DocumentFields {
        pub id: String,
        pub uid: String,
        pub gid: String,
        pub uname: String,
        pub gname: String,
        pub name: String,
        /// "103" (provider) or "104" (provision).
        #[serde(rename = "TYPE")]
        pub kind: String,
        pub permissions: Permissions,
        pub template: Template,
    }

    /// "1" where the bit is set, else "0".
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "UPPERCASE")]
    pub struct Permissions {
        pub owner_u: String,
        pub owner_m: String,
        pub owner_a: String,
        pub group_u: String,
        pub group_m: String,
        pub group_a: String,
        pub other_u: String,
        pub other_m: String,
        pub other_a: String,
    }

    /// Exactly one of the two bodies.
    #[derive(Serialize, ToSchema)]
    pub struct Template {
        #[serde(rename = "PROVIDER_BODY", skip_serializing_if = "Option::is_none")]
        pub provider_body: Option<Map<String, Value>>,
        #[serde(rename = "PROVISION_BODY", skip_serializing_if = "Option::is_none")]
        pub provision_body: Option<Map<String, Value>>,
    }

    /// Every error: the status again, the message, and per-field messages (or what stands in
    /// the way) in `context`.
    #[derive(Serialize, ToSchema)]
    pub struct ErrorBody {
        pub err_code: u16,
        pub message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub context: Option<Map<String, Value>>,
    }
}
