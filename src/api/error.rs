//! Errors as OneForm answers them: `{"err_code": <status>, "message": "...", "context": {...}?}`,
//! with the status chosen from the service's typed error in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::service::auth::AuthError;
use crate::service::{Error, ErrorContext};

/// An error answer: a status, a message, and per-field messages when the input was wrong.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub context: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), context: None }
    }

    /// A bad field: 400 with the field named in `context`.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("`{field}` {message}"),
            context: Some(json!({ field: [message] })),
        }
    }

    /// The body OneForm sends.
    pub fn body(&self) -> Value {
        let mut out = Map::new();
        out.insert("err_code".into(), json!(self.status.as_u16()));
        out.insert("message".into(), json!(self.message));
        if let Some(context) = &self.context {
            out.insert("context".into(), context.clone());
        }
        Value::Object(out)
    }
}

/// The HTTP status of each outcome (OneForm's 405 for "not in this state" and "busy").
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Busy { .. } | Error::NotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::Conflict { .. } | Error::Cancelled { .. } => StatusCode::CONFLICT,
        Error::Upstream { .. } => StatusCode::BAD_GATEWAY,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        // OneForm's shapes where OneForm has one (the field map, a 405's data); formwork's
        // typed context for everything else.
        let context = match &e {
            Error::Invalid { fields, .. } => {
                Value::Object(fields.iter().map(|f| (f.field.clone(), json!(f.messages))).collect())
            }
            Error::NotAllowed { context: Some(context), .. } => context.clone(),
            _ => serde_json::to_value(e.context()).unwrap_or(Value::Null),
        };
        let status = status(&e);
        if status.is_server_error() {
            tracing::warn!(error = %e, "request failed");
        }
        ApiError { status, message: e.to_string(), context: Some(context) }
    }
}

impl AuthError {
    /// The HTTP status of a refused login: 401, 429 for a client that must wait, or 502 when
    /// OpenNebula could not say.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::Malformed { .. } | AuthError::Invalid => StatusCode::UNAUTHORIZED,
            AuthError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Unavailable { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for AuthError {
    /// The error body; a client that must wait is told how long in `Retry-After`.
    fn into_response(self) -> Response {
        let wait = match &self {
            AuthError::Throttled { wait } => Some(wait.as_secs().max(1)),
            _ => None,
        };
        let context = match &self {
            AuthError::Unavailable { .. } => {
                ErrorContext::Upstream { system: crate::service::System::OpenNebula, provision_id: None, stage: None }
            }
            _ => ErrorContext::Forbidden,
        };
        let context = serde_json::to_value(context).ok();
        let mut response = ApiError { status: self.status(), message: self.to_string(), context }.into_response();
        if let Some(seconds) = wait {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::FieldError;

    #[test]
    fn every_outcome_has_its_status_and_fields_become_context() {
        let cases = [
            (Error::not_found("x"), 404),
            (Error::invalid("x"), 400),
            (Error::not_allowed("x"), 405),
            (Error::Forbidden { message: "x".into() }, 403),
            (Error::Conflict { message: "x".into() }, 409),
            (Error::internal("x"), 500),
        ];
        for (e, code) in cases {
            assert_eq!(ApiError::from(e).status.as_u16(), code);
        }
        let e = Error::Invalid {
            message: "bad".into(),
            fields: vec![FieldError { field: "oneform_hosts".into(), messages: vec!["too big".into()] }],
        };
        let body = ApiError::from(e).body();
        assert_eq!(body, json!({"err_code": 400, "message": "bad", "context": {"oneform_hosts": ["too big"]}}));
        assert_eq!(
            ApiError::field("amount", "must be a number").body()["context"],
            json!({"amount": ["must be a number"]})
        );
    }
}
