//! JSON Schema (draft 2020-12) of a set of inputs, so forms and CI checks can be generated from
//! a driver. It states what [`super::validate`] enforces wherever JSON Schema can say it: types
//! with element types, `list` rules as `enum`, `number` rules as bounds, `string` rules as
//! `pattern`, `map` rules as `if`/`then` on the grouping input, the reserved inputs' meaning, and
//! `writeOnly` for sensitive inputs. Regexes are copied as written: drivers use Ruby syntax,
//! which agrees with ECMA-262 for the common cases.

use serde_json::{Map, Value, json};

use super::input::{BaseType, Input, Rule, bound};

pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema of an object holding values for `inputs`.
pub fn of(title: &str, inputs: &[Input]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut conditions = Vec::new();
    for input in inputs {
        properties.insert(input.name.clone(), property(input));
        if input.default.is_none() && !required.contains(&input.name) {
            required.push(input.name.clone());
        }
        if let Some(Rule::Map { grouped_by, groups }) = input.compiled.as_ref().and_then(|c| c.rule.as_ref()) {
            conditions.extend(groups.iter().map(|(parent, allowed)| {
                json!({
                    "if": {"properties": {grouped_by: {"const": parent}}, "required": [grouped_by]},
                    "then": {"properties": {input.name.clone(): {"enum": allowed}}}
                })
            }));
        }
    }
    let mut schema = json!({
        "$schema": DIALECT,
        "title": title,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    if !conditions.is_empty() {
        schema["allOf"] = Value::Array(conditions);
    }
    schema
}

fn property(input: &Input) -> Value {
    let mut p = Map::new();
    let base = input.compiled.as_ref().map(|c| c.base);
    if let Some(base) = base {
        p.extend(type_schema(base, &input.type_text));
    }
    if let Some(d) = &input.description {
        p.insert("description".into(), json!(d));
    }
    if let Some(d) = &input.default {
        p.insert("default".into(), d.clone());
    }
    if input.is_sensitive() {
        p.insert("writeOnly".into(), json!(true));
    }
    match input.compiled.as_ref().and_then(|c| c.rule.as_ref()) {
        Some(Rule::List(allowed)) if base.is_some_and(BaseType::is_list_like) => {
            let items = p.entry("items").or_insert_with(|| json!({}));
            items["enum"] = json!(allowed);
        }
        Some(Rule::List(allowed)) => {
            p.insert("enum".into(), json!(allowed));
        }
        Some(Rule::Number { min, max }) => {
            if let Some(min) = min {
                p.insert("minimum".into(), bound(*min));
            }
            if let Some(max) = max {
                p.insert("maximum".into(), bound(*max));
            }
        }
        Some(Rule::String { pattern, .. }) => {
            p.insert("pattern".into(), json!(pattern));
        }
        Some(Rule::Map { .. }) | None => {}
    }
    reserved(&input.name, &mut p);
    Value::Object(p)
}

fn type_schema(base: BaseType, type_text: &str) -> Map<String, Value> {
    let element = element(type_text);
    let value = match base {
        BaseType::String => json!({"type": "string"}),
        BaseType::Number => json!({"type": "number"}),
        BaseType::Bool => json!({"type": "boolean"}),
        BaseType::List | BaseType::Tuple => match element {
            Some(e) => json!({"type": "array", "items": {"type": e}}),
            None => json!({"type": "array"}),
        },
        BaseType::Map | BaseType::Object => match element {
            Some(e) => json!({"type": "object", "additionalProperties": {"type": e}}),
            None => json!({"type": "object"}),
        },
    };
    value.as_object().cloned().unwrap_or_default()
}

fn element(type_text: &str) -> Option<&'static str> {
    let (outer, rest) = type_text.split_once('(')?;
    if !matches!(outer.trim(), "list" | "map" | "set") {
        return None;
    }
    match rest.strip_suffix(')')?.trim() {
        "string" => Some("string"),
        "number" => Some("number"),
        "bool" => Some("boolean"),
        _ => None,
    }
}

fn reserved(name: &str, p: &mut Map<String, Value>) {
    match name {
        "oneform_hosts" | "oneform_public_ips" => {
            p.insert("type".into(), json!("integer"));
            let floor = p.get("minimum").and_then(Value::as_f64).unwrap_or(0.0).max(0.0);
            p.insert("minimum".into(), bound(floor));
        }
        "oneform_onprem_hosts" => {
            p.insert("uniqueItems".into(), json!(true));
            p.insert(
                "items".into(),
                json!({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"format": "hostname"}]}),
            );
        }
        "oneform_tags" => {
            p.insert("additionalProperties".into(), json!({"type": "string"}));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_states_rules_and_reserved_meaning() {
        let mut inputs: Vec<Input> = serde_json::from_value(json!([
            {"name": "oneform_hosts", "type": "number", "default": 1, "match": {"type": "number", "values": {"min": 1, "max": 10}}},
            {"name": "region", "type": "string"},
            {"name": "zone", "type": "string", "match": {"type": "map", "grouped_by": "region", "values": {"eu": ["eu-1"]}}},
            {"name": "token", "type": "string", "sensitive": true, "default": ""},
            {"name": "features", "type": "list(string)", "default": [], "match": {"type": "list", "values": ["gpu"]}}
        ]))
        .unwrap();
        inputs.iter_mut().for_each(|i| i.prepare().unwrap());
        let schema = of("sim", &inputs);
        assert_eq!(schema["$schema"], json!(DIALECT));
        assert_eq!(schema["required"], json!(["region", "zone"]));
        assert_eq!(schema["properties"]["oneform_hosts"]["type"], json!("integer"));
        assert_eq!(schema["properties"]["oneform_hosts"]["minimum"], json!(1));
        assert_eq!(schema["properties"]["oneform_hosts"]["maximum"], json!(10));
        assert_eq!(schema["properties"]["token"]["writeOnly"], json!(true));
        assert_eq!(schema["properties"]["features"]["items"], json!({"type": "string", "enum": ["gpu"]}));
        assert_eq!(schema["allOf"][0]["then"]["properties"]["zone"]["enum"], json!(["eu-1"]));
        assert_eq!(schema["additionalProperties"], json!(false));
    }
}
