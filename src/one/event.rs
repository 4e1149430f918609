//! What registration and teardown tell their caller as they go: an [`Event`] after every
//! OpenNebula change, with the historic entry (§2.10) and the log line (§7.1) OneForm writes
//! for it, and the [`Context`] of the provision the objects belong to.
//!
//! The caller's `progress` callback receives the current `one_objects` with each event and is
//! expected to checkpoint them; if it fails, the operation stops before its next call.

use std::fmt;

use serde_json::{Map, Value};

use super::objects::OneObjects;
use super::{ChildKind, Error, Kind, Result};

/// The provision whose objects are registered: names, tags and the public-IP ARs come from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub provision_id: i64,
    /// The provision's `name`: objects without a name take it (plus the suffix).
    pub provision_name: String,
    pub provider_id: i64,
    /// The provider's driver: the `DRIVER` tag and the public IPs' `IPAM_MAD`.
    pub driver: String,
    /// The user's `oneform_tags` values, added to every `ONEFORM` tag.
    pub tags: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Allocated in OpenNebula; its id is now recorded.
    Created {
        kind: Kind,
        id: i64,
        name: String,
    },
    /// Found by name and adopted (a retry after a crash, or a pre-existing object).
    Adopted {
        kind: Kind,
        id: i64,
        name: String,
    },
    /// `ONEFORM` tags written to a cluster or host that lacked them.
    Tagged {
        kind: Kind,
        id: i64,
        name: String,
    },
    /// Deleted, and its id set to null.
    Deleted {
        kind: Kind,
        id: i64,
        name: String,
    },
    /// Already gone from OpenNebula when teardown reached it; its id set to null.
    Vanished {
        kind: Kind,
        id: i64,
        name: String,
    },
    /// An unmanaged child deleted by a forced teardown.
    ChildDeleted {
        kind: ChildKind,
        id: i64,
        parent: Kind,
        parent_id: i64,
    },
    ArAdded {
        network: i64,
        ar_id: i64,
        ipam: String,
        ip: Option<String>,
    },
    ArRemoved {
        network: i64,
        ar_id: i64,
    },
    /// A child seen for the first time (`context` as OneForm words it: "provision hosts").
    UnmanagedFound {
        kind: ChildKind,
        id: i64,
        context: &'static str,
    },
    UnmanagedRemoved {
        kind: ChildKind,
        id: i64,
        context: &'static str,
    },
    /// A host about to be forced through OFFLINE and back to ENABLED.
    HostActivating {
        id: i64,
    },
    /// Children and public-IP ARs re-read from OpenNebula at the end of an operation.
    Refreshed,
}

/// A `historic` entry, without its time (the caller stamps it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Historic {
    pub action: &'static str,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

/// A line for the provision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub level: Level,
    pub message: String,
}

const CREATED: &str = "OpenNebula object created";
const DELETED: &str = "OpenNebula object deleted";

impl Event {
    /// The historic entry OneForm records for this event, if any.
    pub fn historic(&self) -> Option<Historic> {
        let (action, description) = match self {
            Event::Created { kind, id, .. } => (CREATED, format!("{} {id} created", kind.label())),
            Event::Deleted { kind, id, .. } => (DELETED, format!("{} {id} deleted", kind.label())),
            Event::ChildDeleted { kind, id, .. } => (DELETED, format!("{} {id} deleted", kind.label())),
            Event::Adopted { .. }
            | Event::Tagged { .. }
            | Event::Vanished { .. }
            | Event::ArAdded { .. }
            | Event::ArRemoved { .. }
            | Event::UnmanagedFound { .. }
            | Event::UnmanagedRemoved { .. }
            | Event::HostActivating { .. }
            | Event::Refreshed => return None,
        };
        Some(Historic { action, description })
    }

