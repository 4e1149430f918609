//! What a working installation needs, checked without changing it: `formwork doctor` on the
//! command line and `GET /health?deep=true` on the server both print the [`Report`]
//! [`examine`] returns. Each [`Check`] says ok, warn or fail, what it found, and for a miss
//! what to do about it.
//!
//! The checks, in report order: the tools (`terraform`, `ansible`: found as a stage would find
//! them, and their versions), `opennebula` (reachable with the configured credentials), the
//! `data_dir` (this user's, private), the `secret_key` (private, and the key the database names),
//! the `database` (at the schema this formwork knows), the `drivers` (every folder verifies), the
//! `plugin_cache` (writable) and the `disk` (free space under the data directory).
//!
//! Nothing is written: the database is opened read-only ([`store::inspect`]), a missing key file
//! is not created, drivers are verified without recording their states. The one write is the
//! probe file the plugin cache check creates and removes. What docs/doctor.md explains for each
//! check, and how to fix it, is what the `detail` and `fix` texts say here.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::AccessFlags;
use serde::Serialize;

use crate::driver::{self, Catalog};
use crate::exec::{Cancel, Capture, Cmd, Stream};
use crate::one::client::Options;
use crate::one::{self, Client};
use crate::secrets::{Keyring, Source};
use crate::settings::Settings;
use crate::store::{self, Inspection};

/// The oldest Terraform formwork runs: the built-in drivers declare `required_version = ">= 1.0"`,
/// and `scripts/setup` pins 1.0.3.
const OLDEST_TERRAFORM: Version = Version(1, 0, 0);

/// ansible-core from the first to the first after those formwork supports. The shared roles in
/// `playbooks/roles` declare `min_ansible_version: "2.15"`; `scripts/setup` installs the newest
/// ansible-core pip offers, 2.19 (whose data tagging changed how `!unsafe` values are treated:
/// `tests/values_are_data.rs` runs the real play on it). An older one fails the check; a newer
/// one, untested, is a warning.
const ANSIBLE_CORE: (Version, Version) = (Version(2, 15, 0), Version(2, 20, 0));

/// Below this free space the check fails: one provider download into the plugin cache, or a
/// Terraform state written half way, can then fill the disk during an apply.
const DISK_FAIL: u64 = 1 << 30;
/// Below this it warns: room for a few providers in the cache (hundreds of MB each for the
/// large clouds), states and logs, but not for long.
const DISK_WARN: u64 = 5 << 30;

/// How long `terraform version` or `ansible-playbook --version` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// One attempt, short waits: a doctor reports an unreachable OpenNebula, it does not ride it out.
const ONE_OPTIONS: Options = Options {
    connect_timeout: Duration::from_secs(5),
    request_timeout: Duration::from_secs(10),
    tries: 1,
    backoff: Duration::from_millis(100),
};

/// The shared plugin cache's folder in the data directory, as the service gives it to
/// Terraform (`service::Service::runner`, `Tools::plugin_cache`).
const PLUGIN_CACHE: &str = "plugin-cache";

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works now, but needs attention (little disk left, an untested version).
    Warn,
    /// formwork will fail, or is unsafe, until it is fixed.
    Fail,
}

impl Status {
    /// As the table prints it: a failure stands out.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was found, naming the file, endpoint or program.
    pub detail: String,
    /// What to do; `None` when there is nothing to.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check { name, status: Status::Ok, detail: detail.into(), fix: None }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

/// Every check, in order; `ok` when none failed (warnings allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    fn new(checks: Vec<Check>) -> Report {
        Report { ok: checks.iter().all(|c| c.status != Status::Fail), checks }
    }

    /// The checks that failed.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }
}

