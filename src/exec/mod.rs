//! Child processes: the only module in formwork that spawns them (terraform, ansible-playbook).
//!
//! A [`Cmd`] says what to run: argv (never a shell string), working directory, an explicit
//! environment (the child starts from an empty one), a timeout, a grace period and the
//! secrets to mask. [`run`] starts it in its own process group with stdin closed, streams
//! stdout and stderr line by line as they come into a [`Sink`], masks every line on the way,
//! and stops the child gracefully on timeout or [`Cancel`]: SIGINT to the group (Terraform
//! then releases its lock and saves state), the grace period, then SIGKILL. Errors carry
//! the masked command line, the exit status and the end of stderr.
//!
//! [`ProvisionLog`] is the sink for a provision: OneForm's per-provision log format, read
//! back with [`log::read`] and [`log::tail`].
//!
//! Every child is forked on one thread that lives as long as formwork (`spawner`), so its
//! parent-death signal comes when formwork dies and not before. [`run_recorded`] hands the
//! caller the child's [`Group`], which a later process can find again and stop
//! ([`group::stop_left_behind`]) without ever signalling a reused pid.
//!
//! Invariants: no text from a child reaches a sink, a log or an error unmasked; a child
//! never outlives formwork silently (parent-death signal, process-group signalling, SIGTERM
//! to the group if a run is abandoned, and what a dead formwork's run left in its group stopped
//! by the process that takes its work over).

pub mod cancel;
pub mod cmd;
pub mod detach;
pub mod group;
pub mod inherit;
pub mod log;
pub mod mask;
mod run;
pub mod sink;
mod spawner;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

pub use cancel::Cancel;
pub use cmd::Cmd;
pub use detach::spawn_detached;
pub use group::Group;
pub use log::{LogLine, ProvisionLog};
pub use mask::Masker;
pub use run::{Finished, run, run_recorded, wait_for_dropped};
pub use sink::{Capture, Severity, Sink, Stream, Tee, Trace};

/// How many lines of stderr a failure keeps (masked) for its message.
pub const STDERR_TAIL_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not start `{command}`: {source}; {hint}")]
    Spawn {
        command: String,
        /// What to check, from the failure and the command (PATH, working directory).
        hint: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", stderr_summary(stderr_tail))]
    Failed {
        command: String,
        status: ExitStatus,
        /// The last [`STDERR_TAIL_LINES`] non-blank lines of stderr, masked and trimmed.
        stderr_tail: Vec<String>,
    },
    #[error("`{command}` timed out after {} and {}", crate::units::duration(*after), stop_outcome(*killed))]
    TimedOut {
        command: String,
        after: Duration,
        /// True when the child ignored SIGINT for the whole grace period and was killed.
        killed: bool,
    },
    #[error("`{command}` was cancelled and {}", stop_outcome(*killed))]
    Cancelled { command: String, killed: bool },
    #[error("lost track of `{command}` while waiting for it: {source}")]
    Wait { command: String, source: std::io::Error },
    #[error("cannot open the provision log '{}': {source}; check that formwork may write to its data directory", path.display())]
    Log { path: PathBuf, source: std::io::Error },
}

fn stderr_summary(tail: &[String]) -> String {
    if tail.is_empty() {
        return "; it printed nothing on stderr".to_string();
    }
    let mut text = String::from("; its stderr ended with:");
    for line in tail {
        let _ = write!(text, "\n  {line}");
    }
    text
}

fn stop_outcome(killed: bool) -> &'static str {
    if killed { "was killed after ignoring SIGINT for the grace period" } else { "stopped after SIGINT" }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn failed_names_command_status_and_stderr_tail() {
        let err = Error::Failed {
            command: "terraform apply -no-color".into(),
            status: ExitStatus::from_raw(3 << 8),
            stderr_tail: vec!["Error: boom".into(), "on main.tf line 3".into()],
        };
        assert_eq!(
            err.to_string(),
            "`terraform apply -no-color` failed (exit status: 3); its stderr ended with:\n  Error: boom\n  on main.tf line 3"
        );
        let err = Error::Failed { command: "x".into(), status: ExitStatus::from_raw(9), stderr_tail: vec![] };
        assert_eq!(err.to_string(), "`x` failed (signal: 9 (SIGKILL)); it printed nothing on stderr");
    }

    #[test]
    fn stop_errors_say_how_the_child_stopped() {
        let err = Error::TimedOut { command: "terraform apply".into(), after: Duration::from_secs(30), killed: true };
        assert_eq!(
            err.to_string(),
            "`terraform apply` timed out after 30s and was killed after ignoring SIGINT for the grace period"
        );
        let err = Error::Cancelled { command: "terraform apply".into(), killed: false };
        assert_eq!(err.to_string(), "`terraform apply` was cancelled and stopped after SIGINT");
    }
}
