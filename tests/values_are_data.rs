//! Input values are data: whatever a driver's deployment template does with them, a value
//! with quotes, line breaks, YAML, Ansible Jinja (`{{ lookup('pipe', …) }}`) or the end of a
//! raw block changes nothing in the inventory's structure, arrives byte for byte, and reaches
//! Ansible tagged `!unsafe`. Checked over every deployment of the built-in drivers and of a
//! registry (OneForm) driver, every string input at once; then with the real ansible-playbook
//! (`.tools/venv`): no command in a value runs, and the value reaches the hosts unchanged.

// The real-tools tests run formwork as a user would: they spawn it.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};

use common::{Home, builtin_drivers};
use formwork::driver::input::BaseType;
use formwork::driver::{Catalog, Input, deployment};
use formwork::render::{self, Facts};
use serde_json::{Value, json};

/// What follows each value's marker: quotes, a line break with YAML after it, Ansible Jinja,
/// the end of raw blocks, a backslash, a tab and a carriage return.
const NASTY: &str = "\"q'\n  x: [1, {y: z}] # c\r\n\t{{ lookup('pipe', 'touch /tmp/formwork-never') }}{% raw %}{% endraw %}{% endraw %}\\";

fn catalog() -> (tempfile::TempDir, Catalog) {
    let tmp = tempfile::tempdir().unwrap();
    let registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry");
    let catalog = Catalog::open(&builtin_drivers(), &[registry], tmp.path().join("states")).unwrap();
    (tmp, catalog)
}

/// A value for each input: strings (and the strings of lists and maps) are a marker naming the
/// input followed by `suffix`; inputs restricted to a list of values, and other types, keep
/// their default (or 1). They are not validated: whatever validation lets through (it refuses
/// such text in some inputs, e.g. onprem's host addresses, sim's CIDR), rendering must hold.
fn values(inputs: &[Input], suffix: &str) -> serde_json::Map<String, Value> {
    let mut values = serde_json::Map::new();
    for (k, input) in inputs.iter().enumerate() {
        let text = |part: &str| json!(format!("/M{k}{part}M{suffix}"));
        let restricted = input.match_rule.as_ref().is_some_and(|m| m["type"] == "list");
        let base = input.compiled.as_ref().map(|c| &c.base);
        let value = match base {
            Some(BaseType::String) if !restricted => text(""),
            Some(BaseType::List | BaseType::Tuple) if input.type_text.contains("string") => {
                json!([text("a"), text("b")])
            }
            Some(BaseType::Map) if input.type_text.contains("string") => json!({"key": text("")}),
            _ => fallback(input),
        };
        values.insert(input.name.clone(), value);
    }
    values
}

fn fallback(input: &Input) -> Value {
    input.default.clone().filter(|d| !d.is_null()).unwrap_or(json!(1))
}

/// The provision body a template renders with: every value, the provision's name and two
/// hosts with markers too, its networks and datastores named as OpenNebula names them.
fn body(source: &str, inputs: &[Input], suffix: &str) -> Value {
    let mut values = values(inputs, suffix);
    // acme's nfs_cluster template reads `dns`, which none of its inputs declares.
    values.entry("dns").or_insert(json!(format!("/MdnsM{suffix}")));
    let mut objects = deployment::one_objects(source, Some(&values)).unwrap();
    for kind in ["networks", "datastores"] {
        for (i, object) in objects[kind].as_array_mut().unwrap().iter_mut().enumerate() {
            object["id"] = json!(100 + i);
            object["name"] = json!(format!("{} (provision_7)", object["name"].as_str().unwrap()));
        }
    }
    objects["hosts"] =
        json!([{"id": 1, "name": format!("/MhaM{suffix}")}, {"id": 2, "name": format!("/MhbM{suffix}")}]);
    json!({"name": format!("/MnM{suffix}"), "user_inputs_values": values, "one_objects": objects})
}

