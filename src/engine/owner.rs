//! Who owns an operation, and the processes it runs.
//!
//! An operation is owned by a process, identified by its pid and the time it started (from
//! `/proc/<pid>/stat`), so a pid reused by another process is never mistaken for the owner.
//!
//! The tools an operation runs are recorded while they run ([`run_tool`]: their process group,
//! its leader's start time and the run's mark, in the store), so that when the owner dies, the
//! process that takes the operation over stops whatever those tools left running
//! ([`stop_left_behind`], before the interrupted stage runs again). A tool told to stop by its
//! parent-death signal can leave helpers behind (Terraform's providers); nothing else would
//! ever stop them. `exec::group` decides which processes may be signalled.

use std::sync::Arc;
use std::time::Duration;

use crate::exec::{self, Cancel, Cmd, Finished, Severity, Sink, group};
use crate::store::{Owner, Store, ToolGroup};

/// How long what a dead owner's tools left gets to exit after SIGTERM before SIGKILL: the
/// grace a running tool gets.
const LEFT_BEHIND_GRACE: Duration = exec::cmd::DEFAULT_GRACE;

/// Where a tool runs: for which operation of which provision, and the Terraform state file it
/// may leave.
#[derive(Debug, Clone, Copy)]
pub struct ToolRun<'a> {
    pub provision_id: i64,
    pub operation_id: i64,
    /// The epoch this process holds the operation in.
    pub epoch: i64,
    pub state: Option<&'a std::path::Path>,
}

/// `cmd` under `formwork tool-guard` (this executable), which reaches the database with `env`.
fn guard(cmd: &Cmd, env: Vec<(String, String)>, at: &ToolRun<'_>) -> Result<Cmd, exec::Error> {
    let exe = std::env::current_exe().map_err(|source| exec::Error::Spawn {
        command: cmd.display(),
        hint: "formwork cannot find its own executable to guard the tool with".into(),
        source,
    })?;
    let mut guarded = Cmd::new(exe)
        .arg("tool-guard")
        .args(["--provision".to_string(), at.provision_id.to_string()])
        .args(["--operation".to_string(), at.operation_id.to_string()])
        .args(["--epoch".to_string(), at.epoch.to_string()]);
    if let Some(state) = at.state {
        guarded = guarded.arg("--state").arg(state);
    }
    guarded = guarded
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args().iter().cloned())
        .envs(cmd.get_env().iter().map(|(k, v)| (k.clone(), v.clone())))
        .envs(env)
        .timeout(cmd.get_timeout())
        .grace(cmd.get_grace())
        .secrets(cmd.get_secrets().iter().cloned());
    if let Some(dir) = cmd.get_cwd() {
        guarded = guarded.cwd(dir);
    }
    Ok(guarded)
}

/// This process.
pub fn current() -> Owner {
    let pid = std::process::id() as i64;
    Owner { pid, token: token(pid).unwrap_or_else(|| format!("{pid}:?")) }
}

/// Whether the process that owned an operation is still the same live process.
pub fn is_alive(owner: &Owner) -> bool {
    match token(owner.pid) {
        Some(token) => token == owner.token,
        // Without /proc, fall back on signal 0: alive, but a reused pid looks alive too.
        None => {
            let Ok(pid) = i32::try_from(owner.pid) else {
                return false;
            };
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        }
    }
}

/// `<pid>:<start time in clock ticks since boot>`.
fn token(pid: i64) -> Option<String> {
    let stat = group::stat(i32::try_from(pid).ok()?)?;
    Some(format!("{pid}:{}", stat.start))
}

