//! Validation of input values against a driver's inputs (OneForm's `schema.rb` rules, spec
//! §1.5 and §2.12), with what OneForm lacks: unknown keys are errors with a suggestion, element
//! types of `list(T)`/`map(T)` are checked, list rules apply per element of list inputs, and
//! the reserved `oneform_*` inputs are checked for meaning. Every error is collected, keyed by
//! input name, so one run tells the user everything to fix.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use super::input::{BaseType, Input, Rule, bound, ruby_to_s};
use crate::suggest;

/// Errors keyed by input name, in input order; several messages per input are possible.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Errors {
    entries: Vec<(String, Vec<String>)>,
}

impl Errors {
    pub fn add(&mut self, key: &str, message: String) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, messages)) if messages.contains(&message) => {}
            Some((_, messages)) => messages.push(message),
            None => self.entries.push((key.to_string(), vec![message])),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }
}

impl Serialize for Errors {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, messages) in &self.entries {
            map.serialize_entry(key, messages)?;
        }
        map.end()
    }
}

impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (key, messages) in &self.entries {
            for message in messages {
                writeln!(f, "  {key}: {message}")?;
            }
        }
        Ok(())
    }
}

/// Checks `values` against `inputs` and returns them with defaults filled in.
pub fn validate(inputs: &[Input], values: &Value) -> Result<Map<String, Value>, Errors> {
    let mut errors = Errors::default();
    let given = match values {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => {
            errors.add("values", format!("must be a mapping of input name to value, not {}", kind(other)));
            return Err(errors);
        }
    };
    for key in given.keys() {
        if !inputs.iter().any(|i| &i.name == key) {
            let hint = suggest::hint(key, inputs.iter().map(|i| i.name.as_str()));
            errors.add(key, format!("is not an input of this driver or deployment{hint}"));
        }
    }
    let filled = with_defaults(inputs, given);
    for input in inputs {
        check_input(input, &filled, &mut errors);
    }
    if errors.is_empty() { Ok(filled) } else { Err(errors) }
}

/// Checks, in a value set an operation changed, only the inputs it changed (`changed`) and
/// those whose `map` rule is grouped by one of them. The others were checked when they were
/// set; the driver's rules for them may have been left behind since by what operations do
/// (a scale-down to 0 hosts under `oneform_hosts ≥ 1`), which must not stop an operation on
/// other inputs. OneForm checks no value at all after create.
pub fn validate_changed(inputs: &[Input], values: &Map<String, Value>, changed: &[&str]) -> Result<(), Errors> {
    let mut errors = Errors::default();
    for key in changed.iter().filter(|k| !inputs.iter().any(|i| i.name == **k)) {
        let hint = suggest::hint(key, inputs.iter().map(|i| i.name.as_str()));
        errors.add(key, format!("is not an input of this driver or deployment{hint}"));
    }
    let filled = with_defaults(inputs, values.clone());
    for input in inputs.iter().filter(|i| changed.contains(&i.name.as_str()) || grouped_by_any(i, changed)) {
        check_input(input, &filled, &mut errors);
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Whether `input`'s rule is a `map` grouped by one of `names`.
fn grouped_by_any(input: &Input, names: &[&str]) -> bool {
    match input.compiled().map(|c| &c.rule) {
        Ok(Some(Rule::Map { grouped_by, .. })) => names.contains(&grouped_by.as_str()),
        _ => false,
    }
}

/// `values` with each missing input that has a default given it.
fn with_defaults(inputs: &[Input], mut values: Map<String, Value>) -> Map<String, Value> {
    for input in inputs {
        if values.get(&input.name).is_none_or(Value::is_null)
            && let Some(default) = &input.default
        {
            values.insert(input.name.clone(), default.clone());
        }
    }
    values
}

fn check_input(input: &Input, values: &Map<String, Value>, errors: &mut Errors) {
    let name = input.name.as_str();
    let compiled = match input.compiled() {
        Ok(c) => c,
        Err(e) => return errors.add(name, e),
    };
    let Some(value) = values.get(name).filter(|v| !v.is_null()) else {
        return errors.add(name, format!("is missing: give a value of type {}", input.type_text));
    };
    if let Err(message) = check_type(compiled.base, &input.type_text, value) {
        return errors.add(name, message);
    }
    if let Some(rule) = &compiled.rule {
        for message in check_rule(name, compiled.base, rule, value, values) {
            errors.add(name, message);
        }
    }
    if let Err(message) = check_reserved(name, value) {
        errors.add(name, message);
    }
}

fn check_type(base: BaseType, type_text: &str, value: &Value) -> Result<(), String> {
    let ok = match base {
        BaseType::String => value.is_string(),
        BaseType::Number => value.is_number(),
        BaseType::Bool => value.is_boolean(),
        BaseType::List | BaseType::Tuple => value.is_array(),
        BaseType::Map | BaseType::Object => value.is_object(),
    };
    let expected = match base {
        BaseType::String => "must be a string",
        BaseType::Number => "must be a number",
        BaseType::Bool => "must be a boolean",
        BaseType::List | BaseType::Tuple => "must be a list",
        BaseType::Map | BaseType::Object => "must be a map",
    };
    if !ok {
        return Err(format!("{expected}, not {}", kind(value)));
    }
    let Some(element) = element_type(type_text) else {
        return Ok(());
    };
    let items: Vec<(String, &Value)> = match value {
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (format!("item {}", i + 1), v)).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (format!("'{k}'"), v)).collect(),
        _ => return Ok(()),
    };
    for (label, item) in items {
        if check_type(element, element.to_string().as_str(), item).is_err() {
            return Err(format!("{expected} of {element}, but {label} is {}", kind(item)));
        }
    }
    Ok(())
}

