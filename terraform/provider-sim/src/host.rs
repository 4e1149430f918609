//! The `sim_host` resource: a host with an id and the lowest free address of its
//! `cidr_block`. Name, instance type and tags change in place; a new block or zone replaces
//! the host. Read follows the record, so a record deleted or edited outside Terraform shows up
//! as a re-creation or an update in the next plan.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint as C, AttributeType as T, Block, Description, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::cloud::{Cloud, Kind};
use crate::faults::Faults;
use crate::provider::{Handle, attribute, attribute_error, error, report, tags_of, tags_value, text, text_value};
use crate::records::{self, HostRecord, HostSpec, missing};

/// The resource's state as Terraform holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    pub id: Value<String>,
    pub name: Value<String>,
    pub instance_type: Value<String>,
    pub zone: Value<String>,
    pub cidr_block: Value<String>,
    pub tags: Value<BTreeMap<String, Value<String>>>,
    pub ip: Value<String>,
}

impl HostState {
    fn from_record(record: &HostRecord) -> HostState {
        HostState {
            id: Value::Value(record.id.clone()),
            name: Value::Value(record.name.clone()),
            instance_type: Value::Value(record.instance_type.clone()),
            zone: text_value(&record.zone),
            cidr_block: Value::Value(record.cidr_block.clone()),
            tags: tags_value(&record.tags),
            ip: Value::Value(record.ip.clone()),
        }
    }

    fn spec(&self) -> HostSpec {
        HostSpec {
            name: text(&self.name).unwrap_or_default(),
            instance_type: text(&self.instance_type).unwrap_or_default(),
            zone: text(&self.zone),
            cidr_block: text(&self.cidr_block).unwrap_or_default(),
            tags: tags_of(&self.tags),
        }
    }

    fn id(&self) -> String {
        text(&self.id).unwrap_or_default()
    }
}

/// `sim_host`.
pub struct HostResource {
    handle: Handle,
}

impl HostResource {
    pub fn new(handle: Handle) -> Self {
        HostResource { handle }
    }

    /// The cloud and its faults file, after the injected delay.
    async fn cloud_for_change(&self, diags: &mut Diagnostics) -> Option<(Cloud, Faults)> {
        let cloud = self.handle.cloud(diags)?;
        let faults = report(diags, Faults::load(cloud.root()))?;
        tokio::time::sleep(faults.delay()).await;
        Some((cloud, faults))
    }
}

#[async_trait]
impl Resource for HostResource {
    type State<'a> = HostState;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        let string = || T::String;
        Some(Schema {
            version: 1,
            block: Block {
                description: Description::plain("A host of the simulated cloud"),
                attributes: HashMap::from([
                    attribute("id", string(), C::Computed, "Host id (h-<8 hex digits>)", false),
                    attribute("name", string(), C::Required, "Host name", false),
                    attribute("instance_type", string(), C::Required, "Size of the host", false),
                    attribute("zone", string(), C::Optional, "Zone (changing it replaces the host)", false),
                    attribute(
                        "cidr_block",
                        string(),
                        C::Required,
                        "Block the address comes from (changing it replaces the host)",
                        false,
                    ),
                    attribute("tags", T::Map(Box::new(string())), C::Optional, "Tags", false),
                    attribute("ip", string(), C::Computed, "Lowest free address of cidr_block", false),
                ]),
                ..Default::default()
            },
        })
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: HostState) -> Option<()> {
        if let Value::Value(block) = &config.cidr_block
            && let Err(err) = records::parse_block(block)
        {
            attribute_error(diags, "cidr_block", err.to_string());
        }
        for (name, value) in [("name", &config.name), ("instance_type", &config.instance_type)] {
            if matches!(value, Value::Value(text) if text.is_empty()) {
                attribute_error(diags, name, format!("sim: {name} must not be empty"));
            }
        }
        if let Value::Value(tags) = &config.tags
            && tags.values().any(Value::is_null)
        {
            attribute_error(diags, "tags", "sim: tags must not have null values");
        }
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: HostState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(HostState, ValueEmpty)> {
        let Some(cloud) = self.handle.cloud(diags) else { return Some((state, private_state)) };
        match cloud.read::<HostRecord>(Kind::Host, &state.id()) {
            Ok(Some(record)) => Some((HostState::from_record(&record), private_state)),
            // Deleted outside Terraform: dropped from the state, so the next plan re-creates it.
            Ok(None) => None,
            Err(err) => {
                error(diags, err.to_string());
                Some((state, private_state))
            }
        }
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        proposed: HostState,
        _config: HostState,
        _meta: ValueEmpty,
    ) -> Option<(HostState, ValueEmpty)> {
        Some((HostState { id: Value::Unknown, ip: Value::Unknown, ..proposed }, ValueEmpty::default()))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior: HostState,
        proposed: HostState,
        _config: HostState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(HostState, ValueEmpty, Vec<AttributePath>)> {
        let mut replace = Vec::new();
        if proposed.cidr_block != prior.cidr_block {
            replace.push(AttributePath::new("cidr_block"));
        }
        if proposed.zone != prior.zone {
            replace.push(AttributePath::new("zone"));
        }
        // Unchanged id and address in place; a replacement gets new ones.
        let planned = if replace.is_empty() {
            HostState { id: prior.id, ip: prior.ip, ..proposed }
        } else {
            HostState { id: Value::Unknown, ip: Value::Unknown, ..proposed }
        };
        Some((planned, private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior: HostState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<ValueEmpty> {
        Some(private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned: HostState,
        _config: HostState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(HostState, ValueEmpty)> {
        let (cloud, faults) = self.cloud_for_change(diags).await?;
        let record = report(diags, records::create_host(&cloud, &faults, planned.spec()))?;
        Some((HostState::from_record(&record), private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: HostState,
        planned: HostState,
        _config: HostState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(HostState, ValueEmpty)> {
        let cloud = self.handle.cloud(diags)?;
        let record = report(diags, records::update_host(&cloud, &prior.id(), planned.spec()))?;
        Some((HostState::from_record(&record), private_state))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: HostState,
        _private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<()> {
        let (cloud, faults) = self.cloud_for_change(diags).await?;
        report(diags, records::delete_host(&cloud, &faults, &prior.id()))
    }

    async fn import<'a>(&self, diags: &mut Diagnostics, id: String) -> Option<(HostState, ValueEmpty)> {
        let cloud = self.handle.cloud(diags)?;
        let record = report(diags, cloud.read::<HostRecord>(Kind::Host, &id))?;
        let record = report(diags, record.ok_or_else(|| missing(Kind::Host, &id)))?;
        Some((HostState::from_record(&record), ValueEmpty::default()))
    }
}
