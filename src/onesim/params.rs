//! A call's parameters read the way oned reads them (`paramList.getInt(i)`, `getString`,
//! `getBoolean`): a missing parameter or one of the wrong XML-RPC type is an XML-RPC fault with
//! xmlrpc-c's type-error code (-501), raised before the call does anything. Parameters beyond
//! those a method reads are ignored, as xmlrpc-c ignores them.

use crate::one::xmlrpc::Value;

use super::answer::Refusal;

pub struct Params<'a>(pub &'a [Value]);

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Int(_) => "integer",
        Value::Bool(_) => "boolean",
        Value::String(_) => "string",
        Value::Double(_) => "double",
        Value::Array(_) => "array",
        Value::Struct(_) => "struct",
        Value::Nil => "nil",
    }
}

impl<'a> Params<'a> {
    fn get(&self, at: usize) -> Result<&'a Value, Refusal> {
        self.0.get(at).ok_or_else(|| {
            Refusal::type_fault(format!(
                "Not enough parameters: the method reads parameter {at} (counting the session as 0), the call has {}",
                self.0.len()
            ))
        })
    }

    fn wrong(at: usize, value: &Value, wanted: &str) -> Refusal {
        Refusal::type_fault(format!("Type mismatch: parameter {at} is {}, it must be {wanted}", type_name(value)))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn int(&self, at: usize) -> Result<i64, Refusal> {
        match self.get(at)? {
            // xmlrpc-c's getInt is 32 bits: an i8 beyond that is a type error there too.
            Value::Int(n) if i32::try_from(*n).is_ok() => Ok(*n),
            other => Err(Params::wrong(at, other, "an integer")),
        }
    }

    pub fn string(&self, at: usize) -> Result<&'a str, Refusal> {
        match self.get(at)? {
            Value::String(s) => Ok(s),
            other => Err(Params::wrong(at, other, "a string")),
        }
    }

    pub fn boolean(&self, at: usize) -> Result<bool, Refusal> {
        match self.get(at)? {
            Value::Bool(b) => Ok(*b),
            other => Err(Params::wrong(at, other, "a boolean")),
        }
    }

    /// An optional trailing boolean (`info`'s `decrypt`, `rm_ar`'s `force`).
    pub fn opt_boolean(&self, at: usize) -> Result<Option<bool>, Refusal> {
        if at < self.len() { self.boolean(at).map(Some) } else { Ok(None) }
    }

    /// An optional trailing integer (`update`'s type, which oned defaults to replace).
    pub fn opt_int(&self, at: usize) -> Result<Option<i64>, Refusal> {
        if at < self.len() { self.int(at).map(Some) } else { Ok(None) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::answer::FAULT_TYPE;
    use super::*;

    #[test]
    fn wrong_or_missing_parameters_are_type_faults() {
        let values = [Value::String("s".into()), Value::Int(3), Value::Bool(true), Value::Int(1 << 40)];
        let p = Params(&values);
        assert_eq!((p.string(0).unwrap(), p.int(1).unwrap(), p.boolean(2).unwrap()), ("s", 3, true));
        for refusal in [p.int(0).unwrap_err(), p.string(1).unwrap_err(), p.int(3).unwrap_err(), p.int(9).unwrap_err()] {
            assert!(matches!(refusal, Refusal::Fault { code: FAULT_TYPE, .. }), "{refusal:?}");
        }
        assert_eq!((p.opt_boolean(2).unwrap(), p.opt_boolean(7).unwrap()), (Some(true), None));
        assert!(p.opt_int(2).is_err());
    }
}
