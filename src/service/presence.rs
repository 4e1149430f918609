//! This process among the others working on one database: its row in `servers` and its lease.
//!
//! On PostgreSQL, where several servers share the work, a process owns operations under an
//! identity it registered, and keeps its lease (in the database's clock) by renewing it every
//! [`RENEW`]. Whoever finds an operation whose owner holds no live lease takes it over in a new
//! epoch ([`crate::store::Fence`]), so the work of a server that died is finished by another one
//! within [`LEASE`]. A server that cannot renew for [`STOP_AFTER`] (cut off from the database,
//! or frozen and thawed) gives its operations up: their tools are told to stop and are killed at
//! most [`STOP_GRACE`] later, before its lease can expire and anyone else can start them again,
//! and it registers again under a new identity. What it still tries to write is refused by the
//! fence once another server took over.
//!
//! On SQLite every process is on one machine and an owner is alive while its process is
//! ([`crate::engine::owner::is_alive`]); a server still registers, under its process's token, so
//! `formwork servers` lists it, and its lease only says when it was last seen.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::engine::owner;
use crate::exec::Cancel;
use crate::store::{NewServer, Owner, Store};

/// How long a lease lasts after its last renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a process renews its lease.
pub const RENEW: Duration = Duration::from_secs(1);
/// How long a process goes without renewing before it gives its operations up.
pub const STOP_AFTER: Duration = Duration::from_secs(4);
/// The longest its tools then get between SIGINT and SIGKILL: gone before the lease ends.
pub const STOP_GRACE: Duration = Duration::from_secs(4);
/// On SQLite a lease only says when a server was last seen (liveness is its process): renewed
/// this seldom, so an idle server costs the disk one write every half minute.
const SEEN_EVERY: Duration = Duration::from_secs(30);

impl Presence {
    /// How long a lease lasts, and how often it is renewed.
    fn timing(&self) -> (Duration, Duration) {
        if self.leased { (LEASE, RENEW) } else { (2 * SEEN_EVERY, SEEN_EVERY) }
    }
}

/// This process's registration and lease.
pub struct Presence {
    store: Arc<Store>,
    /// Whether identities are leases (PostgreSQL) or processes (SQLite).
    leased: bool,
    /// What it registered as: its role and address.
    described: Mutex<(String, String)>,
    identity: Mutex<Identity>,
    /// Milliseconds since `born` of the last renewal that succeeded.
    renewed_ms: AtomicU64,
    born: Instant,
    /// Set when the process leaves (its rows are removed; the threads end).
    leaving: AtomicBool,
}

#[derive(Clone)]
struct Identity {
    owner: Owner,
    /// Cancelled when this identity lost its lease.
    lost: Cancel,
    /// How many identities this process had before.
    generation: u64,
}

