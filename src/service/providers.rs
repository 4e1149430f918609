//! Providers: a driver plus connection values (credentials), OneForm's PROVIDER_BODY (spec §3).
//! Connection values are validated against the driver's `provider.tf` inputs, sensitive ones
//! are served as `__redacted__` unless asked for, a provider in use cannot be deleted, and an
//! `onprem` provider always exists.

use serde_json::{Map, Value, json};

use super::access::{Caller, Kind};
use super::documents::Document;
use super::{Error, Service};
use crate::driver::{self, Catalog, input, validate};
use crate::store::{Ownership, ProviderRow, Store};

/// OneForm's placeholder for hidden values; echoed back in an update it means "unchanged".
pub use crate::driver::input::REDACTED;

/// OneForm answers 400 for both (§3.2).
fn onprem(what: &str) -> Error {
    Error::invalid(format!("the onprem provider is built in: it cannot be {what}"))
}

fn invalid(driver: &str, errors: &validate::Errors) -> Error {
    Error::values(format!("connection values for driver '{driver}' are wrong"), errors)
}

/// What `provider create` is given.
#[derive(Debug, Clone, Default)]
pub struct NewProvider {
    pub driver: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub connection: Value,
}

/// Creates a provider owned by `owner` after validating its connection values.
pub fn create_owned(
    catalog: &Catalog,
    store: &Store,
    new: &NewProvider,
    owner: &Ownership,
    time: i64,
) -> Result<ProviderRow, Error> {
    if new.driver == "onprem" {
        return Err(onprem("created again"));
    }
    let driver = catalog.usable(&new.driver)?;
    let id = insert(store, &driver, new, owner, time)?;
    Ok(store.provider(id)?)
}

fn insert(
    store: &Store,
    driver: &driver::Driver,
    new: &NewProvider,
    owner: &Ownership,
    time: i64,
) -> Result<i64, Error> {
    let connection =
        validate::validate(&driver.connection, &new.connection).map_err(|errors| invalid(&driver.id, &errors))?;
    let name = new.name.clone().unwrap_or_else(|| driver.name.clone());
    super::names::check_provider(&name)?;
    let body = json!({
        "name": name,
        "description": new.description.clone().unwrap_or_else(|| driver.description.clone()),
        "driver": driver.id,
        "version": driver.version,
        "fireedge": driver.fireedge,
        "user_inputs": driver.connection,
        "connection": connection,
        "registration_time": time,
    });
    Ok(store.insert_provider_of(&name, &driver.id, &body, owner, time)?)
}

/// Makes sure a provider of driver `onprem` exists (OneForm creates it at server start), when
/// an `onprem` driver is installed; returns its id.
pub fn ensure_onprem(catalog: &Catalog, store: &Store, time: i64) -> Result<Option<i64>, Error> {
    if let Some(existing) = store.providers_of_driver("onprem")?.first() {
        return Ok(Some(existing.id));
    }
    let loaded = match catalog.load("onprem") {
        // Without an onprem driver there is nothing to make a provider of.
        Err(driver::Error::NotFound { .. }) => return Ok(None),
        other => other?,
    };
    let driver = match loaded {
        driver::Loaded::Ready(d) => *d,
        driver::Loaded::Broken(b) => {
            return Err(driver::Error::Broken { name: b.name, reason: b.error_msg.unwrap_or_default() }.into());
        }
    };
    let new = NewProvider { driver: "onprem".into(), connection: json!({}), ..NewProvider::default() };
    insert(store, &driver, &new, &Ownership::default(), time).map(Some)
}

/// A provider as served: the body plus `id` and `provision_ids`, sensitive values hidden
/// unless `include_sensitive`.
pub fn serve(row: &ProviderRow, include_sensitive: bool) -> Value {
    let mut body = row.body.clone();
    if !include_sensitive && let Some(Value::Object(connection)) = body.get_mut("connection") {
        *connection = input::shown_connection(&row.body);
    }
    let mut out = Map::new();
    out.insert("id".into(), json!(row.id));
    if let Value::Object(fields) = body {
        out.extend(fields);
    }
    out.insert("provision_ids".into(), json!(row.provision_ids));
    Value::Object(out)
}

