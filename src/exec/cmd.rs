//! [`Cmd`]: the description of one child process (program, argv, working directory, explicit
//! environment, timeout, grace period, secrets) and the one place a `tokio::process::Command`
//! is built from it, with the process-group and parent-death settings every child gets.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::mask::{MASK, Masker};

/// How long a child gets to stop after SIGINT before it is killed. Terraform needs a few
/// seconds to release its state lock and write state after an interrupt.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// One child process to run. Built with chained calls:
///
/// ```
/// # use formwork::exec::Cmd;
/// # use std::time::Duration;
/// let cmd = Cmd::new("terraform")
///     .args(["apply", "-auto-approve", "-input=false", "-no-color"])
///     .env("TF_IN_AUTOMATION", "1")
///     .timeout(Duration::from_secs(3600));
/// assert_eq!(cmd.display(), "terraform apply -auto-approve -input=false -no-color");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    /// The child's whole environment (with the run's mark, `exec::group::MARK_VAR`): it starts
    /// from an empty one, so nothing of formwork's own environment (credentials, tokens) leaks
    /// into tools by accident.
    env: BTreeMap<String, String>,
    timeout: Option<Duration>,
    grace: Duration,
    secrets: Vec<String>,
}

impl Cmd {
    /// A command running `program`, a path or a name looked up in the `PATH` given with
    /// [`Cmd::env`] or [`Cmd::pass_path_and_home`].
    pub fn new(program: impl Into<OsString>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env: BTreeMap::new(),
            timeout: None,
            grace: DEFAULT_GRACE,
            secrets: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets one variable of the child's environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Cmd
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env.extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Copies the variables named in `keys` that are set in `from` (formwork's snapshot of
    /// its own environment) into the child's environment.
    pub fn pass(mut self, from: &HashMap<String, String>, keys: &[&str]) -> Cmd {
        for key in keys {
            if let Some(value) = from.get(*key) {
                self.env.insert((*key).to_string(), value.clone());
            }
        }
        self
    }

    /// Passes `PATH` (to find the program and what it runs) and `HOME` (where tools keep
    /// their caches and configuration) through from `from`.
    pub fn pass_path_and_home(self, from: &HashMap<String, String>) -> Cmd {
        self.pass(from, &["PATH", "HOME"])
    }

    /// Stops the child the graceful way once it has run this long. None: no limit.
    pub fn timeout(mut self, limit: impl Into<Option<Duration>>) -> Cmd {
        self.timeout = limit.into();
        self
    }

    /// How long the child may take to stop after SIGINT before it is killed.
    pub fn grace(mut self, grace: Duration) -> Cmd {
        self.grace = grace;
        self
    }

    /// A string to mask wherever it appears: in output, notes, errors and [`Cmd::display`].
    pub fn secret(mut self, secret: impl Into<String>) -> Cmd {
        self.secrets.push(secret.into());
        self
    }

    pub fn secrets<I, S>(mut self, secrets: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.secrets.extend(secrets.into_iter().map(Into::into));
        self
    }

    pub fn get_secrets(&self) -> &[String] {
        &self.secrets
    }

    pub fn get_program(&self) -> &OsString {
        &self.program
    }

    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    pub fn get_cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    pub fn get_env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub fn get_grace(&self) -> Duration {
        self.grace
    }

    /// The masker for this command's secrets.
    pub fn masker(&self) -> Masker {
        Masker::new(&self.secrets)
    }

    /// The program's file name, for short messages ("terraform timed out ...").
    pub fn program_name(&self) -> String {
        let program = Path::new(&self.program);
        program.file_name().unwrap_or(program.as_os_str()).to_string_lossy().into_owned()
    }

    /// The command line, shell-quoted for reading and copying, with secrets masked. The
    /// environment is left out: it is where credentials usually travel.
    pub fn display(&self) -> String {
        let masker = self.masker();
        let words: Vec<String> = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|word| quote(&masker.mask(&word.to_string_lossy())))
            .collect();
        // Masked again as a whole for a secret that spans two arguments.
        masker.mask(&words.join(" ")).into_owned()
    }

    /// What to check when the program could not be started.
    pub(crate) fn spawn_hint(&self, err: &io::Error) -> String {
        if let Some(dir) = &self.cwd
            && !dir.is_dir()
        {
            return format!("its working directory '{}' does not exist; create it first", dir.display());
        }
        let name = self.program.to_string_lossy();
        if err.kind() == io::ErrorKind::PermissionDenied || name.contains('/') {
            return format!("check that '{name}' exists and is an executable file");
        }
        match self.env.get("PATH") {
            Some(path) => {
                format!("check that '{name}' is installed and on the PATH given to it ({path})")
            }
            None => format!(
                "check that '{name}' is installed; no PATH was given to it, so pass one or use the program's full path"
            ),
        }
    }

    /// The `tokio::process::Command` for this child: argv exactly as given, an environment
    /// holding only [`Cmd::env`] (`run` adds the run's mark), stdin from /dev/null (a tool
    /// waiting for input fails instead of hanging), stdout and stderr piped, its own process
    /// group (so the whole tree can be signalled, and a Ctrl-C at formwork's terminal reaches
    /// formwork alone, which then stops children through [`Cancel`](super::Cancel)), every
    /// signal's default disposition and an empty signal mask whatever formwork inherited, files
    /// it creates private to its user (umask 077: Terraform's state and Ansible's files can hold
    /// secrets), and on Linux SIGTERM when formwork dies.
    pub(crate) fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        default_signals(&mut command);
        private_files(&mut command);
        stop_with_parent(&mut command);
        command
    }
}

