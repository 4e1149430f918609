//! Provision records: list, show, update, delete. Provisions come back unwrapped from their
//! document (`DOCUMENT.TEMPLATE.PROVISION_BODY`), which is what `--json` prints locally.
//! Operations that run stages are in `follow`.

use serde_json::{Value, json};

use super::{Client, unwrap_document, unwrap_documents};
use crate::service::{Error, NewProvision, Shown, Update};

pub(super) const BODY: &str = "PROVISION_BODY";

impl Client {
    /// `GET /provisions[?all=true]`, each without its historic as the local list serves them
    /// (OneForm's list documents carry it; `provision show` has it).
    pub async fn provisions(&self, all: bool) -> Result<Vec<Value>, Error> {
        let path = if all { "/provisions?all=true" } else { "/provisions" };
        let mut bodies = unwrap_documents(self.get(path).await?, BODY)?;
        for body in &mut bodies {
            if let Some(historic) = body.get_mut("historic") {
                *historic = Value::Array(Vec::new());
            }
        }
        Ok(bodies)
    }

    /// `GET /provisions/:id` and the operation running on it, if any.
    pub async fn provision(&self, id: i64, include_sensitive: bool) -> Result<Shown, Error> {
        let provision = self.provision_body(id, include_sensitive).await?;
        let running = self.records(id).await?.into_iter().find(|op| !op.status.has_ended());
        Ok(Shown { provision, running })
    }

    /// `GET /provisions/:id[?include_sensitive=true]`, unwrapped.
    pub(super) async fn provision_body(&self, id: i64, include_sensitive: bool) -> Result<Value, Error> {
        let query = if include_sensitive { "?include_sensitive=true" } else { "" };
        unwrap_document(self.get(&format!("/provisions/{id}{query}")).await?, BODY)
    }

    /// `PATCH /provisions/:id` with the fields given.
    pub async fn update_provision(&self, id: i64, change: &Update) -> Result<Value, Error> {
        let mut body = json!({});
        let fields = [
            ("name", change.name.as_ref().map(|v| json!(v))),
            ("description", change.description.as_ref().map(|v| json!(v))),
            ("user_inputs_values", change.values.clone()),
            ("onedeploy_tags", change.onedeploy_tags.as_ref().map(|v| json!(v))),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                body[key] = value;
            }
        }
        unwrap_document(self.patch(&format!("/provisions/{id}"), &body).await?, BODY)
    }

    /// The deployment and provider a create uses: the given ones, else the driver's only
    /// deployment and the driver's only provider, as `provision create` picks them locally
    /// (OneForm's API needs both named).
    pub(super) async fn create_defaults(&self, new: &NewProvision) -> Result<(String, i64), Error> {
        let deployment = match &new.deployment {
            Some(d) => d.clone(),
            None => self.only_deployment(&new.driver).await?,
        };
        let provider_id = match new.provider_id {
            Some(p) => p,
            None => self.only_provider(&new.driver).await?,
        };
        Ok((deployment, provider_id))
    }

    async fn only_deployment(&self, driver: &str) -> Result<String, Error> {
        let served = self.driver(driver).await?;
        let Some(confs) = served["deployment_confs"].as_array() else {
            let reason = served["error_msg"].as_str().unwrap_or("(no reason recorded)");
            return Err(Error::not_allowed(format!(
                "driver '{driver}' is in ERROR state: {reason}. Fix the driver folder, then run `formwork driver sync`"
            )));
        };
        let inventories: Vec<&str> = confs.iter().filter_map(|c| c["inventory"].as_str()).collect();
        match inventories.as_slice() {
            [only] => Ok(only.to_string()),
            many => Err(Error::invalid(format!(
                "driver '{driver}' has several deployments ({}); choose one with --deployment",
                many.join(", ")
            ))),
        }
    }

    async fn only_provider(&self, driver: &str) -> Result<i64, Error> {
        let providers = self.providers().await?;
        let ids: Vec<i64> = providers
            .iter()
            .filter(|p| p["driver"].as_str().is_some_and(|d| d.eq_ignore_ascii_case(driver)))
            .filter_map(|p| p["id"].as_i64())
            .collect();
        match ids.as_slice() {
            [only] => Ok(*only),
            [] => Err(Error::not_found(format!(
                "no provider of driver '{driver}' exists; create one with `formwork provider create {driver} --values FILE`"
            ))),
            many => Err(Error::invalid(format!(
                "several providers of driver '{driver}' exist ({}); choose one with --provider",
                many.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// `DELETE /provisions/:id[?force=true]`.
    pub async fn delete_provision(&self, id: i64, force: bool) -> Result<(), Error> {
        let query = if force { "?force=true" } else { "" };
        self.delete(&format!("/provisions/{id}{query}")).await.map(drop)
    }
}
