//! Where a command runs: here, through the service layer over this machine's data, or on a
//! formwork server through its REST API (`--server URL` or `ONEFORM_URL`). Commands call the
//! [`Backend`] and render what it answers; both sides answer the same types (served bodies as
//! JSON values, [`Ran`], [`Started`], [`Shown`], …) and the same [`Error`] variants, so
//! tables, `--json` and exit codes do not depend on where the work ran.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::client::{self, Client, LogLine};
use crate::service::{
    Caller, Cancelled, Change, DriverState, Drivers, Error, NewProvider, NewProvision, Observer, Orphans, Ran, Request,
    Service, Shown, Started, Update,
};
use crate::settings::{Flags, Settings};

// One backend per process, made once: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Local(Local),
    Remote(Client),
}

/// This machine's data, opened on first use: driver commands need no database.
pub struct Local {
    /// Who the commands act for: the local operator, oneadmin (as OneForm's own server acts).
    caller: Caller,
    settings: Settings,
    drivers: OnceLock<Drivers>,
    service: OnceLock<Arc<Service>>,
}

impl Backend {
    /// A server if `--server` or `ONEFORM_URL` names one, else this machine.
    pub fn choose(server: Option<&str>, flags: Flags, env: &HashMap<String, String>) -> anyhow::Result<Backend> {
        match client::Config::resolve(server, env)? {
            Some(config) => Ok(Backend::Remote(Client::new(&config)?)),
            None => Ok(Backend::Local(Local::new(Settings::resolve(flags, env)?))),
        }
    }

    /// The local service, for what only makes sense on this machine's data; through a server
    /// it is refused, naming the command.
    pub fn local_only(&self, command: &str, why: &str) -> Result<&Arc<Service>, Error> {
        match self {
            Backend::Local(local) => local.service(),
            Backend::Remote(client) => Err(Error::invalid(format!(
                "`formwork {command}` does not run through a server ({}): {why}",
                client.url()
            ))),
        }
    }

    /// Local only: a background resume of operations whose process died. A server resumes
    /// its own.
    pub fn adopt_orphans(&self) -> Result<Option<Orphans>, Error> {
        match self {
            Backend::Local(local) => local.service()?.adopt_orphans(),
            Backend::Remote(_) => Ok(None),
        }
    }

    /// Warnings about the driver folders (shadowed ones); the server logs its own.
    pub fn driver_warnings(&self) -> Result<Vec<String>, Error> {
        let Backend::Local(local) = self else { return Ok(Vec::new()) };
        let shadowed = local.drivers()?.shadowed().iter().map(|s| {
            format!(
                "driver '{}' at {} is shadowed by {} and is not used",
                s.name,
                s.path.display(),
                s.shadowed_by.display()
            )
        });
        Ok(shadowed.collect())
    }

    pub async fn drivers(&self, enabled_only: bool) -> Result<Vec<Value>, Error> {
        match self {
            Backend::Local(local) => local.drivers()?.list(enabled_only)?.iter().map(to_value).collect(),
            Backend::Remote(client) => client.drivers(enabled_only).await,
        }
    }

    pub async fn driver(&self, name: &str) -> Result<Value, Error> {
        match self {
            Backend::Local(local) => to_value(&local.drivers()?.show(name)?),
            Backend::Remote(client) => client.driver(name).await,
        }
    }

    pub async fn sync_drivers(&self) -> Result<(Value, Result<(), Error>), Error> {
        match self {
            Backend::Local(local) => {
                let (report, outcome) = local.drivers()?.sync(&local.caller)?;
                Ok((to_value(&report)?, outcome))
            }
            Backend::Remote(client) => client.sync_drivers().await,
        }
    }

    pub async fn set_driver_enabled(&self, name: &str, enable: bool) -> Result<DriverState, Error> {
        match self {
            Backend::Local(local) => local.drivers()?.set_enabled(&local.caller, name, enable),
            Backend::Remote(client) => client.set_driver_enabled(name, enable).await,
        }
    }

    pub async fn driver_schema(&self, name: &str, deployment: Option<&str>, connection: bool) -> Result<Value, Error> {
        match self {
            Backend::Local(local) => local.drivers()?.schema(name, deployment, connection),
            Backend::Remote(client) => client.driver_schema(name, deployment, connection).await,
        }
    }

    /// Values checked against a driver's deployment, with defaults filled.
    pub async fn validate(&self, driver: &str, deployment: Option<&str>, values: &Value) -> Result<Value, Error> {
        match self {
            Backend::Local(local) => to_value(&local.drivers()?.validate(driver, deployment, values)?),
            Backend::Remote(client) => client.validate(driver, deployment, values).await,
        }
    }

    pub async fn create_provider(&self, new: &NewProvider) -> Result<Value, Error> {
        match self {
            Backend::Local(local) => Ok(local.service()?.create_provider_for(&local.caller, new)?.body),
            Backend::Remote(client) => client.create_provider(new).await,
        }
    }

    pub async fn providers(&self) -> Result<Vec<Value>, Error> {
        match self {
            Backend::Local(local) => {
                Ok(local.service()?.providers_for(&local.caller, false)?.into_iter().map(|d| d.body).collect())
            }
            Backend::Remote(client) => client.providers().await,
        }
    }

