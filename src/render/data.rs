//! What a template prints is data: the tokens that stand for printed values while the YAML is
//! parsed, and the tagged inventory built from them.
//!
//! The formatter writes every string a `{{ … }}` prints as a token (`U+E000 nonce.n U+E001`:
//! digits between two private-use characters, inert in every YAML context and unchanged by case
//! filters; the nonce is drawn for each render, so a value cannot hold a token) and keeps the
//! string aside, so the YAML parser sees only the template's own text.
//! Numbers, booleans and none print as themselves (they cannot carry YAML or Jinja), lists and
//! mappings as flow collections of tokens, so they keep the shape they had. A string printed
//! from a captured block (`{% set %}…{% endset %}`, a macro) holds earlier tokens; they are
//! expanded into it when it is written, since all of it was printed.
//!
//! Then every scalar that holds a token is rebuilt with the real values: tagged `!unsafe` when
//! its literal text has no Jinja (Ansible never templates such a value), or, when the template's
//! text around the value is itself Ansible Jinja (`{% raw %}{{ sim_cloud_dir }}{% endraw %}/…`),
//! kept as that Jinja with each value replaced by a reference to an `!unsafe` entry of
//! [`VALUES_VAR`] in `all.vars`, so Ansible templates the driver's text and reads the values
//! as data. Keys built from values are written with their value, untagged (Ansible never
//! templates a key); a host or group name made from a value must be a plain name (Ansible
//! expands `[1:3]` and `host:port` in host names).

use std::sync::{Arc, Mutex};

use minijinja::value::ValueKind;
use serde_json::Value;
use serde_norway::value::{Tag, TaggedValue};

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The `all.vars` list holding the values that sit inside the driver's own Ansible Jinja.
pub const VALUES_VAR: &str = "_formwork_values";

/// The strings printed while rendering, in order; token `n` stands for the `n`-th.
#[derive(Clone)]
pub(super) struct Printed {
    printed: Arc<Mutex<Vec<String>>>,
    /// Drawn for each render from std's per-process random hash keys: it need not be secret,
    /// only unknown to whoever chose the values (kept before it was drawn).
    nonce: String,
}

impl Default for Printed {
    fn default() -> Printed {
        use std::hash::{BuildHasher, Hasher};
        let nonce = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Printed { printed: Arc::default(), nonce: format!("{nonce:020}") }
    }
}

/// A piece of a rendered string: the template's text, or the printed value with that index.
enum Piece<'a> {
    Text(&'a str),
    Value(usize),
}

impl Printed {
    /// Keeps `text` aside and returns the token that stands for it.
    pub(super) fn token(&self, text: String) -> String {
        let mut printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
        printed.push(text);
        format!("{OPEN}{}.{}{CLOSE}", self.nonce, printed.len() - 1)
    }

