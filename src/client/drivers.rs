//! Driver routes: list, show, sync, enable, disable, and formwork's schema and validate
//! extensions. Drivers are served bare (no document wrapper), as the local `--json` prints them.

use serde_json::{Value, json};

use super::{Client, segment};
use crate::service::{DriverState, Error};

impl Client {
    /// `GET /drivers[?enabled=true]`.
    pub async fn drivers(&self, enabled_only: bool) -> Result<Vec<Value>, Error> {
        let path = if enabled_only { "/drivers?enabled=true" } else { "/drivers" };
        match self.get(path).await? {
            Value::Array(drivers) => Ok(drivers),
            other => Err(Error::internal(format!("GET {path} answered {} instead of a list", super::kind(&other)))),
        }
    }

    /// `GET /drivers/:name`.
    pub async fn driver(&self, name: &str) -> Result<Value, Error> {
        self.get(&format!("/drivers/{}", segment(name))).await
    }

    /// `POST /drivers/sync`: the report, and an error after it if a driver failed (as
    /// [`Drivers::sync`](crate::service::Drivers::sync) answers).
    pub async fn sync_drivers(&self) -> Result<(Value, Result<(), Error>), Error> {
        let report = self.post("/drivers/sync", &json!({})).await?;
        let count = |key: &str| report[key].as_array().map_or(0, Vec::len);
        let (failed, total) = (count("failed"), count("failed") + count("success"));
        let outcome = if failed == 0 {
            Ok(())
        } else {
            Err(Error::invalid(format!("{failed} of {total} drivers failed verification")))
        };
        Ok((report, outcome))
    }

    /// `POST /drivers/:name/enable` or `/disable`; returns the new state.
    pub async fn set_driver_enabled(&self, name: &str, enable: bool) -> Result<DriverState, Error> {
        let action = if enable { "enable" } else { "disable" };
        self.post(&format!("/drivers/{}/{action}", segment(name)), &json!({})).await?;
        Ok(if enable { DriverState::Enabled } else { DriverState::Disabled })
    }

    /// `GET /drivers/:name/schema[?deployment=D|?connection=true]`.
    pub async fn driver_schema(&self, name: &str, deployment: Option<&str>, connection: bool) -> Result<Value, Error> {
        let query = match (connection, deployment) {
            (true, _) => "?connection=true".to_string(),
            (false, Some(d)) => format!("?deployment={}", segment(d)),
            (false, None) => String::new(),
        };
        self.get(&format!("/drivers/{}/schema{query}", segment(name))).await
    }

    /// `POST /drivers/:name/validate`: the values with defaults filled, or
    /// [`Error::Invalid`] with every field error.
    pub async fn validate(&self, driver: &str, deployment: Option<&str>, values: &Value) -> Result<Value, Error> {
        let mut body = json!({"user_inputs_values": values});
        if let Some(d) = deployment {
            body["deployment_type"] = json!(d);
        }
        self.post(&format!("/drivers/{}/validate", segment(driver)), &body).await
    }
}
