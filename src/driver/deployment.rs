//! Deployment types: one `ansible/templates/<inventory>.j2` each. The YAML inside its first
//! `{# ... #}` comment names the deployment and adds inputs; its body is a OneDeploy inventory
//! from which OneForm extracts the OpenNebula networks and datastores (`one_objects`).
//!
//! The extraction follows `driver.rb#deployment_objects` exactly: comments, full-line `#`
//! comments and `{% ... %}` tags are stripped; without values every `{{ ... }}` becomes `null`;
//! with values, only `{{ user_inputs.NAME }}` tokens inside the object templates are replaced.
//! That is substitution, not rendering: full Jinja2 rendering (minijinja) happens when the
//! inventory is written for Ansible. Here minijinja only checks the template compiles, so a
//! template that could never be rendered makes the driver ERROR at load rather than fail later.

use std::sync::LazyLock;

use fancy_regex::{Captures, Regex};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::input::{Input, ruby_to_s};

/// One deployment type, serialised as OneForm's `deployment_confs` entries.
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub name: String,
    pub description: String,
    /// The template's basename without `.j2`; what users pass as the deployment type.
    pub inventory: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onedeploy_tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_inputs: Option<Vec<Input>>,
    pub template_path: String,
    /// Networks and datastores with every `{{ ... }}` replaced by null.
    pub one_objects: Value,
    /// The template text, kept so `one_objects` can be computed for given values without
    /// reading the file again.
    #[serde(skip)]
    pub source: String,
}

static COMMENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)\{#.*?#\}").unwrap());
static LINE_COMMENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?m)^[ \t]*#.*$").unwrap());
static EXPRESSION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{\{.*?\}\}").unwrap());
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)\{%\s*.*?%\}").unwrap());
static USER_INPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*user_inputs\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}").unwrap());

/// Reads one deployment template. `file` is the name shown in errors and `path` the absolute
/// path recorded as `template_path`.
pub fn load(file: &str, path: &str, source: String) -> Result<Deployment, String> {
    let inventory = file.rsplit('/').next().unwrap_or(file).trim_end_matches(".j2").to_string();
    let meta = metadata(&source).ok_or_else(|| {
        format!("{file} has no `{{# ... #}}` metadata block: start it with a YAML comment giving name, description and user_inputs")
    })?;
    let conf = yaml_to_json(&meta).map_err(|e| format!("{file}: the metadata block is not valid YAML: {e}"))?;
    let Value::Object(conf) = conf else {
        return Err(format!(
            "{file}: the metadata block must be a YAML mapping with name, description and user_inputs"
        ));
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match conf.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) if v.is_object() || v.is_array() => Err(format!("{file}: metadata `{key}` must be text")),
            Some(v) => Ok(Some(ruby_to_s(v))),
        }
    };
    let name =
        text("name")?.ok_or(format!("{file}: the metadata block has no `name` (the deployment's display name)"))?;
    let description = text("description")?
        .ok_or(format!("{file}: the metadata block has no `description` (what this deployment builds)"))?;
    let onedeploy_tags = text("onedeploy_tags")?;
    let user_inputs = match conf.get("user_inputs") {
        None | Some(Value::Null) => None,
        Some(list) => Some(deployment_inputs(file, list)?),
    };
    check_renders(&source).map_err(|e| format!("{file} is not a valid Jinja2 template: {e}"))?;
    let one_objects = one_objects(&source, None).map_err(|e| format!("{file}: {e}"))?;
    Ok(Deployment {
        name,
        description,
        inventory,
        onedeploy_tags,
        user_inputs,
        template_path: path.to_string(),
        one_objects,
        source,
    })
}

fn deployment_inputs(file: &str, list: &Value) -> Result<Vec<Input>, String> {
    let items = list.as_array().ok_or(format!("{file}: metadata `user_inputs` must be a list of inputs"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut input: Input = serde_json::from_value(item.clone())
                .map_err(|e| format!("{file}: user input #{} is not an input (name, type, ...): {e}", i + 1))?;
            input.prepare().map_err(|e| format!("{file}: {e}"))?;
            Ok(input)
        })
        .collect()
}

/// The text between the first `{#` and the next `#}` (at least one character), trimmed.
pub fn metadata(source: &str) -> Option<String> {
    let start = source.find("{#")? + 2;
    let rest = &source[start..];
    let first = rest.chars().next()?.len_utf8();
    let end = first + rest[first..].find("#}")?;
    Some(rest[..end].trim().to_string())
}

/// Compiles the template with minijinja so syntax errors surface at load time.
fn check_renders(source: &str) -> Result<(), String> {
    let env = minijinja::Environment::new();
    env.template_from_str(source).map(|_| ()).map_err(|e| {
        let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
        format!("{}{line}", e.detail().unwrap_or("syntax error"))
    })
}

