//! What to run next, as the command line says it. The service's messages name no command (the
//! REST API serves them to clients that have no `formwork`), so the CLI adds the `formwork`
//! commands that answer an error, read from the error's typed fields, never from its text.

use crate::service::{self, ErrorContext};

/// The commands that answer `e`, if there are any: a busy provision's, and a stage's that failed
/// or was cancelled (here, or on a server, which says so in the error's typed context).
pub fn hint(e: &service::Error) -> Option<String> {
    match e.context() {
        ErrorContext::Busy { provision_id: id, .. } => Some(format!(
            "wait with `formwork provision logs {id} --follow`, or stop it with `formwork provision cancel {id}`"
        )),
        ErrorContext::Upstream { provision_id: Some(id), stage: Some(_), .. }
        | ErrorContext::Cancelled { provision_id: Some(id), stage: Some(_) } => Some(format!(
            "`formwork provision retry {id}` runs the stage again; `formwork provision logs {id}` shows its output"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Error as OperationError;
    use crate::service::{Failure, State, System};

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
        // A server's failure names its provision and stage in its context: the same hint.
        let served = Failure { message: "boom".into(), provision_id: Some(6), stage: Some("APPLYING".into()) };
        let served = service::Error::Upstream { system: System::Terraform, source: Box::new(served) };
        assert!(super::hint(&served).unwrap().contains("retry 6"));
        assert_eq!(super::hint(&service::Error::invalid("x")), None);
    }
}
