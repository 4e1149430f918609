//! The command line: argument definitions here, one file per subcommand group. Each command
//! parses its arguments, calls the service layer and renders the answer (a table or `--json`
//! on stdout, progress and errors on stderr); no rule lives here, and nothing below the service
//! is reached (`tests/tidy.rs` checks it). Commands return `anyhow::Result`; `main` prints the
//! error and maps it to an exit code with [`service::Error::exit_code`](crate::service::Error::exit_code).

pub mod driver;
mod format;
mod logs;
pub mod output;
mod progress;
pub mod provider;
pub mod provision;
mod serve;
mod show;
mod values;

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::settings::{Flags, Settings};

pub use crate::service::exit;

#[derive(Debug, Parser)]
#[command(name = "formwork", version, about = "Durable provisioning with OneForm driver folders")]
pub struct Cli {
    /// Config file (YAML); default $XDG_CONFIG_HOME/formwork/config.yaml when it exists
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where formwork keeps its data (default $XDG_DATA_HOME/formwork)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Extra drivers directory, searched after the built-in drivers (repeatable)
    #[arg(long = "drivers-dir", global = true, value_name = "DIR")]
    pub drivers_dirs: Vec<PathBuf>,
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
}

/// The format of tracing output on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Runs a parsed command line; `env` is the process environment, read once by `main`.
pub fn run(cli: Cli, env: &HashMap<String, String>) -> anyhow::Result<()> {
    let flags = Flags { config: cli.config, data_dir: cli.data_dir, drivers_dirs: cli.drivers_dirs };
    let settings = Settings::resolve(flags, env)?;
    let out = output::Output::new(cli.json);
    let span = tracing::info_span!("command", name = cli.command.name());
    let _entered = span.enter();
    match cli.command {
        Command::Driver(cmd) => driver::run(cmd, &settings, &out),
        Command::Provider(cmd) => provider::run(cmd, &settings, &out),
        Command::Provision(cmd) => provision::run(cmd, &settings, &out),
        Command::Serve(args) => serve::run(args, settings),
    }
}

impl Command {
    /// The command group, for the tracing span.
    fn name(&self) -> &'static str {
        match self {
            Command::Driver(_) => "driver",
            Command::Provider(_) => "provider",
            Command::Provision(_) => "provision",
            Command::Serve(_) => "serve",
        }
    }
}
