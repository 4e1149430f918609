//! Foreground progress on stderr: one line per state change with the time the stage took,
//! one indented line per step inside a stage, warnings and failures. With `--json` only
//! failures are printed, so stdout stays one JSON document and stderr stays quiet.

use crate::service::{Observer, Progress};

pub struct Stderr {
    /// Errors only (with `--json`).
    quiet: bool,
}

impl Stderr {
    pub fn boxed(quiet: bool) -> Box<dyn Observer> {
        Box::new(Stderr { quiet })
    }
}

impl Observer for Stderr {
    fn observe(&mut self, id: i64, progress: Progress) {
        match progress {
            Progress::Failed(text) => eprintln!("[provision {id}] {text}"),
            _ if self.quiet => {}
            Progress::Created { name, driver } => eprintln!("provision {id} created: '{name}' ({driver})"),
            Progress::StateChanged { from, to, took } => {
                eprintln!("[provision {id}] {from} → {to} ({})", duration(took));
            }
            Progress::Step(text) => eprintln!("[provision {id}]   {text}"),
            Progress::Warning(text) => eprintln!("[provision {id}] {text}"),
        }
    }
}

/// How long a stage took, as people write it (`300ms`, `1.5s`, `1m30s`).
fn duration(took: std::time::Duration) -> String {
    crate::units::duration(took)
}
