//! Running a tool in the foreground of this process (`formwork tool-guard`): the tool shares its
//! standard streams and its process group, so whoever runs this process reads the tool's output
//! and signals both at once.
//!
//! The group's SIGINT (a cancel) reaches the tool directly: this process only outlives it. A
//! SIGTERM to this process alone (its parent-death signal: the server died) is passed on to the
//! tool as one SIGINT, its graceful stop; a second one would make Terraform stop at once and
//! lose state.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};

/// Runs `program` with exactly `env`, in `cwd`, and waits for it; see the module.
pub async fn run_inherited(
    program: &OsString,
    args: &[OsString],
    env: &[(String, String)],
    cwd: Option<&Path>,
) -> io::Result<ExitStatus> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    #[allow(clippy::disallowed_methods)] // exec is the one module that starts processes
    let mut command = std::process::Command::new(program);
    command.args(args).env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    command.stdin(Stdio::null()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let mut child = tokio::process::Command::from(command).spawn()?;
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    let mut passed_on = false;
    loop {
        tokio::select! {
            status = child.wait() => return status,
            _ = interrupt.recv() => {}
            _ = hangup.recv() => {}
            _ = terminate.recv() => {
                if let (Some(pid), false) = (pid, passed_on) {
                    let _ = kill(pid, Signal::SIGINT);
                    passed_on = true;
                }
            }
        }
    }
}
