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
//!
//! A Terraform run is also marked in the database from before the tool starts until the state it
//! left is saved ([`crate::store::Store::begin_tool_run`]): a server cut off from the database
//! loses its lock's connection at once, while the state of what its Terraform created is still on
//! its disk. No other run starts for the provision while the mark stands. When the tool ends,
//! the guard first keeps its state, sealed, where the mark says (`left_path`: the stage removes
//! its own copy when it ends, and the guard may be killed), then records the end, trying until
//! the database answers. The mark also goes when a server on the same machine finds the guard
//! gone and saves the state it left ([`recover`]), or when an admin forgets the server
//! (`formwork servers forget`). A run that starts after waiting takes the newest stored state
//! into its directory first. A guard whose operation was taken over starts nothing.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::Error;
use crate::settings::{Database, Settings};
use crate::store::postgres::{Connector, SessionLock, TOOL_LOCK};
use crate::store::{Begun, Fence, NewToolRun, Store, ToolRunMark, tfstate_serial};

/// What a guard runs.
#[derive(Debug, Clone)]
pub struct Guarded {
    pub provision: i64,
    pub operation: i64,
    /// The epoch its server holds the operation in: nothing starts once it was taken over.
    pub epoch: i64,
    /// The Terraform state file the tool may leave (relative to the working directory).
    pub state: Option<PathBuf>,
    pub program: OsString,
    pub args: Vec<OsString>,
}

/// The variables a guard takes for itself; the tool runs without them.
pub const GUARD_VARS: [&str; 3] = ["FORMWORK_DATABASE", "FORMWORK_SECRET_KEY", "FORMWORK_SECRET_KEY_FILE"];

/// How often a waiting guard tries the lock again.
const RETRY: Duration = Duration::from_millis(500);
/// How often a guard looks whether an earlier run's mark is gone.
const MARK_RETRY: Duration = Duration::from_secs(1);
/// How often a guard tries again to record the end of its run while the database does not answer.
const END_RETRY: Duration = Duration::from_secs(2);
/// The exit code of a guard whose operation was taken over before its tool started
/// (`EX_TEMPFAIL`).
pub const TAKEN_OVER: i32 = 75;

/// Runs a guarded tool (see the module); returns the exit code to leave with: the tool's, or
/// 128 + its signal, 130 when stopped before the tool started, or [`TAKEN_OVER`].
pub fn run(settings: &Settings, env: &HashMap<String, String>, guarded: &Guarded) -> Result<i32, Error> {
    let Database::Postgres(url) = &settings.database else {
        return Err(Error::invalid(
            "formwork tool-guard guards tools on a PostgreSQL database; none is set (--database)",
        ));
    };
    let connector = Connector::parse(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut stop = Stop::new()?;
        let name = format!(
            "formwork tools: provision {} operation {} (pid {} on {})",
            guarded.provision,
            guarded.operation,
            std::process::id(),
            super::presence::host()
        );
        let Some(lock) = take_lock(&connector, &name, guarded.provision, &mut stop).await? else { return Ok(130) };
        let (url, keys) = (url.clone(), settings.secret_keys.clone());
        let store = Arc::new(blocking(move || Store::open_postgres(&url, keys)).await?);
        let me = crate::engine::owner::current();
        let run = match &guarded.state {
            Some(state) => Some(NewToolRun {
                host: super::presence::host(),
                guard: me.token.clone(),
                state_path: std::env::current_dir()?.join(state).display().to_string(),
                left_path: left_path(settings, guarded.provision, &me.token).display().to_string(),
            }),
            None => None,
        };
        match begin(&store, guarded, run.clone(), &mut stop).await? {
            Start::Go => {}
            Start::Stopped => return Ok(130),
            Start::TakenOver(why) => {
                say(&format!("[formwork] {why}: this run of {} does not start", program_name(guarded)));
                return Ok(TAKEN_OVER);
            }
        }
        if let Some(state) = &guarded.state {
            take_newest_state(&store, guarded.provision, state).await;
        }
        let tool_env: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| !GUARD_VARS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let status = crate::exec::inherit::run_inherited(&guarded.program, &guarded.args, &tool_env, None).await;
        if let Some(run) = &run {
            let left = keep_left_state(&store, guarded.provision, run);
            end(&store, guarded.provision, run, left).await;
        }
        drop(lock);
        let status = status.map_err(|e| Error::invalid(format!("cannot run {}: {e}", program_name(guarded))))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    })
}

