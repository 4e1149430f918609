//! What the store returns: plain rows with typed columns and JSON bodies.

use serde::Serialize;
use serde_json::Value;

use crate::engine::{Event, Params, ProvisionBody, State};

/// Nine permission bits, as `chmod` writes them: `0o640` is owner use+manage, group use. The
/// rules that read them are the service's (`service::access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mode(pub u16);

/// The owner, group and permission bits of a provider or provision (OpenNebula's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ownership {
    pub uid: i64,
    pub uname: String,
    pub gid: i64,
    pub gname: String,
    pub mode: Mode,
}

impl Default for Ownership {
    /// oneadmin's, with OpenNebula's default bits (600): what rows made before owners were
    /// kept, and the local operator's, have.
    fn default() -> Ownership {
        Ownership { uid: 0, uname: "oneadmin".into(), gid: 0, gname: "oneadmin".into(), mode: Mode(0o600) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderRow {
    pub id: i64,
    pub name: String,
    pub driver: String,
    /// OneForm's PROVIDER_BODY without `provision_ids`.
    pub body: Value,
    pub registration_time: i64,
    /// Provisions of this provider not yet DONE (OneForm's `provision_ids`).
    pub provision_ids: Vec<i64>,
    pub owner: Ownership,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProvisionRow {
    pub id: i64,
    pub name: String,
    pub driver: String,
    pub provider_id: i64,
    pub state: State,
    /// OneForm's PROVISION_BODY without `state`, `historic` and `tfstate`.
    pub body: ProvisionBody,
    pub registration_time: i64,
    pub updated_time: i64,
    pub owner: Ownership,
    /// How many times the body was written: an update computed from this row is written only
    /// while it is still the current one ([`super::Store::update_provision`]).
    pub revision: i64,
}

/// One historic entry, OneForm's `{action, description, time}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoricEntry {
    pub action: String,
    pub description: String,
    pub time: i64,
}

impl HistoricEntry {
    pub fn new(action: &str, description: impl Into<String>, time: i64) -> HistoricEntry {
        HistoricEntry { action: action.to_string(), description: description.into(), time }
    }

    /// OneForm's "State changed from A to B".
    pub fn state_changed(from: State, to: State, time: i64) -> HistoricEntry {
        HistoricEntry::new("State changed", format!("State changed from {from} to {to}"), time)
    }
}

/// Where an operation stands; also what the API serves (`service::Operation`), so one
/// vocabulary is stored and promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    /// Working, or (`queued`) waiting for a slot of the server.
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Its process died; whoever starts next (a server, `resume`) takes it over.
    Interrupted,
}

impl OperationStatus {
    pub fn has_ended(self) -> bool {
        self != OperationStatus::Running
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Running => "running",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
            OperationStatus::Cancelled => "cancelled",
            OperationStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<OperationStatus> {
        Some(match text {
            "running" => OperationStatus::Running,
            "succeeded" => OperationStatus::Succeeded,
            "failed" => OperationStatus::Failed,
            "cancelled" => OperationStatus::Cancelled,
            "interrupted" => OperationStatus::Interrupted,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationRow {
    pub id: i64,
    pub provision_id: i64,
    pub kind: String,
    pub params: Params,
    pub status: OperationStatus,
    pub owner_pid: i64,
    pub owner_token: String,
    pub heartbeat_time: i64,
    pub cancel_requested: bool,
    pub created_time: i64,
    pub finished_time: Option<i64>,
    pub error: Option<String>,
    /// Waiting for a slot in the server's queue (it already holds the provision's lock).
    pub queued: bool,
    /// The event that begins the operation's work (none for public-IP changes, and for rows an
    /// older formwork wrote), so it can be started by any process from its row alone.
    pub event: Option<Event>,
    /// The driver snapshot the operation runs on (`driver_snapshots`), once it started.
    pub driver_digest: Option<String>,
    /// How many times the operation was taken over: its owner writes under this epoch.
    pub epoch: i64,
}

impl OperationRow {
    /// The fence the operation's owner writes under.
    pub fn fence(&self) -> super::Fence {
        super::Fence { operation_id: self.id, epoch: self.epoch }
    }

    /// The process that owns the operation.
    pub fn owner(&self) -> super::Owner {
        super::Owner { pid: self.owner_pid, token: self.owner_token.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub operation_id: i64,
    pub stage: String,
    pub started_time: i64,
    pub finished_time: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub log_start: i64,
    pub log_end: Option<i64>,
    pub exit_status: Option<i32>,
}
