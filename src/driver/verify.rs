//! Verification of one driver folder, in OneForm's order (`driver.rb#verify_driver`), then the
//! full load that builds the driver body. The first problem found is returned as a message that
//! names the file and says what it must contain; the catalogue stores it as the ERROR reason.

use std::path::Path;

use serde_json::{Map, Value};

use super::capabilities::Capabilities;
use super::deployment::{self, Deployment, yaml_to_json};
use super::files::DriverDir;
use super::input::Input;
use super::terraform;

/// The parts of a verified driver folder (everything of the OneForm body but its state).
#[derive(Debug, Clone)]
pub struct Parts {
    pub conf: Conf,
    pub connection: Vec<Input>,
    pub user_inputs: Vec<Input>,
    pub deployments: Vec<Deployment>,
}

/// What `driver.conf` provides.
#[derive(Debug, Clone)]
pub struct Conf {
    pub name: String,
    pub description: String,
    /// Kept as written (`'1.0.0'` or a bare number) because OneForm copies it verbatim.
    pub version: Value,
    pub fireedge: Value,
    /// What the driver supports, from `fireedge.operations` and formwork's `formwork` keys.
    pub capabilities: Capabilities,
}

const TERRAFORM_FILES: [(&str, &str); 4] = [
    ("main.tf", "the Terraform resources that make the hosts"),
    ("outputs.tf", "the `provisioned_hosts` output, a list of {instance_id, instance_ip}"),
    ("provider.tf", "the provider block and the `variable`s that become connection inputs"),
    ("variables.tf", "the `variable` blocks that become user inputs"),
];

const ANSIBLE_FILES: [(&str, &str); 3] = [
    ("ansible.cfg", "the Ansible configuration used for every run"),
    ("inventory.yaml", "the inventory plugin line `plugin: opennebula_form`"),
    ("site.yaml", "the playbook entry point"),
];

const IPAM_SCRIPTS: [&str; 5] =
    ["allocate_address", "free_address", "get_address", "register_address_range", "unregister_address_range"];

/// Verifies the folder and builds its parts.
pub fn load(path: &Path) -> Result<Parts, String> {
    let dir = DriverDir::open(path)?;
    let templates = check_layout(&dir)?;
    let conf = read_conf(&dir)?;
    let validators = match dir.is_file("terraform/validators.tf") {
        true => tf_body(&dir, "terraform/validators.tf")
            .and_then(|body| terraform::validators(&body).map_err(|e| format!("terraform/validators.tf {e}")))?,
        false => Map::new(),
    };
    let connection = tf_inputs(&dir, "terraform/provider.tf", &validators)?;
    let user_inputs = tf_inputs(&dir, "terraform/variables.tf", &validators)?;
    let outputs = tf_body(&dir, "terraform/outputs.tf")?;
    if !terraform::has_output(&outputs, "provisioned_hosts") {
        return Err("terraform/outputs.tf has no `output \"provisioned_hosts\"`: it must output the hosts \
                    as a list of {instance_id, instance_ip}"
            .into());
    }
    let deployments = templates
        .into_iter()
        .map(|(rel, source)| deployment::load(&rel, &dir.path(&rel).display().to_string(), source))
        .collect::<Result<Vec<_>, _>>()?;
    for deployment in &deployments {
        let all: Vec<&Input> = user_inputs.iter().chain(deployment.user_inputs.iter().flatten()).collect();
        check_grouping(&all).map_err(|e| format!("deployment '{}': {e}", deployment.inventory))?;
    }
    check_grouping(&connection.iter().collect::<Vec<_>>()).map_err(|e| format!("terraform/provider.tf: {e}"))?;
    Ok(Parts { conf, connection, user_inputs, deployments })
}

