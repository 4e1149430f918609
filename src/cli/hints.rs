//! What to run next, as the command line says it. The service's messages name no command (the
//! REST API serves them to clients that have no `formwork`), so the CLI adds the `formwork`
//! commands that answer an error, read from the error's typed fields, never from its text.

use crate::service::{self, OperationError};

/// The commands that answer `e`, if there are any.
pub fn hint(e: &service::Error) -> Option<String> {
    match e {
        service::Error::Busy { provision_id: id, .. } => Some(format!(
            "wait with `formwork provision logs {id} --follow`, or stop it with `formwork provision cancel {id}`"
        )),
        service::Error::Upstream { .. } | service::Error::Cancelled { .. } => {
            let id = stopped_stage(e)?;
            Some(format!(
                "`formwork provision retry {id}` runs the stage again; `formwork provision logs {id}` shows its output"
            ))
        }
        service::Error::NotFound { .. }
        | service::Error::Invalid { .. }
        | service::Error::NotAllowed { .. }
        | service::Error::Forbidden { .. }
        | service::Error::Conflict { .. }
        | service::Error::Internal { .. } => None,
    }
}

/// The provision whose stage failed or was cancelled, when `e` is that.
fn stopped_stage(e: &service::Error) -> Option<i64> {
    match std::error::Error::source(e)?.downcast_ref::<OperationError>()? {
        OperationError::StageFailed { provision_id, .. } | OperationError::Cancelled { provision_id, .. } => {
            Some(*provision_id)
        }
        OperationError::Store(_) | OperationError::Illegal { .. } | OperationError::NotStarted { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{State, System};

    #[test]
    fn a_stopped_stage_gets_retry_and_logs_and_other_errors_nothing() {
        let failed = service::Error::from(OperationError::StageFailed {
            provision_id: 4,
            stage: "APPLYING",
            system: System::Terraform,
            message: "boom".into(),
        });
        let hint = hint(&failed).unwrap();
        assert!(
            hint.contains("`formwork provision retry 4`") && hint.contains("`formwork provision logs 4`"),
            "{hint}"
        );
        let cancelled = service::Error::from(OperationError::Cancelled {
            provision_id: 5,
            stage: "PLANNING",
            state: State::PlanningFailure,
        });
        assert!(super::hint(&cancelled).unwrap().contains("retry 5"));
        // An upstream error that is no stage's (OpenNebula answering a read) names nothing.
        let upstream = service::Error::Upstream { system: System::OpenNebula, source: "refused".into() };
        assert_eq!(super::hint(&upstream), None);
        assert_eq!(super::hint(&service::Error::invalid("x")), None);
    }
}
