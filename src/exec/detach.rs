//! Starting a process that outlives formwork: `--detach` hands an operation to a background
//! formwork, and any command that finds an operation whose process died starts a background
//! `resume`. The child gets its own session (no terminal signals), an explicit environment,
//! stdin and stdout from/to /dev/null and stderr appended to a private file; unlike tool
//! children it is *not* stopped when its parent exits.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use super::{Cmd, Error};

/// Starts `cmd` in the background and returns its pid.
pub fn spawn_detached(cmd: &Cmd, stderr_file: &Path) -> Result<u32, Error> {
    let log_error = |source| Error::Log { path: stderr_file.to_path_buf(), source };
    if let Some(dir) = stderr_file.parent() {
        std::fs::create_dir_all(dir).map_err(log_error)?;
    }
    let stderr = OpenOptions::new().append(true).create(true).mode(0o600).open(stderr_file).map_err(log_error)?;
    #[allow(clippy::disallowed_methods)] // exec is the one module that starts processes
    let mut command = std::process::Command::new(cmd.get_program());
    command
        .args(cmd.get_args())
        .env_clear()
        .envs(cmd.get_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    if let Some(dir) = cmd.get_cwd() {
        command.current_dir(dir);
    }
    // SAFETY: runs in the child between fork and exec; setsid is a single async-signal-safe
    // system call that takes no lock and allocates nothing.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(|e| std::io::Error::from_raw_os_error(e as i32)));
    }
    let child = command.spawn().map_err(|source| Error::Spawn {
        command: cmd.display(),
        hint: cmd.spawn_hint(&source),
        source,
    })?;
    Ok(child.id())
}
