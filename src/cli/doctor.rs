//! `formwork doctor`: checks this machine's installation ([`crate::doctor`]) and prints a row
//! per check (name, ok/warn/FAIL, what was found, the fix), or `--json`
//! (`{"ok", "checks": [{"name", "status", "detail", "fix"}]}`). It exits 0 when no check
//! failed (warnings allowed) and 1 ([`exit::FAILURE`](crate::service::exit::FAILURE)) when one
//! did, after printing the whole report. It changes nothing, and it runs on the machine it
//! checks: a server's installation is checked there, or through its `GET /health?deep=true`.

use std::collections::HashMap;

use anyhow::bail;

use super::output::{Output, table};
use crate::doctor::{self, Report};
use crate::settings::{Flags, Settings};

/// `formwork doctor`'s arguments (the global `--json`, `--config` and `--data-dir` apply).
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(
    _args: Args,
    server: Option<&str>,
    flags: Flags,
    env: &HashMap<String, String>,
    out: &Output,
) -> anyhow::Result<()> {
    // A named server (valid or not) is refused: doctor never checks one from afar.
    if !matches!(crate::client::Config::resolve(server, env), Ok(None)) {
        bail!(
            "formwork doctor checks the installation of the machine it runs on, not a server's ({}): run it on the server's machine, or ask the server for GET /health?deep=true as a user of the oneadmin group; drop --server and ONEFORM_URL to check this machine",
            server.unwrap_or("ONEFORM_URL")
        );
    }
    let settings = Settings::resolve(flags, env)?;
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = tokio.block_on(doctor::examine(&settings));
    if out.json {
        out.json(&report)?;
    } else {
        out.text(&render(&report))?;
    }
    let failed: Vec<&str> = report.failed().map(|c| c.name).collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} checks failed ({}); each row's fix says what to do",
            failed.len(),
            report.checks.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn render(report: &Report) -> String {
    let rows: Vec<Vec<String>> = report
        .checks
        .iter()
        .map(|c| {
            let fix = c.fix.clone().unwrap_or_else(|| "-".into());
            vec![c.name.to_string(), c.status.label().to_string(), c.detail.clone(), fix]
        })
        .collect();
    table(&["CHECK", "STATUS", "DETAIL", "FIX"], &rows)
}