    /// `value` with each string replaced by its token, as if the template had printed it.
    pub(super) fn data(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.token(text.clone())),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.data(v)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.data(v))).collect()),
            other => other.clone(),
        }
    }

    /// minijinja's formatter: what each `{{ … }}` writes into the YAML text.
    pub(super) fn formatter(
        &self,
    ) -> impl Fn(&mut minijinja::Output, &mut minijinja::State, &minijinja::Value) -> Result<(), minijinja::Error>
    + Send
    + Sync
    + 'static {
        let printed = self.clone();
        move |out, _, value| Ok(out.write_str(&printed.print(value))?)
    }

    fn print(&self, value: &minijinja::Value) -> String {
        match value.kind() {
            ValueKind::Undefined => String::new(),
            ValueKind::None | ValueKind::Bool | ValueKind::Number => value.to_string(),
            ValueKind::Seq | ValueKind::Iterable => {
                let items = value.try_iter().into_iter().flatten().map(|v| self.item(&v));
                format!("[{}]", items.collect::<Vec<_>>().join(", "))
            }
            ValueKind::Map => {
                let entries = value.try_iter().into_iter().flatten().map(|k| {
                    let v = value.get_item(&k).unwrap_or_default();
                    format!("{}: {}", self.item(&k), self.item(&v))
                });
                format!("{{{}}}", entries.collect::<Vec<_>>().join(", "))
            }
            // Strings, bytes, objects, and whatever kind minijinja adds: data.
            _ => self.token(value.to_string()),
        }
    }

    /// An item of a printed list or mapping: strings quoted, as minijinja prints them.
    fn item(&self, value: &minijinja::Value) -> String {
        match value.kind() {
            ValueKind::Undefined
            | ValueKind::None
            | ValueKind::Bool
            | ValueKind::Number
            | ValueKind::Seq
            | ValueKind::Iterable
            | ValueKind::Map => self.print(value),
            _ => format!("\"{}\"", self.print(value)),
        }
    }

    /// Splits `text` at the tokens of values below `limit`.
    fn pieces<'a>(&self, text: &'a str, limit: usize) -> Vec<Piece<'a>> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(OPEN) {
            let token = &rest[start + OPEN.len_utf8()..];
            let after = token.strip_prefix(self.nonce.as_str()).and_then(|t| t.strip_prefix('.')).unwrap_or("");
            let digits = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
            let index = after[..digits].parse::<usize>().ok().filter(|i| *i < limit);
            match index {
                Some(index) if after[digits..].starts_with(CLOSE) => {
                    pieces.push(Piece::Text(&rest[..start]));
                    pieces.push(Piece::Value(index));
                    rest = &after[digits + CLOSE.len_utf8()..];
                }
                _ => {
                    let end = start + OPEN.len_utf8();
                    pieces.push(Piece::Text(&rest[..end]));
                    rest = &rest[end..];
                }
            }
        }
        pieces.push(Piece::Text(rest));
        pieces.retain(|p| !matches!(p, Piece::Text("")));
        pieces
    }

    /// The value printed as token `index`, with the earlier values it holds expanded.
    fn value(&self, index: usize) -> String {
        let text = self.printed.lock().unwrap_or_else(|e| e.into_inner())[index].clone();
        self.expand(&text, index)
    }

    fn expand(&self, text: &str, limit: usize) -> String {
        self.pieces(text, limit)
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.to_owned(),
                Piece::Value(i) => self.value(i),
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.printed.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Where a mapping sits, for the names its keys are.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// The document: its keys are group names, its values groups.
    Groups,
    /// A group: `hosts` maps host names, `children` group names.
    Group,
    /// A group's `hosts` (host names) or `children` (group names).
    Names { children: bool },
    /// Variables and anything below them.
    Vars,
}

/// The parsed inventory with its tokens replaced: `plain` for formwork to read (every value in
/// place, no tags, no [`VALUES_VAR`]), `yaml` for Ansible.
pub(super) struct Built {
    pub plain: Value,
    pub yaml: serde_norway::Value,
}

/// Replaces the tokens of `inventory` by the values they stand for (see the module doc).
pub(super) fn build(inventory: &Value, printed: &Printed) -> Result<Built, String> {
    let mut writer = Writer { printed, limit: printed.len(), referenced: Vec::new() };
    let (plain, mut yaml) = writer.node(inventory, Place::Groups, "")?;
    if !writer.referenced.is_empty() {
        let values: Vec<serde_norway::Value> = writer.referenced.iter().map(|v| unsafe_text(v)).collect();
        yaml_vars(&mut yaml)?.insert(VALUES_VAR.into(), serde_norway::Value::Sequence(values));
    }
    Ok(Built { plain, yaml })
}

struct Writer<'a> {
    printed: &'a Printed,
    limit: usize,
    /// Values written as references into [`VALUES_VAR`], in order.
    referenced: Vec<String>,
}

