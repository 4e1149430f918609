//! The service layer: every operation a user can ask for, on drivers ([`Drivers`]), providers
//! and provisions ([`Service`]), with typed requests and one typed [`Error`]. Front ends (the
//! CLI, the coming REST API) parse, call and render; every rule — what is checked before a
//! write, how an operation runs, when an orphaned one is resumed — lives here or below.
//!
//! Below the service: `engine` (the lifecycle), `stages` (the work), `store` (the only SQL),
//! `one` (OpenNebula), `exec` (processes), `driver` (driver folders). Nothing below reaches
//! back up.

mod access;
pub mod auth;
mod documents;
mod drivers;
mod error;
pub mod guard;
mod logs;
mod names;
mod operations;
pub mod presence;
pub mod progress;
mod providers;
mod provisions;
mod public_ips;
mod queue;
mod requests;
mod secrets;
mod servers;
mod store_copy;
mod upgrade;
mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use crate::driver::input::REDACTED;
pub use crate::driver::{Broken, Driver, Input, Loaded, State as DriverState, SyncReport};
pub use crate::engine::{OnInterrupted, State, System};
pub use crate::exec::LogLine;
pub use crate::stages::{FormApi, FormServer};
pub use crate::store::OperationStatus;
pub use access::{Caller, Kind, Mode, ONEADMIN_GROUP, Ownership, Right};
pub use documents::{Document, Include, Metrics};
pub use drivers::{Drivers, Validated};
pub use error::{Error, FieldError, exit};
pub use operations::{Cancelled, Orphans, Ran, Resumed, Started};
pub use progress::{Observer, Progress, Silent};
pub use providers::NewProvider;
pub use provisions::{NewProvision, Shown, Update, serve as serve_provision};
pub use public_ips::Change;
pub use requests::Request;
pub use secrets::Rotation;
pub use servers::{Forgotten, ForgottenRun, ServerView};
pub use store_copy::{CopiedTable, StoreCopy, copy_store};
pub use wire::{ErrorContext, Events, Failure, Operation, ProgressEvent, Reported};

use crate::driver::Catalog;
use crate::engine::{Runner, owner};
use crate::exec::{Masker, ProvisionLog};
use crate::one::{Client, Endpoint, FakeOne};
use crate::settings::Settings;
use crate::stages::{Real, Tools};
use crate::store::Store;

/// The grace period a stopped tool gets between SIGINT and SIGKILL.
pub const TOOL_GRACE: Duration = Duration::from_secs(20);

/// Waits up to [`TOOL_GRACE`] for the tools of operations this process dropped (its runtime
/// shut down: they were told to stop) to exit, then kills what is left; returns how many
/// process groups had to be killed. A stopping `formwork serve` calls it last.
pub fn wait_for_stopped_tools() -> usize {
    crate::exec::wait_for_dropped(TOOL_GRACE)
}

/// Everything the operations on providers and provisions need, assembled once from
/// [`Settings`]: the database, the driver catalogue and the OpenNebula endpoint. Shared
/// (`Arc`) by the tasks that run operations.
pub struct Service {
    settings: Settings,
    store: Arc<Store>,
    catalog: Catalog,
    /// oned or onesim over XML-RPC when `one_xmlrpc` is set; otherwise the OpenNebula model of
    /// `one::FakeOne` saved after every call in the data directory (`one-sim.json`), so objects
    /// outlive each run and each crash as in oned. Opened on first use: reading records needs
    /// no OpenNebula credentials.
    one: std::sync::OnceLock<Endpoint>,
    /// The server's `max_operations` slots (see `queue`).
    slots: tokio::sync::Semaphore,
    /// This process's registration and lease among the processes sharing the database: from
    /// the start on PostgreSQL, once serving on SQLite (see `presence`).
    presence: std::sync::OnceLock<Arc<presence::Presence>>,
    /// The REST API this process serves (set once by `formwork serve`), for the playbooks.
    form: std::sync::OnceLock<crate::stages::FormApi>,
    /// This server's role (`formwork serve --role`): `all`, `api` (runs no operation) or
    /// `worker`; none for a command.
    role: std::sync::OnceLock<String>,
}