/// Runs every check of the installation `settings` describe. The file-system and database
/// checks run on the blocking pool, beside the tool and OpenNebula checks.
pub async fn examine(settings: &Settings) -> Report {
    let local = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || local_checks(&settings))
    };
    let (terraform, ansible, one) = tokio::join!(terraform(settings), ansible(settings), opennebula(settings));
    let mut checks = vec![terraform, ansible, one];
    match local.await {
        Ok(local) => checks.extend(local),
        Err(e) => checks.push(Check::fail(
            "data_dir",
            format!("the checks of the data directory did not finish: {e}"),
            "run formwork doctor again; if it repeats, report it as a formwork bug",
        )),
    }
    Report::new(checks)
}

fn local_checks(settings: &Settings) -> Vec<Check> {
    let db = store::inspect(&settings.database());
    vec![
        data_dir(&settings.data_dir),
        secret_key(&settings.secret_keys, &db),
        database(&settings.database(), &db),
        drivers(settings),
        plugin_cache(&settings.data_dir.join(PLUGIN_CACHE)),
        disk(&settings.data_dir),
    ]
}

// ---- tools ----

/// A version as tools print it: `1.0.3`, `2.19.14`, `1.6.0-beta1` (the suffix ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version(u32, u32, u32);

impl Version {
    fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().trim_start_matches('v').split('.');
        let mut number = |required: bool| -> Option<u32> {
            let digits: String = parts.next().unwrap_or("").chars().take_while(char::is_ascii_digit).collect();
            match digits.parse() {
                Ok(n) => Some(n),
                Err(_) if required => None,
                Err(_) => Some(0),
            }
        };
        Some(Version(number(true)?, number(true)?, number(false)?))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Terraform's version from `terraform version -json` (`terraform_version`); Terraform before
/// 0.13 knows no `-json` and prints `Terraform v0.12.31` instead.
fn terraform_version(stdout: &str) -> Result<Version, String> {
    let first = stdout.lines().next().unwrap_or("").trim();
    let text = match serde_json::from_str::<serde_json::Value>(stdout) {
        Ok(json) => json
            .get("terraform_version")
            .and_then(|v| v.as_str())
            .ok_or_else(|| "its `version -json` answer has no terraform_version".to_string())?
            .to_string(),
        Err(_) => first
            .strip_prefix("Terraform v")
            .ok_or_else(|| {
                format!("`version -json` printed neither JSON nor `Terraform vX.Y.Z` but {:?}", clip(first))
            })?
            .to_string(),
    };
    Version::parse(&text).ok_or_else(|| format!("'{}' is not a version", clip(&text)))
}

/// ansible-core's version from the first line of `ansible-playbook --version`:
/// `ansible-playbook [core 2.19.14]`, or `ansible-playbook 2.9.27` before ansible-core.
fn ansible_version(stdout: &str) -> Result<Version, String> {
    let first = stdout.lines().next().unwrap_or("").trim();
    let rest = first.strip_prefix("ansible-playbook").map(str::trim).ok_or_else(|| {
        format!("`--version` printed {:?}, not `ansible-playbook [core X.Y.Z]`: is it ansible-playbook?", clip(first))
    })?;
    let text = match rest.strip_prefix("[core ") {
        Some(core) => core.trim_end_matches(']'),
        None => rest,
    };
    Version::parse(text).ok_or_else(|| format!("'{}' in {:?} is not a version", clip(text), clip(first)))
}

/// At most 80 characters of a tool's output, for a message.
fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

async fn terraform(settings: &Settings) -> Check {
    const NAME: &str = "terraform";
    let fix = format!(
        "install Terraform {OLDEST_TERRAFORM} or newer and point `terraform` (FORMWORK_TERRAFORM) at it; scripts/setup puts 1.0.3 in .tools/bin"
    );
    let program = match resolve(&settings.terraform, &settings.child_env) {
        Ok(program) => program,
        Err(missing) => return Check::fail(NAME, missing, fix),
    };
    let cmd = tool(settings, &program).args(["version", "-json"]).env("CHECKPOINT_DISABLE", "1");
    let version = match stdout_of(&cmd).await {
        Ok(stdout) => terraform_version(&stdout),
        Err(failed) => return Check::fail(NAME, failed, fix),
    };
    match version {
        Err(unreadable) => Check::fail(NAME, format!("{}: {unreadable}", program.display()), fix),
        Ok(v) if v < OLDEST_TERRAFORM => Check::fail(
            NAME,
            format!(
                "Terraform {v} ({}) is older than {OLDEST_TERRAFORM}, the oldest formwork supports",
                program.display()
            ),
            fix,
        ),
        Ok(v) => Check::ok(NAME, format!("Terraform {v} ({})", program.display())),
    }
}

async fn ansible(settings: &Settings) -> Check {
    const NAME: &str = "ansible";
    let (oldest, beyond) = ANSIBLE_CORE;
    let fix = format!(
        "install ansible-core {oldest} or newer, older than {beyond} (pip install 'ansible-core>={oldest},<{beyond}'), and point `ansible_playbook` (FORMWORK_ANSIBLE_PLAYBOOK) at its ansible-playbook; scripts/setup puts one in .tools/venv"
    );
    let program = match resolve(&settings.ansible_playbook, &settings.child_env) {
        Ok(program) => program,
        Err(missing) => return Check::fail(NAME, missing, fix),
    };
    let version = match stdout_of(&tool(settings, &program).arg("--version")).await {
        Ok(stdout) => ansible_version(&stdout),
        Err(failed) => return Check::fail(NAME, failed, fix),
    };
    let at = program.display();
    match version {
        Err(unreadable) => Check::fail(NAME, format!("{at}: {unreadable}"), fix),
        Ok(v) if v < oldest => Check::fail(
            NAME,
            format!("ansible-core {v} ({at}) is older than {oldest}, the oldest the shared roles support"),
            fix,
        ),
        Ok(v) if v >= beyond => Check::warn(
            NAME,
            format!("ansible-core {v} ({at}) is newer than formwork is tested with (older than {beyond})"),
            format!("if a configuration stage misbehaves, {fix}"),
        ),
        Ok(v) => Check::ok(NAME, format!("ansible-core {v} ({at})")),
    }
}

/// Where a tool run finds `program`: a path as it is, a bare name in the `PATH` formwork gives
/// its tools (`child_env`), as the child's exec looks it up.
fn resolve(program: &Path, env: &HashMap<String, String>) -> Result<PathBuf, String> {
    if program.components().count() > 1 {
        return match fs::metadata(program) {
            Ok(meta) if meta.is_file() && meta.mode() & 0o111 != 0 => Ok(program.to_path_buf()),
            Ok(meta) => {
                Err(format!("{} is not an executable file (mode {:o})", program.display(), meta.mode() & 0o7777))
            }
            Err(e) => Err(format!("{}: {e}", program.display())),
        };
    }
    let path = env.get("PATH").map_or("", String::as_str);
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
        .ok_or_else(|| format!("`{}` is not on the PATH formwork gives its tools ({path})", program.display()))
}

/// `program` with what every tool run gets: the site's `tool_env`, `PATH` and `HOME`.
fn tool(settings: &Settings, program: &Path) -> Cmd {
    Cmd::new(program)
        .envs(settings.tool_env.vars())
        .pass_path_and_home(&settings.child_env)
        .secrets(settings.tool_env.secrets())
        .timeout(TOOL_TIMEOUT)
}

/// What `cmd` printed on stdout, or why it did not run to a success.
async fn stdout_of(cmd: &Cmd) -> Result<String, String> {
    let mut capture = Capture::default();
    crate::exec::run(cmd, &mut capture, &Cancel::new()).await.map_err(|e| e.to_string())?;
    Ok(capture.stream(Stream::Stdout).join("\n"))
}

// ---- OpenNebula ----

async fn opennebula(settings: &Settings) -> Check {
    const NAME: &str = "opennebula";
    let Some(url) = &settings.one_xmlrpc else {
        return Check::ok(
            NAME,
            format!(
                "one_xmlrpc is not set: formwork uses its embedded OpenNebula model ({}); set one_xmlrpc (ONE_XMLRPC) to work with oned",
                settings.data_dir.join("one-sim.json").display()
            ),
        );
    };
    let Some(auth) = &settings.one_auth else {
        return Check::fail(
            NAME,
            format!("one_xmlrpc is {url} but no one_auth file is set (no ONE_AUTH, `one_auth` or HOME)"),
            "write `user:password` in a file (chmod 600) and set one_auth (ONE_AUTH) to it",
        );
    };
    let client = match Client::from_auth_file(url, auth, ONE_OPTIONS) {
        Ok(client) => client,
        Err(e @ one::client::SetupError::Endpoint { .. }) => {
            return Check::fail(
                NAME,
                e.to_string(),
                "set one_xmlrpc (ONE_XMLRPC) to oned's endpoint, http://host:2633/RPC2",
            );
        }
        Err(e) => return Check::fail(NAME, e.to_string(), credentials_fix(auth)),
    };
    let version = match client.system_version().await {
        Ok(version) => version,
        Err(e) => return refused(&e, url, auth),
    };
    match client.user_info().await {
        Err(e) => refused(&e, url, auth),
        Ok(user) if user.id != 0 && user.gid != 0 => Check::warn(
            NAME,
            format!(
                "OpenNebula {version} at {url} as {} (group {}), outside the oneadmin group: creating clusters, hosts and networks may be refused",
                user.name, user.gname
            ),
            format!("put the credentials of a oneadmin-group user in {}", auth.display()),
        ),
        Ok(user) => Check::ok(NAME, format!("OpenNebula {version} at {url} as {} ({})", user.name, auth.display())),
    }
}

/// A failed call as the admin reads it: unreachable, wrong credentials, or another error.
fn refused(e: &one::Error, url: &str, auth: &Path) -> Check {
    const NAME: &str = "opennebula";
    match e {
        one::Error::Transport { message, .. } | one::Error::Timeout { message, .. } => Check::fail(
            NAME,
            format!("cannot reach OpenNebula at {url} (one_xmlrpc): {message}"),
            "start oned there, or set one_xmlrpc (ONE_XMLRPC) to its endpoint, http://host:2633/RPC2",
        ),
        one::Error::Authentication { .. } => Check::fail(
            NAME,
            format!("OpenNebula at {url} refused the credentials in {} (one_auth)", auth.display()),
            credentials_fix(auth),
        ),
        other => Check::fail(
            NAME,
            format!("OpenNebula at {url} answered an error: {other}"),
            "see oned.log on the front-end",
        ),
    }
}

fn credentials_fix(auth: &Path) -> String {
    format!(
        "write a valid OpenNebula `user:password` on the first line of {}, or point one_auth (ONE_AUTH) at the file that holds one",
        auth.display()
    )
}

// ---- the data directory ----

fn data_dir(dir: &Path) -> Check {
    const NAME: &str = "data_dir";
    let at = dir.display();
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return match creatable(dir) {
                Ok(()) => Check::ok(
                    NAME,
                    format!("{at} does not exist yet; formwork creates it (mode 700) at its first start"),
                ),
                Err(why) => Check::fail(
                    NAME,
                    why,
                    format!(
                        "create it as a user who may (mkdir -m 700 -p {at}) and chown it to the user that runs formwork"
                    ),
                ),
            };
        }
        Err(e) => return Check::fail(NAME, format!("{at}: {e}"), format!("make {at} a directory this user may read")),
    };
    if !meta.is_dir() {
        let fix = "move it away, or point data_dir (FORMWORK_DATA_DIR, --data-dir) at a directory";
        return Check::fail(NAME, format!("{at} is not a directory"), fix);
    }
    if let Some(other) = not_mine(dir, &meta) {
        return Check::fail(NAME, other, format!("chown -R {} {at}", euid()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o007 != 0 {
        return Check::fail(
            NAME,
            format!("others may read {at} (mode {mode:o}): it holds the database, logs and Terraform work"),
            format!("chmod 700 {at}"),
        );
    }
    if nix::unistd::access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_err() {
        return Check::fail(
            NAME,
            format!("this user may not write in {at} (mode {mode:o})"),
            format!("chmod 700 {at}"),
        );
    }
    Check::ok(NAME, format!("{at} (mode {mode:o})"))
}

/// Whether a missing `dir` can be made: its nearest existing ancestor is a directory this user
/// may write in.
fn creatable(dir: &Path) -> Result<(), String> {
    let Some(parent) = existing_ancestor(dir) else {
        return Err(format!("{} does not exist, nor does any folder above it", dir.display()));
    };
    match nix::unistd::access(&parent, AccessFlags::W_OK | AccessFlags::X_OK) {
        Ok(()) if parent.is_dir() => Ok(()),
        _ => Err(format!(
            "{} does not exist and this user cannot create it: {} is not writable",
            dir.display(),
            parent.display()
        )),
    }
}

/// The nearest folder above `path` that exists (`.` above a relative path's first component).
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let here = |a: &Path| if a.as_os_str().is_empty() { PathBuf::from(".") } else { a.to_path_buf() };
    path.ancestors().skip(1).map(here).find(|a| a.exists())
}

/// Why `path` is not this user's, if it is not.
fn not_mine(path: &Path, meta: &fs::Metadata) -> Option<String> {
    let me = euid();
    (meta.uid() != me)
        .then(|| format!("{} is owned by uid {}, not by uid {me} that runs formwork", path.display(), meta.uid()))
}

fn euid() -> u32 {
    // SAFETY: geteuid takes no argument, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

fn secret_key(source: &Source, db: &Result<Option<Inspection>, store::Error>) -> Check {
    const NAME: &str = "secret_key";
    let named = db.as_ref().ok().and_then(Option::as_ref).and_then(|i| i.sealing_key.clone());
    if let Source::File(path) = source {
        let at = path.display();
        match fs::metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return match named {
                    Some(id) => Check::fail(
                        NAME,
                        format!(
                            "the key file {at} is missing, but the database's secret values are sealed with key {id}: formwork refuses to open it"
                        ),
                        restore(&id),
                    ),
                    None => Check::ok(
                        NAME,
                        format!("{at} does not exist yet; formwork creates it (mode 600) at its first start"),
                    ),
                };
            }
            Err(e) => {
                return Check::fail(NAME, format!("{at}: {e}"), format!("chown it to this user and chmod 600 {at}"));
            }
            Ok(meta) => {
                if let Some(other) = not_mine(path, &meta) {
                    return Check::fail(NAME, other, format!("chown {} {at} && chmod 600 {at}", euid()));
                }
                let mode = meta.mode() & 0o777;
                if mode & 0o077 != 0 {
                    let detail = format!("others may read the key file {at} (mode {mode:o}); formwork refuses it");
                    return Check::fail(NAME, detail, format!("chmod 600 {at}"));
                }
            }
        }
    }
    let keys = Keyring::new(source.clone());
    if let Err(e) = keys.load(false) {
        let fix = match &named {
            Some(id) => restore(id),
            None => "give formwork a valid key, or remove the key file so its first start makes a new one".into(),
        };
        return Check::fail(NAME, e.to_string(), fix);
    }
    let ids = keys.ids();
    match named {
        Some(id) if !ids.contains(&id) => Check::fail(
            NAME,
            format!("the database's secret values are sealed with key {id}, which is not in {}", source.describe()),
            restore(&id),
        ),
        _ => Check::ok(
            NAME,
            format!("{}: sealing key {}", source.describe(), ids.first().map_or("none", String::as_str)),
        ),
    }
}