/// OneForm's `one_objects` for a template: `{cluster: {}, hosts: [], networks, datastores}`.
pub fn one_objects(source: &str, values: Option<&Map<String, Value>>) -> Result<Value, String> {
    let mut text = COMMENT.replace_all(source, "").into_owned();
    text = LINE_COMMENT.replace_all(&text, "").into_owned();
    if values.is_none() {
        text = EXPRESSION.replace_all(&text, "null").into_owned();
    }
    text = TAG.replace_all(&text, "").into_owned();
    let data =
        yaml_to_json(&text).map_err(|e| format!("the inventory is not valid YAML once Jinja tags are removed: {e}"))?;
    let vars = data.get("all").and_then(|a| a.get("vars"));
    let vn = vars.and_then(|v| v.get("vn")).filter(|v| !v.is_null());
    let ds = vars.and_then(|v| v.get("ds")).and_then(|d| d.get("config")).filter(|v| !v.is_null());
    let vn = vn.ok_or("networks template definition not found: the inventory needs `all.vars.vn`")?;
    let ds = ds.ok_or("datastores template definition not found: the inventory needs `all.vars.ds.config`")?;
    let vn = vn.as_object().ok_or("`all.vars.vn` must map network names to {managed, template}")?;
    let ds = ds.as_object().ok_or("`all.vars.ds.config` must map datastore types to datastores")?;

    let networks =
        vn.iter().map(|(name, conf)| object(name, conf, values, "network")).collect::<Result<Vec<_>, _>>()?;
    let mut datastores = Vec::new();
    for (kind, group) in ds {
        let group =
            group.as_object().ok_or(format!("`all.vars.ds.config.{kind}` must map datastore names to {{template}}"))?;
        for (name, conf) in group {
            datastores.push(object(name, conf, values, "datastore")?);
        }
    }
    if networks.is_empty() || datastores.is_empty() {
        return Err(
            "a deployment needs at least one network (`all.vars.vn`) and one datastore (`all.vars.ds.config`)".into()
        );
    }
    Ok(json!({"cluster": {}, "hosts": [], "networks": networks, "datastores": datastores}))
}

fn object(name: &str, conf: &Value, values: Option<&Map<String, Value>>, what: &str) -> Result<Value, String> {
    let template = match conf {
        Value::Object(c) => c.get("template").cloned().unwrap_or(Value::Null),
        Value::Null => Value::Null,
        _ => {
            return Err(format!("{what} '{name}' must be a mapping with a `template`"));
        }
    };
    let mut template = if template.is_null() { json!({}) } else { template };
    if let Some(values) = values {
        substitute(&mut template, values);
    }
    Ok(json!({"id": null, "name": name, "template": template}))
}

/// Replaces `{{ user_inputs.NAME }}` tokens in every string of `value` (OneForm's
/// `replace_user_inputs!`): a known input becomes its text, an unknown one `null`.
fn substitute(value: &mut Value, values: &Map<String, Value>) {
    match value {
        Value::String(s) if s.contains("{{") => {
            let replaced = USER_INPUT.replace_all(s, |caps: &Captures<'_, str>| match values.get(&caps[1]) {
                Some(v) => ruby_to_s(v),
                None => "null".to_string(),
            });
            *s = replaced.into_owned();
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, values)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, values)),
        _ => {}
    }
}

/// Parses YAML into JSON values: tags are dropped, number, boolean and null keys become their
/// text, and non-finite floats become null. A list or mapping as a key is refused: written as
/// JSON text it would hold its own keys as escaped JSON text, doubling in size with every level
/// (`{{{…}}}` 38 levels deep, from a 107-byte template, needed 2^38 bytes).
pub fn yaml_to_json(text: &str) -> Result<Value, String> {
    let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    convert(value)
}

