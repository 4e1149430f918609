//! The command line: argument definitions here, one file per subcommand group. Commands return
//! `anyhow::Result`; `main` prints the error on stderr and maps it to an exit code.

pub mod driver;
mod format;
mod logs;
pub mod output;
mod progress;
pub mod provider;
pub mod provision;
mod show;
mod values;

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::settings::{Flags, Settings};

/// Exit codes, documented in README.md.
pub mod exit {
    /// The command did what was asked.
    pub const OK: i32 = 0;
    /// The command failed: bad input, a broken driver, an invalid value set.
    pub const FAILURE: i32 = 1;
    /// The command line itself was wrong (clap's own code).
    pub const USAGE: i32 = 2;
    /// Another operation is running on the provision; nothing was done.
    pub const BUSY: i32 = 3;
}

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
    /// Provisions: create, inspect, scale, deprovision, retry, cancel, resume
    #[command(subcommand)]
    Provision(provision::Command),
}

/// Runs a parsed command line; `env` is the process environment, read once by `main`.
pub fn run(cli: Cli, env: &HashMap<String, String>) -> anyhow::Result<()> {
    let flags = Flags { config: cli.config, data_dir: cli.data_dir, drivers_dirs: cli.drivers_dirs };
    let settings = Settings::resolve(flags, env)?;
    let out = output::Output::new(cli.json);
    match cli.command {
        Command::Driver(cmd) => driver::run(cmd, &settings, &out),
        Command::Provider(cmd) => provider::run(cmd, &settings, &out),
        Command::Provision(cmd) => provision::run(cmd, &settings, &out),
    }
}
