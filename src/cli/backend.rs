//! Where a command runs: here, through the service layer over this machine's data ([`Local`]),
//! or on a formwork server through its REST API ([`Client`], `--server URL` or `ONEFORM_URL`).
//! Commands are written against the [`Backend`] trait, which both implement, so a command the
//! CLI has here exists on the server too — parity is compiled, not only tested. Both answer the
//! same types (served bodies as JSON values, [`Ran`], [`Started`], [`Shown`], …) and the same
//! [`Error`] variants, so tables, `--json` and exit codes do not depend on where the work ran.
//!
//! `Local` stands for the service here: the commands on driver folders work without a database,
//! so it opens the [`Drivers`] catalogue and the [`Service`] separately, each on first use.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::client::{self, Client, LogLine};
use crate::service::{
    Caller, Cancelled, Change, DriverState, Drivers, Error, Forgotten, NewProvider, NewProvision, Observer, Orphans,
    Ran, Request, ServerView, Service, Shown, Started, Update,
};
use crate::settings::{Flags, Settings};

/// Where the commands of this process run.
pub enum Chosen {
    Local(Box<Local>),
    Remote(Box<Client>),
}

/// A server if `--server` or `ONEFORM_URL` names one, else this machine.
pub fn choose(server: Option<&str>, flags: Flags, env: &HashMap<String, String>) -> anyhow::Result<Chosen> {
    match client::Config::resolve(server, env)? {
        Some(config) => Ok(Chosen::Remote(Box::new(Client::new(&config)?))),
        None => Ok(Chosen::Local(Box::new(Local::new(Settings::resolve(flags, env)?)))),
    }
}

/// Everything a command asks of where it runs.
pub(crate) trait Backend {
    /// The local service, for what only makes sense on this machine's data; through a server
    /// it is refused, naming the command.
    fn local_only(&self, command: &str, why: &str) -> Result<&Arc<Service>, Error>;

    /// Local only: a background resume of operations whose process died. A server resumes
    /// its own.
    fn adopt_orphans(&self) -> Result<Option<Orphans>, Error>;

    /// Warnings about the driver folders (shadowed ones); a server logs its own.
    fn driver_warnings(&self) -> Result<Vec<String>, Error>;

    async fn drivers(&self, enabled_only: bool) -> Result<Vec<Value>, Error>;
    async fn driver(&self, name: &str) -> Result<Value, Error>;
    async fn sync_drivers(&self) -> Result<(Value, Result<(), Error>), Error>;
    async fn set_driver_enabled(&self, name: &str, enable: bool) -> Result<DriverState, Error>;
    async fn driver_schema(&self, name: &str, deployment: Option<&str>, connection: bool) -> Result<Value, Error>;
    /// Values checked against a driver's deployment, with defaults filled.
    async fn validate(&self, driver: &str, deployment: Option<&str>, values: &Value) -> Result<Value, Error>;

    async fn create_provider(&self, new: &NewProvider) -> Result<Value, Error>;
    async fn providers(&self) -> Result<Vec<Value>, Error>;
    async fn provider(&self, id: i64, include_sensitive: bool) -> Result<Value, Error>;
    async fn update_provider(
        &self,
        id: i64,
        name: Option<&str>,
        description: Option<&str>,
        patch: &Value,
    ) -> Result<Value, Error>;
    async fn delete_provider(&self, id: i64) -> Result<(), Error>;

    async fn provisions(&self, all: bool) -> Result<Vec<Value>, Error>;
    async fn provision(&self, id: i64, include_sensitive: bool) -> Result<Shown, Error>;
    async fn update_provision(&self, id: i64, change: &Update) -> Result<Value, Error>;
    async fn delete_provision(&self, id: i64, force: bool) -> Result<(), Error>;
    /// The last `last` lines of a provision's log (all with `None`) and the offset after them.
    async fn log_tail(&self, id: i64, last: Option<usize>) -> Result<(Vec<LogLine>, u64), Error>;
    /// The lines after `pos`, the new offset, and whether an operation still runs.
    async fn log_after(&self, id: i64, pos: u64) -> Result<(Vec<LogLine>, u64, bool), Error>;

    /// Creates a provision and runs it to its end (here, or followed on the server), or with
    /// `detach` returns once it has started.
    async fn create(&self, new: &NewProvision, detach: bool, observer: Box<dyn Observer>) -> Result<Started, Error>;
    async fn request(&self, id: i64, request: &Request, observer: Box<dyn Observer>) -> Result<Ran, Error>;
    async fn change_public_ips(&self, id: i64, change: Change, observer: Box<dyn Observer>) -> Result<u64, Error>;
    async fn cancel(&self, id: i64) -> Result<Cancelled, Error>;

