//! What onesim answers, in oned's words: the success array `[true, result, 0]`, the failure
//! array `[false, "[method] message", code, object id]` with oned's message for each code
//! (`Request::failure_message`), and the XML-RPC faults xmlrpc-c sends before a call reaches
//! oned (malformed request, unknown method, wrong parameters).

use crate::one::xmlrpc::Value;
use crate::one::{Code, Error};

/// xmlrpc-c's fault codes.
pub const FAULT_TYPE: i64 = -501;
pub const FAULT_PARSE: i64 = -503;
pub const FAULT_NO_SUCH_METHOD: i64 = -506;

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A `<methodResponse>` whose value is oned's array (success or failure).
    Answer(Value),
    /// An XML-RPC `<fault>`.
    Fault { code: i64, message: String },
    /// No answer: the connection is closed (an injected fault).
    Drop,
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// oned's failure array; `message` is already complete (`[method] …`).
    One { code: Code, message: String, id: i64 },
    /// A fault from the XML-RPC layer.
    Fault { code: i64, message: String },
}

pub type Answer = Result<Value, Refusal>;

impl Refusal {
    /// A failure of `method` with oned's wording for `code`; `object` names the type in
    /// NO_EXISTS and ALLOCATE messages (`cluster`, `virtual network`).
    pub fn one(method: &str, code: Code, object: &str, id: i64, detail: &str) -> Refusal {
        let body = match code {
            Code::Authentication => "User couldn't be authenticated, aborting call.".to_string(),
            Code::Authorization => format!("User not authorized to perform action on {object}. {detail}"),
            Code::NoExists if detail.is_empty() => format!("Error getting {object} [{id}]."),
            Code::Allocate => format!("Error allocating a new {object}. {detail}"),
            Code::Locked => format!("The resource {object} is locked. [{id}]."),
            Code::NoExists | Code::Action | Code::XmlRpcApi | Code::Internal | Code::Transport | Code::Timeout => {
                detail.to_string()
            }
        };
        Refusal::One { code, message: format!("[{method}] {}", body.trim_end()), id }
    }

    /// A [`crate::one::FakeOne`] error as oned would answer it for `method` on object `id`.
    pub fn from_error(method: &str, object: &str, id: i64, error: &Error) -> Refusal {
        match raw(error) {
            Some((code, detail)) => Refusal::one(method, code, object, id, detail),
            None => Refusal::one(method, Code::Internal, object, id, &error.to_string()),
        }
    }

    pub fn type_fault(message: impl Into<String>) -> Refusal {
        Refusal::Fault { code: FAULT_TYPE, message: message.into() }
    }
}

/// The code and oned's own message inside an OpenNebula error.
fn raw(error: &Error) -> Option<(Code, &str)> {
    Some((error.code()?, error.message()?))
}

/// `[true, id, 0]`.
pub fn id(id: i64) -> Answer {
    Ok(Value::Int(id))
}

/// `[true, "<XML…>", 0]`.
pub fn xml(xml: String) -> Answer {
    Ok(Value::String(xml))
}

/// The reply for a finished call.
pub fn reply(answer: Answer) -> Reply {
    match answer {
        Ok(value) => Reply::Answer(Value::Array(vec![Value::Bool(true), value, Value::Int(0)])),
        Err(Refusal::One { code, message, id }) => Reply::Answer(Value::Array(vec![
            Value::Bool(false),
            Value::String(message),
            Value::Int(code.number()),
            Value::Int(id),
        ])),
        Err(Refusal::Fault { code, message }) => Reply::Fault { code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_oneds_wording_code_and_object() {
        let missing = Code::NoExists.error("one.host.info", "host 3", "Error getting host [3].");
        let refusal = Refusal::from_error("one.host.info", "host", 3, &missing);
        let expected =
            Refusal::One { code: Code::NoExists, message: "[one.host.info] Error getting host [3].".into(), id: 3 };
        assert_eq!(refusal, expected);
        let taken =
            Code::Allocate.error("one.cluster.allocate", "cluster 'a'", "NAME is already taken by CLUSTER 100.");
        let Refusal::One { message, .. } = Refusal::from_error("one.cluster.allocate", "cluster", -1, &taken) else {
            panic!("not a failure array");
        };
        assert_eq!(
            message,
            "[one.cluster.allocate] Error allocating a new cluster. NAME is already taken by CLUSTER 100."
        );
        let Reply::Answer(Value::Array(items)) = reply(Err(Refusal::one("one.x", Code::Action, "x", 4, "no"))) else {
            panic!("not an array");
        };
        assert_eq!(items, [Value::Bool(false), Value::String("[one.x] no".into()), Value::Int(0x800), Value::Int(4)]);
    }
}
