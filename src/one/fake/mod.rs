//! [`FakeOne`]: an in-memory OpenNebula that follows oned's rules closely enough for the
//! lifecycle to be tested against it (ids per type from the next free one, unique names,
//! refusals to delete non-empty objects, AR ids, VMs and images as unmanaged children), with
//! test hooks: faults injected on chosen calls, a log of every call, placement of VMs and
//! images, and [`Snapshot`]s to compare whole states. Beyond [`super::OneApi`] it answers what
//! onesim needs of a whole oned: documents (`documents.rs`), pools, rename and both update modes
//! (`pools.rs`), and VMs and images made through the API (`placement.rs`).
//!
//! Cloning a `FakeOne` shares it (the state sits behind an `Arc<Mutex>`); the lock is never
//! held across an `.await`.

mod api;
mod documents;
mod placement;
mod pools;
mod vnets;
mod world;

use std::sync::{Arc, Mutex, MutexGuard};

use std::path::{Path, PathBuf};

pub use self::documents::{Document, Permissions};
use self::world::{Outcome, World};
use super::{Code, Result};

#[derive(Clone)]
pub struct FakeOne {
    inner: Arc<Mutex<Inner>>,
}

/// One call made through [`super::OneApi`]: the XML-RPC method and the object it named
/// (`cluster 'x (provision_1)'` for an allocation, `host 3` otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub call: &'static str,
    pub object: String,
    pub failed: bool,
}

/// A whole state of the fake's objects (not its id counters, call log or faults): equal
/// snapshots mean OpenNebula holds exactly the same objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot(World);

struct Inner {
    world: World,
    next: Next,
    calls: Vec<Call>,
    faults: Vec<Fault>,
    /// Where the objects are saved after every successful call, when they outlive the process.
    persist: Option<PathBuf>,
}

/// What a persistent fake keeps on disk.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    world: World,
    next: Next,
}

/// Next free id per type: oned reserves 0–99 for clusters and datastores.
#[derive(serde::Serialize, serde::Deserialize)]
struct Next {
    cluster: i64,
    host: i64,
    datastore: i64,
    vnet: i64,
    vm: i64,
    image: i64,
    /// Documents count from 0; states saved before documents existed start there.
    #[serde(default)]
    document: i64,
}

/// Fails `remaining` matching calls after letting `skip` of them through.
struct Fault {
    pattern: String,
    skip: usize,
    remaining: usize,
    code: Code,
}

impl Default for FakeOne {
    fn default() -> FakeOne {
        FakeOne::new()
    }
}

impl FakeOne {
    /// A fresh oned: cluster 0 "default", datastores 0 "system", 1 "default", 2 "files".
    pub fn new() -> FakeOne {
        let inner = Inner {
            world: World::bootstrap(),
            next: Next { cluster: 100, host: 0, datastore: 100, vnet: 0, vm: 0, image: 0, document: 0 },
            calls: Vec::new(),
            faults: Vec::new(),
            persist: None,
        };
        FakeOne { inner: Arc::new(Mutex::new(inner)) }
    }

