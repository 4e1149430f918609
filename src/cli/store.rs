//! `formwork store`: the database as a whole. `copy --to URL` moves a stopped SQLite
//! installation into an empty PostgreSQL database ([`service::copy_store`](crate::service::copy_store)),
//! prints per table the rows copied and the start of their digest (the same on both sides), and
//! says which key every server on the target needs. It works on this machine's settings alone,
//! never through a server; progress goes to stderr.

use std::io::Write;

use clap::Subcommand;

use super::output::{Output, table};
use crate::service::{StoreCopy, copy_store};
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy this installation's SQLite database (--database, stopped: no formwork serve or
    /// command working on it) into an empty PostgreSQL database, every row with its id; nothing
    /// is unsealed, and the key stays out of the database
    Copy(CopyArgs),
}

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The empty PostgreSQL database to fill: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// Rows between two progress lines of one table.
const PROGRESS_EVERY: u64 = 5000;

pub(crate) fn run(cmd: Command, settings: &Settings, out: &Output) -> anyhow::Result<()> {
    let Command::Copy(args) = cmd;
    let mut shown = 0;
    let mut progress = |table: &str, rows: u64, done: bool| {
        if done || rows >= shown + PROGRESS_EVERY {
            shown = if done { 0 } else { rows };
            let _ = writeln!(std::io::stderr(), "{table}: {rows} rows{}", if done { "" } else { "…" });
        }
    };
    let copied = copy_store(settings, &args.to, &mut progress)?;
    if out.json {
        return out.json(&copied);
    }
    out.text(&render(&copied))
}

fn render(copied: &StoreCopy) -> String {
    let rows: Vec<Vec<String>> = copied
        .tables
        .iter()
        .map(|t| vec![t.name.clone(), t.rows.to_string(), t.digest.chars().take(16).collect()])
        .collect();
    let key = copied.key_id.as_deref().unwrap_or("(none yet)");
    format!(
        "Copied {} into {}; every table's rows and digest are the same on both sides:\n\n{}\nThe key is not in the database: every server on {} must be given the same key ({}), key id {key}.\nThe SQLite database is unchanged; once the servers run on PostgreSQL, stop using it.\n",
        copied.source,
        copied.target,
        table(&["TABLE", "ROWS", "DIGEST"], &rows),
        copied.target,
        copied.keys,
    )
}
