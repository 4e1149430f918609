//! Driver states kept on disk as OneForm keeps them: `<states>/<name>.state` holds ENABLED,
//! DISABLED or ERROR (no file is UNKNOWN) and `<name>.error` the last verification error.
//! Writes go through a temporary file and a rename, so a crash never leaves half a state; like
//! everything in formwork's data directory, they are private to their user (0600 in 0700).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Enabled,
    Disabled,
    Error,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Enabled => "ENABLED",
            State::Disabled => "DISABLED",
            State::Error => "ERROR",
            State::Unknown => "UNKNOWN",
        }
    }

    fn parse(text: &str) -> Option<State> {
        match text.trim() {
            "ENABLED" => Some(State::Enabled),
            "DISABLED" => Some(State::Disabled),
            "ERROR" => Some(State::Error),
            _ => None,
        }
    }
}

/// The folder of state files.
#[derive(Debug, Clone)]
pub struct States {
    dir: PathBuf,
}

impl States {
    pub fn new(dir: PathBuf) -> States {
        States { dir }
    }

    /// The recorded state; a missing or unreadable file is UNKNOWN, so the driver is verified
    /// again on its next use.
    pub fn get(&self, name: &str) -> State {
        fs::read_to_string(self.file(name, "state")).ok().and_then(|t| State::parse(&t)).unwrap_or(State::Unknown)
    }

    pub fn error(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.file(name, "error")).ok().map(|t| t.trim().to_string())
    }

    /// Records a state; ERROR also records its reason, any other state clears it.
    pub fn set(&self, name: &str, state: State, reason: Option<&str>) -> Result<(), Error> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        restrict(&self.dir)?;
        if let Some(reason) = reason {
            write_atomic(&self.file(name, "error"), reason)?;
        } else {
            match fs::remove_file(self.file(name, "error")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&self.file(name, "error"), e));
                }
                _ => {}
            }
        }
        write_atomic(&self.file(name, "state"), state.as_str())
    }

    fn file(&self, name: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{name}.{ext}"))
    }
}

fn restrict(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))
}

fn write_atomic(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_errors_clear() {
        let dir = tempfile::tempdir().unwrap();
        let states = States::new(dir.path().join(".states"));
        assert_eq!(states.get("sim"), State::Unknown);
        states.set("sim", State::Error, Some("driver.conf is missing")).unwrap();
        assert_eq!(states.get("sim"), State::Error);
        assert_eq!(states.error("sim").as_deref(), Some("driver.conf is missing"));
        states.set("sim", State::Enabled, None).unwrap();
        assert_eq!(states.get("sim"), State::Enabled);
        assert_eq!(states.error("sim"), None);
        fs::write(dir.path().join(".states/sim.state"), "garbage").unwrap();
        assert_eq!(states.get("sim"), State::Unknown);
    }
}