    async fn servers(&self) -> Result<Vec<ServerView>, Error>;
    async fn forget_server(&self, id: &str) -> Result<Forgotten, Error>;
}

/// This machine's data, opened on first use: driver commands need no database.
pub struct Local {
    /// Who the commands act for: the local operator, oneadmin (as OneForm's own server acts).
    caller: Caller,
    settings: Settings,
    drivers: OnceLock<Drivers>,
    service: OnceLock<Arc<Service>>,
}

impl Backend for Local {
    fn local_only(&self, _command: &str, _why: &str) -> Result<&Arc<Service>, Error> {
        self.service()
    }

    fn adopt_orphans(&self) -> Result<Option<Orphans>, Error> {
        self.service()?.adopt_orphans()
    }

    fn driver_warnings(&self) -> Result<Vec<String>, Error> {
        let shadowed = self.drivers()?.shadowed().iter().map(|s| {
            format!(
                "driver '{}' at {} is shadowed by {} and is not used",
                s.name,
                s.path.display(),
                s.shadowed_by.display()
            )
        });
        Ok(shadowed.collect())
    }

    async fn drivers(&self, enabled_only: bool) -> Result<Vec<Value>, Error> {
        self.drivers()?.list(enabled_only)?.iter().map(to_value).collect()
    }

    async fn driver(&self, name: &str) -> Result<Value, Error> {
        to_value(&self.drivers()?.show(name)?)
    }

    async fn sync_drivers(&self) -> Result<(Value, Result<(), Error>), Error> {
        let (report, outcome) = self.drivers()?.sync(&self.caller)?;
        Ok((to_value(&report)?, outcome))
    }

    async fn set_driver_enabled(&self, name: &str, enable: bool) -> Result<DriverState, Error> {
        self.drivers()?.set_enabled(&self.caller, name, enable)
    }

    async fn driver_schema(&self, name: &str, deployment: Option<&str>, connection: bool) -> Result<Value, Error> {
        self.drivers()?.schema(name, deployment, connection)
    }

    async fn validate(&self, driver: &str, deployment: Option<&str>, values: &Value) -> Result<Value, Error> {
        to_value(&self.drivers()?.validate(driver, deployment, values)?)
    }

    async fn create_provider(&self, new: &NewProvider) -> Result<Value, Error> {
        Ok(self.service()?.create_provider_for(&self.caller, new)?.body)
    }

    async fn providers(&self) -> Result<Vec<Value>, Error> {
        Ok(self.service()?.providers_for(&self.caller, false)?.into_iter().map(|d| d.body).collect())
    }

    async fn provider(&self, id: i64, include_sensitive: bool) -> Result<Value, Error> {
        Ok(self.service()?.provider_for(&self.caller, id, include_sensitive)?.body)
    }

    async fn update_provider(
        &self,
        id: i64,
        name: Option<&str>,
        description: Option<&str>,
        patch: &Value,
    ) -> Result<Value, Error> {
        Ok(self.service()?.update_provider(&self.caller, id, name, description, patch)?.body)
    }

    async fn delete_provider(&self, id: i64) -> Result<(), Error> {
        self.service()?.delete_provider(&self.caller, id)
    }

    async fn provisions(&self, all: bool) -> Result<Vec<Value>, Error> {
        self.service()?.provisions(&self.caller, all)
    }

    async fn provision(&self, id: i64, include_sensitive: bool) -> Result<Shown, Error> {
        self.service()?.provision(&self.caller, id, include_sensitive)
    }

    async fn update_provision(&self, id: i64, change: &Update) -> Result<Value, Error> {
        Ok(self.service()?.update_provision(&self.caller, id, change).await?.body)
    }

    async fn delete_provision(&self, id: i64, force: bool) -> Result<(), Error> {
        self.service()?.delete_provision(&self.caller, id, force).await
    }

    async fn log_tail(&self, id: i64, last: Option<usize>) -> Result<(Vec<LogLine>, u64), Error> {
        let (lines, pos) = self.service()?.log_tail(&self.caller, id, last)?;
        Ok((lines.into_iter().map(log_line).collect(), pos))
    }

    async fn log_after(&self, id: i64, pos: u64) -> Result<(Vec<LogLine>, u64, bool), Error> {
        let (lines, next, running) = self.service()?.log_after(&self.caller, id, pos)?;
        Ok((lines.into_iter().map(log_line).collect(), next, running))
    }

    async fn create(&self, new: &NewProvision, detach: bool, observer: Box<dyn Observer>) -> Result<Started, Error> {
        self.service()?.create(&self.caller, new, detach, observer).await
    }

    async fn request(&self, id: i64, request: &Request, observer: Box<dyn Observer>) -> Result<Ran, Error> {
        self.service()?.request(&self.caller, id, request, observer).await
    }

