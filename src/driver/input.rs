//! The user-input model shared by connection inputs (`provider.tf`), provision inputs
//! (`variables.tf`) and deployment inputs (`.j2` metadata): the OneForm JSON shape of an input,
//! its base type, and its `match` rule compiled once so validating values is cheap.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a sensitive value is shown as, everywhere formwork shows values.
pub const REDACTED: &str = "__redacted__";

/// The input definitions stored in a provider or provision body (its `user_inputs`), as they
/// are: enough to redact and mask. [`prepared`] makes them ready to validate.
pub fn stored(user_inputs: &Value) -> Vec<Input> {
    Vec::<Input>::deserialize(user_inputs).unwrap_or_default()
}

/// Stored inputs ready to validate: each prepared when its definition still compiles. One that
/// does not is kept, so validating it reports the problem.
pub fn prepared(user_inputs: &Value) -> Vec<Input> {
    let mut inputs = stored(user_inputs);
    for input in &mut inputs {
        let _ = input.prepare();
    }
    inputs
}

/// The names of the sensitive inputs: the one rule for which values are redacted, masked and
/// sealed in the database (`crate::secrets`).
pub fn sensitive_names(inputs: &[Input]) -> impl Iterator<Item = &str> {
    inputs.iter().filter(|i| i.is_sensitive()).map(|i| i.name.as_str())
}

/// A copy of `values` with every sensitive input's value replaced by [`REDACTED`].
pub fn redacted(inputs: &[Input], values: &Map<String, Value>) -> Map<String, Value> {
    let mut out = values.clone();
    for name in sensitive_names(inputs) {
        if let Some(v) = out.get_mut(name) {
            *v = Value::String(REDACTED.into());
        }
    }
    out
}

/// A provider body's connection values (unredacted) and the sensitive ones as text, to mask.
pub fn connection(provider_body: &Value) -> (Map<String, Value>, Vec<String>) {
    let values = provider_body["connection"].as_object().cloned().unwrap_or_default();
    let secrets = sensitive_texts(&stored(&provider_body["user_inputs"]), &values);
    (values, secrets)
}

/// A provider body's connection values with the sensitive ones as [`REDACTED`]: what
/// templates and callers without `include_sensitive` see.
pub fn shown_connection(provider_body: &Value) -> Map<String, Value> {
    let values = provider_body["connection"].as_object().cloned().unwrap_or_default();
    redacted(&stored(&provider_body["user_inputs"]), &values)
}

/// The values of the sensitive inputs as text, to mask in everything a tool prints.
pub fn sensitive_texts(inputs: &[Input], values: &Map<String, Value>) -> Vec<String> {
    sensitive_names(inputs).filter_map(|name| values.get(name)).map(ruby_to_s).collect()
}

/// One user input, serialised exactly as OneForm serves it (`name`, `description`, `type`,
/// `default`, `mandatory`, `sensitive`, `match`; absent keys are omitted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The type as text, lower-cased, e.g. `map(string)`; OneForm validates on its base.
    #[serde(rename = "type", default)]
    pub type_text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Optional because deployment metadata may leave it out and OneForm echoes it as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandatory: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_rule: Option<Value>,
    /// Keys OneForm does not interpret but keeps (deployment metadata may carry any).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The compiled form of `type` and `match`, filled by [`Input::prepare`].
    #[serde(skip)]
    pub compiled: Option<Compiled>,
}

/// What validation needs from an input, derived once from its text fields.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub base: BaseType,
    pub rule: Option<Rule>,
}

/// The base types OneForm accepts (`schema.rb`: the type lower-cased, parenthesised part removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseType {
    String,
    Number,
    Bool,
    List,
    Tuple,
    Map,
    Object,
}

/// A `validators.tf` rule, checked for shape when the driver loads.
#[derive(Debug, Clone)]
pub enum Rule {
    List(Vec<Value>),
    Number { min: Option<f64>, max: Option<f64> },
    String { pattern: String, regex: Box<fancy_regex::Regex> },
    Map { grouped_by: String, groups: Map<String, Value> },
}

impl BaseType {
    /// Parses a type text such as `list(string)` the way OneForm does; `None` for types OneForm
    /// cannot validate (`set(...)`, `any`, an empty type).
    pub fn parse(type_text: &str) -> Option<BaseType> {
        let lower = type_text.trim().to_ascii_lowercase();
        let base = lower.split('(').next().unwrap_or("").trim();
        Some(match base {
            "string" => BaseType::String,
            "number" => BaseType::Number,
            "bool" => BaseType::Bool,
            "list" => BaseType::List,
            "tuple" => BaseType::Tuple,
            "map" => BaseType::Map,
            "object" => BaseType::Object,
            _ => return None,
        })
    }

    pub fn is_list_like(self) -> bool {
        matches!(self, BaseType::List | BaseType::Tuple)
    }

