//! The simulated cloud on disk: a root directory holding one JSON record per object
//! (`hosts/<id>.json`, `public_ips/<id>.json`), a machine directory per host
//! (`machines/<ip>/`), the creation counters (`.counters.json`) and the lock (`.lock`).
//!
//! Several Terraform processes (different provisions) may share one root, so every change
//! happens under an exclusive `flock` on `.lock`, and methods that change the cloud take the
//! [`Lock`] as a witness. Records are written to a temporary file and renamed into place, so a
//! reader never sees half a record and needs no lock.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What goes wrong in the cloud. Messages start with `sim:` as Terraform shows them verbatim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sim: {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error("sim: {path} is not a valid record ({source}); fix or delete it")]
    Record { path: PathBuf, source: serde_json::Error },
    #[error("sim: {kind} {id} does not exist")]
    Missing { kind: &'static str, id: String },
    #[error("sim: no free address left in {block}")]
    Exhausted { block: String },
    #[error("sim: {0}")]
    Invalid(String),
    /// A failure asked for by `faults.json`; the message is complete.
    #[error("{0}")]
    Injected(String),
}

/// The kinds of records, each in its own directory with its own id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Host,
    PublicIp,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Host => "hosts",
            Kind::PublicIp => "public_ips",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Host => "h-",
            Kind::PublicIp => "ip-",
        }
    }

    /// The name used in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::PublicIp => "public ip",
        }
    }
}

/// Proof that the caller holds the cloud's lock; dropping it releases the lock.
pub struct Lock {
    _flock: Flock<File>,
}

/// One simulated cloud: its root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    root: PathBuf,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { action, path, source }
}

impl Cloud {
    /// Opens the cloud at `root`, creating the directory and its layout if missing.
    pub fn open(root: &Path) -> Result<Cloud, Error> {
        for dir in [Kind::Host.dir(), Kind::PublicIp.dir(), "machines"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_error("creating", &path))?;
        }
        Ok(Cloud { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the cloud's exclusive lock, waiting for other processes that hold it.
    pub fn lock(&self) -> Result<Lock, Error> {
        let path = self.root.join(".lock");
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path);
        let file = file.map_err(io_error("opening", &path))?;
        Flock::lock(file, FlockArg::LockExclusive).map(|flock| Lock { _flock: flock }).map_err(|(_, errno)| Error::Io {
            action: "locking",
            path,
            source: errno.into(),
        })
    }

    /// The directory that stands for the machine with address `ip`.
    pub fn machine_dir(&self, ip: &str) -> PathBuf {
        self.root.join("machines").join(ip)
    }

    fn record_path(&self, kind: Kind, id: &str) -> Result<PathBuf, Error> {
        let valid = id.starts_with(kind.prefix())
            && id.len() > kind.prefix().len()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(Error::Invalid(format!("{id:?} is not a {} id (like {}1a2b3c4d)", kind.noun(), kind.prefix())));
        }
        Ok(self.root.join(kind.dir()).join(format!("{id}.json")))
    }

    /// The record `id`, or `None` when it does not exist.
    pub fn read<T: DeserializeOwned>(&self, kind: Kind, id: &str) -> Result<Option<T>, Error> {
        read_json(&self.record_path(kind, id)?)
    }

    /// Every record of a kind (temporary files of unfinished writes are skipped).
    pub fn list<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<T>, Error> {
        let dir = self.root.join(kind.dir());
        let mut records = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error("listing", &dir))? {
            let path = entry.map_err(io_error("listing", &dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            // A record deleted since the listing is simply gone.
            records.extend(read_json(&path)?);
        }
        Ok(records)
    }

    /// Writes the record `id` atomically.
    pub fn write<T: Serialize>(&self, _lock: &Lock, kind: Kind, id: &str, record: &T) -> Result<(), Error> {
        let path = self.record_path(kind, id)?;
        let mut text = serde_json::to_string_pretty(record).expect("records serialise to JSON");
        text.push('\n');
        write_atomically(&path, text.as_bytes())
    }

    /// Removes the record `id`; whether it existed.
    pub fn remove(&self, _lock: &Lock, kind: Kind, id: &str) -> Result<bool, Error> {
        let path = self.record_path(kind, id)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(Error::Io { action: "removing", path, source }),
        }
    }

