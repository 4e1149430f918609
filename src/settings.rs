//! Configuration, resolved once before any work: command-line flags win over the environment,
//! which wins over the config file, which wins over the defaults. Nothing else in formwork
//! reads environment variables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::driver::{self, Catalog};
use crate::secrets::{KEY_FILE, KeyText, Source};
use crate::stages::ToolEnv;

/// Where formwork finds drivers and keeps its own data.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// formwork's own data: the SQLite database (by default), work directories, the key file.
    pub data_dir: PathBuf,
    /// The database: `<data_dir>/formwork.db` unless `--database`, `FORMWORK_DATABASE` or
    /// `database` names another SQLite file or a PostgreSQL database (`postgres://…`).
    pub database: Database,
    /// Where formwork's own files are: `drivers/` (the built-in driver folders) and
    /// `playbooks/roles/` (the shared Ansible roles). Found by [`share_dir`]'s search order.
    pub share_dir: PathBuf,
    /// The built-in driver folders (registry `default`): `<share_dir>/drivers` unless set.
    pub builtin_drivers: PathBuf,
    /// Extra driver directories, searched after the built-in ones, in order.
    pub drivers_dirs: Vec<PathBuf>,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// The Terraform (or OpenTofu) binary.
    pub terraform: PathBuf,
    /// The `ansible-playbook` binary.
    pub ansible_playbook: PathBuf,
    /// A Terraform CLI config file (provider mirrors for offline use), if any; in a development
    /// checkout, by default the one `scripts/setup` writes (`.tools/terraformrc`, the `sim`
    /// provider's mirror).
    pub terraform_config: Option<PathBuf>,
    /// The Ansible roles formwork ships (`<share_dir>/playbooks/roles`), shared by every driver.
    pub shared_roles: PathBuf,
    /// The longest any stage's child process may run.
    pub stage_timeout: Duration,
    /// How long Terraform waits for a state lock another process holds (`-lock-timeout`).
    pub lock_timeout: Duration,
    /// The variables children inherit from formwork's environment (PATH, HOME).
    pub child_env: HashMap<String, String>,
    /// What every Terraform and Ansible run gets besides formwork's own variables: names
    /// passed through from formwork's environment and fixed values (`tool_env`,
    /// `FORMWORK_TOOL_ENV`), the sensitive ones masked like other secrets.
    pub tool_env: ToolEnv,
    /// Whether a command that finds an operation whose process died starts a background
    /// `formwork provision resume`.
    pub auto_resume: bool,
    /// Reliability tests only: `FORMWORK_CRASH_AT=entered:<STATE>|finished:<STATE>` makes the
    /// process kill itself at that point of that stage.
    pub crash_at: Option<String>,
    /// OpenNebula's XML-RPC endpoint (oned or onesim), e.g. `http://127.0.0.1:2633/RPC2`.
    /// Without one, formwork uses its OpenNebula model saved in the data directory.
    pub one_xmlrpc: Option<String>,
    /// The `user:password` file for that endpoint (default `~/.one/one_auth`).
    pub one_auth: Option<PathBuf>,
    /// How many operations `formwork serve` runs at once; the rest wait in its queue.
    pub max_operations: usize,
    /// `formwork serve`'s address, TLS, limits and audit log.
    pub server: Server,
    /// Where the keys that seal sensitive values at rest come from: `FORMWORK_SECRET_KEY`, else
    /// the key file `FORMWORK_SECRET_KEY_FILE` or `secret_key_file` names, else
    /// `<data_dir>/secret.key`.
    pub secret_keys: crate::secrets::Source,
}

/// Where the store is.
#[derive(Clone, PartialEq)]
pub enum Database {
    /// A SQLite file: one machine, any number of formwork processes on it.
    Sqlite(PathBuf),
    /// A PostgreSQL database (its URL, which may hold a password): several servers share it.
    Postgres(String),
}

impl Database {
    /// Reads a setting's value: a `postgres://` (or `postgresql://`) URL, else a file path.
    pub fn parse(value: &str) -> Database {
        if crate::store::postgres::is_url(value) {
            Database::Postgres(value.to_string())
        } else {
            Database::Sqlite(PathBuf::from(value))
        }
    }

    /// The database as shown to people: the file, or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => crate::store::postgres::without_password(url),
        }
    }
}

/// Never the password of a PostgreSQL URL.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(_) => f.debug_tuple("Postgres").field(&self.shown()).finish(),
        }
    }
}

