//! The one error type of the service layer: a variant per outcome a caller branches on (the
//! CLI picks an exit code, the API an HTTP status), each with a message that names what is
//! wrong and what to do next. Lower modules keep their own errors; `From` impls here decide,
//! in one place, which outcome each of their variants is.

use super::wire::{ErrorContext, Failure, Operation};
use crate::engine::{self, System};
use crate::store::{self, OperationRow};
use crate::{driver, one, settings};

/// One field of a request that is wrong, with every reason it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub messages: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The driver, provider, provision, deployment or operation asked for does not exist.
    #[error("{message}")]
    NotFound { message: String },
    /// The request is wrong; `fields` lists every field error at once (may be empty when the
    /// request as a whole is wrong).
    #[error("{message}")]
    Invalid { message: String, fields: Vec<FieldError> },
    /// Another operation is running on the provision; nothing was done.
    #[error(
        "provision {provision_id} is busy: operation {} ({}) is running in process {} since {}; wait for it to end, or cancel it",
        operation.id, operation.kind, operation.owner_pid, operation.created_time
    )]
    Busy { provision_id: i64, operation: Box<Operation> },
    /// The request is valid but not in the state the object is in (OneForm's 405);
    /// `context` holds what stands in the way when it is data (e.g. unmanaged VMs).
    #[error("{message}")]
    NotAllowed { message: String, context: Option<serde_json::Value> },
    /// The caller may not do this.
    #[error("{message}")]
    Forbidden { message: String },
    /// The object changed under the request, or the change is already made.
    #[error("{message}")]
    Conflict { message: String },
    /// The operation was cancelled; the provision is in its stage's failure state.
    #[error("{source}")]
    Cancelled { source: engine::Error },
    /// OpenNebula, Terraform or Ansible failed; the cause is kept.
    #[error("{source}")]
    Upstream { system: System, source: Box<dyn std::error::Error + Send + Sync> },
    /// formwork itself could not do its part (database, files, settings).
    #[error("{source}")]
    Internal { source: Box<dyn std::error::Error + Send + Sync> },
    /// The database cannot be reached now (PostgreSQL down, restarting, or cut off); nothing
    /// was done, and the same request can be sent again.
    #[error("{message}")]
    Unavailable { message: String },
}

/// Exit codes, documented in README.md.
pub mod exit {
    /// The command did what was asked.
    pub const OK: i32 = 0;
    /// The command failed: bad input, a broken driver, an invalid value set, a failed stage.
    pub const FAILURE: i32 = 1;
    /// The command line itself was wrong (clap's own code).
    pub const USAGE: i32 = 2;
    /// Another operation is running on the provision; nothing was done.
    pub const BUSY: i32 = 3;
}

impl Error {
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::NotFound { message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid { message: message.into(), fields: Vec::new() }
    }

    pub fn not_allowed(message: impl Into<String>) -> Error {
        Error::NotAllowed { message: message.into(), context: None }
    }

    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Internal { source: source.into() }
    }

    /// Every field error of a value set, with a headline naming whose values they are.
    pub fn values(headline: String, errors: &driver::validate::Errors) -> Error {
        let fields = errors
            .iter()
            .map(|(field, messages)| FieldError { field: field.to_string(), messages: messages.to_vec() })
            .collect();
        Error::Invalid { message: format!("{headline}:\n{}", errors.to_string().trim_end()), fields }
    }

    /// Another operation (`running`) stands in the way on provision `provision_id`.
    pub fn busy(provision_id: i64, running: &OperationRow) -> Error {
        Error::Busy { provision_id, operation: Box::new(Operation::from_row(running, None)) }
    }

    /// The structured `context` of this outcome, for API clients to branch on (a field error's
    /// context is OneForm's field map instead, and a 405 with data keeps its data).
    pub fn context(&self) -> ErrorContext {
        match self {
            Error::NotFound { .. } => ErrorContext::NotFound,
            Error::Invalid { .. } => ErrorContext::Invalid,
            Error::NotAllowed { .. } => ErrorContext::NotAllowed,
            Error::Busy { provision_id, operation } => {
                ErrorContext::Busy { provision_id: *provision_id, operation: operation.clone() }
            }
            Error::Forbidden { .. } => ErrorContext::Forbidden,
            Error::Conflict { .. } => ErrorContext::Conflict,
            Error::Cancelled { source } => ErrorContext::Cancelled {
                provision_id: source.provision_id(),
                stage: source.stage().map(str::to_owned),
            },
            Error::Upstream { system, source } => {
                let (provision_id, stage) = if let Some(e) = source.downcast_ref::<engine::Error>() {
                    (e.provision_id(), e.stage().map(str::to_owned))
                } else if let Some(failure) = source.downcast_ref::<Failure>() {
                    (failure.provision_id, failure.stage.clone())
                } else {
                    (None, None)
                };
                ErrorContext::Upstream { system: *system, provision_id, stage }
            }
            Error::Internal { .. } => ErrorContext::Internal,
            Error::Unavailable { .. } => ErrorContext::Unavailable,
        }
    }

    /// The process exit code for this outcome; the API maps the same variants to statuses.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Busy { .. } => exit::BUSY,
            Error::NotFound { .. }
            | Error::Invalid { .. }
            | Error::NotAllowed { .. }
            | Error::Forbidden { .. }
            | Error::Conflict { .. }
            | Error::Cancelled { .. }
            | Error::Upstream { .. }
            | Error::Internal { .. }
            | Error::Unavailable { .. } => exit::FAILURE,
        }
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Error {
        match e {
            store::Error::NotFound { .. } => Error::not_found(e.to_string()),
            store::Error::Busy { provision_id, operation } => Error::busy(provision_id, &operation),
            store::Error::Conflict { .. } | store::Error::Stale { .. } | store::Error::Fenced { .. } => {
                Error::Conflict { message: e.to_string() }
            }
            store::Error::InUse { .. } => Error::not_allowed(e.to_string()),
            store::Error::Unreachable { .. } => Error::Unavailable { message: format!("{e}; try again shortly") },
            store::Error::Sql(ref sql) if sql.is_connection_lost() => Error::Unavailable {
                message: format!("the database could not be reached ({sql}); nothing was done, try again shortly"),
            },
            store::Error::Open { .. }
            | store::Error::Corrupt { .. }
            | store::Error::Sql(_)
            | store::Error::Secrets(_) => Error::internal(e),
        }
    }
}