/// Renames a provider and/or merges connection values (values equal to `__redacted__` are
/// ignored, so a served body can be sent back), then validates the result.
pub fn update(
    store: &Store,
    id: i64,
    name: Option<&str>,
    description: Option<&str>,
    patch: &Value,
) -> Result<ProviderRow, Error> {
    let row = store.provider(id)?;
    name.map(super::names::check_provider).transpose()?;
    let mut body = row.body.clone();
    let inputs = input::prepared(&body["user_inputs"]);
    let mut connection = body["connection"].as_object().cloned().unwrap_or_default();
    for (key, value) in patch.as_object().into_iter().flatten() {
        if value.as_str() != Some(REDACTED) {
            connection.insert(key.clone(), value.clone());
        }
    }
    let checked =
        validate::validate(&inputs, &Value::Object(connection)).map_err(|errors| invalid(&row.driver, &errors))?;
    body["connection"] = Value::Object(checked);
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    if let Some(description) = description {
        body["description"] = json!(description);
    }
    let name = body["name"].as_str().unwrap_or(&row.name).to_string();
    store.update_provider(id, &name, &body)?;
    Ok(store.provider(id)?)
}

pub fn delete(store: &Store, id: i64) -> Result<(), Error> {
    if store.provider(id)?.driver == "onprem" {
        return Err(onprem("deleted"));
    }
    Ok(store.delete_provider(id)?)
}

/// Provider changes as the front ends ask for them; reads and creates are in `documents`.
impl Service {
    /// Renames a provider or merges connection values (see [`update`]); needs the oneadmin
    /// group and MANAGE on it. Answers the provider as the caller now sees it.
    pub fn update_provider(
        &self,
        caller: &Caller,
        id: i64,
        name: Option<&str>,
        description: Option<&str>,
        patch: &Value,
    ) -> Result<Document, Error> {
        self.may_change(caller, Kind::Provider, id)?;
        update(&self.store, id, name, description, patch)?;
        self.provider_for(caller, id, false)
    }

    /// Deletes a provider no provision uses; needs the oneadmin group and MANAGE on it.
    pub fn delete_provider(&self, caller: &Caller, id: i64) -> Result<(), Error> {
        self.may_change(caller, Kind::Provider, id)?;
        delete(&self.store, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Creates a provider of oneadmin's.
    fn create(catalog: &Catalog, store: &Store, new: &NewProvider, time: i64) -> Result<ProviderRow, Error> {
        create_owned(catalog, store, new, &Ownership::default(), time)
    }

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let tmp = tempfile::tempdir().unwrap();
        let builtin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers");
        let catalog = Catalog::open(&builtin, &[], tmp.path().join("states")).unwrap();
        (tmp, catalog)
    }

    #[test]
    fn create_validates_redacts_and_updates() {
        let (_tmp, catalog) = catalog();
        let store = Store::open_in_memory().unwrap();
        let bad = NewProvider { driver: "sim".into(), connection: json!({"endpoint": 3}), ..NewProvider::default() };
        let err = create(&catalog, &store, &bad, 1).unwrap_err().to_string();
        assert!(err.contains("api_token: is missing") && err.contains("endpoint: must be a string"), "{err}");
        assert!(store.providers().unwrap().is_empty(), "a refused create stores nothing");

        let good = NewProvider {
            driver: "sim".into(),
            connection: json!({"api_token": "s3cr3t-canary"}),
            ..NewProvider::default()
        };
        let row = create(&catalog, &store, &good, 1).unwrap();
        let served = serve(&row, false);
        assert_eq!(served["connection"]["api_token"], REDACTED);
        assert_eq!(served["connection"]["endpoint"], "/tmp/formwork-sim-cloud", "defaults are filled");
        assert_eq!(served["name"], "Sim");
        assert!(!served.to_string().contains("s3cr3t-canary"));
        assert_eq!(serve(&row, true)["connection"]["api_token"], "s3cr3t-canary");
        assert_eq!(input::connection(&row.body).1, vec!["s3cr3t-canary".to_string()]);

        let updated =
            update(&store, row.id, Some("renamed"), None, &json!({"api_token": REDACTED, "endpoint": "/x"})).unwrap();
        assert_eq!(updated.name, "renamed");
        assert_eq!(serve(&updated, true)["connection"], json!({"api_token": "s3cr3t-canary", "endpoint": "/x"}));
        assert!(update(&store, row.id, None, None, &json!({"endpoint": 1})).is_err());
    }

    #[test]
    fn onprem_exists_once_and_cannot_be_created_or_deleted() {
        let (_tmp, catalog) = catalog();
        let store = Store::open_in_memory().unwrap();
        let id = ensure_onprem(&catalog, &store, 1).unwrap().unwrap();
        assert_eq!(ensure_onprem(&catalog, &store, 2).unwrap(), Some(id));
        assert_eq!(store.providers().unwrap().len(), 1);
        let again = NewProvider { driver: "onprem".into(), connection: json!({}), ..NewProvider::default() };
        assert!(matches!(create(&catalog, &store, &again, 3), Err(Error::Invalid { .. })));
        assert!(matches!(delete(&store, id), Err(Error::Invalid { .. })));
    }
}