fn program_name(guarded: &Guarded) -> String {
    PathBuf::from(&guarded.program).display().to_string()
}

/// The signals that stop a guard before its tool starts (SIGINT, SIGTERM).
struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

impl Stop {
    fn new() -> std::io::Result<Stop> {
        Ok(Stop { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Runs a blocking store call off the guard's one thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::Error> + Send + 'static,
) -> Result<T, crate::store::Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Takes the provision's tool lock, saying on stderr (the provision's log) whose tools it waits
/// for; none when stopped (SIGINT, SIGTERM) while waiting.
async fn take_lock(
    connector: &Connector,
    name: &str,
    provision: i64,
    stop: &mut Stop,
) -> Result<Option<SessionLock>, Error> {
    let mut lock = SessionLock::open(connector, name, TOOL_LOCK, provision)?;
    let waiting = |holders: &str| {
        say(&format!(
            "[formwork] waiting for tools of provision {provision} another server started to end (held by: {holders})"
        ));
    };
    match lock.acquire(RETRY, waiting, stop.wait()).await? {
        None => Ok(None),
        Some(waited) => {
            if waited {
                say(&format!("[formwork] the other tools of provision {provision} ended: running this one"));
            }
            Ok(Some(lock))
        }
    }
}

enum Start {
    Go,
    Stopped,
    TakenOver(String),
}

/// Begins the run under the operation's fence, waiting (saying so once) while an earlier run's
/// mark stands, and ending that run itself when its guard is gone from this machine.
async fn begin(
    store: &Arc<Store>,
    guarded: &Guarded,
    run: Option<NewToolRun>,
    stop: &mut Stop,
) -> Result<Start, Error> {
    let fence = Fence { operation_id: guarded.operation, epoch: guarded.epoch };
    let provision = guarded.provision;
    let mut said = false;
    loop {
        let (store2, run2) = (Arc::clone(store), run.clone());
        let begun = blocking(move || store2.begin_tool_run(provision, fence, run2, crate::store::now())).await;
        let mark = match begun {
            Ok(Begun::Started) => {
                if said {
                    say(&format!(
                        "[formwork] the earlier Terraform run of provision {provision} ended: running this one"
                    ));
                }
                return Ok(Start::Go);
            }
            Ok(Begun::Waiting(mark)) => mark,
            Err(e @ crate::store::Error::Fenced { .. }) => return Ok(Start::TakenOver(e.to_string())),
            Err(e) => return Err(e.into()),
        };
        if !said {
            say(&waiting_for(&mark));
            said = true;
        }
        let (store2, mark2) = (Arc::clone(store), mark.clone());
        match blocking(move || recover(&store2, &mark2)).await {
            Ok(Some(how)) => say(&format!("[formwork] {how}")),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot end a run whose guard is gone"),
        }
        tokio::select! {
            _ = tokio::time::sleep(MARK_RETRY) => {}
            _ = stop.wait() => return Ok(Start::Stopped),
        }
    }
}

/// What a run waiting for `mark` says.
pub fn waiting_for(mark: &ToolRunMark) -> String {
    format!(
        "[formwork] waiting for the Terraform state of an earlier run of provision {} (operation {}, server {}, guard {} on {}): \
         it has not reached the database, and running from the older stored state would create again what that run created. \
         It arrives when that guard reaches the database again or a server on {} finds it gone; if {} will never come back, \
         `formwork servers forget {}` gives up on it",
        mark.provision_id, mark.operation_id, mark.server, mark.guard, mark.host, mark.host, mark.host, mark.server
    )
}

/// Ends `mark`'s run when its guard is gone from this machine: saves the state it left (its
/// sealed copy, or else the tool's state file) when newer than the stored one, and removes the
/// mark; says what it did. Nothing when the run was on another machine or its guard still
/// lives.
pub fn recover(store: &Store, mark: &ToolRunMark) -> Result<Option<String>, crate::store::Error> {
    if mark.host != super::presence::host() || guard_alive(&mark.guard) {
        return Ok(None);
    }
    let (state, from) = match std::fs::read_to_string(&mark.left_path) {
        Ok(sealed) => (Some(store.open_left_state(mark.provision_id, &sealed)?), &mark.left_path),
        Err(_) => (std::fs::read_to_string(&mark.state_path).ok(), &mark.state_path),
    };
    let saved = store.end_tool_run(mark.provision_id, &mark.guard, state.as_deref(), crate::store::now())?;
    let _ = std::fs::remove_file(&mark.left_path);
    let gone = format!("the guard of an earlier Terraform run of provision {} is gone", mark.provision_id);
    Ok(Some(match (state.is_some(), saved) {
        (true, true) => format!("{gone}; the state it left in {from} was saved"),
        (true, false) => format!("{gone}; the state it left in {from} was no newer than the stored one"),
        (false, _) => format!("{gone} and left no state in {from}"),
    }))
}

/// Where a guard keeps the state its tool left until the run's end is recorded.
fn left_path(settings: &Settings, provision: i64, guard: &str) -> PathBuf {
    settings
        .data_dir
        .join("left-states")
        .join(format!("provision-{provision}-guard-{}.sealed", guard.replace(':', "-")))
}

/// Keeps the state the tool left, sealed, where the run's mark says ([`ToolRunMark::left_path`]):
/// the stage removes its own copy when it ends, and this guard may be killed before the end of
/// the run is recorded. Returns the state, if the tool left one.
fn keep_left_state(store: &Store, provision: i64, run: &NewToolRun) -> Option<String> {
    let text = std::fs::read_to_string(&run.state_path).ok()?;
    let kept = store.seal_left_state(provision, &text).map_err(|e| e.to_string()).and_then(|sealed| {
        let path = Path::new(&run.left_path);
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| e.to_string())?;
        }
        write_private(path, &sealed).map_err(|e| e.to_string())
    });
    if let Err(e) = kept {
        say(&format!("[formwork] cannot keep the state the tool left in {}: {e}", run.left_path));
    }
    Some(text)
}