impl Writer<'_> {
    fn node(&mut self, value: &Value, place: Place, path: &str) -> Result<(Value, serde_norway::Value), String> {
        Ok(match value {
            Value::String(text) => self.text(text),
            Value::Array(items) => {
                let (plain, yaml) = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.node(v, Place::Vars, &format!("{path}[{i}]")))
                    .collect::<Result<(Vec<_>, Vec<_>), _>>()?;
                (Value::Array(plain), serde_norway::Value::Sequence(yaml))
            }
            Value::Object(map) => {
                let mut plain = serde_json::Map::new();
                let mut yaml = serde_norway::Mapping::new();
                for (key, v) in map {
                    let (name, key_yaml) = self.key(key, place, path)?;
                    let inner = match (place, key.as_str()) {
                        (Place::Groups, _) | (Place::Names { children: true }, _) => Place::Group,
                        (Place::Group, "hosts") => Place::Names { children: false },
                        (Place::Group, "children") => Place::Names { children: true },
                        _ => Place::Vars,
                    };
                    let (v_plain, v_yaml) = self.node(v, inner, &format!("{path}.{name}"))?;
                    plain.insert(name, v_plain);
                    yaml.insert(key_yaml, v_yaml);
                }
                (Value::Object(plain), serde_norway::Value::Mapping(yaml))
            }
            other => (other.clone(), serde_norway::to_value(other).map_err(|e| e.to_string())?),
        })
    }

    /// A scalar: as the template wrote it, the value alone tagged `!unsafe`, or the driver's
    /// Jinja with references to the values.
    fn text(&mut self, text: &str) -> (Value, serde_norway::Value) {
        let pieces = self.printed.pieces(text, self.limit);
        if !pieces.iter().any(|p| matches!(p, Piece::Value(_))) {
            return (Value::from(text), serde_norway::Value::String(text.to_owned()));
        }
        let real = self.printed.expand(text, self.limit);
        let literal: String =
            pieces.iter().filter_map(|p| if let Piece::Text(t) = p { Some(*t) } else { None }).collect();
        if !is_jinja(&literal) {
            return (Value::from(real.clone()), unsafe_text(&real));
        }
        let mut jinja = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(text) => jinja.push_str(text),
                Piece::Value(i) => {
                    jinja.push_str(&format!("{{{{ {VALUES_VAR}[{}] }}}}", self.referenced.len()));
                    self.referenced.push(self.printed.value(i));
                }
            }
        }
        (Value::from(real), serde_norway::Value::String(jinja))
    }

    /// A mapping key; one holding a value is that value's text, and a plain name where it
    /// names a host or a group. Keys go untagged: Ansible templates a mapping's values, never
    /// its keys (and serde_norway cannot write a tagged key).
    fn key(&mut self, key: &str, place: Place, path: &str) -> Result<(String, serde_norway::Value), String> {
        let pieces = self.printed.pieces(key, self.limit);
        if !pieces.iter().any(|p| matches!(p, Piece::Value(_))) {
            return Ok((key.to_owned(), serde_norway::Value::String(key.to_owned())));
        }
        let real = self.printed.expand(key, self.limit);
        let names = match place {
            Place::Groups | Place::Names { children: true } => Some("group"),
            Place::Names { children: false } => Some("host"),
            Place::Group | Place::Vars => None,
        };
        if let Some(what) = names.filter(|_| !is_plain_name(&real)) {
            let at = if path.is_empty() { "the top level".to_owned() } else { format!("`{}`", &path[1..]) };
            return Err(format!(
                "the deployment template makes the {what} name {real:?} (at {at}) from a value: a {what} name \
                 made from a value may hold only letters, digits, '.', '_' and '-'; change the value or give the \
                 {what} a fixed name and the value as a variable"
            ));
        }
        Ok((real.clone(), serde_norway::Value::String(real)))
    }
}

/// `value` as YAML with every string tagged `!unsafe`.
pub(super) fn unsafe_strings(value: &Value) -> serde_norway::Value {
    match value {
        Value::String(text) => unsafe_text(text),
        Value::Array(items) => serde_norway::Value::Sequence(items.iter().map(unsafe_strings).collect()),
        Value::Object(map) => serde_norway::Value::Mapping(
            map.iter().map(|(k, v)| (serde_norway::Value::String(k.clone()), unsafe_strings(v))).collect(),
        ),
        other => serde_norway::to_value(other).unwrap_or(serde_norway::Value::Null),
    }
}

/// `text` tagged `!unsafe`: Ansible never templates it.
fn unsafe_text(text: &str) -> serde_norway::Value {
    serde_norway::Value::Tagged(Box::new(TaggedValue {
        tag: Tag::new("unsafe"),
        value: serde_norway::Value::String(text.to_owned()),
    }))
}

/// Whether Jinja would see a template in `text`.
fn is_jinja(text: &str) -> bool {
    ["{{", "{%", "{#"].iter().any(|open| text.contains(open))
}