/// The presence checks, in OneForm's order; returns each template's path and text.
fn check_layout(dir: &DriverDir) -> Result<Vec<(String, String)>, String> {
    if !dir.is_file("driver.conf") {
        return Err(
            "driver.conf is missing: the driver needs a YAML driver.conf with name, description, version and fireedge"
                .into(),
        );
    }
    require_dir(dir, "terraform", "main.tf, outputs.tf, provider.tf and variables.tf")?;
    for (file, what) in TERRAFORM_FILES {
        require_file(dir, &format!("terraform/{file}"), what)?;
    }
    require_dir(dir, "ansible", "ansible.cfg, inventory.yaml, site.yaml and templates/")?;
    for (file, what) in ANSIBLE_FILES {
        require_file(dir, &format!("ansible/{file}"), what)?;
    }
    require_dir(dir, "ansible/templates", "one <deployment>.j2 template per deployment type")?;
    let names = templates(dir)?;
    if names.is_empty() {
        return Err("ansible/templates/ holds no .j2 template: add one <deployment>.j2 per deployment type".into());
    }
    let mut sources = Vec::with_capacity(names.len());
    for name in names {
        let rel = format!("ansible/templates/{name}");
        let source = dir.read(&rel)?;
        if deployment::metadata(&source).is_none() {
            return Err(format!(
                "{rel} has no `{{# ... #}}` metadata block: start it with a YAML comment giving name, description and user_inputs"
            ));
        }
        sources.push((rel, source));
    }
    if dir.is_dir("elastic") && is_empty(dir, "elastic")? {
        return Err("elastic/ is empty: remove it or add the driver's elastic IP script (*_vnm.rb)".into());
    }
    if dir.is_dir("ipam") {
        for script in IPAM_SCRIPTS {
            require_file(
                dir,
                &format!("ipam/{script}"),
                "an IPAM driver action (all five are needed when ipam/ exists)",
            )?;
        }
    }
    Ok(sources)
}

fn require_dir(dir: &DriverDir, rel: &str, holds: &str) -> Result<(), String> {
    match dir.is_dir(rel) {
        true => Ok(()),
        false => Err(format!("{rel}/ is missing: the driver needs a {rel}/ folder with {holds}")),
    }
}

fn require_file(dir: &DriverDir, rel: &str, what: &str) -> Result<(), String> {
    match dir.is_file(rel) {
        true => Ok(()),
        false => Err(format!("{rel} is missing: it must contain {what}")),
    }
}

fn is_empty(dir: &DriverDir, rel: &str) -> Result<bool, String> {
    let mut entries = std::fs::read_dir(dir.path(rel)).map_err(|e| format!("{rel}/ cannot be read: {e}"))?;
    Ok(entries.next().is_none())
}

/// The `.j2` files of `ansible/templates/`, sorted by name so deployments list stably.
fn templates(dir: &DriverDir) -> Result<Vec<String>, String> {
    let read = std::fs::read_dir(dir.path("ansible/templates"))
        .map_err(|e| format!("ansible/templates/ cannot be read: {e}"))?;
    let mut names: Vec<String> = read
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".j2") && n.len() > 3)
        .collect();
    names.sort();
    Ok(names)
}

fn read_conf(dir: &DriverDir) -> Result<Conf, String> {
    let text = dir.read("driver.conf")?;
    let value = yaml_to_json(&text).map_err(|e| format!("driver.conf is not valid YAML: {e}"))?;
    let Value::Object(conf) = value else {
        return Err("driver.conf must be a YAML mapping with name, description, version and fireedge".into());
    };
    let text_key = |key: &str, what: &str| match conf.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(format!("driver.conf has no `{key}` ({what})")),
        Some(_) => Err(format!("driver.conf `{key}` must be text ({what})")),
    };
    let name = text_key("name", "the driver's display name")?;
    let description = text_key("description", "one line saying what the driver provisions")?;
    let version = match conf.get("version") {
        Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
        _ => {
            return Err("driver.conf has no `version` (the driver's version, e.g. '1.0.0')".into());
        }
    };
    let fireedge = match conf.get("fireedge") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => return Err("driver.conf has no `fireedge` mapping (UI hints: logo, color, operations, layout)".into()),
    };
    let capabilities = Capabilities::parse(&fireedge, conf.get("formwork"))?;
    Ok(Conf { name, description, version, fireedge, capabilities })
}

fn tf_body(dir: &DriverDir, rel: &str) -> Result<hcl::Body, String> {
    let text = dir.read(rel)?;
    terraform::parse(&text).map_err(|e| format!("{rel} {e}"))
}

fn tf_inputs(dir: &DriverDir, rel: &str, validators: &Map<String, Value>) -> Result<Vec<Input>, String> {
    let body = tf_body(dir, rel)?;
    let mut inputs = terraform::inputs(&body, validators).map_err(|e| format!("{rel} {e}"))?;
    for input in &mut inputs {
        input.prepare().map_err(|e| format!("{rel}: {e}"))?;
    }
    Ok(inputs)
}

/// A `map` rule's `grouped_by` must name another input of the same set, or values could never
/// be checked against it.
fn check_grouping(inputs: &[&Input]) -> Result<(), String> {
    for input in inputs {
        let Some(rule) = input.compiled.as_ref().and_then(|c| c.rule.as_ref()) else {
            continue;
        };
        if let super::input::Rule::Map { grouped_by, .. } = rule
            && !inputs.iter().any(|i| &i.name == grouped_by)
        {
            return Err(format!(
                "input '{}' is grouped by '{grouped_by}', which is not an input of this driver",
                input.name
            ));
        }
    }
    Ok(())
}
