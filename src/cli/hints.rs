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
    use crate::service::{Failure, System};

    /// A stage's failure as the error's context carries it (the service's own errors give the
    /// same context: `service::error`'s tests).
    fn stage_failed(provision_id: i64, stage: Option<&str>) -> service::Error {
        let failure =
            Failure { message: "boom".into(), provision_id: Some(provision_id), stage: stage.map(Into::into) };
        service::Error::Upstream { system: System::Terraform, source: Box::new(failure) }
    }

    #[test]
    fn a_stopped_stage_gets_retry_and_logs_and_other_errors_nothing() {
        let hint = hint(&stage_failed(4, Some("APPLYING"))).unwrap();
        assert!(
            hint.contains("`formwork provision retry 4`") && hint.contains("`formwork provision logs 4`"),
            "{hint}"
        );
        // A failure in no stage (OpenNebula answering a read, a public-IP change) names nothing.
        assert_eq!(super::hint(&stage_failed(5, None)), None);
        let upstream = service::Error::Upstream { system: System::OpenNebula, source: "refused".into() };
        assert_eq!(super::hint(&upstream), None);
        assert_eq!(super::hint(&service::Error::invalid("x")), None);
    }
}