    pub fn is_map_like(self) -> bool {
        matches!(self, BaseType::Map | BaseType::Object)
    }
}

impl fmt::Display for BaseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            BaseType::String => "string",
            BaseType::Number => "number",
            BaseType::Bool => "bool",
            BaseType::List => "list",
            BaseType::Tuple => "tuple",
            BaseType::Map => "map",
            BaseType::Object => "object",
        };
        f.write_str(text)
    }
}

impl Input {
    /// Compiles `type` and `match`; the error says what is wrong with this input's definition.
    pub fn prepare(&mut self) -> Result<(), String> {
        let base = BaseType::parse(&self.type_text).ok_or_else(|| {
            let what =
                if self.type_text.is_empty() { "no type".to_string() } else { format!("type '{}'", self.type_text) };
            format!(
                "input '{}' has {what}: give it one of string, number, bool, list(...), \
                 tuple(...), map(...) or object(...)",
                self.name
            )
        })?;
        let rule = match &self.match_rule {
            None => None,
            Some(spec) => {
                Some(Rule::parse(spec).map_err(|e| format!("input '{}' has a bad match rule: {e}", self.name))?)
            }
        };
        self.compiled = Some(Compiled { base, rule });
        Ok(())
    }

    pub fn is_sensitive(&self) -> bool {
        self.sensitive.unwrap_or(false)
    }

    /// The compiled view; inputs built by this crate are always prepared before use.
    pub fn compiled(&self) -> Result<&Compiled, String> {
        self.compiled.as_ref().ok_or_else(|| format!("input '{}' was used before it was prepared", self.name))
    }
}

impl Rule {
    /// Checks a `match` object's shape: `{type, values[, grouped_by]}` as validators.tf defines it.
    pub fn parse(spec: &Value) -> Result<Rule, String> {
        let obj = spec.as_object().ok_or("it must be an object with `type` and `values`")?;
        let kind = obj.get("type").and_then(Value::as_str).ok_or("`type` is missing or not a string")?;
        let values = obj.get("values").ok_or("`values` is missing")?;
        match kind.to_ascii_lowercase().as_str() {
            "list" => {
                let items = values.as_array().ok_or("a `list` rule needs `values` to be a list")?;
                Ok(Rule::List(items.clone()))
            }
            "number" => {
                let range = values.as_object().ok_or("a `number` rule needs `values = { min, max }`")?;
                let bound = |key: &str| -> Result<Option<f64>, String> {
                    match range.get(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(v) => v.as_f64().map(Some).ok_or(format!("`{key}` must be a number")),
                    }
                };
                let (min, max) = (bound("min")?, bound("max")?);
                if min.is_none() && max.is_none() {
                    return Err("a `number` rule needs at least one of `min` or `max`".into());
                }
                Ok(Rule::Number { min, max })
            }
            "string" => {
                let pattern = values
                    .get("regex")
                    .and_then(Value::as_str)
                    .ok_or("a `string` rule needs `values = { regex = \"...\" }`")?;
                Ok(Rule::String { pattern: pattern.to_string(), regex: Box::new(compile(pattern)?) })
            }
            "map" => {
                let grouped_by = obj
                    .get("grouped_by")
                    .and_then(Value::as_str)
                    .ok_or("a `map` rule needs `grouped_by` naming the input it depends on")?;
                let groups = values.as_object().ok_or("a `map` rule needs `values` to be a map of lists")?;
                if let Some((key, _)) = groups.iter().find(|(_, v)| !v.is_array()) {
                    return Err(format!("group '{key}' of a `map` rule must be a list"));
                }
                Ok(Rule::Map { grouped_by: grouped_by.to_string(), groups: groups.clone() })
            }
            other => Err(format!("unknown match type '{other}': use list, number, string or map")),
        }
    }
}

/// The bound [`compile`] puts on a regex's length times its `{n` repetition counts.
const MAX_REGEX_SIZE: u64 = 1 << 32;

/// Compiles a `string` rule's regex. fancy-regex 0.20 multiplies repetition counts into match
/// sizes unchecked (`(ab){6501196262088609336}` overflows: a panic where overflow checks are on,
/// a wrapped size otherwise), so a regex whose length times its `{n` counts passes
/// [`MAX_REGEX_SIZE`] is refused first; that product bounds every size fancy-regex computes
/// except through subroutine calls (`\g<1>`), whose panic is turned into a refusal here.
fn compile(pattern: &str) -> Result<fancy_regex::Regex, String> {
    let bytes = pattern.as_bytes();
    let mut size = bytes.len() as u64;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => {
                let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                let count =
                    pattern[i + 1..i + 1 + digits].parse::<u64>().unwrap_or(if digits > 0 { u64::MAX } else { 1 });
                size = size.saturating_mul(count.max(1));
            }
            _ => {}
        }
        i += 1;
    }
    if size > MAX_REGEX_SIZE {
        return Err(format!("the regex '{pattern}' repeats too much: its length times its {{n}} counts passes 2^32"));
    }
    match std::panic::catch_unwind(|| fancy_regex::Regex::new(pattern)) {
        Ok(compiled) => compiled.map_err(|e| format!("the regex '{pattern}' does not compile: {e}")),
        Err(_) => Err(format!("the regex '{pattern}' is too large to compile")),
    }
}

