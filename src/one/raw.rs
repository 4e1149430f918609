//! Template text exactly as OneForm writes it (`Hash.to_raw` in one_helper.rb) and the
//! templates built from a provision's objects: the `ONEFORM = [...]` tags, and the datastore
//! and network allocate templates (name set, tags merged, size-0 network ARs dropped).
//!
//! One deliberate difference from `to_raw`: a double quote inside a value is written `\"`, which
//! oned's template lexer accepts, where OneForm would write a template oned cannot parse.

use serde_json::{Map, Value, json};

use super::event::Context;

/// `Hash.to_raw`: `key = "value"` lines; a nested map becomes `key = [` its lines joined with
/// `,\n` `]`; an array repeats the key once per element. Keys are written as stored (oned
/// upper-cases them).
pub fn to_raw(map: &Map<String, Value>) -> String {
    let mut content = String::new();
    for (key, value) in map {
        write_attribute(&mut content, key, value);
    }
    content
}

fn write_attribute(content: &mut String, key: &str, value: &Value) {
    match value {
        Value::Object(inner) => {
            let sub = to_raw(inner);
            // Ruby's String#split drops trailing empty fields.
            let mut lines: Vec<&str> = sub.split('\n').collect();
            while lines.last() == Some(&"") {
                lines.pop();
            }
            content.push_str(&format!("{key} = [\n"));
            content.push_str(&lines.join(",\n"));
            content.push_str("\n]\n");
        }
        Value::Array(items) => {
            for item in items {
                write_attribute(content, key, item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            let text = ruby_to_s(value).replace('"', "\\\"");
            content.push_str(&format!("{key} = \"{text}\"\n"));
        }
    }
}

/// Ruby's `to_s` of a scalar JSON value (`nil` is empty).
fn ruby_to_s(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

/// Ruby's `to_i`: leading digits of a string (0 when none), integers as they are.
pub fn ruby_to_i(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
        Some(Value::String(s)) => {
            let s = s.trim_start();
            let (sign, digits) = match s.strip_prefix('-') {
                Some(rest) => (-1, rest),
                None => (1, s.strip_prefix('+').unwrap_or(s)),
            };
            let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
            sign * digits[..end].parse::<i64>().unwrap_or(0)
        }
        Some(Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_)) | None => 0,
    }
}

/// The extra template: `{oneform: {provision_id, provider_id, driver, <user tags…>,
/// resource_id?}}`. User tags may override the first three, as Ruby's `merge` lets them.
pub fn tags(ctx: &Context, resource_id: Option<&Value>) -> Map<String, Value> {
    let mut oneform = Map::new();
    oneform.insert("provision_id".into(), json!(ctx.provision_id));
    oneform.insert("provider_id".into(), json!(ctx.provider_id));
    oneform.insert("driver".into(), json!(ctx.driver));
    for (key, value) in &ctx.tags {
        oneform.insert(key.clone(), value.clone());
    }
    // Ruby truthiness: only nil and false leave RESOURCE_ID out.
    if let Some(id) = resource_id.filter(|v| !matches!(v, Value::Null | Value::Bool(false))) {
        oneform.insert("resource_id".into(), id.clone());
    }
    let mut extra = Map::new();
    extra.insert("oneform".into(), Value::Object(oneform));
    extra
}

/// `one.datastore.allocate`'s template: the resource template with `name` set and the tags
/// merged in.
pub fn datastore_template(template: Option<&Map<String, Value>>, name: &str, tags: Map<String, Value>) -> String {
    let mut template = template.cloned().unwrap_or_default();
    template.insert("name".into(), json!(name));
    template.extend(tags);
    to_raw(&template)
}

/// `one.vn.allocate`'s template: as for datastores, and ARs of size 0 are dropped when `ar`
/// is a list (OneForm leaves a single `ar` map alone).
pub fn network_template(template: Option<&Map<String, Value>>, name: &str, tags: Map<String, Value>) -> String {
    let mut template = template.cloned().unwrap_or_default();
    template.insert("name".into(), json!(name));
    if let Some(Value::Array(ars)) = template.get_mut("ar") {
        ars.retain(|ar| ruby_to_i(ar.get("size")) != 0);
    }
    template.extend(tags);
    to_raw(&template)
}

/// The AR `one.vn.add_ar` takes for one public IP: `AR = [ipam_mad, provision_id, size = 1]`.
pub fn public_ip_ar(driver: &str, provision_id: i64) -> String {
    let mut ar = Map::new();
    ar.insert("ipam_mad".into(), json!(driver));
    ar.insert("provision_id".into(), json!(provision_id));
    ar.insert("size".into(), json!(1));
    let mut outer = Map::new();
    outer.insert("AR".into(), Value::Object(ar));
    to_raw(&outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn to_raw_follows_hash_to_raw_on_nested_and_repeated_attributes() {
        let text = to_raw(&map(json!({
            "vn_mad": "vxlan",
            "mtu": 1500,
            "auto": true,
            "none": null,
            "ar": [{"type": "IP4", "size": 10}, {"type": "IP4", "size": 2}],
            "dns": ["1.1.1.1", "8.8.8.8"],
            "empty": {},
            "outer": {"inner": {"a": "x"}}
        })));
        let expected = "vn_mad = \"vxlan\"\nmtu = \"1500\"\nauto = \"true\"\nnone = \"\"\n\
            ar = [\ntype = \"IP4\",\nsize = \"10\"\n]\nar = [\ntype = \"IP4\",\nsize = \"2\"\n]\n\
            dns = \"1.1.1.1\"\ndns = \"8.8.8.8\"\n\
            empty = [\n\n]\n\
            outer = [\ninner = [,\na = \"x\",\n]\n]\n";
        assert_eq!(text, expected);
        assert_eq!(to_raw(&Map::new()), "");
    }

    #[test]
    fn quotes_are_escaped_and_the_result_parses() {
        let text = to_raw(&map(json!({"description": "a \"quoted\" word"})));
        assert_eq!(text, "description = \"a \\\"quoted\\\" word\"\n");
        let parsed = super::super::Template::parse(&text).unwrap();
        assert_eq!(parsed.single("DESCRIPTION"), Some("a \"quoted\" word"));
    }

    fn ctx() -> Context {
        Context {
            provision_id: 5,
            provision_name: "AWS".into(),
            provider_id: 2,
            driver: "aws".into(),
            tags: map(json!({"team": "infra", "cost": 7})),
        }
    }

    #[test]
    fn tags_carry_the_provision_the_user_tags_and_the_resource_id() {
        let host = to_raw(&tags(&ctx(), Some(&json!("i-006a"))));
        assert_eq!(
            host,
            "oneform = [\nprovision_id = \"5\",\nprovider_id = \"2\",\ndriver = \"aws\",\n\
             team = \"infra\",\ncost = \"7\",\nresource_id = \"i-006a\"\n]\n"
        );
        let cluster = to_raw(&tags(&ctx(), None));
        assert!(!cluster.contains("resource_id"), "{cluster}");
        assert!(!to_raw(&tags(&ctx(), Some(&Value::Null))).contains("resource_id"));
    }

    #[test]
    fn network_template_drops_empty_ars_and_merges_name_and_tags() {
        let template = map(json!({
            "name": "ignored", "vn_mad": "vxlan",
            "ar": [{"type": "IP4", "size": "0"}, {"type": "IP4", "size": 4}, {"type": "IP4"}]
        }));
        let text = network_template(Some(&template), "priv (provision_5)", tags(&ctx(), None));
        assert!(text.starts_with("name = \"priv (provision_5)\"\nvn_mad = \"vxlan\"\nar = [\ntype = \"IP4\",\nsize = \"4\"\n]\noneform = [\n"), "{text}");
        assert_eq!(text.matches("ar = [").count(), 1, "{text}");
        let single = map(json!({"ar": {"type": "IP4", "size": 0}}));
        let kept = network_template(Some(&single), "n", Map::new());
        assert!(kept.contains("ar = [\ntype = \"IP4\",\nsize = \"0\"\n]"), "{kept}");
        let ds = datastore_template(None, "sys (provision_5)", Map::new());
        assert_eq!(ds, "name = \"sys (provision_5)\"\n");
    }

    #[test]
    fn ruby_to_i_reads_leading_digits() {
        assert_eq!(ruby_to_i(Some(&json!("12abc"))), 12);
        assert_eq!(ruby_to_i(Some(&json!(" -3"))), -3);
        assert_eq!(ruby_to_i(Some(&json!("x"))), 0);
        assert_eq!(ruby_to_i(Some(&json!(2.9))), 2);
        assert_eq!(ruby_to_i(None), 0);
        assert_eq!(public_ip_ar("aws", 5), "AR = [\nipam_mad = \"aws\",\nprovision_id = \"5\",\nsize = \"1\"\n]\n");
    }
}