/// How `formwork serve` listens and what it accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Where it listens (OneForm's 127.0.0.1:13013).
    pub listen: String,
    /// HTTPS with this certificate chain and key (PEM files); plain HTTP without.
    pub tls: Option<Tls>,
    /// The largest request body it reads (413 beyond).
    pub max_body_bytes: usize,
    /// The largest request head (request line and headers) it reads (431 beyond); at least
    /// 8 KiB.
    pub max_header_bytes: usize,
    /// Connections served at once; further ones are answered 503 and closed.
    pub max_connections: usize,
    /// The longest a request may take, from its head read to its answer's head (408 beyond);
    /// also the longest a client may take to send a request's head.
    pub request_timeout: Duration,
    /// The audit log: a JSON line per write request.
    pub audit_log: PathBuf,
    /// What it does among servers sharing a PostgreSQL database (`--role`): `all` (answer
    /// requests and run operations), `api` (answer requests only) or `worker` (run operations
    /// only, no listener).
    pub role: Role,
}

/// A server's share of the work (`formwork serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    #[default]
    All,
    Api,
    Worker,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }
}

/// A certificate chain and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the command line gave.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub drivers_dirs: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config file '{}' does not exist; create it or drop --config / FORMWORK_CONFIG", path.display())]
    ConfigMissing { path: PathBuf },
    #[error("config file '{}': {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("no home directory to keep formwork's data in; set FORMWORK_DATA_DIR or pass --data-dir")]
    NoHome,
    #[error("{key}: {message}")]
    Value { key: &'static str, message: String },
}

const CONFIG_KEYS: [&str; 24] = [
    "database",
    "listen",
    "max_operations",
    "max_body_bytes",
    "max_header_bytes",
    "max_connections",
    "request_timeout",
    "tls_cert",
    "tls_key",
    "audit_log",
    "one_xmlrpc",
    "one_auth",
    "auto_resume",
    "data_dir",
    "drivers_dirs",
    "builtin_drivers",
    "share_dir",
    "terraform",
    "ansible_playbook",
    "terraform_config",
    "stage_timeout",
    "terraform_lock_timeout",
    "secret_key_file",
    "tool_env",
];

/// One hour: long enough for a cloud apply, short enough that a hung tool is noticed.
const DEFAULT_STAGE_TIMEOUT: u64 = 3600;
/// OneForm's drivers are applied by one process at a time; a minute covers a slow peer.
const DEFAULT_LOCK_TIMEOUT: u64 = 60;

/// OneForm's address and port.
const DEFAULT_LISTEN: &str = "127.0.0.1:13013";
/// One MiB: far above any provider or provision request.
const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// 16 KiB: room for long Authorization headers, far below what a flood needs.
const DEFAULT_MAX_HEADER: u64 = 16 << 10;
/// The smallest request-head buffer hyper accepts.
const MIN_MAX_HEADER: u64 = 8 << 10;
/// Enough for every OpenNebula tool and browser tab of a site; each costs a file descriptor.
const DEFAULT_MAX_CONNECTIONS: u64 = 1024;
/// A minute: every route answers in far less (long work runs in the queue, logs stream).
const DEFAULT_REQUEST_TIMEOUT: u64 = 60;

/// Two operations per core: stages mostly wait on clouds and hosts, not on this machine.
fn default_max_operations() -> u64 {
    std::thread::available_parallelism().map_or(2, |n| 2 * n.get() as u64)
}

/// The config file, as read.
#[derive(Debug, Default)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database: Option<String>,
    drivers_dirs: Option<Vec<PathBuf>>,
    builtin_drivers: Option<PathBuf>,
    share_dir: Option<PathBuf>,
    terraform: Option<PathBuf>,
    ansible_playbook: Option<PathBuf>,
    terraform_config: Option<PathBuf>,
    stage_timeout: Option<u64>,
    terraform_lock_timeout: Option<u64>,
    auto_resume: Option<bool>,
    one_xmlrpc: Option<String>,
    one_auth: Option<PathBuf>,
    listen: Option<String>,
    max_operations: Option<u64>,
    max_body_bytes: Option<u64>,
    max_header_bytes: Option<u64>,
    max_connections: Option<u64>,
    request_timeout: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    secret_key_file: Option<PathBuf>,
    tool_env: Option<ToolEnv>,
}

