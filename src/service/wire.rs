//! The typed shapes of formwork's own API additions, served by `src/api` and read back by
//! `src/client` from the same definitions: an operation as its callers see it ([`Operation`]),
//! the progress an operation reports ([`Reported`], stored and served as [`ProgressEvent`]),
//! and the structured `context` of an error ([`ErrorContext`]). Nothing here is read from
//! English: a client branches on these fields, and messages are for people.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::progress::Progress;
use crate::engine::{Stage, State, System};
use crate::store::{self, EventRow, OperationRow, OperationStatus};

/// An operation as the API serves it (`GET /provisions/:id/operations`) and a busy error
/// names it: who runs what since when, and how it ended. The process's ownership token and the
/// operation's parameters stay on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operation {
    pub id: i64,
    pub provision_id: i64,
    /// create, scale, deprovision, retry, recover, add_ip, remove_ip, …
    pub kind: String,
    pub status: OperationStatus,
    /// Waiting for a slot of the server; nothing of it ran yet.
    pub queued: bool,
    pub cancel_requested: bool,
    /// Whether any of its work began: false while it waits and when it was closed (cancelled)
    /// before it started, having run nothing.
    pub started: bool,
    /// The process that runs it.
    pub owner_pid: i64,
    pub created_time: i64,
    pub heartbeat_time: i64,
    pub finished_time: Option<i64>,
    /// Why it failed or was cancelled, for people.
    pub error: Option<String>,
    /// The stage its last attempt ran (a state name), if any ran.
    pub stage: Option<String>,
    /// For a failed operation: which system failed it (opennebula, terraform, ansible,
    /// formwork).
    #[schema(value_type = Option<String>)]
    pub system: Option<System>,
}

impl Operation {
    /// The served form of a stored operation; `stage` is the stage of its last attempt.
    pub fn from_row(row: &OperationRow, stage: Option<&str>) -> Operation {
        let status = row.status;
        let withdrawn = status == OperationStatus::Cancelled && row.error.as_deref() == Some(store::NOT_STARTED);
        let system = (status == OperationStatus::Failed).then(|| match stage {
            Some(stage) => State::parse(stage).and_then(Stage::of).map_or(System::Formwork, Stage::system),
            None if row.params.is_public_ip_change() => System::OpenNebula,
            None => System::Formwork,
        });
        Operation {
            id: row.id,
            provision_id: row.provision_id,
            kind: row.kind.clone(),
            status,
            queued: row.queued,
            cancel_requested: row.cancel_requested,
            started: !row.queued && !withdrawn,
            owner_pid: row.owner_pid,
            created_time: row.created_time,
            heartbeat_time: row.heartbeat_time,
            finished_time: row.finished_time,
            error: row.error.clone(),
            stage: stage.map(str::to_owned),
            system,
        }
    }
}

/// What an operation reported, as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reported {
    /// The provision moved from one state to the next; `took_ms` is how long it was in `from`.
    StateChanged {
        #[schema(value_type = String)]
        from: State,
        #[schema(value_type = String)]
        to: State,
        took_ms: u64,
    },
    /// A step inside a stage (a Terraform resource, a configured host).
    Step {
        text: String,
    },
    Warning {
        text: String,
    },
    /// Something failed; the operation's record says how it ended.
    Failed {
        text: String,
    },
}

impl Reported {
    /// The stored form of a progress report; `None` for what is not an operation's progress
    /// (a front end's own "created").
    pub fn of(progress: &Progress) -> Option<Reported> {
        Some(match progress {
            Progress::Created { .. } => return None,
            Progress::StateChanged { from, to, took } => Reported::StateChanged {
                from: *from,
                to: *to,
                took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            },
            Progress::Step(text) => Reported::Step { text: text.clone() },
            Progress::Warning(text) => Reported::Warning { text: text.clone() },
            Progress::Failed(text) => Reported::Failed { text: text.clone() },
        })
    }

    /// The same report as a front end's [`Progress`].
    pub fn into_progress(self) -> Progress {
        match self {
            Reported::StateChanged { from, to, took_ms } => {
                Progress::StateChanged { from, to, took: Duration::from_millis(took_ms) }
            }
            Reported::Step { text } => Progress::Step(text),
            Reported::Warning { text } => Progress::Warning(text),
            Reported::Failed { text } => Progress::Failed(text),
        }
    }

