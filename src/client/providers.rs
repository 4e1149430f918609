//! Provider routes: create, list, show, update, delete. Providers come back unwrapped from
//! their document (`DOCUMENT.TEMPLATE.PROVIDER_BODY`), as the local `--json` prints them.

use serde_json::{Value, json};

use super::{Client, unwrap_document, unwrap_documents};
use crate::service::{Error, NewProvider};

const BODY: &str = "PROVIDER_BODY";

impl Client {
    /// `POST /providers`.
    pub async fn create_provider(&self, new: &NewProvider) -> Result<Value, Error> {
        let mut body = json!({"driver": new.driver, "connection_values": new.connection});
        if let Some(name) = &new.name {
            body["name"] = json!(name);
        }
        if let Some(description) = &new.description {
            body["description"] = json!(description);
        }
        unwrap_document(self.post("/providers", &body).await?, BODY)
    }

    /// `GET /providers`.
    pub async fn providers(&self) -> Result<Vec<Value>, Error> {
        unwrap_documents(self.get("/providers").await?, BODY)
    }

    /// `GET /providers/:id[?include_sensitive=true]`.
    pub async fn provider(&self, id: i64, include_sensitive: bool) -> Result<Value, Error> {
        let query = if include_sensitive { "?include_sensitive=true" } else { "" };
        unwrap_document(self.get(&format!("/providers/{id}{query}")).await?, BODY)
    }

    /// `PATCH /providers/:id` with the fields given; `connection` values are merged by the
    /// server as `provider update` merges them locally.
    pub async fn update_provider(
        &self,
        id: i64,
        name: Option<&str>,
        description: Option<&str>,
        connection: &Value,
    ) -> Result<Value, Error> {
        let mut body = json!({});
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        if let Some(description) = description {
            body["description"] = json!(description);
        }
        if connection.as_object().is_none_or(|c| !c.is_empty()) {
            body["connection"] = connection.clone();
        }
        unwrap_document(self.patch(&format!("/providers/{id}"), &body).await?, BODY)
    }

    /// `DELETE /providers/:id`.
    pub async fn delete_provider(&self, id: i64) -> Result<(), Error> {
        self.delete(&format!("/providers/{id}")).await.map(drop)
    }
}
