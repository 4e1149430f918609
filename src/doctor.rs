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
//!
//! Map: [`tools`] (Terraform, ansible-playbook), [`opennebula`], [`files`] (the data directory,
//! drivers, plugin cache, disk), [`database`] (the key file and the database).

mod database;
mod files;
mod opennebula;
mod tools;

use serde::Serialize;

use crate::settings::Settings;
use crate::store;

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
    let (terraform, ansible, one) =
        tokio::join!(tools::terraform(settings), tools::ansible(settings), opennebula::check(settings));
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
    let db = store::inspect_database(&settings.database);
    vec![
        files::data_dir(&settings.data_dir),
        database::secret_key(&settings.secret_keys, &db),
        database::database(&settings.database.shown(), &db),
        files::drivers(settings),
        files::plugin_cache(&settings.plugin_cache()),
        files::disk(&settings.data_dir),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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