impl Settings {
    /// Resolves settings from flags, a snapshot of the environment, and the config file.
    pub fn resolve(flags: Flags, env: &HashMap<String, String>) -> Result<Settings, Error> {
        let var = |key: &str| env.get(key).filter(|v| !v.is_empty()).cloned();
        let home = var("HOME").map(PathBuf::from);
        let explicit = flags.config.clone().or_else(|| var("FORMWORK_CONFIG").map(PathBuf::from));
        let config_file = match explicit {
            Some(path) if !path.is_file() => return Err(Error::ConfigMissing { path }),
            Some(path) => Some(path),
            None => var("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".config")))
                .map(|base| base.join("formwork/config.yaml"))
                .filter(|p| p.is_file()),
        };
        let file = match &config_file {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let env_dirs = var("FORMWORK_DRIVERS_DIRS")
            .map(|v| v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect::<Vec<_>>());
        let drivers_dirs =
            Some(flags.drivers_dirs).filter(|d| !d.is_empty()).or(env_dirs).or(file.drivers_dirs).unwrap_or_default();
        let data_dir = match flags.data_dir.or_else(|| var("FORMWORK_DATA_DIR").map(PathBuf::from)).or(file.data_dir) {
            Some(dir) => dir,
            None => var("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".local/share")))
                .ok_or(Error::NoHome)?
                .join("formwork"),
        };
        let database = match flags.database.or_else(|| var("FORMWORK_DATABASE")).or(file.database) {
            Some(value) if value.trim().is_empty() => {
                return Err(Error::Value {
                    key: "database",
                    message: "is empty; give a SQLite file or a postgres:// URL, or drop it for <data_dir>/formwork.db"
                        .into(),
                });
            }
            Some(value) => Database::parse(&value),
            None => Database::Sqlite(data_dir.join("formwork.db")),
        };
        let share_dir = share_dir(var("FORMWORK_SHARE_DIR").map(PathBuf::from).or(file.share_dir))?;
        let builtin_drivers =
            var("FORMWORK_BUILTIN_DRIVERS").map(PathBuf::from).or(file.builtin_drivers).unwrap_or(share_dir.drivers());
        // `.tools` (what scripts/setup installs) is a development checkout's convenience only:
        // an installed formwork takes its tools from the configuration or PATH.
        let tools = share_dir.checkout().map(|root| root.join(".tools"));
        let tool = |key: &str, from_file: Option<PathBuf>, local: &str, name: &str| {
            var(key).map(PathBuf::from).or(from_file).unwrap_or_else(|| {
                tools.as_ref().map(|t| t.join(local)).filter(|p| p.exists()).unwrap_or_else(|| PathBuf::from(name))
            })
        };
        let terraform = tool("FORMWORK_TERRAFORM", file.terraform, "bin/terraform", "terraform");
        let ansible_playbook =
            tool("FORMWORK_ANSIBLE_PLAYBOOK", file.ansible_playbook, "venv/bin/ansible-playbook", "ansible-playbook");
        let terraform_config = var("FORMWORK_TERRAFORM_CONFIG")
            .map(PathBuf::from)
            .or(file.terraform_config)
            .or_else(|| tools.as_ref().map(|t| t.join("terraformrc")).filter(|p| p.exists()));
        let seconds = |key: &'static str, from_file: Option<u64>, default: u64| match var(key) {
            Some(text) => text
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| Error::Value { key, message: format!("'{text}' is not a whole number of seconds") }),
            None => Ok(Duration::from_secs(from_file.unwrap_or(default))),
        };
        let stage_timeout =
            seconds("FORMWORK_STAGE_TIMEOUT", file.stage_timeout, DEFAULT_STAGE_TIMEOUT)?.max(Duration::from_secs(1));
        let lock_timeout =
            seconds("FORMWORK_TERRAFORM_LOCK_TIMEOUT", file.terraform_lock_timeout, DEFAULT_LOCK_TIMEOUT)?;
        let count = |key: &'static str, from_file: Option<u64>, default: u64| match var(key) {
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::Value { key, message: format!("'{text}' is not a whole number greater than 0") }),
            None => Ok(from_file.unwrap_or(default)),
        };
        let max_operations = count("FORMWORK_MAX_OPERATIONS", file.max_operations, default_max_operations())?;
        let max_body_bytes = count("FORMWORK_MAX_BODY_BYTES", file.max_body_bytes, DEFAULT_MAX_BODY)?;
        let max_header_bytes = count("FORMWORK_MAX_HEADER_BYTES", file.max_header_bytes, DEFAULT_MAX_HEADER)?;
        if max_header_bytes < MIN_MAX_HEADER {
            return Err(Error::Value {
                key: "max_header_bytes",
                message: format!("{max_header_bytes} is below the least a request head may be given, {MIN_MAX_HEADER}"),
            });
        }
        let max_connections = count("FORMWORK_MAX_CONNECTIONS", file.max_connections, DEFAULT_MAX_CONNECTIONS)?;
        let request_timeout = seconds("FORMWORK_REQUEST_TIMEOUT", file.request_timeout, DEFAULT_REQUEST_TIMEOUT)?
            .max(Duration::from_secs(1));
        let tls = match (
            var("FORMWORK_TLS_CERT").map(PathBuf::from).or(file.tls_cert),
            var("FORMWORK_TLS_KEY").map(PathBuf::from).or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(Tls { cert, key }),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::Value {
                    key: "tls_cert",
                    message: "TLS needs both a certificate and its key: set tls_cert and tls_key \
                              (FORMWORK_TLS_CERT and FORMWORK_TLS_KEY, or --tls-cert and --tls-key)"
                        .into(),
                });
            }
        };
        let audit_log = var("FORMWORK_AUDIT_LOG")
            .map(PathBuf::from)
            .or(file.audit_log)
            .unwrap_or_else(|| data_dir.join("audit.log"));
        let child_env = ["PATH", "HOME"].iter().filter_map(|k| var(k).map(|v| (k.to_string(), v))).collect();
        let tool_env = match var("FORMWORK_TOOL_ENV") {
            Some(text) => tool_env_from_env(&text)?,
            None => file.tool_env.unwrap_or_default(),
        }
        .with_values_from(env);
        for name in tool_env.missing() {
            tracing::debug!(
                name,
                "tool_env passes a variable formwork's environment does not hold; tools run without it"
            );
        }
        let secret_keys = match (var("FORMWORK_SECRET_KEY"), var("FORMWORK_SECRET_KEY_FILE")) {
            (Some(keys), _) => Source::Given(KeyText::new(keys)),
            (None, Some(file)) => Source::File(PathBuf::from(file)),
            (None, None) => Source::File(file.secret_key_file.unwrap_or_else(|| data_dir.join(KEY_FILE))),
        };
        Ok(Settings {
            data_dir,
            database,
            shared_roles: share_dir.roles(),
            share_dir: share_dir.root,
            builtin_drivers,
            drivers_dirs,
            config_file,
            terraform,
            ansible_playbook,
            terraform_config,
            stage_timeout,
            lock_timeout,
            child_env,
            tool_env,
            auto_resume: match var("FORMWORK_AUTO_RESUME").as_deref() {
                Some("0" | "false" | "no") => false,
                Some(_) => true,
                None => file.auto_resume.unwrap_or(true),
            },
            crash_at: var("FORMWORK_CRASH_AT"),
            one_xmlrpc: var("ONE_XMLRPC").or(file.one_xmlrpc),
            one_auth: var("ONE_AUTH")
                .map(PathBuf::from)
                .or(file.one_auth)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".one/one_auth"))),
            max_operations: max_operations as usize,
            server: Server {
                listen: var("FORMWORK_LISTEN").or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
                tls,
                max_body_bytes: max_body_bytes as usize,
                max_header_bytes: max_header_bytes as usize,
                max_connections: max_connections as usize,
                request_timeout,
                audit_log,
                role: Role::All,
            },
            secret_keys,
        })
    }

    /// The environment that makes a background formwork resolve exactly these settings.
    pub fn formwork_env(&self) -> Vec<(String, String)> {
        let path = |p: &Path| p.display().to_string();
        let mut env: Vec<(String, String)> = self.child_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        env.push(("FORMWORK_DATA_DIR".into(), path(&self.data_dir)));
        env.push((
            "FORMWORK_DATABASE".into(),
            match &self.database {
                Database::Sqlite(file) => path(file),
                Database::Postgres(url) => url.clone(),
            },
        ));
        if self.share_dir.join("drivers").is_dir() {
            // Else the background formwork, the same binary, searches as this one did.
            env.push(("FORMWORK_SHARE_DIR".into(), path(&self.share_dir)));
        }
        env.push(("FORMWORK_BUILTIN_DRIVERS".into(), path(&self.builtin_drivers)));
        let dirs: Vec<String> = self.drivers_dirs.iter().map(|d| path(d)).collect();
        env.push(("FORMWORK_DRIVERS_DIRS".into(), dirs.join(":")));
        env.push(("FORMWORK_TERRAFORM".into(), path(&self.terraform)));
        env.push(("FORMWORK_ANSIBLE_PLAYBOOK".into(), path(&self.ansible_playbook)));
        if let Some(config) = &self.terraform_config {
            env.push(("FORMWORK_TERRAFORM_CONFIG".into(), path(config)));
        }
        env.push(("FORMWORK_STAGE_TIMEOUT".into(), self.stage_timeout.as_secs().to_string()));
        env.push(("FORMWORK_TERRAFORM_LOCK_TIMEOUT".into(), self.lock_timeout.as_secs().to_string()));
        env.push(("FORMWORK_AUTO_RESUME".into(), "0".into()));
        if !self.tool_env.is_empty() {
            env.push(("FORMWORK_TOOL_ENV".into(), self.tool_env.as_setting()));
        }
        if let Some(endpoint) = &self.one_xmlrpc {
            env.push(("ONE_XMLRPC".into(), endpoint.clone()));
        }
        if let Some(auth) = &self.one_auth {
            env.push(("ONE_AUTH".into(), path(auth)));
        }
        match &self.secret_keys {
            Source::Given(keys) => env.push(("FORMWORK_SECRET_KEY".into(), keys.expose().to_string())),
            Source::File(file) => env.push(("FORMWORK_SECRET_KEY_FILE".into(), path(file))),
            Source::Ephemeral => {}
        }
        env
    }

    /// The SQLite database file, when the store is one (PostgreSQL: none).
    pub fn sqlite_file(&self) -> Option<&Path> {
        match &self.database {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }

    /// Per-provision working directories.
    pub fn work_root(&self) -> PathBuf {
        self.data_dir.join("work")
    }

    /// The log of a provision, in OneForm's line format.
    pub fn log_path(&self, provision_id: i64) -> PathBuf {
        self.data_dir.join("logs").join(format!("{provision_id}.log"))
    }

    /// Terraform's provider cache, shared by every provision (`TF_PLUGIN_CACHE_DIR`).
    pub fn plugin_cache(&self) -> PathBuf {
        self.data_dir.join("plugin-cache")
    }

    /// Where driver states are recorded.
    pub fn states_dir(&self) -> PathBuf {
        self.data_dir.join("drivers/.states")
    }

    pub fn catalog(&self) -> Result<Catalog, driver::Error> {
        Catalog::open(&self.builtin_drivers, &self.drivers_dirs, self.states_dir())
    }
}