    /// The log line, worded as OneForm words it where OneForm logs the same thing.
    pub fn log(&self) -> Option<Log> {
        let level = match self {
            Event::Vanished { .. } | Event::ChildDeleted { .. } => Level::Warn,
            Event::Created { .. }
            | Event::Adopted { .. }
            | Event::Tagged { .. }
            | Event::Deleted { .. }
            | Event::ArAdded { .. }
            | Event::ArRemoved { .. }
            | Event::UnmanagedFound { .. }
            | Event::UnmanagedRemoved { .. }
            | Event::HostActivating { .. }
            | Event::Refreshed => Level::Info,
        };
        let message = match self {
            Event::Created { .. }
            | Event::Adopted { .. }
            | Event::Tagged { .. }
            | Event::Deleted { .. }
            | Event::Vanished { .. } => self.object_message()?,
            Event::ChildDeleted { kind, id, parent, parent_id } => {
                let parent = parent.label();
                format!("{} {id} deleted (unmanaged, in {parent} {parent_id})", kind.label())
            }
            Event::ArAdded { network, ar_id, ipam, ip } => {
                let ip = ip.as_deref().unwrap_or("pending");
                format!("AR {ar_id} added to network {network} using {ipam} drivers (IP {ip})")
            }
            Event::ArRemoved { network, ar_id } => {
                format!("AR {ar_id} removed from network {network}")
            }
            Event::UnmanagedFound { kind, id, context } => {
                format!("Unmanaged resource found: {} {id} in {context}", kind.key())
            }
            Event::UnmanagedRemoved { kind, id, context } => {
                format!("Unmanaged resource removed: {} {id} in {context}", kind.key())
            }
            Event::HostActivating { id } => format!("Activating host {id}..."),
            Event::Refreshed => return None,
        };
        Some(Log { level, message })
    }

    /// The messages about one provision object (§7.1 wording).
    fn object_message(&self) -> Option<String> {
        let (label, message) = match self {
            Event::Created { kind, id, name } => (kind.label(), format!("'{name}' created with ID '{id}'")),
            Event::Adopted { kind, id, name } => (kind.label(), format!("'{name}' added from ID '{id}'")),
            Event::Tagged { kind, id, name } => (kind.label(), format!("'{name}' with ID '{id}' tagged with ONEFORM")),
            Event::Deleted { kind, id, name } => (kind.label(), format!("'{name}' with ID '{id}' deleted")),
            Event::Vanished { kind, id, name } => {
                let label = kind.label();
                return Some(format!(
                    "Skipping deletion of {label} '{name}' with ID '{id}' because it already deleted or does not exist"
                ));
            }
            Event::ChildDeleted { .. }
            | Event::ArAdded { .. }
            | Event::ArRemoved { .. }
            | Event::UnmanagedFound { .. }
            | Event::UnmanagedRemoved { .. }
            | Event::HostActivating { .. }
            | Event::Refreshed => return None,
        };
        Some(format!("{label} {message}"))
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.log() {
            Some(log) => f.write_str(&log.message),
            None => f.write_str("objects refreshed"),
        }
    }
}

/// Hands `event` and the objects to the caller's callback; a failure stops the operation.
pub(crate) fn report<P, E>(progress: &mut P, objects: &OneObjects, event: Event) -> Result<()>
where
    P: FnMut(&OneObjects, &Event) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    progress(objects, &event).map_err(|source| Error::Checkpoint { event: event.to_string(), source: source.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn historic_and_log_lines_match_oneform() {
        let created = Event::Created { kind: Kind::Network, id: 45, name: "priv (provision_5)".into() };
        assert_eq!(
            created.historic(),
            Some(Historic { action: "OpenNebula object created", description: "Network 45 created".into() })
        );
        assert_eq!(created.log().unwrap().message, "Network 'priv (provision_5)' created with ID '45'");
        let adopted = Event::Adopted { kind: Kind::Host, id: 21, name: "10.0.0.1".into() };
        assert_eq!(adopted.historic(), None);
        assert_eq!(adopted.log().unwrap().message, "Host '10.0.0.1' added from ID '21'");
        let child = Event::ChildDeleted { kind: ChildKind::Vm, id: 7, parent: Kind::Host, parent_id: 21 };
        assert_eq!(child.historic().unwrap().description, "Vm 7 deleted");
        assert_eq!(child.historic().unwrap().action, "OpenNebula object deleted");
        let found = Event::UnmanagedFound { kind: ChildKind::Image, id: 3, context: "provision datastores" };
        assert_eq!(found.log().unwrap().message, "Unmanaged resource found: image 3 in provision datastores");
    }

    #[test]
    fn a_failing_checkpoint_stops_with_the_event_named() {
        let mut progress = |_: &OneObjects, _: &Event| Err::<(), _>(std::fmt::Error);
        let event = Event::HostActivating { id: 4 };
        let error = report(&mut progress, &OneObjects::default(), event).unwrap_err();
        assert!(matches!(error, Error::Checkpoint { .. }));
        assert!(error.to_string().contains("Activating host 4..."), "{error}");
    }
}