/// Gives the child every signal's default disposition and an empty mask. A formwork started in
/// the background by a non-interactive shell (`formwork … &` in a script, nohup, some service
/// wrappers) has SIGINT and SIGQUIT ignored, and an ignored disposition survives exec: the
/// SIGINT that stops a tool gracefully (cancel, timeout) would be lost on every child that
/// does not install its own handler, leaving only the SIGKILL after the grace period.
fn default_signals(command: &mut tokio::process::Command) {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask};

    // SAFETY: the closure runs in the child between fork and exec. sigaction and sigprocmask
    // are async-signal-safe system calls; it takes no lock and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
            for signal in Signal::iterator() {
                if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
                    continue;
                }
                sigaction(signal, &default).map_err(|errno| io::Error::from_raw_os_error(errno as i32))?;
            }
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(|errno| io::Error::from_raw_os_error(errno as i32))?;
            Ok(())
        });
    }
}

/// Gives the child umask 077, so whatever it writes (in formwork's data directory above all)
/// only this user can read.
fn private_files(command: &mut tokio::process::Command) {
    use nix::sys::stat::{Mode, umask};
    // SAFETY: runs in the child between fork and exec; umask(2) is async-signal-safe, and
    // nothing here locks or allocates.
    unsafe {
        command.pre_exec(|| {
            umask(Mode::from_bits_truncate(0o077));
            Ok(())
        });
    }
}