    /// The SSE event name of this report.
    pub fn name(&self) -> &'static str {
        match self {
            Reported::StateChanged { .. } => "state_changed",
            Reported::Step { .. } => "step",
            Reported::Warning { .. } => "warning",
            Reported::Failed { .. } => "failed",
        }
    }
}

/// One stored report of a provision: `GET /provisions/:id/events` serves a list of these and
/// `id` is the cursor to poll from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgressEvent {
    pub id: i64,
    /// The operation that was running when it was reported.
    pub operation_id: Option<i64>,
    pub time: i64,
    #[serde(flatten)]
    pub event: Reported,
}

impl ProgressEvent {
    /// The served form of a stored event; `None` for one this build cannot read (written by a
    /// newer formwork), which is skipped rather than failing the whole answer.
    pub fn from_row(row: EventRow) -> Option<ProgressEvent> {
        let event = serde_json::from_value(row.data).ok()?;
        Some(ProgressEvent { id: row.id, operation_id: row.operation_id, time: row.time, event })
    }
}

/// `GET /provisions/:id/events`: the events after the cursor and the cursor to ask from next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Events {
    pub events: Vec<ProgressEvent>,
    pub next: i64,
}

/// A failure a server reported: its words, and the provision and stage it happened in (from
/// the answer's typed context or the operation's record), so this side knows as much about it
/// as the server did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub provision_id: Option<i64>,
    pub stage: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The `context` of an error answer other than a field error (whose context is OneForm's
/// `{field: [messages]}`): which outcome it is, and its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ErrorContext {
    NotFound,
    /// The request is wrong as a whole (a field error's context is the field map).
    Invalid,
    /// Another operation runs on the provision; nothing was done.
    Busy {
        provision_id: i64,
        operation: Box<Operation>,
    },
    /// Not in this state (OneForm's 405).
    NotAllowed,
    Forbidden,
    Conflict,
    /// The operation was cancelled (`stage`: the stage it stopped, none if nothing ran).
    Cancelled {
        provision_id: Option<i64>,
        stage: Option<String>,
    },
    /// OpenNebula, Terraform or Ansible failed (`stage`: the stage it failed in).
    Upstream {
        #[schema(value_type = String)]
        system: System,
        provision_id: Option<i64>,
        stage: Option<String>,
    },
    Internal,
    /// The database cannot be reached now; nothing was done, try again.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reports_are_served_with_their_type_and_read_back_the_same() {
        let changed =
            Progress::StateChanged { from: State::Init, to: State::Planning, took: Duration::from_millis(1500) };
        let reported = Reported::of(&changed).unwrap();
        let event = ProgressEvent { id: 4, operation_id: Some(2), time: 9, event: reported };
        let served = serde_json::to_value(&event).unwrap();
        assert_eq!(
            served,
            json!({"id": 4, "operation_id": 2, "time": 9, "type": "state_changed", "from": "INIT", "to": "PLANNING", "took_ms": 1500})
        );
        let back: ProgressEvent = serde_json::from_value(served).unwrap();
        assert_eq!(back.event.into_progress(), changed);
        assert_eq!(Reported::of(&Progress::Created { name: "x".into(), driver: "sim".into() }), None);
        let step = serde_json::to_value(Reported::of(&Progress::Step("host 1".into())).unwrap()).unwrap();
        assert_eq!(step, json!({"type": "step", "text": "host 1"}));
    }

    #[test]
    fn an_unknown_stored_event_is_skipped_not_fatal() {
        let row = EventRow { id: 1, provision_id: 1, operation_id: None, time: 0, data: json!({"type": "teleported"}) };
        assert_eq!(ProgressEvent::from_row(row), None);
    }

    #[test]
    fn error_contexts_name_their_outcome() {
        let context =
            ErrorContext::Upstream { system: System::Terraform, provision_id: Some(3), stage: Some("APPLYING".into()) };
        assert_eq!(
            serde_json::to_value(&context).unwrap(),
            json!({"error": "upstream", "system": "terraform", "provision_id": 3, "stage": "APPLYING"})
        );
        assert_eq!(serde_json::to_value(ErrorContext::NotFound).unwrap(), json!({"error": "not_found"}));
    }
}