impl Service {
    /// Opens the database (creating and migrating it) and the catalogue, and makes sure the
    /// `onprem` provider exists. The OpenNebula endpoint opens when first needed.
    pub fn open(settings: Settings) -> Result<Arc<Service>, Error> {
        let store = Arc::new(Store::open_database(&settings.database, settings.secret_keys.clone())?);
        let catalog = settings.catalog()?;
        providers::ensure_onprem(&catalog, &store, crate::store::now())?;
        let slots = tokio::sync::Semaphore::new(settings.max_operations);
        let service = Arc::new(Service {
            settings,
            store,
            catalog,
            one: std::sync::OnceLock::new(),
            slots,
            form: std::sync::OnceLock::new(),
            presence: std::sync::OnceLock::new(),
            role: std::sync::OnceLock::new(),
        });
        if service.settings.sqlite_file().is_none() {
            let presence = presence::Presence::start(Arc::clone(&service.store), true, "cli", "")?;
            let _ = service.presence.set(presence);
        }
        service.put_away_after_upgrade()?;
        Ok(service)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Playbooks of this process's operations get `form_server` and `one_auth` from `form`
    /// (OneForm's extra variables; each playbook run a session of its own that reads only its
    /// provision); the first call wins.
    pub fn serve_as(&self, form: crate::stages::FormApi) {
        let _ = self.form.set(form);
    }

    /// Says this process is a server (`role`, answering at `address`), for `formwork servers`;
    /// on SQLite it registers then.
    pub fn announce(&self, role: &str, address: &str) -> Result<(), Error> {
        if role != "all" && !self.shares_database() {
            return Err(Error::invalid(format!(
                "--role {role} splits the work between servers sharing a PostgreSQL database; this one is on SQLite (set database to a postgres:// URL, or drop --role)"
            )));
        }
        let _ = self.role.set(role.to_string());
        match self.presence.get() {
            Some(presence) => presence.describe(role, address)?,
            None => {
                let presence = presence::Presence::start(Arc::clone(&self.store), false, role, address)?;
                let _ = self.presence.set(presence);
            }
        }
        Ok(())
    }

    /// Removes this process from the servers sharing the database (a clean stop, its tools
    /// gone): another server takes its operations over at once.
    pub fn leave(&self) {
        if let Some(presence) = self.presence.get() {
            presence.leave();
        }
    }

    /// Whether this process runs operations (every one but a `--role api` server).
    pub fn runs_operations(&self) -> bool {
        self.role.get().is_none_or(|role| role != "api")
    }

    /// Whether several servers may share the database (PostgreSQL), so operations whose
    /// server is gone are looked for all along, not only at start.
    pub fn shares_database(&self) -> bool {
        self.settings.sqlite_file().is_none()
    }

    /// The owner new operations of this process get.
    pub(crate) fn me(&self) -> crate::store::Owner {
        self.presence.get().map_or_else(owner::current, |p| p.owner())
    }

    /// Whether an operation's owner still works on it.
    pub(crate) fn alive(&self, owner: &crate::store::Owner) -> bool {
        match self.presence.get() {
            Some(presence) => presence.alive(owner),
            None => owner::is_alive(owner),
        }
    }

    /// The OpenNebula endpoint, opened the first time it is needed.
    fn one(&self) -> Result<&Endpoint, Error> {
        if let Some(one) = self.one.get() {
            return Ok(one);
        }
        let settings = &self.settings;
        let one = match &settings.one_xmlrpc {
            Some(url) => {
                let auth = settings.one_auth.clone().unwrap_or_default();
                let client = Client::from_auth_file(url, &auth, Default::default())
                    .map_err(|e| Error::invalid(format!("OpenNebula endpoint {url}: {e}")))?;
                Endpoint::Xmlrpc(Box::new(client))
            }
            None => Endpoint::Model(
                FakeOne::persistent(&settings.data_dir.join("one-sim.json"))
                    .map_err(|e| Error::internal(format!("cannot read the OpenNebula model's state: {e}")))?,
            ),
        };
        Ok(self.one.get_or_init(|| one))
    }

    /// The runner for this process, with the real stages.
    fn runner(&self) -> Result<Runner<Real<Endpoint>>, Error> {
        let settings = &self.settings;
        let tools = Tools {
            terraform: settings.terraform.clone(),
            ansible_playbook: settings.ansible_playbook.clone(),
            env: settings.child_env.clone(),
            tool_env: settings.tool_env.clone(),
            plugin_cache: settings.plugin_cache(),
            terraform_config: settings.terraform_config.clone(),
            stage_timeout: settings.stage_timeout,
            grace: TOOL_GRACE,
            lock_timeout: settings.lock_timeout,
            form: self.form.get().cloned(),
        };
        let stages = Real {
            catalog: self.catalog.clone(),
            tools,
            work_root: settings.work_root(),
            one: self.one()?.clone(),
            frontend_ip: self.frontend_ip(),
            shared_roles: settings.shared_roles.clone(),
        };
        let fault = self.fault();
        let lease = self.presence.get().map_or_else(crate::exec::Cancel::new, |p| p.lease());
        Ok(Runner { store: Arc::clone(&self.store), stages, owner: self.me(), clock: crate::store::now, fault, lease })
    }

    /// The crash point of the crash tests (`FORMWORK_CRASH_AT`), if one is set.
    fn fault(&self) -> Option<crate::engine::Fault> {
        self.settings.crash_at.as_deref().and_then(crate::engine::Fault::parse)
    }

    /// The host of the XML-RPC endpoint (OneForm's `one_server`); 127.0.0.1 for the model.
    fn frontend_ip(&self) -> String {
        let uri = self.settings.one_xmlrpc.as_deref().and_then(|url| url.parse::<hyper::Uri>().ok());
        uri.and_then(|u| u.host().map(str::to_owned)).unwrap_or_else(|| "127.0.0.1".to_owned())
    }

    /// Every secret a provision's operations may see, as a masker.
    fn masker(&self, provision_id: i64) -> Result<Masker, Error> {
        let row = self.store.provision(provision_id)?;
        let provider = self.store.provider(row.provider_id)?;
        let mut secrets = crate::driver::input::connection(&provider.body).1;
        secrets.extend(row.body.sensitive_texts());
        secrets.extend(self.settings.tool_env.secrets());
        Ok(Masker::new(secrets))
    }

    /// Opens a provision's log with every secret it may see masked.
    fn log(&self, provision_id: i64) -> Result<ProvisionLog, Error> {
        self.open_log(provision_id, self.masker(provision_id)?)
    }

    /// Opens a provision's log: kept in the store (where every server reads it), from the
    /// store's end, and copied to the provision's log file ([`logs`]).
    fn open_log(&self, provision_id: i64, masker: Masker) -> Result<ProvisionLog, Error> {
        let path = self.settings.log_path(provision_id);
        let stored = logs::StoredLog::open(&self.store, provision_id, &path)?;
        Ok(ProvisionLog::open(&path, masker).map_err(Error::internal)?.with_keeper(Box::new(stored)))
    }

    /// The log an operation on `provision_id` writes to, reporting to `observer` and to the
    /// provision's stored progress events (both masked); a log file that cannot be opened is
    /// reported and the operation goes on with the observer and the events only.
    fn operation_log(&self, provision_id: i64, observer: Box<dyn Observer>) -> progress::OperationLog {
        // The secrets are read once, for the events and the log alike.
        let (masker, log) = match self.masker(provision_id) {
            Ok(masker) => (masker.clone(), self.open_log(provision_id, masker)),
            Err(e) => (Masker::default(), Err(e)),
        };
        let mut observer: Box<dyn Observer> =
            Box::new(progress::Recording::new(Arc::clone(&self.store), masker, observer));
        match log {
            Ok(log) => progress::OperationLog::new(provision_id, log, observer),
            Err(e) => {
                tracing::warn!(provision_id, error = %e, "cannot open the provision log");
                observer.observe(provision_id, Progress::Warning(format!("cannot open the provision log: {e}")));
                progress::OperationLog::without_file(provision_id, observer)
            }
        }
    }
}