/// `string` for `list(string)`, `map(string)`, `set(string)`; None for anything more complex.
fn element_type(type_text: &str) -> Option<BaseType> {
    let (outer, rest) = type_text.split_once('(')?;
    if !matches!(outer.trim(), "list" | "map" | "set") {
        return None;
    }
    let inner = rest.strip_suffix(')')?.trim();
    match inner {
        "string" | "number" | "bool" => BaseType::parse(inner),
        _ => None,
    }
}

fn check_rule(name: &str, base: BaseType, rule: &Rule, value: &Value, values: &Map<String, Value>) -> Vec<String> {
    match rule {
        Rule::List(allowed) => {
            let choose = || allowed.iter().map(ruby_to_s).collect::<Vec<_>>().join(", ");
            let candidates: Vec<&Value> = match (base.is_list_like(), value) {
                (true, Value::Array(items)) => items.iter().collect(),
                _ => vec![value],
            };
            candidates
                .into_iter()
                .filter(|v| !allowed.iter().any(|a| loose_eq(a, v)))
                .map(|v| format!("invalid value '{}' for '{name}'. Choose from: {}.", show(v), choose()))
                .collect()
        }
        Rule::Number { min, max } => {
            let Some(n) = value.as_f64() else {
                return vec![format!("has a number rule but its value is {}", kind(value))];
            };
            let mut out = Vec::new();
            if let Some(min) = min.filter(|m| n < *m) {
                out.push(format!("invalid value '{}' for '{name}', should be ≥ {}", show(value), bound(min)));
            }
            if let Some(max) = max.filter(|m| n > *m) {
                out.push(format!("invalid value '{}' for '{name}', should be ≤ {}", show(value), bound(max)));
            }
            out
        }
        Rule::String { pattern, regex } => match value.as_str() {
            Some(s) if regex.is_match(s).unwrap_or(false) => vec![],
            Some(s) => vec![format!("invalid value '{s}' for '{name}', it does not match the regex '{pattern}'.")],
            None => vec![format!("has a regex rule but its value is {}", kind(value))],
        },
        Rule::Map { grouped_by, groups } => {
            let Some(parent) = values.get(grouped_by).filter(|v| !v.is_null()) else {
                return vec![format!("cannot group by '{grouped_by}', it is not present in the user inputs values.")];
            };
            let parent_text = ruby_to_s(parent);
            let Some(Value::Array(group)) = groups.get(&parent_text) else {
                return vec![format!(
                    "invalid value '{parent_text}' for '{grouped_by}', no entry found in values match map."
                )];
            };
            if group.iter().any(|a| loose_eq(a, value)) {
                return vec![];
            }
            let choose = group.iter().map(ruby_to_s).collect::<Vec<_>>().join(", ");
            vec![format!("invalid value '{}' for '{name}', choose from: {choose}.", show(value))]
        }
    }
}