/// Runs a tool of operation `operation_id` as [`exec::run`] does, with its process group
/// recorded in `store` while it runs. A record that cannot be written is logged and the tool
/// runs on: the tool matters more than the cleanup after a crash.
///
/// On a database several servers share, the tool runs under `formwork tool-guard`
/// (`crate::service::guard`): it waits for the provision's tools another server may still run,
/// and saves the Terraform state the tool leaves in `state` (relative to the tool's directory),
/// whatever happens to this process meanwhile.
pub async fn run_tool(
    cmd: &Cmd,
    sink: &mut dyn Sink,
    cancel: &Cancel,
    store: &Store,
    at: ToolRun<'_>,
) -> Result<Finished, exec::Error> {
    let operation_id = at.operation_id;
    let guarded = match store.guard_env() {
        Some(env) => Some(guard(cmd, env, &at)?),
        None => None,
    };
    let cmd = guarded.as_ref().unwrap_or(cmd);
    let mut record = None;
    let mut started = |started: &exec::Group| {
        let group = ToolGroup {
            pgid: i64::from(started.id),
            leader_start: started.leader_start as i64,
            mark: started.mark.clone(),
        };
        match store.record_tool_group(operation_id, &group, crate::store::now()) {
            Ok(id) => record = Some(id),
            Err(e) => {
                tracing::warn!(operation_id, error = %e, "cannot record a tool's process group; if formwork dies now, what the tool leaves running will not be stopped")
            }
        }
    };
    let result = exec::run_recorded(cmd, sink, cancel, &mut started).await;
    if let Some(id) = record
        && let Err(e) = store.forget_tool_group(id)
    {
        tracing::warn!(operation_id, error = %e, "cannot forget an ended tool's process group");
    }
    result
}

/// Stops what the tools of operation `operation_id` left running when its owner died, and
/// forgets their records; says in `log` what was stopped. Called by the process that took the
/// operation over, before anything runs again.
pub async fn stop_left_behind<L: Sink + ?Sized>(
    store: &Arc<Store>,
    operation_id: i64,
    log: &mut L,
) -> Result<(), crate::store::Error> {
    for (id, recorded) in store.call(move |s| s.tool_groups(operation_id)).await? {
        let group = exec::Group {
            id: i32::try_from(recorded.pgid).unwrap_or(0),
            leader_start: u64::try_from(recorded.leader_start).unwrap_or(0),
            mark: recorded.mark,
        };
        let pgid = group.id;
        let stopped =
            match tokio::task::spawn_blocking(move || group::stop_left_behind(&group, LEFT_BEHIND_GRACE)).await {
                Ok(stopped) => stopped,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a runtime shutting down cancels a blocking task, and then nobody awaits this.
                Err(_) => group::Stopped::default(),
            };
        if stopped.signalled > 0 {
            let killed = if stopped.killed > 0 {
                format!(", {} killed after the grace period", stopped.killed)
            } else {
                String::new()
            };
            log.note(
                Severity::Warning,
                &format!(
                    "stopped {} process(es) the interrupted tool left running (group {pgid}){killed}",
                    stopped.signalled
                ),
            );
        }
        store.call(move |s| s.forget_tool_group(id)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::Params;
    use crate::exec::{Capture, Stream};

    /// Counts the operation's recorded tool groups on each line the tool prints.
    struct Recorded<'a> {
        store: &'a Store,
        operation_id: i64,
        seen: Vec<usize>,
    }

    impl Sink for Recorded<'_> {
        fn line(&mut self, _: Stream, _: &str) {
            self.seen.push(self.store.tool_groups(self.operation_id).unwrap().len());
        }

        fn note(&mut self, _: Severity, _: &str) {}
    }

    #[tokio::test]
    async fn a_tool_is_recorded_while_it_runs_and_forgotten_when_it_ends() {
        let store = Store::open_in_memory().unwrap();
        let provider = store.insert_provider("sim", "sim", &json!({"connection": {}}), 1).unwrap();
        let body = serde_json::from_value(json!({"name": "p"})).unwrap();
        let provision = store.insert_provision("p", "sim", provider, &body, 2).unwrap();
        let op = store.begin_operation(provision, "create", &Params::None, None, &current(), 3).unwrap();
        let mut sink = Recorded { store: &store, operation_id: op, seen: vec![] };
        let at = ToolRun { provision_id: provision, operation_id: op, epoch: 0, state: None };
        run_tool(&Cmd::new("/bin/echo").arg("working"), &mut sink, &Cancel::new(), &store, at).await.unwrap();
        assert_eq!(sink.seen, [1], "recorded while it ran");
        assert_eq!(store.tool_groups(op).unwrap(), [], "forgotten when it ended");
        let failed = run_tool(&Cmd::new("/bin/false"), &mut Capture::default(), &Cancel::new(), &store, at).await;
        assert!(failed.is_err());
        assert_eq!(store.tool_groups(op).unwrap(), [], "forgotten when it failed too");
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = current();
        assert!(is_alive(&me));
        let impostor = Owner { pid: me.pid, token: format!("{}:0", me.pid) };
        assert!(!is_alive(&impostor), "same pid, different start time");
        let gone = Owner { pid: i32::MAX as i64, token: "x".into() };
        assert!(!is_alive(&gone));
    }
}
