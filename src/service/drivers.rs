//! Operations on driver folders: list, show, sync, enable, disable, the JSON Schema of their
//! inputs, and checking a value set against a deployment. They need no database, so they open
//! only the catalogue. Sensitive defaults never leave this module unredacted. Reads are open to
//! every caller; sync, enable and disable need the oneadmin group.

use serde_json::{Map, Value, json};

use super::{Caller, Error};
use crate::driver::{self, Catalog, Input, Loaded, Shadowed, State, SyncReport, deployment, validate};
use crate::settings::Settings;

/// The driver catalogue, as users reach it.
pub struct Drivers {
    catalog: Catalog,
}

/// A value set that passed a deployment's rules, with defaults filled and sensitive values
/// redacted, and the OpenNebula objects it leads to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Validated {
    pub valid: bool,
    pub driver: String,
    pub deployment: String,
    pub user_inputs_values: Map<String, Value>,
    pub one_objects: Value,
}

impl Drivers {
    pub fn open(settings: &Settings) -> Result<Drivers, Error> {
        Ok(Drivers { catalog: settings.catalog()? })
    }

    /// Driver folders hidden by an earlier one of the same name.
    pub fn shadowed(&self) -> &[Shadowed] {
        self.catalog.shadowed()
    }

    pub fn list(&self, enabled_only: bool) -> Result<Vec<Loaded>, Error> {
        let all = self.catalog.list()?;
        Ok(all.into_iter().filter(|d| !enabled_only || d.state() == State::Enabled).map(redact_loaded).collect())
    }

    pub fn show(&self, name: &str) -> Result<Loaded, Error> {
        Ok(redact_loaded(self.catalog.load(name)?))
    }

    /// Verifies every driver again (the oneadmin group only). The report lists each result; a
    /// driver that failed makes the whole sync an error after the report is made (so a caller
    /// can show both).
    pub fn sync(&self, caller: &Caller) -> Result<(SyncReport, Result<(), Error>), Error> {
        caller.must_be_admin()?;
        let report = self.catalog.sync()?;
        let outcome = if report.failed.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{} of {} drivers failed verification",
                report.failed.len(),
                self.catalog.entries().len()
            )))
        };
        Ok((report, outcome))
    }

    /// Enables or disables a driver (the oneadmin group only); returns its new state.
    pub fn set_enabled(&self, caller: &Caller, name: &str, enable: bool) -> Result<State, Error> {
        caller.must_be_admin()?;
        if enable {
            self.catalog.enable(name)?;
            Ok(State::Enabled)
        } else {
            self.catalog.disable(name)?;
            Ok(State::Disabled)
        }
    }

    /// The JSON Schema of a driver's provision inputs (with a deployment's), or of its
    /// provider connection inputs.
    pub fn schema(&self, name: &str, deployment: Option<&str>, connection: bool) -> Result<Value, Error> {
        let driver = match self.catalog.load(name)? {
            Loaded::Ready(d) => d,
            Loaded::Broken(b) => {
                return Err(driver::Error::Broken { name: b.name, reason: b.error_msg.unwrap_or_default() }.into());
            }
        };
        let (title, inputs) = if connection {
            (format!("{} provider connection", driver.id), driver.connection.clone())
        } else if let Some(wanted) = deployment {
            let d = driver.deployment(Some(wanted))?;
            (format!("{} / {} provision inputs", driver.id, d.inventory), driver.provision_inputs(d))
        } else {
            (format!("{} provision inputs", driver.id), driver.user_inputs.clone())
        };
        Ok(driver::schema::of(&title, &redact_inputs(&inputs)))
    }

    /// Checks values for a driver's deployment. Wrong values are an [`Error::Invalid`] with
    /// every field error.
    pub fn validate(&self, driver: &str, deployment: Option<&str>, values: &Value) -> Result<Validated, Error> {
        let driver = self.catalog.usable(driver)?;
        let deployment = driver.deployment(deployment)?;
        let inputs = driver.provision_inputs(deployment);
        let filled = validate::validate(&inputs, values).map_err(|errors| {
            let count = errors.iter().count();
            let headline = format!(
                "{count} input{} of {} / {} {} wrong",
                if count == 1 { "" } else { "s" },
                driver.id,
                deployment.inventory,
                if count == 1 { "is" } else { "are" },
            );
            Error::values(headline, &errors)
        })?;
        let shown = driver::input::redacted(&inputs, &filled);
        let one_objects = deployment::one_objects(&deployment.source, Some(&shown)).map_err(Error::invalid)?;
        Ok(Validated {
            valid: true,
            driver: driver.id.clone(),
            deployment: deployment.inventory.clone(),
            user_inputs_values: shown,
            one_objects: json!(one_objects),
        })
    }
}

/// A copy of inputs whose sensitive defaults are hidden.
fn redact_inputs(inputs: &[Input]) -> Vec<Input> {
    let mut inputs = inputs.to_vec();
    for input in inputs.iter_mut().filter(|i| i.is_sensitive() && i.default.is_some()) {
        input.default = Some(Value::String(driver::input::REDACTED.into()));
    }
    inputs
}

fn redact_loaded(loaded: Loaded) -> Loaded {
    match loaded {
        Loaded::Ready(mut d) => {
            d.connection = redact_inputs(&d.connection);
            d.user_inputs = redact_inputs(&d.user_inputs);
            for c in &mut d.deployment_confs {
                c.user_inputs = c.user_inputs.as_deref().map(redact_inputs);
            }
            Loaded::Ready(d)
        }
        broken => broken,
    }
}
