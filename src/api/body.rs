//! Request bodies: a JSON object, read up to the size limit, with each field taken out by
//! name and type so a wrong one is refused with a 400 that names it. An empty body is
//! OneForm's "Missing request body"; a body that is not a JSON object says so.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::State;
use super::error::ApiError;

/// A request's JSON object.
#[derive(Debug, Default)]
pub struct Body(pub Map<String, Value>);

impl FromRequest<State> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &State) -> Result<Body, ApiError> {
        let limit = state.service.settings().server.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is larger than {limit} bytes"))
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "Missing request body"));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Body(map)),
            Ok(_) => Err(ApiError::new(StatusCode::BAD_REQUEST, "the request body must be a JSON object")),
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("the request body is not valid JSON: {e}"))),
        }
    }
}

impl Body {
    /// The field's value, if present and not null.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    pub fn required(&self, field: &str) -> Result<&Value, ApiError> {
        self.get(field).ok_or_else(|| ApiError::field(field, format!("is missing: Missing `{field}` attribute")))
    }

    pub fn string(&self, field: &str) -> Result<Option<String>, ApiError> {
        self.get(field)
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| ApiError::field(field, "must be a string")))
            .transpose()
    }

    pub fn required_string(&self, field: &str) -> Result<String, ApiError> {
        self.required(field)?;
        Ok(self.string(field)?.unwrap_or_default())
    }

    /// An integer; OneForm's clients send ids both as numbers and as strings.
    pub fn int(&self, field: &str) -> Result<Option<i64>, ApiError> {
        self.get(field).map(|v| int(field, v)).transpose()
    }

    pub fn count(&self, field: &str) -> Result<Option<u64>, ApiError> {
        self.get(field)
            .map(|v| v.as_u64().ok_or_else(|| ApiError::field(field, "must be a whole number, 0 or more")))
            .transpose()
    }

    pub fn bool(&self, field: &str) -> Result<bool, ApiError> {
        match self.get(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(_) => Err(ApiError::field(field, "must be true or false")),
        }
    }

    /// A JSON object (values, connection, resources); missing is empty.
    pub fn object(&self, field: &str) -> Result<Map<String, Value>, ApiError> {
        match self.get(field) {
            None => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(_) => Err(ApiError::field(field, "must be a JSON object")),
        }
    }

    /// A list of ids.
    pub fn ids(&self, field: &str) -> Result<Vec<i64>, ApiError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|v| int(field, v)).collect(),
            Some(_) => Err(ApiError::field(field, "must be a list of ids")),
        }
    }

    pub fn strings(&self, field: &str) -> Result<Vec<String>, ApiError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| ApiError::field(field, "must be a list of strings"))
                })
                .collect(),
            Some(_) => Err(ApiError::field(field, "must be a list of strings")),
        }
    }
}

fn int(field: &str, v: &Value) -> Result<i64, ApiError> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| ApiError::field(field, "must be an integer"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(v: Value) -> Body {
        Body(v.as_object().unwrap().clone())
    }

    #[test]
    fn fields_are_read_by_type_and_wrong_ones_are_named() {
        let b = body(json!({"amount": 2, "id": "7", "ids": [1, "2"], "force": true, "name": 3, "bad": [true]}));
        assert_eq!(b.count("amount").unwrap(), Some(2));
        assert_eq!(b.int("id").unwrap(), Some(7));
        assert_eq!(b.ids("ids").unwrap(), vec![1, 2]);
        assert!(b.bool("force").unwrap());
        assert!(!b.bool("absent").unwrap());
        for e in [b.string("name").unwrap_err(), b.ids("bad").unwrap_err(), b.required("nope").unwrap_err()] {
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.context.as_ref().unwrap().as_object().unwrap().len(), 1, "{e:?}");
        }
        assert!(b.required_string("nope").unwrap_err().message.contains("Missing `nope` attribute"));
    }
}

/// The `{id}` of a route; anything but an integer is a 400 in OneForm's error shape (axum's
/// own rejection would be plain text).
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Id, ApiError> {
        let axum::extract::Path(text) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        text.parse().map(Id).map_err(|_| ApiError::field("id", format!("'{text}' is not an id (a whole number)")))
    }
}
