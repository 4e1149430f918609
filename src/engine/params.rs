//! What an operation was asked to do, computed when it was requested and persisted with it, so
//! a stage run again after a crash (or by `retry`) does exactly the same thing. The service
//! writes these, the stages read them, the store keeps them as JSON; the field names are the
//! stored format.

use serde::{Deserialize, Serialize};

/// An operation's parameters. Stored untagged (the operation's kind is its own column), so each
/// variant refuses fields it does not know and a stored row can only read back as what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(untagged)]
pub enum Params {
    /// SCALING: the input values the scale-up leads to, and the OpenNebula ids of the hosts
    /// the provision had when it was asked (absent in rows written before they were
    /// recorded): the hosts it adds are the others, and a driver that declares it configures
    /// only those and the front-end.
    Scale {
        set: ScaleTarget,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hosts_before: Option<Vec<i64>>,
    },
    /// DEPROVISIONING_ONE: what to remove (nothing selected means everything), and whether
    /// unmanaged VMs and images go too.
    Teardown {
        force: bool,
        #[serde(default)]
        resources: Resources,
    },
    /// `add-ip`: how many public IPs to add, and the count that leads to (absent in rows
    /// written before it was recorded).
    AddIps {
        amount: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<u64>,
    },
    /// `del-ip`: the address range whose public IP goes, and the count that leads to.
    RemoveIp {
        ar_id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<u64>,
    },
    /// Operations that need nothing more than the provision (create, retry of a create).
    #[default]
    #[serde(with = "empty")]
    None,
}

impl Params {
    /// A public-IP change: no stage runs it, so an interrupted one is made again rather than
    /// failed into a stage's failure state.
    pub fn is_public_ip_change(&self) -> bool {
        matches!(self, Params::AddIps { .. } | Params::RemoveIp { .. })
    }
}

/// The values a scale-up sets: `oneform_hosts` for cloud provisions, `oneform_onprem_hosts` for
/// on-prem ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oneform_hosts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oneform_onprem_hosts: Option<Vec<String>>,
}

/// OpenNebula ids selected for a teardown; all empty means the whole provision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datastores: Vec<i64>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.networks.is_empty() && self.datastores.is_empty()
    }
}

impl ScaleTarget {
    /// The target as input values, to merge into `user_inputs_values`.
    pub fn values(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        }
    }
}

/// `None` is stored as `{}` and read back only from an empty object.
mod empty {
    use serde::de::{self, MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_map(Some(0))?.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        struct Empty;
        impl<'de> Visitor<'de> for Empty {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an empty object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                match map.next_key::<String>()? {
                    None => Ok(()),
                    Some(key) => Err(de::Error::unknown_field(&key, &[])),
                }
            }
        }
        deserializer.deserialize_map(Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_variant_round_trips_in_the_stored_format() {
        let cases = [
            (
                Params::Scale {
                    set: ScaleTarget { oneform_hosts: Some(3), oneform_onprem_hosts: None },
                    hosts_before: Some(vec![4, 5]),
                },
                json!({"set": {"oneform_hosts": 3}, "hosts_before": [4, 5]}),
            ),
            (
                Params::Scale {
                    set: ScaleTarget { oneform_hosts: Some(3), oneform_onprem_hosts: None },
                    hosts_before: None,
                },
                json!({"set": {"oneform_hosts": 3}}),
            ),
            (
                Params::Teardown { force: true, resources: Resources { hosts: vec![5], ..Resources::default() } },
                json!({"force": true, "resources": {"hosts": [5]}}),
            ),
            (
                Params::Teardown { force: false, resources: Resources::default() },
                json!({"force": false, "resources": {}}),
            ),
            (Params::AddIps { amount: 2, target: Some(3) }, json!({"amount": 2, "target": 3})),
            (Params::AddIps { amount: 2, target: None }, json!({"amount": 2})),
            (Params::RemoveIp { ar_id: 1, target: Some(0) }, json!({"ar_id": 1, "target": 0})),
            (Params::None, json!({})),
        ];
        for (params, stored) in cases {
            assert_eq!(serde_json::to_value(&params).unwrap(), stored, "{params:?}");
            assert_eq!(serde_json::from_value::<Params>(stored.clone()).unwrap(), params, "{stored}");
        }
    }

    #[test]
    fn a_misspelt_stored_field_is_refused_not_read_as_something_else() {
        assert!(serde_json::from_value::<Params>(json!({"sett": {"oneform_hosts": 3}})).is_err());
        assert!(serde_json::from_value::<Params>(json!({"set": {"oneform_host": 3}})).is_err());
        assert!(serde_json::from_value::<Params>(json!({"set": {}, "hosts_before": [1.5]})).is_err());
        assert!(serde_json::from_value::<Params>(json!({"force": true, "resources": {"vms": [1]}})).is_err());
    }
}