fn convert(value: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(convert).collect::<Result<_, _>>()?),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match convert(k)? {
                        Value::String(s) => s,
                        Value::Array(_) | Value::Object(_) => {
                            return Err("a mapping key is a list or a mapping: keys must be text".to_string());
                        }
                        other => other.to_string(),
                    };
                    Ok((key, convert(v)?))
                })
                .collect::<Result<_, _>>()?,
        ),
        Y::Tagged(tagged) => convert(tagged.value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{#
name: Sim Cluster
description: |
  <p>Two networks</p>
onedeploy_tags: "stage2"
user_inputs:
  - name: oneform_public_ips
    type: number
    default: 0
    mandatory: false
    match: { type: number, values: { min: 0, max: 5 } }
#}
---
# a comment line: {{ ignored }}
all:
  vars:
    one_version: "{{ one.version }}"
    ds:
      mode: generic
      config:
        SYSTEM_DS:
          sim_system: { id: "{{ one.system_ds_id }}", template: { type: SYSTEM_DS, tm_mad: ssh } }
        IMAGE_DS:
          sim_image:
            template: { type: IMAGE_DS, ds_mad: fs }
    vn:
      private:
        managed: true
        template:
          vn_mad: vxlan
          network_address: "{{ user_inputs.cidr }}"
          dns: "{{ user_inputs.missing }} {{ user_inputs.count }}"
          ar: { type: ip4, ip: 10.0.0.10, size: 10 }
      public:
        template: { vn_mad: elastic }
node:
  hosts:
    {% for node in one.nodes %}
    n{{ loop.index }}: { ansible_host: "{{ node }}" }
    {% endfor %}
"#;

    #[test]
    fn metadata_and_objects_are_extracted() {
        let d = load("ansible/templates/sim.j2", "/d/ansible/templates/sim.j2", TEMPLATE.into()).unwrap();
        assert_eq!(d.name, "Sim Cluster");
        assert_eq!(d.inventory, "sim");
        assert_eq!(d.description, "<p>Two networks</p>\n");
        assert_eq!(d.onedeploy_tags.as_deref(), Some("stage2"));
        assert_eq!(d.user_inputs.as_ref().unwrap()[0].name, "oneform_public_ips");
        let objects = &d.one_objects;
        assert_eq!(objects["cluster"], json!({}));
        assert_eq!(objects["hosts"], json!([]));
        assert_eq!(objects["networks"][0]["name"], json!("private"));
        assert_eq!(objects["networks"][0]["template"]["network_address"], json!("null"));
        assert_eq!(objects["networks"][1], json!({"id": null, "name": "public", "template": {"vn_mad": "elastic"}}));
        let names: Vec<&Value> = objects["datastores"].as_array().unwrap().iter().map(|d| &d["name"]).collect();
        assert_eq!(names, vec!["sim_system", "sim_image"]);
    }

    #[test]
    fn values_substitute_only_user_input_tokens() {
        let mut values = Map::new();
        values.insert("cidr".into(), json!("10.1.0.0"));
        values.insert("count".into(), json!(3));
        let objects = one_objects(TEMPLATE, Some(&values)).unwrap();
        let template = &objects["networks"][0]["template"];
        assert_eq!(template["network_address"], json!("10.1.0.0"));
        assert_eq!(template["dns"], json!("null 3"));
        assert_eq!(objects["datastores"][0]["id"], json!(null));
    }

    #[test]
    fn missing_parts_are_named() {
        let no_meta = load("t.j2", "/t.j2", "all: {}".into()).unwrap_err();
        assert!(no_meta.contains("no `{# ... #}` metadata block"), "{no_meta}");
        let no_name = load("t.j2", "/t.j2", "{# description: x #}\nall: {}".into()).unwrap_err();
        assert!(no_name.contains("no `name`"), "{no_name}");
        let no_vn = load("t.j2", "/t.j2", "{# {name: a, description: b} #}\nall: {vars: {ds: {config: {}}}}".into())
            .unwrap_err();
        assert!(no_vn.contains("all.vars.vn"), "{no_vn}");
        let empty =
            load("t.j2", "/t.j2", "{# {name: a, description: b} #}\nall: {vars: {vn: {}, ds: {config: {}}}}".into());
        assert!(empty.unwrap_err().contains("at least one network"));
        let broken =
            load("t.j2", "/t.j2", "{# {name: a, description: b} #}\n{% for x in y %}\nall: {}".into()).unwrap_err();
        assert!(broken.contains("not a valid Jinja2 template"), "{broken}");
    }

    #[test]
    fn yaml_keys_are_text_and_lists_or_mappings_as_keys_are_refused() {
        let value = yaml_to_json("1: a\ntrue: b\n~: c\n!tag x: d").unwrap();
        assert_eq!(value, json!({"1": "a", "true": "b", "null": "c", "x": "d"}));
        // Found by the j2_metadata fuzz target: as JSON text this key needed 2^38 bytes.
        let nested = format!("{}{}", "{".repeat(38), "}".repeat(38));
        assert!(yaml_to_json(&nested).unwrap_err().contains("keys must be text"));
        assert!(yaml_to_json("? [1, 2]\n: x").unwrap_err().contains("keys must be text"));
    }

    #[test]
    fn metadata_block_needs_content() {
        assert_eq!(metadata("{##} {# a: 1 #}").as_deref(), Some("#} {# a: 1"));
        assert_eq!(metadata("{#é#}").as_deref(), Some("é"));
        assert_eq!(metadata("x {# name: a #} y").as_deref(), Some("name: a"));
        assert_eq!(metadata("{# unterminated"), None);
    }
}