fn restore(id: &str) -> String {
    format!(
        "restore the key file that was kept beside the database (from a backup), or give formwork the key with id {id} (FORMWORK_SECRET_KEY, or `secret_key_file`)"
    )
}

fn database(path: &Path, db: &Result<Option<Inspection>, store::Error>) -> Check {
    const NAME: &str = "database";
    let at = path.display();
    match db {
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            format!("check that {at} is formwork's database and this user's (chmod 600), or restore it from a backup"),
        ),
        Ok(None) => Check::ok(NAME, format!("{at} does not exist yet; formwork creates it at its first start")),
        Ok(Some(i)) if i.schema > i.known => Check::fail(
            NAME,
            format!(
                "{at} is at schema {}, newer than this formwork knows ({}): a newer formwork migrated it",
                i.schema, i.known
            ),
            "run that newer formwork, or restore a backup made before the upgrade",
        ),
        Ok(Some(i)) if i.schema < i.known => Check::warn(
            NAME,
            format!("{at} is at schema {} of {}: formwork's next start migrates it", i.schema, i.known),
            "back the database up, then start formwork (restart `formwork serve` if an older one still runs)",
        ),
        Ok(Some(i)) => Check::ok(NAME, format!("{at} at schema {}, this formwork's newest", i.schema)),
    }
}

