//! The keys that seal sensitive values at rest, as users handle them: `formwork secrets rotate`
//! seals every value with a new key and retires the old one (`store::Store::rotate_secrets`).
//! It works on this machine's database and keys only.

use super::{Error, Service};
use crate::store::RotationStep;

pub use crate::store::Rotation;

impl Service {
    /// Seals every sensitive value with a new key, then retires the old key. Safe to interrupt:
    /// both keys open values until it ends, and the next start finishes it.
    pub fn rotate_secrets(&self) -> Result<Rotation, Error> {
        // The new key would be in this server's key file alone: every other server sharing the
        // database would then hold values it cannot open.
        if self.shares_database() {
            return Err(Error::not_allowed(
                "rotating the secret key of a database several servers share is not supported yet: the new key would reach only this server's key file; nothing was changed",
            ));
        }
        let crash_at = self.settings.crash_at.clone();
        Ok(self.store.rotate_secrets(&mut |step| strike(crash_at.as_deref(), step))?)
    }
}

/// The crash tests' points in a rotation (`FORMWORK_CRASH_AT=rotate:key-added`,
/// `rotate:switched`, `rotate:batch:N`, `rotate:resealed`): the process kills itself there, as
/// `kill -9` would.
fn strike(at: Option<&str>, step: RotationStep) {
    let Some(at) = at.and_then(|a| a.strip_prefix("rotate:")) else { return };
    let name = match step {
        RotationStep::KeyAdded => "key-added".to_string(),
        RotationStep::Switched => "switched".to_string(),
        RotationStep::Batch(n) => format!("batch:{n}"),
        RotationStep::Resealed => "resealed".to_string(),
    };
    if at == name {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
