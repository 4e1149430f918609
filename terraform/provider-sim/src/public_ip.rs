//! The `sim_public_ip` resource: an address from 198.51.100.0/24 (the lowest free one),
//! optionally attached to a host. Attachment and tags change in place.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint as C, AttributeType as T, Block, Description, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::cloud::{Cloud, Kind};
use crate::faults::Faults;
use crate::provider::{Handle, attribute, attribute_error, error, report, tags_of, tags_value, text, text_value};
use crate::records::{self, PublicIpRecord, missing};

/// The resource's state as Terraform holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicIpState {
    pub id: Value<String>,
    pub host_id: Value<String>,
    pub tags: Value<BTreeMap<String, Value<String>>>,
    pub address: Value<String>,
}

impl PublicIpState {
    fn from_record(record: &PublicIpRecord) -> PublicIpState {
        PublicIpState {
            id: Value::Value(record.id.clone()),
            host_id: text_value(&record.host_id),
            tags: tags_value(&record.tags),
            address: Value::Value(record.address.clone()),
        }
    }

    fn id(&self) -> String {
        text(&self.id).unwrap_or_default()
    }
}

/// `sim_public_ip`.
pub struct PublicIpResource {
    handle: Handle,
}

impl PublicIpResource {
    pub fn new(handle: Handle) -> Self {
        PublicIpResource { handle }
    }

    /// The cloud, after the delay `faults.json` asks for.
    async fn cloud_for_change(&self, diags: &mut Diagnostics) -> Option<Cloud> {
        let cloud = self.handle.cloud(diags)?;
        let faults = report(diags, Faults::load(cloud.root()))?;
        tokio::time::sleep(faults.delay()).await;
        Some(cloud)
    }
}

#[async_trait]
impl Resource for PublicIpResource {
    type State<'a> = PublicIpState;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 1,
            block: Block {
                description: Description::plain("A public address of the simulated cloud"),
                attributes: HashMap::from([
                    attribute("id", T::String, C::Computed, "Public IP id (ip-<8 hex digits>)", false),
                    attribute("host_id", T::String, C::Optional, "Host the address is attached to", false),
                    attribute("tags", T::Map(Box::new(T::String)), C::Optional, "Tags", false),
                    attribute("address", T::String, C::Computed, "Lowest free address of 198.51.100.0/24", false),
                ]),
                ..Default::default()
            },
        })
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: PublicIpState) -> Option<()> {
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
        state: PublicIpState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(PublicIpState, ValueEmpty)> {
        let Some(cloud) = self.handle.cloud(diags) else { return Some((state, private_state)) };
        match cloud.read::<PublicIpRecord>(Kind::PublicIp, &state.id()) {
            Ok(Some(record)) => Some((PublicIpState::from_record(&record), private_state)),
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
        proposed: PublicIpState,
        _config: PublicIpState,
        _meta: ValueEmpty,
    ) -> Option<(PublicIpState, ValueEmpty)> {
        Some((PublicIpState { id: Value::Unknown, address: Value::Unknown, ..proposed }, ValueEmpty::default()))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior: PublicIpState,
        proposed: PublicIpState,
        _config: PublicIpState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(PublicIpState, ValueEmpty, Vec<AttributePath>)> {
        Some((PublicIpState { id: prior.id, address: prior.address, ..proposed }, private_state, Vec::new()))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior: PublicIpState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<ValueEmpty> {
        Some(private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned: PublicIpState,
        _config: PublicIpState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(PublicIpState, ValueEmpty)> {
        let cloud = self.cloud_for_change(diags).await?;
        let record = report(diags, records::create_public_ip(&cloud, text(&planned.host_id), tags_of(&planned.tags)))?;
        Some((PublicIpState::from_record(&record), private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: PublicIpState,
        planned: PublicIpState,
        _config: PublicIpState,
        private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<(PublicIpState, ValueEmpty)> {
        let cloud = self.handle.cloud(diags)?;
        let (host_id, tags) = (text(&planned.host_id), tags_of(&planned.tags));
        let record = report(diags, records::update_public_ip(&cloud, &prior.id(), host_id, tags))?;
        Some((PublicIpState::from_record(&record), private_state))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: PublicIpState,
        _private_state: ValueEmpty,
        _meta: ValueEmpty,
    ) -> Option<()> {
        let cloud = self.cloud_for_change(diags).await?;
        report(diags, records::delete_public_ip(&cloud, &prior.id()))
    }

    async fn import<'a>(&self, diags: &mut Diagnostics, id: String) -> Option<(PublicIpState, ValueEmpty)> {
        let cloud = self.handle.cloud(diags)?;
        let record = report(diags, cloud.read::<PublicIpRecord>(Kind::PublicIp, &id))?;
        let record = report(diags, record.ok_or_else(|| missing(Kind::PublicIp, &id)))?;
        Some((PublicIpState::from_record(&record), ValueEmpty::default()))
    }
}