impl Presence {
    /// Registers this process (`role`: `all`, `api`, `worker`, `cli`) and starts renewing its
    /// lease. Fails when the database cannot be written.
    pub fn start(
        store: Arc<Store>,
        leased: bool,
        role: &str,
        address: &str,
    ) -> Result<Arc<Presence>, crate::store::Error> {
        let identity = Identity { owner: make_owner(leased, 0), lost: Cancel::new(), generation: 0 };
        let presence = Arc::new(Presence {
            store,
            leased,
            described: Mutex::new((role.to_string(), address.to_string())),
            identity: Mutex::new(identity.clone()),
            renewed_ms: AtomicU64::new(0),
            born: Instant::now(),
            leaving: AtomicBool::new(false),
        });
        presence.register(&identity.owner)?;
        let weak = Arc::downgrade(&presence);
        let spawned = std::thread::Builder::new().name("lease".into()).spawn(move || renew(&weak));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the thread that renews this process's lease");
        }
        if leased {
            let weak = Arc::downgrade(&presence);
            let spawned = std::thread::Builder::new().name("lease-watch".into()).spawn(move || watch(&weak));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the thread that watches this process's lease");
            }
        }
        Ok(presence)
    }

    /// The identity operations started now are owned under.
    pub fn owner(&self) -> Owner {
        self.identity().owner
    }

    /// Cancelled once the current identity loses its lease: the operations it runs stop.
    pub fn lease(&self) -> Cancel {
        self.identity().lost
    }

    /// Whether an operation's owner still works on it: its lease is live (PostgreSQL), its process
    /// runs (SQLite). An unowned operation (queued by an API-only server) has no owner alive.
    pub fn alive(&self, owner: &Owner) -> bool {
        if owner.token.is_empty() {
            return false;
        }
        if !self.leased {
            return owner::is_alive(owner);
        }
        // Unknown: taking over now could run the work twice; the next look decides.
        self.store.lease_alive(&owner.token).unwrap_or(true)
    }

    /// Removes this process's row: its operations are taken over at once rather than when its
    /// lease ends. Called last by a stopping server, once its tools are gone.
    pub fn leave(&self) {
        self.leaving.store(true, Ordering::SeqCst);
        let id = self.owner().token;
        if let Err(e) = self.store.deregister_server(&id) {
            tracing::warn!(error = %e, server = %id, "cannot remove this server's row; its lease ends on its own");
        }
    }

    fn identity(&self) -> Identity {
        self.identity.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Registers again as `role` answering at `address` (a command that became a server).
    pub fn describe(&self, role: &str, address: &str) -> Result<(), crate::store::Error> {
        *self.described.lock().unwrap_or_else(|p| p.into_inner()) = (role.to_string(), address.to_string());
        self.register(&self.owner())
    }

    fn register(&self, owner: &Owner) -> Result<(), crate::store::Error> {
        let (role, address) = self.described.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let server = NewServer {
            id: owner.token.clone(),
            host: host(),
            pid: owner.pid,
            role,
            version: env!("CARGO_PKG_VERSION").to_string(),
            address,
            started_time: crate::store::now(),
        };
        self.store.register_server(&server, self.timing().0)?;
        self.renewed_ms.store(self.since_born(), Ordering::SeqCst);
        Ok(())
    }

    fn since_born(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Gives the current identity up (once): its operations stop, their tools within
    /// [`STOP_GRACE`].
    fn lose(&self, why: &str) {
        let identity = self.identity();
        if identity.lost.is_cancelled() {
            return;
        }
        tracing::error!(server = %identity.owner.token, "{why}: stopping its operations; another server takes them over when its lease ends");
        identity.lost.cancel_within(STOP_GRACE);
    }

    /// Registers a new identity after the last one was lost; false while that fails.
    fn reborn(&self) -> bool {
        let generation = self.identity().generation + 1;
        let owner = make_owner(true, generation);
        match self.register(&owner) {
            Ok(()) => {
                tracing::info!(server = %owner.token, "registered again: new operations run under this identity");
                *self.identity.lock().unwrap_or_else(|p| p.into_inner()) =
                    Identity { owner, lost: Cancel::new(), generation };
                true
            }
            Err(_) => false,
        }
    }
}

/// The renewing thread: renews every [`RENEW`]; an identity found expired is given up at once,
/// and a new one registered.
fn renew(presence: &Weak<Presence>) {
    loop {
        let every = presence.upgrade().map_or(RENEW, |p| p.timing().1);
        std::thread::sleep(every);
        let Some(p) = presence.upgrade() else { return };
        if p.leaving.load(Ordering::SeqCst) {
            return;
        }
        let identity = p.identity();
        if identity.lost.is_cancelled() {
            p.reborn();
            continue;
        }
        match p.store.renew_lease(&identity.owner.token, p.timing().0) {
            Ok(true) => p.renewed_ms.store(p.since_born(), Ordering::SeqCst),
            Ok(false) if p.leased => {
                p.lose("this server's lease ended before it could renew it (was it stopped, or cut off?)")
            }
            // On SQLite a lease only says when the process was last seen: register it again.
            Ok(false) => {
                let _ = p.register(&identity.owner);
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew this server's lease"),
        }
    }
}

/// The watching thread (PostgreSQL): gives the identity up once no renewal succeeded for
/// [`STOP_AFTER`], however long the renewal in hand blocks.
fn watch(presence: &Weak<Presence>) {
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let Some(p) = presence.upgrade() else { return };
        if p.leaving.load(Ordering::SeqCst) {
            return;
        }
        let silent = p.since_born().saturating_sub(p.renewed_ms.load(Ordering::SeqCst));
        if Duration::from_millis(silent) > STOP_AFTER {
            p.lose("this server could not renew its lease (the database is unreachable)");
        }
    }
}

/// The owner of the operations of this process: its pid and start time (SQLite), with its
/// host and identity number when identities are leases.
fn make_owner(leased: bool, generation: u64) -> Owner {
    let process = owner::current();
    if leased {
        Owner { pid: process.pid, token: format!("{}/{}/{generation}", host(), process.token) }
    } else {
        process
    }
}

/// This machine's name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