impl From<driver::Error> for Error {
    fn from(e: driver::Error) -> Error {
        match e {
            driver::Error::NotFound { .. } => Error::not_found(e.to_string()),
            // OneForm answers 400 for a deployment the driver lacks and for a driver that is
            // not ENABLED (§2.12): the request names something it cannot use.
            driver::Error::InvalidName { .. }
            | driver::Error::DeploymentNeeded { .. }
            | driver::Error::UnknownDeployment { .. }
            | driver::Error::NotEnabled { .. } => Error::invalid(e.to_string()),
            driver::Error::Broken { .. } => Error::not_allowed(e.to_string()),
            driver::Error::StateChange(_) => Error::Conflict { message: e.to_string() },
            driver::Error::DriversDir { .. } | driver::Error::Io { .. } => Error::internal(e),
        }
    }
}

impl From<engine::Error> for Error {
    fn from(e: engine::Error) -> Error {
        match e {
            engine::Error::Store(s) => s.into(),
            engine::Error::Illegal { .. } => Error::not_allowed(e.to_string()),
            engine::Error::Abandoned { .. } => Error::Conflict { message: e.to_string() },
            engine::Error::Cancelled { .. } | engine::Error::NotStarted { .. } => Error::Cancelled { source: e },
            engine::Error::StageFailed { system, .. } => Error::Upstream { system, source: Box::new(e) },
        }
    }
}

impl From<one::Error> for Error {
    fn from(e: one::Error) -> Error {
        match e {
            one::Error::Unmanaged { .. } => Error::not_allowed(e.to_string()),
            one::Error::InvalidResourceTypes { .. }
            | one::Error::InvalidSelection { .. }
            | one::Error::NotInProvision { .. }
            | one::Error::NoElasticNetwork => Error::invalid(e.to_string()),
            _ => Error::Upstream { system: System::OpenNebula, source: Box::new(e) },
        }
    }
}

impl From<settings::Error> for Error {
    fn from(e: settings::Error) -> Error {
        Error::invalid(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::internal(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lower_error_lands_on_the_outcome_a_caller_branches_on() {
        let missing = Error::from(store::Error::NotFound { what: "provision", id: 9 });
        assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
        assert_eq!(missing.to_string(), "provision 9 does not exist");
        let in_use = Error::from(store::Error::InUse { provider_id: 1, provisions: vec![2] });
        assert!(matches!(in_use, Error::NotAllowed { .. }), "{in_use:?}");
        let driver = Error::from(driver::Error::NotFound { name: "x".into(), hint: String::new() });
        assert!(matches!(driver, Error::NotFound { .. }), "{driver:?}");
        let failed = Error::from(engine::Error::StageFailed {
            provision_id: 1,
            stage: "APPLYING",
            system: System::Terraform,
            message: "boom".into(),
        });
        assert!(matches!(failed, Error::Upstream { system: System::Terraform, .. }), "{failed:?}");
        assert!(std::error::Error::source(&failed).is_some(), "the cause is kept");
        assert_eq!(failed.exit_code(), exit::FAILURE);
        let stage = Some("APPLYING".to_string());
        let context = ErrorContext::Upstream { system: System::Terraform, provision_id: Some(1), stage: stage.clone() };
        assert_eq!(failed.context(), context, "the context names the provision and the stage");
        let cancelled = Error::from(engine::Error::Cancelled {
            provision_id: 5,
            stage: "APPLYING",
            state: engine::State::ApplyingFailure,
        });
        assert_eq!(cancelled.context(), ErrorContext::Cancelled { provision_id: Some(5), stage });
        let withdrawn = Error::from(engine::Error::NotStarted {
            provision_id: 5,
            operation: 2,
            state: engine::State::Running,
            reason: "was cancelled".into(),
        });
        assert_eq!(withdrawn.context(), ErrorContext::Cancelled { provision_id: Some(5), stage: None }, "nothing ran");
    }

    #[test]
    fn value_errors_keep_every_field() {
        let mut errors = driver::validate::Errors::default();
        errors.add("a", "is missing".into());
        errors.add("b", "must be a number".into());
        errors.add("b", "should be ≤ 3".into());
        let Error::Invalid { message, fields } = Error::values("values for sim / x are wrong".into(), &errors) else {
            panic!("not Invalid")
        };
        assert!(message.starts_with("values for sim / x are wrong:\n  a: is missing"), "{message}");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].messages, vec!["must be a number".to_string(), "should be ≤ 3".to_string()]);
    }
}
