//! Foreground progress: everything goes to the provision log, and each stage change (and each
//! stage failure) is also printed as one line on stderr with the time the stage took.

use std::time::Instant;

use crate::engine::Log;
use crate::exec::{ProvisionLog, Severity, Sink, Stream};

pub struct Progress {
    id: i64,
    log: ProvisionLog,
    quiet: bool,
    since: Instant,
}

impl Progress {
    /// `quiet` keeps stderr for errors only (with `--json`).
    pub fn new(id: i64, log: ProvisionLog, quiet: bool) -> Progress {
        Progress { id, log, quiet, since: Instant::now() }
    }
}

impl Sink for Progress {
    fn line(&mut self, stream: Stream, text: &str) {
        self.log.line(stream, text);
    }

    fn note(&mut self, severity: Severity, text: &str) {
        self.log.note(severity, text);
        if let Some(change) = text.strip_prefix("State changed from ") {
            if !self.quiet {
                let took = crate::exec::human(self.since.elapsed());
                eprintln!("[provision {}] {} ({took})", self.id, change.replacen(" to ", " → ", 1));
            }
            self.since = Instant::now();
        } else if severity == Severity::Error || (severity == Severity::Warning && !self.quiet) {
            eprintln!("[provision {}] {text}", self.id);
        }
    }

    fn progress(&mut self, text: &str) {
        self.log.note(Severity::Info, text);
        if !self.quiet {
            eprintln!("[provision {}]   {text}", self.id);
        }
    }
}

impl Log for Progress {
    fn position(&self) -> u64 {
        Log::position(&self.log)
    }
}

/// A log that keeps nothing, for when the real one cannot be opened.
#[derive(Default)]
pub struct Discard;

impl Sink for Discard {
    fn line(&mut self, _: Stream, _: &str) {}
    fn note(&mut self, _: Severity, _: &str) {}
}

impl Log for Discard {
    fn position(&self) -> u64 {
        0
    }
}
