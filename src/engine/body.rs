//! The provision body (OneForm's PROVISION_BODY, spec §2.2) as formwork reads and writes it:
//! the attributes formwork uses are typed fields, so a misspelt key is a compile error;
//! attributes it does not use are kept as they are (`other`), so a body written by another
//! version survives a round trip. What a driver defines (input definitions, values, the
//! OpenNebula objects of its deployment) stays JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::driver::input::{self, Input};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProvisionBody {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The deployment's inventory name.
    #[serde(default)]
    pub deployment_file: String,
    #[serde(default)]
    pub provider_id: i64,
    /// driver.conf's `fireedge` section, as the driver wrote it.
    #[serde(default)]
    pub fireedge: Value,
    /// The input definitions the provision was created with (OneForm's JSON shape).
    #[serde(default)]
    pub user_inputs: Value,
    #[serde(default)]
    pub user_inputs_values: Map<String, Value>,
    /// Cluster, hosts, networks and datastores with their OpenNebula ids (`one::OneObjects`).
    #[serde(default)]
    pub one_objects: Value,
    #[serde(default)]
    pub registration_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onedeploy_tags: Option<String>,
    /// The driver folder's name (OneForm documents it; its code never wrote it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_provider: Option<String>,
    /// The driver's version from driver.conf when the provision was made.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub version: Value,
    /// Attributes formwork does not read, kept as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ProvisionBody {
    /// The stored input definitions, enough to redact and mask.
    pub fn inputs(&self) -> Vec<Input> {
        input::stored(&self.user_inputs)
    }

    /// The body as JSON with every sensitive value `__redacted__` (what is served).
    pub fn to_redacted_value(&self) -> Value {
        let mut value = self.to_value();
        value["user_inputs_values"] = Value::Object(input::redacted(&self.inputs(), &self.user_inputs_values));
        value
    }

    /// The values of the sensitive inputs as text, for masking.
    pub fn sensitive_texts(&self) -> Vec<String> {
        input::sensitive_texts(&self.inputs(), &self.user_inputs_values)
    }

    /// Whether the hosts come from `oneform_onprem_hosts` (no Terraform).
    pub fn is_onprem(&self) -> bool {
        self.user_inputs_values.contains_key("oneform_onprem_hosts")
    }

    /// The hosts registered or about to be.
    pub fn hosts(&self) -> &[Value] {
        self.one_objects["hosts"].as_array().map_or(&[], Vec::as_slice)
    }

    /// An input value as a number (`oneform_hosts`, `oneform_public_ips`).
    pub fn count(&self, key: &str) -> Option<u64> {
        self.user_inputs_values.get(key).and_then(Value::as_u64)
    }

    /// The body as JSON (for templates and serving).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_attributes_survive_a_round_trip_and_known_ones_are_typed() {
        let stored = json!({
            "name": "p", "description": "d", "deployment_file": "sim_cluster", "provider_id": 2,
            "fireedge": {"operations": ["add-host"]}, "user_inputs": [{"name": "token", "type": "string", "sensitive": true}],
            "user_inputs_values": {"token": "s3cret", "oneform_hosts": 2},
            "one_objects": {"hosts": [{"id": 4, "name": "10.0.0.4"}]},
            "registration_time": 7, "onedeploy_tags": "t", "cloud_provider": "sim", "custom": {"x": 1}
        });
        let body: ProvisionBody = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(body.other.keys().collect::<Vec<_>>(), ["custom"]);
        assert_eq!(body.cloud_provider.as_deref(), Some("sim"));
        assert_eq!(body.to_value(), stored);
        assert_eq!((body.count("oneform_hosts"), body.hosts().len(), body.is_onprem()), (Some(2), 1, false));
        assert_eq!(body.sensitive_texts(), vec!["s3cret".to_string()]);
        assert_eq!(
            body.to_redacted_value()["user_inputs_values"],
            json!({"token": input::REDACTED, "oneform_hosts": 2})
        );
        assert_eq!(body.user_inputs_values["token"], "s3cret", "the body itself keeps the value");
    }
}
