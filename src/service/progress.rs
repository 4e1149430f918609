//! Progress of a running operation as typed events. The operation's task owns an
//! [`OperationLog`]: everything goes to the provision log (OneForm's line format, secrets
//! masked), and state changes, steps, warnings and failures also reach the caller's
//! [`Observer`] — the CLI prints them on stderr, the API will stream them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wire::Reported;
use crate::engine::{Log, State};
use crate::exec::{Masker, ProvisionLog, Severity, Sink, Stream};
use crate::store::{self, Store};

/// What a front end hears about a running operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A new provision was recorded and its operation is about to start.
    Created {
        name: String,
        driver: String,
    },
    /// The provision moved on; `took` is how long it spent in `from`.
    StateChanged {
        from: State,
        to: State,
        took: Duration,
    },
    /// A step inside a stage (a Terraform resource, a configured host).
    Step(String),
    Warning(String),
    /// Something failed; the operation's result says how it ended.
    Failed(String),
}

/// Receives the progress of the operations a caller started.
pub trait Observer: Send {
    fn observe(&mut self, provision_id: i64, progress: Progress);
}

/// An observer that ignores everything (background work, resumes nobody watches).
pub struct Silent;

impl Observer for Silent {
    fn observe(&mut self, _: i64, _: Progress) {}
}

/// An observer that first stores each report as a progress event of the provision (masked,
/// tied to its running operation), for API clients to follow, then passes it on masked.
pub struct Recording {
    store: Arc<Store>,
    masker: Masker,
    inner: Box<dyn Observer>,
}

impl Recording {
    pub fn new(store: Arc<Store>, masker: Masker, inner: Box<dyn Observer>) -> Recording {
        Recording { store, masker, inner }
    }

    fn mask(&self, progress: Progress) -> Progress {
        match progress {
            Progress::Step(text) => Progress::Step(self.masker.mask(&text).into_owned()),
            Progress::Warning(text) => Progress::Warning(self.masker.mask(&text).into_owned()),
            Progress::Failed(text) => Progress::Failed(self.masker.mask(&text).into_owned()),
            other @ (Progress::Created { .. } | Progress::StateChanged { .. }) => other,
        }
    }
}

impl Observer for Recording {
    fn observe(&mut self, provision_id: i64, progress: Progress) {
        let progress = self.mask(progress);
        if let Some(reported) = Reported::of(&progress) {
            let data = serde_json::to_value(&reported).unwrap_or_default();
            if let Err(e) = self.store.record_event(provision_id, &data, store::now()) {
                tracing::warn!(provision_id, error = %e, "cannot store a progress event");
            }
        }
        self.inner.observe(provision_id, progress);
    }
}

/// The log an operation writes to, with its observer.
pub struct OperationLog {
    id: i64,
    log: Option<ProvisionLog>,
    observer: Box<dyn Observer>,
    since: Instant,
}

impl OperationLog {
    pub fn new(id: i64, log: ProvisionLog, observer: Box<dyn Observer>) -> OperationLog {
        OperationLog { id, log: Some(log), observer, since: Instant::now() }
    }

    /// An operation log without a file (when the provision's log cannot be opened): the
    /// observer still hears everything.
    pub fn without_file(id: i64, observer: Box<dyn Observer>) -> OperationLog {
        OperationLog { id, log: None, observer, since: Instant::now() }
    }
}

impl Sink for OperationLog {
    fn line(&mut self, stream: Stream, text: &str) {
        if let Some(log) = &mut self.log {
            log.line(stream, text);
        }
    }

    fn note(&mut self, severity: Severity, text: &str) {
        if let Some(log) = &mut self.log {
            log.note(severity, text);
        }
        match severity {
            Severity::Error => self.observer.observe(self.id, Progress::Failed(text.to_string())),
            Severity::Warning => self.observer.observe(self.id, Progress::Warning(text.to_string())),
            Severity::Debug | Severity::Info => {}
        }
    }

    fn progress(&mut self, text: &str) {
        if let Some(log) = &mut self.log {
            log.note(Severity::Info, text);
        }
        self.observer.observe(self.id, Progress::Step(text.to_string()));
    }
}

impl Log for OperationLog {
    fn position(&self) -> u64 {
        self.log.as_ref().map_or(0, ProvisionLog::position)
    }

    fn state_changed(&mut self, from: State, to: State) {
        if let Some(log) = &mut self.log {
            log.note(Severity::Info, &format!("State changed from {from} to {to}"));
            log.flush();
        }
        let took = self.since.elapsed();
        self.since = Instant::now();
        self.observer.observe(self.id, Progress::StateChanged { from, to, took });
    }
}

impl Log for ProvisionLog {
    fn position(&self) -> u64 {
        ProvisionLog::position(self)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Heard(Arc<Mutex<Vec<Progress>>>);

    impl Observer for Heard {
        fn observe(&mut self, id: i64, progress: Progress) {
            assert_eq!(id, 7);
            self.0.lock().unwrap().push(progress);
        }
    }

    #[test]
    fn state_changes_reach_the_observer_typed_and_the_log_as_oneform_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("7.log");
        let log = ProvisionLog::open(&path, crate::exec::Masker::new(["s3cret"])).unwrap();
        let heard = Heard::default();
        let mut op = OperationLog::new(7, log, Box::new(heard.clone()));
        op.state_changed(State::Init, State::Planning);
        op.progress("[1/2] host created");
        op.note(Severity::Warning, "token s3cret expired");
        op.line(Stream::Stdout, "plain tool output");
        let heard = heard.0.lock().unwrap().clone();
        assert_eq!(heard.len(), 3, "{heard:?}");
        assert!(matches!(heard[0], Progress::StateChanged { from: State::Init, to: State::Planning, .. }));
        assert_eq!(heard[1], Progress::Step("[1/2] host created".into()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("State changed from INIT to PLANNING"), "{text}");
        assert!(text.contains("plain tool output") && !text.contains("s3cret"), "{text}");
    }
}
