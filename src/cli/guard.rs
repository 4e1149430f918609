//! `formwork tool-guard` (hidden): what a server on PostgreSQL runs in place of a tool; see
//! `crate::service::guard`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use crate::service::guard::{self, Guarded};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The provision whose tool lock it takes
    #[arg(long)]
    pub provision: i64,
    /// The operation the tool runs for (named in the lock's session)
    #[arg(long)]
    pub operation: i64,
    /// The epoch the server holds the operation in: nothing starts once it was taken over
    #[arg(long, default_value_t = 0)]
    pub epoch: i64,
    /// The Terraform state file the tool may leave, saved when newer than the stored one
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The tool and its arguments
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Runs the guarded tool; returns the exit code to leave with.
pub fn run(args: Args, settings: &Settings, env: &HashMap<String, String>) -> anyhow::Result<i32> {
    let mut command = args.command.into_iter();
    let program = command.next().ok_or_else(|| anyhow::anyhow!("tool-guard needs a command after --"))?;
    let guarded = Guarded {
        provision: args.provision,
        operation: args.operation,
        epoch: args.epoch,
        state: args.state,
        program,
        args: command.collect(),
    };
    Ok(guard::run(settings, env, &guarded)?)
}