/// `value` with every marker `/M…M` followed by `NASTY`.
fn with_nasty(value: &Value) -> Value {
    let add = |s: &str| {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("/M") {
            let Some(end) = rest[start + 2..].find('M') else { break };
            let end = start + 2 + end + 1;
            out.push_str(&rest[..end]);
            out.push_str(NASTY);
            rest = &rest[end..];
        }
        out + rest
    };
    match value {
        Value::String(s) => Value::String(add(s)),
        Value::Array(items) => Value::Array(items.iter().map(with_nasty).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (add(k), with_nasty(v))).collect()),
        other => other.clone(),
    }
}

/// Every string of `yaml` that is not tagged `!unsafe` (keys aside: Ansible never templates one).
fn untagged(yaml: &serde_norway::Value) -> Vec<String> {
    match yaml {
        serde_norway::Value::String(s) => vec![s.clone()],
        serde_norway::Value::Tagged(t) if t.tag == "unsafe" && t.value.is_string() => vec![],
        serde_norway::Value::Tagged(t) => untagged(&t.value),
        serde_norway::Value::Sequence(items) => items.iter().flat_map(untagged).collect(),
        serde_norway::Value::Mapping(map) => map.values().flat_map(untagged).collect(),
        _ => vec![],
    }
}

#[test]
fn every_string_input_of_every_driver_stays_data() {
    let (_tmp, catalog) = catalog();
    let facts = Facts { version: "7.0.0".into(), frontend_ip: "127.0.0.1".into() };
    let mut checked = vec![];
    for name in ["onprem", "sim", "acme"] {
        let driver = catalog.usable(name).unwrap();
        for deployment in &driver.deployment_confs {
            let inputs = driver.provision_inputs(deployment);
            let marked = body(&deployment.source, &inputs, "");
            let plain = render::inventory(&deployment.source, 7, &marked, &facts).unwrap();
            let nasty_body = body(&deployment.source, &inputs, NASTY);
            let nasty = render::inventory(&deployment.source, 7, &nasty_body, &facts)
                .unwrap_or_else(|e| panic!("{name}/{}: {e}", deployment.inventory));
            assert_eq!(nasty.value, with_nasty(&plain.value), "{name}/{}", deployment.inventory);
            let text = nasty.to_yaml().unwrap();
            let yaml: serde_norway::Value = serde_norway::from_str(&text).unwrap();
            let bare: Vec<String> = untagged(&yaml).into_iter().filter(|s| s.contains("formwork-never")).collect();
            assert!(bare.is_empty(), "{name}/{}: values not tagged !unsafe: {bare:?}\n{text}", deployment.inventory);
            let values = marked["user_inputs_values"].as_object().unwrap();
            let mut marked: Vec<&str> =
                values.iter().filter(|(_, v)| v.to_string().contains("/M")).map(|(k, _)| k.as_str()).collect();
            marked.sort();
            checked.push(format!("{name}/{}: {}", deployment.inventory, marked.join(" ")));
        }
    }
    let want = [
        "onprem/ssh_cluster: dns gateway ip network_address network_mask node_state_dir oneform_onprem_hosts oneform_tags phydev_name",
        "sim/sim_cluster: cidr_block dns oneform_tags zone",
        "acme/nfs_cluster: dns labels nfs_path nfs_server oneform_tags zone",
        "acme/ssh_cluster: dns labels oneform_tags zone",
    ];
    assert_eq!(checked, want, "every string input (those restricted to a list of values aside) was checked");
}

/// A formwork home with the built-in drivers and the real ansible-playbook (no Terraform: the
/// onprem driver runs none), OpenNebula being formwork's own model.
fn real_ansible() -> Home {
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/ansible-playbook");
    assert!(playbook.exists(), "{} is missing: run scripts/setup first", playbook.display());
    let mut home = Home::with_builtin();
    home.env.push(("FORMWORK_ANSIBLE_PLAYBOOK".into(), playbook.display().to_string()));
    home
}

/// Creates an onprem provision of one local host with `values`; `probe` must not appear.
fn create(home: &Home, values: &Value, probe: &Path) {
    let mut all = json!({"oneform_onprem_hosts": ["127.0.0.1"], "node_connection": "local"});
    all.as_object_mut().unwrap().extend(values.as_object().unwrap().clone());
    let run =
        home.run_with_stdin(&["--json", "provision", "create", "onprem", "--values", "-"], Some(&all.to_string()));
    assert!(!probe.exists(), "the command in a value ran");
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.json()["state"], "RUNNING");
}