/// Where formwork's own files were found: `drivers/` and `playbooks/roles/` under `root`.
struct Share {
    root: PathBuf,
    /// A development checkout (the binary is in its `target/`): its `.tools` serve as defaults.
    checkout: bool,
}

impl Share {
    fn drivers(&self) -> PathBuf {
        self.root.join("drivers")
    }

    fn roles(&self) -> PathBuf {
        self.root.join("playbooks/roles")
    }

    fn checkout(&self) -> Option<&Path> {
        self.checkout.then_some(self.root.as_path())
    }
}

/// Where a system-wide installation keeps formwork's files (the Debian package's layout).
pub const SYSTEM_SHARE_DIR: &str = "/usr/share/formwork";

/// formwork's own files, found in this order: the `share_dir` setting (`FORMWORK_SHARE_DIR`);
/// `<prefix>/share/formwork` beside the running binary `<prefix>/bin/formwork`; the development
/// checkout whose `target/` holds the binary; [`SYSTEM_SHARE_DIR`]. No path of the machine that
/// built the binary is compiled into it.
fn share_dir(given: Option<PathBuf>) -> Result<Share, Error> {
    if let Some(root) = given {
        if !root.join("drivers").is_dir() {
            return Err(Error::Value {
                key: "share_dir",
                message: format!(
                    "'{}' holds no drivers/ folder; point share_dir (FORMWORK_SHARE_DIR) at the folder \
                     holding formwork's drivers/ and playbooks/, or unset it",
                    root.display()
                ),
            });
        }
        return Ok(Share { root, checkout: false });
    }
    let exe = std::env::current_exe().ok();
    Ok(exe.as_deref().and_then(find_share).unwrap_or(Share { root: SYSTEM_SHARE_DIR.into(), checkout: false }))
}