/// Every driver folder verifies, as loading it would say, without recording states
/// (`Catalog::list` records them): a state recorded ERROR stays broken until a sync, as in
/// `Catalog::load`; any other is verified again.
fn drivers(settings: &Settings) -> Check {
    const NAME: &str = "drivers";
    let catalog = match Catalog::open(&settings.builtin_drivers, &settings.drivers_dirs, settings.states_dir()) {
        Ok(catalog) => catalog,
        Err(e) => {
            let fix =
                "point builtin_drivers and drivers_dirs (FORMWORK_DRIVERS_DIRS, --drivers-dir) at existing folders";
            return Check::fail(NAME, e.to_string(), fix);
        }
    };
    let states = driver::state::States::new(settings.states_dir());
    let mut broken = Vec::new();
    for entry in catalog.entries() {
        let reason = match states.get(&entry.name) {
            driver::State::Error => Some(states.error(&entry.name).unwrap_or_else(|| "recorded as ERROR".into())),
            _ => driver::verify::load(&entry.path).err(),
        };
        if let Some(reason) = reason {
            broken.push(format!("{} ({}): {reason}", entry.name, entry.path.display()));
        }
    }
    let names: Vec<&str> = catalog.entries().iter().map(|e| e.name.as_str()).collect();
    if !broken.is_empty() {
        let fix = "fix each folder named, then sync the drivers (formwork driver sync, or POST /api/v1/drivers/sync)";
        return Check::fail(NAME, broken.join("; "), fix);
    }
    if names.is_empty() {
        let detail = format!("no driver folder in {}", settings.builtin_drivers.display());
        return Check::warn(
            NAME,
            detail,
            "point builtin_drivers (FORMWORK_BUILTIN_DRIVERS) at formwork's drivers folder",
        );
    }
    Check::ok(NAME, format!("{} load: {}", names.len(), names.join(", ")))
}