/// The node.conf the `one_node` role wrote for the host, read as YAML.
fn node_conf(state_dir: &Path) -> Value {
    let conf = std::fs::read_to_string(state_dir.join("127.0.0.1/node.conf")).unwrap();
    serde_norway::from_str(&conf).unwrap()
}

fn probe(home: &Home) -> (PathBuf, String) {
    let probe = home.tmp.path().join("probe");
    let lookup = format!("{{{{ lookup('pipe', 'touch {}') }}}}", probe.display());
    (probe, lookup)
}

/// Bug: Ansible templated a value on the formwork host, running its command.
#[test]
fn a_command_in_a_value_never_runs() {
    let home = real_ansible();
    let (probe, lookup) = probe(&home);
    let state_dir = home.tmp.path().join(format!("nodes{lookup}"));
    create(&home, &json!({"node_state_dir": state_dir}), &probe);
    let conf = node_conf(&state_dir);
    assert_eq!(conf["host"]["state_dir"].as_str().unwrap(), format!("{}/127.0.0.1", state_dir.display()));
}

/// Bug: a quote in a value broke the rendered inventory ("not YAML"); a line break could add
/// keys to it.
#[test]
fn every_string_input_reaches_the_host_unchanged() {
    let home = real_ansible();
    let (probe, lookup) = probe(&home);
    // A backslash ends no value: OpenNebula's template syntax, where these values go too, has
    // no way to write one before the closing quote.
    let nasty = format!("\"q'\\ \n  x: [1, {{y: z}}] # c\r\n\t{lookup}{{% raw %}}{{% endraw %}}{{% endraw %}}");
    let state_dir = home.tmp.path().join(format!("nodes{nasty}"));
    let inputs = ["phydev_name", "network_address", "network_mask", "gateway", "dns", "ip"];
    let mut values = json!({"node_state_dir": state_dir});
    for input in inputs {
        values[input] = json!(format!("{input}{nasty}"));
    }
    create(&home, &values, &probe);
    let conf = node_conf(&state_dir);
    assert_eq!(conf["host"]["state_dir"].as_str().unwrap(), format!("{}/127.0.0.1", state_dir.display()));
    let network = &conf["networks"][0];
    assert_eq!(network["name"], "private_onprem_network (provision_1)");
    let template = &network["template"];
    for (input, key) in inputs.iter().zip(["PHYDEV", "NETWORK_ADDRESS", "NETWORK_MASK", "GATEWAY", "DNS"]) {
        assert_eq!(template[key].as_str(), Some(format!("{input}{nasty}").as_str()), "{key} in {template:?}");
    }
}

/// Where the driver's own text around a value is Ansible Jinja, Ansible templates that text and
/// reads the value as data.
#[test]
fn a_value_inside_the_drivers_own_jinja_is_still_data() {
    let mut home = real_ansible();
    let drivers = home.tmp.path().join("drivers");
    common::copy_dir(&builtin_drivers().join("onprem"), &drivers.join("onprem"));
    let template = drivers.join("onprem/ansible/templates/ssh_cluster.j2");
    let source = std::fs::read_to_string(&template).unwrap();
    let line = r#"node_state_dir: "{{ user_inputs.node_state_dir"#;
    assert!(source.contains(line), "the onprem template changed: pick another line");
    let own_jinja =
        r#"node_state_dir: "{% raw %}{{ 'x' | replace('x', '') }}{% endraw %}{{ user_inputs.node_state_dir"#;
    std::fs::write(&template, source.replace(line, own_jinja)).unwrap();
    home.builtin = drivers;

    let (probe, lookup) = probe(&home);
    let state_dir = home.tmp.path().join(format!("nodes\"'\n{lookup}{{% endraw %}}"));
    create(&home, &json!({"node_state_dir": state_dir}), &probe);
    let conf = node_conf(&state_dir);
    assert_eq!(conf["host"]["state_dir"].as_str().unwrap(), format!("{}/127.0.0.1", state_dir.display()));
}