/// A rule bound as JSON: whole numbers as integers (`1`, not `1.0`), as a driver author wrote
/// them.
pub fn bound(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 { Value::from(n as i64) } else { Value::from(n) }
}

/// Ruby's `to_s` for the scalar values OneForm interpolates into messages and templates.
pub fn ruby_to_s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_rules_with_sizes_fancy_regex_cannot_count_are_refused() {
        // Found by the hcl_inputs fuzz target: fancy-regex 0.20's analysis overflowed on this.
        let rule = |regex: &str| Rule::parse(&json!({"type": "string", "values": {"regex": regex}}));
        let err = rule("^(ab){6501196262088609336}$").unwrap_err();
        assert!(err.contains("repeats too much"), "{err}");
        assert!(rule("^((a{65536}){65536}){2}$").unwrap_err().contains("repeats too much"));
        let uuid = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
        assert!(matches!(rule(uuid), Ok(Rule::String { .. })), "ordinary counts compile");
        assert!(matches!(rule(r"^\{99999999999\}$"), Ok(Rule::String { .. })), "escaped braces are no count");
    }

    #[test]
    fn stored_inputs_redact_and_mask_even_when_their_definition_no_longer_compiles() {
        let user_inputs = json!([
            {"name": "token", "type": "string", "sensitive": true},
            {"name": "legacy", "type": "set(string)", "sensitive": true},
            {"name": "size", "type": "number"}
        ]);
        let inputs = prepared(&user_inputs);
        assert_eq!(inputs.len(), 3, "the input whose type no longer compiles is kept");
        assert!(inputs[0].compiled.is_some() && inputs[1].compiled.is_none());
        let values = json!({"token": "s3cret", "legacy": ["a"], "size": 2}).as_object().unwrap().clone();
        let shown = redacted(&inputs, &values);
        assert_eq!(Value::Object(shown), json!({"token": REDACTED, "legacy": REDACTED, "size": 2}));
        assert_eq!(sensitive_texts(&inputs, &values), ["s3cret", "[\"a\"]"]);
    }

    #[test]
    fn base_type_follows_oneform_stripping() {
        assert_eq!(BaseType::parse("map(string)"), Some(BaseType::Map));
        assert_eq!(BaseType::parse("LIST(string)"), Some(BaseType::List));
        assert_eq!(BaseType::parse("object({a = string})"), Some(BaseType::Object));
        assert_eq!(BaseType::parse("set(string)"), None);
        assert_eq!(BaseType::parse("any"), None);
        assert_eq!(BaseType::parse(""), None);
    }

    #[test]
    fn rules_are_checked_for_shape() {
        assert!(matches!(Rule::parse(&json!({"type": "list", "values": [1, 2]})), Ok(Rule::List(v)) if v.len() == 2));
        assert!(Rule::parse(&json!({"type": "number", "values": {}})).unwrap_err().contains("min"));
        assert!(Rule::parse(&json!({"type": "string", "values": {"regex": "("}})).unwrap_err().contains("compile"));
        assert!(Rule::parse(&json!({"type": "map", "values": {"a": [1]}})).unwrap_err().contains("grouped_by"));
        assert!(
            Rule::parse(&json!({"type": "map", "grouped_by": "r", "values": {"a": 1}})).unwrap_err().contains("'a'")
        );
        assert!(Rule::parse(&json!({"type": "enum", "values": []})).unwrap_err().contains("unknown match type"));
        assert!(Rule::parse(&json!("list")).is_err());
    }

    #[test]
    fn lookaround_regexes_compile() {
        let rule = Rule::parse(&json!({"type": "string", "values": {"regex": "^(?!default$)[a-z]+$"}})).unwrap();
        let Rule::String { regex, .. } = rule else { panic!("expected a string rule") };
        assert!(regex.is_match("prod").unwrap());
        assert!(!regex.is_match("default").unwrap());
    }

    #[test]
    fn unknown_type_is_named() {
        let mut input: Input = serde_json::from_value(json!({"name": "x", "type": "set(string)"})).unwrap();
        assert!(input.prepare().unwrap_err().contains("type 'set(string)'"));
        let mut untyped: Input = serde_json::from_value(json!({"name": "y"})).unwrap();
        assert!(untyped.prepare().unwrap_err().contains("has no type"));
    }
}