/// Whether the process `pid:start` lives (the same process, not a reused pid).
fn guard_alive(token: &str) -> bool {
    crate::store::Owner::of_process(token).is_some_and(|guard| crate::engine::owner::is_alive(&guard))
}

/// Puts the newest stored state into the tool's directory when it is newer than the one there
/// (an earlier run's state arrived while this one waited).
async fn take_newest_state(store: &Arc<Store>, provision: i64, path: &Path) {
    let here = std::fs::read_to_string(path).ok();
    let store = Arc::clone(store);
    let stored = blocking(move || store.latest_tfstate(provision)).await;
    let newer = match stored {
        Ok(Some(stored)) if here.as_deref().and_then(tfstate_serial) < tfstate_serial(&stored) => stored,
        Ok(_) => return,
        Err(e) => {
            say(&format!("[formwork] cannot read the newest Terraform state from the database: {e}"));
            return;
        }
    };
    match write_private(path, &newer) {
        Ok(()) => say("[formwork] took the newest Terraform state from the database"),
        Err(e) => say(&format!("[formwork] cannot write the newest Terraform state to {}: {e}", path.display())),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

/// Ends this guard's run: saves the state the tool left when newer than the stored one and
/// removes the run's mark, trying while the database cannot be reached (the provision's other
/// runs wait for it), then removes the sealed copy kept meanwhile.
async fn end(store: &Arc<Store>, provision: i64, run: &NewToolRun, state: Option<String>) {
    let mut warned = false;
    loop {
        let (store2, guard, state2) = (Arc::clone(store), run.guard.clone(), state.clone());
        let ended =
            blocking(move || store2.end_tool_run(provision, &guard, state2.as_deref(), crate::store::now())).await;
        match ended {
            Ok(saved) => {
                let _ = std::fs::remove_file(&run.left_path);
                if saved {
                    say("[formwork] the Terraform state the tool left was saved");
                }
                if warned {
                    say("[formwork] the database answers again: this run's end is recorded");
                }
                return;
            }
            Err(e) => {
                if !warned {
                    say(&format!(
                        "[formwork] cannot record the end of this run yet ({e}); trying again until the database answers \
                         (the provision's other runs wait for it; the state the tool left is kept in {})",
                        run.left_path
                    ));
                    warned = true;
                }
                tokio::time::sleep(END_RETRY).await;
            }
        }
    }
}

/// A line on stderr (the provision's log, through the server); nothing when the server is gone.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::Params;

    /// A store with one provision whose operation began a marked Terraform run of guard
    /// `guard`, whose sealed state is left in `dir` (as a guard keeps it).
    fn marked_run(dir: &Path, guard: &str, state: &str) -> (Store, i64, ToolRunMark) {
        let store = Store::open(&dir.join("formwork.db")).unwrap();
        let provider = store.insert_provider("sim", "sim", &json!({"connection": {}}), 1).unwrap();
        let body = serde_json::from_value(json!({"name": "p"})).unwrap();
        let id = store.insert_provision("p", "sim", provider, &body, 2).unwrap();
        let owner = crate::engine::owner::current();
        let op = store.begin_operation(id, "create", &Params::None, None, &owner, 3).unwrap();
        let left = dir.join("left.sealed");
        std::fs::write(&left, store.seal_left_state(id, state).unwrap()).unwrap();
        let run = NewToolRun {
            host: super::super::presence::host(),
            guard: guard.into(),
            state_path: dir.join("terraform.tfstate").display().to_string(),
            left_path: left.display().to_string(),
        };
        let fence = store.operation(op).unwrap().fence();
        assert_eq!(store.begin_tool_run(id, fence, Some(run), 4).unwrap(), Begun::Started);
        let mark = store.tool_runs().unwrap().remove(0);
        (store, id, mark)
    }

    #[test]
    fn a_run_whose_guard_is_gone_is_ended_from_the_state_it_left() {
        let dir = tempfile::tempdir().unwrap();
        let state = r#"{"version": 4, "serial": 7, "lineage": "l"}"#;
        let (store, id, mark) = marked_run(dir.path(), "999999999:1", state);
        let said = recover(&store, &mark).unwrap().expect("a gone guard's run is ended");
        assert!(said.contains("was saved"), "{said}");
        assert_eq!(store.tool_runs().unwrap(), vec![], "the mark is gone");
        assert_eq!(store.latest_tfstate(id).unwrap().as_deref(), Some(state), "the state it left is stored");
        assert!(!Path::new(&mark.left_path).exists(), "the sealed copy is removed");
        let sealed = store.seal_left_state(id, state).unwrap();
        assert!(!sealed.contains("lineage"), "the copy on disk is sealed: {sealed}");
    }

    #[test]
    fn a_run_whose_guard_lives_or_ran_elsewhere_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let me = crate::engine::owner::current().token;
        let (store, _, mark) = marked_run(dir.path(), &me, r#"{"serial": 1}"#);
        assert_eq!(recover(&store, &mark).unwrap(), None, "its guard lives");
        let elsewhere = ToolRunMark { host: "another-machine".into(), guard: "999999999:1".into(), ..mark.clone() };
        assert_eq!(recover(&store, &elsewhere).unwrap(), None, "its state is on another machine");
        assert_eq!(store.tool_runs().unwrap(), vec![mark], "the mark stands");
    }
}