/// A name Ansible reads as itself: no ranges, ports, patterns or spaces.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn yaml_vars(yaml: &mut serde_norway::Value) -> Result<&mut serde_norway::Mapping, String> {
    let mapping = |v: &mut serde_norway::Value| {
        if v.is_null() {
            *v = serde_norway::Value::Mapping(Default::default());
        }
    };
    let root = yaml.as_mapping_mut().ok_or("the inventory must be a mapping of groups")?;
    let all = root.entry("all".into()).or_insert(serde_norway::Value::Null);
    mapping(all);
    let all = all.as_mapping_mut().ok_or("the inventory's `all` must be a mapping")?;
    let vars = all.entry("vars".into()).or_insert(serde_norway::Value::Null);
    mapping(vars);
    vars.as_mapping_mut().ok_or_else(|| "the inventory's `all.vars` must be a mapping".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::{Facts, Inventory, inventory};
    use super::VALUES_VAR;

    /// What a value may hold: quotes, a line break, YAML structure, Ansible Jinja, the end of
    /// a raw block, and a forged token.
    const NASTY: &str = "v\"q'\n  x: [1, {y: z}] # c\r\n\t{{ lookup('pipe', 'touch /tmp/fw-probe') }}{% raw %}{% endraw %}{% endraw %}\\ \u{E000}0\u{E001}";

    /// A template that prints a value in every YAML context, through filters, a captured
    /// block, a conditional and the driver's own Ansible Jinja.
    const TEMPLATE: &str = r#"all:
  vars:
    double: "{{ user_inputs.a }}"
    single: '{{ user_inputs.a }}'
    plain: {{ user_inputs.a }}
    joined: "/{{ user_inputs.a }}/{{ user_inputs.b }}-{{ id }}"
    upper: "{{ user_inputs.b | upper }}"
    default: "{{ user_inputs.missing | default(user_inputs.a) }}"
    block: |
      line {{ user_inputs.a }}
    flow: { k: "{{ user_inputs.a }}", n: {{ id }} }
    listed: {{ user_inputs.list }}
    keyed:
      "{{ user_inputs.a }}": 1
    {% set captured %}<{{ user_inputs.a }}>{% endset %}
    captured: "{{ captured }}"
    {% if user_inputs.b == "B" %}
    chosen: "{{ name }}"
    {% endif %}
    ansible: "{% raw %}{{ playbook_dir }}{% endraw %}/{{ user_inputs.a }}"
node:
  hosts:
    {% for node in one.nodes %}
    n{{ loop.index }}: { ansible_host: "{{ node }}" }
    {% endfor %}
"#;

    fn render(a: &str) -> Result<Inventory, String> {
        let body = json!({"name": a, "user_inputs_values": {"a": a, "b": "B", "list": [a, 2]},
            "one_objects": {"hosts": [{"id": 1, "name": a}]}});
        inventory(TEMPLATE, 7, &body, &Facts { version: "7.0.0".into(), frontend_ip: "127.0.0.1".into() })
    }

    /// `value` with `from` replaced by `to` in every string and key.
    fn replaced(value: &Value, from: &str, to: &str) -> Value {
        match value {
            Value::String(s) => Value::String(s.replace(from, to)),
            Value::Array(items) => Value::Array(items.iter().map(|v| replaced(v, from, to)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.replace(from, to), replaced(v, from, to))).collect())
            }
            other => other.clone(),
        }
    }

    #[test]
    fn a_value_changes_no_structure_and_arrives_byte_for_byte() {
        let plain = render("PLAIN").unwrap().value;
        assert_eq!(plain["all"]["vars"]["plain"], "PLAIN");
        assert_eq!(plain["all"]["vars"]["listed"], json!(["PLAIN", 2]));
        assert_eq!(plain["all"]["vars"]["upper"], "B");
        assert_eq!(plain["all"]["vars"]["captured"], "<PLAIN>");
        assert_eq!(plain["all"]["vars"]["chosen"], "PLAIN", "conditionals see the values");
        assert_eq!(plain["all"]["vars"]["ansible"], "{{ playbook_dir }}/PLAIN");
        let nasty = render(NASTY).unwrap();
        assert_eq!(nasty.value, replaced(&plain, "PLAIN", NASTY));
    }

    /// Reads the written inventory back: every string holding the value is tagged `!unsafe`,
    /// and the driver's Jinja reads it from the `!unsafe` list.
    #[test]
    fn every_value_is_written_unsafe() {
        let text = render(NASTY).unwrap().to_yaml().unwrap();
        let yaml: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        let mut unsafe_values = 0;
        walk(&yaml, &mut |value, tag| {
            if value.contains("lookup") {
                assert_eq!(tag, Some("!unsafe"), "{value:?} in\n{text}");
                unsafe_values += 1;
            }
        });
        assert_eq!(unsafe_values, 12, "{text}");
        let vars = &yaml["all"]["vars"];
        assert_eq!(
            vars["ansible"],
            serde_norway::Value::String(format!("{{{{ playbook_dir }}}}/{{{{ {VALUES_VAR}[0] }}}}"))
        );
        let listed = serde_norway::to_string(&vars[VALUES_VAR]).unwrap();
        assert_eq!(listed, serde_norway::to_string(&vec![super::unsafe_text(NASTY)]).unwrap());
    }

    /// Calls `check(text, tag)` for every string of `value` (keys are never templated).
    fn walk(value: &serde_norway::Value, check: &mut dyn FnMut(&str, Option<&str>)) {
        match value {
            serde_norway::Value::String(s) => check(s, None),
            serde_norway::Value::Tagged(tagged) => match &tagged.value {
                serde_norway::Value::String(s) => check(s, Some(&tagged.tag.to_string())),
                other => walk(other, check),
            },
            serde_norway::Value::Sequence(items) => items.iter().for_each(|v| walk(v, check)),
            serde_norway::Value::Mapping(map) => map.values().for_each(|v| walk(v, check)),
            _ => {}
        }
    }

    #[test]
    fn a_host_or_group_named_from_a_value_must_be_a_plain_name() {
        let body = |host: &str| json!({"one_objects": {"hosts": [{"id": 1, "name": host}]}});
        let facts = Facts { version: "7.0.0".into(), frontend_ip: "127.0.0.1".into() };
        let hosts = "node:\n  hosts:\n    {% for n in one.nodes %}\"{{ n }}\": {}\n    {% endfor %}";
        let inv = inventory(hosts, 1, &body("10.0.0.5"), &facts).unwrap();
        assert_eq!(inv.value, json!({"node": {"hosts": {"10.0.0.5": {}}}}));
        for bad in ["web[1:9]", "10.0.0.5:2222", "a b", ""] {
            let err = inventory(hosts, 1, &body(bad), &facts).unwrap_err();
            assert!(err.contains(&format!("the host name {bad:?} (at `node.hosts`)")), "{err}");
        }
        let groups = "\"{{ one.nodes[0] }}\":\n  children:\n    \"{{ one.nodes[0] }}x\": {}";
        let err = inventory(groups, 1, &body("g*"), &facts).unwrap_err();
        assert!(err.contains("the group name \"g*\" (at the top level)"), "{err}");
        assert!(inventory(groups, 1, &body("g"), &facts).is_ok());
    }

    #[test]
    fn numbers_and_booleans_print_as_themselves() {
        let facts = Facts { version: "7.0.0".into(), frontend_ip: "127.0.0.1".into() };
        let body = json!({"user_inputs_values": {"n": 1450, "f": 1.5, "t": true}});
        let source =
            "a: {{ user_inputs.n }}\nb: {{ user_inputs.f }}\nc: {{ user_inputs.t }}\nd: \"{{ user_inputs.n }}\"";
        let inv = inventory(source, 1, &body, &facts).unwrap();
        assert_eq!(inv.value, json!({"a": 1450, "b": 1.5, "c": true, "d": "1450"}));
        assert_eq!(inv.to_yaml().unwrap(), "a: 1450\nb: 1.5\nc: true\nd: '1450'\n");
    }

    #[test]
    fn extra_variables_strings_are_unsafe() {
        let yaml = super::super::unsafe_yaml(&json!({"provision_id": 3, "version": "{{ x }}"})).unwrap();
        assert_eq!(yaml, "provision_id: 3\nversion: !unsafe '{{ x }}'\n");
    }
}
