//! The command line: argument definitions here, one file per subcommand group. Each command
//! parses its arguments, calls its [`Backend`](backend::Backend) — the service layer here, or a
//! formwork server with `--server URL` / `ONEFORM_URL`, both implementing that one trait — and renders the answer (a table or
//! `--json` on stdout, progress and errors on stderr); no rule lives here, and nothing below the
//! service is reached (`tests/tidy.rs` checks it). Commands return `anyhow::Result`; `main` prints the
//! error and maps it to an exit code with [`service::Error::exit_code`](crate::service::Error::exit_code).

mod backend;
mod doctor;
pub mod driver;
mod format;
mod guard;
mod hints;
mod logs;
pub mod output;
mod progress;
pub mod provider;
pub mod provision;
mod secrets;
mod serve;
mod servers;
mod show;
mod store;
mod values;

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::settings::{Flags, Settings};

pub use crate::service::exit;
pub use hints::hint;

#[derive(Debug, Parser)]
#[command(name = "formwork", version, about = "Durable provisioning with OneForm driver folders")]
pub struct Cli {
    /// Config file (YAML); default $XDG_CONFIG_HOME/formwork/config.yaml when it exists
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where formwork keeps its data (default $XDG_DATA_HOME/formwork)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The database: a SQLite file (default <data-dir>/formwork.db) or a PostgreSQL URL
    /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE) that several servers share; also
    /// FORMWORK_DATABASE
    #[arg(long, global = true, value_name = "FILE|URL")]
    pub database: Option<String>,
    /// Extra drivers directory, searched after the built-in drivers (repeatable)
    #[arg(long = "drivers-dir", global = true, value_name = "DIR")]
    pub drivers_dirs: Vec<PathBuf>,
    /// Run the command on a formwork server (`formwork serve`) instead of this machine's data;
    /// also ONEFORM_URL. Credentials: ONEFORM_USER and ONEFORM_PASSWORD, else the
    /// `user:password` file ONE_AUTH names, else ~/.one/one_auth. An https:// server's
    /// certificate is checked against ONEFORM_CA_FILE, else SSL_CERT_FILE, else the system's
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// How diagnostics (RUST_LOG, default warn) are written on stderr
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Driver folders: list, inspect, verify, enable, disable, schema
    #[command(subcommand)]
    Driver(driver::Command),
    /// Providers: a driver plus connection values
    #[command(subcommand)]
    Provider(provider::Command),
    /// Serve OneForm's REST API (and formwork's additions) on this machine's data
    Serve(serve::Args),
    /// Provisions: create, inspect, scale, deprovision, retry, cancel, resume
    #[command(subcommand)]
    Provision(provision::Command),
    /// Secret keys: create the key file, rotate the key that seals credentials and sensitive
    /// inputs at rest
    #[command(subcommand)]
    Secrets(secrets::Command),
    /// Check this machine's installation (tools, OpenNebula, data directory, key, database,
    /// drivers, disk) without changing it; exits 1 when a check fails
    Doctor(doctor::Args),
    /// The database as a whole: copy a stopped SQLite installation into PostgreSQL
    #[command(subcommand)]
    Store(store::Command),
    /// The servers working on this database, what each runs and their last heartbeat
    Servers(servers::Args),
    /// Runs a tool under its provision's tool lock (what servers on PostgreSQL run)
    #[command(hide = true)]
    ToolGuard(guard::Args),
}

/// The format of tracing output on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Runs a parsed command line; `env` is the process environment, read once by `main`.
pub fn run(cli: Cli, env: &HashMap<String, String>) -> anyhow::Result<()> {
    let flags =
        Flags { config: cli.config, data_dir: cli.data_dir, database: cli.database, drivers_dirs: cli.drivers_dirs };
    let out = output::Output::new(cli.json);
    let span = tracing::info_span!("command", name = cli.command.name());
    let _entered = span.enter();
    let server = cli.server.as_deref();
    match cli.command {
        // The server works on this machine's data, whatever ONEFORM_URL says.
        // NOTIFY_SOCKET is systemd's protocol, not a setting: handed to the server as it is.
        Command::Serve(args) => {
            serve::run(args, Settings::resolve(flags, env)?, env.get("NOTIFY_SOCKET").map(String::as_str))
        }
        // A tool of a server on PostgreSQL, guarded; leaves with the tool's exit code.
        Command::ToolGuard(args) => std::process::exit(guard::run(args, &Settings::resolve(flags, env)?, env)?),
        // Checks this machine without opening its data the way a command does (no migration,
        // no key made), so outside any backend.
        Command::Doctor(args) => doctor::run(args, server, flags, env, &out),
        // Before a service starts, as root: the settings alone, no database, no server.
        Command::Secrets(secrets::Command::InitKey(args)) => {
            secrets::init_key(args, &Settings::resolve(flags, env)?, &out)
        }
        // This machine's database, as it is: no service, no server.
        Command::Store(cmd) => store::run(cmd, &Settings::resolve(flags, env)?, &out),
        command => {
            // On this machine, or on the server `--server`/`ONEFORM_URL` names.
            let chosen = backend::choose(server, flags, env)?;
            let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            match chosen {
                backend::Chosen::Local(local) => tokio.block_on(command.run(local.as_ref(), &out)),
                backend::Chosen::Remote(client) => tokio.block_on(command.run(client.as_ref(), &out)),
            }
        }
    }
}

impl Command {
    /// Runs a command that works here or on a server on `backend`.
    async fn run(self, backend: &impl backend::Backend, out: &output::Output) -> anyhow::Result<()> {
        match self {
            Command::Driver(cmd) => driver::run(cmd, backend, out).await,
            Command::Provider(cmd) => provider::run(cmd, backend, out).await,
            Command::Provision(cmd) => provision::run(cmd, backend, out).await,
            Command::Secrets(cmd) => secrets::run(cmd, backend, out).await,
            Command::Serve(_) => unreachable!("`serve` runs on this machine's data, outside any backend"),
            Command::Doctor(_) => unreachable!("`doctor` checks this machine, outside any backend"),
            Command::Store(_) => unreachable!("`store` works on this machine's database, outside any backend"),
            Command::ToolGuard(_) => unreachable!("`tool-guard` runs one tool, outside any backend"),
            Command::Servers(args) => servers::run(args, backend, out).await,
        }
    }

    /// The command group, for the tracing span.
    fn name(&self) -> &'static str {
        match self {
            Command::Driver(_) => "driver",
            Command::Provider(_) => "provider",
            Command::Provision(_) => "provision",
            Command::Serve(_) => "serve",
            Command::Secrets(_) => "secrets",
            Command::Doctor(_) => "doctor",
            Command::Store(_) => "store",
            Command::ToolGuard(_) => "tool-guard",
            Command::Servers(_) => "servers",
        }
    }
}
