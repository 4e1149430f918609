//! [`Cancel`]: the handle that asks a running child to stop. One is made per operation; the
//! engine keeps a clone and cancels it when the operation is cancelled or formwork shuts
//! down, and [`run`](super::run) then stops its child the graceful way (SIGINT, grace, SIGKILL).
//!
//! Built on a `watch` channel rather than `Notify`, because a cancellation must be seen by
//! runs that start after it was requested, not only by those waiting at that moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// A cloneable cancellation flag. All clones share one flag; once set it stays set.
#[derive(Debug, Clone)]
pub struct Cancel {
    flag: Arc<watch::Sender<bool>>,
    /// The longest grace a child stopped by this cancel gets, in milliseconds (`u64::MAX`: the
    /// command's own).
    grace_ms: Arc<AtomicU64>,
}

impl Cancel {
    pub fn new() -> Cancel {
        let (flag, _) = watch::channel(false);
        Cancel { flag: Arc::new(flag), grace_ms: Arc::new(AtomicU64::new(u64::MAX)) }
    }

    /// Requests cancellation. Idempotent.
    pub fn cancel(&self) {
        self.flag.send_replace(true);
    }

    /// Requests cancellation with children killed at most `grace` after their SIGINT, however
    /// long their commands' own grace is: a server that lost its lease must have its tools gone
    /// before the lease can expire.
    pub fn cancel_within(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.grace_ms.fetch_min(ms, Ordering::SeqCst);
        self.cancel();
    }

    /// The grace a child stopped by this cancel gets, given its command's own.
    pub fn grace(&self, own: Duration) -> Duration {
        match self.grace_ms.load(Ordering::SeqCst) {
            u64::MAX => own,
            ms => own.min(Duration::from_millis(ms)),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        *self.flag.borrow()
    }

    /// Completes once cancellation is requested (at once if it already was).
    pub async fn cancelled(&self) {
        let mut seen = self.flag.subscribe();
        // The sender lives as long as `self`, so waiting can only end by the flag being set.
        let _ = seen.wait_for(|cancelled| *cancelled).await;
    }
}

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_the_flag_and_late_waiters_see_it() {
        let cancel = Cancel::new();
        let clone = cancel.clone();
        assert!(!clone.is_cancelled());
        let waiter = tokio::spawn({
            let clone = clone.clone();
            async move { clone.cancelled().await }
        });
        cancel.cancel();
        waiter.await.unwrap();
        assert!(clone.is_cancelled());
        // A waiter that starts after the cancellation completes at once.
        clone.cancelled().await;
    }
}
