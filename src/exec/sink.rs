//! Where a child's output goes: the [`Sink`] trait, the two output streams, the four
//! severities of OneForm's log, and small sinks for capturing output, sending it two places
//! and forwarding it to tracing. The per-provision log is a sink too, in `log.rs`.

use serde::Serialize;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The severities of OneForm's per-provision log, with the letter written between brackets
/// (`[D]`, `[I]`, `[W]`, `[E]`). Serialised as OneForm's log API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Debug,
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn letter(self) -> char {
        match self {
            Severity::Debug => 'D',
            Severity::Info => 'I',
            Severity::Warning => 'W',
            Severity::Error => 'E',
        }
    }

    pub fn from_letter(letter: char) -> Option<Severity> {
        match letter {
            'D' => Some(Severity::Debug),
            'I' => Some(Severity::Info),
            'W' => Some(Severity::Warning),
            'E' => Some(Severity::Error),
            _ => None,
        }
    }

    /// The name OneForm's log API gives the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Receives a running child's output, line by line as it arrives, and notes about the run
/// (a timeout, a cancellation). Text given to a sink by [`run`](super::run) is already
/// masked. Calls are synchronous and made from the task that runs the child, so a sink must
/// not block for long.
pub trait Sink: Send {
    /// One line of output, without its line ending.
    fn line(&mut self, stream: Stream, text: &str);
    /// Something formwork has to say about the run.
    fn note(&mut self, severity: Severity, text: &str);
    /// A step of the work done (a resource created, a host configured): logged as an info
    /// note, and shown to a user watching in the foreground.
    fn progress(&mut self, text: &str) {
        self.note(Severity::Info, text);
    }
}

/// Keeps everything in memory: for commands whose output formwork reads (`terraform output
/// -json`) and for tests.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub lines: Vec<(Stream, String)>,
    pub notes: Vec<(Severity, String)>,
}

impl Capture {
    /// The lines of one stream, in order.
    pub fn stream(&self, which: Stream) -> Vec<&str> {
        self.lines.iter().filter(|(s, _)| *s == which).map(|(_, text)| text.as_str()).collect()
    }

    /// Standard output joined with newlines, as the child printed it.
    pub fn stdout_text(&self) -> String {
        self.stream(Stream::Stdout).join("\n")
    }
}

impl Sink for Capture {
    fn line(&mut self, stream: Stream, text: &str) {
        self.lines.push((stream, text.to_string()));
    }

    fn note(&mut self, severity: Severity, text: &str) {
        self.notes.push((severity, text.to_string()));
    }
}

/// Sends everything to two sinks, in order: typically the provision log and a [`Capture`].
pub struct Tee<'a> {
    pub first: &'a mut dyn Sink,
    pub second: &'a mut dyn Sink,
}

impl Sink for Tee<'_> {
    fn line(&mut self, stream: Stream, text: &str) {
        self.first.line(stream, text);
        self.second.line(stream, text);
    }

    fn note(&mut self, severity: Severity, text: &str) {
        self.first.note(severity, text);
        self.second.note(severity, text);
    }

    fn progress(&mut self, text: &str) {
        self.first.progress(text);
        self.second.progress(text);
    }
}

/// Forwards output to tracing at debug level and notes at their own level, tagged with the
/// program's name, for runs that have no provision log.
#[derive(Debug, Clone)]
pub struct Trace {
    pub program: String,
}

impl Sink for Trace {
    fn line(&mut self, stream: Stream, text: &str) {
        tracing::debug!(program = %self.program, ?stream, "{text}");
    }

    fn note(&mut self, severity: Severity, text: &str) {
        let program = &self.program;
        match severity {
            Severity::Debug => tracing::debug!(%program, "{text}"),
            Severity::Info => tracing::info!(%program, "{text}"),
            Severity::Warning => tracing::warn!(%program, "{text}"),
            Severity::Error => tracing::error!(%program, "{text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_round_trip() {
        for s in [Severity::Debug, Severity::Info, Severity::Warning, Severity::Error] {
            assert_eq!(Severity::from_letter(s.letter()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Severity::from_letter('X'), None);
    }

    #[test]
    fn tee_and_capture_keep_order_per_stream() {
        let mut a = Capture::default();
        let mut b = Capture::default();
        let mut tee = Tee { first: &mut a, second: &mut b };
        tee.line(Stream::Stdout, "{");
        tee.line(Stream::Stderr, "warn");
        tee.line(Stream::Stdout, "}");
        tee.note(Severity::Warning, "slow");
        assert_eq!(a.stdout_text(), "{\n}");
        assert_eq!(b.stream(Stream::Stderr), ["warn"]);
        assert_eq!(b.notes, [(Severity::Warning, "slow".to_string())]);
    }
}