/// The reserved `oneform_*` inputs carry meaning for the engine; check it here, before any
/// Terraform or OpenNebula call could fail on it.
fn check_reserved(name: &str, value: &Value) -> Result<(), String> {
    match name {
        "oneform_hosts" | "oneform_public_ips" => match value.as_f64() {
            Some(n) if n >= 0.0 && n.fract() == 0.0 => Ok(()),
            _ => Err(format!("must be a whole number ≥ 0, not {}", show(value))),
        },
        "oneform_onprem_hosts" => check_hosts(value),
        "oneform_tags" => match value.as_object() {
            Some(map) => match map.iter().find(|(_, v)| !v.is_string()) {
                Some((k, v)) => Err(format!("tag '{k}' must be a string, not {}", kind(v))),
                None => Ok(()),
            },
            None => Err(format!("must be a map of strings, not {}", kind(value))),
        },
        _ => Ok(()),
    }
}

fn check_hosts(value: &Value) -> Result<(), String> {
    let items = value.as_array().ok_or_else(|| format!("must be a list of host addresses, not {}", kind(value)))?;
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let Some(text) = item.as_str() else {
            return Err(format!("entry {} must be an IP address or hostname, not {}", i + 1, kind(item)));
        };
        let key = match text.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) if is_hostname(text) => text.to_ascii_lowercase(),
            Err(_) => {
                return Err(format!("entry {} ('{text}') is not an IPv4 or IPv6 address or a hostname", i + 1));
            }
        };
        if !seen.insert(key) {
            return Err(format!("'{text}' is listed more than once; each host must appear once"));
        }
    }
    Ok(())
}

/// RFC 1123 host names; an all-numeric name (`10.0.0.300`) is a mistyped address, not a name.
fn is_hostname(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    labels_ok && !name.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// Equality where `1` and `1.0` are the same number, as in Ruby.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn show(value: &Value) -> String {
    ruby_to_s(value)
}