    /// A fake whose objects live in `path` (a private JSON file), like a real oned's database:
    /// loaded now if it exists, saved after every successful call. Used as formwork's
    /// OpenNebula endpoint until the XML-RPC client exists, so objects survive between runs
    /// and crashes.
    pub fn persistent(path: &Path) -> std::io::Result<FakeOne> {
        let fake = FakeOne::new();
        match std::fs::read(path) {
            Ok(bytes) => {
                let saved: Saved = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
                let mut inner = fake.lock();
                inner.world = saved.world;
                inner.next = saved.next;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fake.lock().persist = Some(path.to_path_buf());
        Ok(fake)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock leaves consistent data: every change is
        // made by one assignment after its checks.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.lock().world.clone())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls matched `pattern` (see [`FakeOne::fail_nth`]).
    pub fn count(&self, pattern: &str) -> usize {
        self.lock().calls.iter().filter(|c| matches(pattern, c.call)).count()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Fails the `n`-th (from 1) call matching `pattern` from now on with `code`. A pattern is
    /// a method name whose dot-separated parts may be `*`: `one.*.allocate` is any allocation.
    pub fn fail_nth(&self, pattern: &str, n: usize, code: Code) {
        self.add_fault(pattern, n.saturating_sub(1), 1, code);
    }

    /// Fails the next `k` calls matching `pattern` with `code`.
    pub fn fail_next(&self, pattern: &str, k: usize, code: Code) {
        self.add_fault(pattern, 0, k, code);
    }

    fn add_fault(&self, pattern: &str, skip: usize, remaining: usize, code: Code) {
        self.lock().faults.push(Fault { pattern: pattern.to_string(), skip, remaining, code });
    }

    /// Places a VM (not through the API, so not logged) on `host` and with a lease on each
    /// of `vnets`: an unmanaged child of those objects.
    pub fn add_vm(&self, name: &str, host: Option<i64>, vnets: &[i64]) -> Result<i64> {
        let mut inner = self.lock();
        let Inner { world, next, .. } = &mut *inner;
        let placed = world.vm_place(&mut next.vm, name, host, vnets);
        placed.map_err(|(code, message)| code.error("fake.add_vm", format!("vm '{name}'"), message))
    }

    /// Places an image (not through the API) in a datastore: an unmanaged child of it.
    pub fn add_image(&self, name: &str, datastore: i64) -> Result<i64> {
        let mut inner = self.lock();
        let Inner { world, next, .. } = &mut *inner;
        let placed = world.image_place(&mut next.image, name, datastore);
        placed.map_err(|(code, message)| code.error("fake.add_image", format!("image '{name}'"), message))
    }

    /// Runs one API call: logs it, applies any fault due, then the operation.
    fn run<T>(
        &self,
        call: &'static str,
        object: String,
        op: impl FnOnce(&mut World, &mut Next) -> Outcome<T>,
    ) -> Result<T> {
        let mut inner = self.lock();
        let fault = inner.due_fault(call);
        let outcome = match fault {
            Some(code) => Err((code, "injected fault".to_string())),
            None => {
                let Inner { world, next, .. } = &mut *inner;
                op(world, next)
            }
        };
        let outcome = match (outcome, &inner.persist) {
            (Ok(value), Some(path)) => inner.save(path).map(|()| value),
            (outcome, _) => outcome,
        };
        inner.calls.push(Call { call, object: object.clone(), failed: outcome.is_err() });
        outcome.map_err(|(code, message)| code.error(call, object, message))
    }
}

impl Inner {
    /// Writes the objects through a temporary file and a rename, private to this user.
    fn save(&self, path: &Path) -> Outcome<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let saved = Saved { world: self.world.clone(), next: Next { ..self.next } };
        let write = || -> std::io::Result<()> {
            let tmp = path.with_extension("tmp");
            let mut file =
                std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            file.write_all(&serde_json::to_vec(&saved).map_err(std::io::Error::other)?)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| (Code::Internal, format!("cannot save the OpenNebula state to {}: {e}", path.display())))
    }

    /// Counts this call against every matching fault; the first one that fires wins.
    fn due_fault(&mut self, call: &str) -> Option<Code> {
        let mut fired = None;
        for fault in self.faults.iter_mut().filter(|f| matches(&f.pattern, call)) {
            if fault.skip > 0 {
                fault.skip -= 1;
            } else if fault.remaining > 0 {
                fault.remaining -= 1;
                fired = fired.or(Some(fault.code));
            }
        }
        fired
    }
}

fn matches(pattern: &str, call: &str) -> bool {
    let (mut p, mut c) = (pattern.split('.'), call.split('.'));
    loop {
        match (p.next(), c.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            (Some(_), Some(_)) | (Some(_), None) | (None, Some(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert!(matches("one.*.allocate", "one.vn.allocate"));
        assert!(matches("one.vn.allocate", "one.vn.allocate"));
        assert!(!matches("one.*.allocate", "one.vn.add_ar"));
        assert!(!matches("one.vn", "one.vn.allocate"));
        assert!(!matches("one.*.allocate.x", "one.vn.allocate"));
    }
}
