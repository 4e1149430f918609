//! Driver folders: discovery, verification, OneForm-compatible input extraction, what a driver
//! supports (`capabilities`), value validation and JSON Schema. Pure with respect to the
//! lifecycle: no processes, no database; the only writes are the driver state files OneForm
//! also keeps.
//!
//! A [`Catalog`] is opened from the configured directories. Loading a driver always verifies the
//! folder again, so a driver that broke since it was enabled shows as ERROR with the reason; an
//! ERROR driver stays ERROR until `sync` (OneForm's rule), and a driver never seen before is
//! synced on first use, as OneForm's server does at start-up.

pub mod capabilities;
pub mod deployment;
pub mod discover;
pub mod files;
pub mod input;
pub mod schema;
pub mod snapshot;
pub mod state;
pub mod terraform;
pub mod validate;
pub mod verify;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub use capabilities::Capabilities;
pub use deployment::Deployment;
pub use discover::{Entry, Shadowed};
pub use input::Input;
pub use state::State;

use crate::suggest;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no driver named '{name}'{hint}; the list of drivers shows the ones found")]
    NotFound { name: String, hint: String },
    #[error("driver name '{name}' is not a plain folder name ({reason}); use a name the list of drivers shows")]
    InvalidName { name: String, reason: &'static str },
    #[error("drivers directory '{}' does not exist or is not a directory; fix --drivers-dir, FORMWORK_DRIVERS_DIRS or `drivers_dirs` in the config file", path.display())]
    DriversDir { path: PathBuf },
    #[error("driver '{name}' is in ERROR state: {reason}. Fix the driver folder, then sync the drivers")]
    Broken { name: String, reason: String },
    #[error("driver '{name}' is {state}; provisions can only use ENABLED drivers: enable driver '{name}' first")]
    NotEnabled { name: String, state: &'static str },
    #[error("{0}")]
    StateChange(String),
    #[error("driver '{driver}' has no deployment '{deployment}'{hint}; its deployments are: {available}")]
    UnknownDeployment { driver: String, deployment: String, hint: String, available: String },
    #[error("driver '{driver}' has several deployments ({available}); choose one with --deployment")]
    DeploymentNeeded { driver: String, available: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }
}

/// A driver that verified, served exactly as OneForm serves ENABLED and DISABLED drivers.
#[derive(Debug, Clone, Serialize)]
pub struct Driver {
    /// The display name from driver.conf (OneForm's `name`); the id is [`Driver::id`].
    pub name: String,
    pub description: String,
    pub state: State,
    pub registry: String,
    pub version: Value,
    pub system_path: PathBuf,
    pub fireedge: Value,
    pub connection: Vec<Input>,
    pub user_inputs: Vec<Input>,
    pub deployment_confs: Vec<Deployment>,
    /// What the driver supports (formwork's addition to OneForm's body; see [`capabilities`]).
    pub capabilities: Capabilities,
    /// The folder name: what users type, what providers and provisions record as `driver`.
    #[serde(skip)]
    pub id: String,
}

/// A driver in ERROR state, served as OneForm serves it.
#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub name: String,
    pub state: State,
    pub system_path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
}

/// The outcome of loading a driver.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Loaded {
    Ready(Box<Driver>),
    Broken(Broken),
}

impl Loaded {
    pub fn id(&self) -> &str {
        match self {
            Loaded::Ready(d) => &d.id,
            Loaded::Broken(b) => &b.name,
        }
    }

    pub fn state(&self) -> State {
        match self {
            Loaded::Ready(d) => d.state,
            Loaded::Broken(b) => b.state,
        }
    }
}

/// OneForm's `POST /drivers/sync` answer, plus the shadowed folders.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub success: Vec<String>,
    pub failed: Vec<Failure>,
    pub shadowed: Vec<Shadowed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub name: String,
    pub error: String,
}

/// The drivers found in the configured directories, with their recorded states.
#[derive(Debug, Clone)]
pub struct Catalog {
    found: discover::Found,
    states: state::States,
}

impl Catalog {
    pub fn open(builtin: &Path, extra: &[PathBuf], states_dir: PathBuf) -> Result<Catalog, Error> {
        Ok(Catalog { found: discover::scan(builtin, extra)?, states: state::States::new(states_dir) })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.found.entries
    }

    pub fn shadowed(&self) -> &[Shadowed] {
        &self.found.shadowed
    }

    /// Loads a driver by folder name, whatever its state.
    pub fn load(&self, name: &str) -> Result<Loaded, Error> {
        self.load_entry(self.entry(name)?)
    }

    /// Loads every driver, in discovery order.
    pub fn list(&self) -> Result<Vec<Loaded>, Error> {
        self.found.entries.iter().map(|e| self.load_entry(e)).collect()
    }

    /// A driver provisions may use: verified and ENABLED.
    pub fn usable(&self, name: &str) -> Result<Driver, Error> {
        match self.load(name)? {
            Loaded::Broken(b) => Err(Error::Broken { name: b.name, reason: b.error_msg.unwrap_or_default() }),
            Loaded::Ready(d) if d.state != State::Enabled => {
                Err(Error::NotEnabled { name: d.id.clone(), state: d.state.as_str() })
            }
            Loaded::Ready(d) => Ok(*d),
        }
    }

    /// Verifies every driver and records ENABLED or ERROR, never turning DISABLED into ENABLED.
    pub fn sync(&self) -> Result<SyncReport, Error> {
        let mut report = SyncReport { success: vec![], failed: vec![], shadowed: self.found.shadowed.clone() };
        for entry in &self.found.entries {
            match verify::load(&entry.path) {
                Ok(_) => {
                    if self.states.get(&entry.name) != State::Disabled {
                        self.states.set(&entry.name, State::Enabled, None)?;
                    }
                    report.success.push(entry.name.clone());
                }
                Err(reason) => {
                    self.states.set(&entry.name, State::Error, Some(&reason))?;
                    report.failed.push(Failure { name: entry.name.clone(), error: reason });
                }
            }
        }
        Ok(report)
    }

