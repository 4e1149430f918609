//! Request bodies: a JSON object, read up to the size limit, with each field taken out by
//! name and type so a wrong one is refused with a 400 that names it. An empty body is
//! OneForm's "Missing request body"; a body that is not a JSON object says so. Numbers are
//! read as OneForm's server reads them (Ruby's `to_i`: numeric strings too), except values
//! `to_i` would turn into a number nobody sent, which are refused.

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

    /// An integer, as a number or a numeric string (see [`whole`]).
    pub fn int(&self, field: &str) -> Result<Option<i64>, ApiError> {
        self.get(field).map(|v| int(field, v)).transpose()
    }

    /// A count (hosts, public IPs), as a number or a numeric string, 0 or more.
    pub fn count(&self, field: &str) -> Result<Option<u64>, ApiError> {
        self.get(field)
            .map(|v| {
                whole(v)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| ApiError::field(field, "must be a whole number, 0 or more"))
            })
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
    whole(v).ok_or_else(|| ApiError::field(field, "must be an integer"))
}

/// A whole number as OneForm's server reads one with Ruby's `to_i`: a JSON number (`2.0` is
/// 2) or a string of digits with an optional sign and surrounding blanks (`"2"`, FireEdge's
/// form fields). What `to_i` would read as something else (`"abc"` and `""` as 0, `"2x"` as
/// 2, `1.5` as 1) is `None`: the caller refuses it rather than act on a number nobody sent.
fn whole(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            // Exactly representable: |f| < 2^53 keeps the conversion lossless.
            (f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
        }),
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.strip_prefix('+').unwrap_or(t).parse().ok()
        }
        _ => None,
    }
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

    #[test]
    fn whole_numbers_are_read_as_ruby_to_i_reads_clean_ones_and_nothing_else() {
        for (v, n) in [
            (json!(2), 2),
            (json!(-3), -3),
            (json!(2.0), 2),
            (json!("2"), 2),
            (json!(" 7 "), 7),
            (json!("+4"), 4),
            (json!("-1"), -1),
            (json!("0012"), 12),
        ] {
            assert_eq!(whole(&v), Some(n), "{v}");
        }
        for v in [json!("abc"), json!(""), json!("2x"), json!("1.5"), json!(1.5), json!("+"), json!(true), json!([1])] {
            assert_eq!(whole(&v), None, "{v}: to_i would read a number nobody sent");
        }
        let b = body(json!({"nodes": "1", "amount": "-1", "bad": "two"}));
        assert_eq!(b.count("nodes").unwrap(), Some(1));
        assert_eq!(b.count("amount").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(b.int("bad").unwrap_err().context.unwrap(), json!({"bad": ["must be an integer"]}));
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