    async fn change_public_ips(&self, id: i64, change: Change, observer: Box<dyn Observer>) -> Result<u64, Error> {
        self.service()?.change_public_ips(&self.caller, id, change, observer).await
    }

    async fn cancel(&self, id: i64) -> Result<Cancelled, Error> {
        self.service()?.cancel(&self.caller, id).await
    }

    async fn servers(&self) -> Result<Vec<ServerView>, Error> {
        let mut servers = self.service()?.servers(&self.caller)?;
        // This command itself is no server.
        servers.retain(|s| !(s.this && s.role == "cli"));
        Ok(servers)
    }

    async fn forget_server(&self, id: &str) -> Result<Forgotten, Error> {
        self.service()?.forget_server(&self.caller, id)
    }
}

/// The REST client answers every command as the server runs it.
impl Backend for Client {
    fn local_only(&self, command: &str, why: &str) -> Result<&Arc<Service>, Error> {
        Err(Error::invalid(format!("`formwork {command}` does not run through a server ({}): {why}", self.url())))
    }

    fn adopt_orphans(&self) -> Result<Option<Orphans>, Error> {
        Ok(None)
    }

    fn driver_warnings(&self) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    async fn drivers(&self, enabled_only: bool) -> Result<Vec<Value>, Error> {
        Client::drivers(self, enabled_only).await
    }

    async fn driver(&self, name: &str) -> Result<Value, Error> {
        Client::driver(self, name).await
    }

    async fn sync_drivers(&self) -> Result<(Value, Result<(), Error>), Error> {
        Client::sync_drivers(self).await
    }

    async fn set_driver_enabled(&self, name: &str, enable: bool) -> Result<DriverState, Error> {
        Client::set_driver_enabled(self, name, enable).await
    }

    async fn driver_schema(&self, name: &str, deployment: Option<&str>, connection: bool) -> Result<Value, Error> {
        Client::driver_schema(self, name, deployment, connection).await
    }

    async fn validate(&self, driver: &str, deployment: Option<&str>, values: &Value) -> Result<Value, Error> {
        Client::validate(self, driver, deployment, values).await
    }

    async fn create_provider(&self, new: &NewProvider) -> Result<Value, Error> {
        Client::create_provider(self, new).await
    }

    async fn providers(&self) -> Result<Vec<Value>, Error> {
        Client::providers(self).await
    }

    async fn provider(&self, id: i64, include_sensitive: bool) -> Result<Value, Error> {
        Client::provider(self, id, include_sensitive).await
    }

    async fn update_provider(
        &self,
        id: i64,
        name: Option<&str>,
        description: Option<&str>,
        patch: &Value,
    ) -> Result<Value, Error> {
        Client::update_provider(self, id, name, description, patch).await
    }

    async fn delete_provider(&self, id: i64) -> Result<(), Error> {
        Client::delete_provider(self, id).await
    }

    async fn provisions(&self, all: bool) -> Result<Vec<Value>, Error> {
        Client::provisions(self, all).await
    }

    async fn provision(&self, id: i64, include_sensitive: bool) -> Result<Shown, Error> {
        Client::provision(self, id, include_sensitive).await
    }

    async fn update_provision(&self, id: i64, change: &Update) -> Result<Value, Error> {
        Client::update_provision(self, id, change).await
    }

    async fn delete_provision(&self, id: i64, force: bool) -> Result<(), Error> {
        Client::delete_provision(self, id, force).await
    }

    async fn log_tail(&self, id: i64, last: Option<usize>) -> Result<(Vec<LogLine>, u64), Error> {
        Client::log_tail(self, id, last).await
    }

    async fn log_after(&self, id: i64, pos: u64) -> Result<(Vec<LogLine>, u64, bool), Error> {
        Client::log_after(self, id, pos).await
    }

    async fn create(&self, new: &NewProvision, detach: bool, observer: Box<dyn Observer>) -> Result<Started, Error> {
        Client::create(self, new, detach, observer).await
    }

    async fn request(&self, id: i64, request: &Request, observer: Box<dyn Observer>) -> Result<Ran, Error> {
        Client::request(self, id, request, observer).await
    }

    async fn change_public_ips(&self, id: i64, change: Change, observer: Box<dyn Observer>) -> Result<u64, Error> {
        Client::change_public_ips(self, id, change, observer).await
    }

    async fn cancel(&self, id: i64) -> Result<Cancelled, Error> {
        Client::cancel(self, id).await
    }

    async fn servers(&self) -> Result<Vec<ServerView>, Error> {
        Client::servers(self).await
    }

    async fn forget_server(&self, id: &str) -> Result<Forgotten, Error> {
        Client::forget_server(self, id).await
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
