//! Terraform's machine-readable UI (`-json`, one JSON object per line, Terraform ≥ 0.15.3)
//! turned into what a person reads: each event's `@message` goes to the provision log as the
//! plain line Terraform would have printed, finished resource operations and change summaries
//! become progress steps, and error diagnostics are kept to name the failure (the provider's
//! own message, a held state lock) instead of only an exit status.

use serde_json::Value;

use crate::exec::{Severity, Sink, Stream};

/// Warnings every targeted run gets, which formwork's own use of `-target` makes expected.
const EXPECTED: [&str; 2] = ["Resource targeting is in effect", "Applied changes may be incomplete"];

/// A sink in front of the provision log for a `terraform … -json` run.
pub struct JsonUi<'a> {
    log: &'a mut dyn Sink,
    /// Changes the run announced (`planned_change`), when it announced them.
    planned: usize,
    /// Resource operations finished (`apply_complete`).
    done: usize,
    /// `summary: detail` of every error diagnostic.
    pub errors: Vec<String>,
    /// Terraform could not take the state lock.
    pub lock_held: bool,
}

impl<'a> JsonUi<'a> {
    pub fn new(log: &'a mut dyn Sink) -> JsonUi<'a> {
        JsonUi { log, planned: 0, done: 0, errors: Vec::new(), lock_held: false }
    }

    /// What to say after the command failed: the diagnostics, a held lock first.
    pub fn failure(&self) -> Option<String> {
        if self.errors.is_empty() {
            return None;
        }
        let mut text = self.errors.join("; ");
        if self.lock_held {
            text = format!(
                "the Terraform state is locked by another Terraform process (is another command running on this \
                 provision, or did one crash?); if none runs, `terraform force-unlock` in the provision's terraform \
                 folder releases it: {text}"
            );
        }
        Some(text)
    }

    fn event(&mut self, event: &Value) {
        let message = event["@message"].as_str().unwrap_or_default();
        match event["type"].as_str().unwrap_or_default() {
            "planned_change" => {
                self.planned += 1;
                self.log.line(Stream::Stdout, message);
            }
            "apply_complete" => {
                self.done += 1;
                let step = if self.planned >= self.done {
                    format!("[{}/{}] {message}", self.done, self.planned)
                } else {
                    format!("[{}] {message}", self.done)
                };
                self.log.progress(&step);
            }
            "change_summary" => self.log.progress(message),
            "diagnostic" => self.diagnostic(&event["diagnostic"], message),
            _ if !message.is_empty() => self.log.line(Stream::Stdout, message),
            _ => {}
        }
    }

    fn diagnostic(&mut self, diagnostic: &Value, message: &str) {
        let summary = diagnostic["summary"].as_str().unwrap_or(message);
        let detail = diagnostic["detail"].as_str().unwrap_or_default().trim();
        let address = diagnostic["address"].as_str();
        let mut text = match address {
            Some(address) => format!("{address}: {summary}"),
            None => summary.to_owned(),
        };
        if !detail.is_empty() {
            text.push_str(": ");
            text.push_str(&detail.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        if diagnostic["severity"] == "error" {
            if summary.contains("state lock") {
                self.lock_held = true;
            }
            self.log.note(Severity::Error, &text);
            self.errors.push(text);
        } else if EXPECTED.iter().any(|expected| summary.starts_with(expected)) {
            // formwork targets on purpose (scale-down) and compacts afterwards.
            self.log.note(Severity::Info, &text);
        } else {
            self.log.note(Severity::Warning, &text);
        }
    }
}

impl Sink for JsonUi<'_> {
    fn line(&mut self, stream: Stream, text: &str) {
        match serde_json::from_str::<Value>(text) {
            Ok(event) if stream == Stream::Stdout && event.get("@message").is_some() => self.event(&event),
            _ => {
                // Commands without `-json` (init) print their errors as `Error: <summary>`.
                if let Some(summary) = text.strip_prefix("Error: ") {
                    if summary.contains("state lock") {
                        self.lock_held = true;
                    }
                    self.errors.push(summary.trim().to_owned());
                }
                self.log.line(stream, text);
            }
        }
    }

    fn note(&mut self, severity: Severity, text: &str) {
        self.log.note(severity, text);
    }

    fn progress(&mut self, text: &str) {
        self.log.progress(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Capture;
    use serde_json::json;

    fn feed(events: &[Value]) -> (Capture, Vec<String>, Option<String>) {
        let mut log = Capture::default();
        let (errors, failure) = {
            let mut ui = JsonUi::new(&mut log);
            for e in events {
                ui.line(Stream::Stdout, &e.to_string());
            }
            ui.line(Stream::Stderr, "plain stderr text");
            ui.line(Stream::Stderr, "");
            (ui.errors.clone(), ui.failure())
        };
        (log, errors, failure)
    }

    #[test]
    fn messages_become_log_lines_and_finished_resources_progress_steps() {
        let (log, errors, failure) = feed(&[
            json!({"@level": "info", "@message": "Terraform 1.0.3", "type": "version"}),
            json!({"@message": "sim_host.host[0]: Plan to create", "type": "planned_change"}),
            json!({"@message": "sim_host.host[1]: Plan to create", "type": "planned_change"}),
            json!({"@message": "sim_host.host[0]: Creating...", "type": "apply_start"}),
            json!({"@message": "sim_host.host[0]: Creation complete after 0s [id=h-1]", "type": "apply_complete"}),
            json!({"@message": "Apply complete! Resources: 2 added, 0 changed, 0 destroyed.", "type": "change_summary"}),
        ]);
        assert!(errors.is_empty() && failure.is_none());
        let out = log.stream(Stream::Stdout);
        assert_eq!(
            out,
            [
                "Terraform 1.0.3",
                "sim_host.host[0]: Plan to create",
                "sim_host.host[1]: Plan to create",
                "sim_host.host[0]: Creating..."
            ]
        );
        assert_eq!(log.stream(Stream::Stderr), ["plain stderr text", ""]);
        let notes: Vec<&str> = log.notes.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            notes,
            [
                "[1/2] sim_host.host[0]: Creation complete after 0s [id=h-1]",
                "Apply complete! Resources: 2 added, 0 changed, 0 destroyed."
            ]
        );
    }

    #[test]
    fn error_diagnostics_name_the_failure_and_a_held_lock_says_so() {
        let provider = json!({"@message": "Error: sim: creating host host-1 failed", "type": "diagnostic",
            "diagnostic": {"severity": "error", "summary": "sim: creating host host-1 failed",
                "detail": "injected  failure\n(fail_create_host=2)", "address": "sim_host.host[1]"}});
        let warning = json!({"@message": "Warning: x", "type": "diagnostic",
            "diagnostic": {"severity": "warning", "summary": "Deprecated", "detail": ""}});
        let (log, errors, failure) = feed(&[provider, warning]);
        assert_eq!(
            errors,
            ["sim_host.host[1]: sim: creating host host-1 failed: injected failure (fail_create_host=2)"]
        );
        assert_eq!(failure.as_deref(), Some(errors[0].as_str()));
        assert!(log.notes.contains(&(Severity::Warning, "Deprecated".into())));

        let lock = json!({"@message": "Error: Error acquiring the state lock", "type": "diagnostic",
            "diagnostic": {"severity": "error", "summary": "Error acquiring the state lock",
                "detail": "Lock Info:\n  ID: 1234\n  Who: root@x"}});
        let (_, _, failure) = feed(&[lock]);
        let failure = failure.unwrap();
        assert!(failure.starts_with("the Terraform state is locked by another Terraform process"), "{failure}");
        assert!(failure.contains("ID: 1234"), "{failure}");
    }

    #[test]
    fn plain_error_lines_of_commands_without_json_are_kept_too() {
        let mut log = Capture::default();
        let mut ui = JsonUi::new(&mut log);
        ui.line(Stream::Stderr, "Error: Failed to query available provider packages");
        assert_eq!(ui.failure().as_deref(), Some("Failed to query available provider packages"));
        assert_eq!(log.stream(Stream::Stderr), ["Error: Failed to query available provider packages"]);
    }
}