/// Asks the kernel to send the child SIGTERM when formwork goes away, even by SIGKILL, so a
/// child is told to stop gracefully instead of living on unobserved.
///
/// The signal fires when the *thread* that forked the child exits, not the process: every child
/// is forked on the spawner thread, which lives as long as formwork (see `exec::spawner`).
#[cfg(target_os = "linux")]
fn stop_with_parent(command: &mut tokio::process::Command) {
    use nix::sys::{prctl, signal::Signal};
    use nix::unistd::{getpid, getppid};

    let parent = getpid();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe operations are allowed. It makes two system calls (prctl and getppid),
    // takes no lock and allocates nothing: `io::Error::from_raw_os_error` stores an integer.
    unsafe {
        command.pre_exec(move || {
            prctl::set_pdeathsig(Signal::SIGTERM).map_err(|errno| io::Error::from_raw_os_error(errno as i32))?;
            // formwork may have died between fork and prctl; then no signal will ever come.
            if getppid() != parent {
                return Err(io::Error::from_raw_os_error(nix::errno::Errno::ESRCH as i32));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_command: &mut tokio::process::Command) {}

/// `word` as shlex quotes it for a POSIX shell, but left as it is when only masks and `=` would
/// call for quotes, so `--password=********` and `-out=plan.tfplan` stay readable: an `=` after
/// a word's start is literal to a shell (shlex quotes it as a precaution), and a masked command
/// cannot be pasted anyway.
fn quote(word: &str) -> String {
    let plain = word.replace(MASK, "").replace('=', "");
    let needs_quotes = word.is_empty() || (!plain.is_empty() && matches!(shlex::try_quote(&plain), Ok(Cow::Owned(_))));
    match shlex::try_quote(word) {
        Ok(quoted) if needs_quotes => quoted.into_owned(),
        // Unquoted, or a NUL byte, which no argument can hold: the program would not start.
        _ => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_split_or_expand() {
        let cmd =
            Cmd::new("/usr/bin/terraform").args(["plan", "-out=./plan.txt", "", "two words", "it's", "$HOME", "x=a,b"]);
        assert_eq!(cmd.display(), r#"/usr/bin/terraform plan -out=./plan.txt '' 'two words' "it's" '$HOME' 'x=a,b'"#);
    }

    #[test]
    fn display_masks_secrets_in_arguments_and_across_them() {
        let cmd = Cmd::new("ansible-playbook")
            .args(["-e", "one_auth=serveradmin:alice:T0KEN", "x", "y"])
            .secret("serveradmin:alice:T0KEN")
            .secret("x y");
        assert_eq!(cmd.display(), "ansible-playbook -e one_auth=******** ********");
    }

    #[test]
    fn display_masks_a_secret_containing_a_quote() {
        let cmd = Cmd::new("tool").arg("--password=it's-secret").secret("it's-secret");
        assert_eq!(cmd.display(), "tool --password=********");
        // A real star is still quoted.
        assert_eq!(Cmd::new("ls").arg("*.tf").display(), "ls '*.tf'");
    }

    #[test]
    fn pass_copies_only_the_named_variables_that_are_set() {
        let from: HashMap<String, String> =
            [("PATH", "/usr/bin:/bin"), ("HOME", "/home/op"), ("AWS_SECRET_ACCESS_KEY", "nope")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let cmd = Cmd::new("terraform").pass_path_and_home(&from).pass(&from, &["LANG"]).env("TF_IN_AUTOMATION", "1");
        let keys: Vec<&str> = cmd.get_env().keys().map(String::as_str).collect();
        assert_eq!(keys, ["HOME", "PATH", "TF_IN_AUTOMATION"]);
    }

    #[test]
    fn spawn_hints_name_what_to_check() {
        let missing = io::Error::from(io::ErrorKind::NotFound);
        let cmd = Cmd::new("terraform").env("PATH", "/opt/tf");
        assert!(cmd.spawn_hint(&missing).contains("on the PATH given to it (/opt/tf)"));
        let cmd = Cmd::new("terraform");
        assert!(cmd.spawn_hint(&missing).contains("no PATH was given"));
        let cmd = Cmd::new("/opt/tf/terraform");
        assert!(cmd.spawn_hint(&missing).contains("exists and is an executable file"));
        let cmd = Cmd::new("terraform").cwd("/nonexistent/formwork-work-dir");
        assert!(cmd.spawn_hint(&missing).contains("working directory"));
    }

    #[test]
    fn program_name_is_the_file_name() {
        assert_eq!(Cmd::new("/usr/bin/terraform").program_name(), "terraform");
        assert_eq!(Cmd::new("ansible-playbook").program_name(), "ansible-playbook");
    }
}
