//! `formwork tool-guard`: how a tool runs when several servers share a PostgreSQL database.
//!
//! The server runs `formwork tool-guard … -- terraform apply …` instead of the tool itself. The
//! guard first takes the provision's tool lock (a session lock of its own connection,
//! [`crate::store::postgres::TOOL_LOCK`]), waiting while another server's tools still run for
//! the provision; then runs the tool in its own foreground; then saves the Terraform state the
//! tool left, when it is newer than the stored one; and only then lets the lock go.
//!
//! The guard outlives the server that started it: when that server dies (kill -9, a crash), its
//! parent-death signal makes the guard stop the tool gracefully, wait for it and save its state,
//! so the server that takes the operation over waits for the lock and then works from the
//! state the interrupted tool left, never creating again what it created. A frozen server's
//! guard and tool run on (they are other processes), and the lock keeps the taking-over
//! server's tools waiting until they are done.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::Error;
use crate::settings::{Database, Settings};
use crate::store::postgres::{Connector, SessionLock, TOOL_LOCK};

/// What a guard runs.
#[derive(Debug, Clone)]
pub struct Guarded {
    pub provision: i64,
    pub operation: i64,
    /// The Terraform state file the tool may leave (relative to the working directory).
    pub state: Option<PathBuf>,
    pub program: OsString,
    pub args: Vec<OsString>,
}

/// The variables a guard takes for itself; the tool runs without them.
pub const GUARD_VARS: [&str; 3] = ["FORMWORK_DATABASE", "FORMWORK_SECRET_KEY", "FORMWORK_SECRET_KEY_FILE"];

/// How often a waiting guard tries the lock again.
const RETRY: Duration = Duration::from_millis(500);
/// How long a guard keeps trying to save the state the tool left.
const SAVE_FOR: Duration = Duration::from_secs(120);

/// Runs a guarded tool (see the module); returns the exit code to leave with: the tool's, or
/// 128 + its signal, or 130 when stopped while still waiting for the lock.
pub fn run(settings: &Settings, env: &HashMap<String, String>, guarded: &Guarded) -> Result<i32, Error> {
    let Database::Postgres(url) = &settings.database else {
        return Err(Error::invalid(
            "formwork tool-guard guards tools on a PostgreSQL database; none is set (--database)",
        ));
    };
    let connector = Connector::parse(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let name = format!(
            "formwork tools: provision {} operation {} (pid {} on {})",
            guarded.provision,
            guarded.operation,
            std::process::id(),
            super::presence::host()
        );
        let Some(lock) = take_lock(&connector, &name, guarded.provision).await? else { return Ok(130) };
        let tool_env: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| !GUARD_VARS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let status = crate::exec::inherit::run_inherited(&guarded.program, &guarded.args, &tool_env, None).await;
        if let Some(state) = &guarded.state {
            save_state(settings, url, guarded.provision, state).await;
        }
        drop(lock);
        let status = status
            .map_err(|e| Error::invalid(format!("cannot run {}: {e}", PathBuf::from(&guarded.program).display())))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    })
}

/// Takes the provision's tool lock, saying on stderr (the provision's log) whose tools it waits
/// for; none when stopped (SIGINT, SIGTERM) while waiting.
async fn take_lock(connector: &Connector, name: &str, provision: i64) -> Result<Option<SessionLock>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut interrupt, mut terminate) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    let stopped = async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    };
    let mut lock = SessionLock::open(connector, name, TOOL_LOCK, provision)?;
    let waiting = |holders: &str| {
        say(&format!(
            "[formwork] waiting for tools of provision {provision} another server started to end (held by: {holders})"
        ));
    };
    match lock.acquire(RETRY, waiting, stopped).await? {
        None => Ok(None),
        Some(waited) => {
            if waited {
                say(&format!("[formwork] the other tools of provision {provision} ended: running this one"));
            }
            Ok(Some(lock))
        }
    }
}

/// Saves the state the tool left, if newer than the stored one, trying for [`SAVE_FOR`] while
/// the database cannot be reached.
async fn save_state(settings: &Settings, url: &str, provision: i64, path: &PathBuf) {
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let deadline = std::time::Instant::now() + SAVE_FOR;
    loop {
        let keys = settings.secret_keys.clone();
        let (url, text) = (url.to_string(), text.clone());
        let saved = tokio::task::spawn_blocking(move || {
            crate::store::Store::open_postgres(&url, keys)?.save_tfstate_if_newer(provision, &text, crate::store::now())
        })
        .await;
        match saved {
            Ok(Ok(true)) => {
                say("[formwork] the Terraform state the tool left was saved");
                return;
            }
            Ok(Ok(false)) => return,
            Ok(Err(e)) if std::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "cannot save the Terraform state the tool left yet; trying again");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Ok(Err(e)) => {
                say(&format!(
                    "[formwork] the Terraform state the tool left could not be saved ({e}); it stays in {} on this machine",
                    path.display()
                ));
                return;
            }
            Err(e) => {
                say(&format!("[formwork] saving the Terraform state the tool left failed: {e}"));
                return;
            }
        }
    }
}

/// A line on stderr (the provision's log, through the server); nothing when the server is gone.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