/// How a value is described in messages.
pub fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("a string (\"{s}\")"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs(specs: Value) -> Vec<Input> {
        let mut inputs: Vec<Input> = serde_json::from_value(specs).unwrap();
        inputs.iter_mut().for_each(|i| i.prepare().unwrap());
        inputs
    }

    fn sim_inputs() -> Vec<Input> {
        inputs(json!([
            {"name": "oneform_hosts", "type": "number", "default": 1, "match": {"type": "number", "values": {"min": 1, "max": 10}}},
            {"name": "instance_type", "type": "string", "default": "small", "match": {"type": "list", "values": ["small", "large"]}},
            {"name": "region", "type": "string", "default": "eu"},
            {"name": "zone", "type": "string", "match": {"type": "map", "grouped_by": "region", "values": {"eu": ["eu-1", "eu-2"], "us": ["us-1"]}}},
            {"name": "cidr", "type": "string", "default": "10.0.0.0/24", "match": {"type": "string", "values": {"regex": "^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+$"}}},
            {"name": "oneform_tags", "type": "map(string)", "default": {}},
            {"name": "features", "type": "list(string)", "default": [], "match": {"type": "list", "values": ["gpu", "ssd"]}}
        ]))
    }

    #[test]
    fn defaults_are_filled_and_good_values_pass() {
        let filled = validate(&sim_inputs(), &json!({"zone": "eu-2", "features": ["ssd"]})).unwrap();
        assert_eq!(filled["oneform_hosts"], json!(1));
        assert_eq!(filled["instance_type"], json!("small"));
        assert_eq!(filled["zone"], json!("eu-2"));
    }

    #[test]
    fn false_is_a_value_not_a_missing_one() {
        // OneForm's `||=` would replace an explicit false by a true default.
        let inputs = inputs(json!([{"name": "ha", "type": "bool", "default": true}]));
        assert_eq!(validate(&inputs, &json!({"ha": false})).unwrap()["ha"], json!(false));
    }

    #[test]
    fn every_error_comes_back_keyed_by_input() {
        let errors = validate(
            &sim_inputs(),
            &json!({"oneform_hosts": 11, "instance_type": "huge", "region": "us", "zone": "eu-1",
                    "cidr": "10.0.0.0", "oneform_tags": {"a": 1}, "features": ["gpu", "tpu"], "instnce_type": 1}),
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec!["instnce_type", "oneform_hosts", "instance_type", "zone", "cidr", "oneform_tags", "features"]
        );
        assert_eq!(errors.get("oneform_hosts").unwrap(), ["invalid value '11' for 'oneform_hosts', should be ≤ 10"]);
        assert_eq!(
            errors.get("instance_type").unwrap(),
            ["invalid value 'huge' for 'instance_type'. Choose from: small, large."]
        );
        assert_eq!(errors.get("zone").unwrap(), ["invalid value 'eu-1' for 'zone', choose from: us-1."]);
        assert!(errors.get("cidr").unwrap()[0].contains("does not match the regex"));
        assert_eq!(errors.get("oneform_tags").unwrap(), ["must be a map of string, but 'a' is a number (1)"]);
        assert_eq!(errors.get("features").unwrap(), ["invalid value 'tpu' for 'features'. Choose from: gpu, ssd."]);
        assert!(errors.get("instnce_type").unwrap()[0].contains("did you mean 'instance_type'?"));
    }

    #[test]
    fn a_change_rechecks_the_changed_inputs_and_those_grouped_by_them_only() {
        let inputs = sim_inputs();
        // oneform_hosts is 0 after a scale-down to no host: below its rule, and left alone.
        let values = json!({"oneform_hosts": 0, "region": "eu", "zone": "eu-1"});
        let values = values.as_object().unwrap();
        assert_eq!(validate_changed(&inputs, values, &["instance_type"]), Ok(()));
        let errors = validate_changed(&inputs, values, &["oneform_hosts"]).unwrap_err();
        assert_eq!(errors.get("oneform_hosts").unwrap(), ["invalid value '0' for 'oneform_hosts', should be ≥ 1"]);
        // A new region re-checks the zone chosen from the old one.
        let mut moved = values.clone();
        moved.insert("region".into(), json!("us"));
        let errors = validate_changed(&inputs, &moved, &["region"]).unwrap_err();
        assert_eq!(errors.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["zone"]);
        assert!(validate_changed(&inputs, values, &["regoin"]).unwrap_err().get("regoin").is_some());
    }

    #[test]
    fn missing_and_mistyped_values() {
        let errors = validate(&sim_inputs(), &json!({"oneform_hosts": "3"})).unwrap_err();
        assert_eq!(errors.get("oneform_hosts").unwrap(), ["must be a number, not a string (\"3\")"]);
        assert_eq!(errors.get("zone").unwrap(), ["is missing: give a value of type string"]);
        let errors = validate(&sim_inputs(), &json!(["zone"])).unwrap_err();
        assert_eq!(errors.get("values").unwrap(), ["must be a mapping of input name to value, not a list"]);
    }

    #[test]
    fn grouped_by_parent_missing_or_unknown() {
        let inputs = inputs(json!([
            {"name": "region", "type": "string"},
            {"name": "zone", "type": "string", "match": {"type": "map", "grouped_by": "region", "values": {"eu": ["eu-1"]}}}
        ]));
        let errors = validate(&inputs, &json!({"region": "mars", "zone": "m-1"})).unwrap_err();
        assert_eq!(
            errors.get("zone").unwrap(),
            ["invalid value 'mars' for 'region', no entry found in values match map."]
        );
        let errors = validate(&inputs, &json!({"zone": "eu-1"})).unwrap_err();
        assert!(errors.get("zone").unwrap()[0].starts_with("cannot group by 'region'"));
    }

    #[test]
    fn reserved_inputs_are_checked_for_meaning() {
        let inputs = inputs(json!([
            {"name": "oneform_hosts", "type": "number", "default": 1},
            {"name": "oneform_public_ips", "type": "number", "default": 0},
            {"name": "oneform_onprem_hosts", "type": "list(string)", "default": []}
        ]));
        let errors = validate(
            &inputs,
            &json!({"oneform_hosts": 2.5, "oneform_public_ips": -1, "oneform_onprem_hosts": ["10.0.0.1", "10.0.0.300"]}),
        )
        .unwrap_err();
        assert_eq!(errors.get("oneform_hosts").unwrap(), ["must be a whole number ≥ 0, not 2.5"]);
        assert_eq!(errors.get("oneform_public_ips").unwrap(), ["must be a whole number ≥ 0, not -1"]);
        assert_eq!(
            errors.get("oneform_onprem_hosts").unwrap(),
            ["entry 2 ('10.0.0.300') is not an IPv4 or IPv6 address or a hostname"]
        );
        let dup = validate(&inputs, &json!({"oneform_onprem_hosts": ["::1", "0:0::1"]})).unwrap_err();
        assert!(dup.get("oneform_onprem_hosts").unwrap()[0].contains("more than once"));
        let ok = validate(&inputs, &json!({"oneform_onprem_hosts": ["node-1.example.com", "fe80::1", "192.168.1.2"]}));
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn numbers_compare_like_ruby() {
        let inputs = inputs(json!([{"name": "size", "type": "number", "match": {"type": "list", "values": [1, 2]}}]));
        assert!(validate(&inputs, &json!({"size": 2.0})).is_ok());
    }
}
