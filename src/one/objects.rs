//! A provision's `one_objects` (spec §2.3) as typed data that round-trips OneForm's JSON: the
//! cluster, hosts, networks and datastores, each `{id, name, resource_id?, template?, childs?}`
//! with any other key a driver put there kept as it was.
//!
//! Two normalisations, both of shapes OneForm treats alike: a `cluster` of `{}` or `null` reads
//! as no cluster and is written back as `{}` (OneForm's initial value), and `null` collections
//! read as empty lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::Kind;

/// Child ids by child type (`{"vm": [30, 33]}`, `{"image": [5]}`).
pub type Children = BTreeMap<String, Vec<i64>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OneObjects {
    #[serde(default, serialize_with = "cluster_out", deserialize_with = "cluster_in")]
    pub cluster: Option<Resource>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub hosts: Vec<Resource>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub networks: Vec<Resource>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub datastores: Vec<Resource>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// The OpenNebula id; null until registered and again once deleted.
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<i64>,
    /// Null means "the provision's name"; resolved (and suffixed) at registration.
    #[serde(default)]
    pub name: Option<String>,
    /// The cloud's id for a host (Terraform's `instance_id`), tagged as `RESOURCE_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Map<String, Value>>,
    /// Unmanaged children found at the last refresh.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_children")]
    pub childs: Option<Children>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl OneObjects {
    /// Reads the `one_objects` value driver extraction or a stored provision holds.
    pub fn from_value(value: Value) -> Result<OneObjects, serde_json::Error> {
        serde_json::from_value(value)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("one_objects always serialise: string keys only")
    }

    /// The resources of one kind, in document order (the cluster as a list of at most one).
    pub fn of(&self, kind: Kind) -> &[Resource] {
        match kind {
            Kind::Cluster => self.cluster.as_slice(),
            Kind::Datastore => &self.datastores,
            Kind::Network => &self.networks,
            Kind::Host => &self.hosts,
        }
    }

    pub fn of_mut(&mut self, kind: Kind) -> &mut [Resource] {
        match kind {
            Kind::Cluster => self.cluster.as_mut_slice(),
            Kind::Datastore => &mut self.datastores,
            Kind::Network => &mut self.networks,
            Kind::Host => &mut self.hosts,
        }
    }

    pub fn cluster_id(&self) -> Option<i64> {
        self.cluster.as_ref().and_then(|c| c.id)
    }

    /// Indexes of the networks whose template says `vn_mad: elastic`.
    pub fn elastic_networks(&self) -> Vec<usize> {
        (0..self.networks.len())
            .filter(|&i| {
                let template = self.networks[i].template.as_ref();
                template.and_then(|t| t.get("vn_mad")) == Some(&Value::from("elastic"))
            })
            .collect()
    }
}

impl Resource {
    /// The name for messages: the recorded one, or `?` before registration resolved it.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("?")
    }

    /// A template value as text (`im_mad`, `vmm_mad`), when it is a non-empty string.
    pub fn template_str(&self, key: &str) -> Option<&str> {
        let value = self.template.as_ref()?.get(key)?;
        value.as_str().filter(|s| !s.is_empty())
    }
}

fn cluster_out<S: Serializer>(cluster: &Option<Resource>, serializer: S) -> Result<S::Ok, S::Error> {
    match cluster {
        Some(resource) => resource.serialize(serializer),
        None => Map::new().serialize(serializer),
    }
}

fn cluster_in<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Resource>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Object(map) if map.is_empty() => Ok(None),
        other => serde_json::from_value(other).map(Some).map_err(serde::de::Error::custom),
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Resource>, D::Error> {
    Ok(Option::<Vec<Resource>>::deserialize(deserializer)?.unwrap_or_default())
}

/// An id as OneForm may have stored it: a number, a numeric string (XML-sourced) or null.
fn id_of(value: &Value) -> Result<Option<i64>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or(format!("id {n} is not an integer")),
        Value::String(s) => s.trim().parse().map(Some).map_err(|_| format!("id \"{s}\" is not an integer")),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(format!("id {value} is not an integer")),
    }
}

fn lenient_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    id_of(&Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

fn lenient_children<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Children>, D::Error> {
    let Some(map) = Option::<Map<String, Value>>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let mut children = Children::new();
    for (key, ids) in map {
        let ids = match ids {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            single => vec![single],
        };
        let ids = ids
            .iter()
            .filter_map(|v| id_of(v).transpose())
            .collect::<Result<Vec<i64>, String>>()
            .map_err(serde::de::Error::custom)?;
        children.insert(key, ids);
    }
    Ok(Some(children))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn driver_extraction_output_round_trips() {
        let value = json!({
            "cluster": {},
            "hosts": [],
            "networks": [{"id": null, "name": "public", "template": {"vn_mad": "elastic"}}],
            "datastores": [{"id": null, "name": "sys", "template": {"type": "SYSTEM_DS"}}]
        });
        let objects = OneObjects::from_value(value.clone()).unwrap();
        assert_eq!(objects.cluster, None);
        assert_eq!(objects.networks[0].name.as_deref(), Some("public"));
        assert_eq!(objects.elastic_networks(), vec![0]);
        assert_eq!(objects.to_value(), value);
        assert_eq!(serde_json::to_string(&objects).unwrap(), value.to_string());
    }

    #[test]
    fn a_stored_document_round_trips_with_unknown_keys() {
        let value = json!({
            "cluster": {"id": 118, "name": "AWS (provision_5)"},
            "hosts": [{"id": 21, "name": "3.74.216.118", "resource_id": "i-006a",
                       "childs": {"vm": [30, 33]}, "note": {"x": 1}}],
            "networks": [{"id": 45, "name": "n (provision_5)", "template": {"ar": []}, "childs": {}}],
            "datastores": [{"id": 136, "name": "d (provision_5)", "template": {"type": "SYSTEM_DS"},
                            "childs": {"image": [5]}}],
            "extra_key": [1, 2]
        });
        let objects = OneObjects::from_value(value.clone()).unwrap();
        assert_eq!(objects.cluster_id(), Some(118));
        assert_eq!(objects.hosts[0].extra["note"], json!({"x": 1}));
        assert_eq!(objects.hosts[0].childs.as_ref().unwrap()["vm"], vec![30, 33]);
        assert_eq!(objects.to_value(), value);
    }

    #[test]
    fn oneform_shapes_it_treats_alike_are_read() {
        let objects = OneObjects::from_value(json!({
            "cluster": null, "hosts": null, "networks": [{"id": "12", "name": null}],
            "datastores": [{"id": 1, "name": "d", "childs": {"image": ["5", 6], "vm": null}}]
        }))
        .unwrap();
        assert_eq!(objects.cluster, None);
        assert!(objects.hosts.is_empty());
        assert_eq!(objects.networks[0].id, Some(12));
        assert_eq!(objects.networks[0].name, None);
        let childs = objects.datastores[0].childs.as_ref().unwrap();
        assert_eq!(childs["image"], vec![5, 6]);
        assert_eq!(objects.to_value()["cluster"], json!({}));
        assert!(OneObjects::from_value(json!({"networks": [{"id": "x"}]})).is_err());
        assert!(OneObjects::from_value(json!({"networks": [{"id": true}]})).is_err());
    }
}
