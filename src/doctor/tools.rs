//! The tools a stage runs: Terraform and ansible-playbook, found as a stage finds them, and
//! their versions against the ones formwork supports.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Check;
use crate::exec::{Cancel, Capture, Cmd, Stream};
use crate::settings::Settings;

/// The oldest Terraform formwork runs: the built-in drivers declare `required_version = ">= 1.0"`,
/// and `scripts/setup` pins 1.0.3.
const OLDEST_TERRAFORM: Version = Version(1, 0, 0);

/// ansible-core from the first to the first after those formwork supports. The shared roles in
/// `playbooks/roles` declare `min_ansible_version: "2.15"`; `scripts/setup` installs the newest
/// ansible-core pip offers for its Python, 2.19 here, on which `tests/values_are_data.rs` shows
/// `!unsafe` values stay data (2.19 reworked templating and trust, so each new release's handling
/// of them is untested until that test runs on it). An older one fails the check; a newer one is
/// a warning.
const ANSIBLE_CORE: (Version, Version) = (Version(2, 15, 0), Version(2, 20, 0));

/// How long `terraform version` or `ansible-playbook --version` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// A version as tools print it: `1.0.3`, `2.19.14`, `1.6.0-beta1` (the suffix ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version(u32, u32, u32);

impl Version {
    fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().trim_start_matches('v').split('.');
        let mut number = |required: bool| -> Option<u32> {
            let digits: String = parts.next().unwrap_or("").chars().take_while(char::is_ascii_digit).collect();
            match digits.parse() {
                Ok(n) => Some(n),
                Err(_) if required => None,
                Err(_) => Some(0),
            }
        };
        Some(Version(number(true)?, number(true)?, number(false)?))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Terraform's version from `terraform version -json` (`terraform_version`); Terraform before
/// 0.13 knows no `-json` and prints `Terraform v0.12.31` instead.
fn terraform_version(stdout: &str) -> Result<Version, String> {
    let first = stdout.lines().next().unwrap_or("").trim();
    let text = match serde_json::from_str::<serde_json::Value>(stdout) {
        Ok(json) => json
            .get("terraform_version")
            .and_then(|v| v.as_str())
            .ok_or_else(|| "its `version -json` answer has no terraform_version".to_string())?
            .to_string(),
        Err(_) => first
            .strip_prefix("Terraform v")
            .ok_or_else(|| {
                format!("`version -json` printed neither JSON nor `Terraform vX.Y.Z` but {:?}", clip(first))
            })?
            .to_string(),
    };
    Version::parse(&text).ok_or_else(|| format!("'{}' is not a version", clip(&text)))
}

/// ansible-core's version from the first line of `ansible-playbook --version`:
/// `ansible-playbook [core 2.19.14]`, or `ansible-playbook 2.9.27` before ansible-core.
fn ansible_version(stdout: &str) -> Result<Version, String> {
    let first = stdout.lines().next().unwrap_or("").trim();
    let rest = first.strip_prefix("ansible-playbook").map(str::trim).ok_or_else(|| {
        format!("`--version` printed {:?}, not `ansible-playbook [core X.Y.Z]`: is it ansible-playbook?", clip(first))
    })?;
    let text = match rest.strip_prefix("[core ") {
        Some(core) => core.trim_end_matches(']'),
        None => rest,
    };
    Version::parse(text).ok_or_else(|| format!("'{}' in {:?} is not a version", clip(text), clip(first)))
}

/// At most 80 characters of a tool's output, for a message.
fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

pub(super) async fn terraform(settings: &Settings) -> Check {
    const NAME: &str = "terraform";
    let fix = format!(
        "install Terraform {OLDEST_TERRAFORM} or newer and point `terraform` (FORMWORK_TERRAFORM) at it; scripts/setup puts 1.0.3 in .tools/bin"
    );
    let program = match resolve(&settings.terraform, &settings.child_env) {
        Ok(program) => program,
        Err(missing) => return Check::fail(NAME, missing, fix),
    };
    let cmd = tool(settings, &program).args(["version", "-json"]).env("CHECKPOINT_DISABLE", "1");
    let version = match stdout_of(&cmd).await {
        Ok(stdout) => terraform_version(&stdout),
        Err(failed) => return Check::fail(NAME, failed, fix),
    };
    match version {
        Err(unreadable) => Check::fail(NAME, format!("{}: {unreadable}", program.display()), fix),
        Ok(v) if v < OLDEST_TERRAFORM => Check::fail(
            NAME,
            format!(
                "Terraform {v} ({}) is older than {OLDEST_TERRAFORM}, the oldest formwork supports",
                program.display()
            ),
            fix,
        ),
        Ok(v) => Check::ok(NAME, format!("Terraform {v} ({})", program.display())),
    }
}

pub(super) async fn ansible(settings: &Settings) -> Check {
    const NAME: &str = "ansible";
    let (oldest, beyond) = ANSIBLE_CORE;
    let fix = format!(
        "install ansible-core {oldest} or newer, older than {beyond} (pip install 'ansible-core>={oldest},<{beyond}'), and point `ansible_playbook` (FORMWORK_ANSIBLE_PLAYBOOK) at its ansible-playbook; scripts/setup puts one in .tools/venv"
    );
    let program = match resolve(&settings.ansible_playbook, &settings.child_env) {
        Ok(program) => program,
        Err(missing) => return Check::fail(NAME, missing, fix),
    };
    let version = match stdout_of(&tool(settings, &program).arg("--version")).await {
        Ok(stdout) => ansible_version(&stdout),
        Err(failed) => return Check::fail(NAME, failed, fix),
    };
    let at = program.display();
    match version {
        Err(unreadable) => Check::fail(NAME, format!("{at}: {unreadable}"), fix),
        Ok(v) if v < oldest => Check::fail(
            NAME,
            format!("ansible-core {v} ({at}) is older than {oldest}, the oldest the shared roles support"),
            fix,
        ),
        Ok(v) if v >= beyond => Check::warn(
            NAME,
            format!("ansible-core {v} ({at}) is newer than formwork is tested with (older than {beyond})"),
            format!("if a configuration stage misbehaves, {fix}"),
        ),
        Ok(v) => Check::ok(NAME, format!("ansible-core {v} ({at})")),
    }
}

/// Where a tool run finds `program`: a path as it is, a bare name in the `PATH` formwork gives
/// its tools (`child_env`), as the child's exec looks it up.
fn resolve(program: &Path, env: &HashMap<String, String>) -> Result<PathBuf, String> {
    if program.components().count() > 1 {
        return match fs::metadata(program) {
            Ok(meta) if meta.is_file() && meta.mode() & 0o111 != 0 => Ok(program.to_path_buf()),
            Ok(meta) => {
                Err(format!("{} is not an executable file (mode {:o})", program.display(), meta.mode() & 0o7777))
            }
            Err(e) => Err(format!("{}: {e}", program.display())),
        };
    }
    let path = env.get("PATH").map_or("", String::as_str);
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
        .ok_or_else(|| format!("`{}` is not on the PATH formwork gives its tools ({path})", program.display()))
}

/// `program` with what every tool run gets: the site's `tool_env`, `PATH` and `HOME`.
fn tool(settings: &Settings, program: &Path) -> Cmd {
    Cmd::new(program)
        .envs(settings.tool_env.vars())
        .pass_path_and_home(&settings.child_env)
        .secrets(settings.tool_env.secrets())
        .timeout(TOOL_TIMEOUT)
}

/// What `cmd` printed on stdout, or why it did not run to a success.
async fn stdout_of(cmd: &Cmd) -> Result<String, String> {
    let mut capture = Capture::default();
    crate::exec::run(cmd, &mut capture, &Cancel::new()).await.map_err(|e| e.to_string())?;
    Ok(capture.stream(Stream::Stdout).join("\n"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn terraform_versions_are_read_from_json_or_the_old_text_line() {
        let json = r#"{"terraform_version": "1.0.3", "platform": "linux_amd64", "terraform_outdated": false}"#;
        assert_eq!(terraform_version(json), Ok(Version(1, 0, 3)));
        assert_eq!(terraform_version("{\n  \"terraform_version\": \"1.11.0-beta1\"\n}"), Ok(Version(1, 11, 0)));
        assert_eq!(terraform_version("Terraform v0.12.31\n\nYour version is out of date"), Ok(Version(0, 12, 31)));
        assert!(Version(0, 14, 11) < OLDEST_TERRAFORM && Version(1, 0, 0) >= OLDEST_TERRAFORM);
    }

    #[test]
    fn odd_terraform_output_is_a_clear_failure() {
        let err = terraform_version("").unwrap_err();
        assert!(err.contains("neither JSON nor"), "{err}");
        let err = terraform_version(r#"{"version": "1.0.3"}"#).unwrap_err();
        assert!(err.contains("no terraform_version"), "{err}");
        let err = terraform_version(r#"{"terraform_version": "latest"}"#).unwrap_err();
        assert!(err.contains("'latest' is not a version"), "{err}");
        let err = terraform_version(r#"{"terraform_version": 7}"#).unwrap_err();
        assert!(err.contains("no terraform_version"), "{err}");
        let long = "x".repeat(500);
        assert!(terraform_version(&long).unwrap_err().len() < 200, "output is clipped in the message");
    }

    #[test]
    fn ansible_versions_are_read_from_the_first_line() {
        let out = "ansible-playbook [core 2.19.14]\n  config file = None\n  python version = 3.11";
        assert_eq!(ansible_version(out), Ok(Version(2, 19, 14)));
        assert_eq!(ansible_version("ansible-playbook [core 2.20.0rc1]"), Ok(Version(2, 20, 0)));
        assert_eq!(ansible_version("ansible-playbook 2.9.27\n  config file"), Ok(Version(2, 9, 27)));
        let (oldest, beyond) = ANSIBLE_CORE;
        assert!(Version(2, 9, 27) < oldest && Version(2, 19, 14) < beyond && Version(2, 20, 0) >= beyond);
    }

    #[test]
    fn odd_ansible_output_is_a_clear_failure() {
        for (out, says) in [
            ("", "not `ansible-playbook [core X.Y.Z]`"),
            ("Python 3.11.2", "is it ansible-playbook?"),
            ("ansible-playbook [core devel]", "'devel' in"),
            ("ansible-playbook", "'' in"),
        ] {
            let err = ansible_version(out).unwrap_err();
            assert!(err.contains(says), "{out:?}: {err}");
        }
    }

    #[test]
    fn a_bare_tool_name_is_found_on_the_path_tools_get() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tf");
        fs::write(&tool, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
        let env = HashMap::from([("PATH".to_string(), format!("/nonexistent:{}", dir.path().display()))]);
        assert_eq!(resolve(Path::new("tf"), &env), Ok(tool.clone()));
        let err = resolve(Path::new("tf"), &HashMap::new()).unwrap_err();
        assert!(err.contains("not on the PATH"), "{err}");
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve(&tool, &env).unwrap_err();
        assert!(err.contains("not an executable file (mode 644)"), "{err}");
    }
}
