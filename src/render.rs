//! Rendering a deployment's `.j2` template into the static Ansible inventory, with Jinja2
//! semantics (minijinja) and OneForm's variable contract (spec §1.7): the provision body minus
//! `one_objects` and `tfstate`, `user_inputs_values` as `user_inputs`, `id`, and `one =
//! {version, frontend_ip, nodes, network_ids, system_ds_id, image_ds_id}`. Afterwards each
//! `vn`/`ds` entry takes its provision name (`name (provision_N)`) and the template stored for
//! it, as OneForm's inventory plugin does. Undefined values are strict, as the plugin's
//! `StrictUndefined`: a template that reads anything else fails here as it fails under OneForm.
//!
//! **Values are data.** OneForm's plugin hands Ansible the values as untrusted data; splicing
//! them into the YAML text would let a quote or a newline change the inventory's structure and
//! let Ansible template a `{{ … }}` in a value on the formwork host. So the template's own text
//! is the driver's code and everything a `{{ … }}` prints is data: the template renders with
//! the real values (conditionals, tests and filters see them as before), but each printed
//! string is written as an inert token, the YAML is parsed, and only then are the tokens
//! replaced by the values, tagged `!unsafe` (Ansible's documented mark for a value it never
//! templates) when the inventory is written ([`data`] says how). Rewriting the tokens after
//! parsing, rather than escaping values for the spot they land in, needs no knowledge of the
//! YAML context (quoted, plain, block, key, comment) a template puts a value in. A driver that
//! wants Ansible to template something writes it in its own text (`{% raw %}{{ x }}{% endraw %}`),
//! as OneForm's drivers do; a string a template prints is never Ansible code, even one the
//! template made itself, nor YAML structure: a printed YAML fragment stays one string, where
//! OneForm's plugin would parse it.

mod data;

use serde_json::{Map, Value, json};

/// What templates see under `one` besides what the provision holds.
#[derive(Debug, Clone)]
pub struct Facts {
    pub version: String,
    pub frontend_ip: String,
}

/// A rendered inventory.
#[derive(Debug)]
pub struct Inventory {
    /// The inventory with every value in place and no tags: what formwork reads back (groups,
    /// host addresses).
    pub value: Value,
    /// The same for Ansible, every value tagged `!unsafe`.
    yaml: serde_norway::Value,
}

impl Inventory {
    /// The inventory file's text.
    pub fn to_yaml(&self) -> Result<String, String> {
        serde_norway::to_string(&self.yaml).map_err(|e| format!("the inventory cannot be written as YAML: {e}"))
    }
}

/// Renders `source` for the provision `body` (whose sensitive values the caller has already
/// redacted) and returns the inventory.
pub fn inventory(source: &str, id: i64, body: &Value, facts: &Facts) -> Result<Inventory, String> {
    let context = variables(id, body, facts);
    let printed = data::Printed::default();
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_formatter(printed.formatter());
    let rendered = env
        .render_str(source, minijinja::value::Serde(&context))
        .map_err(|e| format!("the deployment template does not render: {e:#}"))?;
    let mut inventory = crate::driver::deployment::yaml_to_json(&rendered)
        .map_err(|e| format!("the rendered inventory is not YAML: {e}"))?;
    let objects = &body["one_objects"];
    if let Some(vn) = inventory.pointer_mut("/all/vars/vn").and_then(Value::as_object_mut) {
        adopt_names(vn, &objects["networks"], true, &printed);
    }
    if let Some(config) = inventory.pointer_mut("/all/vars/ds/config").and_then(Value::as_object_mut) {
        for group in config.values_mut().filter_map(Value::as_object_mut) {
            adopt_names(group, &objects["datastores"], false, &printed);
        }
    }
    let built = data::build(&inventory, &printed)?;
    Ok(Inventory { value: built.plain, yaml: built.yaml })
}

/// `values` as a YAML mapping whose strings are tagged `!unsafe`: extra variables for
/// `ansible-playbook -e @file`, which Ansible would otherwise template.
pub fn unsafe_yaml(values: &Value) -> Result<String, String> {
    serde_norway::to_string(&data::unsafe_strings(values))
        .map_err(|e| format!("the extra variables cannot be written as YAML: {e}"))
}