/// The share folder of the binary at `exe`: beside it in its prefix, or the development checkout
/// whose build folder holds it.
fn find_share(exe: &Path) -> Option<Share> {
    let bin = exe.parent()?;
    let beside = bin.parent().map(|prefix| prefix.join("share/formwork"));
    if let Some(root) = beside.filter(|r| r.join("drivers").is_dir()) {
        return Some(Share { root, checkout: false });
    }
    let is_checkout = |dir: &&Path| {
        dir.join("drivers").is_dir()
            && dir.join("playbooks/roles").is_dir()
            && std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.contains("name = \"formwork\""))
    };
    bin.ancestors().find(is_checkout).map(|root| Share { root: root.to_path_buf(), checkout: true })
}

/// `FORMWORK_TOOL_ENV`: the config file's `tool_env`, as YAML or JSON text.
fn tool_env_from_env(text: &str) -> Result<ToolEnv, Error> {
    const KEY: &str = "FORMWORK_TOOL_ENV";
    let value = crate::driver::deployment::yaml_to_json(text).map_err(|e| Error::Value {
        key: KEY,
        message: format!(
            "not valid YAML ({e}); write it as the config file's tool_env, e.g. '{{pass: [HTTPS_PROXY]}}'"
        ),
    })?;
    ToolEnv::parse(&value).map_err(|e| Error::Value { key: KEY, message: e.to_string() })
}