    /// A fresh id of the kind (`h-` or `ip-` and 8 hex digits) that no record has.
    pub fn new_id(&self, _lock: &Lock, kind: Kind) -> Result<String, Error> {
        loop {
            // RandomState is seeded from the OS; its hash of nothing is a random number.
            let id = format!("{}{:08x}", kind.prefix(), RandomState::new().hash_one(()) as u32);
            if !self.record_path(kind, &id)?.exists() {
                return Ok(id);
            }
        }
    }

    /// Adds one to the lifetime counter `name` in `.counters.json` and returns its new value.
    pub fn bump_counter(&self, _lock: &Lock, name: &str) -> Result<u64, Error> {
        let path = self.root.join(".counters.json");
        let mut counters: BTreeMap<String, u64> = read_json(&path)?.unwrap_or_default();
        let value = counters.entry(name.to_string()).or_default();
        *value += 1;
        let value = *value;
        let text = serde_json::to_string_pretty(&counters).expect("counters serialise to JSON") + "\n";
        write_atomically(&path, text.as_bytes())?;
        Ok(value)
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { action: "reading", path: path.to_path_buf(), source }),
    };
    serde_json::from_str(&text).map(Some).map_err(|source| Error::Record { path: path.to_path_buf(), source })
}

/// Writes `bytes` to a temporary file beside `path`, flushes it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("record");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = File::create(&tmp).map_err(io_error("creating", &tmp))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_error("writing", &tmp))?;
    fs::rename(&tmp, path).map_err(io_error("renaming into place", path))
}

/// Now as RFC 3339 UTC with seconds (`2026-11-22T05:38:00Z`), for `created_at`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_makes_the_layout_and_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cloud = Cloud::open(&dir.path().join("cloud")).unwrap();
        for sub in ["hosts", "public_ips", "machines"] {
            assert!(cloud.root().join(sub).is_dir(), "{sub}");
        }
        let lock = cloud.lock().unwrap();
        cloud.write(&lock, Kind::Host, "h-00000001", &serde_json::json!({"name": "a"})).unwrap();
        // A leftover temporary file of an interrupted write is not a record.
        fs::write(cloud.root().join("hosts/.h-00000002.json.tmp-1"), "{").unwrap();
        let read: Option<serde_json::Value> = cloud.read(Kind::Host, "h-00000001").unwrap();
        assert_eq!(read, Some(serde_json::json!({"name": "a"})));
        assert_eq!(cloud.list::<serde_json::Value>(Kind::Host).unwrap().len(), 1);
        assert!(cloud.remove(&lock, Kind::Host, "h-00000001").unwrap());
        assert!(!cloud.remove(&lock, Kind::Host, "h-00000001").unwrap());
        assert_eq!(cloud.read::<serde_json::Value>(Kind::Host, "h-00000001").unwrap(), None);
    }

    #[test]
    fn ids_are_checked_so_no_path_escapes_the_cloud() {
        let dir = tempfile::tempdir().unwrap();
        let cloud = Cloud::open(dir.path()).unwrap();
        for bad in ["../x", "h-../../etc", "ip-1", "h-", "h-a/b", ""] {
            let err = cloud.read::<serde_json::Value>(Kind::Host, bad).unwrap_err().to_string();
            assert!(err.contains("is not a host id"), "{bad}: {err}");
        }
        let lock = cloud.lock().unwrap();
        let id = cloud.new_id(&lock, Kind::PublicIp).unwrap();
        assert!(id.starts_with("ip-") && id.len() == 11, "{id}");
        assert_eq!(cloud.read::<serde_json::Value>(Kind::PublicIp, &id).unwrap(), None);
    }

    #[test]
    fn broken_records_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let cloud = Cloud::open(dir.path()).unwrap();
        fs::write(dir.path().join("hosts/h-0000000a.json"), "{not json").unwrap();
        let err = cloud.list::<serde_json::Value>(Kind::Host).unwrap_err().to_string();
        assert!(err.contains("h-0000000a.json is not a valid record"), "{err}");
    }

    #[test]
    fn counters_persist_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let cloud = Cloud::open(dir.path()).unwrap();
        let lock = cloud.lock().unwrap();
        assert_eq!(cloud.bump_counter(&lock, "host_creates").unwrap(), 1);
        assert_eq!(cloud.bump_counter(&lock, "host_creates").unwrap(), 2);
        drop(lock);
        let again = Cloud::open(dir.path()).unwrap();
        let lock = again.lock().unwrap();
        assert_eq!(again.bump_counter(&lock, "host_creates").unwrap(), 3);
        assert_eq!(again.bump_counter(&lock, "other").unwrap(), 1);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        assert!(now.as_str() > "2024-01-01T00:00:00Z", "{now}");
    }
}