/// OneForm's variable contract.
fn variables(id: i64, body: &Value, facts: &Facts) -> Value {
    let mut vars: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
    vars.remove("one_objects");
    vars.remove("tfstate");
    if let Some(values) = vars.remove("user_inputs_values") {
        vars.insert("user_inputs".into(), values);
    }
    vars.insert("id".into(), json!(id));
    let objects = &body["one_objects"];
    let names = |list: &Value, key: &str| -> Vec<Value> {
        list.as_array().into_iter().flatten().map(|o| o[key].clone()).filter(|v| !v.is_null()).collect()
    };
    let ds_of = |kind: &str| {
        objects["datastores"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["template"]["type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(kind)))
            .map(|d| d["id"].clone())
            .unwrap_or(Value::Null)
    };
    vars.insert(
        "one".into(),
        json!({
            "version": facts.version,
            "frontend_ip": facts.frontend_ip,
            "nodes": names(&objects["hosts"], "name"),
            "network_ids": names(&objects["networks"], "id"),
            "system_ds_id": ds_of("SYSTEM_DS"),
            "image_ds_id": ds_of("IMAGE_DS"),
        }),
    );
    Value::Object(vars)
}

/// Renames entries to the provision's object names and gives them the stored templates (keys
/// upper-cased, `name`/`id` dropped, and for networks the address ranges, which belong to
/// OpenNebula). The stored templates hold values, so their strings and the names go in as
/// printed values.
fn adopt_names(entries: &mut Map<String, Value>, stored: &Value, is_network: bool, printed: &data::Printed) {
    let stored: Vec<&Value> = stored.as_array().into_iter().flatten().collect();
    let keys: Vec<String> = entries.keys().cloned().collect();
    for key in keys {
        let Some(object) = stored.iter().find(|o| base_name(o["name"].as_str().unwrap_or("")) == key) else {
            continue;
        };
        let Some(mut entry) = entries.remove(&key) else {
            continue;
        };
        let mut template = Map::new();
        for (k, v) in object["template"].as_object().into_iter().flatten() {
            let upper = k.to_ascii_uppercase();
            if upper == "NAME" || upper == "ID" || (is_network && upper == "AR") {
                continue;
            }
            template.insert(upper, printed.data(v));
        }
        if entry.is_object() {
            entry["template"] = Value::Object(template);
        }
        let name = object["name"].as_str().map_or(key, |name| printed.token(name.to_owned()));
        entries.insert(name, entry);
    }
}

/// `net (provision_3)` → `net`, as the inventory plugin strips `\s*\(.*\)`.
fn base_name(name: &str) -> &str {
    name.find('(').map_or(name, |i| name[..i].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_oneforms_variables_and_provision_names() {
        let source = r#"{# name: x #}
all:
  vars:
    one_version: "{{ one.version }}"
    cidr: "{{ user_inputs.cidr }}"
    provision: "{{ id }}-{{ name }}"
    vn:
      private:
        template: { vn_mad: vxlan }
    ds:
      config:
        SYSTEM_DS:
          sys: { id: "{{ one.system_ds_id }}" }
node:
  hosts:
    {% for node in one.nodes %}
    n{{ loop.index }}: { ansible_host: "{{ node }}" }
    {% endfor %}
"#;
        let body = json!({
            "name": "demo",
            "user_inputs_values": {"cidr": "10.0.0.0/24"},
            "one_objects": {
                "cluster": {"id": 100, "name": "demo (provision_7)"},
                "hosts": [{"id": 1, "name": "10.0.0.5"}, {"id": 2, "name": "10.0.0.6"}],
                "networks": [{"id": 9, "name": "private (provision_7)", "template": {"vn_mad": "vxlan", "ar": [{"size": 1}], "name": "x"}}],
                "datastores": [{"id": 103, "name": "sys (provision_7)", "template": {"type": "SYSTEM_DS", "tm_mad": "ssh"}}]
            }
        });
        let facts = Facts { version: "7.2.0".into(), frontend_ip: "127.0.0.1".into() };
        let inv = inventory(source, 7, &body, &facts).unwrap();
        assert_eq!(inv.value["all"]["vars"]["one_version"], "7.2.0");
        assert_eq!(inv.value["all"]["vars"]["cidr"], "10.0.0.0/24");
        assert_eq!(inv.value["all"]["vars"]["provision"], "7-demo");
        assert_eq!(inv.value["all"]["vars"]["vn"]["private (provision_7)"]["template"], json!({"VN_MAD": "vxlan"}));
        assert_eq!(inv.value["all"]["vars"]["ds"]["config"]["SYSTEM_DS"]["sys (provision_7)"]["id"], "103");
        assert_eq!(inv.value["node"]["hosts"]["n2"]["ansible_host"], "10.0.0.6");
    }

    #[test]
    fn only_oneforms_variables_are_defined() {
        let facts = Facts { version: "7.2.0".into(), frontend_ip: "127.0.0.1".into() };
        let body = json!({"user_inputs_values": {"a": "x"}});
        let err = inventory("root: \"{{ connection.endpoint }}\"", 1, &body, &facts).unwrap_err();
        assert!(err.contains("undefined"), "{err}");
        let err = inventory("{% if connection %}x: 1{% endif %}", 1, &body, &facts).unwrap_err();
        assert!(err.contains("undefined"), "{err}");
        let source =
            "a: \"{{ user_inputs.a }}\"\nb: \"{{ user_inputs.b | default('d') }}\"\nc: {{ connection is defined }}";
        let inv = inventory(source, 1, &body, &facts).unwrap();
        assert_eq!(inv.value, json!({"a": "x", "b": "d", "c": false}));
    }

    #[test]
    fn template_errors_are_reported() {
        let err = inventory("{{ 1 + }}", 1, &json!({}), &Facts { version: String::new(), frontend_ip: String::new() });
        assert!(err.unwrap_err().contains("does not render"));
    }
}
