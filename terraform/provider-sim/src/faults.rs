//! Fault injection for tests: `<root>/faults.json`, read again by every create and delete so a
//! test can change it between Terraform runs. Absent means no faults; unknown keys are refused
//! so a misspelt fault cannot silently do nothing. The format is in README.md.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::cloud::Error;

/// What `faults.json` asks for. Every field is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// The N-th host creation attempt of the cloud's lifetime fails (1-based, counted in
    /// `<root>/.counters.json`, failed attempts included), so a retry succeeds.
    pub fail_create_host: Option<u64>,
    /// Every creation of a host with this name fails.
    pub fail_create_host_name: Option<String>,
    /// Every create and delete, of hosts and public IPs, first sleeps this long.
    #[serde(default)]
    pub delay_ms: u64,
    /// Every host deletion fails (the host stays, in the cloud and in Terraform's state).
    #[serde(default)]
    pub fail_delete_host: bool,
}

impl Faults {
    /// The file's name inside the cloud's root.
    pub const FILE: &'static str = "faults.json";

    /// Reads `<root>/faults.json`; a missing file is no faults.
    pub fn load(root: &Path) -> Result<Faults, Error> {
        let path = root.join(Self::FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Faults::default()),
            Err(source) => return Err(Error::Io { action: "reading", path, source }),
        };
        serde_json::from_str(&text).map_err(|err| {
            Error::Invalid(format!(
                "{} is not a valid faults file ({err}); expected e.g. {{\"fail_create_host\": 2}}, see the provider's README",
                path.display()
            ))
        })
    }

    /// How long every create and delete waits first.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms)
    }

    /// The injected failure, if any, for creation attempt number `attempt` (1-based, over the
    /// cloud's lifetime) of the host called `name`.
    pub fn create_host_failure(&self, attempt: u64, name: &str) -> Option<Error> {
        let because = if self.fail_create_host == Some(attempt) {
            format!("fail_create_host={attempt}")
        } else if self.fail_create_host_name.as_deref() == Some(name) {
            format!("fail_create_host_name={name}")
        } else {
            return None;
        };
        Some(Error::Injected(format!("sim: creating host {name} failed: injected failure ({because})")))
    }

    /// The injected failure, if any, for deleting the host called `name`.
    pub fn delete_host_failure(&self, name: &str) -> Option<Error> {
        self.fail_delete_host.then(|| {
            Error::Injected(format!("sim: deleting host {name} failed: injected failure (fail_delete_host=true)"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(json: &str) -> Result<Faults, Error> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(Faults::FILE), json).unwrap();
        Faults::load(dir.path())
    }

    #[test]
    fn absent_file_means_no_faults() {
        let dir = tempfile::tempdir().unwrap();
        let none = Faults::load(dir.path()).unwrap();
        assert_eq!(none, Faults::default());
        assert_eq!(none.create_host_failure(1, "host-0").map(|e| e.to_string()), None);
        assert_eq!(none.delete_host_failure("host-0").map(|e| e.to_string()), None);
        assert_eq!(none.delay(), Duration::ZERO);
    }

    #[test]
    fn nth_creation_fails_once() {
        let f = faults(r#"{"fail_create_host": 2}"#).unwrap();
        assert!(f.create_host_failure(1, "host-0").is_none());
        assert_eq!(
            f.create_host_failure(2, "host-1").unwrap().to_string(),
            "sim: creating host host-1 failed: injected failure (fail_create_host=2)"
        );
        assert!(f.create_host_failure(3, "host-1").is_none());
    }

    #[test]
    fn named_creation_fails_every_time() {
        let f = faults(r#"{"fail_create_host_name": "host-1"}"#).unwrap();
        assert!(f.create_host_failure(1, "host-0").is_none());
        for attempt in [2, 3, 9] {
            assert_eq!(
                f.create_host_failure(attempt, "host-1").unwrap().to_string(),
                "sim: creating host host-1 failed: injected failure (fail_create_host_name=host-1)"
            );
        }
    }

    #[test]
    fn delay_and_delete_failures() {
        let f = faults(r#"{"delay_ms": 250, "fail_delete_host": true}"#).unwrap();
        assert_eq!(f.delay(), Duration::from_millis(250));
        assert_eq!(
            f.delete_host_failure("host-0").unwrap().to_string(),
            "sim: deleting host host-0 failed: injected failure (fail_delete_host=true)"
        );
    }

    #[test]
    fn misspelt_or_malformed_files_are_refused() {
        for bad in [r#"{"fail_create_hosts": 2}"#, r#"{"delay_ms": "soon"}"#, "{", "[]"] {
            let err = faults(bad).unwrap_err().to_string();
            assert!(err.contains("is not a valid faults file"), "{bad}: {err}");
        }
    }
}
