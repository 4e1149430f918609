//! What the server's answers mean on this side: an error body `{err_code, message, context}`
//! back to the [`Error`] variant the server answered from (so exit codes match the local
//! ones), and operation records back to the service's [`Operation`] rows.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::service::{Error, FieldError, Operation, System};

/// OneForm's error body.
#[derive(Debug, Deserialize)]
struct Body {
    message: String,
    #[serde(default)]
    context: Option<Value>,
}

/// The [`Error`] a non-2xx answer stands for: 400 and 413 invalid (fields from `context`),
/// 401 and 403 forbidden, 404 not found, 405 not allowed or busy, 409 conflict, 502 the
/// tools or OpenNebula failed, other 5xx internal.
pub fn error(status: StatusCode, bytes: &[u8]) -> Error {
    let (message, context) = match serde_json::from_slice::<Body>(bytes) {
        Ok(body) => (body.message, body.context),
        Err(_) => (unexpected(status, bytes), None),
    };
    match status.as_u16() {
        400 | 413 | 422 => Error::Invalid { fields: fields(context.as_ref()), message },
        401 | 403 => Error::Forbidden { message },
        404 => Error::NotFound { message },
        405 => busy(&message, context.as_ref()).unwrap_or(Error::NotAllowed { message, context }),
        409 => Error::Conflict { message },
        502..=504 => Error::Upstream { system: system_of(&message), source: message.into() },
        _ => Error::internal(message),
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

/// A 405 that says another operation is running is [`Error::Busy`] (exit 3), with the
/// operation from `context.operation` if the server gave it, else read back from the message
/// the service writes for a busy provision.
fn busy(message: &str, context: Option<&Value>) -> Option<Error> {
    if !message.contains(" is busy") {
        return None;
    }
    let operation =
        context.and_then(|c| c.get("operation")).and_then(operation).or_else(|| from_busy_message(message))?;
    Some(Error::Busy { provision_id: operation.provision_id, operation: Box::new(operation) })
}

/// Reads `provision P is busy: operation O (KIND) is running in process PID since T; …`.
fn from_busy_message(message: &str) -> Option<Operation> {
    let rest = message.strip_prefix("provision ")?;
    let (provision_id, rest) = rest.split_once(" is busy: operation ")?;
    let (id, rest) = rest.split_once(" (")?;
    let (kind, rest) = rest.split_once(") is running in process ")?;
    let (pid, rest) = rest.split_once(" since ")?;
    let since: String = rest.chars().take_while(char::is_ascii_digit).collect();
    operation(&serde_json::json!({
        "id": id.parse::<i64>().ok()?,
        "provision_id": provision_id.parse::<i64>().ok()?,
        "kind": kind,
        "status": "running",
        "owner_pid": pid.parse::<i64>().ok()?,
        "created_time": since.parse::<i64>().ok()?,
    }))
}

/// An operation record as the server serves it (`GET /provisions/:id/operations`).
#[derive(Debug, Deserialize)]
struct Served {
    id: i64,
    provision_id: i64,
    kind: String,
    #[serde(default)]
    params: Value,
    status: String,
    #[serde(default)]
    owner_pid: i64,
    #[serde(default)]
    heartbeat_time: i64,
    #[serde(default)]
    cancel_requested: bool,
    #[serde(default)]
    created_time: i64,
    #[serde(default)]
    finished_time: Option<i64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    queued: bool,
    #[serde(default)]
    event: Option<crate::engine::Event>,
}

/// An operation record as the service's row; `None` if it is not one. Parameters the client
/// does not know are left out: the CLI shows only who runs what.
pub fn operation(value: &Value) -> Option<Operation> {
    let served: Served = serde_json::from_value(value.clone()).ok()?;
    Some(Operation {
        id: served.id,
        provision_id: served.provision_id,
        kind: served.kind,
        params: serde_json::from_value(served.params).unwrap_or_default(),
        status: crate::store::OperationStatus::parse(&served.status)?,
        owner_pid: served.owner_pid,
        // Who owns it on the server is the server's business; the token is not served.
        owner_token: String::new(),
        heartbeat_time: served.heartbeat_time,
        cancel_requested: served.cancel_requested,
        created_time: served.created_time,
        finished_time: served.finished_time,
        event: served.event,
        error: served.error,
        queued: served.queued,
    })
}

/// Which system a failure named (the stage in `provision N: STAGE failed: …`), for
/// [`Error::Upstream`]; nobody on this side branches on it, but it should not lie.
pub fn system_of(message: &str) -> System {
    let stage = message.split_once(": ").map_or(message, |(_, rest)| rest);
    let stage = stage.split([' ', ':']).next().unwrap_or("");
    match stage {
        "INIT" | "PLANNING" | "APPLYING" | "SCALING" | "DEPROVISIONING" => System::Terraform,
        "CONFIGURING_ONE" | "DEPROVISIONING_ONE" => System::OpenNebula,
        "CONFIGURING_PROVISION" => System::Ansible,
        _ if message.contains("OpenNebula") => System::OpenNebula,
        _ => System::Formwork,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: Value) -> Error {
        error(StatusCode::from_u16(status).unwrap(), body.to_string().as_bytes())
    }

    #[test]
    fn statuses_come_back_as_the_variants_they_were_answered_from() {
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
        assert!(matches!(answer(405, json!({"message": "provision 1 is RUNNING"})), Error::NotAllowed { .. }));
        assert!(matches!(answer(409, json!({"message": "changed"})), Error::Conflict { .. }));
        assert!(matches!(answer(500, json!({"message": "db"})), Error::Internal { .. }));
        let upstream = answer(502, json!({"message": "provision 3: CONFIGURING_PROVISION failed: boom"}));
        assert!(matches!(upstream, Error::Upstream { system: System::Ansible, .. }), "{upstream:?}");
        assert_eq!(upstream.to_string(), "provision 3: CONFIGURING_PROVISION failed: boom");
        let html = error(StatusCode::BAD_GATEWAY, b"<html>proxy down</html>");
        assert!(html.to_string().contains("HTTP 502 Bad Gateway: <html>proxy down"), "{html}");
    }

    #[test]
    fn a_busy_answer_exits_3_with_the_operation_read_back() {
        let message = "provision 4 is busy: operation 9 (scale) is running in process 77 since 1700000000; wait for it";
        let busy = answer(405, json!({"err_code": 405, "message": message}));
        let Error::Busy { provision_id, operation } = &busy else { panic!("{busy:?}") };
        assert_eq!((*provision_id, operation.id, operation.kind.as_str(), operation.owner_pid), (4, 9, "scale", 77));
        assert_eq!(busy.to_string().split(';').next(), message.split(';').next(), "shown as the server said it");
        assert_eq!(busy.exit_code(), crate::service::exit::BUSY);
        let op = json!({"id": 2, "provision_id": 5, "kind": "create", "status": "running", "owner_pid": 1, "created_time": 3});
        let from_context = answer(405, json!({"message": "provision 5 is busy", "context": {"operation": op}}));
        assert!(matches!(from_context, Error::Busy { provision_id: 5, .. }), "{from_context:?}");
    }
}