/// Terraform writes providers into the shared cache; a probe file is created and removed.
fn plugin_cache(dir: &Path) -> Check {
    const NAME: &str = "plugin_cache";
    let at = dir.display();
    if !dir.exists() {
        return Check::ok(NAME, format!("{at} does not exist yet; the first Terraform init creates it"));
    }
    let probe = dir.join(format!(".formwork-doctor-{}", std::process::id()));
    match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Check::ok(NAME, format!("{at} is writable"))
        }
        Err(e) => Check::fail(
            NAME,
            format!("cannot write in {at}: {e}"),
            format!(
                "chown -R {} {at} && chmod 700 {at}, or remove it (the next Terraform init makes it again)",
                euid()
            ),
        ),
    }
}

fn disk(data_dir: &Path) -> Check {
    const NAME: &str = "disk";
    let at = if data_dir.exists() { Some(data_dir.to_path_buf()) } else { existing_ancestor(data_dir) };
    let Some(at) = at else {
        return Check::fail(NAME, format!("no folder of {} exists", data_dir.display()), "create the data directory");
    };
    let stat = match nix::sys::statvfs::statvfs(&at) {
        Ok(stat) => stat,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot read the free space of {}: {e}", at.display()),
                "check the filesystem",
            );
        }
    };
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let detail = format!("{} free on the filesystem of {}", gib(free), at.display());
    let fix = "free space there, or move data_dir to a larger filesystem";
    match free {
        f if f < DISK_FAIL => Check::fail(NAME, format!("{detail}, under {}", gib(DISK_FAIL)), fix),
        f if f < DISK_WARN => Check::warn(NAME, format!("{detail}, under {}", gib(DISK_WARN)), fix),
        _ => Check::ok(NAME, detail),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn terraform_versions_are_read_from_json_or_the_old_text_line() {
        let json = r#"{"terraform_version": "1.0.3", "platform": "linux_amd64", "terraform_outdated": false}"#;
        assert_eq!(terraform_version(json), Ok(Version(1, 0, 3)));
        assert_eq!(terraform_version("{\n  \"terraform_version\": \"1.11.0-beta1\"\n}"), Ok(Version(1, 11, 0)));
        assert_eq!(terraform_version("Terraform v0.12.31\n\nYour version is out of date"), Ok(Version(0, 12, 31)));
        assert!(Version(0, 14, 11) < OLDEST_TERRAFORM && Version(1, 0, 0) >= OLDEST_TERRAFORM);
    }

    #[test]
    fn odd_terraform_output_is_a_clear_failure() {
        let err = terraform_version("").unwrap_err();
        assert!(err.contains("neither JSON nor"), "{err}");
        let err = terraform_version(r#"{"version": "1.0.3"}"#).unwrap_err();
        assert!(err.contains("no terraform_version"), "{err}");
        let err = terraform_version(r#"{"terraform_version": "latest"}"#).unwrap_err();
        assert!(err.contains("'latest' is not a version"), "{err}");
        let err = terraform_version(r#"{"terraform_version": 7}"#).unwrap_err();
        assert!(err.contains("no terraform_version"), "{err}");
        let long = "x".repeat(500);
        assert!(terraform_version(&long).unwrap_err().len() < 200, "output is clipped in the message");
    }

    #[test]
    fn ansible_versions_are_read_from_the_first_line() {
        let out = "ansible-playbook [core 2.19.14]\n  config file = None\n  python version = 3.11";
        assert_eq!(ansible_version(out), Ok(Version(2, 19, 14)));
        assert_eq!(ansible_version("ansible-playbook [core 2.20.0rc1]"), Ok(Version(2, 20, 0)));
        assert_eq!(ansible_version("ansible-playbook 2.9.27\n  config file"), Ok(Version(2, 9, 27)));
        let (oldest, beyond) = ANSIBLE_CORE;
        assert!(Version(2, 9, 27) < oldest && Version(2, 19, 14) < beyond && Version(2, 20, 0) >= beyond);
    }

    #[test]
    fn odd_ansible_output_is_a_clear_failure() {
        for (out, says) in [
            ("", "not `ansible-playbook [core X.Y.Z]`"),
            ("Python 3.11.2", "is it ansible-playbook?"),
            ("ansible-playbook [core devel]", "'devel' in"),
            ("ansible-playbook", "'' in"),
        ] {
            let err = ansible_version(out).unwrap_err();
            assert!(err.contains(says), "{out:?}: {err}");
        }
    }

    #[test]
    fn a_bare_tool_name_is_found_on_the_path_tools_get() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tf");
        fs::write(&tool, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
        let env = HashMap::from([("PATH".to_string(), format!("/nonexistent:{}", dir.path().display()))]);
        assert_eq!(resolve(Path::new("tf"), &env), Ok(tool.clone()));
        let err = resolve(Path::new("tf"), &HashMap::new()).unwrap_err();
        assert!(err.contains("not on the PATH"), "{err}");
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve(&tool, &env).unwrap_err();
        assert!(err.contains("not an executable file (mode 644)"), "{err}");
    }

    #[test]
    fn a_data_dir_others_may_read_fails_naming_chmod_and_a_missing_one_passes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let missing = data_dir(&dir);
        assert_eq!(missing.status, Status::Ok, "{missing:?}");
        assert!(!dir.exists(), "the check creates nothing");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let open = data_dir(&dir);
        assert_eq!(open.status, Status::Fail);
        assert_eq!(open.fix.unwrap(), format!("chmod 700 {}", dir.display()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(data_dir(&dir).status, Status::Ok);
    }

    #[test]
    fn a_key_file_others_may_read_fails_and_a_missing_one_fails_only_when_the_database_names_a_key() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secret.key");
        let source = Source::File(path.clone());
        assert_eq!(secret_key(&source, &Ok(None)).status, Status::Ok);
        let named = Ok(Some(Inspection { schema: 8, known: 8, sealing_key: Some("00ff00ff00ff00ff".into()) }));
        let missing = secret_key(&source, &named);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.detail.contains("00ff00ff00ff00ff") && missing.fix.unwrap().contains("restore"));
        assert!(!path.exists(), "no key file is made");

        Keyring::new(source.clone()).load(true).unwrap();
        assert_eq!(secret_key(&source, &Ok(None)).status, Status::Ok);
        let other = secret_key(&source, &named);
        assert_eq!(other.status, Status::Fail, "the file lacks the key the database names");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let open = secret_key(&source, &Ok(None));
        assert_eq!(open.status, Status::Fail);
        assert_eq!(open.fix.unwrap(), format!("chmod 600 {}", path.display()));
    }

    #[test]
    fn keys_from_the_environment_must_hold_the_key_the_database_names() {
        let ring = Keyring::new(Source::Ephemeral);
        ring.load(false).unwrap();
        let id = ring.ids().remove(0);
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("k");
        Keyring::new(Source::File(file.clone())).load(true).unwrap();
        let text = fs::read_to_string(&file).unwrap().lines().find(|l| !l.starts_with('#')).unwrap().to_string();
        let given = Source::Given(crate::secrets::KeyText::new(text.clone()));
        let named = |id: &str| Ok(Some(Inspection { schema: 8, known: 8, sealing_key: Some(id.into()) }));
        let lacking = secret_key(&given, &named(&id));
        assert_eq!(lacking.status, Status::Fail);
        assert!(lacking.detail.contains("FORMWORK_SECRET_KEY") && !lacking.detail.contains(&text), "{lacking:?}");
        let from_file = Keyring::new(Source::File(file));
        from_file.load(false).unwrap();
        let file_id = from_file.ids().remove(0);
        assert_eq!(secret_key(&given, &named(&file_id)).status, Status::Ok);
        let junk = secret_key(&Source::Given(crate::secrets::KeyText::new("c2hvcnQ=")), &Ok(None));
        assert_eq!(junk.status, Status::Fail);
        assert!(junk.detail.contains("FORMWORK_SECRET_KEY") && !junk.detail.contains("c2hvcnQ="), "{junk:?}");
    }

    #[test]
    fn a_relative_data_dir_is_looked_at_from_here() {
        assert_eq!(existing_ancestor(Path::new("no-such-formwork-dir/data")), Some(PathBuf::from(".")));
        assert_eq!(creatable(Path::new("no-such-formwork-dir")), Ok(()));
    }

    #[test]
    fn the_report_fails_only_on_a_failed_check() {
        let warned = Report::new(vec![Check::ok("a", "fine"), Check::warn("b", "low", "free some")]);
        assert!(warned.ok);
        let failed = Report::new(vec![Check::ok("a", "fine"), Check::fail("c", "broken", "mend it")]);
        assert!(!failed.ok);
        assert_eq!(failed.failed().map(|c| c.name).collect::<Vec<_>>(), ["c"]);
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            json["checks"][1],
            serde_json::json!({"name": "c", "status": "fail", "detail": "broken", "fix": "mend it"})
        );
    }
}