fn read_config(path: &Path) -> Result<FileConfig, Error> {
    let fail = |message: String| Error::Config { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let value = crate::driver::deployment::yaml_to_json(&text).map_err(|e| fail(format!("not valid YAML: {e}")))?;
    let map = match value {
        Value::Null => return Ok(FileConfig::default()),
        Value::Object(map) => map,
        _ => return Err(fail("must be a YAML mapping of setting to value".into())),
    };
    if let Some(key) = map.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
        let hint = crate::suggest::hint(key, CONFIG_KEYS);
        return Err(fail(format!("unknown setting '{key}'{hint}; settings are {}", CONFIG_KEYS.join(", "))));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let path_of = |key: &str, v: &Value| -> Result<PathBuf, Error> {
        v.as_str().map(|s| base.join(s)).ok_or_else(|| fail(format!("`{key}` must be a path")))
    };
    let mut file = FileConfig::default();
    if let Some(v) = map.get("data_dir") {
        file.data_dir = Some(path_of("data_dir", v)?);
    }
    for (key, slot) in [("builtin_drivers", &mut file.builtin_drivers), ("share_dir", &mut file.share_dir)] {
        if let Some(v) = map.get(key) {
            *slot = Some(path_of(key, v)?);
        }
    }
    for (key, slot) in [
        ("terraform", &mut file.terraform),
        ("ansible_playbook", &mut file.ansible_playbook),
        ("terraform_config", &mut file.terraform_config),
        ("one_auth", &mut file.one_auth),
        ("secret_key_file", &mut file.secret_key_file),
        ("tls_cert", &mut file.tls_cert),
        ("tls_key", &mut file.tls_key),
        ("audit_log", &mut file.audit_log),
    ] {
        if let Some(v) = map.get(key) {
            *slot = Some(path_of(key, v)?);
        }
    }
    if let Some(v) = map.get("database") {
        let text = v.as_str().ok_or_else(|| fail("`database` must be a SQLite file or a postgres:// URL".into()))?;
        // A relative file is the config file's neighbour, as every other path setting is.
        file.database = Some(match Database::parse(text) {
            Database::Postgres(url) => url,
            Database::Sqlite(file) => base.join(file).display().to_string(),
        });
    }
    if let Some(v) = map.get("one_xmlrpc") {
        file.one_xmlrpc = Some(v.as_str().ok_or_else(|| fail("`one_xmlrpc` must be a URL".into()))?.to_string());
    }
    if let Some(v) = map.get("listen") {
        file.listen = Some(
            v.as_str().ok_or_else(|| fail("`listen` must be an address such as 127.0.0.1:13013".into()))?.to_string(),
        );
    }
    for (key, slot) in [
        ("max_operations", &mut file.max_operations),
        ("max_body_bytes", &mut file.max_body_bytes),
        ("max_header_bytes", &mut file.max_header_bytes),
        ("max_connections", &mut file.max_connections),
    ] {
        if let Some(v) = map.get(key) {
            *slot = Some(
                v.as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| fail(format!("`{key}` must be a whole number greater than 0")))?,
            );
        }
    }
    if let Some(v) = map.get("auto_resume") {
        file.auto_resume = Some(v.as_bool().ok_or_else(|| fail("`auto_resume` must be true or false".into()))?);
    }
    for (key, slot) in [
        ("stage_timeout", &mut file.stage_timeout),
        ("terraform_lock_timeout", &mut file.terraform_lock_timeout),
        ("request_timeout", &mut file.request_timeout),
    ] {
        if let Some(v) = map.get(key) {
            *slot = Some(v.as_u64().ok_or_else(|| fail(format!("`{key}` must be a whole number of seconds")))?);
        }
    }
    if let Some(v) = map.get("tool_env") {
        file.tool_env = Some(ToolEnv::parse(v).map_err(|e| match e.field {
            Some(field) => fail(format!("`tool_env.{field}`: {}", e.message)),
            None => fail(format!("`tool_env` {}", e.message)),
        })?);
    }
    if let Some(v) = map.get("drivers_dirs") {
        let items = v.as_array().ok_or_else(|| fail("`drivers_dirs` must be a list of paths".into()))?;
        file.drivers_dirs = Some(items.iter().map(|i| path_of("drivers_dirs", i)).collect::<Result<_, _>>()?);
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config.yaml");
        std::fs::write(&config, "data_dir: data\ndrivers_dirs: [reg]\n").unwrap();

        let from_file =
            Settings::resolve(Flags { config: Some(config.clone()), ..Flags::default() }, &env(&[])).unwrap();
        assert_eq!(from_file.data_dir, tmp.path().join("data"));
        assert_eq!(from_file.drivers_dirs, vec![tmp.path().join("reg")]);

        let e = env(&[("FORMWORK_DATA_DIR", "/env/data"), ("FORMWORK_DRIVERS_DIRS", "/a:/b")]);
        let from_env = Settings::resolve(Flags { config: Some(config.clone()), ..Flags::default() }, &e).unwrap();
        assert_eq!(from_env.data_dir, PathBuf::from("/env/data"));
        assert_eq!(from_env.drivers_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);

        let flags = Flags {
            config: Some(config),
            data_dir: Some("/flag".into()),
            database: None,
            drivers_dirs: vec!["/c".into()],
        };
        let from_flags = Settings::resolve(flags, &e).unwrap();
        assert_eq!(from_flags.data_dir, PathBuf::from("/flag"));
        assert_eq!(from_flags.drivers_dirs, vec![PathBuf::from("/c")]);

        let defaults = Settings::resolve(Flags::default(), &env(&[("HOME", "/home/u")])).unwrap();
        assert_eq!(defaults.data_dir, PathBuf::from("/home/u/.local/share/formwork"));
        assert!(defaults.builtin_drivers.ends_with("drivers"));
    }

    #[test]
    fn the_database_is_a_file_in_the_data_dir_unless_a_file_or_url_is_given() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config.yaml");
        std::fs::write(&config, "database: state/fw.db\n").unwrap();
        let resolve = |flag: Option<&str>, vars: &[(&str, &str)], file: bool| {
            let flags = Flags {
                config: file.then(|| config.clone()),
                data_dir: Some("/data".into()),
                database: flag.map(str::to_string),
                ..Flags::default()
            };
            Settings::resolve(flags, &env(vars)).map(|s| s.database)
        };
        assert_eq!(resolve(None, &[], false).unwrap(), Database::Sqlite("/data/formwork.db".into()));
        assert_eq!(resolve(None, &[], true).unwrap(), Database::Sqlite(tmp.path().join("state/fw.db")));
        let url = "postgres://fw:s3cret@db.example:5432/formwork";
        assert_eq!(resolve(None, &[("FORMWORK_DATABASE", url)], true).unwrap(), Database::Postgres(url.into()));
        assert_eq!(
            resolve(Some("/x.db"), &[("FORMWORK_DATABASE", url)], true).unwrap(),
            Database::Sqlite("/x.db".into()),
            "the flag wins"
        );
        let shown = format!("{:?} {}", Database::Postgres(url.into()), Database::Postgres(url.into()).shown());
        assert!(!shown.contains("s3cret") && shown.contains("db.example"), "{shown}");
        // A background formwork (`--detach`, automatic resume) works on the same database.
        let settings = Settings::resolve(
            Flags { data_dir: Some("/data".into()), database: Some(url.into()), ..Flags::default() },
            &env(&[]),
        )
        .unwrap();
        let handed: HashMap<String, String> = settings.formwork_env().into_iter().collect();
        assert_eq!(Settings::resolve(Flags::default(), &handed).unwrap().database, Database::Postgres(url.into()));
        let empty = resolve(Some(" "), &[], false).unwrap_err().to_string();
        assert!(empty.contains("database") && empty.contains("postgres://"), "{empty}");
    }

    #[test]
    fn secret_keys_come_from_the_environment_else_a_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config.yaml");
        std::fs::write(&config, "secret_key_file: keys/formwork.key\n").unwrap();
        let flags = || Flags { config: Some(config.clone()), data_dir: Some("/d".into()), ..Flags::default() };
        let from_file = Settings::resolve(flags(), &env(&[])).unwrap();
        assert_eq!(from_file.secret_keys, Source::File(tmp.path().join("keys/formwork.key")));
        let default = Settings::resolve(Flags { data_dir: Some("/d".into()), ..Flags::default() }, &env(&[])).unwrap();
        assert_eq!(default.secret_keys, Source::File(PathBuf::from("/d/secret.key")));
        let given = Settings::resolve(flags(), &env(&[("FORMWORK_SECRET_KEY", "a2V5")])).unwrap();
        assert_eq!(given.secret_keys, Source::Given(KeyText::new("a2V5")));
        assert!(!format!("{given:?}").contains("a2V5"), "settings never print a key");
        let handed = given.formwork_env();
        assert!(handed.contains(&("FORMWORK_SECRET_KEY".into(), "a2V5".into())), "a background formwork gets the key");
        let handed = from_file.formwork_env();
        let file = tmp.path().join("keys/formwork.key").display().to_string();
        assert!(handed.contains(&("FORMWORK_SECRET_KEY_FILE".into(), file)));
    }

    #[test]
    fn tool_env_comes_from_the_environment_else_the_config_file_and_reaches_a_background_formwork() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config.yaml");
        std::fs::write(
            &config,
            "tool_env:\n  pass: [HTTPS_PROXY]\n  set: {TF_LOG: INFO}\n  sensitive: [HTTPS_PROXY]\n",
        )
        .unwrap();
        let flags = || Flags { config: Some(config.clone()), data_dir: Some("/d".into()), ..Flags::default() };
        let proxy = ("HTTPS_PROXY", "http://u:pw-9@proxy");
        let from_file = Settings::resolve(flags(), &env(&[proxy, ("FORMWORK_TEST_X", "x")])).unwrap();
        let vars: Vec<_> = from_file.tool_env.vars().collect();
        assert_eq!(vars, [("HTTPS_PROXY", "http://u:pw-9@proxy"), ("TF_LOG", "INFO")]);
        assert_eq!(from_file.tool_env.secrets(), ["http://u:pw-9@proxy"]);
        assert!(!format!("{from_file:?}").contains("pw-9"), "settings never print a sensitive value");

        let from_env =
            Settings::resolve(flags(), &env(&[proxy, ("FORMWORK_TOOL_ENV", "[NO_PROXY]"), ("NO_PROXY", "a")]));
        let from_env = from_env.unwrap();
        assert_eq!(
            from_env.tool_env.vars().collect::<Vec<_>>(),
            [("NO_PROXY", "a")],
            "the environment replaces the file"
        );

        // A background formwork gets the same variables, its own environment holding none of them.
        let handed: HashMap<String, String> = from_file.formwork_env().into_iter().collect();
        assert!(!handed.contains_key("HTTPS_PROXY"));
        let background = Settings::resolve(Flags::default(), &handed).unwrap();
        assert_eq!(background.tool_env.vars().collect::<Vec<_>>(), vars);
        assert_eq!(background.tool_env.secrets(), ["http://u:pw-9@proxy"]);
        let none = Settings::resolve(Flags { data_dir: Some("/d".into()), ..Flags::default() }, &env(&[])).unwrap();
        assert!(!none.formwork_env().iter().any(|(k, _)| k == "FORMWORK_TOOL_ENV"));
    }

    #[test]
    fn a_bad_tool_env_names_the_key_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("c.yaml");
        let resolve = |e: &[(&str, &str)]| {
            Settings::resolve(
                Flags { config: Some(config.clone()), data_dir: Some("/d".into()), ..Flags::default() },
                &env(e),
            )
            .unwrap_err()
            .to_string()
        };
        std::fs::write(&config, "tool_env: {pass: [HTTPS-PROXY]}\n").unwrap();
        let err = resolve(&[]);
        assert!(err.contains("`tool_env.pass`: 'HTTPS-PROXY' is not a variable name"), "{err}");
        std::fs::write(&config, "tool_env: {set: {TF_IN_AUTOMATION: '0'}}\n").unwrap();
        let err = resolve(&[]);
        assert!(err.contains("`tool_env.set`: formwork gives its tools TF_IN_AUTOMATION itself; remove it"), "{err}");
        std::fs::write(&config, "tool_env: 7\n").unwrap();
        assert!(resolve(&[]).contains("`tool_env` must be a mapping with `pass`"));
        std::fs::write(&config, "{}\n").unwrap();
        let err = resolve(&[("FORMWORK_TOOL_ENV", "{sensitive: [X]}")]);
        assert!(err.starts_with("FORMWORK_TOOL_ENV: sensitive: X is neither passed nor set"), "{err}");
        let err = resolve(&[("FORMWORK_TOOL_ENV", "{pass: [")]);
        assert!(err.starts_with("FORMWORK_TOOL_ENV: not valid YAML"), "{err}");
    }

    #[test]
    fn the_share_dir_is_beside_the_binary_else_its_checkout() {
        let tmp = tempfile::tempdir().unwrap();
        let prefix = tmp.path().join("usr/local");
        std::fs::create_dir_all(prefix.join("share/formwork/drivers")).unwrap();
        let installed = find_share(&prefix.join("bin/formwork")).unwrap();
        assert_eq!((installed.root, installed.checkout), (prefix.join("share/formwork"), false));

        let checkout = tmp.path().join("src/formwork");
        std::fs::create_dir_all(checkout.join("drivers")).unwrap();
        std::fs::create_dir_all(checkout.join("playbooks/roles")).unwrap();
        std::fs::write(checkout.join("Cargo.toml"), "[package]\nname = \"formwork\"\n").unwrap();
        let built = find_share(&checkout.join("target/release/formwork")).unwrap();
        assert_eq!((built.root, built.checkout), (checkout.clone(), true));
        std::fs::write(checkout.join("Cargo.toml"), "[package]\nname = \"other\"\n").unwrap();
        assert!(find_share(&checkout.join("target/release/formwork")).is_none(), "another project is no checkout");
        assert!(find_share(&tmp.path().join("bin/formwork")).is_none());
    }

    #[test]
    fn bad_config_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let missing =
            Settings::resolve(Flags { config: Some(tmp.path().join("nope.yaml")), ..Flags::default() }, &env(&[]));
        assert!(matches!(missing, Err(Error::ConfigMissing { .. })));
        let config = tmp.path().join("c.yaml");
        std::fs::write(&config, "data_dri: x\n").unwrap();
        let err = Settings::resolve(Flags { config: Some(config), ..Flags::default() }, &env(&[])).unwrap_err();
        assert!(err.to_string().contains("did you mean 'data_dir'?"), "{err}");
        assert!(matches!(Settings::resolve(Flags::default(), &env(&[])), Err(Error::NoHome)));
    }
}