    pub fn enable(&self, name: &str) -> Result<(), Error> {
        self.toggle(name, State::Enabled)
    }

    pub fn disable(&self, name: &str) -> Result<(), Error> {
        self.toggle(name, State::Disabled)
    }

    /// OneForm's non-forced `set_driver_state`: only ENABLED ⇄ DISABLED.
    fn toggle(&self, name: &str, wanted: State) -> Result<(), Error> {
        let entry = self.entry(name)?;
        if self.states.get(name) == State::Unknown {
            self.load_entry(entry)?;
        }
        match self.states.get(name) {
            s if s == wanted => {
                Err(Error::StateChange(format!("driver '{name}' is already {}", wanted.as_str().to_lowercase())))
            }
            State::Enabled | State::Disabled => self.states.set(name, wanted, None),
            State::Error | State::Unknown => Err(Error::StateChange(format!(
                "driver '{name}' is in ERROR state and cannot be {}: fix it, sync the drivers, then try again{}",
                if wanted == State::Enabled { "enabled" } else { "disabled" },
                self.states.error(name).map(|e| format!(" (error: {e})")).unwrap_or_default()
            ))),
        }
    }

    fn entry(&self, name: &str) -> Result<&Entry, Error> {
        discover::check_name(name)?;
        self.found.get(name).ok_or_else(|| Error::NotFound {
            name: name.to_string(),
            hint: suggest::hint(name, self.found.entries.iter().map(|e| e.name.as_str())),
        })
    }

    /// The driver `name` as the folder `path` holds it (a snapshot an operation runs on,
    /// whatever the driver's own folder holds now), in its catalogue registry.
    pub fn load_from(&self, name: &str, path: &Path) -> Result<Driver, String> {
        let registry = self.entry(name).map(|e| e.registry.clone()).unwrap_or_else(|_| "default".into());
        let parts = verify::load(path)?;
        Ok(assemble(parts, name, &registry, self.states.get(name), path))
    }

    /// The drivers that would load as ERROR, each with its reason, as [`Catalog::load`] decides
    /// (a recorded ERROR stands, else the folder is verified) but recording nothing: for
    /// `formwork doctor`, which changes nothing.
    pub fn problems(&self) -> Vec<(&Entry, String)> {
        self.found
            .entries
            .iter()
            .filter_map(|entry| {
                let reason = match self.states.get(&entry.name) {
                    State::Error => Some(self.states.error(&entry.name).unwrap_or_else(|| "recorded as ERROR".into())),
                    _ => verify::load(&entry.path).err(),
                };
                reason.map(|reason| (entry, reason))
            })
            .collect()
    }

    fn load_entry(&self, entry: &Entry) -> Result<Loaded, Error> {
        let recorded = self.states.get(&entry.name);
        if recorded == State::Error {
            return Ok(Loaded::Broken(self.broken(entry, self.states.error(&entry.name))));
        }
        match verify::load(&entry.path) {
            Ok(parts) => {
                let state = match recorded {
                    State::Unknown => {
                        self.states.set(&entry.name, State::Enabled, None)?;
                        State::Enabled
                    }
                    other => other,
                };
                Ok(Loaded::Ready(Box::new(assemble(parts, &entry.name, &entry.registry, state, &entry.path))))
            }
            Err(reason) => {
                self.states.set(&entry.name, State::Error, Some(&reason))?;
                Ok(Loaded::Broken(self.broken(entry, Some(reason))))
            }
        }
    }

    fn broken(&self, entry: &Entry, reason: Option<String>) -> Broken {
        Broken { name: entry.name.clone(), state: State::Error, system_path: entry.path.clone(), error_msg: reason }
    }
}

impl Driver {
    /// Picks a deployment by inventory name (case-insensitive, as OneForm lower-cases it), or
    /// the only one when none is given.
    pub fn deployment(&self, wanted: Option<&str>) -> Result<&Deployment, Error> {
        let available = || self.deployment_confs.iter().map(|d| d.inventory.as_str()).collect::<Vec<_>>().join(", ");
        match wanted {
            None if self.deployment_confs.len() == 1 => Ok(&self.deployment_confs[0]),
            None => Err(Error::DeploymentNeeded { driver: self.id.clone(), available: available() }),
            Some(w) => self.deployment_confs.iter().find(|d| d.inventory.eq_ignore_ascii_case(w)).ok_or_else(|| {
                Error::UnknownDeployment {
                    driver: self.id.clone(),
                    deployment: w.to_string(),
                    hint: suggest::hint(w, self.deployment_confs.iter().map(|d| d.inventory.as_str())),
                    available: available(),
                }
            }),
        }
    }

    /// The inputs of a provision of this deployment: the driver's, then the deployment's.
    pub fn provision_inputs(&self, deployment: &Deployment) -> Vec<Input> {
        self.user_inputs.iter().chain(deployment.user_inputs.iter().flatten()).cloned().collect()
    }
}

/// A driver from its verified parts.
fn assemble(parts: verify::Parts, id: &str, registry: &str, state: State, path: &Path) -> Driver {
    Driver {
        name: parts.conf.name,
        description: parts.conf.description,
        state,
        registry: registry.to_string(),
        version: parts.conf.version,
        system_path: path.to_path_buf(),
        fireedge: parts.conf.fireedge,
        connection: parts.connection,
        user_inputs: parts.user_inputs,
        deployment_confs: parts.deployments,
        capabilities: parts.conf.capabilities,
        id: id.to_string(),
    }
}