    pub async fn provider(&self, id: i64, include_sensitive: bool) -> Result<Value, Error> {
        match self {
            Backend::Local(local) => Ok(local.service()?.provider_for(&local.caller, id, include_sensitive)?.body),
            Backend::Remote(client) => client.provider(id, include_sensitive).await,
        }
    }

    pub async fn update_provider(
        &self,
        id: i64,
        name: Option<&str>,
        description: Option<&str>,
        patch: &Value,
    ) -> Result<Value, Error> {
        match self {
            Backend::Local(local) => {
                Ok(local.service()?.update_provider(&local.caller, id, name, description, patch)?.body)
            }
            Backend::Remote(client) => client.update_provider(id, name, description, patch).await,
        }
    }

    pub async fn delete_provider(&self, id: i64) -> Result<(), Error> {
        match self {
            Backend::Local(local) => local.service()?.delete_provider(&local.caller, id),
            Backend::Remote(client) => client.delete_provider(id).await,
        }
    }

    pub async fn provisions(&self, all: bool) -> Result<Vec<Value>, Error> {
        match self {
            Backend::Local(local) => local.service()?.provisions(&local.caller, all),
            Backend::Remote(client) => client.provisions(all).await,
        }
    }

    pub async fn provision(&self, id: i64, include_sensitive: bool) -> Result<Shown, Error> {
        match self {
            Backend::Local(local) => local.service()?.provision(&local.caller, id, include_sensitive),
            Backend::Remote(client) => client.provision(id, include_sensitive).await,
        }
    }

    pub async fn update_provision(&self, id: i64, change: &Update) -> Result<Value, Error> {
        match self {
            Backend::Local(local) => Ok(local.service()?.update_provision(&local.caller, id, change).await?.body),
            Backend::Remote(client) => client.update_provision(id, change).await,
        }
    }

    pub async fn delete_provision(&self, id: i64, force: bool) -> Result<(), Error> {
        match self {
            Backend::Local(local) => local.service()?.delete_provision(&local.caller, id, force).await,
            Backend::Remote(client) => client.delete_provision(id, force).await,
        }
    }

    /// The last `last` lines of a provision's log (all with `None`) and the offset after them.
    pub async fn log_tail(&self, id: i64, last: Option<usize>) -> Result<(Vec<LogLine>, u64), Error> {
        match self {
            Backend::Local(local) => {
                let (lines, pos) = local.service()?.log_tail(&local.caller, id, last)?;
                Ok((lines.into_iter().map(log_line).collect(), pos))
            }
            Backend::Remote(client) => client.log_tail(id, last).await,
        }
    }

    /// The lines after `pos`, the new offset, and whether an operation still runs.
    pub async fn log_after(&self, id: i64, pos: u64) -> Result<(Vec<LogLine>, u64, bool), Error> {
        match self {
            Backend::Local(local) => {
                let (lines, next, running) = local.service()?.log_after(&local.caller, id, pos)?;
                Ok((lines.into_iter().map(log_line).collect(), next, running))
            }
            Backend::Remote(client) => client.log_after(id, pos).await,
        }
    }

    /// Creates a provision and runs it to its end (here, or followed on the server), or with
    /// `detach` returns once it has started.
    pub async fn create(
        &self,
        new: &NewProvision,
        detach: bool,
        observer: Box<dyn Observer>,
    ) -> Result<Started, Error> {
        match self {
            Backend::Local(local) => local.service()?.create(&Caller::local(), new, detach, observer).await,
            Backend::Remote(client) => client.create(new, detach, observer).await,
        }
    }

    pub async fn request(&self, id: i64, request: &Request, observer: Box<dyn Observer>) -> Result<Ran, Error> {
        match self {
            Backend::Local(local) => local.service()?.request(&Caller::local(), id, request, observer).await,
            Backend::Remote(client) => client.request(id, request, observer).await,
        }
    }

    pub async fn change_public_ips(&self, id: i64, change: Change, observer: Box<dyn Observer>) -> Result<u64, Error> {
        match self {
            Backend::Local(local) => local.service()?.change_public_ips(&Caller::local(), id, change, observer).await,
            Backend::Remote(client) => client.change_public_ips(id, change, observer).await,
        }
    }

    pub async fn cancel(&self, id: i64) -> Result<Cancelled, Error> {
        match self {
            Backend::Local(local) => local.service()?.cancel(&Caller::local(), id).await,
            Backend::Remote(client) => client.cancel(id).await,
        }
    }
}

impl Local {
    fn new(settings: Settings) -> Local {
        Local { caller: Caller::local(), settings, drivers: OnceLock::new(), service: OnceLock::new() }
    }

    fn drivers(&self) -> Result<&Drivers, Error> {
        if let Some(drivers) = self.drivers.get() {
            return Ok(drivers);
        }
        let drivers = Drivers::open(&self.settings)?;
        Ok(self.drivers.get_or_init(|| drivers))
    }

    fn service(&self) -> Result<&Arc<Service>, Error> {
        if let Some(service) = self.service.get() {
            return Ok(service);
        }
        let service = Service::open(self.settings.clone())?;
        Ok(self.service.get_or_init(|| service))
    }
}

fn to_value(value: &impl serde::Serialize) -> Result<Value, Error> {
    Ok(serde_json::to_value(value)?)
}

fn log_line(line: crate::service::LogLine) -> LogLine {
    LogLine { level: line.level.as_str().to_string(), text: line.text }
}
