//! Running a tool in the foreground of this process (`formwork tool-guard`): the tool shares its
//! process group, so whoever runs this process signals both at once, and its output is passed on
//! to this process's own. When whoever reads that output is gone (the server died), the output
//! is still read and dropped: a tool writing to a closed pipe would be killed by SIGPIPE before
//! it could write its state.
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
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let mut child = tokio::process::Command::from(command).spawn()?;
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
    let out = child.stdout.take().map(|from| tokio::spawn(relay(from, std::io::stdout())));
    let err = child.stderr.take().map(|from| tokio::spawn(relay(from, std::io::stderr())));
    let mut passed_on = false;
    loop {
        tokio::select! {
            status = child.wait() => {
                for relay in [out, err].into_iter().flatten() {
                    let _ = relay.await;
                }
                return status;
            }
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

/// Copies `from` to `to` until `from` ends; once `to` fails (its reader is gone), the rest is
/// read and dropped. Writing blocks while the reader does not read (a frozen server): so does
/// the tool then, as it would writing to that reader itself.
async fn relay(mut from: impl tokio::io::AsyncRead + Unpin, mut to: impl std::io::Write) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 * 1024];
    let mut open = true;
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if open && (to.write_all(&buf[..n]).is_err() || to.flush().is_err()) {
            open = false;
        }
    }
}
