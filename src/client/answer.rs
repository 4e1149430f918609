//! What the server's answers mean on this side: an error body `{err_code, message, context}`
//! back to the [`Error`] variant the server answered from, read from its typed `context`
//! ([`ErrorContext`]) so exit codes match the local ones whatever the message says; a server
//! that sends no such context (OneForm's own) is read by its HTTP status.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::service::{Error, ErrorContext, Failure, FieldError, System};

/// OneForm's error body.
#[derive(Debug, Deserialize)]
struct Body {
    message: String,
    #[serde(default)]
    context: Option<Value>,
}

/// The [`Error`] a non-2xx answer stands for. With formwork's typed context, the variant it
/// names; else by status: 400 and 413 invalid (fields from `context`), 401 and 403 forbidden,
/// 404 not found, 405 not allowed, 409 conflict, 502 OpenNebula failed (as OneForm answers its
/// RPC errors), other 5xx internal.
pub fn error(status: StatusCode, bytes: &[u8]) -> Error {
    let (message, context) = match serde_json::from_slice::<Body>(bytes) {
        Ok(body) => (body.message, body.context),
        Err(_) => (unexpected(status, bytes), None),
    };
    let typed = context.as_ref().and_then(|c| ErrorContext::deserialize(c).ok());
    match (typed, status.as_u16()) {
        (_, 400 | 413 | 422) => Error::Invalid { fields: fields(context.as_ref()), message },
        (Some(typed), _) => from_context(typed, message),
        (None, 401 | 403) => Error::Forbidden { message },
        (None, 404) => Error::NotFound { message },
        (None, 405) => Error::NotAllowed { message, context },
        (None, 409) => Error::Conflict { message },
        (None, 502..=504) => Error::Upstream { system: System::OpenNebula, source: message.into() },
        (None, _) => Error::internal(message),
    }
}

/// The variant a typed context names.
fn from_context(typed: ErrorContext, message: String) -> Error {
    match typed {
        ErrorContext::NotFound => Error::NotFound { message },
        ErrorContext::Invalid => Error::Invalid { message, fields: Vec::new() },
        ErrorContext::Busy { provision_id, operation } => Error::Busy { provision_id, operation },
        ErrorContext::NotAllowed => Error::NotAllowed { message, context: None },
        ErrorContext::Forbidden => Error::Forbidden { message },
        ErrorContext::Conflict => Error::Conflict { message },
        // A cancel is the operation's own end; across the API it is the operation that ended so.
        ErrorContext::Cancelled { provision_id, stage } => {
            Error::Upstream { system: System::Formwork, source: Box::new(Failure { message, provision_id, stage }) }
        }
        ErrorContext::Upstream { system, provision_id, stage } => {
            Error::Upstream { system, source: Box::new(Failure { message, provision_id, stage }) }
        }
        ErrorContext::Internal => Error::internal(message),
        ErrorContext::Unavailable => Error::Unavailable { message },
    }
}

/// A non-JSON error answer (a proxy's page, a server that is not formwork's).
fn unexpected(status: StatusCode, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        format!("the server answered HTTP {status}")
    } else {
        format!("the server answered HTTP {status}: {text}")
    }
}

/// Field errors from `context` (`{"field": ["msg", …]}`, or one message as a string).
fn fields(context: Option<&Value>) -> Vec<FieldError> {
    let Some(Value::Object(map)) = context else { return Vec::new() };
    map.iter()
        .filter_map(|(field, value)| {
            let messages: Vec<String> = match value {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect(),
                _ => return None,
            };
            Some(FieldError { field: field.clone(), messages })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: Value) -> Error {
        error(StatusCode::from_u16(status).unwrap(), body.to_string().as_bytes())
    }

    #[test]
    fn a_server_without_typed_context_is_read_by_status() {
        let invalid = answer(
            400,
            json!({"err_code": 400, "message": "values are wrong", "context": {"a": ["is missing"], "b": "too big"}}),
        );
        let Error::Invalid { message, fields } = &invalid else { panic!("{invalid:?}") };
        assert_eq!(message, "values are wrong");
        assert_eq!(
            fields,
            &[
                FieldError { field: "a".into(), messages: vec!["is missing".into()] },
                FieldError { field: "b".into(), messages: vec!["too big".into()] },
            ]
        );
        assert!(matches!(answer(404, json!({"message": "no"})), Error::NotFound { .. }));
        assert!(matches!(answer(401, json!({"message": "Invalid credentials"})), Error::Forbidden { .. }));
        assert!(matches!(answer(403, json!({"message": "not oneadmin"})), Error::Forbidden { .. }));
        assert!(matches!(answer(405, json!({"message": "provision 1 is busy"})), Error::NotAllowed { .. }));
        assert!(matches!(answer(409, json!({"message": "changed"})), Error::Conflict { .. }));
        assert!(matches!(answer(500, json!({"message": "db"})), Error::Internal { .. }));
        let rpc = answer(502, json!({"message": "[one.host.info] Error getting host 3"}));
        assert!(matches!(rpc, Error::Upstream { system: System::OpenNebula, .. }), "{rpc:?}");
        let html = error(StatusCode::BAD_GATEWAY, b"<html>proxy down</html>");
        assert!(html.to_string().contains("HTTP 502 Bad Gateway: <html>proxy down"), "{html}");
    }

    #[test]
    fn typed_context_decides_the_variant_whatever_the_message_says() {
        let op = json!({"id": 9, "provision_id": 4, "kind": "scale", "status": "running", "queued": false,
                        "cancel_requested": false, "started": true, "owner_pid": 77, "created_time": 1700000000,
                        "heartbeat_time": 1700000001, "finished_time": null, "error": null, "stage": null, "system": null});
        let busy = answer(
            405,
            json!({"err_code": 405, "message": "la provision est occupée",
                                      "context": {"error": "busy", "provision_id": 4, "operation": op}}),
        );
        let Error::Busy { provision_id, operation } = &busy else { panic!("{busy:?}") };
        assert_eq!((*provision_id, operation.id, operation.kind.as_str(), operation.owner_pid), (4, 9, "scale", 77));
        assert_eq!(busy.exit_code(), crate::service::exit::BUSY);
        let failed = answer(
            502,
            json!({"message": "quelque chose", "context": {"error": "upstream", "system": "ansible",
                                                                              "provision_id": 3, "stage": "CONFIGURING_PROVISION"}}),
        );
        assert!(matches!(failed, Error::Upstream { system: System::Ansible, .. }), "{failed:?}");
        assert_eq!(failed.to_string(), "quelque chose", "shown as the server said it");
        let context = ErrorContext::Upstream {
            system: System::Ansible,
            provision_id: Some(3),
            stage: Some("CONFIGURING_PROVISION".into()),
        };
        assert_eq!(failed.context(), context, "this side knows what the server knew");
        let missing = answer(500, json!({"message": "x", "context": {"error": "not_found"}}));
        assert!(matches!(missing, Error::NotFound { .. }), "the context wins over the status: {missing:?}");
        let unmanaged = answer(405, json!({"message": "x", "context": {"hosts": [1]}}));
        let Error::NotAllowed { context: Some(context), .. } = &unmanaged else { panic!("{unmanaged:?}") };
        assert_eq!(context["hosts"], json!([1]), "OneForm's data context is kept");
    }
}
