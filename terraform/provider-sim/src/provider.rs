//! The `sim` provider: its configuration (`token`, `root`), the cloud it opens once
//! configured, and the resources it serves. Also the small conversions between Terraform
//! values and plain Rust that both resources use.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{Attribute, AttributeConstraint, AttributeType, Block, Description, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostic, Diagnostics, DynamicResource, Provider};

use crate::cloud::{Cloud, Error};
use crate::host::HostResource;
use crate::public_ip::PublicIpResource;
use crate::records::Tags;

/// The cloud the provider was configured with, shared with its resources: Terraform asks for
/// the resources before it configures the provider.
#[derive(Debug, Clone, Default)]
pub struct Handle(Arc<RwLock<Option<Cloud>>>);

impl Handle {
    /// The configured cloud, or an error for Terraform to show.
    pub fn cloud(&self, diags: &mut Diagnostics) -> Option<Cloud> {
        let cloud = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if cloud.is_none() {
            error(diags, "sim: the provider is not configured (is `root` known before apply?)");
        }
        cloud
    }

    fn set(&self, cloud: Cloud) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(cloud);
    }
}

/// The `provider "sim"` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub token: Value<String>,
    pub root: Value<String>,
}

/// The provider served to Terraform.
#[derive(Debug, Default, Clone)]
pub struct SimProvider {
    handle: Handle,
}

#[async_trait]
impl Provider for SimProvider {
    type Config<'a> = Config;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 1,
            block: Block {
                description: Description::plain("A simulated cloud kept as JSON records in a directory"),
                attributes: HashMap::from([
                    attribute("token", AttributeType::String, AttributeConstraint::Required, "Account token", true),
                    attribute(
                        "root",
                        AttributeType::String,
                        AttributeConstraint::Required,
                        "Directory that is the simulated cloud (created if missing)",
                        false,
                    ),
                ]),
                ..Default::default()
            },
        })
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Config) -> Option<()> {
        for (name, value) in [("token", &config.token), ("root", &config.root)] {
            if matches!(value, Value::Value(text) if text.is_empty()) {
                attribute_error(diags, name, format!("sim: {name} must not be empty"));
            }
        }
        Some(())
    }

    async fn configure<'a>(&self, diags: &mut Diagnostics, _terraform_version: String, config: Config) -> Option<()> {
        // An unknown root (computed from a resource) leaves the provider unconfigured; the
        // resources then say so if they are used.
        let Value::Value(root) = config.root else { return Some(()) };
        let root = match std::path::absolute(PathBuf::from(&root)) {
            Ok(root) => root,
            Err(err) => {
                attribute_error(diags, "root", format!("sim: root {root:?}: {err}"));
                return None;
            }
        };
        self.handle.set(report(diags, Cloud::open(&root))?);
        Some(())
    }

    fn get_resources(&self, _diags: &mut Diagnostics) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        Some(HashMap::from([
            ("host".to_string(), Box::new(HostResource::new(self.handle.clone())) as Box<dyn DynamicResource>),
            ("public_ip".to_string(), Box::new(PublicIpResource::new(self.handle.clone()))),
        ]))
    }
}

/// One schema attribute.
pub fn attribute(
    name: &str,
    attr_type: AttributeType,
    constraint: AttributeConstraint,
    description: &str,
    sensitive: bool,
) -> (String, Attribute) {
    let attr =
        Attribute { attr_type, description: Description::plain(description), constraint, sensitive, deprecated: false };
    (name.to_string(), attr)
}

/// Adds an error for Terraform to show. Diagnostics are built here rather than with
/// tf-provider's constructors, which append a Rust backtrace to the detail whenever
/// RUST_BACKTRACE is set in the environment Terraform passes on.
pub fn error(diags: &mut Diagnostics, message: impl Into<String>) {
    add_error(diags, AttributePath::root(), message.into());
}

/// Adds an error about one attribute.
pub fn attribute_error(diags: &mut Diagnostics, name: &'static str, message: impl Into<String>) {
    add_error(diags, AttributePath::new(name), message.into());
}

fn add_error(diags: &mut Diagnostics, attribute: AttributePath, summary: String) {
    diags.add_error(Diagnostic { summary: summary.into(), detail: "".into(), attribute });
}

/// The value of a cloud operation, or its error added to the diagnostics.
pub fn report<T>(diags: &mut Diagnostics, result: Result<T, Error>) -> Option<T> {
    result.map_err(|err| error(diags, err.to_string())).ok()
}

/// An optional string argument; unknown values never reach an apply.
pub fn text(value: &Value<String>) -> Option<String> {
    value.as_ref_option().cloned()
}

/// A `map(string)` argument (null elements are refused by the resources' `validate`).
pub fn tags_of(value: &Value<BTreeMap<String, Value<String>>>) -> Tags {
    value
        .as_ref_option()
        .map(|tags| tags.iter().filter_map(|(k, v)| v.as_ref_option().map(|v| (k.clone(), v.clone()))).collect())
}

/// Tags from a record as a Terraform value.
pub fn tags_value(tags: &Tags) -> Value<BTreeMap<String, Value<String>>> {
    match tags {
        Some(tags) => Value::Value(tags.iter().map(|(k, v)| (k.clone(), Value::Value(v.clone()))).collect()),
        None => Value::Null,
    }
}

/// A record's optional string as a Terraform value.
pub fn text_value(text: &Option<String>) -> Value<String> {
    text.clone().map_or(Value::Null, Value::Value)
}
